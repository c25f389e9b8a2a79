"""Every system of the benchmark, built over a :class:`Prepared` dataset.

The systems the study app can serve are the app's own ranker classes (so the benchmark
scores exactly what participants get); the others are offline-only score matrices, ranked
with the same tie rule (:mod:`recommender.training.cases`). Systems:

* ``popularity``: training-period purchase counts (same scores for everyone);
* ``bm25``: Okapi BM25 over item text (``rank_bm25``'s statistics, scored as one sparse
  product in :mod:`recommender.training.bm25`), the request as query;
* ``zero_shot``: the app's :class:`~recommender.ranking.ZeroShotRanker`;
* ``history_centroid``: personalization only, the app's history blend at weight 1 (cosine to
  the history centroid; a case without history falls back to the request);
* ``history_blend``: the app's :class:`~recommender.ranking.HistoryBlendRanker` at the app's
  stated default weight :data:`~recommender.systems.DEFAULT_HISTORY_WEIGHT`;
* ``history_blend_tuned``: the same with its weight picked on the validation split only;
* ``whisperlite`` (composite loss), the app's :class:`~recommender.whisperlite.WhisperLiteRanker`
  around the trained network, and its ablations ``whisperlite_bce`` and
  ``whisperlite_contrastive``;
* trained baselines, the same network trained with one input masked:
  ``whisperlite_no_request`` (history only) and ``whisperlite_request_only`` (``max_history=0``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recommender.catalog import item_text
from recommender.model import WhisperLiteConfig
from recommender.ranking import HistoryBlendRanker, ZeroShotRanker
from recommender.scoring import EmbeddingRanker
from recommender.systems import DEFAULT_HISTORY_WEIGHT
from recommender.training.cases import Scorer, evaluate_system
from recommender.training.data import Example
from recommender.training.train import Prepared, TrainResult, train_whisperlite
from recommender.whisperlite import WhisperLiteRanker

System = EmbeddingRanker | Scorer

UNTRAINED_SYSTEMS = (
    "popularity",
    "bm25",
    "zero_shot",
    "history_centroid",
    "history_blend",
    "history_blend_tuned",
)
#: Trained variants and how each differs from the base config.
WHISPERLITE_VARIANTS: dict[str, dict[str, object]] = {
    "whisperlite": {"loss": "composite"},
    "whisperlite_bce": {"loss": "bce"},
    "whisperlite_contrastive": {"loss": "contrastive"},
    "whisperlite_no_request": {"loss": "composite", "mask_request": True},
    "whisperlite_request_only": {"loss": "composite", "max_history": 0},
}
ALL_SYSTEMS = UNTRAINED_SYSTEMS + tuple(WHISPERLITE_VARIANTS)
#: What WhisperLite is compared against in the paired test: everything that is not a
#: WhisperLite loss ablation (the two masked networks are trained baselines).
BASELINES = UNTRAINED_SYSTEMS + ("whisperlite_no_request", "whisperlite_request_only")
BLEND_WEIGHTS = tuple(round(w * 0.1, 1) for w in range(11))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def popularity_scorer(prep: Prepared) -> Scorer:
    """Training-period popularity; equal counts are ordered by the shared tie rule."""
    counts = prep.split.popularity()
    base = np.array([counts.get(i, 0) for i in prep.index.item_ids], dtype=np.float32)
    return lambda examples: np.tile(base, (len(examples), 1))


def bm25_scorer(prep: Prepared) -> Scorer:
    """Okapi BM25 over ``item_text``; scores cached per distinct request text."""
    from recommender.training.bm25 import SparseBM25

    bm25 = SparseBM25([_tokens(item_text(item)) or ["_"] for item in prep.items])
    cache: dict[str, np.ndarray] = {}

    def score(examples: Sequence[Example]) -> np.ndarray:
        out = np.zeros((len(examples), len(prep.index.item_ids)), dtype=np.float32)
        for i, e in enumerate(examples):
            if e.request_text not in cache:
                cache[e.request_text] = np.asarray(bm25.get_scores(_tokens(e.request_text)), dtype=np.float32)
            out[i] = cache[e.request_text]
        return out

    return score


def tune_history_blend(
    prep: Prepared, weights: Sequence[float] = BLEND_WEIGHTS
) -> tuple[float, dict[float, float]]:
    """Pick the blend weight with the best validation Recall@10 (never looks at test)."""
    val = prep.split.val
    curve = {
        w: evaluate_system(HistoryBlendRanker(prep.index, None, history_weight=w), prep, val)["recall@10"]
        for w in weights
    }
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


def build_systems(
    prep: Prepared,
    systems: Sequence[str],
    base: WhisperLiteConfig,
    *,
    use_user_ids: bool = False,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, System], dict[str, dict[str, object]]]:
    """The requested systems plus per-system information (weights, epochs, seconds, checkpoint)."""
    out: dict[str, System] = {}
    info: dict[str, dict[str, object]] = {}
    for name in systems:
        if name == "popularity":
            out[name] = popularity_scorer(prep)
        elif name == "bm25":
            out[name] = bm25_scorer(prep)
        elif name == "zero_shot":
            out[name] = ZeroShotRanker(prep.index, None)
        elif name == "history_centroid":
            out[name] = HistoryBlendRanker(prep.index, None, history_weight=1.0)
        elif name == "history_blend":
            out[name] = HistoryBlendRanker(prep.index, None, history_weight=DEFAULT_HISTORY_WEIGHT)
            info[name] = {"weight": DEFAULT_HISTORY_WEIGHT}
        elif name == "history_blend_tuned":
            weight, _ = tune_history_blend(prep)
            out[name] = HistoryBlendRanker(prep.index, None, history_weight=weight)
            info[name] = {"weight": weight}
        elif name in WHISPERLITE_VARIANTS:
            result = train_variant(
                prep, name, base, use_user_ids=use_user_ids, checkpoint_dir=checkpoint_dir, progress=progress
            )
            out[name] = WhisperLiteRanker(
                result.model, prep.index, version=f"{name} seed {result.config.seed}"
            )
            info[name] = {
                "epochs": float(result.epochs_run),
                "best_epoch": float(result.best_epoch),
                "seconds_per_epoch": result.seconds_per_epoch,
                "val_recall@10": result.best_val_recall,
                "uses_user_ids": use_user_ids,
            }
            if result.checkpoint_path is not None:
                info[name]["checkpoint"] = str(result.checkpoint_path)
        else:
            raise ValueError(f"unknown system {name!r}; choose from {', '.join(ALL_SYSTEMS)}")
    return out, info
