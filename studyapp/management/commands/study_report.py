"""``manage.py study_report <study>``: the analysis report as text (or JSON) in the terminal."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyapp import reporting
from studyapp.analysis.report import report_to_dict, report_to_text
from studyapp.models import Study


class Command(BaseCommand):
    help = "Per-system metrics with bootstrap CIs, paired tests, position bias and agreement for a study."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="Study id or slug.")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")
        parser.add_argument(
            "--resamples", type=int, default=10000, help="Bootstrap resamples (default 10000)."
        )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        key = options["study"]
        study = Study.objects.filter(slug=key).first() or (
            Study.objects.filter(pk=key).first() if key.isdigit() else None
        )
        if study is None:
            raise CommandError(f"No study with id or slug {key!r}.")
        report = reporting.build_study_report(study, n_resamples=options["resamples"])
        self.stdout.write(
            json.dumps(report_to_dict(report), indent=2) if options["json"] else report_to_text(report)
        )
