"""ReDial conversational recommendation dialogues (Li et al., NeurIPS 2018) as interaction data.

One dialogue a JSON line: ``conversationId, initiatorWorkerId`` (the seeker),
``messages[{text, senderWorkerId}]``, ``movieMentions {id: "Title (Year)"}`` and
``initiatorQuestions {movieId: {suggested, seen, liked}}`` (the seeker's answers; 1 = yes,
0 = no, 2 = did not say). Movies appear in the text as ``@<id>``.

Mapping (one request event per dialogue with a usable target):

* target: the movies the seeker was *suggested and liked*; the first mentioned is the
  target, all of them are relevant;
* request: the seeker's messages before the first message that mentions a target (what
  they asked for before the answer came up), or all their messages when that is empty.
  Every target mention is masked as ``[movie]``; other mentions become their titles, so
  "something like @1234" reads "something like Titanic (1997)";
* history: the movies the seeker liked in earlier dialogues (request events and
  history-only events). There are no dates: ``conversationId`` is the clock.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from recommender.catalog import CatalogItem
from recommender.training.data import HistoryEvent, Interaction, InteractionDataset
from recommender.training.datafiles import DatasetNotFound, json_lines, require

MENTION = re.compile(r"@(\d+)")
MASK = "[movie]"


def _title(raw: str) -> str:
    return " ".join(str(raw).split())


def _answers(dialogue: dict[str, Any]) -> dict[str, dict[str, int]]:
    questions = dialogue.get("initiatorQuestions") or {}
    if not isinstance(questions, dict):  # some dumps write an empty list
        return {}
    return {str(k): v for k, v in questions.items() if isinstance(v, dict)}


def _mentions(text: str) -> list[str]:
    return MENTION.findall(text or "")


def _render(text: str, masked: set[str], titles: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        movie = match.group(1)
        return MASK if movie in masked else titles.get(movie, MASK)

    return " ".join(MENTION.sub(sub, text or "").split())


def dialogue_event(
    dialogue: dict[str, Any], titles: dict[str, str]
) -> tuple[Interaction | None, list[HistoryEvent]]:
    """The request event of one dialogue (None without a suggested-and-liked movie) and its liked movies."""
    seeker = str(dialogue["initiatorWorkerId"])
    clock = float(dialogue["conversationId"])
    answers = _answers(dialogue)
    liked = sorted(m for m, a in answers.items() if a.get("liked") == 1)
    wanted = {m for m, a in answers.items() if a.get("suggested") == 1 and a.get("liked") == 1}
    messages = [m for m in dialogue.get("messages") or [] if isinstance(m, dict)]
    first_seen: dict[str, int] = {}
    for position, message in enumerate(messages):
        for movie in _mentions(str(message.get("text", ""))):
            first_seen.setdefault(movie, position)
    targets = sorted(wanted, key=lambda m: (first_seen.get(m, len(messages)), m))
    if not targets:
        return None, [HistoryEvent(seeker, m, clock) for m in liked]
    cut = min(first_seen.get(m, len(messages)) for m in targets)
    own = [str(m.get("text", "")) for m in messages if str(m.get("senderWorkerId")) == seeker]
    before = [str(m.get("text", "")) for m in messages[:cut] if str(m.get("senderWorkerId")) == seeker]
    text = " ".join(_render(t, wanted, titles) for t in (before or own)).strip()
    others = [HistoryEvent(seeker, m, clock) for m in liked if m != targets[0]]
    if not text:
        return None, others + [HistoryEvent(seeker, targets[0], clock)]
    return Interaction(seeker, targets[0], clock, text, relevant_item_ids=tuple(targets)), others


def load_redial(path: str | os.PathLike[str], *, protocol: str = "time_cut") -> InteractionDataset:
    """Read every ``*_data.jsonl`` (or one given file) of ReDial into an :class:`InteractionDataset`.

    The catalog is every movie any dialogue mentions, titled as in ``movieMentions``.
    """
    path = require(path, "ReDial folder")
    files = (
        [path] if path.is_file() else sorted(path.glob("*_data.jsonl")) + sorted(path.glob("*_data.jsonl.gz"))
    )
    if not files:
        raise DatasetNotFound(f"no *_data.jsonl dialogue file in {path}")
    dialogues: list[dict[str, Any]] = []
    for file in files:
        for n, record in json_lines(file):
            if "conversationId" not in record or "initiatorWorkerId" not in record:
                raise ValueError(f"{file}:{n}: not a ReDial dialogue (no conversationId/initiatorWorkerId)")
            dialogues.append(record)
    titles: dict[str, str] = {}
    for d in dialogues:
        for movie, title in (d.get("movieMentions") or {}).items():
            if title and str(movie) not in titles:
                titles[str(movie)] = _title(title)
    interactions: list[Interaction] = []
    history: list[HistoryEvent] = []
    for d in sorted(dialogues, key=lambda d: int(d["conversationId"])):
        event, liked = dialogue_event(d, titles)
        if event is not None:
            interactions.append(event)
        history.extend(liked)
    known = set(titles)
    used = {m for x in interactions for m in x.relevant_item_ids} | {h.item_id for h in history}
    items = [CatalogItem(item_id=m, title=titles[m]) for m in sorted(known, key=int)]
    items += [CatalogItem(item_id=m, title=f"movie {m}") for m in sorted(used - known)]
    return InteractionDataset(
        name="redial",
        items=items,
        interactions=interactions,
        history_events=history,
        description=f"ReDial dialogues: {', '.join(f.name for f in files)}",
        protocol=protocol,
    )


def find_redial(base: Path) -> Path:
    """``base/redial`` when it exists, else ``base`` itself."""
    return base / "redial" if (base / "redial").is_dir() else base
