"""The demo study shows a newcomer every feature, and passes its own launch checklist."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from studyapp import launch
from studyapp.models import Study

pytestmark = pytest.mark.django_db


def test_demo_study_has_practice_attention_checks_and_list_preference(settings, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = str(tmp_path)
    call_command("setup_demo", "--sample", "--skip-training")
    study = Study.objects.get(slug="demo")
    assert study.practice_request and study.attention_checks and study.asks_list_preference
    assert study.k == 5
    questions = [q.text for q in study.questionnaire_items.all()]
    assert len(questions) == 4 and all("two lists" in q or "better list" in q for q in questions)
    checks = launch.launch_checklist(study)
    assert launch.blocking_failures(checks) == [], checks
    assert "Participant link" in capsys.readouterr().out
