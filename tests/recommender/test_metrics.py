from __future__ import annotations

import math

import pytest

from recommender.metrics import aggregate, mrr, ndcg_at_k, recall_at_k, user_metrics


def test_perfect_ranking_scores_one() -> None:
    ranked = ["a", "b", "c", "d"]
    relevant = {"a", "b"}
    assert recall_at_k(ranked, relevant, 2) == 1.0
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(1.0)
    assert mrr(ranked, relevant) == 1.0


def test_zero_hit_ranking_scores_zero() -> None:
    ranked = ["x", "y", "z"]
    relevant = {"a"}
    assert recall_at_k(ranked, relevant, 10) == 0.0
    assert ndcg_at_k(ranked, relevant, 10) == 0.0
    assert mrr(ranked, relevant) == 0.0


def test_hand_worked_example() -> None:
    # Relevant items at ranks 2 and 4 of the top 4; a third relevant item is not retrieved.
    ranked = ["x", "a", "y", "b", "c"]
    relevant = {"a", "b", "z"}
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, relevant, 1) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / idcg)
    assert mrr(ranked, relevant) == pytest.approx(0.5)


def test_empty_relevant_and_aggregate() -> None:
    assert recall_at_k(["a"], set(), 10) == 0.0
    rows = [user_metrics(["a", "b"], {"a"}), user_metrics(["a", "b"], {"b"})]
    agg = aggregate(rows)
    assert agg["mrr"] == pytest.approx(0.75)
    assert agg["recall@10"] == 1.0
    assert agg["n_users"] == 2
    # No users: NaN metrics (not missing keys, so ["recall@10"] never raises).
    empty = aggregate([])
    assert empty["n_users"] == 0.0
    assert all(math.isnan(empty[k]) for k in ("recall@10", "recall@50", "ndcg@10", "mrr"))
