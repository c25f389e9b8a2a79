"""Bridge from the database to the pure analysis package: typed records in, report out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from studyapp.analysis.balance import ConditionBalance, condition_balance
from studyapp.analysis.records import JudgementRecord, ParticipantRecord, PreferenceRecord
from studyapp.analysis.report import StudyReport, build_report, report_to_dict
from studyapp.design import Origin
from studyapp.models import Participant, Study
from studyapp.records import judgement_records, participant_records, preference_records

AnswerRecord = TypeVar("AnswerRecord", JudgementRecord, PreferenceRecord)


def accepted(records: Iterable[AnswerRecord], origin: str = Origin.REAL) -> Iterator[AnswerRecord]:
    """Only what the study accepted is analysed, one participant group at a time.

    That is, requests the participant finished ("next" after rating every item) of
    participants who were not screened out, from one group: real participants by default;
    pilot runs and simulated participants are never mixed with real data. Partly rated lists
    of drop-outs, the answers of screened-out participants and the test runs stay in the CSV
    exports (``is_pilot``, ``is_simulated``).
    """
    for r in records:
        if r.origin != origin:
            continue
        if r.request_completed_at is not None and r.participant_phase != Participant.Phase.SCREENED_OUT:
            yield r


def _of_origin(records: Iterable[ParticipantRecord], origin: str) -> Iterator[ParticipantRecord]:
    return (r for r in records if r.origin == origin)


def study_balance(study: Study, origin: str = Origin.REAL) -> list[ConditionBalance]:
    """Participants of one group per Latin-square condition (side by side only; the other
    modes use none). Each group draws its conditions from its own sequence
    (:func:`studyapp.services.do_finish_instructions`), so test runs never take real ones."""
    if study.mode != Study.Mode.SIDE_BY_SIDE:
        return []
    # The same keys, in the same order, that display.plan_slots passes to counterbalanced_order.
    systems = {str(s.pk): s.name for s in study.systems.order_by("pk")}
    return condition_balance(_of_origin(participant_records(study), origin), systems, study.seed)


# Bootstrap resamples for the researcher's page, its HTML report and its figure downloads: one
# number, so a downloaded figure shows the same confidence intervals as the page it came from.
N_RESAMPLES = 2000


def build_study_report(
    study: Study, n_resamples: int = N_RESAMPLES, origin: str = Origin.REAL
) -> StudyReport:
    """The analysis of one group of participants: real ones (default), pilot or simulated."""
    return build_report(
        accepted(judgement_records(study), origin), study.scale, study.k, study.mode, seed=study.seed,
        n_resamples=n_resamples, agreement_resamples=min(n_resamples, 1000),
        preferences=accepted(preference_records(study), origin) if study.asks_list_preference else None,
        balance=study_balance(study, origin),
    )  # fmt: skip


def report_dict(study: Study) -> dict[str, Any]:
    return report_to_dict(build_study_report(study))
