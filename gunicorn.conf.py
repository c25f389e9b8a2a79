"""gunicorn's production settings; gunicorn reads this file when started from the repository root.

    .venv/bin/gunicorn studyapp.wsgi --bind 127.0.0.1:8000

Measured with ``scripts/bench_writes.py`` (50 participants rating at once on 2 cores;
docs/benchmarks.md, "Judgement writes"): threaded workers that keep connections open served
more writes per second at less CPU per write than 2 or 3 sync workers, which close the
connection after every response, so each rating paid for a new TCP connection and a worker
sat idle while PostgreSQL committed. Command-line flags and ``GUNICORN_CMD_ARGS`` override
these values.
"""

from __future__ import annotations

import os

# One process per core; each serves several requests at once on threads, so a worker waiting
# for PostgreSQL (a commit) does not leave its core idle. Every thread holds its own pooled
# database connection (DATABASE_CONN_MAX_AGE), i.e. up to workers x threads connections.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Keep a participant's connection open between ratings (seconds): htmx sends one request per
# rating, a few seconds apart at most while a participant is rating.
keepalive = 5
