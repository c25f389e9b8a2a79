"""The trained model returns what the request names, and still personalizes what it leaves open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.catalog import CatalogItem
from recommender.model import WhisperLiteConfig
from recommender.ranking import build_ranker
from recommender.training.cases import matrix_metrics
from recommender.training.phrasing import singular
from recommender.training.simulation import simulate_shoppers
from recommender.training.train import prepare, train_whisperlite, whisperlite_scores
from tests.recommender.conftest import ARTICLES, COLOURS


@pytest.mark.slow
def test_trained_model_prefers_the_requested_colour_over_a_conflicting_history(
    encoder, tiny_catalog: list[CatalogItem], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sim = simulate_shoppers(tiny_catalog, n_shoppers=300, n_events=6, seed=0)
    prep = prepare(sim.dataset, encoder, tmp_path, progress=False)
    config = WhisperLiteConfig(epochs=8, patience=8, batch_size=64, hidden_dim=64, seed=0)
    result = train_whisperlite(prep, config, checkpoint_path=tmp_path / "wl.pt", progress=False)
    assert result.best_epoch > 0  # a trained epoch, not the zero-shot start
    rankers = {
        name: build_ranker(name, prep.index, encoder, checkpoint_path=str(tmp_path / "wl.pt"))
        for name in ("whisperlite", "zero_shot")
    }
    by_id = {i.item_id: i for i in tiny_catalog}
    precision: dict[str, list[float]] = {name: [] for name in rankers}
    for article in ARTICLES:
        for colour in COLOURS:
            for other in COLOURS:
                if other == colour:
                    continue
                # Everything this shopper ever picked is in one other colour, this type included.
                history = [i.item_id for i in tiny_catalog if i.attributes["baseColour"] == other][:8]
                request = f"a {colour.lower()} {singular(article)}"
                for name, ranker in rankers.items():
                    top = ranker.rank(request, history, 4, exclude=history).item_ids
                    precision[name].append(
                        np.mean([by_id[i].attributes["baseColour"] == colour for i in top])
                    )
    wl, zs = float(np.mean(precision["whisperlite"])), float(np.mean(precision["zero_shot"]))
    assert wl >= zs - 0.05, f"WhisperLite colour precision@4 {wl:.2f} vs zero-shot {zs:.2f}"
    # Listening must not cost personalization: where requests are vague it beats text search.
    vague_keys = {
        (x.user_id, x.request_text)
        for x, named in zip(sim.dataset.interactions, sim.named, strict=True)
        if not named
    }
    vague = [e for e in prep.split.test if (e.user_id, e.request_text) in vague_keys]
    assert len(vague) >= 30
    zero_shot = prep.request_matrix(vague) @ prep.index.vectors.T
    wl_recall = matrix_metrics(whisperlite_scores(result.model, prep, vague), prep, vague)["recall@10"]
    zs_recall = matrix_metrics(zero_shot, prep, vague)["recall@10"]
    assert wl_recall > zs_recall, (wl_recall, zs_recall)
