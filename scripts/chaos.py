"""Chaos harness: a production-like stack on loopback, simulated participants, injected faults.

Starts its own PostgreSQL cluster (initdb in a temporary folder, its own port) and its own
redis-server, so it may kill them; runs gunicorn and a Celery worker (prefork, whose main
process runs the request sweeper); drives simulated participants through the real HTTP flow
(study link, consent, picks, instructions, requests, every judgement, next); and injects each
fault once, in its own wave of participants:

* ``worker``:   the whole Celery worker killed with SIGKILL, restarted after ``--outage`` s
* ``redis``:    redis-server killed with SIGKILL (its queue is lost), restarted after ``--outage`` s
* ``postgres``: ``pg_ctl restart -m fast``
* ``gunicorn``: one gunicorn worker process killed with SIGKILL (the master starts another)

Per fault it prints the HTTP 5xx count (500 separately from the documented 503), connection
errors, and for the requests affected by the fault (submitted before the service was back and
not done when it failed) the max and p95 time from submit to lists and the max time from the
service being back to lists. At the end it compares every judgement three ways: the client's
log of acknowledged ratings, the database, and the CSV export (lost / duplicated / mismatched).

Bounded: ``--participants`` per wave (at most 200), ``--requests`` each, every wait has a
deadline, and ``--time-limit`` caps the whole run. Loopback only. Usage::

    .venv/bin/python scripts/chaos.py --participants 20 --requests 2 --outage 10

Exit status 0 when every target holds (0 HTTP 500, 0 lost/duplicated/mismatched, every
affected request done within ``--target`` seconds of its service being back), else 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FAULTS = ("worker", "redis", "postgres", "gunicorn")
REQUEST_TEXTS = [
    "casual shoes for the weekend", "a warm winter jacket", "red summer dress", "blue jeans",
    "a light linen shirt for a beach wedding", "black formal leather shoes", "a sports watch",
    "a cotton t-shirt", "a handbag for work", "running shoes",
]  # fmt: skip


def _free_port(lo: int, hi: int) -> int:
    for port in random.sample(range(lo, hi), hi - lo):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"{name} not found (install PostgreSQL server binaries)")


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


# --- The stack ------------------------------------------------------------------------------


SETTINGS = """from studyapp.settings import *  # noqa
# Production settings; static files from the finders instead of a collectstatic run.
STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
"""

SETUP = """
import json, os
import django
django.setup()
from django.core.management import call_command
from recommender.sample_catalog import write_sample_catalog
from studyapp.models import Catalog, RankingSystem, Study
csv_path = write_sample_catalog(os.environ["CHAOS_DIR"] + "/catalog")
call_command("import_catalog", "generic", str(csv_path), slug="sample", embed=True, verbosity=0)
systems = [RankingSystem.objects.get_or_create(name=n, defaults={"kind": k})[0]
           for n, k in (("Zero-shot", "zero_shot"), ("Blend", "history_blend"))]
study = Study.objects.create(title="Chaos", slug="chaos", catalog=Catalog.objects.get(slug="sample"),
    status=Study.Status.OPEN, k=3, requests_per_participant=int(os.environ["CHAOS_REQUESTS"]),
    practice_request=False, attention_checks=False, ask_list_preference=False, seed=1)
study.systems.set(systems)
print(json.dumps({"token": study.token, "pk": study.pk}))
"""

# Every judgement as the database and the CSV export hold it: {slot id: [labels]}, "na" = can't judge.
VERIFY = """
import csv, io, json, sys
import django
django.setup()
from studyapp import exports
from studyapp.models import Judgement, Study
study = Study.objects.get(pk=int(sys.argv[1]))
judgements = Judgement.objects.filter(participant__study=study)
db = {}
for slot_id, label in judgements.values_list("slot_id", "label"):
    db.setdefault(str(slot_id), []).append("na" if label is None else str(label))
response = exports.csv_response(study, "judgements")
text = "".join(c.decode() if isinstance(c, bytes) else c for c in response.streaming_content)
slot_of = dict(judgements.values_list("pk", "slot_id"))
exported = {}
for row in csv.DictReader(io.StringIO(text)):
    label = "na" if row["cant_judge"] in ("1", "True", "true") else row["label"]
    exported.setdefault(str(slot_of[int(row["judgement_id"])]), []).append(label)
print(json.dumps({"db": db, "csv": exported}))
"""


class Stack:
    """Own PostgreSQL, Redis, gunicorn and Celery worker processes, in one temporary folder."""

    def __init__(self, root: Path, web_workers: int, cache_dir: str | None) -> None:
        self.root = root
        self.pg_port = _free_port(55400, 55500)
        self.redis_port = _free_port(56400, 56500)
        self.web_port = _free_port(57400, 57500)
        self.web_workers = web_workers
        self.procs: dict[str, subprocess.Popen] = {}
        (root / "settings").mkdir()
        (root / "settings" / "chaos_settings.py").write_text(SETTINGS)
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DJANGO_", "CELERY_", "WHISPERLITE_"))
            },
            "PYTHONPATH": f"{root / 'settings'}:{REPO}",
            "DJANGO_SETTINGS_MODULE": "chaos_settings",
            "DJANGO_SECRET_KEY": "chaos-" + "k" * 50,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_SECURE_HSTS_SECONDS": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/chaos",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "WHISPERLITE_VAR_DIR": str(root / "var"),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "CHAOS_DIR": str(root),
        }
        if cache_dir:
            self.env["WHISPERLITE_CACHE_DIR"] = cache_dir
        self.pg_data = root / "pgdir" / "data"
        self.pg_opts = ""

    def log(self, name: str):  # type: ignore[no-untyped-def]
        return (self.root / f"{name}.log").open("a")

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdout=self.log(name), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.procs[name] = proc
        return proc

    # PostgreSQL (initdb refuses to run as root: then the cluster belongs to the "postgres" user)
    def _as_pg_user(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start_postgres(self) -> None:
        pg_dir = self.root / "pgdir"
        pg_dir.mkdir()
        self.pg_data = pg_dir / "data"
        self.pg_opts = f"-p {self.pg_port} -k {pg_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
            shutil.chown(pg_dir, "postgres", "postgres")
        subprocess.run(
            self._as_pg_user([_pg_bin("initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust",
                              "-E", "UTF8"]),
            check=True, stdout=self.log("postgres"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._pg_ctl("start")
        subprocess.run(
            [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "chaos"],
            check=True,
        )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        log_file = self.pg_data.parent / "server.log"
        subprocess.run(
            self._as_pg_user([_pg_bin("pg_ctl"), "-D", str(self.pg_data), "-o", self.pg_opts, "-l", str(log_file),
                              "-w", *extra, action]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def restart_postgres(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    # Redis
    def start_redis(self) -> None:
        self._spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
        )  # fmt: skip
        _wait_port(self.redis_port, 20)

    # Django processes
    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=self.env, check=True)

    def setup_study(self, requests_each: int) -> dict:
        self.manage("migrate", "-v", "0")
        env = {**self.env, "CHAOS_REQUESTS": str(requests_each)}
        out = subprocess.run(
            [PYTHON, "-c", SETUP], cwd=REPO, env=env, check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    def start_web(self) -> None:
        self._spawn(
            "gunicorn",
            [PYTHON, "-m", "gunicorn", "studyapp.wsgi", "-b", f"127.0.0.1:{self.web_port}",
             "-w", str(self.web_workers), "--timeout", "60", "--graceful-timeout", "5"],
        )  # fmt: skip
        _wait_port(self.web_port, 60)

    def start_worker(self) -> None:
        self._spawn(
            "worker",
            [PYTHON, "-m", "celery", "-A", "studyapp", "worker", "-c", "1", "-l", "info",
             "--without-gossip", "--without-mingle"],
        )  # fmt: skip
        self.wait_log("worker", "ready.", 120)

    def wait_log(self, name: str, text: str, timeout: float) -> None:
        path = self.root / f"{name}.log"
        start = path.stat().st_size if path.exists() else 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in path.read_text(errors="replace")[start:]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"no {text!r} in {path} after {timeout}s")

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything in its session (a prefork worker and its pool)."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def kill_one_web_worker(self) -> None:
        master = self.procs["gunicorn"].pid
        children = [
            int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and _ppid(int(p.name)) == master
        ]  # fmt: skip
        os.kill(random.choice(children), signal.SIGKILL)

    def running_requests(self) -> int:
        out = subprocess.run(
            [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", "chaos",
             "-tAc", "select count(*) from studyapp_request where status = 'running'"],
            capture_output=True, text=True,
        )  # fmt: skip
        return int(out.stdout.strip() or 0)

    def verify(self, study_pk: int) -> dict:
        out = subprocess.run(
            [PYTHON, "-c", VERIFY, str(study_pk)], cwd=REPO, env=self.env, check=True, capture_output=True,
            text=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        for name in list(self.procs):
            try:
                os.killpg(self.procs[name].pid, signal.SIGTERM)
                self.procs[name].wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.procs[name].pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if (self.pg_data / "postmaster.pid").exists():
            try:
                self._pg_ctl("stop", "-m", "immediate")
            except subprocess.CalledProcessError:
                pass


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


# --- Simulated participants -----------------------------------------------------------------


@dataclass
class Log:
    """What the clients saw, shared by every participant thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: list[tuple[float, int, str]] = field(default_factory=list)  # (time, status, path)
    conn_errors: list[float] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)  # wave, submitted, done
    judged: dict[str, str] = field(default_factory=dict)  # slot id -> last acknowledged label
    not_saved_shown: int = 0
    stuck: list[str] = field(default_factory=list)


class Participant:
    def __init__(
        self, base: str, study_token: str, number: int, wave: str, n_requests: int, log: Log
    ) -> None:
        self.base, self.study_token, self.number, self.wave = base, study_token, number, wave
        self.n_requests, self.log = n_requests, log
        self.http = requests.Session()
        self.rng = random.Random(number)
        self.home = ""

    def call(
        self, method: str, path: str, *, retry: bool = True, deadline: float = 120, **kw
    ) -> requests.Response:
        """One HTTP call, retried on 503 and dropped connections like the pages do (bounded)."""
        url = path if path.startswith("http") else self.base + path
        headers = kw.pop("headers", {})
        if method == "POST":
            headers["X-CSRFToken"] = self.http.cookies.get("csrftoken", "")
        stop = time.monotonic() + deadline
        while True:
            try:
                response = self.http.request(method, url, headers=headers, timeout=60, **kw)
            except requests.ConnectionError:
                with self.log.lock:
                    self.log.conn_errors.append(time.time())
                response = None
            if response is not None:
                with self.log.lock:
                    self.log.statuses.append((time.time(), response.status_code, path))
                if response.status_code != 503:
                    return response
            if not retry or time.monotonic() > stop:
                if response is None:
                    raise RuntimeError(f"{method} {path}: no answer within {deadline}s")
                return response
            time.sleep(1.0)

    def run(self) -> None:
        query = f"PROLIFIC_PID=chaos-{self.wave}-{self.number}&STUDY_ID=chaos&SESSION_ID=s-{self.number}"
        response = self.call("GET", f"/s/{self.study_token}/?{query}")
        self.home = response.url
        self.call("POST", self.home + "consent/", data={"agree": "yes"})
        page = self.call("GET", self.home).text
        grid = list(dict.fromkeys(int(i) for i in re.findall(r"picks/(\d+)/", page)))  # each appears twice
        for item in grid[:3]:
            self.call("POST", self.home + f"picks/{item}/")
        for item in grid[3:]:  # a pick lost to a dropped connection: pick another
            if self.call("POST", self.home + "onboarding/").status_code < 400:
                break
            self.call("POST", self.home + f"picks/{item}/")
        else:
            raise RuntimeError("onboarding never accepted the picks")
        self.call("POST", self.home + "instructions/")
        for number in range(1, self.n_requests + 1):
            self.one_request(number)

    def one_request(self, number: int) -> None:
        record = {"wave": self.wave, "submitted": time.time(), "done": None}
        with self.log.lock:
            self.log.requests.append(record)
        self.call("POST", self.home + "requests/", data={"text": self.rng.choice(REQUEST_TEXTS)})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = self.call(
                "GET", self.home + f"requests/{number}/status/", headers={"HX-Request": "true"}
            )
            if status.status_code == 204:
                record["done"] = time.time()
                break
            if status.status_code >= 400:
                raise RuntimeError(f"status poll answered {status.status_code}")
            if "could not prepare" in status.text:
                self.call("POST", self.home + f"requests/{number}/retry/")
            time.sleep(0.5)
        else:
            with self.log.lock:
                self.log.stuck.append(f"{self.home} request {number}")
            return
        page = self.call("GET", self.home).text
        labels = sorted(set(re.findall(r'name="label" value="(\w+)"', page)))
        for slot in re.findall(r'name="slot" value="(\d+)"', page):
            self.judge(slot, self.rng.choice(labels))
        self.call("POST", self.home + f"requests/{number}/next/")

    def judge(self, slot: str, label: str) -> None:
        """A rating click: htmx retries once (retry.js); if the page says "not saved", click again."""
        for click in range(10):
            for attempt in range(2):
                try:
                    response = self.http.post(
                        self.home + "judge/", data={"slot": slot, "label": label}, timeout=60,
                        headers={"HX-Request": "true", "X-CSRFToken": self.http.cookies.get("csrftoken", "")},
                    )  # fmt: skip
                except requests.ConnectionError:
                    with self.log.lock:
                        self.log.conn_errors.append(time.time())
                    response = None
                if response is not None:
                    with self.log.lock:
                        self.log.statuses.append((time.time(), response.status_code, "judge/"))
                    if response.status_code == 200:
                        with self.log.lock:
                            self.log.judged[slot] = label
                        return
                time.sleep(1.5 if attempt == 0 else 0)
            with self.log.lock:
                self.log.not_saved_shown += 1
            time.sleep(1.0 + click)
        raise RuntimeError(f"rating of slot {slot} never saved")


# --- Waves and faults -----------------------------------------------------------------------


def run_wave(stack: Stack, study: dict, wave: str, n: int, n_requests: int, log: Log, outage: float,
             spread: float) -> dict:  # fmt: skip
    """Start ``n`` participants spread over ``spread`` s, inject the fault, wait for all of them."""
    base = f"http://127.0.0.1:{stack.web_port}"
    threads = []
    errors: list[str] = []

    def participant(i: int) -> None:
        time.sleep(spread * i / max(1, n))
        try:
            Participant(base, study["token"], i, wave, n_requests, log).run()
        except Exception as exc:  # recorded and reported, never hidden
            errors.append(f"{wave} participant {i}: {type(exc).__name__}: {exc}")

    for i in range(n):
        threads.append(threading.Thread(target=participant, args=(i,), daemon=True))
        threads[-1].start()
    time.sleep(min(spread / 2, 6))
    fault_at, running = time.time(), 0
    if wave == "worker":
        running = _wait_for_running(stack)
        fault_at = time.time()
        stack.kill("worker")
        time.sleep(outage)
        stack.start_worker()  # returns once the worker is ready (encoder loaded)
    elif wave == "redis":
        stack.kill("redis")
        time.sleep(outage)
        stack.start_redis()
    elif wave == "postgres":
        running = _wait_for_running(stack)
        fault_at = time.time()
        stack.restart_postgres()
    elif wave == "gunicorn":
        stack.kill_one_web_worker()
    back_at = time.time()
    for t in threads:
        t.join(timeout=300)
    return {"wave": wave, "fault_at": fault_at, "back_at": back_at, "running_at_fault": running,
            "errors": errors + [f"{wave}: participant thread still running" for t in threads if t.is_alive()]}  # fmt: skip


def _wait_for_running(stack: Stack, timeout: float = 5.0) -> int:
    """Strike while a ranking is in flight when possible (it is one only for a fraction of a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = stack.running_requests()
        if running:
            return running
        time.sleep(0.02)
    return 0


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def summarise(waves: list[dict], log: Log, verify: dict, target: float) -> tuple[list[dict], dict, bool]:
    rows = []
    for i, wave in enumerate(waves):
        end = waves[i + 1]["fault_at"] - 1 if i + 1 < len(waves) else float("inf")
        start = wave["fault_at"] - 1 if i else 0
        seen = [(s, path) for t, s, path in log.statuses if start <= t < end]
        codes = [s for s, _ in seen]
        mine = [r for r in log.requests if r["wave"] == wave["wave"]]
        affected = [
            r for r in mine if r["submitted"] < wave["back_at"] and (r["done"] is None or r["done"] > wave["fault_at"])
        ]  # fmt: skip
        ttl = [r["done"] - r["submitted"] for r in affected if r["done"]]
        after_back = [max(0.0, r["done"] - wave["back_at"]) for r in affected if r["done"]]
        rows.append({
            "fault": wave["wave"], "http_500": codes.count(500), "http_503": codes.count(503),
            "other_5xx": sum(1 for c in codes if c >= 500 and c not in (500, 503)),
            "conn_errors": sum(1 for t in log.conn_errors if start <= t < end),
            "requests": len(mine), "affected": len(affected), "not_done": sum(1 for r in affected if not r["done"]),
            "running_at_fault": wave["running_at_fault"],
            "ttl_max_s": round(max(ttl, default=0), 1), "ttl_p95_s": round(p95(ttl), 1),
            "after_back_max_s": round(max(after_back, default=0), 1), "errors": wave["errors"],
            "other_5xx_seen": sorted({f"{c} {p.split('/')[-2] if p.count('/') > 1 else p}" for c, p in seen
                                      if c >= 500 and c not in (500, 503)}),
        })  # fmt: skip
    db, exported = verify["db"], verify["csv"]
    lost = sorted(s for s in log.judged if s not in db)
    duplicated = sorted(s for s, labels in db.items() if len(labels) > 1) + sorted(
        s for s, labels in exported.items() if len(labels) > 1
    )
    mismatched = sorted(
        s for s, label in log.judged.items()
        if s in db and (db[s][0] != label or db[s] != exported.get(s))
    )  # fmt: skip
    unexpected = sorted(s for s in db if s not in log.judged)  # stored but never acknowledged
    totals = {
        "judgements_client": len(log.judged), "judgements_db": sum(len(v) for v in db.values()),
        "judgements_csv": sum(len(v) for v in exported.values()), "lost": len(lost),
        "duplicated": len(duplicated), "mismatched": len(mismatched), "unacknowledged_in_db": len(unexpected),
        "not_saved_shown": log.not_saved_shown, "stuck_requests": log.stuck,
    }  # fmt: skip
    ok = (
        all(
            r["http_500"] == 0 and r["other_5xx"] == 0 and r["not_done"] == 0 and not r["errors"]
            for r in rows
        )
        and all(r["after_back_max_s"] <= target for r in rows)
        and not (lost or duplicated or mismatched or log.stuck)
    )
    return rows, totals, ok


def run(participants: int, n_requests: int, outage: float, faults: tuple[str, ...], target: float = 30.0,
        web_workers: int = 3, spread: float = 12.0, cache_dir: str | None = None, keep: bool = False,
        baseline: bool = True, out=sys.stdout) -> tuple[list[dict], dict, bool]:  # fmt: skip
    """Run the whole harness; returns (rows per fault, judgement totals, all targets met)."""
    root = Path(tempfile.mkdtemp(prefix="wl-chaos-"))
    # Item embeddings are keyed by catalog version and encoder, so a shared cache is never stale.
    cache_dir = cache_dir or os.environ.get(
        "WHISPERLITE_CACHE_DIR", os.path.join(tempfile.gettempdir(), "whisperlite-test-cache")
    )
    stack = Stack(root, web_workers, cache_dir)
    try:
        started = time.time()
        stack.start_postgres()
        stack.start_redis()
        study = stack.setup_study(n_requests)
        stack.start_web()
        stack.start_worker()
        print(f"stack up in {time.time() - started:.1f}s ({root})", file=out, flush=True)
        log, waves = Log(), []
        for fault in (("none",) if baseline else ()) + faults:
            waves.append(run_wave(stack, study, fault, participants, n_requests, log, outage, spread))
            print(f"wave {fault}: done", file=out, flush=True)
        verify = stack.verify(study["pk"])
        rows, totals, ok = summarise(waves, log, verify, target)
        return rows, totals, ok
    finally:
        stack.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def print_report(rows: list[dict], totals: dict, ok: bool, out=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    columns = ["fault", "http_500", "http_503", "other_5xx", "conn_errors", "requests", "affected",
               "running_at_fault", "not_done", "ttl_max_s", "ttl_p95_s", "after_back_max_s"]  # fmt: skip
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="|", lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    print(buf.getvalue(), file=out)
    for row in rows:
        for error in row["errors"]:
            print("ERROR", error, file=out)
        if row["other_5xx_seen"]:
            print(f"{row['fault']}: other 5xx seen: {', '.join(row['other_5xx_seen'])}", file=out)
    print(json.dumps(totals), file=out)
    print("ALL TARGETS MET" if ok else "TARGETS MISSED", file=out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--participants", type=int, default=20, help="per wave (one wave per fault + baseline)"
    )
    parser.add_argument("--requests", type=int, default=2, help="requests per participant")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the worker / Redis stay down")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated subset of {FAULTS}")
    parser.add_argument("--target", type=float, default=30.0, help="max seconds from service back to lists")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument(
        "--spread", type=float, default=12.0, help="seconds over which a wave's participants arrive"
    )
    parser.add_argument("--time-limit", type=float, default=1800.0, help="hard cap on the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    if not 1 <= args.participants <= 200 or not 1 <= args.requests <= 10:
        parser.error("--participants must be 1..200 and --requests 1..10")
    faults = tuple(f for f in args.faults.split(",") if f)
    if set(faults) - set(FAULTS):
        parser.error(f"unknown fault in {faults}")
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("--time-limit reached")))
    signal.alarm(int(args.time_limit))
    rows, totals, ok = run(
        args.participants, args.requests, args.outage, faults, args.target, args.web_workers, args.spread,
        keep=args.keep,
    )  # fmt: skip
    print_report(rows, totals, ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
