"""Held-out cases ranked through the app's scoring path and scored per case.

A case is one held-out :class:`~recommender.training.data.Example`: its request vector, its
history rows (removed from the ranking: already consumed) and its relevant rows minus the
history. A case whose relevant items are all in its history has nothing left to find and is
skipped. Systems are either app rankers (:class:`~recommender.scoring.EmbeddingRanker`,
ranked with :meth:`~recommender.scoring.EmbeddingRanker.rank_batch`, exactly as the app
ranks) or offline-only baselines that give a score matrix, ranked with the same
:func:`~recommender.scoring.rank_rows` and tie rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recommender.metrics import DEPTH, METRICS, mean_metrics, per_case_metrics
from recommender.scoring import EmbeddingRanker, rank_rows
from recommender.training.data import Example

if TYPE_CHECKING:  # Prepared is defined in train.py, which imports this module at run time
    from recommender.training.train import Prepared

#: An offline-only baseline: held-out examples -> (B, n_items) scores.
Scorer = Callable[[Sequence[Example]], np.ndarray]
CHUNK = 256  # cases scored at once: bounds the (B, n_items) score matrix in memory


@dataclass
class Cases:
    """The scorable cases of a list of examples, in the order given."""

    examples: list[Example]  # only the scorable ones
    positions: list[int]  # where each came from in the examples given
    request_vectors: np.ndarray  # (B, D)
    history_rows: list[np.ndarray]
    relevant_rows: list[set[int]]  # relevant minus history; never empty
    user_rows: np.ndarray  # (B,) training-user embedding rows (0 = unknown)
    skipped: int  # examples whose relevant items were all in their history

    @property
    def keys(self) -> list[tuple[str, float, str]]:
        """(user, time, target) per case: aligns the same cases across seeds and systems."""
        return [(e.user_id, e.timestamp, e.target_item_id) for e in self.examples]


def build_cases(prep: Prepared, examples: Sequence[Example]) -> Cases:
    """Request vectors, history rows and relevant rows of every scorable example."""
    kept: list[Example] = []
    positions: list[int] = []
    history_rows: list[np.ndarray] = []
    relevant_rows: list[set[int]] = []
    for position, e in enumerate(examples):
        history = prep.index.rows(e.history_item_ids)
        relevant = set(prep.index.rows(sorted(e.relevant_item_ids)).tolist()) - set(history.tolist())
        if not relevant:
            continue
        kept.append(e)
        positions.append(position)
        history_rows.append(history)
        relevant_rows.append(relevant)
    return Cases(
        examples=kept,
        positions=positions,
        request_vectors=prep.request_matrix(kept),
        history_rows=history_rows,
        relevant_rows=relevant_rows,
        user_rows=prep.user_indices(kept),
        skipped=len(examples) - len(kept),
    )


def rank_cases(
    system: EmbeddingRanker | Scorer, cases: Cases, *, k: int = DEPTH, use_user_ids: bool = False
) -> list[np.ndarray]:
    """Top-k catalog rows per case, history excluded, with the app's tie rule."""
    out: list[np.ndarray] = []
    for start in range(0, len(cases.examples), CHUNK):
        stop = start + CHUNK
        vectors = cases.request_vectors[start:stop]
        history = cases.history_rows[start:stop]
        if isinstance(system, EmbeddingRanker):
            users = cases.user_rows[start:stop] if use_user_ids else None
            rows, _ = system.rank_batch(vectors, history, k, history, users)
        else:
            rows = rank_rows(system(cases.examples[start:stop]), vectors, history, k, history)
        out.extend(rows)
    return out


def case_metrics(rankings: Sequence[np.ndarray], cases: Cases) -> dict[str, np.ndarray]:
    """Per-case :data:`~recommender.metrics.METRICS` of the rankings."""
    return per_case_metrics([r.tolist() for r in rankings], cases.relevant_rows, METRICS)


def evaluate_system(
    system: EmbeddingRanker | Scorer,
    prep: Prepared,
    examples: Sequence[Example],
    *,
    use_user_ids: bool = False,
) -> dict[str, float]:
    """Mean metrics of one system over the scorable examples (NaN and ``n_cases`` 0 if none)."""
    cases = build_cases(prep, examples)
    return mean_metrics(case_metrics(rank_cases(system, cases, use_user_ids=use_user_ids), cases))


def matrix_metrics(
    scores: np.ndarray, prep: Prepared, examples: Sequence[Example], metrics: Sequence[str] = METRICS
) -> dict[str, float]:
    """Mean metrics of a ``(len(examples), n_items)`` score matrix, ranked with the app's tie rule.

    Unscorable examples are skipped; with none left every metric is NaN and ``n_cases`` 0.
    """
    cases = build_cases(prep, examples)
    if not cases.examples:
        return {**{m: float("nan") for m in metrics}, "n_cases": 0.0}
    rows = rank_rows(
        scores[cases.positions], cases.request_vectors, cases.history_rows, DEPTH, cases.history_rows
    )
    return mean_metrics(per_case_metrics([r.tolist() for r in rows], cases.relevant_rows, metrics))
