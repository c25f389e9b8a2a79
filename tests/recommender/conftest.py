"""Shared fixtures: the real (offline) encoder and a tiny Myntra-like catalog."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recommender.catalog import CatalogItem

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ARTICLES = ("Tshirts", "Shirts", "Casual Shoes", "Jeans")
COLOURS = ("Black", "Blue", "Red", "White")
GENDERS = ("Men", "Women")
USAGES = ("Casual", "Formal")


@pytest.fixture(scope="session")
def encoder():
    """The packaged all-MiniLM-L6-v2, loaded once per test session."""
    from recommender.encoders import EncoderUnavailable, build_encoder

    try:
        return build_encoder("sentence-transformers")
    except EncoderUnavailable as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"encoder unavailable: {exc}")


@pytest.fixture(scope="session")
def tiny_catalog() -> list[CatalogItem]:
    """64 items: every article x colour x gender x usage, with Myntra attribute keys."""
    items = []
    for a in ARTICLES:
        for c in COLOURS:
            for g in GENDERS:
                for u in USAGES:
                    items.append(
                        CatalogItem(
                            item_id=f"{a}-{c}-{g}-{u}".lower().replace(" ", "_"),
                            title=f"{g} {c} {u} {a}",
                            attributes={
                                "gender": g,
                                "masterCategory": "Footwear" if "Shoes" in a else "Apparel",
                                "subCategory": "Shoes" if "Shoes" in a else "Topwear",
                                "articleType": a,
                                "baseColour": c,
                                "season": "Summer",
                                "year": "2012",
                                "usage": u,
                            },
                        )
                    )
    return items


def shared_data_dir() -> Path | None:
    """The real data folder, or None (tests that need it skip)."""
    from recommender.training.loaders import default_data_dir

    path = default_data_dir()
    return path if path is not None and path.is_dir() else None
