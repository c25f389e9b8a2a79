"""A large catalog in the app: its search indexes are built ahead of participants, then used."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from recommender.ann import IvfSearch
from recommender.embeddings import cache_path
from studyapp import launch, ranking_service
from studyapp.models import RankingSystem
from tests.recommender.checkpoints import write_checkpoint
from tests.studyapp.factories import RankingSystemFactory, StudyFactory

pytestmark = pytest.mark.django_db

FILLED = {
    "consent_text": "We are X. Contact x@example.org.",
    "debrief_text": "Thanks. Contact x@example.org.",
}


def test_a_large_catalogs_study_opens_only_once_its_search_indexes_are_built(
    catalog, settings, tmp_path: Path, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    encoder_id = ranking_service.get_encoder().encoder_id
    cache = tmp_path / "cache"
    embedded = cache_path(settings.WHISPERLITE_CACHE_DIR, encoder_id, catalog.version)
    if embedded.exists():  # the session's other tests embedded this catalog: reuse, don't re-encode
        target = cache_path(cache, encoder_id, catalog.version)
        target.parent.mkdir(parents=True)
        shutil.copy(embedded, target)
    settings.WHISPERLITE_CACHE_DIR = str(cache)
    settings.WHISPERLITE_ANN_MIN_ITEMS = 100  # the 240-item sample catalog counts as large here
    checkpoint = write_checkpoint(tmp_path / "wl.pt", encoder_id, 384, history_overrides=False)
    whisperlite = RankingSystem.objects.create(
        name="WL", kind=RankingSystem.Kind.WHISPERLITE, checkpoint_path=str(checkpoint)
    )
    study = StudyFactory(catalog=catalog, systems=[whisperlite, RankingSystemFactory(name="Zero")], **FILLED)
    index = ranking_service.get_index(catalog)  # embedded (and memory-mapped), no search index yet
    assert index.shared

    checks = {c.name: c for c in launch.launch_checklist(study)}
    assert not checks["Search index built"].ok and checks["Search index built"].blocking
    assert f"build_search_index {catalog.slug}" in checks["Search index built"].detail
    assert not checks["System loads: WL"].ok
    assert not list(cache.rglob("*.ivf"))  # the checklist (a web request) built nothing

    out = StringIO()
    call_command("build_search_index", catalog.slug, stdout=out)
    assert "ready" in out.getvalue()
    assert len(list(cache.rglob("*.ivf"))) == 2  # content (zero-shot, blend) + the checkpoint's item tower
    assert launch.blocking_failures(launch.launch_checklist(study)) == []
    for system in study.systems.all():
        assert isinstance(ranking_service.get_ranker(system, catalog).search, IvfSearch)

    # A new worker process opens the shared index by catalog version, without reading items.
    ranking_service._indexes.clear()
    with django_assert_num_queries(0):
        assert ranking_service.get_index(catalog).shared
