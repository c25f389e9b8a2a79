"""The ranking task's database work: claim and load a request, then store its lists and slots.

Beside the encoder the task's own cost was mostly round trips to the database (issue 10:
seven statements, 10 of the 14 ms a task spent outside the encoder). On PostgreSQL each of the
two steps is one statement:

1. :func:`claim_and_load`: the claim's conditional ``UPDATE`` in a CTE whose ``RETURNING``
   gives the request as claimed, joined to its participant, study and catalog, with the
   study's systems and the participant's picks as sub-selects.
2. :func:`store_first`: the first completion's conditional ``UPDATE`` and the inserts of the
   lists and slots (one array parameter per column, ``unnest``-ed), as data-modifying CTEs of
   one statement: all or nothing, and rows are inserted only if the update happened (they
   take the request id from its ``RETURNING``).

Both statements are fixed texts, built once, their column lists from the models' metadata (a field added to a
model travels through here without an edit) and prepared on the server (see :func:`_cursor`).
The two ``UPDATE`` conditions are written here in SQL for that reason; they mirror
:meth:`~studyapp.models.lifecycle.RequestQuerySet.claim` and ``complete_first``, and
``tests/studyapp/test_ranking_store.py`` runs both against every request state.
Elsewhere (SQLite, the embedded mode) the same steps run through the ORM
(:func:`claim_and_load_orm`, :func:`store_first_orm`); the tests check both store the same rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, lru_cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from studyapp.models import (
    Catalog,
    HistoryPick,
    Item,
    Participant,
    RankedList,
    RankingSystem,
    Request,
    Slot,
    Study,
)
from studyapp.models.lifecycle import Claim, lease_seconds

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class ClaimedRequest:
    """A request its worker has just claimed, with everything the ranking needs."""

    claim: Claim
    request: Request  # as claimed, with its participant, study and catalog loaded
    systems: list[RankingSystem]  # the study's systems, by primary key
    # External ids of the participant's picks, in pick order: the order feeds the tie seed and
    # the history blend's c.I cache key.
    history: list[str]


def claim_and_load(pk: int, claimant: str = "") -> ClaimedRequest | None:
    """Claim the request and read what ranking it needs; None when it is not claimable."""
    if connection.vendor == "postgresql":
        return _claim_and_load_in_one_statement(pk, claimant)
    return claim_and_load_orm(pk, claimant)


def claim_and_load_orm(pk: int, claimant: str = "") -> ClaimedRequest | None:
    """:func:`claim_and_load` through the ORM: four statements, any database."""
    claim = Request.objects.claim(pk, claimant=claimant)
    if claim is None:
        return None
    request = Request.objects.select_related("participant__study__catalog").get(pk=pk)
    systems = list(request.participant.study.systems.order_by("pk"))
    history = list(request.participant.picks.order_by("pk").values_list("item__external_id", flat=True))
    return ClaimedRequest(claim, request, systems, history)


def store_first(claim: Claim, lists: Sequence[RankedList], slots: Sequence[Slot]) -> bool:
    """Mark the request done and store its lists and slots, all or nothing, under ``claim``.

    Only a request's first ranking: False (nothing written) when the claim was lost or the
    request already has slots from an earlier run; the task then takes its careful path.
    """
    if connection.vendor == "postgresql":
        return _store_first_in_one_statement(claim, lists, slots)
    return store_first_orm(claim, lists, slots)


def store_first_orm(claim: Claim, lists: Sequence[RankedList], slots: Sequence[Slot]) -> bool:
    """:func:`store_first` through the ORM: one transaction of three statements, any database."""
    with transaction.atomic():
        # The conditional UPDATE both checks the claim and locks the row to the commit.
        if not Request.objects.complete_first(claim):
            return False
        RankedList.objects.bulk_create(lists)
        Slot.objects.bulk_create(slots)
    return True


# --- PostgreSQL: one statement each ----------------------------------------------------------


@lru_cache(maxsize=1)
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor  # psycopg 3 only

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc, valid-type]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            return super().execute(query, params, prepare=True)

    return PreparingCursor


@contextmanager
def _cursor() -> Iterator[Any]:
    """A cursor for the two statements, prepared on the server unless the settings say no.

    Planning the two statements took longer than running them (2.3 and 1.4 ms against 1.0 and
    0.3 ms, ``EXPLAIN ANALYZE``); a prepared statement is planned once per connection. Django
    binds parameters on the client and never prepares, so this cursor binds on the server and
    prepares every statement it runs (``WHISPERLITE_PREPARED_STATEMENTS``: off behind a
    transaction-pooling PgBouncer older than 1.21, which cannot keep prepared statements).
    Queries still go through Django's cursor wrapper: logged, counted, errors translated,
    execute wrappers run. Prepared statements live as long as the connection, which a worker
    keeps between tasks (``CELERY_DB_REUSE_MAX``); psycopg prepares them again after a
    rollback on the connection (it deallocates them all then).
    """
    if not settings.WHISPERLITE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()  # what connection.cursor() does first
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        # Django turns psycopg's preparing off (None), which also ignores ``prepare=True``; a
        # threshold no statement reaches prepares only what this cursor asks for: Django's
        # own cursors bind on the client and never prepare.
        connection.connection.prepare_threshold = 2**31 - 1
    raw = _preparing_cursor_class()(connection.connection)
    with (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw) as cursor
    ):
        yield cursor


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{_qn(f.column)}" for f in model._meta.concrete_fields)


@cache
def _converters(model: type[Model]) -> tuple[list[str], list[tuple[int, Any, list[Any]]]]:
    """The concrete fields' attribute names and, for the fields that have any, the ORM's converters."""
    fields = model._meta.concrete_fields
    found = []
    for i, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        convert = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if convert:
            found.append((i, column, convert))
    return [f.attname for f in fields], found


def _from_db(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from its concrete columns' raw values, converted as the ORM converts them."""
    attnames, converters = _converters(model)
    values = list(values)
    for i, column, convert in converters:
        for step in convert:
            values[i] = step(values[i], column, connection)
    return model.from_db(connection.alias, attnames, values)


def _from_json(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from its concrete columns as ``json_build_array`` gave them."""
    fields = model._meta.concrete_fields
    return model.from_db(
        connection.alias,
        [f.attname for f in fields],
        [None if v is None else f.to_python(v) for f, v in zip(fields, values, strict=True)],
    )


@lru_cache(maxsize=1)
def _load_sql() -> str:
    """Claim (``RequestQuerySet.claimable`` and ``claim``'s changes) and read, in one statement."""
    r = _qn(Request._meta.db_table)
    systems_field = Study._meta.get_field("systems")
    pick = HistoryPick._meta
    return (
        f"WITH claimed AS ("
        f"UPDATE {r} SET status = %(running)s, started_at = %(now)s, claimed_by = %(claimant)s, "
        f"lease_expires_at = %(expires)s, attempts = {r}.attempts + 1 "
        f"WHERE {r}.id = %(pk)s AND ({r}.status = %(pending)s OR ({r}.status = %(running)s AND ("
        f"{r}.lease_expires_at < %(now)s OR {r}.lease_expires_at IS NULL "
        f"OR (%(claimant)s <> '' AND {r}.claimed_by = %(claimant)s)))) "
        f"RETURNING {_columns(Request, r)}) "
        f"SELECT {_columns(Request, 'claimed')}, {_columns(Participant, 'p')}, "
        f"{_columns(Study, 's')}, {_columns(Catalog, 'c')}, "
        f"ARRAY(SELECT i.{_qn('external_id')} FROM {_qn(pick.db_table)} h "
        f"JOIN {_qn(Item._meta.db_table)} i ON i.id = h.{_qn(pick.get_field('item').column)} "
        f"WHERE h.{_qn(pick.get_field('participant').column)} = p.id ORDER BY h.id), "
        f"(SELECT json_agg(json_build_array({_columns(RankingSystem, 'rs')}) ORDER BY rs.id)::text "
        f"FROM {_qn(RankingSystem._meta.db_table)} rs "
        f"JOIN {_qn(systems_field.m2m_db_table())} t ON t.{_qn(systems_field.m2m_reverse_name())} = rs.id "
        f"WHERE t.{_qn(systems_field.m2m_column_name())} = s.id) "
        f"FROM claimed "
        f"JOIN {_qn(Participant._meta.db_table)} p ON p.id = claimed.{_qn(Request._meta.get_field('participant').column)} "
        f"JOIN {_qn(Study._meta.db_table)} s ON s.id = p.{_qn(Participant._meta.get_field('study').column)} "
        f"JOIN {_qn(Catalog._meta.db_table)} c ON c.id = s.{_qn(Study._meta.get_field('catalog').column)}"
    )  # fmt: skip


def _claim_and_load_in_one_statement(pk: int, claimant: str) -> ClaimedRequest | None:
    now = timezone.now()
    params = {
        "pk": pk, "claimant": claimant, "now": now, "expires": now + timedelta(seconds=lease_seconds()),
        "pending": Request.Status.PENDING.value, "running": Request.Status.RUNNING.value,
    }  # fmt: skip
    with _cursor() as cursor:
        cursor.execute(_load_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    parts = []
    for model in (Request, Participant, Study, Catalog):
        width = len(model._meta.concrete_fields)
        parts.append(values[:width])
        values = values[width:]
    request, participant = _from_db(Request, parts[0]), _from_db(Participant, parts[1])
    study, catalog = _from_db(Study, parts[2]), _from_db(Catalog, parts[3])
    history, system_rows = values
    # The related objects the ORM path's select_related would have cached.
    Request._meta.get_field("participant").set_cached_value(request, participant)
    Participant._meta.get_field("study").set_cached_value(participant, study)
    Study._meta.get_field("catalog").set_cached_value(study, catalog)
    systems = [_from_json(RankingSystem, r) for r in json.loads(system_rows or "[]")]
    return ClaimedRequest(Claim(pk, now), request, systems, list(history or []))


#: The rows :func:`store_first` inserts, each named as its CTE and its parameters' prefix.
_STORED: tuple[tuple[str, type[Model]], ...] = (("lists", RankedList), ("slots", Slot))


@cache
def _stored_fields(model: type[Model]) -> tuple[Field, ...]:
    """The columns :func:`store_first` writes: all but the key and the request."""
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.name != "request")


def _array_type(field: Field) -> str:
    # Without a length: an explicit cast to varchar(n) would cut a longer value silently,
    # where the insert's own (assignment) cast raises, as the ORM's insert does.
    return re.sub(r"\(\d+\)$", "", field.db_type(connection) or "") + "[]"


@lru_cache(maxsize=1)
def _store_sql() -> str:
    """The first completion (``RequestQuerySet.complete_first``) and the inserts, in one statement."""
    r = _qn(Request._meta.db_table)
    slot_request = _qn(Slot._meta.get_field("request").column)
    inserts = []
    for name, model in _STORED:
        fields = _stored_fields(model)
        columns = ", ".join(_qn(f.column) for f in [model._meta.get_field("request"), *fields])
        arrays = ", ".join(f"%({name}_{f.attname})s::{_array_type(f)}" for f in fields)
        inserts.append(
            f"{name} AS (INSERT INTO {_qn(model._meta.db_table)} ({columns}) "
            f"SELECT done.id, v.* FROM done CROSS JOIN unnest({arrays}) AS v RETURNING 1)"
        )
    return (
        f"WITH done AS ("
        f"UPDATE {r} SET status = %(done)s, error = '', lease_expires_at = NULL, ready_at = %(now)s "
        f"WHERE {r}.id = %(pk)s AND {r}.status = %(running)s AND {r}.started_at = %(started_at)s "
        f"AND NOT EXISTS (SELECT 1 FROM {_qn(Slot._meta.db_table)} sl WHERE sl.{slot_request} = {r}.id) "
        f"RETURNING {r}.id), {', '.join(inserts)} "
        f"SELECT count(*) FROM done"
    )  # fmt: skip


def _store_first_in_one_statement(claim: Claim, lists: Sequence[RankedList], slots: Sequence[Slot]) -> bool:
    params: dict[str, Any] = {
        "pk": claim.pk, "started_at": claim.started_at, "now": timezone.now(),
        "running": Request.Status.RUNNING.value, "done": Request.Status.DONE.value,
    }  # fmt: skip
    for (name, model), objs in zip(_STORED, (lists, slots), strict=True):
        for f in _stored_fields(model):
            params[f"{name}_{f.attname}"] = [
                f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs
            ]
    # One statement is atomic on its own; data-modifying CTEs run whether or not they are read.
    with _cursor() as cursor:
        cursor.execute(_store_sql(), params)
        (done,) = cursor.fetchone()
    return bool(done == 1)
