"""End to end with a REAL Celery worker process and the Redis broker (the production path).

The test process sends ``rank_request`` to Redis (``studyapp.celery.app`` is switched out of eager
mode for these tests and restored afterwards); a ``celery worker --pool=solo`` subprocess consumes
a queue private to this test session and writes to the same *test* database, which is why the
tests are transactional and need PostgreSQL (the SQLite test database lives in memory).

Skipped when Redis or PostgreSQL is unavailable, except with ``CI_REQUIRE_SERVICES=1`` (the test
command sets it), where a missing service fails the run instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from studyapp.models import Participant, RankedList, Request, Slot
from studyapp.tasks import rank_request

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("CI_REQUIRE_SERVICES", "") == "1"
DONE_TIMEOUT = 90  # seconds; the worker loads the encoder on its first task
WORKER_READY_TIMEOUT = 60


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (CI_REQUIRE_SERVICES=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2).close()
    except OSError:
        return False
    return True


def _test_database_url() -> str:
    """A URL for the test database pytest-django created (its NAME is the renamed test database)."""
    from django.db import connection

    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth + '@' if auth else ''}{host}{port}/{quote(s['NAME'], safe='')}"


class Worker:
    def __init__(self, proc: subprocess.Popen, log: Path, queue: str) -> None:
        self.proc, self.log, self.queue = proc, log, queue

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_ready(self, app, node: str, timeout: float) -> None:  # type: ignore[no-untyped-def]
        """Wait until the worker answers a remote-control ping (Celery's public API, no log reading)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if app.control.ping(destination=[node], timeout=1.0):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"the Celery worker exited with {self.proc.returncode}:\n{self.output()}")
        pytest.fail(f"the worker {node} did not answer a ping within {timeout}s:\n{self.output()}")


def _reset_pools(app) -> None:  # type: ignore[no-untyped-def]
    """Drop cached broker connections so the next send uses the current ``broker_url``.

    kombu keeps one pool per broker URL in a process-wide registry: closing a pool without
    clearing the registry hands the closed pool to the next module that switches back to the
    same URL ("Acquire on closed pool"), so the registry is reset too.
    """
    from kombu import pools

    pools.reset()  # closes every pool and forgets them
    app._after_fork()  # clears app._pool and amqp._producer_pool


def _delete_queue(queue: str) -> None:
    """Best effort: remove the private queue and kombu's bookkeeping keys for it from Redis."""
    import redis

    try:
        client = redis.Redis.from_url(BROKER_URL, socket_timeout=5)
        keys = [queue, *client.scan_iter(match=f"_kombu.binding*{queue}*")]
        client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


@contextmanager
def running_worker(
    queue_prefix: str,
    log_dir: Path,
    env_overrides: dict[str, str],
    *,
    stop_signal: int = signal.SIGTERM,
    tail_lines: int | None = None,
) -> Iterator[Worker]:
    """A real ``celery worker --pool=solo`` on a private queue and the test database, with the
    in-process Celery app sending to it via Redis; on exit, the app is switched back, the queue
    deleted and the worker stopped with ``stop_signal``. Its output is printed on exit: the
    last ``tail_lines`` lines, or (None) all of it if start-up or the body failed."""
    from django.db import connection

    from studyapp.celery import app

    if not _redis_reachable(BROKER_URL):
        _unavailable(
            f"Redis is not reachable at {BROKER_URL} (set CELERY_TEST_BROKER_URL or start redis-server)"
        )
    if connection.vendor != "postgresql":
        _unavailable(
            "the real-worker test needs DATABASE_URL to point at PostgreSQL: the SQLite test database is in "
            "memory, so a worker process cannot see it"
        )

    queue = f"{queue_prefix}-{uuid.uuid4().hex[:12]}"
    log = log_dir / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=_test_database_url(),
        CELERY_BROKER_URL=BROKER_URL,
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_TASK_DEFAULT_QUEUE=queue,  # the worker's sweeper re-sends to the private queue
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        **env_overrides,
    )
    cmd = [
        sys.executable, "-m", "celery", "-A", "studyapp", "worker",
        "--pool=solo", "-c", "1", "-l", "info", "-Q", queue, "-n", f"{queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "task_default_queue")}
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    handle = Worker(proc, log, queue)
    failed = True
    try:
        app.conf.update(task_always_eager=False, broker_url=BROKER_URL, task_default_queue=queue)
        _reset_pools(app)
        handle.wait_until_ready(app, f"{queue}@{socket.gethostname()}", WORKER_READY_TIMEOUT)
        yield handle
        failed = False
    finally:
        _delete_queue(queue)
        app.conf.update(saved)
        _reset_pools(app)
        proc.send_signal(stop_signal)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if tail_lines is not None:
            lines = handle.output().splitlines()[-tail_lines:]
            print(f"--- Celery worker output (last {tail_lines} lines) ---\n" + "\n".join(lines))
        elif failed:
            print(f"--- Celery worker output ({log}) ---\n{handle.output()}")


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    """A real worker on a private queue, and the in-process Celery app sending to it via Redis."""
    with running_worker(
        "whisperlite-test",
        tmp_path_factory.mktemp("celery_worker"),
        {"WHISPERLITE_SWEEP_SECONDS": "1", "WHISPERLITE_CACHE_DIR": str(settings.WHISPERLITE_CACHE_DIR)},
    ) as handle:
        yield handle


@pytest.fixture
def worker_output_on_failure(worker: Worker) -> Iterator[Worker]:
    """The worker; its recent output is printed in teardown, which pytest shows only for failed tests."""
    yield worker
    print("--- Celery worker output (last 200 lines) ---\n" + "\n".join(worker.output().splitlines()[-200:]))


def _wait_for_status(pk: int, statuses: set[str], worker: Worker, timeout: float = DONE_TIMEOUT) -> Request:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = Request.objects.get(pk=pk)
        if request.status in statuses:
            return request
        if worker.proc.poll() is not None:
            pytest.fail(f"the Celery worker exited with {worker.proc.returncode}:\n{worker.output()}")
        time.sleep(0.5)
    pytest.fail(
        f"request {pk} still {Request.objects.get(pk=pk).status!r} after {timeout}s:\n{worker.output()}"
    )


def _drain(participant: Participant, worker: Worker) -> None:
    """Wait until the worker has handled every message sent so far, without reading its log.

    The worker is solo with prefetch 1 on a FIFO queue: once a sentinel request sent last is
    done, every earlier message has been processed.
    """
    number = (participant.requests.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    sentinel = Request.objects.create(
        participant=participant, number=number, text="sentinel", seed=1, enqueued_at=timezone.now()
    )
    rank_request.delay(sentinel.pk)
    assert _wait_for_status(sentinel.pk, {Request.Status.DONE}, worker).status == Request.Status.DONE


def _assert_one_set_of_lists(request: Request) -> None:
    k = request.participant.study.k
    lists = RankedList.objects.filter(request=request)
    assert lists.count() == 2
    assert all(len(lst.item_ids) == k for lst in lists)
    assert sorted(set(Slot.objects.filter(request=request).values_list("list_label", flat=True))) == [
        "A",
        "B",
    ]
    assert request.participant.study.presentation_mode == "side_by_side"
    # Side by side shows both systems' full lists: exactly k slots in each of A and B.
    assert Slot.objects.filter(request=request, is_attention_check=False).count() == 2 * k
    for label in ("A", "B"):
        assert Slot.objects.filter(request=request, list_label=label).count() == k


def test_request_is_ranked_by_a_real_worker(
    participant: Participant, client: Client, worker_output_on_failure: Worker
) -> None:
    response = client.post(f"/p/{participant.token}/requests/", {"text": "casual shoes for the weekend"})
    assert response.status_code == 302
    request = participant.requests.get()
    # The view returned before any ranking happened: the work is on the queue, not in-process.
    request = _wait_for_status(
        request.pk, {Request.Status.DONE, Request.Status.FAILED}, worker_output_on_failure
    )
    assert request.status == Request.Status.DONE, request.error
    assert request.attempts == 1
    assert request.ready_at is not None
    _assert_one_set_of_lists(request)
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert "List A" in page and "List B" in page


def test_running_the_task_twice_leaves_one_set_of_lists(
    participant: Participant, client: Client, worker_output_on_failure: Worker
) -> None:
    worker = worker_output_on_failure
    client.post(f"/p/{participant.token}/requests/", {"text": "a warm winter jacket"})
    request = participant.requests.get()
    # A duplicate delivery of the same message while the first is queued or running...
    rank_request.delay(request.pk)
    request = _wait_for_status(request.pk, {Request.Status.DONE, Request.Status.FAILED}, worker)
    assert request.status == Request.Status.DONE, request.error
    slots = list(Slot.objects.filter(request=request).values_list("pk", "item_id", "list_label", "position"))
    # ...and a re-enqueue after it is done change nothing.
    rank_request.delay(request.pk)
    _drain(participant, worker)
    request.refresh_from_db()
    assert request.status == Request.Status.DONE
    assert request.attempts == 1  # neither repeat claimed it
    assert (
        list(Slot.objects.filter(request=request).values_list("pk", "item_id", "list_label", "position"))
        == slots
    )
    _assert_one_set_of_lists(request)


def test_request_of_a_crashed_worker_is_reclaimed(
    participant: Participant, worker_output_on_failure: Worker
) -> None:
    worker = worker_output_on_failure
    stale = timezone.now() - timedelta(seconds=600)
    crashed = Request.objects.create(
        participant=participant, number=1, text="red summer dress", seed=11,
        status=Request.Status.RUNNING, started_at=stale, attempts=1,
        lease_expires_at=stale + timedelta(seconds=settings.WHISPERLITE_CLAIM_LEASE_SECONDS),
        enqueued_at=timezone.now(),  # not due for the sweeper: this test sends the message itself
    )  # fmt: skip

    # A request that a live worker started moments ago is left alone...
    live = Request.objects.create(
        participant=participant, number=2, text="blue jeans", seed=12,
        status=Request.Status.RUNNING, started_at=timezone.now(), attempts=1,
        lease_expires_at=timezone.now() + timedelta(hours=1), enqueued_at=timezone.now(),
    )  # fmt: skip
    rank_request.delay(live.pk)
    _drain(participant, worker)
    live.refresh_from_db()
    assert live.status == Request.Status.RUNNING
    assert not RankedList.objects.filter(request=live).exists()

    # ...while the one whose worker died long ago is claimed again and completed.
    rank_request.delay(crashed.pk)
    crashed = _wait_for_status(crashed.pk, {Request.Status.DONE, Request.Status.FAILED}, worker)
    assert crashed.status == Request.Status.DONE, crashed.error
    assert crashed.attempts == 2
    assert crashed.started_at > stale
    _assert_one_set_of_lists(crashed)


def test_worker_sweeper_sends_a_request_that_was_never_sent(
    participant: Participant, worker_output_on_failure: Worker
) -> None:
    """As after a broker outage at submit: the row is committed, no message exists."""
    request = Request.objects.create(participant=participant, number=1, text="a linen shirt", seed=3)
    request = _wait_for_status(
        request.pk, {Request.Status.DONE, Request.Status.FAILED}, worker_output_on_failure
    )
    assert request.status == Request.Status.DONE, request.error
    assert request.attempts == 1
    _assert_one_set_of_lists(request)


def _task_connection() -> tuple[int, object]:
    """(pid, backend start) of the worker's connection that last stored a request's lists."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'WITH done AS%%' "
            "ORDER BY state_change DESC LIMIT 1"
        )
        row = cursor.fetchone()
    assert row is not None, "no worker connection has stored lists"
    return row[0], row[1]


def test_the_worker_keeps_its_database_connection_between_tasks(
    participant: Participant, worker_output_on_failure: Worker
) -> None:
    """Celery's Django fixup would open a new connection for every task (5 ms here, more than the
    task's SQL); the worker keeps one (CELERY_DB_REUSE_MAX) and checks it before each task."""
    worker = worker_output_on_failure
    _drain(participant, worker)
    first = _task_connection()
    for _ in range(3):
        _drain(participant, worker)
    assert _task_connection() == first
