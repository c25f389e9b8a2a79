"""Tests for studyapp.analysis.stats."""

from __future__ import annotations

import numpy as np
import pytest

from studyapp.analysis.stats import bootstrap_mean_ci, holm, paired_bootstrap_ci, paired_test, sign_test


def _constructed_pairs() -> tuple[list[float], list[float]]:
    # b: 40 request scores; a = b + 0.2 + noise that sums to exactly zero, so the true
    # (and sample) mean difference is 0.2.
    b = list(np.linspace(0.1, 0.7, 40))
    noise = [0.05 if i % 2 else -0.05 for i in range(40)]
    a = [x + 0.2 + e for x, e in zip(b, noise, strict=True)]
    return a, b


def test_paired_bootstrap_contains_true_difference() -> None:
    a, b = _constructed_pairs()
    res = paired_bootstrap_ci(a, b, n_resamples=2000, seed=1)
    assert res.n == 40
    assert res.mean_diff == pytest.approx(0.2)
    assert res.mean_a == pytest.approx(np.mean(a)) and res.mean_b == pytest.approx(np.mean(b))
    assert res.ci_low < 0.2 < res.ci_high
    assert res.ci_low > 0.0  # clearly different
    assert res.ci_high - res.ci_low < 0.05  # paired: the shared b variation cancels
    # Per-system mean CIs are much wider than the paired difference CI.
    assert res.a_ci.ci_low < res.mean_a < res.a_ci.ci_high
    assert res.b_ci.ci_low < res.mean_b < res.b_ci.ci_high
    assert res.a_ci.ci_high - res.a_ci.ci_low > res.ci_high - res.ci_low


def test_paired_bootstrap_deterministic_with_seed() -> None:
    a, b = _constructed_pairs()
    assert paired_bootstrap_ci(a, b, n_resamples=500, seed=3) == paired_bootstrap_ci(
        a, b, n_resamples=500, seed=3
    )
    assert paired_bootstrap_ci(a, b, n_resamples=500, seed=3) != paired_bootstrap_ci(
        a, b, n_resamples=500, seed=4
    )


def test_paired_bootstrap_degenerate_and_small() -> None:
    same = paired_bootstrap_ci([0.5, 0.5, 0.5], [0.4, 0.4, 0.4], n_resamples=200)
    assert same.mean_diff == pytest.approx(0.1)
    assert same.ci_low == pytest.approx(0.1) and same.ci_high == pytest.approx(0.1)
    one = paired_bootstrap_ci([1.0], [0.0])
    assert one.mean_diff == 1.0 and one.ci_low is None and one.a_ci.ci_low is None
    assert paired_bootstrap_ci([], []).mean_a is None
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0, 2.0], [1.0])


def test_bootstrap_mean_ci() -> None:
    res = bootstrap_mean_ci([0.0, 1.0] * 20, n_resamples=1000, seed=0)
    assert res.mean == pytest.approx(0.5) and res.n == 40
    assert res.ci_low < 0.5 < res.ci_high
    assert bootstrap_mean_ci([0.3]).ci_low is None
    assert bootstrap_mean_ci([]).mean is None


def test_wilcoxon_hand_checked() -> None:
    # Differences 1,2,3,4,-5,6,7,8: ranks of |d| are 1..8, W- = 5, W+ = 31, statistic = min = 5.
    # Exact two-sided p: subsets of {1..8} with rank sum <= 5 are {}, {1}, {2}, {3}, {4}, {5},
    # {1,2}, {1,3}, {1,4}, {2,3} = 10 of 2^8 -> p = 2 * 10 / 256 = 0.078125.
    a = [1, 2, 3, 4, 0, 6, 7, 8]
    b = [0, 0, 0, 0, 5, 0, 0, 0]
    res = paired_test(a, b)
    assert res.statistic == 5.0
    assert res.p_value == pytest.approx(0.078125)
    assert res.n == 8 and res.n_nonzero == 8 and res.note == ""


def test_wilcoxon_all_equal_and_too_few() -> None:
    res = paired_test([0.5, 0.2, 0.9], [0.5, 0.2, 0.9])
    assert res.p_value == 1.0 and res.n_nonzero == 0 and "zero" in res.note
    few = paired_test([1.0], [0.0])
    assert few.p_value is None and "too few pairs" in few.note
    small = paired_test([1, 2, 3], [0, 0, 0])
    assert small.p_value == pytest.approx(0.25)  # 2 * 1/8
    assert "unreachable" in small.note


def test_sign_test_hand_worked() -> None:
    # 9 wins, 1 loss: P(X <= 1 | n=10, p=.5) = (1 + 10) / 1024; two-sided doubles it = 22/1024.
    res = sign_test(9, 1)
    assert res.p_value == pytest.approx(0.021484375)
    assert sign_test(9, 1, ties=7).p_value == res.p_value  # ties excluded
    assert sign_test(1, 9).p_value == pytest.approx(0.021484375)
    assert sign_test(0, 0, ties=3).p_value is None
    assert sign_test(5, 5).p_value == pytest.approx(1.0)


def test_holm() -> None:
    # Sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, None]) == [0.2, None]
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
