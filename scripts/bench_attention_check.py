"""The attention check's pick at a large catalog: a full scan against a seeded sample (issue 10).

    OMP_NUM_THREADS=1 WHISPERLITE_TORCH_THREADS=1 .venv/bin/python scripts/bench_attention_check.py \\
        [--items 1000000] [--dim 384] [--requests 30] [--sample 4000]

Times ``studyapp.ranking_service.least_similar_item`` (the code the task runs) on random unit
vectors standing in for a catalog's embeddings: with ``sample=None`` (what every request paid
before: a mat-vec over the whole catalog and a partition) and with the seeded sample the task
now uses above ``WHISPERLITE_ANN_MIN_ITEMS``. Needs no database; ``--items 1000000`` holds a
1.5 GB matrix in memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_report import Figure, latency_figures, percentile, print_figures  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--sample", type=int, help="Rows sampled (default: the app's ATTENTION_SAMPLE_ROWS).")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("WHISPERLITE_TORCH_THREADS", "1")
    import django

    django.setup()
    import numpy as np
    import torch

    from recommender.embeddings import ItemIndex
    from recommender.ranking import ZeroShotRanker
    from studyapp import ranking_service

    torch.set_num_threads(int(os.environ["WHISPERLITE_TORCH_THREADS"]))
    sample = args.sample or ranking_service.ATTENTION_SAMPLE_ROWS
    rng = np.random.default_rng(0)
    vectors = np.empty((args.items, args.dim), dtype=np.float32)
    for start in range(0, args.items, 100_000):  # in blocks: no float64 copy of the whole matrix
        block = rng.standard_normal((min(100_000, args.items - start), args.dim), dtype=np.float32)
        vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    index = ItemIndex([f"i{r}" for r in range(args.items)], vectors, "synthetic", "synthetic")
    ranker = ZeroShotRanker(index, None)
    queries = rng.standard_normal((args.requests + 3, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def timed(sampled: int | None) -> list[float]:
        out = []
        for i, q in enumerate(queries):
            started = time.perf_counter()
            ranking_service.least_similar_item(ranker, q, set(), seed=i, sample=sampled)
            if i >= 3:  # the first three warm up
                out.append((time.perf_counter() - started) * 1000.0)
        return out

    full, sampled = timed(None), timed(sample)
    note = f"{args.items:,} x {args.dim} random unit vectors"
    figures = [
        *latency_figures("attention check", "full scan (before)", full, note=note),
        *latency_figures("attention check", f"seeded sample of {sample:,} rows (now)", sampled, note=note),
        Figure(
            "attention check",
            "full scan p50 / sample p50",
            percentile(full, 50) / percentile(sampled, 50),
            "x",
        ),
    ]
    print_figures(
        figures, title=f"bench_attention_check {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
