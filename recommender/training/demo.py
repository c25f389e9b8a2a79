"""A demo WhisperLite checkpoint for the study app, trained on the shopper simulation (v2).

The study app has no purchase logs of its own, so its demo command calls
:func:`ensure_demo_checkpoint` with whatever catalog it serves (real Myntra or the generated
sample catalog): a small SIMULATED-shopper run (simulation v2: requests that sometimes name
colour, gender, usage or pattern against the history, plus FashionIQ dress/shirt phrasings
when given) trains in a minute or two on a laptop CPU and is reused on later calls as long
as the encoder, catalog and simulation are unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from recommender.catalog import CatalogItem
from recommender.checkpoint import CheckpointError, load_checkpoint
from recommender.embeddings import catalog_fingerprint
from recommender.encoders import Encoder
from recommender.model import WhisperLiteConfig
from recommender.training.fashioniq import Phrasing
from recommender.training.simulation import simulate_shoppers
from recommender.training.train import prepare, train_whisperlite

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "cache" / "embeddings"


def demo_fingerprint(items: list[CatalogItem], seed: int, n_phrasings: int = 0) -> str:
    """What a demo checkpoint was trained on: simulation version, catalog, seed, phrasings."""
    return f"demo-sim-v2:{catalog_fingerprint(items)}:seed{seed}:fiq{n_phrasings}"


def ensure_demo_checkpoint(
    items: list[CatalogItem],
    encoder: Encoder,
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    n_shoppers: int = 800,
    epochs: int = 14,
    phrasings: Sequence[Phrasing] = (),
) -> Path:
    """Return ``path``, training a demo checkpoint there first unless a matching one exists.

    An existing file is reused when it is a readable checkpoint for this encoder and this
    catalog; otherwise (missing, other encoder, other catalog, corrupt) it is retrained and
    replaced atomically. ``phrasings`` are FashionIQ *train*-half phrasings
    (:func:`recommender.training.fashioniq.load_phrasings`) mixed into the simulation.
    """
    path = Path(path)
    fingerprint = demo_fingerprint(items, seed, len(phrasings))
    if path.exists():
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("retraining demo checkpoint: %s", exc)
        else:
            if ckpt.encoder_id == encoder.encoder_id and ckpt.data_fingerprint == fingerprint:
                return path
            log.warning("retraining demo checkpoint %s: trained for another encoder or catalog", path)
    simulation = simulate_shoppers(
        items, n_shoppers=n_shoppers, n_events=8, seed=seed, name="demo-sim", phrasings=phrasings
    )
    prep = prepare(simulation.dataset, encoder, cache_dir or DEFAULT_CACHE_DIR, progress=progress)
    prep.fingerprint = fingerprint
    config = WhisperLiteConfig(seed=seed, epochs=epochs, patience=3)
    # Train into a side file and move it into place only when training finished: the trainer
    # saves every new best (epoch 0, the untrained model, included), and an interrupted run
    # must not leave a file that the next start would accept as the finished checkpoint.
    partial = path.with_name(path.name + ".partial")
    result = train_whisperlite(prep, config, checkpoint_path=partial, progress=progress)
    os.replace(partial, path)
    log.info(
        "demo checkpoint %s: val Recall@10 %.3f after %d epochs",
        path,
        result.best_val_recall,
        result.epochs_run,
    )
    return path
