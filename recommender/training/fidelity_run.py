"""Running the request-fidelity benchmark through the app's rankers, and reporting it.

:func:`score_systems` ranks every case with each system exactly as the study app does
(``Ranker.scores`` over the full catalog, then ``ranking.top_k`` with the participant's
picks excluded); :func:`summarise` turns per-case scores into means with 95 % bootstrap
confidence intervals (``scipy.stats.bootstrap``, percentile method, over cases);
:func:`verdict` applies the targets of ``docs/benchmarks.md`` (WhisperLite against zero-shot:
named-attribute precision@10, overall and per attribute, at most 0.03 lower; history pull at
most 0.05 higher; in every history condition of every request source);
:func:`markdown` and :func:`examples` print them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.embeddings import ItemIndex
from recommender.encoders import Encoder
from recommender.ranking import EmbeddingRanker
from recommender.training.fidelity import CONDITIONS, AttributeTable, FidelityCase, case_scores

K = 10
PRECISION_MARGIN = 0.03  # WhisperLite may lose at most this much named-attribute precision@10
PULL_MARGIN = 0.05  # ... and add at most this much history pull, against zero-shot
MIN_CASES = 30  # a per-attribute precision is judged only on at least this many cases
REFERENCE = "zero_shot"
CANDIDATE = "whisperlite"
COLUMNS = ("precision", "p:baseColour", "p:articleType", "p:gender", "p:usage", "p:pattern", "pull")


def score_systems(
    rankers: Mapping[str, EmbeddingRanker],
    encoder: Encoder,
    index: ItemIndex,
    table: AttributeTable,
    cases: Sequence[FidelityCase],
    k: int = K,
) -> dict[str, list[dict[str, float]]]:
    """system -> per-case metric dicts (same order as ``cases``)."""
    texts = sorted({c.request for c in cases})
    vectors = dict(zip(texts, encoder.encode_text(texts, normalize=True), strict=True))
    out: dict[str, list[dict[str, float]]] = {}
    for name, ranker in rankers.items():
        rows_out = []
        for case in cases:
            # The app's own path: picks excluded, its tie rule (what participants get).
            top = ranker.rank_vector(vectors[case.request], case.history, k, exclude=case.history)
            rows_out.append(case_scores(table, case, top.item_ids))
        out[name] = rows_out
    return out


@dataclass(frozen=True)
class Cell:
    """Mean of one metric over the cases that define it, with a 95 % bootstrap CI."""

    n: int
    mean: float
    low: float
    high: float

    def text(self) -> str:
        if self.n == 0:
            return "—"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_cell(values: Sequence[float], seed: int = 0) -> Cell:
    """Mean and 95 % percentile-bootstrap CI (1,000 resamples) of the finite ``values``."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if len(x) == 0:
        return Cell(0, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) < 2 or float(np.ptp(x)) == 0.0:  # no spread: the interval is the point
        return Cell(len(x), mean, mean, mean)
    from scipy.stats import bootstrap

    ci = bootstrap(
        (x,), np.mean, n_resamples=1000, method="percentile", random_state=seed
    ).confidence_interval
    return Cell(len(x), mean, float(ci.low), float(ci.high))


Summary = dict[tuple[str, str, str], dict[str, Cell]]  # (source, condition, system) -> column -> cell


def summarise(
    cases: Sequence[FidelityCase], results: Mapping[str, Sequence[dict[str, float]]], seed: int = 0
) -> Summary:
    out: Summary = {}
    sources = sorted({c.source for c in cases})
    for source in sources:
        for condition in CONDITIONS:
            picked = [i for i, c in enumerate(cases) if c.source == source and c.condition == condition]
            if not picked:
                continue
            for system, rows in results.items():
                out[(source, condition, system)] = {
                    col: bootstrap_cell([rows[i].get(col, math.nan) for i in picked], seed) for col in COLUMNS
                }
    return out


def verdict(summary: Summary) -> list[str]:
    """The targets WhisperLite misses against zero-shot (empty list = PASS)."""
    failures = []
    for (source, condition, system), row in summary.items():
        if system != CANDIDATE or (source, condition, REFERENCE) not in summary:
            continue
        ref = summary[(source, condition, REFERENCE)]
        # The headline (mean over named attributes) and colour always; gender, usage and
        # pattern once at least MIN_CASES cases name them (fewer is too noisy to judge).
        checked = ["precision", "p:baseColour"] + [
            col for col in ("p:gender", "p:usage", "p:pattern") if min(row[col].n, ref[col].n) >= MIN_CASES
        ]
        for col in checked:
            if row[col].mean < ref[col].mean - PRECISION_MARGIN:
                failures.append(
                    f"{source}/{condition}: {col} {row[col].mean:.3f} < zero-shot {ref[col].mean:.3f} - {PRECISION_MARGIN}"
                )
        if row["pull"].n and row["pull"].mean > ref["pull"].mean + PULL_MARGIN:
            failures.append(
                f"{source}/{condition}: history pull {row['pull'].mean:.3f} > zero-shot {ref['pull'].mean:.3f} + {PULL_MARGIN}"
            )
    return failures


def markdown(summary: Summary, columns: Sequence[str] = COLUMNS) -> str:
    """One Markdown table per request source: rows condition x system, cells mean [95 % CI]."""
    names = {
        "precision": "named attr. P@10",
        "p:baseColour": "colour P@10",
        "p:articleType": "type P@10",
        "p:gender": "gender P@10",
        "p:usage": "usage P@10",
        "p:pattern": "pattern P@10",
        "pull": "history pull",
    }
    blocks = []
    for source in sorted({key[0] for key in summary}):
        lines = [
            f"**{source} requests**",
            "",
            "| history | system | n | " + " | ".join(names[c] for c in columns) + " |",
            "|---|---|---|" + "---|" * len(columns),
        ]
        for (src, condition, system), row in summary.items():
            if src != source:
                continue
            cells = [
                row[c].text()
                + (
                    f" (n={row[c].n})"
                    if c.startswith("p:") and c not in ("p:baseColour", "p:articleType") and row[c].n
                    else ""
                )
                for c in columns
            ]
            lines.append(f"| {condition} | {system} | {row['precision'].n} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
