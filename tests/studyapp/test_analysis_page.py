"""The researcher's analysis page: HTML tables, server-drawn figures, explanations, downloads."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from studyapp import analysis_page, monitoring, reporting, services
from studyapp.models import Judgement, Participant, Study
from tests.studyapp.conftest import advance_to_tasks
from tests.studyapp.factories import ParticipantFactory
from tests.studyapp.test_pilot_mode import finish_one_request

pytestmark = pytest.mark.django_db


def run_whole_study(client: Client, participant: Participant, capture, label: str = "2") -> None:  # type: ignore[no-untyped-def]
    """Consent to debrief through the real views: every request rated and finished."""
    advance_to_tasks(client, participant)
    for _ in range(participant.study.requests_per_participant):
        finish_one_request(client, participant, capture, label=label)
    assert client.post(f"/p/{participant.token}/questionnaire/", {}).status_code == 302
    participant.refresh_from_db()
    assert participant.phase == Participant.Phase.DONE


@pytest.fixture
def finished(study: Study, client: Client, django_capture_on_commit_callbacks) -> Participant:
    p = ParticipantFactory(study=study, number=1)
    run_whole_study(client, p, django_capture_on_commit_callbacks)
    return p


def test_empty_study_explains_why_each_section_is_empty(study: Study, admin_client: Client) -> None:
    page = admin_client.get(f"/researcher/studies/{study.pk}/").content.decode()
    assert "No participants yet" in page
    assert "No finished requests from participants yet" in page
    assert "No participants have finished the whole study yet" in page
    assert "<svg" not in page  # no empty charts
    assert '<td id="n-participants">0</td>' in page


def test_page_renders_tables_and_figures_with_full_system_names(
    finished: Participant, admin_client: Client
) -> None:
    study = finished.study
    study.systems.filter(name="Blend").update(name="WhisperLite (demo checkpoint, a long descriptive name)")
    page = admin_client.get(f"/researcher/studies/{study.pk}/").content.decode()
    assert '<table class="data" id="systems-table">' in page
    assert "<pre" not in page  # no Markdown dump
    for header in ("P@4 [95% CI]", "nDCG@4 [95% CI]", "MRR [95% CI]"):
        assert header in page
    systems_table = page[
        page.index('id="systems-table"') : page.index("</table>", page.index('id="systems-table"'))
    ]
    assert "WhisperLite (demo checkpoint, a long descriptive name)" in systems_table
    for name in ("metrics", "positions", "progress", "minutes"):
        figure = re.search(rf'<figure id="figure-{name}">(.*?)</figure>', page, re.S)
        assert figure is not None, name
        assert "<svg" in figure.group(1)
    metrics_svg = re.search(r'<figure id="figure-metrics">(.*?)</figure>', page, re.S).group(1)
    # The legend carries the whole name (text kept as text), and the axes are labelled.
    assert "WhisperLite (demo checkpoint, a long descriptive name) (n = 2 requests)" in metrics_svg
    assert "mean per request (0 to 1)" in metrics_svg
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # several inline SVGs, no clashing ids


def test_counts_agree_between_progress_and_analysis(
    finished: Participant, client: Client, admin_client: Client
) -> None:
    ParticipantFactory(study=finished.study, number=2)  # joined, has not finished a request
    page = admin_client.get(f"/researcher/studies/{finished.study_id}/").content.decode()
    assert '<td id="n-participants">2</td>' in page
    assert re.search(r'id="n-analysed">1 participant, 2 requests, (\d+) judgements', page)
    analysed = int(re.search(r'id="n-analysed">1 participant, 2 requests, (\d+) judgements', page).group(1))
    assert analysed == Judgement.objects.filter(participant=finished).count()


def test_time_per_participant_and_flags(finished: Participant, admin_client: Client) -> None:
    study = finished.study
    Judgement.objects.filter(participant=finished).update(too_fast=True)
    Participant.objects.filter(pk=finished.pk).update(attention_failures=1)
    rows = monitoring.participant_quality(study)
    assert [r.flags for r in rows] == [("fast", "attention")]
    assert rows[0].minutes is not None and rows[0].minutes >= 0
    page = admin_client.get(f"/researcher/studies/{study.pk}/").content.decode()
    assert 'id="minutes-summary"' in page and "n = 1" in page
    assert '<tr class="flagged"><td>P1</td>' in page


def test_minutes_summary_gives_median_and_quartiles() -> None:
    rows = [
        monitoring.ParticipantQuality(i, "done", "Finished", m, 3, 30, 0, 2.0, 0, ())
        for i, m in enumerate([4.0, 6.0, 8.0, 10.0, 12.0])
    ]
    assert monitoring.minutes_summary(rows) == {"n": 5, "median": 8.0, "q1": 6.0, "q3": 10.0}
    assert monitoring.minutes_summary([]) is None


def test_simulated_participants_are_shown_as_their_own_group(
    study: Study, admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    bot = services.do_join_test_run(study, Participant.Origin.SIMULATED)
    run_whole_study(admin_client, bot, django_capture_on_commit_callbacks)
    real_page = admin_client.get(f"/researcher/studies/{study.pk}/").content.decode()
    assert '<td id="n-participants">0</td>' in real_page
    sim_page = admin_client.get(f"/researcher/studies/{study.pk}/?group=simulated").content.decode()
    assert '<td id="n-participants">1</td>' in sim_page
    assert 'id="systems-table"' in sim_page
    assert admin_client.get(f"/researcher/studies/{study.pk}/?group=everyone").status_code == 404


def test_report_download_is_a_self_contained_html_file(finished: Participant, admin_client: Client) -> None:
    response = admin_client.get(f"/researcher/studies/{finished.study_id}/report.html")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{finished.study.slug}-report.html"'
    html = response.content.decode()
    assert "<style>" in html and "<svg" in html and 'id="systems-table"' in html
    assert "<link" not in html and "<script" not in html  # nothing to fetch when opened offline


def test_figures_download_as_png_and_svg(finished: Participant, admin_client: Client) -> None:
    base = f"/researcher/studies/{finished.study_id}/figures/"
    png = admin_client.get(base + "metrics.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = admin_client.get(base + "positions.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    assert admin_client.get(base + "nothing.png").status_code == 404
    assert admin_client.get(base + "metrics.gif").status_code == 404


def test_figure_without_data_is_404_not_an_empty_chart(study: Study, admin_client: Client) -> None:
    assert admin_client.get(f"/researcher/studies/{study.pk}/figures/metrics.png").status_code == 404


def test_analysis_pages_need_staff(finished: Participant, client: Client) -> None:
    for path in ("", "report.html", "figures/metrics.png"):
        response = client.get(f"/researcher/studies/{finished.study_id}/{path}")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_unknown_group_is_refused_by_the_page_builder(study: Study) -> None:
    with pytest.raises(ValueError):
        analysis_page.analysis_page(study, "everyone")


def test_a_downloaded_figure_shows_the_same_confidence_intervals_as_the_page(
    study: Study, client: Client, admin_client: Client, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    for number, label in ((1, "2"), (2, "0")):
        run_whole_study(
            client, ParticipantFactory(study=study, number=number), django_capture_on_commit_callbacks, label
        )
        client.logout()
    built: list[tuple[int, list]] = []
    real_build = reporting.build_study_report

    def spy(study, n_resamples=reporting.N_RESAMPLES, origin=Participant.Origin.REAL):  # type: ignore[no-untyped-def]
        report = real_build(study, n_resamples=n_resamples, origin=origin)
        cis = [
            (s.system, m, s.metrics[m].ci_low, s.metrics[m].ci_high)
            for s in report.systems
            for m in s.metrics
        ]
        built.append((n_resamples, cis))
        return report

    monkeypatch.setattr(reporting, "build_study_report", spy)
    assert admin_client.get(f"/researcher/studies/{study.pk}/").status_code == 200
    assert admin_client.get(f"/researcher/studies/{study.pk}/figures/metrics.svg").status_code == 200
    (page_resamples, page_cis), (figure_resamples, figure_cis) = built
    assert page_resamples == figure_resamples == reporting.N_RESAMPLES
    assert any(low is not None for _, _, low, _ in page_cis)  # there are intervals to compare
    assert figure_cis == page_cis


@pytest.mark.parametrize("path", ["", "report.html", "figures/metrics.png", "figures/positions.svg"])
def test_an_unknown_group_is_404_on_the_page_report_and_figures(
    finished: Participant, admin_client: Client, path: str
) -> None:
    response = admin_client.get(f"/researcher/studies/{finished.study_id}/{path}?group=bogus")
    assert response.status_code == 404
