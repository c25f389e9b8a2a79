"""A small synthetic fashion catalog that the project owns outright.

Used when the research data in ``../shared/data`` is absent (fresh clones, demos, tests):
:func:`write_sample_catalog` writes ``catalog.csv`` in the generic format
(``docs/catalog-format.md``) plus one 224x224 PNG per item: a flat silhouette of the
article type in the item's colour with the title underneath. The pictures are clearly
synthetic, but they make the study UI look like a shop rather than a table of ids.

Items carry the same attribute keys as the Myntra catalog (``gender``, ``masterCategory``,
``subCategory``, ``articleType``, ``baseColour``, ``season``, ``year``, ``usage``), so code and
study configurations written against Myntra work unchanged.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from recommender.catalog.readers import MYNTRA_ATTRIBUTE_KEYS

IMAGE_SIZE = 224
_DRAW_HEIGHT = 168  # top part holds the silhouette, the rest the caption
# The same attribute keys as the real Myntra catalog, so the shopper simulation runs on both.
CSV_COLUMNS = ("id", "title", "text", "image", *MYNTRA_ATTRIBUTE_KEYS)

#: Myntra colour names and the RGB used to paint them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "Black": (33, 33, 33),
    "White": (246, 246, 242),
    "Navy Blue": (31, 45, 94),
    "Blue": (45, 110, 200),
    "Red": (200, 40, 45),
    "Green": (46, 130, 70),
    "Grey": (128, 128, 128),
    "Pink": (236, 130, 170),
    "Brown": (120, 78, 48),
    "Yellow": (240, 200, 50),
    "Beige": (220, 200, 165),
    "Maroon": (115, 25, 40),
}
SEASONS = ("Summer", "Fall", "Winter", "Spring")
PATTERNS = ("solid", "striped", "checked", "printed")

Point = tuple[float, float]


@dataclass(frozen=True)
class ArticleType:
    """How one Myntra article type is described and drawn."""

    name: str  # Myntra articleType, e.g. "Tshirts"
    noun: str  # singular used in titles, e.g. "Tshirt"
    master: str
    sub: str
    genders: tuple[str, ...]
    usages: tuple[str, ...]
    shape: str  # key into _SHAPES


ARTICLE_TYPES: tuple[ArticleType, ...] = (
    ArticleType("Tshirts", "Tshirt", "Apparel", "Topwear", ("Men", "Women"), ("Casual", "Sports"), "tshirt"),
    ArticleType(
        "Shirts", "Shirt", "Apparel", "Topwear", ("Men", "Women"), ("Formal", "Casual", "Party"), "shirt"
    ),
    ArticleType("Tops", "Top", "Apparel", "Topwear", ("Women",), ("Casual", "Party"), "top"),
    ArticleType("Kurtas", "Kurta", "Apparel", "Topwear", ("Men", "Women"), ("Ethnic",), "kurta"),
    ArticleType("Jackets", "Jacket", "Apparel", "Topwear", ("Men", "Women"), ("Casual", "Sports"), "jacket"),
    ArticleType("Jeans", "Jeans", "Apparel", "Bottomwear", ("Men", "Women"), ("Casual",), "trousers"),
    ArticleType(
        "Trousers", "Trousers", "Apparel", "Bottomwear", ("Men", "Women"), ("Formal", "Casual"), "trousers"
    ),
    ArticleType("Dresses", "Dress", "Apparel", "Dress", ("Women",), ("Casual", "Party"), "dress"),
    ArticleType("Casual Shoes", "Casual Shoes", "Footwear", "Shoes", ("Men", "Women"), ("Casual",), "shoe"),
    ArticleType(
        "Sports Shoes", "Sports Shoes", "Footwear", "Shoes", ("Men", "Women"), ("Sports",), "sports_shoe"
    ),
    ArticleType("Heels", "Heels", "Footwear", "Shoes", ("Women",), ("Party", "Formal", "Casual"), "heel"),
    ArticleType(
        "Handbags", "Handbag", "Accessories", "Bags", ("Women",), ("Casual", "Formal", "Party"), "handbag"
    ),
    ArticleType(
        "Watches",
        "Watch",
        "Accessories",
        "Watches",
        ("Men", "Women"),
        ("Casual", "Formal", "Sports"),
        "watch",
    ),
)

_FITS = {
    "Topwear": ("slim fit", "regular fit", "relaxed fit"),
    "Bottomwear": ("slim fit", "straight fit", "tapered fit"),
    "Dress": ("knee-length", "maxi", "A-line"),
    "Shoes": ("cushioned", "lightweight", "lace-up"),
    "Bags": ("roomy", "structured", "compact"),
    "Watches": ("analogue", "chronograph", "minimal"),
}
_FABRICS = {
    "Apparel": ("cotton", "linen", "denim", "polyester", "silk blend"),
    "Footwear": ("leather", "mesh", "suede", "canvas"),
    "Accessories": ("leather", "stainless steel", "faux leather"),
}


# --------------------------------------------------------------------------- silhouettes
# Each shape returns polygons in a 224 x 168 box; they are filled with the item colour.


def _tshirt(long_sleeves: bool = False, length: float = 150) -> list[list[Point]]:
    sleeve = (
        [(186, 50), (206, 138), (184, 142), (162, 80)]
        if long_sleeves
        else [(186, 50), (206, 86), (180, 98), (162, 80)]
    )
    body = [(84, 22), (98, 30), (126, 30), (140, 22), *sleeve, (162, length), (62, length)]
    left = [(224 - x, y) for x, y in reversed(sleeve)]
    return [[*body, *left]]


def _shirt() -> list[list[Point]]:
    collar: list[list[Point]] = [[(96, 24), (112, 44), (100, 48)], [(128, 24), (112, 44), (124, 48)]]
    return _tshirt(long_sleeves=True) + collar


def _top() -> list[list[Point]]:
    return [
        [
            (88, 18),
            (100, 18),
            (104, 44),
            (120, 44),
            (124, 18),
            (136, 18),
            (150, 64),
            (156, 150),
            (68, 150),
            (74, 64),
        ]
    ]


def _kurta() -> list[list[Point]]:
    return _tshirt(long_sleeves=True, length=164)


def _jacket() -> list[list[Point]]:
    return _tshirt(long_sleeves=True, length=146) + [[(110, 30), (114, 30), (114, 146), (110, 146)]]


def _trousers() -> list[list[Point]]:
    return [[(72, 12), (152, 12), (160, 164), (122, 164), (112, 60), (102, 164), (64, 164)]]


def _dress() -> list[list[Point]]:
    return [
        [(92, 10), (104, 10), (112, 26), (120, 10), (132, 10), (136, 62), (172, 162), (52, 162), (88, 62)]
    ]


def _shoe() -> list[list[Point]]:
    return [[(30, 70), (92, 70), (110, 96), (176, 110), (194, 128), (194, 142), (30, 142)]]


def _sports_shoe() -> list[list[Point]]:
    return _shoe() + [[(30, 136), (196, 136), (196, 148), (30, 148)]]


def _heel() -> list[list[Point]]:
    return [
        [(40, 60), (70, 60), (120, 120), (186, 122), (192, 136), (110, 136), (58, 96), (54, 150), (44, 150)]
    ]


def _handbag() -> list[list[Point]]:
    return [[(56, 62), (168, 62), (184, 158), (40, 158)]]


def _watch() -> list[list[Point]]:
    return [[(96, 6), (128, 6), (128, 162), (96, 162)]]


_SHAPES: dict[str, Callable[[], list[list[Point]]]] = {
    "tshirt": _tshirt,
    "shirt": _shirt,
    "top": _top,
    "kurta": _kurta,
    "jacket": _jacket,
    "trousers": _trousers,
    "dress": _dress,
    "shoe": _shoe,
    "sports_shoe": _sports_shoe,
    "heel": _heel,
    "handbag": _handbag,
    "watch": _watch,
}


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable font, Pillow >= 10.1 with FreeType
    except (TypeError, OSError):  # pragma: no cover - older Pillow / no FreeType
        return ImageFont.load_default()


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> list[str]:
    """Greedy word wrap into at most two lines that fit the picture width."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > IMAGE_SIZE - 12:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
        while draw.textlength(lines[1] + "...", font=font) > IMAGE_SIZE - 12 and " " in lines[1]:
            lines[1] = lines[1].rsplit(" ", 1)[0]
        lines[1] += "..."
    return lines


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * factor))) for c in rgb)  # type: ignore[return-value]


def draw_item_image(
    title: str, shape: str, colour: tuple[int, int, int], pattern: str = "solid"
) -> Image.Image:
    """A 224x224 RGB picture: the ``shape`` silhouette in ``colour`` with ``title`` below."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (250, 248, 244))
    draw = ImageDraw.Draw(image)
    # A silhouette mask lets patterns be painted once and clipped to the garment outline.
    mask = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    mask_draw = ImageDraw.Draw(mask)
    polygons = [[(x, y + 4) for x, y in poly] for poly in _SHAPES[shape]()]
    for poly in polygons:
        mask_draw.polygon(poly, fill=255)
    fill = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), colour)
    accent = _shade(colour, 0.6) if sum(colour) > 240 else _shade(colour, 1.6)
    fill_draw = ImageDraw.Draw(fill)
    if pattern == "striped":
        for y in range(0, _DRAW_HEIGHT + 8, 14):
            fill_draw.rectangle((0, y, IMAGE_SIZE, y + 5), fill=accent)
    elif pattern == "checked":
        for step in range(0, IMAGE_SIZE, 20):
            fill_draw.line((step, 0, step, _DRAW_HEIGHT + 8), fill=accent, width=3)
            fill_draw.line((0, step, IMAGE_SIZE, step), fill=accent, width=3)
    elif pattern == "printed":
        for cx in range(10, IMAGE_SIZE, 26):
            for cy in range(10, _DRAW_HEIGHT + 8, 26):
                fill_draw.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=accent)
    image.paste(fill, (0, 0), mask)
    outline = _shade(colour, 0.55) if sum(colour) > 150 else (90, 90, 90)
    for poly in polygons:
        draw.polygon(poly, outline=outline)
    if shape == "watch":  # the dial sits on top of the strap
        draw.ellipse((80, 56, 144, 120), fill=(235, 235, 235), outline=(60, 60, 60), width=5)
        draw.line((112, 88, 112, 66), fill=(40, 40, 40), width=3)
        draw.line((112, 88, 128, 94), fill=(40, 40, 40), width=3)
    elif shape == "handbag":
        draw.arc((74, 24, 150, 100), start=180, end=360, fill=outline, width=6)
    font = _font(13)
    for i, line in enumerate(_wrap(draw, title, font)):
        width = draw.textlength(line, font=font)
        draw.text(((IMAGE_SIZE - width) / 2, 182 + i * 17), line, fill=(40, 40, 40), font=font)
    return image


# --------------------------------------------------------------------------- catalog


def _sample_row(index: int, rng: random.Random) -> tuple[dict[str, str], ArticleType, str]:
    article = ARTICLE_TYPES[index % len(ARTICLE_TYPES)]  # round-robin keeps every type present
    gender = rng.choice(article.genders)
    usage = rng.choice(article.usages)
    colour = rng.choice(list(COLOURS))
    pattern = rng.choice(PATTERNS) if article.master == "Apparel" else "solid"
    season = rng.choice(SEASONS)
    year = str(rng.randint(2011, 2018))
    fit = rng.choice(_FITS[article.sub])
    fabric = rng.choice(_FABRICS[article.master])
    # "Sports Shoes" already names its usage: avoid "Men Sports Sports Shoes".
    usage_word = "" if usage in article.noun else f"{usage} "
    title = f"{colour} {gender} {usage_word}{article.noun}"
    pattern_words = "" if pattern == "solid" else f"{pattern} "
    text = (
        f"A {fit} {pattern_words}{article.noun.lower()} in {colour.lower()} {fabric}, "
        f"made for {usage.lower()} wear in {season.lower()}."
    )
    item_id = f"wl{index + 1:05d}"
    row = {
        "id": item_id,
        "title": title,
        "text": text,
        "image": f"images/{item_id}.png",
        "gender": gender,
        "masterCategory": article.master,
        "subCategory": article.sub,
        "articleType": article.name,
        "baseColour": colour,
        "season": season,
        "year": year,
        "usage": usage,
    }
    return row, article, pattern


# Redraws per item before accepting a repeated title. Each article type has 24 to 96 possible
# titles and the default catalog needs about 19 per type, so a fresh title is always found there.
_MAX_REDRAWS = 200


def _distinct_row(
    index: int, rng: random.Random, titles: set[str], looks: set[tuple[str, str]]
) -> tuple[dict[str, str], ArticleType, str]:
    """A row whose title is new, or failing that (very large catalogs) whose title+picture is new.

    Two items with the same title and the same picture look like one item shown twice, which
    participants read as a bug (and which makes "which list is better?" harder to answer).
    """
    fallback = None
    for _ in range(_MAX_REDRAWS):
        row, article, pattern = _sample_row(index, rng)
        if row["title"] not in titles:
            return row, article, pattern
        if fallback is None and (row["title"], pattern) not in looks:
            fallback = (row, article, pattern)
    return fallback or (row, article, pattern)


def write_sample_catalog(out_dir: str | os.PathLike[str], n_items: int = 240, seed: int = 0) -> Path:
    """Write ``catalog.csv`` (generic format) and ``images/*.png`` under ``out_dir``.

    The output is byte-for-byte deterministic for a given ``(n_items, seed)``. Returns the
    CSV path, ready for :func:`recommender.catalog.readers.read_generic`.
    """
    if n_items < 0:
        raise ValueError("n_items must be non-negative")
    out = Path(out_dir)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    titles: set[str] = set()
    looks: set[tuple[str, str]] = set()
    for index in range(n_items):
        row, article, pattern = _distinct_row(index, rng, titles, looks)
        titles.add(row["title"])
        looks.add((row["title"], pattern))
        picture = draw_item_image(row["title"], article.shape, COLOURS[row["baseColour"]], pattern)
        # compress_level=1: the flat pictures stay small and writing 240 of them stays fast.
        picture.save(out / row["image"], format="PNG", compress_level=1)
        rows.append(row)
    csv_path = out / "catalog.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return csv_path
