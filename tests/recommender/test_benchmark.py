"""Full benchmark runs on the real data (slow; sanity only, never "WhisperLite wins")."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.model import WhisperLiteConfig
from recommender.training.baselines import ALL_SYSTEMS
from recommender.training.evaluate import METRICS, run_benchmark
from recommender.training.loaders import load_dataset

from .conftest import shared_data_dir

pytestmark = pytest.mark.slow

DATA = shared_data_dir()
needs_data = pytest.mark.skipif(
    DATA is None, reason="real data not found (set WHISPERLITE_DATA_DIR or ../shared/data)"
)
CACHE = Path(__file__).resolve().parents[2] / "var" / "cache" / "embeddings"


def _check(result, seeds: list[int]) -> None:  # type: ignore[no-untyped-def]
    assert set(result.metrics) == set(ALL_SYSTEMS)
    for system, runs in result.metrics.items():
        assert len(runs) == len(seeds), system
        for run in runs:
            assert run["n_users"] > 0
            for m in METRICS:
                assert 0.0 <= run[m] <= 1.0, (system, m, run[m])
    assert "| whisperlite |" in result.markdown()


@needs_data
@pytest.mark.skipif(
    DATA is not None and not (DATA / "myntra").is_dir(), reason="no myntra folder in the data dir"
)
def test_myntra_simulation_benchmark(encoder) -> None:  # type: ignore[no-untyped-def]
    seeds = [0, 1, 2]
    result = run_benchmark(
        lambda seed: load_dataset("myntra-sim", DATA, seed=seed, n_shoppers=400),
        encoder,
        seeds=seeds,
        config=WhisperLiteConfig(epochs=4),
        cache_dir=CACHE,
        progress=False,
        log=lambda _: None,
    )
    _check(result, seeds)


@needs_data
@pytest.mark.parametrize("name", ["amazon", "movielens"])
def test_real_interaction_benchmarks(encoder, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = {"amazon": "amazon_fashion_5core", "movielens": "movielens_small"}[name]
    if not (DATA / folder).is_dir():  # type: ignore[operator]
        pytest.skip(f"no {folder} in the data dir")
    result = run_benchmark(
        lambda seed: load_dataset(name, DATA, seed=seed),
        encoder,
        seeds=[0],
        config=WhisperLiteConfig(epochs=3),
        cache_dir=CACHE,
        progress=False,
        log=lambda _: None,
    )
    _check(result, [0])
