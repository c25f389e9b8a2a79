"""Adaptive polling of the "preparing" state: soon after submitting, then backing off to 1 s."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from studyapp import polling
from studyapp.models import Participant, Request

pytestmark = pytest.mark.django_db


def poll_attributes(html: str) -> tuple[str, str]:
    """(hx-get, hx-trigger) of the status element."""
    get = re.search(r'hx-get="([^"]+)"', html)
    trigger = re.search(r'hx-trigger="([^"]+)"', html)
    assert get and trigger, html
    return get.group(1), trigger.group(1)


def test_schedule_starts_at_150_ms_and_is_capped_at_one_second() -> None:
    delays = [polling.after(n).delay_ms for n in range(8)]
    assert delays == [150, 250, 400, 700, 1000, 1000, 1000, 1000]
    assert polling.parse("junk").delay_ms == polling.parse("-3").delay_ms == 150
    assert polling.parse("99999999999").delay_ms == 1000


def test_waiting_page_checks_after_150_ms_then_backs_off(participant: Participant, client: Client) -> None:
    Request.objects.create(participant=participant, number=1, text="a scarf", seed=1)
    url, trigger = poll_attributes(client.get(f"/p/{participant.token}/").content.decode())
    assert url.endswith("/requests/1/status/?poll=1") and trigger.startswith("load delay:150ms")
    seen = []
    for _ in range(6):  # follow the page's own links, as htmx does
        url, trigger = poll_attributes(client.get(url, HTTP_HX_REQUEST="true").content.decode())
        seen.append(int(re.match(r"load delay:(\d+)ms", trigger).group(1)))
    assert seen == [250, 400, 700, 1000, 1000, 1000]
    assert url.endswith("?poll=7")


def test_a_failed_check_does_not_stop_the_polling(participant: Participant, client: Client) -> None:
    """A 503 is not swapped in, so the one-shot delayed trigger would be the last: a slower
    "every" trigger stays on the element to ask again."""
    Request.objects.create(participant=participant, number=1, text="a scarf", seed=1)
    _, trigger = poll_attributes(client.get(f"/p/{participant.token}/").content.decode())
    assert f"every {polling.FALLBACK_SECONDS}s" in trigger
    assert polling.FALLBACK_SECONDS * 1000 > max(polling.SCHEDULE_MS)  # never fires between good checks


def test_ready_lists_replace_the_waiting_state_at_the_next_check(
    participant: Participant, client: Client
) -> None:
    request = Request.objects.create(participant=participant, number=1, text="a scarf", seed=1)
    Request.objects.filter(pk=request.pk).update(status=Request.Status.DONE)
    response = client.get(f"/p/{participant.token}/requests/1/status/?poll=3", HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Refresh"] == "true"


def test_failed_request_stops_polling_and_offers_try_again(participant: Participant, client: Client) -> None:
    Request.objects.create(
        participant=participant, number=1, text="a scarf", seed=1, status=Request.Status.FAILED, attempts=6
    )
    html = client.get(f"/p/{participant.token}/requests/1/status/?poll=4", HTTP_HX_REQUEST="true").content
    assert b"hx-trigger" not in html and b"Try again" in html
