"""WhisperLite training: frozen embeddings computed once, small layers trained on top.

:func:`prepare` splits a dataset, embeds the catalog (cached by
:func:`recommender.embeddings.build_item_index`) and the request texts (cached in an npz
keyed by encoder and texts), and turns examples into index arrays. :func:`train_whisperlite`
runs the seeded training loop with early stopping on validation Recall@10 (epoch 0, the
untrained zero-shot-equivalent model, is the initial best; without usable validation every
epoch runs and the last is kept) and writes the best epoch atomically as a checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recommender.catalog import CatalogItem
from recommender.checkpoint import Checkpoint, save_checkpoint
from recommender.embeddings import ItemIndex, build_item_index
from recommender.encoders import Encoder
from recommender.files import atomic_write
from recommender.losses import composite_loss
from recommender.model import WhisperLite, WhisperLiteConfig
from recommender.scoring import pad_rows
from recommender.training.cases import matrix_metrics
from recommender.training.data import (
    Example,
    InteractionDataset,
    Split,
    describe_items_from_training,
    split_dataset,
)
from recommender.whisperlite import WhisperLiteRanker

log = logging.getLogger(__name__)


def encode_texts_cached(
    texts: Sequence[str],
    encoder: Encoder,
    cache_dir: str | os.PathLike[str] | None,
    *,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Embed distinct texts once; reuse an npz cache keyed on encoder id and the text set."""
    unique = sorted(set(texts))
    key = hashlib.sha256((encoder.encoder_id + "\x00" + "\x00".join(unique)).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "requests" / f"{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(unique, data["vectors"].astype(np.float32), strict=True))
    vectors = encoder.encode_text(unique, normalize=True, progress=progress)
    if path is not None:
        with atomic_write(path) as fh:
            np.savez(fh, vectors=vectors)
    return dict(zip(unique, vectors, strict=True))


@dataclass
class Prepared:
    """A split dataset with every frozen embedding it needs, ready for training and scoring."""

    dataset: InteractionDataset
    split: Split
    items: list[CatalogItem]  # the catalog as embedded (see describe_items_from_training)
    index: ItemIndex  # catalog vectors (items possibly described from training requests)
    requests: dict[str, np.ndarray]  # request text -> (D,) normalised vector
    train_users: list[str]  # user_ids[i] gets embedding row i + 1 (0 = unknown)
    fingerprint: str = ""
    user_position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_position = {u: i + 1 for i, u in enumerate(self.train_users)}

    @property
    def dim(self) -> int:
        return int(self.index.vectors.shape[1])

    def request_matrix(self, examples: Sequence[Example]) -> np.ndarray:
        """(B, D) request vectors."""
        if not examples:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.requests[e.request_text] for e in examples])

    def history_rows(self, examples: Sequence[Example], max_history: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, H) row numbers (0-padded) and (B, H) bool mask of the most recent history items."""
        return pad_rows([self.index.rows(e.history_item_ids) for e in examples], max_history)

    def user_indices(self, examples: Sequence[Example]) -> np.ndarray:
        return np.array([self.user_position.get(e.user_id, 0) for e in examples], dtype=np.int64)


def prepare(
    dataset: InteractionDataset,
    encoder: Encoder,
    cache_dir: str | os.PathLike[str] | None,
    *,
    image_root: str | None = None,
    max_history: int = 50,
    progress: bool = True,
) -> Prepared:
    """Split ``dataset`` in time (its protocol) and compute (or load cached) frozen embeddings."""
    split = split_dataset(dataset, max_history=max_history)
    items = describe_items_from_training(dataset.items, split.train)
    index = build_item_index(items, encoder, cache_dir, image_root=image_root, progress=progress)
    texts = [e.request_text for part in (split.train, split.val, split.test) for e in part]
    requests = encode_texts_cached(texts, encoder, cache_dir, progress=progress)
    return Prepared(
        dataset, split, items, index, requests, split.train_user_ids(), fingerprint=dataset.fingerprint()
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def whisperlite_scores(
    model: WhisperLite,
    prep: Prepared,
    examples: Sequence[Example],
    chunk: int = 512,
    *,
    use_user_ids: bool = True,
) -> np.ndarray:
    """(len(examples), n_items) logits of the model, computed by the app's :class:`WhisperLiteRanker`.

    ``use_user_ids=False`` treats every user as unseen (for a checkpoint trained elsewhere,
    whose user-id table does not match this dataset).
    """
    ranker = WhisperLiteRanker(model, prep.index)  # puts the model in eval mode
    out = np.zeros((len(examples), len(prep.index.item_ids)), dtype=np.float32)
    for start in range(0, len(examples), chunk):
        part = examples[start : start + chunk]
        out[start : start + len(part)] = ranker.score_batch(
            prep.request_matrix(part),
            [prep.index.rows(e.history_item_ids) for e in part],
            prep.user_indices(part) if use_user_ids else None,
        )
    return out


def recall_at_10(scores: np.ndarray, prep: Prepared, examples: Sequence[Example], seed: int = 0) -> float:
    """Mean Recall@10 of a score matrix, history excluded, ties by the app's rule (validation metric).

    NaN when no case is usable (empty ``examples`` or every case skipped). ``seed`` is
    accepted for callers of the older API; the tie rule needs none (it is derived from each
    request, see :mod:`recommender.scoring`).
    """
    return matrix_metrics(scores, prep, examples, ("recall@10",))["recall@10"]


def relevant_rows(prep: Prepared, examples: Sequence[Example]) -> torch.Tensor:
    """(B, R) catalog rows of each example's target and relevant items, padded with -1."""
    rows = [
        [int(r) for r in prep.index.rows([e.target_item_id, *sorted(e.relevant_item_ids)])] for e in examples
    ]
    width = max((len(r) for r in rows), default=1)
    out = torch.full((len(rows), width), -1, dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


def negative_mask(neg_rows: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """(B, K) bool, False where a sampled negative row is the target or another relevant item.

    neg_rows (B, K) sampled catalog rows; relevant (B, R) rows padded with -1 (never a row).
    """
    return ~(neg_rows.unsqueeze(-1) == relevant.unsqueeze(1)).any(dim=-1)


def _save(
    checkpoint_path: str | os.PathLike[str],
    prep: Prepared,
    config: WhisperLiteConfig,
    model: WhisperLite,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    step: int,
    val_recall: float,
    use_user_ids: bool,
) -> Path:
    return save_checkpoint(
        checkpoint_path,
        Checkpoint(
            config=config,
            state_dict=model.state_dict(),
            encoder_id=prep.index.encoder_id,
            data_fingerprint=prep.fingerprint,
            epoch=epoch,
            step=step,
            metrics={"val_recall@10": val_recall},
            optimizer_state=optimizer.state_dict(),
            user_ids=prep.train_users if use_user_ids else [],
        ),
    )


@dataclass
class TrainResult:
    model: WhisperLite
    config: WhisperLiteConfig
    best_epoch: int
    best_val_recall: float
    epochs_run: int
    seconds_per_epoch: float
    history: list[dict[str, float]]
    checkpoint_path: Path | None


def train_whisperlite(
    prep: Prepared,
    config: WhisperLiteConfig,
    *,
    use_user_ids: bool = False,
    checkpoint_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train on ``prep.split.train``, early-stop on validation Recall@10, keep the best epoch.

    ``best_epoch`` 0 means no trained epoch beat the untrained model on validation.
    ``epochs_run`` counts trained epochs; ``history[0]`` is the epoch-0 validation.
    """
    config = dataclasses.replace(
        config, embed_dim=prep.dim, n_users=len(prep.train_users) if use_user_ids else 0
    )
    seed_everything(config.seed)
    model = WhisperLite(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    frozen = torch.from_numpy(prep.index.vectors)  # (N, D), never trained
    train = prep.split.train
    requests = torch.from_numpy(prep.request_matrix(train))  # (n, D)
    hist_rows, hist_mask = (
        torch.from_numpy(a) for a in prep.history_rows(train, config.max_history)
    )  # (n, H)
    targets = torch.from_numpy(prep.index.rows([e.target_item_id for e in train]))  # (n,)
    users = torch.from_numpy(prep.user_indices(train))  # (n,)
    relevant = relevant_rows(prep, train)  # (n, R): target + relevant rows, for negative masking
    if len(targets) != len(train):
        raise ValueError("some training targets are not in the catalog")
    if not train:
        raise ValueError("no training examples")
    generator = torch.Generator().manual_seed(config.seed)
    n_items = frozen.shape[0]
    path: Path | None = None
    stale, step, history, epoch_times = 0, 0, [], []
    val = prep.split.val

    def validate() -> float:
        return (
            recall_at_10(whisperlite_scores(model, prep, val), prep, val, seed=config.seed)
            if val
            else math.nan
        )

    # Epoch 0 is the untrained model, which ranks exactly like zero-shot (zero-initialised
    # residuals). It is the initial best, so a run in which training only hurts validation
    # keeps its zero-shot start instead of its first (already worse) epoch.
    best_recall = validate()
    # No usable validation (no cases, or every case skipped -> NaN): early stopping has
    # nothing to go on, so train every epoch and keep the last one.
    early_stopping = not math.isnan(best_recall)
    best_epoch, best_state = 0, copy.deepcopy(model.state_dict())
    history.append({"epoch": 0, "loss": math.nan, "val_recall@10": best_recall})
    if checkpoint_path is not None and early_stopping:
        path = _save(checkpoint_path, prep, config, model, optimizer, 0, step, best_recall, use_user_ids)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs, desc=f"training {config.loss} seed {config.seed}", unit="epoch")
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=generator)
        losses = []
        for start in range(0, len(order), config.batch_size):
            b = order[start : start + config.batch_size]
            if len(b) < 2:  # InfoNCE needs at least one in-batch negative
                continue
            user_b = users[b]
            if config.n_users > 0 and config.user_dropout > 0:
                # User-id dropout: some known users are presented as unknown (0), so the
                # unknown-user path (new users, the study app's ranker) is trained as well.
                drop = torch.rand(len(b), generator=generator) < config.user_dropout
                user_b = user_b.masked_fill(drop, 0)
            query = model.encode_query(requests[b], frozen[hist_rows[b]], hist_mask[b], user_b)  # (B, D)
            positives = model.encode_items(frozen[targets[b]])  # (B, D)
            neg_rows = torch.randint(0, n_items, (len(b), config.n_negatives), generator=generator)  # (B, K)
            negatives = model.encode_items(frozen[neg_rows])  # (B, K, D)
            # Uniform sampling can draw the target itself (or another relevant item): such a
            # "negative" would push the positive down, so it gets zero BCE weight.
            neg_mask = negative_mask(neg_rows, relevant[b])  # (B, K)
            # Other relevant items in the batch are masked out of the InfoNCE negatives too.
            parts = composite_loss(config, query, positives, negatives, targets[b], neg_mask, relevant[b])
            optimizer.zero_grad()
            parts.total.backward()  # type: ignore[no-untyped-call]  # torch's stub is untyped
            optimizer.step()
            step += 1
            losses.append(float(parts.total.detach()))
        epoch_times.append(time.perf_counter() - started)
        val_recall = validate()
        history.append(
            {"epoch": epoch, "loss": float(np.mean(losses)) if losses else 0.0, "val_recall@10": val_recall}
        )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", val_r10=f"{val_recall:.3f}")
        if not early_stopping:
            best_recall, best_epoch, stale = val_recall, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint_path is not None and epoch == config.epochs:  # only the last is kept
                path = _save(
                    checkpoint_path, prep, config, model, optimizer, epoch, step, best_recall, use_user_ids
                )
        elif val_recall > best_recall:
            best_recall, best_epoch, stale = val_recall, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint_path is not None:
                # Written at every improvement, so an interrupted run still leaves its best epoch.
                path = _save(
                    checkpoint_path, prep, config, model, optimizer, epoch, step, best_recall, use_user_ids
                )
        else:
            stale += 1
            if stale >= config.patience:
                break
    if bar is not None:
        bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        config=config,
        best_epoch=best_epoch,
        best_val_recall=best_recall,
        epochs_run=len(history) - 1,  # history[0] is the untrained model (epoch 0)
        seconds_per_epoch=float(np.mean(epoch_times)) if epoch_times else 0.0,
        history=history,
        checkpoint_path=path,
    )
