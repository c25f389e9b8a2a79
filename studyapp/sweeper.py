"""The sweeper: re-sends ranking work whose message was never sent or may have been lost.

A request needs a new message when the broker was down as it was submitted, when the broker
lost its queue (a Redis restart without persistence), or when the worker that held it died
or lost the database (its claim's lease ran out). Instead of waiting for a participant's
poll, a timer re-sends such requests every ``WHISPERLITE_SWEEP_SECONDS``:

* in every Celery worker, a thread of the worker's main process, started when the worker is
  ready (:mod:`studyapp.worker_init`); several workers may sweep at once, since marking a
  request as sent is a conditional ``UPDATE`` that only one of them wins per resend period;
* with tasks in-process (the embedded default), a thread of the web process
  (:mod:`studyapp.wsgi`), so a request interrupted by a server restart is finished too.

A thread rather than Celery beat: it needs no extra process, and it keeps sweeping while the
worker's only pool process is busy ranking (a beat-scheduled sweep would queue behind them).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from studyapp import dispatch
from studyapp.models import Request

log = logging.getLogger(__name__)

#: Most requests one sweep sends; the rest wait for the next tick (bounded work per tick).
BATCH = 200


def sweep_once() -> int:
    """Send every request that is due (oldest first); stop at the first broker error. Returns how many."""
    now = timezone.now()
    due = list(
        Request.objects.due_for_dispatch(now).order_by("created_at").values_list("pk", flat=True)[:BATCH]
    )
    sent = 0
    for pk in due:
        if not Request.objects.mark_enqueued(pk, now):
            continue  # another sweeper (or a fresh submit) sent it just now
        if not dispatch.send(pk):
            break  # the broker is down: everything stays due for the next tick
        sent += 1
    if sent:
        log.info("sweeper re-sent %d ranking request(s)", sent)
    return sent


class Sweeper(threading.Thread):
    """Calls :func:`sweep_once` every ``interval`` seconds until stopped; survives any error."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="whisperlite-sweeper", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            close_old_connections()  # a database restart leaves a dead pooled connection
            try:
                sweep_once()
            except Exception:
                log.warning("sweep failed; trying again in %ss", self.interval, exc_info=True)
                connection.close()
        connection.close()

    def stop(self) -> None:
        self.stopped.set()


_sweeper: Sweeper | None = None
_lock = threading.Lock()


def start() -> Sweeper | None:
    """Start this process's sweeper once (no-op when ``WHISPERLITE_SWEEP_SECONDS`` is 0)."""
    global _sweeper
    interval = settings.WHISPERLITE_SWEEP_SECONDS
    if interval <= 0:
        return None
    with _lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = Sweeper(interval)
            _sweeper.start()
            log.info("request sweeper running every %ss", interval)
        return _sweeper


def stop() -> None:
    global _sweeper
    with _lock:
        if _sweeper is not None:
            _sweeper.stop()
            _sweeper = None
