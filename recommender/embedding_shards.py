"""Embedding a large catalog in shards: plan, encode one shard, merge into the cache file.

A catalog too large for one process is cut into contiguous row ranges (*shards*) that
separate processes (the app's Celery workers) encode independently. Each shard's matrix is
written atomically beside the embedding cache, under a folder keyed by encoder and catalog
fingerprint, in a file named by its row range; when every shard is on disk,
:func:`merge_shards` writes exactly the file :func:`recommender.embeddings.build_item_index`
reads (same rows, same order), so rankers cannot tell how it was made.

Why it is safe to repeat any step:

* a shard already on disk (with the digest of the same items) is never encoded again, so a
  job interrupted by a crash resumes where it stopped;
* a process encoding a shard holds an exclusive ``flock`` on the shard's lock file; the
  kernel drops it when the process dies, so a second copy of the same shard (a re-sent
  message) returns at once while the first is alive, and takes over when it is not;
* the merge is under its own lock, and checks every shard's digest against the plan.

Planning is torch-free; encoding goes through the :class:`~recommender.encoders.Encoder`
protocol and :func:`~recommender.embeddings.encode_items` (texts sorted by length within the
shard). Locks use ``fcntl``: all processes must see the cache folder on one machine, or on
a shared filesystem whose ``flock`` works across machines.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from recommender.catalog import CatalogItem
from recommender.embeddings import cache_path, catalog_fingerprint, encode_items, write_cache
from recommender.encoders import Encoder
from recommender.files import atomic_write

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
MERGE_LOCK = "merge.lock"

ShardOutcome = Literal["encoded", "skipped", "busy"]


class StaleShard(RuntimeError):
    """The rows a process was given are not the rows the plan was made from (catalog changed)."""


@dataclass(frozen=True)
class Shard:
    """Rows ``start`` (inclusive) to ``stop`` (exclusive) of the catalog, in catalog order."""

    start: int
    stop: int
    digest: str  # catalog_fingerprint of exactly these rows: what the shard file must hold

    @property
    def name(self) -> str:
        return f"{self.start:09d}-{self.stop:09d}"

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ShardPlan:
    """How one catalog version is cut into shards for one encoder."""

    encoder_id: str
    fingerprint: str  # catalog_fingerprint of the whole catalog: the cache file's key
    n_items: int
    shards: tuple[Shard, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "encoder_id": self.encoder_id,
                "fingerprint": self.fingerprint,
                "n_items": self.n_items,
                "shards": [[s.start, s.stop, s.digest] for s in self.shards],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ShardPlan:
        data = json.loads(text)
        shards = tuple(Shard(int(a), int(b), str(d)) for a, b, d in data["shards"])
        return cls(str(data["encoder_id"]), str(data["fingerprint"]), int(data["n_items"]), shards)


def plan_shards(items: Sequence[CatalogItem], encoder_id: str, shard_size: int) -> ShardPlan:
    """Cut the catalog into ``ceil(n / shard_size)`` near-equal contiguous shards.

    Near-equal rather than ``shard_size`` + remainder, so the last shard is not a straggler
    that leaves the other workers idle at the end.
    """
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    n = len(items)
    count = max(1, math.ceil(n / shard_size))
    bounds = [round(i * n / count) for i in range(count + 1)]
    shards = tuple(
        Shard(a, b, catalog_fingerprint(items[a:b]))
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    )
    return ShardPlan(encoder_id, catalog_fingerprint(items), n, shards)


def shard_dir(cache_dir: str | os.PathLike[str], encoder_id: str, fingerprint: str) -> Path:
    """The folder holding one catalog version's shards, beside its final cache file."""
    final = cache_path(cache_dir, encoder_id, fingerprint)
    return final.with_name(f"{fingerprint}.shards")


def shard_path(cache_dir: str | os.PathLike[str], plan: ShardPlan, shard: Shard) -> Path:
    return shard_dir(cache_dir, plan.encoder_id, plan.fingerprint) / f"{shard.name}.npz"


def final_path(cache_dir: str | os.PathLike[str], plan: ShardPlan) -> Path:
    """The cache file ``build_item_index`` reads for this catalog version and encoder."""
    return cache_path(cache_dir, plan.encoder_id, plan.fingerprint)


def write_plan(cache_dir: str | os.PathLike[str], plan: ShardPlan) -> Path:
    """Store the plan beside the shards (the admin and a resumed job read it); atomic."""
    path = shard_dir(cache_dir, plan.encoder_id, plan.fingerprint) / PLAN_FILE
    with atomic_write(path) as fh:
        fh.write(plan.to_json().encode())
    return path


def read_plan(cache_dir: str | os.PathLike[str], encoder_id: str, fingerprint: str) -> ShardPlan | None:
    path = shard_dir(cache_dir, encoder_id, fingerprint) / PLAN_FILE
    try:
        return ShardPlan.from_json(path.read_text())
    except FileNotFoundError:
        return None


@contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive non-blocking flock on ``path`` if free; yields whether it was taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_running(cache_dir: str | os.PathLike[str], plan: ShardPlan, shard: Shard) -> bool:
    """Whether a live process holds the shard's lock (is encoding it now)."""
    lock = shard_path(cache_dir, plan, shard).with_suffix(".lock")
    if not lock.exists():
        return False
    with _try_lock(lock) as taken:
        return not taken


def load_shard(path: Path, shard: Shard) -> tuple[list[str], np.ndarray] | None:
    """A shard file's (item ids, vectors) if it exists and holds exactly the planned rows."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["digest"]) != shard.digest or len(data["item_ids"]) != len(shard):
                log.warning("shard file %s does not match the plan; it will be encoded again", path)
                return None
            return [str(i) for i in data["item_ids"]], data["vectors"].astype(np.float32)
    except FileNotFoundError:
        return None


def encode_shard(
    rows: Sequence[CatalogItem],
    shard: Shard,
    plan: ShardPlan,
    encoder: Encoder,
    cache_dir: str | os.PathLike[str],
    *,
    image_root: str | None = None,
) -> ShardOutcome:
    """Encode ``rows`` (the catalog's rows ``shard.start:shard.stop``) into the shard file.

    Returns ``"skipped"`` when the file is already there, ``"busy"`` when another live
    process is encoding this shard, ``"encoded"`` otherwise. Raises :class:`StaleShard` when
    ``rows`` are not the planned rows, and ``ValueError`` for another encoder than planned.
    """
    if encoder.encoder_id != plan.encoder_id:
        raise ValueError(f"shard planned for {plan.encoder_id}, this process has {encoder.encoder_id}")
    path = shard_path(cache_dir, plan, shard)
    if path.exists() or final_path(cache_dir, plan).exists():
        return "skipped"  # a late copy of a message must not recreate merged-away shards
    with _try_lock(path.with_suffix(".lock")) as taken:
        if not taken:
            return "busy"
        if load_shard(path, shard) is not None:  # finished while we waited for the lock
            return "skipped"
        if catalog_fingerprint(rows) != shard.digest:
            raise StaleShard(f"rows {shard.name} changed since the plan was made; plan the catalog again")
        vectors = encode_items(rows, encoder, image_root=image_root, progress=False)
        with atomic_write(path) as fh:
            np.savez(
                fh,
                item_ids=np.array([r.item_id for r in rows], dtype=str),
                vectors=vectors,
                digest=np.array(shard.digest),
            )
    return "encoded"


def shards_done(cache_dir: str | os.PathLike[str], plan: ShardPlan) -> list[Shard]:
    """The planned shards whose file is on disk (existence only: cheap enough to poll)."""
    return [s for s in plan.shards if shard_path(cache_dir, plan, s).exists()]


def last_progress(cache_dir: str | os.PathLike[str], plan: ShardPlan) -> float:
    """When the job last moved: the newest shard file, or when shards were last sent."""
    folder = shard_dir(cache_dir, plan.encoder_id, plan.fingerprint)
    times = [p.stat().st_mtime for p in folder.glob("*.npz")]
    plan_file = folder / PLAN_FILE
    if plan_file.exists():
        times.append(plan_file.stat().st_mtime)
    return max(times, default=0.0)


def mark_sent(cache_dir: str | os.PathLike[str], plan: ShardPlan) -> None:
    """Record that shards were (re-)sent now: the plan file's mtime, read by :func:`last_progress`."""
    os.utime(shard_dir(cache_dir, plan.encoder_id, plan.fingerprint) / PLAN_FILE)


def merge_shards(cache_dir: str | os.PathLike[str], plan: ShardPlan) -> Path | None:
    """Write the final cache file from the shards if all are on disk; remove the shards.

    Returns the cache file's path, or None when a shard is missing or another process is
    merging right now. Safe to call from every process that finishes a shard.
    """
    final = final_path(cache_dir, plan)
    if final.exists():
        return final
    folder = shard_dir(cache_dir, plan.encoder_id, plan.fingerprint)
    with _try_lock(folder / MERGE_LOCK) as taken:
        if not taken or final.exists():
            return final if final.exists() else None
        parts = [load_shard(shard_path(cache_dir, plan, s), s) for s in plan.shards]
        if any(p is None for p in parts):
            return None
        ids = [i for part in parts if part for i in part[0]]
        if len(ids) != plan.n_items:
            raise StaleShard(f"the shards hold {len(ids)} rows, the plan {plan.n_items}")
        vectors = np.concatenate([part[1] for part in parts if part])
        write_cache(final, ids, vectors)
    shutil.rmtree(folder, ignore_errors=True)
    log.info("merged %d shards into %s", len(plan.shards), final)
    return final


def embed_in_shards(
    items: Sequence[CatalogItem],
    encoder: Encoder,
    cache_dir: str | os.PathLike[str],
    shard_size: int,
    *,
    image_root: str | None = None,
) -> Path:
    """Plan, encode every missing shard in this process, merge; returns the cache file.

    The sequential form of what the Celery workers do in parallel (used to resume a job
    without a broker, and by the tests); shards already on disk are not encoded again.
    """
    plan = plan_shards(items, encoder.encoder_id, shard_size)
    final = final_path(cache_dir, plan)
    if final.exists():
        return final
    write_plan(cache_dir, plan)
    for shard in plan.shards:
        encode_shard(items[shard.start : shard.stop], shard, plan, encoder, cache_dir, image_root=image_root)
    merged = merge_shards(cache_dir, plan)
    if merged is None:  # another process holds a shard or the merge: wait for it, briefly
        deadline = time.monotonic() + 60
        while merged is None and time.monotonic() < deadline:
            time.sleep(0.5)
            merged = merge_shards(cache_dir, plan)
        if merged is None:
            raise TimeoutError(f"shards of {plan.fingerprint} did not complete")
    return merged
