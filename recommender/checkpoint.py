"""WhisperLite checkpoints: one file with config, weights, optimizer state and provenance.

A checkpoint records the ``encoder_id`` its frozen embeddings came from; loading it next to
a different encoder would silently produce garbage rankings, so :func:`check_encoder`
refuses it with :class:`CheckpointMismatch`. Files are written atomically (temp file in the
same directory, fsync, rename: :func:`recommender.files.atomic_write`) so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from recommender.files import atomic_write, file_digest
from recommender.model import WhisperLite, WhisperLiteConfig

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointMismatch",
    "check_encoder",
    "file_digest",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "whisperlite-checkpoint"
#: 2: request-anchored query (bounded history gate, see recommender.model). Format-1 files
#: hold the older network, whose history could override the request: refused, retrain them.
FORMAT_VERSION = 2


class CheckpointError(RuntimeError):
    """The file is missing, unreadable, or not a WhisperLite checkpoint."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint was trained on embeddings from another encoder."""


@dataclass
class Checkpoint:
    """Everything a checkpoint file holds."""

    config: WhisperLiteConfig
    state_dict: dict[str, torch.Tensor]
    encoder_id: str
    data_fingerprint: str  # identifies the training data (dataset + split + catalog)
    epoch: int = 0
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    user_ids: list[str] = field(default_factory=list)  # user_ids[i] has embedding row i + 1
    path: Path | None = None

    def build_model(self) -> WhisperLite:
        """The network with these weights, in eval mode."""
        model = WhisperLite(self.config)
        model.load_state_dict(self.state_dict)
        model.eval()
        return model


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": checkpoint.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
        "optimizer_state": checkpoint.optimizer_state,
        "epoch": int(checkpoint.epoch),
        "step": int(checkpoint.step),
        "encoder_id": checkpoint.encoder_id,
        "data_fingerprint": checkpoint.data_fingerprint,
        "metrics": {k: float(v) for k, v in checkpoint.metrics.items()},
        "user_ids": list(checkpoint.user_ids),
    }
    with atomic_write(path, fsync=True) as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike[str], *, expected_encoder_id: str | None = None) -> Checkpoint:
    """Read a checkpoint; raise :class:`CheckpointError` with a readable reason on failure.

    With ``expected_encoder_id`` it also refuses a checkpoint from another encoder.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # weights_only: a checkpoint is data, never code to execute.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a readable WhisperLite checkpoint ({type(exc).__name__})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a WhisperLite checkpoint")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}, newer than this code"
        )
    if payload.get("format_version", 0) < FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was trained by an older WhisperLite (checkpoint format "
            f"{payload.get('format_version', 0)}, whose history could override the request); retrain it"
        )
    ckpt = Checkpoint(
        config=WhisperLiteConfig.from_dict(payload["config"]),
        state_dict=payload["state_dict"],
        encoder_id=payload["encoder_id"],
        data_fingerprint=payload.get("data_fingerprint", ""),
        epoch=payload.get("epoch", 0),
        step=payload.get("step", 0),
        metrics=payload.get("metrics", {}),
        optimizer_state=payload.get("optimizer_state"),
        user_ids=list(payload.get("user_ids", [])),
        path=path,
    )
    if expected_encoder_id is not None:
        check_encoder(ckpt, expected_encoder_id)
    return ckpt


def check_encoder(checkpoint: Checkpoint, encoder_id: str) -> None:
    """Raise :class:`CheckpointMismatch` unless the checkpoint was trained with ``encoder_id``."""
    if checkpoint.encoder_id != encoder_id:
        where = f" ({checkpoint.path})" if checkpoint.path else ""
        raise CheckpointMismatch(
            f"checkpoint{where} was trained with encoder {checkpoint.encoder_id!r}, but the encoder in use "
            f"is {encoder_id!r}; retrain it or set the encoder it was trained with"
        )
