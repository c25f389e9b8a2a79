"""System kinds a study can select, and the stated defaults they share. Torch-free on purpose.

Web processes (admin, forms, views) import these constants without loading torch; the
rankers themselves live in :mod:`recommender.ranking`.
"""

from __future__ import annotations

#: System keys a study can select. ``whisperlite`` needs a checkpoint.
ZERO_SHOT = "zero_shot"
HISTORY_BLEND = "history_blend"
WHISPERLITE = "whisperlite"
SYSTEM_KINDS = (ZERO_SHOT, HISTORY_BLEND, WHISPERLITE)

#: History-blend weight of a new study system and of the benchmark's ``history_blend`` row:
#: ``score = (1 - w) cos(request, item) + w cos(history centroid, item)``. A study system may
#: set its own weight (shown in the admin); the benchmark also reports a validation-tuned one.
DEFAULT_HISTORY_WEIGHT = 0.3
