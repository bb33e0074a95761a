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


def header(title: str) -> None:
    print(f"# {title}\n# {datetime.datetime.now():%Y-%m-%d %H:%M} | {machine()}", flush=True)


def median_rate(fn, items_per_call: int, calls: int, repeats: int) -> float:
    """Median over `repeats` of items/s for `calls` calls of `fn` (fn blocks until done)."""
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(items_per_call * calls / (time.perf_counter() - t))
    return statistics.median(rates)
