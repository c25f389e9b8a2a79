"""Participant pages. The personal token in the URL is the only credential: every query is
scoped to that participant, so nobody can reach another participant's requests or lists.

Each page works without JavaScript (plain POST + redirect); with htmx, rating buttons and the
"preparing" state update in place.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from studyapp import polling, rating_write, services
from studyapp.launch import estimate_duration
from studyapp.models import Participant, Request, Study
from studyapp.services import StudyError

Phase = Participant.Phase
SESSION_KEY = "whisperlite_participants"  # {study token: participant token}, for resuming without a PID


def _participant(token: str) -> Participant:
    return get_object_or_404(Participant.objects.select_related("study__catalog"), token=token)


def _home(participant: Participant, anchor: str = "") -> HttpResponseRedirect:
    return redirect(reverse("participant", args=[participant.token]) + anchor)


def _error(request: HttpRequest, participant: Participant, exc: StudyError) -> HttpResponse:
    """A rejected action: a 4xx with the reason, as a fragment for htmx or the current page again.

    The htmx fragment goes to the page's alert region rather than replacing the control that
    was clicked, so a refused rating leaves the rating buttons in place.
    """
    if request.htmx:
        context = {"message": exc.message, "participant": participant, "study": participant.study}
        response = render(request, "study/_error.html", context, status=exc.status)
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    # Without htmx: the participant's current page again, with the reason beside the action and
    # the progress bar, rather than a bare error page they have to navigate back from.
    participant.refresh_from_db()
    return _render_phase(request, participant, {"error_message": exc.message}, status=exc.status)


@require_GET
def join(request: HttpRequest, study_token: str) -> HttpResponse:
    """A study link: create or resume the participant, then go to their personal page."""
    study = get_object_or_404(Study, token=study_token)
    external = {
        "external_id": request.GET.get(study.external_id_param, "") if study.external_id_param else "",
        "external_study_id": request.GET.get(study.external_study_param, "")
        if study.external_study_param
        else "",
        "external_session_id": request.GET.get(study.external_session_param, "")
        if study.external_session_param
        else "",
    }
    remembered = request.session.get(SESSION_KEY, {}).get(study.token)
    if remembered and not external["external_id"]:
        participant = Participant.objects.filter(token=remembered, study=study).first()
        if participant is not None:
            return _home(participant)
    try:
        participant = services.do_join_study(
            study, external, request.META.get("HTTP_USER_AGENT", ""), remembered_token=remembered
        )
    except StudyError as exc:
        return render(
            request, "study/closed.html", {"study": study, "message": exc.message}, status=exc.status
        )
    request.session[SESSION_KEY] = {**request.session.get(SESSION_KEY, {}), study.token: participant.token}
    return _home(participant)


@require_GET
def participant_page(request: HttpRequest, token: str) -> HttpResponse:
    """The participant's current step, whatever it is: reload-safe and resumable on any device."""
    return _render_phase(request, _participant(token))


def _render_phase(
    request: HttpRequest, participant: Participant, extra: dict | None = None, status: int = 200
) -> HttpResponse:
    study = participant.study
    context: dict = {
        "participant": participant,
        "study": study,
        "progress": _progress(participant),
        **(extra or {}),
    }
    phase = participant.phase
    if phase == Phase.CONSENT:
        context["duration"] = estimate_duration(study)
        template = "study/consent.html"
    elif phase == Phase.ONBOARDING:
        picked = set(participant.picks.values_list("item_id", flat=True))
        context.update(grid=services.onboarding_grid(participant), picked=picked)
        template = "study/onboarding.html"
    elif phase == Phase.INSTRUCTIONS:
        template = "study/instructions.html"
    elif phase in (Phase.PRACTICE, Phase.TASKS):
        context = _request_page_context(participant, context)
        template = "study/request.html"
    elif phase == Phase.QUESTIONNAIRE:
        context["items"] = study.questionnaire_items.all()
        template = "study/questionnaire.html"
    else:
        template = "study/finish.html"
    return render(request, template, context, status=status)


def _request_page_context(participant: Participant, context: dict) -> dict:
    number = services.current_request_number(participant)
    current = participant.requests.filter(number=number).first()
    context.update(number=number, current=current, max_chars=settings.WHISPERLITE_MAX_REQUEST_CHARS)
    if current is not None:
        context.update(_request_context(current))
    return context


def _progress(participant: Participant) -> dict:
    study = participant.study
    done = services.completed_requests(participant)
    return {
        "done": done,
        "total": study.requests_per_participant,
        "percent": int(100 * done / study.requests_per_participant),
    }


def _request_context(current: Request) -> dict:
    """Lists for a ready request, grouped by list label, with the participant's labels so far."""
    if current.status != Request.Status.DONE:
        return {"poll": polling.after(0)}
    slots = list(current.slots.select_related("item", "judgement").order_by("list_label", "position"))
    lists: dict[str, list] = {}
    for slot in slots:
        lists.setdefault(slot.list_label, []).append(slot)
    study = current.participant.study
    return {
        "lists": sorted(lists.items()),
        "scale": study.scale.choices,
        "unjudged": sum(1 for s in slots if not hasattr(s, "judgement")),
        "preference": getattr(current, "preference", None),
        "ask_preference": study.asks_list_preference,
    }


@require_POST
def consent(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    services.do_consent(participant, request.POST.get("agree") == "yes")
    return _home(participant)


@require_POST
def toggle_pick(request: HttpRequest, token: str, item_pk: int) -> HttpResponse:
    participant = _participant(token)
    try:
        picked = services.do_toggle_pick(participant, item_pk)
    except StudyError as exc:
        return _error(request, participant, exc)
    if request.htmx:
        count = participant.picks.count()
        return render(
            request,
            "study/_pick.html",
            {"participant": participant, "item_pk": item_pk, "picked": picked, "count": count, "oob": True,
             "study": participant.study, "item": participant.study.catalog.items.get(pk=item_pk)},
        )  # fmt: skip
    return _home(participant, f"#item-{item_pk}")


@require_POST
def finish_onboarding(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    try:
        services.do_finish_onboarding(participant)
    except StudyError as exc:
        return _error(request, participant, exc)
    return _home(participant)


@require_POST
def finish_instructions(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    services.do_finish_instructions(participant)
    return _home(participant)


@require_POST
def create_request(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    try:
        services.do_create_request(participant, request.POST.get("text", ""))
    except StudyError as exc:
        if exc.status != 400:  # not a problem with the text: e.g. no request is due now
            return _error(request, participant, exc)
        extra = {"form_error": exc.message, "draft": request.POST.get("text", "")[:2000]}
        return _render_phase(request, participant, extra, status=exc.status)
    return _home(participant)


@require_GET
def request_status(request: HttpRequest, token: str, number: int) -> HttpResponse:
    """Polled by htmx while the worker ranks; answers with the lists once they are ready.

    Read-only: lost or interrupted work is re-sent by the sweeper (:mod:`studyapp.sweeper`),
    not by this poll.
    """
    participant = _participant(token)
    current = get_object_or_404(Request, participant=participant, number=number)
    if current.status == Request.Status.DONE and request.htmx:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"  # swap to the full page with the lists
        return response
    if not request.htmx:
        return _home(participant)
    poll = polling.parse(request.GET.get("poll"))
    return render(
        request, "study/_status.html", {"participant": participant, "current": current, "poll": poll}
    )


@require_POST
def retry_request(request: HttpRequest, token: str, number: int) -> HttpResponse:
    participant = _participant(token)
    current = get_object_or_404(Request, participant=participant, number=number)
    services.do_retry_request(current)
    return _home(participant)


@require_POST
def judge(request: HttpRequest, token: str) -> HttpResponse:
    """Store one rating; answers htmx with the item's rating control and the "left to rate" count.

    The hottest write of a study (a participant rates every item, often by keyboard). On
    PostgreSQL: two statements in one transaction, participant lookup included
    (:func:`rating_write.save_rating`), and the fragment written from what they returned
    (:func:`rating_write.render_fragment`, the template's bytes without the template engine). Anything
    else, errors included, goes through the general path (:func:`services.do_save_judgement`).
    No session access.
    """
    try:
        slot_pk = int(request.POST.get("slot", ""))
    except ValueError:
        return _error(request, _participant(token), StudyError("Missing item.", status=400))
    raw_label = request.POST.get("label")
    try:
        fast = rating_write.save_rating(token, slot_pk, raw_label)
    except StudyError as exc:
        return _error(request, _participant(token), exc)
    if fast is not None:
        if request.htmx:
            action = reverse("judge", args=[token])
            return HttpResponse(rating_write.render_fragment(fast, action, get_token(request)))
        return redirect(reverse("participant", args=[token]) + f"#slot-{slot_pk}")
    participant = get_object_or_404(Participant.objects.select_related("study"), token=token)
    try:
        saved = services.do_save_judgement(participant, slot_pk, raw_label)
    except StudyError as exc:
        return _error(request, participant, exc)
    if request.htmx:
        judgement = saved.judgement
        study = participant.study
        return render(
            request,
            "study/_rating.html",
            {"participant": participant, "slot": judgement.slot, "judgement": judgement, "scale": study.scale.choices,
             "study": study, "unjudged": saved.unjudged, "oob": True},
        )  # fmt: skip
    return _home(participant, f"#slot-{slot_pk}")


@require_POST
def preference(request: HttpRequest, token: str, number: int) -> HttpResponse:
    participant = _participant(token)
    current = get_object_or_404(Request, participant=participant, number=number)
    try:
        services.do_record_preference(participant, current, request.POST.get("list", ""))
    except StudyError as exc:
        return _error(request, participant, exc)
    return _home(participant, "#preference")


@require_POST
def next_request(request: HttpRequest, token: str, number: int) -> HttpResponse:
    participant = _participant(token)
    current = get_object_or_404(Request, participant=participant, number=number)
    try:
        services.do_complete_request(participant, current)
    except StudyError as exc:
        return _error(request, participant, exc)
    return _home(participant)


@require_POST
def questionnaire(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant(token)
    try:
        services.do_save_questionnaire(participant, request.POST)
    except StudyError as exc:
        return _error(request, participant, exc)
    return _home(participant)


@require_GET
def finish_redirect(request: HttpRequest, token: str) -> HttpResponse:
    """Send a finished participant back to the crowd platform with the completion code."""
    participant = _participant(token)
    study = participant.study
    if participant.phase != Phase.DONE or not study.completion_url:
        return _home(participant)
    separator = "&" if "?" in study.completion_url else "?"
    return redirect(study.completion_url + separator + urlencode({"cc": study.completion_code}))
