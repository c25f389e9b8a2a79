"""Measurement helpers for the large-catalog benchmark (scripts/bench_index.py) and its CI test.

Nothing here is used at serving time. The synthetic catalogs are built from *real* item
embeddings, because isotropic Gaussian noise has no cluster structure and makes any
inverted-file index look worse (and any graph index look better) than on real data.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


def _normalise(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)
    return out


def neighbours(bases: np.ndarray, k: int, block: int = 4096) -> np.ndarray:
    """(M, k) row numbers of each base's k most similar other bases (cosine, torch, blocked)."""
    matrix = torch.from_numpy(np.ascontiguousarray(bases, dtype=np.float32))
    k = min(k, len(bases) - 1)
    out = np.empty((len(bases), k), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(bases), block):
            sims = matrix[start : start + block] @ matrix.T  # (b, M)
            rows = torch.arange(start, min(start + block, len(bases)))
            sims[rows - start, rows] = -np.inf  # not its own neighbour
            out[start : start + len(rows)] = torch.topk(sims, k, dim=1).indices.numpy()
    return out


def clustered_catalog(
    bases: np.ndarray, n_items: int, *, seed: int = 0, noise: float = 0.25, chunk: int = 100_000
) -> np.ndarray:
    """``n_items`` unit vectors shaped like a real catalog, grown from real embeddings.

    Each synthetic item is a variant of one real item ``i`` (uniform over ``bases``): its
    embedding plus up to 0.6x a near neighbour's (the "same product, other colour" case),
    up to 0.3x a random other item's (catalogs mix categories), and isotropic noise of
    expected norm ``noise`` (about cos 0.97 to the mix). So items cluster where real items
    cluster, with realistic density variation between categories.
    """
    bases = _normalise(np.asarray(bases, dtype=np.float32))
    m, dim = bases.shape
    rng = np.random.default_rng(seed)
    near = neighbours(bases, 20)
    out = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, chunk):
        n = min(chunk, n_items - start)
        own = rng.integers(0, m, n)
        sibling = near[own, rng.integers(0, near.shape[1], n)]
        other = rng.integers(0, m, n)
        mix = (
            bases[own]
            + rng.uniform(0.0, 0.6, (n, 1)).astype(np.float32) * bases[sibling]
            + rng.uniform(0.0, 0.3, (n, 1)).astype(np.float32) * bases[other]
            + rng.standard_normal((n, dim), dtype=np.float32) * np.float32(noise / np.sqrt(dim))
        )
        out[start : start + n] = _normalise(mix)
    return out


def exact_top_k(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    exclude: list[np.ndarray] | None = None,
    block: int = 64,
) -> np.ndarray:
    """(B, k) true top-k rows by inner product; ``exclude[b]`` rows never count for query b.

    Torch GEMM over blocks of queries: the ground truth for recall, much faster than one
    mat-vec per query.
    """
    matrix = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    out = []
    with torch.no_grad():
        for start in range(0, len(queries), block):
            q = torch.from_numpy(np.ascontiguousarray(queries[start : start + block], dtype=np.float32))
            scores = q @ matrix.T  # (b, N)
            for offset in range(len(q) if exclude is not None else 0):
                rows = exclude[start + offset]  # type: ignore[index]  # guarded by the range above
                if len(rows):
                    scores[offset, torch.from_numpy(np.asarray(rows, dtype=np.int64))] = -np.inf
            out.append(torch.topk(scores, k, dim=1).indices.numpy())
    return np.concatenate(out).astype(np.int64)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per query, the share of the true top-k rows found: (B,) in [0, 1]."""
    k = truth.shape[1]
    return np.array(
        [len(set(f[:k].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]
    )


def mean_ci(values: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Mean and half-width of its normal-approximation 95 % confidence interval."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(z * values.std(ddof=1) / np.sqrt(len(values)))


def percentiles(values_ms: list[float]) -> tuple[float, float]:
    """(p50, p95) of a list of timings."""
    if len(values_ms) < 2:
        return values_ms[0], values_ms[0]
    q = statistics.quantiles(values_ms, n=100)
    return q[49], q[94]


@dataclass(frozen=True)
class ProcessMemory:
    """What a second process that maps the index adds, in KiB (from /proc)."""

    rss: int  # VmRSS delta: includes shared page-cache pages it touched
    anon: int  # RssAnon delta: private memory, the real per-process cost
    pss: int  # Pss delta: shared pages divided among the processes that map them


_CHILD = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import faiss
    faiss.omp_set_num_threads(1)
    from recommender.ann import IvfSearch

    def mem():
        status = dict(l.split(":", 1) for l in open("/proc/self/status"))
        rollup = dict(l.split(":", 1) for l in open("/proc/self/smaps_rollup") if ":" in l and "-" not in l.split(":")[0])
        kib = lambda s: int(s.split()[0])
        return {"rss": kib(status["VmRSS"]), "anon": kib(status["RssAnon"]), "pss": kib(rollup["Pss"])}

    path, mmap, n_queries, nprobe, matrix = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    before = mem()
    vectors = np.load(matrix, mmap_mode="r") if matrix else None
    search = IvfSearch.load(path, vectors, mmap=mmap, nprobe=nprobe or None)
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((n_queries, search.dim)).astype(np.float32)
    for q in queries:
        search.search(q[None, :], 10)
    after = mem()
    print(json.dumps({k: after[k] - before[k] for k in before}))
    """
)


def second_process_memory(
    index_file: str, matrix_file: str = "", *, mmap: bool = True, n_queries: int = 200, nprobe: int = 0
) -> ProcessMemory:
    """Load ``index_file`` (and map the ``.npy`` matrix) in a fresh process, run queries,
    return what that added.

    The caller should already hold the index (so its pages are in the page cache): the
    figure is then what one *more* worker process costs.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo_root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            index_file,
            "1" if mmap else "0",
            str(n_queries),
            str(nprobe),
            matrix_file,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return ProcessMemory(**json.loads(result.stdout.strip().splitlines()[-1]))


def time_calls(call: Callable[[int], object], n: int, warmup: int = 3) -> list[float]:
    """Wall times in ms of ``call(i)`` for i in range(n), after ``warmup`` untimed calls."""
    import time

    for i in range(warmup):
        call(i)
    times = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000.0)
    return times
