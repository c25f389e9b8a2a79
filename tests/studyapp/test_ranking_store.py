"""The ranking task's claim-and-load and store: one statement each on PostgreSQL, the same rows as
the ORM path, and the same conditions as the request's state machine."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from studyapp import ranking_store
from studyapp.leases import LeaseKeeper
from studyapp.models import Participant, RankedList, Request, Slot
from studyapp.models.lifecycle import Claim
from studyapp.tasks import rank_request

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's"
)

#: (status, lease from now in seconds or None, claimed_by): every kind of row a claim can meet.
STATES = [
    ("pending", None, ""),
    ("running", -5, "worker-a"),  # lease ran out: a killed worker's request
    ("running", None, "worker-a"),  # from before leases
    ("running", 60, "worker-a"),  # held by a live worker
    ("running", 60, "me"),  # my own claim, taken back by my retry
    ("running", 60, ""),  # held by a live claim without a task id: never "my own"
    ("done", None, "worker-a"),
    ("failed", None, "worker-a"),
]


def columns(obj: Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def new_request(participant: Participant, number: int, status: str = "pending", lease: int | None = None,
                claimed_by: str = "") -> Request:  # fmt: skip
    expires = timezone.now() + timedelta(seconds=lease) if lease is not None else None
    return Request.objects.create(
        participant=participant, number=number, text="black leather shoes", seed=7,
        status=status, lease_expires_at=expires, claimed_by=claimed_by, attempts=1,
    )  # fmt: skip


def stored(request: Request) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """A request's lists, slots and state, without ids or times that differ between two requests."""
    lists = [
        {k: v for k, v in columns(r).items() if k not in ("id", "request_id")}
        for r in RankedList.objects.filter(request=request).order_by("system_id")
    ]
    slots = [
        {k: v for k, v in columns(s).items() if k not in ("id", "request_id")}
        for s in Slot.objects.filter(request=request).order_by("list_label", "position")
    ]
    row = Request.objects.get(pk=request.pk)
    state = {
        "status": row.status,
        "error": row.error,
        "lease": row.lease_expires_at,
        "ready": row.ready_at is not None,
    }
    return lists, slots, state


def rows_for(request: Request, participant: Participant) -> tuple[list[RankedList], list[Slot]]:
    systems = list(participant.study.systems.order_by("pk"))
    items = list(participant.study.catalog.items.order_by("pk")[:3])
    lists = [
        RankedList(request=request, system=s, item_ids=[i.external_id for i in items], scores=[0.9, 0.5, 0.5],
                   version=f"v{s.pk}", latency_ms=1.25, encode_ms=6.5)
        for s in systems
    ]  # fmt: skip
    slots = [
        Slot(request=request, list_label=label, position=p + 1, item_id=item.pk, team_id=systems[0].pk if p else None,
             system_ranks={str(systems[0].pk): p + 1}, is_attention_check=(label, p) == ("B", 2))
        for label in ("A", "B") for p, item in enumerate(items)
    ]  # fmt: skip
    return lists, slots


@postgresql_only
def test_one_statement_claim_loads_what_the_orm_reads(participant: Participant) -> None:
    request = new_request(participant, 1)
    claimed = ranking_store.claim_and_load(request.pk, "me")
    assert claimed is not None
    fresh = Request.objects.select_related("participant__study__catalog").get(pk=request.pk)
    assert columns(claimed.request) == columns(fresh)  # as claimed: running, attempts + 1, lease
    assert claimed.request.status == "running" and claimed.request.attempts == 2
    assert claimed.claim == Claim(request.pk, fresh.started_at)
    assert columns(claimed.request.participant) == columns(fresh.participant)
    assert columns(claimed.request.participant.study) == columns(fresh.participant.study)
    assert columns(claimed.request.participant.study.catalog) == columns(fresh.participant.study.catalog)
    systems = list(fresh.participant.study.systems.order_by("pk"))
    assert [columns(s) for s in claimed.systems] == [columns(s) for s in systems]
    picks = fresh.participant.picks.order_by("pk").values_list("item__external_id", flat=True)
    assert claimed.history == list(picks) and len(claimed.history) == 3


@postgresql_only
@pytest.mark.parametrize(("status", "lease", "claimed_by"), STATES)
def test_one_statement_claim_takes_exactly_what_the_orm_claim_takes(
    participant: Participant, status: str, lease: int | None, claimed_by: str
) -> None:
    for number, claimant in ((1, "me"), (3, "")):  # a claimant, and a call without a task id
        one = new_request(participant, number, status, lease, claimed_by)
        other = new_request(participant, number + 1, status, lease, claimed_by)
        by_sql = ranking_store.claim_and_load(one.pk, claimant)
        by_orm = ranking_store.claim_and_load_orm(other.pk, claimant)
        assert (by_sql is None) == (by_orm is None), claimant
        one.refresh_from_db()
        other.refresh_from_db()
        assert (one.status, one.attempts, one.claimed_by) == (other.status, other.attempts, other.claimed_by)
        if by_sql is not None and by_orm is not None:
            assert one.lease_expires_at - one.started_at == other.lease_expires_at - other.started_at


@postgresql_only
def test_one_statement_store_writes_the_rows_the_orm_store_writes(participant: Participant) -> None:
    one, other = new_request(participant, 1), new_request(participant, 2)
    for request, store in ((one, ranking_store.store_first), (other, ranking_store.store_first_orm)):
        claim = Request.objects.claim(request.pk)
        assert claim is not None
        assert store(claim, *rows_for(request, participant))
    assert stored(one) == stored(other)
    lists, slots, state = stored(one)
    assert len(lists) == 2 and len(slots) == 6 and state["status"] == "done" and state["ready"]


@postgresql_only
def test_slots_credited_to_no_system_are_stored_like_the_orm_stores_them(participant: Participant) -> None:
    one, other = new_request(participant, 1), new_request(participant, 2)
    for request, store in ((one, ranking_store.store_first), (other, ranking_store.store_first_orm)):
        lists, slots = rows_for(request, participant)
        for slot in slots:
            slot.team_id = None  # pooled lists: every team empty, an array of NULLs only
        assert store(Request.objects.claim(request.pk), lists, slots)
    assert stored(one) == stored(other)
    assert all(s["team_id"] is None for s in stored(one)[1])


@pytest.mark.parametrize("store", [ranking_store.store_first, ranking_store.store_first_orm])
def test_store_writes_nothing_under_a_claim_another_worker_took_over(participant: Participant, store) -> None:  # type: ignore[no-untyped-def]
    request = new_request(participant, 1)
    lost = Request.objects.claim(request.pk)
    assert lost is not None
    Request.objects.filter(pk=request.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert Request.objects.claim(request.pk, claimant="worker-b") is not None
    assert not store(lost, *rows_for(request, participant))
    assert stored(request)[:2] == ([], [])
    assert Request.objects.get(pk=request.pk).status == "running"


@pytest.mark.parametrize("store", [ranking_store.store_first, ranking_store.store_first_orm])
def test_store_writes_nothing_over_slots_of_an_earlier_run(participant: Participant, store) -> None:  # type: ignore[no-untyped-def]
    request = new_request(participant, 1)
    claim = Request.objects.claim(request.pk)
    lists, slots = rows_for(request, participant)
    Slot.objects.bulk_create(slots[:1])
    assert not store(claim, lists, slots)
    assert RankedList.objects.filter(request=request).count() == 0
    assert Slot.objects.filter(request=request).count() == 1


@postgresql_only
def test_a_value_too_long_for_its_column_is_refused_not_cut(participant: Participant) -> None:
    request = new_request(participant, 1)
    claim = Request.objects.claim(request.pk)
    lists, slots = rows_for(request, participant)
    slots[0].list_label = "ABC"  # max_length 2: the ORM's insert refuses it too
    with pytest.raises(DataError), transaction.atomic():  # a savepoint: the test's transaction lives on
        ranking_store.store_first(claim, lists, slots)
    assert Request.objects.get(pk=request.pk).status == "running"
    assert Slot.objects.filter(request=request).count() == 0


@postgresql_only
def test_the_task_claims_and_stores_in_two_statements(
    participant: Participant, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    rank_request(new_request(participant, 1).pk)  # per-process caches filled
    request = new_request(participant, 2)
    with django_assert_num_queries(2):
        assert rank_request(request.pk) == "done"
    assert Slot.objects.filter(request=request).count() > 0


@postgresql_only
@pytest.mark.parametrize("prepared", [True, False])
def test_the_task_works_with_and_without_prepared_statements(
    participant: Participant, settings, prepared: bool
) -> None:  # type: ignore[no-untyped-def]
    settings.WHISPERLITE_PREPARED_STATEMENTS = prepared
    for number in (1, 2):
        request = new_request(participant, number)
        assert rank_request(request.pk) == "done"
        assert stored(request)[2]["status"] == "done"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")
        assert (cursor.fetchone()[0] > 0) == prepared


# --- the lease keeper ----------------------------------------------------------------------


def test_the_keeper_holds_a_claim_only_while_its_task_runs() -> None:
    keeper = LeaseKeeper()
    claim = Claim(1, timezone.now())
    with keeper.kept(claim):
        assert keeper.held() == [claim]
    assert keeper.held() == []


@pytest.mark.django_db(transaction=True)  # the keeper's thread has its own connection
def test_the_keeper_renews_a_held_claim_and_drops_one_taken_over(participant: Participant, settings) -> None:
    settings.WHISPERLITE_CLAIM_LEASE_SECONDS = 3  # renewed every second
    keeper = LeaseKeeper()
    mine, taken = new_request(participant, 1), new_request(participant, 2)
    mine_claim, taken_claim = Request.objects.claim(mine.pk), Request.objects.claim(taken.pk)
    assert mine_claim is not None and taken_claim is not None
    first_lease = Request.objects.get(pk=mine.pk).lease_expires_at
    with keeper.kept(mine_claim), keeper.kept(taken_claim):
        Request.objects.filter(pk=taken.pk).update(started_at=timezone.now())  # another claim took it
        time.sleep(1.6)
        assert Request.objects.get(pk=mine.pk).lease_expires_at > first_lease
        assert keeper.held() == [mine_claim]
