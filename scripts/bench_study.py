"""Benchmark the study app's hot paths and print the figures (docs/benchmarks.md quotes them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/whisperlite \
        .venv/bin/python scripts/bench_study.py [--catalog myntra|sample] [--requests 50]

Runs in a throwaway test database (created and dropped here), so it never touches real data.
Measures: catalog embedding (cold, then from the disk cache), per-system ranking latency over
the whole catalog, the Celery task end to end (ranking + storing lists and slots; executed
in-process), judgement writes through the real view, and the process's peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Everything this benchmark writes stays under its own var dir: without these the test
# settings fall back to folders in /tmp that every test run shares.
VAR_DIR = Path(os.environ.setdefault("WHISPERLITE_VAR_DIR", str(REPO / "var" / "bench")))
os.environ.setdefault("WHISPERLITE_CACHE_DIR", str(VAR_DIR / "cache" / "embeddings"))

REQUESTS = [
    "casual shoes", "a formal shirt for the office", "black watch", "summer dress for a wedding",
    "running shoes", "a warm jacket", "blue jeans", "a handbag for work", "ethnic kurta for a festival",
    "white t-shirt", "party heels", "sports t-shirt for the gym",
]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def line(name: str, values: list[float], unit: str = "ms") -> None:
    print(
        f"  {name:<34} p50 {pct(values, 50):8.1f} {unit}   p95 {pct(values, 95):8.1f} {unit}   "
        f"mean {statistics.mean(values):8.1f} {unit}   (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", choices=["myntra", "sample"], default="myntra")
    parser.add_argument("--requests", type=int, default=50, help="Requests per measurement (default 50).")
    parser.add_argument(
        "--checkpoint", help="A WhisperLite checkpoint to include (default: the demo one if present)."
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args, settings, Client)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        print(f"(throwaway database {test_db} dropped)")


def run(args, settings, Client) -> None:  # type: ignore[no-untyped-def]
    from recommender.catalog.sample import write_sample_catalog
    from recommender.embeddings import build_item_index
    from studyapp import ranking_service
    from studyapp.management.commands.import_catalog import import_catalog
    from studyapp.models import Participant, RankingSystem, Request, Study
    from studyapp.services import do_record_judgement
    from studyapp.tasks import rank_request

    print(
        f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, encoder: {settings.WHISPERLITE_ENCODER}"
    )
    if args.catalog == "myntra":
        source = Path(settings.WHISPERLITE_DATA_DIR or "") / "myntra"
        if not (source / "styles.csv").exists():
            sys.exit(f"no Myntra data at {source}: set WHISPERLITE_DATA_DIR or use --catalog sample")
        started = time.perf_counter()
        catalog, _ = import_catalog("myntra", str(source), "myntra", "Myntra", progress=False)
    else:
        csv_path = write_sample_catalog(tempfile.mkdtemp(dir=VAR_DIR))
        started = time.perf_counter()
        catalog, _ = import_catalog("generic", str(csv_path), "sample", "Sample", progress=False)
    n_items = catalog.items.count()
    print(
        f"\ncatalog: {args.catalog}, {n_items} items; import into the database {time.perf_counter() - started:.1f} s"
    )

    encoder = ranking_service.get_encoder()
    items = ranking_service.catalog_items(catalog)
    with tempfile.TemporaryDirectory(dir=VAR_DIR) as cold_cache:
        started = time.perf_counter()
        build_item_index(items, encoder, cold_cache, progress=False)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        build_item_index(items, encoder, cold_cache, progress=False)
        warm = time.perf_counter() - started
    print(
        f"embedding the catalog: cold {cold:.1f} s ({n_items / cold:.0f} items/s), from the disk cache {warm * 1000:.0f} ms"
    )

    systems = [
        RankingSystem.objects.create(name="Zero-shot", kind="zero_shot"),
        RankingSystem.objects.create(name="History blend", kind="history_blend"),
    ]
    checkpoint = args.checkpoint or str(Path(settings.WHISPERLITE_CHECKPOINT_DIR) / f"demo-{catalog.slug}.pt")
    if os.path.exists(checkpoint):
        systems.append(
            RankingSystem.objects.create(name="WhisperLite", kind="whisperlite", checkpoint_path=checkpoint)
        )
    else:
        print(f"(no WhisperLite checkpoint at {checkpoint}: run the demo first to include it)")
    history = [i.item_id for i in items[:: max(1, len(items) // 5)][:5]]
    print(f"\nranking latency per request over all {n_items} items (request encoding included, k=10):")
    for system in systems:
        ranker = ranking_service.get_ranker(system, catalog)
        ranker.rank("warm up", history, 10)
        times = [
            ranker.rank(REQUESTS[i % len(REQUESTS)], history, 10).latency_ms for i in range(args.requests)
        ]
        line(system.name, times)

    study = Study.objects.create(title="bench", slug="bench", catalog=catalog, status="open", k=10)
    study.systems.set(systems[:2])
    participant = Participant.objects.create(study=study, number=1, phase=Participant.Phase.TASKS)
    task_times, requests = [], []
    for i in range(args.requests):
        request = Request.objects.create(
            participant=participant, number=i + 1, text=REQUESTS[i % len(REQUESTS)], seed=i
        )
        started = time.perf_counter()
        assert rank_request(request.pk) == "done"
        task_times.append((time.perf_counter() - started) * 1000)
        requests.append(request)
    print("\nranking task end to end (2 systems, k=10: rank, plan slots, store lists + slots):")
    line("rank_request", task_times)

    client = Client()
    view_times, service_times = [], []
    for request in requests:
        slots = list(request.slots.values_list("pk", flat=True))
        for slot in slots[:10]:
            started = time.perf_counter()
            response = client.post(
                f"/p/{participant.token}/judge/", {"slot": slot, "label": "2"}, HTTP_HX_REQUEST="true"
            )
            view_times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        for slot in slots[10:]:
            started = time.perf_counter()
            do_record_judgement(participant, slot, "1")
            service_times.append((time.perf_counter() - started) * 1000)
    print("\njudgement writes:")
    line("POST /judge/ (htmx, full view)", view_times)
    line("do_record_judgement (service)", service_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process: {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
