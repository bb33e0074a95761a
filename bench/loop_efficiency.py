"""How much of the bare training step's throughput the real training loop keeps.

The loop is `train.train_and_evaluate` itself (chunks of steps per dispatch, metric reads,
checkpoints, progress bar), timed from its own per-epoch records, epochs after the first (the
first compiles). The bare step is the same compiled step, gathering from the same full dataset
on the same devices, dispatched back to back with one wait at the end.

  python bench/loop_efficiency.py [--width W] [--batch-size B] [--strategy mesh|pmap]
                                  [--data-dir DIR] [--train-limit N] [--epochs E]
                                  [--trace FOLDER] [--all-baselines] [--variants]

Ends with one JSON line: {"loop_images_per_s", "step_images_per_s", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scaled_model(width: float):
    from hdr_jax.config import ModelConfig

    base = ModelConfig()
    return dataclasses.replace(
        base, conv_features=tuple(max(1, round(c * width)) for c in base.conv_features),
        dense_features=max(1, round(base.dense_features * width)))


def synthetic_dataset(n_train: int = 60_000, n_test: int = 10_000, seed: int = 0):
    """Random images with random labels: the right shapes and dtypes, for timing only."""
    import numpy as np

    from hdr_jax import data

    rng = np.random.default_rng(seed)
    split = lambda n: data.Split(rng.integers(0, 256, (n, 28, 28), np.uint8),
                                 rng.integers(0, 10, n).astype(np.int32))
    return data.Mnist(split(n_train), split(n_test), "synthetic")


def bare_step_rate(strategy, config, dataset, steps: int, in_flight: int = 1,
                   length: int = 1) -> float:
    """Images/s of the compiled step dispatched `steps` times back to back (each dispatch
    `length` steps in one `lax.scan`, as the loop's chunks), waiting only for the dispatch
    `in_flight` back: by default for the one before the one just queued (XLA:CPU's emulated
    devices run slower, and can deadlock in their collectives, with many steps queued)."""
    import collections

    import jax

    from bench.common import train_stepper
    from hdr_jax import data

    train_split, _ = data.training_splits(dataset, config)
    step = train_stepper(strategy, config, train_split.images, train_split.labels, length)
    for _ in range(3):  # Compile; pmap compiles again once its own outputs come back in.
        jax.block_until_ready(step())
    queued = collections.deque()
    start = time.perf_counter()
    for _ in range(steps):
        queued.append(step())
        if len(queued) > in_flight:
            jax.block_until_ready(queued.popleft())
    jax.block_until_ready(list(queued))
    return steps * length * config.batch_size / (time.perf_counter() - start)


def loop_rate(strategy, config, dataset) -> float:
    """Median images/s of the real loop's epochs after the first. (Reads metrics.jsonl itself,
    so that `--loop-only` also times the loop of an earlier commit.)"""
    from hdr_jax.train import train_and_evaluate

    with tempfile.TemporaryDirectory() as workdir:
        config = dataclasses.replace(config, workdir=workdir)
        train_and_evaluate(config, dataset, progress=False, strategy=strategy)
        lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return statistics.median(json.loads(line)["images_per_second"] for line in lines[1:])


def measure(strategy_name: str, config, dataset, steps: int,
            all_baselines: bool | None = None) -> dict:
    """Loop and bare step on the same devices, the bare step measured on either side of the
    loop so that a drift of the machine shows in the ratio's range, not in its value. On an
    accelerator the bare step is also timed with every step queued before one wait at the
    end (`step_queued_images_per_s`, the device's own pace and the stricter baseline), and so
    are the loop's chunks of steps (`chunk_queued_images_per_s`: what one `lax.scan` of that
    many steps costs against the same steps dispatched one by one)."""
    import jax

    from hdr_jax import parallel

    strategy = parallel.make_strategy(strategy_name)
    parallel.check_batch(config.batch_size, strategy.num_devices)
    before = bare_step_rate(strategy, config, dataset, steps)
    loop = loop_rate(strategy, config, dataset)
    after = bare_step_rate(strategy, config, dataset, steps)
    step = (before + after) / 2
    chunk = parallel.steps_per_dispatch(config.steps_per_dispatch, strategy)
    out = {"loop_images_per_s": round(loop), "step_images_per_s": round(step),
           "ratio": round(loop / step, 3), "step_before_after": [round(before), round(after)],
           "strategy": strategy_name, "batch_size": config.batch_size,
           "steps_per_dispatch": chunk,
           "chunks_in_flight": parallel.chunks_in_flight(chunk, strategy),
           "devices": strategy.num_devices, "device": jax.devices()[0].device_kind}
    if all_baselines is None:  # By default on accelerators only (see bare_step_rate).
        all_baselines = not parallel.on_cpu(strategy)
    if all_baselines:
        queued = bare_step_rate(strategy, config, dataset, steps, in_flight=steps)
        out.update(step_queued_images_per_s=round(queued), ratio_queued=round(loop / queued, 3))
        if chunk > 1:
            dispatches = max(1, steps // chunk)
            out["chunk_queued_images_per_s"] = round(bare_step_rate(
                strategy, config, dataset, dispatches, in_flight=dispatches, length=chunk))
    return out


def loop_variants(strategy_name: str, config, dataset, longer: int = 5) -> dict:
    """The real loop as configured and with what could cost it time between chunks taken
    away, one at a time and both: its mid-epoch checkpoints, and 4 of every 5 dispatches
    (chunks `longer` times as long). Where the loop falls short of its chunks queued bare,
    these say which part of it is to blame."""
    from hdr_jax import parallel

    strategy = parallel.make_strategy(strategy_name)
    chunk = parallel.steps_per_dispatch(config.steps_per_dispatch, strategy)
    never = dict(checkpoint_every_steps=10**9)
    longer_chunks = dict(steps_per_dispatch=chunk * longer)
    variants = {"as configured": {}, "without mid-epoch checkpoints": never,
                f"chunks of {chunk * longer} steps": longer_chunks,
                f"chunks of {chunk * longer} steps, without mid-epoch checkpoints":
                    {**never, **longer_chunks}}
    return {name: round(loop_rate(strategy, dataclasses.replace(config, **changes), dataset))
            for name, changes in variants.items()}


def trace_loop(strategy_name: str, config, dataset, folder: str | Path) -> dict:
    """The real loop (2 epochs of at most 120 steps, so the trace stays a few MB) under
    `jax.profiler`, and what the trace says: the share of the time between the device's first
    and last kernel that it was busy, and its longest idle gaps. The Perfetto trace is copied
    to `folder/loop_trace.json.gz` (ui.perfetto.dev)."""
    import shutil

    import jax

    from hdr_jax import parallel

    folder = Path(folder)
    strategy = parallel.make_strategy(strategy_name)
    with tempfile.TemporaryDirectory() as raw:
        with jax.profiler.trace(raw, create_perfetto_trace=True):
            limit = min(config.train_limit or len(dataset.train), 120 * config.batch_size)
            loop_rate(strategy, dataclasses.replace(config, epochs=2, train_limit=limit),
                      dataset)
        trace = max(Path(raw).rglob("perfetto_trace.json.gz"), key=lambda f: f.stat().st_mtime)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(trace, folder / "loop_trace.json.gz")
    return device_busy(folder / "loop_trace.json.gz")


PAUSE_US = 100_000


def device_busy(trace: Path) -> dict:
    """Busy share and idle gaps of the device streams in a Perfetto/Chrome trace, over the
    whole window and without the pauses over 100 ms (compiling, evaluating)."""
    import gzip

    with gzip.open(trace) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    devices = {e["pid"] for e in events if e.get("ph") == "M" and e.get("name") ==
               "process_name" and e["args"]["name"].startswith("/device:")}
    spans = sorted((e["ts"], e["ts"] + e.get("dur", 0)) for e in events
                   if e.get("ph") == "X" and e["pid"] in devices)
    if not spans:
        return {"device_events": 0}
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    window = merged[-1][1] - merged[0][0]
    busy = sum(b - a for a, b in merged)
    gaps = sorted((b[0] - a[1] for a, b in itertools.pairwise(merged)), reverse=True)
    # Gaps over 100 ms are compilation or evaluation, not the loop between two steps.
    pauses = sum(g for g in gaps if g > PAUSE_US)
    return {"device_events": len(spans), "window_ms": round(window / 1e3, 1),
            "device_busy": round(busy / window, 3),
            "device_busy_between_pauses": round(busy / (window - pauses), 3),
            "largest_gaps_ms": [round(g / 1e3, 2) for g in gaps[:5]],
            "gaps_over_100us": sum(g > 100 for g in gaps)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--strategy", choices=["mesh", "pmap"], default="mesh")
    p.add_argument("--data-dir", help="real MNIST IDX files (default: random images)")
    p.add_argument("--train-limit", type=int, help="train on the first N images only")
    p.add_argument("--epochs", type=int, default=3, help="loop epochs (the first is not timed)")
    p.add_argument("--steps", type=int, default=200, help="bare-step dispatches timed")
    p.add_argument("--steps-per-dispatch", type=int, default=0,
                   help="steps per dispatch in the loop (0: the loop's own choice)")
    p.add_argument("--loop-only", action="store_true",
                   help="time the loop alone (works on earlier commits' code too)")
    p.add_argument("--library", help="import hdr_jax from this checkout (with --loop-only: "
                                     "the loop of an earlier commit, e.g. a git worktree)")
    p.add_argument("--cpu-devices", type=int, help="emulated CPU devices (default: as train.py)")
    p.add_argument("--all-baselines", action="store_true",
                   help="also on CPUs: every step queued and the chunks queued (accelerators "
                        "always)")
    p.add_argument("--variants", action="store_true",
                   help="also time the loop without mid-epoch checkpoints and with 5x longer "
                        "chunks (loop_variants)")
    p.add_argument("--trace", help="also trace 2 epochs of the loop with jax.profiler into this "
                                   "folder and summarise the device's busy time")
    args = p.parse_args()
    if args.library:
        sys.path.insert(0, str(Path(args.library).resolve()))
    import jax

    from hdr_jax import parallel

    # Set directly (not through parallel.use_cpu_devices) so that --library may name code
    # from before that helper existed.
    jax.config.update("jax_num_cpu_devices", args.cpu_devices or parallel.cpu_device_count(
        os.cpu_count() or 1, args.batch_size))
    from bench.common import header
    from hdr_jax import data
    from hdr_jax.config import TrainConfig

    header(f"loop efficiency: {args.strategy}, batch {args.batch_size}, width {args.width}, "
           f"hdr_jax from {Path(parallel.__file__).parents[1]}")
    dataset = data.load_mnist(args.data_dir) if args.data_dir else synthetic_dataset()
    overrides = {"steps_per_dispatch": args.steps_per_dispatch} if args.steps_per_dispatch \
        else {}  # Code from before that field existed has no such argument.
    config = TrainConfig(batch_size=args.batch_size, epochs=args.epochs, validation_size=0,
                         train_limit=args.train_limit, model=scaled_model(args.width),
                         **overrides)
    if args.loop_only:
        strategy = parallel.make_strategy(args.strategy)
        print(json.dumps({"loop_images_per_s": round(loop_rate(strategy, config, dataset))}))
        return
    if args.trace:
        print(json.dumps(trace_loop(args.strategy, config, dataset, args.trace)), flush=True)
    if args.variants:
        print(json.dumps({"loop_variants_images_per_s": loop_variants(
            args.strategy, config, dataset)}), flush=True)
    print(json.dumps(measure(args.strategy, config, dataset, args.steps,
                             args.all_baselines or None)), flush=True)


if __name__ == "__main__":
    main()
