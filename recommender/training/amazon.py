"""Amazon review files (McAuley et al.) of the 2014 and the 2018 release as interaction data.

Both releases are JSON lines, gzip or plain, one review a line, with the keys the loader
needs in common: ``reviewerID, asin, summary, reviewText, unixReviewTime`` (2014 adds
``helpful``; 2018 adds ``verified, style, vote, image``). Some 2014 dumps are Python dict
literals (single quotes) rather than JSON; those lines are read with :func:`ast.literal_eval`.
A line without ``unixReviewTime`` falls back to ``reviewTime`` ("MM DD, YYYY").

The review (summary + text) is the paper's proxy for the user's request. The files carry no
item metadata: items are titled by ASIN, and
:func:`recommender.training.data.describe_items_from_training` describes them with their
*training-period* reviews only.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from recommender.catalog import CatalogItem
from recommender.training.data import Interaction, InteractionDataset
from recommender.training.datafiles import DatasetNotFound, json_lines, require

#: Keys only the 2018 release writes; a file with none of them is reported as 2014.
KEYS_2018 = frozenset({"verified", "style", "vote", "image"})


def _timestamp(record: dict[str, Any]) -> float | None:
    if record.get("unixReviewTime") is not None:
        return float(record["unixReviewTime"])
    text = record.get("reviewTime")
    if not text:
        return None
    try:
        day = dt.datetime.strptime(str(text).replace(",", ""), "%m %d %Y")
    except ValueError:
        return None
    return day.replace(tzinfo=dt.UTC).timestamp()


def load_amazon_reviews(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    max_request_chars: int = 600,
    protocol: str = "time_cut",
) -> InteractionDataset:
    """Read an Amazon review file of the 2014 or 2018 release (or the first ``*.json*`` in a folder).

    Records missing reviewer, item or time are skipped; exact repeats (same reviewer, item
    and time: the 2018 release repeats a review per product ``style``) are kept once, and
    one review posted under several linked ASINs becomes one event relevant to all of them.
    """
    path = require(path, "Amazon review file")
    if path.is_dir():
        candidates = sorted(path.glob("*.json*"))
        if not candidates:
            raise DatasetNotFound(f"no *.json or *.json.gz review file in {path}")
        path = candidates[0]
    seen: set[tuple[str, str, float]] = set()
    interactions: list[Interaction] = []
    release = "2014"
    for _, r in json_lines(path, python_literals=True):
        if release == "2014" and KEYS_2018 & r.keys():
            release = "2018"
        user, asin, ts = r.get("reviewerID"), r.get("asin"), _timestamp(r)
        if not user or not asin or ts is None:
            continue
        key = (str(user), str(asin), ts)
        if key in seen:  # same review repeated once per product variant ("style")
            continue
        seen.add(key)
        summary = str(r.get("summary") or "").strip()
        body = str(r.get("reviewText") or "").strip()
        request = ". ".join(p for p in (summary, body) if p)[:max_request_chars]
        if request:
            interactions.append(Interaction(str(user), str(asin), ts, request))
    interactions = merge_linked_asins(interactions)
    asins = sorted({a for x in interactions for a in x.relevant_item_ids})
    items = [CatalogItem(item_id=a, title=f"Amazon product {a}") for a in asins]
    return InteractionDataset(
        name=name or path.name.split(".")[0],
        items=items,
        interactions=interactions,
        description=f"Amazon Review Data {release}: {path.name}",
        protocol=protocol,
    )


def merge_linked_asins(interactions: list[Interaction]) -> list[Interaction]:
    """One event per (reviewer, time, review text), relevant to every ASIN it was posted under.

    Amazon shows one review under all linked ASINs (variants of one product), so the file
    repeats it once per ASIN. Kept apart, the copies become consecutive events of the user:
    a held-out copy would have its twin in training or history. Merged, the review is one
    interaction; its target is the first ASIN in file order and ``relevant_item_ids`` holds
    all of them.
    """
    groups: dict[tuple[str, float, str], list[str]] = {}
    for x in interactions:
        asins = groups.setdefault((x.user_id, x.timestamp, x.request_text), [])
        if x.item_id not in asins:
            asins.append(x.item_id)
    return [
        Interaction(user, asins[0], ts, text, relevant_item_ids=tuple(asins))
        for (user, ts, text), asins in groups.items()
    ]
