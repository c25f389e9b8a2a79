"""Pure-Python analysis of user-study judgements (no Django imports).

Modules: :mod:`.metrics` (per-request P@k, nDCG@k, RR on condensed lists),
:mod:`.stats` (bootstrap CIs, Wilcoxon, sign test), :mod:`.agreement` (Krippendorff's alpha),
:mod:`.position` (position-bias table), :mod:`.report` (end-to-end report) and
:mod:`.plots` (inline SVG charts).
"""

from __future__ import annotations

from .agreement import AgreementResult, krippendorff_alpha
from .metrics import BINARY, GRADED_0_3, LIKERT_1_5, RequestMetrics, Scale, request_metrics
from .report import StudyReport, build_report, report_to_dict, report_to_text

__all__ = [
    "BINARY",
    "GRADED_0_3",
    "LIKERT_1_5",
    "AgreementResult",
    "RequestMetrics",
    "Scale",
    "StudyReport",
    "build_report",
    "krippendorff_alpha",
    "report_to_dict",
    "report_to_text",
    "request_metrics",
]
