"""Loaders for Amazon 2014/2018 review files and ReDial dialogues, and the time-cut protocol."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from recommender.catalog import CatalogItem
from recommender.training.amazon import load_amazon_reviews
from recommender.training.data import Interaction, InteractionDataset, split_dataset, time_cut_split
from recommender.training.redial import MASK, load_redial

from .conftest import shared_data_dir


def _review_2014(user: str, asin: str, t: int, text: str) -> dict[str, object]:
    return {
        "reviewerID": user,
        "asin": asin,
        "reviewerName": "x",
        "helpful": [0, 0],
        "reviewText": text,
        "overall": 5.0,
        "summary": "ok",
        "unixReviewTime": t,
        "reviewTime": "01 01, 2014",
    }


def test_amazon_2014_json_gz_is_read_and_reported_as_2014(tmp_path: Path) -> None:
    path = tmp_path / "reviews_Musical_Instruments_5.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in [_review_2014("u1", "A", 10, "a pop filter"), _review_2014("u1", "B", 20, "guitar strings")]:
            fh.write(json.dumps(r) + "\n")
    ds = load_amazon_reviews(path, name="mi")
    assert ds.description.startswith("Amazon Review Data 2014")
    assert [(x.user_id, x.item_id, x.timestamp) for x in ds.interactions] == [
        ("u1", "A", 10.0),
        ("u1", "B", 20.0),
    ]
    assert ds.interactions[1].request_text == "ok. guitar strings"
    assert ds.protocol == "time_cut"


def test_amazon_2014_python_literal_lines_and_review_time_fallback(tmp_path: Path) -> None:
    # Some 2014 dumps are Python dict literals (single quotes); one line lacks unixReviewTime.
    record = _review_2014("u2", "C", 0, "a capo")
    del record["unixReviewTime"]
    record["reviewTime"] = "02 28, 2014"
    path = tmp_path / "old.json"
    path.write_text(repr(record) + "\n")
    ds = load_amazon_reviews(path)
    assert ds.interactions[0].item_id == "C"
    assert ds.interactions[0].timestamp == 1393545600.0  # 2014-02-28 00:00 UTC


def test_amazon_2018_record_is_reported_as_2018(tmp_path: Path) -> None:
    record = {**_review_2014("u", "D", 5, "nice"), "verified": True, "style": {"Size:": "M"}}
    path = tmp_path / "AMAZON_FASHION_5.json"
    path.write_text(json.dumps(record) + "\n")
    assert load_amazon_reviews(path).description.startswith("Amazon Review Data 2018")


def test_amazon_line_that_is_neither_json_nor_literal_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_review_2014("u", "A", 1, "x")) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"bad.json:2"):
        load_amazon_reviews(path)


def _dialogue(cid: int, seeker: int, messages: list[tuple[int, str]], answers: dict[str, tuple[int, int]]):  # type: ignore[no-untyped-def]
    return {
        "conversationId": cid,
        "initiatorWorkerId": seeker,
        "respondentWorkerId": 99,
        "messages": [
            {"text": t, "senderWorkerId": s, "messageId": i, "timeOffset": i}
            for i, (s, t) in enumerate(messages)
        ],
        "movieMentions": {"1": "Heat  (1995)", "2": "Up (2009)", "3": "Alien (1979)", "4": "Big (1988)"},
        "initiatorQuestions": {m: {"suggested": s, "seen": 0, "liked": lk} for m, (s, lk) in answers.items()},
    }


def test_redial_request_masks_target_and_history_is_earlier_likes(tmp_path: Path) -> None:
    dialogues = [
        _dialogue(10, 7, [(7, "I love @3"), (99, "try @4")], {"3": (0, 1), "4": (1, 1)}),
        _dialogue(
            20,
            7,
            [(7, "something funny like @1"), (99, "@2 is great"), (7, "oh yes I liked @2 a lot")],
            {"1": (0, 1), "2": (1, 1)},
        ),
        _dialogue(30, 8, [(8, "hello"), (99, "@1?")], {"1": (1, 0)}),  # suggested, not liked: no event
    ]
    (tmp_path / "test_data.jsonl").write_text("\n".join(json.dumps(d) for d in dialogues) + "\n")
    ds = load_redial(tmp_path)
    assert {i.item_id: i.title for i in ds.items}["1"] == "Heat (1995)"
    second = next(x for x in ds.interactions if x.timestamp == 20.0)
    # Only the seeker's words before the target came up; other mentions become titles.
    assert second.request_text == "something funny like Heat (1995)"
    assert second.item_id == "2" and second.relevant_item_ids == ("2",)
    first = next(x for x in ds.interactions if x.timestamp == 10.0)
    assert first.request_text == "I love Alien (1979)"
    assert len(ds.interactions) == 2
    ds.protocol = "leave_last_out"
    split = split_dataset(ds)
    case = next(e for e in split.train if e.timestamp == 20.0)
    # History: liked in the earlier dialogue (the target 4 and the mentioned 3), not this one's likes.
    assert set(case.history_item_ids) == {"3", "4"}


def test_redial_target_mention_in_seeker_words_is_masked(tmp_path: Path) -> None:
    dialogues = [_dialogue(5, 7, [(7, "is @2 any good?"), (99, "yes")], {"2": (1, 1)})]
    (tmp_path / "valid_data.jsonl").write_text(json.dumps(dialogues[0]) + "\n")
    ds = load_redial(tmp_path)
    assert ds.interactions[0].request_text == f"is {MASK} any good?"


def _events(spec: list[tuple[str, str, float]]) -> InteractionDataset:
    items = sorted({i for _, i, _ in spec})
    return InteractionDataset(
        "t",
        [CatalogItem(i, i) for i in items],
        [Interaction(u, i, t, f"want {i}") for u, i, t in spec],
        protocol="time_cut",
    )


def test_time_cut_keeps_every_later_event_of_users_with_history_and_never_the_target_in_history() -> None:
    # 10 events in time; test = last 20 % (t >= 9), validation = the 10 % before (t == 8).
    spec = [("a", "x1", 1), ("b", "x2", 2), ("a", "x3", 3), ("c", "x4", 4), ("b", "x1", 5)]
    spec += [("a", "x2", 6), ("c", "x3", 7), ("a", "x4", 8), ("a", "x5", 9), ("a", "x1", 9.5)]
    spec += [("d", "x2", 9.7)]  # d has no history: not a case
    split = time_cut_split(_events(spec), val_fraction=0.1, test_fraction=0.2)
    assert [(e.user_id, e.timestamp) for e in split.test] == [("a", 9), ("a", 9.5)]  # both of a's, not one
    assert [(e.user_id, e.timestamp) for e in split.val] == [("a", 8)]
    assert all(e.timestamp < 8 for e in split.train) and len(split.train) == 7
    for e in split.train + split.val + split.test:
        assert e.target_item_id not in e.history_item_ids
    # a's last event repeats x1: x1 is the target, so it leaves the history.
    last = split.test[-1]
    assert last.history_item_ids == ("x3", "x2", "x4", "x5")


def test_time_cut_events_tied_with_the_cut_are_held_out() -> None:
    spec = [("a", "x1", 1), ("a", "x2", 2), ("b", "x1", 2), ("b", "x2", 3)]
    split = time_cut_split(_events(spec), val_fraction=0.0, test_fraction=0.5)
    assert all(e.timestamp < 2 for e in split.train)


DATA = shared_data_dir()


@pytest.mark.skipif(
    DATA is None or not (DATA / "amazon_musical_instruments_5core").is_dir(),
    reason="no Musical Instruments data",
)
def test_musical_instruments_protocol_gives_hundreds_of_cases() -> None:
    from recommender.training.loaders import load_dataset

    ds = load_dataset("musical-instruments", DATA)
    split = split_dataset(ds)
    assert len(split.test) >= 300  # every post-cut review of a returning reviewer, not one per user
    assert all(e.history_item_ids and e.target_item_id not in e.history_item_ids for e in split.test)
    assert max(e.timestamp for e in split.train) < min(e.timestamp for e in split.val + split.test)


@pytest.mark.skipif(DATA is None or not (DATA / "redial").is_dir(), reason="no ReDial data")
def test_redial_protocol_gives_hundreds_of_cases() -> None:
    from recommender.training.loaders import load_dataset

    ds = load_dataset("redial", DATA)
    split = split_dataset(ds)
    assert len(split.test) >= 200
    assert all(MASK in e.request_text or "@" not in e.request_text for e in split.test)
    assert all(e.target_item_id not in e.history_item_ids for e in split.test)
