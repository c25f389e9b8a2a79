"""Sending ranking work: after commit, tolerant of a broker outage, never blocking a page.

* With a broker, a request is committed first and its message sent after the commit. If the
  broker is down the send fails quickly (see ``CELERY_TASK_PUBLISH_RETRY_POLICY``), the
  request stays PENDING with no message, the participant sees "preparing", and the sweeper
  (:mod:`studyapp.sweeper`) sends it once the broker is back.
* With tasks in-process (the embedded default), the task runs in a background thread after
  the response, so the participant sees "preparing" at once instead of a frozen page.

Torch-free: the ranking code is imported by the task itself, in the process that runs it.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from studyapp.models import Request

log = logging.getLogger(__name__)

#: What a send raises while the broker is unreachable.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, RedisError, OSError)


def enqueue_after_commit(request_pk: int) -> None:
    """Send the request's task once the current transaction commits (so the worker sees the row)."""
    Request.objects.mark_enqueued(request_pk, only_if_due=False)
    transaction.on_commit(lambda: send(request_pk))


def send(request_pk: int) -> bool:
    """Send one ranking task; False (and the request left due for the sweeper) if the broker is down."""
    from studyapp.celery import app
    from studyapp.tasks import rank_request

    if app.conf.task_always_eager:
        if settings.WHISPERLITE_EAGER_IN_BACKGROUND:
            threading.Thread(target=_run_in_background, args=(request_pk,), daemon=True).start()
        else:
            rank_request.apply(args=[request_pk])
        return True
    try:
        rank_request.delay(request_pk)
    except BROKER_ERRORS as exc:
        log.warning("broker unavailable, request %s kept for the sweeper: %s", request_pk, exc)
        try:
            Request.objects.mark_not_enqueued(request_pk)
        except Exception:  # the database may be gone too; the resend period covers it
            log.warning("could not mark request %s as unsent", request_pk, exc_info=True)
        return False
    return True


def _run_in_background(request_pk: int) -> None:
    """The in-process task, in its own thread and database connection."""
    from studyapp.tasks import rank_request

    close_old_connections()
    try:
        rank_request.apply(args=[request_pk])
    except Exception:
        log.exception("in-process ranking of request %s failed", request_pk)
    finally:
        connection.close()
