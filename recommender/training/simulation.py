"""Controlled shopper simulation over a fashion catalog (SIMULATED users, not real behaviour).

Real request + history + purchase logs for Myntra do not exist, so this module builds a
controlled benchmark whose ground truth is known by construction:

* every simulated shopper has hidden preferences: a gender, one or two favourite colours
  and a usage (Casual, Formal, Sports, ...);
* the shopper's history is ``n_events`` purchases, each an item of a requested article type
  that matches those preferences (with probability ``noise`` an off-preference item of the
  same article type and gender, so histories are informative but not perfectly clean);
* each purchase comes with an under-specified request built only from the article type
  and sometimes the usage ("casual shoes", "a shirt") that never names colour or gender;
* the relevant items for a request are all catalog items of that article type that match
  the shopper's hidden preferences.

A text-only system can find the article type but must guess colour and gender; a system
that reads the history can infer them. It runs on any list of items carrying the Myntra
attribute keys (``gender``, ``articleType``, ``baseColour``, ``usage``), e.g. the real
Myntra catalog or :mod:`recommender.sample_catalog`. See ``docs/simulation.md``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from recommender.catalog import CatalogItem
from recommender.training.data import Interaction, InteractionDataset

REQUIRED_KEYS = ("gender", "articleType", "baseColour", "usage")
UNISEX = "Unisex"

# Templates use only the article type and the usage word: never colour or gender.
TEMPLATES = (
    "{article}",
    "a {singular}",
    "{usage} {article}",
    "looking for {article}",
    "i need a new {singular}",
    "something {usage}: {article}",
    "show me {article}",
)


@dataclass(frozen=True)
class Shopper:
    """A simulated shopper's hidden preferences."""

    user_id: str
    gender: str
    colours: tuple[str, ...]
    usage: str


@dataclass
class Simulation:
    """The generated dataset plus the hidden preferences that produced it."""

    dataset: InteractionDataset
    shoppers: list[Shopper]


def _singular(article: str) -> str:
    word = article.lower()
    for plural, single in (
        ("shoes", "pair of shoes"),
        ("jeans", "pair of jeans"),
        ("trousers", "pair of trousers"),
    ):
        if word.endswith(plural):
            return word[: -len(plural)] + single
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def request_text(article_type: str, usage: str, rng: random.Random) -> str:
    """An under-specified request for ``article_type`` (lower-case, no colour or gender)."""
    template = rng.choice(TEMPLATES)
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


def simulate_shoppers(
    items: Sequence[CatalogItem],
    *,
    n_shoppers: int = 1000,
    n_events: int = 8,
    seed: int = 0,
    noise: float = 0.1,
    min_relevant: int = 2,
    name: str = "myntra-sim",
) -> Simulation:
    """Generate ``n_shoppers`` seeded shoppers with ``n_events`` request/purchase events each.

    Shoppers are drawn until each has at least two article types with ``min_relevant``
    matching items (so every request has a non-trivial answer). Raises ``ValueError`` when
    the catalog lacks the attribute keys or cannot support any shopper.
    """
    usable = [i for i in items if all(i.attributes.get(k) for k in REQUIRED_KEYS)]
    if not usable:
        raise ValueError(f"no catalog item has all of the attributes {', '.join(REQUIRED_KEYS)}")
    rng = random.Random(seed)
    genders = sorted({i.attributes["gender"] for i in usable} - {UNISEX}) or [UNISEX]
    # Indexes so each shopper costs a few dict lookups instead of a pass over the catalog.
    by_gender: dict[str, list[CatalogItem]] = defaultdict(list)
    by_taste: dict[tuple[str, str, str], list[CatalogItem]] = defaultdict(list)  # gender, usage, colour
    by_type: dict[tuple[str, str], list[CatalogItem]] = defaultdict(list)  # gender, articleType
    for item in usable:
        a = item.attributes
        for target in genders:
            if a["gender"] in (target, UNISEX):
                by_gender[target].append(item)
                by_taste[(target, a["usage"], a["baseColour"])].append(item)
                by_type[(target, a["articleType"])].append(item)
    shoppers: list[Shopper] = []
    interactions: list[Interaction] = []
    attempts = 0
    while len(shoppers) < n_shoppers:
        attempts += 1
        if attempts > 50 * n_shoppers + 100:
            raise ValueError(
                f"catalog too small or too sparse: only {len(shoppers)} shoppers in {attempts} tries"
            )
        gender = rng.choice(genders)
        pool = by_gender[gender]
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
            for item in by_taste[(gender, usage, colour)]:
                relevant_by_type[item.attributes["articleType"]].append(item)
        types = sorted(t for t, rel in relevant_by_type.items() if len(rel) >= min_relevant)
        if len(types) < 2:
            continue
        off_by_type = {t: [i for i in by_type[(gender, t)] if not _matches(i, shopper)] for t in types}
        shoppers.append(shopper)
        weights = [len(relevant_by_type[t]) for t in types]
        bought: set[str] = set()
        for step in range(n_events):
            article = rng.choices(types, weights=weights)[0]
            relevant = relevant_by_type[article]
            candidates = [i for i in relevant if i.item_id not in bought] or relevant
            if rng.random() < noise and off_by_type[article]:
                candidates = off_by_type[article]
            choice = rng.choice(candidates)
            bought.add(choice.item_id)
            interactions.append(
                Interaction(
                    user_id=shopper.user_id,
                    item_id=choice.item_id,
                    timestamp=float(step),
                    request_text=request_text(article, usage, rng),
                    relevant_item_ids=tuple(sorted(i.item_id for i in relevant)),
                )
            )
    dataset = InteractionDataset(
        name=name,
        items=list(items),
        interactions=interactions,
        description=f"SIMULATED shoppers: {n_shoppers} x {n_events} events, seed {seed}, noise {noise:g}",
    )
    return Simulation(dataset=dataset, shoppers=shoppers)
