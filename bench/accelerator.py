"""Everything a lent accelerator session measures, in one run (about 5 minutes on one GPU):

1. versions and the device;
2. loop efficiency, mesh and pmap (`bench/loop_efficiency.py`): the real loop vs the bare step;
3. time to 99.0% / 99.5% test accuracy of the `fast` and `default` presets, each run as a user
   runs it (`python train.py --preset NAME`), the fast one twice: with an empty persistent
   compilation cache (cold) and again with it filled (warm);
4. the same architecture's PyTorch step on the same device (when PyTorch is installed);
5. optionally the fast test suite on this machine (`--pytest`).

It prints a dated Markdown section for BENCHMARKS.md (and appends it with `--append FILE`).

  python bench/accelerator.py --data-dir DIR [--append BENCHMARKS.md] [--pytest]
  python bench/accelerator.py --smoke    # end to end on tiny random data (any CPU, ~2 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import subprocess_env  # noqa: E402

SMOKE_FLAGS = ["--train-limit", "1024", "--width", "0.25", "--epochs", "2",
               "--validation-size", "256", "--batch-size", "64", "--eval-batch-size", "512"]


def versions() -> dict:
    import flax
    import jax
    import optax
    import orbax.checkpoint as ocp

    out = {"python": platform.python_version(), "jax": jax.__version__,
           "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "?",
           "flax": flax.__version__, "optax": optax.__version__, "orbax": ocp.__version__,
           "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
           "devices": jax.device_count()}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def time_to_accuracy(preset: str, data_dir: str, cache: str, extra: list[str]) -> dict:
    """Runs `train.py --preset` in a fresh process; per-epoch training seconds and test
    accuracy from its metrics.jsonl; the seconds of training up to the first epoch reaching
    99.0% and 99.5% (None if none does)."""
    with tempfile.TemporaryDirectory() as workdir:
        env = subprocess_env()
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--preset", preset,
                               "--data-dir", data_dir, "--workdir", workdir,
                               "--compilation-cache", cache, "--no-progress", *extra],
                              env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"train.py --preset {preset} failed:\n{proc.stderr[-3000:]}")
        records = [json.loads(line) for line in
                   (Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    elapsed, out = 0.0, {"preset": preset, "process_seconds": round(wall, 1),
                         "first_epoch_seconds": round(records[0]["seconds"], 2),
                         "epoch_seconds": round(sorted(r["seconds"] for r in records)[
                             len(records) // 2], 3),
                         "final_test_accuracy": records[-1]["test_accuracy"],
                         "epochs": len(records)}
    for r in records:
        elapsed += r["seconds"]
        for target in (0.99, 0.995):
            key = f"to_{target:.1%}"
            if key not in out and r["test_accuracy"] >= target:
                out[key] = {"seconds": round(elapsed, 2), "epoch": r["epoch"]}
    return out


def torch_rate(batch: int, steps: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    from bench.common import median_rate
    from bench.train_throughput import torch_stepper

    device = "cuda" if torch.cuda.is_available() else "cpu"
    step, _, _ = torch_stepper(batch, device)
    return median_rate(step, batch, steps, 3)


def run_pytest() -> str:
    env = subprocess_env()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not slow and not browser",
                           "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else f"pytest exited {proc.returncode}"


def markdown(facts: dict) -> str:
    v = facts["versions"]
    lines = [f"## Accelerator run: {v['device']} ({datetime.date.today().isoformat()})", "",
             f"`python bench/accelerator.py {' '.join(facts['argv'])}` | "
             + ", ".join(f"{k} {val}" for k, val in v.items()), "",
             "| what | figure |", "| --- | --- |"]
    for eff in facts["loop"]:
        lines.append(f"| loop / bare step, {eff['strategy']}, batch {eff['batch_size']}, "
                     f"{eff['steps_per_dispatch']} steps per dispatch | "
                     f"{eff['loop_images_per_s']:,} / {eff['step_images_per_s']:,} images/s = "
                     f"**{eff['ratio']:.2f}** |")
    for row in facts["scaling"]:
        one = row["per_device_batch"] / row["step_ms"] * 1e3
        lines.append(f"| bare step, batch {row['per_device_batch']}, one device -> 8 on paper "
                     f"(450 GB/s, `bench/scaling.py`) | {one:,.0f} -> "
                     f"{row['images_per_s']:,.0f} images/s ({row['efficiency']:.0%}) |")
    for run in facts["runs"]:
        for target in ("99.0%", "99.5%"):
            hit = run.get(f"to_{target}")
            lines.append(f"| {run['label']}: training time to {target} test | "
                         + (f"{hit['seconds']} s (epoch {hit['epoch']})" if hit else
                            f"not reached (final {run['final_test_accuracy']:.2%})") + " |")
        lines.append(f"| {run['label']}: process / first epoch / median epoch | "
                     f"{run['process_seconds']} s / {run['first_epoch_seconds']} s / "
                     f"{run['epoch_seconds']} s |")
    if facts.get("torch_images_per_s"):
        jax_step = facts["loop"][0]["step_images_per_s"]
        lines.append(f"| PyTorch eager step, same architecture, batch "
                     f"{facts['loop'][0]['batch_size']} | {facts['torch_images_per_s']:,.0f} "
                     f"images/s (JAX bare step {jax_step / facts['torch_images_per_s']:.2f}x) |")
    if facts.get("pytest"):
        lines.append(f"| fast test suite here | {facts['pytest']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("HDR_DATA_DIR"))
    p.add_argument("--smoke", action="store_true", help="tiny random data: checks it all runs")
    p.add_argument("--append", help="append the Markdown section to this file")
    p.add_argument("--pytest", action="store_true", help="also run the fast test suite")
    args = p.parse_args()
    argv = sys.argv[1:]

    from hdr_jax import parallel

    parallel.use_cpu_devices(parallel.cpu_device_count(os.cpu_count() or 1, 64))
    from bench import loop_efficiency as le
    from bench import scaling
    from hdr_jax import data
    from hdr_jax.config import TrainConfig

    facts: dict = {"argv": argv, "versions": versions()}
    print(json.dumps(facts["versions"]), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir
        if args.smoke:
            data_dir = str(data.write_idx_dir(Path(scratch) / "data",
                                              le.synthetic_dataset(2048, 512)))
        elif not data_dir:
            raise SystemExit("error: --data-dir (or $HDR_DATA_DIR) is required; --smoke runs "
                             "on random images")
        dataset = data.load_mnist(data_dir)
        batch, width, steps = (64, 0.25, 20) if args.smoke else (128, 1.0, 300)
        config = TrainConfig(batch_size=batch, epochs=3, validation_size=0,
                             train_limit=1024 if args.smoke else None,
                             model=le.scaled_model(width))
        # Each strategy with the loop's own steps per dispatch, and mesh with one step per
        # dispatch too: which is faster on this device decides the `auto` default.
        single = dataclasses.replace(config, steps_per_dispatch=1)
        facts["loop"] = [le.measure("mesh", config, dataset, steps),
                         le.measure("pmap", config, dataset, steps),
                         le.measure("mesh", single, dataset, steps)]
        print(json.dumps(facts["loop"]), flush=True)
        rates = scaling.measured_rates([32, 64] if args.smoke else [128, 512, 1024, 2048], 20)
        facts["scaling"] = scaling.predict(rates, scaling.allreduce_bytes(), 8, 450.0, 30.0)
        print(json.dumps(facts["scaling"]), flush=True)
        extra = SMOKE_FLAGS if args.smoke else []
        cache = str(Path(scratch) / "xla-cache")
        runs = [("fast preset, cold compilation cache", "fast"),
                ("fast preset, warm compilation cache", "fast"), ("default preset", "default")]
        facts["runs"] = []
        for label, preset in runs:
            run = {"label": label, **time_to_accuracy(preset, data_dir, cache, extra)}
            print(json.dumps(run), flush=True)
            facts["runs"].append(run)
    facts["torch_images_per_s"] = torch_rate(batch, steps)
    if args.pytest:
        facts["pytest"] = run_pytest()
    section = markdown(facts)
    print("\n" + section)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + section)


if __name__ == "__main__":
    main()
