"""The ranking request's state machine, in one place.

::

    PENDING --claim--> RUNNING --complete (task stores the lists)--> DONE
       ^                  |  \\--fail (a non-transient error, or the attempt cap)--> FAILED
       |                  |                                                          |
       +--release---------+  (transient database error: give the claim back)        |
       +--lease runs out (worker killed, database gone): claimable again             |
       +--requeue (the participant's "try again") -----------------------------------+

A claim is a short *lease*: the task renews it while it ranks, so a worker that dies (or can
no longer reach the database) stops renewing and the request becomes claimable again seconds
later, not after the task's time limit. Every transition is one conditional ``UPDATE``, so two
workers, a retried task and the sweeper can race without harm: at most one claim holds a
request, and only the holder of the current claim can fail it or store its lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

#: Automatic claims of one request (deliveries, retries, re-sends) before it is failed for good.
MAX_ATTEMPTS = 5

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass(frozen=True)
class Claim:
    """One worker's hold on a request; its start time tells it apart from later claims."""

    pk: int
    started_at: datetime


def lease_seconds() -> int:
    return settings.WHISPERLITE_CLAIM_LEASE_SECONDS


class RequestQuerySet(models.QuerySet):
    """Transitions of :class:`~studyapp.models.Request`. Each returns whether it happened."""

    def claimable(self, now: datetime | None = None, claimant: str = "") -> RequestQuerySet:
        """Requests a worker may take: pending, or running under a lease that ran out.

        ``claimant`` (a Celery task id) may also take back its own claim: a task retried after
        a transient database error could not always give its claim back before retrying.
        """
        now = now or timezone.now()
        condition = Q(status=PENDING) | Q(status=RUNNING, lease_expires_at__lt=now)
        condition |= Q(status=RUNNING, lease_expires_at__isnull=True)  # rows from before leases
        if claimant:
            condition |= Q(status=RUNNING, claimed_by=claimant)
        return self.filter(condition)

    def claim(self, pk: int, claimant: str = "") -> Claim | None:
        """Move a claimable request to RUNNING under a fresh lease; None when it is not claimable."""
        now = timezone.now()
        claimed = (
            self.claimable(now, claimant)
            .filter(pk=pk)
            .update(
                status=RUNNING,
                started_at=now,
                claimed_by=claimant,
                lease_expires_at=now + timedelta(seconds=lease_seconds()),
                attempts=F("attempts") + 1,
            )
        )
        return Claim(pk, now) if claimed else None

    def held_by(self, claim: Claim) -> RequestQuerySet:
        """The request, only while this claim (and no later one) holds it."""
        return self.filter(pk=claim.pk, status=RUNNING, started_at=claim.started_at)

    def renew(self, claim: Claim) -> bool:
        """Extend a live claim's lease; False once another claim took over or it finished."""
        expires = timezone.now() + timedelta(seconds=lease_seconds())
        return self.held_by(claim).update(lease_expires_at=expires) == 1

    def release(self, claim: Claim) -> bool:
        """Give a claim back after a transient error: PENDING again, to be sent at once."""
        return self.held_by(claim).update(status=PENDING, lease_expires_at=None, enqueued_at=None) == 1

    def complete(self, claim: Claim, *, new_lists: bool = True) -> bool:
        """DONE under this claim; ``new_lists`` stamps the time the lists became ready.

        The caller holds the row lock and stores the lists in the same transaction.
        """
        fields: dict = {"status": DONE, "error": "", "lease_expires_at": None}
        if new_lists:
            fields["ready_at"] = timezone.now()
        return self.held_by(claim).update(**fields) == 1

    def complete_first(self, claim: Claim) -> bool:
        """DONE with fresh lists under this claim, only if the request has no slots yet.

        The usual case, a request's first ranking, in one ``UPDATE`` instead of a locking
        ``SELECT`` and checks: the row lock it takes lasts to the end of the caller's
        transaction, which stores the lists and slots. False (claim lost, or slots from an
        earlier run) sends the caller to the careful path that keeps a participant's judgements.
        """
        slot_model = self.model._meta.get_field("slots").related_model
        no_slots = ~Exists(slot_model.objects.filter(request=OuterRef("pk")))
        return (
            self.held_by(claim)
            .filter(no_slots)
            .update(status=DONE, error="", lease_expires_at=None, ready_at=timezone.now())
            == 1
        )

    def fail(self, claim: Claim, reason: str) -> bool:
        """Fail for good, but only under this claim: a late failure never undoes a finished request."""
        return self.held_by(claim).update(status=FAILED, error=reason[:1000], lease_expires_at=None) == 1

    def requeue(self, pk: int) -> bool:
        """The participant's "try again" on a failed request: a fresh start and attempt budget."""
        return (
            self.filter(pk=pk, status=FAILED).update(
                status=PENDING, error="", attempts=0, enqueued_at=None, lease_expires_at=None
            )
            == 1
        )

    def due_for_dispatch(self, now: datetime | None = None) -> RequestQuerySet:
        """Requests that need a (new) task message: never sent, or sent long enough ago that the
        message may have been lost (broker restarted) or its worker died (lease ran out).

        A message is re-sent at most once per ``WHISPERLITE_RESEND_SECONDS``; a duplicate of a
        message that was not lost is harmless (the claim lets one through).
        """
        now = now or timezone.now()
        resend = Q(enqueued_at__isnull=True) | Q(
            enqueued_at__lt=now - timedelta(seconds=settings.WHISPERLITE_RESEND_SECONDS)
        )
        stuck = Q(status=PENDING) | Q(status=RUNNING, lease_expires_at__lt=now)
        stuck |= Q(status=RUNNING, lease_expires_at__isnull=True)  # rows from before leases
        return self.filter(stuck, resend)

    def mark_enqueued(self, pk: int, now: datetime | None = None, *, only_if_due: bool = True) -> bool:
        """Record that a message is being sent; with ``only_if_due``, only one sender per period wins."""
        now = now or timezone.now()
        rows = self.due_for_dispatch(now) if only_if_due else self
        return rows.filter(pk=pk).update(enqueued_at=now) == 1

    def mark_not_enqueued(self, pk: int) -> None:
        """The send failed (broker down): due again at the sweeper's next tick."""
        self.filter(pk=pk, status=PENDING).update(enqueued_at=None)
