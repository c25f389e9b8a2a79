"""The WhisperLite network: personalization layers over frozen text/image embeddings.

Following Sevegnani et al. (arXiv 2207.12033), the pretrained encoder stays frozen and only
small layers on top of it are trained:

* request tower: the frozen request embedding plus a residual linear map;
* item tower: the frozen item content embedding plus a residual linear map;
* user layers: request-conditioned attention pooling over the user's history items
  (masked, so 0..H items work), an optional user-id embedding for users seen in training,
  fused with the request by an MLP into a *personal* query in item space.

**The request leads, the history fills in (request-anchored composition).** The score of an
item is ``(cos(q_request, item) + g * cos(q_personal, item)) / temperature``, where
``q_request`` is the request tower's output alone and ``g`` is a learned, request- and
history-conditioned gate bounded by ``history_bound`` (``|g| <= history_bound``, 0 with no
history and no known user). The history can therefore move an item's score by at most
``history_bound`` times its spread in personal similarity: it reorders items the request
scores (nearly) equally (colours of an under-specified "casual shoes"), but cannot lift an
item the request clearly rejects above one it clearly asks for (a white shirt over a
requested black dress). What counts as "clearly" is learned: the request tower is trained
on simulation v2 (``docs/simulation.md``), whose requests sometimes name a colour, gender,
usage or pattern that contradicts the history and whose relevance then follows the request,
so the tower learns to separate named attributes by more than the history can add, and the
gate learns how much a request leaves open. Nothing is a hand-written attribute list: it
works on any catalog with text requests. The bound was chosen on simulation validation and
a fidelity validation seed (never on the reported test sets); see ``docs/benchmarks.md``.

Every learned residual branch and the gate start at zero, so an untrained model ranks
exactly like zero-shot cosine retrieval; training can only move away from that starting
point when it helps the loss. The query returned by :meth:`WhisperLite.encode_query` is
``q_request + g * q_personal`` (not unit length), so ``score = query . item / temperature``
stays one dot product for the losses and the ranker.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LOSS_MODES = ("composite", "bce", "contrastive")


@dataclass
class WhisperLiteConfig:
    """Architecture and training hyper-parameters (stored in every checkpoint)."""

    embed_dim: int = 384  # width of the frozen encoder's embeddings (MiniLM-L6: 384)
    hidden_dim: int = 256  # hidden width of the fusion MLP
    attention_dim: int = 64  # width of the history-attention keys/queries
    dropout: float = 0.1  # dropout inside the fusion MLP (training only)
    temperature: float = 0.07  # divides cosine scores; lower = sharper softmax / BCE logits
    bce_weight: float = 1.0  # weight of BCE(positive vs sampled negatives) in the composite loss
    contrastive_weight: float = 1.0  # weight of in-batch InfoNCE in the composite loss
    loss: str = "composite"  # "composite" | "bce" | "contrastive" (ablation switch)
    n_negatives: int = 16  # uniformly sampled negative items per positive for the BCE term
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    batch_size: int = 128  # training examples per step (also the InfoNCE candidate pool)
    epochs: int = 15  # maximum epochs
    patience: int = 3  # early stopping: epochs without validation Recall@10 improvement
    seed: int = 0  # seeds torch and numpy for init, shuffling and negative sampling
    n_users: int = 0  # user-id embeddings for users seen in training; 0 disables the id term
    # Training only, with n_users > 0: share of examples per batch shown as the unknown user
    # (index 0), so the path used for new users and by the app's ranker is trained too.
    user_dropout: float = 0.3
    max_history: int = 20  # most recent history items fed to the attention pooling
    mask_request: bool = False  # personalization-only variant: the request is never seen
    # Largest weight the history term may get next to the request term (see module docstring).
    history_bound: float = 0.3

    def __post_init__(self) -> None:
        if self.loss not in LOSS_MODES:
            raise ValueError(f"loss must be one of {LOSS_MODES}, got {self.loss!r}")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WhisperLiteConfig:
        """Build from a stored dict, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ResidualProjection(nn.Module):
    """``x + W x`` with ``W`` initialised to zero: the identity until training moves it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., D)
        out: torch.Tensor = x + self.linear(x)
        return out


class WhisperLite(nn.Module):
    """Request tower + item tower + user layers; see the module docstring."""

    def __init__(self, config: WhisperLiteConfig) -> None:
        super().__init__()
        self.config = config
        d, a, h = config.embed_dim, config.attention_dim, config.hidden_dim
        self.request_tower = ResidualProjection(d)
        self.item_tower = ResidualProjection(d)
        # Attention pooling: the query mixes the projected request with a learned vector so
        # pooling still works when the request is masked (personalization-only variant).
        self.attn_query = nn.Linear(d, a)
        self.attn_query_bias = nn.Parameter(torch.zeros(a))
        self.attn_key = nn.Linear(d, a)
        # Index 0 is "unknown user": padding_idx keeps it a zero vector that never trains, so
        # unseen users simply get no id term.
        self.user_embedding = (
            nn.Embedding(config.n_users + 1, d, padding_idx=0) if config.n_users > 0 else None
        )
        fuse_in = 3 * d + 1  # request, pooled history, user-id vector, has-history flag
        self.fuse = nn.Sequential(
            nn.Linear(fuse_in, h), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(h, d)
        )
        # Zero last layer: an untrained personal query is the pooled history.
        last = self.fuse[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        # Request-conditioned gate: how much of the request the history may fill in.
        self.gate = nn.Sequential(nn.Linear(2 * d, a), nn.GELU(), nn.Linear(a, 1))
        # Overall history scale, zero at start so the untrained model is zero-shot exactly.
        self.history_gate = nn.Parameter(torch.zeros(()))

    # -- towers -------------------------------------------------------------------------
    def encode_items(self, item_vectors: torch.Tensor) -> torch.Tensor:
        """(N, D) frozen item embeddings -> (N, D) L2-normalised item-space vectors."""
        return F.normalize(self.item_tower(item_vectors), dim=-1)

    def pool_history(
        self, query: torch.Tensor, history: torch.Tensor, history_mask: torch.Tensor
    ) -> torch.Tensor:
        """Masked attention pooling.

        query (B, D) projected request; history (B, H, D) frozen item embeddings;
        history_mask (B, H) bool, True for real items. Returns (B, D); all-zero for users
        with no history (H may be 0).
        """
        b, hlen, d = history.shape
        if hlen == 0:
            return history.new_zeros(b, d)
        values = self.item_tower(history)  # (B, H, D): pooled in item space
        q = self.attn_query(query) + self.attn_query_bias  # (B, A)
        k = self.attn_key(history)  # (B, H, A)
        logits = torch.einsum("ba,bha->bh", q, k) / math.sqrt(q.shape[-1])  # (B, H)
        logits = logits.masked_fill(~history_mask, -1e9)
        # Softmax over an all-masked row is uniform; multiplying by the mask zeroes it.
        weights = torch.softmax(logits, dim=-1) * history_mask.to(logits.dtype)  # (B, H)
        return torch.einsum("bh,bhd->bd", weights, values)

    def encode_query(
        self,
        request: torch.Tensor,
        history: torch.Tensor,
        history_mask: torch.Tensor,
        user_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The request-anchored query ``q_request + g * q_personal`` in item space.

        request (B, D); history (B, H, D); history_mask (B, H) bool; user_index (B,) long
        with 0 = unknown user (or None). Returns (B, D), norm at most ``1 + history_bound``
        (unit length for the personalization-only variant).
        """
        if self.config.mask_request:
            request = torch.zeros_like(request)
        r = self.request_tower(request)  # (B, D)
        pooled = self.pool_history(r, history, history_mask)  # (B, D)
        if history_mask.shape[-1]:
            has_history = history_mask.any(dim=-1, keepdim=True).to(r.dtype)  # (B, 1)
        else:
            has_history = r.new_zeros(r.shape[0], 1)
        if self.user_embedding is not None and user_index is not None:
            # Out-of-range ids are unknown users (0), not the last known user as a clamp would make them.
            in_range = (user_index >= 0) & (user_index <= self.config.n_users)
            idx = torch.where(in_range, user_index, torch.zeros_like(user_index))  # (B,)
            # Explicitly zero for unknown users (0), even if row 0 was ever modified.
            user = self.user_embedding(idx) * (idx > 0).unsqueeze(-1).to(r.dtype)  # (B, D)
        else:
            user = torch.zeros_like(r)
        fused = self.fuse(torch.cat([r, pooled, user, has_history], dim=-1))  # (B, D)
        personal = F.normalize(pooled + fused, dim=-1)  # (B, D)
        if self.config.mask_request:
            # Personalization-only has no request to anchor on: the personal query is all.
            return personal
        known = has_history
        if self.user_embedding is not None and user_index is not None:
            known = torch.maximum(known, (user.abs().sum(-1, keepdim=True) > 0).to(r.dtype))
        # |g| <= history_bound; 0 without history or known user (nothing to fill in from).
        g = (
            self.config.history_bound
            * torch.sigmoid(self.gate(torch.cat([r, pooled], dim=-1)))
            * torch.tanh(self.history_gate)
            * known
        )  # (B, 1)
        return F.normalize(r, dim=-1) + g * personal

    def score(self, query: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B, D) queries x (N, D) normalised item vectors -> (B, N) logits."""
        return query @ items.T / self.config.temperature

    def forward(
        self,
        request: torch.Tensor,
        history: torch.Tensor,
        history_mask: torch.Tensor,
        item_vectors: torch.Tensor,
        user_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores of every given item for every query: (B, N) logits."""
        query = self.encode_query(request, history, history_mask, user_index)
        return self.score(query, self.encode_items(item_vectors))
