"""The launch checklist: what must hold before a study opens, and how long it takes a participant.

:func:`launch_checklist` runs every check and says what to do about each failure. Checks
marked ``blocking`` stop the admin from opening the study; the others are advice. Loading
the systems is done for real (:func:`studyapp.ranking_service.get_ranker` plus one ranking),
so a checkpoint that cannot be read or was trained with another encoder fails here, not on
the first participant's request. The catalog must already be embedded, and a large catalog's
search indexes built: the checklist never does either inside a web request (that can take
minutes), it says which command does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from recommender.embeddings import cache_path
from studyapp import embedding_jobs
from studyapp.models import Study

# Seconds a participant spends on each part: rough figures from piloting the demo study
# (shared host, one researcher), meant for planning and pay, not as a promise.
SECONDS_CONSENT_AND_INSTRUCTIONS = 90
SECONDS_ONBOARDING_BASE = 45  # scanning the grid
SECONDS_PER_PICK = 5
SECONDS_PER_REQUEST_TYPING = 30
SECONDS_PER_RANKING_WAIT = 5
SECONDS_PER_RATING = (4, 7)  # a quick and a careful rater
SECONDS_PER_PREFERENCE = 10
SECONDS_PER_QUESTION = 8

# "[Institution]"-style placeholders in the default consent and debrief texts.
PLACEHOLDER = re.compile(r"\[[A-Z][^\]]{1,60}\]")


@dataclass(frozen=True)
class DurationEstimate:
    """Minutes one participant needs, as a range (quick to careful rater, pooled overlap)."""

    low_minutes: int
    high_minutes: int
    ratings_low: int
    ratings_high: int

    def __str__(self) -> str:
        if self.low_minutes == self.high_minutes:
            return f"about {self.low_minutes} minutes"
        return f"about {self.low_minutes} to {self.high_minutes} minutes"


def items_per_request(study: Study, n_systems: int) -> tuple[int, int]:
    """Fewest and most items one request shows, from k, the number of systems and the mode."""
    k = study.k
    check = 1 if study.attention_checks else 0
    if study.presentation_mode == Study.Mode.SIDE_BY_SIDE:
        return k * n_systems, k * n_systems  # the check replaces a list's last item
    if study.presentation_mode == Study.Mode.INTERLEAVED:
        return k + check, k + check
    return k + check, k * n_systems + check  # pooled: identical lists up to disjoint lists


def estimate_duration(study: Study, n_systems: int | None = None) -> DurationEstimate:
    """Minutes per participant from k, systems, requests, practice, mode and questionnaire length."""
    if n_systems is None:
        n_systems = study.systems.count() if study.pk else 2
    n_systems = max(n_systems, 2)
    requests = study.requests_per_participant + (1 if study.practice_request else 0)
    fewest, most = items_per_request(study, n_systems)
    questions = study.questionnaire_items.count() if study.pk else 0
    fixed = (
        SECONDS_CONSENT_AND_INSTRUCTIONS
        + SECONDS_ONBOARDING_BASE
        + SECONDS_PER_PICK * study.onboarding_picks
        + requests * (SECONDS_PER_REQUEST_TYPING + SECONDS_PER_RANKING_WAIT)
        + (requests * SECONDS_PER_PREFERENCE if study.asks_list_preference else 0)
        + questions * SECONDS_PER_QUESTION
    )
    low = fixed + requests * fewest * SECONDS_PER_RATING[0]
    high = fixed + requests * most * SECONDS_PER_RATING[1]
    return DurationEstimate(
        low_minutes=max(1, round(low / 60)),
        high_minutes=max(1, round(high / 60)),
        ratings_low=requests * fewest,
        ratings_high=requests * most,
    )


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    blocking: bool = True


def _catalog_checks(study: Study, encoder_id: str | None) -> tuple[list[Check], bool]:
    catalog = study.catalog
    n_items = catalog.items.count()
    needed = max(study.onboarding_grid_size, study.k * 2 + study.onboarding_picks)
    checks = [
        Check(
            "Catalog imported",
            n_items >= needed,
            f"{catalog.name}: {n_items} items"
            + ("" if n_items >= needed else f"; this design needs at least {needed} (grid and lists)."),
        )
    ]
    embedded = False
    if encoder_id is not None:
        path = cache_path(settings.WHISPERLITE_CACHE_DIR, encoder_id, catalog.version)
        embedded = bool(catalog.version) and path.exists()
        running = None if embedded else embedding_jobs.progress(catalog, encoder_id)
        if embedded:
            detail = f"item embeddings for {encoder_id} are cached"
        elif running is not None:
            detail = (
                f"embedding in progress on the workers: {running}; `manage.py embed_catalog {catalog.slug}` "
                "shows it live and resumes a stalled job."
            )
        else:
            detail = (
                f"no cached embeddings for catalog version {catalog.version or '(none)'} with {encoder_id}: "
                f"run `manage.py embed_catalog {catalog.slug}` (or `import_catalog {catalog.source} PATH --embed`, "
                "or `setup_demo`) first."
            )
        checks.append(Check("Catalog embedded", embedded, detail))
    return checks, embedded


def _system_checks(study: Study, embedded: bool) -> list[Check]:
    from studyapp import ranking_service

    systems = list(study.systems.all())
    checks = [
        Check(
            "At least two systems",
            len(systems) >= 2,
            f"{len(systems)} chosen" + ("" if len(systems) >= 2 else ": a study compares two or more."),
        )
    ]
    missing = ranking_service.missing_search_indexes(study.catalog, systems) if embedded else []
    if embedded and ranking_service.needs_search_index(study.catalog):
        # Building a million-item index takes minutes: never inside this web request, and never
        # on a participant's first request either.
        checks.append(
            Check(
                "Search index built",
                not missing,
                "large catalog: ranked through its approximate index, built for every system"
                if not missing
                else f"not built yet for: {', '.join(missing)}. Run `manage.py build_search_index "
                f"{study.catalog.slug}` (minutes for a million items) first.",
            )
        )
    for system in systems:
        if not embedded:
            checks.append(Check(f"System loads: {system.name}", False, "needs the embedded catalog first."))
            continue
        if missing:
            checks.append(Check(f"System loads: {system.name}", False, "needs the search index first."))
            continue
        try:
            ranker = ranking_service.get_ranker(system, study.catalog)
            ranked = ranker.rank("casual shoes", [], study.k)
        except Exception as exc:  # any failure here is what a participant's request would hit
            checks.append(Check(f"System loads: {system.name}", False, f"{type(exc).__name__}: {exc}"))
            continue
        ok = len(ranked.item_ids) == study.k
        checks.append(
            Check(
                f"System loads: {system.name}",
                ok,
                f"{system.get_kind_display()}; ranked a test request ({ranker.version})"
                if ok
                else f"returned {len(ranked.item_ids)} items for k = {study.k}",
            )
        )
    return checks


def _text_checks(study: Study) -> list[Check]:
    checks = []
    for field, label in (
        ("consent_text", "Consent text"),
        ("instructions_text", "Instructions"),
        ("debrief_text", "Debrief text"),
    ):
        text = getattr(study, field).strip()
        left = sorted(set(PLACEHOLDER.findall(text)))
        ok = bool(text) and not left
        detail = (
            "filled in" if ok else ("empty" if not text else "replace the placeholders " + ", ".join(left))
        )
        checks.append(Check(label, ok, detail))
    n_questions = study.questionnaire_items.count()
    checks.append(
        Check(
            "Questionnaire",
            n_questions > 0,
            f"{n_questions} questions"
            if n_questions
            else "no questions: participants go straight to the debrief.",
            blocking=False,
        )
    )
    return checks


def launch_checklist(study: Study, load_systems: bool = True) -> list[Check]:
    """Every check, blocking ones first within each group; see the module docstring."""
    encoder_id = None
    checks: list[Check] = []
    try:
        from studyapp import ranking_service

        encoder_id = ranking_service.get_encoder().encoder_id
    except Exception as exc:
        checks.append(Check("Encoder loads", False, f"{settings.WHISPERLITE_ENCODER}: {exc}"))
    catalog_checks, embedded = _catalog_checks(study, encoder_id)
    checks += catalog_checks
    if load_systems:
        checks += _system_checks(study, embedded)
    checks += _text_checks(study)
    estimate = estimate_duration(study)
    checks.append(
        Check(
            "Estimated duration per participant",
            True,
            f"{estimate} ({estimate.ratings_low}"
            + (f"–{estimate.ratings_high}" if estimate.ratings_high != estimate.ratings_low else "")
            + " ratings); shown on the consent page.",
            blocking=False,
        )
    )
    return checks


def blocking_failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.blocking and not c.ok]
