"""Catalog items as the recommender sees them, independent of any database.

Readers for the concrete catalog formats live in :mod:`recommender.catalog.readers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CatalogItem:
    """One recommendable item.

    ``item_id`` is the catalog's own identifier (Myntra id, ASIN, ...), unique within a
    catalog. ``text`` is the free text that describes the item beyond its title (may be
    empty); ``attributes`` are flat string facets (colour, gender, usage, ...).
    """

    item_id: str
    title: str
    text: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    image_path: str | None = None  # local file, absolute or relative to the catalog dir
    image_url: str | None = None  # remote image, shown to participants but never fetched here


def item_text(item: CatalogItem) -> str:
    """The text the encoder embeds for an item: title, then attribute values, then text.

    Attribute values come in sorted-key order so the same item always yields the same
    string (the embedding cache is keyed on it).
    """
    parts = [item.title.strip()]
    values = [v.strip() for _, v in sorted(item.attributes.items()) if v and v.strip()]
    if values:
        parts.append(", ".join(values))
    if item.text.strip():
        parts.append(item.text.strip())
    return ". ".join(p for p in parts if p)
