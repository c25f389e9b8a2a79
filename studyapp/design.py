"""The study-design vocabulary shared by the models, the exports and the analysis (pure Python).

One definition each of the presentation modes and the rating scales: the Django models take
their field choices from here and the analysis package (which never imports Django) takes its
types from here, so a mode or scale cannot mean one thing in the database and another in the
statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """How the systems' lists are shown (the value is what the database and the CSV store)."""

    SIDE_BY_SIDE = "side_by_side"
    INTERLEAVED = "interleaved"
    POOLED = "pooled"

    @property
    def label(self) -> str:
        return MODE_LABELS[self]


MODE_LABELS = {
    Mode.SIDE_BY_SIDE: "Side by side (blinded, counterbalanced)",
    Mode.INTERLEAVED: "Team-draft interleaving (one list)",
    Mode.POOLED: "Pooled (union, shuffled, each item judged once)",
}


@dataclass(frozen=True)
class Scale:
    """A rating scale: the values shown (in display order), their words, and the relevance cut.

    ``label >= relevant_threshold`` counts as relevant (binary metrics, attention checks);
    the threshold is in the scale's own units (e.g. 4 on a 1-5 scale).
    """

    values: tuple[int, ...]
    labels: tuple[str, ...]
    relevant_threshold: int
    name: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if len(self.values) < 2 or list(self.values) != sorted(set(self.values)):
            raise ValueError("a scale needs at least two distinct values in increasing order")
        if len(self.labels) != len(self.values):
            raise ValueError("a scale needs one label per value")
        if not self.min <= self.relevant_threshold <= self.max:
            raise ValueError("relevant_threshold must lie within the scale")

    @classmethod
    def numeric(cls, low: int, high: int, relevant_threshold: int) -> Scale:
        """A scale of every integer in ``[low, high]``, labelled by its number (for analyses)."""
        if high <= low:
            raise ValueError("scale max must exceed min")
        values = tuple(range(low, high + 1))
        return cls(values, tuple(str(v) for v in values), relevant_threshold)

    @property
    def min(self) -> int:
        return self.values[0]

    @property
    def max(self) -> int:
        return self.values[-1]

    @property
    def levels(self) -> int:
        """Number of grades on the scale (e.g. 4 for 0-3)."""
        return len(self.values)

    @property
    def choices(self) -> list[tuple[int, str]]:
        """(value, label) pairs in display order, for the rating buttons."""
        return list(zip(self.values, self.labels, strict=True))

    def normalise(self, label: int | float | None) -> float | None:
        """Shift a raw label so the scale starts at 0; None (can't judge) stays None.

        Graded gains ``2^rel - 1`` assume the lowest grade carries no gain, hence the shift.
        """
        if label is None:
            return None
        if not self.min <= label <= self.max:
            raise ValueError(f"label {label!r} outside scale [{self.min}, {self.max}]")
        return label - self.min

    def is_relevant(self, label: int | float | None) -> bool:
        return label is not None and label >= self.relevant_threshold


BINARY = Scale((0, 1), ("Not relevant", "Relevant"), 1, "binary", "Binary (relevant / not)")
GRADED4 = Scale(
    (0, 1, 2, 3), ("Not relevant", "Somewhat", "Relevant", "Perfect match"), 2, "graded4", "Graded 0–3"
)
LIKERT5 = Scale(
    (1, 2, 3, 4, 5), ("Not at all", "Slightly", "Moderately", "Very", "Perfectly"), 4, "likert5", "1–5"
)
SCALES: dict[str, Scale] = {s.name: s for s in (BINARY, GRADED4, LIKERT5)}
