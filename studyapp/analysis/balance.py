"""Counterbalancing achieved: how many participants each Latin-square condition got.

Side by side, the order of the systems follows a cyclic Latin square over participants
(:func:`studyapp.presentation.counterbalanced_order`). A participant's condition is assigned
when they start the tasks, so visits abandoned at consent or onboarding take none; this table
shows whether the conditions ended up balanced among those who started and those who finished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from studyapp.presentation import LABELS, counterbalanced_order

from .records import ParticipantRecord


@dataclass(frozen=True)
class ConditionBalance:
    condition: int  # Latin-square row, 0-based
    first_request_order: str  # e.g. "A = Blend, B = Zero-shot" on the first real request
    n_started: int
    n_finished: int
    n_screened_out: int


def condition_balance(
    participants: Iterable[ParticipantRecord], systems: Mapping[str, str], seed: int
) -> list[ConditionBalance]:
    """Participants per condition; ``systems`` maps the keys the study orders by to names.

    Condition ``c`` (1-based, as stored) is Latin-square row ``c mod m`` for ``m`` systems:
    every ``m`` consecutive conditions cover each order once.
    """
    keys = list(systems)
    m = len(keys)
    if m == 0:
        return []
    rows = {g: [0, 0, 0] for g in range(m)}
    for p in participants:
        if p.condition is None:
            continue
        counts = rows[p.condition % m]
        counts[0] += 1
        counts[1] += p.finished
        counts[2] += p.screened_out
    out = []
    for g, (started, finished, screened) in rows.items():
        order = counterbalanced_order(keys, g, 1, seed=seed)
        text = ", ".join(f"{label} = {systems[k]}" for label, k in zip(LABELS, order, strict=False))
        out.append(ConditionBalance(g, text, started, finished, screened))
    return out
