"""File helpers shared by the dataset loaders: existence checks and gzip-transparent reading."""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class DatasetNotFound(FileNotFoundError):
    """A dataset file or folder does not exist."""


def require(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, or :class:`DatasetNotFound` naming ``what`` is missing."""
    path = Path(path)
    if not path.exists():
        raise DatasetNotFound(f"{what} not found: {path}")
    return path


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text file, transparently gunzipping it (detected by magic bytes, not the name)."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def json_lines(path: Path, *, python_literals: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-empty JSON-object line; a bad line names its number.

    ``python_literals`` also accepts a Python dict literal per line (the Amazon 2014 release
    wrote some files that way).
    """
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if not python_literals:
                    raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
                try:
                    record = ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    raise ValueError(
                        f"{path}:{n}: neither JSON nor a Python dict literal ({exc.msg})"
                    ) from exc
            if isinstance(record, dict):
                yield n, record
