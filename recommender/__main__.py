"""Command line: ``python -m recommender train|evaluate|fidelity|probe ...`` (also ``whisperlite``).

``fidelity`` benchmarks whether a checkpoint returns what requests name (colour, type, gender,
usage, pattern) under four history conditions, against zero-shot and the history blend;
``probe`` is its quick pre-flight version with a PASS/FAIL exit status (0 pass, 1 fail).

Errors a user can fix (missing dataset, checkpoint from another encoder, unloadable
encoder) exit with status 2 and one readable line instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DATASETS = ("myntra-sim", "musical-instruments", "redial", "amazon", "movielens", "generic")
DATASET_HELP = (
    "myntra-sim: SIMULATED shoppers over the Myntra catalog; musical-instruments: Amazon Review Data "
    "2014 Musical Instruments 5-core (review as request); redial: ReDial dialogues (seeker's words as "
    "request); amazon: Amazon Review Data 2018 (AMAZON_FASHION 5-core or any category file of either "
    "release); movielens: ml-latest-small (tags as requests); generic: your own interactions file "
    "(see --interactions)"
)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=DATASETS, help=DATASET_HELP)
    p.add_argument(
        "--data-dir",
        help="shared data folder (or the dataset's own folder / review file); "
        "default: $WHISPERLITE_DATA_DIR, else ../shared/data next to the repository",
    )
    p.add_argument(
        "--interactions", help="generic dataset: CSV/JSONL with user_id,item_id,timestamp,request_text"
    )
    p.add_argument("--items", help="generic dataset: optional items CSV/JSONL with item_id[,title,text,...]")
    p.add_argument(
        "--encoder", default="sentence-transformers", help="frozen encoder spec (default: %(default)s)"
    )
    p.add_argument(
        "--cache-dir", default="var/cache/embeddings", help="embedding cache folder (default: %(default)s)"
    )
    p.add_argument(
        "--shoppers", type=int, default=1000, help="myntra-sim: simulated shoppers (default: %(default)s)"
    )
    p.add_argument(
        "--events", type=int, default=8, help="myntra-sim: purchases per shopper (default: %(default)s)"
    )
    p.add_argument("--epochs", type=int, default=15, help="maximum training epochs (default: %(default)s)")
    p.add_argument(
        "--patience", type=int, default=3, help="early-stopping patience in epochs (default: %(default)s)"
    )
    p.add_argument(
        "--loss",
        choices=("composite", "bce", "contrastive"),
        default="composite",
        help="training loss for 'train' (default: %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=128, help="training batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.07, help="score temperature (default: %(default)s)")
    p.add_argument(
        "--negatives",
        type=int,
        default=16,
        help="sampled negatives per positive for BCE (default: %(default)s)",
    )
    p.add_argument("--user-ids", action="store_true", help="also learn an embedding per training user")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whisperlite", description="Train and evaluate WhisperLite recommenders."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one WhisperLite model and save its best checkpoint")
    _common(train)
    train.add_argument(
        "--out", default="var/checkpoints/whisperlite.pt", help="checkpoint file (default: %(default)s)"
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    ev = sub.add_parser(
        "evaluate", help="benchmark every system on the temporal split; prints a Markdown table"
    )
    _common(ev)
    ev.add_argument(
        "--out",
        default="var/benchmarks",
        help="folder for results JSON and checkpoints (default: %(default)s)",
    )
    ev.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    ev.add_argument("--systems", nargs="+", help="subset of systems to run (default: all)")
    ev.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="PATH",
        help="also evaluate an existing WhisperLite checkpoint (repeatable); it must have been "
        "trained with --encoder",
    )
    ev.add_argument(
        "--latency",
        action="store_true",
        help="also time the app's rankers per request (zero_shot, history_blend, whisperlite)",
    )
    for name, help_text, requests in (
        (
            "fidelity",
            "request-fidelity benchmark of a checkpoint: named-attribute precision@10 and history "
            "pull under four history conditions, template and FashionIQ requests, with 95%% CIs",
            200,
        ),
        (
            "probe",
            "pre-flight check before a study: the fidelity table on a small fixed request set "
            "against zero-shot; prints PASS/FAIL and exits 0 (pass) or 1 (fail)",
            30,
        ),
    ):
        fp = sub.add_parser(name, help=help_text, description=help_text)
        fp.add_argument("checkpoint", help="WhisperLite checkpoint (.pt) trained with --encoder")
        fp.add_argument(
            "--catalog",
            default="sample",
            help="myntra:PATH (the myntra folder or the shared data folder), generic:FILE, or sample "
            "(the generated sample catalog) (default: %(default)s)",
        )
        fp.add_argument(
            "--fashioniq",
            help="FashionIQ captions folder for the real-phrasing requests (default: "
            "$WHISPERLITE_DATA_DIR/fashioniq_captions when present; 'none' to skip)",
        )
        fp.add_argument(
            "--requests", type=int, default=requests, help="requests per source (default: %(default)s)"
        )
        fp.add_argument("--seed", type=int, default=0, help="seed of the request set (default: %(default)s)")
        fp.add_argument(
            "--encoder", default="sentence-transformers", help="frozen encoder spec (default: %(default)s)"
        )
        fp.add_argument(
            "--cache-dir",
            default="var/cache/embeddings",
            help="embedding cache folder (default: %(default)s)",
        )
        fp.add_argument(
            "--no-examples", action="store_true", help="skip the example requests and their top 5"
        )
        if name == "fidelity":
            fp.add_argument(
                "--personalization",
                type=int,
                metavar="SHOPPERS",
                help="also rebuild the demo simulation with SHOPPERS shoppers (the demo uses 800) and "
                "print Recall@10 of vague vs attribute-naming test requests against the baselines",
            )
    return parser


def _fidelity(args: argparse.Namespace) -> int:
    import os

    from recommender.checkpoint import load_checkpoint
    from recommender.embeddings import build_item_index
    from recommender.encoders import build_encoder
    from recommender.training.fashioniq import load_phrasings
    from recommender.training.probe import fidelity_report, load_catalog_spec

    items, image_root = load_catalog_spec(args.catalog, args.cache_dir)
    load_checkpoint(args.checkpoint)  # a wrong path fails before the encoder loads
    phrasings = []
    fiq = args.fashioniq
    if fiq is None and os.environ.get("WHISPERLITE_DATA_DIR", ""):
        candidate = Path(os.environ["WHISPERLITE_DATA_DIR"]) / "fashioniq_captions"
        fiq = str(candidate) if candidate.is_dir() else None
    if fiq and fiq != "none":
        phrasings = load_phrasings(fiq, "test")
    encoder = build_encoder(args.encoder)
    index = build_item_index(items, encoder, args.cache_dir, image_root=image_root, progress=False)
    started = time.perf_counter()
    report = fidelity_report(
        items,
        index,
        encoder,
        args.checkpoint,
        n_requests=args.requests,
        seed=args.seed,
        phrasings=phrasings,
        with_examples=not args.no_examples,
    )
    print(report.text())
    print(f"({time.perf_counter() - started:.1f} s, {len(items)} catalog items)")
    if getattr(args, "personalization", None):
        from recommender.training.specificity import specificity_table

        train_phrasings = load_phrasings(fiq, "train") if fiq and fiq != "none" else []
        print()
        print(
            specificity_table(
                items,
                encoder,
                args.checkpoint,
                args.cache_dir,
                n_shoppers=args.personalization,
                phrasings=train_phrasings,
            )
        )
    if args.command == "probe":
        return 0 if report.passed else 1
    return 0


def _config(args: argparse.Namespace, seed: int):  # type: ignore[no-untyped-def]
    from recommender.model import WhisperLiteConfig

    return WhisperLiteConfig(
        epochs=args.epochs,
        patience=args.patience,
        loss=args.loss,
        batch_size=args.batch_size,
        lr=args.lr,
        temperature=args.temperature,
        n_negatives=args.negatives,
        seed=seed,
    )


def _loader(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from recommender.training.loaders import load_dataset

    cache: dict[int, object] = {}

    def load(seed: int):  # type: ignore[no-untyped-def]
        if seed not in cache:
            cache[seed] = load_dataset(
                args.dataset,
                args.data_dir,
                seed=seed,
                n_shoppers=args.shoppers,
                n_events=args.events,
                interactions_path=args.interactions,
                items_path=args.items,
            )
        return cache[seed]

    return load


def _train(args: argparse.Namespace) -> int:
    from recommender.encoders import build_encoder
    from recommender.training.train import prepare, train_whisperlite

    dataset = _loader(args)(args.seed)  # first, so a wrong path fails before the encoder loads
    encoder = build_encoder(args.encoder)
    prep = prepare(dataset, encoder, args.cache_dir, progress=not args.quiet)
    result = train_whisperlite(
        prep,
        _config(args, args.seed),
        use_user_ids=args.user_ids,
        checkpoint_path=args.out,
        progress=not args.quiet,
    )
    print(
        f"best epoch {result.best_epoch}/{result.epochs_run}: validation Recall@10 {result.best_val_recall:.4f}, "
        f"{result.seconds_per_epoch:.1f} s/epoch; checkpoint {result.checkpoint_path}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from recommender.checkpoint import load_checkpoint
    from recommender.encoders import build_encoder
    from recommender.training.baselines import ALL_SYSTEMS
    from recommender.training.evaluate import measure_latency, run_benchmark, write_result
    from recommender.training.train import prepare

    systems = args.systems or list(ALL_SYSTEMS)
    unknown = sorted(set(systems) - set(ALL_SYSTEMS))
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(ALL_SYSTEMS)}")
    load = _loader(args)
    load(args.seeds[0])  # first, so a wrong path fails before the encoder loads
    encoder = build_encoder(args.encoder)
    # Checked before any work so a wrong checkpoint fails in seconds, not after training.
    extra = {
        f"checkpoint:{Path(p).name}": load_checkpoint(p, expected_encoder_id=encoder.encoder_id).build_model()
        for p in args.checkpoint
    }
    started = time.perf_counter()
    out = Path(args.out)
    result = run_benchmark(
        load,
        encoder,
        seeds=args.seeds,
        systems=systems,
        config=_config(args, args.seeds[0]),
        cache_dir=args.cache_dir,
        use_user_ids=args.user_ids,
        checkpoint_dir=out / f"{args.dataset}-checkpoints",
        progress=not args.quiet,
        extra_models=extra,
    )
    info: dict[str, object] = {"wall_seconds": time.perf_counter() - started}
    if args.latency:
        ckpt = (
            out
            / f"{args.dataset}-checkpoints"
            / f"seed{args.seeds[0]}"
            / f"whisperlite-seed{args.seeds[0]}.pt"
        )
        prep = prepare(load(args.seeds[0]), encoder, args.cache_dir, progress=False)
        info["latency"] = measure_latency(prep, encoder, ckpt if ckpt.exists() else None)
    print()
    print(result.markdown())
    for name, runs in result.info.items():
        if runs and "seconds_per_epoch" in runs[0]:
            spe = sum(_number(r["seconds_per_epoch"]) for r in runs) / len(runs)
            epochs = [f"{_number(r['epochs']):.0f} (best {_number(r['best_epoch']):.0f})" for r in runs]
            print(f"{name}: {spe:.2f} s/epoch, epochs run {epochs}")
        if runs and "weight" in runs[0]:
            print(f"{name}: weights {[r['weight'] for r in runs]}")
    if "latency" in info:
        print("latency per request (ms):", json.dumps(info["latency"]))
    print(f"results: {write_result(result, out, info)}  ({info['wall_seconds']:.0f} s)")
    return 0


def _number(value: object) -> float:
    """A numeric training-info entry (stored as ``object`` next to paths and flags)."""
    return float(value) if isinstance(value, int | float) else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user-fixable errors)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from recommender.checkpoint import CheckpointError
    from recommender.encoders import EncoderUnavailable

    try:
        if args.command in ("fidelity", "probe"):
            return _fidelity(args)
        return _train(args) if args.command == "train" else _evaluate(args)
    except (FileNotFoundError, CheckpointError, EncoderUnavailable, ValueError) as exc:
        print(f"whisperlite: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
