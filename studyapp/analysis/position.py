"""Position-bias table: mean relevance label by displayed position, per system.

If labels fall with displayed position even where the ranking should not imply it (pooled
or interleaved lists, shuffled order), participants are anchored by position - a known
presentation effect (Joachims et al., "Accurately interpreting clickthrough data as implicit
feedback", SIGIR 2005). "Can't judge" labels are left out of the means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PositionRow:
    system: str
    position: int
    mean_label: float | None
    n: int  # judged labels at this position
    n_cant_judge: int = 0


def position_bias(rows: Iterable[tuple[str, int, float | None]]) -> list[PositionRow]:
    """Mean label by (system, displayed position) from ``(system, position, label)`` rows.

    Labels should already be normalised (:meth:`Scale.normalise`) so systems and scales are
    comparable. Rows are returned sorted by system then position.
    """
    sums: dict[tuple[str, int], float] = {}
    counts: dict[tuple[str, int], int] = {}
    cant: dict[tuple[str, int], int] = {}
    for system, position, label in rows:
        key = (system, int(position))
        sums.setdefault(key, 0.0)
        counts.setdefault(key, 0)
        cant.setdefault(key, 0)
        if label is None:
            cant[key] += 1
        else:
            sums[key] += float(label)
            counts[key] += 1
    return [
        PositionRow(
            system=s,
            position=p,
            mean_label=sums[(s, p)] / counts[(s, p)] if counts[(s, p)] else None,
            n=counts[(s, p)],
            n_cant_judge=cant[(s, p)],
        )
        for s, p in sorted(sums)
    ]
