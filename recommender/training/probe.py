"""The pre-flight fidelity probe and the full fidelity benchmark, as one callable report.

``python -m recommender probe CHECKPOINT --catalog ...`` (a small fixed request set, seconds)
and ``python -m recommender fidelity CHECKPOINT ...`` (the full benchmark) both call
:func:`fidelity_report`; the study app calls it too (``setup_demo``, and the admin before a
study with a WhisperLite system opens). The verdict compares WhisperLite with zero-shot
search on the same cases (targets in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recommender.catalog import CatalogItem
from recommender.embeddings import ItemIndex
from recommender.encoders import Encoder
from recommender.ranking import HISTORY_BLEND, WHISPERLITE, ZERO_SHOT, EmbeddingRanker, build_ranker
from recommender.systems import DEFAULT_HISTORY_WEIGHT
from recommender.training.fashioniq import Phrasing
from recommender.training.fidelity import AttributeTable, FidelityCase, build_cases
from recommender.training.fidelity_run import Summary, markdown, score_systems, summarise, verdict

#: The app's history-blend weight (RankingSystem.history_weight default), shown for reference.
BLEND_WEIGHT = DEFAULT_HISTORY_WEIGHT  # the app's stated history-blend weight
PROBE_REQUESTS = 30  # per request source: 4 x 30 cases, a few seconds on a laptop CPU

#: Requests a person would type, with picks that pull the other way (see issue 7).
EXAMPLES: tuple[tuple[str, tuple[dict[str, str], ...]], ...] = (
    (
        "a t-shirt for the gym",
        (
            {"articleType": "Casual Shoes", "baseColour": "White", "gender": "Men"},
            {"articleType": "Tshirts", "baseColour": "Blue", "gender": "Men"},
            {"articleType": "Caps", "baseColour": "White"},
        ),
    ),
    (
        "a red t-shirt",
        (
            {"articleType": "Casual Shoes", "baseColour": "White", "gender": "Men"},
            {"articleType": "Tshirts", "baseColour": "Blue", "gender": "Men"},
            {"articleType": "Caps", "baseColour": "White"},
        ),
    ),
    ("a black dress for a funeral", ()),
    (
        "a watch for my dad",
        (
            {"articleType": "Shirts", "usage": "Formal", "gender": "Men"},
            {"articleType": "Formal Shoes", "gender": "Men"},
            {"articleType": "Ties", "gender": "Men"},
        ),
    ),
)


@dataclass
class FidelityReport:
    """Per-source tables, the verdict and (optionally) the example lists."""

    n_cases: int
    table: str
    failures: list[str]
    examples: str = ""
    summary: Summary = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return not self.failures

    def text(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        lines = [self.table, ""]
        if self.examples:
            lines += [self.examples, ""]
        lines.append(
            f"{status}: WhisperLite vs zero-shot on {self.n_cases} cases (named-attribute precision@10, "
            "overall and per attribute named in >= 30 cases, at most 0.03 lower; history pull at most "
            "0.05 higher; every history condition)"
        )
        lines += [f"  - {f}" for f in self.failures]
        return "\n".join(lines)


def load_catalog_spec(spec: str, work_dir: str | os.PathLike[str]) -> tuple[list[CatalogItem], str | None]:
    """Items and image root for ``myntra:PATH``, ``generic:FILE`` or ``sample``.

    ``sample`` writes the generated sample catalog (deterministic) under ``work_dir``.
    """
    from recommender.catalog.readers import read_catalog

    if spec == "sample":
        from recommender.catalog.sample import write_sample_catalog

        csv_path = write_sample_catalog(Path(work_dir) / "sample_catalog")
        return read_catalog("generic", csv_path).items, str(csv_path.parent)
    fmt, sep, path = spec.partition(":")
    if not sep or fmt not in ("myntra", "generic", "amazon_tops") or not path:
        raise ValueError(f"--catalog must be myntra:PATH, generic:FILE or sample, not {spec!r}")
    result = read_catalog(fmt, path)
    return result.items, str(Path(result.source).parent)


def _pick(items: Sequence[CatalogItem], wanted: dict[str, str]) -> str | None:
    for item in items:
        if all(item.attributes.get(k) == v for k, v in wanted.items()):
            return item.item_id
    return None


def examples(rankers: dict[str, EmbeddingRanker], items: Sequence[CatalogItem], k: int = 5) -> str:
    """The top ``k`` titles of every system for :data:`EXAMPLES` (picks found by attributes)."""
    ordered = sorted(items, key=lambda i: i.item_id)
    titles = {i.item_id: i.title for i in items}
    lines = []
    for request, picks in EXAMPLES:
        history = [p for p in (_pick(ordered, w) for w in picks) if p]
        lines.append(f"request {request!r}; picks: {[titles[h] for h in history] or 'none'}")
        for name, ranker in rankers.items():
            ranked = ranker.rank(request, history, k, exclude=history)
            lines.append(f"  {name:<14} " + " | ".join(titles[i] for i in ranked.item_ids))
    return "\n".join(lines)


def fidelity_report(
    items: Sequence[CatalogItem],
    index: ItemIndex,
    encoder: Encoder,
    checkpoint_path: str | os.PathLike[str],
    *,
    n_requests: int = PROBE_REQUESTS,
    seed: int = 0,
    phrasings: Sequence[Phrasing] = (),
    with_examples: bool = False,
) -> FidelityReport:
    """Benchmark WhisperLite, zero-shot and history blend on template (and FashionIQ) requests."""
    rankers: dict[str, EmbeddingRanker] = {
        ZERO_SHOT: build_ranker(ZERO_SHOT, index, encoder),  # type: ignore[dict-item]
        HISTORY_BLEND: build_ranker(HISTORY_BLEND, index, encoder, history_weight=BLEND_WEIGHT),  # type: ignore[dict-item]
        WHISPERLITE: build_ranker(WHISPERLITE, index, encoder, checkpoint_path=str(Path(checkpoint_path))),  # type: ignore[dict-item]
    }
    cases: list[FidelityCase] = build_cases(items, n_requests=n_requests, seed=seed, source="template")
    stocked = {i.attributes.get("articleType") for i in items}
    if phrasings and stocked & {t for p in phrasings for t in p.article_types}:
        cases += build_cases(items, n_requests=n_requests, seed=seed, source="fashioniq", phrasings=phrasings)
    table = AttributeTable(items)
    results = score_systems(rankers, encoder, index, table, cases)
    summary = summarise(cases, results, seed=seed)
    return FidelityReport(
        n_cases=len(cases),
        table=markdown(summary),
        failures=verdict(summary),
        examples=examples(rankers, items) if with_examples else "",
        summary=summary,
    )
