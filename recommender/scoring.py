"""The ranking interface and the one scoring path shared by the study app and the benchmark.

Every system scores a batch of request vectors against the whole catalog
(:meth:`EmbeddingRanker.score_batch`), and :func:`rank_rows` turns scores into a top k with
one tie rule. The app ranks one request with :meth:`EmbeddingRanker.rank` (encode, then
:meth:`~EmbeddingRanker.rank_vector`); the offline evaluation calls
:meth:`~EmbeddingRanker.rank_batch` on the same objects, so what is benchmarked is what
participants get.

Tie rule: equal scores are ordered by a pseudo-random key per item, drawn from a generator
seeded with a digest of the request vector and the history rows. The order is therefore
reproducible (the same request and history always give the same list) and unbiased (no item
wins ties because of its catalog position, which a stable sort would favour: empty-history
centroids, BM25 with no term overlap and zero queries tie everywhere).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from recommender.ann import TIE_MARGIN, VectorSearch
from recommender.embeddings import ItemIndex
from recommender.encoders import Encoder

if TYPE_CHECKING:
    from recommender.item_search import SearchSettings

EMPTY_ROWS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class RankedList:
    """A system's top-k for one request."""

    item_ids: list[str]  # best first
    scores: list[float]  # same order as item_ids
    system: str  # system kind, e.g. "zero_shot"
    version: str  # encoder id, plus checkpoint identity for trained systems
    latency_ms: float  # wall time of rank() (encode included) or rank_vector() (+ a shared row used)


@dataclass(frozen=True)
class SharedSimilarity:
    """One request's cosine similarity to every item of one item index, computed once.

    Zero-shot scores, the history blend's text part and the attention check's "least
    similar" pick are all this one row, so the app computes it once per request
    (:meth:`EmbeddingRanker.shared_similarity`) and hands it to every ranker of that index
    instead of each ranker running its own mat-vec.
    """

    index: ItemIndex  # the index ``row`` was computed over; rankers of another index ignore it
    row: np.ndarray  # (N,) float32, request . item for every item of ``index``
    ms: float  # wall time of the mat-vec; every system that uses it counts it in its own latency


class Ranker(Protocol):
    """A system that ranks catalog items for a free-text request and a user history."""

    system: str
    version: str

    def rank(
        self, request_text: str, history_item_ids: Sequence[str], k: int, exclude: Sequence[str] = ()
    ) -> RankedList: ...

    def rank_vector(
        self,
        request_vector: np.ndarray,
        history_item_ids: Sequence[str],
        k: int,
        exclude: Sequence[str] = (),
        *,
        shared: SharedSimilarity | None = None,
    ) -> RankedList: ...


def _tie_seed(request_vector: np.ndarray, history_rows: np.ndarray) -> int:
    rounded = np.round(np.asarray(request_vector, dtype=np.float64), 4) + 0.0  # + 0.0: no "-0.0"
    digest = hashlib.sha256(np.ascontiguousarray(rounded).tobytes())
    digest.update(np.ascontiguousarray(history_rows, dtype=np.int64).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def tie_keys(request_vector: np.ndarray, history_rows: np.ndarray, n: int) -> np.ndarray:
    """(n,) tie-break keys in [0, 1), a pure function of the request vector and history rows.

    The vector is rounded to 4 decimals first, so the last-bit noise between encoding a
    request alone (the app) and in a batch (the benchmark) does not change the keys.
    """
    return np.random.default_rng(_tie_seed(request_vector, history_rows)).random(n)


def tie_keys_at(request_vector: np.ndarray, history_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``tie_keys(request_vector, history_rows, N)[rows]`` without drawing all N keys.

    Key ``r`` is the generator's ``r``-th double: PCG64 jumps ahead in O(log r) (``advance``),
    so a ranker that re-scores 50 candidates of a million-item catalog gets their exact keys
    in microseconds instead of drawing a million (tens of ms).
    """
    rows = np.asarray(rows, dtype=np.int64)
    unique, inverse = np.unique(rows, return_inverse=True)
    generator = np.random.PCG64(_tie_seed(request_vector, history_rows))  # what default_rng(seed) wraps
    keys = np.empty(len(unique), dtype=np.float64)
    position = 0
    for j, row in enumerate(unique.tolist()):
        generator.advance(row - position)
        # Generator.random(): the top 53 bits of one 64-bit draw, scaled to [0, 1).
        keys[j] = (int(generator.random_raw()) >> 11) * (1.0 / 9007199254740992.0)
        position = row + 1
    out: np.ndarray = keys[inverse.reshape(-1)]
    return out


def top_k(
    scores: np.ndarray, k: int, blocked_rows: np.ndarray | None = None, keys: np.ndarray | None = None
) -> np.ndarray:
    """Row numbers of the k highest scores, best first; ``blocked_rows`` are never returned.

    Ties are ordered by ``keys`` (lower key first; see :func:`tie_keys`); without keys, by
    row number (only for callers that have no request, e.g. tests of this function).
    Non-finite scores are never returned.
    """
    scores = np.asarray(scores, dtype=np.float64).copy()
    if blocked_rows is not None and len(blocked_rows):
        scores[blocked_rows] = -np.inf
    scores[~np.isfinite(scores)] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return EMPTY_ROWS.copy()
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    candidates = np.flatnonzero(scores >= kth)  # every item tied with the k-th is a candidate
    second = keys[candidates] if keys is not None else candidates
    order = np.lexsort((second, -scores[candidates]))
    return candidates[order[:k]]


def rank_rows(
    scores: np.ndarray,
    request_vectors: np.ndarray,
    history_rows: Sequence[np.ndarray],
    k: int,
    exclude_rows: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Top-k rows of each score row (B, N), with the tie rule of this module."""
    out = []
    n = scores.shape[1]
    for i, row in enumerate(scores):
        keys = tie_keys(request_vectors[i], history_rows[i], n)
        out.append(top_k(row, k, exclude_rows[i] if exclude_rows is not None else None, keys))
    return out


def rank_candidates(
    rows: np.ndarray, scores: np.ndarray, k: int, request_vector: np.ndarray, history_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of candidate ``rows`` with their exact ``scores``: the :func:`top_k` rule on a subset.

    Returns ``(rows, scores)`` best first. Ties are ordered by the same keys as over the whole
    catalog (:func:`tie_keys_at`), so when the candidates hold every row scoring at least the
    k-th best, the result is exactly what :func:`top_k` returns on the full score vector.
    """
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    rows, scores = np.asarray(rows, dtype=np.int64)[finite], scores[finite]
    k = min(k, len(rows))
    if k <= 0:
        return EMPTY_ROWS.copy(), np.zeros(0, dtype=np.float64)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    tied = np.flatnonzero(scores >= kth)  # more than k only on ties at the k-th place
    keys = tie_keys_at(request_vector, history_rows, rows[tied])
    order = tied[np.lexsort((keys, -scores[tied]))[:k]]
    return rows[order], scores[order]


def pad_rows(history_rows: Sequence[np.ndarray], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, H) 0-padded rows and (B, H) bool mask of each history's last ``limit`` rows (None: all)."""
    # Guard 0: ``[-0:]`` is the whole array, but a limit of 0 means "no history".
    kept = [r if limit is None else (r[-limit:] if limit > 0 else r[:0]) for r in history_rows]
    width = max((len(r) for r in kept), default=0)
    rows = np.zeros((len(kept), width), dtype=np.int64)
    mask = np.zeros((len(kept), width), dtype=bool)
    for i, r in enumerate(kept):
        rows[i, : len(r)] = r
        mask[i, : len(r)] = True
    return rows, mask


class EmbeddingRanker:
    """Base for rankers that score every item from a request vector and the history rows.

    Subclasses implement :meth:`score_batch`; this class encodes the request, applies the
    tie rule, cuts the top k and measures latency, so every system is ranked and timed the
    same way in the app and in the benchmark. ``encoder`` may be None for a ranker that is
    only given vectors (offline evaluation); :meth:`rank` then refuses.
    """

    system = ""
    #: The approximate index this ranker takes candidates from (large catalogs), or None:
    #: every item scored exactly. Set by :meth:`use_search`.
    search: VectorSearch | None = None
    search_candidates = 50  # rows re-scored exactly per request when ``search`` is set

    def __init__(self, index: ItemIndex, encoder: Encoder | None) -> None:
        if encoder is not None and index.encoder_id != encoder.encoder_id:
            raise ValueError(f"item index was built with {index.encoder_id}, not {encoder.encoder_id}")
        self.index = index
        self.encoder = encoder
        self.version = index.encoder_id

    # -- the approximate path (large catalogs); see recommender/item_search.py ---------------

    def item_space(self) -> tuple[str, np.ndarray]:
        """The name and (N, D) matrix of the item vectors this ranker's scores are inner products with."""
        return "content", self.index.vectors

    def use_search(self, settings: SearchSettings) -> VectorSearch | None:
        """Take candidates from the approximate index when the catalog is large enough.

        Opens (building once, under a file lock, if missing) the index of :meth:`item_space`
        beside the index's embedding cache file; below ``settings.min_items`` the exact path
        stays and this returns None.
        """
        from recommender.item_search import open_space_search

        if len(self.index.item_ids) < settings.min_items:
            self.search = None
            return None
        if self.index.cache_file is None:
            raise ValueError("an item index without a cache file has nowhere to keep its search index")
        space, matrix = self.item_space()
        self.search = open_space_search(matrix, self.index.cache_file, space, settings)
        self.search_candidates = settings.candidates
        return self.search

    def search_query(self, request_vector: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        """(D,) the vector whose inner products with :meth:`item_space` order items as the scores do."""
        return np.asarray(request_vector, dtype=np.float32)

    def score_rows(
        self, request_vector: np.ndarray, history_rows: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) the scores :meth:`score_batch` gives those rows, computed for them alone."""
        raise NotImplementedError

    def rows_similarity(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) cosine similarity of the given items to one unit vector (D,)."""
        items = np.ascontiguousarray(self.index.vectors[rows], dtype=np.float32)
        out: np.ndarray = items @ np.asarray(vector, dtype=np.float32)
        return out

    def _rank_through_search(
        self, request_vector: np.ndarray, history: np.ndarray, k: int, exclude_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the index, re-scored exactly, cut with the seeded tie rule."""
        assert self.search is not None
        query = self.search_query(request_vector, history)
        wanted = max(self.search_candidates, k + TIE_MARGIN)
        _, found = self.search.search(query[None, :], wanted, exclude_rows)
        candidates = found[0][found[0] >= 0]
        scores = self.score_rows(request_vector, history, candidates)
        return rank_candidates(candidates, scores, k, request_vector, history)

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """(B, N) cosine similarity of every item to unit vectors (B, D); (N,) for one vector (D,)."""
        # numpy's BLAS on the index's own memory: its single-row product (gemv) took 0.3-0.8 ms
        # on 9.6k items where torch's took 1.0-1.8 ms, one thread each (issue 10). Its thread
        # pool must match torch's: two pools that each want every core contend (3-7 ms per
        # request when they did); the app sets both (ranking_service.configure_threads).
        query = np.asarray(vectors, dtype=np.float32)
        if query.ndim == 2 and len(query) == 1:
            # One request: a matrix-vector product, the kernel the floor of a task is measured with.
            row: np.ndarray = self.index.vectors @ query[0]
            return row[None, :]
        out: np.ndarray = query @ self.index.vectors.T
        return out

    def shared_similarity(self, request_vector: np.ndarray) -> SharedSimilarity:
        """The request's similarity row over this ranker's index, timed, to share with other rankers.

        Computed exactly as :meth:`score_batch` computes its text part (a (1, D) batch), so a
        ranker given it returns the same scores, bit for bit, as one that computes its own.
        """
        started = time.perf_counter()
        row = self.similarity(np.asarray(request_vector, dtype=np.float32)[None, :])[0]
        return SharedSimilarity(self.index, row, (time.perf_counter() - started) * 1000.0)

    def scores_from_similarity(self, similarity: np.ndarray, history_rows: np.ndarray) -> np.ndarray | None:
        """(N,) scores from the request's precomputed similarity row (N,), or None when this
        system's scores are not built on it (then :meth:`rank_vector` scores on its own)."""
        return None

    def score_batch(
        self,
        request_vectors: np.ndarray,
        history_rows: Sequence[np.ndarray],
        user_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B, N) scores of every item for unit request vectors (B, D) and history row numbers.

        ``user_rows`` are training-user embedding rows; only a WhisperLite network trained
        with user ids uses them (study participants are never training users).
        """
        raise NotImplementedError

    def scores(self, request_vector: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        """(N,) scores for one request vector (D,) and its history rows."""
        row: np.ndarray = self.score_batch(
            np.asarray(request_vector, dtype=np.float32)[None, :], [history_rows]
        )[0]
        return row

    def rank_batch(
        self,
        request_vectors: np.ndarray,
        history_rows: Sequence[np.ndarray],
        k: int,
        exclude_rows: Sequence[np.ndarray] | None = None,
        user_rows: np.ndarray | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Top-k rows of each request (tie rule above) and the (B, N) scores they came from."""
        scores = self.score_batch(request_vectors, history_rows, user_rows)
        return rank_rows(scores, request_vectors, history_rows, k, exclude_rows), scores

    def rank_vector(
        self,
        request_vector: np.ndarray,
        history_item_ids: Sequence[str],
        k: int,
        exclude: Sequence[str] = (),
        *,
        shared: SharedSimilarity | None = None,
        started: float | None = None,
    ) -> RankedList:
        """Rank for an already encoded request: lets the app encode once and share the vector.

        ``shared`` is the request's similarity row over this ranker's index
        (:meth:`shared_similarity`), computed once for every system that builds on it; the
        ranker then skips its own request mat-vec and the row's time is added to this
        system's ``latency_ms``, so that stays what the system alone would take.
        """
        started = time.perf_counter() if started is None else started
        vectors = np.asarray(request_vector, dtype=np.float32)[None, :]
        history = self.index.rows(history_item_ids)
        exclude_rows = self.index.rows(exclude)
        reused = None
        if self.search is None and shared is not None and shared.index is self.index:
            reused = self.scores_from_similarity(shared.row, history)
        shared_ms = shared.ms if reused is not None and shared is not None else 0.0
        if self.search is not None:
            rows, found = self._rank_through_search(vectors[0], history, k, exclude_rows)
        elif reused is not None:
            (rows,) = rank_rows(reused[None, :], vectors, [history], k, [exclude_rows])
            found = reused[rows]
        else:
            (rows,), scores = self.rank_batch(vectors, [history], k, [exclude_rows])
            found = scores[0, rows]
        return RankedList(
            item_ids=[self.index.item_ids[r] for r in rows],
            scores=[float(x) for x in found],
            system=self.system,
            version=self.version,
            latency_ms=(time.perf_counter() - started) * 1000.0 + shared_ms,
        )

    def rank(
        self, request_text: str, history_item_ids: Sequence[str], k: int, exclude: Sequence[str] = ()
    ) -> RankedList:
        """Encode the request and rank the catalog; latency includes the encoding."""
        if self.encoder is None:
            raise ValueError("this ranker was built without an encoder; use rank_vector")
        started = time.perf_counter()
        request_vector = self.encoder.encode_text([request_text], normalize=True)[0]
        return self.rank_vector(request_vector, history_item_ids, k, exclude, started=started)
