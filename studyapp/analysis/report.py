"""End-to-end study report from plain judgement rows (no Django; the ORM layer builds the rows).

Each row is a dict with keys ``participant_id, request_id, system, system_rank,
displayed_position, item_id, label, is_attention_check, is_practice`` and optionally
``team`` (interleaving: the contributing system, defaults to ``system``), ``judgement_id``
(to count judgements exactly when an item is shown in two lists) and ``unit_id``
(agreement unit, defaults to ``item_id``; pass e.g. ``f"{prompt_id}:{item_id}"`` when
participants answer shared prompts, since relevance depends on the request).

Row convention per mode: side-by-side - one row per judged item with its list's system;
pool - one row per (shown item, system that ranked it in its top k), so a shared item has
one row per credited system with the same label; interleave - one row per (shown item,
system) as well, or just one row per item with ``system`` = the team.

The unit of analysis is the request, ``(participant_id, request_id)``: metrics are computed
per request and system (:mod:`.metrics`), averaged with bootstrap CIs, and compared pairwise
on requests where both systems have a value (:mod:`.stats`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from studyapp.presentation import Slot, interleaving_outcome, pairwise_preference

from .agreement import AgreementResult, krippendorff_alpha
from .metrics import RequestMetrics, Scale, ranked_labels, request_metrics
from .position import PositionRow, position_bias
from .stats import bootstrap_mean_ci, holm, paired_bootstrap_ci, paired_test, sign_test

METRICS = ("precision", "ndcg", "mrr")
MODES = {
    "side_by_side": "side_by_side", "sbs": "side_by_side",
    "interleave": "interleave", "interleaved": "interleave", "team_draft": "interleave",
    "tdi": "interleave", "multileave": "interleave",
    "pool": "pool", "pooled": "pool", "pooling": "pool",
}  # fmt: skip


def metric_label(metric: str, k: int) -> str:
    return {"precision": f"P@{k}", "ndcg": f"nDCG@{k}", "mrr": "MRR"}[metric]


@dataclass(frozen=True)
class MetricSummary:
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class SystemSummary:
    system: str
    n_requests: int
    metrics: dict[str, MetricSummary]  # keyed by METRICS


@dataclass(frozen=True)
class PairwiseComparison:
    metric: str
    system_a: str
    system_b: str
    n_pairs: int
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None  # a - b
    ci_low: float | None
    ci_high: float | None
    statistic: float | None
    p_value: float | None  # Wilcoxon signed-rank
    p_holm: float | None  # Holm-adjusted within the metric
    note: str = ""


@dataclass(frozen=True)
class InterleavingSummary:
    system_a: str
    system_b: str
    wins: int  # requests where a earned more credit than b
    ties: int
    losses: int
    p_value: float | None  # sign test, ties excluded
    note: str = ""


@dataclass(frozen=True)
class AttentionSummary:
    n_checks: int
    n_failed: int  # check item judged relevant (>= threshold); can't-judge is not a failure
    failed_participants: list[str]


@dataclass
class StudyReport:
    mode: str
    k: int
    scale: Scale
    seed: int
    n_participants: int
    n_requests: int
    n_judgements: int
    n_cant_judge: int
    n_excluded_practice: int
    n_excluded_attention: int
    systems: list[SystemSummary]
    comparisons: list[PairwiseComparison]
    interleaving: list[InterleavingSummary] | None
    position_bias: list[PositionRow]
    agreement: AgreementResult
    attention: AttentionSummary
    notes: list[str] = field(default_factory=list)


Unit = tuple[str, str]


def _unit(row: Mapping[str, Any]) -> Unit:
    return (str(row["participant_id"]), str(row["request_id"]))


def _per_request(
    rows: list[Mapping[str, Any]], scale: Scale, k: int
) -> dict[str, dict[Unit, RequestMetrics]]:
    grouped: dict[str, dict[Unit, list[tuple[int, Any]]]] = {}
    for r in rows:
        if r.get("system_rank") is None:
            continue  # shown but not ranked by this system (e.g. another team's item)
        scale.normalise(r["label"])  # validate early: raises on out-of-scale labels
        grouped.setdefault(str(r["system"]), {}).setdefault(_unit(r), []).append(
            (int(r["system_rank"]), r["label"])
        )
    return {
        s: {u: request_metrics(ranked_labels(pairs, k), scale, k) for u, pairs in units.items()}
        for s, units in grouped.items()
    }


def _value(m: RequestMetrics, metric: str) -> float | None:
    return m.rr if metric == "mrr" else getattr(m, metric)


def _interleaving(
    rows: list[Mapping[str, Any]], scale: Scale, systems: list[str]
) -> list[InterleavingSummary]:
    slots: dict[Unit, dict[str, Slot]] = {}
    labels: dict[Unit, dict[str, Any]] = {}
    for r in rows:
        u, item = _unit(r), str(r["item_id"])
        team = r.get("team") or r["system"]
        # One slot per shown item even when rows repeat it per system; first row wins.
        slots.setdefault(u, {}).setdefault(item, Slot(item, int(r["displayed_position"]), team=str(team)))
        labels.setdefault(u, {}).setdefault(item, r["label"])
    credit = {
        u: interleaving_outcome(list(s.values()), labels[u], scale.relevant_threshold)
        for u, s in slots.items()
    }
    out = []
    for a, b in itertools.combinations(systems, 2):
        outcomes = [pairwise_preference(c, a, b) for c in credit.values() if a in c and b in c]
        w, t, lo = outcomes.count("win"), outcomes.count("tie"), outcomes.count("loss")
        res = sign_test(w, lo, t)
        out.append(InterleavingSummary(a, b, w, t, lo, res.p_value, res.note))
    return out


def build_report(
    judgement_rows: Iterable[Mapping[str, Any]],
    scale: Scale,
    k: int,
    mode: str,
    seed: int = 0,
    n_resamples: int = 10000,
    agreement_resamples: int = 1000,
) -> StudyReport:
    """Build the full study report; see the module docstring for the row format."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(set(MODES.values()))}")
    mode = MODES[mode]
    all_rows = list(judgement_rows)
    practice = [r for r in all_rows if r.get("is_practice")]
    checks = [r for r in all_rows if r.get("is_attention_check") and not r.get("is_practice")]
    rows = [r for r in all_rows if not r.get("is_practice") and not r.get("is_attention_check")]

    per_request = _per_request(rows, scale, k)
    systems = sorted(per_request)
    summaries = []
    for s in systems:
        ms = {}
        for metric in METRICS:
            vals = [v for m in per_request[s].values() if (v := _value(m, metric)) is not None]
            ci = bootstrap_mean_ci(vals, n_resamples=n_resamples, seed=seed)
            ms[metric] = MetricSummary(ci.mean, ci.ci_low, ci.ci_high, ci.n)
        summaries.append(SystemSummary(s, len(per_request[s]), ms))

    comparisons: list[PairwiseComparison] = []
    for metric in METRICS:
        family = []
        for a, b in itertools.combinations(systems, 2):
            pairs = [
                (va, vb)
                for u in sorted(per_request[a].keys() & per_request[b].keys())
                if (va := _value(per_request[a][u], metric)) is not None
                and (vb := _value(per_request[b][u], metric)) is not None
            ]
            xa, xb = [p[0] for p in pairs], [p[1] for p in pairs]
            boot = paired_bootstrap_ci(xa, xb, n_resamples=n_resamples, seed=seed)
            test = paired_test(xa, xb)
            family.append((a, b, boot, test))
        adjusted = holm([t.p_value for *_, t in family])
        for (a, b, boot, test), p_adj in zip(family, adjusted, strict=True):
            comparisons.append(
                PairwiseComparison(
                    metric=metric,
                    system_a=a,
                    system_b=b,
                    n_pairs=boot.n,
                    mean_a=boot.mean_a,
                    mean_b=boot.mean_b,
                    mean_diff=boot.mean_diff,
                    ci_low=boot.ci_low,
                    ci_high=boot.ci_high,
                    statistic=test.statistic,
                    p_value=test.p_value,
                    p_holm=p_adj,
                    note=test.note,
                )
            )

    notes = []
    interleaving = None
    if mode == "interleave":
        interleaving = _interleaving(rows, scale, sorted({str(r.get("team") or r["system"]) for r in rows}))
        notes.append(
            "Interleaving: the win/tie/loss sign test is the primary outcome; per-system metrics use only "
            "the items each system ranked that were shown, so they are descriptive."
        )
    if mode == "pool":
        notes.append(
            "Pooling: an item returned by several systems was shown once and its label credited to each."
        )
    if len(systems) > 2:
        notes.append("p (Holm) adjusts each metric's pairwise Wilcoxon p-values for multiple comparisons.")

    positions = position_bias(
        (str(r["system"]), int(r["displayed_position"]), scale.normalise(r["label"]))
        for r in rows
        if r.get("displayed_position") is not None
    )
    agreement = krippendorff_alpha(
        ((str(r.get("unit_id", r["item_id"])), str(r["participant_id"]), r["label"]) for r in rows),
        level="ordinal",
        value_domain=list(range(scale.min, scale.max + 1)),
        n_resamples=agreement_resamples,
        seed=seed,
    )
    failed = [r for r in checks if scale.is_relevant(r["label"])]
    attention = AttentionSummary(len(checks), len(failed), sorted({str(r["participant_id"]) for r in failed}))

    return StudyReport(
        mode=mode,
        k=k,
        scale=scale,
        seed=seed,
        n_participants=len({str(r["participant_id"]) for r in rows}),
        n_requests=len({_unit(r) for r in rows}),
        # A pooled judgement yields one row per credited system, so count distinct judgements;
        # without ids, fall back to distinct (request, item) pairs.
        n_judgements=len({r.get("judgement_id") or (_unit(r), str(r["item_id"])) for r in rows}),
        n_cant_judge=len({(_unit(r), str(r["item_id"])) for r in rows if r["label"] is None}),
        n_excluded_practice=len(practice),
        n_excluded_attention=len(checks),
        systems=summaries,
        comparisons=comparisons,
        interleaving=interleaving,
        position_bias=positions,
        agreement=agreement,
        attention=attention,
        notes=notes,
    )


def _clean(obj: Any) -> Any:
    # JSON has no NaN/inf; tuples become lists via json anyway.
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def report_to_dict(report: StudyReport) -> dict[str, Any]:
    """JSON-serialisable dict of the whole report (NaN/inf become None)."""
    return _clean(dataclasses.asdict(report))


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ci(lo: float | None, hi: float | None) -> str:
    return "-" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def report_to_text(report: StudyReport) -> str:
    """Markdown summary for the ``study_report`` management command."""
    r, sc = report, report.scale
    out = [
        "# Study report",
        "",
        f"Mode: {r.mode}; k = {r.k}; scale {sc.min}-{sc.max} (relevant >= {sc.relevant_threshold}); seed {r.seed}",
        f"Participants: {r.n_participants}; requests: {r.n_requests}; judgements: {r.n_judgements} "
        f"(can't judge: {r.n_cant_judge}); excluded rows: practice {r.n_excluded_practice}, "
        f"attention checks {r.n_excluded_attention}",
        "",
        "## Per-system metrics (mean [95% bootstrap CI])",
        "",
        "| System | requests | " + " | ".join(metric_label(m, r.k) for m in METRICS) + " |",
        "|---|---:|" + "---|" * len(METRICS),
    ]
    for s in r.systems:
        cells = [f"{_f(s.metrics[m].mean)} {_ci(s.metrics[m].ci_low, s.metrics[m].ci_high)}" for m in METRICS]
        out.append(f"| {s.system} | {s.n_requests} | " + " | ".join(cells) + " |")
    if r.comparisons:
        out += [
            "",
            "## Pairwise comparisons (A - B; paired bootstrap CI; Wilcoxon signed-rank)",
            "",
            "| Metric | A | B | pairs | mean A | mean B | diff | 95% CI | p | p (Holm) | note |",
            "|---|---|---|---:|---:|---:|---:|---|---:|---:|---|",
        ]
        for c in r.comparisons:
            out.append(
                f"| {metric_label(c.metric, r.k)} | {c.system_a} | {c.system_b} | {c.n_pairs} | {_f(c.mean_a)} | "
                f"{_f(c.mean_b)} | {_f(c.mean_diff)} | {_ci(c.ci_low, c.ci_high)} | {_p(c.p_value)} | "
                f"{_p(c.p_holm)} | {c.note} |"
            )
    if r.interleaving is not None:
        out += ["", "## Interleaving (sign test, ties excluded)", "", "| A | B | wins | ties | losses | p |"]
        out.append("|---|---|---:|---:|---:|---:|")
        for i in r.interleaving:
            out.append(
                f"| {i.system_a} | {i.system_b} | {i.wins} | {i.ties} | {i.losses} | {_p(i.p_value)} |"
            )
    out += ["", "## Mean label by displayed position (normalised to start at 0)", ""]
    out += ["| System | position | mean label | n | can't judge |", "|---|---:|---:|---:|---:|"]
    out += [
        f"| {p.system} | {p.position} | {_f(p.mean_label, 2)} | {p.n} | {p.n_cant_judge} |"
        for p in r.position_bias
    ]
    a = r.agreement
    out += ["", "## Agreement (Krippendorff's alpha, ordinal)", ""]
    alpha = "undefined" if a.alpha is None else f"{a.alpha:.3f} {_ci(a.ci_low, a.ci_high)}"
    out += [f"alpha = {alpha}: {a.message}"]
    at = r.attention
    out += ["", "## Attention checks", "", f"{at.n_failed} of {at.n_checks} checks failed"]
    if at.failed_participants:
        out[-1] += " (participants: " + ", ".join(at.failed_participants) + ")"
    if r.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in r.notes]
    return "\n".join(out) + "\n"
