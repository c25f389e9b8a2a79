"""The rating write on PostgreSQL in two SQL statements, for the study's hottest request.

:func:`studyapp.services.do_save_judgement` is the general path (every database, ORM objects,
six statements with the participant lookup). On PostgreSQL the view first tries
:func:`save_rating`, which does the same write with the same guarantees in one transaction
of two statements and loads no model instance (issue 10: CPU per write is what limits
writes/s on a 2-core server):

1. the participant (by token), the study's rating settings, the slot's item title and the
   slot's request, with the request row locked (``FOR UPDATE OF`` the request);
2. one ``INSERT ... ON CONFLICT (slot) DO UPDATE`` whose CTE reads, under that lock, the
   request's judgements (time since the previous answer, items left).

Two statements rather than one CTE on purpose: under READ COMMITTED every part of a statement
reads the snapshot taken when the statement *started*, so a single statement that waited for
the request lock would compute the time since the previous answer and the items left without
the rating that held the lock. The second statement's snapshot is taken after the lock is
held, as in the general path.

Anything unusual (unknown participant or slot, a request not ready, SQLite) returns ``None``
and the view takes the general path, which produces the same errors as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.html import escape

from studyapp.design import SCALES
from studyapp.models import Item, Judgement, Participant, Request, Slot, Study
from studyapp.services import StudyError, check_label


@dataclass(frozen=True)
class SavedRating:
    """What the rating control's fragment shows after a stored rating."""

    slot_id: int
    item_title: str
    label: int | None  # None: "can't judge"
    unjudged: int  # slots of the request still without a rating, this one counted as rated
    rating_scale: str  # the study's scale name (``studyapp.design.SCALES``)
    allow_cant_judge: bool

    def fragment_context(self, token: str) -> dict[str, object]:
        """The ``study/_rating.html`` context, with plain values where the page passes models."""
        return {
            "participant": {"token": token},
            "slot": {"pk": self.slot_id, "item": {"title": self.item_title}},
            "judgement": {"label": self.label},
            "scale": SCALES[self.rating_scale].choices,
            "study": {"allow_cant_judge": self.allow_cant_judge},
            "unjudged": self.unjudged,
            "oob": True,
        }


def _lock_sql() -> str:
    return (
        f"SELECT r.id, r.completed_at, r.ready_at, p.id, s.rating_scale, s.allow_cant_judge, "
        f"s.min_seconds_per_judgement, i.title "
        f"FROM {Slot._meta.db_table} sl "
        f"JOIN {Request._meta.db_table} r ON r.id = sl.request_id "
        f"JOIN {Participant._meta.db_table} p ON p.id = r.participant_id "
        f"JOIN {Study._meta.db_table} s ON s.id = p.study_id "
        f"JOIN {Item._meta.db_table} i ON i.id = sl.item_id "
        f"WHERE sl.id = %s AND p.token = %s AND r.status = %s "
        f"FOR UPDATE OF r"
    )


def _write_sql() -> str:
    # ``changes`` counts real changes only, and a repeated label leaves the row (and its
    # updated_at, the "previous answer" of the next rating) untouched, as the general path
    # does. response_ms/too_fast are those of the first answer and are never overwritten.
    j, sl = Judgement._meta.db_table, Slot._meta.db_table
    return (
        f"WITH seen AS ("
        f"  SELECT count(*) FILTER (WHERE j.id IS NULL AND sl.id <> %(slot)s) AS unjudged,"
        f"         max(j.updated_at) AS previous"
        f"  FROM {sl} sl LEFT JOIN {j} j ON j.slot_id = sl.id WHERE sl.request_id = %(request)s"
        f"), elapsed AS ("
        f"  SELECT GREATEST(0, floor(extract(epoch FROM %(now)s::timestamptz"
        f"           - COALESCE(seen.previous, %(ready)s::timestamptz, %(now)s::timestamptz)) * 1000))::int"
        f"         AS ms FROM seen"
        f"), written AS ("
        f"  INSERT INTO {j} AS old (participant_id, slot_id, label, response_ms, too_fast, changes,"
        f"                          created_at, updated_at)"
        f"  SELECT %(participant)s, %(slot)s, %(label)s, elapsed.ms, elapsed.ms < %(min_ms)s, 0,"
        f"         %(now)s, %(now)s FROM elapsed"
        f"  ON CONFLICT (slot_id) DO UPDATE SET label = EXCLUDED.label, changes = old.changes + 1,"
        f"         updated_at = EXCLUDED.updated_at"
        f"  WHERE old.label IS DISTINCT FROM EXCLUDED.label"
        f"  RETURNING old.id"
        f") SELECT seen.unjudged FROM seen"
    )


LOCK_SQL = _lock_sql()
WRITE_SQL = _write_sql()


def save_rating(
    token: str, slot_id: int, raw_label: str | None, now: datetime | None = None
) -> SavedRating | None:
    """Store (or overwrite) a rating on PostgreSQL in two statements; ``None``: use the general path.

    Needs row locks (PostgreSQL). The request lock serialises every rating of the request with
    the others and with "next", as in :func:`studyapp.services.do_save_judgement`. Raises
    :class:`StudyError` for a label off the study's scale (400) and a finished request (409),
    with nothing written.
    """
    if connection.vendor != "postgresql":
        return None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, [slot_id, token, Request.Status.DONE])
        row = cursor.fetchone()
        if row is None:  # unknown participant, someone else's slot, not ready: the general path says which
            return None
        # Read the clock under the lock: a rating that waited for another one's lock is later
        # than it, so its response time is never negative (clamped to 0 and flagged too fast).
        now = now or timezone.now()
        request_id, completed_at, ready_at, participant_id, rating_scale, allow_cant_judge, min_s, title = row
        # An unsaved Study carrying the two settings check_label reads: one rule, one message.
        label = check_label(Study(rating_scale=rating_scale, allow_cant_judge=allow_cant_judge), raw_label)
        if completed_at is not None:
            raise StudyError("This request is finished; its ratings can no longer change.", status=409)
        cursor.execute(
            WRITE_SQL,
            {"slot": slot_id, "request": request_id, "now": now, "ready": ready_at,
             "participant": participant_id, "label": label, "min_ms": min_s * 1000},
        )  # fmt: skip
        (unjudged,) = cursor.fetchone()
    return SavedRating(slot_id, title, label, unjudged, rating_scale, allow_cant_judge)


# --- The fragment ---------------------------------------------------------------------------
# study/_rating.html, written out with str.join for the hot path: the template engine took
# 0.5-0.6 ms of the ~2.4 ms a write costs in-process (scripts/profile_writes.py). The page
# still renders the template; tests/studyapp/test_judgement_writes.py checks that both give
# the same bytes for every scale, label and "can't judge" setting.


def _button(value: str, key: str, chosen: bool, text: str) -> str:
    pressed = "true" if chosen else "false"
    chosen_class = ' class="chosen"' if chosen else ""
    return (
        f'\n    <button type="submit" name="label" value="{value}" data-key="{key}" '
        f'aria-pressed="{pressed}"{chosen_class}>{text}</button>\n  '
    )


def render_fragment(saved: SavedRating, action: str, csrf_token: str) -> str:
    """The rating control after ``saved`` and the out-of-band "left to rate" line, as HTML."""
    parts = [
        f'<form id="rating-{saved.slot_id}" class="rating" method="post" action="{escape(action)}">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(csrf_token)}">\n'
        f'  <input type="hidden" name="slot" value="{saved.slot_id}">\n'
        f'  <fieldset><legend class="visually-hidden">Rating for {escape(saved.item_title)}</legend>\n  '
    ]
    for value, text in SCALES[saved.rating_scale].choices:
        parts.append(_button(str(value), str(value), saved.label == value,
                             f'{value} <span class="lbl">{escape(text)}</span>'))  # fmt: skip
    parts.append("\n  ")
    if saved.allow_cant_judge:
        parts.append(_button("na", "n", saved.label is None, "Can't judge"))
    parts.append("\n  </fieldset>\n</form>\n")
    left = saved.unjudged
    count = f"{left} item{'' if left == 1 else 's'} left to rate." if left else "All items rated."
    parts.append(f'<p id="unjudged" hx-swap-oob="true" aria-live="polite">{count}</p>\n')
    return "".join(parts)
