"""Celery tasks. Each takes a primary key, re-fetches, and is safe to run twice.

The ranking code (torch) is imported inside the task, so web processes that only send tasks
never load it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection, transaction

from studyapp.models import Judgement, RankedList, Request
from studyapp.models.lifecycle import MAX_ATTEMPTS, Claim, lease_seconds

log = logging.getLogger(__name__)

#: Errors that say "the database blinked", not "this request is bad": retried with backoff.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@contextmanager
def lease_kept(claim: Claim) -> Iterator[None]:
    """Renew the claim's lease every third of it while the body runs (ranking holds no lock).

    Runs in a thread with its own database connection; a renewal that fails (database gone)
    is tried again at the next beat, and a lease that lapses meanwhile only lets the sweeper
    hand the request to another worker, whose claim then wins the final write.
    """
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(lease_seconds() / 3):
                try:
                    if not Request.objects.renew(claim):
                        return  # taken over or finished: nothing to keep
                except TRANSIENT_ERRORS as exc:
                    log.warning("could not renew the lease of request %s: %s", claim.pk, exc)
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"lease-{claim.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# acks_late: a worker that dies mid-task leaves the message to be redelivered; the claim and
# the all-or-nothing write below make the repeat harmless. Only transient database errors are
# retried (with exponential backoff and a cap); anything else fails the request with a reason.
@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=1,
    retry_backoff_max=8,
    retry_jitter=True,
    max_retries=4,
)
def rank_request(self, request_pk: int) -> str:  # type: ignore[no-untyped-def]
    """Run every system of the study on the request and store the lists and displayed slots."""
    claim = Request.objects.claim(request_pk, claimant=self.request.id or "")
    if claim is None:
        return "skipped"  # gone, already done, failed, or held by a live worker
    try:
        with lease_kept(claim):
            return _rank_claimed(claim)
    except TRANSIENT_ERRORS:
        log.warning("request %s hit a transient database error; retrying", request_pk, exc_info=True)
        try:
            Request.objects.release(claim)  # so the sweeper may send it at once, too
        except TRANSIENT_ERRORS:
            pass  # the retry takes its own claim back (claimed_by), or the lease runs out
        raise
    except Exception as exc:
        log.exception("ranking request %s failed", request_pk)
        Request.objects.fail(claim, f"{type(exc).__name__}: {exc}")
        return "failed"


def _rank_claimed(claim: Claim) -> str:
    """Rank, plan and store under ``claim``: ~9 queries on the usual path (a test pins the count).

    The request is encoded once, and its similarity to every item computed once; every system
    and the attention check share both.
    """
    from studyapp import display, ranking_service  # torch: only where ranking happens

    request = Request.objects.select_related("participant__study__catalog").get(pk=claim.pk)
    study = request.participant.study
    if request.attempts > MAX_ATTEMPTS:
        Request.objects.fail(claim, f"gave up after {MAX_ATTEMPTS} attempts (workers kept dying on it)")
        return "failed"
    systems = list(study.systems.order_by("pk"))
    if len(systems) < 2:
        raise ValueError("the study compares fewer than two systems")
    # In pick order: the history's order feeds the tie seed and the blend's c.I cache key.
    history = list(request.participant.picks.order_by("pk").values_list("item__external_id", flat=True))
    encoded = ranking_service.encode_request(request.text)
    check = study.attention_checks and not request.is_practice
    # One request . item mat-vec shared by zero-shot, the history blend and the check.
    shared = (
        ranking_service.request_similarity(study.catalog, encoded.vector)
        if check or any(s.kind in ranking_service.SIMILARITY_SYSTEMS for s in systems)
        else None
    )
    rankings = ranking_service.rank_all(
        systems, study.catalog, request.text, history, study.k, encoded=encoded, shared=shared
    )
    check_item = None
    if check:
        shown = {i for r in rankings.values() for i in r.item_ids} | set(history)
        check_item = ranking_service.attention_check_item(
            study.catalog, encoded.vector, shown, request.seed, shared=shared
        )
    planned = display.plan_slots(request, rankings, check_item)
    item_pks = ranking_service.item_pks(study.catalog)
    lists = [
        RankedList(
            request=request,
            system=system,
            item_ids=ranked.item_ids,
            scores=ranked.scores,
            version=ranked.version,
            latency_ms=ranked.latency_ms,
            encode_ms=encoded.encode_ms,
        )
        for system, ranked in rankings.items()
    ]
    with transaction.atomic():
        # Usual path: the conditional UPDATE both checks the claim and locks the row.
        if Request.objects.complete_first(claim):
            RankedList.objects.bulk_create(lists)
            display.save_slots(request, planned, item_pks)
            return "done"
    with transaction.atomic():
        # Slots from an earlier run under a lapsed claim (or the claim is gone): look first.
        locked = Request.objects.held_by(claim).select_for_update().first()
        if locked is None:
            return "skipped"  # another claim took over (or finished) meanwhile
        if Judgement.objects.filter(slot__request=locked).exists():
            # Never re-plan what a participant has started rating: keep their judgements.
            Request.objects.complete(claim, new_lists=False)
            return "skipped"
        locked.ranked_lists.all().delete()
        locked.slots.all().delete()
        RankedList.objects.bulk_create(lists)
        display.save_slots(request, planned, item_pks)
        Request.objects.complete(claim)
    return "done"


# acks_late + reject_on_worker_lost: a worker that dies mid-shard leaves the message to be
# redelivered; a shard already on disk, or held by a live process, returns at once, so
# repeats are harmless. No automatic retries: a failure (another encoder, a catalog that
# changed) needs a new plan, which ``manage.py embed_catalog`` makes.
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def embed_shard(
    catalog_pk: int, encoder_id: str, fingerprint: str, start: int, stop: int, digest: str
) -> str:
    """Encode rows ``start:stop`` of a catalog into their shard file; merge if it was the last."""
    from studyapp import embedding_jobs

    outcome = embedding_jobs.run_shard(catalog_pk, encoder_id, fingerprint, start, stop, digest)
    log.info("embedding shard %d-%d of catalog %s: %s", start, stop, catalog_pk, outcome)
    return outcome
