"""Catalog embedding split into shards across a REAL Celery worker (Redis, PostgreSQL), and in-process.

The worker is started by ``test_celery_worker.running_worker`` (solo pool, a private queue,
the test database), with an embedding cache folder private to this module, so the tests can put a
shard on disk beforehand and read the merged file afterwards.
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from recommender import embedding_shards as shards
from recommender.embeddings import build_item_index, encode_items
from studyapp import embedding_jobs, launch, ranking_service
from studyapp.management.commands.import_catalog import import_catalog
from studyapp.models import Catalog
from tests.recommender.test_embeddings_and_ranking import CountingEncoder
from tests.studyapp.factories import StudyFactory
from tests.studyapp.test_celery_worker import Worker, running_worker

N_ITEMS, SHARD_SIZE = 36, 12  # 3 shards, small enough to encode in a blink on any host


class NegatingEncoder:
    """The real encoder with every vector negated: a shard it wrote is recognisable after the merge."""

    has_image_tower = False

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real, self.encoder_id, self.dim = real, real.encoder_id, real.dim

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        return -self.real.encode_text(texts, normalize=normalize)

    def encode_images(self, paths: Sequence[str], **kwargs: object) -> np.ndarray:
        raise NotImplementedError


@pytest.fixture
def small_catalog(db, sample_catalog_csv: Path) -> Catalog:  # type: ignore[no-untyped-def]
    """The first 36 items of the sample catalog (beside it, so its image paths still resolve)."""
    lines = sample_catalog_csv.read_text().splitlines(keepends=True)
    path = sample_catalog_csv.with_name("small.csv")
    path.write_text("".join(lines[: N_ITEMS + 1]))
    catalog, errors = import_catalog("generic", str(path), "small", "Small", progress=False)
    assert errors == [] and catalog.items.count() == N_ITEMS
    return catalog


@pytest.fixture(scope="module")
def embed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.fixture(scope="module")
def embed_worker(django_db_setup, django_db_blocker, embed_cache: Path, tmp_path_factory) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    env = {
        "WHISPERLITE_CACHE_DIR": str(embed_cache),
        "WHISPERLITE_SWEEP_SECONDS": "0",
        "OMP_NUM_THREADS": "1",
        "WHISPERLITE_TORCH_THREADS": "1",
    }
    # SIGQUIT, a cold shutdown: no task is running, nothing to finish.
    with running_worker(
        "whisperlite-embed-test", tmp_path_factory.mktemp("embed_worker"), env, stop_signal=signal.SIGQUIT,
        tail_lines=100,
    ) as handle:  # fmt: skip
        yield handle


@pytest.fixture
def sharding(settings, embed_cache: Path):  # type: ignore[no-untyped-def]
    settings.WHISPERLITE_CACHE_DIR = str(embed_cache)
    settings.WHISPERLITE_EMBED_SHARD_MIN_ITEMS = 1
    settings.WHISPERLITE_EMBED_SHARD_SIZE = SHARD_SIZE
    settings.WHISPERLITE_EMBED_RESEND_SECONDS = 60
    return settings


def _forget(plan: shards.ShardPlan, cache_dir: Path) -> None:
    shards.final_path(cache_dir, plan).unlink(missing_ok=True)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_worker_embeds_shards_and_merge_equals_in_process_keeping_a_shard_on_disk(
    small_catalog: Catalog, sharding, embed_worker: Worker, embed_cache: Path
) -> None:  # type: ignore[no-untyped-def]
    encoder = ranking_service.get_encoder()
    items = ranking_service.catalog_items(small_catalog)
    expected = encode_items(items, encoder, progress=False)
    plan = shards.plan_shards(items, encoder.encoder_id, SHARD_SIZE)
    assert len(plan.shards) == 3
    _forget(plan, embed_cache)
    # The middle shard is already on disk (an earlier, interrupted job), written with negated
    # vectors so the merged matrix shows whether the worker kept it or encoded it again.
    middle = plan.shards[1]
    assert (
        shards.encode_shard(
            items[middle.start : middle.stop], middle, plan, NegatingEncoder(encoder), embed_cache
        )
        == "encoded"
    )

    out = io.StringIO()
    call_command("embed_catalog", small_catalog.slug, stdout=out)

    assert f"{N_ITEMS} items in 3 shards" in out.getvalue() and "sent 2" in out.getvalue()
    assert "embedded in shards by the workers" in out.getvalue()
    with np.load(shards.final_path(embed_cache, plan)) as data:
        ids, merged = list(data["item_ids"]), data["vectors"]
    assert ids == [i.item_id for i in items]  # same rows, same order
    kept = slice(middle.start, middle.stop)
    np.testing.assert_allclose(merged[kept], -expected[kept], atol=1e-6)
    others = np.r_[0 : middle.start, middle.stop : len(items)]
    np.testing.assert_allclose(merged[others], expected[others], atol=1e-5)
    assert not shards.shard_dir(embed_cache, plan.encoder_id, plan.fingerprint).exists()
    assert build_item_index(items, encoder, embed_cache).vectors.shape == expected.shape
    _forget(plan, embed_cache)  # the negated rows must not serve a later test


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_shards_whose_messages_were_lost_are_sent_again(
    small_catalog: Catalog, sharding, embed_worker: Worker, embed_cache: Path
) -> None:  # type: ignore[no-untyped-def]
    encoder = ranking_service.get_encoder()
    items = ranking_service.catalog_items(small_catalog)
    plan = shards.plan_shards(items, encoder.encoder_id, SHARD_SIZE)
    _forget(plan, embed_cache)
    # A job was planned long ago and its messages never reached a worker (broker flushed).
    plan_file = shards.write_plan(embed_cache, plan)
    os.utime(plan_file, (1, 1))

    assert embedding_jobs.embed_catalog(small_catalog, progress_bar=False, poll_seconds=0.2) == "sharded"

    index = build_item_index(items, encoder, embed_cache)
    np.testing.assert_allclose(index.vectors, encode_items(items, encoder, progress=False), atol=1e-5)


@pytest.mark.django_db
def test_embedded_mode_embeds_in_process_even_above_the_shard_size(
    small_catalog: Catalog, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.WHISPERLITE_CACHE_DIR = str(tmp_path)
    settings.WHISPERLITE_EMBED_SHARD_MIN_ITEMS = 1
    settings.WHISPERLITE_EMBED_SHARD_SIZE = SHARD_SIZE
    assert not embedding_jobs.uses_shards(small_catalog.items.count())  # no broker: tasks in-process

    assert embedding_jobs.embed_catalog(small_catalog, progress_bar=False) == "in-process"

    encoder_id = ranking_service.get_encoder().encoder_id
    assert not shards.shard_dir(tmp_path, encoder_id, small_catalog.version).exists()
    assert embedding_jobs.progress(small_catalog, encoder_id) == embedding_jobs.Progress(0, 0, True)


@pytest.mark.django_db
def test_launch_checklist_shows_shards_done_of_total(
    small_catalog: Catalog, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.WHISPERLITE_CACHE_DIR = str(tmp_path)
    encoder = CountingEncoder()
    items = ranking_service.catalog_items(small_catalog)
    plan = shards.plan_shards(items, encoder.encoder_id, SHARD_SIZE)
    assert plan.fingerprint == small_catalog.version
    shards.write_plan(tmp_path, plan)
    first = plan.shards[0]
    shards.encode_shard(items[first.start : first.stop], first, plan, encoder, tmp_path)

    assert str(embedding_jobs.progress(small_catalog, encoder.encoder_id)) == "1 of 3 shards embedded"
    checks, embedded = launch._catalog_checks(StudyFactory(catalog=small_catalog), encoder.encoder_id)
    assert not embedded
    detail = next(c.detail for c in checks if c.name == "Catalog embedded")
    assert (
        "in progress" in detail
        and "1 of 3 shards" in detail
        and f"embed_catalog {small_catalog.slug}" in detail
    )
