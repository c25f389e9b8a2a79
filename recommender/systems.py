"""The system kinds a study can select, importable without torch.

Web processes need these names (model choices) but never rank anything, so they live apart
from :mod:`recommender.ranking`, which imports torch.
"""

from __future__ import annotations

#: System keys a study can select. ``whisperlite`` needs a checkpoint.
ZERO_SHOT = "zero_shot"
HISTORY_BLEND = "history_blend"
WHISPERLITE = "whisperlite"
SYSTEM_KINDS = (ZERO_SHOT, HISTORY_BLEND, WHISPERLITE)
