"""``manage.py build_search_index SLUG``: build a large catalog's search indexes before a study opens."""

from __future__ import annotations

import logging
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyapp import ranking_service
from studyapp.models import Catalog, RankingSystem


class Command(BaseCommand):
    help = (
        "Embed a catalog (if not cached) and build the approximate search indexes its rankers use when it "
        "has at least WHISPERLITE_ANN_MIN_ITEMS items: the content index (zero-shot, history blend) and one "
        "per WhisperLite checkpoint of the studies on this catalog (or of --system). Minutes for a million "
        "items; run it before opening a study, so no participant waits for it. Safe to re-run: what is "
        "built is opened, not rebuilt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("catalog", help="Catalog slug.")
        parser.add_argument(
            "--system",
            action="append",
            default=[],
            help="Ranking system name (repeatable); default: every system of every study on this catalog.",
        )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        try:
            catalog = Catalog.objects.get(slug=options["catalog"])
        except Catalog.DoesNotExist as exc:
            raise CommandError(f"No catalog with slug {options['catalog']!r}") from exc
        if options["system"]:
            systems = list(RankingSystem.objects.filter(name__in=options["system"]))
            unknown = set(options["system"]) - {s.name for s in systems}
            if unknown:
                raise CommandError(f"No ranking system named {', '.join(sorted(unknown))}")
        else:
            systems = list(RankingSystem.objects.filter(studies__catalog=catalog).distinct())
        # The FAISS build logs its phases (k-means, adding rows); show them as progress.
        logging.getLogger("recommender").setLevel(logging.INFO)
        if not logging.getLogger().handlers:
            logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
        started = time.perf_counter()
        ranking_service.get_index(catalog, progress=True)
        if not ranking_service.needs_search_index(catalog):
            self.stdout.write(
                self.style.SUCCESS(
                    f"Catalog '{catalog.slug}' is below WHISPERLITE_ANN_MIN_ITEMS: ranked exactly, no index needed."
                )
            )
            return
        for version in ranking_service.build_search_indexes(catalog, systems):
            self.stdout.write(f"  ready: {version}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Search indexes of '{catalog.slug}' ready in {time.perf_counter() - started:.0f} s."
            )
        )
