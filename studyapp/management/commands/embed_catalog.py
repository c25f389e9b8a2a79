"""``manage.py embed_catalog SLUG``: embed a catalog (in shards on the workers if large), with progress."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyapp import embedding_jobs
from studyapp.models import Catalog


class Command(BaseCommand):
    help = (
        "Embed a catalog's items for the configured encoder. Large catalogs (WHISPERLITE_EMBED_SHARD_MIN_ITEMS "
        "and up, with a broker) are split into shards that the Celery workers encode; this command shows "
        "shards done / total and re-sends lost shards. Run it again after any crash: shards already "
        "embedded are kept. Smaller catalogs, and the embedded mode, are embedded in this process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The catalog's slug (see the admin, or import_catalog's output).")
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="Send the shards and return; the workers finish and merge them on their own.",
        )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        catalog = Catalog.objects.filter(slug=options["slug"]).first()
        if catalog is None:
            raise CommandError(f"No catalog with slug {options['slug']!r}.")
        how = embedding_jobs.embed_catalog(catalog, wait=not options["no_wait"], out=self.stdout)
        self.stdout.write(self.style.SUCCESS(embed_message(catalog, how)))


def embed_message(catalog: Catalog, how: str) -> str:
    """One line saying how the catalog's embedding went (shared with ``import_catalog --embed``)."""
    return {
        "in-process": f"Catalog '{catalog.slug}' embedded in this process; embeddings cached.",
        "cached": f"Catalog '{catalog.slug}' was already embedded; embeddings cached.",
        "sent": f"Catalog '{catalog.slug}': shards sent to the workers; `manage.py embed_catalog "
        f"{catalog.slug}` shows progress.",
        "sharded": f"Catalog '{catalog.slug}' embedded in shards by the workers; embeddings cached.",
    }[how]
