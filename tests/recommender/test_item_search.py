"""Large catalogs: rankers through the approximate index, the shared item index, built once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from recommender.ann import IvfSearch
from recommender.catalog import CatalogItem
from recommender.embeddings import ItemIndex, build_item_index, cache_path, open_shared_index
from recommender.item_ids import CompactIds
from recommender.item_search import SearchSettings
from recommender.model import WhisperLite, WhisperLiteConfig
from recommender.ranking import EmbeddingRanker, HistoryBlendRanker, WhisperLiteRanker, ZeroShotRanker
from recommender.scoring import rank_candidates, tie_keys, tie_keys_at, top_k

REPO = Path(__file__).resolve().parents[2]
DUPLICATES = [5, 10, 20, 30, 2_500, 2_999]  # identical vectors: ties the seeded rule must break


def _catalog(tmp_path: Path, n: int = 3_000, dim: int = 32) -> ItemIndex:
    """Random unit vectors with six identical items, saved as an embedding cache would be."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[DUPLICATES] = vectors[DUPLICATES[0]]
    ids = [f"item-{i}" for i in range(n)]
    cache_file = cache_path(tmp_path, "test-encoder", "v1")
    cache_file.parent.mkdir(parents=True)
    np.savez(cache_file, item_ids=np.array(ids), vectors=vectors)
    return ItemIndex(ids, vectors, "test-encoder", "v1", cache_file)


def _requests(index: ItemIndex, n: int) -> list[tuple[np.ndarray, list[str]]]:
    """Requests near the duplicated item (ties in the top 10) and random ones, with 0-3 history items."""
    rng = np.random.default_rng(1)
    dim = index.vectors.shape[1]
    out = []
    for i in range(n):
        base = index.vectors[DUPLICATES[0]] if i % 2 else np.zeros(dim, dtype=np.float32)
        vector = (base + (0.05 if i % 2 else 1.0) * rng.standard_normal(dim)).astype(np.float32)
        history = [index.item_ids[int(r)] for r in rng.integers(0, len(index.item_ids), i % 4)]
        if i % 3 == 0:
            history.append(index.item_ids[DUPLICATES[1]])  # a picked duplicate is excluded, its twins not
        out.append((vector / np.linalg.norm(vector), history))
    return out


RANKERS = {
    "zero_shot": lambda index: ZeroShotRanker(index, None),
    "history_blend": lambda index: HistoryBlendRanker(index, None, history_weight=0.3),
    "whisperlite": lambda index: WhisperLiteRanker(_model(index.vectors.shape[1]), index),
}


def _model(dim: int) -> WhisperLite:
    import torch

    torch.manual_seed(0)
    return WhisperLite(WhisperLiteConfig(embed_dim=dim))


@pytest.mark.parametrize("system", sorted(RANKERS))
def test_ranking_through_the_index_returns_the_exact_lists_ties_and_exclusions_included(
    tmp_path: Path, system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _catalog(tmp_path)
    exact, approximate = RANKERS[system](index), RANKERS[system](index)
    # Forced through the index: the threshold lowered, every cell scanned.
    assert isinstance(approximate.use_search(SearchSettings(min_items=1_000, nprobe=10_000)), IvfSearch)
    monkeypatch.setattr(approximate, "score_batch", _never)  # no whole-catalog scoring on this path
    tied_lists = 0
    for vector, history in _requests(index, 24):
        expected = exact.rank_vector(vector, history, 10, exclude=history)
        got = approximate.rank_vector(vector, history, 10, exclude=history)
        assert got.item_ids == expected.item_ids, (history, expected.item_ids, got.item_ids)
        assert np.allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-6)
        assert not set(got.item_ids) & set(history)
        tied_lists += len(set(got.scores)) < len(got.scores)
    assert tied_lists >= 6  # the ties were really there, and broken by the seeded rule alike


def _never(*args: object, **kwargs: object) -> np.ndarray:
    raise AssertionError("scored the whole catalog instead of the index's candidates")


def test_small_catalogs_stay_exact(tmp_path: Path) -> None:
    index = _catalog(tmp_path)
    ranker = ZeroShotRanker(index, None)
    assert ranker.use_search(SearchSettings(min_items=3_001)) is None and ranker.search is None
    assert not list(tmp_path.rglob("*.ivf"))  # nothing built


def test_tie_keys_at_rows_are_the_full_tie_keys_at_those_rows() -> None:
    vector = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    history = np.array([4, 9], dtype=np.int64)
    rows = np.array([0, 99_999, 17, 17, 50_000, 1], dtype=np.int64)
    assert np.array_equal(tie_keys_at(vector, history, rows), tie_keys(vector, history, 100_000)[rows])


def test_rank_candidates_cuts_like_top_k_over_the_whole_catalog() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(5_000), 2)  # hundreds of exact ties
    vector, history = rng.standard_normal(8), np.zeros(0, dtype=np.int64)
    expected = top_k(scores, 10, keys=tie_keys(vector, history, len(scores)))
    candidates = np.flatnonzero(scores >= np.sort(scores)[-200])
    rows, found = rank_candidates(candidates[::-1], scores[candidates[::-1]], 10, vector, history)
    assert rows.tolist() == expected.tolist() and np.array_equal(found, scores[expected])


def test_a_large_item_index_is_memory_mapped_with_compact_ids(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from recommender import embeddings

    items = [CatalogItem(item_id=f"sku-{i:04d}", title=f"item {i}") for i in range(300)]

    class Encoder:  # only what build_item_index needs; vectors from a seeded generator
        encoder_id, dim, has_image_tower = "fake", 8, False

        def encode_text(self, texts, normalize=True, progress=False):  # type: ignore[no-untyped-def]
            x = np.random.default_rng(len(texts)).standard_normal((len(texts), 8)).astype(np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

    small = build_item_index(items, Encoder(), tmp_path, progress=False, shared_min_items=301)  # type: ignore[arg-type]
    shared = build_item_index(items, Encoder(), tmp_path, progress=False, shared_min_items=300)  # type: ignore[arg-type]
    assert not small.shared and isinstance(small.item_ids, list)
    assert shared.shared and isinstance(shared.vectors, np.memmap) and isinstance(shared.item_ids, CompactIds)
    assert np.array_equal(shared.vectors, small.vectors) and list(shared.item_ids) == small.item_ids
    assert shared.item_ids[299] == "sku-0299" and len(shared.item_ids) == 300
    wanted = ["sku-0007", "nope", "sku-0299", "sku-0000"]
    assert shared.rows(wanted).tolist() == small.rows(wanted).tolist() == [7, 299, 0]
    # Another process opens it from its files by catalog version, without items or encoding.
    monkeypatch.setattr(embeddings, "encode_items", _never)
    reopened = open_shared_index(tmp_path, "fake", shared.fingerprint)
    assert reopened is not None and reopened.rows(["sku-0042"]).tolist() == [42]
    assert build_item_index(items, Encoder(), tmp_path, progress=False, shared_min_items=300).shared  # type: ignore[arg-type]


_CHILD = textwrap.dedent(
    """
    import logging, os, sys, time
    import numpy as np
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from recommender.item_search import SearchSettings, open_space_search, space_matrix
    cache_file, go = sys.argv[1], sys.argv[2]
    while not os.path.exists(go):  # both processes start the build together
        time.sleep(0.01)
    base = np.load(cache_file.replace(".npz", ".base.npy"))
    matrix = space_matrix(cache_file, "tower-x", len(base), base.shape[1], lambda a, b: 2 * base[a:b])
    search = open_space_search(matrix, cache_file, "tower-x", SearchSettings(min_items=1_000))
    print("ROWS", search.search(base[:3], 1)[1][:, 0].tolist())
    """
)


def test_two_processes_starting_together_build_the_item_matrix_and_index_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20_000, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    cache_file = cache_path(tmp_path, "test-encoder", "v1")
    cache_file.parent.mkdir(parents=True)
    np.save(str(cache_file).replace(".npz", ".base.npy"), base)
    go = tmp_path / "go"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(cache_file), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    logs = "".join(err for _, err in outputs)
    assert logs.count("computing the tower-x item matrix") == 1, logs
    assert logs.count("building the IVF index") == 1, logs
    assert all("ROWS [0, 1, 2]" in out for out, _ in outputs)  # each finds a row's own vector
    assert len(list(cache_file.parent.glob("*.ivf"))) == 1 and not list(cache_file.parent.glob("*.tmp"))


def test_every_ranker_kind_searches_the_space_its_scores_live_in(tmp_path: Path) -> None:
    index = _catalog(tmp_path)
    spaces = {name: make(index).item_space()[0] for name, make in RANKERS.items()}
    assert spaces["zero_shot"] == spaces["history_blend"] == "content"
    assert spaces["whisperlite"].startswith("whisperlite-tower-")
    import torch

    model = _model(32)
    assert WhisperLiteRanker(model, index).item_space()[0] == spaces["whisperlite"]  # same weights
    with torch.no_grad():
        next(model.item_tower.parameters()).add_(0.01)  # a retrained item tower: its own matrix
    assert WhisperLiteRanker(model, index).item_space()[0] != spaces["whisperlite"]
    assert isinstance(RANKERS["zero_shot"](index), EmbeddingRanker)
