"""How recommendation lists are shown to participants (pure Python, no Django).

Three presentation modes, all deterministic given a seed (``random.Random(seed)``) so a
session can be re-rendered exactly and audited afterwards:

* :func:`side_by_side` - one blinded list per system, labelled "A", "B", ...
* :func:`team_draft_interleave` - one merged list built by Team-Draft Interleaving
  (Radlinski, Kurup & Joachims, "How does clickthrough data reflect retrieval quality?",
  CIKM 2008), generalised to more than two systems as Team-Draft Multileaving (Schuth et al.,
  "Multileaved comparisons for fast online evaluation", CIKM 2014).
* :func:`pool` - the union of every system's top k, shown once in shuffled order
  (depth-k pooling as in TREC, but with the participant as assessor).

Relevance judgements on the shown items are turned into interleaving credit by
:func:`interleaving_outcome` / :func:`pairwise_preference`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

Preference = Literal["win", "tie", "loss"]


@dataclass(frozen=True)
class Slot:
    """One displayed item.

    ``position`` is 1-based within the displayed list; ``list_label`` is "A"/"B"/... in
    side-by-side mode and "" for a single merged list; ``team`` is the system credited with
    the item under interleaving (None for pooled items and attention checks);
    ``system_ranks`` maps each system that ranks the item to its 1-based rank there.
    """

    item_id: str
    position: int
    list_label: str = ""
    team: str | None = None
    system_ranks: dict[str, int] = field(default_factory=dict)
    is_attention_check: bool = False


@dataclass(frozen=True)
class ShownList:
    """A blinded list in side-by-side mode: the label is shown, the system is not."""

    label: str
    system: str
    slots: list[Slot]


def _dedup(items: Sequence[str]) -> list[str]:
    # A system may (buggily) return an item twice; the first occurrence defines its rank.
    return list(dict.fromkeys(items))


def _ranks(rankings: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    return {s: {item: r for r, item in enumerate(_dedup(lst), start=1)} for s, lst in rankings.items()}


def counterbalanced_order(
    systems: Sequence[str], participant_index: int, request_index: int, seed: int = 0
) -> list[str]:
    """Order of systems (left to right / label A, B, ...) for one participant and request.

    Scheme: a cyclic Latin square. The systems are sorted, a study-wide rotation ``shift`` is
    drawn once from ``seed``, and request ``r`` of participant ``p`` uses the rotation
    ``(shift + p + r) mod m``. Hence, for ``m`` systems:

    * every participant sees each system in each position exactly once per block of ``m``
      consecutive requests (balance within participant), and
    * at any fixed request index, ``m`` consecutive participants also cover every system in
      every position once (balance across participants).

    The seeded shift only decides which system starts on the left, so no system is always
    "A" for participant 0 across studies.
    """
    base = sorted(dict.fromkeys(systems))
    m = len(base)
    if m == 0:
        return []
    shift = random.Random(seed).randrange(m)
    rot = (shift + participant_index + request_index) % m
    return base[rot:] + base[:rot]


def side_by_side(
    rankings: Mapping[str, Sequence[str]],
    seed: int | str,
    k: int | None = None,
    order: Sequence[str] | None = None,
) -> list[ShownList]:
    """Blinded side-by-side lists, labelled "A", "B", ...

    Which system gets which label is drawn by ``random.Random(seed)`` unless ``order`` is
    given (e.g. from :func:`counterbalanced_order`, which balances sides over a rotation).
    Each list is truncated to ``k`` items when ``k`` is given.
    """
    systems = sorted(rankings)
    if order is None:
        random.Random(seed).shuffle(systems)
    else:
        if sorted(order) != systems:
            raise ValueError("order must be a permutation of the ranked systems")
        systems = list(order)
    if len(systems) > len(LABELS):
        raise ValueError("too many systems for single-letter labels")
    shown = []
    for label, system in zip(LABELS, systems, strict=False):
        items = _dedup(rankings[system])[:k] if k is not None else _dedup(rankings[system])
        slots = [
            Slot(item_id=item, position=i, list_label=label, team=system, system_ranks={system: i})
            for i, item in enumerate(items, start=1)
        ]
        shown.append(ShownList(label=label, system=system, slots=slots))
    return shown


def team_draft_interleave(rankings: Mapping[str, Sequence[str]], k: int, seed: int | str) -> list[Slot]:
    """Team-Draft Interleaving / Multileaving of ``rankings`` into one list of ``k`` items.

    Each round the teams (systems) pick in an order drawn by the seeded RNG; each adds its
    highest-ranked item not yet in the combined list and is recorded as that slot's team.
    With two systems this is TDI of Radlinski et al. (2008) - a per-round coin flip decides
    who picks first, which is the same as "the team with fewer picks goes next, ties broken
    by a coin" while neither list is exhausted; with more it is Team-Draft Multileaving
    (Schuth et al. 2014). A team whose list is exhausted is skipped, so items are never
    shown twice. ``system_ranks`` records the item's rank in every system's full list.
    """
    ranks = _ranks(rankings)
    lists = {s: _dedup(rankings[s]) for s in rankings}
    teams = sorted(rankings)
    rng = random.Random(seed)
    shown: set[str] = set()
    cursor = dict.fromkeys(teams, 0)  # next index to inspect in each team's list
    slots: list[Slot] = []
    while len(slots) < k:
        order = teams[:]
        rng.shuffle(order)
        picked_this_round = False
        for team in order:
            if len(slots) >= k:
                break
            lst = lists[team]
            while cursor[team] < len(lst) and lst[cursor[team]] in shown:
                cursor[team] += 1
            if cursor[team] >= len(lst):
                continue  # exhausted team: skip rather than show a duplicate
            item = lst[cursor[team]]
            shown.add(item)
            slots.append(
                Slot(
                    item_id=item,
                    position=len(slots) + 1,
                    team=team,
                    system_ranks={s: r[item] for s, r in ranks.items() if item in r},
                )
            )
            picked_this_round = True
        if not picked_this_round:
            break  # all lists exhausted before k items
    return slots


def pool(rankings: Mapping[str, Sequence[str]], k: int, seed: int | str) -> list[Slot]:
    """Union of each system's top ``k``, each item shown once in a seeded shuffled order.

    Every slot is credited (``system_ranks``) to every system that returned the item in its
    top ``k``, with that system's rank; ranks below ``k`` are deliberately not recorded so
    per-system metrics@k only use the items that system put in its top ``k``. ``team`` is None.
    """
    tops = {s: _dedup(lst)[:k] for s, lst in rankings.items()}
    union = sorted({item for lst in tops.values() for item in lst})  # sorted: independent of dict order
    random.Random(seed).shuffle(union)
    return [
        Slot(
            item_id=item,
            position=i,
            system_ranks={s: lst.index(item) + 1 for s, lst in sorted(tops.items()) if item in lst},
        )
        for i, item in enumerate(union, start=1)
    ]


def insert_attention_check(
    slots: Sequence[Slot], check_item_id: str, seed: int | str, list_label: str | None = None
) -> tuple[list[Slot], int]:
    """Insert a known-irrelevant item at a seeded position (1..len+1) and renumber.

    Returns the new list (inputs are not mutated) and the 1-based position of the check.
    The check slot has no team and no system ranks, so it never earns credit or enters metrics.
    ``list_label`` names the list the check joins; pass it when ``slots`` may be empty (a
    side-by-side list of k = 1 whose one item the check replaces), else it is taken from them.
    """
    if any(s.item_id == check_item_id for s in slots):
        raise ValueError(f"attention-check item {check_item_id!r} is already in the list")
    position = random.Random(seed).randint(1, len(slots) + 1)
    label = list_label if list_label is not None else (slots[0].list_label if slots else "")
    check = Slot(item_id=check_item_id, position=position, list_label=label, is_attention_check=True)
    out = list(slots[: position - 1]) + [check] + list(slots[position - 1 :])
    return [replace(s, position=i) for i, s in enumerate(out, start=1)], position


def interleaving_outcome(
    slots: Sequence[Slot],
    labels: Mapping[str, int | float | None],
    relevant_threshold: float,
    systems: Sequence[str] | None = None,
) -> dict[str, int]:
    """Team-draft credit per system: the number of "clicked" items each team contributed.

    A click is an item judged relevant (``label >= relevant_threshold``, same units as the
    labels); "can't judge" (None) and unjudged items are no click. Attention checks and
    slots without a team earn nothing. ``systems`` pre-seeds zero credit for teams that
    contributed nothing (otherwise every team present in ``slots``).
    """
    credit: dict[str, int] = dict.fromkeys(systems or [], 0)
    for slot in slots:
        if slot.team is not None and not slot.is_attention_check:
            credit.setdefault(slot.team, 0)
    for slot in slots:
        if slot.team is None or slot.is_attention_check:
            continue
        label = labels.get(slot.item_id)
        if label is not None and label >= relevant_threshold:
            credit[slot.team] += 1
    return credit


def pairwise_preference(credit: Mapping[str, int], system_a: str, system_b: str) -> Preference:
    """Per-request outcome for ``system_a`` against ``system_b``: more credit wins (TDI rule)."""
    a, b = credit.get(system_a, 0), credit.get(system_b, 0)
    return "win" if a > b else "loss" if a < b else "tie"
