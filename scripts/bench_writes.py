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
``static/js/study.js`` sends; a few ratings are corrections of the previous item. Then one run
offers ``--paced-rate`` writes/s in all (default 400, spread evenly over the clients, latency
counted from each rating's due time): with no pause, 50 clients always queue (mean wait =
clients / throughput), so the p99 limit is held against the paced run.

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
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_report import Figure, host_label, latency_figures, print_figures  # noqa: E402
from bench_writes_stack import SETUP, VERIFY_AND_CLEAN, Stack, _stat, cpu_seconds  # noqa: E402

SECTION = "judgement writes"
PYTHON = sys.executable


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
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=400.0,
        help="After the no-pause runs, one run offering this many writes/s in all (0: none); "
        "its latency is what the p99 limit applies to.",
    )
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


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
    ran_out: bool = False  # every slot rated before the end: the measured rate would be too low


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
    interval: float = 0.0,
) -> ClientLog:
    """Rate the slots in order until ``stop`` (a monotonic time): with no pause, or one rating
    every ``interval`` seconds from a random phase.

    Paced, a rating's latency counts from when it was due, not from when it was sent: a
    client held up by a slow answer sends late, and that wait is part of what a participant
    sees (no coordinated omission).
    """
    log = ClientLog()
    rng = random.Random(seed)
    due = time.monotonic() + rng.uniform(0, interval)
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
        if interval:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            sent, due = due, due + interval
        else:
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
    log.ran_out = time.monotonic() < stop
    http.close()
    return log


@dataclass
class Driven:
    logs: list[ClientLog]
    measured_from: float
    cpu: dict[str, float]  # CPU seconds spent in the measured period


async def drive(
    stack: Stack, clients: list[dict], scale: list[str], args: argparse.Namespace, rate: float
) -> Driven:
    """Every client loads its page, then all rate at once; CPU is sampled around the measured period."""
    pages = await asyncio.gather(*(load_page(stack.port, info) for info in clients))
    failed = [p for p in pages if isinstance(p, str)]
    if failed:
        raise RuntimeError(f"{len(failed)} page loads failed, e.g. {failed[0]}")
    measured_from = time.monotonic() + args.warmup
    stop = measured_from + args.seconds
    interval = len(clients) / rate if rate else 0.0
    tasks = [
        asyncio.ensure_future(participant(*page, info, scale, args.rerate, stop, seed=n, interval=interval))
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
    ran_out: int  # clients that rated every slot before the end
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


def one_run(stack: Stack, args: argparse.Namespace, tag: str, rate: float = 0.0) -> Run:
    # Enough slots that no client runs out before the end: one client alone on a quiet host
    # rates about 300 a second (a write is ~3 ms of round trip), 50 share a few hundred.
    per_client_rate = max(40.0, 2400.0 / args.clients)
    requests_each = max(1, math.ceil((args.warmup + args.seconds) * per_client_rate / (2 * args.k)))
    setup = json.loads(stack.django(SETUP, str(args.clients), str(requests_each), str(args.k), tag))
    try:
        scale = setup["scale"] + ["na"]
        driven = asyncio.run(drive(stack, setup["clients"], scale, args, rate))
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
        ran_out=sum(log.ran_out for log in logs),
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


def figures_from(
    runs: Sequence[Run], args: argparse.Namespace, config: str, paced: Run | None = None
) -> list[Figure]:
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
    if paced is None:
        figures += latency_figures(SECTION, "write latency", latencies, p99_limit=args.limit_p99)
    else:
        # With no pause, 50 clients queue for the server by construction (mean wait = clients /
        # throughput), so their latency is saturation, shown without a limit; the limit applies
        # to the run that offers the target rate.
        figures += latency_figures(SECTION, "write latency, no pause (saturated)", latencies, with_p99=True)
        paced_note = (
            f"{args.clients} clients offering {args.paced_rate:g}/s in all, latency from the due time"
        )
        figures.append(
            Figure(SECTION, f"paced at {args.paced_rate:g}/s: writes/s achieved", paced.writes / paced.seconds,
                   "/s", paced.writes, limit=0.95 * args.paced_rate, comparison=">=", note=paced_note)
        )  # fmt: skip
        figures += latency_figures(
            SECTION,
            f"paced at {args.paced_rate:g}/s: write latency",
            paced.latencies_ms,
            p99_limit=args.limit_p99,
        )
        runs = [*runs, paced]
        writes, seconds = writes + paced.writes, seconds + paced.seconds
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
            "clients out of slots before the end (rate too low)",
            sum(r.ran_out for r in runs),
            "",
            args.clients * len(runs),
            limit=0,
        ),  # fmt: skip
    ]
    # Every rating accounted for: each count must be 0 (the database equals the clients' log).
    counts = {
        "errors (non-200 or wrong fragment)": sum(len(r.errors) for r in runs),
        "acknowledged ratings missing in the database": sum(r.lost for r in runs),
        "slots whose stored label/changes differ": sum(r.wrong for r in runs),
        "judgements nobody acknowledged": sum(r.extra for r in runs),
    }
    figures += [Figure(SECTION, name, count, "", writes, limit=0) for name, count in counts.items()]
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
    paced: Run | None = None
    try:
        stack.create_database()
        stack.start_web()
        for n in range(args.runs):
            runs.append(one_run(stack, args, f"{os.getpid()}-{n}"))
        paced = one_run(stack, args, f"{os.getpid()}-paced", args.paced_rate) if args.paced_rate else None
    finally:
        stack.stop()
    errors = [e for run in [*runs, paced] if run is not None for e in run.errors]
    if errors:
        print(f"first errors: {errors[:3]}", file=sys.stderr)
    return figures_from(runs, args, gunicorn_config(args), paced)


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
