"""One query per kind of answer -> typed records (:mod:`studyapp.analysis.records`).

The CSV exports (:mod:`studyapp.exports`) and the analysis (:mod:`studyapp.reporting`) both
read these records, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q

from studyapp.analysis.records import Credit, JudgementRecord, ParticipantRecord, PreferenceRecord
from studyapp.models import Judgement, ListPreference, Participant, RankedList, RankingSystem, Slot, Study


def judgement_records(study: Study) -> Iterator[JudgementRecord]:
    """Every judgement of a study, ordered by participant, request, list and position."""
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
        credits = _credits(slot, systems, versions)
        yield JudgementRecord(
            participant_id=participant.pk, participant_number=participant.number,
            participant_phase=participant.phase, external_id=participant.external_id,
            external_study_id=participant.external_study_id, external_session_id=participant.external_session_id,
            request_id=request.pk, request_number=request.number, is_practice=request.is_practice,
            request_text=request.text, request_seed=request.seed, request_completed_at=request.completed_at,
            attention_check_failed=request.attention_check_failed,
            judgement_id=j.pk, list_label=slot.list_label, displayed_position=slot.position,
            item_id=slot.item.external_id, item_title=slot.item.title, label=j.label,
            is_attention_check=slot.is_attention_check, credits=credits,
            team=_name(systems, slot.team_id),
            response_ms=j.response_ms, too_fast=j.too_fast, label_changes=j.changes,
            created_at=j.created_at, updated_at=j.updated_at,
        )  # fmt: skip


def _name(systems: dict[str, RankingSystem], system_id: int | None) -> str | None:
    """A system's name by id (the id itself if the system left the study), None for no system."""
    if system_id is None:
        return None
    system = systems.get(str(system_id))
    return system.name if system else str(system_id)


def _credits(
    slot: Slot, systems: dict[str, RankingSystem], versions: dict[tuple[int, str], str]
) -> tuple[Credit, ...]:
    # Side by side and interleaving credit the slot to its list's / team's system only, even
    # when another system also ranked the item; pooling credits every system that ranked it.
    ranks = sorted(slot.system_ranks.items(), key=lambda kv: int(kv[0]))
    if slot.team_id is not None:
        ranks = [(str(slot.team_id), slot.system_ranks.get(str(slot.team_id)))]
    out = []
    for key, rank in ranks:
        system = systems.get(key)
        out.append(
            Credit(
                system=system.name if system else key,
                rank=None if rank in (None, "") else int(rank),
                system_kind=system.kind if system else "",
                model_version=versions.get((slot.request_id, key), ""),
            )
        )
    return tuple(out)


def preference_records(study: Study) -> Iterator[PreferenceRecord]:
    """Every "which list is better?" answer, one per request, with the lists unblinded."""
    names = {str(s.pk): s for s in RankingSystem.objects.filter(studies=study)}
    shown: dict[int, dict[str, str]] = {}
    for request_id, label, team_id in (
        Slot.objects.filter(request__participant__study=study, request__preference__isnull=False)
        .exclude(team_id=None)
        .values_list("request_id", "list_label", "team_id")
        .distinct()
    ):
        shown.setdefault(request_id, {})[label] = _name(names, team_id) or ""
    preferences = (
        ListPreference.objects.filter(request__participant__study=study)
        .select_related("request__participant")
        .order_by("request__participant__number", "request__number")
    )
    for pref in preferences.iterator(chunk_size=2000):
        request, participant = pref.request, pref.request.participant
        yield PreferenceRecord(
            participant_id=participant.pk, participant_number=participant.number,
            participant_phase=participant.phase, external_id=participant.external_id,
            request_id=request.pk, request_number=request.number, is_practice=request.is_practice,
            request_text=request.text, request_completed_at=request.completed_at,
            list_label=pref.list_label,
            system=_name(names, pref.system_id),
            system_kind=names[str(pref.system_id)].kind if str(pref.system_id) in names else "",
            lists=tuple(sorted(shown.get(request.pk, {}).items())), updated_at=pref.updated_at,
        )  # fmt: skip


def participant_records(study: Study) -> Iterator[ParticipantRecord]:
    """Each participant's counterbalancing condition and progress."""
    participants = Participant.objects.filter(study=study).annotate(
        n_completed=Count(
            "requests", filter=Q(requests__is_practice=False, requests__completed_at__isnull=False)
        )
    )
    for p in participants.order_by("number"):
        yield ParticipantRecord(
            participant_id=p.pk,
            condition=p.condition,
            finished=p.phase == Participant.Phase.DONE,
            screened_out=p.phase == Participant.Phase.SCREENED_OUT,
            requests_completed=p.n_completed,
        )
