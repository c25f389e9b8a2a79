"""Refused actions come back on the same page, with the reason beside the action and the progress bar."""

from __future__ import annotations

import pytest
from django.test import Client

from studyapp.models import Participant, QuestionnaireItem, Study
from tests.studyapp.factories import ParticipantFactory

pytestmark = pytest.mark.django_db


def test_too_few_picks_shows_the_grid_again_with_the_reason(study: Study, client: Client) -> None:
    p = ParticipantFactory(study=study)
    client.post(f"/p/{p.token}/consent/", {"agree": "yes"})
    response = client.post(f"/p/{p.token}/onboarding/")
    page = response.content.decode()
    assert response.status_code == 400
    assert 'role="progressbar"' in page
    assert "What do you like?" in page and 'class="grid"' in page  # still the picking page
    assert 'id="action-error">Please pick at least 3 items you like (0 picked so far).' in page


def test_next_before_rating_everything_keeps_the_lists_and_says_how_many_are_left(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/p/{participant.token}/requests/", {"text": "casual shoes"})
    request = participant.requests.get()
    first = request.slots.first()
    client.post(f"/p/{participant.token}/judge/", {"slot": first.pk, "label": "2"})
    response = client.post(f"/p/{participant.token}/requests/1/next/")
    page = response.content.decode()
    left = request.slots.count() - 1
    assert response.status_code == 400
    assert 'role="progressbar"' in page and "List A" in page
    assert f'id="action-error">Please rate every item first ({left} left).' in page
    assert 'aria-pressed="true"' in page  # the rating already given is still shown


def test_unanswered_questionnaire_is_shown_again_with_the_reason(
    participant: Participant, client: Client
) -> None:
    QuestionnaireItem.objects.create(study=participant.study, text="The lists matched my requests.")
    Participant.objects.filter(pk=participant.pk).update(phase=Participant.Phase.QUESTIONNAIRE)
    response = client.post(f"/p/{participant.token}/questionnaire/", {})
    assert response.status_code == 400
    page = response.content.decode()
    assert "A few questions" in page and 'id="action-error">Please answer every question.' in page
