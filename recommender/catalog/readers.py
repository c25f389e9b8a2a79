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

import math
import os
from pathlib import Path

from recommender.catalog.generic import read_generic
from recommender.catalog.item import CatalogItem
from recommender.catalog.rows import CatalogReadResult, RowError, csv_failure, csv_records

__all__ = [
    "CATALOG_FORMATS",
    "MYNTRA_ATTRIBUTE_KEYS",
    "CatalogReadResult",
    "RowError",
    "read_amazon_tops",
    "read_catalog",
    "read_generic",
    "read_myntra",
]

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
    records = csv_records(source)
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
        if message := csv_failure(fields):
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
    records = csv_records(source)
    first = next(records, None)
    if first is None:
        return CatalogReadResult([], [RowError(1, "empty file")], str(source))
    header = [h.strip() for h in first[2]]
    required = ("asin", "title")
    if missing := [c for c in required if c not in header]:
        return CatalogReadResult([], [RowError(first[0], f"header lacks column(s) {missing}")], str(source))
    for line, _, fields in records:
        if message := csv_failure(fields):
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
