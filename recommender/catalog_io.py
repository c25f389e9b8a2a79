"""Readers that turn catalog files into :class:`~recommender.catalog.CatalogItem` lists.

Three formats are supported (see ``docs/catalog-format.md``):

``myntra``
    The Myntra "Fashion Product Images (Small)" folder: ``styles.csv`` + ``images/<id>.jpg``.
``amazon_tops``
    The Amazon women's tops folder: ``items.csv`` + ``images/<asin>.jpg``.
``generic``
    The project's own format, a CSV or JSON-lines file with ``id`` and ``title`` plus optional
    ``text``, ``image`` and free attribute columns. This is what researchers upload.

Readers never stop at a bad row: each malformed row becomes a :class:`RowError` carrying its
1-based line number in the source file (the CSV header is line 1) and the remaining rows
still import. Problems that do not cost the row (an image file that is missing, an image
path that leaves the catalog folder) are reported as ``warnings`` and the row imports
without that field.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from recommender.catalog import CatalogItem

CATALOG_FORMATS = ("myntra", "amazon_tops", "generic")

#: Attribute keys a Myntra item carries, in the order of the source columns.
MYNTRA_ATTRIBUTE_KEYS = (
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
)
_MYNTRA_COLUMNS = ("id", *MYNTRA_ATTRIBUTE_KEYS, "productDisplayName", "has_image")

#: Amazon ``product_type_name`` values that describe the apparel item itself. The column is
#: noisy (``BOOKS_1973_AND_LATER``, ``AUTO_ACCESSORY``, ... on shirt rows); such values would
#: only inject misleading words into the embedded text, so they are dropped.
AMAZON_APPAREL_TYPES = frozenset(
    {
        "SHIRT",
        "APPAREL",
        "DRESS",
        "BLAZER",
        "SWEATER",
        "OUTERWEAR",
        "UNDERWEAR",
        "SLEEPWEAR",
        "PANTS",
        "SKIRT",
        "SHORTS",
        "HANDBAG",
        "SHOES",
        "BRA",
        "ETHNIC_WEAR",
        "ACCESSORY",
        "SWIMWEAR",
        "COAT",
        "JACKET",
    }
)

#: Reserved columns / keys of the generic format (matched case-insensitively).
GENERIC_RESERVED = ("id", "title", "text", "image", "attributes")
GENERIC_CSV_SUFFIXES = (".csv",)
GENERIC_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class RowError:
    """A problem with one row: ``line`` is 1-based in the source file (header = line 1)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class CatalogReadResult:
    """What a reader produced: the good items, the rejected rows, and non-fatal warnings."""

    items: list[CatalogItem]
    errors: list[RowError]
    source: str  # the file that was read
    warnings: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row imported."""
        return not self.errors


# --------------------------------------------------------------------------- file reading


def _decoded_lines(path: Path) -> tuple[list[str], set[int]]:
    """The file's lines (line ends kept) and the 1-based numbers of lines that are not UTF-8.

    Decoding line by line lets one stray Latin-1 byte cost only its own row instead of
    aborting the whole import with a ``UnicodeDecodeError``.
    """
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # Excel writes a UTF-8 BOM
        raw = raw[3:]
    lines: list[str] = []
    bad: set[int] = set()
    for number, chunk in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(chunk.decode("utf-8", errors="replace"))
            bad.add(number)
    return lines, bad


def _csv_records(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """Yield ``(first_line, last_line, fields)`` per CSV record, blank lines skipped.

    A quoted field may span several physical lines, so a record is reported by the line it
    starts on; ``last_line`` lets callers see whether any of its lines was undecodable.
    """
    lines, bad = _decoded_lines(path)
    reader = csv.reader(lines)
    previous_end = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # e.g. an unterminated quote swallowed the rest of the file; report and stop.
            yield previous_end + 1, reader.line_num, ["\x00csv-error", str(exc)]
            return
        start, previous_end = previous_end + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if any(n in bad for n in range(start, previous_end + 1)):
            yield start, previous_end, ["\x00bad-utf8"]
            continue
        yield start, previous_end, fields


def _is_csv_failure(fields: list[str]) -> str | None:
    """The error message for a sentinel record from :func:`_csv_records`, else None."""
    if fields and fields[0] == "\x00bad-utf8":
        return "not valid UTF-8 text"
    if fields and fields[0] == "\x00csv-error":
        return f"unreadable CSV ({fields[1]}); the rest of the file was skipped"
    return None


def _resolve_dir(data_dir: str | os.PathLike[str], marker: str, subdir: str) -> Path:
    """Accept either the catalog folder itself or the shared data folder that contains it."""
    base = Path(data_dir)
    if (base / marker).is_file():
        return base
    if (base / subdir / marker).is_file():
        return base / subdir
    raise FileNotFoundError(f"no {marker} in {base} or {base / subdir}")


def _image_names(folder: Path) -> set[str]:
    # One directory listing instead of ~44k stat() calls for the Myntra catalog.
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()


def _clean_year(value: str) -> str:
    """``"2012.0"`` -> ``"2012"`` (pandas exported the column as float); other text unchanged."""
    try:
        number = float(value)
    except ValueError:
        return value
    if math.isfinite(number) and number.is_integer():
        return str(int(number))
    return value


# --------------------------------------------------------------------------- Myntra


def read_myntra(data_dir: str | os.PathLike[str], only_with_images: bool = True) -> CatalogReadResult:
    """Read the Myntra catalog from ``data_dir`` (the ``myntra`` folder or its parent).

    ``only_with_images`` keeps just the products whose photo is on disk (9,583 of 44,446),
    which is what a visual study catalog needs. ``image_path`` is relative to the Myntra
    folder (``images/<id>.jpg``) and set only when that file exists.

    Some exports of ``styles.csv`` leave commas inside ``productDisplayName`` unquoted, which
    shows up as extra fields; since that is the only free-text column and ``has_image`` is
    last, the surplus fields are joined back into the title.
    """
    folder = _resolve_dir(data_dir, "styles.csv", "myntra")
    source = folder / "styles.csv"
    images = _image_names(folder / "images")
    items: list[CatalogItem] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    records = _csv_records(source)
    header_line = next(records, None)
    if header_line is None:
        return CatalogReadResult([], [RowError(1, "empty file")], str(source))
    header = [h.strip() for h in header_line[2]]
    if tuple(header) != _MYNTRA_COLUMNS:
        return CatalogReadResult(
            [],
            [RowError(header_line[0], f"unexpected header {header}; expected {list(_MYNTRA_COLUMNS)}")],
            str(source),
        )
    n_columns = len(_MYNTRA_COLUMNS)
    for line, _, fields in records:
        if message := _is_csv_failure(fields):
            errors.append(RowError(line, message))
            continue
        if len(fields) > n_columns and fields[-1].strip() in ("True", "False"):
            title_at = _MYNTRA_COLUMNS.index("productDisplayName")
            fields = [*fields[:title_at], ",".join(fields[title_at:-1]), fields[-1]]
        if len(fields) != n_columns:
            errors.append(RowError(line, f"expected {n_columns} fields, found {len(fields)}"))
            continue
        row = {key: value.strip() for key, value in zip(_MYNTRA_COLUMNS, fields, strict=True)}
        item_id = row["id"]
        if not item_id:
            errors.append(RowError(line, "missing id"))
            continue
        if item_id in seen:
            errors.append(RowError(line, f"duplicate id {item_id!r} (first on line {seen[item_id]})"))
            continue
        seen[item_id] = line
        image_name = f"{item_id}.jpg"
        has_image = image_name in images
        if only_with_images and not has_image:
            continue
        attributes = {key: row[key] for key in MYNTRA_ATTRIBUTE_KEYS if row[key]}
        if "year" in attributes:
            attributes["year"] = _clean_year(attributes["year"])
        title = row["productDisplayName"] or f"{row['baseColour']} {row['articleType']}".strip()
        if not title:
            errors.append(RowError(line, "no productDisplayName and no baseColour/articleType to name it"))
            continue
        items.append(
            CatalogItem(
                item_id=item_id,
                title=title,
                text="",
                attributes=attributes,
                image_path=f"images/{image_name}" if has_image else None,
            )
        )
    return CatalogReadResult(items, errors, str(source))


# --------------------------------------------------------------------------- Amazon tops


def _product_type(value: str) -> str | None:
    """``"ETHNIC_WEAR"`` -> ``"Ethnic Wear"``; None for the noisy non-apparel values."""
    value = value.strip().upper()
    if value not in AMAZON_APPAREL_TYPES:
        return None
    return value.replace("_", " ").title()


def read_amazon_tops(data_dir: str | os.PathLike[str]) -> CatalogReadResult:
    """Read the Amazon women's tops catalog from ``data_dir`` (``amazon_tops`` or its parent).

    Attributes: ``brand`` (omitted when empty), ``color``, ``product_type`` (only apparel
    values, humanised) and ``price`` (``formatted_price`` as shown, e.g. ``"$9.99"``).
    ``image_url`` is the crawl's ``medium_image_url``; ``image_path`` the local photo.
    """
    folder = _resolve_dir(data_dir, "items.csv", "amazon_tops")
    source = folder / "items.csv"
    images = _image_names(folder / "images")
    items: list[CatalogItem] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    records = _csv_records(source)
    first = next(records, None)
    if first is None:
        return CatalogReadResult([], [RowError(1, "empty file")], str(source))
    header = [h.strip() for h in first[2]]
    required = ("asin", "title")
    if missing := [c for c in required if c not in header]:
        return CatalogReadResult([], [RowError(first[0], f"header lacks column(s) {missing}")], str(source))
    for line, _, fields in records:
        if message := _is_csv_failure(fields):
            errors.append(RowError(line, message))
            continue
        if len(fields) != len(header):
            errors.append(RowError(line, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        row = {key: value.strip() for key, value in zip(header, fields, strict=True)}
        asin, title = row["asin"], row["title"]
        if not asin:
            errors.append(RowError(line, "missing asin"))
            continue
        if not title:
            errors.append(RowError(line, "missing title"))
            continue
        if asin in seen:
            errors.append(RowError(line, f"duplicate asin {asin!r} (first on line {seen[asin]})"))
            continue
        seen[asin] = line
        attributes: dict[str, str] = {}
        if row.get("brand"):
            attributes["brand"] = row["brand"]
        if row.get("color"):
            attributes["color"] = row["color"]
        if product_type := _product_type(row.get("product_type_name", "")):
            attributes["product_type"] = product_type
        if row.get("formatted_price"):
            attributes["price"] = row["formatted_price"]
        image_name = f"{asin}.jpg"
        items.append(
            CatalogItem(
                item_id=asin,
                title=title,
                attributes=attributes,
                image_path=f"images/{image_name}" if image_name in images else None,
                image_url=row.get("medium_image_url") or None,
            )
        )
    return CatalogReadResult(items, errors, str(source))


# --------------------------------------------------------------------------- generic format


def _flat_value(value: Any) -> str | None:
    """A JSON value as an attribute string; None when it has no flat form."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else str(value)
    if isinstance(value, int | str):
        return str(value).strip()
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        return ", ".join(s for v in value if (s := _flat_value(v)))
    return None


class _RowProblem(ValueError):
    """A generic-format row that cannot be imported (message becomes a RowError)."""


def _generic_image(value: str, folder: Path) -> tuple[str | None, str | None, str | None]:
    """``(image_path, image_url, warning)`` for a generic ``image`` value.

    Local paths must stay inside the catalog's folder: the study app serves these files to
    participants, so an uploaded catalog must not be able to point at ``/etc/passwd`` or
    ``../../secrets``.
    """
    value = value.strip()
    if not value:
        return None, None, None
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")):
        return None, value, None
    if "://" in value or lowered.startswith("data:"):
        return None, None, f"image {value[:60]!r}: only http(s) URLs and relative paths are supported"
    relative = PurePosixPath(value.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or (relative.parts and ":" in relative.parts[0]):
        return None, None, f"image {value!r} must be a path inside the catalog folder"
    if not (folder / relative).is_file():
        return None, None, f"image file {value!r} not found next to the catalog"
    return relative.as_posix(), None, None


def _generic_item(record: dict[str, Any], folder: Path) -> tuple[CatalogItem, str | None]:
    """Build an item from a parsed row (CSV dict or JSON object); raises _RowProblem."""
    fields = {
        str(k).strip().lower(): v for k, v in record.items() if str(k).strip().lower() in GENERIC_RESERVED
    }
    raw_id = fields.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
        raise _RowProblem("'id' must be a string or an integer")
    item_id = _flat_value(raw_id)
    if not item_id:
        raise _RowProblem("missing id")
    title = fields.get("title")
    if not isinstance(title, str) or not title.strip():
        raise _RowProblem("missing title")
    text = fields.get("text")
    if text is not None and not isinstance(text, str):
        raise _RowProblem("'text' must be a string")
    attributes: dict[str, str] = {}
    for key, value in record.items():
        name = str(key).strip()
        if not name or name.lower() in GENERIC_RESERVED:
            continue
        if (flat := _flat_value(value)) is not None and flat:
            attributes[name] = flat
    nested = fields.get("attributes")
    if isinstance(nested, str) and nested.strip():
        # A CSV cell may carry the attributes as a JSON object.
        try:
            nested = json.loads(nested)
        except json.JSONDecodeError as exc:
            raise _RowProblem(f"'attributes' is not a JSON object: {exc.msg}") from exc
    if nested not in (None, ""):
        if not isinstance(nested, dict):
            raise _RowProblem("'attributes' must be a JSON object")
        for key, value in nested.items():
            flat = _flat_value(value)
            if flat is None and value is not None:
                raise _RowProblem(f"attribute {key!r} must be a string, number or list, not an object")
            if flat:
                attributes[str(key).strip()] = flat
    image = fields.get("image")
    if image is not None and not isinstance(image, str):
        raise _RowProblem("'image' must be a string")
    image_path, image_url, warning = _generic_image(image or "", folder)
    item = CatalogItem(
        item_id=item_id,
        title=title.strip(),
        text=(text or "").strip(),
        attributes=attributes,
        image_path=image_path,
        image_url=image_url,
    )
    return item, warning


def _generic_csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    records = _csv_records(path)
    first = next(records, None)
    if first is None:
        yield 1, RowError(1, "empty file: expected a header row with at least 'id' and 'title'")
        return
    header = [h.strip() for h in first[2]]
    lowered = [h.lower() for h in header]
    missing = [c for c in ("id", "title") if c not in lowered]
    duplicated = sorted({h for h in lowered if h and lowered.count(h) > 1})
    if missing or duplicated or _is_csv_failure(first[2]):
        problem = (
            _is_csv_failure(first[2])
            or (missing and f"header lacks required column(s) {missing}")
            or f"header repeats column(s) {duplicated}"
        )
        yield first[0], RowError(first[0], str(problem))
        return
    for line, _, fields in records:
        if message := _is_csv_failure(fields):
            yield line, RowError(line, message)
            continue
        if len(fields) != len(header):
            yield (
                line,
                RowError(line, f"expected {len(header)} fields (as in the header), found {len(fields)}"),
            )
            continue
        yield line, {name: value for name, value in zip(header, fields, strict=True) if name}


def _generic_jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    lines, bad = _decoded_lines(path)
    first_content = next((line.strip() for line in lines if line.strip()), "")
    if first_content.startswith("["):
        yield 1, RowError(1, "expected JSON lines (one object per line), not a JSON array")
        return
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if number in bad:
            yield number, RowError(number, "not valid UTF-8 text")
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, RowError(number, f"bad JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            yield number, RowError(number, f"expected a JSON object, found {type(record).__name__}")
            continue
        yield number, record


def read_generic(path: str | os.PathLike[str]) -> CatalogReadResult:
    """Read a catalog in the generic format (CSV or JSON lines, chosen by file extension).

    Every row needs ``id`` and ``title``; ``text``, ``image`` and attributes are optional.
    Rows that cannot be imported (no id, no title, bad JSON, wrong field count, an id
    already seen in the file) become :class:`RowError` entries and the rest imports.
    Image paths are kept relative to the file's folder, which is the ``image_root`` to
    use when embedding or serving them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generic catalog file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in GENERIC_CSV_SUFFIXES:
        rows = _generic_csv_rows(path)
    elif suffix in GENERIC_JSONL_SUFFIXES:
        rows = _generic_jsonl_rows(path)
    else:
        raise ValueError(
            f"cannot tell the format of {path.name!r}: use .csv, or .jsonl/.ndjson/.json for JSON lines"
        )
    folder = path.parent
    items: list[CatalogItem] = []
    errors: list[RowError] = []
    warnings: list[RowError] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, RowError):
            errors.append(row)
            continue
        try:
            item, warning = _generic_item(row, folder)
        except _RowProblem as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if item.item_id in seen:
            errors.append(
                RowError(line, f"duplicate id {item.item_id!r} (first on line {seen[item.item_id]})")
            )
            continue
        seen[item.item_id] = line
        if warning:
            warnings.append(RowError(line, warning))
        items.append(item)
    return CatalogReadResult(items, errors, str(path), warnings)


# --------------------------------------------------------------------------- dispatch


def read_catalog(fmt: str, path: str | os.PathLike[str]) -> CatalogReadResult:
    """Read a catalog of format ``fmt`` (``myntra`` | ``amazon_tops`` | ``generic``) at ``path``.

    For ``myntra`` and ``amazon_tops`` ``path`` is the dataset folder (or the shared data
    folder holding it); for ``generic`` it is the CSV / JSONL file.
    """
    if fmt not in CATALOG_FORMATS:
        raise ValueError(f"unknown catalog format {fmt!r}; choose one of {', '.join(CATALOG_FORMATS)}")
    if not Path(path).exists():
        raise FileNotFoundError(f"{fmt} catalog not found: {path} does not exist")
    if fmt == "myntra":
        return read_myntra(path)
    if fmt == "amazon_tops":
        return read_amazon_tops(path)
    return read_generic(path)
