"""Study design features: practice, questionnaire, attention-check screen-out, locking, copying."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from studyapp.models import Participant, QuestionnaireAnswer, QuestionnaireItem, Study
from tests.studyapp.conftest import advance_to_tasks
from tests.studyapp.factories import ParticipantFactory
from tests.studyapp.test_participant_flow import judge_all, make_request

pytestmark = pytest.mark.django_db


def test_practice_request_comes_first_and_is_not_counted(
    study: Study, client: Client, django_capture_on_commit_callbacks
) -> None:
    study.practice_request = True
    study.save()
    p = ParticipantFactory(study=study)
    advance_to_tasks(client, p)
    assert p.phase == Participant.Phase.PRACTICE
    request = make_request(client, p, django_capture_on_commit_callbacks, "a bag")
    assert request.is_practice and request.number == 0
    judge_all(client, p, request)
    client.post(f"/p/{p.token}/requests/0/next/")
    p.refresh_from_db()
    assert p.phase == Participant.Phase.TASKS
    assert b"Request 1 of 2" in client.get(f"/p/{p.token}/").content


def test_questionnaire_is_required_and_stored(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    study = participant.study
    q1 = QuestionnaireItem.objects.create(study=study, order=1, text="The items matched my requests.")
    q2 = QuestionnaireItem.objects.create(study=study, order=2, text="I liked them.", scale_points=7)
    for n in (1, 2):
        request = make_request(client, participant, django_capture_on_commit_callbacks)
        judge_all(client, participant, request)
        client.post(f"/p/{participant.token}/requests/{n}/next/")
    participant.refresh_from_db()
    assert participant.phase == Participant.Phase.QUESTIONNAIRE
    assert client.post(f"/p/{participant.token}/questionnaire/", {f"q{q1.pk}": "4"}).status_code == 400
    assert (
        client.post(
            f"/p/{participant.token}/questionnaire/", {f"q{q1.pk}": "4", f"q{q2.pk}": "9"}
        ).status_code
        == 400
    )
    client.post(f"/p/{participant.token}/questionnaire/", {f"q{q1.pk}": "4", f"q{q2.pk}": "7"})
    participant.refresh_from_db()
    assert participant.phase == Participant.Phase.DONE
    assert dict(QuestionnaireAnswer.objects.values_list("item_id", "value")) == {q1.pk: 4, q2.pk: 7}


def test_two_failed_attention_checks_screen_the_participant_out(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    Study.objects.filter(pk=participant.study_id).update(
        attention_checks=True, attention_failures_allowed=1, requests_per_participant=3
    )
    for n in (1, 2):
        request = make_request(client, participant, django_capture_on_commit_callbacks, "white sports shoes")
        judge_all(client, participant, request, label="3")  # the off-topic check item rated "perfect match"
        client.post(f"/p/{participant.token}/requests/{n}/next/")
    participant.refresh_from_db()
    assert participant.attention_failures == 2
    assert participant.phase == Participant.Phase.SCREENED_OUT
    page = client.get(f"/p/{participant.token}/").content.decode()
    assert participant.study.screenout_code in page and participant.study.completion_code not in page


def test_passing_attention_checks_keeps_the_participant_in(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    Study.objects.filter(pk=participant.study_id).update(attention_checks=True)
    request = make_request(client, participant, django_capture_on_commit_callbacks, "white sports shoes")
    for slot in request.slots.all():
        label = "0" if slot.is_attention_check else "3"
        client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": label})
    client.post(f"/p/{participant.token}/requests/1/next/")
    request.refresh_from_db()
    assert request.attention_check_failed is False


def test_design_locks_once_a_participant_joined(participant: Participant) -> None:
    study = participant.study
    study.k = 9
    with pytest.raises(ValidationError, match="locked"):
        study.full_clean()
    study.refresh_from_db()
    study.title = "Renamed is fine"
    study.full_clean()


def test_admin_shows_locked_design_read_only_and_can_copy_a_study(
    participant: Participant, admin_client: Client
) -> None:
    study = participant.study
    page = admin_client.get(f"/admin/studyapp/study/{study.pk}/change/").content.decode()
    assert 'name="k"' not in page and 'name="title"' in page
    assert 'name="questionnaire_items-0-text"' not in page  # questions are locked too
    admin_client.post("/admin/studyapp/study/", {"action": "copy_study", "_selected_action": [study.pk]})
    copy = Study.objects.exclude(pk=study.pk).get()
    assert copy.status == Study.Status.DRAFT and copy.token != study.token
    assert set(copy.systems.all()) == set(study.systems.all())
    assert not copy.is_locked()


def test_admin_pages_load_for_every_model(participant: Participant, admin_client: Client) -> None:
    for model in (
        "catalog",
        "item",
        "rankingsystem",
        "study",
        "participant",
        "request",
        "rankedlist",
        "slot",
        "judgement",
    ):
        assert admin_client.get(f"/admin/studyapp/{model}/").status_code == 200, model
    assert admin_client.get("/admin/studyapp/study/add/").status_code == 200


def test_completion_redirect_carries_the_code(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    Study.objects.filter(pk=participant.study_id).update(
        completion_url="https://app.prolific.com/submissions/complete"
    )
    for n in (1, 2):
        request = make_request(client, participant, django_capture_on_commit_callbacks)
        judge_all(client, participant, request)
        client.post(f"/p/{participant.token}/requests/{n}/next/")
    response = client.get(f"/p/{participant.token}/return/")
    assert (
        response["Location"]
        == f"https://app.prolific.com/submissions/complete?cc={participant.study.completion_code}"
    )


def test_which_list_is_better_is_required_when_asked_and_unblinded_in_storage(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    Study.objects.filter(pk=participant.study_id).update(ask_list_preference=True)
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    judge_all(client, participant, request)
    assert client.post(f"/p/{participant.token}/requests/1/next/").status_code == 400
    client.post(f"/p/{participant.token}/requests/1/preference/", {"list": "B"})
    request.refresh_from_db()
    assert request.preference.system_id == request.slots.filter(list_label="B").first().team_id
    assert client.post(f"/p/{participant.token}/requests/1/next/").status_code == 302


def test_admin_keeps_a_study_with_fewer_than_two_systems_in_draft(catalog, admin_client: Client) -> None:
    from tests.studyapp.factories import RankingSystemFactory

    only = RankingSystemFactory(name="Lonely")
    form = {
        "title": "One system", "slug": "one-system", "status": "open", "catalog": catalog.pk, "systems": [only.pk],
        "presentation_mode": "side_by_side", "k": 5, "seed": 0, "requests_per_participant": 2, "onboarding_picks": 3,
        "onboarding_grid_size": 24, "rating_scale": "graded4", "attention_failures_allowed": 1,
        "min_seconds_per_judgement": 1.0, "consent_text": "c", "instructions_text": "i", "debrief_text": "d",
        "external_id_param": "PROLIFIC_PID", "external_study_param": "STUDY_ID", "external_session_param": "SESSION_ID",
        "completion_code": "AAA", "screenout_code": "BBB",
        "questionnaire_items-TOTAL_FORMS": "0", "questionnaire_items-INITIAL_FORMS": "0",
    }  # fmt: skip
    response = admin_client.post("/admin/studyapp/study/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Study.objects.get(slug="one-system").status == Study.Status.DRAFT


def test_locked_design_cannot_be_changed_by_posting_the_admin_form(
    participant: Participant, admin_client: Client
) -> None:
    study = participant.study
    page = admin_client.get(f"/admin/studyapp/study/{study.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update(
        {
            "title": "Renamed",
            "k": 9,
            "questionnaire_items-TOTAL_FORMS": "0",
            "questionnaire_items-INITIAL_FORMS": "0",
        }
    )
    admin_client.post(
        f"/admin/studyapp/study/{study.pk}/change/", {k: v for k, v in data.items() if v is not None}
    )
    study.refresh_from_db()
    assert study.k == 4


def test_systems_of_a_running_study_are_read_only_in_the_admin(
    participant: Participant, admin_client: Client
) -> None:
    system = participant.study.systems.first()
    page = admin_client.get(f"/admin/studyapp/rankingsystem/{system.pk}/change/").content.decode()
    assert 'name="kind"' not in page and 'name="history_weight"' not in page


def test_list_preference_cannot_change_after_moving_on(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    Study.objects.filter(pk=participant.study_id).update(ask_list_preference=True)
    request = make_request(client, participant, django_capture_on_commit_callbacks)
    judge_all(client, participant, request)
    client.post(f"/p/{participant.token}/requests/1/preference/", {"list": "A"})
    client.post(f"/p/{participant.token}/requests/1/next/")
    assert client.post(f"/p/{participant.token}/requests/1/preference/", {"list": "B"}).status_code == 409
    request.refresh_from_db()
    assert request.preference.list_label == "A"
