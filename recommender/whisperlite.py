"""WhisperLite behind the :class:`~recommender.scoring.Ranker` API, from a checkpoint or a model.

Inference only: nothing here imports :mod:`recommender.training`, so the web app loads a
checkpoint without pulling in data loaders or training code. The offline evaluation builds
the same class around the network it has just trained (:meth:`WhisperLiteRanker.__init__`),
so the benchmark scores exactly what the app serves.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recommender.checkpoint import Checkpoint, check_encoder, load_checkpoint
from recommender.embeddings import ItemIndex
from recommender.encoders import Encoder
from recommender.files import file_digest
from recommender.model import WhisperLite
from recommender.scoring import EmbeddingRanker, pad_rows
from recommender.systems import WHISPERLITE


class WhisperLiteRanker(EmbeddingRanker):
    """Ranks the whole catalog for a request and a (possibly empty) history.

    Users of the study are never in the training data, so the app never passes user rows:
    personalization comes from the history items alone.
    """

    system = WHISPERLITE
    checkpoint: Checkpoint | None = None  # the loaded file, when built from one
    checkpoint_digest = ""  # that file's digest: keys its item-tower matrix and index

    def __init__(
        self, model: WhisperLite, index: ItemIndex, encoder: Encoder | None = None, *, version: str = ""
    ) -> None:
        if model.config.embed_dim != index.vectors.shape[1]:
            raise ValueError(
                f"the model expects {model.config.embed_dim}-d embeddings, index has {index.vectors.shape[1]}"
            )
        super().__init__(index, encoder)
        self.model = model
        self.model.eval()
        self.version = f"{index.encoder_id};{version or 'in-memory model'}"
        with warnings.catch_warnings():
            # A copy-on-write memmap (shared index) is writable; a read-only one makes torch
            # warn. Nothing writes through this tensor either way.
            warnings.simplefilter("ignore", UserWarning)
            self._frozen = torch.from_numpy(index.vectors)  # (N, D) content vectors, shares memory
        self._item_matrix: torch.Tensor | None = None  # (N, D) item-tower outputs, when computed

    @property
    def _items(self) -> torch.Tensor:
        """(N, D) item-tower outputs: they depend only on the catalog, so computed once per ranker.

        Lazily, so a large catalog ranked through the index (whose item-tower matrix is a
        shared memory map, see :meth:`item_space`) never computes a private copy.
        """
        if self._item_matrix is None:
            with torch.no_grad():
                self._item_matrix = self.model.encode_items(self._frozen)
        return self._item_matrix

    def item_space(self) -> tuple[str, np.ndarray]:
        """The item-tower outputs, computed once per checkpoint into a shared memory map."""
        from recommender.item_search import space_matrix

        assert self.index.cache_file is not None
        n_items, dim = self.index.vectors.shape

        def tower(start: int, stop: int) -> np.ndarray:
            with torch.no_grad():
                rows = torch.from_numpy(
                    np.ascontiguousarray(self.index.vectors[start:stop], dtype=np.float32)
                )
                out: np.ndarray = self.model.encode_items(rows).numpy()
            return out

        space = f"whisperlite-{self._space_key()}"
        matrix = space_matrix(self.index.cache_file, space, n_items, dim, tower)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a copy-on-write map; never written
            self._item_matrix = torch.from_numpy(matrix)
        return space, matrix

    def _space_key(self) -> str:
        """The checkpoint file's digest; for an in-memory model, a digest of its item tower's weights."""
        if self.checkpoint_digest:
            return self.checkpoint_digest
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.item_tower.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return "tower-" + digest.hexdigest()[:12]

    def _query(
        self, request_vectors: np.ndarray, history_rows: Sequence[np.ndarray], user_rows: np.ndarray | None
    ) -> torch.Tensor:
        """(B, D) query-tower outputs; only the last ``max_history`` history rows are used."""
        rows, mask = pad_rows(history_rows, self.model.config.max_history)
        with torch.no_grad():
            query: torch.Tensor = self.model.encode_query(
                torch.from_numpy(np.ascontiguousarray(request_vectors, dtype=np.float32)),  # (B, D)
                torch.from_numpy(
                    np.ascontiguousarray(self.index.vectors[rows.reshape(-1)], dtype=np.float32)
                ).reshape(rows.shape[0], rows.shape[1], self.index.vectors.shape[1]),  # (B, H, D)
                torch.from_numpy(mask),  # (B, H)
                torch.from_numpy(np.asarray(user_rows, dtype=np.int64)) if user_rows is not None else None,
            )
        return query

    def search_query(self, request_vector: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        # score = query . item / temperature, temperature > 0: the inner product orders the items.
        out: np.ndarray = self._query(np.asarray(request_vector)[None, :], [history_rows], None).numpy()[0]
        return out

    def score_rows(
        self, request_vector: np.ndarray, history_rows: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        query = self._query(np.asarray(request_vector)[None, :], [history_rows], None)
        with torch.no_grad():
            out: np.ndarray = self.model.score(query, self._items[torch.from_numpy(rows)]).numpy()[0]
        return out

    @classmethod
    def from_checkpoint(
        cls, checkpoint_path: str | os.PathLike[str], index: ItemIndex, encoder: Encoder
    ) -> WhisperLiteRanker:
        """Load a checkpoint file (the app's path); refuses one trained with another encoder."""
        checkpoint = load_checkpoint(checkpoint_path)
        check_encoder(checkpoint, encoder.encoder_id)
        check_encoder(checkpoint, index.encoder_id)
        if checkpoint.config.embed_dim != index.vectors.shape[1]:
            raise ValueError(
                f"checkpoint expects {checkpoint.config.embed_dim}-d embeddings, index has {index.vectors.shape[1]}"
            )
        path = Path(checkpoint_path)
        digest = file_digest(path)
        ranker = cls(checkpoint.build_model(), index, encoder, version=f"ckpt={path.name}@{digest}")
        ranker.checkpoint = checkpoint
        ranker.checkpoint_digest = digest
        return ranker

    def score_batch(
        self,
        request_vectors: np.ndarray,
        history_rows: Sequence[np.ndarray],
        user_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B, N) logits; only the last ``max_history`` history rows of each request are used."""
        query = self._query(request_vectors, history_rows, user_rows)
        with torch.no_grad():
            return self.model.score(query, self._items).numpy()
