"""Flat, long-format CSV exports, streamed row by row so a large study never sits in memory.

``judgements.csv`` has one row per judgement and credited system: side by side and interleaved
slots are credited to exactly one system, so there it is one row per judgement; a pooled item
returned by two systems yields two rows with the same ``judgement_id`` (one per system, each
with that system's rank). Attention-check slots yield one row with an empty system.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

from studyapp.models import Judgement, Participant, QuestionnaireAnswer, RankedList, RankingSystem, Study
from studyapp.services import completed_requests

JUDGEMENT_COLUMNS = [
    "study_id", "study_slug", "presentation_mode", "rating_scale", "study_seed",
    "participant_id", "participant_number", "external_id", "external_study_id", "external_session_id",
    "participant_phase", "is_pilot", "is_simulated", "request_id", "request_number", "is_practice", "request_text", "request_seed",
    "request_completed_at",
    "judgement_id", "system", "system_kind", "model_version", "system_rank", "list_label", "displayed_position",
    "item_id", "item_title", "label", "cant_judge", "is_attention_check", "attention_check_failed",
    "response_ms", "too_fast", "label_changes", "created_at", "updated_at",
]  # fmt: skip

PARTICIPANT_COLUMNS = [
    "study_id", "participant_id", "participant_number", "external_id", "external_study_id", "external_session_id",
    "phase", "is_pilot", "is_simulated", "consented_at", "created_at", "finished_at", "attention_failures", "requests_completed",
    "judgements", "too_fast_judgements", "history_item_ids", "user_agent",
]  # fmt: skip

QUESTIONNAIRE_COLUMNS = [
    "study_id", "participant_id", "participant_number", "is_pilot", "is_simulated", "external_id", "question_id", "question_order",
    "question", "scale_points", "value", "updated_at",
]  # fmt: skip


# Free-text cells typed by participants or taken from catalogs. A spreadsheet would run a
# cell starting with one of FORMULA_PREFIXES as a formula (CSV injection), so such cells get a
# leading apostrophe, as OWASP recommends; ids, numbers and timestamps never need it.
FREE_TEXT_COLUMNS = frozenset(
    {
        "request_text",
        "item_title",
        "question",
        "external_id",
        "external_study_id",
        "external_session_id",
        "user_agent",
    }
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(row: dict) -> dict:
    for column in FREE_TEXT_COLUMNS.intersection(row):
        value = row[column]
        if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
            row[column] = "'" + value
    return row


class _Echo:
    """A file-like object whose write returns the line, for csv.writer + streaming."""

    def write(self, value: str) -> str:
        return value


def _stream(columns: list[str], rows: Iterable[dict]) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=columns, extrasaction="raise")
    yield writer.writerow(dict(zip(columns, columns, strict=True)))
    for row in rows:
        yield writer.writerow(_neutralise(row))


def _iso(value) -> str:  # type: ignore[no-untyped-def]
    return value.isoformat() if value else ""


def judgement_rows(study: Study) -> Iterator[dict]:
    """Every judgement of a study as flat dicts (see the module docstring for the row unit)."""
    systems = {str(s.pk): s for s in RankingSystem.objects.filter(studies=study)}
    versions = {
        (request_id, str(system_id)): version
        for request_id, system_id, version in RankedList.objects.filter(
            request__participant__study=study
        ).values_list("request_id", "system_id", "version")
    }
    judgements = (
        Judgement.objects.filter(participant__study=study)
        .select_related("slot__request__participant", "slot__item")
        .order_by("participant__number", "slot__request__number", "slot__list_label", "slot__position")
    )
    for j in judgements.iterator(chunk_size=2000):
        slot, request, participant = j.slot, j.slot.request, j.slot.request.participant
        base = {
            "study_id": study.pk, "study_slug": study.slug, "presentation_mode": study.presentation_mode,
            "rating_scale": study.rating_scale, "study_seed": study.seed,
            "participant_id": participant.pk, "participant_number": participant.number,
            "external_id": participant.external_id, "external_study_id": participant.external_study_id,
            "external_session_id": participant.external_session_id, "participant_phase": participant.phase,
            "is_pilot": int(participant.is_pilot), "is_simulated": int(participant.is_simulated),
            "request_id": request.pk, "request_completed_at": _iso(request.completed_at), "request_number": request.number, "is_practice": int(request.is_practice),
            "request_text": request.text, "request_seed": request.seed,
            "judgement_id": j.pk, "list_label": slot.list_label, "displayed_position": slot.position,
            "item_id": slot.item.external_id, "item_title": slot.item.title,
            "label": "" if j.label is None else j.label, "cant_judge": int(j.label is None),
            "is_attention_check": int(slot.is_attention_check),
            "attention_check_failed": "" if request.attention_check_failed is None else int(request.attention_check_failed),
            "response_ms": "" if j.response_ms is None else j.response_ms, "too_fast": int(j.too_fast),
            "label_changes": j.changes, "created_at": _iso(j.created_at), "updated_at": _iso(j.updated_at),
        }  # fmt: skip
        credited = sorted(slot.system_ranks.items(), key=lambda kv: int(kv[0]))
        if slot.team_id is not None:
            credited = [(str(slot.team_id), slot.system_ranks.get(str(slot.team_id), ""))]
        if not credited:
            yield {**base, "system": "", "system_kind": "", "model_version": "", "system_rank": ""}
        for system_key, rank in credited:
            system = systems.get(system_key)
            yield {
                **base,
                "system": system.name if system else system_key,
                "system_kind": system.kind if system else "",
                "model_version": versions.get((request.pk, system_key), ""),
                "system_rank": rank,
            }


def participant_rows(study: Study) -> Iterator[dict]:
    participants = Participant.objects.filter(study=study).order_by("number").prefetch_related("picks__item")
    for p in participants.iterator(chunk_size=500):
        judgements = p.judgements.filter(slot__request__is_practice=False)
        yield {
            "study_id": study.pk, "participant_id": p.pk, "participant_number": p.number,
            "external_id": p.external_id, "external_study_id": p.external_study_id,
            "external_session_id": p.external_session_id, "phase": p.phase,
            "is_pilot": int(p.is_pilot), "is_simulated": int(p.is_simulated),
            "consented_at": _iso(p.consented_at), "created_at": _iso(p.created_at), "finished_at": _iso(p.finished_at),
            "attention_failures": p.attention_failures,
            "requests_completed": completed_requests(p),
            "judgements": judgements.count(), "too_fast_judgements": judgements.filter(too_fast=True).count(),
            "history_item_ids": " ".join(pick.item.external_id for pick in p.picks.all()),
            "user_agent": p.user_agent,
        }  # fmt: skip


def questionnaire_rows(study: Study) -> Iterator[dict]:
    answers = (
        QuestionnaireAnswer.objects.filter(participant__study=study)
        .select_related("participant", "item")
        .order_by("participant__number", "item__order", "item_id")
    )
    for a in answers.iterator(chunk_size=2000):
        yield {
            "study_id": study.pk, "participant_id": a.participant_id, "participant_number": a.participant.number,
            "is_pilot": int(a.participant.is_pilot), "is_simulated": int(a.participant.is_simulated),
            "external_id": a.participant.external_id, "question_id": a.item_id, "question_order": a.item.order,
            "question": a.item.text, "scale_points": a.item.scale_points, "value": a.value,
            "updated_at": _iso(a.updated_at),
        }  # fmt: skip


EXPORTS = {
    "judgements": (JUDGEMENT_COLUMNS, judgement_rows),
    "participants": (PARTICIPANT_COLUMNS, participant_rows),
    "questionnaire": (QUESTIONNAIRE_COLUMNS, questionnaire_rows),
}


def csv_response(study: Study, kind: str) -> StreamingHttpResponse:
    """A streamed CSV download of one export kind (judgements, participants, questionnaire)."""
    columns, rows = EXPORTS[kind]
    response = StreamingHttpResponse(_stream(columns, rows(study)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{kind}.csv"'
    return response
