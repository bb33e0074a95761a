"""Training throughput (images/s) of the default model: JAX vs the same architecture in
PyTorch, measured interleaved in one run on this CPU, plus what the max-pool choice costs.

  python bench/train_throughput.py [--batch-sizes 128 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from bench.common import header, median_rate, train_stepper  # noqa: E402
from hdr_jax import model as model_lib  # noqa: E402
from hdr_jax import parallel  # noqa: E402
from hdr_jax.config import AugmentConfig, TrainConfig  # noqa: E402


def jax_stepper(batch: int, augment: bool, pool: str, devices: int = 1):
    """One compiled step of the real training code on a mesh of `devices` devices."""
    original_pool = nnx.max_pool
    if pool == "strided":  # Ablation: max-pool as the max of 9 strided views (no
        # select-and-scatter in the gradient); 5x faster alone, slower inside the whole step.
        nnx.max_pool = lambda x, *args, **kwargs: strided_max_pool(x)
    config = TrainConfig(batch_size=batch, augment=AugmentConfig(enabled=augment))
    strategy = parallel.MeshStrategy(devices=jax.devices()[:devices])
    rng = np.random.default_rng(0)
    dispatch = train_stepper(strategy, config,
                             rng.integers(0, 255, (batch * 8, 28, 28), np.uint8),
                             rng.integers(0, 10, batch * 8).astype(np.int32))
    step = lambda: jax.block_until_ready(dispatch())
    step()  # Compiles with whichever pool is in place, then puts the original back.
    nnx.max_pool = original_pool
    return step


def strided_max_pool(x: jax.Array) -> jax.Array:
    """3x3/2 SAME max-pool as the max of 9 strided views of a -inf padded input."""
    h, w = x.shape[1:3]
    out_h, out_w = -(-h // 2), -(-w // 2)
    pad_h, pad_w = max((out_h - 1) * 2 + 3 - h, 0), max((out_w - 1) * 2 + 3 - w, 0)
    x = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2),
                    (0, 0)), constant_values=-jnp.inf)
    views = [x[:, i:i + 2 * out_h - 1:2, j:j + 2 * out_w - 1:2] for i in range(3)
             for j in range(3)]
    out = views[0]
    for v in views[1:]:
        out = jnp.maximum(out, v)
    return out


def torch_stepper(batch: int, device: str = "cpu"):
    """The same architecture in PyTorch (eager), one AdamW step per call, on `device`."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    cfg = TrainConfig().model
    layers, c_in = [], 1
    for i, c in enumerate(cfg.conv_features):
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        if i in (0, 1, 4):
            layers.append(nn.MaxPool2d(3, 2, padding=1))
        c_in = c
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(16 * c_in, cfg.dense_features),
                        nn.ReLU(), nn.Dropout(cfg.dropout_rate),
                        nn.Linear(cfg.dense_features, cfg.dense_features), nn.ReLU(),
                        nn.Dropout(cfg.dropout_rate), nn.Linear(cfg.dense_features, 10))
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=5e-4)
    x = torch.rand(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()
    return step, torch.get_num_threads(), torch.__version__


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--jax-only", action="store_true",
                   help="only the default JAX step (for bench/xla_flags.py)")
    p.add_argument("--cpu-devices", type=int, default=1,
                   help="with --jax-only: a mesh over this many emulated CPU devices")
    args = p.parse_args()
    if args.jax_only:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
        for batch in args.batch_sizes:
            step = jax_stepper(batch, False, "reduce_window", args.cpu_devices)
            print(f"{median_rate(step, batch, args.steps, args.repeats):.1f}")
        return
    header("training throughput, images/s (median of repeats; interleaved)")
    print(f"jax {jax.__version__} | model {model_lib.flops_per_image(TrainConfig().model)/1e6:.1f}"
          " MFLOP/image forward")
    for batch in args.batch_sizes:
        torch_step, threads, version = torch_stepper(batch)
        variants = {
            "jax (no augmentation)": jax_stepper(batch, False, "reduce_window"),
            "jax (strided-views pool)": jax_stepper(batch, False, "strided"),
            "jax (with on-device augmentation)": jax_stepper(batch, True, "reduce_window"),
            f"pytorch {version} ({threads} threads)": torch_step,
        }
        rates = {k: [] for k in variants}
        for _ in range(args.repeats):  # Interleave so machine noise hits everyone alike.
            for name, fn in variants.items():
                rates[name].append(median_rate(fn, batch, args.steps, 1))
        torch_rate = float(np.median(rates[next(reversed(rates))]))
        print(f"\nbatch {batch}")
        for name, r in rates.items():
            rate = float(np.median(r))
            print(f"  {name:<42} {rate:8.0f} img/s   {rate / torch_rate:5.2f}x pytorch")


if __name__ == "__main__":
    main()
