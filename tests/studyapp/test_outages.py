"""No 500 for an outage: broker down at submit, database gone, slow preparation, bad input.

The fault tests with real processes (killing PostgreSQL, Redis, workers) are in
``test_chaos.py``; these check each behaviour in-process, exactly.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from studyapp.models import Participant, Request, Study

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_down(request: pytest.FixtureRequest) -> Iterator[None]:
    """The Celery app sends to a port where nothing listens (as while Redis is down)."""
    from studyapp.celery import app

    dead_url = f"redis://127.0.0.1:9/{abs(hash(request.node.nodeid)) % 16}"

    def reset_pools() -> None:  # drop cached connections so the next send uses the current URL
        # kombu caches a pool per URL process-wide; closing one without clearing that registry
        # handed a closed pool to the next test whose URL hashed the same ("Acquire on closed pool").
        from kombu import pools

        pools.reset()
        app._after_fork()

    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url=dead_url)
    reset_pools()
    yield
    app.conf.update(saved)
    reset_pools()


@pytest.mark.django_db
def test_broker_down_at_submit_keeps_the_request_and_shows_preparing(
    participant: Participant, client: Client, broker_down: None, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/p/{participant.token}/requests/", {"text": "a warm winter coat"})
    assert response.status_code == 302
    request = participant.requests.get()
    assert (request.status, request.enqueued_at) == (Request.Status.PENDING, None)  # due for the sweeper
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert "Preparing your recommendations" in page


@pytest.mark.django_db
def test_sweeper_stops_at_the_first_broker_error_and_keeps_everything_due(
    participant: Participant, broker_down: None
) -> None:
    from studyapp import sweeper

    for number in (1, 2):
        Request.objects.create(participant=participant, number=number, text="shoes", seed=number)
    assert sweeper.sweep_once() == 0
    assert Request.objects.due_for_dispatch().count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_database_outage_in_a_view_is_a_503_retry_page(
    participant: Participant, client: Client, monkeypatch, caplog, htmx: bool
) -> None:
    from studyapp import services

    def gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(services, "do_create_request", gone)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    with caplog.at_level(logging.WARNING):
        response = client.post(f"/p/{participant.token}/requests/", {"text": "shoes"}, **headers)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    if htmx:
        assert response["HX-Reswap"] == "none"  # the page stays; study.js retries or says so
    else:
        assert "briefly unavailable" in response.content.decode()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # one warning, no traceback


@pytest.mark.django_db
def test_a_database_outage_outside_a_view_is_a_503_too(rf) -> None:
    from studyapp.middleware import server_error

    try:
        raise OperationalError("terminating connection due to administrator command")
    except OperationalError:
        response = server_error(rf.get("/p/x/"))
    assert response.status_code == 503


def test_database_connections_are_health_checked(settings) -> None:
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db
def test_a_slow_request_tells_the_participant_it_keeps_trying(
    participant: Participant, client: Client, settings
) -> None:
    request = Request.objects.create(participant=participant, number=1, text="a scarf", seed=1)
    url = f"/p/{participant.token}/requests/1/status/"
    assert b"taking longer" not in client.get(url, HTTP_HX_REQUEST="true").content
    Request.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.WHISPERLITE_SLOW_NOTICE_SECONDS + 1)
    )
    page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "taking longer than usual" in page and "hx-trigger" in page  # still polling


@pytest.mark.django_db
def test_a_request_failed_after_the_attempt_cap_offers_try_again(
    participant: Participant, client: Client
) -> None:
    Request.objects.create(
        participant=participant, number=1, text="a scarf", seed=1, status=Request.Status.FAILED,
        error="gave up after 5 attempts", attempts=6,
    )  # fmt: skip
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert "could not prepare your recommendations" in page and "Try again" in page


# --- Unstorable input ----------------------------------------------------------------------

NUL_URLS = [
    "/p/%00/",
    "/s/%00/",
    "/s/{study}/?PROLIFIC_PID=%00",
    "/s/{study}/?PROLIFIC_PID=p1&STUDY_ID=%00",
    "/s/{study}/?PROLIFIC_PID=p1&SESSION_ID=%00",
    "/s/{study}/?%00=x",
    "/p/{participant}/?q=%00",
    "/p/{participant}/requests/1/status/?x=a%00b",
    "/api/studies/?page=%00",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", NUL_URLS)
def test_unstorable_characters_in_a_url_are_a_400(
    url: str, study: Study, participant: Participant, client: Client, caplog
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.get(url.format(study=study.token, participant=participant.token))
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert study.participants.count() == 1  # nothing was created


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["text", "text\x00"])
def test_nul_in_a_form_field_is_a_400_and_nothing_is_stored(
    field: str, participant: Participant, client: Client
) -> None:
    value = "red shoes\x00" if field == "text" else "red shoes"
    response = client.post(f"/p/{participant.token}/requests/", {field: value})
    assert response.status_code == 400
    assert not participant.requests.exists()


@pytest.mark.django_db
def test_nul_in_a_header_we_store_is_stripped(study: Study) -> None:
    response = Client(HTTP_USER_AGENT="Mozilla\x00/5.0").get(f"/s/{study.token}/")
    assert response.status_code == 302
    assert study.participants.get().user_agent == "Mozilla/5.0"


# --- The embedded default: feedback at once ------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the background thread has its own connection
def test_in_process_ranking_runs_after_the_response_and_the_page_shows_preparing(
    participant: Participant, client: Client, settings, monkeypatch
) -> None:
    from studyapp import ranking_service

    settings.WHISPERLITE_EAGER_IN_BACKGROUND = True
    release, finished = threading.Event(), threading.Event()
    real = ranking_service.rank_all

    def gated(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert release.wait(30), "the test never let the ranking go on"
        try:
            return real(*args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(ranking_service, "rank_all", gated)
    response = client.post(f"/p/{participant.token}/requests/", {"text": "a linen shirt"})
    assert response.status_code == 302  # answered while the ranking is still blocked
    status = client.get(f"/p/{participant.token}/requests/1/status/", HTTP_HX_REQUEST="true")
    assert b"Preparing your recommendations" in status.content
    release.set()
    assert finished.wait(60)
    for _ in range(100):  # the thread commits just after rank_all returns
        done = client.get(f"/p/{participant.token}/requests/1/status/", HTTP_HX_REQUEST="true")
        if done.status_code == 204:
            break
        threading.Event().wait(0.1)
    assert done.status_code == 204 and done["HX-Refresh"] == "true"  # the page swaps to the lists
    assert participant.requests.get().status == Request.Status.DONE


# --- Web processes never load torch --------------------------------------------------------


def test_web_process_imports_no_torch() -> None:
    code = (
        "import os, sys;"
        "os.environ['WHISPERLITE_SWEEP_SECONDS'] = '0';"
        "import studyapp.wsgi, studyapp.urls, studyapp.tasks, studyapp.sweeper;"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'open_clip') if m in sys.modules);"
        "print('LOADED', heavy)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout + out.stderr
