"""Full-catalog evaluation of every system on the same held-out cases, over several seeds.

For each held-out case the user's history items are removed from the ranking (already
consumed); the rest of the catalog is ranked by each system through the app's scoring path
(:mod:`recommender.training.cases`) and scored per case with Recall@10, Recall@50, NDCG@10 and
MRR@100 (ranx) against the case's relevant set. Tables report, per system, the number of
scored cases and the mean with a 95 % bootstrap CI over cases; the seed spread separately;
and a paired test of WhisperLite against the best baseline. Fewer than
:data:`~recommender.metrics.MIN_CASES` scored cases print a warning.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.encoders import Encoder
from recommender.metrics import (
    METRICS,
    MIN_CASES,
    PairedComparison,
    bootstrap_ci,
    mean_metrics,
    paired_comparison,
)
from recommender.model import WhisperLite, WhisperLiteConfig
from recommender.training.baselines import ALL_SYSTEMS, BASELINES, UNTRAINED_SYSTEMS, System, build_systems
from recommender.training.cases import build_cases, case_metrics, rank_cases
from recommender.training.data import InteractionDataset
from recommender.training.train import Prepared, prepare
from recommender.whisperlite import WhisperLiteRanker

__all__ = ["METRICS", "BenchmarkResult", "measure_latency", "run_benchmark", "write_result"]

CaseKey = tuple[str, float, str]


@dataclass
class BenchmarkResult:
    """Per-case test metrics of every system for each seed, plus training info."""

    dataset: str
    seeds: list[int]
    per_case: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)  # system -> per seed
    case_keys: list[list[CaseKey]] = field(default_factory=list)  # per seed
    info: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    n_test: int = 0  # held-out test examples (before skipping the unscorable)
    n_items: int = 0
    n_train: int = 0
    n_val: int = 0
    protocol: str = ""

    # ------------------------------------------------------------------ per-case values

    @property
    def aligned(self) -> bool:
        """True when every seed scored the same cases (real data), so seeds average per case."""
        return all(keys == self.case_keys[0] for keys in self.case_keys)

    def values(self, system: str, metric: str) -> np.ndarray:
        """Per-case values over all seeds: averaged per case when aligned, else pooled."""
        runs = [run[metric] for run in self.per_case[system]]
        if self.aligned:
            return np.mean(np.stack(runs), axis=0) if runs and len(runs[0]) else np.zeros(0)
        return np.concatenate(runs) if runs else np.zeros(0)

    @property
    def n_cases(self) -> int:
        """Scored cases behind every CI (per seed when aligned, pooled over seeds otherwise)."""
        if not self.case_keys:
            return 0
        return len(self.case_keys[0]) if self.aligned else sum(len(k) for k in self.case_keys)

    # ------------------------------------------------------------------ statistics

    def summary(self) -> dict[str, dict[str, tuple[float, float, float]]]:
        """system -> metric -> (mean, CI low, CI high) over cases."""
        out: dict[str, dict[str, tuple[float, float, float]]] = {}
        for system in self.per_case:
            out[system] = {}
            for m in METRICS:
                v = self.values(system, m)
                lo, hi = bootstrap_ci(v)
                out[system][m] = (float(v.mean()) if len(v) else math.nan, lo, hi)
        return out

    def seed_spread(self) -> dict[str, dict[str, tuple[float, float]]]:
        """system -> metric -> (mean, std over seeds of the per-seed means; 0 for one seed)."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for system, runs in self.per_case.items():
            out[system] = {}
            for m in METRICS:
                means = [float(r[m].mean()) if len(r[m]) else math.nan for r in runs]
                out[system][m] = (float(np.mean(means)), statistics.stdev(means) if len(means) > 1 else 0.0)
        return out

    def best_baseline(self, metric: str = "recall@10", among: Sequence[str] = BASELINES) -> str | None:
        """The baseline with the highest mean ``metric`` (picked on test: the strongest opponent)."""
        present = [s for s in among if s in self.per_case]
        if not present:
            return None
        return max(present, key=lambda s: float(np.nan_to_num(self.values(s, metric).mean(), nan=-1.0)))

    def paired(
        self, system: str = "whisperlite", metric: str = "recall@10", among: Sequence[str] = BASELINES
    ) -> tuple[str, PairedComparison] | None:
        """``system`` against the best of ``among`` on the same cases, or None if either is missing."""
        best = self.best_baseline(metric, among)
        if best is None or system not in self.per_case:
            return None
        return best, paired_comparison(self.values(system, metric), self.values(best, metric))

    # ------------------------------------------------------------------ output

    def warning(self) -> str | None:
        if self.n_cases < MIN_CASES:
            return (
                f"WARNING: only {self.n_cases} scored cases (< {MIN_CASES}); the CIs are wide and no "
                "difference between systems in this table is reliable."
            )
        return None

    def markdown(self) -> str:
        """Tables: mean [95 % CI] per metric with the case count; seed spread; the paired test."""
        lines = []
        if self.warning():
            lines += [f"**{self.warning()}**", ""]
        lines += [
            "| system | cases | " + " | ".join(f"{m} [95% CI]" for m in METRICS) + " |",
            "|---|---|" + "---|" * len(METRICS),
        ]
        for system, row in self.summary().items():
            n = len(self.values(system, METRICS[0]))
            cells = [f"{mean:.4f} [{lo:.4f}, {hi:.4f}]" for mean, lo, hi in (row[m] for m in METRICS)]
            lines.append(f"| {system} | {n} | " + " | ".join(cells) + " |")
        how = (
            "mean per case over seeds"
            if self.aligned
            else "cases pooled over seeds (each seed draws new ones)"
        )
        lines += ["", f"CIs: percentile bootstrap over cases ({how})."]
        if len(self.seeds) > 1:
            lines += [
                "",
                f"Seed spread (mean ± std of the per-seed means, seeds {', '.join(map(str, self.seeds))}):",
                "",
                "| system | " + " | ".join(METRICS) + " |",
                "|---|" + "---|" * len(METRICS),
            ]
            for system, spread in self.seed_spread().items():
                lines.append(
                    f"| {system} | "
                    + " | ".join(f"{spread[m][0]:.4f} ± {spread[m][1]:.4f}" for m in METRICS)
                    + " |"
                )
        paired = self.paired()
        if paired is not None:
            best, p = paired
            lines += ["", paired_line("whisperlite", best, p)]
            untrained = self.paired(among=UNTRAINED_SYSTEMS)
            if untrained is not None and untrained[0] != best:
                lines += [
                    "",
                    paired_line("whisperlite", untrained[0], untrained[1], "best untrained baseline"),
                ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        paired = self.paired()
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "seeds": self.seeds,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "n_cases": self.n_cases,
            "n_items": self.n_items,
            "per_seed": {
                s: [{m: float(r[m].mean()) if len(r[m]) else None for m in METRICS} for r in runs]
                for s, runs in self.per_case.items()
            },
            "summary": {s: {m: list(v) for m, v in row.items()} for s, row in self.summary().items()},
            "paired_recall@10": {"baseline": paired[0], **paired[1].__dict__} if paired else None,
            "info": self.info,
            # Per-case values, so paired tests against any system can be redone from the file.
            "per_case": {
                s: [{m: r[m].tolist() for m in METRICS} for r in runs] for s, runs in self.per_case.items()
            },
            "case_keys": self.case_keys,
        }


def _p_value(p: float) -> str:
    """``= 0.012``, or ``< 1e-300`` where scipy's p-value underflows to 0."""
    return f"= {p:.3g}" if p > 0 else "< 1e-300"


def paired_line(system: str, baseline: str, p: PairedComparison, what: str = "best baseline") -> str:
    """One sentence with the paired difference, its CI, the relative change and the p-value."""
    return (
        f"Paired test, Recall@10, {system} vs {what} `{baseline}` over {p.n_cases} cases: "
        f"{p.mean_a:.4f} vs {p.mean_b:.4f}, difference {p.diff:+.4f} "
        f"[95% CI {p.diff_ci[0]:+.4f}, {p.diff_ci[1]:+.4f}], relative {100 * p.relative:+.1f}% "
        f"[{100 * p.relative_ci[0]:+.1f}%, {100 * p.relative_ci[1]:+.1f}%], Wilcoxon p {_p_value(p.wilcoxon_p)}."
    )


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
            result = BenchmarkResult(dataset.name, list(seeds), protocol=dataset.protocol)
        split = prep.split
        result.n_test, result.n_val, result.n_items, result.n_train = (
            len(split.test),
            len(split.val),
            len(prep.items),
            len(split.train),
        )
        cases = build_cases(prep, split.test)
        result.case_keys.append(cases.keys)
        log(
            f"[{dataset.name} seed {seed}] {len(split.train)} train / {len(split.val)} val / "
            f"{len(split.test)} test cases ({len(cases.examples)} scorable), {len(prep.items)} items"
        )
        ckpt_dir = Path(checkpoint_dir) / f"seed{seed}" if checkpoint_dir else None
        built, info = build_systems(
            prep,
            systems,
            WhisperLiteConfig.from_dict({**config.to_dict(), "seed": seed}),
            use_user_ids=use_user_ids,
            checkpoint_dir=ckpt_dir,
            progress=progress,
        )
        all_systems: dict[str, System] = dict(built)
        for name, model in (extra_models or {}).items():
            all_systems[name] = WhisperLiteRanker(model, prep.index, version=name)
        for name, system in all_systems.items():
            started = time.perf_counter()
            trained_with_users = use_user_ids and name in info and bool(info[name].get("uses_user_ids"))
            values = case_metrics(rank_cases(system, cases, use_user_ids=trained_with_users), cases)
            result.per_case.setdefault(name, []).append(values)
            result.info.setdefault(name, []).append(
                {**info.get(name, {}), "eval_seconds": time.perf_counter() - started}
            )
            means = mean_metrics(values)
            log(f"  {name:<26} " + "  ".join(f"{m}={means[m]:.4f}" for m in METRICS))
    if result is None:
        raise ValueError("no seeds given")
    if result.warning():
        log(result.warning() or "")
    return result


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
    from recommender.ranking import build_ranker
    from recommender.systems import HISTORY_BLEND, WHISPERLITE, ZERO_SHOT

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
    """Save the result (and the Markdown tables) as JSON under ``out``."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    target = path / f"{result.dataset}-results.json"
    payload = {**result.to_json(), "table": result.markdown(), **(extra or {})}
    target.write_text(json.dumps(payload, indent=2, default=str))
    return target
