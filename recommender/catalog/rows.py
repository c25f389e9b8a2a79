"""Shared pieces of the catalog readers: row errors, read results, line-numbered CSV records."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from recommender.catalog.item import CatalogItem


@dataclass
class RowError:
    """A problem with one row: ``line`` is 1-based in the source file (header = line 1)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class CatalogReadResult:
    """What a reader produced: the good items, the rejected rows, and non-fatal warnings."""

    items: list[CatalogItem]
    errors: list[RowError]
    source: str  # the file that was read
    warnings: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row imported."""
        return not self.errors


# --------------------------------------------------------------------------- file reading


def decoded_lines(path: Path) -> tuple[list[str], set[int]]:
    """The file's lines (line ends kept) and the 1-based numbers of lines that are not UTF-8.

    Decoding line by line lets one stray Latin-1 byte cost only its own row instead of
    aborting the whole import with a ``UnicodeDecodeError``.
    """
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # Excel writes a UTF-8 BOM
        raw = raw[3:]
    lines: list[str] = []
    bad: set[int] = set()
    for number, chunk in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(chunk.decode("utf-8", errors="replace"))
            bad.add(number)
    return lines, bad


def csv_records(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """Yield ``(first_line, last_line, fields)`` per CSV record, blank lines skipped.

    A quoted field may span several physical lines, so a record is reported by the line it
    starts on; ``last_line`` lets callers see whether any of its lines was undecodable.
    """
    lines, bad = decoded_lines(path)
    reader = csv.reader(lines)
    previous_end = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # e.g. an unterminated quote swallowed the rest of the file; report and stop.
            yield previous_end + 1, reader.line_num, ["\x00csv-error", str(exc)]
            return
        start, previous_end = previous_end + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if any(n in bad for n in range(start, previous_end + 1)):
            yield start, previous_end, ["\x00bad-utf8"]
            continue
        yield start, previous_end, fields


def csv_failure(fields: list[str]) -> str | None:
    """The error message for a sentinel record from :func:`csv_records`, else None."""
    if fields and fields[0] == "\x00bad-utf8":
        return "not valid UTF-8 text"
    if fields and fields[0] == "\x00csv-error":
        return f"unreadable CSV ({fields[1]}); the rest of the file was skipped"
    return None
