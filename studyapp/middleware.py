"""Middleware that turns two kinds of trouble into clear answers instead of a 500.

* :class:`RejectUnstorableInputMiddleware`: input PostgreSQL cannot store (a NUL byte, a lone
  surrogate) in the path, a query parameter, a form field or a cookie gets a 400 before any
  view runs, so no view can crash on it and nothing writes a traceback.
* :class:`DatabaseUnavailableMiddleware`: while the database is briefly gone (a restart, a
  failover), a request gets a friendly 503 "please retry" page with ``Retry-After`` instead
  of a server error. Rating saves are retried once by ``static/js/study.js``; other htmx
  writes say they were not saved (``static/js/not_saved.js``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.views import defaults

log = logging.getLogger(__name__)

#: Characters no text column can hold: NUL (PostgreSQL) and UTF-16 surrogates (not valid UTF-8).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def _any_unstorable(values: Iterable[str]) -> bool:
    return any(UNSTORABLE.search(value) for value in values)


class RejectUnstorableInputMiddleware:
    """400 for a request carrying characters that cannot be stored (checked before any view)."""

    FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts: list[str] = [request.path]
        parts += request.GET.keys()
        parts += (v for values in request.GET.lists() for v in values[1])
        parts += request.COOKIES.keys()
        parts += request.COOKIES.values()
        if request.method == "POST" and request.content_type in self.FORM_TYPES:
            parts += request.POST.keys()
            parts += (v for values in request.POST.lists() for v in values[1])
        if _any_unstorable(parts):
            log.warning("rejected a request with unstorable characters (%s %r)", request.method, request.path)
            return HttpResponseBadRequest(
                "Bad request: the address or form contains characters that cannot be stored "
                "(for example a NUL byte).",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 "please retry" answer; rendered without touching the database (no session, no user)."""
    if request.headers.get("HX-Request"):
        response = HttpResponse("The server is busy; please try again.", status=503)
        response["HX-Reswap"] = "none"  # keep the page as it is; the page script retries or says so
    else:
        body = render_to_string(
            "study/unavailable.html", {"retry_after": RETRY_AFTER_SECONDS, "reload": request.method == "GET"}
        )
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    # Logged once, as a warning by the caller: an expected outage is no server error, and a
    # restart must not flood the log with one ERROR per request.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class DatabaseUnavailableMiddleware:
    """A view that loses the database answers 503 with a retry page, logged in one line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        return unavailable_response(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a database outage met outside a view (e.g. saving the session) is a 503 too."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        return unavailable_response(request)
    return defaults.server_error(request)
