"""What a researcher watches while a study runs: counts, time per participant, quality flags, progress.

Everything here is per participant *origin* (real, pilot, simulated), so the numbers on the
researcher page always describe the same group as the analysis beside them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from studyapp.models import Judgement, Participant, Request, Study

# A participant is flagged as fast when at least this share of their judgements came quicker than
# the study's min_seconds_per_judgement: one quick click is normal, a quarter suggests clicking through.
FAST_SHARE_FLAG = 0.25


@dataclass(frozen=True)
class ParticipantQuality:
    """One participant's row in the quality table."""

    number: int
    phase: str
    phase_label: str
    minutes: float | None  # consent to finish; None while unfinished
    requests_completed: int
    judgements: int
    too_fast: int
    median_response_s: float | None
    attention_failures: int
    flags: tuple[str, ...]

    @property
    def too_fast_share(self) -> float | None:
        return self.too_fast / self.judgements if self.judgements else None


@dataclass(frozen=True)
class Progress:
    """Counts of one participant group and their requests and judgements."""

    participants: int
    phases: list[tuple[str, int]]
    finished: int
    requests: int
    requests_waiting: int
    requests_failed: int
    judgements: int
    too_fast: int
    attention_failed: int
    pilots: int
    simulated: int

    @property
    def test_runs(self) -> int:
        return self.pilots + self.simulated


@dataclass(frozen=True)
class Timeline:
    """Cumulative joined and finished participants, one point per event, oldest first."""

    joined: list[datetime] = field(default_factory=list)
    finished: list[datetime] = field(default_factory=list)


def participants_of(study: Study, origin: str = Participant.Origin.REAL) -> QuerySet[Participant]:
    return Participant.objects.filter(study=study, origin=origin)


def study_progress(study: Study, origin: str = Participant.Origin.REAL) -> Progress:
    """Counts for one participant group (real ones by default); test runs are counted apart."""
    group = participants_of(study, origin)
    phases = dict(group.values_list("phase").annotate(n=Count("id")))
    origins = dict(Participant.objects.filter(study=study).values_list("origin").annotate(n=Count("id")))
    requests = Request.objects.filter(participant__in=group, is_practice=False)
    judgements = Judgement.objects.filter(participant__in=group, slot__request__is_practice=False)
    return Progress(
        participants=sum(phases.values()),
        phases=[(label, phases.get(value, 0)) for value, label in Participant.Phase.choices],
        finished=phases.get(Participant.Phase.DONE, 0),
        requests=requests.count(),
        requests_waiting=requests.filter(status__in=[Request.Status.PENDING, Request.Status.RUNNING]).count(),
        requests_failed=requests.filter(status=Request.Status.FAILED).count(),
        judgements=judgements.count(),
        too_fast=judgements.filter(too_fast=True).count(),
        attention_failed=requests.filter(attention_check_failed=True).count(),
        pilots=origins.get(Participant.Origin.PILOT, 0),
        simulated=origins.get(Participant.Origin.SIMULATED, 0),
    )


def participant_quality(study: Study, origin: str = Participant.Origin.REAL) -> list[ParticipantQuality]:
    """Per participant: time taken, requests and judgements done, speed and attention flags."""
    group = participants_of(study, origin).annotate(
        n_judgements=Count(
            "judgements", filter=Q(judgements__slot__request__is_practice=False), distinct=True
        ),
        n_fast=Count(
            "judgements",
            filter=Q(judgements__too_fast=True, judgements__slot__request__is_practice=False),
            distinct=True,
        ),
        n_completed=Count(
            "requests",
            filter=Q(requests__is_practice=False, requests__completed_at__isnull=False),
            distinct=True,
        ),
    )
    times: dict[int, list[int]] = {}
    for pid, ms in Judgement.objects.filter(
        participant__in=group, response_ms__isnull=False, slot__request__is_practice=False
    ).values_list("participant_id", "response_ms"):
        times.setdefault(pid, []).append(ms)
    rows = []
    for p in group.order_by("number"):
        minutes = None
        if p.finished_at and p.phase == Participant.Phase.DONE:
            minutes = (p.finished_at - (p.consented_at or p.created_at)).total_seconds() / 60
        flags = []
        if p.n_judgements and p.n_fast / p.n_judgements >= FAST_SHARE_FLAG:
            flags.append("fast")
        if p.attention_failures:
            flags.append("attention")
        if p.phase == Participant.Phase.SCREENED_OUT:
            flags.append("screened out")
        response = times.get(p.pk)
        rows.append(
            ParticipantQuality(
                number=p.number,
                phase=p.phase,
                phase_label=p.get_phase_display(),
                minutes=minutes,
                requests_completed=p.n_completed,
                judgements=p.n_judgements,
                too_fast=p.n_fast,
                median_response_s=statistics.median(response) / 1000 if response else None,
                attention_failures=p.attention_failures,
                flags=tuple(flags),
            )
        )
    return rows


def timeline(study: Study, origin: str = Participant.Origin.REAL) -> Timeline:
    """When participants joined and finished: the data behind the progress-over-time chart."""
    group = participants_of(study, origin)
    return Timeline(
        joined=sorted(group.values_list("created_at", flat=True)),
        finished=sorted(
            group.filter(phase=Participant.Phase.DONE, finished_at__isnull=False).values_list(
                "finished_at", flat=True
            )
        ),
    )


def minutes_summary(rows: list[ParticipantQuality]) -> dict[str, float | int] | None:
    """Median and quartiles of the time finished participants took, or None before anyone finished."""
    minutes = sorted(r.minutes for r in rows if r.minutes is not None)
    if not minutes:
        return None
    if len(minutes) == 1:
        return {"n": 1, "median": minutes[0], "q1": minutes[0], "q3": minutes[0]}
    q1, median, q3 = statistics.quantiles(minutes, n=4, method="inclusive")
    return {"n": len(minutes), "median": median, "q1": q1, "q3": q3}
