#!/usr/bin/env python
"""hdr-jax training and evaluation entry point. Parses flags, then calls the library.

  python train.py --data-dir DIR --workdir runs/a            # train (resumes if runs/a has state)
  python train.py --preset fast --data-dir DIR --workdir runs/f   # the accelerator recipe
  python train.py evaluate --checkpoint checkpoints/alexnet-mnist --data-dir DIR
  python train.py export --workdir runs/a --out checkpoints/alexnet-mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from hdr_jax.config import PRESETS, ConfigError, TrainConfig, preset

_FLAGS = {  # flag -> TrainConfig field
    "data_dir": str, "workdir": str, "epochs": int, "max_steps": int, "batch_size": int,
    "learning_rate": float, "weight_decay": float, "warmup_epochs": float,
    "label_smoothing": float, "strategy": str, "seed": int, "validation_size": int,
    "train_limit": int, "line_spans": int, "eval_batch_size": int, "checkpoint_every_steps": int,
    "keep_checkpoints": int, "log_every_steps": int, "steps_per_dispatch": int,
    "photo_spans": int, "init_from": str,
}
_HELP = {
    "photo_spans": "span examples of lines photographed and found again by the reader "
                   "(faint strokes broken by the noise floor), besides --line-spans",
    "init_from": "an inference checkpoint to start from (fine-tuning): its weights, this run's "
                 "schedule",
}
COMPILATION_CACHE = Path(os.environ.get("HDR_COMPILATION_CACHE",
                                        Path.home() / ".cache" / "hdr-jax" / "xla"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", nargs="?", default="train", choices=["train", "evaluate", "export"])
    p.add_argument("--preset", choices=list(PRESETS), default="default",
                   help="a named recipe; the flags below override its fields")
    for name, kind in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                       choices=["mesh", "pmap"] if name == "strategy" else None,
                       help=_HELP.get(name))
    p.add_argument("--dropout", type=float, default=None, help="model dropout rate")
    p.add_argument("--width", type=float, default=None, help="multiply the model's widths")
    p.add_argument("--num-classes", type=int, choices=[10, 11], default=None,
                   help="11: \"not one digit\" (the --line-spans that hold two digits) is a "
                        "class of its own; 10 (default): it is learnt as doubt")
    p.add_argument("--span-parts", action="store_true",
                   help="among the --line-spans, parts of one digit are \"not one digit\" too")
    p.add_argument("--compute-dtype", choices=["float32", "bfloat16"], default=None,
                   help="the layers' arithmetic (bfloat16: an accelerator option; parameters "
                        "stay float32, export serves float32)")
    p.add_argument("--no-augment", action="store_true", help="turn data augmentation off")
    p.add_argument("--elastic-alpha", type=float, default=None)
    p.add_argument("--stroke-gaps", type=int, default=None,
                   help="augmentation: up to N short gaps erased from each digit's strokes")
    p.add_argument("--checkpoint", help="evaluate: an inference checkpoint or a workdir")
    p.add_argument("--out", help="export: where to write the inference checkpoint")
    p.add_argument("--select", choices=["final", "best"], default="final",
                   help="export: the final checkpoint, or the best by validation accuracy")
    p.add_argument("--batch-stats", choices=["precise", "precise-digits", "running"],
                   default="precise",
                   help="export: re-estimate BatchNorm statistics on the clean training images "
                        "(precise BN), on its MNIST digits alone (without the --line-spans and "
                        "--photo-spans examples), or keep the running averages from training")
    p.add_argument("--report-dir", help="evaluate: write report PNGs and JSON here")
    p.add_argument("--tta", action="store_true",
                   help="evaluate: average over the image and its 1-pixel shifts")
    p.add_argument("--ensemble", nargs="+", metavar="CHECKPOINT", default=[],
                   help="evaluate: average these models' probabilities with --checkpoint's")
    p.add_argument("--cpu-devices", type=int,
                   help="CPU devices to emulate (default: the most, up to one per core, that "
                        "divide the batch; see BENCHMARKS.md)")
    p.add_argument("--deterministic", action="store_true",
                   help="GPU: XLA's deterministic ops, for bit-identical reruns (slower)")
    p.add_argument("--compilation-cache", default=str(COMPILATION_CACHE),
                   help="persistent XLA compilation cache ('' turns it off); default "
                        "$HDR_COMPILATION_CACHE or ~/.cache/hdr-jax/xla")
    p.add_argument("--coordinator-address", help="multi-process: host:port of process 0")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {k: getattr(args, k) for k in _FLAGS if getattr(args, k) is not None}
    if args.span_parts:
        overrides["span_parts"] = True
    config = dataclasses.replace(preset(args.preset), **overrides)
    model, aug = config.model, config.augment
    if args.dropout is not None:
        model = dataclasses.replace(model, dropout_rate=args.dropout)
    if args.compute_dtype is not None:
        model = dataclasses.replace(model, compute_dtype=args.compute_dtype)
    if args.num_classes is not None:
        model = dataclasses.replace(model, num_classes=args.num_classes)
    if args.width is not None:
        model = dataclasses.replace(
            model, conv_features=tuple(round(c * args.width) for c in model.conv_features),
            dense_features=round(model.dense_features * args.width))
    if args.no_augment:
        aug = dataclasses.replace(aug, enabled=False)
    if args.elastic_alpha is not None:
        aug = dataclasses.replace(aug, elastic_alpha=args.elastic_alpha)
    if args.stroke_gaps is not None:
        aug = dataclasses.replace(aug, stroke_gaps=args.stroke_gaps)
    return dataclasses.replace(config, model=model, augment=aug).validate()


def _set_up_jax(args: argparse.Namespace, config: TrainConfig) -> None:
    """Everything that must happen before JAX starts its backends."""
    if args.cpu_devices is not None and args.cpu_devices < 1:
        raise ConfigError("--cpu-devices must be at least 1")
    if args.deterministic:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_gpu_deterministic_ops=true").strip()
    import jax

    from hdr_jax import parallel

    cores = os.cpu_count() or 1
    parallel.use_cpu_devices(args.cpu_devices or parallel.cpu_device_count(cores,
                                                                            config.batch_size))
    if args.compilation_cache:
        # A second run (or a second process) loads the compiled steps instead of compiling.
        jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    parallel.initialize_distributed(args.coordinator_address, args.num_processes,
                                    args.process_id)
    if jax.default_backend() == "cpu" and not args.cpu_devices and parallel.is_primary():
        logging.info("CPU: %d emulated devices (the most, up to %d cores, that divide batch %d)",
                     jax.local_device_count(), cores, config.batch_size)


def _print_json(obj: dict) -> None:
    from hdr_jax import parallel

    if parallel.is_primary():
        print(json.dumps(obj), flush=True)


def _evaluate(args: argparse.Namespace) -> None:
    from hdr_jax import data, evaluate, metrics, parallel

    if not args.checkpoint:
        raise ConfigError("--checkpoint is required (an inference checkpoint or a workdir)")
    members = [evaluate.load_model(path) for path in (args.checkpoint, *args.ensemble)]
    split = data.load_mnist(args.data_dir).test
    report, probabilities = evaluate.evaluate_models(members, split, args.tta)
    # The digit, as `accuracy` counts it: an 11th class ("not one digit") is never one.
    predictions = probabilities[:, :data.NUM_CLASSES].argmax(-1)
    if parallel.is_primary():
        print(metrics.format_report(report))
        print(metrics.format_confusion_matrix(report["confusion_matrix"]))
        if args.report_dir:
            metrics.write_report_dir(args.report_dir, report, split, probabilities,
                                     Path(args.checkpoint) / "metrics.jsonl")
            print(f"\npictures and report.json written to {args.report_dir}")
    _print_json({"accuracy": report["accuracy"], "count": report["count"],
                 "errors": int((predictions != split.labels).sum()), "loss": report["loss"],
                 "tta": args.tta, "models": 1 + len(args.ensemble)})


def _run(args: argparse.Namespace, config: TrainConfig) -> None:
    if args.command == "train":
        from hdr_jax.train import train_and_evaluate

        result = train_and_evaluate(config, progress=not args.no_progress,
                                    command=shlex.join(["python", *sys.argv]))
        _print_json({k: v for k, v in result.items() if isinstance(v, int | float)})
    elif args.command == "export":
        from hdr_jax import evaluate

        if not args.out:
            raise ConfigError("--out is required: where to write the inference checkpoint")
        summary = evaluate.export(args.workdir or "workdir", args.out, args.data_dir,
                                  args.select, args.batch_stats)
        _print_json({"exported": args.out, "step": summary["selected_step"],
                     "batch_stats": args.batch_stats, "val_accuracy": summary["val_accuracy"],
                     "val_loss": summary["val_loss"],
                     "accuracy": summary["test_accuracy"],
                     "browser_model": summary["browser_model"]})
    else:
        _evaluate(args)


def _user_errors() -> tuple[type[Exception], ...]:
    """The project's own error types: bad flags, data, devices, checkpoints, divergence."""
    from hdr_jax import data, parallel
    from hdr_jax.checkpoint import CheckpointError
    from hdr_jax.train import TrainingDiverged

    return (ConfigError, data.DataError, parallel.ParallelError, CheckpointError,
            TrainingDiverged)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
        _set_up_jax(args, config)
        _run(args, config)
    except Exception as e:
        if not isinstance(e, _user_errors()):
            raise  # A bug of ours: the traceback is what a maintainer needs.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    code = main()
    if code:  # One line of error printed: leave before the interpreter's teardown, where
        # orbax's abandoned reads of a corrupt checkpoint can print "Exception ignored" tracebacks.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
