"""Item ids of a large catalog in a compact form that worker processes share, not copy.

A Python list of a million id strings plus the id -> row dict costs 100-150 MB of private
memory in *every* worker process. :class:`CompactIds` keeps the ids as three memory-mapped
``.npy`` arrays instead (UTF-8 bytes in catalog order, the same sorted, and the sort
permutation), so every process reads the same page cache: row -> id is an index into the
first, id -> row a binary search (``np.searchsorted``) in the second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from recommender.files import atomic_write


def ids_paths(base: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The three files of a saved id list: ``<base>.ids.npy``, ``.ids-sorted.npy``, ``.ids-order.npy``."""
    base = Path(base)
    return tuple(base.with_name(f"{base.name}.{part}.npy") for part in ("ids", "ids-sorted", "ids-order"))  # type: ignore[return-value]


class CompactIds(Sequence[str]):
    """A read-only sequence of item ids backed by numpy byte-string arrays (see module doc)."""

    def __init__(self, ids: np.ndarray, sorted_ids: np.ndarray, order: np.ndarray) -> None:
        if not (len(ids) == len(sorted_ids) == len(order)):
            raise ValueError("ids, sorted ids and order must have the same length")
        self._ids = ids  # (N,) bytes, row order
        self._sorted = sorted_ids  # (N,) bytes, ascending
        self._order = order  # (N,) int64: _sorted[j] == _ids[_order[j]]

    @classmethod
    def from_list(cls, item_ids: Sequence[str]) -> CompactIds:
        ids = np.array([i.encode() for i in item_ids], dtype=bytes)
        order = np.argsort(ids, kind="stable").astype(np.int64)
        return cls(ids, ids[order], order)

    def save(self, base: str | os.PathLike[str]) -> None:
        """Write the three arrays atomically; the order file last, so its presence means complete."""
        for path, array in zip(ids_paths(base), (self._ids, self._sorted, self._order), strict=True):
            with atomic_write(path) as fh:
                np.save(fh, np.asarray(array))

    @classmethod
    def open(cls, base: str | os.PathLike[str]) -> CompactIds | None:
        """Memory-map a saved id list; None when it is missing or incomplete."""
        paths = ids_paths(base)
        if not all(p.exists() for p in paths):
            return None
        try:
            ids, sorted_ids, order = (np.load(p, mmap_mode="r") for p in paths)
            return cls(ids, sorted_ids, order)
        except (OSError, ValueError):
            return None

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, row: int) -> str: ...

    @overload
    def __getitem__(self, row: slice) -> list[str]: ...

    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [bytes(b).decode() for b in self._ids[row]]
        return bytes(self._ids[int(row)]).decode()

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._ids), 65_536):  # decode in blocks, never the whole list
            yield from (bytes(b).decode() for b in self._ids[start : start + 65_536])

    def equals(self, item_ids: Sequence[str]) -> bool:
        """Whether this is exactly ``item_ids``, in order (compared as bytes, in blocks)."""
        if len(item_ids) != len(self._ids):
            return False
        for start in range(0, len(self._ids), 65_536):
            block = np.array([i.encode() for i in item_ids[start : start + 65_536]], dtype=bytes)
            if not np.array_equal(block, self._ids[start : start + len(block)]):
                return False
        return True

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of the given ids, in the given order, silently dropping unknown ids."""
        if not len(item_ids) or not len(self._ids):
            return np.zeros(0, dtype=np.int64)
        wanted = np.array([i.encode() for i in item_ids], dtype=bytes)
        at = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        found = self._sorted[at] == wanted
        return np.asarray(self._order[at[found]], dtype=np.int64)
