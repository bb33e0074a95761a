"""Shared helpers for the benchmarks: machine facts and timing."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def use_library_from_argv(argv: list[str]) -> None:
    """With `--library DIR` on the command line, puts DIR first on sys.path, so that the
    `hdr_jax` imported after this call is that checkout's (before/after figures of a change:
    the inputs come from this checkout, the pipeline from that one). Call it before anything
    imports hdr_jax."""
    import sys
    from pathlib import Path

    if "--library" in argv[:-1]:
        sys.path.insert(0, str(Path(argv[argv.index("--library") + 1]).resolve()))


def subprocess_env(library: str | os.PathLike | None = None, **extra: str) -> dict:
    """The environment for a benchmark's child process: this checkout (or `library`, another
    checkout) first on PYTHONPATH, which the device machine needs passed on explicitly."""
    from pathlib import Path

    first = str(library or Path(__file__).resolve().parents[1])
    path = os.pathsep.join([first, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **extra}


def header(title: str) -> None:
    print(f"# {title}\n# {datetime.datetime.now():%Y-%m-%d %H:%M} | {machine()}", flush=True)


def train_stepper(strategy, config, images, labels, length: int = 1):
    """The real training step (`steps.train_step`, compiled by the strategy exactly as the loop
    compiles it) over `images`/`labels` on the strategy's devices: `step()` dispatches `length`
    steps as one call and returns their metrics without waiting for them."""
    import jax

    from hdr_jax.steps import create_train_state, make_optimizer, train_step

    steps_per_epoch = len(labels) // config.batch_size
    tx = make_optimizer(config, steps_per_epoch)
    graphdef, host = create_train_state(config, tx, strategy.bn_axis_name)
    fn = strategy.compile_train(lambda s, *a: train_step(graphdef, tx, config, s, *a),
                                config.batch_size, steps_per_epoch)
    on_device = strategy.replicate((images, labels))
    perm = strategy.permutation(jax.random.key(0), len(labels))
    holder = {"state": strategy.replicate(host)}

    def step():
        holder["state"], metrics = fn(holder["state"], *on_device, perm, length)
        return metrics

    return step


def median_rate(fn, items_per_call: int, calls: int, repeats: int) -> float:
    """Median over `repeats` of items/s for `calls` calls of `fn` (fn blocks until done)."""
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(items_per_call * calls / (time.perf_counter() - t))
    return statistics.median(rates)
