"""Overhead of the mesh strategy on 1, 2, 4 and 8 emulated CPU devices at the same global batch
(the same two cores do all the work, so this measures partitioning and collectives cost).

  python bench/mesh_overhead.py [--batch 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", 8)  # before JAX starts
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import header, median_rate, train_stepper  # noqa: E402
from hdr_jax import parallel  # noqa: E402
from hdr_jax.config import TrainConfig  # noqa: E402


def stepper(strategy, batch: int):
    rng = np.random.default_rng(0)
    step = train_stepper(strategy, TrainConfig(batch_size=batch),
                         rng.integers(0, 255, (batch * 8, 28, 28), np.uint8),
                         rng.integers(0, 10, batch * 8).astype(np.int32))
    blocking = lambda: jax.block_until_ready(step())
    blocking()
    return blocking


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args()
    header(f"mesh strategy overhead, global batch {args.batch}")
    variants = {f"mesh x{n}": stepper(parallel.MeshStrategy(devices=jax.devices()[:n]),
                                      args.batch) for n in (1, 2, 4, 8)}
    variants["pmap x8"] = stepper(parallel.PmapStrategy(devices=jax.devices()[:8]), args.batch)
    rates = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            rates[name].append(median_rate(fn, args.batch, args.steps, 1))
    base = float(np.median(rates["mesh x1"]))
    for name, r in rates.items():
        rate = float(np.median(r))
        print(f"  {name:<10} {rate:8.0f} img/s   {rate / base:5.2f}x of 1 device")


if __name__ == "__main__":
    main()
