"""Server-drawn figures (matplotlib): nothing drawn without data, names and labels kept whole."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest

from studyapp.analysis import plots
from studyapp.analysis.records import Credit
from studyapp.analysis.report import build_report
from studyapp.design import GRADED4, Mode
from tests.studyapp.test_analysis_report import side_by_side_rows

LONG = "WhisperLite (demo checkpoint) <b>&</b> a name far longer than a legend box"


def report(rows=None):  # type: ignore[no-untyped-def]
    return build_report(
        rows if rows is not None else side_by_side_rows(),
        GRADED4,
        k=3,
        mode=Mode.SIDE_BY_SIDE,
        n_resamples=100,
    )


def test_no_figure_without_data() -> None:
    empty = report([])
    assert plots.metric_bars_figure(empty) is None
    assert plots.position_bias_figure(empty) is None
    assert plots.progress_figure([], []) is None
    assert plots.minutes_figure([]) is None


def test_metric_bars_keep_full_escaped_system_names_and_axis_labels() -> None:
    rows = [
        dataclasses.replace(r, credits=(Credit(LONG, r.credits[0].rank),))
        if r.credits and r.credits[0].system == "X"
        else r
        for r in side_by_side_rows()
    ]
    svg = plots.to_svg(plots.metric_bars_figure(report(rows)), prefix="m")
    assert svg.startswith("<svg")
    assert "WhisperLite (demo checkpoint) &lt;b&gt;&amp;&lt;/b&gt; a name far longer than a legend box" in svg
    assert "<b>" not in svg
    for text in ("P@3", "nDCG@3", "MRR", "mean per request (0 to 1)", "95% bootstrap confidence interval"):
        assert text in svg


def test_inline_svgs_get_distinct_ids_and_downloads_are_real_files() -> None:
    rep = report()
    a = plots.to_svg(plots.metric_bars_figure(rep), prefix="a")
    b = plots.to_svg(plots.position_bias_figure(rep), prefix="b")
    ids_a, ids_b = set(re.findall(r'id="([^"]+)"', a)), set(re.findall(r'id="([^"]+)"', b))
    assert ids_a and ids_b and not ids_a & ids_b
    assert all(i.startswith("a-") for i in ids_a)
    fig = plots.position_bias_figure(rep)
    assert plots.to_png(fig).startswith(b"\x89PNG")
    assert plots.to_svg_file(fig).startswith(b"<?xml")


def test_progress_and_minutes_figures_label_their_axes() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    joined = [start + timedelta(minutes=m) for m in (0, 5, 9)]
    svg = plots.to_svg(plots.progress_figure(joined, joined[:1]), prefix="p")
    assert "participants (cumulative)" in svg and "joined" in svg and "finished" in svg
    svg = plots.to_svg(plots.minutes_figure([4.0, 6.0, 11.0]), prefix="t")
    assert "median 6.0 min" in svg and "minutes from consent to finish" in svg


def _renamed(x: str, y: str) -> list:
    """The side-by-side rows with systems X and Y renamed."""
    names = {"X": x, "Y": y}
    return [
        dataclasses.replace(
            r, credits=tuple(dataclasses.replace(c, system=names[c.system]) for c in r.credits)
        )
        for r in side_by_side_rows()
    ]


@pytest.mark.parametrize(("x", "y"), [("BM25 $\\foo$", "_hidden"), ("a $x^2$ b", "_hidden")])
def test_system_names_with_dollars_or_a_leading_underscore_are_drawn_as_written(x: str, y: str) -> None:
    rep = report(_renamed(x, y))
    for fig in (plots.metric_bars_figure(rep), plots.position_bias_figure(rep)):
        assert plots.to_png(fig).startswith(b"\x89PNG")  # mathtext would raise on "$\foo$"
        svg = plots.to_svg(fig, prefix="n")
        assert f"{x} (n = " in svg  # the dollars are text, not maths
        legend = [t.get_text().lstrip("\u200b") for t in fig.legends[0].get_texts()]
        assert sorted(t.split(" (n = ")[0] for t in legend) == sorted([x, y])  # "_hidden" keeps its entry
