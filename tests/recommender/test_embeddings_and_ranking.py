"""Item index cache and the two untrained rankers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recommender.catalog import CatalogItem
from recommender.embeddings import build_item_index, cache_path, catalog_fingerprint
from recommender.encoders import build_encoder
from recommender.ranking import (
    HISTORY_BLEND,
    ZERO_SHOT,
    HistoryBlendRanker,
    ZeroShotRanker,
    build_ranker,
    top_k,
)


class CountingEncoder:
    """A deterministic fake encoder that records how often it is asked to encode."""

    has_image_tower = False
    dim = 8
    encoder_id = "fake:counting"

    def __init__(self) -> None:
        self.text_calls = 0

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        self.text_calls += 1
        out = np.array(
            [np.random.default_rng(sum(map(ord, t))).standard_normal(self.dim) for t in texts],
            dtype=np.float32,
        ).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True) if normalize else out

    def encode_images(
        self, paths: Sequence[str], *, normalize: bool = True, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        raise NotImplementedError


CATALOG = [
    CatalogItem("dress", "Red Women Party Dress", attributes={"usage": "Party", "baseColour": "Red"}),
    CatalogItem("jeans", "Blue Men Casual Jeans", attributes={"usage": "Casual", "baseColour": "Blue"}),
    CatalogItem("runner", "Black Men Running Sports Shoes", text="lightweight trainers for jogging"),
    CatalogItem("track", "Grey Men Sports Track Pants", text="for running and the gym"),
    CatalogItem("jersey", "White Men Sports Running Tshirt", text="breathable training top for the gym"),
    CatalogItem("watch", "Silver Men Formal Analogue Watch"),
    CatalogItem("kurta", "Yellow Women Ethnic Kurta", text="cotton kurta for festivals"),
    CatalogItem("handbag", "Brown Women Leather Handbag"),
    CatalogItem("shirt", "White Men Formal Shirt", text="office shirt with a button-down collar"),
    CatalogItem("heels", "Pink Women Party Heels"),
]


# --------------------------------------------------------------------------- cache


def test_cache_hit_returns_same_vectors_without_encoding(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    first = build_item_index(CATALOG, encoder, tmp_path, progress=False)
    assert encoder.text_calls == 1
    assert cache_path(tmp_path, encoder.encoder_id, first.fingerprint).is_file()
    second = build_item_index(CATALOG, encoder, tmp_path, progress=False)
    assert encoder.text_calls == 1  # served from disk
    assert second.item_ids == first.item_ids == [i.item_id for i in CATALOG]
    np.testing.assert_array_equal(second.vectors, first.vectors)
    assert second.fingerprint == first.fingerprint and second.encoder_id == encoder.encoder_id
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    assert not list(tmp_path.rglob("*.tmp"))  # the atomic write left no temp file behind


def test_no_cache_dir_always_encodes() -> None:
    encoder = CountingEncoder()
    build_item_index(CATALOG, encoder, None, progress=False)
    build_item_index(CATALOG, encoder, None, progress=False)
    assert encoder.text_calls == 2


def test_changed_catalog_gets_new_fingerprint_and_is_reencoded(tmp_path: Path) -> None:
    base = catalog_fingerprint(CATALOG)
    assert catalog_fingerprint(list(CATALOG)) == base  # content, not identity
    retitled = [replace(CATALOG[0], title="Crimson Women Party Dress"), *CATALOG[1:]]
    with_image = [replace(CATALOG[0], image_path="images/dress.jpg"), *CATALOG[1:]]
    new_attr = [replace(CATALOG[0], attributes={"usage": "Casual", "baseColour": "Red"}), *CATALOG[1:]]
    fingerprints = {base, catalog_fingerprint(retitled), catalog_fingerprint(with_image)}
    fingerprints |= {catalog_fingerprint(new_attr), catalog_fingerprint(CATALOG[:-1])}
    fingerprints.add(catalog_fingerprint(list(reversed(CATALOG))))
    assert len(fingerprints) == 6

    encoder = CountingEncoder()
    build_item_index(CATALOG, encoder, tmp_path, progress=False)
    changed = build_item_index(retitled, encoder, tmp_path, progress=False)
    assert encoder.text_calls == 2 and changed.fingerprint == catalog_fingerprint(retitled)


# --------------------------------------------------------------------------- top_k


def test_top_k_order_ties_blocking_and_oversized_k() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, -0.2])
    assert top_k(scores, 3).tolist() == [1, 3, 2]  # tie broken on the lower row
    assert top_k(scores, 2, blocked_rows=np.array([1])).tolist() == [3, 2]
    assert top_k(scores, 100).tolist() == [1, 3, 2, 0, 4]
    assert top_k(scores, 100, blocked_rows=np.array([0, 1])).tolist() == [3, 2, 4]
    assert top_k(scores, 0).tolist() == []


# --------------------------------------------------------------------------- rankers (real encoder)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        encoder = build_encoder("sentence-transformers")
    finally:
        mp.undo()
    index = build_item_index(CATALOG, encoder, tmp_path_factory.mktemp("cache"), progress=False)
    return encoder, index


def test_zero_shot_puts_the_obvious_match_first(real) -> None:  # type: ignore[no-untyped-def]
    encoder, index = real
    ranker = build_ranker(ZERO_SHOT, index, encoder)
    assert isinstance(ranker, ZeroShotRanker)
    for request, expected in [
        ("a red dress for a party", "dress"),
        ("a formal wrist watch for men", "watch"),
        ("blue denim jeans", "jeans"),
        ("an ethnic kurta for a festival", "kurta"),
    ]:
        ranked = ranker.rank(request, [], k=3)
        assert ranked.item_ids[0] == expected, (request, ranked.item_ids)
    ranked = ranker.rank("a red dress for a party", ["runner", "track"], k=5)
    assert ranked.item_ids[0] == "dress"  # history is ignored
    assert ranked.scores == sorted(ranked.scores, reverse=True)
    assert ranked.system == ZERO_SHOT and ranked.version == encoder.encoder_id and ranked.latency_ms >= 0


def test_history_blend_moves_history_like_items_up(real) -> None:  # type: ignore[no-untyped-def]
    encoder, index = real
    request = "something new for men to wear"
    plain = ZeroShotRanker(index, encoder).rank(request, [], k=len(CATALOG))
    blend = build_ranker(HISTORY_BLEND, index, encoder, history_weight=0.6)
    assert isinstance(blend, HistoryBlendRanker)
    ranked = blend.rank(request, ["runner", "track"], k=len(CATALOG), exclude=["runner", "track"])
    # The other sports item climbs once the user's history is all sportswear.
    assert ranked.item_ids.index("jersey") < plain.item_ids.index("jersey")
    assert ranked.item_ids[0] == "jersey"
    assert ranked.system == HISTORY_BLEND and "w=0.6" in ranked.version
    # With no history it is exactly the zero-shot ranking.
    assert blend.rank(request, [], k=len(CATALOG)).item_ids == plain.item_ids
    # Unknown history ids are ignored rather than crashing a live request.
    assert blend.rank(request, ["no-such-item"], k=3).item_ids == plain.item_ids[:3]


def test_exclude_and_k_larger_than_catalog(real) -> None:  # type: ignore[no-untyped-def]
    encoder, index = real
    ranker = ZeroShotRanker(index, encoder)
    everything = ranker.rank("a red dress for a party", [], k=1000)
    assert sorted(everything.item_ids) == sorted(i.item_id for i in CATALOG)
    assert len(everything.scores) == len(CATALOG)
    excluded = ranker.rank("a red dress for a party", [], k=1000, exclude=["dress", "heels", "unknown"])
    assert "dress" not in excluded.item_ids and "heels" not in excluded.item_ids
    assert len(excluded.item_ids) == len(CATALOG) - 2
    assert excluded.item_ids == [i for i in everything.item_ids if i not in ("dress", "heels")]


def test_ranker_refuses_index_from_another_encoder(real) -> None:  # type: ignore[no-untyped-def]
    encoder, _ = real
    foreign = build_item_index(CATALOG, CountingEncoder(), None, progress=False)
    with pytest.raises(ValueError, match="built with"):
        ZeroShotRanker(foreign, encoder)
    with pytest.raises(ValueError, match="unknown system"):
        build_ranker("popularity", foreign, CountingEncoder())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="history_weight"):
        HistoryBlendRanker(foreign, CountingEncoder(), history_weight=1.5)  # type: ignore[arg-type]
