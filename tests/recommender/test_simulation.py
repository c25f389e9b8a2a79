from __future__ import annotations

import pytest

from recommender.catalog import CatalogItem
from recommender.training.data import temporal_split
from recommender.training.simulation import V1_RATES, simulate_shoppers


def test_simulation_is_seeded_and_consistent(tiny_catalog: list[CatalogItem]) -> None:
    # V1 rates: vague requests only (v2 properties are in test_simulation_v2.py).
    a = simulate_shoppers(tiny_catalog, n_shoppers=20, n_events=5, seed=3, noise=0.0, named_rates=V1_RATES)
    b = simulate_shoppers(tiny_catalog, n_shoppers=20, n_events=5, seed=3, noise=0.0, named_rates=V1_RATES)
    assert a.dataset.interactions == b.dataset.interactions
    assert len(a.shoppers) == 20 and len(a.dataset.interactions) == 100
    by_id = {i.item_id: i for i in tiny_catalog}
    prefs = {s.user_id: s for s in a.shoppers}
    for x in a.dataset.interactions:
        shopper = prefs[x.user_id]
        item = by_id[x.item_id]
        article = item.attributes["articleType"]
        # Requests never name colour or gender; they carry article-type words.
        text = x.request_text.lower()
        assert not any(c.lower() in text for c in ("black", "blue", "red", "white", "men", "women"))
        # Relevant = same article type AND matching hidden preferences; the purchase is one of them.
        assert x.item_id in x.relevant_item_ids
        for rid in x.relevant_item_ids:
            attrs = by_id[rid].attributes
            assert attrs["articleType"] == article
            assert attrs["baseColour"] in shopper.colours and attrs["usage"] == shopper.usage
            assert attrs["gender"] in (shopper.gender, "Unisex")


def test_simulation_splits_and_differs_by_seed(tiny_catalog: list[CatalogItem]) -> None:
    sim = simulate_shoppers(tiny_catalog, n_shoppers=10, n_events=6, seed=0)
    split = temporal_split(sim.dataset)
    assert len(split.test) == len(split.val) == 10
    assert all(1 <= len(e.history_item_ids) <= 5 for e in split.test)
    other = simulate_shoppers(tiny_catalog, n_shoppers=10, n_events=6, seed=1)
    assert other.dataset.interactions != sim.dataset.interactions


def test_simulation_rejects_catalog_without_attributes() -> None:
    with pytest.raises(ValueError, match="attributes"):
        simulate_shoppers([CatalogItem("1", "plain item")], n_shoppers=1)


def test_simulation_runs_on_generated_sample_catalog(sample_catalog_csv) -> None:  # type: ignore[no-untyped-def]
    from recommender.catalog.readers import read_generic

    items = read_generic(sample_catalog_csv).items
    sim = simulate_shoppers(items, n_shoppers=30, n_events=6, seed=0)
    assert len(sim.shoppers) == 30
