"""The approximate index behind the rankers of large catalogs: when, where and how it is opened.

Every ranker scores an item as an inner product of a per-request query vector with a fixed
per-item vector (see :mod:`recommender.ann`), so from :attr:`SearchSettings.min_items` items
up a ranker asks the FAISS index for candidates and re-scores them exactly
(:meth:`recommender.scoring.EmbeddingRanker.rank_vector`). Below it the exact torch mat-vec
stays. The item spaces:

* ``"content"``: the encoder's item vectors (zero-shot search and the history blend), i.e.
  the shared memory-mapped matrix of the :class:`~recommender.embeddings.ItemIndex`;
* ``"whisperlite-<checkpoint digest>"``: a trained item tower's outputs, computed once in
  blocks into a ``.npy`` beside the embedding cache and memory-mapped.

Each index file is keyed by catalog version + encoder (the embedding cache file it sits
beside) + item space, built at most once at a time under a file lock (two workers starting
together: one builds, the other waits and maps the result), saved atomically and opened
with ``IO_FLAG_MMAP``, so worker processes share its pages. Building it for a million items
takes minutes, so the app builds it ahead of participants (``manage.py build_search_index``,
``import_catalog --embed``); the launch checklist refuses to open a study whose index is
missing (docs/benchmarks.md, "Large catalogs").
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender import ann
from recommender.files import atomic_write

log = logging.getLogger(__name__)

CONTENT = "content"


@dataclass(frozen=True)
class SearchSettings:
    """When and how rankers search through the approximate index."""

    min_items: int = ann.ANN_MIN_ITEMS  # catalogs at least this large use the index; below, exact torch
    nprobe: int | None = None  # IVF cells scanned per query; None: ann.default_nprobe(nlist)
    candidates: int = ann.RESCORE_CANDIDATES  # rows re-scored exactly per request (at least k + TIE_MARGIN)


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing), released on exit or process death."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def space_matrix(
    cache_file: str | os.PathLike[str],
    space: str,
    n_items: int,
    dim: int,
    compute: Callable[[int, int], np.ndarray],
    *,
    block: int = 65_536,
) -> np.ndarray:
    """The (n_items, dim) item matrix of ``space``, memory-mapped; computed once if missing.

    ``compute(start, stop)`` returns rows ``start:stop`` (float32). The rows are written in
    blocks straight into a temporary ``.npy`` (never the whole matrix in memory), renamed into
    place under a file lock, so concurrent workers compute it once.
    """
    path = ann.matrix_path(cache_file, space)
    with file_lock(path.with_name(path.name + ".lock")):
        existing = _open_if_shaped(path, (n_items, dim))
        if existing is not None:
            return existing
        log.info("computing the %s item matrix (%d rows) at %s", space, n_items, path)
        with atomic_write(path) as fh:
            np.lib.format.write_array_header_1_0(
                fh,
                {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                    "fortran_order": False,
                    "shape": (n_items, dim),
                },
            )
            for start in range(0, n_items, block):
                rows = np.ascontiguousarray(compute(start, min(start + block, n_items)), dtype=np.float32)
                fh.write(rows.tobytes())
    opened = _open_if_shaped(path, (n_items, dim))
    assert opened is not None
    return opened


def _open_if_shaped(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        matrix: np.ndarray = np.load(path, mmap_mode="c")
    except (OSError, ValueError):
        return None
    return matrix if matrix.shape == shape and matrix.dtype == np.float32 else None


def open_space_search(
    matrix: np.ndarray, cache_file: str | os.PathLike[str], space: str, settings: SearchSettings
) -> ann.VectorSearch | None:
    """The IVF search over ``matrix`` (built and saved once if missing), or None below the threshold."""
    if len(matrix) < settings.min_items:
        return None
    return ann.open_search(
        matrix, ann.index_path(cache_file, space), min_items=settings.min_items, nprobe=settings.nprobe
    )


def index_ready(cache_file: str | os.PathLike[str], space: str) -> bool:
    """Whether the index of ``space`` has been built (the check the launch checklist makes)."""
    return ann.index_path(cache_file, space).exists()
