"""The request-fidelity benchmark on the real Myntra catalog, small enough for CI (slow).

One seed, 300 simulated shoppers, 40 requests per source: the full tables come from the CLI
(``python -m recommender fidelity``, docs/benchmarks.md). This checks the whole path on real
data: simulation v2 with FashionIQ phrasings -> demo training -> fidelity tables -> verdict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.__main__ import main

from .conftest import shared_data_dir

pytestmark = pytest.mark.slow

DATA = shared_data_dir()
CACHE = Path(__file__).resolve().parents[2] / "var" / "cache" / "embeddings"


@pytest.mark.skipif(
    DATA is None or not (DATA / "myntra").is_dir() or not (DATA / "fashioniq_captions").is_dir(),
    reason="Myntra catalog or FashionIQ captions not found (set WHISPERLITE_DATA_DIR)",
)
def test_myntra_fidelity_benchmark_prints_every_table_and_a_verdict(
    encoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from recommender.catalog.readers import read_myntra
    from recommender.training.demo import ensure_demo_checkpoint
    from recommender.training.fashioniq import load_phrasings

    assert DATA is not None
    items = read_myntra(DATA / "myntra").items
    phrasings = load_phrasings(DATA / "fashioniq_captions", "train")
    ckpt = ensure_demo_checkpoint(
        items,
        encoder,
        tmp_path / "demo.pt",
        n_shoppers=300,
        epochs=4,
        cache_dir=CACHE,
        progress=False,
        phrasings=phrasings,
    )
    args = ["--catalog", f"myntra:{DATA / 'myntra'}", "--fashioniq", str(DATA / "fashioniq_captions")]
    status = main(
        [
            "fidelity",
            str(ckpt),
            *args,
            "--requests",
            "40",
            "--cache-dir",
            str(CACHE),
            "--personalization",
            "300",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    for source in ("template", "fashioniq"):
        assert f"**{source} requests**" in out
        for condition in ("none", "same_type", "other_type", "conflicting"):
            for system in ("zero_shot", "history_blend", "whisperlite"):
                assert f"| {condition} | {system} | 40 |" in out
    assert "request 'a black dress for a funeral'" in out
    assert ("PASS:" in out) != ("FAIL:" in out)
    # Personalization by request specificity, on the simulation the checkpoint was trained on.
    for group in ("vague", "named", "all"):
        assert f"| {group} | whisperlite |" in out and f"| {group} | history_blend (w=0.3) |" in out
