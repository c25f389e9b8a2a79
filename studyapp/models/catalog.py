"""Catalogs of recommendable items, imported from Myntra, Amazon tops or the generic format."""

from __future__ import annotations

from django.db import models

from recommender.catalog import CatalogItem


class Catalog(models.Model):
    """A named set of items; ``version`` changes whenever an import changes an item."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    source = models.CharField(
        max_length=40, help_text="Importer used: myntra, amazon_tops, generic or sample."
    )
    data_dir = models.CharField(
        max_length=500, blank=True, help_text="Folder that relative image paths are in."
    )
    version = models.CharField(
        max_length=32, blank=True, help_text="Fingerprint of the item texts and images."
    )
    imported_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """One catalog item, as shown to participants and embedded by the encoder."""

    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=100, help_text="The catalog's own id (Myntra id, ASIN, ...).")
    title = models.CharField(max_length=500)
    text = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    image_path = models.CharField(max_length=500, blank=True)
    image_url = models.URLField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            # Re-running an import updates rows instead of duplicating them.
            models.UniqueConstraint(fields=["catalog", "external_id"], name="item_unique_external_id"),
        ]
        ordering = ["catalog_id", "id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.external_id})"

    def to_catalog_item(self) -> CatalogItem:
        """The recommender's view of this row."""
        return CatalogItem(
            item_id=self.external_id,
            title=self.title,
            text=self.text,
            attributes={str(k): str(v) for k, v in (self.attributes or {}).items()},
            image_path=self.image_path or None,
            image_url=self.image_url or None,
        )
