"""Okapi BM25 scores of a whole catalog as one sparse matrix-vector product.

``rank_bm25.BM25Okapi`` fits the statistics (idf with its epsilon floor, document lengths,
term frequencies) and stays the reference; its ``get_scores`` loops in Python over every
document for every query term, which made BM25 the largest single cost of evaluating a
real dataset (64 s of a 170 s ReDial run). The weight of a term in a document does not
depend on the query, so it is computed once into a (documents × vocabulary) sparse matrix and
a query is a vector of term counts: ``scores = W @ counts``, the same sum ``get_scores`` forms
(a term repeated in the query counts again; unknown terms add nothing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi
from scipy import sparse


class SparseBM25:
    """BM25Okapi's scores for every document, computed with a precomputed sparse weight matrix."""

    def __init__(self, corpus: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75) -> None:
        fitted = BM25Okapi(list(corpus), k1=k1, b=b)
        self.vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for doc, (freqs, length) in enumerate(zip(fitted.doc_freqs, fitted.doc_len, strict=True)):
            norm = fitted.k1 * (1 - fitted.b + fitted.b * length / fitted.avgdl)
            for term, tf in freqs.items():
                column = self.vocabulary.setdefault(term, len(self.vocabulary))
                rows.append(doc)
                cols.append(column)
                values.append((fitted.idf.get(term) or 0.0) * tf * (fitted.k1 + 1) / (tf + norm))
        self.weights = sparse.csr_matrix(
            (np.asarray(values, dtype=np.float64), (rows, cols)),
            shape=(len(fitted.doc_len), max(len(self.vocabulary), 1)),
        )

    def get_scores(self, query: Sequence[str]) -> np.ndarray:
        """(documents,) float64 scores of ``query`` (a list of tokens), as BM25Okapi gives them."""
        counts = np.zeros(self.weights.shape[1], dtype=np.float64)
        for term, count in Counter(query).items():
            column = self.vocabulary.get(term)
            if column is not None:
                counts[column] = count
        return np.asarray(self.weights @ counts, dtype=np.float64)
