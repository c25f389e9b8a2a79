"""Training losses for WhisperLite: BCE over sampled negatives, in-batch InfoNCE, and their mix.

The paper trains with a composite objective: binary cross-entropy that scores the bought
item against randomly sampled catalog items, plus a contrastive (InfoNCE) term that uses
the other positives in the batch as negatives. In both terms a "negative" that is known to
be relevant to the query (the target itself, or another item of its relevant set) is masked
out rather than pushed down. ``WhisperLiteConfig.loss`` switches to
either term alone for the ablations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recommender.model import WhisperLiteConfig


@dataclass
class LossParts:
    """The total loss and its (detached) components, for logging."""

    total: torch.Tensor
    bce: float
    contrastive: float


def bce_loss(
    pos_logits: torch.Tensor, neg_logits: torch.Tensor, neg_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean BCE with label 1 for positives (B,) and 0 for sampled negatives (B, K).

    ``neg_mask`` (B, K) bool, False for sampled "negatives" that are really correct (the
    target itself, or another relevant item): those get zero weight and the mean is taken
    over the remaining terms only. Without a mask this is the plain mean over all 1+K terms.
    """
    logits = torch.cat([pos_logits.unsqueeze(-1), neg_logits], dim=-1)  # (B, 1+K)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    if neg_mask is None:
        return F.binary_cross_entropy_with_logits(logits, labels)
    weight = torch.cat([torch.ones_like(pos_logits).unsqueeze(-1), neg_mask.to(logits.dtype)], dim=-1)
    per_term = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # (B, 1+K)
    return (per_term * weight).sum() / weight.sum()


def info_nce_loss(
    query: torch.Tensor,
    positives: torch.Tensor,
    temperature: float,
    positive_ids: torch.Tensor | None = None,
    relevant: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch InfoNCE: query i must pick positive i among the batch's positives.

    query, positives: (B, D); positive_ids (B,) item rows. A column that is *also a right
    answer* for query i is masked out of i's negatives instead of being pushed down: the
    same item (two rows sharing a positive) and, with ``relevant`` (B, R) rows of each
    query's known relevant items padded with -1, any other relevant item (in the shopper
    simulation 53 % of queries had one in a batch of 128).
    """
    logits = query @ positives.T / temperature  # (B, B)
    if positive_ids is not None:
        same = positive_ids.unsqueeze(0) == positive_ids.unsqueeze(1)  # (B, B)
        if relevant is not None:
            # same[i, j]: column j's positive is in query i's relevant set.
            same |= (positive_ids.view(1, -1, 1) == relevant.unsqueeze(1)).any(dim=-1)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    targets = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits, targets)


def composite_loss(
    config: WhisperLiteConfig,
    query: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    positive_ids: torch.Tensor | None = None,
    neg_mask: torch.Tensor | None = None,
    relevant: torch.Tensor | None = None,
) -> LossParts:
    """``bce_weight * BCE + contrastive_weight * InfoNCE`` with the config's ablation switch.

    query (B, D), positives (B, D), negatives (B, K, D): all L2-normalised item-space vectors.
    ``loss="bce"`` or ``"contrastive"`` drops the other term entirely (not just weight 0), so
    the ablation does not even compute it. ``neg_mask`` (B, K) bool marks the sampled
    negatives that count (see :func:`bce_loss`); ``relevant`` (B, R) known relevant rows
    (padded with -1) keeps relevant items out of the in-batch negatives (:func:`info_nce_loss`).
    """
    t = config.temperature
    total = query.new_zeros(())
    bce_value = contrastive_value = 0.0
    if config.loss in ("composite", "bce"):
        pos_logits = (query * positives).sum(-1) / t  # (B,)
        neg_logits = torch.einsum("bd,bkd->bk", query, negatives) / t  # (B, K)
        bce = bce_loss(pos_logits, neg_logits, neg_mask)
        weight = config.bce_weight if config.loss == "composite" else 1.0
        total = total + weight * bce
        bce_value = float(bce.detach())
    if config.loss in ("composite", "contrastive"):
        nce = info_nce_loss(query, positives, t, positive_ids, relevant)
        weight = config.contrastive_weight if config.loss == "composite" else 1.0
        total = total + weight * nce
        contrastive_value = float(nce.detach())
    return LossParts(total=total, bce=bce_value, contrastive=contrastive_value)
