"""Study design: the systems compared, how lists are shown, how items are judged."""

from __future__ import annotations

import os
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from recommender.systems import DEFAULT_HISTORY_WEIGHT, HISTORY_BLEND, WHISPERLITE, ZERO_SHOT
from studyapp.design import SCALES, Mode, Scale
from studyapp.models import default_texts
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

    # Request-fidelity probe (recommender.training.probe), WhisperLite only: run when a study
    # using this system is opened, stored here so it runs once per checkpoint and catalog.
    probe_passed = models.BooleanField(
        null=True,
        editable=False,
        help_text="Request-fidelity probe result: passed, failed, or not run (empty).",
    )
    probe_report = models.TextField(blank=True, editable=False)
    probe_key = models.CharField(max_length=200, blank=True, editable=False)
    probe_checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.WHISPERLITE:
            if not self.checkpoint_path:
                raise ValidationError({"checkpoint_path": "A WhisperLite system needs a checkpoint file."})
            if not os.path.isfile(self.checkpoint_path):
                raise ValidationError({"checkpoint_path": f"No file at {self.checkpoint_path}."})


class Study(models.Model):
    """A user study: its texts, the systems compared, and its presentation design.

    The design fields are locked once a participant has joined (see :meth:`is_locked`),
    so every participant of a study saw the same design.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    # One definition of modes and scales (studyapp.design), shared with the analysis.
    Mode = Mode
    SCALES = SCALES

    # Identity and texts
    title = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    consent_text = models.TextField(
        default=default_texts.CONSENT,
        help_text="Replace every [Placeholder]; the launch checklist refuses to open a study with one left.",
    )
    instructions_text = models.TextField(default=default_texts.INSTRUCTIONS)
    debrief_text = models.TextField(
        default=default_texts.DEBRIEF,
        help_text="Shown under a 'Thank you!' heading with the completion code.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Design (locked once a participant joins)
    catalog = models.ForeignKey(Catalog, on_delete=models.PROTECT, related_name="studies")
    systems = models.ManyToManyField(RankingSystem, related_name="studies")
    presentation_mode = models.CharField(
        max_length=20, choices=[(m.value, m.label) for m in Mode], default=Mode.SIDE_BY_SIDE.value
    )
    k = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(50)])
    requests_per_participant = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    onboarding_picks = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(3)])
    onboarding_grid_size = models.PositiveSmallIntegerField(default=24, validators=[MinValueValidator(6)])
    practice_request = models.BooleanField(
        default=False, help_text="One practice request first; never analysed."
    )
    rating_scale = models.CharField(
        max_length=10, choices=[(s.name, s.title) for s in SCALES.values()], default="graded4"
    )
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
    probe_override = models.BooleanField(
        default=False,
        verbose_name="open despite a failed fidelity probe",
        help_text=(
            "A WhisperLite system that fails the request-fidelity probe returns what the history "
            "suggests instead of what participants ask for, so the study would measure that flaw. "
            "Tick only if that is what you mean to study."
        ),
    )

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
        """True once a real participant joined: changing the design then would mix two designs in one
        dataset. Pilot and simulated runs do not lock it; they can be deleted before launch."""
        return self.pk is not None and self.participants.counted().exists()

    @property
    def scale(self) -> Scale:
        return SCALES[self.rating_scale]

    @property
    def mode(self) -> Mode:
        return Mode(self.presentation_mode)

    @property
    def asks_list_preference(self) -> bool:
        """Whether participants answer "which list is better?" (only meaningful side by side)."""
        return self.ask_list_preference and self.presentation_mode == self.Mode.SIDE_BY_SIDE

    def clean(self) -> None:
        if self.ask_list_preference and self.presentation_mode != Mode.SIDE_BY_SIDE:
            # One merged list offers nothing to compare, so participants would never be asked.
            raise ValidationError(
                {
                    "ask_list_preference": "'Which list is better?' needs side-by-side lists; "
                    "interleaved and pooled studies show one list. Untick it or choose side by side."
                }
            )
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
