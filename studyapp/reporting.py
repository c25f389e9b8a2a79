"""Bridge from the database to the pure analysis package: typed records in, report and plots out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from studyapp.analysis.balance import ConditionBalance, condition_balance
from studyapp.analysis.plots import metric_bars_svg, position_bias_svg
from studyapp.analysis.records import JudgementRecord, PreferenceRecord
from studyapp.analysis.report import StudyReport, build_report, report_to_dict, report_to_text
from studyapp.models import Participant, Study
from studyapp.records import judgement_records, participant_records, preference_records

AnswerRecord = TypeVar("AnswerRecord", JudgementRecord, PreferenceRecord)


def accepted(records: Iterable[AnswerRecord]) -> Iterator[AnswerRecord]:
    """Only what the study accepted is analysed.

    That is, requests the participant finished ("next" after rating every item) of
    participants who were not screened out. Partly rated lists of drop-outs and the answers of
    screened-out participants stay in the CSV exports.
    """
    for r in records:
        if r.request_completed_at is not None and r.participant_phase != Participant.Phase.SCREENED_OUT:
            yield r


def study_balance(study: Study) -> list[ConditionBalance]:
    """Participants per Latin-square condition (side by side only; the other modes use none)."""
    if study.mode != Study.Mode.SIDE_BY_SIDE:
        return []
    # The same keys, in the same order, that display.plan_slots passes to counterbalanced_order.
    systems = {str(s.pk): s.name for s in study.systems.order_by("pk")}
    return condition_balance(participant_records(study), systems, study.seed)


def build_study_report(study: Study, n_resamples: int = 2000) -> StudyReport:
    return build_report(
        accepted(judgement_records(study)), study.scale, study.k, study.mode, seed=study.seed,
        n_resamples=n_resamples, agreement_resamples=min(n_resamples, 1000),
        preferences=accepted(preference_records(study)) if study.asks_list_preference else None,
        balance=study_balance(study),
    )  # fmt: skip


def study_report(study: Study) -> dict[str, Any]:
    """Everything the researcher page shows: the text report, two inline SVG plots and the data."""
    report = build_study_report(study)
    return {
        "text": report_to_text(report),
        "metrics_svg": metric_bars_svg(report),
        "position_svg": position_bias_svg(report),
        "data": report_to_dict(report),
    }


def report_dict(study: Study) -> dict[str, Any]:
    return report_to_dict(build_study_report(study))
