"""Researcher pages: study progress, analysis report and CSV exports. Staff login required."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

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
    fig = analysis_page.analysis_page(study, group).figure(name)  # the page's resamples
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


def _require_perm(request: HttpRequest, perm: str) -> None:
    """Staff status opens the researcher pages; changing data also needs the model permission."""
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"needs the {perm} permission")


@staff_member_required
@require_http_methods(["GET", "POST"])
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Preview as participant": a pilot participant runs the real flow, live systems included.

    Works on drafts too, so a design can be tried before it opens. The pilot never locks the
    design and is left out of the analysis; "Delete pilot data" removes it. A GET (the admin's
    link) only shows the button that starts one, so no link or prefetch creates a pilot.
    """
    _require_perm(request, "studyapp.change_study")
    study = get_object_or_404(Study, pk=pk)
    if request.method == "GET":
        return render(
            request,
            "researcher/confirm.html",
            {
                "study": study,
                "title": "Preview as participant",
                "question": "Start a pilot run of this study in a new tab? It is marked as a pilot, "
                "left out of the analysis and never locks the design.",
                "action": reverse("researcher_preview", args=[study.pk]),
                "button": "Start a pilot run",
                "target": "_blank",
            },
        )
    pilot = services.do_join_test_run(
        study, Participant.Origin.PILOT, request.META.get("HTTP_USER_AGENT", "")
    )
    return redirect("participant", pilot.token)


@staff_member_required
@require_http_methods(["GET", "POST"])
def delete_test_runs(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete every pilot and simulated participant of the study (real data is untouched).

    Deleting is asked for once more: only a POST carrying ``confirm=yes`` (the confirmation
    page's button) deletes; anything else shows that page.
    """
    _require_perm(request, "studyapp.delete_participant")
    study = get_object_or_404(Study, pk=pk)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        pilots = study.participants.filter(origin=Participant.Origin.PILOT).count()
        simulated = study.participants.filter(origin=Participant.Origin.SIMULATED).count()
        return render(
            request,
            "researcher/confirm.html",
            {
                "study": study,
                "title": "Delete pilot and simulated data",
                "question": f"Delete {pilots} pilot and {simulated} simulated participant"
                f"{'s' if simulated != 1 else ''} of this study, with all their requests and ratings? "
                "Real participants' data is untouched. This cannot be undone.",
                "action": reverse("researcher_delete_test_runs", args=[study.pk]),
                "button": "Yes, delete pilot and simulated data",
                "confirm": "yes",
            },
        )
    deleted = services.delete_test_runs(study)
    messages.success(request, f"Deleted {deleted} pilot/simulated participant{'s' if deleted != 1 else ''}.")
    return redirect(reverse("researcher_study", args=[study.pk]))
