"""A tiny end-to-end run: simulate -> train -> checkpoint -> load -> rank, in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from recommender.catalog import CatalogItem
from recommender.checkpoint import CheckpointError, CheckpointMismatch, load_checkpoint, save_checkpoint
from recommender.model import WhisperLiteConfig
from recommender.ranking import build_ranker
from recommender.training.baselines import ALL_SYSTEMS, build_systems
from recommender.training.cases import evaluate_system
from recommender.training.simulation import simulate_shoppers
from recommender.training.train import Prepared, prepare, train_whisperlite


class OtherEncoder:
    """The real encoder under another id, as if a different model had been configured."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self.encoder_id = "sentence-transformers:some-other-model"
        self.dim = inner.dim
        self.has_image_tower = False

    def encode_text(self, texts, **kw):  # type: ignore[no-untyped-def]
        return self._inner.encode_text(texts, **kw)


@pytest.fixture(scope="module")
def prep(encoder, tiny_catalog: list[CatalogItem], tmp_path_factory: pytest.TempPathFactory) -> Prepared:  # type: ignore[no-untyped-def]
    sim = simulate_shoppers(tiny_catalog, n_shoppers=60, n_events=6, seed=0)
    return prepare(sim.dataset, encoder, tmp_path_factory.mktemp("cache"), progress=False)


@pytest.fixture(scope="module")
def trained(prep: Prepared, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("ckpt") / "wl.pt"
    config = WhisperLiteConfig(epochs=3, patience=2, batch_size=32, hidden_dim=64)
    return train_whisperlite(prep, config, checkpoint_path=path, progress=False)


@pytest.mark.slow  # trains a network
def test_train_checkpoint_load_rank(trained, prep: Prepared, encoder) -> None:  # type: ignore[no-untyped-def]
    assert trained.checkpoint_path is not None and trained.checkpoint_path.exists()
    assert 0 <= trained.best_epoch <= trained.epochs_run <= 3  # epoch 0 = the untrained model
    ckpt = load_checkpoint(trained.checkpoint_path, expected_encoder_id=encoder.encoder_id)
    assert ckpt.epoch == trained.best_epoch and ckpt.optimizer_state is not None
    assert ckpt.metrics["val_recall@10"] == pytest.approx(trained.best_val_recall)
    assert ckpt.data_fingerprint == prep.fingerprint
    ranker = build_ranker("whisperlite", prep.index, encoder, checkpoint_path=str(trained.checkpoint_path))
    case = prep.split.test[0]
    ranked = ranker.rank(
        case.request_text, list(case.history_item_ids) + ["not-in-catalog"], 10, case.history_item_ids
    )
    assert len(ranked.item_ids) == 10 and not set(ranked.item_ids) & set(case.history_item_ids)
    assert ranked.scores == sorted(ranked.scores, reverse=True)
    assert ranked.system == "whisperlite" and ranked.version.startswith(encoder.encoder_id + ";ckpt=wl.pt@")
    assert ranked.latency_ms > 0
    # Unseen user with no history still gets a ranking.
    assert len(ranker.rank("casual shoes", [], 5).item_ids) == 5


@pytest.mark.slow  # trains a network
def test_checkpoint_from_other_encoder_is_refused(trained, prep: Prepared, encoder) -> None:  # type: ignore[no-untyped-def]
    from recommender.whisperlite import WhisperLiteRanker

    with pytest.raises(CheckpointMismatch, match="some-other-model"):
        load_checkpoint(trained.checkpoint_path, expected_encoder_id=OtherEncoder(encoder).encoder_id)
    with pytest.raises(CheckpointMismatch):
        WhisperLiteRanker.from_checkpoint(trained.checkpoint_path, prep.index, OtherEncoder(encoder))  # type: ignore[arg-type]


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable WhisperLite checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a WhisperLite checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.slow  # trains a network
def test_atomic_write_keeps_old_file_on_crash(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    ckpt = load_checkpoint(trained.checkpoint_path)
    target = save_checkpoint(tmp_path / "model.pt", ckpt)
    before = target.read_bytes()

    def crash(obj, fh, *a, **kw):  # type: ignore[no-untyped-def]
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, ckpt)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]  # no temp file left behind


@pytest.mark.slow  # trains a network
def test_all_systems_score_the_split(prep: Prepared) -> None:
    systems, info = build_systems(
        prep, ALL_SYSTEMS, WhisperLiteConfig(epochs=1, batch_size=32, hidden_dim=32), progress=False
    )
    assert set(systems) == set(ALL_SYSTEMS)
    assert 0.0 <= float(info["history_blend_tuned"]["weight"]) <= 1.0  # type: ignore[arg-type]
    for system in systems.values():
        metrics = evaluate_system(system, prep, prep.split.test)
        assert metrics["n_cases"] > 0
        assert all(0.0 <= metrics[m] <= 1.0 for m in ("recall@10", "recall@50", "ndcg@10", "mrr@100"))


def test_untrained_whisperlite_matches_zero_shot(prep: Prepared) -> None:
    from recommender.model import WhisperLite
    from recommender.training.train import whisperlite_scores

    model = WhisperLite(WhisperLiteConfig(embed_dim=prep.dim))
    scores = whisperlite_scores(model, prep, prep.split.test) * model.config.temperature
    zero = prep.request_matrix(prep.split.test) @ prep.index.vectors.T
    np.testing.assert_allclose(scores, zero, atol=1e-4)


def test_cli_missing_dataset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recommender.__main__ import main

    code = main(["evaluate", "amazon", "--data-dir", str(tmp_path / "nowhere"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("whisperlite: error:") and "not found" in err and "\n" not in err


@pytest.mark.slow  # trains a network
def test_cli_refuses_checkpoint_of_other_encoder(
    trained,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    from recommender.__main__ import main

    ckpt = load_checkpoint(trained.checkpoint_path)
    ckpt.encoder_id = "open_clip:ViT-B-32:laion2b_s34b_b79k"
    foreign = save_checkpoint(tmp_path / "clip.pt", ckpt)
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp,request_text\nu,i,1,hat\n")
    code = main(
        ["evaluate", "generic", "--interactions", str(events), "--checkpoint", str(foreign), "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    # The encoder's own loading chatter may precede it; the error itself is one line, no traceback.
    last = err.splitlines()[-1]
    assert (
        code == 2
        and last.startswith("whisperlite: error:")
        and "open_clip" in last
        and "Traceback" not in err
    )


@pytest.mark.slow  # trains a network
def test_cli_train_generic_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recommender.__main__ import main

    rows = ["user_id,item_id,timestamp,request_text"]
    for u in range(12):
        for t, (item, text) in enumerate(
            [
                ("hat", "warm hat"),
                ("scarf", "wool scarf"),
                ("boots", "snow boots"),
                ("gloves", "winter gloves"),
            ]
        ):
            rows.append(f"u{u},{item}{u % 3},{t},{text}")
    (tmp_path / "events.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "model.pt"
    code = main(
        [
            "train",
            "generic",
            "--interactions",
            str(tmp_path / "events.csv"),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0 and out.exists()
    assert "validation Recall@10" in capsys.readouterr().out


@pytest.mark.slow  # trains a network
def test_demo_checkpoint_is_trained_once(encoder, tiny_catalog: list[CatalogItem], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from recommender.training.demo import ensure_demo_checkpoint

    path = tmp_path / "demo.pt"
    kw = {"progress": False, "cache_dir": tmp_path / "cache", "n_shoppers": 40, "epochs": 1}
    assert ensure_demo_checkpoint(tiny_catalog, encoder, path, **kw) == path
    stamp = path.stat().st_mtime_ns
    assert ensure_demo_checkpoint(tiny_catalog, encoder, path, **kw) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not retrained
    assert load_checkpoint(path).encoder_id == encoder.encoder_id


@pytest.mark.slow  # trains a network
def test_interrupted_demo_training_leaves_no_checkpoint_to_reuse(  # type: ignore[no-untyped-def]
    encoder, tiny_catalog: list[CatalogItem], tmp_path: Path, monkeypatch
) -> None:
    from recommender.training import demo

    real_train = demo.train_whisperlite

    def interrupted(prep, config, checkpoint_path, progress):  # type: ignore[no-untyped-def]
        real_train(
            prep, config, checkpoint_path=checkpoint_path, progress=progress
        )  # writes a best checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "train_whisperlite", interrupted)
    path = tmp_path / "demo.pt"
    with pytest.raises(KeyboardInterrupt):
        demo.ensure_demo_checkpoint(
            tiny_catalog, encoder, path, progress=False, cache_dir=tmp_path / "c", n_shoppers=40, epochs=1
        )
    assert not path.exists()


def test_inference_module_does_not_import_training() -> None:
    import subprocess
    import sys

    code = (
        "import sys, recommender.whisperlite, recommender.ranking; "
        "bad = [m for m in sys.modules if m.startswith('recommender.training') or m.startswith('django')]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
