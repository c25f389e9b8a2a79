"""CSV exports and the API: flat columns, unblinded systems, one row per judgement."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from studyapp.exports import JUDGEMENT_COLUMNS
from studyapp.models import Judgement, Participant, Study
from tests.studyapp.test_participant_flow import judge_all, make_request

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def judged(participant: Participant, client: Client, django_capture_on_commit_callbacks) -> Participant:
    request = make_request(
        client, participant, django_capture_on_commit_callbacks, "navy formal shirt, size M"
    )
    judge_all(client, participant, request, label="2")
    client.post(f"/p/{participant.token}/judge/", {"slot": request.slots.first().pk, "label": "na"})
    assert client.post(f"/p/{participant.token}/requests/1/next/").status_code == 302
    return participant


def test_judgement_csv_has_one_flat_row_per_judgement_with_the_unblinded_system(
    judged: Participant, admin_client: Client
) -> None:
    response = admin_client.get(f"/researcher/studies/{judged.study_id}/export/judgements.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(response)
    assert list(rows[0]) == JUDGEMENT_COLUMNS
    assert len(rows) == Judgement.objects.count() == 8
    systems = set(judged.study.systems.values_list("name", flat=True))
    assert {r["system"] for r in rows} == systems
    for row in rows:
        assert row["request_text"] == "navy formal shirt, size M"
        assert (
            row["list_label"] in ("A", "B")
            and row["displayed_position"].isdigit()
            and row["system_rank"].isdigit()
        )
        assert not any(v.startswith(("{", "[")) for v in row.values())  # flat: no JSON in cells
    cant = [r for r in rows if r["cant_judge"] == "1"]
    assert len(cant) == 1 and cant[0]["label"] == ""


def test_pooled_item_returned_by_both_systems_yields_a_row_per_system(
    participant: Participant, client: Client, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    Study.objects.filter(pk=participant.study_id).update(presentation_mode=Study.Mode.POOLED)
    request = make_request(client, participant, django_capture_on_commit_callbacks, "casual shoes")
    judge_all(client, participant, request)
    rows = read_csv(admin_client.get(f"/researcher/studies/{participant.study_id}/export/judgements.csv"))
    shared = [s for s in request.slots.all() if len(s.system_ranks) == 2]
    assert len(rows) == sum(len(s.system_ranks) for s in request.slots.all())
    for slot in shared:
        assert len([r for r in rows if r["judgement_id"] == str(slot.judgement.pk)]) == 2


def test_participants_and_questionnaire_exports(judged: Participant, admin_client: Client) -> None:
    rows = read_csv(admin_client.get(f"/researcher/studies/{judged.study_id}/export/participants.csv"))
    assert len(rows) == 1 and rows[0]["judgements"] == "8" and len(rows[0]["history_item_ids"].split()) == 3
    assert read_csv(admin_client.get(f"/researcher/studies/{judged.study_id}/export/questionnaire.csv")) == []


def test_api_lists_judgements_and_exports_csv(judged: Participant, admin_client: Client) -> None:
    data = admin_client.get(f"/api/studies/{judged.study_id}/judgements/").json()
    assert data["count"] == 8
    assert data["results"][0]["request_text"] == "navy formal shirt, size M"
    rows = read_csv(admin_client.get(f"/api/studies/{judged.study_id}/export/?kind=judgements"))
    assert len(rows) == 8


@pytest.fixture
def judged_by_system(
    participant: Participant, client: Client, django_capture_on_commit_callbacks
) -> Participant:
    """One finished request whose labels differ by system, so every metric has a known value.

    Zero-shot's list: 3, 0, 0, 0 by rank -> P@4 = 1/4, MRR = 1.
    Blend's list:     0, 2, 0, 0 by rank -> P@4 = 1/4, MRR = 1/2.
    """
    request = make_request(client, participant, django_capture_on_commit_callbacks, "navy formal shirt")
    wanted = {("Zero-shot", 1): "3", ("Blend", 2): "2"}
    for slot in request.slots.select_related("team"):
        label = wanted.get((slot.team.name, slot.system_ranks[str(slot.team_id)]), "0")
        response = client.post(f"/p/{participant.token}/judge/", {"slot": slot.pk, "label": label})
        assert response.status_code == 302
    assert client.post(f"/p/{participant.token}/requests/1/next/").status_code == 302
    return participant


def test_api_report_gives_each_system_its_hand_computed_metrics(
    judged_by_system: Participant, admin_client: Client
) -> None:
    report = admin_client.get(f"/api/studies/{judged_by_system.study_id}/report/").json()
    assert (report["mode"], report["n_requests"], report["n_judgements"]) == ("side_by_side", 1, 8)
    systems = {s["system"]: s for s in report["systems"]}
    assert systems["Zero-shot"]["metrics"]["precision"]["mean"] == pytest.approx(0.25)
    assert systems["Blend"]["metrics"]["precision"]["mean"] == pytest.approx(0.25)
    assert systems["Zero-shot"]["metrics"]["mrr"]["mean"] == pytest.approx(1.0)
    assert systems["Blend"]["metrics"]["mrr"]["mean"] == pytest.approx(0.5)


def test_api_schema_lists_the_judgement_endpoint(admin_client: Client) -> None:
    schema = admin_client.get("/api/schema/?format=json").json()
    assert "/api/studies/{id}/judgements/" in schema["paths"]


def test_researcher_page_shows_each_systems_metrics(
    judged_by_system: Participant, admin_client: Client
) -> None:
    page = admin_client.get(f"/researcher/studies/{judged_by_system.study_id}/").content.decode()
    assert 'id="n-judgements">8' in page
    # The metrics table row of each system: requests, then P@4, nDCG@4 and MRR (one request: no CI).
    row = r'<tr><th scope="row">{}</th><td>1</td><td>0\.250 </td><td>[0-9.]+ </td><td>{} </td></tr>'
    assert re.search(row.format("Zero-shot", r"1\.000"), page)
    assert re.search(row.format("Blend", r"0\.500"), page)
    assert 'id="figure-metrics"' in page  # and the chart drawn from the same report


def test_study_report_command_prints_per_system_metrics(judged_by_system: Participant, capsys) -> None:
    call_command("study_report", judged_by_system.study.slug, "--resamples", "200")
    out = capsys.readouterr().out
    assert re.search(r"^\| Zero-shot \| 1 \| 0\.250 [^|]+\|[^|]+\| 1\.000 [^|]+\|$", out, re.MULTILINE)
    assert re.search(r"^\| Blend \| 1 \| 0\.250 [^|]+\|[^|]+\| 0\.500 [^|]+\|$", out, re.MULTILINE)


def test_report_counts_an_item_judged_in_both_lists_twice(judged: Participant) -> None:
    from studyapp.reporting import build_study_report

    report = build_study_report(judged.study, n_resamples=100)
    assert report.n_judgements == Judgement.objects.filter(slot__is_attention_check=False).count() == 8


def test_report_counts_judgements_by_id_not_by_item() -> None:
    from studyapp.analysis.records import Credit, JudgementRecord
    from studyapp.analysis.report import build_report
    from studyapp.design import GRADED4

    shared = {"participant_id": 1, "request_id": 1, "item_id": "x", "displayed_position": 1}
    rows = [
        JudgementRecord(**shared, judgement_id=10, label=3, credits=(Credit("A", 1),)),  # in List A ...
        JudgementRecord(**shared, judgement_id=11, label=1, credits=(Credit("B", 1),)),  # ... and List B
    ]
    assert build_report(rows, GRADED4, k=5, mode="side_by_side", n_resamples=50).n_judgements == 2


def test_formula_like_request_text_cannot_run_in_a_spreadsheet(
    participant: Participant, client: Client, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    request = make_request(
        client, participant, django_capture_on_commit_callbacks, '=HYPERLINK("http://evil.example","x")'
    )
    judge_all(client, participant, request)
    rows = read_csv(admin_client.get(f"/researcher/studies/{participant.study_id}/export/judgements.csv"))
    assert {r["request_text"] for r in rows} == {'\'=HYPERLINK("http://evil.example","x")'}
    assert all(r["label"] == "2" for r in rows)  # numeric columns are untouched


def test_report_leaves_out_unfinished_requests_and_screened_out_participants(
    judged: Participant, client: Client, django_capture_on_commit_callbacks
) -> None:
    from studyapp.reporting import build_study_report

    before = build_study_report(judged.study, n_resamples=50).n_judgements
    request = make_request(
        client, judged, django_capture_on_commit_callbacks, "second request, left half rated"
    )
    client.post(f"/p/{judged.token}/judge/", {"slot": request.slots.first().pk, "label": "3"})
    assert build_study_report(judged.study, n_resamples=50).n_judgements == before == 8
    Participant.objects.filter(pk=judged.pk).update(phase=Participant.Phase.SCREENED_OUT)
    assert build_study_report(judged.study, n_resamples=50).n_judgements == 0
    assert Judgement.objects.filter(participant=judged).count() == 9  # the export keeps all of them


def test_api_lists_real_participants_by_default_and_marks_test_runs(
    judged: Participant, admin_client: Client
) -> None:
    """A pilot run's judgements never show up unmarked among real data."""
    Participant.objects.filter(pk=judged.pk).update(origin=Participant.Origin.PILOT)
    base = f"/api/studies/{judged.study_id}"
    assert admin_client.get(f"{base}/judgements/").json()["count"] == 0
    assert admin_client.get(f"{base}/participants/").json()["count"] == 0
    assert admin_client.get(f"{base}/").json()["participants"] == 0
    pilot = admin_client.get(f"{base}/judgements/?group=pilot").json()
    assert pilot["count"] == 8
    assert {(r["origin"], r["is_pilot"], r["is_simulated"]) for r in pilot["results"]} == {
        ("pilot", True, False)
    }
    people = admin_client.get(f"{base}/participants/?group=pilot").json()["results"]
    assert [(p["origin"], p["is_pilot"], p["is_simulated"]) for p in people] == [("pilot", True, False)]
    assert admin_client.get(f"{base}/participants/?group=simulated").json()["count"] == 0


def test_api_real_rows_say_they_are_real(judged: Participant, admin_client: Client) -> None:
    base = f"/api/studies/{judged.study_id}"
    row = admin_client.get(f"{base}/judgements/?group=real").json()["results"][0]
    assert (row["origin"], row["is_pilot"], row["is_simulated"]) == ("real", False, False)
    assert admin_client.get(f"{base}/").json()["participants"] == 1


@pytest.mark.parametrize("endpoint", ["participants", "judgements"])
def test_api_rejects_an_unknown_participant_group(
    judged: Participant, admin_client: Client, endpoint: str
) -> None:
    response = admin_client.get(f"/api/studies/{judged.study_id}/{endpoint}/?group=bogus")
    assert response.status_code == 400
    assert "group" in response.json()


def test_formula_like_system_names_kinds_and_versions_cannot_run_in_a_spreadsheet(
    judged: Participant, admin_client: Client
) -> None:
    from studyapp.models import RankedList, RankingSystem

    first, second = judged.study.systems.order_by("pk")
    RankingSystem.objects.filter(pk=first.pk).update(name="=cmd|' /C calc'!A0", kind="+kind")
    RankingSystem.objects.filter(pk=second.pk).update(name="-system", kind="+kind")
    RankedList.objects.filter(request__participant=judged).update(version="@SUM(1)")
    rows = read_csv(admin_client.get(f"/researcher/studies/{judged.study_id}/export/judgements.csv"))
    assert {r["system"] for r in rows} == {"'=cmd|' /C calc'!A0", "'-system"}
    assert {r["system_kind"] for r in rows} == {"'+kind"}
    assert {r["model_version"] for r in rows} == {"'@SUM(1)"}
