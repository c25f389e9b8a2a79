"""Controlled shopper simulation over a fashion catalog (SIMULATED users, not real behaviour).

Real request + history + purchase logs for Myntra do not exist, so this module builds a
controlled benchmark whose ground truth is known by construction (``docs/simulation.md``):

* every simulated shopper has hidden preferences: a gender, one or two favourite colours
  and a usage (Casual, Formal, Sports, ...);
* the shopper's history is ``n_events`` purchases, each an item of a requested article type;
* **v2 requests vary in specificity**: some are vague ("casual shoes", "a watch"), others
  name a colour, a gender, a usage or a pattern (``named_rates``), and a named value may
  contradict the history (a colour the shopper never bought, a gift for someone else, a gym
  T-shirt from a formal dresser). Some dress/shirt requests are real FashionIQ phrasings
  ("a dress that is solid black with no sleeves") when ``phrasings`` are given;
* **relevance follows the request where it speaks and the hidden preferences where it does
  not**: the relevant items are those of the requested article type whose every named
  attribute has the named value and whose unnamed gender/colour/usage match the shopper.

A text-only system can find what is named but must guess the rest; a system that only
copies the history gets the named attributes wrong whenever they contradict it. With
``named_rates=V1_RATES`` (all zero) every request is vague and the simulation is the
original v1. It runs on any list of items carrying the Myntra attribute keys (``gender``,
``articleType``, ``baseColour``, ``usage``), e.g. the real Myntra catalog or
:mod:`recommender.catalog.sample`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recommender.catalog import CatalogItem
from recommender.training.data import Interaction, InteractionDataset
from recommender.training.fashioniq import Phrasing
from recommender.training.phrasing import (
    GENDER_PHRASES,
    USAGE_PHRASES,
    RequestSpec,
    compose,
    pattern_of,
    singular,
)

REQUIRED_KEYS = ("gender", "articleType", "baseColour", "usage")
UNISEX = "Unisex"

#: Vague requests use only the article type and sometimes the usage word.
TEMPLATES = (
    "{article}",
    "a {singular}",
    "{usage} {article}",
    "looking for {article}",
    "i need a new {singular}",
    "something {usage}: {article}",
    "show me {article}",
)
#: Probability that a request names each attribute (drawn independently per event).
V2_RATES: Mapping[str, float] = {"baseColour": 0.6, "gender": 0.4, "usage": 0.3, "pattern": 0.1}
V1_RATES: Mapping[str, float] = {"baseColour": 0.0, "gender": 0.0, "usage": 0.0, "pattern": 0.0}
#: Probability that a named value is *not* the shopper's own (never-bought colour, a gift, ...).
CONTRADICT = 0.5
#: Share of dress/shirt events whose request is a real FashionIQ phrasing (when given).
FASHIONIQ_RATE = 0.5


@dataclass(frozen=True)
class Shopper:
    """A simulated shopper's hidden preferences."""

    user_id: str
    gender: str
    colours: tuple[str, ...]
    usage: str


@dataclass
class Simulation:
    """The generated dataset plus the hidden preferences that produced it.

    ``named[i]`` is what interaction ``i``'s request names (attribute key -> value; empty
    for a vague request), so benchmarks can slice by request specificity.
    """

    dataset: InteractionDataset
    shoppers: list[Shopper]
    named: list[dict[str, str]] = field(default_factory=list)


def _singular(article: str) -> str:
    return singular(article)


def request_text(article_type: str, usage: str, rng: random.Random) -> str:
    """A vague request for ``article_type`` (lower-case, no colour or gender).

    "{usage} {article}" is skipped when the article type already carries the usage word
    ("casual casual shoes").
    """
    templates: tuple[str, ...] = TEMPLATES
    if usage.lower() in article_type.lower():
        templates = tuple(t for t in TEMPLATES if "{usage}" not in t)
    template = rng.choice(templates)
    return template.format(
        article=article_type.lower(), singular=_singular(article_type), usage=usage.lower()
    )


def _matches(item: CatalogItem, shopper: Shopper) -> bool:
    a = item.attributes
    return (
        a["gender"] in (shopper.gender, UNISEX)
        and a["baseColour"] in shopper.colours
        and a["usage"] == shopper.usage
    )


def _relevant(
    pool: Sequence[CatalogItem], shopper: Shopper, named: Mapping[str, str], patterns: Mapping[str, str]
) -> list[CatalogItem]:
    """Items of ``pool`` (one gender's items of the requested type) that fit the request.

    A named attribute must have the named value; an unnamed colour or usage must match the
    shopper's hidden preferences (gender is already fixed by ``pool``).
    """
    colours = {named["baseColour"]} if "baseColour" in named else set(shopper.colours)
    usage = named.get("usage", shopper.usage)
    return [
        i
        for i in pool
        if i.attributes["baseColour"] in colours
        and i.attributes["usage"] == usage
        and ("pattern" not in named or patterns[i.item_id] == named["pattern"])
    ]


class _Catalog:
    """Indexes over the usable items so each event costs a few dict lookups."""

    def __init__(self, usable: Sequence[CatalogItem]) -> None:
        self.genders = sorted({i.attributes["gender"] for i in usable} - {UNISEX}) or [UNISEX]
        self.by_gender: dict[str, list[CatalogItem]] = defaultdict(list)
        self.by_taste: dict[tuple[str, str, str], list[CatalogItem]] = defaultdict(list)
        self.by_type: dict[tuple[str, str], list[CatalogItem]] = defaultdict(list)
        self.patterns = {i.item_id: pattern_of(f"{i.title} {i.text}") for i in usable}
        for item in usable:
            a = item.attributes
            for target in self.genders:
                if a["gender"] in (target, UNISEX):
                    self.by_gender[target].append(item)
                    self.by_taste[(target, a["usage"], a["baseColour"])].append(item)
                    self.by_type[(target, a["articleType"])].append(item)


def _name_attributes(
    cat: _Catalog,
    shopper: Shopper,
    article: str,
    rates: Mapping[str, float],
    rng: random.Random,
) -> tuple[dict[str, str], list[CatalogItem]]:
    """Decide what the request names and return it with the relevant items (never empty).

    Gender and usage are decided first (they pick the pool); pattern and colour are then
    drawn among the values the pool really offers, so a named value always has answers.
    A contradicting value (probability :data:`CONTRADICT`) is one the shopper would not pick.
    """
    named: dict[str, str] = {}
    gender = shopper.gender
    if rng.random() < rates.get("gender", 0.0) and shopper.gender in GENDER_PHRASES:
        others = [
            g for g in cat.genders if g not in (shopper.gender, UNISEX) and cat.by_type.get((g, article))
        ]
        if others and rng.random() < CONTRADICT:
            gender = rng.choice(others)
        named["gender"] = gender
    pool = cat.by_type[(gender, article)]
    if rng.random() < rates.get("usage", 0.0):
        usages = sorted({i.attributes["usage"] for i in pool})
        others = [u for u in usages if u != shopper.usage]
        usage = rng.choice(others) if others and rng.random() < CONTRADICT else shopper.usage
        if usage in usages and usage in USAGE_PHRASES:  # "Smart Casual", "Travel": no phrasing
            named["usage"] = usage
    if rng.random() < rates.get("pattern", 0.0):
        fitting = _relevant(pool, shopper, named, cat.patterns)
        options = sorted({cat.patterns[i.item_id] for i in fitting} - {""})
        if options:
            named["pattern"] = rng.choice(options)
    if rng.random() < rates.get("baseColour", 0.0):
        usage = named.get("usage", shopper.usage)
        fitting = [
            i
            for i in pool
            if i.attributes["usage"] == usage
            and ("pattern" not in named or cat.patterns[i.item_id] == named["pattern"])
        ]
        colours = [i.attributes["baseColour"] for i in fitting]  # frequency-weighted
        never = [c for c in colours if c not in shopper.colours]
        own = [c for c in colours if c in shopper.colours]
        choice = never if never and (rng.random() < CONTRADICT or not own) else own
        if choice:
            named["baseColour"] = rng.choice(choice)
    relevant = _relevant(pool, shopper, named, cat.patterns)
    # The shopper's own colours may not exist in a gift gender / other usage: then the
    # request must say more, so it names a colour the pool offers.
    if not relevant and "baseColour" not in named:
        usage = named.get("usage", shopper.usage)
        colours = [i.attributes["baseColour"] for i in pool if i.attributes["usage"] == usage]
        if colours:
            named["baseColour"] = rng.choice(colours)
            named.pop("pattern", None)
            relevant = _relevant(pool, shopper, named, cat.patterns)
    return named, relevant


def _fashioniq_request(
    cat: _Catalog,
    shopper: Shopper,
    article: str,
    phrasings: Sequence[Phrasing],
    rng: random.Random,
) -> tuple[str, dict[str, str], list[CatalogItem]] | None:
    """A real caption for a dress/shirt event whose colour the shopper's pool offers."""
    fitting = [p for p in phrasings if article in p.article_types]
    if not fitting:
        return None
    types = fitting[0].article_types
    pool = [i for t in types for i in cat.by_type[(shopper.gender, t)]]
    for _ in range(5):
        phrasing = rng.choice(fitting)
        named = {"baseColour": phrasing.colour}
        relevant = _relevant(pool, shopper, named, cat.patterns)
        if phrasing.pattern:
            with_pattern = [i for i in relevant if cat.patterns[i.item_id] == phrasing.pattern]
            if with_pattern:
                named["pattern"], relevant = phrasing.pattern, with_pattern
        if relevant:
            return phrasing.text, named, relevant
    return None


def simulate_shoppers(
    items: Sequence[CatalogItem],
    *,
    n_shoppers: int = 1000,
    n_events: int = 8,
    seed: int = 0,
    noise: float = 0.1,
    min_relevant: int = 2,
    name: str = "myntra-sim",
    named_rates: Mapping[str, float] = V2_RATES,
    phrasings: Sequence[Phrasing] = (),
    fashioniq_rate: float = FASHIONIQ_RATE,
) -> Simulation:
    """Generate ``n_shoppers`` seeded shoppers with ``n_events`` request/purchase events each.

    Shoppers are drawn until each has at least two article types with ``min_relevant``
    matching items (so every vague request has a non-trivial answer). ``named_rates`` sets
    how often a request names each attribute (:data:`V1_RATES`: never, the v1 simulation);
    ``phrasings`` (the FashionIQ *train* half) phrase a share ``fashioniq_rate`` of the
    dress/shirt events. Raises ``ValueError`` when the catalog lacks the attribute keys or
    cannot support any shopper.
    """
    usable = [i for i in items if all(i.attributes.get(k) for k in REQUIRED_KEYS)]
    if not usable:
        raise ValueError(f"no catalog item has all of the attributes {', '.join(REQUIRED_KEYS)}")
    rng = random.Random(seed)
    cat = _Catalog(usable)
    shoppers: list[Shopper] = []
    interactions: list[Interaction] = []
    named_log: list[dict[str, str]] = []
    attempts = 0
    while len(shoppers) < n_shoppers:
        attempts += 1
        if attempts > 50 * n_shoppers + 100:
            raise ValueError(
                f"catalog too small or too sparse: only {len(shoppers)} shoppers in {attempts} tries"
            )
        gender = rng.choice(cat.genders)
        pool = cat.by_gender[gender]
        # Preferences are drawn from what the catalog offers, weighted by frequency, so a
        # shopper is as likely to like Black as the catalog is to stock it.
        anchor = rng.choice(pool)
        usage = anchor.attributes["usage"]
        colours = {anchor.attributes["baseColour"]}
        if rng.random() < 0.5:
            colours.add(rng.choice(pool).attributes["baseColour"])
        shopper = Shopper(f"shopper-{seed}-{len(shoppers):05d}", gender, tuple(sorted(colours)), usage)
        relevant_by_type: dict[str, list[CatalogItem]] = defaultdict(list)
        for colour in shopper.colours:
            for item in cat.by_taste[(gender, usage, colour)]:
                relevant_by_type[item.attributes["articleType"]].append(item)
        types = sorted(t for t, rel in relevant_by_type.items() if len(rel) >= min_relevant)
        if len(types) < 2:
            continue
        shoppers.append(shopper)
        weights = [len(relevant_by_type[t]) for t in types]
        bought: set[str] = set()
        for step in range(n_events):
            article = rng.choices(types, weights=weights)[0]
            real = (
                _fashioniq_request(cat, shopper, article, phrasings, rng)
                if phrasings and rng.random() < fashioniq_rate
                else None
            )
            if real is not None:
                text, named, relevant = real
            else:
                named, relevant = _name_attributes(cat, shopper, article, named_rates, rng)
                if not relevant:  # nothing fits what was named: fall back to a vague request
                    named, relevant = {}, relevant_by_type[article]
                if named:
                    text = compose(RequestSpec({**named, "articleType": article}), rng)
                else:
                    text = request_text(article, usage, rng)
            candidates = [i for i in relevant if i.item_id not in bought] or relevant
            if rng.random() < noise:
                right = {i.item_id for i in relevant}
                off = [i for i in cat.by_type[(gender, article)] if i.item_id not in right]
                candidates = off or candidates
            choice = rng.choice(candidates)
            bought.add(choice.item_id)
            named_log.append(named)
            interactions.append(
                Interaction(
                    user_id=shopper.user_id,
                    item_id=choice.item_id,
                    timestamp=float(step),
                    request_text=text,
                    relevant_item_ids=tuple(sorted(i.item_id for i in relevant)),
                )
            )
    version = "v2" if any(named_rates.values()) or phrasings else "v1"
    dataset = InteractionDataset(
        name=name,
        items=list(items),
        interactions=interactions,
        description=f"SIMULATED shoppers ({version}): {n_shoppers} x {n_events} events, seed {seed}, noise {noise:g}",
    )
    return Simulation(dataset=dataset, shoppers=shoppers, named=named_log)
