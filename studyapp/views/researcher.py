"""Researcher pages: study progress, analysis report and CSV exports. Staff login required."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from studyapp import analysis_page, exports, services
from studyapp.analysis import plots
from studyapp.models import Participant, Study


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


def _group(request: HttpRequest) -> str:
    group = request.GET.get("group", Participant.Origin.REAL)
    if group not in analysis_page.ORIGINS:
        raise Http404("unknown participant group")
    return group


def _page_context(request: HttpRequest, study: Study, group: str) -> dict:
    page = analysis_page.analysis_page(study, group)
    return {
        "study": study,
        "page": page,
        "stats": page.progress,
        "figures": page.inline_figures(),
        "figure_titles": analysis_page.FIGURES,
        "groups": analysis_page.ORIGINS,
        "link": request.build_absolute_uri(f"/s/{study.token}/"),
        "systems": study.systems.all(),
        "generated_at": timezone.now(),
    }


@staff_member_required
@require_GET
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Progress, pilot tools, quality flags and the analysis of one participant group."""
    study = get_object_or_404(Study, pk=pk)
    return render(request, "researcher/study.html", _page_context(request, study, _group(request)))


@staff_member_required
@require_GET
def report_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The analysis as one self-contained HTML file (inline CSS and SVG figures), for archiving."""
    study = get_object_or_404(Study, pk=pk)
    group = _group(request)
    response = render(request, "researcher/report.html", _page_context(request, study, group))
    suffix = "" if group == Participant.Origin.REAL else f"-{group}"
    response["Content-Disposition"] = f'attachment; filename="{study.slug}{suffix}-report.html"'
    return response


@staff_member_required
@require_GET
def figure_download(request: HttpRequest, pk: int, name: str, fmt: str) -> HttpResponse:
    """One figure of the analysis as PNG or SVG; 404 while it has no data."""
    study = get_object_or_404(Study, pk=pk)
    if name not in analysis_page.FIGURES or fmt not in analysis_page.FORMATS:
        raise Http404("unknown figure")
    group = _group(request)
    fig = analysis_page.analysis_page(study, group, n_resamples=1000).figure(name)
    if fig is None:
        raise Http404("this figure has no data yet")
    body = plots.to_png(fig) if fmt == "png" else plots.to_svg_file(fig)
    response = HttpResponse(body, content_type=analysis_page.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{group}-{name}.{fmt}"'
    return response


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
