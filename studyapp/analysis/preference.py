"""'Which list is better?' answers: per-system preference shares and pairwise sign tests.

Each answer is one side-by-side request (:class:`~.records.PreferenceRecord`). A system's
share is the fraction of the answers, among requests that showed its list, that chose it,
with a Wilson 95 % interval. Pairwise, the two-sided exact sign (binomial, p = 0.5) test
compares how often A's list was chosen over B's on requests that showed both; "no
difference" (and, with more than two systems, choosing a third list) carries no preference
between A and B and is excluded from the test but reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from .records import PreferenceRecord
from .stats import proportion_ci, sign_test


@dataclass(frozen=True)
class PreferenceShare:
    system: str
    n_answers: int  # answered requests that showed this system's list
    n_preferred: int
    share: float | None
    ci_low: float | None  # Wilson 95 %
    ci_high: float | None


@dataclass(frozen=True)
class PreferenceComparison:
    system_a: str
    system_b: str
    a_preferred: int
    b_preferred: int
    no_preference: int  # "no difference" or a third list
    p_value: float | None  # sign test, no-preference answers excluded
    note: str = ""


@dataclass(frozen=True)
class PreferenceSummary:
    n_answers: int
    n_no_difference: int
    shares: list[PreferenceShare]
    comparisons: list[PreferenceComparison]


def preference_summary(records: Iterable[PreferenceRecord]) -> PreferenceSummary:
    """Shares with CIs and pairwise sign tests over the (non-practice) answers given."""
    answers = [r for r in records if not r.is_practice]
    systems = sorted({s for r in answers for s in r.systems_shown} | {r.system for r in answers if r.system})
    shares = []
    for s in systems:
        offered = [r for r in answers if s in r.systems_shown or r.system == s]
        chosen = sum(r.system == s for r in offered)
        ci = proportion_ci(chosen, len(offered))
        shares.append(PreferenceShare(s, len(offered), chosen, ci.mean, ci.ci_low, ci.ci_high))
    comparisons = []
    for a, b in itertools.combinations(systems, 2):
        both = [r for r in answers if {a, b} <= set(r.systems_shown)]
        wins, losses = sum(r.system == a for r in both), sum(r.system == b for r in both)
        test = sign_test(wins, losses, len(both) - wins - losses)
        comparisons.append(PreferenceComparison(a, b, wins, losses, test.ties, test.p_value, test.note))
    return PreferenceSummary(len(answers), sum(r.system is None for r in answers), shares, comparisons)
