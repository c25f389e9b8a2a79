"""The participant's path through a study, driven through the real views (tasks run eagerly)."""

from __future__ import annotations

import pytest
from django.test import Client

from studyapp.models import Judgement, Participant, RankedList, Request, Slot, Study
from tests.studyapp.factories import ParticipantFactory

pytestmark = pytest.mark.django_db


def make_request(client: Client, participant: Participant, capture, text: str = "casual shoes") -> Request:  # type: ignore[no-untyped-def]
    with capture(execute=True):
        response = client.post(f"/p/{participant.token}/requests/", {"text": text})
    assert response.status_code == 302
    return participant.requests.order_by("-number").first()


def judge_all(client: Client, participant: Participant, request: Request, label: str = "2") -> None:
    for slot in request.slots.all():
        assert (
            client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": label}).status_code
            == 302
        )


def test_study_link_creates_participant_and_consent_page_is_shown(study: Study, client: Client) -> None:
    response = client.get(f"/s/{study.token}/", follow=True)
    assert response.status_code == 200
    assert b"Before you start" in response.content
    assert study.participants.count() == 1


def test_unknown_study_token_is_404(db, client: Client) -> None:
    assert client.get("/s/not-a-token/").status_code == 404


def test_draft_study_does_not_accept_participants(study: Study, client: Client) -> None:
    study.status = Study.Status.DRAFT
    study.save()
    assert client.get(f"/s/{study.token}/").status_code == 403
    assert study.participants.count() == 0


def test_onboarding_needs_the_configured_number_of_picks(study: Study, client: Client) -> None:
    p = ParticipantFactory(study=study)
    client.post(f"/p/{p.token}/consent/", {"agree": "yes"})
    response = client.post(f"/p/{p.token}/onboarding/")
    assert response.status_code == 400
    assert b"at least 3" in response.content
    p.refresh_from_db()
    assert p.phase == Participant.Phase.ONBOARDING


def test_request_produces_two_blinded_lists_of_k_items(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    assert request.status == Request.Status.DONE
    lists = RankedList.objects.filter(request=request)
    assert lists.count() == 2
    assert all(len(lst.item_ids) == 4 for lst in lists)
    assert sorted(set(request.slots.values_list("list_label", flat=True))) == ["A", "B"]
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert "List A" in page and "List B" in page
    for system in participant.study.systems.all():
        assert system.name not in page  # blinded: system names never reach the participant


def test_history_picks_are_never_recommended_back(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    picked = set(participant.picks.values_list("item__external_id", flat=True))
    shown = {i for lst in request.ranked_lists.all() for i in lst.item_ids}
    assert picked.isdisjoint(shown)


def test_which_system_is_list_a_is_stored_and_counterbalanced(
    study: Study, client: Client, django_capture_on_commit_callbacks
) -> None:
    from tests.studyapp.conftest import advance_to_tasks

    sides = []
    for _ in range(2):
        p = ParticipantFactory(study=study)
        advance_to_tasks(client, p)
        request = make_request(client, p, django_capture_on_commit_callbacks)
        sides.append(request.slots.filter(list_label="A").values_list("team_id", flat=True).first())
    assert sides[0] != sides[1]  # consecutive participants get the systems on opposite sides


def test_full_flow_reaches_completion_code_and_every_judgement_is_stored(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    study = participant.study
    for n in range(1, study.requests_per_participant + 1):
        request = make_request(
            client, participant, django_capture_on_commit_callbacks, f"request {n}: a formal shirt"
        )
        judge_all(client, participant, request)
        assert client.post(f"/p/{participant.token}/requests/{n}/next/").status_code == 302
    participant.refresh_from_db()
    assert participant.phase == Participant.Phase.DONE
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert study.completion_code in page
    assert (
        Judgement.objects.filter(participant=participant).count()
        == Slot.objects.filter(request__participant=participant).count()
        == 16
    )


def test_next_request_refused_until_every_item_is_rated(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    first = request.slots.first()
    client.post(f"/p/{participant.token}/judge/", {"slot": first.pk, "label": "1"})
    response = client.post(f"/p/{participant.token}/requests/1/next/")
    assert response.status_code == 400
    assert b"left" in response.content
    request.refresh_from_db()
    assert request.completed_at is None


def test_reload_shows_saved_ratings(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    slot = request.slots.first()
    client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": "3"})
    page = client.get(f"/p/{participant.token}/").content.decode()
    chunk = page[page.index(f'id="rating-{slot.pk}"') :]
    assert 'value="3" data-key="3" aria-pressed="true"' in chunk[:2000]


def test_same_link_on_another_device_resumes_same_participant(
    participant: Participant, django_capture_on_commit_callbacks
) -> None:
    other_device = Client()
    response = other_device.get(f"/p/{participant.token}/")
    assert response.status_code == 200
    assert b"What are you looking for?" in response.content


def test_returning_to_study_link_in_same_browser_resumes(study: Study, client: Client) -> None:
    client.get(f"/s/{study.token}/")
    client.get(f"/s/{study.token}/")
    assert study.participants.count() == 1


def test_returning_crowd_participant_resumes_with_the_same_platform_session(study: Study) -> None:
    first = Client().get(f"/s/{study.token}/?PROLIFIC_PID=abc123&STUDY_ID=s1&SESSION_ID=x")
    second = Client().get(f"/s/{study.token}/?PROLIFIC_PID=abc123&STUDY_ID=s1&SESSION_ID=x")
    assert first["Location"] == second["Location"]
    participant = study.participants.get()
    assert (participant.external_id, participant.external_study_id, participant.external_session_id) == (
        "abc123",
        "s1",
        "x",
    )


def test_returning_crowd_participant_resumes_in_the_same_browser(study: Study, client: Client) -> None:
    first = client.get(f"/s/{study.token}/?PROLIFIC_PID=abc123")
    second = client.get(f"/s/{study.token}/?PROLIFIC_PID=abc123")
    assert first["Location"] == second["Location"]


def test_known_crowd_id_from_another_browser_cannot_take_over_the_session(study: Study) -> None:
    victim = Client().get(f"/s/{study.token}/?PROLIFIC_PID=P01&SESSION_ID=victim-session")
    token = victim["Location"].strip("/").split("/")[-1]
    for query in ("PROLIFIC_PID=P01", "PROLIFIC_PID=P01&SESSION_ID=guess"):
        response = Client().get(f"/s/{study.token}/?{query}")
        assert response.status_code == 409
        assert token not in response.content.decode()
        assert b"already started" in response.content
    assert study.participants.count() == 1  # and the retake is still blocked


def test_declining_consent_ends_the_study(study: Study, client: Client) -> None:
    p = ParticipantFactory(study=study)
    client.post(f"/p/{p.token}/consent/", {"agree": "no"})
    p.refresh_from_db()
    assert p.phase == Participant.Phase.DECLINED
    assert b"did not agree" in client.get(f"/p/{p.token}/").content


def test_failed_ranking_shows_try_again_and_retry_recovers(
    participant: Participant, client: Client, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from studyapp import ranking_service

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(ranking_service, "rank_all", broken)
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    assert request.status == Request.Status.FAILED
    assert "encoder crashed" in request.error
    assert b"Try again" in client.get(f"/p/{participant.token}/").content
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/p/{participant.token}/requests/1/retry/")
    request.refresh_from_db()
    assert request.status == Request.Status.DONE
    assert request.slots.count() == 8
