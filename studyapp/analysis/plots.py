"""Dependency-free inline SVG charts for the study report page.

Colours are the Okabe & Ito (2008) colour-blind-safe palette; every chart carries
``role="img"``, an ``aria-label``, a ``<title>`` and a ``<desc>`` listing the numbers, so
screen-reader users get the data, not just "image". All text is passed through
:func:`html.escape` because system names come from configuration/user input.
"""

from __future__ import annotations

from html import escape

from .report import METRICS, StudyReport, metric_label

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FONT = 'font-family="sans-serif" font-size="12"'


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    t = escape(title)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{t}">',
            f"<title>{t}</title>",
            f"<desc>{escape(desc)}</desc>",
            *body,
            "</svg>",
        ]
    )


def _legend(names: list[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        yy = y + i * 18
        out.append(f'<rect x="{x:.1f}" y="{yy - 10:.1f}" width="12" height="12" fill="{_colour(i)}"/>')
        out.append(f'<text x="{x + 18:.1f}" y="{yy:.1f}" {FONT}>{escape(name)}</text>')
    return out


def _y_axis(left: float, top: float, plot_h: float, ymax: float, ticks: int, label: str) -> list[str]:
    out = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>']
    for i in range(ticks + 1):
        v = ymax * i / ticks
        y = top + plot_h - plot_h * i / ticks
        out.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#333"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{v:.2g}</text>')
    out.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" transform="rotate(-90 14 {top + plot_h / 2:.1f})" '
        f'text-anchor="middle" {FONT}>{escape(label)}</text>'
    )
    return out


def metric_bars_svg(report: StudyReport, width: int = 640, height: int = 320) -> str:
    """Grouped bars: one group per metric, one bar per system, whiskers = 95% bootstrap CI."""
    names = [s.system for s in report.systems]
    left, top, bottom, legend_w = 50.0, 20.0, 40.0, 140.0
    plot_w, plot_h = width - left - legend_w - 10, height - top - bottom
    group_w = plot_w / len(METRICS)
    bar_w = group_w * 0.8 / max(len(names), 1)
    body = _y_axis(left, top, plot_h, 1.0, 5, "score")
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>'
    )
    desc = []

    def y_of(v: float) -> float:
        return top + plot_h * (1.0 - max(0.0, min(1.0, v)))

    for g, metric in enumerate(METRICS):
        label = metric_label(metric, report.k)
        gx = left + g * group_w + group_w * 0.1
        body.append(
            f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{top + plot_h + 18:.1f}" text-anchor="middle" '
            f"{FONT}>{escape(label)}</text>"
        )
        for i, s in enumerate(report.systems):
            m = s.metrics[metric]
            if m.mean is None:
                desc.append(f"{s.system} {label}: no data")
                continue
            x = gx + i * bar_w
            tip = f"{s.system} {label}: {m.mean:.3f}"
            if m.ci_low is not None and m.ci_high is not None:
                tip += f" (95% CI {m.ci_low:.3f} to {m.ci_high:.3f})"
            desc.append(tip)
            body.append(
                f'<rect x="{x:.1f}" y="{y_of(m.mean):.1f}" width="{bar_w * 0.9:.1f}" '
                f'height="{top + plot_h - y_of(m.mean):.1f}" fill="{_colour(i)}"><title>{escape(tip)}</title></rect>'
            )
            if m.ci_low is not None and m.ci_high is not None:
                cx = x + bar_w * 0.45
                y1, y2 = y_of(m.ci_low), y_of(m.ci_high)
                body += [
                    f'<line x1="{cx:.1f}" y1="{y1:.1f}" x2="{cx:.1f}" y2="{y2:.1f}" stroke="#000"/>',
                    f'<line x1="{cx - 4:.1f}" y1="{y1:.1f}" x2="{cx + 4:.1f}" y2="{y1:.1f}" stroke="#000"/>',
                    f'<line x1="{cx - 4:.1f}" y1="{y2:.1f}" x2="{cx + 4:.1f}" y2="{y2:.1f}" stroke="#000"/>',
                ]
    body += _legend(names, width - legend_w, top + 10)
    title = f"Mean metrics per system with 95% confidence intervals (k = {report.k})"
    return _svg(width, height, title, "; ".join(desc) or "no data", body)


def position_bias_svg(report: StudyReport, width: int = 640, height: int = 320) -> str:
    """Mean (normalised) label by displayed position, one line with markers per system."""
    names = sorted({p.system for p in report.position_bias})
    points = [p for p in report.position_bias if p.mean_label is not None]
    max_pos = max((p.position for p in points), default=1)
    ymax = float(report.scale.max - report.scale.min)
    left, top, bottom, legend_w = 50.0, 20.0, 40.0, 140.0
    plot_w, plot_h = width - left - legend_w - 10, height - top - bottom
    body = _y_axis(left, top, plot_h, ymax, int(ymax) if ymax <= 10 else 5, "mean label")
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>'
    )

    def x_of(pos: int) -> float:
        return left + plot_w * ((pos - 0.5) / max_pos)

    def y_of(v: float) -> float:
        return top + plot_h * (1.0 - v / ymax)

    for pos in range(1, max_pos + 1):
        body.append(
            f'<text x="{x_of(pos):.1f}" y="{top + plot_h + 16:.1f}" text-anchor="middle" {FONT}>{pos}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4:.1f}" text-anchor="middle" {FONT}>displayed position</text>'
    )
    desc = []
    for i, name in enumerate(names):
        pts = sorted((p for p in points if p.system == name), key=lambda p: p.position)
        if not pts:
            continue
        coords = " ".join(f"{x_of(p.position):.1f},{y_of(p.mean_label):.1f}" for p in pts)  # type: ignore[arg-type]
        body.append(f'<polyline points="{coords}" fill="none" stroke="{_colour(i)}" stroke-width="2"/>')
        for p in pts:
            tip = f"{name} position {p.position}: mean {p.mean_label:.2f} (n = {p.n})"
            body.append(
                f'<circle cx="{x_of(p.position):.1f}" cy="{y_of(p.mean_label):.1f}" r="4" '  # type: ignore[arg-type]
                f'fill="{_colour(i)}"><title>{escape(tip)}</title></circle>'
            )
            desc.append(tip)
    body += _legend(names, width - legend_w, top + 10)
    title = "Mean relevance label by displayed position, per system"
    return _svg(width, height, title, "; ".join(desc) or "no data", body)
