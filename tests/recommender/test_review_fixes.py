"""Regression tests for the reviewer's findings (each fails on the code before its fix).

Covers: linked-ASIN Amazon reviews as one event, random tie-breaking, epoch-0 early
stopping, training without validation, BCE negatives that equal the positive, out-of-range
user ids and user-id dropout, ``max_history=0``, readable cache/checkpoint files, plus
hand-built checks of the evaluation loop, determinism and train/app scoring parity.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from recommender.catalog import CatalogItem
from recommender.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from recommender.embeddings import ItemIndex
from recommender.losses import bce_loss
from recommender.model import WhisperLite, WhisperLiteConfig
from recommender.training import train as train_module
from recommender.training.cases import matrix_metrics
from recommender.training.data import Example, Interaction, InteractionDataset, Split, temporal_split
from recommender.training.loaders import load_amazon_reviews
from recommender.training.simulation import simulate_shoppers
from recommender.training.train import (
    Prepared,
    negative_mask,
    prepare,
    train_whisperlite,
    whisperlite_scores,
)
from recommender.whisperlite import WhisperLiteRanker

# --------------------------------------------------------------------------- helpers


def _hand_prep(n_items: int = 5) -> Prepared:
    """A Prepared with a fake index (no encoder): items i0..i{n-1} at rows 0..n-1."""
    ids = [f"i{k}" for k in range(n_items)]
    items = [CatalogItem(item_id=i, title=i) for i in ids]
    vectors = np.eye(n_items, 4, dtype=np.float32)
    index = ItemIndex(ids, vectors, "fake", "fp")
    rng = np.random.default_rng(0)
    requests = {f"req{k}": rng.normal(size=4).astype(np.float32) for k in range(300)}
    return Prepared(InteractionDataset("hand", items, []), Split([], [], []), items, index, requests, [])


def _case(history: tuple[str, ...], relevant: set[str], request: str = "req0") -> Example:
    target = sorted(relevant)[0]
    return Example("u", request, target, history, frozenset(relevant), 0.0)


@pytest.fixture(scope="module")
def sim_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def sim_prep(encoder, tiny_catalog: list[CatalogItem], sim_cache: Path) -> Prepared:  # type: ignore[no-untyped-def]
    sim = simulate_shoppers(tiny_catalog, n_shoppers=40, n_events=5, seed=1)
    return prepare(sim.dataset, encoder, sim_cache, progress=False)


SMALL = {"batch_size": 32, "hidden_dim": 32, "attention_dim": 16}


# --------------------------------------------------------------------------- 1. Amazon twins


def _record(user: str, asin: str, t: int, text: str) -> dict[str, object]:
    return {"reviewerID": user, "asin": asin, "unixReviewTime": t, "summary": "", "reviewText": text}


def test_amazon_review_under_linked_asins_is_one_event(tmp_path: Path) -> None:
    records = [
        _record("u1", "A", 100, "first review"),
        _record("u1", "B", 100, "first review"),  # the same review shown under a linked ASIN
        _record("u1", "A", 200, "second review"),
        _record("u1", "B", 200, "second review"),
        _record("u1", "C", 200, "second review"),
        _record("u1", "C", 300, "third review"),
        _record("u1", "D", 300, "third review"),
        _record("u2", "A", 300, "other user, same time, other text"),
    ]
    path = tmp_path / "Fashion_5.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in records) + "\n")
    ds = load_amazon_reviews(path)
    u1 = sorted((x for x in ds.interactions if x.user_id == "u1"), key=lambda x: x.timestamp)
    assert [set(x.relevant_item_ids) for x in u1] == [{"A", "B"}, {"A", "B", "C"}, {"C", "D"}]
    assert [x.item_id for x in u1] == ["A", "A", "C"]  # first ASIN in file order
    assert {i.item_id for i in ds.items} == {"A", "B", "C", "D"}
    split = temporal_split(ds)
    (val,) = split.val
    (test,) = split.test
    # Validation is the previous review, not a twin of the test review.
    assert val.request_text == "second review" and test.request_text == "third review"
    assert test.relevant_item_ids == frozenset({"C", "D"})
    assert test.history_item_ids == ("A",)  # the earlier events' primary ASIN (A at 100 and 200)


# --------------------------------------------------------------------------- 2. ties


def test_ties_are_broken_randomly_but_deterministically() -> None:
    prep = _hand_prep(20)
    cases = [_case((), {"i19"}, f"req{k}") for k in range(200)]  # relevant item last in the catalog
    scores = np.zeros((len(cases), 20), dtype=np.float32)  # e.g. a zero query: every item ties
    a = matrix_metrics(scores, prep, cases)
    # A stable sort put i19 at rank 20 every time (recall@10 = 0); random ties give ~10/20.
    assert 0.35 < a["recall@10"] < 0.65
    assert matrix_metrics(scores, prep, cases) == a
    # Real score differences still decide the order.
    scores[:, 19] = 1.0
    assert matrix_metrics(scores, prep, cases)["mrr@100"] == 1.0


# --------------------------------------------------------------------------- 9. evaluation loop by hand


def test_matrix_metrics_hand_built() -> None:
    prep = _hand_prep(5)  # rows 0..4 = i0..i4
    scores = np.tile(np.array([5.0, 4.0, 3.0, 2.0, 1.0], dtype=np.float32), (4, 1))
    cases = [
        _case(("i0",), {"i0", "i2"}),  # relevant minus history = {i2}; ranked i1, i2, ... -> rank 2
        _case(("i2",), {"i2"}),  # nothing left to find once history is removed: skipped
        _case((), {"i3", "i4"}),  # two relevant items at ranks 4 and 5
        _case(("i1",), {"i4"}),  # the history item is excluded: i0, i2, i3, i4 -> rank 4
    ]
    m = matrix_metrics(scores, prep, cases)
    assert m["n_cases"] == 3
    assert m["recall@10"] == pytest.approx(1.0)
    assert m["mrr@100"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 4) / 3)
    ndcg_1 = 1 / math.log2(3)
    ndcg_3 = (1 / math.log2(5) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    ndcg_4 = 1 / math.log2(5)
    assert m["ndcg@10"] == pytest.approx((ndcg_1 + ndcg_3 + ndcg_4) / 3)


def test_matrix_metrics_all_skipped_gives_nan() -> None:
    prep = _hand_prep(5)
    m = matrix_metrics(np.zeros((1, 5), dtype=np.float32), prep, [_case(("i2",), {"i2"})])
    assert m["n_cases"] == 0 and math.isnan(m["recall@10"]) and math.isnan(m["mrr@100"])
    assert math.isnan(matrix_metrics(np.zeros((0, 5), dtype=np.float32), prep, [])["recall@10"])


# --------------------------------------------------------------------------- 3. epoch 0


COLOURS = ("red", "blue", "green", "black", "white")
ARTICLES = ("running shoes", "denim jacket", "wool scarf", "leather belt", "silk dress", "straw hat")


def _title_catalog() -> list[CatalogItem]:
    return [CatalogItem(item_id=f"{c}-{a}", title=f"{c} {a}") for c in COLOURS for a in ARTICLES]


@pytest.mark.slow  # trains a network
def test_early_stopping_keeps_the_untrained_model(encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = _title_catalog()  # 30 items whose text is just the title
    events = []
    for u in range(10):
        mine = [items[(3 * u + k) % 30] for k in range(5)]
        for k, item in enumerate(mine[:3]):  # training: requests that name a *different* item
            events.append(Interaction(f"u{u}", item.item_id, float(k), items[(3 * u + k + 11) % 30].title))
        for k, item in enumerate(mine[3:], start=3):  # val/test: the request is the item's title
            events.append(Interaction(f"u{u}", item.item_id, float(k), item.title))
    prep = prepare(InteractionDataset("titles", items, events), encoder, tmp_path, progress=False)
    config = WhisperLiteConfig(epochs=4, patience=2, lr=0.5, seed=0, **SMALL)
    result = train_whisperlite(prep, config, checkpoint_path=tmp_path / "wl.pt", progress=False)
    # Zero-shot (= the untrained model) is already perfect on validation: nothing beats it.
    assert result.history[0]["epoch"] == 0 and result.history[0]["val_recall@10"] == 1.0
    assert result.best_epoch == 0 and result.best_val_recall == 1.0
    untrained = WhisperLite(result.config)
    test = prep.split.test
    np.testing.assert_allclose(
        whisperlite_scores(result.model, prep, test), whisperlite_scores(untrained, prep, test), atol=1e-5
    )
    assert load_checkpoint(tmp_path / "wl.pt").epoch == 0


# --------------------------------------------------------------------------- 4. no validation


@pytest.mark.slow  # trains a network
def test_without_validation_all_epochs_run_and_the_last_is_kept(encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = _title_catalog()
    events = [  # two events per user: training-only, so there is no validation case at all
        Interaction(f"u{u}", items[(u + k) % 30].item_id, float(k), items[(u + k) % 30].title)
        for u in range(20)
        for k in range(2)
    ]
    prep = prepare(InteractionDataset("noval", items, events), encoder, tmp_path, progress=False)
    assert not prep.split.val
    config = WhisperLiteConfig(epochs=4, patience=1, seed=0, **SMALL)
    result = train_whisperlite(prep, config, checkpoint_path=tmp_path / "wl.pt", progress=False)
    assert result.epochs_run == 4 and result.best_epoch == 4
    assert math.isnan(result.best_val_recall)
    assert load_checkpoint(tmp_path / "wl.pt").epoch == 4


# --------------------------------------------------------------------------- 5. negatives


def test_negative_mask_and_masked_bce() -> None:
    neg = torch.tensor([[3, 1, 7], [2, 2, 5]])
    relevant = torch.tensor([[1, -1], [2, 5]])
    assert negative_mask(neg, relevant).tolist() == [[True, False, True], [False, False, False]]
    pos, negs = torch.tensor([2.0, -1.0]), torch.tensor([[0.5, 2.0, -3.0], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[True, False, True], [True, True, True]])
    # Masked terms simply do not exist: same as BCE over the kept terms only.
    logits = torch.cat([torch.tensor([2.0, 0.5, -3.0]), torch.tensor([-1.0, 1.0, 1.0, 0.0])])
    labels = torch.tensor([1.0, 0, 0, 1, 0, 0, 0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert float(bce_loss(pos, negs, mask)) == pytest.approx(float(expected))
    assert float(bce_loss(pos, negs, torch.ones(2, 3, dtype=torch.bool))) == pytest.approx(
        float(bce_loss(pos, negs))
    )


@pytest.mark.slow  # trains a network
def test_sampled_bce_negatives_never_count_when_equal_to_the_positive(
    sim_prep: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    real = train_module.composite_loss

    def spy(config, query, positives, negatives, positive_ids=None, neg_mask=None, relevant=None):  # type: ignore[no-untyped-def]
        assert neg_mask is not None, "training must pass a negative mask"
        seen.append((positives.detach(), negatives.detach(), neg_mask))
        return real(config, query, positives, negatives, positive_ids, neg_mask, relevant)

    monkeypatch.setattr(train_module, "composite_loss", spy)
    # 64 negatives from a 64-item catalog: the positive is drawn about once per example.
    train_whisperlite(sim_prep, WhisperLiteConfig(epochs=1, n_negatives=64, **SMALL), progress=False)
    collisions = 0
    for positives, negatives, mask in seen:
        same = (negatives == positives.unsqueeze(1)).all(dim=-1)  # (B, K) negative is the positive
        assert not (same & mask).any(), "a sampled negative equal to the positive kept BCE weight"
        collisions += int(same.sum())
    assert collisions > 0  # the situation did arise


# --------------------------------------------------------------------------- 6. user ids


def test_out_of_range_user_id_is_unknown() -> None:
    torch.manual_seed(0)
    model = WhisperLite(WhisperLiteConfig(embed_dim=8, hidden_dim=16, attention_dim=4, n_users=3))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.eval()
    request, history, mask = torch.randn(4, 8), torch.zeros(4, 0, 8), torch.zeros(4, 0, dtype=torch.bool)
    with torch.no_grad():
        q = model.encode_query(request, history, mask, torch.tensor([0, 3, 7, -2]))
        unknown = model.encode_query(request, history, mask, None)
    torch.testing.assert_close(q[2], unknown[2])  # id 7 > n_users: unknown, not user 3
    torch.testing.assert_close(q[3], unknown[3])  # negative id: unknown
    assert not torch.allclose(q[1], unknown[1])  # a real id does change the query


@pytest.mark.slow  # trains a network
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_user_id_dropout_trains_the_unknown_user_path(
    sim_prep: Prepared, monkeypatch: pytest.MonkeyPatch, dropout: float
) -> None:
    seen: list[torch.Tensor] = []
    real = WhisperLite.encode_query

    def spy(self, request, history, mask, user_index=None):  # type: ignore[no-untyped-def]
        if self.training and user_index is not None:
            seen.append(user_index.clone())
        return real(self, request, history, mask, user_index)

    monkeypatch.setattr(WhisperLite, "encode_query", spy)
    config = WhisperLiteConfig(epochs=1, user_dropout=dropout, **SMALL)
    train_whisperlite(sim_prep, config, use_user_ids=True, progress=False)
    share_unknown = float((torch.cat(seen) == 0).float().mean())
    if dropout == 0.0:
        assert share_unknown == 0.0  # every training user is known
    else:
        assert 0.15 < share_unknown < 0.45


# --------------------------------------------------------------------------- 7. max_history=0


def test_max_history_zero_means_no_history(sim_prep: Prepared) -> None:
    examples = sim_prep.split.test[:5]
    assert any(e.history_item_ids for e in examples)
    rows, mask = sim_prep.history_rows(examples, 0)
    assert rows.shape == (5, 0) and mask.shape == (5, 0)
    split = temporal_split(sim_prep.dataset, max_history=0)
    assert all(not e.history_item_ids for e in split.train + split.val + split.test)


# --------------------------------------------------------------------------- 8. file modes


def test_checkpoint_and_caches_are_world_readable(
    sim_prep: Prepared, sim_cache: Path, tmp_path: Path
) -> None:
    old = os.umask(0o077)
    try:
        path = save_checkpoint(
            tmp_path / "c.pt",
            Checkpoint(WhisperLiteConfig(embed_dim=8), {}, "enc", "fp", 0, 0, {}, None, []),
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # The fixture's item-embedding and request caches (written through mkstemp as well).
    cache_files = sorted(sim_cache.rglob("*.npz"))
    assert len(cache_files) >= 2  # item vectors and request vectors
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in cache_files)


# --------------------------------------------------------------------------- 9. determinism, parity


@pytest.mark.slow  # trains a network
def test_same_seed_gives_the_same_weights(sim_prep: Prepared) -> None:
    config = WhisperLiteConfig(epochs=2, seed=7, **SMALL)
    a = train_whisperlite(sim_prep, config, use_user_ids=True, progress=False)
    b = train_whisperlite(sim_prep, config, use_user_ids=True, progress=False)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    np.testing.assert_equal(a.history, b.history)  # losses and validation curve too (NaN == NaN)


@pytest.mark.slow  # trains a network
@pytest.mark.parametrize(
    "max_history",
    [3, 0],
)
def test_app_ranker_scores_match_training_scores(
    sim_prep: Prepared,
    encoder,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    max_history: int,
) -> None:
    config = WhisperLiteConfig(epochs=2, max_history=max_history, **SMALL)
    result = train_whisperlite(sim_prep, config, checkpoint_path=tmp_path / "wl.pt", progress=False)
    ranker = WhisperLiteRanker.from_checkpoint(result.checkpoint_path, sim_prep.index, encoder)
    cases = sim_prep.split.test[:8]
    assert any(len(c.history_item_ids) > max_history for c in cases)  # the truncation is exercised
    expected = whisperlite_scores(result.model, sim_prep, cases, use_user_ids=False)
    for case, row in zip(cases, expected, strict=True):
        got = ranker.scores(sim_prep.requests[case.request_text], sim_prep.index.rows(case.history_item_ids))
        np.testing.assert_allclose(got, row, atol=1e-4)
