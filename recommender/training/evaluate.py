"""Full-catalog evaluation of every system on the same temporal split, over several seeds.

For each held-out case the user's history items are removed from the ranking (they were
already bought); the remaining catalog is ranked by each system and scored with Recall@10,
Recall@50, NDCG@10 and MRR against the case's relevant set (the bought item for real data,
every matching item for the shopper simulation). Means and standard deviations over seeds
are printed as a Markdown table.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from recommender.encoders import Encoder
from recommender.metrics import aggregate, user_metrics
from recommender.model import WhisperLite, WhisperLiteConfig
from recommender.training.baselines import ALL_SYSTEMS, build_scorers
from recommender.training.data import Example, InteractionDataset
from recommender.training.train import Prepared, prepare, whisperlite_scores

METRICS = ("recall@10", "recall@50", "ndcg@10", "mrr")


def rank_metrics(
    scores: np.ndarray, prep: Prepared, examples: Sequence[Example], *, seed: int = 0
) -> dict[str, float]:
    """Aggregate metrics of a ``(len(examples), n_items)`` score matrix; history items excluded.

    Cases whose relevant set is empty once history is removed are skipped (nothing to find);
    if all are skipped every metric is NaN (``n_users`` 0). Tied scores are ordered by a
    random permutation per case drawn from ``seed`` (deterministic for a given seed): a
    stable sort would order ties by catalog position, which systematically favours or buries
    items (empty-history centroids, BM25 with no overlap and a zero query all tie everywhere).
    """
    rng = np.random.default_rng(seed)
    per_user = []
    for row, e in zip(scores, examples, strict=True):
        tiebreak = rng.random(len(row))  # drawn for every case, so case i's draw never depends on skips
        history = set(prep.index.rows(e.history_item_ids).tolist())
        relevant = set(prep.index.rows(sorted(e.relevant_item_ids)).tolist()) - history
        if not relevant:
            continue
        s = row.astype(np.float64, copy=True)
        if history:
            s[list(history)] = -np.inf
        order = np.lexsort((tiebreak, -s))[: len(s) - len(history)]  # by score, then random key
        per_user.append(user_metrics(order.tolist(), relevant))
    return aggregate(per_user, keys=METRICS)


@dataclass
class BenchmarkResult:
    """Per-system test metrics for each seed, plus training info and timings."""

    dataset: str
    seeds: list[int]
    metrics: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # system -> one per seed
    info: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    n_test: int = 0
    n_items: int = 0
    n_train: int = 0

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """system -> metric -> (mean, std over seeds; std 0 for a single seed)."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for system, runs in self.metrics.items():
            out[system] = {}
            for m in METRICS:
                values = [r[m] for r in runs]
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                out[system][m] = (float(np.mean(values)), std)
        return out

    def markdown(self) -> str:
        """A Markdown table: one row per system, ``mean ± std`` per metric."""
        lines = [
            "| system | " + " | ".join(METRICS) + " |",
            "|---|" + "---|" * len(METRICS),
        ]
        for system, row in self.summary().items():
            cells = [f"{mean:.4f} ± {std:.4f}" for mean, std in (row[m] for m in METRICS)]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "seeds": self.seeds,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_items": self.n_items,
            "metrics": self.metrics,
            "info": self.info,
            "summary": {s: {m: list(v) for m, v in row.items()} for s, row in self.summary().items()},
        }


def run_benchmark(
    load: Callable[[int], InteractionDataset],
    encoder: Encoder,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    systems: Sequence[str] = ALL_SYSTEMS,
    config: WhisperLiteConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_user_ids: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    extra_models: dict[str, WhisperLite] | None = None,
) -> BenchmarkResult:
    """Evaluate ``systems`` on the test split of ``load(seed)`` for every seed.

    ``load`` receives the seed so a simulation can draw new shoppers per seed; real data
    ignores it and only the training seed varies. ``extra_models`` are already trained
    networks (e.g. a loaded checkpoint) evaluated as extra systems, all users treated as unseen.
    """
    config = config or WhisperLiteConfig()
    result: BenchmarkResult | None = None
    for seed in seeds:
        dataset = load(seed)
        prep = prepare(dataset, encoder, cache_dir, progress=progress)
        if result is None:
            result = BenchmarkResult(dataset.name, list(seeds))
        result.n_test, result.n_items, result.n_train = (
            len(prep.split.test),
            len(prep.items),
            len(prep.split.train),
        )
        log(
            f"[{dataset.name} seed {seed}] {len(prep.split.train)} train / {len(prep.split.val)} val / "
            f"{len(prep.split.test)} test cases, {len(prep.items)} items"
        )
        ckpt_dir = Path(checkpoint_dir) / f"seed{seed}" if checkpoint_dir else None
        scorers, info = build_scorers(
            prep,
            systems,
            WhisperLiteConfig.from_dict({**config.to_dict(), "seed": seed}),
            use_user_ids=use_user_ids,
            checkpoint_dir=ckpt_dir,
            progress=progress,
        )
        for name, model in (extra_models or {}).items():
            scorers[name] = partial(whisperlite_scores, model, prep, use_user_ids=False)
        for name, scorer in scorers.items():
            started = time.perf_counter()
            metrics = rank_metrics(_chunked(scorer, prep.split.test), prep, prep.split.test, seed=seed)
            metrics["eval_seconds"] = time.perf_counter() - started
            result.metrics.setdefault(name, []).append(metrics)
            result.info.setdefault(name, []).append(info.get(name, {}))
            log(f"  {name:<24} " + "  ".join(f"{m}={metrics[m]:.4f}" for m in METRICS))
    assert result is not None, "no seeds given"
    return result


def _chunked(
    scorer: Callable[[Sequence[Example]], np.ndarray], examples: Sequence[Example], size: int = 512
) -> np.ndarray:
    parts = [scorer(examples[i : i + size]) for i in range(0, len(examples), size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def measure_latency(
    prep: Prepared,
    encoder: Encoder,
    checkpoint_path: str | os.PathLike[str] | None,
    *,
    n_requests: int = 100,
    k: int = 50,
) -> dict[str, dict[str, float]]:
    """Per-request latency of the app's rankers (request encoding included), in ms.

    Uses the same classes the web app uses (:func:`recommender.ranking.build_ranker`) on the
    first ``n_requests`` test cases; returns median and 95th percentile per system.
    """
    from recommender.ranking import HISTORY_BLEND, WHISPERLITE, ZERO_SHOT, build_ranker

    systems = [ZERO_SHOT, HISTORY_BLEND] + ([WHISPERLITE] if checkpoint_path else [])
    cases = prep.split.test[:n_requests]
    out: dict[str, dict[str, float]] = {}
    for system in systems:
        ranker = build_ranker(
            system, prep.index, encoder, checkpoint_path=str(checkpoint_path) if checkpoint_path else None
        )
        ranker.rank("warm up", [], k)
        times = [
            ranker.rank(e.request_text, e.history_item_ids, k, e.history_item_ids).latency_ms for e in cases
        ]
        out[system] = {
            "median_ms": float(np.median(times)),
            "p95_ms": float(np.percentile(times, 95)),
            "n": len(times),
        }
    return out


def write_result(
    result: BenchmarkResult, out: str | os.PathLike[str], extra: dict[str, object] | None = None
) -> Path:
    """Save the result (and the Markdown table) as JSON under ``out``."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    target = path / f"{result.dataset}-results.json"
    payload = {**result.to_json(), "table": result.markdown(), **(extra or {})}
    target.write_text(json.dumps(payload, indent=2, default=str))
    return target
