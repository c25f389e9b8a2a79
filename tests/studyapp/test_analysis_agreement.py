"""Tests for Krippendorff's alpha wrapper (studyapp.analysis.agreement)."""

from __future__ import annotations

import math

import pytest

from studyapp.analysis.agreement import krippendorff_alpha

NAN = math.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders,
# 12 units, values 1-5, missing data. Published: nominal .743, ordinal .815, interval .849.
PAPER = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    "C": [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
}


def _triples(table: dict[str, list[float]]) -> list[tuple[str, str, float | None]]:
    return [
        (f"u{j}", coder, None if math.isnan(v) else v)
        for coder, row in table.items()
        for j, v in enumerate(row)
    ]


def test_perfect_agreement() -> None:
    data = [(u, c, lab) for u, lab in [("i1", 0), ("i2", 1), ("i3", 3)] for c in ("p1", "p2", "p3")]
    res = krippendorff_alpha(data, value_domain=[0, 1, 2, 3], n_resamples=100)
    assert res.alpha == pytest.approx(1.0)
    assert res.n_units == 3 and res.n_pairable_values == 9 and res.n_coders == 3


def test_krippendorff_2011_example() -> None:
    res = krippendorff_alpha(_triples(PAPER), level="ordinal", n_resamples=200)
    assert res.alpha == pytest.approx(0.815, abs=5e-4)
    # Unit 12 has a single value (coder B's 3): unpairable and excluded.
    assert res.n_units == 11
    assert res.n_pairable_values == 40
    assert res.ci_low is not None and res.ci_low <= res.alpha <= res.ci_high
    nominal = krippendorff_alpha(_triples(PAPER), level="nominal", n_resamples=10)
    assert nominal.alpha == pytest.approx(0.743, abs=5e-4)


def test_hand_worked_binary_ordinal() -> None:
    # Units (p1, p2): u1 (0, 0), u2 (1, 1), u3 (0, 1). Value counts n0 = n1 = 3, n = 6.
    # Ordinal delta(0, 1) = (n0 + n1 - (n0 + n1) / 2)^2 = 3^2 = 9.
    # Coincidences: o01 = o10 = 1 (from u3) -> D_o = (1/6)(9 + 9) = 3.
    # D_e = 1/(6*5) * (n0 n1 + n1 n0) * 9 = 162/30 = 5.4 -> alpha = 1 - 3/5.4 = 4/9.
    data = [
        ("u1", "p1", 0),
        ("u1", "p2", 0),
        ("u2", "p1", 1),
        ("u2", "p2", 1),
        ("u3", "p1", 0),
        ("u3", "p2", 1),
    ]
    res = krippendorff_alpha(data, value_domain=[0, 1], n_resamples=200, seed=1)
    assert res.alpha == pytest.approx(4 / 9)
    # Unobserved grades in the domain do not change the ordinal distances.
    assert krippendorff_alpha(data, value_domain=[0, 1, 2, 3], n_resamples=10).alpha == pytest.approx(4 / 9)


def test_disjoint_items_is_none_not_one() -> None:
    # Each participant judged different items: nothing is pairable (INCEpTION #2219 gave 1.0).
    data = [("i1", "p1", 2), ("i2", "p1", 0), ("i3", "p2", 3), ("i4", "p2", 1)]
    res = krippendorff_alpha(data)
    assert res.alpha is None and res.ci_low is None
    assert res.message == "not enough overlap: 0 items judged by two or more participants (need 2)"


def test_single_overlapping_item() -> None:
    data = [("i1", "p1", 2), ("i1", "p2", 0), ("i3", "p2", 3)]
    res = krippendorff_alpha(data)
    assert res.alpha is None
    assert res.message == "not enough overlap: 1 item judged by two or more participants (need 2)"


def test_single_participant() -> None:
    res = krippendorff_alpha([("i1", "p1", 2), ("i2", "p1", 0)])
    assert res.alpha is None and "1 participant" in res.message


def test_all_labels_equal() -> None:
    data = [(u, c, 2) for u in ("i1", "i2", "i3") for c in ("p1", "p2")]
    res = krippendorff_alpha(data, value_domain=[0, 1, 2, 3])
    assert res.alpha is None
    assert "identical" in res.message
    assert res.n_units == 3


def test_cant_judge_is_missing_and_duplicates_keep_first() -> None:
    data = [
        ("i1", "p1", 0), ("i1", "p2", 0), ("i1", "p2", 3),  # p2's second label on i1 is ignored
        ("i2", "p1", 1), ("i2", "p2", 1),
        ("i3", "p1", 0), ("i3", "p2", 1), ("i3", "p3", None),  # can't judge = missing
    ]  # fmt: skip
    res = krippendorff_alpha(data, value_domain=[0, 1], n_resamples=10)
    assert res.alpha == pytest.approx(4 / 9)
    assert res.n_pairable_values == 6


def test_bootstrap_ci_deterministic() -> None:
    a = krippendorff_alpha(_triples(PAPER), n_resamples=300, seed=5)
    b = krippendorff_alpha(_triples(PAPER), n_resamples=300, seed=5)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
