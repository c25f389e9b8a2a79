"""Bridge from the database to the pure analysis package: rows in, report out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from studyapp import exports
from studyapp.analysis.metrics import Scale
from studyapp.analysis.report import StudyReport, build_report, report_to_dict
from studyapp.models import Participant, Study


def _origin(row: dict[str, Any]) -> str:
    if row["is_pilot"]:
        return Participant.Origin.PILOT
    return Participant.Origin.SIMULATED if row["is_simulated"] else Participant.Origin.REAL


def analysis_rows(study: Study, origin: str = Participant.Origin.REAL) -> Iterator[dict[str, Any]]:
    """Judgement rows in the analysis package's format.

    Only what the study accepted is analysed: requests the participant finished ("next"
    after rating every item) of participants who were not screened out. Partly rated lists of
    drop-outs and the answers of screened-out participants stay in the CSV export.

    Agreement units are (request text, item): relevance depends on the request, so two
    participants' labels of one item only count as overlap when they judged it for the same
    (normalised) request, as in studies with researcher-set prompts.
    """
    for row in exports.judgement_rows(study):
        if not row["request_completed_at"] or row["participant_phase"] == Participant.Phase.SCREENED_OUT:
            continue
        if _origin(row) != origin:  # pilot and simulated runs are never mixed with real data
            continue
        yield {
            "participant_id": row["participant_id"],
            "request_id": row["request_id"],
            "judgement_id": row["judgement_id"],
            "system": row["system"],
            "team": row["system"],
            "system_rank": row["system_rank"] or None,
            "displayed_position": row["displayed_position"],
            "item_id": row["item_id"],
            "unit_id": f"{row['request_text'].casefold()}|{row['item_id']}",
            "label": None if row["label"] == "" else int(row["label"]),
            "is_attention_check": bool(row["is_attention_check"]),
            "is_practice": bool(row["is_practice"]),
        }


def analysis_scale(study: Study) -> Scale:
    spec = study.scale
    return Scale(min=min(spec.values), max=max(spec.values), relevant_threshold=spec.relevant_threshold)


def build_study_report(
    study: Study, n_resamples: int = 2000, origin: str = Participant.Origin.REAL
) -> StudyReport:
    """The analysis of one group of participants: real ones (default), or the simulated ones."""
    return build_report(
        analysis_rows(study, origin), analysis_scale(study), study.k, study.presentation_mode, seed=study.seed,
        n_resamples=n_resamples, agreement_resamples=min(n_resamples, 1000),
    )  # fmt: skip


def report_dict(study: Study) -> dict[str, Any]:
    return report_to_dict(build_study_report(study))
