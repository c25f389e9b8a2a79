"""Exact vs approximate top-k search, the saved IVF index, and its sharing between processes."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from recommender import ann
from recommender.ann import ExactSearch, IvfSearch, index_path, open_matrix, open_search, search_and_rescore
from recommender.catalog import item_text
from recommender.catalog.generic import read_generic
from recommender.vector_bench import clustered_catalog, exact_top_k, recall_at_k, second_process_memory

faiss.omp_set_num_threads(1)

#: The tests on the 50k clustered catalog share one ~30 s fixture (encode, generate, build).
SLOW = pytest.mark.slow

REQUESTS = [
    "casual shoes", "a formal shirt for the office", "black watch", "summer dress for a wedding",
    "running shoes", "a warm jacket", "blue jeans", "a handbag for work", "ethnic kurta for a festival",
    "white t-shirt", "party heels", "sports t-shirt for the gym", "red lipstick", "leather belt",
    "kids sandals", "sunglasses for the beach", "woollen scarf", "silver earrings", "track pants",
    "a saree for a wedding",
]  # fmt: skip


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def clustered(encoder, sample_catalog_csv: Path) -> tuple[np.ndarray, np.ndarray]:
    """50k catalog vectors grown from real MiniLM item embeddings, and 200 realistic queries.

    Queries: 20 request texts, 90 unseen variants of catalog items, and 90 history-blend
    queries (0.7 request + 0.3 centroid of five items), the three shapes rankers send.
    """
    items = read_generic(sample_catalog_csv).items
    bases = encoder.encode_text([item_text(i) for i in items], normalize=True)
    vectors = clustered_catalog(bases, 50_000, seed=0)
    rng = np.random.default_rng(1)
    requests = encoder.encode_text(REQUESTS, normalize=True)
    variants = clustered_catalog(bases, 90, seed=2)
    blends = np.stack(
        [
            0.7 * requests[i % len(requests)] + 0.3 * vectors[rng.integers(0, len(vectors), 5)].mean(0)
            for i in range(90)
        ]
    ).astype(np.float32)
    return vectors, np.concatenate([requests, variants, blends])


@pytest.fixture(scope="module")
def clustered_index(clustered, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The 50k clustered catalog's IVF index (built with the defaults) and matrix, saved."""
    folder = tmp_path_factory.mktemp("ivf")
    matrix = open_matrix(folder / "catalog.content.npy", clustered[0])
    return IvfSearch.build(matrix).save(folder / "catalog.content.ivf"), folder / "catalog.content.npy"


def test_catalogs_below_the_threshold_are_searched_exactly_and_larger_ones_approximately(tmp_path) -> None:
    vectors = _unit(np.random.default_rng(0), 2_000, 16)
    assert isinstance(open_search(vectors), ExactSearch)  # far below ANN_MIN_ITEMS
    assert isinstance(open_search(vectors, min_items=2_001), ExactSearch)
    approximate = open_search(vectors, tmp_path / "x.ivf", min_items=2_000)
    assert isinstance(approximate, IvfSearch) and not approximate.exact
    assert (tmp_path / "x.ivf").is_file()
    # The documented switch point: a Myntra-sized catalog (44,446 rows) stays exact.
    assert isinstance(open_search(np.zeros((44_446, 4), dtype=np.float32)), ExactSearch)
    assert ann.ANN_MIN_ITEMS > 44_446


def test_exact_search_returns_the_true_top_k_without_excluded_rows_and_pads_short_results() -> None:
    vectors = _unit(np.random.default_rng(0), 500, 16)
    queries = _unit(np.random.default_rng(1), 4, 16)
    search = ExactSearch(vectors)
    scores, rows = search.search(queries, 10, exclude_rows=np.array([3, 7]))
    full = queries @ vectors.T
    full[:, [3, 7]] = -np.inf
    expected = np.argsort(-full, axis=1, kind="stable")[:, :10]
    assert (rows == expected).all()
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-5)
    scores, rows = ExactSearch(vectors[:5]).search(queries[:1], 8, exclude_rows=np.array([0]))
    assert sorted(rows[0, :4].tolist()) == [1, 2, 3, 4]
    assert (rows[0, 4:] == -1).all() and np.isneginf(scores[0, 4:]).all()


def test_equal_scores_come_lower_row_first_in_exact_and_approximate_search() -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 3_000, 16)
    vectors[[2_900, 40, 1_500, 7]] = vectors[123]  # five identical items (duplicate titles)
    query = vectors[123:124] + 0.01 * _unit(rng, 1, 16)
    expected = [7, 40, 123, 1_500]  # the four best rows are tied copies; the fifth tied copy loses
    assert ExactSearch(vectors).search(query, 4)[1][0].tolist() == expected
    assert IvfSearch.build(vectors).search(query, 4)[1][0].tolist() == expected


@SLOW
def test_ivf_search_reaches_recall_098_at_10_on_a_clustered_catalog(clustered, clustered_index) -> None:
    vectors, queries = clustered
    search = IvfSearch.load(clustered_index[0], open_matrix(clustered_index[1]))  # as workers open it
    truth = exact_top_k(vectors, queries, 10)
    scores, rows = search.search(queries, 10)
    recall = recall_at_k(rows, truth)
    assert recall.mean() >= 0.98, (recall.mean(), search.nprobe)
    # Candidates are re-scored from the float32 matrix: the scores are exact inner products.
    assert np.allclose(scores, np.einsum("bd,bkd->bk", queries, vectors[rows]), atol=1e-4)
    # Scanning one cell only is measurably worse: the assertion above could fail.
    search.nprobe = 1
    assert recall_at_k(search.search(queries, 10)[1], truth).mean() < 0.98


@SLOW
def test_ivf_search_never_returns_excluded_rows(clustered) -> None:
    vectors, queries = clustered
    search = IvfSearch.build(vectors[:5_000])
    _, first = search.search(queries[:3], 10)
    blocked = np.unique(first[:, :5])
    _, again = search.search(queries[:3], 10, exclude_rows=blocked)
    assert not np.isin(again, blocked).any()
    assert (again >= 0).all()


@pytest.mark.parametrize("codec", ["sq8", "flat"])
def test_saved_index_reloads_memory_mapped_with_identical_results(tmp_path, codec: str) -> None:
    vectors = _unit(np.random.default_rng(0), 4_000, 32)
    queries = _unit(np.random.default_rng(1), 8, 32)
    built = IvfSearch.build(vectors, codec=codec)
    path = built.save(tmp_path / "catalog.content.ivf")
    loaded = IvfSearch.load(path, vectors if codec == "sq8" else None)
    assert loaded.codec == codec
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.content.ivf"]  # no temp file left
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    for a, b in zip(built.search(queries, 10), loaded.search(queries, 10), strict=True):
        assert np.array_equal(a, b)


def test_an_8_bit_index_is_not_opened_without_the_matrix_to_rescore_with(tmp_path) -> None:
    vectors = _unit(np.random.default_rng(0), 2_000, 16)
    path = IvfSearch.build(vectors).save(tmp_path / "catalog.content.ivf")
    with pytest.raises(ValueError, match="item matrix"):
        IvfSearch.load(path)
    with pytest.raises(ValueError, match="item matrix"):
        IvfSearch.load(path, vectors[:100])


def test_a_failed_save_keeps_the_previous_index_and_leaves_no_temp_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "catalog.content.ivf"
    first = IvfSearch.build(_unit(np.random.default_rng(0), 2_000, 16)).save(path)
    before = first.read_bytes()

    def broken_write(index, name):  # type: ignore[no-untyped-def]
        Path(name).write_bytes(b"half an index")
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        IvfSearch.build(_unit(np.random.default_rng(1), 2_000, 16)).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_new_catalog_version_or_encoder_gets_its_own_index_file(tmp_path) -> None:
    from recommender.embeddings import cache_path

    old = index_path(cache_path(tmp_path, "sentence-transformers:all-MiniLM-L6-v2", "aaaa"))
    assert index_path(cache_path(tmp_path, "sentence-transformers:all-MiniLM-L6-v2", "bbbb")) != old
    assert index_path(cache_path(tmp_path, "open_clip:ViT-B-32:x", "aaaa")) != old
    assert (
        index_path(cache_path(tmp_path, "sentence-transformers:all-MiniLM-L6-v2", "aaaa"), "whisperlite-1")
        != old
    )
    assert old.parent == cache_path(tmp_path, "sentence-transformers:all-MiniLM-L6-v2", "aaaa").parent


def test_a_stale_or_truncated_index_at_the_path_is_rebuilt(tmp_path) -> None:
    path = tmp_path / "catalog.content.ivf"
    stale = _unit(np.random.default_rng(0), 3_000, 16)
    current = _unit(np.random.default_rng(1), 3_000, 16)  # same shape, other vectors
    open_search(stale, path, min_items=1_000)
    stale_bytes = path.read_bytes()
    search = open_search(current, path, min_items=1_000)
    assert path.read_bytes() != stale_bytes
    _, rows = search.search(current[:5], 1)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]  # every row finds itself: built from `current`
    # A truncated file (say, copied by a tool that died). It is swapped in by rename as any
    # writer must: truncating a file in place would crash processes that map it (SIGBUS).
    (tmp_path / "partial").write_bytes(path.read_bytes()[:1000])
    os.replace(tmp_path / "partial", path)
    _, rows = open_search(current, path, min_items=1_000).search(current[:5], 1)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert IvfSearch.load(path, current).n_items == 3_000


def test_an_up_to_date_index_is_loaded_not_rebuilt(tmp_path, monkeypatch) -> None:
    path = tmp_path / "catalog.content.ivf"
    vectors = _unit(np.random.default_rng(0), 3_000, 16)
    open_search(vectors, path, min_items=1_000)

    def no_build(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("rebuilt an index that was up to date")

    monkeypatch.setattr(IvfSearch, "build", no_build)
    assert open_search(vectors, path, min_items=1_000).n_items == 3_000


@SLOW
def test_a_second_process_maps_the_index_instead_of_copying_it(clustered_index) -> None:
    path, matrix = clustered_index
    index_kib = path.stat().st_size // 1024
    both_kib = index_kib + matrix.stat().st_size // 1024  # 8-bit lists + float32 matrix
    # Scanning every cell touches every page of the lists.
    shared = second_process_memory(str(path), str(matrix), mmap=True, n_queries=50, nprobe=10_000)
    copied = second_process_memory(str(path), str(matrix), mmap=False, n_queries=50, nprobe=10_000)
    assert shared.anon < 0.1 * both_kib, (shared, both_kib)
    assert shared.rss > 0.5 * index_kib  # it did read the whole index, from the page cache
    assert copied.anon > 0.8 * index_kib  # the measure can tell a private copy
    assert copied.anon - shared.anon > 0.5 * index_kib


def test_search_and_rescore_orders_candidates_by_the_rankers_own_score() -> None:
    vectors = _unit(np.random.default_rng(0), 1_000, 16)
    query = _unit(np.random.default_rng(1), 1, 16)
    search = ExactSearch(vectors)
    plain_scores, plain_rows = search.search(query, 10)
    same_scores, same_rows = search_and_rescore(search, query, 10, lambda b, rows: vectors[rows] @ query[b])
    assert (same_rows == plain_rows).all() and np.allclose(same_scores, plain_scores, atol=1e-5)
    favourite = int(plain_rows[0, 7])
    bonus_scores, bonus_rows = search_and_rescore(
        search, query, 10, lambda b, rows: vectors[rows] @ query[b] + (rows == favourite), n_candidates=50
    )
    assert bonus_rows[0, 0] == favourite
    _, candidates = search.search(query, 50)
    _, tied_rows = search_and_rescore(search, query, 5, lambda b, rows: np.zeros(len(rows)), n_candidates=50)
    assert tied_rows[0].tolist() == sorted(candidates[0].tolist())[:5]  # ties: lower row first


def test_open_matrix_maps_the_vectors_and_rewrites_them_when_the_shape_changes(tmp_path) -> None:
    path = tmp_path / "catalog.content.npy"
    vectors = _unit(np.random.default_rng(0), 100, 8)
    mapped = open_matrix(path, vectors)
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, vectors)
    mapped[0] = 0  # copy-on-write: the file keeps the original rows
    assert np.array_equal(open_matrix(path), vectors)
    grown = _unit(np.random.default_rng(1), 120, 8)
    assert np.array_equal(open_matrix(path, grown), grown)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
