"""The project's own synthetic catalog: importable, deterministic, with real pictures."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from recommender.catalog.readers import MYNTRA_ATTRIBUTE_KEYS, read_generic
from recommender.catalog.sample import ARTICLE_TYPES, COLOURS, write_sample_catalog


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_catalog(tmp_path_factory.mktemp("sample"))


def test_imports_cleanly_with_myntra_attributes(sample: Path) -> None:
    assert sample.name == "catalog.csv"
    result = read_generic(sample)
    assert result.errors == [] and result.warnings == []
    assert len(result.items) == 240
    assert len({i.item_id for i in result.items}) == 240
    for item in result.items:
        assert set(item.attributes) == set(MYNTRA_ATTRIBUTE_KEYS)
        assert item.attributes["gender"] in ("Men", "Women")
        assert item.attributes["baseColour"] in COLOURS
        assert item.attributes["usage"] in ("Casual", "Formal", "Sports", "Ethnic", "Party")
        assert item.title.startswith(f"{item.attributes['baseColour']} {item.attributes['gender']} ")
        assert item.text
        assert item.image_path and (sample.parent / item.image_path).is_file()
    # every article type shows up, and women-only types are never for men
    types = Counter(i.attributes["articleType"] for i in result.items)
    assert set(types) == {a.name for a in ARTICLE_TYPES}
    assert all(
        i.attributes["gender"] == "Women" for i in result.items if i.attributes["articleType"] == "Dresses"
    )
    shirt = next(i for i in result.items if i.attributes["articleType"] == "Shirts")
    a = shirt.attributes
    # e.g. "Navy Blue Men Formal Shirt"
    assert shirt.title == f"{a['baseColour']} {a['gender']} {a['usage']} Shirt"


def test_pictures_are_224_png(sample: Path) -> None:
    first = read_generic(sample).items[0]
    with Image.open(sample.parent / first.image_path) as image:  # type: ignore[operator]
        assert image.format == "PNG" and image.size == (224, 224)
        # not a blank canvas: the silhouette and caption add many colours
        assert len(image.convert("RGB").getcolors(maxcolors=100000) or []) > 3


def test_deterministic_per_seed_and_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    a = write_sample_catalog(tmp_path / "a", n_items=30, seed=7)
    elapsed = time.perf_counter() - started
    b = write_sample_catalog(tmp_path / "b", n_items=30, seed=7)
    c = write_sample_catalog(tmp_path / "c", n_items=30, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    for name in ("wl00001.png", "wl00030.png"):
        assert (a.parent / "images" / name).read_bytes() == (b.parent / "images" / name).read_bytes()
    assert len(read_generic(a).items) == 30
    assert elapsed < 10  # generous: the full 240 items take well under a second alone


def test_rejects_negative_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_sample_catalog(tmp_path, n_items=-1)


def test_no_two_items_share_a_title_and_picture(sample: Path) -> None:
    """Identical title + picture looks like one item shown twice in a list."""
    import hashlib

    items = read_generic(sample).items
    looks = Counter(
        (i.title, hashlib.sha256((sample.parent / i.image_path).read_bytes()).hexdigest())  # type: ignore[operator]
        for i in items
    )
    assert max(looks.values()) == 1
    assert len({i.title for i in items}) == len(items)  # the default catalog even has distinct titles
