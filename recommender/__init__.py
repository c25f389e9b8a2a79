"""WhisperLite recommender: encoders, item indexes and rankers.

This package never imports Django. The study app talks to it through
:func:`recommender.ranking.build_ranker` and :class:`recommender.ranking.Ranker`;
training and offline evaluation live in :mod:`recommender.training`.
"""
