"""Submit -> lists visible on a real stack: the ``lists`` and ``threads`` sections of bench_study.

The stack is the production one, started here under the var dir: gunicorn (3 sync workers),
one Celery worker (the app's default concurrency, one process per core), its own
redis-server as the broker, and a database created on the ``DATABASE_URL`` PostgreSQL server
and dropped at the end. Ports come from 55120-55129.

Clients are participants over HTTP: they join, consent, pick and read the instructions
beforehand; the timed part starts at the POST of the request and ends when the page holding
the lists has arrived. In between they poll exactly as the page tells htmx to: they read the
status element's ``hx-get`` and ``load delay:Nms`` and wait that long, and after a failed
check (503, dropped connection) they wait the ``every Ns`` fallback, so a change to the page's
schedule changes what is measured.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import Figure, latency_figures  # noqa: E402
from chaos_stack import PYTHON, REPO, Stack, _wait_port, admin_sql, free_port, with_database  # noqa: E402

IDLE_P50_LIMIT_MS = 250.0
CONCURRENT_P95_LIMIT_MS = 1500.0
TEXTS = [
    "casual shoes for the weekend", "a warm winter jacket", "red summer dress", "blue jeans",
    "a light linen shirt for a beach wedding", "black formal leather shoes", "a sports watch",
    "a cotton t-shirt", "a handbag for work", "running shoes",
]  # fmt: skip

SETUP = """
import json, os, sys
import django
django.setup()
from django.core.management import call_command
from studyapp.models import Catalog, RankingSystem, Study
kind, path, slug = sys.argv[1:4]
call_command("import_catalog", kind, path, slug=slug, embed=True, verbosity=0)
systems = [RankingSystem.objects.create(name=n, kind=k)
           for n, k in (("Zero-shot", "zero_shot"), ("Blend", "history_blend"))]
study = Study.objects.create(title="Bench", slug="bench", catalog=Catalog.objects.get(slug=slug),
    status=Study.Status.OPEN, k=10, requests_per_participant=1, practice_request=False,
    attention_checks=True, ask_list_preference=False, seed=1)
study.systems.set(systems)
print(json.dumps({"token": study.token}))
"""


class BenchStack(Stack):
    """The chaos harness's stack, on a database of the shared server and ports 55120-55129."""

    def __init__(self, root: Path, server_url: str, cache_dir: str) -> None:
        root.mkdir(parents=True)
        super().__init__(root, web_workers=3, cache_dir=cache_dir)
        self.redis_port = free_port(55120, 55130)
        self.web_port = free_port(55120, 55130)
        while self.web_port == self.redis_port:
            self.web_port = free_port(55120, 55130)
        self.server_url = server_url
        self.db_name = f"wl_bench_lists_{os.getpid()}"
        self.env["DATABASE_URL"] = with_database(server_url, self.db_name)
        self.env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env["TMPDIR"] = str(root / "tmp")
        self.env["HOME"] = str(root / "home")
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        (root / "tmp").mkdir()
        (root / "home").mkdir()

    def create_database(self) -> None:
        admin_sql(self.server_url, f'CREATE DATABASE "{self.db_name}"')

    def drop_database(self) -> None:
        admin_sql(self.server_url, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def setup(self, catalog: str, data_dir: str) -> str:
        self.manage("migrate", "-v", "0")
        if catalog == "myntra":
            kind, path = "myntra", str(Path(data_dir) / "myntra")
        else:
            sys.path.insert(0, str(REPO))
            from recommender.catalog.sample import write_sample_catalog

            kind, path = "generic", str(write_sample_catalog(str(self.root / "catalog")))
        out = subprocess.run(
            [PYTHON, "-c", SETUP, kind, path, catalog], cwd=REPO, env=self.env, check=True, capture_output=True,
            text=True,
        )  # fmt: skip
        import json

        return str(json.loads(out.stdout.strip().splitlines()[-1])["token"])

    def start_web(self) -> None:
        """gunicorn as in production, but its control socket and heartbeat files stay out of
        the home folder and the system temp folder (gunicorn's defaults)."""
        self._spawn(
            "gunicorn",
            [PYTHON, "-m", "gunicorn", "studyapp.wsgi", "-b", f"127.0.0.1:{self.web_port}", "-w",
             str(self.web_workers), "--timeout", "60", "--graceful-timeout", "5", "--no-control-socket",
             "--worker-tmp-dir", str(self.root / "tmp")],
        )  # fmt: skip
        _wait_port(self.web_port, 60)

    def start_worker_with_threads(self, threads: int) -> None:
        """(Re)start the worker with this many torch threads per process, set deliberately."""
        if "worker" in self.procs:
            self.kill("worker")
        self.env["WHISPERLITE_TORCH_THREADS"] = str(threads)
        self.env["OMP_NUM_THREADS"] = str(threads)
        self.env["MKL_NUM_THREADS"] = str(threads)
        self._spawn(
            "worker",
            [PYTHON, "-m", "celery", "-A", "studyapp", "worker", "-l", "info", "--without-gossip", "--without-mingle"],
        )  # fmt: skip
        self.wait_log("worker", "ready.", 180)


# --- Participants ------------------------------------------------------------------------------

STATUS = re.compile(
    r'<div id="status"[^>]*?hx-get="([^"]+)"[^>]*?hx-trigger="load delay:(\d+)ms, every (\d+)s"'
)


class Client:
    """One participant, onboarded up to the request form before anything is timed."""

    def __init__(self, base: str, study_token: str, name: str) -> None:
        self.base = base
        self.http = requests.Session()
        response = self.http.get(
            f"{base}/s/{study_token}/?PROLIFIC_PID={name}&STUDY_ID=bench&SESSION_ID={name}"
        )
        self.home = response.url
        self.post("consent/", {"agree": "yes"})
        page = self.http.get(self.home).text
        for item in list(dict.fromkeys(re.findall(r"picks/(\d+)/", page)))[:3]:
            self.post(f"picks/{item}/", {})
        self.post("onboarding/", {})
        self.post("instructions/", {})

    def post(self, path: str, data: dict) -> requests.Response:
        headers = {"X-CSRFToken": self.http.cookies.get("csrftoken", "")}
        return self.http.post(self.home + path, data=data, headers=headers, timeout=60)

    def submit_until_visible(self, text: str, deadline_s: float = 120.0) -> float:
        """ms from submitting the request to the page with the lists, polling as the page says."""
        started = time.perf_counter()
        page = self.post("requests/", {"text": text}).text  # follows the redirect to the page
        stop = time.monotonic() + deadline_s
        while 'name="slot"' not in page:
            match = STATUS.search(page)
            if match is None:
                raise RuntimeError(f"neither lists nor a polling status on the page: {page[:300]!r}")
            url, delay_ms, fallback_s = match.group(1), int(match.group(2)), int(match.group(3))
            time.sleep(delay_ms / 1000)
            while True:
                if time.monotonic() > stop:
                    raise RuntimeError(f"lists not visible after {deadline_s} s")
                try:
                    check = self.http.get(self.base + url, headers={"HX-Request": "true"}, timeout=60)
                except requests.ConnectionError:
                    check = None
                if check is not None and check.status_code < 500:
                    break
                time.sleep(fallback_s)  # a failed check: the page's "every" trigger asks again
            if check.status_code == 204:  # HX-Refresh: the browser reloads the page with the lists
                page = self.http.get(self.home, timeout=60).text
            else:
                page = check.text
        return (time.perf_counter() - started) * 1000.0


def onboard(base: str, token: str, prefix: str, n: int) -> list[Client]:
    clients: list[Client | None] = [None] * n

    def one(i: int) -> None:
        clients[i] = Client(base, token, f"{prefix}-{i}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for i in range(0, n, 10):  # ten at a time: onboarding is not what is measured
        batch = threads[i : i + 10]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
    assert all(c is not None for c in clients), "a participant could not be onboarded"
    return [c for c in clients if c is not None]


def idle_run(base: str, token: str, n: int) -> list[float]:
    """One participant at a time: n requests, each from a fresh participant, 0.3 s apart."""
    times = []
    for i, client in enumerate(onboard(base, token, f"idle-{time.monotonic_ns()}", n)):
        times.append(client.submit_until_visible(TEXTS[i % len(TEXTS)]))
        time.sleep(0.3)
    return times


def concurrent_run(base: str, token: str, participants: int, rounds: int) -> list[float]:
    """``rounds`` waves of ``participants`` submitting at the same moment (a barrier)."""
    times: list[float] = []
    errors: list[str] = []
    for r in range(rounds):
        clients = onboard(base, token, f"wave{r}-{time.monotonic_ns()}", participants)
        barrier = threading.Barrier(participants)
        lock = threading.Lock()

        def one(
            i: int, client: Client, barrier: threading.Barrier = barrier, lock: threading.Lock = lock
        ) -> None:
            barrier.wait()
            try:
                ms = client.submit_until_visible(TEXTS[i % len(TEXTS)])
            except Exception as exc:  # counted and reported, never dropped silently
                with lock:
                    errors.append(str(exc))
                return
            with lock:
                times.append(ms)

        threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.0)
    if errors:
        raise RuntimeError(f"{len(errors)} participants never saw their lists: {errors[:3]}")
    return times


def torch_default_threads() -> int:
    """The intra-op thread count torch picks by itself on this machine (no OMP_NUM_THREADS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(
        [PYTHON, "-c", "import torch; print(torch.get_num_threads())"], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def collect(args: argparse.Namespace) -> list[Figure]:
    """The ``lists`` and/or ``threads`` figures (``args.sections``), on a stack started here."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        print(
            "[lists] skipped: DATABASE_URL must name a PostgreSQL server (the stack creates its database there)"
        )
        return []
    data_dir = os.environ.get("WHISPERLITE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    root = Path(args.var_dir) / f"stack-{os.getpid()}"
    stack = BenchStack(root, server, str(Path(args.var_dir) / "cache" / "embeddings"))
    figures: list[Figure] = []
    try:
        stack.create_database()
        token = stack.setup(args.catalog, data_dir)
        stack.start_redis()
        stack.start_web()
        stack.start_worker_with_threads(1)
        base = f"http://127.0.0.1:{stack.web_port}"
        onboard(base, token, "warm", 2)[0].submit_until_visible("warm up")  # encoder and index loaded
        note = f"{args.catalog}, gunicorn x3, worker concurrency {os.cpu_count()}, torch threads 1"
        if "lists" in args.sections:
            idle = idle_run(base, token, args.idle)
            figures += latency_figures(
                "lists", "submit -> visible, 1 participant", idle, p50_limit=IDLE_P50_LIMIT_MS, note=note
            )
            busy = concurrent_run(base, token, args.participants, args.rounds)
            figures += latency_figures(
                "lists", f"submit -> visible, {args.participants} concurrent", busy,
                p95_limit=CONCURRENT_P95_LIMIT_MS, note=note,
            )  # fmt: skip
        if "threads" in args.sections:
            default = torch_default_threads()
            for threads in (1, default):
                stack.start_worker_with_threads(threads)
                onboard(base, token, f"warm{threads}", 1)[0].submit_until_visible("warm up")
                busy = concurrent_run(base, token, args.participants, args.rounds)
                label = "1 (WHISPERLITE_TORCH_THREADS=1)" if threads == 1 else f"{threads} (torch's default)"
                figures += latency_figures(
                    "threads", f"{args.participants} concurrent, torch threads {label}", busy,
                    p95_limit=CONCURRENT_P95_LIMIT_MS, note=f"worker concurrency {os.cpu_count()}",
                )  # fmt: skip
    except Exception:
        for name in ("gunicorn", "worker"):
            log = root / f"{name}.log"
            if log.exists():
                print(
                    f"--- last lines of {log}:\n"
                    + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                )
        raise
    finally:
        stack.stop()
        stack.drop_database()
        shutil.rmtree(root, ignore_errors=True)
    return figures
