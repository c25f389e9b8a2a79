"""Every system of the benchmark as a batch scorer over a :class:`Prepared` dataset.

A scorer maps held-out examples to a ``(len(examples), n_items)`` score matrix; the
evaluator excludes each user's history and ranks the rest. Systems:

* ``popularity``: training-period purchase counts (same list for everyone);
* ``bm25``: Okapi BM25 over item text (``rank_bm25``), the request as query;
* ``zero_shot``: cosine of frozen request and item embeddings;
* ``history_centroid``: personalization only, cosine to the centroid of the history;
* ``history_blend``: the app's :class:`~recommender.ranking.HistoryBlendRanker` formula,
  its weight tuned on the validation split only;
* ``whisperlite`` (composite loss) and its ablations ``whisperlite_bce``,
  ``whisperlite_contrastive`` and ``whisperlite_no_request`` (personalization only: the
  same architecture trained with the request masked).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from recommender.catalog import item_text
from recommender.model import WhisperLiteConfig
from recommender.training.data import Example
from recommender.training.train import Prepared, TrainResult, train_whisperlite, whisperlite_scores

Scorer = Callable[[Sequence[Example]], np.ndarray]

UNTRAINED_SYSTEMS = ("popularity", "bm25", "zero_shot", "history_centroid", "history_blend")
#: Trained variants and how each differs from the base config.
WHISPERLITE_VARIANTS: dict[str, dict[str, object]] = {
    "whisperlite": {"loss": "composite"},
    "whisperlite_bce": {"loss": "bce"},
    "whisperlite_contrastive": {"loss": "contrastive"},
    "whisperlite_no_request": {"loss": "composite", "mask_request": True},
}
ALL_SYSTEMS = UNTRAINED_SYSTEMS + tuple(WHISPERLITE_VARIANTS)
BLEND_WEIGHTS = tuple(round(w * 0.1, 1) for w in range(11))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def popularity_scorer(prep: Prepared) -> Scorer:
    """Training-period popularity; ties broken by catalog order."""
    counts = prep.split.popularity()
    n = len(prep.index.item_ids)
    base = np.array([counts.get(i, 0) for i in prep.index.item_ids], dtype=np.float32)
    base -= np.arange(n, dtype=np.float32) / (10.0 * n)  # deterministic tie-break below one count
    return lambda examples: np.tile(base, (len(examples), 1))


def bm25_scorer(prep: Prepared) -> Scorer:
    """Okapi BM25 over ``item_text``; scores cached per distinct request text."""
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([_tokens(item_text(item)) or ["_"] for item in prep.items])
    cache: dict[str, np.ndarray] = {}

    def score(examples: Sequence[Example]) -> np.ndarray:
        out = np.zeros((len(examples), len(prep.index.item_ids)), dtype=np.float32)
        for i, e in enumerate(examples):
            if e.request_text not in cache:
                cache[e.request_text] = np.asarray(bm25.get_scores(_tokens(e.request_text)), dtype=np.float32)
            out[i] = cache[e.request_text]
        return out

    return score


def zero_shot_scorer(prep: Prepared) -> Scorer:
    """Cosine of request and item embeddings (history ignored)."""
    return lambda examples: prep.request_matrix(examples) @ prep.index.vectors.T


def _centroids(prep: Prepared, examples: Sequence[Example]) -> np.ndarray:
    """(B, D) normalised mean of each example's history vectors (zeros for no history)."""
    out = np.zeros((len(examples), prep.dim), dtype=np.float32)
    for i, e in enumerate(examples):
        rows = prep.index.rows(e.history_item_ids)
        if len(rows):
            c = prep.index.vectors[rows].mean(axis=0)
            out[i] = c / max(float(np.linalg.norm(c)), 1e-12)
    return out


def history_centroid_scorer(prep: Prepared) -> Scorer:
    """Personalization only: similarity to the history centroid, no request at all."""
    return lambda examples: _centroids(prep, examples) @ prep.index.vectors.T


def history_blend_scorer(prep: Prepared, weight: float) -> Scorer:
    """``(1 - w) cos(request, item) + w cos(centroid, item)``, as in HistoryBlendRanker.

    With no history the centroid term is zero, which leaves the zero-shot order unchanged,
    matching the ranker's fallback.
    """

    def score(examples: Sequence[Example]) -> np.ndarray:
        text = prep.request_matrix(examples) @ prep.index.vectors.T
        return (1.0 - weight) * text + weight * (_centroids(prep, examples) @ prep.index.vectors.T)

    return score


def tune_history_blend(
    prep: Prepared, weights: Sequence[float] = BLEND_WEIGHTS
) -> tuple[float, dict[float, float]]:
    """Pick the blend weight with the best validation Recall@10 (never looks at test)."""
    from recommender.training.evaluate import rank_metrics

    val = prep.split.val
    curve = {w: rank_metrics(history_blend_scorer(prep, w)(val), prep, val)["recall@10"] for w in weights}
    scored = {w: r for w, r in curve.items() if not math.isnan(r)}
    if not scored:  # no usable validation case (NaN everywhere): fall back to zero-shot order
        return 0.0, curve
    best = max(scored, key=lambda w: (scored[w], -w))
    return best, curve


def train_variant(
    prep: Prepared,
    name: str,
    base: WhisperLiteConfig,
    *,
    use_user_ids: bool = False,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one WhisperLite variant (see :data:`WHISPERLITE_VARIANTS`)."""
    config = dataclasses.replace(base, **WHISPERLITE_VARIANTS[name])  # type: ignore[arg-type]
    path = Path(checkpoint_dir) / f"{name}-seed{config.seed}.pt" if checkpoint_dir else None
    return train_whisperlite(prep, config, use_user_ids=use_user_ids, checkpoint_path=path, progress=progress)


def build_scorers(
    prep: Prepared,
    systems: Sequence[str],
    base: WhisperLiteConfig,
    *,
    use_user_ids: bool = False,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Scorer], dict[str, dict[str, float]]]:
    """Scorers for the requested systems plus per-system training info (epochs, seconds, weight)."""
    scorers: dict[str, Scorer] = {}
    info: dict[str, dict[str, float]] = {}
    for name in systems:
        if name == "popularity":
            scorers[name] = popularity_scorer(prep)
        elif name == "bm25":
            scorers[name] = bm25_scorer(prep)
        elif name == "zero_shot":
            scorers[name] = zero_shot_scorer(prep)
        elif name == "history_centroid":
            scorers[name] = history_centroid_scorer(prep)
        elif name == "history_blend":
            weight, _ = tune_history_blend(prep)
            scorers[name] = history_blend_scorer(prep, weight)
            info[name] = {"weight": weight}
        elif name in WHISPERLITE_VARIANTS:
            result = train_variant(
                prep, name, base, use_user_ids=use_user_ids, checkpoint_dir=checkpoint_dir, progress=progress
            )
            model = result.model
            scorers[name] = lambda examples, m=model: whisperlite_scores(m, prep, examples)
            info[name] = {
                "epochs": float(result.epochs_run),
                "best_epoch": float(result.best_epoch),
                "seconds_per_epoch": result.seconds_per_epoch,
                "val_recall@10": result.best_val_recall,
            }
            if result.checkpoint_path is not None:
                info[name]["checkpoint"] = str(result.checkpoint_path)  # type: ignore[assignment]
        else:
            raise ValueError(f"unknown system {name!r}; choose from {', '.join(ALL_SYSTEMS)}")
    return scorers, info
