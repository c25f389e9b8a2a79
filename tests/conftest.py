"""Suite-wide fixtures: the packaged sample catalog on disk, shared by every test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """The real data folder (``WHISPERLITE_DATA_DIR`` or ../shared/data), if it exists."""
    path = Path(os.environ.get("WHISPERLITE_DATA_DIR", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def sample_catalog_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's own generated catalog (240 items with pictures), written once per session."""
    from recommender.catalog.sample import write_sample_catalog

    return write_sample_catalog(tmp_path_factory.mktemp("sample_catalog"))
