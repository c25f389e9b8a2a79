"""Hand-built WhisperLite checkpoints for tests: one that listens (untrained = zero-shot), one that does not."""

from __future__ import annotations

from pathlib import Path

import torch

from recommender.checkpoint import Checkpoint, save_checkpoint
from recommender.model import WhisperLite, WhisperLiteConfig


def write_checkpoint(path: Path, encoder_id: str, dim: int, *, history_overrides: bool) -> Path:
    """An untrained network (ranks exactly like zero-shot), or one whose history term dwarfs the request.

    ``history_overrides`` opens the bounded gate wide (bound 20, gate ~1): the failure mode of
    issue 7 made extreme, so the fidelity probe must catch it.
    """
    config = WhisperLiteConfig(embed_dim=dim, history_bound=20.0 if history_overrides else 0.5)
    model = WhisperLite(config)
    if history_overrides:
        with torch.no_grad():
            model.history_gate.fill_(3.0)
            model.gate[-1].bias.fill_(5.0)
    return save_checkpoint(
        path,
        Checkpoint(
            config=config, state_dict=model.state_dict(), encoder_id=encoder_id, data_fingerprint="test"
        ),
    )
