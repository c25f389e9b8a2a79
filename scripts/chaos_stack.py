"""The chaos harness's own services: PostgreSQL, Redis, gunicorn and a Celery worker.

Everything runs on loopback from one temporary folder, on ports of its own (PostgreSQL
55400-55499, Redis 56400-56499, gunicorn 57400-57499), so the harness may kill any of it
without touching shared services. Used by ``scripts/chaos.py``; the benchmarks' stacks
(``bench_lists.py``, ``bench_writes_stack.py``) share its settings module and helpers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port(lo: int, hi: int) -> int:
    for port in random.sample(range(lo, hi), hi - lo):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin_sql(url: str, sql: str) -> None:
    """Run ``sql`` on the server of ``url`` from its ``postgres`` database (CREATE/DROP DATABASE)."""
    import psycopg  # only a benchmark's parent process talks to the server directly

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def pg_bin(name: str) -> str:
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
from recommender.catalog.sample import write_sample_catalog
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
        self.pg_port = free_port(55400, 55500)
        self.redis_port = free_port(56400, 56500)
        self.web_port = free_port(57400, 57500)
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
            self._as_pg_user([pg_bin("initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust",
                              "-E", "UTF8"]),
            check=True, stdout=self.log("postgres"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._pg_ctl("start")
        subprocess.run(
            [pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "chaos"],
            check=True,
        )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        log_file = self.pg_data.parent / "server.log"
        subprocess.run(
            self._as_pg_user([pg_bin("pg_ctl"), "-D", str(self.pg_data), "-o", self.pg_opts, "-l", str(log_file),
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
            [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", "chaos",
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
