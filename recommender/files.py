"""The one atomic-write helper and the one file-digest helper of the package."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary file in the same folder, renamed into place on success.

    A crash or exception leaves either the old file or the new one, never half of one (the
    temporary file is removed). The file is made world-readable (``mkstemp`` creates 0600) so
    a worker running as another user can read caches and checkpoints. ``fsync`` also flushes
    the data to disk before the rename (checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *, fsync: bool = False
) -> Path:
    """Call ``write(file)`` inside :func:`atomic_write`; returns the path."""
    with atomic_write(path, fsync=fsync) as fh:
        write(fh)
    return Path(path)


def file_digest(path: str | os.PathLike[str], length: int = 12, *, into: hashlib._Hash | None = None) -> str:
    """Short SHA-256 of a file's bytes (identifies a checkpoint or weight-file version).

    ``into`` feeds the bytes into an existing digest instead (one identity for several
    files) and returns that digest's short form so far.
    """
    digest = into if into is not None else hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]
