"""Item embeddings: computed once per (catalog version, encoder), cached on disk.

An :class:`ItemIndex` holds one L2-normalised content vector per item. For an encoder
with an image tower the vector is the normalised mean of the text and image embeddings
(items without a readable image use text alone); otherwise it is the text embedding.

From :data:`SHARED_MIN_ITEMS` items up, the index is *shared* between worker processes
instead of read into each: the vectors are a memory-mapped ``.npy`` beside the cache file
and the ids a :class:`~recommender.item_ids.CompactIds` (at 1M MiniLM items that is 1.5 GB
of vectors and 100-150 MB of Python id objects that a worker no longer holds privately).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.catalog import CatalogItem, item_text
from recommender.encoders import Encoder
from recommender.files import atomic_write
from recommender.item_ids import CompactIds

log = logging.getLogger(__name__)

#: Catalogs with at least this many items are memory-mapped and their ids kept compact (see
#: the module docstring). Below it a private copy costs little (44k MiniLM rows: 65 MB).
SHARED_MIN_ITEMS = 50_000


@dataclass
class ItemIndex:
    """Content vectors for a catalog, row ``i`` belonging to ``item_ids[i]``."""

    item_ids: Sequence[str]  # a list, or CompactIds (memory-mapped) for a shared index
    vectors: np.ndarray  # (n_items, dim) float32, L2-normalised; a memmap when shared
    encoder_id: str
    fingerprint: str  # catalog version the vectors were computed from
    cache_file: Path | None = None  # the embedding cache it came from; search indexes live beside it

    def __post_init__(self) -> None:
        if isinstance(self.item_ids, CompactIds):
            self._compact: CompactIds | None = self.item_ids
            self.position: dict[str, int] = {}
        else:
            self._compact = None
            self.position = {item_id: i for i, item_id in enumerate(self.item_ids)}

    @property
    def shared(self) -> bool:
        """Whether the vectors and ids are memory-mapped files shared by every process."""
        return self._compact is not None

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of the given ids, silently dropping ids not in the catalog."""
        if self._compact is not None:
            return self._compact.rows(item_ids)
        return np.array([self.position[i] for i in item_ids if i in self.position], dtype=np.int64)


def catalog_fingerprint(items: Sequence[CatalogItem]) -> str:
    """A digest of everything that changes an item's embedding: ids, texts and images."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.item_id, item_text(item), item.image_path or ""]).encode())
    return digest.hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


def cache_path(cache_dir: str | os.PathLike[str], encoder_id: str, fingerprint: str) -> Path:
    """Where the vectors for this catalog version and encoder live."""
    key = hashlib.sha256(encoder_id.encode()).hexdigest()[:8]
    return Path(cache_dir) / f"{_slug(encoder_id)}-{key}" / f"{fingerprint}.npz"


def shared_paths(cache_file: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The memory-mappable ``.npy`` vectors and the id-files base of a cache file."""
    cache_file = Path(cache_file)
    return cache_file.with_name(f"{cache_file.stem}.content.npy"), cache_file.with_suffix("")


def open_shared_index(
    cache_dir: str | os.PathLike[str], encoder_id: str, fingerprint: str
) -> ItemIndex | None:
    """The shared (memory-mapped) index of a catalog version, or None if it was not written yet.

    Needs no catalog items: a worker that knows the catalog version (the app stores it) opens
    a million-item index in milliseconds instead of reading every row to fingerprint them.
    """
    cache_file = cache_path(cache_dir, encoder_id, fingerprint)
    matrix_file, ids_base = shared_paths(cache_file)
    ids = CompactIds.open(ids_base)
    if ids is None or not matrix_file.exists():
        return None
    vectors: np.ndarray = np.load(matrix_file, mmap_mode="c")  # copy-on-write: torch wants writable
    if len(vectors) != len(ids):
        return None
    return ItemIndex(ids, vectors, encoder_id, fingerprint, cache_file)


def _share(index: ItemIndex, cache_file: Path) -> ItemIndex:
    """Write the index's vectors and ids as memory-mappable files (once) and reopen it mapped."""
    matrix_file, ids_base = shared_paths(cache_file)
    with atomic_write(matrix_file) as fh:
        np.save(fh, np.asarray(index.vectors, dtype=np.float32))
    CompactIds.from_list(list(index.item_ids)).save(ids_base)  # the id files last: they mark it complete
    shared = open_shared_index(cache_file.parent.parent, index.encoder_id, index.fingerprint)
    assert shared is not None
    return shared


def _resolve_image(item: CatalogItem, image_root: str | None) -> str | None:
    if not item.image_path:
        return None
    path = item.image_path
    if image_root and not os.path.isabs(path):
        path = os.path.join(image_root, path)
    return path if os.path.isfile(path) else None


def encode_items(
    items: Sequence[CatalogItem], encoder: Encoder, *, image_root: str | None = None, progress: bool = True
) -> np.ndarray:
    """Embed items with the encoder: (n_items, dim) float32, L2-normalised.

    Texts go to the encoder in one call, sorted by length, so each batch pads to similar
    lengths whatever the backend does (sentence-transformers sorts again, harmlessly);
    the rows are put back in catalog order afterwards.
    """
    texts = [item_text(i) for i in items]
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = np.empty((len(texts), encoder.dim), dtype=np.float32)
    vectors[order] = encoder.encode_text([texts[i] for i in order], normalize=True, progress=progress)
    if encoder.has_image_tower:
        with_image = [
            (row, path) for row, item in enumerate(items) if (path := _resolve_image(item, image_root))
        ]
        if with_image:
            rows, paths = zip(*with_image, strict=True)
            image_vectors = encoder.encode_images(list(paths), normalize=True, progress=progress)
            vectors[list(rows)] = vectors[list(rows)] + image_vectors
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: np.ndarray = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
    return out


def build_item_index(
    items: Sequence[CatalogItem],
    encoder: Encoder,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    image_root: str | None = None,
    progress: bool = True,
    shared_min_items: int = SHARED_MIN_ITEMS,
) -> ItemIndex:
    """Return the item index, loading it from ``cache_dir`` when this version was embedded before.

    The cache file is written atomically (temp file + rename), so a crash mid-write never
    leaves a truncated cache that a later process would trust. With ``cache_dir`` and at
    least ``shared_min_items`` items, the index returned is shared (memory-mapped, see the
    module docstring); its files are written beside the cache file the first time.
    """
    fingerprint = catalog_fingerprint(items)
    ids = [item.item_id for item in items]
    path = cache_path(cache_dir, encoder.encoder_id, fingerprint) if cache_dir else None
    share = path is not None and len(ids) >= shared_min_items
    if share:
        assert cache_dir is not None and path is not None
        shared = open_shared_index(cache_dir, encoder.encoder_id, fingerprint)
        if shared is not None and isinstance(shared.item_ids, CompactIds) and shared.item_ids.equals(ids):
            return shared
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as data:
            if list(data["item_ids"]) == ids:
                index = ItemIndex(
                    ids, data["vectors"].astype(np.float32), encoder.encoder_id, fingerprint, path
                )
                return _share(index, path) if share else index
        log.warning("embedding cache %s does not match the catalog; recomputing", path)
    log.info("embedding %d items with %s", len(items), encoder.encoder_id)
    vectors = encode_items(items, encoder, image_root=image_root, progress=progress)
    if path is not None:
        write_cache(path, ids, vectors)
    index = ItemIndex(ids, vectors, encoder.encoder_id, fingerprint, path)
    return _share(index, path) if share and path is not None else index


def write_cache(path: str | os.PathLike[str], item_ids: Sequence[str], vectors: np.ndarray) -> None:
    """Write the cache file :func:`build_item_index` reads, atomically.

    The one writer of that format, so vectors embedded elsewhere (the shards of
    :mod:`recommender.embedding_shards`, merged) land in exactly the file rankers load.
    """
    with atomic_write(path) as fh:
        np.savez(fh, item_ids=np.array(list(item_ids), dtype=str), vectors=vectors)
