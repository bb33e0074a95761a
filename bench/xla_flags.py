"""Which XLA CPU flags speed up the training step? Each flag set runs the real step in a fresh
process (XLA reads XLA_FLAGS at start-up); PyTorch runs between them as the yardstick.

  python bench/xla_flags.py [--batch 128] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import header, median_rate  # noqa: E402

FLAG_SETS = {  # name -> (XLA_FLAGS, emulated CPU devices in the mesh)
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn custom calls": ("--xla_cpu_use_onednn=true "
                            "--xla_cpu_experimental_onednn_custom_call=true"),
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "fast math": "--xla_cpu_enable_fast_math=true",
    "legacy runtime": "--xla_cpu_use_thunk_runtime=false",
    "mesh of 2 devices": "",
    "mesh of 4 devices": "",
    "mesh of 8 devices": "",
}
DEVICES = {"mesh of 2 devices": 2, "mesh of 4 devices": 4, "mesh of 8 devices": 8}


def jax_rate(flags: str, batch: int, devices: int = 1) -> float:
    env = {**os.environ, "XLA_FLAGS": flags}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "train_throughput.py"),
                          "--jax-only", "--batch-sizes", str(batch), "--repeats", "3",
                          "--steps", "8", "--cpu-devices", str(devices)],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return float("nan")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    header(f"XLA CPU flags, training step images/s at batch {args.batch}")
    from bench.train_throughput import torch_stepper

    torch_step, _, _ = torch_stepper(args.batch)
    rates = {k: [] for k in FLAG_SETS}
    torch_rates = []
    for _ in range(args.rounds):
        for name, flags in FLAG_SETS.items():
            rates[name].append(jax_rate(flags, args.batch, DEVICES.get(name, 1)))
            torch_rates.append(median_rate(torch_step, args.batch, 8, 1))
    torch_rate = statistics.median(torch_rates)
    print(f"  {'pytorch':<22}{torch_rate:8.0f} img/s")
    for name, r in rates.items():
        rate = statistics.median(r)
        print(f"  {name:<22}{rate:8.0f} img/s  {rate / torch_rate:5.2f}x pytorch   "
              f"{FLAG_SETS[name]}")


if __name__ == "__main__":
    main()
