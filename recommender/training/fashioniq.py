"""Real request phrasings from the FashionIQ captions, mapped onto Myntra attributes.

FashionIQ (Wu et al., CVPR 2021) holds people's descriptions of a garment they want
("is solid black with no sleeves"), for dresses and shirts. Its images and items are not
here, so the captions serve only as *phrasings*: ``"a dress that is solid black with no
sleeves"`` names the article type (dress -> Myntra ``Dresses``; shirt -> ``Shirts``,
``Tshirts`` or ``Tops``), a colour and sometimes a pattern. Only what maps onto a Myntra
attribute is scored; the rest of the caption (sleeves, length, "darker") is left as the
free text a real request carries.

The caption pairs are split once by position: even pairs feed the shopper simulation
(training), odd pairs the fidelity benchmark, so the benchmark never scores phrasings the
model was trained on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

#: Caption colour words -> Myntra ``baseColour`` (only unambiguous words).
COLOUR_WORDS = {
    "black": "Black",
    "white": "White",
    "blue": "Blue",
    "navy": "Navy Blue",
    "red": "Red",
    "green": "Green",
    "grey": "Grey",
    "gray": "Grey",
    "brown": "Brown",
    "pink": "Pink",
    "purple": "Purple",
    "yellow": "Yellow",
    "orange": "Orange",
    "beige": "Beige",
    "maroon": "Maroon",
    "cream": "Cream",
    "gold": "Gold",
    "silver": "Silver",
    "olive": "Olive",
    "khaki": "Khaki",
    "teal": "Teal",
    "peach": "Peach",
    "lavender": "Lavender",
    "mustard": "Mustard",
    "burgundy": "Burgundy",
    "charcoal": "Charcoal",
    "tan": "Tan",
    "magenta": "Magenta",
}
PATTERN_CAPTION_WORDS = {
    "striped": "Striped",
    "stripes": "Striped",
    "stripe": "Striped",
    "plaid": "Checked",
    "checked": "Checked",
    "checkered": "Checked",
    "print": "Printed",
    "printed": "Printed",
    "graphic": "Printed",
    "floral": "Printed",
    "solid": "Solid",
    "plain": "Solid",
}
#: FashionIQ category -> (noun written in the request, Myntra article types it means).
CATEGORIES = {"dress": ("dress", ("Dresses",)), "shirt": ("shirt", ("Shirts", "Tshirts", "Tops"))}


@dataclass(frozen=True)
class Phrasing:
    """One real caption turned into a request, with what it names in Myntra terms."""

    text: str  # the request, e.g. "a dress that is solid black with no sleeves"
    category: str  # "dress" | "shirt"
    article_types: tuple[str, ...]  # Myntra article types the noun stands for
    colour: str  # Myntra baseColour
    pattern: str  # Myntra-derived pattern or ""


def parse_caption(caption: str, category: str) -> Phrasing | None:
    """Map one caption; ``None`` unless it names exactly one known colour (and no negation)."""
    text = caption.strip().rstrip(".").lower()
    words = re.findall(r"[a-z]+", text)
    if not words or words[0] not in ("is", "has", "are") or {"not", "no", "less"} & set(words[:3]):
        return None
    colours = {COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS}
    # "not black", "instead of red": a negated colour would be scored as wanted.
    if len(colours) != 1 or re.search(r"\b(not|instead of|rather than|without)\b", text):
        return None
    patterns = {PATTERN_CAPTION_WORDS[w] for w in words if w in PATTERN_CAPTION_WORDS}
    noun, types = CATEGORIES[category]
    return Phrasing(
        text=f"a {noun} that {text}",
        category=category,
        article_types=types,
        colour=colours.pop(),
        pattern=patterns.pop() if len(patterns) == 1 else "",
    )


def load_phrasings(data_dir: str | os.PathLike[str], part: str) -> list[Phrasing]:
    """Mapped phrasings of one half: ``part`` "train" (even pairs) or "test" (odd pairs).

    ``data_dir`` is the ``fashioniq_captions`` folder or the shared data folder holding it.
    Raises ``FileNotFoundError`` when the caption files are missing.
    """
    if part not in ("train", "test"):
        raise ValueError("part must be 'train' or 'test'")
    base = Path(data_dir)
    if not (base / "cap.dress.train.json").is_file():
        base = base / "fashioniq_captions"
    out: list[Phrasing] = []
    seen: set[str] = set()
    for category in CATEGORIES:
        path = base / f"cap.{category}.train.json"
        if not path.is_file():
            raise FileNotFoundError(f"no FashionIQ captions at {path}")
        pairs = json.loads(path.read_text())
        for position, pair in enumerate(pairs):
            if position % 2 != (0 if part == "train" else 1):
                continue
            for caption in pair.get("captions", []):
                phrasing = parse_caption(str(caption), category)
                if phrasing is not None and phrasing.text not in seen:
                    seen.add(phrasing.text)
                    out.append(phrasing)
    return out
