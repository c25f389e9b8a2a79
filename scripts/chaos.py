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
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))  # chaos_stack beside this file
from chaos_stack import Stack, pg_bin  # noqa: E402,F401  (pg_bin: used by the chaos test)

FAULTS = ("worker", "redis", "postgres", "gunicorn")
REQUEST_TEXTS = [
    "casual shoes for the weekend", "a warm winter jacket", "red summer dress", "blue jeans",
    "a light linen shirt for a beach wedding", "black formal leather shoes", "a sports watch",
    "a cotton t-shirt", "a handbag for work", "running shoes",
]  # fmt: skip


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
        """A rating click: study.js retries once; if the page says "not saved", click again."""
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
