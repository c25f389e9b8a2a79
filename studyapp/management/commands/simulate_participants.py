"""``manage.py simulate_participants STUDY --n 30``: simulated participants through the real flow.

See :mod:`studyapp.simulation` for what a bot does and the labelling oracle. Simulated
participants are flagged (``is_simulated`` in exports), never lock the design, are left out of
the real analysis (the researcher page shows them as their own group) and are deleted with the
pilots ("Delete pilot and simulated data").
"""

from __future__ import annotations

import time

import torch
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from studyapp import simulation
from studyapp.models import Participant, Study


class Command(BaseCommand):
    help = "Run simulated participants through a study (real flow, real ranking) to preview the analysis."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="Study slug or id.")
        parser.add_argument("--n", type=int, default=30, help="How many simulated participants (default 30).")
        parser.add_argument(
            "--requests-file",
            help="Requests to draw from, one per line ('#' comments); default: built from the catalog.",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seeds the bots' picks, requests and labels.")
        parser.add_argument(
            "--noise", type=float, default=0.5, help="Oracle label noise, in scale points (Gaussian sd)."
        )
        parser.add_argument(
            "--careless", type=float, default=0.0, help="Share of bots that rate at random, fast (0 to 1)."
        )
        parser.add_argument(
            "--wait", type=float, default=600.0, help="Seconds to wait for one ranking before giving up."
        )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        torch.set_num_threads(1)  # rankings may run in this process; keep it to one core
        ref = options["study"]
        study = Study.objects.filter(Q(slug=ref) | Q(pk=int(ref)) if ref.isdigit() else Q(slug=ref)).first()
        if study is None:
            raise CommandError(f"no study {ref!r}")
        if options["n"] < 1:
            raise CommandError("--n must be at least 1")
        if not 0.0 <= options["careless"] <= 1.0:
            raise CommandError("--careless must be between 0 and 1")
        pool = None
        if options["requests_file"]:
            try:
                pool = simulation.read_request_pool(options["requests_file"])
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from exc

        started = time.monotonic()

        def report(i: int, p: Participant) -> None:
            self.stdout.write(f"  bot {i}/{options['n']}: P{p.number} {p.get_phase_display().lower()}")

        try:
            bots = simulation.simulate(
                study, options["n"], pool=pool, seed=options["seed"], noise=options["noise"],
                careless=options["careless"], wait_seconds=options["wait"], progress=report,
            )  # fmt: skip
        except simulation.SimulationError as exc:
            raise CommandError(str(exc)) from exc
        done = bots.filter(phase=Participant.Phase.DONE).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"{bots.count()} simulated participants ({done} finished) in {time.monotonic() - started:.0f} s. "
                f"See the 'Simulated' group on /researcher/studies/{study.pk}/?group=simulated"
            )
        )
