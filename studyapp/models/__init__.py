"""Database models, split by concern: catalogs, study design, and participation."""

from studyapp.models.catalog import Catalog, Item
from studyapp.models.participation import (
    HistoryPick,
    Judgement,
    ListPreference,
    Participant,
    QuestionnaireAnswer,
    RankedList,
    Request,
    Slot,
)
from studyapp.models.study import QuestionnaireItem, RankingSystem, Study

__all__ = [
    "Catalog",
    "HistoryPick",
    "Item",
    "Judgement",
    "ListPreference",
    "Participant",
    "QuestionnaireAnswer",
    "QuestionnaireItem",
    "RankedList",
    "RankingSystem",
    "Request",
    "Slot",
    "Study",
]
