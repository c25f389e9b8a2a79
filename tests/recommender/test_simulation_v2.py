"""Simulation v2: requests of varied specificity whose relevance follows what they name."""

from __future__ import annotations

import random

import pytest

from recommender.catalog import CatalogItem
from recommender.training.fashioniq import parse_caption
from recommender.training.phrasing import RequestSpec, compose, pattern_of, singular
from recommender.training.simulation import V1_RATES, request_text, simulate_shoppers


@pytest.fixture(scope="module")
def sim(tiny_catalog: list[CatalogItem]):  # type: ignore[no-untyped-def]
    return simulate_shoppers(tiny_catalog, n_shoppers=150, n_events=6, seed=5)


def test_requests_naming_an_attribute_have_relevant_sets_that_all_carry_it(sim, tiny_catalog) -> None:  # type: ignore[no-untyped-def]
    by_id = {i.item_id: i for i in tiny_catalog}
    named_events = [(x, n) for x, n in zip(sim.dataset.interactions, sim.named, strict=True) if n]
    assert len(named_events) > 200  # most keys get named many times over 900 events
    for x, named in named_events:
        assert x.relevant_item_ids
        for rid in x.relevant_item_ids:
            attrs = by_id[rid].attributes
            for key, value in named.items():
                if key == "gender":
                    assert attrs["gender"] in (value, "Unisex")
                elif key != "pattern":
                    assert attrs[key] == value, (x.request_text, key)
        # ... and the request text says it.
        if "baseColour" in named:
            assert named["baseColour"].lower() in x.request_text


def test_vague_requests_follow_the_hidden_preferences(sim, tiny_catalog) -> None:  # type: ignore[no-untyped-def]
    by_id = {i.item_id: i for i in tiny_catalog}
    prefs = {s.user_id: s for s in sim.shoppers}
    vague = [x for x, n in zip(sim.dataset.interactions, sim.named, strict=True) if not n]
    assert len(vague) > 100  # about 1 in 6 requests is vague with V2_RATES
    for x in vague:
        shopper = prefs[x.user_id]
        assert not any(c in x.request_text for c in ("black", "blue", "red", "white", "men", "women"))
        for rid in x.relevant_item_ids:
            attrs = by_id[rid].attributes
            assert attrs["baseColour"] in shopper.colours and attrs["usage"] == shopper.usage
            assert attrs["gender"] in (shopper.gender, "Unisex")


def test_some_named_colours_contradict_the_shoppers_taste(sim) -> None:  # type: ignore[no-untyped-def]
    prefs = {s.user_id: s for s in sim.shoppers}
    colour_events = [
        (x, n) for x, n in zip(sim.dataset.interactions, sim.named, strict=True) if "baseColour" in n
    ]
    never = [x for x, n in colour_events if n["baseColour"] not in prefs[x.user_id].colours]
    # CONTRADICT = 0.5: roughly half name a colour the shopper would not pick.
    assert 0.25 < len(never) / len(colour_events) < 0.75


def test_v1_rates_reproduce_vague_only_requests(tiny_catalog) -> None:  # type: ignore[no-untyped-def]
    sim = simulate_shoppers(tiny_catalog, n_shoppers=20, n_events=5, seed=3, named_rates=V1_RATES)
    assert not any(sim.named)


@pytest.mark.parametrize(
    ("article", "expected"),
    [
        ("Sunglasses", "pair of sunglasses"),
        ("Watches", "watch"),
        ("Dresses", "dress"),
        ("Tshirts", "t-shirt"),
        ("Casual Shoes", "pair of casual shoes"),
        ("Flip Flops", "pair of flip flops"),
        ("Kurtas", "kurta"),
        ("Belts", "belt"),
    ],
)
def test_singulariser_handles_irregular_plurals_and_pairs(article: str, expected: str) -> None:
    assert singular(article) == expected


def test_requests_never_double_the_usage_word() -> None:
    rng = random.Random(0)
    texts = {request_text("Casual Shoes", "Casual", rng) for _ in range(200)}
    assert not any("casual casual" in t for t in texts)
    named = {
        compose(RequestSpec({"articleType": "Casual Shoes", "usage": "Casual"}), rng) for _ in range(200)
    }
    assert not any(t.count("casual") > 1 for t in named)
    assert "a pair of black sunglasses for my dad" in {
        compose(
            RequestSpec({"articleType": "Sunglasses", "baseColour": "Black", "gender": "Men"}),
            rng,
            heldout=True,
        )
        .replace("i need ", "")
        .replace("looking for ", "")
        .replace("show me ", "")
        .replace("i want ", "")
        for _ in range(300)
    }


def test_pattern_comes_from_title_words_only_when_unambiguous() -> None:
    assert pattern_of("Peter England Men Striped Blue Shirt") == "Striped"
    assert pattern_of("Nike Men Black Shoes") == ""
    assert pattern_of("Solid printed tee") == ""


def test_fashioniq_captions_map_colour_and_type_or_are_skipped() -> None:
    p = parse_caption("is solid black with no sleeves", "dress")
    assert p is not None and p.colour == "Black" and p.pattern == "Solid" and p.article_types == ("Dresses",)
    assert p.text == "a dress that is solid black with no sleeves"
    assert parse_caption("is black and white", "shirt") is None  # two colours: nothing to score
    assert parse_caption("is not red", "shirt") is None  # a negated colour is not wanted
    assert parse_caption("is darker", "shirt") is None  # no colour
