#!/usr/bin/env python
"""hdr-jax training and evaluation entry point. Parses flags, then calls the library.

  python train.py --data-dir DIR --workdir runs/a            # train (resumes if runs/a has state)
  python train.py evaluate --checkpoint checkpoints/alexnet-mnist --data-dir DIR
  python train.py export --workdir runs/a --out checkpoints/alexnet-mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from hdr_jax.config import TrainConfig

_FLAGS = {  # flag -> TrainConfig field
    "data_dir": str, "workdir": str, "epochs": int, "max_steps": int, "batch_size": int,
    "learning_rate": float, "weight_decay": float, "label_smoothing": float, "strategy": str,
    "seed": int, "validation_size": int, "train_limit": int, "eval_batch_size": int,
    "checkpoint_every_steps": int, "keep_checkpoints": int, "log_every_steps": int,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", nargs="?", default="train", choices=["train", "evaluate", "export"])
    for name, kind in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                       choices=["mesh", "pmap"] if name == "strategy" else None)
    p.add_argument("--dropout", type=float, default=None, help="model dropout rate")
    p.add_argument("--width", type=float, default=None, help="multiply the model's widths")
    p.add_argument("--no-augment", action="store_true", help="turn data augmentation off")
    p.add_argument("--elastic-alpha", type=float, default=None)
    p.add_argument("--checkpoint", help="evaluate: an inference checkpoint or a workdir")
    p.add_argument("--out", help="export: where to write the inference checkpoint")
    p.add_argument("--select", choices=["final", "best"], default="final",
                   help="export: the final checkpoint, or the best by validation accuracy")
    p.add_argument("--batch-stats", choices=["precise", "running"], default="precise",
                   help="export: re-estimate BatchNorm statistics on the clean training images "
                        "(precise BN), or keep the running averages from training")
    p.add_argument("--report-dir", help="evaluate: write report PNGs and JSON here")
    p.add_argument("--tta", action="store_true",
                   help="evaluate: average over the image and its 1-pixel shifts")
    p.add_argument("--ensemble", nargs="+", metavar="CHECKPOINT",
                   help="evaluate: average these models' probabilities with --checkpoint's")
    p.add_argument("--cpu-devices", type=int,
                   help="CPU devices to emulate (default: one per core; see BENCHMARKS.md)")
    p.add_argument("--coordinator-address", help="multi-process: host:port of process 0")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {k: getattr(args, k) for k in _FLAGS if getattr(args, k) is not None}
    config = dataclasses.replace(TrainConfig(), **overrides)
    model, aug = config.model, config.augment
    if args.dropout is not None:
        model = dataclasses.replace(model, dropout_rate=args.dropout)
    if args.width is not None:
        model = dataclasses.replace(
            model, conv_features=tuple(max(1, round(c * args.width)) for c in model.conv_features),
            dense_features=max(1, round(model.dense_features * args.width)))
    if args.no_augment:
        aug = dataclasses.replace(aug, enabled=False)
    if args.elastic_alpha is not None:
        aug = dataclasses.replace(aug, elastic_alpha=args.elastic_alpha)
    return dataclasses.replace(config, model=model, augment=aug)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    import jax

    # On a CPU host XLA runs one device's step with little parallelism across ops; one
    # emulated device per core runs the batch's shards side by side (1.25x here, and the same
    # numbers: results do not depend on the device count). Accelerator hosts are unaffected.
    jax.config.update("jax_num_cpu_devices", args.cpu_devices or os.cpu_count() or 1)
    from hdr_jax import cli

    try:
        from hdr_jax.parallel import initialize_distributed

        initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
        if args.command == "train":
            config = config_from_args(args)
            cli.record_command(config.workdir)
            return cli.train(config, progress=not args.no_progress)
        if args.command == "export":
            return cli.export(args.workdir or "workdir", args.out, args.data_dir, args.select,
                              args.batch_stats)
        return cli.evaluate(args.checkpoint, args.data_dir, args.report_dir, args.tta,
                            tuple(args.ensemble or ()))
    except cli.USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
