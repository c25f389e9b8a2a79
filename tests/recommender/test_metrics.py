"""Per-case metrics (ranx) on hand-worked rankings, and the bootstrap / paired statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.metrics import bootstrap_ci, mean_metrics, paired_comparison, per_case_metrics


def test_perfect_ranking_scores_one_everywhere() -> None:
    m = per_case_metrics([["a", "b", "c"]], [{"a", "b"}])
    assert {k: float(v[0]) for k, v in m.items()} == {
        "recall@10": 1.0,
        "recall@50": 1.0,
        "ndcg@10": pytest.approx(1.0),
        "mrr@100": 1.0,
    }


def test_zero_hit_and_empty_ranking_score_zero() -> None:
    m = per_case_metrics([["x", "y"], []], [{"a"}, {"a"}])
    assert all(v.tolist() == [0.0, 0.0] for v in m.values())


def test_hand_worked_ranking() -> None:
    # relevant {b, z}: b at rank 2, z never ranked; the 11th item is relevant only for recall@50.
    ranking = ["a", "b", *[f"n{i}" for i in range(8)], "c"]
    m = per_case_metrics([ranking], [{"b", "c", "z"}])
    assert m["recall@10"][0] == pytest.approx(1 / 3)
    assert m["recall@50"][0] == pytest.approx(2 / 3)
    assert m["mrr@100"][0] == pytest.approx(1 / 2)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@10"][0] == pytest.approx((1 / math.log2(3)) / ideal)


def test_a_case_without_relevant_items_is_refused() -> None:
    with pytest.raises(ValueError, match="no relevant"):
        per_case_metrics([["a"]], [set()])


def test_mean_metrics_counts_cases_and_is_nan_without_any() -> None:
    assert mean_metrics({"recall@10": np.array([1.0, 0.0])}) == {"recall@10": 0.5, "n_cases": 2.0}
    empty = mean_metrics({"recall@10": np.zeros(0)})
    assert math.isnan(empty["recall@10"]) and empty["n_cases"] == 0.0


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_more_cases() -> None:
    rng = np.random.default_rng(1)
    small = rng.random(30) < 0.4
    large = rng.random(3000) < 0.4
    lo_s, hi_s = bootstrap_ci(small.astype(float))
    lo_l, hi_l = bootstrap_ci(large.astype(float))
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)


def test_paired_comparison_detects_a_real_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(2)
    b = (rng.random(400) < 0.3).astype(float)
    a = np.maximum(b, (rng.random(400) < 0.2).astype(float))  # a = b plus extra hits
    p = paired_comparison(a, b)
    assert p.diff > 0 and p.diff_ci[0] > 0 and p.wilcoxon_p < 0.001
    assert p.relative == pytest.approx(p.diff / b.mean())
    same = paired_comparison(b, b)
    assert same.diff == 0 and same.diff_ci == (0.0, 0.0) and same.wilcoxon_p == 1.0
    with pytest.raises(ValueError, match="same cases"):
        paired_comparison(a, b[:-1])
