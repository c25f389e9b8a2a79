"""Sharded catalog embedding (recommender side): plan, encode, skip, lock, merge."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recommender import embedding_shards as shards
from recommender.catalog import CatalogItem
from recommender.embeddings import build_item_index, cache_path, encode_items
from tests.recommender.test_embeddings_and_ranking import CountingEncoder


class RefusingEncoder(CountingEncoder):
    """Same encoder id as the real one, but fails if asked to encode: proves a cache was read."""

    def __init__(self, encoder_id: str, dim: int) -> None:
        super().__init__()
        self.encoder_id, self.dim = encoder_id, dim

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        raise AssertionError("the merged cache file should have been read, not re-encoded")


def _items(n: int) -> list[CatalogItem]:
    return [CatalogItem(f"item-{i}", f"Product {i} " + "word " * (i % 7)) for i in range(n)]


def test_plan_covers_every_row_once_in_near_equal_contiguous_shards() -> None:
    plan = shards.plan_shards(_items(10), "fake:counting", shard_size=4)
    assert [(s.start, s.stop) for s in plan.shards] == [(0, 3), (3, 7), (7, 10)]
    assert plan.n_items == 10
    assert shards.ShardPlan.from_json(plan.to_json()) == plan
    with pytest.raises(ValueError):
        shards.plan_shards(_items(3), "fake:counting", shard_size=0)


def test_sharded_embedding_equals_in_process_embedding_row_for_row(
    encoder, tiny_catalog: list[CatalogItem], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    expected = encode_items(tiny_catalog, encoder, progress=False)
    plan = shards.plan_shards(tiny_catalog, encoder.encoder_id, shard_size=20)
    assert len(plan.shards) >= 3

    final = shards.embed_in_shards(tiny_catalog, encoder, tmp_path, shard_size=20)

    assert final == cache_path(tmp_path, encoder.encoder_id, plan.fingerprint)
    assert not shards.shard_dir(tmp_path, encoder.encoder_id, plan.fingerprint).exists()  # cleaned up
    # Rankers load exactly this file through build_item_index, without encoding anything.
    index = build_item_index(tiny_catalog, RefusingEncoder(encoder.encoder_id, encoder.dim), tmp_path)
    assert index.item_ids == [i.item_id for i in tiny_catalog]
    np.testing.assert_allclose(index.vectors, expected, atol=1e-5)


def test_shard_already_on_disk_is_not_encoded_again(tmp_path: Path) -> None:
    items = _items(30)
    encoder = CountingEncoder()
    plan = shards.plan_shards(items, encoder.encoder_id, shard_size=10)
    first = plan.shards[0]
    assert shards.encode_shard(items[:10], first, plan, encoder, tmp_path) == "encoded"
    written = shards.shard_path(tmp_path, plan, first).stat().st_mtime_ns
    assert encoder.text_calls == 1

    assert shards.encode_shard(items[:10], first, plan, encoder, tmp_path) == "skipped"
    assert shards.shard_path(tmp_path, plan, first).stat().st_mtime_ns == written
    shards.embed_in_shards(items, encoder, tmp_path, shard_size=10)
    assert encoder.text_calls == 3  # only the two missing shards were encoded


def test_shard_held_by_a_live_process_is_busy_and_free_again_when_released(tmp_path: Path) -> None:
    items = _items(20)
    encoder = CountingEncoder()
    plan = shards.plan_shards(items, encoder.encoder_id, shard_size=10)
    shard = plan.shards[1]
    lock = shards.shard_path(tmp_path, plan, shard).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a worker encoding this shard holds it
    try:
        assert shards.is_running(tmp_path, plan, shard)
        assert shards.encode_shard(items[10:], shard, plan, encoder, tmp_path) == "busy"
    finally:
        os.close(fd)  # the kernel drops the lock, exactly as when that worker dies
    assert not shards.is_running(tmp_path, plan, shard)
    assert shards.encode_shard(items[10:], shard, plan, encoder, tmp_path) == "encoded"


def test_rows_that_changed_since_the_plan_are_refused(tmp_path: Path) -> None:
    items = _items(20)
    encoder = CountingEncoder()
    plan = shards.plan_shards(items, encoder.encoder_id, shard_size=10)
    changed = [replace(items[0], title="renamed"), *items[1:10]]
    with pytest.raises(shards.StaleShard):
        shards.encode_shard(changed, plan.shards[0], plan, encoder, tmp_path)
    assert not shards.shard_path(tmp_path, plan, plan.shards[0]).exists()


def test_merge_waits_until_every_shard_is_on_disk(tmp_path: Path) -> None:
    items = _items(20)
    encoder = CountingEncoder()
    plan = shards.plan_shards(items, encoder.encoder_id, shard_size=10)
    shards.write_plan(tmp_path, plan)
    shards.encode_shard(items[:10], plan.shards[0], plan, encoder, tmp_path)
    assert shards.merge_shards(tmp_path, plan) is None
    assert not shards.final_path(tmp_path, plan).exists()
    assert shards.read_plan(tmp_path, plan.encoder_id, plan.fingerprint) == plan
    shards.encode_shard(items[10:], plan.shards[1], plan, encoder, tmp_path)
    assert shards.merge_shards(tmp_path, plan) == shards.final_path(tmp_path, plan)
    # A late duplicate message after the merge writes nothing back.
    assert shards.encode_shard(items[:10], plan.shards[0], plan, encoder, tmp_path) == "skipped"
    assert not shards.shard_dir(tmp_path, plan.encoder_id, plan.fingerprint).exists()
