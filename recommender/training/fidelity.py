"""Request fidelity: does a system return what the request names, whatever the history says?

A personalized recommender may use the history only for what the request leaves open. This
benchmark builds requests that *name* attributes (article type and colour always; gender,
usage and a title-derived pattern sometimes), pairs each with four histories, and measures
the top 10 of each system as the app serves it:

* ``none``: no history;
* ``same_type``: five earlier picks of the requested article type in *other* colours;
* ``other_type``: five picks of other article types, in other colours;
* ``conflicting``: five picks in one other colour that also contradict every other named
  attribute (other gender, other usage, other pattern) where the catalog allows.

Per case it scores **named-attribute precision@10** (the share of the top 10 carrying the
named value, averaged over the named attributes; per attribute as well) and **history pull**
(the share of the top 10 carrying a value of a named attribute that the history has and the
request did not ask for, e.g. the history's colour when the request names another).

Two request sources: ``template`` (the simulation's phrasings, plus held-out ones the model
never trains on) and ``fashioniq`` (real human captions, the benchmark half, mapped onto
Myntra attributes: :mod:`recommender.training.fashioniq`). Every system is scored through
the app's own rankers (:func:`recommender.ranking.build_ranker`: ``Ranker.scores`` and
``ranking.top_k`` with the history excluded), so what is measured is what participants get.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.catalog import CatalogItem
from recommender.training.fashioniq import Phrasing
from recommender.training.phrasing import RequestSpec, compose, pattern_of

CONDITIONS = ("none", "same_type", "other_type", "conflicting")
SCORED = ("articleType", "baseColour", "gender", "usage", "pattern")
UNISEX = "Unisex"
HISTORY_SIZE = 5


@dataclass(frozen=True)
class FidelityCase:
    """One request under one history condition; ``wanted`` maps each named key to its accepted values."""

    request_id: int
    source: str  # "template" | "fashioniq"
    condition: str
    request: str
    wanted: dict[str, frozenset[str]]
    history: tuple[str, ...]


class AttributeTable:
    """Per-item attribute arrays (pattern derived from the title) for fast masking."""

    def __init__(self, items: Sequence[CatalogItem]) -> None:
        self.items = list(items)
        self.ids = np.array([i.item_id for i in self.items], dtype=object)
        self.values: dict[str, np.ndarray] = {
            key: np.array([i.attributes.get(key, "") or "" for i in self.items], dtype=object)
            for key in SCORED
            if key != "pattern"
        }
        self.values["pattern"] = np.array(
            [pattern_of(f"{i.title} {i.text}") for i in self.items], dtype=object
        )
        self.by_id = {item_id: n for n, item_id in enumerate(self.ids)}

    def mask(self, key: str, values: Sequence[str] | frozenset[str], negate: bool = False) -> np.ndarray:
        m = np.isin(self.values[key], list(values))
        return ~m if negate else m

    def value(self, item_id: str, key: str) -> str:
        return str(self.values[key][self.by_id[item_id]])


def _wanted_gender(gender: str) -> frozenset[str]:
    # "for men" is also answered by a unisex item.
    return frozenset({gender, UNISEX}) if gender != UNISEX else frozenset({UNISEX})


def _history(
    table: AttributeTable, wanted: dict[str, frozenset[str]], condition: str, rng: random.Random
) -> tuple[str, ...] | None:
    """Five history item ids for ``condition`` (``None`` when the catalog cannot supply them)."""
    if condition == "none":
        return ()
    n = len(table.ids)
    off_colour = table.mask("baseColour", wanted["baseColour"], negate=True) & (
        table.values["baseColour"] != ""
    )
    same_type = table.mask("articleType", wanted["articleType"])
    consistent = np.ones(n, dtype=bool)  # agrees with the other named attributes
    contradicts = np.ones(n, dtype=bool)  # contradicts them (conflicting condition)
    for key in ("gender", "usage", "pattern"):
        if key in wanted:
            consistent &= table.mask(key, wanted[key])
            contradicts &= table.mask(key, wanted[key], negate=True) & (table.values[key] != "")
    if condition == "same_type":
        pool = np.flatnonzero(off_colour & same_type & consistent)
    elif condition == "other_type":
        pool = np.flatnonzero(off_colour & ~same_type & consistent)
    else:
        base = off_colour & contradicts
        if base.sum() < HISTORY_SIZE:
            base = off_colour
        colours = table.values["baseColour"][np.flatnonzero(base)]
        if not len(colours):
            return None
        colour = rng.choice(list(colours))  # frequency-weighted: a common other colour
        in_colour = base & (table.values["baseColour"] == colour)
        same = np.flatnonzero(in_colour & same_type)
        other = np.flatnonzero(in_colour & ~same_type)
        picks = rng.sample(list(same), min(2, len(same)))
        picks += rng.sample(list(other), min(HISTORY_SIZE - len(picks), len(other)))
        if len(picks) < HISTORY_SIZE:
            rest = [i for i in np.flatnonzero(in_colour) if i not in picks]
            picks += rng.sample(rest, min(HISTORY_SIZE - len(picks), len(rest)))
        return tuple(str(table.ids[i]) for i in picks) if len(picks) >= 3 else None
    if len(pool) < 3:
        return None
    return tuple(str(table.ids[i]) for i in rng.sample(list(pool), min(HISTORY_SIZE, len(pool))))


def _template_request(table: AttributeTable, rng: random.Random) -> tuple[str, dict[str, frozenset[str]]]:
    """A request naming type + colour of a random item, sometimes its gender, usage, pattern."""
    usable = [
        i
        for i in range(len(table.ids))
        if all(table.values[k][i] for k in ("articleType", "baseColour", "gender", "usage"))
    ]
    anchor = usable[rng.randrange(len(usable))]
    named = {k: str(table.values[k][anchor]) for k in ("articleType", "baseColour")}
    if table.values["gender"][anchor] != UNISEX and rng.random() < 0.4:
        named["gender"] = str(table.values["gender"][anchor])
    if rng.random() < 0.4 and table.values["usage"][anchor] in ("Casual", "Formal", "Sports", "Ethnic"):
        named["usage"] = str(table.values["usage"][anchor])
    if table.values["pattern"][anchor] and rng.random() < 0.3:
        named["pattern"] = str(table.values["pattern"][anchor])
    text = compose(RequestSpec(named), rng, heldout=True)
    wanted = {k: frozenset({v}) for k, v in named.items()}
    if "gender" in named:
        wanted["gender"] = _wanted_gender(named["gender"])
    return text, wanted


def build_cases(
    items: Sequence[CatalogItem],
    *,
    n_requests: int,
    seed: int = 0,
    source: str = "template",
    phrasings: Sequence[Phrasing] = (),
) -> list[FidelityCase]:
    """``n_requests`` requests, each under all four history conditions (paired by ``request_id``).

    A request whose catalog cannot supply every history condition is replaced, so every
    request appears under every condition. ``source="fashioniq"`` draws from ``phrasings``
    those whose article types the catalog stocks.
    """
    table = AttributeTable(items)
    rng = random.Random(seed)
    stocked = set(table.values["articleType"])
    pool = [p for p in phrasings if stocked & set(p.article_types)]
    if source == "fashioniq" and not pool:
        raise ValueError("no FashionIQ phrasing names an article type this catalog stocks")
    cases: list[FidelityCase] = []
    tries = 0
    while len(cases) < 4 * n_requests and tries < 20 * n_requests + 50:
        tries += 1
        if source == "template":
            text, wanted = _template_request(table, rng)
        else:
            phrasing = rng.choice(pool)
            text = phrasing.text
            wanted = {
                "articleType": frozenset(phrasing.article_types),
                "baseColour": frozenset({phrasing.colour}),
            }
            if phrasing.pattern:
                wanted["pattern"] = frozenset({phrasing.pattern})
        histories = [_history(table, wanted, c, rng) for c in CONDITIONS]
        if any(h is None for h in histories):
            continue
        rid = len(cases) // 4
        cases += [
            FidelityCase(rid, source, c, text, wanted, h)  # type: ignore[arg-type]
            for c, h in zip(CONDITIONS, histories, strict=True)
        ]
    if not cases:
        raise ValueError("the catalog cannot support any fidelity case (needs type/colour attributes)")
    return cases


def case_scores(table: AttributeTable, case: FidelityCase, top_ids: Sequence[str]) -> dict[str, float]:
    """Per-case metrics of one top list: ``precision`` (mean over named), ``p:<key>``, ``pull``."""
    rows = [table.by_id[i] for i in top_ids]
    hist_rows = [table.by_id[i] for i in case.history]
    out: dict[str, float] = {}
    pulls = []
    for key, accepted in case.wanted.items():
        values = table.values[key][rows]
        out[f"p:{key}"] = float(np.isin(values, list(accepted)).mean()) if rows else 0.0
        if hist_rows:
            unasked = {str(v) for v in table.values[key][hist_rows] if v} - set(accepted)
            pulls.append(float(np.isin(values, list(unasked)).mean()) if rows and unasked else 0.0)
    named = [out[f"p:{k}"] for k in case.wanted]
    out["precision"] = float(np.mean(named))
    out["pull"] = float(np.mean(pulls)) if pulls else float("nan")
    return out
