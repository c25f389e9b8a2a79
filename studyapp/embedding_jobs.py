"""Embedding a catalog: in this process, or split into shards across the Celery workers.

Below ``WHISPERLITE_EMBED_SHARD_MIN_ITEMS`` items, or with tasks in-process (no broker: the
embedded default), the catalog is embedded here in one pass, as before
(:func:`studyapp.ranking_service.warm_up`). Above it, with a broker:

1. :func:`start` plans ``ceil(n / WHISPERLITE_EMBED_SHARD_SIZE)`` shards
   (:mod:`recommender.embedding_shards`), writes the plan beside the embedding cache and
   sends one :func:`studyapp.tasks.embed_shard` task per shard not yet on disk;
2. each worker encodes its shard's rows and writes the shard file atomically; the worker
   that finds every shard on disk merges them into the one cache file rankers read, so the
   job completes even when nobody waits for it;
3. :func:`embed_catalog` (``manage.py embed_catalog``, ``import_catalog --embed``) shows
   shards done / total with a progress bar, and re-sends the missing shards that no live
   process holds when nothing moved for ``WHISPERLITE_EMBED_RESEND_SECONDS`` (a lost
   message, a dead worker whose message the broker has not redelivered yet). Running it again
   after any crash resumes: shards on disk are kept.

Torch stays out of this module's import: the encoder is loaded only where it is needed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TextIO

from django.conf import settings

from recommender import embedding_shards as shards
from recommender.embeddings import cache_path, catalog_fingerprint
from studyapp.models import Catalog, Item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """How far a catalog's embedding is, for the command and the launch checklist."""

    done: int
    total: int
    finished: bool  # the merged cache file exists

    def __str__(self) -> str:
        if self.finished:
            return "embedded"
        return f"{self.done} of {self.total} shards embedded"


def _tasks_in_process() -> bool:
    from studyapp.celery import app

    return bool(app.conf.task_always_eager)


def uses_shards(n_items: int) -> bool:
    """Whether a catalog of ``n_items`` is embedded in shards by the workers (see module doc)."""
    return not _tasks_in_process() and n_items >= settings.WHISPERLITE_EMBED_SHARD_MIN_ITEMS


def _queue() -> str:
    from studyapp.celery import app

    return str(settings.WHISPERLITE_EMBED_QUEUE or app.conf.task_default_queue)


def send_shards(catalog: Catalog, plan: shards.ShardPlan, *, only_idle: bool = False) -> int:
    """Send one task per shard not on disk (and, if ``only_idle``, not held by a live process)."""
    from studyapp.tasks import embed_shard

    cache_dir = settings.WHISPERLITE_CACHE_DIR
    done = set(shards.shards_done(cache_dir, plan))
    sent = 0
    for shard in plan.shards:
        if shard in done or (only_idle and shards.is_running(cache_dir, plan, shard)):
            continue
        embed_shard.apply_async(
            args=[catalog.pk, plan.encoder_id, plan.fingerprint, shard.start, shard.stop, shard.digest],
            queue=_queue(),
        )
        sent += 1
    shards.mark_sent(cache_dir, plan)
    return sent


def start(catalog: Catalog, encoder_id: str) -> tuple[shards.ShardPlan, int]:
    """Plan the catalog's shards (or reuse the plan on disk) and send the missing ones.

    A plan already on disk means a job was started before: its shards are re-sent only if
    nothing moved for ``WHISPERLITE_EMBED_RESEND_SECONDS`` (otherwise their messages are
    still queued or running, and sending them again would only add duplicates).
    Returns (plan, shards sent now).
    """
    from studyapp.ranking_service import catalog_items

    items = catalog_items(catalog)
    cache_dir = settings.WHISPERLITE_CACHE_DIR
    plan = shards.read_plan(cache_dir, encoder_id, catalog_fingerprint(items))
    if plan is not None:
        if shards.final_path(cache_dir, plan).exists():
            return plan, 0
        stalled = (
            time.time() - shards.last_progress(cache_dir, plan) > settings.WHISPERLITE_EMBED_RESEND_SECONDS
        )
        return plan, send_shards(catalog, plan, only_idle=True) if stalled else 0
    plan = shards.plan_shards(items, encoder_id, settings.WHISPERLITE_EMBED_SHARD_SIZE)
    if shards.final_path(cache_dir, plan).exists():
        return plan, 0
    shards.write_plan(cache_dir, plan)
    return plan, send_shards(catalog, plan)


def progress(catalog: Catalog, encoder_id: str) -> Progress | None:
    """The embedding progress of the catalog's current version; None if no job was started.

    Reads only the plan file and the shard folder (no database rows, no encoding): cheap
    enough for an admin page.
    """
    cache_dir = settings.WHISPERLITE_CACHE_DIR
    if catalog.version and cache_path(cache_dir, encoder_id, catalog.version).exists():
        return Progress(0, 0, True)
    plan = shards.read_plan(cache_dir, encoder_id, catalog.version) if catalog.version else None
    if plan is None:
        return None
    return Progress(len(shards.shards_done(cache_dir, plan)), len(plan.shards), False)


def run_shard(catalog_pk: int, encoder_id: str, fingerprint: str, start: int, stop: int, digest: str) -> str:
    """Body of the ``embed_shard`` task: encode one shard, then merge if it was the last.

    Returns what happened ("encoded", "skipped", "busy", "gone", "merged" appended when this
    call wrote the cache file). Raises on another encoder or changed rows, which a re-sent
    message cannot fix.
    """
    from studyapp import ranking_service  # torch: only in the process that encodes

    cache_dir = settings.WHISPERLITE_CACHE_DIR
    plan = shards.read_plan(cache_dir, encoder_id, fingerprint)
    if plan is None:  # merged and cleaned up already, or never planned here
        if cache_path(cache_dir, encoder_id, fingerprint).exists():
            return "skipped"
        log.warning(
            "no embedding plan for catalog version %s in %s: do the workers and the command share "
            "WHISPERLITE_CACHE_DIR?",
            fingerprint,
            cache_dir,
        )
        return "gone"
    shard = shards.Shard(start, stop, digest)
    catalog = Catalog.objects.filter(pk=catalog_pk).first()
    if catalog is None:
        return "gone"
    encoder = ranking_service.get_encoder()
    if not shards.shard_path(cache_dir, plan, shard).exists():
        # Only this shard's rows are read (an index range scan), never the whole catalog.
        rows = [i.to_catalog_item() for i in Item.objects.filter(catalog=catalog).order_by("id")[start:stop]]
        outcome: str = shards.encode_shard(
            rows, shard, plan, encoder, cache_dir, image_root=catalog.data_dir or None
        )
    else:
        outcome = "skipped"
    if outcome != "busy" and len(shards.shards_done(cache_dir, plan)) == len(plan.shards):
        if shards.merge_shards(cache_dir, plan) is not None:
            outcome += "+merged"
    return outcome


def embed_catalog(
    catalog: Catalog,
    *,
    wait: bool = True,
    out: TextIO | None = None,
    progress_bar: bool = True,
    poll_seconds: float = 1.0,
) -> str:
    """Embed the catalog's current version: in-process or in shards (module doc); returns how.

    With ``wait`` (the default) this returns once the cache file rankers read exists,
    showing shards done / total, and has built a large catalog's content search index; without
    it, once the shards are sent (the workers finish and merge on their own; then run
    ``manage.py build_search_index``). Returns "in-process", "cached", "sent" or "sharded".
    """
    from studyapp import ranking_service

    n_items = catalog.items.count()
    if not uses_shards(n_items):
        ranking_service.warm_up(catalog)
        return "in-process"
    encoder_id = ranking_service.get_encoder().encoder_id
    plan, sent = start(catalog, encoder_id)
    cache_dir = settings.WHISPERLITE_CACHE_DIR
    final = shards.final_path(cache_dir, plan)
    if final.exists():
        ranking_service.build_search_indexes(catalog, [])  # a large catalog's index, if not built yet
        return "cached"
    if out is not None:
        out.write(
            f"{n_items} items in {len(plan.shards)} shards of about {settings.WHISPERLITE_EMBED_SHARD_SIZE}; "
            f"sent {sent} to queue '{_queue()}'\n"
        )
    if not wait:
        return "sent"
    _wait_for_shards(catalog, plan, progress_bar=progress_bar, poll_seconds=poll_seconds)
    # From WHISPERLITE_ANN_MIN_ITEMS up the rankers need the content search index too: build it
    # now (as warm_up does for the in-process path), not on a participant's first request.
    ranking_service.build_search_indexes(catalog, [])
    return "sharded"


def _wait_for_shards(
    catalog: Catalog, plan: shards.ShardPlan, *, progress_bar: bool, poll_seconds: float
) -> None:
    from tqdm import tqdm

    from studyapp.ranking_service import catalog_items

    cache_dir = settings.WHISPERLITE_CACHE_DIR
    final = shards.final_path(cache_dir, plan)
    total = len(plan.shards)
    # The bar goes to stderr, like import_catalog's: Django's stdout wrapper ends every write with
    # a newline, which would print one line per refresh.
    with tqdm(total=total, desc=f"embedding {catalog.slug}", unit="shard", disable=not progress_bar) as bar:
        while not final.exists():
            done = total if final.exists() else len(shards.shards_done(cache_dir, plan))
            bar.update(done - bar.n)
            if done == total:
                # Every shard is on disk but no worker merged (the last one died, say): merge here.
                shards.merge_shards(cache_dir, plan)
            elif (
                time.time() - shards.last_progress(cache_dir, plan)
                > settings.WHISPERLITE_EMBED_RESEND_SECONDS
            ):
                if catalog_fingerprint(catalog_items(catalog)) != plan.fingerprint:
                    raise shards.StaleShard("the catalog changed while it was being embedded; run again")
                resent = send_shards(catalog, plan, only_idle=True)
                log.warning("no shard finished for a while; re-sent %d missing shard(s)", resent)
            time.sleep(poll_seconds)
        bar.update(total - bar.n)
