"""Study charts drawn on the server with matplotlib (Agg), as inline SVG or downloadable PNG/SVG.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure`, or ``None`` when there
is nothing to draw yet (the page then explains why). Figures are built with the object API
(``Figure`` + Agg canvas), never ``pyplot``, so concurrent requests share no global state.
Legends sit below the axes with full system names; ``bbox_inches="tight"`` keeps them whole.
Colours are the Okabe & Ito (2008) colour-blind-safe palette, and markers differ per system
so the charts also read in greyscale.
"""

from __future__ import annotations

import io
import re
import statistics
from collections.abc import Sequence
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # no display on servers; set before any backend is touched

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .report import METRICS, StudyReport, metric_label  # noqa: E402

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # keep text as text: selectable, searchable, smaller
    "svg.hashsalt": "whisperlite",  # stable ids, so the same data gives the same file
    # System names are researchers' free text: "$" must be a dollar sign, never mathtext (which
    # renders "a $x^2$ b" as maths and raises on "$\\foo$", a 500 on the analysis page).
    "text.parse_math": False,
}


def _label(text: str) -> str:
    """A legend label that is always shown: matplotlib leaves out labels starting with "_"
    (its marker for "no legend entry"), so such a system name gets a zero-width space first."""
    return "\u200b" + text if text.startswith("_") else text


def _figure(width: float = 7.0, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend_below(fig: Figure, n: int) -> None:
    # "outside" legends are laid out by the constrained layout engine: never over the axis labels.
    fig.legend(loc="outside lower center", ncols=min(n, 3), frameon=False)


def metric_bars_figure(report: StudyReport) -> Figure | None:
    """Grouped bars: one group per metric, one bar per system, whiskers = 95% bootstrap CI."""
    systems = [s for s in report.systems if any(s.metrics[m].mean is not None for m in METRICS)]
    if not systems:
        return None
    with matplotlib.rc_context(STYLE):
        fig = _figure()
        ax = fig.add_subplot()
        width = 0.8 / len(systems)
        for i, s in enumerate(systems):
            xs, means, lower, upper = [], [], [], []
            for g, metric in enumerate(METRICS):
                m = s.metrics[metric]
                if m.mean is None:
                    continue
                xs.append(g - 0.4 + width * (i + 0.5))
                means.append(m.mean)
                lower.append(m.mean - (m.ci_low if m.ci_low is not None else m.mean))
                upper.append((m.ci_high if m.ci_high is not None else m.mean) - m.mean)
            ax.bar(
                xs, means, width * 0.9, yerr=[lower, upper], capsize=3, color=PALETTE[i % len(PALETTE)],
                label=_label(f"{s.system} (n = {s.n_requests} requests)"), edgecolor="black", linewidth=0.5,
            )  # fmt: skip
        ax.set_xticks(range(len(METRICS)), [metric_label(m, report.k) for m in METRICS])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("mean per request (0 to 1)")
        ax.set_xlabel("metric (error bars: 95% bootstrap confidence interval)")
        ax.set_title(f"Effectiveness per system, k = {report.k}")
        _legend_below(fig, len(systems))
    return fig


def position_bias_figure(report: StudyReport) -> Figure | None:
    """Mean label by displayed position, one line per system: does position drive the ratings?"""
    points = [p for p in report.position_bias if p.mean_label is not None]
    if not points:
        return None
    names = sorted({p.system for p in points})
    with matplotlib.rc_context(STYLE):
        fig = _figure()
        ax = fig.add_subplot()
        for i, name in enumerate(names):
            pts = sorted((p for p in points if p.system == name), key=lambda p: p.position)
            ax.plot(
                [p.position for p in pts], [p.mean_label for p in pts], marker=MARKERS[i % len(MARKERS)],
                color=PALETTE[i % len(PALETTE)], label=_label(f"{name} (n = {sum(p.n for p in pts)} labels)"),
            )  # fmt: skip
        ax.set_xticks(sorted({p.position for p in points}))
        ax.set_ylim(0, report.scale.max - report.scale.min)
        ax.set_xlabel("displayed position (1 = top of the list)")
        ax.set_ylabel(f"mean label (0 to {report.scale.max - report.scale.min})")
        ax.set_title("Mean relevance label by displayed position")
        _legend_below(fig, len(names))
    return fig


def progress_figure(joined: Sequence[datetime], finished: Sequence[datetime]) -> Figure | None:
    """Cumulative participants who joined and who finished, over time."""
    if not joined:
        return None
    with matplotlib.rc_context(STYLE):
        fig = _figure(height=3.2)
        ax = fig.add_subplot()
        ax.step(list(joined), range(1, len(joined) + 1), where="post", color=PALETTE[0], label="joined")
        if finished:
            ax.step(
                list(finished), range(1, len(finished) + 1), where="post", color=PALETTE[2],
                linestyle="--", label="finished",
            )  # fmt: skip
        ax.set_ylim(0, len(joined) + 1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("participants (cumulative)")
        ax.set_title("Progress over time")
        fig.autofmt_xdate()
        _legend_below(fig, 2)
    return fig


def minutes_figure(minutes: Sequence[float]) -> Figure | None:
    """Histogram of the minutes finished participants took, with the median marked."""
    if not minutes:
        return None
    values = sorted(minutes)
    median = statistics.median(values)
    with matplotlib.rc_context(STYLE):
        fig = _figure(height=3.2)
        ax = fig.add_subplot()
        ax.hist(values, bins=min(20, max(1, len(values))), color=PALETTE[4], edgecolor="black", linewidth=0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole participants
        ax.axvline(median, color=PALETTE[5], linestyle="--", label=f"median {median:.1f} min")
        ax.set_xlabel("minutes from consent to finish")
        ax.set_ylabel("participants")
        ax.set_title(f"Time per participant (n = {len(values)} finished)")
        _legend_below(fig, 1)
    return fig


_ID = re.compile(r'(id="|url\(#|href="#)')


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as an ``<svg>`` element for inline use; ids get ``prefix`` so several can share a page."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return _ID.sub(lambda m: f"{m.group(1)}{prefix}-", text)


def to_png(fig: Figure, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def to_svg_file(fig: Figure) -> bytes:
    """A standalone SVG document (with the XML header), for download."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()
