from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from recommender.training.data import (
    HistoryEvent,
    Interaction,
    InteractionDataset,
    describe_items_from_training,
    temporal_split,
)
from recommender.training.loaders import DatasetNotFound, load_amazon_reviews, load_generic, load_movielens


def _review(user: str, asin: str, t: int, summary: str = "Nice", style: str = "Blue") -> dict[str, object]:
    return {
        "overall": 5.0,
        "reviewerID": user,
        "asin": asin,
        "unixReviewTime": t,
        "summary": summary,
        "reviewText": f"text {asin}",
        "style": {"Color:": style},
    }


def _write_amazon(path: Path, records: list[dict[str, object]], gz: bool = True) -> Path:
    data = "\n".join(json.dumps(r) for r in records) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    else:
        path.write_text(data)
    return path


def test_amazon_gz_dedupes_repeats(tmp_path: Path) -> None:
    records = [
        _review("u1", "A", 100),
        _review("u1", "A", 100, style="Red"),  # same review repeated for another variant
        _review("u1", "B", 200, summary="Great fit"),
        _review("u2", "A", 150),
    ]
    ds = load_amazon_reviews(_write_amazon(tmp_path / "Clothing_5.json.gz", records))
    assert len(ds.interactions) == 3
    assert {i.item_id for i in ds.items} == {"A", "B"}
    b = next(x for x in ds.interactions if x.item_id == "B")
    assert b.request_text == "Great fit. text B"
    assert b.timestamp == 200.0


def test_amazon_plain_file_and_missing(tmp_path: Path) -> None:
    ds = load_amazon_reviews(_write_amazon(tmp_path / "reviews.json", [_review("u", "X", 1)], gz=False))
    assert len(ds.interactions) == 1
    with pytest.raises(DatasetNotFound, match="not found"):
        load_amazon_reviews(tmp_path / "nope.json.gz")


def test_movielens_tags_are_requests_ratings_history(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Animation|Children\n2,"Heat (1995)",Action\n3,Up (2009),Animation\n'
    )
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n7,1,5.0,10\n7,2,2.0,11\n7,3,4.5,50\n"
    )
    (tmp_path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n7,2,heist,20\n7,2,crime,21\n7,3,balloons,60\n7,1,pixar,70\n"
    )
    ds = load_movielens(tmp_path)
    assert len(ds.items) == 3 and ds.items[0].attributes["genres"] == "Animation, Children"
    heist = next(x for x in ds.interactions if x.item_id == "2")
    assert heist.request_text == "heist, crime" and heist.timestamp == 20.0
    assert {(h.item_id, h.timestamp) for h in ds.history_events} == {
        ("1", 10.0),
        ("3", 50.0),
    }  # rating < 4 dropped
    split = temporal_split(ds)
    assert [e.target_item_id for e in split.train] == ["2"]
    # Validation (movie 3 at t=60): history = rating of 1 (t=10) and the earlier request (2); never 3 itself.
    assert split.val[0].history_item_ids == ("1", "2")
    # Test (movie 1 at t=70): its own earlier rating is removed from the history.
    assert "1" not in split.test[0].history_item_ids


def test_generic_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(
        "user_id,item_id,timestamp,request_text\nu1,i1,1,red dress\nu1,i2,2,shoes\nu2,i1,3,a dress\n"
    )
    (tmp_path / "items.jsonl").write_text(
        json.dumps({"item_id": "i1", "title": "Red dress", "colour": "red"}) + "\n"
    )
    ds = load_generic(tmp_path / "events.csv", tmp_path / "items.jsonl")
    assert len(ds.interactions) == 3
    by_id = {i.item_id: i for i in ds.items}
    assert by_id["i1"].attributes == {"colour": "red"} and by_id["i2"].title == "i2"
    (tmp_path / "events.jsonl").write_text(
        json.dumps({"user_id": "u", "item_id": "i", "timestamp": 5, "request_text": "hat"}) + "\n"
    )
    assert load_generic(tmp_path / "events.jsonl").interactions[0].request_text == "hat"
    (tmp_path / "bad.csv").write_text("user_id,item_id\nu,i\n")
    with pytest.raises(ValueError, match="missing column"):
        load_generic(tmp_path / "bad.csv")


def test_generic_rows_without_request_text_are_history_only(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(
        "user_id,item_id,timestamp,request_text\nu1,i9,1,\nu1,i1,2,red dress\nu1,i2,3,  \n"
    )
    ds = load_generic(tmp_path / "events.csv")
    assert [(x.item_id, x.request_text) for x in ds.interactions] == [("i1", "red dress")]
    assert [(h.item_id, h.timestamp) for h in ds.history_events] == [("i9", 1.0), ("i2", 3.0)]
    assert {i.item_id for i in ds.items} == {"i1", "i2", "i9"}


def _dataset() -> InteractionDataset:
    interactions = [
        Interaction(u, f"{u}-item{t}", float(t), f"request {u} {t}") for u in ("a", "b") for t in range(5)
    ] + [Interaction("c", "c-item0", 0.0, "only one")]
    return InteractionDataset(
        "toy", [], interactions, [HistoryEvent("a", "old", -1.0), HistoryEvent("a", "late", 99.0)]
    )


def test_temporal_split_has_no_leakage() -> None:
    ds = _dataset()
    split = temporal_split(ds)
    assert [e.target_item_id for e in split.test] == ["a-item4", "b-item4"]
    assert [e.target_item_id for e in split.val] == ["a-item3", "b-item3"]
    assert {e.user_id for e in split.train} == {"a", "b", "c"}  # c has too few events to evaluate
    last_train = {u: max(e.timestamp for e in split.train if e.user_id == u) for u in ("a", "b")}
    for case in split.val + split.test:
        assert case.timestamp > last_train[case.user_id]
    for e in split.train + split.val + split.test:
        assert e.target_item_id not in e.history_item_ids
        assert "late" not in e.history_item_ids  # history events after the case never leak in
    assert split.test[0].history_item_ids == ("old", "a-item0", "a-item1", "a-item2", "a-item3")
    # Popularity counts training targets only.
    held_out = {e.target_item_id for e in split.val + split.test}
    assert not held_out & set(split.popularity())


def test_item_descriptions_use_training_requests_only() -> None:
    from recommender.catalog import CatalogItem

    ds = _dataset()
    split = temporal_split(ds)
    items = [CatalogItem("a-item0", "a-item0"), CatalogItem("a-item4", "a-item4")]
    described = describe_items_from_training(items, split.train)
    assert described[0].text == "request a 0"
    assert described[1].text == ""  # its only request is the test case


def test_events_tied_with_held_out_ones_never_leak() -> None:
    # One review posted under two linked items at the same second, as in Amazon 5-core.
    interactions = [
        Interaction("u", "a", 1.0, "first"),
        Interaction("u", "b", 2.0, "second"),
        Interaction("u", "twin-of-c", 3.0, "same review"),
        Interaction("u", "c", 3.0, "same review"),
        Interaction("u", "d", 4.0, "last"),
    ]
    split = temporal_split(InteractionDataset("ties", [], interactions))
    assert split.val[0].target_item_id == "c"
    assert [e.target_item_id for e in split.train] == ["a", "b"]  # the twin is not trained on
    assert "twin-of-c" not in split.val[0].history_item_ids
