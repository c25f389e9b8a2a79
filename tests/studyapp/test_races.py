"""Truly concurrent races: threads with their own database connections, released together.

Each test starts N threads behind a barrier, so the same action reaches PostgreSQL at the
same moment (double clicks, two tabs, link prefetch), and checks that exactly one effect
remains and nobody got a server error. Needs PostgreSQL: SQLite serialises writers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from studyapp.models import Judgement, Participant, Request, Study
from studyapp.tasks import rank_request
from tests.studyapp.conftest import advance_to_tasks
from tests.studyapp.factories import ParticipantFactory

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 6


@pytest.fixture(autouse=True)
def _postgresql_only(db) -> None:  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        if os.environ.get("CI_REQUIRE_SERVICES") == "1":
            pytest.fail("race tests need DATABASE_URL to point at PostgreSQL", pytrace=False)
        pytest.skip("race tests need PostgreSQL (SQLite serialises writers)")


def race(action: Callable[[Client], object], clients: list[Client] | None = None) -> list[object]:
    """Run ``action`` in THREADS threads at once; return each result (or the exception raised)."""
    clients = clients or [Client() for _ in range(THREADS)]
    barrier = threading.Barrier(len(clients))
    results: list[object] = [None] * len(clients)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = action(clients[i])
        except Exception as exc:  # reported by the test, not swallowed
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _same_client(client: Client) -> list[Client]:
    """THREADS clients sharing one browser's cookies (one person, several tabs)."""
    clones = []
    for _ in range(THREADS):
        clone = Client()
        clone.cookies = client.cookies
        clones.append(clone)
    return clones


def test_the_same_crowd_link_opened_at_once_joins_one_participant(study: Study) -> None:
    url = f"/s/{study.token}/?PROLIFIC_PID=race-1&STUDY_ID=s&SESSION_ID=sess-1"
    responses = race(lambda c: c.get(url))
    assert all(getattr(r, "status_code", None) == 302 for r in responses), responses
    assert len({r["Location"] for r in responses}) == 1  # both tabs go to the one participant
    assert study.participants.count() == 1


def test_different_people_joining_at_once_get_dense_arrival_numbers(study: Study) -> None:
    responses = race(lambda c: c.get(f"/s/{study.token}/?PROLIFIC_PID=p-{id(c)}&SESSION_ID=s"))
    assert all(getattr(r, "status_code", None) == 302 for r in responses), responses
    numbers = sorted(study.participants.values_list("number", flat=True))
    assert numbers == list(range(1, THREADS + 1))


def _participant_in_tasks(study: Study) -> tuple[Participant, Client]:
    client = Client()
    participant = ParticipantFactory(study=study)
    advance_to_tasks(client, participant)
    return participant, client


def test_a_request_submitted_from_several_tabs_at_once_is_created_once(study: Study) -> None:
    participant, client = _participant_in_tasks(study)
    url = f"/p/{participant.token}/requests/"
    responses = race(lambda c: c.post(url, {"text": "a red scarf"}), _same_client(client))
    assert all(getattr(r, "status_code", None) == 302 for r in responses), responses
    assert participant.requests.count() == 1
    assert participant.requests.get().status == Request.Status.DONE


def _ready_request(study: Study) -> tuple[Participant, Client, Request]:
    participant, client = _participant_in_tasks(study)
    request = Request.objects.create(participant=participant, number=1, text="black shoes", seed=5)
    assert rank_request(request.pk) == "done"
    return participant, client, request


def test_one_slot_judged_from_several_tabs_at_once_keeps_one_row_with_a_sent_label(study: Study) -> None:
    participant, client, request = _ready_request(study)
    slot = request.slots.first()
    labels = [str(v) for v in study.scale.values]
    clients = _same_client(client)
    sent = {id(c): labels[i % len(labels)] for i, c in enumerate(clients)}
    url = f"/p/{participant.token}/judge/"
    responses = race(lambda c: c.post(url, {"slot": slot.pk, "label": sent[id(c)]}), clients)
    assert all(getattr(r, "status_code", None) == 302 for r in responses), responses
    rows = list(Judgement.objects.filter(slot=slot))
    assert len(rows) == 1
    assert str(rows[0].label) in set(sent.values())
    assert rows[0].changes <= THREADS - 1


def test_a_rating_that_waited_for_the_request_lock_reads_the_rating_stored_meanwhile(study: Study) -> None:
    """The time since the previous answer and the items left are read under the request lock:
    a rating blocked behind another rating of the same request sees that rating once it runs
    (a write whose reads used a snapshot from before the wait would not)."""
    participant, client, request = _ready_request(study)
    Request.objects.filter(pk=request.pk).update(ready_at=timezone.now() - timedelta(hours=1))
    first, second = request.slots.order_by("pk")[:2]
    total = request.slots.count()
    holding, release = threading.Event(), threading.Event()
    answer: list[object] = []

    def hold_the_lock_while_rating_first() -> None:
        try:
            with transaction.atomic():
                Request.objects.select_for_update().get(pk=request.pk)
                Judgement.objects.create(participant=participant, slot=first, label=1, response_ms=0)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def rate_second() -> None:
        try:
            answer.append(client.post(f"/p/{participant.token}/judge/", {"slot": second.pk, "label": "2"},
                                      HTTP_HX_REQUEST="true"))  # fmt: skip
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock_while_rating_first)
    holder.start()
    assert holding.wait(timeout=30)
    rater = threading.Thread(target=rate_second)
    rater.start()
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:  # until the rating waits for the lock
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")  # fmt: skip
            if cursor.fetchone()[0]:
                break
            time.sleep(0.02)
    release.set()
    holder.join(timeout=30)
    rater.join(timeout=30)
    response = answer[0]
    assert getattr(response, "status_code", None) == 200, response
    assert f"{total - 2} items left to rate." in response.content.decode()  # type: ignore[attr-defined]
    stored = Judgement.objects.get(slot=second)
    assert stored.response_ms is not None and stored.response_ms < 60_000  # since first, not ready_at


def test_next_clicked_in_several_tabs_at_once_advances_one_request(study: Study) -> None:
    participant, client, request = _ready_request(study)
    for slot in request.slots.all():
        client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "1"})
    url = f"/p/{participant.token}/requests/1/next/"
    responses = race(lambda c: c.post(url), _same_client(client))
    assert all(getattr(r, "status_code", None) == 302 for r in responses), responses
    participant.refresh_from_db()
    assert participant.phase == Participant.Phase.TASKS
    assert participant.requests.filter(completed_at__isnull=False).count() == 1
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert "Request 2 of" in page


def test_two_participants_finishing_the_instructions_at_once_get_distinct_conditions(study: Study) -> None:
    from studyapp.services import onboarding_grid

    people: dict[int, Participant] = {}
    clients = [Client(), Client()]
    for number, client in enumerate(clients, start=1):
        participant = ParticipantFactory(study=study, number=number)
        base = f"/p/{participant.token}/"
        client.post(base + "consent/", {"agree": "yes"})
        for item in onboarding_grid(participant)[:3]:
            client.post(base + f"picks/{item.pk}/")
        client.post(base + "onboarding/")
        participant.refresh_from_db()
        assert participant.phase == Participant.Phase.INSTRUCTIONS
        people[id(client)] = participant
    responses = race(lambda c: c.post(f"/p/{people[id(c)].token}/instructions/"), clients)
    assert all(getattr(r, "status_code", None) == 302 for r in responses), responses
    conditions = sorted(study.participants.values_list("condition", flat=True))
    assert conditions == [1, 2]  # distinct and dense: the study row lock serialised them
    assert Participant.Phase.INSTRUCTIONS not in set(study.participants.values_list("phase", flat=True))
