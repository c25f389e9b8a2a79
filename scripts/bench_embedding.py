"""Benchmark catalog embedding: encoder alone, in-process path, sharded on 1 and 2 Celery workers.

    DATABASE_URL=postgres://USER@127.0.0.1:5432/DB CELERY_BROKER_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python scripts/bench_embedding.py [--items 4000] [--rounds 3] [--json out.json]

On ``--items`` random Myntra products (``styles.csv``, seed 0), every process pinned to one
torch/BLAS thread, in ``--rounds`` interleaved rounds (the order rotates each round, so a
change of host load hits every variant alike), each on a cold cache:

* the encoder alone, ``encode_text`` on the items' texts at batch 32, 64 and 128 (the paths
  use ``recommender.encoders.TEXT_BATCH_SIZE``, and their ratios are to the encoder at it);
* the in-process path: the catalog's rows read from the database, then ``build_item_index``
  (fingerprint, texts sorted by length, encode, atomic write) — what the embedded mode does;
* the sharded path: ``studyapp.embedding_jobs.embed_catalog`` with real Celery workers (prefork,
  1 and 2 worker processes, each loading the encoder at start), from planning to the merged
  cache file on disk, with the default shard size unless ``--shard-size``.

Items/s are the mean over rounds with a 95 % t-interval (n = rounds); each ratio to the
encoder is computed per round (paired) and averaged. Needs PostgreSQL (a throw-away database
``wl_bench_embedding`` is created and dropped, as the test runner does) and Redis (private
queues, deleted afterwards). Everything written on disk stays under ``--var-dir``.
``collect(args)`` returns the rows (``scripts/bench_report.py``) for ``bench_study.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.bench_report import Figure, print_figures  # noqa: E402

SECTION = "catalog embedding"
BATCH_SIZES = (32, 64, 128)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=4_000, help="Myntra items to embed (default 4000).")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (default 3).")
    parser.add_argument("--shard-size", type=int, default=0, help="Items per shard (default: the setting).")
    parser.add_argument("--var-dir", default=os.environ.get("WHISPERLITE_VAR_DIR", str(REPO / "var")))
    parser.add_argument(
        "--data-dir", default=os.environ.get("WHISPERLITE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--json", help="Also write the figures to this JSON file.")


def _pin_threads() -> None:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "WHISPERLITE_TORCH_THREADS"):
        os.environ[name] = "1"  # before numpy/torch start their pools; workers inherit it


def _django(out: Path) -> None:
    """Set up Django for this process: private cache dir, tasks to the broker, not in-process."""
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        raise SystemExit("set CELERY_BROKER_URL to a Redis URL (the sharded path needs real workers)")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL to PostgreSQL (workers must see the benchmark's database)")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="studyapp.settings",
        WHISPERLITE_VAR_DIR=str(out),
        WHISPERLITE_CACHE_DIR=str(out / "cache"),
        CELERY_TASK_ALWAYS_EAGER="0",
        WHISPERLITE_SWEEP_SECONDS="0",
        HF_HUB_OFFLINE="1",
    )
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-embedding-" + "x" * 40)
    import django

    django.setup()


@contextmanager
def _bench_database() -> Iterator[str]:
    """A throw-away database (created and migrated like the test runner's); yields its URL."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "wl_bench_embedding"
    old = setup_databases(verbosity=0, interactive=False)
    try:
        s = connection.settings_dict
        auth = quote(s["USER"] or "", safe="") + (
            ":" + quote(s["PASSWORD"], safe="") if s.get("PASSWORD") else ""
        )
        port = f":{s['PORT']}" if s.get("PORT") else ""
        yield f"postgres://{auth + '@' if auth else ''}{s.get('HOST') or '127.0.0.1'}{port}/{s['NAME']}"
    finally:
        teardown_databases(old, verbosity=0)


def _import_items(items, slug: str):  # type: ignore[no-untyped-def]
    from studyapp import ranking_service
    from studyapp.models import Catalog, Item

    catalog = Catalog.objects.create(name=slug, slug=slug, source="myntra")
    Item.objects.bulk_create(
        Item(
            catalog=catalog, external_id=i.item_id, title=i.title[:500], text=i.text, attributes=i.attributes
        )
        for i in items
    )
    catalog.version = ranking_service.catalog_fingerprint_of(catalog)
    catalog.save(update_fields=["version"])
    return catalog


class Workers:
    """A real ``celery worker`` (prefork, ``processes`` children) on its own queue."""

    def __init__(self, processes: int, database_url: str, log: Path) -> None:
        from studyapp.celery import app

        self.queue = f"bench-embed-{processes}-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if k != "CELERY_TASK_DEFAULT_QUEUE"}
        env.update(DATABASE_URL=database_url, CELERY_TASK_DEFAULT_QUEUE=self.queue, PYTHONUNBUFFERED="1")
        cmd = [
            sys.executable, "-m", "celery", "-A", "studyapp", "worker", "--pool=prefork",
            "-c", str(processes), "-l", "warning", "-Q", self.queue, "-n", f"{self.queue}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self.log = log
        with log.open("w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not app.control.ping(destination=[f"{self.queue}@{socket.gethostname()}"], timeout=1.0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()}")

    def stop(self) -> None:
        import redis

        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
        client.delete(self.queue, *client.scan_iter(match=f"_kombu.binding*{self.queue}*"))


def _t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval (NaN bounds for one value)."""
    import statistics

    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def collect(args: argparse.Namespace) -> list[Figure]:
    """Run the measurements (module docstring) and return them as figures."""
    _pin_threads()
    out = Path(args.var_dir) / "bench_embedding"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _django(out)
    with _bench_database() as database_url:
        return _measure(args, out, database_url)


def _measure(args: argparse.Namespace, out: Path, database_url: str) -> list[Figure]:
    import numpy as np
    from django.conf import settings

    from recommender.catalog import item_text
    from recommender.catalog.readers import read_myntra
    from recommender.embeddings import build_item_index
    from studyapp import embedding_jobs, ranking_service

    settings.WHISPERLITE_EMBED_SHARD_MIN_ITEMS = 1
    if args.shard_size:
        settings.WHISPERLITE_EMBED_SHARD_SIZE = args.shard_size
    encoder = ranking_service.get_encoder()
    everything = read_myntra(args.data_dir, only_with_images=False).items
    rng = np.random.default_rng(0)
    items = [everything[i] for i in sorted(rng.choice(len(everything), args.items, replace=False))]
    catalog = _import_items(items, "bench-embed")
    warm = _import_items(everything[-200:], "bench-warm-up")
    texts = [item_text(i) for i in items]
    n = len(items)
    print(f"{n} Myntra items, {args.rounds} rounds; shard size {settings.WHISPERLITE_EMBED_SHARD_SIZE}")

    pools = {p: Workers(p, database_url, out / f"worker-{p}.log") for p in (1, 2)}
    try:

        def sharded(processes: int, which=catalog) -> Callable[[], None]:  # type: ignore[no-untyped-def]
            def run() -> None:
                settings.WHISPERLITE_EMBED_QUEUE = pools[processes].queue
                shutil.rmtree(out / "cache", ignore_errors=True)
                how = embedding_jobs.embed_catalog(which, progress_bar=False, poll_seconds=0.05)
                assert how == "sharded", how

            return run

        def in_process() -> None:
            with tempfile.TemporaryDirectory(dir=out) as cold:
                build_item_index(ranking_service.catalog_items(catalog), encoder, cold, progress=False)

        def batch(size: int) -> Callable[[], None]:
            def run() -> None:
                encoder.encode_text(texts, normalize=True, batch_size=size)

            return run

        variants: dict[str, Callable[[], None]] = {f"batch {b}": batch(b) for b in BATCH_SIZES}
        variants |= {"in-process": in_process, "sharded 1": sharded(1), "sharded 2": sharded(2)}
        # Warm-up: the encoder here, and every worker process (loads at start; a first shard
        # job proves they answer).
        encoder.encode_text(texts[:64])
        settings.WHISPERLITE_EMBED_SHARD_SIZE, saved = 50, settings.WHISPERLITE_EMBED_SHARD_SIZE
        sharded(1, warm)()
        sharded(2, warm)()
        settings.WHISPERLITE_EMBED_SHARD_SIZE = saved

        rates: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                started = time.perf_counter()
                variants[name]()
                rates[name].append(n / (time.perf_counter() - started))
                print(f"  round {r + 1}: {name:<12} {rates[name][-1]:7.1f} items/s", flush=True)
    finally:
        for pool in pools.values():
            pool.stop()
    return _figures(rates, n, args.rounds)


def _figures(rates: dict[str, list[float]], n: int, rounds: int) -> list[Figure]:
    from recommender.encoders import TEXT_BATCH_SIZE

    per_round = f"{n:,} items per round"
    default = f"batch {TEXT_BATCH_SIZE}"  # what the in-process and sharded paths use
    encoder = rates[default]
    figures = []

    def rate(name: str, label: str, note: str = per_round) -> None:
        mean, low, high = _t_interval(rates[name])
        figures.append(Figure(SECTION, label, mean, "items/s", rounds, low, high, note=note))

    def ratio(name: str, label: str, base: list[float], limit: float | None = None) -> None:
        mean, low, high = _t_interval([a / b for a, b in zip(rates[name], base, strict=True)])
        figures.append(
            Figure(SECTION, label, mean, "", rounds, low, high, limit, ">=", note="paired by round")
        )

    rate(default, f"encoder alone, batched ({default}, the default; 1 thread)")
    rate("in-process", "in-process path (DB rows + build_item_index)")
    rate("sharded 1", "sharded path, 1 worker process")
    rate("sharded 2", "sharded path, 2 worker processes")
    ratio("in-process", "  ratio in-process / encoder", encoder, 0.90)
    ratio("sharded 1", "  ratio sharded 1 worker / encoder", encoder, 0.90)
    ratio("sharded 2", "  ratio sharded 2 workers / encoder", encoder)
    ratio("sharded 2", "  speed-up 2 workers / 1 worker", rates["sharded 1"])
    for size in BATCH_SIZES:
        rate(f"batch {size}", f"encoder alone, batch {size}")
    for size in BATCH_SIZES:
        if size != 64:
            ratio(f"batch {size}", f"  ratio batch {size} / batch 64", rates["batch 64"])
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    figures = collect(args)
    print_figures(figures, title=f"Catalog embedding, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.json:
        from scripts.bench_report import dump_json

        dump_json(figures, args.json)


if __name__ == "__main__":
    main()
