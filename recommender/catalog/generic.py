"""The project's generic catalog format: a CSV or JSON-lines file (see docs/catalog-format.md)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from recommender.catalog.item import CatalogItem
from recommender.catalog.rows import CatalogReadResult, RowError, csv_failure, csv_records, decoded_lines

#: The item-id column: ``item_id`` (as in interaction logs and :class:`CatalogItem`); ``id`` is
#: accepted as an alias, so older catalog files keep importing.
ID_KEYS = ("item_id", "id")
GENERIC_RESERVED = (*ID_KEYS, "title", "text", "image", "attributes")
GENERIC_CSV_SUFFIXES = (".csv",)
GENERIC_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


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
    given = [k for k in ID_KEYS if fields.get(k) not in (None, "")]
    if len(given) > 1 and _flat_value(fields["item_id"]) != _flat_value(fields["id"]):
        raise _RowProblem("'item_id' and its alias 'id' differ; give one of them")
    raw_id = fields[given[0]] if given else None
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
        raise _RowProblem(f"'{given[0]}' must be a string or an integer")
    item_id = _flat_value(raw_id)
    if not item_id:
        raise _RowProblem("missing item_id")
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
    records = csv_records(path)
    first = next(records, None)
    if first is None:
        yield 1, RowError(1, "empty file: expected a header row with at least 'item_id' and 'title'")
        return
    header = [h.strip() for h in first[2]]
    lowered = [h.lower() for h in header]
    missing = [c for c in ("item_id", "title") if c not in lowered]
    if "item_id" in missing and "id" in lowered:  # the accepted alias
        missing.remove("item_id")
    duplicated = sorted({h for h in lowered if h and lowered.count(h) > 1})
    if missing or duplicated or csv_failure(first[2]):
        problem = (
            csv_failure(first[2])
            or (missing and f"header lacks required column(s) {missing}")
            or f"header repeats column(s) {duplicated}"
        )
        yield first[0], RowError(first[0], str(problem))
        return
    for line, _, fields in records:
        if message := csv_failure(fields):
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
    lines, bad = decoded_lines(path)
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

    Every row needs ``item_id`` (or its alias ``id``) and ``title``; ``text``, ``image`` and attributes are optional.
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
