"""Study design: the systems compared, how lists are shown, how items are judged."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from recommender.systems import DEFAULT_HISTORY_WEIGHT, HISTORY_BLEND, WHISPERLITE, ZERO_SHOT
from studyapp.models.catalog import Catalog


def new_token() -> str:
    """An unguessable URL token (about 190 bits)."""
    return secrets.token_urlsafe(24)


def new_code() -> str:
    """A short completion/screen-out code participants paste into a crowd platform."""
    return secrets.token_hex(4).upper()


class RankingSystem(models.Model):
    """A recommender a study can compare: an untrained baseline or a trained WhisperLite checkpoint."""

    class Kind(models.TextChoices):
        ZERO_SHOT = ZERO_SHOT, "Zero-shot text search (no personalization)"
        HISTORY_BLEND = HISTORY_BLEND, "History blend (request + picked items)"
        WHISPERLITE = WHISPERLITE, "WhisperLite (trained checkpoint)"

    name = models.CharField(
        max_length=100, unique=True, help_text="Researcher-facing; never shown to participants."
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    checkpoint_path = models.CharField(
        max_length=500, blank=True, help_text="WhisperLite only: a .pt checkpoint file."
    )
    history_weight = models.FloatField(
        default=DEFAULT_HISTORY_WEIGHT,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="History blend only: weight of the similarity to the participant's picks.",
    )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.WHISPERLITE:
            if not self.checkpoint_path:
                raise ValidationError({"checkpoint_path": "A WhisperLite system needs a checkpoint file."})
            if not os.path.isfile(self.checkpoint_path):
                raise ValidationError({"checkpoint_path": f"No file at {self.checkpoint_path}."})


@dataclass(frozen=True)
class ScaleSpec:
    """The rating scale shown to participants."""

    values: tuple[int, ...]
    labels: tuple[str, ...]
    relevant_threshold: int  # labels >= this count as relevant in binary metrics

    @property
    def choices(self) -> list[tuple[int, str]]:
        """(value, label) pairs in display order, for the rating buttons."""
        return list(zip(self.values, self.labels, strict=True))


SCALES: dict[str, ScaleSpec] = {
    "binary": ScaleSpec((0, 1), ("Not relevant", "Relevant"), 1),
    "graded4": ScaleSpec((0, 1, 2, 3), ("Not relevant", "Somewhat", "Relevant", "Perfect match"), 2),
    "likert5": ScaleSpec((1, 2, 3, 4, 5), ("Not at all", "Slightly", "Moderately", "Very", "Perfectly"), 4),
}


class Study(models.Model):
    """A user study: its texts, the systems compared, and its presentation design.

    The design fields are locked once a participant has joined (see :meth:`is_locked`),
    so every participant of a study saw the same design.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Mode(models.TextChoices):
        SIDE_BY_SIDE = "side_by_side", "Side by side (blinded, counterbalanced)"
        INTERLEAVED = "interleaved", "Team-draft interleaving (one list)"
        POOLED = "pooled", "Pooled (union, shuffled, each item judged once)"

    class Scale(models.TextChoices):
        BINARY = "binary", "Binary (relevant / not)"
        GRADED4 = "graded4", "Graded 0–3"
        LIKERT5 = "likert5", "1–5"

    # Identity and texts
    title = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    consent_text = models.TextField(
        default="I agree to take part in this study. My answers are stored anonymously."
    )
    instructions_text = models.TextField(
        default="Type what you are looking for. You will see recommendations; rate how well each item matches."
    )
    debrief_text = models.TextField(default="Thank you! This study compares recommender systems.")
    created_at = models.DateTimeField(auto_now_add=True)

    # Design (locked once a participant joins)
    catalog = models.ForeignKey(Catalog, on_delete=models.PROTECT, related_name="studies")
    systems = models.ManyToManyField(RankingSystem, related_name="studies")
    presentation_mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.SIDE_BY_SIDE)
    k = models.PositiveSmallIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(50)])
    requests_per_participant = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    onboarding_picks = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(3)])
    onboarding_grid_size = models.PositiveSmallIntegerField(default=24, validators=[MinValueValidator(6)])
    practice_request = models.BooleanField(
        default=False, help_text="One practice request first; never analysed."
    )
    rating_scale = models.CharField(max_length=10, choices=Scale.choices, default=Scale.GRADED4)
    allow_cant_judge = models.BooleanField(default=True)
    ask_list_preference = models.BooleanField(
        default=False, help_text="Side by side only: 'which list is better?'"
    )
    attention_checks = models.BooleanField(
        default=False, help_text="Inject one clearly off-request item per request."
    )
    attention_failures_allowed = models.PositiveSmallIntegerField(
        default=1, help_text="Screened out on the next failure."
    )
    min_seconds_per_judgement = models.FloatField(
        default=1.0, help_text="Faster answers are flagged in exports."
    )
    seed = models.PositiveIntegerField(default=0, help_text="Seeds blinding, interleaving and shuffles.")

    # Crowd platforms
    external_id_param = models.CharField(max_length=50, default="PROLIFIC_PID", blank=True)
    external_study_param = models.CharField(max_length=50, default="STUDY_ID", blank=True)
    external_session_param = models.CharField(max_length=50, default="SESSION_ID", blank=True)
    completion_code = models.CharField(max_length=40, default=new_code)
    screenout_code = models.CharField(max_length=40, default=new_code)
    completion_url = models.URLField(
        blank=True, help_text="Optional redirect after finishing, e.g. Prolific's."
    )

    DESIGN_FIELDS = (
        "catalog", "presentation_mode", "k", "requests_per_participant", "onboarding_picks", "onboarding_grid_size",
        "practice_request",
        "rating_scale", "allow_cant_judge", "ask_list_preference", "attention_checks",
        "attention_failures_allowed", "seed",
    )  # fmt: skip

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title

    def is_locked(self) -> bool:
        """True once anyone joined: changing the design then would mix two designs in one dataset."""
        return self.pk is not None and self.participants.exists()

    @property
    def scale(self) -> ScaleSpec:
        return SCALES[self.rating_scale]

    @property
    def asks_list_preference(self) -> bool:
        """Whether participants answer "which list is better?" (only meaningful side by side)."""
        return self.ask_list_preference and self.presentation_mode == self.Mode.SIDE_BY_SIDE

    def clean(self) -> None:
        if self.pk and self.is_locked():
            saved = Study.objects.get(pk=self.pk)
            changed = [f for f in self.DESIGN_FIELDS if getattr(saved, f) != getattr(self, f)]
            if changed:
                raise ValidationError(
                    f"This study has participants, so its design is locked (changed: {', '.join(changed)}). "
                    "Use 'Copy study' in the admin to run a variant."
                )


class QuestionnaireItem(models.Model):
    """A Likert item shown after the tasks (e.g. from ResQue)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="questionnaire_items")
    order = models.PositiveSmallIntegerField(default=0)
    text = models.CharField(max_length=500)
    scale_points = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(2), MaxValueValidator(11)]
    )
    low_label = models.CharField(max_length=60, default="Strongly disagree")
    high_label = models.CharField(max_length=60, default="Strongly agree")

    class Meta:
        ordering = ["study_id", "order", "id"]

    def __str__(self) -> str:
        return self.text
