"""Typed records of what participants answered: the one shape both the CSV exports and the
analysis read (pure Python; :mod:`studyapp.records` builds them from the database in one query).

A :class:`JudgementRecord` is one judgement of one displayed slot. The systems it is credited
to are listed in ``credits``: one system side by side and interleaved (the list's or the
team's system), every system that ranked the item in its top k when pooled, none for an
attention check. The CSV writes one row per credit; the analysis reads the credits directly,
so changing an export column cannot change a statistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Credit:
    """A system credited with a displayed item, and the item's 1-based rank in its list."""

    system: str  # unblinded name
    rank: int | None
    system_kind: str = ""
    model_version: str = ""


@dataclass(frozen=True)
class JudgementRecord:
    """One participant's label for one displayed slot, with where and why it was shown."""

    participant_id: int | str
    request_id: int | str
    judgement_id: int | str
    item_id: str
    displayed_position: int
    label: int | None  # None = can't judge
    credits: tuple[Credit, ...] = ()
    team: str | None = None  # the system whose list/team showed the item (None when pooled)
    list_label: str = ""
    is_attention_check: bool = False
    is_practice: bool = False
    request_text: str = ""
    request_number: int = 0
    request_seed: int = 0
    request_completed_at: datetime | None = None
    attention_check_failed: bool | None = None
    participant_number: int = 0
    participant_phase: str = ""
    external_id: str = ""
    external_study_id: str = ""
    external_session_id: str = ""
    item_title: str = ""
    response_ms: int | None = None
    too_fast: bool = False
    label_changes: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def unit(self) -> tuple[str, str]:
        """The unit of analysis: one request of one participant."""
        return (str(self.participant_id), str(self.request_id))

    @property
    def agreement_unit(self) -> str:
        """Agreement unit: relevance depends on the request, so (normalised request text, item)."""
        return f"{self.request_text.casefold()}|{self.item_id}"


@dataclass(frozen=True)
class PreferenceRecord:
    """A "which list is better?" answer for one side-by-side request, unblinded.

    ``lists`` maps each displayed label to the system behind it, so the analysis knows which
    systems were on offer; ``system`` is the chosen one (None = "no difference").
    """

    participant_id: int | str
    request_id: int | str
    list_label: str  # "" = no difference
    system: str | None
    lists: tuple[tuple[str, str], ...]
    is_practice: bool = False
    request_number: int = 0
    request_text: str = ""
    request_completed_at: datetime | None = None
    participant_number: int = 0
    participant_phase: str = ""
    external_id: str = ""
    system_kind: str = ""
    updated_at: datetime | None = None

    @property
    def systems_shown(self) -> tuple[str, ...]:
        return tuple(system for _, system in self.lists)


@dataclass(frozen=True)
class ParticipantRecord:
    """A participant's counterbalancing condition and how far they got (for the balance table)."""

    participant_id: int | str
    condition: int | None  # Latin-square position, assigned when the tasks start
    finished: bool = False
    screened_out: bool = False
    requests_completed: int = 0
