"""Benchmark catalog embedding and large-catalog ranking; print every figure beside its limit.

    .venv/bin/python scripts/bench_index.py [--sizes 100000 1000000] [--queries 200] [--threads 1]
    .venv/bin/python scripts/bench_index.py --json figures.json        # the same rows for a machine

``collect(args) -> list[Figure]`` is the entry point ``scripts/bench_study.py`` calls; the
command line prints the same figures through ``scripts/bench_report.print_figures``.
Measures, in one process pinned to ``--threads`` CPU threads (torch, FAISS/OpenMP, BLAS):

* the encoder alone (one request), and a mat-vec + top-k over the real Myntra matrix;
* catalog embedding items/s (``recommender.embeddings.build_item_index``, cold) against
  the encoder's own batched throughput on the same texts (limit: >= 90 %);
* for each catalog size, through the app's own rankers (``build_ranker(..., search=...)``
  over a shared, memory-mapped ``ItemIndex``): exact search, the index build or load, search
  alone, a whole ranking call (``ranker.rank``: encode the request, blend with the history
  centroid, search the index, re-score the candidates exactly, seeded tie rule, ids)
  p50/p95 with 95 % CIs and its CPU time (limit p95 <= 30 ms), recall@10 against exact
  search (limit >= 0.98), and what a second worker process adds in memory when it maps the
  saved index (limit: well under the index size).

The catalogs are synthetic but shaped like a real one: every vector is a variant of a real
MiniLM embedding of a Myntra product (all 44,446 rows of styles.csv), mixed with a near
neighbour, a random other item and noise (``recommender.vector_bench.clustered_catalog``).
Everything written (embedding cache, matrices, ids, indexes) stays under
``--var-dir``/bench_index and is reused by the next run (``--rebuild`` starts afresh), so
a re-run on a quiet host skips every build and only measures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # thread pools read these when numpy, torch and FAISS load: set them first
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = _threads

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.bench_report import Figure, dump_json, latency_figures, print_figures  # noqa: E402

SECTION_MATVEC = "encoder and mat-vec"
SECTION_EMBED = "catalog embedding"

REQUESTS = [
    "casual shoes", "a formal shirt for the office", "black watch", "summer dress for a wedding",
    "running shoes", "a warm jacket", "blue jeans", "a handbag for work", "ethnic kurta for a festival",
    "white t-shirt", "party heels", "sports t-shirt for the gym", "red lipstick", "leather belt",
    "kids sandals", "sunglasses for the beach", "woollen scarf", "silver earrings", "track pants",
    "a saree for a wedding", "navy blue polo shirt", "flip flops", "denim jacket for women",
    "black formal trousers", "backpack for college", "pink top for a party", "brown leather wallet",
    "men's perfume", "yellow kurti", "white sneakers", "grey hoodie", "gold bracelet",
    "floral skirt", "boys' shorts", "checked shirt", "sports bra", "formal black shoes",
    "printed scarf", "cotton socks", "steel watch for men",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200, help="Queries per measurement (default 200).")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and FAISS (default 1).")
    parser.add_argument(
        "--embed-items", type=int, default=2_000, help="Items in the embedding-rate test (0 skips it)."
    )
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds of the embedding test.")
    parser.add_argument("--var-dir", default=os.environ.get("WHISPERLITE_VAR_DIR", str(REPO / "var")))
    parser.add_argument(
        "--data-dir", default=os.environ.get("WHISPERLITE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--rebuild", action="store_true", help="Rebuild matrices and indexes even if saved.")
    parser.add_argument("--nprobe", type=int, default=0, help="IVF cells scanned per query (0: the default).")
    parser.add_argument("--sweep", action="store_true", help="Also print recall and latency per nprobe.")
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def pin_threads(threads: int) -> None:
    """One thread count for torch, FAISS/OpenMP and BLAS in this process (before their pools start)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def main() -> None:
    args = parse_args()
    figures = collect(args)
    print_figures(figures, title="bench_index: encoder, embedding and large-catalog ranking")
    if args.json:
        dump_json(figures, args.json)


def collect(args: argparse.Namespace) -> list[Figure]:
    """Every figure of this benchmark (see the module docstring); writes only under ``--var-dir``."""
    import faiss
    import torch

    pin_threads(args.threads)
    out = Path(args.var_dir) / "bench_index"
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"threads: {args.threads}; writes only under {out}; faiss {faiss.__version__}, torch {torch.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    return run(args, out)


def run(args: argparse.Namespace, out: Path) -> list[Figure]:
    from recommender import ann
    from recommender.catalog.readers import read_myntra
    from recommender.embeddings import build_item_index
    from recommender.encoders import build_encoder
    from recommender.vector_bench import time_calls

    figures: list[Figure] = []
    encoder = build_encoder("sentence-transformers")
    items = read_myntra(args.data_dir, only_with_images=False).items
    print(f"encoder: {encoder.encoder_id}; Myntra rows: {len(items)}")
    texts = request_texts(items, args.queries)

    encode_ms = time_calls(lambda i: encoder.encode_text([texts[i]]), args.queries)
    figures += latency_figures(SECTION_MATVEC, "one request encode (MiniLM)", encode_ms)

    if args.embed_items:
        figures += embedding_rate(args, encoder, items, out)

    started = time.perf_counter()
    real = build_item_index(items, encoder, out / "cache", progress=True)
    print(
        f"  (real Myntra matrix {real.vectors.shape}: {time.perf_counter() - started:.1f} s, from {out / 'cache'})"
    )
    exact_real = ann.ExactSearch(np.asarray(real.vectors))
    request_vectors = encoder.encode_text(texts, normalize=True)
    matvec_ms = time_calls(lambda i: exact_real.search(request_vectors[i], 10), args.queries)
    figures += latency_figures(
        SECTION_MATVEC, f"mat-vec + top-10, {len(real.vectors):,} real items", matvec_ms
    )

    for size in args.sizes:
        figures += large_catalog(args, encoder, np.asarray(real.vectors), texts, request_vectors, size, out)
    return figures


def request_texts(items, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``n`` requests: the hand-written ones, then the simulation's templates on random items."""
    import random

    from recommender.training.simulation import request_text

    rng = random.Random(0)
    texts = list(REQUESTS[:n])
    usable = [i for i in items if i.attributes.get("articleType") and i.attributes.get("usage")]
    while len(texts) < n:
        item = rng.choice(usable)
        texts.append(request_text(item.attributes["articleType"], item.attributes["usage"], rng))
    return texts


def embedding_rate(args, encoder, items, out: Path) -> list[Figure]:  # type: ignore[no-untyped-def]
    """Catalog embedding (the cold cache path) vs the encoder alone on the same texts, interleaved."""
    from recommender.catalog import item_text
    from recommender.embeddings import build_item_index

    rng = np.random.default_rng(0)
    subset = [
        items[i] for i in sorted(rng.choice(len(items), min(args.embed_items, len(items)), replace=False))
    ]
    texts = [item_text(i) for i in subset]
    encoder.encode_text(texts[:64])  # warm up
    rates: dict[str, list[float]] = {"encoder": [], "path": [], "unsorted": []}
    for _ in range(args.rounds):
        started = time.perf_counter()
        encoder.encode_text(texts, normalize=True)
        rates["encoder"].append(len(texts) / (time.perf_counter() - started))
        with tempfile.TemporaryDirectory(dir=out) as cold:
            started = time.perf_counter()
            build_item_index(subset, encoder, cold, progress=False)
            rates["path"].append(len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        for start in range(0, len(texts), 64):  # what a naive loop does: batches in catalog order
            encoder.encode_text(texts[start : start + 64], normalize=True)
        rates["unsorted"].append(len(texts) / (time.perf_counter() - started))
    best = {k: max(v) for k, v in rates.items()}
    note = f"best of {args.rounds} interleaved rounds of {len(texts):,} Myntra items"
    return [
        Figure(
            SECTION_EMBED,
            "encoder alone, batched (same texts)",
            best["encoder"],
            "items/s",
            len(texts),
            note=note,
        ),
        Figure(
            SECTION_EMBED,
            "catalog embedding path (cold cache)",
            best["path"],
            "items/s",
            len(texts),
            note=note,
        ),
        Figure(
            SECTION_EMBED,
            "ratio path / encoder",
            best["path"] / best["encoder"],
            "",
            limit=0.90,
            comparison=">=",
        ),
        Figure(
            SECTION_EMBED,
            "naive batches in catalog order",
            best["unsorted"],
            "items/s",
            len(texts),
            note="reference",
        ),
    ]


def synthetic_index(bases: np.ndarray, size: int, out: Path, rebuild: bool):  # type: ignore[no-untyped-def]
    """A shared ItemIndex of ``size`` synthetic items (memory-mapped matrix, compact ids), reused if saved."""
    from recommender import ann
    from recommender.embeddings import ItemIndex
    from recommender.item_ids import CompactIds
    from recommender.vector_bench import clustered_catalog

    cache_file = out / f"synthetic-{size}.npz"  # never written: names the files beside it
    matrix_file = out / f"synthetic-{size}.npy"
    if rebuild or not matrix_file.exists():
        vectors = ann.open_matrix(matrix_file, clustered_catalog(bases, size, seed=size))
        for stale in out.glob(f"synthetic-{size}.*.ivf"):
            stale.unlink()
    else:
        vectors = ann.open_matrix(matrix_file)
    ids = None if rebuild else CompactIds.open(out / f"synthetic-{size}")
    if ids is None or len(ids) != size:
        CompactIds.from_list([f"item-{i}" for i in range(size)]).save(out / f"synthetic-{size}")
        ids = CompactIds.open(out / f"synthetic-{size}")
    assert ids is not None
    return ItemIndex(ids, vectors, "sentence-transformers:all-MiniLM-L6-v2", f"synthetic-{size}", cache_file)


def large_catalog(args, encoder, bases, texts, request_vectors, size: int, out: Path) -> list[Figure]:  # type: ignore[no-untyped-def]
    from recommender import ann
    from recommender.item_search import CONTENT, SearchSettings
    from recommender.ranking import HistoryBlendRanker, ZeroShotRanker
    from recommender.vector_bench import exact_top_k, mean_ci, recall_at_k, second_process_memory, time_calls

    section = f"{size:,} items"
    figures: list[Figure] = []
    print(f"\n{size:,}-item catalog (synthetic, clustered around {len(bases):,} real item embeddings)")
    started = time.perf_counter()
    index = synthetic_index(bases, size, out, args.rebuild)
    vectors = index.vectors
    print(f"  (matrix and ids ready in {time.perf_counter() - started:.1f} s, memory-mapped under {out})")

    # Requests as the app sends them: the first half plain (zero-shot ranker), the second half
    # with 5 picked items (history-blend ranker, w = 0.3; the picks are excluded from results).
    rng = np.random.default_rng(size + 1)
    n = len(texts)
    half = n // 2
    histories = [rng.integers(0, size, 5) if i >= half else np.zeros(0, dtype=np.int64) for i in range(n)]
    history_ids = [[index.item_ids[int(r)] for r in h] for h in histories]

    settings = SearchSettings(min_items=ann.ANN_MIN_ITEMS, nprobe=args.nprobe or None)
    index_file = ann.index_path(index.cache_file, CONTENT)
    built = not index_file.exists()
    started = time.perf_counter()
    zero_shot, blend = ZeroShotRanker(index, encoder), HistoryBlendRanker(index, encoder, history_weight=0.3)
    search = zero_shot.use_search(settings)
    took = time.perf_counter() - started
    blend.use_search(settings)
    rankers = [zero_shot if i < half else blend for i in range(n)]
    queries = np.stack([rankers[i].search_query(request_vectors[i], histories[i]) for i in range(n)])

    exact = ann.ExactSearch(np.asarray(vectors))
    n_exact = n if size <= 200_000 else min(n, 40)  # an exact 1M scan is slow; fewer suffice
    exact_ms = time_calls(lambda i: exact.search(queries[i], 10, histories[i]), n_exact, warmup=1)
    figures += latency_figures(section, "exact search (torch mat-vec + top-k)", exact_ms)
    truth = exact_top_k(vectors, queries, 10, histories)

    if search is None:
        print(f"  {size:,} items is below ANN_MIN_ITEMS: ranked exactly")
        return figures
    kind = f"IVF-{search.codec} nlist {search.index.nlist} nprobe {search.nprobe}"  # type: ignore[attr-defined]
    figures.append(
        Figure(section, f"index {'built + saved' if built else 'loaded (mapped)'}", took, "s", note=kind)
    )
    search_ms = time_calls(lambda i: search.search(queries[i], 10, histories[i]), n)
    figures += latency_figures(section, "search alone", search_ms)

    def rank(i: int) -> list[str]:
        return rankers[i].rank(texts[i], history_ids[i], 10, exclude=history_ids[i]).item_ids

    for i in range(3):
        rank(i)  # warm-up, also the CPU-time baseline below
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    rank_ms = time_calls(rank, n, warmup=0)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / n
    wall_ms = (time.perf_counter() - wall_started) * 1000 / n
    figures += latency_figures(
        section,
        "ranking call (encode + search + re-score + ids)",
        rank_ms,
        p95_limit=30.0,
        note="ranker.rank through the index",
    )
    figures.append(
        Figure(
            section, "  CPU time per ranking call (mean)", cpu_ms, "ms", n, note=f"wall mean {wall_ms:.1f} ms"
        )
    )

    def found_rows(i: int) -> np.ndarray:
        ids = rankers[i].rank_vector(request_vectors[i], history_ids[i], 10, exclude=history_ids[i]).item_ids
        return index.rows(ids)

    recalls = recall_at_k(np.stack([found_rows(i) for i in range(n)]), truth)
    mean, ci = mean_ci(recalls)
    figures.append(
        Figure(section, "recall@10 vs exact, all requests", mean, "", n, mean - ci, mean + ci, 0.98, ">=")
    )
    for name, part in (("zero-shot", recalls[:half]), ("history blend", recalls[half:])):
        mean, ci = mean_ci(part)
        figures.append(Figure(section, f"  {name} requests", mean, "", len(part), mean - ci, mean + ci))
    if args.sweep:
        default = search.nprobe  # type: ignore[attr-defined]
        for nprobe in sorted({32, 64, 128, 192, 256, 384, default}):
            search.nprobe = nprobe  # type: ignore[attr-defined]
            ms = time_calls(lambda i: search.search(queries[i], 10, histories[i]), n)
            found = np.stack([search.search(queries[i], 10, histories[i])[1][0] for i in range(n)])
            mean, ci = mean_ci(recall_at_k(found, truth))
            figures.append(
                Figure(section, f"  sweep nprobe {nprobe}: recall@10", mean, "", n, mean - ci, mean + ci)
            )
            figures += latency_figures(section, f"  sweep nprobe {nprobe}: search", ms)
        search.nprobe = default  # type: ignore[attr-defined]

    matrix_file = out / f"synthetic-{size}.npy"
    size_mib = index_file.stat().st_size / 2**20
    shared_mib = size_mib + matrix_file.stat().st_size / 2**20  # what every worker maps: index + matrix
    figures.append(
        Figure(
            section,
            "index file",
            size_mib,
            "MiB",
            note=f"float32 matrix {matrix_file.stat().st_size / 2**20:,.0f} MiB",
        )
    )
    mem = second_process_memory(str(index_file), str(matrix_file), mmap=True, n_queries=n)
    figures.append(
        Figure(
            section,
            "second process, index alone: private memory (RssAnon)",
            mem.anon / 1024,
            "MiB",
            limit=0.1 * shared_mib,
            note="limit: a tenth of index + matrix",
        )
    )
    worker = second_worker_memory(out, size, texts[:20])
    figures.append(
        Figure(
            section,
            "second worker, whole ranker: private memory (RssAnon)",
            worker["anon"] / 1024,
            "MiB",
            limit=0.1 * shared_mib,
            note=f"shared ItemIndex + ids + index, 20 requests; VmRSS +{worker['rss'] / 1024:,.0f} MiB incl. shared pages",
        )
    )
    return figures


_WORKER = """
import json, sys
import numpy as np
import torch
torch.set_num_threads(1)
from recommender.encoders import build_encoder

def mem():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(status[v].split()[0]) for k, v in (("rss", "VmRSS"), ("anon", "RssAnon"))}

out, size, texts = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
encoder = build_encoder("sentence-transformers")
vectors = encoder.encode_text(texts, normalize=True)  # the encoder's own memory is not the index's
before = mem()
sys.argv = sys.argv[:1]
sys.path.insert(0, "scripts")
from bench_index import synthetic_index
from recommender.item_search import SearchSettings
from recommender.ranking import HistoryBlendRanker
index = synthetic_index(None, size, __import__("pathlib").Path(out), False)
ranker = HistoryBlendRanker(index, None, history_weight=0.3)
ranker.use_search(SearchSettings())
for i, v in enumerate(vectors):
    picks = [index.item_ids[(i * 7919 + j) % size] for j in range(5)]
    ranker.rank_vector(v, picks, 10, exclude=picks)
after = mem()
print(json.dumps({k: after[k] - before[k] for k in before}))
"""


def second_worker_memory(out: Path, size: int, texts: list[str]) -> dict[str, int]:
    """KiB a second worker process adds when it opens the saved index as the app does and ranks."""
    import json
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", _WORKER, str(out), str(size), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO,
    )
    measured: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


if __name__ == "__main__":
    main()
