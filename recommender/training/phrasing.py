"""How simulated shoppers (and the fidelity benchmark) put Myntra attributes into words.

The shopper simulation and the request-fidelity benchmark both need request texts that name
some attributes of what is wanted (colour, gender, usage, article type, pattern) and leave
others open. This module holds that vocabulary in one place, so the benchmark measures the
same attribute semantics the simulation trains on:

* :func:`singular` turns a Myntra article type into "a ..." wording ("a watch", "a pair of
  sunglasses", "a pair of casual shoes");
* :data:`GENDER_PHRASES`, :data:`USAGE_PHRASES` map attribute values to phrasings;
  ``HELDOUT_*`` phrasings are never used in training, only by the benchmark, so it also
  measures phrasings the model has not seen ("a watch for my dad");
* :func:`pattern_of` derives a pattern (Striped, Checked, Printed, Solid) from a title, as
  Myntra has no pattern column;
* :func:`compose` writes one request from a :class:`RequestSpec`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

#: Attribute keys a request can name, in the order they are written.
NAMEABLE = ("pattern", "baseColour", "gender", "usage", "articleType")

#: Article types whose plural reads as "a pair of ...".
_PAIRS = (
    "shoes", "sandals", "flats", "heels", "flip flops", "jeans", "trousers", "shorts", "track pants",
    "capris", "leggings", "socks", "sunglasses", "briefs", "boxers", "tights", "stockings", "gloves",
    "lounge pants", "lounge shorts",
)  # fmt: skip
#: Irregular or "-es" plurals that the "drop the s" rule gets wrong.
_IRREGULAR = {
    "watches": "watch",
    "dresses": "dress",
    "tshirts": "t-shirt",
    "kurtis": "kurti",
    "accessory gift set": "accessory gift set",
    "perfume and body mist": "perfume",
    "innerwear vests": "vest",
    "mobile pouch": "mobile pouch",
    "waist pouch": "waist pouch",
    "duffel bag": "duffel bag",
    "messenger bag": "messenger bag",
    "laptop bag": "laptop bag",
    "necklace and chains": "necklace",
    "trunk": "trunk",
    "bra": "bra",
    "hat": "hat",
    "dupatta": "dupatta",
    "churidar": "churidar",
    "shrug": "shrug",
    "sarees": "saree",
}

GENDER_PHRASES: dict[str, tuple[str, ...]] = {
    "Men": ("for men", "men's", "for my husband", "for my boyfriend", "for him"),
    "Women": ("for women", "women's", "for my wife", "for my girlfriend", "for her"),
    "Boys": ("for boys", "for my son"),
    "Girls": ("for girls", "for my daughter"),
}
HELDOUT_GENDER_PHRASES: dict[str, tuple[str, ...]] = {
    "Men": ("for my dad", "for a man"),
    "Women": ("for my mum", "for a woman"),
    "Boys": ("for a boy",),
    "Girls": ("for a girl",),
}
USAGE_PHRASES: dict[str, tuple[str, ...]] = {
    "Casual": ("casual", "for the weekend", "for everyday wear", "for hanging out"),
    "Formal": ("formal", "for the office", "for work", "for a job interview"),
    "Sports": ("for the gym", "for running", "sports", "for my workout"),
    "Ethnic": ("ethnic", "traditional", "for a festival"),
}
HELDOUT_USAGE_PHRASES: dict[str, tuple[str, ...]] = {
    "Casual": ("relaxed",),
    "Formal": ("for a funeral", "for a business meeting"),
    "Sports": ("for training", "for football practice"),
    "Ethnic": ("for diwali",),
}
#: Title words that reveal a pattern (Myntra has no pattern column).
PATTERN_WORDS: dict[str, tuple[str, ...]] = {
    "Striped": ("striped", "stripe", "stripes"),
    "Checked": ("check", "checked", "checks"),
    "Printed": ("printed", "print", "graphic"),
    "Solid": ("solid", "plain"),
}
PATTERN_PHRASES = {"Striped": "striped", "Checked": "checked", "Printed": "printed", "Solid": "plain"}


def singular(article_type: str) -> str:
    """``"Watches"`` -> ``"watch"``, ``"Sunglasses"`` -> ``"pair of sunglasses"``.

    Casual/Sports/Formal shoes keep their usage word ("pair of casual shoes"); callers that
    also name a usage avoid doubling it (see :func:`compose`).
    """
    word = article_type.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if any(word == p or word.endswith(" " + p) for p in _PAIRS):
        return "pair of " + word
    if word.endswith("ches") or word.endswith("shes") or word.endswith("sses"):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def pattern_of(title: str) -> str:
    """The pattern a product title states, or ``""`` (most titles state none)."""
    words = set(re.findall(r"[a-z]+", title.lower()))
    found = [p for p, ws in PATTERN_WORDS.items() if words & set(ws)]
    return found[0] if len(found) == 1 else ""


@dataclass(frozen=True)
class RequestSpec:
    """What a request names: attribute key -> value (only the keys in it are named)."""

    named: dict[str, str]

    def names(self, key: str) -> bool:
        return key in self.named


def _article_words(article_type: str, usage_named: bool) -> str:
    word = singular(article_type)
    if usage_named:
        # "casual casual shoes": the usage phrase already says it.
        for usage in ("casual ", "sports ", "formal "):
            word = word.replace(usage, "")
    return word


def compose(spec: RequestSpec, rng: random.Random, *, heldout: bool = False) -> str:
    """One lower-case request naming exactly the attributes in ``spec`` (article type required).

    ``heldout`` draws gender/usage phrasings from the held-out lists half of the time.
    """
    named = spec.named
    article = named["articleType"]
    usage = named.get("usage")

    def pick(table: dict[str, tuple[str, ...]], held: dict[str, tuple[str, ...]], key: str) -> str:
        options = held.get(key, ()) if heldout and rng.random() < 0.5 else ()
        return rng.choice(options or table[key])

    usage_phrase = pick(USAGE_PHRASES, HELDOUT_USAGE_PHRASES, usage) if usage else ""
    gender_phrase = pick(GENDER_PHRASES, HELDOUT_GENDER_PHRASES, named["gender"]) if "gender" in named else ""
    adjectives = []
    if "pattern" in named:
        adjectives.append(PATTERN_PHRASES[named["pattern"]])
    if "baseColour" in named:
        adjectives.append(named["baseColour"].lower())
    prefix_usage = usage_phrase if usage_phrase and not usage_phrase.startswith("for ") else ""
    suffix_usage = usage_phrase if usage_phrase.startswith("for ") else ""
    possessive = gender_phrase.endswith("'s")
    noun = _article_words(article, usage_named=bool(usage))
    head = " ".join(w for w in ([gender_phrase] if possessive else []) + adjectives + [prefix_usage] if w)
    tail = " ".join(w for w in (suffix_usage, "" if possessive else gender_phrase) if w)
    pair = ""
    if noun.startswith("pair of "):  # "a pair of black shoes", not "a black pair of shoes"
        pair, noun = "pair of ", noun[len("pair of ") :]
    lead = rng.choice(("a", "i need a", "looking for a", "show me a", "i want a"))
    text = f"{lead} {pair}{head} {noun} {tail}"
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\ba (?=[aeiou])", "an ", text)
