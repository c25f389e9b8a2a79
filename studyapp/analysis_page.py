"""The researcher's analysis page and its downloadable report: one data structure for both.

:func:`analysis_page` gathers the study report (:mod:`studyapp.reporting`), the progress
counts, the per-participant quality table and the figures for one participant group, so
the page, the downloaded HTML report and the figure downloads always show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure

from studyapp import monitoring, reporting
from studyapp.analysis import plots
from studyapp.analysis.report import METRICS, StudyReport, metric_label
from studyapp.models import Participant, Study

FIGURES = {
    "metrics": "Effectiveness per system",
    "positions": "Mean label by displayed position",
    "progress": "Progress over time",
    "minutes": "Time per participant",
}
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
ORIGINS = {
    Participant.Origin.REAL.value: "Participants",
    Participant.Origin.PILOT.value: "Pilot runs",
    Participant.Origin.SIMULATED.value: "Simulated participants",
}


@dataclass
class AnalysisPage:
    """Everything the analysis page shows for one participant group."""

    study: Study
    origin: str
    report: StudyReport
    progress: monitoring.Progress
    quality: list[monitoring.ParticipantQuality]
    minutes: dict[str, float | int] | None
    timeline: monitoring.Timeline
    metric_headers: list[str] = field(default_factory=list)
    system_rows: list[dict[str, Any]] = field(default_factory=list)
    comparison_rows: list[dict[str, Any]] = field(default_factory=list)
    empty_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def origin_label(self) -> str:
        return ORIGINS[self.origin]

    @property
    def flagged(self) -> list[monitoring.ParticipantQuality]:
        return [q for q in self.quality if q.flags]

    def figure(self, name: str) -> Figure | None:
        """Draw one of :data:`FIGURES`, or None when its data does not exist yet."""
        if name == "metrics":
            return plots.metric_bars_figure(self.report)
        if name == "positions":
            return plots.position_bias_figure(self.report)
        if name == "progress":
            return plots.progress_figure(self.timeline.joined, self.timeline.finished)
        if name == "minutes":
            return plots.minutes_figure([q.minutes for q in self.quality if q.minutes is not None])
        raise KeyError(name)

    def inline_figures(self) -> dict[str, str]:
        """{figure name: inline SVG} for the figures that have data."""
        out = {}
        for name in FIGURES:
            fig = self.figure(name)
            if fig is not None:
                out[name] = plots.to_svg(fig, prefix=f"fig-{name}")
        return out


def _explanations(page: AnalysisPage) -> dict[str, str]:
    """Why a section is empty, in words a researcher can act on."""
    reasons = {}
    who = "participants" if page.origin == Participant.Origin.REAL else f"{page.origin} participants"
    if page.progress.participants == 0:
        reasons["progress"] = (
            f"No {who} yet. Share the participant link, preview the study as a pilot, or run "
            "`manage.py simulate_participants` to see a complete analysis before launch."
        )
    if page.report.n_requests == 0:
        reasons["metrics"] = (
            f"No finished requests from {who} yet. A request is analysed once its participant has rated "
            "every item and pressed 'Next'; unfinished requests and screened-out participants are left out."
        )
        reasons["positions"] = reasons["metrics"]
    if not any(q.minutes is not None for q in page.quality):
        reasons["minutes"] = f"No {who} have finished the whole study yet."
    if page.report.comparisons and all(c.n_pairs < 2 for c in page.report.comparisons):
        reasons["comparisons"] = (
            "Paired comparisons need at least two requests where both systems have a value; "
            "confidence intervals and p-values appear as requests come in."
        )
    preferences = page.report.preferences
    if preferences is not None and preferences.n_answers == 0:
        reasons["preferences"] = (
            f'No answers to "which list is better?" from {who} yet. It is asked after each side-by-side '
            "request; an answer counts once its request is finished."
        )
    if page.report.balance and not any(b.n_started for b in page.report.balance):
        reasons["balance"] = (
            f"No {who} have started the tasks yet; a condition is assigned when the tasks start."
        )
    return reasons


def analysis_page(
    study: Study, origin: str = Participant.Origin.REAL, n_resamples: int = reporting.N_RESAMPLES
) -> AnalysisPage:
    """Build the page data for one participant group (real by default, or pilot/simulated)."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown participant group {origin!r}")
    report = reporting.build_study_report(study, n_resamples=n_resamples, origin=origin)
    quality = monitoring.participant_quality(study, origin)
    page = AnalysisPage(
        study=study,
        origin=origin,
        report=report,
        progress=monitoring.study_progress(study, origin),
        quality=quality,
        minutes=monitoring.minutes_summary(quality),
        timeline=monitoring.timeline(study, origin),
        metric_headers=[metric_label(m, report.k) for m in METRICS],
    )
    page.system_rows = [
        {"system": s.system, "n_requests": s.n_requests, "cells": [s.metrics[m] for m in METRICS]}
        for s in report.systems
    ]
    page.comparison_rows = [{"metric": metric_label(c.metric, report.k), "c": c} for c in report.comparisons]
    page.empty_reasons = _explanations(page)
    return page
