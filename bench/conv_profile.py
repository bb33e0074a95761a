"""Where the training-step gap to PyTorch comes from: each conv layer of the default model at
batch 128, forward, gradient w.r.t. the input and w.r.t. the kernel, XLA (jax.jit) vs PyTorch
(oneDNN), interleaved in one run. Plus the whole step's forward and backward.

  python bench/conv_profile.py [--batch 128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import header  # noqa: E402
from hdr_jax.config import ModelConfig  # noqa: E402


def layer_shapes(config: ModelConfig) -> list[tuple[int, int, int]]:
    """(spatial size, in channels, out channels) of each conv."""
    shapes, h, c_in = [], 28, 1
    for i, c in enumerate(config.conv_features):
        shapes.append((h, c_in, c))
        c_in = c
        if i in (0, 1, 4):
            h = (h + 1) // 2
    return shapes


def ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(5):
            fn()
        times.append((time.perf_counter() - t) / 5)
    return statistics.median(times) * 1000


def profile_layer(b: int, h: int, c_in: int, c_out: int, repeats: int) -> list[tuple]:
    """[(pass, xla ms, torch ms)] for one conv layer."""
    import torch

    x = jax.random.normal(jax.random.key(0), (b, h, h, c_in))
    w = jax.random.normal(jax.random.key(1), (3, 3, c_in, c_out))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    # Backward passes only (a conv is linear: its gradients need no forward activations), with
    # the same random cotangent on both sides.
    g = jax.random.normal(jax.random.key(2), (b, h, h, c_out))
    fwd = jax.jit(conv)
    dx = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
    dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    tx = torch.randn(b, c_in, h, h, requires_grad=True)
    tconv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    ty = tconv(tx)
    tg = torch.from_numpy(np.asarray(g).transpose(0, 3, 1, 2).copy())

    def t_fwd():
        with torch.no_grad():
            tconv(tx)

    passes = (("forward", lambda: fwd(x, w).block_until_ready(), t_fwd),
              ("grad input", lambda: dx(x, w, g).block_until_ready(),
               lambda: torch.autograd.grad(ty, tx, tg, retain_graph=True)),
              ("grad kernel", lambda: dw(x, w, g).block_until_ready(),
               lambda: torch.autograd.grad(ty, tconv.weight, tg, retain_graph=True)))
    return [(label, ms(jf, repeats), ms(tf, repeats)) for label, jf, tf in passes]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    header(f"conv layers at batch {args.batch}: milliseconds (median), XLA vs PyTorch")
    print(f"  {'layer':<22}{'pass':<12}{'xla ms':>8}{'torch ms':>10}{'xla/torch':>11}")
    total = {"xla": 0.0, "torch": 0.0}
    for i, (h, c_in, c_out) in enumerate(layer_shapes(ModelConfig())):
        name = f"conv{i + 1} {h}x{h} {c_in}->{c_out}"
        for label, a, c in profile_layer(args.batch, h, c_in, c_out, args.repeats):
            total["xla"] += a
            total["torch"] += c
            print(f"  {name:<22}{label:<12}{a:8.2f}{c:10.2f}{a / c:11.2f}")
            name = ""
    print(f"  {'all conv passes':<34}{total['xla']:8.2f}{total['torch']:10.2f}"
          f"{total['xla'] / total['torch']:11.2f}")


if __name__ == "__main__":
    main()
