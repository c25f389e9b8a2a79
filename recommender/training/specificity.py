"""Recall@10 by request specificity on simulation v2: does listening cost personalization?

Rebuilds the simulation a demo checkpoint is trained on (:func:`ensure_demo_checkpoint`'s
defaults: seed, shoppers, FashionIQ train-half phrasings), splits it in time, and scores the
test cases whose request names nothing beyond the article type ("vague") and those that name
an attribute, with the checkpoint and the baselines (zero-shot, the app's history blend at
w = 0.3, history centroid), through the app's rankers. Per-case Recall@10 (history excluded, the
app's tie rule), mean
with a 95 % bootstrap CI over cases.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from recommender.catalog import CatalogItem
from recommender.checkpoint import load_checkpoint
from recommender.encoders import Encoder
from recommender.ranking import HistoryBlendRanker, ZeroShotRanker
from recommender.scoring import EmbeddingRanker
from recommender.systems import DEFAULT_HISTORY_WEIGHT
from recommender.training.cases import build_cases, case_metrics, rank_cases
from recommender.training.fashioniq import Phrasing
from recommender.training.fidelity_run import bootstrap_cell
from recommender.training.simulation import simulate_shoppers
from recommender.training.train import prepare
from recommender.whisperlite import WhisperLiteRanker


def specificity_table(
    items: Sequence[CatalogItem],
    encoder: Encoder,
    checkpoint_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None,
    *,
    n_shoppers: int = 800,
    seed: int = 0,
    phrasings: Sequence[Phrasing] = (),
) -> str:
    """A Markdown table: rows (vague | named | all) x system, cells Recall@10 [95 % CI]."""
    sim = simulate_shoppers(
        items, n_shoppers=n_shoppers, n_events=8, seed=seed, phrasings=phrasings, name="demo-sim"
    )
    named = {
        (x.user_id, x.request_text, x.item_id): bool(n)
        for x, n in zip(sim.dataset.interactions, sim.named, strict=True)
    }
    prep = prepare(sim.dataset, encoder, cache_dir, progress=False)
    model = load_checkpoint(checkpoint_path, expected_encoder_id=encoder.encoder_id).build_model()
    # The app's own rankers (one scoring path and tie rule), as the benchmark uses them.
    systems: dict[str, EmbeddingRanker] = {
        "whisperlite": WhisperLiteRanker(model, prep.index),
        "zero_shot": ZeroShotRanker(prep.index, None),
        f"history_blend (w={DEFAULT_HISTORY_WEIGHT:g})": HistoryBlendRanker(
            prep.index, None, history_weight=DEFAULT_HISTORY_WEIGHT
        ),
        "history_centroid": HistoryBlendRanker(prep.index, None, history_weight=1.0),
    }
    lines = ["| requests | system | scored cases | Recall@10 [95% CI] |", "|---|---|---|---|"]
    test = prep.split.test
    for group in ("vague", "named", "all"):
        cases = [
            e
            for e in test
            if group == "all" or named[(e.user_id, e.request_text, e.target_item_id)] == (group == "named")
        ]
        scored = build_cases(prep, cases)
        for name, ranker in systems.items():
            per_case = case_metrics(rank_cases(ranker, scored), scored)["recall@10"]
            cell = bootstrap_cell([float(v) for v in per_case], seed)
            lines.append(f"| {group} | {name} | {cell.n} | {cell.text()} |")
    return "\n".join(lines)
