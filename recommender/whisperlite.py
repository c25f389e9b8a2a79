"""Inference with a trained WhisperLite checkpoint behind the :class:`~recommender.ranking.Ranker` API.

Inference only: nothing here imports :mod:`recommender.training`, so the web app loads a
checkpoint without pulling in data loaders or training code.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from recommender.checkpoint import check_encoder, file_digest, load_checkpoint
from recommender.embeddings import ItemIndex
from recommender.encoders import Encoder
from recommender.ranking import WHISPERLITE, EmbeddingRanker


class WhisperLiteRanker(EmbeddingRanker):
    """Ranks the whole catalog for a request and a (possibly empty) history.

    Users of the study are never in the training data, so the user-id term is never used
    here: personalization comes from the history items alone.
    """

    system = WHISPERLITE

    def __init__(self, checkpoint_path: str | os.PathLike[str], index: ItemIndex, encoder: Encoder) -> None:
        checkpoint = load_checkpoint(checkpoint_path)
        check_encoder(checkpoint, encoder.encoder_id)
        check_encoder(checkpoint, index.encoder_id)
        if checkpoint.config.embed_dim != index.vectors.shape[1]:
            raise ValueError(
                f"checkpoint expects {checkpoint.config.embed_dim}-d embeddings, index has {index.vectors.shape[1]}"
            )
        super().__init__(index, encoder)
        self.checkpoint = checkpoint
        self.model = checkpoint.build_model()
        path = Path(checkpoint_path)
        self.version = f"{encoder.encoder_id};ckpt={path.name}@{file_digest(path)}"
        with torch.no_grad():
            # Item tower output depends only on the catalog: compute it once per process.
            self._frozen = torch.from_numpy(np.ascontiguousarray(index.vectors, dtype=np.float32))
            self._items = self.model.encode_items(self._frozen)  # (N, D)

    def scores(self, request_vector: np.ndarray, history_rows: np.ndarray) -> np.ndarray:
        """(N,) logits for one request vector (D,) and history row numbers (H,)."""
        with torch.no_grad():
            request = torch.from_numpy(np.asarray(request_vector, dtype=np.float32)).unsqueeze(0)  # (1, D)
            rows = torch.from_numpy(np.asarray(history_rows, dtype=np.int64))
            limit = self.model.config.max_history
            rows = rows[-limit:] if limit > 0 else rows[:0]  # [-0:] would keep everything
            history = self._frozen[rows].unsqueeze(0)  # (1, H, D)
            mask = torch.ones(1, len(rows), dtype=torch.bool)  # (1, H)
            query = self.model.encode_query(request, history, mask, None)  # (1, D)
            return self.model.score(query, self._items)[0].numpy()
