from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recommender.losses import composite_loss, info_nce_loss
from recommender.model import WhisperLite, WhisperLiteConfig

D = 16


def _config(**kw: object) -> WhisperLiteConfig:
    return WhisperLiteConfig(embed_dim=D, hidden_dim=32, attention_dim=8, **kw)  # type: ignore[arg-type]


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _perturb(model: WhisperLite) -> None:
    """Give every parameter non-zero values, as training would."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def test_shapes() -> None:
    model = WhisperLite(_config(n_users=5)).eval()
    request, history = _randn(3, D), _randn(3, 4, D, seed=1)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    items = _randn(10, D, seed=2)
    scores = model(request, history, mask, items, torch.tensor([1, 0, 5]))
    assert scores.shape == (3, 10)
    query = model.encode_query(request, history, mask)
    assert query.shape == (3, D)
    assert torch.allclose(query.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_empty_history_is_masked_and_finite() -> None:
    model = WhisperLite(_config())
    _perturb(model)
    model.eval()
    request = _randn(2, D)
    # Masked-out history content must not change the query.
    mask = torch.zeros(2, 3, dtype=torch.bool)
    q1 = model.encode_query(request, _randn(2, 3, D, seed=5), mask)
    q2 = model.encode_query(request, _randn(2, 3, D, seed=6), mask)
    assert torch.allclose(q1, q2)
    # H = 0 works and equals the all-masked case.
    q0 = model.encode_query(request, torch.zeros(2, 0, D), torch.zeros(2, 0, dtype=torch.bool))
    assert torch.isfinite(q0).all()
    assert torch.allclose(q0, q1, atol=1e-6)
    # Masked padding next to real items is ignored too.
    hist = _randn(1, 3, D, seed=7)
    m = torch.tensor([[True, False, False]])
    other = hist.clone()
    other[0, 1:] = _randn(2, D, seed=8)
    assert torch.allclose(model.encode_query(request[:1], hist, m), model.encode_query(request[:1], other, m))


def test_unseen_user_gets_no_id_term() -> None:
    model = WhisperLite(_config(n_users=3))
    _perturb(model)
    model.eval()
    request, history = _randn(1, D), _randn(1, 2, D, seed=3)
    mask = torch.ones(1, 2, dtype=torch.bool)
    unknown = model.encode_query(request, history, mask, torch.tensor([0]))
    no_ids = model.encode_query(request, history, mask, None)
    known = model.encode_query(request, history, mask, torch.tensor([2]))
    assert torch.allclose(unknown, no_ids)
    assert not torch.allclose(known, no_ids)
    assert torch.isfinite(unknown).all()


def test_untrained_model_ranks_like_zero_shot() -> None:
    model = WhisperLite(_config()).eval()
    request, items = _randn(4, D), _randn(50, D, seed=9)
    history = _randn(4, 3, D, seed=10)
    scores = model(request, history, torch.ones(4, 3, dtype=torch.bool), items).detach().numpy()
    zero_shot = (request @ items.T).numpy()
    np.testing.assert_array_equal(np.argsort(-scores, axis=1), np.argsort(-zero_shot, axis=1))
    np.testing.assert_allclose(scores * model.config.temperature, zero_shot, atol=1e-5)


def test_mask_request_ignores_the_request() -> None:
    model = WhisperLite(_config(mask_request=True))
    _perturb(model)
    model.eval()
    history, mask = _randn(1, 2, D, seed=3), torch.ones(1, 2, dtype=torch.bool)
    a = model.encode_query(_randn(1, D, seed=1), history, mask)
    b = model.encode_query(_randn(1, D, seed=2), history, mask)
    assert torch.allclose(a, b)


@pytest.mark.parametrize("mode", ["composite", "bce", "contrastive"])
def test_loss_ablation_switches(mode: str) -> None:
    config = _config(loss=mode)
    q, pos, neg = _randn(4, D), _randn(4, D, seed=1), _randn(4, 5, D, seed=2)
    parts = composite_loss(config, q, pos, neg, torch.arange(4))
    assert torch.isfinite(parts.total)
    assert (parts.bce > 0) == (mode in ("composite", "bce"))
    assert (parts.contrastive > 0) == (mode in ("composite", "contrastive"))
    if mode == "composite":
        expected = config.bce_weight * parts.bce + config.contrastive_weight * parts.contrastive
        assert float(parts.total) == pytest.approx(expected, rel=1e-5)
        halved = composite_loss(dataclasses.replace(config, bce_weight=0.5), q, pos, neg, torch.arange(4))
        assert float(halved.total) == pytest.approx(0.5 * parts.bce + parts.contrastive, rel=1e-5)


def test_info_nce_masks_duplicate_positives() -> None:
    q = _randn(3, D)
    pos = torch.stack([q[0], q[0], q[2]])
    # Rows 0 and 1 share the same positive item: it must not count as a negative for either.
    with_ids = info_nce_loss(q, pos, 0.1, torch.tensor([7, 7, 9]))
    without = info_nce_loss(q, pos, 0.1, None)
    assert float(with_ids) < float(without)


def test_config_validation_and_roundtrip() -> None:
    with pytest.raises(ValueError):
        WhisperLiteConfig(loss="mse")
    config = _config(seed=3)
    assert WhisperLiteConfig.from_dict({**config.to_dict(), "unknown": 1}) == config


def test_history_moves_any_score_by_at_most_the_bound() -> None:
    # The request-anchored composition: whatever the weights, the history adds at most
    # history_bound (in cosine units) to an item's score, so it cannot override the request.
    model = WhisperLite(_config(history_bound=0.2))
    _perturb(model)
    with torch.no_grad():
        model.history_gate.fill_(10.0)  # gate wide open
        model.gate[-1].bias.fill_(10.0)
    model.eval()
    request, items = _randn(4, D), _randn(50, D, seed=9)
    history = _randn(4, 3, D, seed=10)
    with torch.no_grad():
        with_history = model(request, history, torch.ones(4, 3, dtype=torch.bool), items)
        without = model(request, history[:, :0], torch.zeros(4, 0, dtype=torch.bool), items)
    shift = (with_history - without).abs() * model.config.temperature
    assert float(shift.max()) <= 0.2 + 1e-5
    assert float(shift.max()) > 0.1  # ... and it does move scores: personalization is on
