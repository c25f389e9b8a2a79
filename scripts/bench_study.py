"""The one benchmark command: every figure of the study app beside its limit (issue 10).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/whisperlite OMP_NUM_THREADS=1 \\
        .venv/bin/python scripts/bench_study.py [--catalog myntra|sample] [--sections task lists threads]
        [--quick] [--json FILE]

Sections (all by default):

* ``task``: in this process, on a throwaway database (created and dropped here): for each
  request, the encoder alone, the mat-vec alone and top-k alone (the floor), and the ranking
  task end to end (2 systems and an attention check: claim, rank, plan, store lists and
  slots), back to back in alternating order; limit: task p50 <= 1.3 x (encode + mat-vec +
  top-k), printed as the task/limit ratio too.
* ``lists``: submit -> lists visible on a real stack this script starts itself
  (``scripts/bench_lists.py``: gunicorn, one Celery worker, its own redis-server, a database it
  creates and drops on the ``DATABASE_URL`` server), with clients that poll on the page's own
  schedule: p50 with one participant (idle; limit 250 ms) and p95 with 20 concurrent
  participants (limit 1.5 s).
* ``threads``: the 20-concurrent run again with the worker on torch's default thread count,
  beside one thread per process (``WHISPERLITE_TORCH_THREADS=1``, the app's default).
* ``writes``, ``embedding``, ``index``: collected from ``scripts/bench_writes.py``,
  ``scripts/bench_embedding.py`` and ``scripts/bench_index.py`` (their ``collect(args)``), each
  run with its own arguments for this run's size (``module_argv``).

``--quick`` is a small CI-sized run. Everything written stays under ``--var-dir``
(``WHISPERLITE_VAR_DIR``, default ``var/bench``): embedding cache, sample catalog, the stack's
logs and settings. Label figures "quiet" only when the load average says so (printed above
the table).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_report import Figure, dump_json, latency_figures, print_figures  # noqa: E402

SECTIONS = ("task", "lists", "threads", "writes", "embedding", "index")
#: Sections measured by other scripts, and the module whose ``collect(args)`` returns them.
COLLECTED = {"writes": "bench_writes", "embedding": "bench_embedding", "index": "bench_index"}
#: The issue's targets.
TASK_OVER_FLOOR = 1.3  # task p50 <= 1.3 x (one encode + mat-vec + top-k)

REQUESTS = [
    "casual shoes", "a formal shirt for the office", "black watch", "summer dress for a wedding",
    "running shoes", "a warm jacket", "blue jeans", "a handbag for work", "ethnic kurta for a festival",
    "white t-shirt", "party heels", "sports t-shirt for the gym",
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION")
    parser.add_argument("--catalog", choices=["myntra", "sample"], default="myntra")
    parser.add_argument(
        "--quick", action="store_true", help="A small CI-sized run (fewer requests, clients)."
    )
    parser.add_argument(
        "--requests", type=int, help="Requests per in-process measurement (default 200; 20 quick)."
    )
    parser.add_argument("--participants", type=int, default=20, help="Concurrent participants (default 20).")
    parser.add_argument("--rounds", type=int, help="Waves of concurrent participants (default 3; 1 quick).")
    parser.add_argument("--idle", type=int, help="Requests measured one at a time (default 30; 10 quick).")
    parser.add_argument(
        "--var-dir", default=os.environ.get("WHISPERLITE_VAR_DIR", str(REPO / "var" / "bench"))
    )
    parser.add_argument(
        "--index-sizes",
        type=int,
        nargs="+",
        help="Catalog sizes of the index section (default 100k 1M; quick 60k).",
    )
    parser.add_argument(
        "--index-var-dir",
        help="Where the index section keeps its matrices and indexes (default: the var dir); "
        "pointing at an earlier run's folder reuses its builds (a 1M-item index takes minutes).",
    )
    parser.add_argument("--json", help="Also write the figures to this file (inside the var dir).")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a figure is over its limit.")
    args = parser.parse_args(argv)
    args.requests = args.requests or (20 if args.quick else 200)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.idle = args.idle or (10 if args.quick else 30)
    args.var_dir = str(Path(args.var_dir).resolve())
    return args


def confine_to_var_dir(var_dir: str) -> None:
    """Point every folder the settings and libraries would write to inside the var dir.

    The test settings otherwise fall back to caches under the system temp folder that every
    test run shares; temp files go to the var dir too.
    """
    root = Path(var_dir)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["WHISPERLITE_VAR_DIR"] = var_dir
    os.environ["WHISPERLITE_CACHE_DIR"] = str(root / "cache" / "embeddings")
    os.environ.setdefault("WHISPERLITE_CHECKPOINT_DIR", str(root / "checkpoints"))
    os.environ["TMPDIR"] = str(root / "tmp")
    tempfile.tempdir = str(root / "tmp")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WHISPERLITE_TORCH_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", os.environ["WHISPERLITE_TORCH_THREADS"])


# --- task: the ranking task and its floor ------------------------------------------------------


def task_section(args: argparse.Namespace) -> list[Figure]:
    """Encoder, mat-vec, top-k and the whole task, in a throwaway database."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    # Its own name: never the test database a pytest run (or another benchmark) is using.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_study_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        return measure_task(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def import_bench_catalog(args: argparse.Namespace) -> Any:
    from django.conf import settings

    from recommender.catalog.sample import write_sample_catalog
    from studyapp.management.commands.import_catalog import import_catalog

    if args.catalog == "myntra":
        source = Path(settings.WHISPERLITE_DATA_DIR or "") / "myntra"
        if not (source / "styles.csv").exists():
            sys.exit(f"no Myntra data at {source}: set WHISPERLITE_DATA_DIR or use --catalog sample")
        return import_catalog("myntra", str(source), "myntra", "Myntra", progress=False)[0]
    csv_path = write_sample_catalog(tempfile.mkdtemp(dir=args.var_dir))
    return import_catalog("generic", str(csv_path), "sample", "Sample", progress=False)[0]


def measure_task(args: argparse.Namespace) -> list[Figure]:
    import numpy as np

    from recommender.scoring import tie_keys, top_k
    from studyapp import ranking_service
    from studyapp.models import Participant, RankingSystem, Request, Study
    from studyapp.tasks import rank_request

    n = args.requests
    catalog = import_bench_catalog(args)
    index = ranking_service.get_index(catalog)
    encoder = ranking_service.get_encoder()
    texts = [REQUESTS[i % len(REQUESTS)] + ("" if i < len(REQUESTS) else f" {i}") for i in range(n)]
    section = "task"
    note = f"{len(index.item_ids)} items, k=10"
    history_rows = np.arange(min(5, len(index.item_ids)), dtype=np.int64)

    systems = [
        RankingSystem.objects.create(name="Zero-shot", kind="zero_shot"),
        RankingSystem.objects.create(name="History blend", kind="history_blend"),
    ]
    study = Study.objects.create(
        title="bench", slug="bench", catalog=catalog, status="open", k=10, attention_checks=True
    )
    study.systems.set(systems)
    participant = Participant.objects.create(
        study=study, number=1, phase=Participant.Phase.TASKS, condition=1
    )
    for item in catalog.items.order_by("id")[:5]:
        participant.picks.create(item=item)

    def floor_parts(text: str) -> tuple[float, float, float]:
        started = time.perf_counter()
        vector = encoder.encode_text([text], normalize=True)[0]
        encoded = time.perf_counter()
        scores = index.vectors @ vector
        scored = time.perf_counter()
        top_k(scores, 10, history_rows, tie_keys(vector, history_rows, len(scores)))
        done = time.perf_counter()
        return (encoded - started) * 1000.0, (scored - encoded) * 1000.0, (done - scored) * 1000.0

    def one_task(number: int, text: str) -> float:
        request = Request.objects.create(participant=participant, number=number, text=text, seed=number)
        started = time.perf_counter()
        assert rank_request(request.pk) == "done"
        return (time.perf_counter() - started) * 1000.0

    for i in range(3):  # warm the per-process caches (rankers, item pks, prepared statements)
        floor_parts(texts[i])
        one_task(i + 1, texts[i])
    # Paired: each request's floor parts and its task run back to back, alternating which goes
    # first, so both meet the same host (a shared host's speed drifts by 30 % within minutes)
    # and the same caches (after an encode the item matrix is no longer in cache, in the task
    # as in the floor's mat-vec).
    encode, matvec, topk, task = [], [], [], []
    for i, text in enumerate(texts):
        if i % 2:
            task.append(one_task(i + 4, text))
        parts = floor_parts(text)
        if not i % 2:
            task.append(one_task(i + 4, text))
        encode.append(parts[0])
        matvec.append(parts[1])
        topk.append(parts[2])

    from bench_report import percentile

    floor = percentile(encode, 50) + percentile(matvec, 50) + percentile(topk, 50)
    limit = TASK_OVER_FLOOR * floor
    figures = [
        *latency_figures(section, "encoder alone (one request)", encode, note=encoder.encoder_id),
        *latency_figures(section, "mat-vec alone", matvec, note=note),
        *latency_figures(section, "top-k alone (tie rule, picks excluded)", topk, note=note),
        *latency_figures(
            section, "ranking task", task, p50_limit=limit,
            note="2 systems + attention check; limit 1.3 x (encode + mat-vec + top-k) p50",
        ),
    ]  # fmt: skip
    figures.append(
        Figure(section, "task p50 / (encode + mat-vec + top-k) p50", percentile(task, 50) / floor, "x", len(task),
               limit=TASK_OVER_FLOOR)
    )  # fmt: skip
    figures.append(
        Figure(section, "peak RSS of this process", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MiB")
    )  # fmt: skip
    return figures


# --- sections measured elsewhere -----------------------------------------------------------------


def module_argv(module_name: str, args: argparse.Namespace) -> list[str]:
    """Command-line arguments of another benchmark script, for this run's size and var dir."""
    var_dir = Path(args.var_dir)
    if module_name == "bench_index":
        sizes = args.index_sizes or ([60_000] if args.quick else [100_000, 1_000_000])
        return [
            "--sizes", *map(str, sizes), "--queries", "20" if args.quick else "200",
            "--embed-items", "0",  # the embedding section measures that (bench_embedding)
            "--var-dir", args.index_var_dir or str(var_dir),
        ]  # fmt: skip
    if module_name == "bench_writes":
        if args.quick:
            return ["--clients", "3", "--seconds", "2", "--warmup", "1", "--runs", "1", "--var-dir", str(var_dir / "bench_writes")]  # fmt: skip
        return ["--clients", "50", "--seconds", "10", "--warmup", "3", "--runs", "2", "--var-dir", str(var_dir / "bench_writes")]  # fmt: skip
    if module_name == "bench_embedding":
        size = ["--items", "300", "--rounds", "1"] if args.quick else ["--items", "4000", "--rounds", "3"]
        return [*size, "--var-dir", str(var_dir)]
    raise ValueError(f"no arguments known for {module_name}")


def collected_sections(args: argparse.Namespace) -> list[Figure]:
    """Figures of the sections other scripts measure, each script run once in its own process.

    A separate process per script because each sets up its own Django settings, database
    and thread pools (the embedding section starts Celery workers against its own database);
    in this process they would meet the task section's. The figures come back as JSON
    (``--json``), written inside the var dir.
    """
    figures: list[Figure] = []
    done: set[str] = set()
    for section in args.sections:
        module_name = COLLECTED.get(section)
        if module_name is None or module_name in done:
            continue
        done.add(module_name)
        argv = module_argv(module_name, args)
        out = Path(args.var_dir) / f"{module_name}.json"
        out.unlink(missing_ok=True)
        print(f"\n[{section}] scripts/{module_name}.py {' '.join(argv)}", flush=True)
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / f"{module_name}.py"), *argv, "--json", str(out)],
            check=False,  # a script exits 1 when a figure is over its limit; its figures still count
        )
        if not out.exists():
            figures.append(Figure(section, f"scripts/{module_name}.py failed (no figures)", float("nan")))
            continue
        figures.extend(Figure(**row) for row in json.loads(out.read_text())["figures"])
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    confine_to_var_dir(args.var_dir)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"bench_study {started}; sections {' '.join(args.sections)}; catalog {args.catalog}; var dir {args.var_dir}"
    )
    figures: list[Figure] = []
    if "task" in args.sections:
        figures += task_section(args)
    if "lists" in args.sections or "threads" in args.sections:
        import bench_lists

        figures += bench_lists.collect(args)
    figures += collected_sections(args)
    print_figures(figures, title=f"bench_study.py, {started}")
    if args.json:
        path = Path(args.json).resolve()
        if not path.is_relative_to(args.var_dir):
            path = Path(args.var_dir) / path.name  # never outside the var dir
        dump_json(figures, str(path))
        print(f"figures written to {path}")
    return 1 if args.check and any(f.ok is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
