"""Celery tasks. Each takes a primary key, re-fetches, and is safe to run twice.

The ranking code (torch) is imported inside the task, so web processes that only send tasks
never load it.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from studyapp.leases import keeper
from studyapp.models import Judgement, RankedList, Request
from studyapp.models.lifecycle import MAX_ATTEMPTS
from studyapp.ranking_store import ClaimedRequest, claim_and_load, store_first

log = logging.getLogger(__name__)

#: Errors that say "the database blinked", not "this request is bad": retried with backoff.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


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
    claimed = claim_and_load(request_pk, claimant=self.request.id or "")
    if claimed is None:
        return "skipped"  # gone, already done, failed, or held by a live worker
    claim = claimed.claim
    try:
        with keeper.kept(claim):
            return _rank_claimed(claimed)
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


def _rank_claimed(claimed: ClaimedRequest) -> str:
    """Rank, plan and store a claimed request: two statements on PostgreSQL's usual path, the
    claim that loaded it and the write (:mod:`studyapp.ranking_store`; a test pins the count).

    The request is encoded once, and its similarity to every item computed once; every system
    and the attention check share both.
    """
    from studyapp import display, ranking_service  # torch: only where ranking happens

    claim, request, systems, history = claimed.claim, claimed.request, claimed.systems, claimed.history
    study = request.participant.study
    if request.attempts > MAX_ATTEMPTS:
        Request.objects.fail(claim, f"gave up after {MAX_ATTEMPTS} attempts (workers kept dying on it)")
        return "failed"
    if len(systems) < 2:
        raise ValueError("the study compares fewer than two systems")
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
    if store_first(claim, lists, display.slot_rows(request, planned, item_pks)):
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
