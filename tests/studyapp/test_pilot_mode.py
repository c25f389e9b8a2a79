"""Pilot mode: a researcher's preview runs the real flow but never counts as data."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest
from django.test import Client

from studyapp import reporting, services
from studyapp.models import Judgement, Participant, Request, Study
from tests.studyapp.conftest import advance_to_tasks
from tests.studyapp.factories import ParticipantFactory

pytestmark = pytest.mark.django_db


def finish_one_request(client: Client, participant: Participant, capture, label: str = "2") -> Request:  # type: ignore[no-untyped-def]
    """Type a request (ranked eagerly by the real systems), rate everything, press "next"."""
    with capture(execute=True):
        assert client.post(f"/p/{participant.token}/requests/", {"text": "casual shoes"}).status_code == 302
    request = participant.requests.order_by("-number").first()
    assert request.status == Request.Status.DONE
    for slot in request.slots.all():
        client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": label})
    assert client.post(f"/p/{participant.token}/requests/{request.number}/next/").status_code == 302
    return request


def start_pilot(admin_client: Client, study: Study) -> Participant:
    response = admin_client.post(f"/researcher/studies/{study.pk}/preview/")
    assert response.status_code == 302
    pilot = Participant.objects.get(study=study, origin=Participant.Origin.PILOT)
    assert response["Location"] == f"/p/{pilot.token}/"
    return pilot


class SubmitButtons(HTMLParser):
    """The submit buttons of one form, in document order (the first is what Enter presses)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.found = form_id, False, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif self.inside and (
            (tag == "button" and (a.get("type") or "submit") == "submit")
            or (tag == "input" and a.get("type") in ("submit", "image"))
        ):
            self.found.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def read_csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_preview_creates_a_pilot_even_for_a_draft_study(study: Study, admin_client: Client) -> None:
    study.status = Study.Status.DRAFT
    study.save()
    pilot = start_pilot(admin_client, study)
    page = admin_client.get(f"/p/{pilot.token}/").content.decode()
    assert "Before you start" in page
    assert "Pilot (researcher preview)" in page  # the banner says it is not counted


def test_preview_needs_staff_and_a_get_only_asks(study: Study, client: Client, admin_client: Client) -> None:
    assert client.post(f"/researcher/studies/{study.pk}/preview/").status_code == 302  # to the login
    page = admin_client.get(f"/researcher/studies/{study.pk}/preview/")
    assert page.status_code == 200 and "Start a pilot run" in page.content.decode()
    assert not Participant.objects.filter(study=study).exists()


def test_preview_refuses_a_missing_csrf_token(study: Study, admin_user) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(f"/researcher/studies/{study.pk}/preview/").status_code == 403
    assert client.post(f"/researcher/studies/{study.pk}/test-runs/delete/").status_code == 403


def test_pilot_runs_the_live_systems_and_never_locks_the_design(
    study: Study, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    pilot = start_pilot(admin_client, study)
    advance_to_tasks(admin_client, pilot)
    request = finish_one_request(admin_client, pilot, django_capture_on_commit_callbacks)
    assert request.ranked_lists.count() == 2  # both systems ran on the pilot's request
    assert Judgement.objects.filter(participant=pilot).exists()
    assert not study.is_locked()
    study.k = 6
    study.full_clean()  # a locked design would raise here


def test_a_real_participant_still_locks_the_design(study: Study) -> None:
    services.do_join_test_run(study, Participant.Origin.PILOT)
    assert not study.is_locked()
    ParticipantFactory(study=study, number=99)
    assert study.is_locked()


def test_pilot_takes_the_next_arrival_number_so_counterbalancing_is_unchanged(study: Study) -> None:
    real = ParticipantFactory(study=study, number=1)
    pilot = services.do_join_test_run(study, Participant.Origin.PILOT)
    assert pilot.number == real.number + 1


def test_analysis_leaves_out_pilots_and_exports_mark_them(
    study: Study, client: Client, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    real = ParticipantFactory(study=study, number=1)
    advance_to_tasks(client, real)
    finish_one_request(client, real, django_capture_on_commit_callbacks, label="2")
    pilot = start_pilot(admin_client, study)
    advance_to_tasks(admin_client, pilot)
    finish_one_request(admin_client, pilot, django_capture_on_commit_callbacks, label="0")

    report = reporting.build_study_report(study, n_resamples=50)
    assert report.n_participants == 1
    assert report.n_judgements == Judgement.objects.filter(participant=real).count()
    pilot_report = reporting.build_study_report(study, n_resamples=50, origin=Participant.Origin.PILOT)
    assert pilot_report.n_judgements == Judgement.objects.filter(participant=pilot).count()

    rows = read_csv(admin_client.get(f"/researcher/studies/{study.pk}/export/judgements.csv"))
    flags = {(row["participant_id"], row["is_pilot"]) for row in rows}
    assert flags == {(str(real.pk), "0"), (str(pilot.pk), "1")}
    people = read_csv(admin_client.get(f"/researcher/studies/{study.pk}/export/participants.csv"))
    assert {row["participant_id"]: row["is_pilot"] for row in people} == {
        str(real.pk): "0",
        str(pilot.pk): "1",
    }

    page = admin_client.get(f"/researcher/studies/{study.pk}/").content.decode()
    assert '<td id="n-participants">1</td>' in page  # the pilot is not counted as a participant
    pilot_page = admin_client.get(f"/researcher/studies/{study.pk}/?group=pilot").content.decode()
    assert '<td id="n-participants">1</td>' in pilot_page  # the pilot group shows the pilot alone
    assert f'id="n-judgements">{Judgement.objects.filter(participant=pilot).count()} (' in pilot_page


def test_delete_pilot_data_removes_only_test_runs(
    study: Study, client: Client, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    real = ParticipantFactory(study=study, number=1)
    advance_to_tasks(client, real)
    finish_one_request(client, real, django_capture_on_commit_callbacks)
    pilot = start_pilot(admin_client, study)
    advance_to_tasks(admin_client, pilot)
    finish_one_request(admin_client, pilot, django_capture_on_commit_callbacks)
    services.do_join_test_run(study, Participant.Origin.SIMULATED)
    real_judgements = Judgement.objects.filter(participant=real).count()

    url = f"/researcher/studies/{study.pk}/test-runs/delete/"
    asked = admin_client.post(url)  # the researcher page's button: asks first, deletes nothing
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.content.decode()
    assert "Delete 1 pilot and 1 simulated participant " in asked.content.decode()
    assert Participant.objects.filter(study=study).count() == 3
    response = admin_client.post(url, {"confirm": "yes"}, follow=True)
    assert response.status_code == 200
    assert "Deleted 2 pilot/simulated participants" in response.content.decode()
    assert list(Participant.objects.filter(study=study)) == [real]
    assert Judgement.objects.filter(participant=real).count() == real_judgements
    assert not Request.objects.filter(participant_id=pilot.pk).exists()


def test_admin_actions_preview_and_delete_pilot_data(study: Study, admin_client: Client) -> None:
    url = "/admin/studyapp/study/"
    response = admin_client.post(url, {"action": "preview_as_participant", "_selected_action": [study.pk]})
    assert response.status_code == 302
    pilot = Participant.objects.get(study=study)
    assert pilot.origin == Participant.Origin.PILOT and response["Location"] == f"/p/{pilot.token}/"
    response = admin_client.post(url, {"action": "delete_test_runs", "_selected_action": [study.pk]})
    assert response.status_code == 302
    assert not Participant.objects.filter(study=study).exists()


def test_admin_change_form_offers_the_pilot_tools_as_links(study: Study, admin_client: Client) -> None:
    page = admin_client.get(f"/admin/studyapp/study/{study.pk}/change/").content.decode()
    assert f'href="/researcher/studies/{study.pk}/preview/"' in page
    assert f'href="/researcher/studies/{study.pk}/test-runs/delete/"' in page
    assert "formaction" not in page


def test_enter_in_the_admin_change_form_saves_the_study(study: Study, admin_client: Client) -> None:
    """Enter in a field presses the form's first submit button: it must be Django's save."""
    page = admin_client.get(f"/admin/studyapp/study/{study.pk}/change/").content.decode()
    submits = SubmitButtons("study_form")
    submits.feed(page)
    assert submits.found and submits.found[0].get("name") == "_save"
    assert not any(attrs.get("formaction") for attrs in submits.found)


def test_the_admin_delete_link_asks_before_deleting(study: Study, admin_client: Client) -> None:
    services.do_join_test_run(study, Participant.Origin.PILOT)
    page = admin_client.get(f"/researcher/studies/{study.pk}/test-runs/delete/")
    assert page.status_code == 200 and "cannot be undone" in page.content.decode()
    assert Participant.objects.filter(study=study).count() == 1


def test_test_runs_never_take_the_real_participants_conditions(study: Study, admin_client: Client) -> None:
    """Each origin numbers its own Latin-square conditions, so a pilot or a bot starting the tasks
    first leaves real participants' conditions dense from 1 and the real balance table untouched."""
    pilot = start_pilot(admin_client, study)
    advance_to_tasks(admin_client, pilot)
    simulated = services.do_join_test_run(study, Participant.Origin.SIMULATED)
    advance_to_tasks(Client(), simulated)
    reals = [ParticipantFactory(study=study, number=n) for n in (3, 4)]
    for real in reals:
        advance_to_tasks(Client(), real)
    assert [p.condition for p in (pilot, simulated, *reals)] == [1, 1, 1, 2]

    real_balance = reporting.study_balance(study)
    assert [(b.condition, b.n_started) for b in real_balance] == [(0, 1), (1, 1)]
    pilot_balance = reporting.study_balance(study, Participant.Origin.PILOT)
    assert sum(b.n_started for b in pilot_balance) == 1

    services.delete_test_runs(study)  # deleting the test runs leaves no gap in the real sequence
    late = ParticipantFactory(study=study, number=5)
    advance_to_tasks(Client(), late)
    assert late.condition == 3


@pytest.fixture
def plain_staff(db, django_user_model):  # type: ignore[no-untyped-def]
    """A staff user with no model permissions: may look, not change."""
    return django_user_model.objects.create_user("viewer", password="x", is_staff=True)


def test_staff_without_permissions_can_neither_preview_nor_delete(study: Study, plain_staff) -> None:  # type: ignore[no-untyped-def]
    services.do_join_test_run(study, Participant.Origin.PILOT)
    client = Client()
    client.force_login(plain_staff)
    assert client.post(f"/researcher/studies/{study.pk}/preview/").status_code == 403
    assert client.get(f"/researcher/studies/{study.pk}/preview/").status_code == 403
    assert (
        client.post(f"/researcher/studies/{study.pk}/test-runs/delete/", {"confirm": "yes"}).status_code
        == 403
    )
    assert Participant.objects.filter(study=study).count() == 1


def test_staff_with_the_model_permissions_may_preview_and_delete(study: Study, plain_staff) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Permission

    plain_staff.user_permissions.add(
        Permission.objects.get(codename="change_study"), Permission.objects.get(codename="delete_participant")
    )
    client = Client()
    client.force_login(plain_staff)
    assert client.post(f"/researcher/studies/{study.pk}/preview/").status_code == 302
    assert Participant.objects.filter(study=study, origin=Participant.Origin.PILOT).count() == 1
    response = client.post(f"/researcher/studies/{study.pk}/test-runs/delete/", {"confirm": "yes"})
    assert response.status_code == 302 and not Participant.objects.filter(study=study).exists()


def test_anonymous_delete_of_test_runs_goes_to_the_login(study: Study, client: Client) -> None:
    services.do_join_test_run(study, Participant.Origin.PILOT)
    response = client.post(f"/researcher/studies/{study.pk}/test-runs/delete/", {"confirm": "yes"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Participant.objects.filter(study=study).count() == 1


def test_admin_actions_need_the_model_permissions(study: Study, plain_staff) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Permission

    plain_staff.user_permissions.add(Permission.objects.get(codename="view_study"))
    services.do_join_test_run(study, Participant.Origin.PILOT)
    client = Client()
    client.force_login(plain_staff)
    url = "/admin/studyapp/study/"
    for action in ("preview_as_participant", "delete_test_runs"):
        client.post(url, {"action": action, "_selected_action": [study.pk]})
    assert list(Participant.objects.filter(study=study).values_list("origin", flat=True)) == ["pilot"]
    page = client.get(url).content.decode()
    assert "preview_as_participant" not in page and "delete_test_runs" not in page
