"""Celery tasks. Each takes a primary key, re-fetches, and is safe to run twice."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from studyapp import display, ranking_service
from studyapp.models import Judgement, RankedList, Request

log = logging.getLogger(__name__)


def enqueue_ranking(request_pk: int) -> None:
    """Queue the ranking once the current transaction commits (so the worker sees the row)."""
    Request.objects.filter(pk=request_pk).update(enqueued_at=timezone.now())
    transaction.on_commit(lambda: rank_request.delay(request_pk))


def requeue_if_stuck(request: Request) -> bool:
    """Queue a request again when its message was lost or its worker died.

    Called from the participant's polling, so a dead worker or a broker restart costs the
    participant a wait, not their session. At most one new message per stale period.
    """
    stale = timezone.now() - timedelta(seconds=settings.WHISPERLITE_STALE_RUNNING_SECONDS)
    stuck = Q(status=Request.Status.PENDING) | Q(status=Request.Status.RUNNING, started_at__lt=stale)
    with transaction.atomic():
        updated = Request.objects.filter(
            stuck, Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale), pk=request.pk
        )
        if not updated.update(enqueued_at=timezone.now()):
            return False
        log.warning("request %s looked stuck; queueing it again", request.pk)
        transaction.on_commit(lambda: rank_request.delay(request.pk))
    return True


MAX_ATTEMPTS = 5  # automatic (re)deliveries before a request is failed for good


def _claim(request_pk: int) -> datetime | None:
    """Atomically move a request to RUNNING; returns this claim's start time, or None.

    Also reclaims a request whose worker died mid-task (RUNNING for longer than the stale
    period, which is longer than the task's hard time limit, so its worker is surely gone).
    The start time identifies the claim: only its holder may later mark the request failed.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WHISPERLITE_STALE_RUNNING_SECONDS)
    claimable = Q(status=Request.Status.PENDING) | Q(status=Request.Status.RUNNING, started_at__lt=stale)
    claimed = Request.objects.filter(claimable, pk=request_pk).update(
        status=Request.Status.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    return now if claimed else None


def _fail(request_pk: int, claimed_at: datetime, reason: str) -> None:
    """Mark the request failed, but only if this claim still holds it (never a finished one)."""
    Request.objects.filter(pk=request_pk, status=Request.Status.RUNNING, started_at=claimed_at).update(
        status=Request.Status.FAILED, error=reason[:1000]
    )


# acks_late: a worker that dies mid-task leaves the message to be redelivered; the claim and
# the all-or-nothing write below make the repeat harmless.
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def rank_request(request_pk: int) -> str:
    """Run every system of the study on the request and store the lists and displayed slots."""
    claimed_at = _claim(request_pk)
    if claimed_at is None:
        return "skipped"  # gone, already done, failed, or being ranked by a live worker
    request = Request.objects.select_related("participant__study__catalog").get(pk=request_pk)
    study = request.participant.study
    if request.attempts > MAX_ATTEMPTS:
        _fail(request_pk, claimed_at, f"gave up after {MAX_ATTEMPTS} attempts (workers kept dying on it)")
        return "failed"
    try:
        systems = list(study.systems.order_by("pk"))
        if len(systems) < 2:
            raise ValueError("the study compares fewer than two systems")
        history = list(request.participant.picks.values_list("item__external_id", flat=True))
        rankings = ranking_service.rank_all(systems, study.catalog, request.text, history, study.k)
        check_item = None
        if study.attention_checks and not request.is_practice:
            shown = {i for r in rankings.values() for i in r.item_ids} | set(history)
            check_item = ranking_service.attention_check_item(
                study.catalog, request.text, shown, request.seed
            )
        planned = display.plan_slots(request, rankings, check_item)
        with transaction.atomic():
            locked = Request.objects.select_for_update().get(pk=request_pk)
            if locked.status != Request.Status.RUNNING or locked.started_at != claimed_at:
                return "skipped"  # another claim took over (or finished) meanwhile
            if Judgement.objects.filter(slot__request=locked).exists():
                # Never re-plan what a participant has started rating: keep their judgements.
                locked.status, locked.error = Request.Status.DONE, ""
                locked.save(update_fields=["status", "error"])
                return "skipped"
            locked.ranked_lists.all().delete()
            locked.slots.all().delete()
            RankedList.objects.bulk_create(
                RankedList(
                    request=locked,
                    system=system,
                    item_ids=ranked.item_ids,
                    scores=ranked.scores,
                    version=ranked.version,
                    latency_ms=ranked.latency_ms,
                )
                for system, ranked in rankings.items()
            )
            display.save_slots(locked, planned)
            locked.status = Request.Status.DONE
            locked.ready_at = timezone.now()
            locked.error = ""
            locked.save(update_fields=["status", "ready_at", "error"])
        return "done"
    except Exception as exc:
        log.exception("ranking request %s failed", request_pk)
        _fail(request_pk, claimed_at, f"{type(exc).__name__}: {exc}")
        return "failed"
