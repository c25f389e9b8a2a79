"""``manage.py import_catalog FORMAT PATH``: import or update a catalog, reporting bad rows."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify
from tqdm import tqdm

from recommender.catalog.readers import read_catalog
from studyapp import embedding_jobs, ranking_service
from studyapp.management.commands.embed_catalog import embed_message
from studyapp.models import Catalog, Item

FORMATS = ("myntra", "amazon_tops", "generic")
UPDATE_FIELDS = ["title", "text", "attributes", "image_path", "image_url"]


def import_catalog(
    fmt: str, path: str, slug: str, name: str, *, progress: bool = True, stdout=None
) -> tuple[Catalog, list]:  # type: ignore[no-untyped-def]
    """Upsert a catalog's items (keyed by external id) and refresh its version; returns (catalog, row errors)."""
    result = read_catalog(fmt, path)
    data_dir = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path))
    if fmt == "myntra" and os.path.isdir(os.path.join(path, "myntra")):
        data_dir = os.path.join(data_dir, "myntra")
    if fmt == "amazon_tops" and os.path.isdir(os.path.join(path, "amazon_tops")):
        data_dir = os.path.join(data_dir, "amazon_tops")
    with transaction.atomic():
        catalog, _ = Catalog.objects.update_or_create(
            slug=slug, defaults={"name": name, "source": fmt, "data_dir": data_dir}
        )
        batch: list[Item] = []
        for item in tqdm(result.items, desc=f"importing {slug}", unit="item", disable=not progress):
            batch.append(
                Item(
                    catalog=catalog,
                    external_id=item.item_id,
                    title=item.title[:500],
                    text=item.text,
                    attributes=item.attributes,
                    image_path=item.image_path or "",
                    image_url=(item.image_url or "")[:1000],
                )
            )
            if len(batch) >= 1000:
                _upsert(batch)
                batch = []
        _upsert(batch)
        catalog.version = ranking_service.catalog_fingerprint_of(catalog)
        catalog.save(update_fields=["version", "imported_at"])
    return catalog, result.errors


def _upsert(batch: list[Item]) -> None:
    if batch:
        Item.objects.bulk_create(
            batch,
            update_conflicts=True,
            unique_fields=["catalog", "external_id"],
            update_fields=UPDATE_FIELDS,
        )


class Command(BaseCommand):
    help = (
        "Import a catalog: 'myntra' (folder with styles.csv + images/), 'amazon_tops' (folder with items.csv + "
        "images/) or 'generic' (a CSV/JSONL file, see docs/catalog-format.md). Re-running updates items in "
        "place; malformed rows are listed with their line numbers and the rest is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("format", choices=FORMATS)
        parser.add_argument("path", help="Data folder (myntra, amazon_tops) or file (generic).")
        parser.add_argument("--slug", help="Catalog slug (default: from the format).")
        parser.add_argument("--name", help="Display name (default: the slug).")
        parser.add_argument(
            "--embed",
            action="store_true",
            help="Also embed the items now (cached on disk; large catalogs in shards on the workers, see embed_catalog).",
        )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        fmt, path = options["format"], options["path"]
        if not os.path.exists(path):
            raise CommandError(f"No such file or folder: {path}")
        slug = options["slug"] or slugify(fmt.replace("_", "-"))
        try:
            catalog, errors = import_catalog(fmt, path, slug, options["name"] or slug)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for error in errors[:50]:
            self.stderr.write(f"  line {error.line}: {error.message}")
        if len(errors) > 50:
            self.stderr.write(f"  ... and {len(errors) - 50} more malformed rows")
        self.stdout.write(
            self.style.SUCCESS(
                f"Catalog '{catalog.slug}': {catalog.items.count()} items (version {catalog.version}); "
                f"{len(errors)} malformed row(s) skipped."
            )
        )
        if options["embed"]:
            how = embedding_jobs.embed_catalog(catalog, out=self.stdout)
            self.stdout.write(self.style.SUCCESS(embed_message(catalog, how)))
