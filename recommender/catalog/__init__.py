"""Catalogs as the recommender sees them, independent of any database.

* :mod:`recommender.catalog.item`: :class:`CatalogItem` and :func:`item_text` (re-exported here);
* :mod:`recommender.catalog.readers`: :func:`~recommender.catalog.readers.read_catalog` for the
  Myntra, Amazon-tops and generic formats;
* :mod:`recommender.catalog.generic`: the generic CSV / JSON-lines format;
* :mod:`recommender.catalog.rows`: row-level helpers and errors shared by the readers;
* :mod:`recommender.catalog.sample`: the generated sample catalog.
"""

from recommender.catalog.item import CatalogItem, item_text

__all__ = ["CatalogItem", "item_text"]
