"""Pure-Python analysis of user-study judgements (no Django imports).

Input: typed records (:mod:`.records`, built from the database by :mod:`studyapp.records`).
Modules: :mod:`.metrics` (per-request P@k, nDCG@k, RR on condensed lists),
:mod:`.stats` (bootstrap CIs, Wilcoxon, sign test), :mod:`.agreement` (Krippendorff's alpha),
:mod:`.position` (position-bias table), :mod:`.preference` ("which list is better?" shares and
tests), :mod:`.balance` (counterbalancing achieved), :mod:`.report` (end-to-end report) and
:mod:`.plots` (inline SVG charts). Modes and scales come from :mod:`studyapp.design`.
"""

from __future__ import annotations

from .agreement import AgreementResult, krippendorff_alpha
from .metrics import RequestMetrics, request_metrics
from .records import Credit, JudgementRecord, ParticipantRecord, PreferenceRecord
from .report import StudyReport, build_report, report_to_dict, report_to_text

__all__ = [
    "AgreementResult",
    "Credit",
    "JudgementRecord",
    "ParticipantRecord",
    "PreferenceRecord",
    "RequestMetrics",
    "StudyReport",
    "build_report",
    "krippendorff_alpha",
    "report_to_dict",
    "report_to_text",
    "request_metrics",
]
