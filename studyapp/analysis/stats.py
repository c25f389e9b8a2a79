"""Significance testing and confidence intervals on per-request metric values.

* Confidence intervals: percentile bootstrap over requests (Efron & Tibshirani 1993;
  recommended for IR by Sakai, "Statistical reform in information retrieval?", 2014),
  computed with :func:`scipy.stats.bootstrap`. Pairs are resampled together so the CI of
  the difference respects the pairing of two systems on the same requests.
* Paired test: Wilcoxon signed-rank (:func:`scipy.stats.wilcoxon`, zero differences dropped
  as in Wilcoxon's original procedure).
* Interleaving: two-sided sign test (:func:`scipy.stats.binomtest`, p = 0.5), ties excluded
  - the standard analysis of TDI outcomes (Radlinski et al. 2008; Chapelle et al. 2012).
* Several systems: Holm's step-down adjustment (:func:`holm`) for the family of pairwise tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_PAIRS = 2


@dataclass(frozen=True)
class MeanCI:
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class PairedBootstrapResult:
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None  # mean of a - b
    ci_low: float | None  # CI of the mean difference
    ci_high: float | None
    a_ci: MeanCI
    b_ci: MeanCI
    n: int
    confidence: float


@dataclass(frozen=True)
class PairedTestResult:
    statistic: float | None
    p_value: float | None
    n: int
    n_nonzero: int
    note: str = ""


@dataclass(frozen=True)
class SignTestResult:
    wins: int
    losses: int
    ties: int
    p_value: float | None
    note: str = ""


def _as_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("a and b must be 1-D sequences of equal length (one value per request)")
    return x, y


def _bootstrap(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    n_resamples: int,
    seed: int,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    # Percentile rather than BCa: BCa returns NaN (with a warning) on the degenerate samples
    # that small studies produce, e.g. every request scoring 1.0.
    ci = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return np.asarray(ci.low, dtype=float), np.asarray(ci.high, dtype=float)


def bootstrap_mean_ci(
    values: Sequence[float], n_resamples: int = 10000, seed: int = 0, confidence: float = 0.95
) -> MeanCI:
    """Mean and percentile-bootstrap CI of one system's per-request values (CI None if n < 2)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return MeanCI(None, None, None, 0)
    if x.size < MIN_PAIRS:
        return MeanCI(float(x.mean()), None, None, int(x.size))
    low, high = _bootstrap((x,), lambda v, axis: v.mean(axis=axis), n_resamples, seed, confidence)
    return MeanCI(float(x.mean()), float(low), float(high), int(x.size))


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedBootstrapResult:
    """Paired bootstrap over requests: means of a and b, mean difference (a - b) and its CI.

    One set of resampled request indices yields the CIs of mean(a), mean(b) and mean(a - b),
    so all three are consistent. CIs are None with fewer than 2 pairs.
    """
    x, y = _as_pairs(a, b)
    n = int(x.size)
    if n == 0:
        empty = MeanCI(None, None, None, 0)
        return PairedBootstrapResult(None, None, None, None, None, empty, empty, 0, confidence)
    ma, mb, md = float(x.mean()), float(y.mean()), float((x - y).mean())
    if n < MIN_PAIRS:
        return PairedBootstrapResult(
            ma, mb, md, None, None, MeanCI(ma, None, None, n), MeanCI(mb, None, None, n), n, confidence
        )

    def statistic(u: np.ndarray, v: np.ndarray, axis: int) -> np.ndarray:
        return np.stack([u.mean(axis=axis), v.mean(axis=axis), (u - v).mean(axis=axis)])

    low, high = _bootstrap((x, y), statistic, n_resamples, seed, confidence)
    return PairedBootstrapResult(
        mean_a=ma,
        mean_b=mb,
        mean_diff=md,
        ci_low=float(low[2]),
        ci_high=float(high[2]),
        a_ci=MeanCI(ma, float(low[0]), float(high[0]), n),
        b_ci=MeanCI(mb, float(low[1]), float(high[1]), n),
        n=n,
        confidence=confidence,
    )


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTestResult:
    """Two-sided Wilcoxon signed-rank test of a vs b on paired per-request values.

    Zero differences are dropped (``zero_method="wilcox"``). Returns p = 1.0 with a note when
    every difference is zero (scipy would return NaN), and p = None with a reason when there
    are fewer than 2 pairs. Note that with <= 5 non-zero differences even a unanimous result
    cannot reach p < 0.05 (the minimum two-sided exact p is 2 / 2^n).
    """
    x, y = _as_pairs(a, b)
    n = int(x.size)
    d = x - y
    nonzero = int(np.count_nonzero(d))
    if n < MIN_PAIRS:
        return PairedTestResult(None, None, n, nonzero, f"too few pairs: {n} (need {MIN_PAIRS})")
    if nonzero == 0:
        return PairedTestResult(
            0.0, 1.0, n, 0, "all paired differences are zero: no evidence of a difference"
        )
    res = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    note = ""
    if nonzero <= 5:
        note = f"only {nonzero} non-zero differences: p < 0.05 is unreachable"
    return PairedTestResult(float(res.statistic), float(res.pvalue), n, nonzero, note)


def sign_test(wins: int, losses: int, ties: int = 0) -> SignTestResult:
    """Two-sided exact sign test (binomial, p = 0.5) on interleaving wins vs losses.

    Ties carry no preference and are excluded from the test (they are only reported).
    """
    n = wins + losses
    if n == 0:
        return SignTestResult(wins, losses, ties, None, "no wins or losses (all ties or no data)")
    p = stats.binomtest(wins, n, p=0.5, alternative="two-sided").pvalue
    return SignTestResult(wins, losses, ties, float(p), "ties excluded")


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p-values; None entries stay None and are not counted."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    order = sorted(idx, key=lambda i: p_values[i])  # type: ignore[arg-type, return-value]
    m = len(order)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * float(p_values[i])))  # type: ignore[arg-type]
        out[i] = running
    return out


def proportion_ci(successes: int, n: int, confidence: float = 0.95) -> MeanCI:
    """A proportion with its Wilson score interval (:meth:`scipy.stats.binomtest.proportion_ci`).

    Wilson rather than the normal approximation because study shares are often near 0 or 1
    with few answers, where the Wald interval leaves [0, 1] or collapses to a point.
    """
    if n == 0:
        return MeanCI(None, None, None, 0)
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return MeanCI(successes / n, float(ci.low), float(ci.high), n)
