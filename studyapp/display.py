"""Turn the systems' ranked lists into what the participant sees, per presentation mode."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace

from recommender.ranking import RankedList
from studyapp import presentation
from studyapp.models import RankingSystem, Request, Slot, Study


def plan_slots(
    request: Request, rankings: dict[RankingSystem, RankedList], check_item: str | None
) -> list[presentation.Slot]:
    """The displayed slots for a request (pure: no writes).

    Side by side uses the counterbalanced Latin-square order of systems over participants'
    conditions (assigned when they start the tasks) and requests, so each system appears on
    each side equally often; the other modes are seeded by the request's own seed, which is
    stored with it.
    """
    study = request.participant.study
    by_key = {str(system.pk): ranked.item_ids for system, ranked in rankings.items()}
    mode = study.presentation_mode
    if mode == Study.Mode.SIDE_BY_SIDE:
        participant = request.participant
        # The condition is assigned when the tasks start; arrival order only for rows from
        # before conditions existed (the migration copied it for those who had started).
        position = participant.condition if participant.condition is not None else participant.number
        order = presentation.counterbalanced_order(list(by_key), position, request.number, seed=study.seed)
        shown = [lst.slots for lst in presentation.side_by_side(by_key, request.seed, k=study.k, order=order)]
        if check_item is not None:
            target = random.Random(f"{request.seed}:check-list").randrange(len(shown))
            shown[target] = _swap_in_check(shown[target], check_item, request.seed)
        return [slot for slots in shown for slot in slots]
    if mode == Study.Mode.INTERLEAVED:
        slots = presentation.team_draft_interleave(by_key, study.k, request.seed)
    else:
        slots = presentation.pool(by_key, study.k, request.seed)
    if check_item is not None:
        slots, _ = presentation.insert_attention_check(slots, check_item, request.seed)
    return slots


def _swap_in_check(slots: list[presentation.Slot], check_item: str, seed: int) -> list[presentation.Slot]:
    """Put the check at a uniform position 1..k in place of the list's last real item.

    The list stays k long: one longer than the others would tell participants where the
    check is. The k-th item is dropped *before* the check goes in, so every position 1..k is
    equally likely (inserting into all k items first and dropping the last real one after
    would put the check last twice as often).
    """
    if not slots:
        return slots
    # The label is passed, not read from slots[:-1]: with k = 1 that is empty.
    with_check, _ = presentation.insert_attention_check(
        slots[:-1], check_item, seed, list_label=slots[0].list_label
    )
    return [replace(slot, position=i) for i, slot in enumerate(with_check, start=1)]


def slot_rows(request: Request, planned: list[presentation.Slot], item_pks: Mapping[str, int]) -> list[Slot]:
    """The planned slots as unsaved rows of the request.

    ``item_pks`` maps external ids to Item pks (:func:`studyapp.ranking_service.item_pks`,
    cached per catalog version), so the rows need no item lookup.
    """
    return [
        Slot(
            request=request,
            list_label=s.list_label,
            position=s.position,
            item_id=item_pks[s.item_id],
            team_id=int(s.team) if s.team else None,
            system_ranks=s.system_ranks,
            is_attention_check=s.is_attention_check,
        )
        for s in planned
    ]


def save_slots(request: Request, planned: list[presentation.Slot], item_pks: Mapping[str, int]) -> None:
    """Write the planned slots in one bulk insert; call inside the transaction that stores the lists."""
    Slot.objects.bulk_create(slot_rows(request, planned, item_pks))
