"""Data-parallel scaling on paper: what one step all-reduces, and what that predicts for N
devices from the single-device step throughput at each per-device batch.

The mesh strategy all-reduces the gradients once per step (parameters x 4 bytes; BatchNorm's
batch statistics add a few KiB). A ring all-reduce moves 2 (N-1)/N of that through each
device's link; with the per-device batch fixed (weak scaling), N devices run N times the
images per step at the cost of that transfer plus the collective's latency.

  python bench/scaling.py                                   # measures the step here
  python bench/scaling.py --rates 128:147000 1024:416000 --link-gbps 450 --devices 8
                                                            # figures from another device
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def allreduce_bytes() -> int:
    """Bytes all-reduced per step: every parameter (float32) and the BatchNorm batch moments."""
    import jax
    from flax import nnx

    from hdr_jax.config import ModelConfig
    from hdr_jax.model import create_model

    model = create_model(ModelConfig())
    params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    stats = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.BatchStat)))
    return 4 * (params + stats)


def predict(rates: dict[int, float], volume: int, devices: int, link_gbps: float,
            latency_us: float) -> list[dict]:
    """Per per-device batch: step time, all-reduce time, and predicted N-device images/s."""
    ring = 2 * (devices - 1) / devices * volume
    comm = ring / (link_gbps * 1e9) + latency_us * 1e-6
    rows = []
    for batch, rate in sorted(rates.items()):
        step = batch / rate
        rows.append({"per_device_batch": batch, "step_ms": 1e3 * step, "allreduce_ms": 1e3 * comm,
                     "efficiency": step / (step + comm),
                     "images_per_s": devices * batch / (step + comm)})
    return rows


def measured_rates(batches: list[int], steps: int,
                   compute_dtype: str = "float32") -> dict[int, float]:
    """The bare training step's images/s on one device, by batch (synthetic images)."""
    import dataclasses

    import jax

    from bench.loop_efficiency import bare_step_rate, synthetic_dataset
    from hdr_jax import parallel
    from hdr_jax.config import TrainConfig

    dataset = synthetic_dataset(max(batches) * 4, 16)
    strategy = parallel.MeshStrategy(devices=jax.devices()[:1])
    model = dataclasses.replace(TrainConfig().model, compute_dtype=compute_dtype)
    return {b: bare_step_rate(strategy, TrainConfig(batch_size=b, validation_size=0, model=model),
                              dataset, steps) for b in batches}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rates", nargs="+", metavar="BATCH:IMAGES_PER_S",
                   help="single-device bare-step throughput by batch (default: measure here)")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--devices", type=int, default=8)
    p.add_argument("--link-gbps", type=float, default=450.0,
                   help="per-device all-reduce bandwidth, GB/s (H100/H200 NVLink: ~450 each "
                        "way; TPU v5e ICI: ~200; 100 GbE: ~12)")
    p.add_argument("--latency-us", type=float, default=30.0,
                   help="fixed cost of one small all-reduce")
    args = p.parse_args()
    from bench.common import header

    header(f"data-parallel scaling on paper: {args.devices} devices, {args.link_gbps} GB/s")
    volume = allreduce_bytes()
    print(f"  all-reduced per step: {volume:,} bytes ({volume / 2**20:.2f} MiB); ring traffic "
          f"per device: {2 * (args.devices - 1) / args.devices * volume / 2**20:.2f} MiB")
    if args.rates:
        rates = {int(b): float(r) for b, r in (x.split(":") for x in args.rates)}
    else:
        rates = measured_rates(args.batches, args.steps)
    print(f"  {'batch/device':>12} {'1-device img/s':>15} {'step ms':>8} {'all-reduce ms':>14} "
          f"{'efficiency':>10} {args.devices}-device img/s")
    for row in predict(rates, volume, args.devices, args.link_gbps, args.latency_us):
        b = row["per_device_batch"]
        print(f"  {b:>12} {rates[b]:>15,.0f} {row['step_ms']:>8.2f} {row['allreduce_ms']:>14.3f} "
              f"{row['efficiency']:>10.1%} {row['images_per_s']:,.0f}")


if __name__ == "__main__":
    main()
