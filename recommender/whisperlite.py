"""WhisperLite behind the :class:`~recommender.scoring.Ranker` API, from a checkpoint or a model.

Inference only: nothing here imports :mod:`recommender.training`, so the web app loads a
checkpoint without pulling in data loaders or training code. The offline evaluation builds
the same class around the network it has just trained (:meth:`WhisperLiteRanker.__init__`),
so the benchmark scores exactly what the app serves.
"""

from __future__ import annotations

import os
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
        with torch.no_grad():
            # Item tower output depends only on the catalog: compute it once per ranker.
            self._frozen = torch.from_numpy(np.ascontiguousarray(index.vectors, dtype=np.float32))
            self._items = self.model.encode_items(self._frozen)  # (N, D)

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
        ranker = cls(
            checkpoint.build_model(), index, encoder, version=f"ckpt={path.name}@{file_digest(path)}"
        )
        ranker.checkpoint = checkpoint
        return ranker

    def score_batch(
        self,
        request_vectors: np.ndarray,
        history_rows: Sequence[np.ndarray],
        user_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B, N) logits; only the last ``max_history`` history rows of each request are used."""
        rows, mask = pad_rows(history_rows, self.model.config.max_history)
        with torch.no_grad():
            query = self.model.encode_query(
                torch.from_numpy(np.ascontiguousarray(request_vectors, dtype=np.float32)),  # (B, D)
                self._frozen[torch.from_numpy(rows)],  # (B, H, D)
                torch.from_numpy(mask),  # (B, H)
                torch.from_numpy(np.asarray(user_rows, dtype=np.int64)) if user_rows is not None else None,
            )
            return self.model.score(query, self._items).numpy()
