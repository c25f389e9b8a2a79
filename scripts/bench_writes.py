"""Judgement writes under load: writes/s and latency of ``POST /p/<token>/judge/`` on a real stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres OMP_NUM_THREADS=1 \
        .venv/bin/python scripts/bench_writes.py [--clients 50] [--seconds 30] [--runs 3]

Starts gunicorn with the production settings (``gunicorn.conf.py``; DEBUG off, no static
collection needed) on a database it creates on the server of ``DATABASE_URL`` and drops at the
end, creates participants whose requests are ready (lists and slots stored as the ranking task
stores them; no Celery is involved in a write), and drives ``--clients`` participants at once
from one asyncio process speaking raw HTTP/1.1 over keep-alive connections (cheap, so the load
generator takes little of the CPU it shares with the server; its own CPU share is printed).
Each client loads its page once (session and CSRF cookies, as a browser has them), then rates
its slots in order with no pause, like a participant with a keyboard, sending what
``static/js/study.js`` sends; a few ratings are corrections of the previous item.

Prints through ``scripts/bench_report.py``: writes/s (95 % CI over the runs' one-second
windows) against >= 400/s, latency p50/p95/p99 with CIs against p99 <= 100 ms, errors, the CPU
milliseconds per write of gunicorn, of the PostgreSQL backends and of the load generator, and
whether every judgement landed exactly once: the database's rows and labels must equal the
clients' log of acknowledged ratings. Everything written stays under ``--var-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_report import Figure, host_label, latency_figures, print_figures  # noqa: E402

SECTION = "judgement writes"
PYTHON = sys.executable

# The app's production settings; static files from the finders, so no collectstatic run is needed
# for the page each client loads first (the write itself serves no static file).
SETTINGS = """from studyapp.settings import *  # noqa
STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
"""

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50, help="Concurrent participants (default 50).")
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured seconds per run (default 20).")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds before each run.")
    parser.add_argument("--runs", type=int, default=3, help="Runs, each with fresh slots (default 3).")
    parser.add_argument(
        "--rerate", type=float, default=0.05, help="Share of ratings that correct the last one."
    )
    parser.add_argument("--k", type=int, default=10, help="Items per list (two lists per request).")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server; a database named after it plus _bench_writes_<pid> is created and dropped.",
    )
    parser.add_argument(
        "--existing-database",
        action="store_true",
        help="Use the (migrated) database of --database-url itself; only the bench's own rows are removed.",
    )
    parser.add_argument(
        "--var-dir", type=Path, default=None, help="Default $WHISPERLITE_VAR_DIR/bench_writes."
    )
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one).")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)."
    )
    parser.add_argument(
        "--worker-class", default=None, help="gunicorn worker class (default: gunicorn.conf.py)."
    )
    parser.add_argument("--threads", type=int, default=None, help="Threads per gthread worker.")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="gunicorn logs each request's server time (ms) to the var dir.",
    )
    parser.add_argument("--limit-writes", type=float, default=400.0, help="Writes/s target (>=).")
    parser.add_argument("--limit-p99", type=float, default=100.0, help="p99 latency target in ms (<=).")
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# --- The stack: a database and gunicorn, all under the var dir ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin_sql(url: str, sql: str) -> None:
    import psycopg  # only the benchmark's parent process talks to the server directly

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


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
            self.db_url = _with_database(server, self.created_db)
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
            _admin_sql(self.db_url, f'CREATE DATABASE "{self.created_db}"')
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
        with psycopg.connect(_with_database(self.db_url, "postgres"), autocommit=True) as conn:
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
            _admin_sql(self.db_url, f'DROP DATABASE IF EXISTS "{self.created_db}" WITH (FORCE)')


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


# --- The load generator: raw HTTP/1.1, keep-alive when the server allows it ----------------


class Http:
    """One client connection; reconnects when the server closes it (gunicorn's sync workers do)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], list[str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                if name.lower() == "set-cookie":
                    cookies.append(value.strip())
                headers[name.lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, cookies, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class ClientLog:
    """What one client sent and what the server acknowledged."""

    latencies: list[tuple[float, float]] = field(default_factory=list)  # (end time, ms)
    acknowledged: dict[int, list[str]] = field(default_factory=dict)  # slot -> labels stored, in order
    errors: list[str] = field(default_factory=list)


CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
PRESSED = re.compile(rb'value="([^"]+)"[^>]*aria-pressed="true"')


async def load_page(port: int, info: dict) -> tuple[Http, str, str] | str:
    """Open the participant's page as their browser does: the connection, cookies and form token."""
    http = Http(port)
    cookie = f"sessionid={info['session']}"
    status, _, cookies, body = await http.request(
        f"GET /p/{info['token']}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n".encode()
    )
    match = CSRF_INPUT.search(body)
    csrf = [c.split(";", 1)[0] for c in cookies if c.startswith("csrftoken=")]
    if status != 200 or match is None or not csrf:
        http.close()
        return f"page load answered {status}"
    return http, f"{cookie}; {csrf[0]}", match.group(1).decode()


async def participant(
    http: Http,
    cookie: str,
    form_token: str,
    info: dict,
    scale: list[str],
    rerate: float,
    stop: float,
    seed: int,
) -> ClientLog:
    """Rate the slots in order, with no pause, until ``stop`` (a monotonic time)."""
    log = ClientLog()
    rng = random.Random(seed)
    head = (
        f"POST /p/{info['token']}/judge/ HTTP/1.1\r\nHost: 127.0.0.1:{http.port}\r\nCookie: {cookie}\r\n"
        "HX-Request: true\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    )
    slots: list[int] = info["slots"]
    index = 0
    while time.monotonic() < stop and index < len(slots):
        # A correction rates the previous item again with another label, as a participant going back.
        if index and rng.random() < rerate:
            slot = slots[index - 1]
            label = rng.choice([v for v in scale if v != log.acknowledged.get(slot, [""])[-1]])
        else:
            slot, label = slots[index], rng.choice(scale)
            index += 1
        form = urlencode({"csrfmiddlewaretoken": form_token, "slot": slot, "label": label}).encode()
        raw = f"{head}Content-Length: {len(form)}\r\n\r\n".encode() + form
        sent = time.monotonic()
        try:
            status, _, _, body = await http.request(raw)
        except (OSError, asyncio.IncompleteReadError) as exc:
            http.close()
            log.errors.append(f"connection: {exc!r}")
            continue
        done = time.monotonic()
        # What study.js checks: the fragment shows the label just stored as pressed.
        pressed = PRESSED.search(body)
        if status != 200 or pressed is None or pressed.group(1).decode() != label:
            log.errors.append(f"{status}: {body[:120]!r}")
            continue
        log.acknowledged.setdefault(slot, []).append(label)
        log.latencies.append((done, (done - sent) * 1000))
    http.close()
    return log


@dataclass
class Driven:
    logs: list[ClientLog]
    measured_from: float
    cpu: dict[str, float]  # CPU seconds spent in the measured period


async def drive(stack: Stack, clients: list[dict], scale: list[str], args: argparse.Namespace) -> Driven:
    """Every client loads its page, then all rate at once; CPU is sampled around the measured period."""
    pages = await asyncio.gather(*(load_page(stack.port, info) for info in clients))
    failed = [p for p in pages if isinstance(p, str)]
    if failed:
        raise RuntimeError(f"{len(failed)} page loads failed, e.g. {failed[0]}")
    measured_from = time.monotonic() + args.warmup
    stop = measured_from + args.seconds
    tasks = [
        asyncio.ensure_future(participant(*page, info, scale, args.rerate, stop, seed=n))
        for n, (page, info) in enumerate(zip(pages, clients, strict=True))
        if not isinstance(page, str)
    ]
    web_pids = stack.server_pids()
    await asyncio.sleep(max(0.0, measured_from - time.monotonic()))
    # Backends come and go (one per web thread, recycled after DATABASE_CONN_MAX_AGE): CPU is
    # summed per process alive at the end, from zero for one that started in the period; a
    # backend that ended within the period is not counted (the figure can only be low).
    db_before = {pid: _stat(pid)[1] for pid in await asyncio.to_thread(stack.backend_pids)}
    web_before, gen_before = cpu_seconds(web_pids), time.process_time()
    await asyncio.sleep(max(0.0, stop - time.monotonic()))
    web_after, gen_after = cpu_seconds(web_pids), time.process_time()
    db_after = {pid: _stat(pid)[1] for pid in await asyncio.to_thread(stack.backend_pids)}
    logs = list(await asyncio.gather(*tasks))
    cpu = {
        "web": web_after - web_before,
        "db": sum(spent - db_before.get(pid, 0.0) for pid, spent in db_after.items()),
        "generator": gen_after - gen_before,
    }
    return Driven(logs, measured_from, cpu)


# --- One run and the figures ------------------------------------------------------------------


@dataclass
class Run:
    window_rates: list[float]
    latencies_ms: list[float]
    writes: int
    errors: list[str]
    lost: int
    wrong: int
    extra: int
    cpu: dict[str, float]  # CPU seconds in the measured period: web, db, generator
    seconds: float


def check_landed(logs: Sequence[ClientLog], stored: dict[str, list]) -> tuple[int, int, int]:
    """(acknowledged slots missing, slots whose label or change count differs, unexpected rows)."""
    sent = {slot: labels for log in logs for slot, labels in log.acknowledged.items()}
    lost = sum(1 for slot in sent if str(slot) not in stored)
    wrong = 0
    for slot, labels in sent.items():
        row = stored.get(str(slot))
        if row is None:
            continue
        changes = sum(1 for a, b in itertools.pairwise(labels) if a != b)
        if row[0] != labels[-1] or row[1] != changes:
            wrong += 1
    extra = sum(1 for slot in stored if int(slot) not in sent)
    return lost, wrong, extra


def one_run(stack: Stack, args: argparse.Namespace, tag: str) -> Run:
    requests_each = max(1, math.ceil((args.warmup + args.seconds) * 40 / (2 * args.k)))
    setup = json.loads(stack.django(SETUP, str(args.clients), str(requests_each), str(args.k), tag))
    try:
        scale = setup["scale"] + ["na"]
        driven = asyncio.run(drive(stack, setup["clients"], scale, args))
    finally:
        stored = json.loads(stack.django(VERIFY_AND_CLEAN, stdin=json.dumps(setup)))
    logs, measured_from = driven.logs, driven.measured_from
    measured = [
        (end, ms)
        for log in logs
        for end, ms in log.latencies
        if measured_from <= end < measured_from + args.seconds
    ]
    windows = [0] * max(1, int(args.seconds))
    for end, _ in measured:
        windows[min(len(windows) - 1, int(end - measured_from))] += 1
    lost, wrong, extra = check_landed(logs, stored)
    return Run(
        window_rates=[float(w) for w in windows],
        latencies_ms=[ms for _, ms in measured],
        writes=len(measured),
        errors=[e for log in logs for e in log.errors],
        lost=lost,
        wrong=wrong,
        extra=extra,
        cpu=driven.cpu,
        seconds=args.seconds,
    )


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and a normal-approximation 95 % interval (windows are close to independent at 1 s)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def figures_from(runs: Sequence[Run], args: argparse.Namespace, config: str) -> list[Figure]:
    windows = [w for run in runs for w in run.window_rates]
    latencies = [ms for run in runs for ms in run.latencies_ms]
    writes = sum(run.writes for run in runs)
    seconds = sum(run.seconds for run in runs)
    rate, low, high = mean_ci(windows)
    note = f"{args.clients} clients, {config}; {host_label()}"
    figures = [
        Figure(
            SECTION,
            "writes/s (1 s windows)",
            rate,
            "/s",
            len(windows),
            low,
            high,
            args.limit_writes,
            ">=",
            note,
        )
    ]
    figures += latency_figures(SECTION, "write latency", latencies, p99_limit=args.limit_p99)
    per_write = {k: 1000 * sum(r.cpu[k] for r in runs) / max(1, writes) for k in ("web", "db", "generator")}
    figures += [
        Figure(SECTION, "CPU per write: gunicorn", per_write["web"], "ms", writes),
        Figure(SECTION, "CPU per write: PostgreSQL backends", per_write["db"], "ms", writes),
        Figure(SECTION, "CPU per write: load generator", per_write["generator"], "ms", writes),
        Figure(
            SECTION,
            "load generator's share of 2 cores",
            100 * sum(r.cpu["generator"] for r in runs) / (seconds * (os.cpu_count() or 1)),
            "%",
            len(runs),
        ),  # fmt: skip
        Figure(
            SECTION,
            "errors (non-200 or wrong fragment)",
            sum(len(r.errors) for r in runs),
            "",
            writes,
            limit=0,
        ),  # fmt: skip
        Figure(
            SECTION,
            "acknowledged ratings missing in the database",
            sum(r.lost for r in runs),
            "",
            writes,
            limit=0,
        ),  # fmt: skip
        Figure(
            SECTION,
            "slots whose stored label/changes differ",
            sum(r.wrong for r in runs),
            "",
            writes,
            limit=0,
        ),  # fmt: skip
        Figure(SECTION, "judgements nobody acknowledged", sum(r.extra for r in runs), "", writes, limit=0),
    ]
    return figures


def collect(args: argparse.Namespace) -> list[Figure]:
    """Start the stack, run ``args.runs`` measured runs, stop everything; the figures."""
    var_dir = args.var_dir or Path(os.environ.get("WHISPERLITE_VAR_DIR", REPO / "var")) / "bench_writes"
    var_dir = Path(var_dir).resolve()
    if var_dir.exists():
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True)
    stack = Stack(args, var_dir)
    runs: list[Run] = []
    try:
        stack.create_database()
        stack.start_web()
        for n in range(args.runs):
            runs.append(one_run(stack, args, f"{os.getpid()}-{n}"))
    finally:
        stack.stop()
    errors = [e for run in runs for e in run.errors]
    if errors:
        print(f"first errors: {errors[:3]}", file=sys.stderr)
    return figures_from(runs, args, gunicorn_config(args))


def gunicorn_config(args: argparse.Namespace) -> str:
    """The worker model that served the run: gunicorn.conf.py, overridden by the flags given."""
    import runpy

    conf = runpy.run_path(str(REPO / "gunicorn.conf.py")) if (REPO / "gunicorn.conf.py").exists() else {}
    workers = args.workers or conf.get("workers", 1)
    worker_class = args.worker_class or conf.get("worker_class", "sync")
    threads = args.threads or (1 if args.worker_class == "sync" else conf.get("threads", 1))
    if worker_class == "sync" and threads > 1:
        worker_class = "gthread"  # as gunicorn does
    keepalive = conf.get("keepalive", 2) if worker_class != "sync" else "none (sync)"
    return f"gunicorn {worker_class} x {workers} workers, {threads} threads, keep-alive {keepalive}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    figures = collect(args)
    print_figures(figures, title="Judgement writes (POST /p/<token>/judge/)")
    if args.json:
        from bench_report import dump_json

        dump_json(figures, args.json)
    return 0 if all(f.ok is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
