"""The server side of ``scripts/bench_writes.py``: a gunicorn and a database under the var dir.

The settings module, the participants' setup, the final check of what was stored, the
stack's processes and the CPU time they spend. Kept apart from the load generator so each
file reads in one sitting.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from chaos_stack import PYTHON, REPO, SETTINGS, admin_sql, with_database

# Participants at their tasks with ready requests: what the ranking task leaves behind (two
# lists of k slots per request, side by side). Prints what the clients need as one JSON line.
SETUP = """
import json, os, sys
import django
django.setup()
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from studyapp.models import Catalog, Item, Participant, RankingSystem, Request, Slot, Study
from studyapp.views.participant import SESSION_KEY
clients, requests_each, k, tag = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
catalog = Catalog.objects.create(name="bench writes " + tag, slug="bench-writes-" + tag, source="generic")
Item.objects.bulk_create(
    Item(catalog=catalog, external_id=f"i{n}", title=f"Bench item {n}") for n in range(4 * k))
items = list(catalog.items.values_list("pk", flat=True))
made = [RankingSystem.objects.get_or_create(name=n, defaults={"kind": kind})
        for n, kind in (("Bench zero-shot", "zero_shot"), ("Bench blend", "history_blend"))]
systems = [system for system, _ in made]
study = Study.objects.create(title="Bench writes", slug="bench-writes-" + tag, catalog=catalog,
    status=Study.Status.OPEN, k=k, requests_per_participant=requests_each, seed=1)
study.systems.set(systems)
now = timezone.now()
out = {"study": study.pk, "catalog": catalog.pk, "scale": [str(v) for v in study.scale.values],
       "systems": [system.pk for system, created in made if created], "clients": []}
for number in range(1, clients + 1):
    p = Participant.objects.create(study=study, number=number, condition=number,
                                   phase=Participant.Phase.TASKS, consented_at=now)
    reqs = Request.objects.bulk_create(
        Request(participant=p, number=r, text="a light linen shirt", status="done", seed=r, ready_at=now)
        for r in range(1, requests_each + 1))
    slots = Slot.objects.bulk_create(
        Slot(request=req, list_label=label, position=pos, item_id=items[(pos * 3 + r) % len(items)],
             team=system, system_ranks={str(system.pk): pos})
        for r, req in enumerate(reqs) for label, system in zip("AB", systems) for pos in range(1, k + 1))
    session = SessionStore()
    session[SESSION_KEY] = {study.token: p.token}
    session.create()
    out["clients"].append({"token": p.token, "session": session.session_key,
                           "slots": [s.pk for s in slots]})
print(json.dumps(out))
"""

# Every judgement of the study as stored, {slot id: [label ("na" = can't judge), changes]}; then
# the bench's own rows are deleted (study, catalog, sessions, the systems it created).
VERIFY_AND_CLEAN = """
import json, sys
import django
django.setup()
from django.contrib.sessions.models import Session
from studyapp.models import Catalog, Judgement, RankingSystem, Study
setup = json.load(sys.stdin)
rows = Judgement.objects.filter(participant__study_id=setup["study"])
print(json.dumps({str(s): ["na" if l is None else str(l), c]
                  for s, l, c in rows.values_list("slot_id", "label", "changes")}))
Study.objects.filter(pk=setup["study"]).delete()
Catalog.objects.filter(pk=setup["catalog"]).delete()
RankingSystem.objects.filter(pk__in=setup["systems"]).delete()
Session.objects.filter(session_key__in=[c["session"] for c in setup["clients"]]).delete()
"""


# --- The stack: a database and gunicorn, all under the var dir ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """A gunicorn serving the app on its own database; every file under ``var_dir``."""

    def __init__(self, args: argparse.Namespace, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.created_db = ""
        server = args.database_url
        if args.existing_database:
            self.db_url = server
        else:
            base = urlsplit(server).path.lstrip("/") or "postgres"
            self.created_db = f"{base}_bench_writes_{os.getpid()}"
            self.db_url = with_database(server, self.created_db)
        (var_dir / "settings").mkdir(parents=True, exist_ok=True)
        (var_dir / "settings" / "bench_writes_settings.py").write_text(SETTINGS)
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "PGPASSWORD", "VIRTUAL_ENV")
        self.env = {k: os.environ[k] for k in keep if k in os.environ} | {
            "PYTHONPATH": f"{var_dir / 'settings'}:{REPO}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "bench_writes_settings",
            "DJANGO_SECRET_KEY": "bench-writes-" + "k" * 50,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_SECURE_HSTS_SECONDS": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": self.db_url,
            "WHISPERLITE_VAR_DIR": str(var_dir / "var"),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "WHISPERLITE_TORCH_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.port = args.port or _free_port()
        self.gunicorn_args = ["--no-control-socket", "--worker-tmp-dir", str(var_dir)]
        # gunicorn turns a sync worker with threads (gunicorn.conf.py sets them) into gthread.
        threads = 1 if args.worker_class == "sync" and args.threads is None else args.threads
        for flag, value in (("--workers", args.workers), ("--worker-class", args.worker_class),
                            ("--threads", threads)):  # fmt: skip
            if value is not None:
                self.gunicorn_args += [flag, str(value)]
        if args.access_log:
            self.gunicorn_args += ["--access-logfile", str(var_dir / "access.log"),
                                   "--access-logformat", '%(m)s %(U)s %(s)s %(M)s']  # fmt: skip
        self.web: subprocess.Popen[bytes] | None = None

    def django(self, script: str, *argv: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [PYTHON, "-c", script, *argv], cwd=REPO, env=self.env, check=True, capture_output=True, text=True,
            input=stdin,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    def create_database(self) -> None:
        if self.created_db:
            admin_sql(self.db_url, f'CREATE DATABASE "{self.created_db}"')
            subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=self.env, check=True)

    def start_web(self) -> None:
        log = (self.var_dir / "gunicorn.log").open("ab")
        self.web = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "studyapp.wsgi", "-b", f"127.0.0.1:{self.port}", *self.gunicorn_args],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.var_dir / 'gunicorn.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not listen within 60 s")

    def server_pids(self) -> list[int]:
        """gunicorn's master and workers (the workers are the master's children)."""
        if self.web is None:
            return []
        master = self.web.pid
        return [master] + [p for p in _all_pids() if _stat(p)[0] == master]

    def backend_pids(self) -> list[int]:
        """PostgreSQL backends serving this database (same host: their CPU time is readable)."""
        import psycopg

        name = urlsplit(self.db_url).path.lstrip("/")
        with psycopg.connect(with_database(self.db_url, "postgres"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def stop(self) -> None:
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)
                self.web.wait()
        if self.created_db:
            admin_sql(self.db_url, f'DROP DATABASE IF EXISTS "{self.created_db}" WITH (FORCE)')


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds user + system) of a process; (-1, 0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return -1, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def cpu_seconds(pids: Sequence[int]) -> float:
    return sum(_stat(p)[1] for p in pids)
