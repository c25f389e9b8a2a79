"""Encoders: the packaged sentence-transformers model offline, and open_clip from local weights.

No CLIP weights exist on these machines, so the open_clip path is exercised with a tiny
randomly initialised model whose checkpoint the test writes and loads back: that checks
our spec parsing, checkpoint loading and encode plumbing, not CLIP quality.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from recommender.encoders import (
    EncoderUnavailable,
    OpenClipEncoder,
    SentenceTransformerEncoder,
    build_encoder,
)

TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    # vocab_size must match open_clip's default BPE tokenizer; everything else is minimal.
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
_names = itertools.count()


# --------------------------------------------------------------------------- sentence-transformers


@pytest.fixture(scope="module")
def st_encoder() -> SentenceTransformerEncoder:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")  # must load from the packaged files, never the network
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        encoder = build_encoder("sentence-transformers")
    finally:
        mp.undo()
    assert isinstance(encoder, SentenceTransformerEncoder)
    return encoder


def test_sentence_transformer_offline_384d_normalised(st_encoder: SentenceTransformerEncoder) -> None:
    assert st_encoder.dim == 384
    assert st_encoder.encoder_id == "sentence-transformers:all-MiniLM-L6-v2"
    assert not st_encoder.has_image_tower
    vectors = st_encoder.encode_text(
        [
            "a red dress for a summer wedding",
            "crimson gown to wear at a wedding in summer",
            "a laptop battery charger",
        ]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert paraphrase > unrelated + 0.2
    assert st_encoder.encode_text([]).shape == (0, 384)
    with pytest.raises(NotImplementedError):
        st_encoder.encode_images(["x.jpg"])


def test_sentence_transformer_bad_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match="cannot load"):
        build_encoder(f"sentence-transformers:{tmp_path / 'no-model-here'}")


# --------------------------------------------------------------------------- open_clip


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A registered tiny architecture, its random model, and that model saved two ways."""
    open_clip = pytest.importorskip("open_clip")
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("tiny_clip")
    arch = f"wl-tiny-test-{next(_names)}"
    (root / f"{arch}.json").write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(root / f"{arch}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(arch)
    model.eval()
    checkpoint = root / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    local_dir = root / "local"
    local_dir.mkdir()
    (local_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG}))
    torch.save(model.state_dict(), local_dir / "open_clip_pytorch_model.bin")
    return {"arch": arch, "model": model, "checkpoint": checkpoint, "local_dir": local_dir, "root": root}


def _reference_text(tiny_clip, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    import open_clip
    import torch

    tokenizer = open_clip.get_tokenizer(tiny_clip["arch"])
    with torch.no_grad():
        out = tiny_clip["model"].encode_text(tokenizer(texts)).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _write_pictures(folder: Path) -> list[str]:
    from PIL import Image

    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200), (30, 160, 60)]):
        path = folder / f"pic{i}.png"
        Image.new("RGB", (64, 48), colour).save(path)
        paths.append(str(path))
    return paths


def test_open_clip_checkpoint_file_loads_and_encodes(tiny_clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    encoder = build_encoder(f"open_clip:{tiny_clip['arch']}:{tiny_clip['checkpoint']}")
    assert isinstance(encoder, OpenClipEncoder)
    assert encoder.has_image_tower and encoder.dim == 32
    assert encoder.encoder_id.startswith(f"open_clip:{tiny_clip['arch']}:tiny.pt@")

    texts = ["a red dress", "blue denim jeans", "black leather shoes"]
    vectors = encoder.encode_text(texts, batch_size=2)  # several batches
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Identical to the saved model's own output: the checkpoint was loaded, not re-randomised.
    np.testing.assert_allclose(vectors, _reference_text(tiny_clip, texts), atol=1e-5)

    images = encoder.encode_images(_write_pictures(tmp_path), batch_size=2)
    assert images.shape == (3, 32) and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1])
    raw = encoder.encode_images(_write_pictures(tmp_path)[:1], normalize=False)
    assert raw.shape == (1, 32)
    assert encoder.encode_text([]).shape == (0, 32)


def test_open_clip_local_dir_loads_the_same_weights(tiny_clip) -> None:  # type: ignore[no-untyped-def]
    encoder = build_encoder(f"open_clip:local-dir:{tiny_clip['local_dir']}")
    assert encoder.dim == 32
    assert "weights@" in encoder.encoder_id
    np.testing.assert_allclose(
        encoder.encode_text(["a red dress"]), _reference_text(tiny_clip, ["a red dress"]), atol=1e-5
    )


def test_open_clip_local_dir_without_weights_is_unavailable(tiny_clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # open_clip itself would only log a warning and hand back random weights.
    folder = tmp_path / "no_weights"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG}))
    with pytest.raises(EncoderUnavailable, match="no weights"):
        build_encoder(f"open_clip:local-dir:{folder}")
    with pytest.raises(EncoderUnavailable, match="not found"):
        build_encoder(f"open_clip:local-dir:{tmp_path / 'missing'}")


def test_open_clip_missing_checkpoint_is_unavailable(tiny_clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope" / "ckpt.pt"
    with pytest.raises(EncoderUnavailable, match="checkpoint file not found") as info:
        build_encoder(f"open_clip:{tiny_clip['arch']}:{missing}")
    assert str(missing) in str(info.value)


def test_open_clip_unknown_tag_is_unavailable_with_advice(tiny_clip) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncoderUnavailable, match="WHISPERLITE_ENCODER"):
        build_encoder(f"open_clip:{tiny_clip['arch']}:no_such_tag")


def test_bad_specs_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown encoder backend"):
        build_encoder("word2vec:google-news")
    with pytest.raises(ValueError, match="architecture and weights"):
        build_encoder("open_clip:ViT-B-32")
