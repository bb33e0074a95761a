"""Inference throughput of the shipped model: images/s at batch 1 and batch 1000 (the model
call alone, preprocessed 28x28 input, the serving `Predictor` with its fixed buckets).

  python bench/inference_throughput.py [--checkpoint checkpoints/alexnet-mnist]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import header, median_rate  # noqa: E402
from hdr_jax.inference import Predictor  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default="checkpoints/alexnet-mnist")
    args = p.parse_args()
    header("inference throughput of the shipped model")
    predictor = Predictor.from_checkpoint(args.checkpoint)
    predictor.warmup()
    rng = np.random.default_rng(0)
    for batch, calls in ((1, 200), (128, 20), (1000, 5)):
        images = rng.random((batch, 28, 28), np.float32)
        rate = median_rate(lambda images=images: predictor.predict(images), batch, calls, 5)
        print(f"  batch {batch:>5}: {rate:9.0f} images/s  ({1000 * batch / rate:.2f} ms/call)")


if __name__ == "__main__":
    main()
