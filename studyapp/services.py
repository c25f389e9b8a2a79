"""Participant-side writes. Views call these; each says what it validates and which locks it takes.

``check_*`` functions validate and raise :class:`StudyError` (shown to the participant);
``do_*`` functions write. Every write that a double click or a reload could repeat is
idempotent: it either finds the row it would create or updates it in place.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from studyapp import dispatch
from studyapp.models import (
    HistoryPick,
    Item,
    Judgement,
    ListPreference,
    Participant,
    QuestionnaireAnswer,
    Request,
    Slot,
    Study,
)

Phase = Participant.Phase
CANT_JUDGE = "na"


class StudyError(Exception):
    """A participant action that cannot be done; the message is safe to show them."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- Joining -----------------------------------------------------------------------------


def do_join_study(
    study: Study, external: Mapping[str, str], user_agent: str = "", remembered_token: str | None = None
) -> Participant:
    """Create the participant for a study link, or resume a returning one.

    A returning crowd id resumes only with proof that it is the same person: the same
    platform session id (Prolific's SESSION_ID is per submission) or this browser's remembered
    token. Anyone else presenting a known id is refused without learning the personal link;
    the id alone is often guessable (lab ids) or semi-public (worker ids). A crowd id that
    declined consent cannot start again; only the browser that declined sees its answer.
    Takes a row lock on the study so arrival numbers are dense and two tabs find one participant.
    """
    external_id = storable(external.get("external_id") or "").strip()[:100]
    session_id = storable(external.get("external_session_id") or "").strip()[:100]
    if study.status != Study.Status.OPEN and not external_id:
        raise StudyError("This study is not open for participants.", status=403)
    for attempt in range(3):
        try:
            return _join_locked(study, external, external_id, session_id, user_agent, remembered_token)
        except IntegrityError:
            # Only reachable where row locks are no-ops (SQLite): a concurrent join won the race.
            if external_id:
                existing = Participant.objects.get(study=study, external_id=external_id)
                return _resume(existing, session_id, remembered_token)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _join_locked(
    study: Study,
    external: Mapping[str, str],
    external_id: str,
    session_id: str,
    user_agent: str,
    remembered_token: str | None,
) -> Participant:
    with transaction.atomic():
        # The study row lock serialises joins: arrival numbers stay dense, and two tabs opening
        # the same crowd link at once find one participant (resumed or refused, declined or not).
        Study.objects.select_for_update().get(pk=study.pk)
        existing = (
            Participant.objects.filter(study=study, external_id=external_id).first() if external_id else None
        )
        if existing is not None:
            return _resume(existing, session_id, remembered_token)
        if study.status != Study.Status.OPEN:
            raise StudyError("This study is not open for participants.", status=403)
        last = Participant.objects.filter(study=study).aggregate(n=Max("number"))["n"] or 0
        return Participant.objects.create(
            study=study,
            number=last + 1,
            external_id=external_id,
            external_study_id=storable(external.get("external_study_id") or "")[:100],
            external_session_id=session_id,
            user_agent=storable(user_agent)[:300],
        )


def _resume(existing: Participant, session_id: str, remembered_token: str | None) -> Participant:
    """The participant a known crowd id may resume, or the refusal it gets.

    Runs under the study lock (or after a lost race that created ``existing``). The decline
    check comes first: a declined id does not restart even with the same platform session;
    only the browser that declined (its remembered token) gets its own record back, to see
    its answer.
    """
    if existing.phase == Phase.DECLINED and existing.token != remembered_token:
        raise StudyError(
            "You declined to take part in this study, so it cannot be started again.", status=409
        )
    if existing.token == remembered_token or (session_id and session_id == existing.external_session_id):
        return existing
    raise StudyError(
        "You have already started this study. Please continue with the personal link you were given, "
        "or open the study again from the platform you came from.",
        status=409,
    )


def storable(text: str) -> str:
    """Drop characters a text column cannot hold (NUL, lone surrogates) from harmless metadata."""
    return "".join(ch for ch in text if ch != "\x00" and not "\ud800" <= ch <= "\udfff")


def do_join_test_run(study: Study, origin: str, user_agent: str = "") -> Participant:
    """Create a pilot (researcher preview) or simulated participant, whatever the study's status.

    They take the next arrival number and, when they start the tasks, a counterbalancing
    condition from their own origin's sequence (:func:`do_finish_instructions`), so they run the
    same design a real participant would without taking a real participant's condition; they
    never lock the design (:meth:`Study.is_locked`) and the analysis leaves them out
    (``reporting.accepted``, ``Participant.objects.counted()``).
    """
    if origin not in (Participant.Origin.PILOT, Participant.Origin.SIMULATED):
        raise ValueError(f"not a test-run origin: {origin!r}")
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)
        last = Participant.objects.filter(study=study).aggregate(n=Max("number"))["n"] or 0
        return Participant.objects.create(
            study=study, number=last + 1, origin=origin, user_agent=storable(user_agent)[:300]
        )


def delete_test_runs(study: Study) -> int:
    """Delete every pilot and simulated participant of a study with all they did; returns how many.

    Real participants' data is never touched (the filter is on ``origin``).
    """
    with transaction.atomic():
        participants = Participant.objects.filter(study=study).test_runs()
        count = participants.count()
        participants.delete()
    return count


def do_consent(participant: Participant, agreed: bool) -> None:
    """Record consent (moves on to onboarding) or its refusal.

    A refusal ends the session and erases what joining stored (platform study and session
    ids, browser) except the crowd id itself: that is kept, as the record that this id
    declined, so the same id cannot start the study again (crowd-platform convention).
    Conditional on the phase, so a resubmitted or raced consent form changes nothing.
    """
    now = timezone.now()
    pending = Participant.objects.filter(pk=participant.pk, phase=Phase.CONSENT)
    if agreed:
        pending.update(consented_at=now, phase=Phase.ONBOARDING)
    else:
        pending.update(
            phase=Phase.DECLINED, finished_at=now, external_study_id="", external_session_id="", user_agent="",
        )  # fmt: skip
    participant.refresh_from_db()


# --- Onboarding --------------------------------------------------------------------------


def onboarding_grid(participant: Participant) -> list[Item]:
    """The items offered for picking: a per-participant seeded sample, stable across reloads."""
    study = participant.study
    ids = list(Item.objects.filter(catalog=study.catalog).order_by("id").values_list("id", flat=True))
    rng = random.Random(f"{study.seed}:{participant.number}:grid")
    chosen = rng.sample(ids, min(study.onboarding_grid_size, len(ids)))
    by_id = Item.objects.in_bulk(chosen)
    return [by_id[i] for i in chosen]


def do_toggle_pick(participant: Participant, item_id: int) -> bool:
    """Pick or un-pick an item of the onboarding grid; returns whether it is now picked."""
    if participant.phase != Phase.ONBOARDING:
        raise StudyError("Your picks are already saved.", status=409)
    if item_id not in {item.pk for item in onboarding_grid(participant)}:
        raise StudyError("That item is not one you were offered.", status=400)
    deleted, _ = HistoryPick.objects.filter(participant=participant, item_id=item_id).delete()
    if deleted:
        return False
    try:
        with transaction.atomic():
            HistoryPick.objects.create(participant=participant, item_id=item_id)
    except IntegrityError:
        pass  # a double click raced us: it is picked either way
    return True


def do_finish_onboarding(participant: Participant) -> None:
    """Move on once at least the study's number of items is picked."""
    if participant.phase != Phase.ONBOARDING:
        return
    needed = participant.study.onboarding_picks
    have = participant.picks.count()
    if have < needed:
        raise StudyError(f"Please pick at least {needed} items you like ({have} picked so far).")
    Participant.objects.filter(pk=participant.pk, phase=Phase.ONBOARDING).update(phase=Phase.INSTRUCTIONS)
    participant.refresh_from_db()


def do_finish_instructions(participant: Participant) -> None:
    """Start the tasks, and assign the counterbalancing condition now.

    Conditions are handed out in the order participants start the tasks (1, 2, ...), not in
    the order they opened the link: visits abandoned at consent or onboarding take none, so
    they cannot unbalance the Latin square. The study row lock keeps conditions dense.
    Each origin has its own sequence: pilot and simulated participants run the same Latin
    square among themselves but never take (or leave gaps in) the real participants' conditions.
    """
    next_phase = Phase.PRACTICE if participant.study.practice_request else Phase.TASKS
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=participant.study_id)
        same_group = Participant.objects.filter(study_id=participant.study_id, origin=participant.origin)
        last = same_group.aggregate(c=Max("condition"))["c"] or 0
        Participant.objects.filter(pk=participant.pk, phase=Phase.INSTRUCTIONS).update(
            phase=next_phase, condition=last + 1
        )
    participant.refresh_from_db()


# --- Requests ----------------------------------------------------------------------------


def check_request_text(text: str | None) -> str:
    """Normalise request text; reject empty, whitespace-only and over-long requests."""
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise StudyError("Please describe what you are looking for.")
    limit = settings.WHISPERLITE_MAX_REQUEST_CHARS
    if len(cleaned) > limit:
        raise StudyError(f"Please keep your request under {limit} characters ({len(cleaned)} now).")
    return cleaned


def completed_requests(participant: Participant) -> int:
    """How many (non-practice) requests the participant has finished."""
    return participant.requests.filter(is_practice=False, completed_at__isnull=False).count()


def current_request_number(participant: Participant) -> int | None:
    """The request number the participant works on now, or None outside the request phases."""
    if participant.phase == Phase.PRACTICE:
        return 0
    if participant.phase != Phase.TASKS:
        return None
    return completed_requests(participant) + 1


def do_create_request(participant: Participant, text: str) -> Request:
    """Create the current request and send its ranking after commit (:mod:`studyapp.dispatch`).

    A double-submitted form finds the request already created for this number and returns it
    (the unique constraint on (participant, number) backs this up under a race).
    """
    cleaned = check_request_text(text)
    try:
        with transaction.atomic():
            # Locked so a request cannot be created while "next" moves the participant on.
            participant = (
                Participant.objects.select_for_update(of=("self",))
                .select_related("study")
                .get(pk=participant.pk)
            )
            number = current_request_number(participant)
            if number is None or number > participant.study.requests_per_participant:
                raise StudyError("You cannot make a request at this point of the study.", status=409)
            existing = participant.requests.filter(number=number).first()
            if existing is not None:
                return existing
            request = Request.objects.create(
                participant=participant,
                number=number,
                is_practice=number == 0,
                text=cleaned,
                seed=random.SystemRandom().randrange(2**31),
            )
            dispatch.enqueue_after_commit(request.pk)
    except IntegrityError:  # a concurrent double submit created it first
        return participant.requests.get(number=current_request_number(participant))
    return request


def do_retry_request(request: Request) -> None:
    """Put a failed request back in the queue (a fresh attempt budget: the participant asked)."""
    with transaction.atomic():
        if Request.objects.requeue(request.pk):
            dispatch.enqueue_after_commit(request.pk)


# --- Judgements --------------------------------------------------------------------------


def check_label(study: Study, raw: str | None) -> int | None:
    """Parse a submitted label: an int on the study's scale, or None for "can't judge"."""
    if raw == CANT_JUDGE:
        if not study.allow_cant_judge:
            raise StudyError("This study asks for a rating of every item.")
        return None
    try:
        value = int(raw or "")
    except ValueError:
        raise StudyError("That is not a rating on this study's scale.") from None
    if value not in study.scale.values:
        raise StudyError("That is not a rating on this study's scale.")
    return value


@dataclass(frozen=True)
class RecordedJudgement:
    """A stored rating and what the rating control shows next to it."""

    judgement: Judgement  # with ``slot`` (and the slot's ``request`` and ``item``) loaded
    unjudged: int  # slots of the request still without a rating, this one counted as rated


def do_record_judgement(participant: Participant, slot_id: int, raw_label: str | None) -> Judgement:
    """Store (or overwrite) the label for a displayed slot of the participant's own open request."""
    return do_save_judgement(participant, slot_id, raw_label).judgement


def do_save_judgement(participant: Participant, slot_id: int, raw_label: str | None) -> RecordedJudgement:
    """Store (or overwrite) the label for a displayed slot of the participant's own open request.

    One transaction of three statements: the slot with its request row locked
    (``SELECT ... FOR UPDATE OF request``; slots of other participants, or of a request not
    ready, are reported as missing), the request's slots with their judgements, then one
    INSERT or UPDATE. The request lock serialises every rating of the request with the others
    and with "next" (which closes the request and scores its attention check), so two submits
    of the same slot leave one row whose label is the later one, and the response time (since
    the previous answer) is read under the lock. ``participant.study`` should be loaded.
    """
    label = check_label(participant.study, raw_label)
    with transaction.atomic():
        slot = (
            Slot.objects.select_related("request", "item")
            .select_for_update(of=("request",))
            .filter(pk=slot_id, request__participant=participant, request__status=Request.Status.DONE)
            .first()
        )
        if slot is None:
            raise StudyError("That item is not in your recommendations.", status=404)
        now = timezone.now()  # under the lock: later than every rating that held it before
        request = slot.request
        if request.completed_at is not None:
            raise StudyError("This request is finished; its ratings can no longer change.", status=409)
        # Read after the lock is held: every judgement of the request that committed before it.
        rows = list(
            Slot.objects.filter(request_id=request.pk).values_list(
                "pk", "judgement__pk", "judgement__label", "judgement__changes", "judgement__updated_at"
            )
        )
        unjudged = sum(1 for row in rows if row[1] is None and row[0] != slot.pk)
        mine = next((row for row in rows if row[0] == slot.pk and row[1] is not None), None)
        if mine is not None:
            _, judgement_pk, old_label, changes, _ = mine
            if old_label != label:
                changes += 1
                Judgement.objects.filter(pk=judgement_pk).update(label=label, changes=changes, updated_at=now)
            judgement = Judgement(
                pk=judgement_pk, participant=participant, slot=slot, label=label, changes=changes
            )
            return RecordedJudgement(judgement, unjudged)
        previous = (
            max((row[4] for row in rows if row[4] is not None), default=None) or request.ready_at or now
        )
        elapsed_ms = max(0, int((now - previous).total_seconds() * 1000))
        judgement = Judgement(
            participant=participant,
            slot=slot,
            label=label,
            response_ms=elapsed_ms,
            too_fast=elapsed_ms < participant.study.min_seconds_per_judgement * 1000,
        )
        if connection.features.has_select_for_update:
            judgement.save(force_insert=True)  # the lock rules out a concurrent insert of this slot
            return RecordedJudgement(judgement, unjudged)
        try:  # no row locks (SQLite): a double click's other submit may have won the insert
            with transaction.atomic():
                judgement.save(force_insert=True)
        except IntegrityError:
            Judgement.objects.filter(slot=slot).exclude(label=label).update(
                label=label, updated_at=now, changes=F("changes") + 1
            )
            judgement = Judgement.objects.get(slot=slot)
        return RecordedJudgement(judgement, unjudged)


def do_record_preference(participant: Participant, request: Request, list_label: str) -> ListPreference:
    """Store which list the participant prefers ('' = no preference), unblinding it for analysis."""
    if request.participant_id != participant.pk or request.status != Request.Status.DONE:
        raise StudyError("That request is not yours or not ready.", status=404)
    study = participant.study
    if not study.asks_list_preference:
        raise StudyError("This study does not ask which list is better.", status=400)
    if request.completed_at is not None:
        raise StudyError("This request is finished; your answer can no longer change.", status=409)
    labels = set(request.slots.values_list("list_label", flat=True))
    if list_label and list_label not in labels:
        raise StudyError("There is no such list.")
    team = (
        request.slots.filter(list_label=list_label).values_list("team_id", flat=True).first()
        if list_label
        else None
    )
    pref, _ = ListPreference.objects.update_or_create(
        request=request, defaults={"list_label": list_label, "system_id": team}
    )
    return pref


def unjudged_slots(request: Request) -> int:
    return request.slots.filter(judgement__isnull=True).count()


def do_complete_request(participant: Participant, request: Request) -> None:
    """Close a fully judged request, score its attention check, and advance the phase.

    Locks the participant row so a double "next" click cannot advance two steps.
    """
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        request = Request.objects.select_for_update().get(pk=request.pk, participant=participant)
        if request.completed_at is not None:
            return
        if request.status != Request.Status.DONE:
            raise StudyError("Your recommendations are not ready yet.", status=409)
        missing = unjudged_slots(request)
        if missing:
            raise StudyError(f"Please rate every item first ({missing} left).")
        if participant.study.asks_list_preference:
            if not ListPreference.objects.filter(request=request).exists():
                raise StudyError("Please say which list you found better.")
        request.completed_at = timezone.now()
        check = request.slots.filter(is_attention_check=True).select_related("judgement").first()
        if check is not None:
            label = check.judgement.label
            request.attention_check_failed = (
                label is not None and label >= participant.study.scale.relevant_threshold
            )
            if request.attention_check_failed:
                participant.attention_failures += 1
        request.save(update_fields=["completed_at", "attention_check_failed"])
        _advance_after_request(participant, request)
        participant.save(update_fields=["phase", "attention_failures", "finished_at"])


def _advance_after_request(participant: Participant, request: Request) -> None:
    study = participant.study
    if participant.attention_failures > study.attention_failures_allowed:
        participant.phase = Phase.SCREENED_OUT
        participant.finished_at = timezone.now()
    elif request.is_practice:
        participant.phase = Phase.TASKS
    elif request.number >= study.requests_per_participant:
        if study.questionnaire_items.exists():
            participant.phase = Phase.QUESTIONNAIRE
        else:
            participant.phase = Phase.DONE
            participant.finished_at = timezone.now()


# --- Questionnaire -----------------------------------------------------------------------


def do_save_questionnaire(participant: Participant, answers: Mapping[str, str]) -> None:
    """Store every questionnaire answer (all required) and finish the study."""
    if participant.phase != Phase.QUESTIONNAIRE:
        return
    items = list(participant.study.questionnaire_items.all())
    values: dict[int, int] = {}
    for item in items:
        raw = answers.get(f"q{item.pk}")
        try:
            value = int(raw or "")
        except ValueError:
            value = 0
        if not 1 <= value <= item.scale_points:
            raise StudyError("Please answer every question.")
        values[item.pk] = value
    with transaction.atomic():
        for item_pk, value in values.items():
            QuestionnaireAnswer.objects.update_or_create(
                participant=participant, item_id=item_pk, defaults={"value": value}
            )
        participant.phase = Phase.DONE
        participant.finished_at = timezone.now()
        participant.save(update_fields=["phase", "finished_at"])
