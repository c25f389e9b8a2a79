"""The admin keeps a study in draft while its WhisperLite system fails the request-fidelity probe."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from studyapp.models import RankingSystem, Study
from tests.recommender.checkpoints import write_checkpoint


def _form(catalog, systems: list[RankingSystem], **extra: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    form = {
        "title": "Fidelity", "slug": "fidelity", "status": "open", "catalog": catalog.pk,
        "systems": [s.pk for s in systems], "presentation_mode": "side_by_side", "k": 5, "seed": 0,
        "requests_per_participant": 2, "onboarding_picks": 3, "onboarding_grid_size": 24,
        "rating_scale": "graded4", "attention_failures_allowed": 1, "min_seconds_per_judgement": 1.0,
        "consent_text": "c", "instructions_text": "i", "debrief_text": "d",
        "external_id_param": "PROLIFIC_PID", "external_study_param": "STUDY_ID",
        "external_session_param": "SESSION_ID", "completion_code": "AAA", "screenout_code": "BBB",
        "questionnaire_items-TOTAL_FORMS": "0", "questionnaire_items-INITIAL_FORMS": "0",
    }  # fmt: skip
    form.update(extra)
    return form


@pytest.mark.slow
def test_admin_refuses_to_open_a_study_whose_whisperlite_fails_the_probe_unless_overridden(
    catalog, admin_client: Client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from studyapp import ranking_service

    encoder = ranking_service.get_encoder()
    bad = write_checkpoint(tmp_path / "bad.pt", encoder.encoder_id, encoder.dim, history_overrides=True)
    zero_shot = RankingSystem.objects.create(name="Zero-shot", kind=RankingSystem.Kind.ZERO_SHOT)
    deaf = RankingSystem.objects.create(
        name="Deaf WL", kind=RankingSystem.Kind.WHISPERLITE, checkpoint_path=str(bad)
    )

    response = admin_client.post("/admin/studyapp/study/add/", _form(catalog, [zero_shot, deaf]), follow=True)
    assert response.status_code == 200
    study = Study.objects.get(slug="fidelity")
    assert study.status == Study.Status.DRAFT
    assert "failed the request-fidelity probe" in response.content.decode()
    deaf.refresh_from_db()
    assert deaf.probe_passed is False and "FAIL" in deaf.probe_report and deaf.probe_key

    # The explicit override opens it, with a warning.
    data = _form(catalog, [zero_shot, deaf], probe_override="on")
    response = admin_client.post(f"/admin/studyapp/study/{study.pk}/change/", data, follow=True)
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN
    assert "Opened despite a failed request-fidelity probe" in response.content.decode()


@pytest.mark.slow
def test_admin_opens_a_study_whose_whisperlite_passes_the_probe(
    catalog, admin_client: Client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from studyapp import ranking_service

    encoder = ranking_service.get_encoder()
    good = write_checkpoint(tmp_path / "good.pt", encoder.encoder_id, encoder.dim, history_overrides=False)
    zero_shot = RankingSystem.objects.create(name="Zero-shot", kind=RankingSystem.Kind.ZERO_SHOT)
    listening = RankingSystem.objects.create(
        name="WL", kind=RankingSystem.Kind.WHISPERLITE, checkpoint_path=str(good)
    )
    admin_client.post("/admin/studyapp/study/add/", _form(catalog, [zero_shot, listening]))
    assert Study.objects.get(slug="fidelity").status == Study.Status.OPEN
    listening.refresh_from_db()
    assert listening.probe_passed is True
    assert admin_client.get(f"/admin/studyapp/rankingsystem/{listening.pk}/change/").status_code == 200


@pytest.mark.slow
def test_admin_keeps_a_study_in_draft_when_its_checkpoint_cannot_be_loaded(
    catalog, admin_client: Client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from studyapp import ranking_service

    encoder = ranking_service.get_encoder()
    alien = write_checkpoint(tmp_path / "alien.pt", "open_clip:other", encoder.dim, history_overrides=False)
    zero_shot = RankingSystem.objects.create(name="Zero-shot", kind=RankingSystem.Kind.ZERO_SHOT)
    wl = RankingSystem.objects.create(
        name="Alien WL", kind=RankingSystem.Kind.WHISPERLITE, checkpoint_path=str(alien)
    )
    response = admin_client.post("/admin/studyapp/study/add/", _form(catalog, [zero_shot, wl]), follow=True)
    assert Study.objects.get(slug="fidelity").status == Study.Status.DRAFT
    # The launch checklist runs first and already refuses a system that cannot load, so the
    # fidelity probe is never reached (and never stores a verdict for it).
    page = response.content.decode()
    assert "the launch checklist failed" in page and "Alien WL" in page
    wl.refresh_from_db()
    assert wl.probe_passed is None
