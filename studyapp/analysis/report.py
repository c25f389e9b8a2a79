"""End-to-end study report from typed judgement records (no Django; :mod:`studyapp.records`
builds the records from the database).

Each :class:`~.records.JudgementRecord` is one judgement of one displayed slot; its ``credits``
list the systems the slot counts for, with their ranks (side by side and interleaved: the
list's or team's system; pooled: every system that ranked the item in its top k; attention
checks: none). Per-system metrics read the credits; interleaving reads each slot's ``team``
and ``displayed_position``; counts and agreement read one record per judgement.

The unit of analysis is the request, ``(participant_id, request_id)``: metrics are computed
per request and system (:mod:`.metrics`), averaged with bootstrap CIs, and compared pairwise
on requests where both systems have a value (:mod:`.stats`). List preferences ("which list
is better?") are analysed by :mod:`.preference`; counterbalancing by :mod:`.balance`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from studyapp.design import Mode, Scale
from studyapp.presentation import Slot, interleaving_outcome, pairwise_preference

from .agreement import AgreementResult, krippendorff_alpha
from .balance import ConditionBalance
from .metrics import RequestMetrics, ranked_labels, request_metrics
from .position import PositionRow, position_bias
from .preference import PreferenceSummary, preference_summary
from .records import JudgementRecord, PreferenceRecord
from .stats import bootstrap_mean_ci, holm, paired_bootstrap_ci, paired_test, sign_test

METRICS = ("precision", "ndcg", "mrr")


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
    mode: Mode
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
    preferences: PreferenceSummary | None = None  # None when the study does not ask
    balance: list[ConditionBalance] = field(default_factory=list)  # side by side only


Unit = tuple[str, str]


def _per_request(
    records: list[JudgementRecord], scale: Scale, k: int
) -> dict[str, dict[Unit, RequestMetrics]]:
    grouped: dict[str, dict[Unit, list[tuple[int, int | None]]]] = {}
    for r in records:
        scale.normalise(r.label)  # validate early: raises on out-of-scale labels
        for credit in r.credits:
            if credit.rank is None:
                continue  # shown but not ranked by this system
            grouped.setdefault(credit.system, {}).setdefault(r.unit, []).append((credit.rank, r.label))
    return {
        s: {u: request_metrics(ranked_labels(pairs, k), scale, k) for u, pairs in units.items()}
        for s, units in grouped.items()
    }


def _value(m: RequestMetrics, metric: str) -> float | None:
    return m.rr if metric == "mrr" else getattr(m, metric)


def _interleaving(
    records: list[JudgementRecord], scale: Scale, systems: list[str]
) -> list[InterleavingSummary]:
    # Each record is one shown slot, so the interleaved list is the request's records as shown.
    slots: dict[Unit, list[Slot]] = {}
    labels: dict[Unit, dict[str, int | None]] = {}
    for r in records:
        slots.setdefault(r.unit, []).append(Slot(r.item_id, r.displayed_position, team=r.team))
        labels.setdefault(r.unit, {})[r.item_id] = r.label
    credit = {u: interleaving_outcome(s, labels[u], scale.relevant_threshold) for u, s in slots.items()}
    out = []
    for a, b in itertools.combinations(systems, 2):
        outcomes = [pairwise_preference(c, a, b) for c in credit.values() if a in c and b in c]
        w, t, lo = outcomes.count("win"), outcomes.count("tie"), outcomes.count("loss")
        res = sign_test(w, lo, t)
        out.append(InterleavingSummary(a, b, w, t, lo, res.p_value, res.note))
    return out


def build_report(
    judgements: Iterable[JudgementRecord],
    scale: Scale,
    k: int,
    mode: Mode | str,
    seed: int = 0,
    n_resamples: int = 10000,
    agreement_resamples: int = 1000,
    preferences: Iterable[PreferenceRecord] | None = None,
    balance: list[ConditionBalance] | None = None,
) -> StudyReport:
    """Build the full study report from the judgements the study accepted (see the module docstring)."""
    mode = Mode(mode)  # ValueError for an unknown mode
    records = list(judgements)
    practice = [r for r in records if r.is_practice]
    checks = [r for r in records if r.is_attention_check and not r.is_practice]
    rows = [r for r in records if not r.is_practice and not r.is_attention_check]

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
    if mode == Mode.INTERLEAVED:
        interleaving = _interleaving(rows, scale, sorted({r.team for r in rows if r.team is not None}))
        notes.append(
            "Interleaving: the win/tie/loss sign test is the primary outcome; per-system metrics use only "
            "the items each system ranked that were shown, so they are descriptive."
        )
    if mode == Mode.POOLED:
        notes.append(
            "Pooling: an item returned by several systems was shown once and its label credited to each."
        )
    if len(systems) > 2:
        notes.append("p (Holm) adjusts each metric's pairwise Wilcoxon p-values for multiple comparisons.")

    positions = position_bias(
        (credit.system, r.displayed_position, scale.normalise(r.label)) for r in rows for credit in r.credits
    )
    agreement = krippendorff_alpha(
        ((r.agreement_unit, str(r.participant_id), r.label) for r in rows),
        level="ordinal",
        value_domain=list(range(scale.min, scale.max + 1)),
        n_resamples=agreement_resamples,
        seed=seed,
    )
    failed = [r for r in checks if scale.is_relevant(r.label)]
    attention = AttentionSummary(len(checks), len(failed), sorted({str(r.participant_id) for r in failed}))

    return StudyReport(
        mode=mode,
        k=k,
        scale=scale,
        seed=seed,
        n_participants=len({str(r.participant_id) for r in rows}),
        n_requests=len({r.unit for r in rows}),
        # One record per judgement: an item shown in both side-by-side lists is two judgements.
        n_judgements=len(rows),
        n_cant_judge=sum(r.label is None for r in rows),
        n_excluded_practice=len(practice),
        n_excluded_attention=len(checks),
        systems=summaries,
        comparisons=comparisons,
        interleaving=interleaving,
        position_bias=positions,
        agreement=agreement,
        attention=attention,
        notes=notes,
        preferences=None if preferences is None else preference_summary(preferences),
        balance=balance or [],
    )


def _clean(obj: Any) -> Any:
    # JSON has no NaN/inf; tuples become lists via json anyway.
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Enum):
        return obj.value
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


def _preference_text(p: PreferenceSummary) -> list[str]:
    out = [
        "",
        f"## Which list is better ({p.n_answers} answers, {p.n_no_difference} 'no difference')",
        "",
        "| System | answers offering it | chosen | share [95% Wilson CI] |",
        "|---|---:|---:|---|",
    ]
    out += [
        f"| {s.system} | {s.n_answers} | {s.n_preferred} | {_f(s.share)} {_ci(s.ci_low, s.ci_high)} |"
        for s in p.shares
    ]
    if p.comparisons:
        out += [
            "",
            "| A | B | A chosen | B chosen | no preference | p (sign test) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {c.system_a} | {c.system_b} | {c.a_preferred} | {c.b_preferred} | {c.no_preference} | {_p(c.p_value)} |"
            for c in p.comparisons
        ]
    return out


def report_to_text(report: StudyReport) -> str:
    """Markdown summary for the ``study_report`` management command."""
    r, sc = report, report.scale
    out = [
        "# Study report",
        "",
        f"Mode: {r.mode}; k = {r.k}; scale {sc.min}-{sc.max} (relevant >= {sc.relevant_threshold}); seed {r.seed}",
        f"Participants: {r.n_participants}; requests: {r.n_requests}; judgements: {r.n_judgements} "
        f"(can't judge: {r.n_cant_judge}); excluded judgements: practice {r.n_excluded_practice}, "
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
    if r.preferences is not None:
        out += _preference_text(r.preferences)
    if r.balance:
        out += [
            "",
            "## Counterbalancing achieved (side by side; conditions assigned when the tasks start)",
            "",
        ]
        out += [
            "| Condition | order on request 1 | started | finished | screened out |",
            "|---:|---|---:|---:|---:|",
        ]
        out += [
            f"| {b.condition} | {b.first_request_order} | {b.n_started} | {b.n_finished} | {b.n_screened_out} |"
            for b in r.balance
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
