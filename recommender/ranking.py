"""The untrained systems and :func:`build_ranker`, which the study app uses to get any system.

Every system implements :class:`~recommender.scoring.Ranker` over the whole catalog held by
an :class:`~recommender.embeddings.ItemIndex`; scoring, the tie rule and the top-k cut live
in :mod:`recommender.scoring`, shared with the offline benchmark. The web app builds rankers
once per worker process with :func:`build_ranker`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from recommender.embeddings import ItemIndex
from recommender.encoders import Encoder
from recommender.item_search import SearchSettings
from recommender.scoring import EmbeddingRanker, RankedList, Ranker, SharedSimilarity, top_k
from recommender.systems import DEFAULT_HISTORY_WEIGHT, HISTORY_BLEND, SYSTEM_KINDS, WHISPERLITE, ZERO_SHOT
from recommender.whisperlite import WhisperLiteRanker

__all__ = [
    "HISTORY_BLEND",
    "SYSTEM_KINDS",
    "WHISPERLITE",
    "ZERO_SHOT",
    "EmbeddingRanker",
    "HistoryBlendRanker",
    "RankedList",
    "Ranker",
    "SearchSettings",
    "SharedSimilarity",
    "WhisperLiteRanker",
    "ZeroShotRanker",
    "build_ranker",
    "top_k",
]


class ZeroShotRanker(EmbeddingRanker):
    """Plain text search: cosine similarity of request and item; history is ignored."""

    system = ZERO_SHOT

    def score_batch(
        self,
        request_vectors: np.ndarray,
        history_rows: Sequence[np.ndarray],
        user_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        return self.similarity(request_vectors)

    def scores_from_similarity(self, similarity: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        return similarity

    def score_rows(
        self, request_vector: np.ndarray, history_rows: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        return self.rows_similarity(request_vector, rows)


#: Histories whose c.I row a history-blend ranker keeps (about one per active participant).
HISTORY_CACHE_SIZE = 64


class HistoryBlendRanker(EmbeddingRanker):
    """Request similarity plus weighted similarity to the centroid of the user's history.

    ``score = (1 - w) * cos(request, item) + w * cos(mean(history), item)``; with no history
    it reduces to the zero-shot ranker.
    """

    system = HISTORY_BLEND

    def __init__(
        self, index: ItemIndex, encoder: Encoder | None, history_weight: float = DEFAULT_HISTORY_WEIGHT
    ) -> None:
        super().__init__(index, encoder)
        if not 0.0 <= history_weight <= 1.0:
            raise ValueError("history_weight must be between 0 and 1")
        self.history_weight = history_weight
        self.version = f"{index.encoder_id};w={history_weight:g}"
        # c.I of recent histories: a participant's history (their picks) is the same for every
        # request, so their later requests skip the second mat-vec. Bounded: 9,583 items are
        # 38 kB a row; a catalog large enough to need more is ranked through the index instead.
        self._history_scores: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._history_lock = threading.Lock()  # in-process (eager) tasks may rank from threads

    def centroids(self, history_rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) unit centroids of each history and (B,) whether the history was non-empty."""
        dim = self.index.vectors.shape[1]
        out = np.zeros((len(history_rows), dim), dtype=np.float32)
        has = np.zeros(len(history_rows), dtype=bool)
        for i, rows in enumerate(history_rows):
            if len(rows):
                c = self.index.vectors[rows].mean(axis=0)
                out[i] = c / max(float(np.linalg.norm(c)), 1e-12)
                has[i] = True
        return out, has

    def score_batch(
        self,
        request_vectors: np.ndarray,
        history_rows: Sequence[np.ndarray],
        user_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        text = self.similarity(request_vectors)
        centroids, has = self.centroids(history_rows)
        if not has.any():
            return text
        blended = (1.0 - self.history_weight) * text + self.history_weight * self.similarity(centroids)
        return np.where(has[:, None], blended, text)  # no history: exactly the zero-shot scores

    def scores_from_similarity(self, similarity: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        # score_batch's arithmetic with its text part given: only c.I is left to compute, and
        # the scores (hence ties and the tie rule) are bit-identical to score_batch's.
        if not len(history_rows):
            return similarity
        out: np.ndarray = (
            1.0 - self.history_weight
        ) * similarity + self.history_weight * self.history_similarity(history_rows)
        return out

    def history_similarity(self, history_rows: np.ndarray) -> np.ndarray:
        """(N,) c.I for a non-empty history, computed as :meth:`score_batch` does; kept for the
        last :data:`HISTORY_CACHE_SIZE` histories (it depends on nothing else)."""
        key = np.ascontiguousarray(history_rows, dtype=np.int64).tobytes()
        with self._history_lock:
            found = self._history_scores.get(key)
            if found is not None:
                self._history_scores.move_to_end(key)
                return found
        centroids, _ = self.centroids([history_rows])
        row: np.ndarray = self.similarity(centroids)[0]
        row.setflags(write=False)  # shared between requests: nothing may change it
        with self._history_lock:
            self._history_scores[key] = row
            if len(self._history_scores) > HISTORY_CACHE_SIZE:
                self._history_scores.popitem(last=False)
        return row

    def search_query(self, request_vector: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        # (1 - w) r.v + w c.v == ((1 - w) r + w c).v: one inner product orders the blend.
        centroids, has = self.centroids([history_rows])
        if not has[0]:
            return np.asarray(request_vector, dtype=np.float32)
        w = self.history_weight
        query: np.ndarray = (1.0 - w) * np.asarray(request_vector, dtype=np.float32) + w * centroids[0]
        return query.astype(np.float32)

    def score_rows(
        self, request_vector: np.ndarray, history_rows: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        # The arithmetic of score_batch on the candidate columns, so scores (and ties) match it.
        text = self.rows_similarity(request_vector, rows)
        centroids, has = self.centroids([history_rows])
        if not has[0]:
            return text
        out: np.ndarray = (1.0 - self.history_weight) * text + self.history_weight * self.rows_similarity(
            centroids[0], rows
        )
        return out


def build_ranker(
    system: str,
    index: ItemIndex,
    encoder: Encoder,
    *,
    checkpoint_path: str | None = None,
    history_weight: float = DEFAULT_HISTORY_WEIGHT,
    search: SearchSettings | None = None,
) -> Ranker:
    """Build the ranker for a system kind over ``index``.

    ``whisperlite`` loads ``checkpoint_path`` and refuses one trained with another encoder.
    With ``search``, a catalog of at least ``search.min_items`` items is ranked through the
    approximate index (built once and saved beside the embedding cache if missing; see
    :mod:`recommender.item_search`); smaller catalogs, or no ``search``, rank exactly.
    """
    ranker: EmbeddingRanker
    if system == ZERO_SHOT:
        ranker = ZeroShotRanker(index, encoder)
    elif system == HISTORY_BLEND:
        ranker = HistoryBlendRanker(index, encoder, history_weight=history_weight)
    elif system == WHISPERLITE:
        if not checkpoint_path:
            raise ValueError("the whisperlite system needs a checkpoint path")
        ranker = WhisperLiteRanker.from_checkpoint(checkpoint_path, index, encoder)
    else:
        raise ValueError(f"unknown system {system!r}; choose one of {', '.join(SYSTEM_KINDS)}")
    if search is not None:
        ranker.use_search(search)
    return ranker
