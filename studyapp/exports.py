"""Flat, long-format CSV exports, streamed row by row so a large study never sits in memory.

``judgements.csv`` has one row per judgement and credited system: side by side and interleaved
slots are credited to exactly one system, so there it is one row per judgement; a pooled item
returned by two systems yields two rows with the same ``judgement_id`` (one per system, each
with that system's rank). Attention-check slots yield one row with an empty system.
Rows are written from the typed records of :mod:`studyapp.records`, which the analysis reads too.

``preferences.csv`` has one row per side-by-side request whose "which list is better?" question
was answered: the displayed label, the system behind it (unblinded; empty for "no difference")
and every list shown with its system (``lists_shown``, e.g. ``A=Blend; B=Zero-shot``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.http import StreamingHttpResponse

from studyapp.models import Participant, QuestionnaireAnswer, Study
from studyapp.records import judgement_records, preference_records
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

PREFERENCE_COLUMNS = [
    "study_id", "participant_id", "participant_number", "external_id", "participant_phase",
    "is_pilot", "is_simulated", "request_id", "request_number", "is_practice", "request_text", "request_completed_at",
    "list_label", "no_difference", "system", "system_kind", "lists_shown", "updated_at",
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
        # Typed by researchers (system names) or read from checkpoint files (versions): text too.
        "system",
        "system_kind",
        "model_version",
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


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _cell(value: object) -> object:
    """A typed value as a CSV cell: None -> empty, bool -> 0/1, datetime -> ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def judgement_rows(study: Study) -> Iterator[dict]:
    """Every judgement of a study as flat dicts (see the module docstring for the row unit)."""
    design = {
        "study_id": study.pk, "study_slug": study.slug, "presentation_mode": study.presentation_mode,
        "rating_scale": study.rating_scale, "study_seed": study.seed,
    }  # fmt: skip
    for r in judgement_records(study):
        base = {
            **design,
            "participant_id": r.participant_id, "participant_number": r.participant_number,
            "external_id": r.external_id, "external_study_id": r.external_study_id,
            "external_session_id": r.external_session_id, "participant_phase": r.participant_phase,
            "is_pilot": r.is_pilot, "is_simulated": r.is_simulated,
            "request_id": r.request_id, "request_number": r.request_number, "is_practice": r.is_practice,
            "request_text": r.request_text, "request_seed": r.request_seed,
            "request_completed_at": r.request_completed_at,
            "judgement_id": r.judgement_id, "list_label": r.list_label, "displayed_position": r.displayed_position,
            "item_id": r.item_id, "item_title": r.item_title,
            "label": r.label, "cant_judge": r.label is None, "is_attention_check": r.is_attention_check,
            "attention_check_failed": r.attention_check_failed,
            "response_ms": r.response_ms, "too_fast": r.too_fast, "label_changes": r.label_changes,
            "created_at": r.created_at, "updated_at": r.updated_at,
        }  # fmt: skip
        for credit in r.credits or (None,):
            row = {
                **base,
                "system": credit.system if credit else "",
                "system_kind": credit.system_kind if credit else "",
                "model_version": credit.model_version if credit else "",
                "system_rank": credit.rank if credit else None,
            }
            yield {column: _cell(value) for column, value in row.items()}


def preference_rows(study: Study) -> Iterator[dict]:
    """One row per answered "which list is better?" question, with the chosen system unblinded."""
    for r in preference_records(study):
        row = {
            "study_id": study.pk, "participant_id": r.participant_id, "participant_number": r.participant_number,
            "external_id": r.external_id, "participant_phase": r.participant_phase,
            "is_pilot": r.is_pilot, "is_simulated": r.is_simulated,
            "request_id": r.request_id, "request_number": r.request_number, "is_practice": r.is_practice,
            "request_text": r.request_text, "request_completed_at": r.request_completed_at,
            "list_label": r.list_label, "no_difference": not r.list_label,
            "system": r.system or "", "system_kind": r.system_kind,
            "lists_shown": "; ".join(f"{label}={system}" for label, system in r.lists),
            "updated_at": r.updated_at,
        }  # fmt: skip
        yield {column: _cell(value) for column, value in row.items()}


def participant_rows(study: Study) -> Iterator[dict]:
    participants = Participant.objects.filter(study=study).order_by("number").prefetch_related("picks__item")
    for p in participants.iterator(chunk_size=500):
        judgements = p.judgements.filter(slot__request__is_practice=False)
        yield {
            "study_id": study.pk, "participant_id": p.pk, "participant_number": p.number,
            "external_id": p.external_id, "external_study_id": p.external_study_id,
            "external_session_id": p.external_session_id, "phase": p.phase,
            "is_pilot": _cell(p.is_pilot), "is_simulated": _cell(p.is_simulated),
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
            "is_pilot": _cell(a.participant.is_pilot), "is_simulated": _cell(a.participant.is_simulated),
            "external_id": a.participant.external_id, "question_id": a.item_id, "question_order": a.item.order,
            "question": a.item.text, "scale_points": a.item.scale_points, "value": a.value,
            "updated_at": _iso(a.updated_at),
        }  # fmt: skip


EXPORTS = {
    "judgements": (JUDGEMENT_COLUMNS, judgement_rows),
    "participants": (PARTICIPANT_COLUMNS, participant_rows),
    "questionnaire": (QUESTIONNAIRE_COLUMNS, questionnaire_rows),
    "preferences": (PREFERENCE_COLUMNS, preference_rows),
}


def csv_response(study: Study, kind: str) -> StreamingHttpResponse:
    """A streamed CSV download of one export kind (judgements, participants, questionnaire, preferences)."""
    columns, rows = EXPORTS[kind]
    response = StreamingHttpResponse(_stream(columns, rows(study)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{kind}.csv"'
    return response
