"""Per-request effectiveness metrics from participants' graded judgements.

Input convention: ``labels`` is one system's ranked list as judged by one participant for
one request, in the system's rank order (index 0 = rank 1), already cut or cuttable at k.
Each entry is a raw label on the study's :class:`~studyapp.design.Scale`, or None for "can't judge" - and
also None for an item the system ranked but that was not shown (use :func:`ranked_labels`
to build the list from ``(rank, label)`` pairs).

Unjudged / can't-judge handling: the list is first truncated to the top ``k`` system ranks
(what the participant could have seen) and then *condensed* - None entries are removed and
the remaining items close up - following Sakai's condensed-list approach ("Alternatives to
Bpref", SIGIR 2007). Every metric is then computed on the condensed list as usual; a list
with no judged item yields None (the request is excluded from the mean, not scored 0).

Labels are normalised so the scale starts at 0 (a 1-5 Likert label 3 becomes gain level 2)
because graded gains ``2^rel - 1`` assume that the lowest grade carries no gain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from studyapp.design import Scale

Label = int | float | None


@dataclass(frozen=True)
class RequestMetrics:
    """Metrics of one system's list for one request; None when nothing in the top k was judged."""

    precision: float | None
    ndcg: float | None
    rr: float | None
    n_judged: int


def ranked_labels(pairs: Iterable[tuple[int, Label]], k: int) -> list[Label]:
    """Build a rank-ordered label list of length ``k`` from ``(system_rank, label)`` pairs.

    Ranks with no pair (not shown) become None and are condensed away by the metrics.
    """
    out: list[Label] = [None] * k
    for rank, label in pairs:
        if 1 <= rank <= k:
            out[rank - 1] = label
    return out


def condense(labels: Sequence[Label], k: int) -> list[Label]:
    """Top ``k`` of the ranked list with None (can't judge / unshown) removed (Sakai 2007)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    return [lab for lab in labels[:k] if lab is not None]


def precision_at_k(labels: Sequence[Label], scale: Scale, k: int) -> float | None:
    """Fraction of *judged* items in the top ``k`` that are relevant.

    Denominator = number of judged items among the top ``k`` (not ``k``), so a "can't judge"
    neither counts as relevant nor penalises the system; None when none were judged.
    """
    judged = condense(labels, k)
    if not judged:
        return None
    return sum(scale.is_relevant(lab) for lab in judged) / len(judged)


def _dcg(gain_levels: Sequence[float]) -> float:
    # Graded gain 2^rel - 1 with the log2(rank + 1) discount (Burges et al. 2005 variant).
    return sum((2.0**rel - 1.0) / math.log2(i + 1) for i, rel in enumerate(gain_levels, start=1))


def ndcg_at_k(
    labels: Sequence[Label], scale: Scale, k: int, ideal_labels: Sequence[Label] | None = None
) -> float | None:
    """nDCG@k with gains ``2^rel - 1`` (``rel`` = label normalised to start at 0).

    By default the ideal DCG is computed from the judged labels *of this list* sorted
    descending - the "judged-only" condensed-list variant (Sakai 2007). Because participants
    only judge what is shown there are no global relevance judgements; the consequence is
    that this nDCG measures how well the list *orders* its own items (a list of uniformly
    mediocre items scores 1.0), which is why precision is reported alongside. Pass
    ``ideal_labels`` (e.g. all judged items for the request across systems) for a pooled ideal.
    Returns 0.0 when the ideal DCG is 0 (nothing with positive gain), None when nothing judged.
    """
    judged = condense(labels, k)
    if not judged:
        return None
    gains = [scale.normalise(lab) for lab in judged]
    pool = judged if ideal_labels is None else [lab for lab in ideal_labels if lab is not None]
    ideal = sorted((scale.normalise(lab) for lab in pool), reverse=True)[:k]
    idcg = _dcg(ideal)
    if idcg == 0.0:
        return 0.0
    return _dcg(gains) / idcg


def reciprocal_rank(labels: Sequence[Label], scale: Scale, k: int) -> float | None:
    """1 / (rank of the first relevant item in the condensed top ``k``); 0.0 if none is relevant."""
    judged = condense(labels, k)
    if not judged:
        return None
    for i, lab in enumerate(judged, start=1):
        if scale.is_relevant(lab):
            return 1.0 / i
    return 0.0


def request_metrics(labels: Sequence[Label], scale: Scale, k: int) -> RequestMetrics:
    """All per-request metrics for one system's ranked list."""
    return RequestMetrics(
        precision=precision_at_k(labels, scale, k),
        ndcg=ndcg_at_k(labels, scale, k),
        rr=reciprocal_rank(labels, scale, k),
        n_judged=len(condense(labels, k)),
    )
