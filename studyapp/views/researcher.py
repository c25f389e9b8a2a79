"""Researcher pages: study progress, analysis report and CSV exports. Staff login required."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from studyapp import exports, reporting
from studyapp.models import Judgement, Participant, Request, Study


def study_progress(study: Study) -> dict:
    """Counts a researcher watches while a study runs."""
    phases = dict(Participant.objects.filter(study=study).values_list("phase").annotate(n=Count("id")))
    requests = Request.objects.filter(participant__study=study)
    return {
        "participants": sum(phases.values()),
        "phases": [(label, phases.get(value, 0)) for value, label in Participant.Phase.choices],
        "requests": requests.count(),
        "requests_failed": requests.filter(status=Request.Status.FAILED).count(),
        "requests_waiting": requests.filter(
            status__in=[Request.Status.PENDING, Request.Status.RUNNING]
        ).count(),
        "judgements": Judgement.objects.filter(participant__study=study).count(),
        "too_fast": Judgement.objects.filter(participant__study=study, too_fast=True).count(),
        "attention_failed": requests.filter(attention_check_failed=True).count(),
    }


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.annotate(
        n_participants=Count("participants", distinct=True),
        n_done=Count("participants", filter=Q(participants__phase=Participant.Phase.DONE), distinct=True),
    ).order_by("-created_at")
    return render(request, "researcher/dashboard.html", {"studies": studies})


@staff_member_required
@require_GET
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    context = {
        "study": study,
        "stats": study_progress(study),
        "link": request.build_absolute_uri(f"/s/{study.token}/"),
        "systems": study.systems.all(),
    }
    if request.GET.get("report", "1") != "0":
        context["report"] = reporting.study_report(study)
    return render(request, "researcher/study.html", context)


@staff_member_required
@require_GET
def export_csv(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    if kind not in exports.EXPORTS:
        raise Http404("unknown export")
    return exports.csv_response(get_object_or_404(Study, pk=pk), kind)
