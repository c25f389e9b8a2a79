"""The launch checklist and the duration estimate: what must hold before a study opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from studyapp import launch, ranking_service
from studyapp.models import QuestionnaireItem, RankingSystem, Study
from tests.studyapp.factories import RankingSystemFactory, StudyFactory

pytestmark = pytest.mark.django_db

FILLED = {
    "consent_text": "We are X. Contact x@example.org.",
    "debrief_text": "Thanks. Contact x@example.org.",
}


def by_name(checks: list[launch.Check]) -> dict[str, launch.Check]:
    return {c.name: c for c in checks}


def test_new_study_defaults_are_light_and_ask_for_the_ethics_details(catalog) -> None:  # type: ignore[no-untyped-def]
    study = Study(title="t", slug="t", catalog=catalog)
    assert study.k == 5
    for field in (
        "[Institution]",
        "[email address]",
        "[Payment",
        "[retention period]",
        "withdraw",
        "Purpose",
    ):
        assert field in study.consent_text
    assert not study.debrief_text.startswith("Thank you")  # the page heading already says it


def test_duration_estimate_side_by_side_counts_every_rating() -> None:
    study = Study(
        k=5, requests_per_participant=3, onboarding_picks=3, presentation_mode=Study.Mode.SIDE_BY_SIDE
    )
    estimate = launch.estimate_duration(study, n_systems=2)
    assert (estimate.ratings_low, estimate.ratings_high) == (30, 30)
    fixed = 90 + 45 + 5 * 3 + 3 * (30 + 5)
    assert estimate.low_minutes == round((fixed + 30 * 4) / 60)
    assert estimate.high_minutes == round((fixed + 30 * 7) / 60)
    assert str(estimate) == f"about {estimate.low_minutes} to {estimate.high_minutes} minutes"


def test_duration_grows_with_k_practice_and_mode() -> None:
    designs = {
        "base": Study(k=5, requests_per_participant=3, presentation_mode=Study.Mode.SIDE_BY_SIDE),
        "bigger": Study(k=10, requests_per_participant=3, presentation_mode=Study.Mode.SIDE_BY_SIDE),
        "practice": Study(k=5, requests_per_participant=3, practice_request=True),
        "interleaved": Study(k=5, requests_per_participant=3, presentation_mode=Study.Mode.INTERLEAVED),
        "pooled": Study(
            k=5, requests_per_participant=3, presentation_mode=Study.Mode.POOLED, attention_checks=True
        ),
    }
    minutes = {name: launch.estimate_duration(study, n_systems=2) for name, study in designs.items()}
    assert minutes["bigger"].high_minutes > minutes["base"].high_minutes
    assert minutes["practice"].ratings_low == 40  # four requests of ten items
    assert minutes["interleaved"].ratings_low == 15
    assert (minutes["pooled"].ratings_low, minutes["pooled"].ratings_high) == (18, 33)


def test_checklist_passes_for_an_embedded_catalog_and_loadable_systems(catalog) -> None:  # type: ignore[no-untyped-def]
    ranking_service.warm_up(catalog)  # embeds into the cache the checklist looks at
    study = StudyFactory(catalog=catalog, status=Study.Status.DRAFT, **FILLED)
    QuestionnaireItem.objects.create(study=study, text="The lists matched my requests.")
    checks = launch.launch_checklist(study)
    assert launch.blocking_failures(checks) == [], checks
    names = by_name(checks)
    assert names["Catalog embedded"].ok
    assert "ranked a test request" in names["System loads: Zero-shot"].detail
    assert "minutes" in names["Estimated duration per participant"].detail


def test_checklist_fails_when_the_catalog_is_not_embedded(catalog, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.WHISPERLITE_CACHE_DIR = str(tmp_path / "empty-cache")
    study = StudyFactory(catalog=catalog, **FILLED)
    names = by_name(launch.launch_checklist(study))
    assert not names["Catalog embedded"].ok and "--embed" in names["Catalog embedded"].detail
    assert not names["System loads: Blend"].ok  # never embeds inside a web request


def test_checklist_fails_for_an_unreadable_checkpoint(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ranking_service.warm_up(catalog)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    system = RankingSystem.objects.create(
        name="Broken WhisperLite", kind=RankingSystem.Kind.WHISPERLITE, checkpoint_path=str(broken)
    )
    study = StudyFactory(catalog=catalog, systems=[system, RankingSystemFactory(name="Zero")], **FILLED)
    check = by_name(launch.launch_checklist(study))["System loads: Broken WhisperLite"]
    assert not check.ok and "not a readable WhisperLite checkpoint" in check.detail


def test_checklist_lists_placeholders_left_in_the_texts(catalog) -> None:  # type: ignore[no-untyped-def]
    study = StudyFactory(catalog=catalog)  # default consent text: placeholders everywhere
    check = by_name(launch.launch_checklist(study, load_systems=False))["Consent text"]
    assert not check.ok and "[Institution]" in check.detail
    assert by_name(launch.launch_checklist(study, load_systems=False))["Debrief text"].ok is False


def admin_form(catalog, systems, **overrides) -> dict:  # type: ignore[no-untyped-def]
    form = {
        "title": "Launch", "slug": "launch", "status": "open", "catalog": catalog.pk,
        "systems": [s.pk for s in systems], "presentation_mode": "side_by_side", "k": 5, "seed": 0,
        "requests_per_participant": 2, "onboarding_picks": 3, "onboarding_grid_size": 24,
        "rating_scale": "graded4", "attention_failures_allowed": 1, "min_seconds_per_judgement": 1.0,
        "instructions_text": "i", "external_id_param": "PROLIFIC_PID", "external_study_param": "STUDY_ID",
        "external_session_param": "SESSION_ID", "completion_code": "AAA", "screenout_code": "BBB",
        "questionnaire_items-TOTAL_FORMS": "0", "questionnaire_items-INITIAL_FORMS": "0", **FILLED,
    }  # fmt: skip
    form.update(overrides)
    return form


def test_admin_keeps_a_study_with_placeholders_in_draft(catalog, admin_client: Client) -> None:  # type: ignore[no-untyped-def]
    systems = [
        RankingSystemFactory(name="A"),
        RankingSystemFactory(name="B", kind=RankingSystem.Kind.HISTORY_BLEND),
    ]
    form = admin_form(catalog, systems, consent_text=Study._meta.get_field("consent_text").default)
    response = admin_client.post("/admin/studyapp/study/add/", form, follow=True)
    assert Study.objects.get(slug="launch").status == Study.Status.DRAFT
    assert "launch checklist failed: Consent text" in response.content.decode()


def test_admin_opens_a_study_that_passes_and_shows_the_checklist_on_drafts(
    catalog, admin_client: Client
) -> None:  # type: ignore[no-untyped-def]
    ranking_service.warm_up(catalog)
    systems = [
        RankingSystemFactory(name="A"),
        RankingSystemFactory(name="B", kind=RankingSystem.Kind.HISTORY_BLEND),
    ]
    draft = StudyFactory(catalog=catalog, status=Study.Status.DRAFT, systems=systems, **FILLED)
    page = admin_client.get(f"/admin/studyapp/study/{draft.pk}/change/").content.decode()
    assert 'id="launch-checklist"' in page and "System loads: B" in page and "✔ ok" in page
    admin_client.post("/admin/studyapp/study/add/", admin_form(catalog, systems))
    assert Study.objects.get(slug="launch").status == Study.Status.OPEN


def test_consent_page_shows_the_estimated_duration(study: Study, client: Client) -> None:
    page = client.get(f"/s/{study.token}/", follow=True).content.decode()
    estimate = launch.estimate_duration(study)
    assert f"This study takes {estimate}" in page
