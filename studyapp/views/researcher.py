"""Researcher pages: study progress, analysis report and CSV exports. Staff login required."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from studyapp import exports, reporting, services
from studyapp.models import Judgement, Participant, Request, Study


def study_progress(study: Study) -> dict:
    """Counts a researcher watches while a study runs: real participants only, test runs apart."""
    counted = Participant.objects.filter(study=study).counted()
    phases = dict(counted.values_list("phase").annotate(n=Count("id")))
    origins = dict(Participant.objects.filter(study=study).values_list("origin").annotate(n=Count("id")))
    requests = Request.objects.filter(participant__in=counted)
    judgements = Judgement.objects.filter(participant__in=counted)
    return {
        "participants": sum(phases.values()),
        "pilots": origins.get(Participant.Origin.PILOT, 0),
        "simulated": origins.get(Participant.Origin.SIMULATED, 0),
        "test_runs": sum(n for origin, n in origins.items() if origin != Participant.Origin.REAL),
        "phases": [(label, phases.get(value, 0)) for value, label in Participant.Phase.choices],
        "requests": requests.count(),
        "requests_failed": requests.filter(status=Request.Status.FAILED).count(),
        "requests_waiting": requests.filter(
            status__in=[Request.Status.PENDING, Request.Status.RUNNING]
        ).count(),
        "judgements": judgements.count(),
        "too_fast": judgements.filter(too_fast=True).count(),
        "attention_failed": requests.filter(attention_check_failed=True).count(),
    }


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    real = Q(participants__origin=Participant.Origin.REAL)
    studies = Study.objects.annotate(
        n_participants=Count("participants", filter=real, distinct=True),
        n_done=Count(
            "participants", filter=real & Q(participants__phase=Participant.Phase.DONE), distinct=True
        ),
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


@staff_member_required
@require_POST
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Preview as participant": a pilot participant runs the real flow, live systems included.

    Works on drafts too, so a design can be tried before it opens. The pilot never locks the
    design and is left out of the analysis; "Delete pilot data" removes it.
    """
    study = get_object_or_404(Study, pk=pk)
    pilot = services.do_join_test_run(
        study, Participant.Origin.PILOT, request.META.get("HTTP_USER_AGENT", "")
    )
    return redirect("participant", pilot.token)


@staff_member_required
@require_POST
def delete_test_runs(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete every pilot and simulated participant of the study (real data is untouched)."""
    study = get_object_or_404(Study, pk=pk)
    deleted = services.delete_test_runs(study)
    messages.success(request, f"Deleted {deleted} pilot/simulated participant{'s' if deleted != 1 else ''}.")
    return redirect(reverse("researcher_study", args=[study.pk]))
