"""Participants see only their own session; researcher views, exports and the API need staff."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from studyapp.models import Participant, Study
from tests.studyapp.test_participant_flow import make_request

pytestmark = pytest.mark.django_db

RESEARCHER_URLS = [
    "/researcher/",
    "/researcher/studies/{pk}/",
    "/researcher/studies/{pk}/export/judgements.csv",
    "/api/studies/",
    "/api/studies/{pk}/judgements/",
    "/api/studies/{pk}/export/?kind=judgements",
    "/api/studies/{pk}/report/",
    "/api/schema/",
]


@pytest.mark.parametrize("url", RESEARCHER_URLS)
def test_researcher_urls_refuse_anonymous_visitors(study: Study, client: Client, url: str) -> None:
    response = client.get(url.format(pk=study.pk))
    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("url", RESEARCHER_URLS)
def test_researcher_urls_refuse_participants_and_non_staff_users(
    study: Study, participant: Participant, client: Client, url: str
) -> None:
    user = User.objects.create_user("someone", password="pw-123456789")
    client.force_login(user)
    response = client.get(url.format(pk=study.pk))
    assert response.status_code in (302, 401, 403)


@pytest.mark.parametrize("url", RESEARCHER_URLS)
def test_researcher_urls_work_for_staff(study: Study, admin_client: Client, url: str) -> None:
    assert admin_client.get(url.format(pk=study.pk)).status_code == 200


def test_participant_page_of_another_participant_needs_their_token(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    request = make_request(client, participant, django_capture_on_commit_callbacks, "secret request text")
    stranger = Client()
    wrong_last = "y" if participant.token.endswith("x") else "x"
    assert stranger.get(f"/p/{participant.token[:-1]}{wrong_last}/").status_code == 404
    # Without htmx the status URL sends the token's holder to their page; it shows nothing itself.
    response = stranger.get(f"/p/{participant.token}/requests/{request.number}/status/")
    assert (response.status_code, response["Location"]) == (302, f"/p/{participant.token}/")
    # the status endpoint only ever answers for the token's own requests
    other = Participant.objects.create(study=participant.study, number=99)
    assert (
        stranger.get(
            f"/p/{other.token}/requests/{request.number}/status/", HTTP_HX_REQUEST="true"
        ).status_code
        == 404
    )


def test_tokens_are_unguessable(study: Study, participant: Participant) -> None:
    """192 random bits each: 32 characters of the 64-letter URL-safe alphabet, every one varying."""
    import string

    from studyapp.models.study import new_token

    alphabet = set(string.ascii_letters + string.digits + "-_")
    tokens = [new_token() for _ in range(2000)] + [study.token, participant.token]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) == 32 and set(t) <= alphabet for t in tokens)
    # A counter, a timestamp or a short seed would leave some positions nearly constant.
    for position in range(32):
        assert len({t[position] for t in tokens}) >= 60


def test_image_view_refuses_paths_outside_the_catalog_folder(study: Study, client: Client) -> None:
    item = study.catalog.items.first()
    item.image_path = "../../../../etc/passwd"
    item.image_url = ""
    item.save()
    assert client.get(f"/items/{item.pk}/image").status_code == 404


def test_image_view_serves_catalog_images(study: Study, client: Client) -> None:
    item = study.catalog.items.exclude(image_path="").first()
    response = client.get(f"/items/{item.pk}/image")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/")


def test_participant_posts_without_a_csrf_token_are_refused(participant: Participant) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(f"/p/{participant.token}/requests/", {"text": "a shirt"})
    assert response.status_code == 403
    assert not participant.requests.exists()


def test_refused_htmx_action_is_shown_in_the_alert_region(participant: Participant, client: Client) -> None:
    response = client.post(
        f"/p/{participant.token}/judge/", {"slot": 424242, "label": "2"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 404
    assert response["HX-Retarget"] == "#flash"
    assert b'id="flash"' in client.get(f"/p/{participant.token}/").content
