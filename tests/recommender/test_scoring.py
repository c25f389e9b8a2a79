"""One scoring path: the tie rule, and the benchmark ranking exactly what the app serves."""

from __future__ import annotations

import ast
import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from recommender.catalog import CatalogItem
from recommender.model import WhisperLiteConfig
from recommender.ranking import HistoryBlendRanker, ZeroShotRanker, build_ranker
from recommender.scoring import SharedSimilarity, tie_keys, top_k
from recommender.training.cases import build_cases, rank_cases
from recommender.training.simulation import simulate_shoppers
from recommender.training.train import Prepared, prepare, train_whisperlite
from recommender.whisperlite import WhisperLiteRanker


def test_tie_keys_are_a_pure_function_of_request_and_history() -> None:
    v = np.array([0.6, 0.8], dtype=np.float32)
    a = tie_keys(v, np.array([3, 1]), 50)
    assert np.array_equal(a, tie_keys(v.copy(), np.array([3, 1]), 50))  # reproducible
    assert not np.array_equal(a, tie_keys(v, np.array([1, 3]), 50))  # another history
    assert not np.array_equal(a, tie_keys(np.array([0.8, 0.6], dtype=np.float32), np.array([3, 1]), 50))


def test_top_k_orders_ties_by_key_including_ties_at_the_cut() -> None:
    scores = np.array([1.0, 0.5, 0.5, 0.5, 0.1])
    keys = np.array([0.9, 0.7, 0.8, 0.2, 0.0])
    assert top_k(scores, 2, keys=keys).tolist() == [0, 3]  # row 3 wins the three-way tie at the cut
    assert top_k(scores, 5, keys=keys).tolist() == [0, 3, 1, 2, 4]
    assert top_k(scores, 5, blocked_rows=np.array([3]), keys=keys).tolist() == [0, 1, 2, 4]
    assert top_k(np.array([np.nan, 1.0]), 5).tolist() == [1]  # non-finite scores never returned


def test_top_k_without_keys_orders_ties_by_row() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, -0.2])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 0).tolist() == []


def test_tied_items_win_equally_often_over_many_requests() -> None:
    rng = np.random.default_rng(0)
    winners = Counter(
        int(top_k(np.zeros(5), 1, keys=tie_keys(rng.normal(size=8).astype(np.float32), np.zeros(0), 5))[0])
        for _ in range(2000)
    )
    assert set(winners) == set(range(5))
    assert all(300 < n < 500 for n in winners.values()), winners  # ~400 each, no positional bias


@pytest.fixture(scope="module")
def sim(encoder, tiny_catalog: list[CatalogItem], tmp_path_factory: pytest.TempPathFactory) -> Prepared:  # type: ignore[no-untyped-def]
    dataset = simulate_shoppers(tiny_catalog, n_shoppers=40, n_events=5, seed=3).dataset
    return prepare(dataset, encoder, tmp_path_factory.mktemp("cache"), progress=False)


def _app_lists(ranker, prep: Prepared, k: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [
        ranker.rank(e.request_text, e.history_item_ids, k, exclude=e.history_item_ids).item_ids
        for e in build_cases(prep, prep.split.test).examples
    ]


def _benchmark_lists(ranker, prep: Prepared, k: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    cases = build_cases(prep, prep.split.test)
    assert len(cases.examples) > 20
    return [[prep.index.item_ids[r] for r in rows] for rows in rank_cases(ranker, cases, k=k)]


def test_benchmark_ranks_exactly_like_the_app_for_the_untrained_systems(sim: Prepared, encoder) -> None:  # type: ignore[no-untyped-def]
    for ranker in (ZeroShotRanker(sim.index, encoder), HistoryBlendRanker(sim.index, encoder, 0.4)):
        assert _benchmark_lists(ranker, sim, 20) == _app_lists(ranker, sim, 20)


def test_a_shared_similarity_row_ranks_bit_for_bit_like_scoring_alone(sim: Prepared, encoder) -> None:  # type: ignore[no-untyped-def]
    zero, blend = ZeroShotRanker(sim.index, encoder), HistoryBlendRanker(sim.index, encoder, 0.4)
    for e in build_cases(sim, sim.split.test).examples[:20]:
        vector = encoder.encode_text([e.request_text], normalize=True)[0]
        shared = zero.shared_similarity(vector)
        for ranker in (zero, blend):
            alone = ranker.rank_vector(vector, e.history_item_ids, 20, exclude=e.history_item_ids)
            reused = ranker.rank_vector(
                vector, e.history_item_ids, 20, exclude=e.history_item_ids, shared=shared
            )
            assert (reused.item_ids, reused.scores) == (alone.item_ids, alone.scores)  # bit for bit
            assert reused.latency_ms >= shared.ms  # the shared mat-vec counts in each system's latency
            again = ranker.rank_vector(
                vector, e.history_item_ids, 20, exclude=e.history_item_ids, shared=shared
            )
            assert (again.item_ids, again.scores) == (alone.item_ids, alone.scores)  # kept c.I row


def test_a_similarity_row_of_another_index_is_not_used(sim: Prepared, encoder) -> None:  # type: ignore[no-untyped-def]
    ranker = ZeroShotRanker(sim.index, encoder)
    vector = encoder.encode_text(["a red dress"], normalize=True)[0]
    wrong = SharedSimilarity(
        dataclasses.replace(sim.index), np.zeros(len(sim.index.item_ids), np.float32), 0.0
    )
    expected = ranker.rank_vector(vector, [], 5)
    assert ranker.rank_vector(vector, [], 5, shared=wrong).item_ids == expected.item_ids


@pytest.mark.slow  # trains a network
def test_benchmark_ranks_exactly_like_the_app_for_whisperlite(sim: Prepared, encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = WhisperLiteConfig(epochs=2, max_history=3, batch_size=32, hidden_dim=32, attention_dim=16)
    result = train_whisperlite(sim, config, checkpoint_path=tmp_path / "wl.pt", progress=False)
    in_memory = WhisperLiteRanker(result.model, sim.index)  # what the benchmark scores
    served = build_ranker("whisperlite", sim.index, encoder, checkpoint_path=str(tmp_path / "wl.pt"))
    assert _benchmark_lists(in_memory, sim, 20) == _app_lists(served, sim, 20)
    with pytest.raises(ValueError, match="without an encoder"):
        in_memory.rank("a shirt", [], 5)


def _module_imports(path: Path, package_root: Path) -> set[str]:
    """Modules imported at run time, lazily inside functions too (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("recommender"):
                found.add(sub.module)
            elif isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("recommender")}
    return found


def test_recommender_has_no_import_cycles() -> None:
    root = Path(__file__).resolve().parents[2] / "recommender"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = _module_imports(path, root)
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}

    def visit(module: str, stack: list[str], done: set[str]) -> None:
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(module) :], module]))
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*stack, module], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        visit(module, [], done)
