"""Readers that turn public interaction data into :class:`InteractionDataset` objects.

* Amazon review files of the 2014 and 2018 releases (:mod:`recommender.training.amazon`).
* ReDial dialogues (:mod:`recommender.training.redial`).
* MovieLens (ml-latest-small layout): ``movies.csv`` is the catalog, a user's tags on one
  movie form one request event, ratings >= ``min_rating`` are history-only events.
* Generic format, for any other data: an interactions file (CSV, or JSON lines with
  ``.jsonl``/``.json``; ``.gz`` allowed) with columns ``user_id, item_id, timestamp,
  request_text`` (timestamp: a number, e.g. Unix seconds; a row with empty request text is a
  history-only event), and an optional items file in the catalog's generic format
  (``docs/catalog-format.md``: ``item_id`` and ``title`` required, ``text``, ``image`` and
  any other columns optional, the others becoming attributes). Without an items file every
  item id seen becomes an item titled by its id.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recommender.catalog import CatalogItem
from recommender.training.amazon import load_amazon_reviews
from recommender.training.data import HistoryEvent, Interaction, InteractionDataset
from recommender.training.datafiles import DatasetNotFound, json_lines, open_text, require
from recommender.training.redial import find_redial, load_redial

__all__ = [
    "DATASETS",
    "DatasetNotFound",
    "default_data_dir",
    "load_amazon_reviews",
    "load_dataset",
    "load_generic",
    "load_movielens",
    "load_redial",
]

GENERIC_COLUMNS = ("user_id", "item_id", "timestamp", "request_text")


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
    folder = require(data_dir, "MovieLens folder")
    for name in ("movies.csv", "ratings.csv", "tags.csv"):
        require(folder / name, f"MovieLens {name}")
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
        protocol="time_cut",
    )


# --------------------------------------------------------------------------- generic


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".jsonl", ".json", ".ndjson"):
        yield from json_lines(path)
    else:
        yield from ((n, row) for n, row in enumerate(_csv_rows(path), start=2))


def load_generic(
    interactions_path: str | os.PathLike[str],
    items_path: str | os.PathLike[str] | None = None,
    *,
    name: str = "generic",
) -> InteractionDataset:
    """Read the generic interactions format (see the module docstring)."""
    path = require(interactions_path, "interactions file")
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
        items = _generic_items(require(items_path, "items file"))
    known = {i.item_id for i in items}
    for item_id in sorted(({x.item_id for x in interactions} | {h.item_id for h in history}) - known):
        items.append(CatalogItem(item_id=item_id, title=item_id))
    return InteractionDataset(
        name=name,
        items=items,
        interactions=interactions,
        history_events=history,
        description=f"generic: {path.name}",
        protocol="time_cut",
    )


def _generic_items(path: Path) -> list[CatalogItem]:
    """The items file, in the one generic item format (:mod:`recommender.catalog.generic`)."""
    from recommender.catalog.generic import read_generic

    result = read_generic(path)
    if result.errors:
        shown = "; ".join(f"line {e.line}: {e.message}" for e in result.errors[:5])
        more = f" (and {len(result.errors) - 5} more)" if len(result.errors) > 5 else ""
        raise ValueError(f"{path}: {len(result.errors)} bad item row(s): {shown}{more}")
    return result.items


# --------------------------------------------------------------------------- by name

DATASETS = ("myntra-sim", "amazon", "musical-instruments", "redial", "movielens", "generic")


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
    ``amazon`` reads ``<data_dir>/amazon_fashion_5core`` and ``musical-instruments``
    ``<data_dir>/amazon_musical_instruments_5core`` (or a review file given as ``data_dir``);
    ``redial`` reads ``<data_dir>/redial``; ``movielens`` reads ``<data_dir>/movielens_small``; ``generic`` needs
    ``interactions_path`` (and optionally ``items_path``).
    """
    if name == "generic":
        if interactions_path is None:
            raise ValueError("the generic dataset needs an interactions file (--interactions)")
        return load_generic(interactions_path, items_path)
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    if base is None:
        raise DatasetNotFound("no data directory: pass --data-dir or set WHISPERLITE_DATA_DIR")
    require(base, "data directory")
    if name == "myntra-sim":
        from recommender.catalog.readers import read_myntra
        from recommender.training.simulation import simulate_shoppers

        try:
            catalog = read_myntra(base, only_with_images=True).items
        except FileNotFoundError as exc:
            raise DatasetNotFound(str(exc)) from exc
        return simulate_shoppers(catalog, n_shoppers=n_shoppers, n_events=n_events, seed=seed).dataset
    if name == "amazon":
        path = base / "amazon_fashion_5core" if (base / "amazon_fashion_5core").is_dir() else base
        return load_amazon_reviews(path, name="amazon")
    if name == "musical-instruments":
        folder = base / "amazon_musical_instruments_5core"
        return load_amazon_reviews(folder if folder.is_dir() else base, name="musical-instruments")
    if name == "redial":
        return load_redial(find_redial(base))
    if name == "movielens":
        path = base / "movielens_small" if (base / "movielens_small").is_dir() else base
        return load_movielens(path)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
