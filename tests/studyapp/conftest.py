"""Fixtures for the study app: an imported catalog, an open study, participants at each phase."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from studyapp.management.commands.import_catalog import import_catalog
from studyapp.models import Catalog, Participant, Study
from tests.studyapp.factories import ParticipantFactory, StudyFactory


@pytest.fixture
def catalog(db, sample_catalog_csv: Path) -> Catalog:
    catalog, errors = import_catalog("generic", str(sample_catalog_csv), "sample", "Sample", progress=False)
    assert errors == []
    return catalog


@pytest.fixture
def study(catalog: Catalog) -> Study:
    return StudyFactory(catalog=catalog)


def advance_to_tasks(client: Client, participant: Participant) -> None:
    """Consent, pick the first three grid items, read the instructions: through the real views."""
    from studyapp.services import onboarding_grid

    base = f"/p/{participant.token}/"
    client.post(base + "consent/", {"agree": "yes"})
    for item in onboarding_grid(participant)[:3]:
        client.post(base + f"picks/{item.pk}/")
    client.post(base + "onboarding/")
    client.post(base + "instructions/")
    participant.refresh_from_db()


@pytest.fixture
def participant(study: Study, client: Client) -> Participant:
    """A participant who has consented, picked three items and is at their first request."""
    p = ParticipantFactory(study=study)
    advance_to_tasks(client, p)
    assert p.phase == Participant.Phase.TASKS
    return p
