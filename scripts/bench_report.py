"""One way to report a benchmark figure: value, number of cases, interval, and its limit.

Every benchmark script prints `Figure` rows through `print_figures`, so one command
(`scripts/bench_study.py`) can collect the sections of several scripts into one table, and
`--json` gives the same rows to a machine. Torch-free and Django-free on purpose: importing it
costs nothing in any process.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Comparison = Literal["<=", ">="]


@dataclass
class Figure:
    """One measured figure and, if it has one, the limit it is held to."""

    section: str
    name: str
    value: float
    unit: str = ""
    n: int | None = None
    low: float | None = None  # 95 % interval, when the figure has one
    high: float | None = None
    limit: float | None = None
    comparison: Comparison = "<="
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        if self.limit is None or math.isnan(self.value):
            return None
        return self.value <= self.limit if self.comparison == "<=" else self.value >= self.limit

    def verdict(self) -> str:
        return {None: "", True: "ok", False: "OVER LIMIT" if self.comparison == "<=" else "UNDER LIMIT"}[
            self.ok
        ]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def percentile_ci(values: Sequence[float], q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI for a percentile from order statistics (binomial, normal approx.)."""
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    ordered = sorted(values)
    p = q / 100
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(n * p * (1 - p))
    lo = max(0, math.floor(n * p - half) - 1)
    hi = min(n - 1, math.ceil(n * p + half))
    return ordered[lo], ordered[hi]


def latency_figures(
    section: str,
    name: str,
    values_ms: Sequence[float],
    *,
    p50_limit: float | None = None,
    p95_limit: float | None = None,
    p99_limit: float | None = None,
    note: str = "",
    with_p99: bool = False,
) -> list[Figure]:
    """p50 and p95 (and p99 when it has a limit or ``with_p99``) of latencies in ms, each with its 95 % CI."""
    figures = []
    for q, limit in ((50, p50_limit), (95, p95_limit), (99, p99_limit)):
        if q == 99 and limit is None and not with_p99:
            continue
        low, high = percentile_ci(values_ms, q)
        figures.append(
            Figure(
                section,
                f"{name} p{q}",
                percentile(values_ms, q),
                "ms",
                len(values_ms),
                low,
                high,
                limit,
                "<=",
                note,
            )
        )
    return figures


def host_label() -> str:
    """'quiet' or 'shared host' from the 1-minute load average against the core count."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "unknown load"
    cores = os.cpu_count() or 1
    kind = "quiet" if load < 0.5 * cores else "shared host"
    return f"{kind} (load average {load:.1f} on {cores} cores)"


#: The host before this process measured anything: the load average at the end counts the
#: benchmark's own servers and clients, so "shared" at the end alone does not mean others ran.
AT_START = host_label()


def machine_line() -> str:
    return (
        f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"at the start: {AT_START}; now: {host_label()}"
    )


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"


def format_figure(figure: Figure) -> str:
    value = f"{_fmt(figure.value)} {figure.unit}".strip()
    if figure.low is not None and figure.high is not None and not math.isnan(figure.low):
        value += f" [{_fmt(figure.low)}, {_fmt(figure.high)}]"
    n = f"n={figure.n}" if figure.n is not None else ""
    limit = (
        f"{figure.comparison} {_fmt(figure.limit)} {figure.unit}".strip() if figure.limit is not None else ""
    )
    line = f"  {figure.name:<46} {value:<30} {n:<9} {limit:<16} {figure.verdict()}"
    return line + (f"  ({figure.note})" if figure.note else "")


def print_figures(figures: Sequence[Figure], *, title: str = "") -> None:
    """Print figures grouped by section, each beside its limit and verdict."""
    if title:
        print(f"\n{title}\n{machine_line()}")
    section = None
    for figure in figures:
        if figure.section != section:
            section = figure.section
            print(f"\n[{section}]")
        print(format_figure(figure))
    failed = [f for f in figures if f.ok is False]
    checked = [f for f in figures if f.ok is not None]
    print(f"\n{len(checked) - len(failed)} of {len(checked)} figures within their limits")


def dump_json(figures: Sequence[Figure], path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"machine": machine_line(), "figures": [asdict(f) for f in figures]}, out, indent=1)
