"""Top-k inner-product search over a fixed item matrix: exact for small catalogs, FAISS IVF above.

Every ranking system in this package scores an item as the inner product of a query vector
with a fixed per-item vector: zero-shot (request · item), the history blend
(``((1 - w) · request + w · centroid) · item``) and WhisperLite (query tower · item tower,
divided by a constant temperature; the item tower is fixed after training). So one search
structure per item matrix serves them all:

* :class:`ExactSearch`: one torch mat-mul over every row. Exact, no build, and fast enough
  below :data:`ANN_MIN_ITEMS` rows (docs/benchmarks.md, "Large catalogs").
* :class:`IvfSearch`: a FAISS inverted-file index (inner product). Its lists hold 8-bit
  scalar-quantised rows (a quarter of the bytes to scan per query), and the top
  :data:`RESCORE_CANDIDATES` are re-scored exactly from the float32 matrix, so the scores
  it returns are exact; only *which* rows are visited is approximate. Built once per
  catalog version, encoder and item space, saved atomically beside the embedding cache and
  opened with ``IO_FLAG_MMAP``; with the matrix itself memory-mapped (:func:`open_matrix`),
  worker processes share the page cache instead of each holding a private copy.

:func:`open_search` picks between them by size; :func:`search_and_rescore` is the path for a
ranker whose final score is not the index's inner product (it re-scores the top candidates).

How a ranker uses it (once per process, then per request)::

    cache_file = embeddings.cache_path(cache_dir, index.encoder_id, index.fingerprint)
    matrix = open_matrix(matrix_path(cache_file), index.vectors)    # shared float32 rows
    search = open_search(matrix, index_path(cache_file))            # exact or IVF by size
    scores, rows = search.search(query[None, :], k, exclude_rows=index.rows(exclude))

with ``query`` the request vector (zero-shot), ``(1 - w) * request + w * centroid`` (history
blend: the same scores as today's formula), or WhisperLite's query-tower output over an
index of its item-tower vectors (space ``"whisperlite-<checkpoint digest>"``; multiply the
scores by ``1 / temperature``). Thread counts come from the process (``OMP_NUM_THREADS`` or
``faiss.omp_set_num_threads``), like torch's.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Catalogs with at least this many items are searched with the approximate index. Below it
#: an exact torch mat-vec over the whole matrix costs about one request encode or less (the
#: 44k-item Myntra matrix, docs/benchmarks.md "Large catalogs") and needs no build.
ANN_MIN_ITEMS = 50_000

#: k-means iterations when training the IVF cells: 10 instead of FAISS's 25 halves the build
#: and cost at most 0.0035 recall@10 at nprobe >= 48 (exploratory run, 200k items, 894 cells).
KMEANS_ITERATIONS = 10

#: Extra rows fetched from the IVF index so ties at the k-th place break on the lower row.
TIE_MARGIN = 16

#: Candidates an 8-bit index returns per query for the exact re-score. 50 lost no recall
#: against float32 lists at any nprobe on the 100k-item catalog (docs/benchmarks.md).
RESCORE_CANDIDATES = 50

#: Codec of the IVF lists: 8-bit scalar quantisation scans a quarter of the bytes of float32.
DEFAULT_CODEC = "sq8"

#: Rows scored per query when a ranker re-scores candidates with its own function.
DEFAULT_CANDIDATES = 200


class VectorSearch(Protocol):
    """Top-k inner-product search over ``n_items`` rows of width ``dim``."""

    n_items: int
    dim: int
    exact: bool  # True when every row is scored for every query

    def search(
        self, queries: np.ndarray, k: int, exclude_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` rows per query: ``(scores, rows)``, both (B, k), best first.

        ``queries`` is (B, D) float32. ``exclude_rows`` (int64, any length) are never
        returned. Equal scores come lower row first. When fewer than ``k`` rows remain, the
        tail is padded with row ``-1`` and score ``-inf``.
        """
        ...


def _as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise ValueError(f"queries must be (B, {dim}); got {queries.shape}")
    return queries


class ExactSearch:
    """Scores every row with one torch mat-mul (the default for catalogs under ANN_MIN_ITEMS).

    The matrix is shared, not copied: pass a ``np.memmap`` (mode ``"c"`` or ``"r"``) and every
    process reads the same page cache. Torch rather than NumPy because NumPy's BLAS pool
    contends with torch's threads in the same process (docs/benchmarks.md).
    """

    exact = True

    def __init__(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.dtype != np.float32:
            raise ValueError("vectors must be a (N, D) float32 matrix")
        self.n_items, self.dim = vectors.shape
        with warnings.catch_warnings():
            # A read-only memmap makes torch warn that the tensor is not writable; nothing
            # here writes through it, so wrapping it without a copy is safe.
            warnings.simplefilter("ignore", UserWarning)
            self._vectors = torch.from_numpy(vectors)  # (N, D), shares memory

    def search(
        self, queries: np.ndarray, k: int, exclude_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = _as_queries(queries, self.dim)
        with torch.no_grad():
            scores = torch.from_numpy(queries) @ self._vectors.T  # (B, N)
            if exclude_rows is not None and len(exclude_rows):
                scores[:, torch.from_numpy(np.asarray(exclude_rows, dtype=np.int64))] = -math.inf
            kk = min(k, self.n_items)
            kth = torch.topk(scores, kk, dim=1).values[:, -1:]  # (B, 1) the k-th best score
            out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
            out_rows = np.full((len(queries), k), -1, dtype=np.int64)
            for b in range(len(queries)):
                # Every row scoring at least the k-th best (more than k only on ties), then
                # ties broken on the lower row: torch.topk's own tie order is unspecified.
                rows = torch.nonzero(scores[b] >= kth[b, 0]).flatten().numpy()
                found = scores[b, rows].numpy()
                order = np.lexsort((rows, -found))[:kk]
                finite = np.isfinite(found[order])
                out_scores[b, : finite.sum()] = found[order][finite]
                out_rows[b, : finite.sum()] = rows[order][finite]
        return out_scores, out_rows


def default_nlist(n_items: int) -> int:
    """IVF cells for ``n_items`` rows: about 2·sqrt(N), capped so each cell keeps >= 39 rows.

    FAISS's k-means wants at least 39 training points per centroid. At equal share of the
    catalog scanned, 2·sqrt(N) and 4·sqrt(N) cells gave the same recall on a 200k-item
    catalog (docs/benchmarks.md), and fewer cells build faster.
    """
    return max(1, min(int(2 * math.sqrt(n_items)), n_items // 39))


def default_nprobe(nlist: int) -> int:
    """Cells scanned per query: 12 % of them, at least 32 (all of them for tiny indexes).

    Measured with request and history-blend queries (docs/benchmarks.md): scanning ~10 % of
    the cells gave recall@10 0.984 at 100k and 1M items, ~15 % gave 0.99; 6 % gave 0.97.
    """
    return min(nlist, max(32, math.ceil(0.12 * nlist)))


class IvfSearch:
    """Approximate top-k over a FAISS inverted-file index (inner product, exact scores).

    Build once with :meth:`build`, :meth:`save` it, and :meth:`load` it memory-mapped in each
    worker process. Rows are the matrix's row numbers (the ids FAISS stores), so results line
    up with :class:`~recommender.embeddings.ItemIndex` rows.
    """

    exact = False

    def __init__(  # type: ignore[no-untyped-def]
        self, index, nprobe: int | None = None, vectors: np.ndarray | None = None
    ) -> None:
        import faiss

        # FAISS's OpenMP pool defaults to one thread per core in every process, like torch's;
        # follow torch's count, which the app sets per process (WHISPERLITE_TORCH_THREADS).
        faiss.omp_set_num_threads(torch.get_num_threads())
        self._faiss = faiss
        self._owner = index  # the wrapper that owns the C++ object: keep it alive
        self.index = faiss.extract_index_ivf(index)
        self.n_items = int(self.index.ntotal)
        self.dim = int(self.index.d)
        self.nprobe = int(nprobe or default_nprobe(int(self.index.nlist)))
        # An 8-bit index scores approximately; the exact matrix re-scores its candidates.
        self.codec = "flat" if int(self.index.code_size) == 4 * self.dim else "sq8"  # float32 rows or 8-bit
        if self.codec != "flat" and vectors is None:
            raise ValueError("an 8-bit IVF index needs the item matrix (vectors=) to re-score exactly")
        if vectors is not None and vectors.shape != (self.n_items, self.dim):
            raise ValueError(f"item matrix is {vectors.shape}, index holds ({self.n_items}, {self.dim})")
        self.vectors = vectors

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        train_size: int = 100_000,
        seed: int = 0,
        codec: str = DEFAULT_CODEC,
    ) -> IvfSearch:
        """Train k-means on a seeded sample of at most ``train_size`` rows, then add every row.

        Row ``i`` of ``vectors`` gets id ``i``. Vectors should be L2-normalised (or, for a
        trained item tower, whatever the ranker scores with: the index stores them as given).
        ``codec`` ``"sq8"`` stores 8 bits per dimension (a quarter of the bytes to scan) and
        re-scores the candidates exactly from ``vectors``; ``"flat"`` stores float32 rows.
        """
        import faiss

        n, dim = vectors.shape
        nlist = nlist or default_nlist(n)
        quantizer = faiss.IndexFlatIP(dim)
        index: faiss.IndexIVF
        if codec == "flat":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        elif codec == "sq8":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            raise ValueError(f"unknown codec {codec!r}: use 'sq8' or 'flat'")
        index.cp.seed = seed
        index.cp.niter = KMEANS_ITERATIONS
        sample = vectors
        if n > train_size:
            rows = np.sort(np.random.default_rng(seed).choice(n, train_size, replace=False))
            sample = vectors[rows]
        log.info("IVF build: k-means of %d cells on %d of %d rows", nlist, len(sample), n)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        step = 100_000  # add in slices so a memmapped input is never copied whole
        for start in range(0, n, step):
            block = np.ascontiguousarray(vectors[start : start + step], dtype=np.float32)
            index.add_with_ids(block, np.arange(start, start + len(block), dtype=np.int64))
            log.info("IVF build: %d of %d rows added", start + len(block), n)
        return cls(index, nprobe, vectors)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index atomically (temp file in the same folder + rename), readable by all."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            self._faiss.write_index(self.index, tmp)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; a worker running as another user reads it
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        vectors: np.ndarray | None = None,
        *,
        mmap: bool = True,
        nprobe: int | None = None,
    ) -> IvfSearch:
        """Open a saved index; with ``mmap`` its lists stay in the shared page cache.

        ``vectors`` (ideally a memmap from :func:`open_matrix`) is required for an 8-bit index.
        """
        import faiss

        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return cls(faiss.read_index(str(path), flags), nprobe, vectors)

    def search(
        self, queries: np.ndarray, k: int, exclude_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        queries = _as_queries(queries, self.dim)
        params = faiss.SearchParametersIVF()
        params.nprobe = self.nprobe
        # Excluded rows (a participant's few picks) are fetched and dropped afterwards rather
        # than passed as an IDSelector, which FAISS would test on every scanned row.
        blocked = np.unique(np.asarray(exclude_rows if exclude_rows is not None else [], dtype=np.int64))
        # A few extra results so that exact ties at the k-th place (duplicate items have
        # identical vectors) resolve to the lower row, as in ExactSearch, not FAISS heap order;
        # an 8-bit index returns more, re-scored exactly, so its approximation never shows.
        fetch = k + TIE_MARGIN if self.codec == "flat" else max(k + TIE_MARGIN, RESCORE_CANDIDATES)
        scores, rows = self.index.search(queries, fetch + len(blocked), params=params)
        if len(blocked):
            rows = np.where(np.isin(rows, blocked), -1, rows)
        if self.codec != "flat":
            scores = self._rescore(queries, rows)
        scores = scores.astype(np.float32)
        scores[rows < 0] = -np.inf
        order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores), axis=-1)[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1).astype(np.int64)

    def _rescore(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact inner products of each query with its candidate rows (B, C)."""
        assert self.vectors is not None
        scores = np.full(rows.shape, -np.inf, dtype=np.float32)
        for b, found in enumerate(rows):
            valid = found >= 0
            # Sorted rows read the memmap in file order; gathering C rows costs microseconds.
            scores[b, valid] = np.asarray(self.vectors[found[valid]], dtype=np.float32) @ queries[b]
        return scores


def open_search(
    vectors: np.ndarray,
    index_path: str | os.PathLike[str] | None = None,
    *,
    min_items: int = ANN_MIN_ITEMS,
    nprobe: int | None = None,
) -> VectorSearch:
    """The search a ranker should use over ``vectors``: exact below ``min_items``, else IVF.

    With ``index_path`` (see :func:`index_path`) the IVF index is loaded memory-mapped when a
    valid one exists there, otherwise built and saved atomically first. Concurrent callers
    (several workers starting at once) take a file lock, so only one of them builds.
    """
    n_items = len(vectors)
    if n_items < min_items:
        return ExactSearch(vectors)
    if index_path is None:
        return IvfSearch.build(vectors, nprobe=nprobe)
    path = Path(index_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        found = _load_valid(path, vectors, nprobe)
        if found is not None:
            return found
        log.info("building the IVF index for %d items at %s", n_items, path)
        IvfSearch.build(vectors, nprobe=nprobe).save(path)
    # Reload the saved file so this process, too, maps the shared copy instead of holding its own.
    return IvfSearch.load(path, vectors, nprobe=nprobe)


def _load_valid(path: Path, vectors: np.ndarray, nprobe: int | None) -> IvfSearch | None:
    if not path.exists():
        return None
    try:
        search = IvfSearch.load(path, vectors, nprobe=nprobe)
    except (RuntimeError, ValueError) as exc:  # FAISS raises RuntimeError on a truncated or foreign file
        log.warning("IVF index %s is unreadable (%s); rebuilding", path, exc)
        return None
    if (search.n_items, search.dim) != vectors.shape or not _spot_check(search, vectors):
        log.warning("IVF index %s does not match the item matrix; rebuilding", path)
        return None
    return search


def _spot_check(search: IvfSearch, vectors: np.ndarray, probes: int = 8) -> bool:
    """Cheap guard against a same-sized index over other vectors: a row must find itself."""
    rows = np.linspace(0, len(vectors) - 1, num=min(probes, len(vectors))).astype(np.int64)
    probe = np.asarray(vectors[rows], dtype=np.float32)
    scores, _ = search.search(probe, 1)
    own = np.einsum("ij,ij->i", probe, probe)  # each row's score against itself
    return bool(np.all(scores[:, 0] >= own - 1e-4 * np.maximum(1.0, np.abs(own))))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60]


def index_path(embedding_cache_file: str | os.PathLike[str], space: str = "content") -> Path:
    """Where the IVF index of one item space lives: beside its embedding cache file.

    ``embedding_cache_file`` is :func:`recommender.embeddings.cache_path` for the catalog
    version and encoder (so either changing gives a new path: a stale index is never
    opened). ``space`` names the item matrix: ``"content"`` for the encoder's item vectors,
    or e.g. ``"whisperlite-<checkpoint digest>"`` for a trained item tower.
    """
    cache = Path(embedding_cache_file)
    key = hashlib.sha256(space.encode()).hexdigest()[:8]
    return cache.with_name(f"{cache.stem}.{_slug(space)}-{key}.ivf")


def matrix_path(embedding_cache_file: str | os.PathLike[str], space: str = "content") -> Path:
    """Where a plain ``.npy`` copy of an item matrix lives, for :func:`open_matrix`."""
    return index_path(embedding_cache_file, space).with_suffix(".npy")


def open_matrix(path: str | os.PathLike[str], vectors: np.ndarray | None = None) -> np.ndarray:
    """Memory-map an item matrix saved as ``.npy``, writing ``vectors`` there first if needed.

    The result is a copy-on-write map (writable for torch, never written back): every worker
    process reads the same page cache instead of holding its own (N, D) copy, which at 1M
    MiniLM items is 1.5 GB per process.
    """
    path = Path(path)
    if vectors is not None:
        current = _peek_shape(path)
        if current != (vectors.shape, np.dtype(np.float32)):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, np.asarray(vectors, dtype=np.float32))
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    matrix: np.ndarray = np.load(path, mmap_mode="c")
    return matrix


def _peek_shape(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    try:
        existing = np.load(path, mmap_mode="r")  # reads the header only
    except (OSError, ValueError):
        return None
    return tuple(existing.shape), existing.dtype


def search_and_rescore(
    search: VectorSearch,
    queries: np.ndarray,
    k: int,
    score_rows: Callable[[int, np.ndarray], np.ndarray],
    *,
    n_candidates: int = DEFAULT_CANDIDATES,
    exclude_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate generation by inner product, then the ranker's own exact score on them.

    ``score_rows(b, rows)`` returns the exact scores (len(rows),) of query ``b``. The result
    is ``(scores, rows)`` (B, k) best first; ties break on the lower row number, and rows
    the index did not return are padded as in :meth:`VectorSearch.search`. For an exact
    search the candidates already hold the true top-k whenever the final score is the
    index's inner product; the re-score is for scores that are not (or that add terms).
    """
    queries = _as_queries(queries, search.dim)
    _, candidates = search.search(queries, max(k, n_candidates), exclude_rows)
    out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    out_rows = np.full((len(queries), k), -1, dtype=np.int64)
    for b, rows in enumerate(candidates):
        rows = rows[rows >= 0]
        if not len(rows):
            continue
        exact = np.asarray(score_rows(b, rows), dtype=np.float64)
        order = np.lexsort((rows, -exact))[:k]
        out_scores[b, : len(order)] = exact[order]
        out_rows[b, : len(order)] = rows[order]
    return out_scores, out_rows
