"""Item images, the landing page, the favicon and a health check."""

from __future__ import annotations

import mimetypes
import os

from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from studyapp.models import Item


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page (the admin links no icon): send them the SVG."""
    return HttpResponseRedirect(static("favicon.svg"))


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


@require_GET
@cache_control(max_age=86400, public=True)
def item_image(request: HttpRequest, pk: int) -> HttpResponse:
    """Serve a catalog image from the catalog's folder, refusing any path that escapes it."""
    item = get_object_or_404(Item.objects.select_related("catalog"), pk=pk)
    if item.image_path and item.catalog.data_dir:
        root = os.path.realpath(item.catalog.data_dir)
        path = os.path.realpath(os.path.join(root, item.image_path))
        if path.startswith(root + os.sep) and os.path.isfile(path):
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115 - FileResponse closes it
    if item.image_url.startswith(("https://", "http://")):
        return HttpResponseRedirect(item.image_url)
    raise Http404("no image for this item")
