"""``danet``: train, evaluate, score, predict and benchmark DANet; generate synthetic data."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

# Weights load only from local paths or installed packages: never let transformers reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger("danet")


def _print_summary(title: str, summary: dict[str, float], as_json: bool) -> None:
    from danet.metrics import format_metrics_table

    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_metrics_table({title: summary}))


def cmd_train(args: argparse.Namespace) -> int:
    """Train a preset on a dataset (single process, or Ray Train workers with --workers)."""
    from danet.config import load_preset
    from danet.training import TrainOptions, train, train_distributed

    cfg = load_preset(args.config, args.set)
    opts = TrainOptions(
        data=args.data,
        out_dir=args.out,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_split=None if args.no_val else args.val_split,
        num_workers=args.loader_workers,
        device=args.device,
        seed=args.seed,
        checkpoint_kind=args.checkpoint_kind,
    )
    if args.workers > 1:
        summary = train_distributed(cfg, opts, num_workers=args.workers, use_gpu=args.gpu)
    else:
        summary = train(cfg, opts)
    print(
        f"trained {summary.steps} steps / {summary.epochs} epochs in {summary.seconds:.0f} s; "
        f"final loss {summary.final_loss:.4f}; best val mIoU {summary.best_miou}; "
        f"checkpoint {summary.checkpoint}"
    )
    return 0


def cmd_train_stream(args: argparse.Namespace) -> int:
    """Train on the endless on-the-fly referring stream (synthetic + real); resumes from --out."""
    from danet.config import load_preset
    from danet.stream_training import StreamTrainOptions, train_stream

    cfg = load_preset(args.config, args.set)
    opts = StreamTrainOptions(
        out_dir=args.out, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup_steps, seed=args.seed, threads=args.threads,
        loader_workers=args.loader_workers, checkpoint_every=args.checkpoint_every,
        val_data=args.val_data, val_every=args.val_every, max_minutes=args.max_minutes, device=args.device,
        init=args.init,
    )  # fmt: skip
    print(json.dumps(train_stream(cfg, opts), indent=2))
    return 0


def cmd_stac_item(args: argparse.Namespace) -> int:
    """Describe a checkpoint as a STAC Item with the Machine Learning Model (mlm) extension."""
    from danet.model_item import model_item

    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    item = model_item(
        args.checkpoint, item_id=args.id or args.checkpoint.stem, gsd_m=args.gsd,
        description=args.description, metrics=metrics, card=args.card,
    )  # fmt: skip
    text = json.dumps(item, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint on a split: the standard table."""
    from torch.utils.data import DataLoader

    from danet.checkpoint import load_checkpoint
    from danet.config import load_preset
    from danet.data.dataset import ReferringDataset, load_records
    from danet.data.subsets import subset_sent_ids
    from danet.evaluation import evaluate
    from danet.training import pick_device

    device = pick_device(args.device)
    model, info = load_checkpoint(args.checkpoint, device=device)
    if args.config is not None and load_preset(args.config).name != info.preset:
        raise SystemExit(f"--config {args.config} is preset {load_preset(args.config).name!r}, "
                         f"but {args.checkpoint} holds a {info.preset!r} model")  # fmt: skip
    records = load_records(args.data, args.split)
    results: dict[str, dict[str, float]] = {}
    for subset in args.subset or ["all"]:
        chosen = records
        if subset != "all":
            wanted = subset_sent_ids(args.data, subset)
            chosen = [r for r in records if r.sent_id in wanted]
        if not chosen:
            raise SystemExit(f"--subset {subset}: no {args.split} sentences in {args.data}")
        dataset = ReferringDataset(chosen, info.config.input_size)
        loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.loader_workers)
        summary = evaluate(model, loader, device=device, progress=not args.json).summary()
        results[f"{info.preset} / {args.split} / {subset}"] = summary
    if args.json:
        print(json.dumps(results if args.subset else next(iter(results.values())), indent=2))
    else:
        from danet.metrics import format_metrics_table

        print(format_metrics_table(results))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score externally produced binary mask PNGs against a dataset in the RRSIS-D layout."""
    from danet.scoring import score_predictions

    summary = score_predictions(args.data, args.split, args.predictions)
    _print_summary(f"{args.predictions.name} / {args.split}", summary, args.json)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Segment what an expression refers to in an image or GeoTIFF of any size."""
    from danet.checkpoint import load_checkpoint
    from danet.predict import Predictor, predict_file
    from danet.training import pick_device

    device = pick_device(args.device)
    model, info = load_checkpoint(args.checkpoint, device=device)
    predictor = Predictor(
        model,
        device=device,
        batch_size=args.batch_size,
        model_name=f"danet-{info.preset}@{args.checkpoint.name}",
    )
    result = predict_file(
        predictor,
        args.image,
        args.expression,
        args.out,
        threshold=args.threshold,
        min_area_m2=args.min_area_m2,
        overlap=args.overlap,
        write_probability=args.probability,
        progress=True,
    )
    print(f"{result.tile_count} tiles, {result.component_count} components")
    print(f"overlay: {result.overlay_path}")
    if result.geojson_path is not None:
        print(f"GeoJSON (CRS84): {result.geojson_path} ({result.feature_count} features)")
    return 0


LAVT_REFERENCE = "LAVT (Swin-B + BERT-base, 480 px, published): 227.7 M params, 198.8 GFLOPs (multiply-adds)"


def cmd_bench(args: argparse.Namespace) -> int:
    """Parameters, FLOPs (torch's flop counter) and forward throughput per preset and batch size."""
    from danet.bench import count_flops, count_params, measure_throughput
    from danet.config import load_preset
    from danet.model.danet import build_model
    from danet.training import pick_device

    device = pick_device(args.device)
    rows = []
    for preset in args.presets:
        cfg = load_preset(preset)
        size = args.size or cfg.input_size
        model = build_model(cfg, pretrained=False).eval()  # architecture only: random weights
        params = count_params(model)
        flops = count_flops(model, size) if not args.no_flops else None
        model.to(device)
        for batch in args.batch_sizes:
            speed = measure_throughput(
                model, batch, size, bf16=args.bf16, warmup=args.warmup, iterations=args.iterations
            )
            rows.append(
                {
                    "preset": cfg.name,
                    "size": size,
                    "batch": batch,
                    "device": speed.device,
                    "bf16": args.bf16,
                    "params_m": params.total / 1e6,
                    "trainable_m": params.trainable / 1e6,
                    "gmacs": flops.macs / 1e9 if flops else None,
                    "gflops_torch": flops.flops / 1e9 if flops else None,
                    "images_per_s": speed.images_per_s,
                    "ms_per_batch": speed.ms_per_batch,
                    "param_groups_m": {k: v.total / 1e6 for k, v in params.groups.items()},
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| preset | size | batch | device | bf16 | params (M) | GMACs | torch GFLOPs | img/s | ms/batch |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        gmacs = f"{r['gmacs']:.1f}" if r["gmacs"] is not None else "-"
        gfl = f"{r['gflops_torch']:.1f}" if r["gflops_torch"] is not None else "-"
        print(
            f"| {r['preset']} | {r['size']} | {r['batch']} | {r['device']} | {r['bf16']} | "
            f"{r['params_m']:.2f} | {gmacs} | {gfl} | {r['images_per_s']:.2f} | {r['ms_per_batch']:.1f} |"
        )
    print(f"\nReference: {LAVT_REFERENCE}. GMACs counts one multiply-add once (fvcore/LAVT convention);")
    print("torch's FlopCounterMode counts it twice. Weights are random: bench measures the architecture.")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a seeded synthetic referring dataset (RRSIS-D layout and JSONL)."""
    from danet.datagen.synthetic import SceneSpec, write_synthetic_dataset

    spec = SceneSpec(image_size=args.size, seed=args.seed)
    corpus = write_synthetic_dataset(args.out, spec, args.images, progress=True)
    counts = {split: sum(1 for r in corpus.refs if r.split == split) for split in corpus.splits()}
    print(f"wrote {args.images} images to {args.out}; refs per split: {counts}")
    return 0


def cmd_benchmark_data(args: argparse.Namespace) -> int:
    """Write the referring benchmark: synthetic distractor scenes plus real SpaceNet/NEON crops."""
    from danet.datagen.benchmark import build_benchmark

    built = build_benchmark(args.out, seed=args.seed, synthetic_images=args.synthetic_images, size=args.size)
    print(f"wrote the benchmark to {args.out} (card: {args.out / 'DATASET.md'}); sentences per split:")
    for name, per_split in built.counts.items():
        print(f"  {name:<34} " + "  ".join(f"{s}={c['sentences']}" for s, c in per_split.items()))
    return 0


def cmd_heldout_data(args: argparse.Namespace) -> int:
    """Write the held-out renderer's evaluation set (scenes no training data is drawn like; split test)."""
    import time

    from danet.datagen.heldout import write_heldout_dataset

    start = time.perf_counter()
    built = write_heldout_dataset(args.out, args.images, seed=args.seed, size=args.size)
    print(f"wrote {args.images} held-out scenes to {args.out} in {time.perf_counter() - start:.0f} s "
          f"(card: {args.out / 'DATASET.md'}); test sentences per subset:")  # fmt: skip
    for name, per_split in built.counts.items():
        print(f"  {name:<34} {per_split['test']['sentences']}")
    return 0


def cmd_real_heldout_data(args: argparse.Namespace) -> int:
    """Write the real regions kept out of v2 training (SpaceNet block, NEON tiles) as a test split."""
    from danet.datagen.real_regions import write_real_heldout

    for subset, count in write_real_heldout(args.out).items():
        print(f"  {subset:<34} {count} test sentences")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="danet", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help=cmd_train.__doc__)
    train.add_argument("--config", required=True, help="preset name (base, lite, tiny) or YAML path")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a preset value, e.g. --set alignment.agent.enabled=false (repeatable)",
    )  # fmt: skip
    train.add_argument("--data", type=Path, required=True, help="dataset root (RRSIS-D layout or JSONL)")
    train.add_argument("--out", type=Path, required=True, help="output folder for checkpoints and history")
    train.add_argument("--epochs", type=int, help="epochs (default: the preset's)")
    train.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    train.add_argument("--batch-size", type=int, help="batch size per worker (default: the preset's)")
    train.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    train.add_argument("--val-split", default="val")
    train.add_argument("--no-val", action="store_true", help="skip validation after each epoch")
    train.add_argument("--workers", type=int, default=1, help="Ray Train data-parallel workers (>1 uses Ray)")
    train.add_argument("--gpu", action="store_true", help="one GPU per Ray Train worker")
    train.add_argument("--loader-workers", type=int, default=0, help="DataLoader worker processes")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (single process)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--checkpoint-kind", choices=["full", "trainable"], default="full",
        help="trainable: save only tensors training changed (frozen pretrained towers by checksum)",
    )  # fmt: skip
    train.set_defaults(func=cmd_train)

    stream = sub.add_parser("train-stream", help=cmd_train_stream.__doc__)
    stream.add_argument("--config", required=True, help="preset name (lite, tiny, ...) or YAML path")
    stream.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset value"
    )
    stream.add_argument("--out", type=Path, required=True, help="run folder (resumes when it holds state.pt)")
    stream.add_argument("--max-steps", type=int, required=True, help="optimizer steps of the whole run")
    stream.add_argument("--batch-size", type=int, default=8)
    stream.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    stream.add_argument("--warmup-steps", type=int, default=100)
    stream.add_argument("--seed", type=int, default=0)
    stream.add_argument("--threads", type=int, help="torch threads of the training step (default: torch's)")
    stream.add_argument("--loader-workers", type=int, default=1, help="processes drawing samples")
    stream.add_argument("--checkpoint-every", type=int, default=200)
    stream.add_argument("--val-data", type=Path, help="dataset whose val split is scored during training")
    stream.add_argument("--val-every", type=int, default=500)
    stream.add_argument("--max-minutes", type=float, help="stop (and save) after this wall time")
    stream.add_argument("--init", type=Path, help="start from a checkpoint's trained tensors (new schedule)")
    stream.add_argument("--device", default="auto")
    stream.set_defaults(func=cmd_train_stream)

    item = sub.add_parser("stac-item", help=cmd_stac_item.__doc__)
    item.add_argument("--checkpoint", type=Path, required=True)
    item.add_argument(
        "--gsd",
        type=float,
        help="ground sample distance the model expects (m); default: the checkpoint's input.gsd_m",
    )
    item.add_argument("--id", help="item id (default: the checkpoint's file stem)")
    item.add_argument("--description", default="DANet referring remote-sensing segmentation model")
    item.add_argument("--metrics", type=Path, help="JSON file of metrics to record (e.g. danet eval --json)")
    item.add_argument("--card", help="href of the model card (relative to the item)")
    item.add_argument("--out", type=Path, help="write the item here (default: stdout)")
    item.set_defaults(func=cmd_stac_item)

    ev = sub.add_parser("eval", help=cmd_eval.__doc__)
    ev.add_argument("--checkpoint", type=Path, required=True)
    ev.add_argument("--config", help="optional: check the checkpoint holds this preset")
    ev.add_argument("--data", type=Path, required=True)
    ev.add_argument("--split", default="test")
    ev.add_argument(
        "--subset", action="append", metavar="NAME",
        help="evaluate a named subset from the dataset's subsets.json (repeatable; 'all' = whole split)",
    )  # fmt: skip
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--loader-workers", type=int, default=0)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ev.set_defaults(func=cmd_eval)

    score = sub.add_parser("score", help=cmd_score.__doc__)
    score.add_argument("--data", type=Path, required=True)
    score.add_argument("--split", default="test")
    score.add_argument("--predictions", type=Path, required=True, help="folder of <sent_id>.png binary masks")
    score.add_argument("--json", action="store_true")
    score.set_defaults(func=cmd_score)

    predict = sub.add_parser("predict", help=cmd_predict.__doc__)
    predict.add_argument("--checkpoint", type=Path, required=True)
    predict.add_argument("image", type=Path, help="PNG/JPEG or GeoTIFF/COG (any size; tiled with overlap)")
    predict.add_argument("expression", help='what to find, e.g. "the large building in the upper left"')
    predict.add_argument("--out", type=Path, default=Path("predictions"), help="output folder")
    predict.add_argument("--threshold", type=float, default=0.5, help="foreground probability threshold")
    predict.add_argument("--min-area-m2", type=float, default=0.0, help="drop smaller polygons (GeoTIFFs)")
    predict.add_argument("--overlap", type=int, help="tile overlap in pixels (default: input size / 4)")
    predict.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass")
    predict.add_argument("--probability", action="store_true", help="also write the probability PNG")
    predict.add_argument("--device", default="auto")
    predict.set_defaults(func=cmd_predict)

    bench = sub.add_parser("bench", help=cmd_bench.__doc__)
    bench.add_argument("presets", nargs="+", help="preset names or YAML paths")
    bench.add_argument("--size", type=int, help="input size (default: each preset's)")
    bench.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    bench.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--iterations", type=int, default=5)
    bench.add_argument("--no-flops", action="store_true", help="skip FLOP counting")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=cmd_bench)

    synth = sub.add_parser("synth", help=cmd_synth.__doc__)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--images", type=int, default=200)
    synth.add_argument("--size", type=int, default=256)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synth)

    benchmark = sub.add_parser("benchmark-data", help=cmd_benchmark_data.__doc__)
    benchmark.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    benchmark.add_argument("--seed", type=int, default=0)
    benchmark.add_argument("--synthetic-images", type=int, default=1200)
    benchmark.add_argument("--size", type=int, default=256, help="side of the synthetic scenes")
    benchmark.set_defaults(func=cmd_benchmark_data)

    heldout = sub.add_parser("heldout-data", help=cmd_heldout_data.__doc__)
    heldout.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    heldout.add_argument("--images", type=int, default=400)
    heldout.add_argument("--seed", type=int, default=12345)
    heldout.add_argument("--size", type=int, default=256)
    heldout.set_defaults(func=cmd_heldout_data)

    real = sub.add_parser("real-heldout-data", help=cmd_real_heldout_data.__doc__)
    real.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    real.set_defaults(func=cmd_real_heldout_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``danet`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
