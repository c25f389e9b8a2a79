"""Readers that turn public interaction data into :class:`InteractionDataset` objects.

* Amazon Review Data (2018) JSON lines, any category file of that release, gzip or plain:
  ``reviewerID, asin, unixReviewTime, summary, reviewText, ...``. The review (summary +
  text) is the paper's proxy for the user's request. Repeated records (same reviewer, item
  and time, differing only in ``style``) are kept once.
* MovieLens (ml-latest-small layout): ``movies.csv`` is the catalog, a user's tags on one
  movie form one request event, ratings >= ``min_rating`` are history-only events.
* Generic format, for any other data: an interactions file (CSV, or JSON lines with
  ``.jsonl``/``.json``; ``.gz`` allowed) with columns ``user_id, item_id, timestamp,
  request_text`` (timestamp: a number, e.g. Unix seconds; a row with empty request text is a
  history-only event), and an optional items file with
  ``item_id`` plus optional ``title``, ``text`` and any other columns, which become item
  attributes. Without an items file every item id seen becomes an item titled by its id.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from recommender.catalog import CatalogItem
from recommender.training.data import HistoryEvent, Interaction, InteractionDataset

GENERIC_COLUMNS = ("user_id", "item_id", "timestamp", "request_text")


class DatasetNotFound(FileNotFoundError):
    """A dataset file or folder does not exist."""


def _require(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetNotFound(f"{what} not found: {path}")
    return path


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text file, transparently gunzipping it (detected by magic bytes, not the name)."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if isinstance(record, dict):
                yield n, record


# --------------------------------------------------------------------------- Amazon 2018


def load_amazon_reviews(
    path: str | os.PathLike[str], *, name: str | None = None, max_request_chars: int = 600
) -> InteractionDataset:
    """Read an Amazon Review Data (2018) review file (gz or plain JSON lines).

    Items carry no metadata in the review files, so their title is the ASIN and their text
    is empty; :func:`recommender.training.data.describe_items_from_training` can fill it
    from training-period reviews. Records missing reviewer, item or time are skipped.
    """
    path = _require(path, "Amazon review file")
    if path.is_dir():
        candidates = sorted(path.glob("*.json*"))
        if not candidates:
            raise DatasetNotFound(f"no *.json or *.json.gz review file in {path}")
        path = candidates[0]
    seen: set[tuple[str, str, int]] = set()
    interactions: list[Interaction] = []
    for _, r in _json_lines(path):
        user, asin, ts = r.get("reviewerID"), r.get("asin"), r.get("unixReviewTime")
        if not user or not asin or ts is None:
            continue
        key = (str(user), str(asin), int(ts))
        if key in seen:  # same review repeated once per product variant ("style")
            continue
        seen.add(key)
        summary = str(r.get("summary") or "").strip()
        body = str(r.get("reviewText") or "").strip()
        request = ". ".join(p for p in (summary, body) if p)[:max_request_chars]
        interactions.append(Interaction(str(user), str(asin), float(ts), request))
    interactions = _merge_linked_asins(interactions)
    asins = sorted({a for x in interactions for a in x.relevant_item_ids})
    items = [CatalogItem(item_id=a, title=f"Amazon product {a}") for a in asins]
    return InteractionDataset(
        name=name or path.name.split(".")[0],
        items=items,
        interactions=interactions,
        description=f"Amazon Review Data 2018: {path.name}",
    )


def _merge_linked_asins(interactions: list[Interaction]) -> list[Interaction]:
    """One event per (reviewer, time, review text), relevant to every ASIN it was posted under.

    Amazon shows one review under all linked ASINs (variants of one product), so the file
    repeats it once per ASIN. Kept apart, the copies become consecutive events of the user:
    the last copy was the test case and the previous copy (same text) the validation case,
    making validation a near-duplicate of test. Merged, the review is one interaction; its
    target is the first ASIN in file order and ``relevant_item_ids`` holds all of them.
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


# --------------------------------------------------------------------------- MovieLens


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with open_text(path) as fh:
        yield from csv.DictReader(fh)


def load_movielens(data_dir: str | os.PathLike[str], *, min_rating: float = 4.0) -> InteractionDataset:
    """Read ml-latest-small style ``movies.csv``, ``ratings.csv`` and ``tags.csv``.

    One request event per (user, movie) that the user tagged: the request text is the
    distinct tags in time order, joined by commas, at the time of the first tag. Ratings of
    at least ``min_rating`` become history-only events.
    """
    folder = _require(data_dir, "MovieLens folder")
    for name in ("movies.csv", "ratings.csv", "tags.csv"):
        _require(folder / name, f"MovieLens {name}")
    items = []
    for row in _csv_rows(folder / "movies.csv"):
        genres = row.get("genres", "")
        attrs = {"genres": genres.replace("|", ", ")} if genres and genres != "(no genres listed)" else {}
        items.append(CatalogItem(item_id=row["movieId"], title=row["title"], attributes=attrs))
    known = {i.item_id for i in items}
    tagged: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for row in _csv_rows(folder / "tags.csv"):
        if row["movieId"] in known and row["tag"].strip():
            tagged.setdefault((row["userId"], row["movieId"]), []).append(
                (float(row["timestamp"]), row["tag"].strip())
            )
    interactions = []
    for (user, movie), tags in tagged.items():
        tags.sort()
        distinct = list(dict.fromkeys(t for _, t in tags))
        interactions.append(Interaction(user, movie, tags[0][0], ", ".join(distinct)))
    history = [
        HistoryEvent(row["userId"], row["movieId"], float(row["timestamp"]))
        for row in _csv_rows(folder / "ratings.csv")
        if float(row["rating"]) >= min_rating and row["movieId"] in known
    ]
    return InteractionDataset(
        name="movielens",
        items=items,
        interactions=interactions,
        history_events=history,
        description=f"MovieLens {folder.name}: tags as requests, ratings >= {min_rating:g} as history",
    )


# --------------------------------------------------------------------------- generic


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".jsonl", ".json", ".ndjson"):
        yield from _json_lines(path)
    else:
        yield from ((n, row) for n, row in enumerate(_csv_rows(path), start=2))


def load_generic(
    interactions_path: str | os.PathLike[str],
    items_path: str | os.PathLike[str] | None = None,
    *,
    name: str = "generic",
) -> InteractionDataset:
    """Read the generic interactions format (see the module docstring)."""
    path = _require(interactions_path, "interactions file")
    interactions = []
    history: list[HistoryEvent] = []
    for n, row in _records(path):
        missing = [c for c in GENERIC_COLUMNS if c not in row or row[c] in (None, "")]
        if missing and any(c != "request_text" for c in missing):
            raise ValueError(
                f"{path}:{n}: missing column(s) {', '.join(missing)}; need {', '.join(GENERIC_COLUMNS)}"
            )
        try:
            ts = float(row["timestamp"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: timestamp {row['timestamp']!r} is not a number") from exc
        text = str(row.get("request_text") or "").strip()
        if text:
            interactions.append(Interaction(str(row["user_id"]), str(row["item_id"]), ts, text))
        else:  # a purchase or click without a request only tells us about the user's taste
            history.append(HistoryEvent(str(row["user_id"]), str(row["item_id"]), ts))
    items: list[CatalogItem] = []
    if items_path is not None:
        ipath = _require(items_path, "items file")
        for n, row in _records(ipath):
            if not row.get("item_id"):
                raise ValueError(f"{ipath}:{n}: missing item_id")
            attrs = {
                k: str(v)
                for k, v in row.items()
                if k not in ("item_id", "title", "text") and v not in (None, "")
            }
            items.append(
                CatalogItem(
                    str(row["item_id"]),
                    str(row.get("title") or row["item_id"]),
                    str(row.get("text") or ""),
                    attrs,
                )
            )
    known = {i.item_id for i in items}
    for item_id in sorted(({x.item_id for x in interactions} | {h.item_id for h in history}) - known):
        items.append(CatalogItem(item_id=item_id, title=item_id))
    return InteractionDataset(
        name=name,
        items=items,
        interactions=interactions,
        history_events=history,
        description=f"generic: {path.name}",
    )


# --------------------------------------------------------------------------- by name

DATASETS = ("myntra-sim", "amazon", "movielens", "generic")


def default_data_dir() -> Path | None:
    """``$WHISPERLITE_DATA_DIR``, else ``../shared/data`` next to the repository when it exists."""
    env = os.environ.get("WHISPERLITE_DATA_DIR")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[3] / "shared" / "data"
    return candidate if candidate.is_dir() else None


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    n_shoppers: int = 1000,
    n_events: int = 8,
    interactions_path: str | os.PathLike[str] | None = None,
    items_path: str | os.PathLike[str] | None = None,
) -> InteractionDataset:
    """Load a benchmark dataset by name (see :data:`DATASETS`).

    ``myntra-sim`` simulates shoppers over the real Myntra catalog (``<data_dir>/myntra``);
    ``amazon`` reads ``<data_dir>/amazon_fashion_5core`` (or a review file given as
    ``data_dir``); ``movielens`` reads ``<data_dir>/movielens_small``; ``generic`` needs
    ``interactions_path`` (and optionally ``items_path``).
    """
    if name == "generic":
        if interactions_path is None:
            raise ValueError("the generic dataset needs an interactions file (--interactions)")
        return load_generic(interactions_path, items_path)
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    if base is None:
        raise DatasetNotFound("no data directory: pass --data-dir or set WHISPERLITE_DATA_DIR")
    _require(base, "data directory")
    if name == "myntra-sim":
        from recommender.catalog_io import read_myntra
        from recommender.training.simulation import simulate_shoppers

        try:
            catalog = read_myntra(base, only_with_images=True).items
        except FileNotFoundError as exc:
            raise DatasetNotFound(str(exc)) from exc
        return simulate_shoppers(catalog, n_shoppers=n_shoppers, n_events=n_events, seed=seed).dataset
    if name == "amazon":
        path = base / "amazon_fashion_5core" if (base / "amazon_fashion_5core").is_dir() else base
        return load_amazon_reviews(path, name="amazon")
    if name == "movielens":
        path = base / "movielens_small" if (base / "movielens_small").is_dir() else base
        return load_movielens(path)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
