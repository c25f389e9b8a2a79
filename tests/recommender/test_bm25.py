"""The sparse BM25 gives rank_bm25's own scores, only faster."""

from __future__ import annotations

import numpy as np
from rank_bm25 import BM25Okapi

from recommender.training.bm25 import SparseBM25

CORPUS = [
    "red cotton t-shirt for men".split(),
    "black leather watch for men".split(),
    "red red dress for a summer wedding".split(),
    "blue denim jeans for work".split(),
    "white sneakers".split(),
    "black dress".split(),
    ["_"],
]


def test_scores_equal_rank_bm25_for_every_kind_of_query() -> None:
    reference = BM25Okapi(CORPUS)
    fast = SparseBM25(CORPUS)
    queries = [
        "red dress".split(),
        "red red dress".split(),  # a repeated term counts again
        "men".split(),  # a term in 2 of 7 documents
        "for".split(),  # in 4 of 7: a negative idf, floored by epsilon
        "tuxedo".split(),  # unknown: all zero
        [],
        "a black leather watch for a red summer wedding".split(),
    ]
    for query in queries:
        np.testing.assert_allclose(
            fast.get_scores(query), reference.get_scores(query), rtol=1e-12, atol=1e-12
        )


def test_ranking_follows_the_matching_terms() -> None:
    scores = SparseBM25(CORPUS).get_scores("black dress".split())
    assert int(np.argmax(scores)) == 5  # "black dress" itself
    assert scores[3] == 0.0 and scores[4] == 0.0
