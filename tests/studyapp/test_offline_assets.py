"""Pages work without the internet: API docs assets and the favicon are served by the app."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_api_docs_load_swagger_ui_from_this_server(admin_client: Client) -> None:
    page = admin_client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, page[:500]
    assert all(a.startswith("/static/drf_spectacular_sidecar/") for a in scripts), assets
    assert "cdn" not in page.lower()
    for asset in scripts:
        response = admin_client.get(asset)
        assert response.status_code == 200, asset
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 1000  # the real bundle, not an empty file


def test_favicon_is_served(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("favicon.svg")
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content
    assert body.startswith(b"<svg")


def test_pages_link_the_favicon(study, client: Client) -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/s/{study.token}/", follow=True).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg"' in page
