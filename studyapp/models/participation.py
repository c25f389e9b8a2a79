"""What participants do: join, pick history items, make requests, judge the shown items."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from studyapp.design import Origin
from studyapp.models import lifecycle
from studyapp.models.catalog import Item
from studyapp.models.lifecycle import RequestQuerySet
from studyapp.models.study import RankingSystem, Study, new_token


class ParticipantQuerySet(models.QuerySet):
    """Who counts: pilot runs and simulated participants are kept apart from real data."""

    def counted(self) -> ParticipantQuerySet:
        """Real participants: the ones the analysis, the progress counts and the design lock use."""
        return self.filter(origin=Participant.Origin.REAL)

    def test_runs(self) -> ParticipantQuerySet:
        """Pilot and simulated participants: never analysed with real data, deletable in one go."""
        return self.exclude(origin=Participant.Origin.REAL)


class Participant(models.Model):
    """One person taking one study. Their personal URL token is their only credential."""

    class Origin(models.TextChoices):
        # Values from studyapp.design.Origin, which the typed records and the analysis use.
        REAL = Origin.REAL.value, "Participant"
        PILOT = Origin.PILOT.value, "Pilot (researcher preview)"
        SIMULATED = Origin.SIMULATED.value, "Simulated (bot)"

    class Phase(models.TextChoices):
        CONSENT = "consent", "Consent"
        ONBOARDING = "onboarding", "Picking liked items"
        INSTRUCTIONS = "instructions", "Instructions"
        PRACTICE = "practice", "Practice request"
        TASKS = "tasks", "Requests"
        QUESTIONNAIRE = "questionnaire", "Questionnaire"
        DONE = "done", "Finished"
        SCREENED_OUT = "screened_out", "Screened out"
        DECLINED = "declined", "Declined consent"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    number = models.PositiveIntegerField(help_text="Order of arrival in the study.")
    condition = models.PositiveIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="Latin-square position (1, 2, ...) assigned when the participant starts the tasks; "
        "drives counterbalancing. Empty for visits that never reached the tasks.",
    )
    external_id = models.CharField(
        max_length=100, blank=True, help_text="Crowd platform id, e.g. PROLIFIC_PID."
    )
    external_study_id = models.CharField(max_length=100, blank=True)
    external_session_id = models.CharField(max_length=100, blank=True)
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.CONSENT)
    consented_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attention_failures = models.PositiveSmallIntegerField(default=0)
    user_agent = models.CharField(max_length=300, blank=True)
    origin = models.CharField(
        max_length=10,
        choices=Origin.choices,
        default=Origin.REAL,
        help_text="Pilot and simulated runs never lock the design and are left out of the analysis.",
    )

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        constraints = [
            # Retakes are blocked per crowd-platform id: one participant row per external id.
            models.UniqueConstraint(
                fields=["study", "external_id"],
                condition=~Q(external_id=""),
                name="participant_unique_external_id",
            ),
            models.UniqueConstraint(fields=["study", "number"], name="participant_unique_number"),
            # One Latin-square sequence per origin: test runs never take real participants' conditions.
            models.UniqueConstraint(
                fields=["study", "origin", "condition"], name="participant_unique_condition_per_origin"
            ),
        ]
        indexes = [models.Index(fields=["study", "phase"], name="participant_progress_idx")]

    def __str__(self) -> str:
        return f"P{self.number} in {self.study}"

    @property
    def is_pilot(self) -> bool:
        return self.origin == self.Origin.PILOT

    @property
    def is_simulated(self) -> bool:
        return self.origin == self.Origin.SIMULATED

    @property
    def finished(self) -> bool:
        return self.phase in (self.Phase.DONE, self.Phase.SCREENED_OUT, self.Phase.DECLINED)


class HistoryPick(models.Model):
    """An item the participant said they like during onboarding: their history for personalization."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="picks")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "item"], name="pick_unique_item")]

    def __str__(self) -> str:
        return f"{self.participant} likes item {self.item_id}"


class Request(models.Model):
    """One free-text request and its processing state; the Celery task fills in the lists.

    The state changes only through :class:`~studyapp.models.lifecycle.RequestQuerySet`
    (``Request.objects.claim/renew/complete/release/fail/requeue``), which documents the state machine.
    """

    class Status(models.TextChoices):
        PENDING = lifecycle.PENDING, "Waiting for a worker"
        RUNNING = lifecycle.RUNNING, "Ranking"
        DONE = lifecycle.DONE, "Ready"
        FAILED = lifecycle.FAILED, "Failed"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="requests")
    number = models.PositiveSmallIntegerField(help_text="0 for the practice request, then 1, 2, ...")
    is_practice = models.BooleanField(default=False)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    seed = models.PositiveIntegerField(
        help_text="Drawn per request; fixes blinding, interleaving and shuffles."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time a ranking task was queued."
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="Start of the current claim.")
    claimed_by = models.CharField(
        max_length=155, blank=True, help_text="Task id holding the current claim ('' in-process)."
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The claim lapses then unless its worker renews it."
    )
    ready_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, help_text="When the participant moved on.")
    attention_check_failed = models.BooleanField(null=True, blank=True)

    objects = RequestQuerySet.as_manager()

    class Meta:
        constraints = [
            # A double-submitted request form cannot create a second request for the same slot.
            models.UniqueConstraint(fields=["participant", "number"], name="request_unique_number"),
        ]
        indexes = [models.Index(fields=["status", "started_at"], name="request_status_idx")]

    def __str__(self) -> str:
        return f"Request {self.number} of {self.participant}"

    @property
    def taking_long(self) -> bool:
        """Still being prepared past the notice threshold: the participant is told so."""
        if self.status not in (self.Status.PENDING, self.Status.RUNNING):
            return False
        waited = (timezone.now() - self.created_at).total_seconds()
        return waited > settings.WHISPERLITE_SLOW_NOTICE_SECONDS


class RankedList(models.Model):
    """A system's top-k for a request, exactly as the system returned it (unblinded)."""

    # No index of its own: the (request, system) constraint's index starts with it (one index
    # less to update per stored list).
    request = models.ForeignKey(
        Request, on_delete=models.CASCADE, related_name="ranked_lists", db_index=False
    )
    system = models.ForeignKey(RankingSystem, on_delete=models.PROTECT, related_name="+")
    item_ids = models.JSONField(help_text="Catalog external ids, best first.")
    scores = models.JSONField()
    version = models.CharField(max_length=300, help_text="Encoder and checkpoint identity.")
    latency_ms = models.FloatField(
        help_text="This system's own scoring time (before 0006: including the request's encoding)."
    )
    # Stored apart so per-system latency stays honest: every system of a request shares one
    # encode, and a system alone would take encode_ms + latency_ms.
    encode_ms = models.FloatField(default=0.0, help_text="The request's encoding, shared by its systems.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "system"], name="rankedlist_unique_system")]

    def __str__(self) -> str:
        return f"{self.system} for {self.request}"

    def rank_of(self, external_id: str) -> int | None:
        """1-based rank of an item in this list, or None when the system did not return it."""
        try:
            return self.item_ids.index(external_id) + 1
        except ValueError:
            return None


class Slot(models.Model):
    """One displayed item: where it was shown, and which system(s) it is credited to."""

    # No index of its own: the (request, list, position) constraint's index starts with it
    # (one index less to update for each of the ~20 slots a ranking stores).
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="slots", db_index=False)
    list_label = models.CharField(
        max_length=2, blank=True, help_text="'A', 'B', ... side by side; '' single list."
    )
    position = models.PositiveSmallIntegerField(help_text="1-based displayed position within its list.")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(
        RankingSystem, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The system this slot is credited to (side by side, interleaving); empty when pooled.",
    )  # fmt: skip
    system_ranks = models.JSONField(
        default=dict, help_text="{system id: 1-based rank} for every system returning it."
    )
    is_attention_check = models.BooleanField(default=False)

    class Meta:
        ordering = ["request_id", "list_label", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "list_label", "position"], name="slot_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.list_label or '-'}{self.position} of {self.request}"


class Judgement(models.Model):
    """A participant's relevance label for one displayed slot. One row per slot; latest value wins."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="judgements")
    slot = models.OneToOneField(Slot, on_delete=models.CASCADE, related_name="judgement")
    label = models.SmallIntegerField(null=True, blank=True, help_text="Empty means 'can't judge'.")
    response_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time since the previous answer."
    )
    too_fast = models.BooleanField(default=False)
    changes = models.PositiveSmallIntegerField(default=0, help_text="How often the label was changed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Labels of every supported scale lie in 0..5; the study's scale is checked in the service.
            models.CheckConstraint(
                condition=Q(label__isnull=True) | Q(label__gte=0, label__lte=5), name="judgement_label_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{'n/a' if self.label is None else self.label} for slot {self.slot_id}"


class ListPreference(models.Model):
    """Side by side only: which list the participant found better overall ('' = no preference)."""

    request = models.OneToOneField(Request, on_delete=models.CASCADE, related_name="preference")
    list_label = models.CharField(max_length=2, blank=True)
    system = models.ForeignKey(
        RankingSystem, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"List {self.list_label or '(none)'} for {self.request}"


class QuestionnaireAnswer(models.Model):
    """A participant's answer to one questionnaire item."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey("studyapp.QuestionnaireItem", on_delete=models.CASCADE, related_name="answers")
    value = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "item"], name="answer_unique_item")]

    def __str__(self) -> str:
        return f"{self.value} on question {self.item_id}"
