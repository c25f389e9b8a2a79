"""Simulated participants: bots that take a study through the same service calls the views make.

A bot joins as a *simulated* participant (never counted with real data, deletable with the
pilots), consents, picks items it likes, types requests drawn from a pool, waits for the real
ranking task (in-process or on a Celery worker, whichever the deployment uses), rates every
shown item with the oracle below, says which list is better, and answers the questionnaire.
The researcher then sees a complete analysis before launch, and the whole pipeline (ranking,
slots, attention checks, exports, statistics) has run end to end.

The oracle (documented in docs/researcher-walkthrough.md):

* The *request terms* are the request's words that name a catalog attribute value (colour,
  article type, gender, usage, season, category), matched case-insensitively, with a plural
  "s" ignored ("jackets" = "jacket").
* An item's *match* is the share of request terms found among the item's attribute values and
  title words (0 when the request names no attribute).
* The label is ``min + match * (max - min) + noise`` rounded onto the study's scale, where the
  noise is Gaussian with standard deviation ``noise`` scale points (default 0.5).
* A *careless* bot (``--careless`` share of the bots) rates uniformly at random, quickly.

Response times are simulated too, because a bot answers in microseconds: an attentive bot takes
log-normally distributed times around 4 s per rating, a careless one around 0.5 s, so the speed
flags and the time-per-participant figures show what they will look like with people. The
stored ``response_ms``, ``too_fast`` and ``finished_at`` of simulated participants are these
simulated values; everything else (rankings, slots, attention-check scoring) is real.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import QuerySet

from studyapp import services
from studyapp.models import Item, Judgement, Participant, Request, Study

WORD = re.compile(r"[a-z]+")
ATTRIBUTE_KEYS = ("baseColour", "articleType", "gender", "usage", "season", "masterCategory", "subCategory")
THINK_SECONDS = {"attentive": 4.0, "careless": 0.5}  # median seconds per rating
THINK_SPREAD = 0.5  # sigma of the log-normal
OVERHEAD_SECONDS = 120  # consent, picking, typing: added to a bot's simulated duration


def _words(text: str) -> set[str]:
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in WORD.findall(text.casefold())}


@dataclass(frozen=True)
class Oracle:
    """Labels items by attribute match with the request, plus Gaussian noise (module docstring)."""

    vocabulary: frozenset[str]
    noise: float = 0.5

    @classmethod
    def for_items(cls, items: Iterable[Item], noise: float = 0.5) -> Oracle:
        vocabulary: set[str] = set()
        for item in items:
            for key in ATTRIBUTE_KEYS:
                vocabulary |= _words(str((item.attributes or {}).get(key, "")))
        return cls(frozenset(vocabulary), noise)

    def match(self, request_text: str, item: Item) -> float:
        terms = _words(request_text) & self.vocabulary
        if not terms:
            return 0.0
        item_words = _words(item.title)
        for key in ATTRIBUTE_KEYS:
            item_words |= _words(str((item.attributes or {}).get(key, "")))
        return len(terms & item_words) / len(terms)

    def label(self, request_text: str, item: Item, values: Sequence[int], rng: random.Random) -> int:
        low, high = min(values), max(values)
        raw = low + self.match(request_text, item) * (high - low) + rng.gauss(0.0, self.noise)
        return min(high, max(low, round(raw)))


def default_request_pool(items: Sequence[Item], n: int = 40, seed: int = 0) -> list[str]:
    """Requests a shopper might type, built from attribute combinations that exist in the catalog."""
    rng = random.Random(seed)
    pool = []
    for item in rng.sample(list(items), min(n, len(items))):
        a = item.attributes or {}
        colour, usage, kind = a.get("baseColour", ""), a.get("usage", ""), a.get("articleType", "")
        gender = {"Men": "for men", "Women": "for women"}.get(a.get("gender", ""), "")
        text = " ".join(w for w in (colour.lower(), usage.lower(), kind.lower(), gender) if w)
        pool.append(text or item.title)
    return pool


def read_request_pool(path: str) -> list[str]:
    """One request per line; blank lines and lines starting with '#' are skipped."""
    with open(path, encoding="utf-8") as fh:
        lines = [line.strip() for line in fh]
    pool = [line for line in lines if line and not line.startswith("#")]
    if not pool:
        raise ValueError(f"{path} holds no requests")
    return pool


class SimulationError(RuntimeError):
    """A bot could not finish: a ranking failed twice or never finished in time."""


@dataclass
class Bot:
    """One simulated participant's behaviour; ``rng`` makes its choices reproducible."""

    study: Study
    oracle: Oracle
    pool: Sequence[str]
    rng: random.Random
    careless: bool = False
    wait_seconds: float = 600.0
    poll_seconds: float = 0.2

    def think_ms(self) -> int:
        median = THINK_SECONDS["careless" if self.careless else "attentive"]
        return int(1000 * median * math.exp(self.rng.gauss(0.0, THINK_SPREAD)))

    def run(self) -> Participant:
        p = services.do_join_test_run(self.study, Participant.Origin.SIMULATED, "simulate_participants")
        services.do_consent(p, True)
        self._pick(p)
        services.do_finish_onboarding(p)
        services.do_finish_instructions(p)
        simulated_ms = 0
        while (number := services.current_request_number(p)) is not None:
            if number > self.study.requests_per_participant:
                break
            request = services.do_create_request(p, self.rng.choice(list(self.pool)))
            request = self._wait(request)
            simulated_ms += self._judge(p, request)
            if self.study.asks_list_preference:
                services.do_record_preference(p, request, self._preferred_list(request))
            services.do_complete_request(p, request)
            p.refresh_from_db()
        if p.phase == Participant.Phase.QUESTIONNAIRE:
            answers = {
                f"q{q.pk}": str(self.rng.randint(max(1, q.scale_points // 2), q.scale_points))
                for q in self.study.questionnaire_items.all()
            }
            services.do_save_questionnaire(p, answers)
            p.refresh_from_db()
        if p.finished_at and p.consented_at:
            finished = p.consented_at + timedelta(milliseconds=simulated_ms, seconds=OVERHEAD_SECONDS)
            Participant.objects.filter(pk=p.pk).update(finished_at=finished)
        return p

    def _pick(self, p: Participant) -> None:
        grid = services.onboarding_grid(p)
        persona = self.rng.choice(grid)  # a bot likes items like one it saw first
        gender = (persona.attributes or {}).get("gender")
        liked = [i for i in grid if (i.attributes or {}).get("gender") == gender] or grid
        chosen = self.rng.sample(liked, min(len(liked), self.study.onboarding_picks))
        others = [i for i in grid if i not in chosen]
        chosen += self.rng.sample(others, max(0, self.study.onboarding_picks - len(chosen)))
        for item in chosen:
            services.do_toggle_pick(p, item.pk)

    def _wait(self, request: Request) -> Request:
        deadline = time.monotonic() + self.wait_seconds
        retried = False
        while True:
            request.refresh_from_db()
            if request.status == Request.Status.DONE:
                return request
            if request.status == Request.Status.FAILED:
                if retried:
                    raise SimulationError(f"ranking failed twice for {request}: {request.error}")
                services.do_retry_request(request)
                retried = True
            if time.monotonic() > deadline:
                raise SimulationError(f"{request} was not ranked within {self.wait_seconds:.0f} s")
            time.sleep(self.poll_seconds)

    def _judge(self, p: Participant, request: Request) -> int:
        """Rate every slot; returns the simulated milliseconds spent."""
        values = self.study.scale.values
        total = 0
        limit_ms = self.study.min_seconds_per_judgement * 1000
        for slot in request.slots.select_related("item").order_by("list_label", "position"):
            if self.careless:
                label = self.rng.choice(values)
            else:
                label = self.oracle.label(request.text, slot.item, values, self.rng)
            judgement = services.do_record_judgement(p, slot.pk, str(label))
            ms = self.think_ms()
            total += ms
            Judgement.objects.filter(pk=judgement.pk).update(response_ms=ms, too_fast=ms < limit_ms)
        return total

    def _preferred_list(self, request: Request) -> str:
        means: dict[str, list[int]] = {}
        for label, value in request.slots.values_list("list_label", "judgement__label"):
            means.setdefault(label, []).append(value or 0)
        scored = sorted(((sum(v) / len(v), label) for label, v in means.items()), reverse=True)
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return ""  # no difference
        return scored[0][1]


def simulate(
    study: Study,
    n: int,
    *,
    pool: Sequence[str] | None = None,
    seed: int = 0,
    noise: float = 0.5,
    careless: float = 0.0,
    wait_seconds: float = 600.0,
    progress: Callable[[int, Participant], None] | None = None,
) -> QuerySet[Participant]:
    """Run ``n`` bots one after another; returns the simulated participants created."""
    items: list[Item] = list(Item.objects.filter(catalog=study.catalog))
    oracle = Oracle.for_items(items, noise=noise)
    pool = list(pool) if pool else default_request_pool(items, seed=seed)
    rng = random.Random(seed)
    created = []
    for i in range(n):
        bot = Bot(
            study, oracle, pool, random.Random(rng.getrandbits(64)), careless=rng.random() < careless,
            wait_seconds=wait_seconds,
        )  # fmt: skip
        participant = bot.run()
        created.append(participant.pk)
        if progress is not None:
            progress(i + 1, participant)
    return Participant.objects.filter(pk__in=created).order_by("number")
