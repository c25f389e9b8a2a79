"""How often a waiting page asks whether its lists are ready (adaptive polling, issue 10).

Why polling and not server-sent events: the app runs under gunicorn's sync workers (3 by
default), and an SSE stream holds one worker for as long as its participant waits, so 20
participants waiting at once would need 20 workers, and a fourth waiting participant would
block every other page. A short poll holds a worker for a few milliseconds. Checking soon
after submitting (a task takes ~30 ms and the queue is usually empty) and backing off after
that puts lists on screen within ~200 ms on an idle host while a long wait costs one request
a second, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Wait before each check, in ms: the first ~150 ms after the page shows "preparing", the
#: last one repeated (capped at 1 s, the old fixed interval) until the lists are ready.
SCHEDULE_MS = (150, 250, 400, 700, 1000)

#: A failed check (a 503 while the database restarts, a dropped connection) is not swapped
#: in, so its delayed "load" trigger never fires again; this slower "every" trigger keeps the
#: page asking. It never fires while checks succeed: each swap replaces the element sooner.
FALLBACK_SECONDS = 3


@dataclass(frozen=True)
class Poll:
    """The next check of a waiting page."""

    number: int  # how many checks this page has made so far
    delay_ms: int  # wait before the next check

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def fallback_seconds(self) -> int:
        return FALLBACK_SECONDS


def after(checks_made: int) -> Poll:
    """The next check after ``checks_made`` (0 for a page just rendered); bad input counts as 0."""
    checks_made = max(0, checks_made)
    return Poll(checks_made, SCHEDULE_MS[min(checks_made, len(SCHEDULE_MS) - 1)])


def parse(raw: str | None) -> Poll:
    """The poll counter the page sent back (``?poll=N``); anything unreadable starts over."""
    try:
        return after(min(int(raw or 0), 10_000))
    except ValueError:
        return after(0)
