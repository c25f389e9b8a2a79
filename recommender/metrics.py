"""Offline ranking metrics per case (ranx) and the statistics every results table reports.

Per-case metrics come from ranx (Bassani, ECIR 2022), a maintained IR-evaluation library, so
Recall@k, NDCG@k and MRR are the textbook definitions with binary relevance. We hand ranx
rankings that are already ordered (our tie rule decides ties), encoded as strictly
decreasing scores, so ranx never breaks a tie itself.

Statistics over cases: a percentile bootstrap CI of the mean
(:func:`bootstrap_ci`, scipy) and a paired comparison of two systems on the same cases
(:func:`paired_comparison`: paired bootstrap CI of the mean difference and of the relative
difference, and a Wilcoxon signed-rank p-value).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Metrics of every table; MRR looks at the top 100 (the depth of every ranking we score).
METRICS = ("recall@10", "recall@50", "ndcg@10", "mrr@100")
DEPTH = 100
#: Below this many scored cases a table prints a warning: its CIs are too wide to rank systems.
MIN_CASES = 50
_NOTHING = "\x00no-item"  # stands in for an empty ranking (ranx needs one entry per query)


def per_case_metrics(
    rankings: Sequence[Sequence[Hashable]],
    relevant: Sequence[Collection[Hashable]],
    metrics: Sequence[str] = METRICS,
) -> dict[str, np.ndarray]:
    """``metric -> (n_cases,)`` values for rankings (ids best first) against relevant sets.

    Every relevant set must be non-empty (a case with nothing to find is not a case).
    """
    if len(rankings) != len(relevant):
        raise ValueError("one relevant set per ranking")
    if not rankings:
        return {m: np.zeros(0) for m in metrics}
    if any(not r for r in relevant):
        raise ValueError("a case with no relevant item cannot be scored")
    from ranx import Qrels, Run, evaluate

    qrels = {f"q{i}": {str(item): 1 for item in rel} for i, rel in enumerate(relevant)}
    run: dict[str, dict[str, float]] = {}
    for i, ranking in enumerate(rankings):
        ids = [str(item) for item in ranking]
        run[f"q{i}"] = {item: float(len(ids) - pos) for pos, item in enumerate(ids)} or {_NOTHING: 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 -> int64 cast notice inside ranx
        values = evaluate(Qrels(qrels), Run(run), list(metrics), return_mean=False, make_comparable=False)
    if len(metrics) == 1:
        values = {metrics[0]: values}
    return {m: np.asarray(values[m], dtype=np.float64) for m in metrics}


def mean_metrics(per_case: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean of each metric over cases (NaN with no case) and ``n_cases``."""
    out = {m: float(np.mean(v)) if len(v) else math.nan for m, v in per_case.items()}
    out["n_cases"] = float(len(next(iter(per_case.values()), [])))
    return out


def bootstrap_ci(
    values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 5000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (cases resampled with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan
    if np.all(values == values[0]):  # every resample has the same mean
        return float(values[0]), float(values[0])
    from scipy.stats import bootstrap

    res = bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class PairedComparison:
    """System A against system B on the same cases (A - B)."""

    n_cases: int
    mean_a: float
    mean_b: float
    diff: float
    diff_ci: tuple[float, float]
    relative: float  # diff / mean_b (NaN if mean_b is 0)
    relative_ci: tuple[float, float]
    wilcoxon_p: float  # two-sided; 1.0 when every paired difference is zero


def paired_comparison(
    a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 5000, seed: int = 0
) -> PairedComparison:
    """Paired bootstrap (cases resampled together) and Wilcoxon signed-rank test of ``a`` vs ``b``."""
    from scipy.stats import wilcoxon

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired values need the same cases")
    n = len(a)
    if n == 0:
        nan2 = (math.nan, math.nan)
        return PairedComparison(0, math.nan, math.nan, math.nan, nan2, math.nan, nan2, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    mean_a, mean_b = a[idx].mean(axis=1), b[idx].mean(axis=1)
    diffs = mean_a - mean_b
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mean_b > 0, diffs / mean_b, np.nan)
    alpha = (1 - confidence) / 2
    diff_ci = (float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha)))
    rel_ok = rel[np.isfinite(rel)]
    rel_ci = (
        (float(np.quantile(rel_ok, alpha)), float(np.quantile(rel_ok, 1 - alpha)))
        if len(rel_ok)
        else (math.nan, math.nan)
    )
    d = a - b
    p = 1.0 if np.all(d == 0) else float(wilcoxon(a, b, zero_method="wilcox").pvalue)
    ma, mb = float(a.mean()), float(b.mean())
    return PairedComparison(
        n_cases=n,
        mean_a=ma,
        mean_b=mb,
        diff=ma - mb,
        diff_ci=diff_ci,
        relative=(ma - mb) / mb if mb > 0 else math.nan,
        relative_ci=rel_ci,
        wilcoxon_p=p,
    )
