"""Hand-worked checks of the per-request metrics (studyapp.analysis.metrics)."""

from __future__ import annotations

from math import log2

import pytest

from studyapp.analysis.metrics import (
    condense,
    ndcg_at_k,
    precision_at_k,
    ranked_labels,
    reciprocal_rank,
    request_metrics,
)
from studyapp.design import BINARY, GRADED4, LIKERT5, Scale


def test_graded_list_with_cant_judge() -> None:
    labels = [3, 0, 2, None, 1]
    # Condensed (None dropped): [3, 0, 2, 1]; relevant (>= 2): 3 and 2.
    assert condense(labels, 5) == [3, 0, 2, 1]
    # P@5 = 2 relevant / 4 judged (denominator = judged items, not k).
    assert precision_at_k(labels, GRADED4, 5) == pytest.approx(0.5)
    # DCG = (2^3-1)/log2(2) + 0/log2(3) + (2^2-1)/log2(4) + (2^1-1)/log2(5) = 7 + 0 + 1.5 + 0.4307 = 8.9307
    # IDCG over the judged labels sorted [3, 2, 1, 0] = 7 + 3/log2(3) + 1/log2(4) + 0 = 9.3928
    dcg = 7 + 3 / log2(4) + 1 / log2(5)
    idcg = 7 + 3 / log2(3) + 1 / log2(4)
    assert ndcg_at_k(labels, GRADED4, 5) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(labels, GRADED4, 5) == pytest.approx(0.95080, abs=1e-4)
    assert reciprocal_rank(labels, GRADED4, 5) == 1.0


def test_reciprocal_rank_uses_condensed_rank() -> None:
    labels = [0, None, 1, 2]
    # Condensed [0, 1, 2]: first relevant at condensed rank 3 -> RR = 1/3 (not 1/4).
    assert reciprocal_rank(labels, GRADED4, 4) == pytest.approx(1 / 3)


def test_perfect_list() -> None:
    m = request_metrics([3, 2, 2, 1, 0], GRADED4, 5)
    assert m.ndcg == pytest.approx(1.0)
    assert m.precision == pytest.approx(3 / 5)
    assert m.rr == 1.0
    assert m.n_judged == 5
    assert request_metrics([1, 1, 1], BINARY, 3).precision == 1.0


def test_zero_relevant() -> None:
    m = request_metrics([0, 1, 0], GRADED4, 3)
    assert m.precision == 0.0
    assert m.rr == 0.0
    # Label 1 still has gain 2^1-1 = 1; ordering [0, 1, 0] vs ideal [1, 0, 0]: (1/log2 3) / 1
    assert m.ndcg == pytest.approx(1 / log2(3))
    all_zero = request_metrics([0, 0, 0], GRADED4, 3)
    assert (all_zero.precision, all_zero.ndcg, all_zero.rr) == (0.0, 0.0, 0.0)  # IDCG = 0 -> 0.0


def test_truncation_at_k() -> None:
    # Only ranks 1..2 count: the relevant item at rank 3 is ignored.
    m = request_metrics([0, 0, 3], GRADED4, 2)
    assert (m.precision, m.ndcg, m.rr, m.n_judged) == (0.0, 0.0, 0.0, 2)


def test_nothing_judged_is_none_not_zero() -> None:
    m = request_metrics([None, None], GRADED4, 2)
    assert (m.precision, m.ndcg, m.rr, m.n_judged) == (None, None, None, 0)
    assert request_metrics([], GRADED4, 5).precision is None


def test_likert_1_to_5_scale() -> None:
    labels = [2, 5, 1]
    # Normalised to 0-4: [1, 4, 0]; relevant = raw >= 4 -> only the 5.
    assert LIKERT5.normalise(5) == 4 and LIKERT5.normalise(None) is None
    assert precision_at_k(labels, LIKERT5, 3) == pytest.approx(1 / 3)
    assert reciprocal_rank(labels, LIKERT5, 3) == pytest.approx(1 / 2)
    # DCG = 1/1 + 15/log2(3) = 10.464; IDCG [4, 1, 0] = 15 + 1/log2(3) = 15.631; nDCG = 0.6694
    assert ndcg_at_k(labels, LIKERT5, 3) == pytest.approx((1 + 15 / log2(3)) / (15 + 1 / log2(3)))
    assert ndcg_at_k(labels, LIKERT5, 3) == pytest.approx(0.66944, abs=1e-4)


def test_pooled_ideal() -> None:
    # Judged-only ideal gives 1.0 for a list of uniformly mediocre items ...
    assert ndcg_at_k([1, 1], GRADED4, 2) == pytest.approx(1.0)
    # ... a pooled ideal from the whole request (another system found a 3) does not:
    # DCG = 1 + 1/log2(3) = 1.6309; IDCG [3, 1] = 7 + 1/log2(3) = 7.6309
    assert ndcg_at_k([1, 1], GRADED4, 2, ideal_labels=[3, 1, 1, None]) == pytest.approx(
        (1 + 1 / log2(3)) / (7 + 1 / log2(3))
    )


def test_ranked_labels_fills_unshown_ranks() -> None:
    assert ranked_labels([(3, 2), (1, 0), (7, 3)], k=4) == [0, None, 2, None]


def test_scale_validation() -> None:
    with pytest.raises(ValueError):
        Scale.numeric(3, 3, 3)
    with pytest.raises(ValueError):
        Scale.numeric(0, 3, 4)
    with pytest.raises(ValueError):
        Scale((0, 2, 1), ("a", "b", "c"), 1)  # values out of order
    with pytest.raises(ValueError):
        Scale((0, 1), ("only one label",), 1)
    with pytest.raises(ValueError):
        ndcg_at_k([4], GRADED4, 1)
    with pytest.raises(ValueError):
        condense([1], 0)
