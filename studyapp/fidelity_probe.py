"""The request-fidelity probe for study systems: run once per checkpoint and catalog, stored.

A WhisperLite checkpoint that lets the participant's history override what they ask for
(issue 7) would make a study measure that flaw. Before a study opens, every WhisperLite
system in it is probed on the study's catalog (:func:`recommender.training.probe.fidelity_report`:
a small fixed request set, WhisperLite against zero-shot) and the verdict is stored on the
system, keyed by checkpoint digest, catalog version and encoder, so the probe reruns only
when one of them changes. The admin keeps a study whose system fails in draft unless the
researcher ticks ``Study.probe_override``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from recommender.checkpoint import CheckpointError, file_digest
from recommender.training.fashioniq import Phrasing, load_phrasings
from recommender.training.probe import fidelity_report
from studyapp import ranking_service
from studyapp.models import Catalog, RankingSystem, Study

log = logging.getLogger(__name__)


def _phrasings() -> list[Phrasing]:
    """The FashionIQ benchmark-half phrasings when the shared data holds them, else none."""
    data_dir = settings.WHISPERLITE_DATA_DIR
    folder = Path(data_dir) / "fashioniq_captions" if data_dir else None
    if folder is None or not folder.is_dir():
        return []
    try:
        return load_phrasings(folder, "test")
    except (OSError, ValueError) as exc:
        log.warning("FashionIQ phrasings unreadable, probing with templates only: %s", exc)
        return []


def probe_system(system: RankingSystem, catalog: Catalog) -> RankingSystem:
    """Probe ``system`` on ``catalog`` unless a stored result for the same inputs exists.

    Stores ``probe_passed`` (``False`` also for a checkpoint that cannot be loaded; ``None``
    when the probe does not apply, e.g. a catalog without colour/type attributes) and the
    printed report.
    """
    if system.kind != RankingSystem.Kind.WHISPERLITE:
        return system
    encoder = ranking_service.get_encoder()
    try:
        digest = file_digest(system.checkpoint_path)
    except OSError:
        digest = "missing"
    key = f"{digest}:{catalog.version}:{encoder.encoder_id}"[:200]
    if system.probe_key == key and system.probe_checked_at is not None:
        return system
    try:
        report = fidelity_report(
            ranking_service.catalog_items(catalog),
            ranking_service.get_index(catalog),
            encoder,
            system.checkpoint_path,
            phrasings=_phrasings(),
        )
        passed: bool | None = report.passed
        text = report.text()
    except CheckpointError as exc:
        # An unloadable checkpoint (missing, another encoder, the old format-1 network) would
        # fail every participant request: that blocks opening like a failed probe.
        passed, text = False, f"FAIL: checkpoint unusable: {exc}\n  - {exc}"
    except (ValueError, OSError) as exc:
        # E.g. a catalog without colour/type attributes: the probe does not apply.
        passed, text = None, f"probe not run: {exc}"
    system.probe_passed, system.probe_report, system.probe_key = passed, text, key
    system.probe_checked_at = timezone.now()
    system.save(update_fields=["probe_passed", "probe_report", "probe_key", "probe_checked_at"])
    return system


def failing_systems(study: Study) -> list[RankingSystem]:
    """The study's WhisperLite systems that fail the probe on its catalog (probing as needed)."""
    return [
        s
        for s in (probe_system(s, study.catalog) for s in study.systems.all())
        if s.kind == RankingSystem.Kind.WHISPERLITE and s.probe_passed is False
    ]
