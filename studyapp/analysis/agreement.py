"""Inter-participant agreement on relevance labels: Krippendorff's alpha (ordinal).

Krippendorff, K. (2011) "Computing Krippendorff's Alpha-Reliability", Annenberg School for
Communication. Coders are participants, units are whatever ``unit_id`` identifies (the
report uses the item, or the (prompt, item) pair when participants answer shared prompts).
The computation itself is delegated to the ``krippendorff`` package.

Guarding against spurious values: alpha is only defined over *pairable* values - units
judged by at least two coders. With fully disjoint items some tools report alpha = 1.0
(INCEpTION issue #2219); here alpha is None with a message whenever fewer than 2 units are
pairable or every pairable label is identical (expected disagreement 0, alpha = 0/0).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np

MIN_UNITS = 2


@dataclass(frozen=True)
class AgreementResult:
    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    n_units: int  # units judged by >= 2 coders
    n_pairable_values: int  # labels in those units
    message: str
    n_coders: int = 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _alpha(matrix: np.ndarray, domain: Sequence[float] | None, level: str) -> float | None:
    values = matrix[~np.isnan(matrix)]
    if np.unique(values).size < 2:
        return None  # no variation: expected disagreement is 0, alpha undefined
    return float(krippendorff.alpha(reliability_data=matrix, value_domain=domain, level_of_measurement=level))


def krippendorff_alpha(
    judgements: Iterable[tuple[Hashable, Hashable, float | None]],
    level: str = "ordinal",
    value_domain: Sequence[float] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> AgreementResult:
    """Krippendorff's alpha over ``(unit_id, coder_id, label)`` triples, with a bootstrap CI.

    ``label`` None ("can't judge") is missing data. If a coder labels a unit twice, the first
    label is kept. Only units with >= 2 labels enter (the others are unpairable and would not
    change alpha anyway). ``value_domain`` should list every grade of the scale so that the
    ordinal metric sees the full ordering.

    CI: percentile bootstrap over units (units resampled with replacement, alpha recomputed;
    degenerate resamples skipped). This is simpler than Hayes & Krippendorff's (2007)
    resampling of pairable values but respects the clustering of labels within an item.
    """
    cells: dict[Hashable, dict[Hashable, float]] = {}
    coders: dict[Hashable, None] = {}
    for unit, coder, label in judgements:
        if label is None:
            continue
        cells.setdefault(unit, {}).setdefault(coder, float(label))
        coders.setdefault(coder, None)
    pairable = {u: c for u, c in cells.items() if len(c) >= 2}
    n_units = len(pairable)
    n_values = sum(len(c) for c in pairable.values())
    pairable_coders = sorted({c for cs in pairable.values() for c in cs}, key=str)
    n_coders = len(pairable_coders)
    if len(coders) < 2:
        msg = f"not enough participants: {_plural(len(coders), 'participant')} gave labels (need 2)"
        return AgreementResult(None, None, None, n_units, n_values, msg, len(coders))
    if n_units < MIN_UNITS:
        msg = (
            f"not enough overlap: {_plural(n_units, 'item')} judged by two or more participants "
            f"(need {MIN_UNITS})"
        )
        return AgreementResult(None, None, None, n_units, n_values, msg, n_coders)

    col = {c: j for j, c in enumerate(pairable_coders)}
    units = sorted(pairable, key=str)
    # krippendorff expects coders x units with NaN for missing values.
    matrix = np.full((n_coders, n_units), np.nan)
    for j, u in enumerate(units):
        for c, label in pairable[u].items():
            matrix[col[c], j] = label
    domain = list(value_domain) if value_domain is not None else None
    alpha = _alpha(matrix, domain, level)
    if alpha is None:
        msg = "alpha undefined: every pairable label is identical (no variation to agree on)"
        return AgreementResult(None, None, None, n_units, n_values, msg, n_coders)

    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_resamples):
        sample = _alpha(matrix[:, rng.integers(0, n_units, n_units)], domain, level)
        if sample is not None and np.isfinite(sample):
            boot.append(sample)
    lo = hi = None
    if boot:
        tail = (1.0 - confidence) / 2.0 * 100.0
        lo, hi = (float(v) for v in np.percentile(boot, [tail, 100.0 - tail]))
    msg = (
        f"{level} alpha over {_plural(n_units, 'item')} judged by two or more participants "
        f"({n_values} pairable labels, {_plural(n_coders, 'participant')})"
    )
    if n_units < 10:
        msg += "; few overlapping items, interpret with caution"
    return AgreementResult(alpha, lo, hi, n_units, n_values, msg, n_coders)
