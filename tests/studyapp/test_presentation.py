"""Tests for studyapp.presentation (pure Python; no database)."""

from __future__ import annotations

from collections import Counter

import pytest

from studyapp.presentation import (
    Slot,
    counterbalanced_order,
    insert_attention_check,
    interleaving_outcome,
    pairwise_preference,
    pool,
    side_by_side,
    team_draft_interleave,
)

A = [f"a{i}" for i in range(1, 11)]
# B shares a1..a3 (in reverse order) with A, so duplicates must be handled.
B = ["a3", "b1", "a2", "b2", "a1", "b3", "b4", "b5", "b6", "b7"]


def _check_tdi_invariants(rankings: dict[str, list[str]], slots: list[Slot]) -> None:
    shown: list[str] = []
    for pos, slot in enumerate(slots, start=1):
        assert slot.position == pos
        assert slot.team in rankings
        # The team picked its highest-ranked item not already shown (the draft rule).
        expected = next(item for item in rankings[slot.team] if item not in shown)
        assert slot.item_id == expected
        assert slot.system_ranks == {
            s: lst.index(slot.item_id) + 1 for s, lst in rankings.items() if slot.item_id in lst
        }
        shown.append(slot.item_id)
    assert len(shown) == len(set(shown)), "an item was shown twice"


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [5, 6])
def test_tdi_two_systems_balanced_no_duplicates(seed: int, k: int) -> None:
    rankings = {"A": A, "B": B}
    slots = team_draft_interleave(rankings, k=k, seed=seed)
    assert len(slots) == k
    _check_tdi_invariants(rankings, slots)
    counts = Counter(s.team for s in slots)
    # One pick per team per round: each team contributes ceil(k/2) or floor(k/2) items.
    assert sorted(counts.values()) == sorted([k // 2, k - k // 2])


def test_tdi_deterministic_and_seed_dependent() -> None:
    rankings = {"A": A, "B": B}
    assert team_draft_interleave(rankings, 6, seed=7) == team_draft_interleave(rankings, 6, seed=7)
    variants = {
        tuple((s.item_id, s.team) for s in team_draft_interleave(rankings, 6, seed=s)) for s in range(20)
    }
    assert len(variants) > 1


def test_tdi_multileaving_three_systems() -> None:
    rankings = {"A": A, "B": B, "C": ["c1", "a1", "c2", "b1", "c3", "c4"]}
    slots = team_draft_interleave(rankings, k=6, seed=3)
    _check_tdi_invariants(rankings, slots)
    assert Counter(s.team for s in slots) == {"A": 2, "B": 2, "C": 2}


def test_tdi_exhausted_team_is_skipped() -> None:
    rankings = {"A": ["x"], "B": ["x", "y", "z"]}
    slots = team_draft_interleave(rankings, k=5, seed=0)
    assert [s.item_id for s in slots] == ["x", "y", "z"]  # stops when every list is exhausted
    _check_tdi_invariants(rankings, slots)


def test_pool_shows_shared_items_once_credited_to_both() -> None:
    rankings = {"A": ["x", "y", "z", "deep"], "B": ["y", "w", "x"]}
    slots = pool(rankings, k=3, seed=1)
    ids = [s.item_id for s in slots]
    assert sorted(ids) == ["w", "x", "y", "z"]  # "deep" is below A's top 3
    assert [s.position for s in slots] == [1, 2, 3, 4]
    by_id = {s.item_id: s for s in slots}
    assert by_id["x"].system_ranks == {"A": 1, "B": 3}
    assert by_id["y"].system_ranks == {"A": 2, "B": 1}
    assert by_id["w"].system_ranks == {"B": 2}
    assert all(s.team is None for s in slots)
    assert pool(rankings, 3, seed=1) == slots
    assert pool(dict(reversed(rankings.items())), 3, seed=1) == slots  # independent of dict order


def test_side_by_side_blinded_and_seeded() -> None:
    rankings = {"A-sys": A, "B-sys": B}
    lists = side_by_side(rankings, seed=5, k=3)
    assert [sl.label for sl in lists] == ["A", "B"]
    assert {sl.system for sl in lists} == {"A-sys", "B-sys"}
    assert lists == side_by_side(rankings, seed=5, k=3)
    for sl in lists:
        assert [s.item_id for s in sl.slots] == rankings[sl.system][:3]
        assert all(s.list_label == sl.label for s in sl.slots)
    assert {side_by_side(rankings, seed=s)[0].system for s in range(20)} == {"A-sys", "B-sys"}
    fixed = side_by_side(rankings, seed=0, order=["B-sys", "A-sys"])
    assert [sl.system for sl in fixed] == ["B-sys", "A-sys"]
    with pytest.raises(ValueError):
        side_by_side(rankings, seed=0, order=["B-sys"])


@pytest.mark.parametrize("systems", [["x", "y"], ["x", "y", "z"], ["p", "q", "r", "s"]])
def test_counterbalanced_order_balanced_over_rotation(systems: list[str]) -> None:
    m = len(systems)
    # Within a participant over m consecutive requests (from any start) ...
    for participant in range(3):
        for start in range(3):
            seen = Counter()
            for r in range(start, start + m):
                order = counterbalanced_order(systems, participant, r, seed=11)
                assert sorted(order) == sorted(systems)
                seen.update(enumerate(order))
            assert set(seen.values()) == {1} and len(seen) == m * m
    # ... and across m consecutive participants at a fixed request.
    for r in range(3):
        seen = Counter()
        for participant in range(5, 5 + m):
            seen.update(enumerate(counterbalanced_order(systems, participant, r, seed=11)))
        assert set(seen.values()) == {1} and len(seen) == m * m


def test_counterbalanced_order_seeded_start() -> None:
    starts = {counterbalanced_order(["x", "y", "z"], 0, 0, seed=s)[0] for s in range(30)}
    assert starts == {"x", "y", "z"}
    assert counterbalanced_order(["y", "x"], 0, 0, seed=3) == counterbalanced_order(["x", "y"], 0, 0, seed=3)


def test_insert_attention_check() -> None:
    slots = team_draft_interleave({"A": A, "B": B}, k=5, seed=2)
    new, position = insert_attention_check(slots, "check-1", seed=9)
    assert 1 <= position <= 6
    assert len(new) == 6
    assert [s.position for s in new] == [1, 2, 3, 4, 5, 6]
    check = new[position - 1]
    assert check.item_id == "check-1" and check.is_attention_check and check.team is None
    assert [s.item_id for s in new if not s.is_attention_check] == [s.item_id for s in slots]
    assert [s.position for s in slots] == [1, 2, 3, 4, 5]  # input not mutated
    assert insert_attention_check(slots, "check-1", seed=9) == (new, position)
    positions = {insert_attention_check(slots, "c", seed=s)[1] for s in range(60)}
    assert positions == {1, 2, 3, 4, 5, 6}
    with pytest.raises(ValueError):
        insert_attention_check(new, "check-1", seed=0)


def test_interleaving_outcome_and_preference() -> None:
    slots = [
        Slot("i1", 1, team="A"),
        Slot("i2", 2, team="B"),
        Slot("i3", 3, team="A"),
        Slot("i4", 4, team="B"),
        Slot("chk", 5, is_attention_check=True),
    ]
    labels = {"i1": 3, "i2": None, "i3": 2, "i4": 1, "chk": 3}
    credit = interleaving_outcome(slots, labels, relevant_threshold=2)
    assert credit == {"A": 2, "B": 0}  # i2 can't-judge and i4 below threshold are not clicks
    assert pairwise_preference(credit, "A", "B") == "win"
    assert pairwise_preference(credit, "B", "A") == "loss"
    assert pairwise_preference({"A": 1, "B": 1}, "A", "B") == "tie"
    assert interleaving_outcome(slots, {}, 2, systems=["A", "B", "C"]) == {"A": 0, "B": 0, "C": 0}
