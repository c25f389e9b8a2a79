"""Interaction datasets and their two temporal splits.

An :class:`InteractionDataset` is a catalog plus request events ``(user, item, time,
request text)``; some datasets add history-only events (e.g. MovieLens ratings) that feed a
user's history but are never a prediction target. Its ``protocol`` names the split
(:func:`split_dataset`):

* ``time_cut`` (real data): two global cuts in time. Every request event after the test cut
  whose user already has history is a test case, every one between the cuts with history a
  validation case, everything before the validation cut is training. This uses every case
  the data allows (hundreds instead of one per user) and never trains on the future.
* ``leave_last_out`` (the shopper simulation, whose clocks are per shopper):

Leave-last-out split (per user): each user's last request event is the test case,
the second-to-last the validation case, the rest training. Users with fewer than three
events are training-only. Events that share their timestamp with a user's held-out event
are dropped from training and from histories (Amazon posts one review under several linked
ASINs at the same second, which would otherwise leak the answer). Anything *learned* from interactions (model weights, popularity,
item descriptions built from reviews) uses the training events only; a case's history is
the user's own items strictly before the case, which is input, not training signal.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from recommender.catalog import CatalogItem


@dataclass(frozen=True)
class Interaction:
    """A user asked for ``request_text`` and chose ``item_id`` at ``timestamp``."""

    user_id: str
    item_id: str
    timestamp: float
    request_text: str
    # Ground truth when more than the chosen item is correct (simulation); empty = {item_id}.
    relevant_item_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryEvent:
    """An item a user consumed that only counts as history (no request text)."""

    user_id: str
    item_id: str
    timestamp: float


@dataclass
class InteractionDataset:
    """A catalog with request events and optional history-only events."""

    name: str
    items: list[CatalogItem]
    interactions: list[Interaction]
    history_events: list[HistoryEvent] = field(default_factory=list)
    description: str = ""
    protocol: str = "leave_last_out"  # or "time_cut"; see split_dataset

    def users(self) -> list[str]:
        """Users with at least one request event, sorted."""
        return sorted({i.user_id for i in self.interactions})

    def fingerprint(self) -> str:
        """Digest of the catalog ids and all events: identifies the training data."""
        digest = hashlib.sha256(self.name.encode())
        digest.update(json.dumps([i.item_id for i in self.items]).encode())
        for x in self.interactions:
            digest.update(json.dumps([x.user_id, x.item_id, x.timestamp, x.request_text]).encode())
        for h in self.history_events:
            digest.update(json.dumps([h.user_id, h.item_id, h.timestamp]).encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Example:
    """One request event with the history the user had at that moment."""

    user_id: str
    request_text: str
    target_item_id: str
    history_item_ids: tuple[str, ...]  # oldest first, target excluded
    relevant_item_ids: frozenset[str]  # ground truth for evaluation
    timestamp: float


@dataclass
class Split:
    """Training examples and held-out validation / test cases."""

    train: list[Example]
    val: list[Example]
    test: list[Example]

    def train_user_ids(self) -> list[str]:
        return sorted({e.user_id for e in self.train})

    def popularity(self) -> Counter[str]:
        """Item counts over training examples only (no validation/test leakage)."""
        return Counter(e.target_item_id for e in self.train)


def _history_before(
    own: list[Interaction], position: int, extra: list[HistoryEvent], target: str, max_history: int
) -> tuple[str, ...]:
    """The user's items before event ``position``: earlier request events + earlier history events."""
    if max_history <= 0:  # 0 means "no history", not "no limit" (the loop below keeps one)
        return ()
    t = own[position].timestamp
    # Strictly earlier only: events tied in time with the case (e.g. one review posted under
    # several linked ASINs) would otherwise hand the answer's twin to the model.
    events = [(x.timestamp, 0, x.item_id) for x in own[:position] if x.timestamp < t]
    events += [(h.timestamp, 1, h.item_id) for h in extra if h.timestamp < t]
    events.sort(key=lambda e: (e[0], e[1]))
    seen: set[str] = set()
    ordered: list[str] = []
    for _, _, item_id in reversed(events):  # newest first so duplicates keep their last time
        if item_id != target and item_id not in seen:
            seen.add(item_id)
            ordered.append(item_id)
        if len(ordered) >= max_history:
            break
    return tuple(reversed(ordered))


def temporal_split(dataset: InteractionDataset, *, max_history: int = 50) -> Split:
    """Per-user leave-last-out split in time (see the module docstring)."""
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for x in dataset.interactions:
        by_user[x.user_id].append(x)
    extra: dict[str, list[HistoryEvent]] = defaultdict(list)
    for h in dataset.history_events:
        extra[h.user_id].append(h)
    train: list[Example] = []
    val: list[Example] = []
    test: list[Example] = []
    for user in sorted(by_user):
        # Stable sort: events with equal timestamps keep their file order.
        own = sorted(by_user[user], key=lambda x: x.timestamp)
        n = len(own)
        for pos, x in enumerate(own):
            example = Example(
                user_id=user,
                request_text=x.request_text,
                target_item_id=x.item_id,
                history_item_ids=_history_before(own, pos, extra[user], x.item_id, max_history),
                relevant_item_ids=frozenset(x.relevant_item_ids or (x.item_id,)),
                timestamp=x.timestamp,
            )
            if n >= 3 and pos == n - 1:
                test.append(example)
            elif n >= 3 and pos == n - 2:
                val.append(example)
            elif n < 3 or x.timestamp < own[n - 2].timestamp:
                train.append(example)
            # else: tied in time with the held-out validation/test event; dropped so that a
            # duplicate of a held-out event can never be trained on.
    return Split(train=train, val=val, test=test)


#: Share of request events (in time order) after the validation and the test cut.
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2
PROTOCOLS = ("leave_last_out", "time_cut")


def time_cut_split(
    dataset: InteractionDataset,
    *,
    max_history: int = 50,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
) -> Split:
    """Global time cuts: train before ``t_val``, validate in ``[t_val, t_test)``, test from ``t_test``.

    The cuts are the timestamps at the ``1 - val_fraction - test_fraction`` and
    ``1 - test_fraction`` quantiles of all request events; events tied with a cut fall after
    it, so no training event shares a timestamp with a held-out one. A held-out event is a
    case only if its user has history by then (the paper's setting: personalise from earlier
    items); held-out events without history are neither cases nor training. History is the
    user's own earlier items (earlier held-out events included: they are input, not training
    signal), the target itself excluded; a repeat of an earlier item with nothing else before it
    has empty history and is no case.
    """
    if max_history <= 0:
        raise ValueError("time_cut_split needs max_history >= 1: cases are chosen by their history")
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 - test_fraction:
        raise ValueError("need 0 < test_fraction < 1 and 0 <= val_fraction < 1 - test_fraction")
    events = sorted(dataset.interactions, key=lambda x: x.timestamp)  # stable: file order on ties
    if not events:
        return Split([], [], [])
    times = [x.timestamp for x in events]
    t_test = times[min(len(times) - 1, int(len(times) * (1 - test_fraction)))]
    t_val = times[min(len(times) - 1, int(len(times) * (1 - test_fraction - val_fraction)))]
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for x in events:
        by_user[x.user_id].append(x)
    extra: dict[str, list[HistoryEvent]] = defaultdict(list)
    for h in dataset.history_events:
        extra[h.user_id].append(h)
    train: list[Example] = []
    val: list[Example] = []
    test: list[Example] = []
    for user in sorted(by_user):
        own = by_user[user]
        for pos, x in enumerate(own):
            history = _history_before(own, pos, extra[user], x.item_id, max_history)
            example = Example(
                user_id=user,
                request_text=x.request_text,
                target_item_id=x.item_id,
                history_item_ids=history,
                relevant_item_ids=frozenset(x.relevant_item_ids or (x.item_id,)),
                timestamp=x.timestamp,
            )
            if x.timestamp < t_val:
                train.append(example)
            elif not history:
                continue  # after the cut without history: not a case, and never trained on
            elif x.timestamp < t_test:
                val.append(example)
            else:
                test.append(example)
    return Split(train=train, val=val, test=test)


def split_dataset(dataset: InteractionDataset, *, max_history: int = 50) -> Split:
    """The split the dataset's ``protocol`` names (see the module docstring)."""
    if dataset.protocol == "time_cut":
        return time_cut_split(dataset, max_history=max_history)
    if dataset.protocol == "leave_last_out":
        return temporal_split(dataset, max_history=max_history)
    raise ValueError(f"unknown protocol {dataset.protocol!r}; choose from {', '.join(PROTOCOLS)}")


def describe_items_from_training(
    items: list[CatalogItem], train: list[Example], *, max_requests: int = 5, max_chars: int = 400
) -> list[CatalogItem]:
    """Give items without descriptive text a description made of their training-period requests.

    For catalogs with no metadata (Amazon 5-core ships reviews only) the item's own id is
    meaningless to a text encoder; the requests that led to it *in the training period* are
    the best leak-free description available. Items that already have text or attributes
    (Myntra, MovieLens) are left exactly as they are, so their embeddings stay those the app
    computes for the same catalog.
    """
    texts: dict[str, list[str]] = defaultdict(list)
    for e in train:
        # Every item the request was relevant to (all linked ASINs of a merged Amazon review),
        # not only the target, so no linked ASIN is left without a description.
        for item_id in [e.target_item_id, *sorted(e.relevant_item_ids - {e.target_item_id})]:
            if len(texts[item_id]) < max_requests:
                texts[item_id].append(e.request_text)
    out = []
    for item in items:
        if item.text or item.attributes or not texts.get(item.item_id):
            out.append(item)
            continue
        text = " | ".join(texts[item.item_id])[:max_chars]
        out.append(
            CatalogItem(
                item.item_id, item.title, text, dict(item.attributes), item.image_path, item.image_url
            )
        )
    return out
