"""Top-k ranking metrics with binary relevance, and their average over users.

Every function takes ``ranked`` (ids best first; any hashable ids, e.g. strings or row
numbers) and ``relevant`` (the set of correct ids) and returns a float in [0, 1].
A user with no relevant items scores 0 everywhere (callers normally skip such users).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence

import numpy as np


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant items that appear in the top ``k``."""
    if not relevant or k <= 0:
        return 0.0
    hits = sum(1 for item in ranked[:k] if item in relevant)
    return hits / len(relevant)


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary gains.

    DCG = sum over hits at 1-based rank r of 1 / log2(r + 1); the ideal DCG puts
    min(k, |relevant|) hits at the top.
    """
    if not relevant or k <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / ideal


def mrr(ranked: Iterable[Hashable], relevant: Collection[Hashable]) -> float:
    """Reciprocal rank of the first relevant item (0 if none is ranked)."""
    if not relevant:
        return 0.0
    for r, item in enumerate(ranked, start=1):
        if item in relevant:
            return 1.0 / r
    return 0.0


def user_metrics(
    ranked: Sequence[Hashable], relevant: Collection[Hashable], ks: Sequence[int] = (10, 50)
) -> dict[str, float]:
    """All metrics for one user: ``recall@k`` for each k, ``ndcg@10`` and ``mrr``."""
    out = {f"recall@{k}": recall_at_k(ranked, relevant, k) for k in ks}
    out["ndcg@10"] = ndcg_at_k(ranked, relevant, 10)
    out["mrr"] = mrr(ranked, relevant)
    return out


DEFAULT_KEYS = ("recall@10", "recall@50", "ndcg@10", "mrr")  # what user_metrics returns by default


def aggregate(
    per_user: Iterable[Mapping[str, float]], keys: Sequence[str] = DEFAULT_KEYS
) -> dict[str, float]:
    """Mean of each metric over users (macro average); ``n_users`` is how many were averaged.

    With no users every metric in ``keys`` is NaN (not missing), so ``result["recall@10"]``
    never raises and callers can test ``math.isnan``.
    """
    rows = list(per_user)
    if not rows:
        return {**{key: float("nan") for key in keys}, "n_users": 0.0}
    keys = rows[0].keys()
    out = {key: float(np.mean([row[key] for row in rows])) for key in keys}
    out["n_users"] = float(len(rows))
    return out
