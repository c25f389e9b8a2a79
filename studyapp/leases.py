"""Keeping a ranking claim's lease alive while its task runs: one thread per worker process.

A claim is a short lease (:mod:`studyapp.models.lifecycle`) that the task renews every third
of it, so a killed worker's request is claimable again seconds later. A task rarely runs that
long (tens of milliseconds against a lease of seconds), so starting and joining a renewing
thread for every task cost more than the renewals it ever made (issue 10). One daemon thread
per process renews every held claim when it falls due and otherwise sleeps; a task only
registers its claim and takes it back.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError, connection

from studyapp.models import Request
from studyapp.models.lifecycle import Claim, lease_seconds

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the lease of every registered claim a third of a lease after its last renewal.

    Renewals run on the keeper's own thread and database connection, closed after each round
    (renewals are rare; an idle connection held per worker process is not worth keeping). A
    renewal that fails because the database is gone is tried again at the next beat; a lease
    that lapses meanwhile only lets the sweeper hand the request to another worker, whose
    claim then wins the final write. A claim that can no longer be renewed (taken over or
    finished) is dropped.
    """

    def __init__(self) -> None:
        self._keys = itertools.count()
        self._start_afresh()
        # A forked child (a prefork worker process) inherits the parent's claims and, were the
        # parent's keeper holding it at the fork, a locked lock: it starts with neither.
        os.register_at_fork(after_in_child=self._start_afresh)

    def _start_afresh(self) -> None:
        self._due: dict[int, tuple[Claim, float]] = {}  # key -> (claim, monotonic time due)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sleeping_until = math.inf  # when the keeper wakes next (monotonic)

    @contextmanager
    def kept(self, claim: Claim) -> Iterator[None]:
        """Keep ``claim``'s lease renewed while the body runs."""
        key = next(self._keys)
        due = time.monotonic() + lease_seconds() / 3
        with self._changed:
            self._ensure_thread()
            self._due[key] = (claim, due)
            if due < self._sleeping_until:
                # Wake the keeper only to sleep less: waking it for every task cost an encode
                # 0.6 ms in one measurement (a thread competing for the GIL while it encodes).
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._due.pop(key, None)

    def held(self) -> list[Claim]:
        """The claims being kept now."""
        with self._changed:
            return [claim for claim, _ in self._due.values()]

    def _ensure_thread(self) -> None:
        # None in a forked child (_start_afresh), which inherits the object but not the thread.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            due = self._wait_for_due()
            try:
                for key, claim in due:
                    self._renew(key, claim)
            finally:
                connection.close()

    def _wait_for_due(self) -> list[tuple[int, Claim]]:
        with self._changed:
            while True:
                now = time.monotonic()
                due = [(key, claim) for key, (claim, at) in self._due.items() if at <= now]
                if due:
                    for key, claim in due:
                        self._due[key] = (claim, now + lease_seconds() / 3)
                    return due
                self._sleeping_until = min((at for _, at in self._due.values()), default=math.inf)
                self._changed.wait(None if self._sleeping_until == math.inf else self._sleeping_until - now)
                self._sleeping_until = -math.inf  # awake: a new claim needs no notify

    def _renew(self, key: int, claim: Claim) -> None:
        try:
            renewed = Request.objects.renew(claim)
        except (OperationalError, InterfaceError) as exc:
            log.warning("could not renew the lease of request %s: %s", claim.pk, exc)
            connection.close()
            return
        except Exception:
            # Never let one bad renewal end the thread that keeps every claim of the process.
            log.exception("renewing the lease of request %s failed", claim.pk)
            connection.close()
            return
        if not renewed:  # taken over or finished: nothing to keep
            with self._changed:
                self._due.pop(key, None)


#: The keeper of this process's claims.
keeper = LeaseKeeper()
