"""Bad input gets a clear 4xx and stores nothing; repeats leave exactly one row."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from studyapp.models import Judgement, Participant, Request
from studyapp.services import do_record_judgement
from tests.studyapp.conftest import advance_to_tasks
from tests.studyapp.factories import ParticipantFactory
from tests.studyapp.test_participant_flow import make_request

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("text", ["", "   \n\t  ", "x" * 301])
def test_empty_blank_or_overlong_request_is_a_form_error_and_nothing_is_enqueued(
    participant: Participant, client: Client, django_capture_on_commit_callbacks, text: str
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/p/{participant.token}/requests/", {"text": text})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    assert callbacks == []
    assert not Request.objects.exists()


def test_html_in_a_request_is_shown_as_text(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    make_request(
        client, participant, django_capture_on_commit_callbacks, "<script>alert(1)</script> red dress"
    )
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; red dress" in page


def test_double_submitted_request_form_creates_one_request(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/p/{participant.token}/requests/", {"text": "a shirt"})
        client.post(f"/p/{participant.token}/requests/", {"text": "a shirt"})
    assert participant.requests.count() == 1


@pytest.fixture
def ready_request(participant: Participant, client: Client, django_capture_on_commit_callbacks) -> Request:
    return make_request(client, participant, django_capture_on_commit_callbacks)


def test_judgement_for_item_not_in_the_lists_is_rejected(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    response = client.post(f"/p/{participant.token}/judge/", {"slot": 999999, "label": "2"})
    assert response.status_code == 404
    assert not Judgement.objects.exists()


@pytest.mark.parametrize("label", ["7", "-1", "abc", "", "2.5"])
def test_label_outside_the_scale_is_rejected(
    participant: Participant, ready_request: Request, client: Client, label: str
) -> None:
    slot = ready_request.slots.first()
    response = client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": label})
    assert response.status_code == 400
    assert not Judgement.objects.exists()


def test_cant_judge_is_rejected_when_the_study_does_not_offer_it(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    participant.study.allow_cant_judge = False
    participant.study.save()
    slot = ready_request.slots.first()
    assert client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "na"}).status_code == 400
    assert not Judgement.objects.exists()


def test_judgement_on_another_participants_request_is_rejected(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    intruder = ParticipantFactory(study=participant.study)
    other_client = Client()
    advance_to_tasks(other_client, intruder)
    slot = ready_request.slots.first()
    response = other_client.post(f"/p/{intruder.token}/judge/", {"slot": slot.pk, "label": "3"})
    assert response.status_code == 404
    assert not Judgement.objects.exists()


def test_double_submitted_judgement_leaves_one_row_with_the_latest_value(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    slot = ready_request.slots.first()
    client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "1"})
    client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "1"})
    client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "3"})
    judgement = Judgement.objects.get()
    assert (judgement.label, judgement.changes) == (3, 1)


def test_database_enforces_one_judgement_per_slot(participant: Participant, ready_request: Request) -> None:
    slot = ready_request.slots.first()
    do_record_judgement(participant, slot.pk, "2")
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgement.objects.create(participant=participant, slot=slot, label=1)


def test_database_rejects_label_out_of_range(participant: Participant, ready_request: Request) -> None:
    slot = ready_request.slots.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgement.objects.create(participant=participant, slot=slot, label=9)


def test_ratings_cannot_change_after_moving_on(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    for slot in ready_request.slots.all():
        client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "2"})
    client.post(f"/p/{participant.token}/requests/1/next/")
    slot = ready_request.slots.first()
    assert client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "0"}).status_code == 409
    assert Judgement.objects.get(slot=slot).label == 2


def test_double_clicked_next_advances_only_one_request(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    for slot in ready_request.slots.all():
        client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "2"})
    client.post(f"/p/{participant.token}/requests/1/next/")
    client.post(f"/p/{participant.token}/requests/1/next/")
    participant.refresh_from_db()
    assert participant.phase == Participant.Phase.TASKS
    assert participant.requests.filter(completed_at__isnull=False).count() == 1


def test_htmx_judgement_returns_the_updated_control(
    participant: Participant, ready_request: Request, client: Client
) -> None:
    slot = ready_request.slots.first()
    response = client.post(
        f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "2"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="rating-{slot.pk}"' in html and 'aria-pressed="true"' in html
    assert 'id="unjudged" hx-swap-oob="true"' in html


def test_request_outside_the_request_phase_is_refused_with_the_reason(study, client: Client) -> None:
    p = ParticipantFactory(study=study)  # still at consent
    response = client.post(f"/p/{p.token}/requests/", {"text": "a shirt"})
    assert response.status_code == 409
    assert b"cannot make a request" in response.content
    assert b'name="text"' not in response.content  # no request form offered out of phase
    assert not Request.objects.exists()
