"""Per-process cache of the heavy ranking objects: encoder, item indexes, rankers.

A Celery worker process loads the encoder once, embeds a catalog once per catalog version
(reading the on-disk cache when another process already did it), and keeps one ranker per
study system. Nothing here is shared between processes except the disk cache; for catalogs of
``WHISPERLITE_ANN_MIN_ITEMS`` items or more that cache is memory-mapped (vectors, ids and the
approximate search indexes), so every worker process reads the same pages instead of holding
its own copy, and rankers search through the index (:mod:`recommender.item_search`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
from functools import lru_cache

import numpy as np
from django.conf import settings

from recommender.embeddings import (
    ItemIndex,
    build_item_index,
    cache_path,
    catalog_fingerprint,
    open_shared_index,
)
from recommender.encoders import Encoder, build_encoder
from recommender.files import file_digest
from recommender.item_search import CONTENT, SearchSettings, index_ready
from recommender.ranking import RankedList, Ranker, SharedSimilarity, ZeroShotRanker, build_ranker
from recommender.systems import HISTORY_BLEND, WHISPERLITE, ZERO_SHOT
from studyapp.models import Catalog, Item, RankingSystem

log = logging.getLogger(__name__)
_lock = threading.Lock()


def configure_threads() -> int:
    """Set torch's intra-op thread count for this process to ``WHISPERLITE_TORCH_THREADS``.

    Torch defaults to one thread per core in every process. A worker pool with one process
    per core (plus gunicorn and PostgreSQL) then runs cores x cores threads that fight for
    the same cores: on the shared 2-core host, submit-to-lists p50 was 7.0 s with torch's
    default and 1.5 s with one thread per worker process (issue 10). Scale out with worker
    processes (``CELERY_WORKER_CONCURRENCY``), not threads. numpy's BLAS (the rankers'
    mat-vec) gets the same count: two thread pools that each want every core contend too.
    Returns the count now in force.
    """
    import torch
    from threadpoolctl import threadpool_limits

    wanted = int(settings.WHISPERLITE_TORCH_THREADS)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    threadpool_limits(limits=wanted, user_api="blas")
    return torch.get_num_threads()


@lru_cache(maxsize=2)
def get_encoder(spec: str | None = None) -> Encoder:
    """The configured encoder, loaded once per process (threads set first, see :func:`configure_threads`)."""
    configure_threads()
    return build_encoder(spec or settings.WHISPERLITE_ENCODER, device=settings.WHISPERLITE_DEVICE)


_indexes: dict[tuple[int, str, str], ItemIndex] = {}
_rankers: dict[tuple[int, str, float, str, float], Ranker] = {}
_item_pks: dict[tuple[int, str], dict[str, int]] = {}
_content: dict[str, ZeroShotRanker] = {}

#: Rows sampled for the attention check of a catalog ranked through the approximate index:
#: the 5 % least similar of 4,000 random rows plainly miss the request too, without a
#: mat-vec over a million items per request (docs/study-protocol.md, "Attention checks").
ATTENTION_SAMPLE_ROWS = 4_000
#: Systems whose scores build on the request's similarity row (computed once per task).
SIMILARITY_SYSTEMS = frozenset({ZERO_SHOT, HISTORY_BLEND})


def catalog_items(catalog: Catalog) -> list:
    """The catalog's items as recommender CatalogItems, in a stable order."""
    return [item.to_catalog_item() for item in Item.objects.filter(catalog=catalog).order_by("id")]


def search_settings() -> SearchSettings:
    """When rankers search through the approximate index (``WHISPERLITE_ANN_*`` settings)."""
    return SearchSettings(
        min_items=int(settings.WHISPERLITE_ANN_MIN_ITEMS), nprobe=settings.WHISPERLITE_ANN_NPROBE or None
    )


def get_index(catalog: Catalog, *, progress: bool = False) -> ItemIndex:
    """The item index of a catalog version, embedded at most once per process.

    A large catalog's shared index is opened straight from its files by catalog version,
    without reading a million item rows from the database to fingerprint them.
    """
    encoder = get_encoder()
    key = (catalog.pk, catalog.version, encoder.encoder_id)
    with _lock:
        index = _indexes.get(key)
        if index is None and catalog.version:
            index = open_shared_index(settings.WHISPERLITE_CACHE_DIR, encoder.encoder_id, catalog.version)
            if index is not None and len(index.item_ids) < search_settings().min_items:
                index = None  # shared files of a catalog now under the threshold: use the plain path
        if index is None:
            index = build_item_index(
                catalog_items(catalog),
                encoder,
                settings.WHISPERLITE_CACHE_DIR,
                image_root=catalog.data_dir or None,
                progress=progress,
                shared_min_items=search_settings().min_items,
            )
        if key not in _indexes:
            # One catalog version per process keeps memory bounded; the rankers of the old
            # version hold its index too, so they go with it.
            _indexes.clear()
            _rankers.clear()
            _content.clear()
            _indexes[key] = index
        return index


def get_ranker(system: RankingSystem, catalog: Catalog) -> Ranker:
    """The ranker for a study system over a catalog; rebuilt if its checkpoint file changes."""
    index = get_index(catalog)
    mtime = (
        os.path.getmtime(system.checkpoint_path)
        if system.checkpoint_path and os.path.exists(system.checkpoint_path)
        else 0.0
    )
    key = (system.pk, system.kind, system.history_weight, index.fingerprint, mtime)
    with _lock:
        ranker = _rankers.get(key)
        if ranker is None:
            ranker = build_ranker(
                system.kind,
                index,
                get_encoder(),
                checkpoint_path=system.checkpoint_path or None,
                history_weight=system.history_weight,
                search=search_settings(),
            )
            _rankers[key] = ranker
        return ranker


def content_ranker(catalog: Catalog) -> ZeroShotRanker:
    """The plain similarity ranker of the catalog's content vectors, one per process and index.

    It computes the request's similarity row shared by the systems and the attention check;
    cached because even its construction (wrapping the index as a tensor) showed in profiles.
    """
    index = get_index(catalog)
    with _lock:
        ranker = _content.get(index.fingerprint)
        if ranker is None:
            ranker = _content[index.fingerprint] = ZeroShotRanker(index, get_encoder())
        return ranker


@dataclasses.dataclass(frozen=True)
class EncodedRequest:
    """A request's text embedding, computed once per task and shared by every consumer."""

    vector: np.ndarray  # (dim,), unit length
    encode_ms: float  # time to encode it; stored apart from each system's own scoring time


def encode_request(request_text: str) -> EncodedRequest:
    """Encode the request once: every system and the attention check reuse this vector."""
    started = time.perf_counter()
    vector = get_encoder().encode_text([request_text], normalize=True)[0]
    return EncodedRequest(vector, (time.perf_counter() - started) * 1000.0)


def request_similarity(catalog: Catalog, vector: np.ndarray) -> SharedSimilarity | None:
    """The request's similarity to every item, computed once per task; None for a catalog ranked
    through the approximate index (there no system scans the whole catalog)."""
    ranker = content_ranker(catalog)
    if len(ranker.index.item_ids) >= search_settings().min_items:
        return None
    return ranker.shared_similarity(vector)


def rank_all(
    systems: list[RankingSystem],
    catalog: Catalog,
    request_text: str,
    history: list[str],
    k: int,
    *,
    encoded: EncodedRequest | None = None,
    shared: SharedSimilarity | None = None,
) -> dict[RankingSystem, RankedList]:
    """Every system's top-k for one request; history items are never recommended back.

    The request is encoded once (``encoded``, or here when not given) and the vector shared
    by every system; so is its similarity row (``shared``, see :func:`request_similarity`),
    on which zero-shot and the history blend build. Each list's ``latency_ms`` is that
    system's own scoring (mat-vec, top-k and, for WhisperLite, its towers; the shared row's
    time counted in each system that uses it), without the shared encode: a system alone
    would take ``encode_ms + latency_ms``. Keeping them apart keeps the comparison honest.
    """
    encoded = encoded or encode_request(request_text)
    return {
        s: get_ranker(s, catalog).rank_vector(encoded.vector, history, k, exclude=history, shared=shared)
        for s in systems
    }


def attention_check_item(
    catalog: Catalog,
    vector: np.ndarray,
    avoid: set[str],
    seed: int,
    *,
    shared: SharedSimilarity | None = None,
) -> str:
    """An item that plainly does not match the request: drawn from the 5% least similar items.

    ``vector`` is the request's embedding (:func:`encode_request`) and ``shared`` its
    similarity row when the task computed one: then the check costs no mat-vec at all. A
    catalog ranked through the approximate index has no such row; the check then scores a
    seeded sample of :data:`ATTENTION_SAMPLE_ROWS` rows (the same rows for the same request
    seed) instead of the whole catalog. Reproducible either way: same seed, same item.
    """
    ranker = content_ranker(catalog)
    large = len(ranker.index.item_ids) >= search_settings().min_items
    return least_similar_item(
        ranker, vector, avoid, seed, sample=ATTENTION_SAMPLE_ROWS if large else None, shared=shared
    )


def least_similar_item(
    ranker: ZeroShotRanker,
    vector: np.ndarray,
    avoid: set[str],
    seed: int,
    *,
    sample: int | None = None,
    shared: SharedSimilarity | None = None,
) -> str:
    """A seeded pick among the 5 % least similar items of the catalog, or of ``sample`` rows of it
    drawn with ``seed`` (no whole-catalog mat-vec); items in ``avoid`` are never picked."""
    index = ranker.index
    n_items = len(index.item_ids)
    if sample is not None:
        drawn = np.random.default_rng(seed).choice(n_items, size=min(sample, n_items), replace=False)
        rows = np.sort(drawn)  # sorted: reads a memory-mapped index front to back
        scores = ranker.rows_similarity(vector, rows)
    else:
        rows = np.arange(n_items)
        scores = (
            shared.row
            if shared is not None and shared.index is index
            else ranker.shared_similarity(vector).row
        )
    n = max(1, len(scores) // 20)
    m = min(len(scores), n + len(avoid))  # enough low rows to leave n once ``avoid`` is dropped
    lowest = np.argpartition(scores, m - 1)[:m]  # O(N) instead of sorting the whole catalog
    lowest = lowest[np.lexsort((lowest, scores[lowest]))]  # by score, then row: deterministic
    candidates = rows[lowest]
    candidates = candidates[~np.isin(candidates, index.rows(list(avoid)))][:n]  # rows, not ids: cheaper
    return index.item_ids[random.Random(seed).choice(candidates.tolist())]


def item_pks(catalog: Catalog) -> dict[str, int]:
    """{external id: Item pk} of a catalog version, read once per process (slots need the pks).

    Keyed like the item index, so it always matches the items the rankers return.
    """
    key = (catalog.pk, catalog.version)
    with _lock:
        found = _item_pks.get(key)
    if found is None:
        found = dict(Item.objects.filter(catalog=catalog).values_list("external_id", "pk"))
        with _lock:
            _item_pks.clear()  # one catalog version per process, like the indexes
            _item_pks[key] = found
    return found


def warm_up(catalog: Catalog) -> None:
    """Load the encoder and embed the catalog now (with a progress bar) instead of on first request.

    For a large catalog this also builds its content search index (see :func:`build_search_indexes`).
    """
    get_index(catalog, progress=True)
    build_search_indexes(catalog, [])


def needs_search_index(catalog: Catalog) -> bool:
    """Whether this catalog is large enough to be ranked through the approximate index."""
    return catalog.items.count() >= search_settings().min_items


def search_spaces(systems: list[RankingSystem]) -> list[tuple[str, str]]:
    """(item space, what it serves) of each index the systems need: the content space, and one
    per WhisperLite checkpoint (its item tower's outputs, keyed by the checkpoint's digest)."""
    spaces = {CONTENT: "zero-shot and history blend"}
    for system in systems:
        if system.kind == WHISPERLITE and system.checkpoint_path and os.path.isfile(system.checkpoint_path):
            spaces.setdefault(f"whisperlite-{file_digest(system.checkpoint_path)}", system.name)
    return list(spaces.items())


def missing_search_indexes(catalog: Catalog, systems: list[RankingSystem]) -> list[str]:
    """What of the catalog's search indexes is not built yet (empty when none is needed)."""
    if not catalog.version or not needs_search_index(catalog):
        return []
    cache_file = cache_path(settings.WHISPERLITE_CACHE_DIR, get_encoder().encoder_id, catalog.version)
    return [serves for space, serves in search_spaces(systems) if not index_ready(cache_file, space)]


def build_search_indexes(catalog: Catalog, systems: list[RankingSystem]) -> list[str]:
    """Build (or open, if already built) the search indexes a large catalog's systems need.

    Called ahead of participants (``manage.py build_search_index``, ``import_catalog
    --embed``, the launch checklist refuses to open a study without them): at a million
    items each index takes minutes. Worker processes that start meanwhile wait on the same
    file lock and then map the result. Returns the versions of the rankers now ready.
    """
    if not needs_search_index(catalog):
        return []
    content = ZeroShotRanker(get_index(catalog), get_encoder())
    content.use_search(search_settings())  # zero-shot and history blend share this one
    ready = [f"content index ({content.version})"]
    for system in systems:
        if system.kind == WHISPERLITE:
            ready.append(get_ranker(system, catalog).version)
    return ready


def catalog_fingerprint_of(catalog: Catalog) -> str:
    """The catalog's current version, computed from its rows."""
    return catalog_fingerprint(catalog_items(catalog))
