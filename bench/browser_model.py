"""The browser's model (hdr_jax/browser.py) against the JAX model it was made from: agreement
on all 10,000 test digits, file size, and latency per digit (batch 1) on this CPU, JAX's
compiled predictor against onnxruntime's CPU provider (the in-browser figure needs the page).

  python bench/browser_model.py --data-dir DIR [--checkpoint checkpoints/alexnet-mnist]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import header  # noqa: E402
from hdr_jax import browser, data  # noqa: E402
from hdr_jax.inference import Predictor  # noqa: E402


def per_digit_ms(predict, images: np.ndarray, repeats: int = 200) -> float:
    for image in images[:10]:
        predict(image[None])
    start = time.perf_counter()
    for image in images[:repeats]:
        predict(image[None])
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--checkpoint", default="checkpoints/alexnet-mnist")
    args = p.parse_args()
    header("browser model (ONNX) against the JAX model")
    test = data.load_mnist(args.data_dir).test
    images = (test.images.astype(np.float32) / 255.0)[..., None]
    with tempfile.TemporaryDirectory() as tmp:
        path = browser.write_browser_model(args.checkpoint, Path(tmp) / "model.onnx")
        size = path.stat().st_size
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_probs = np.concatenate([session.run(None, {"images": images[i:i + 1000]})[0]
                                 for i in range(0, len(images), 1000)])
    predictor = Predictor.from_checkpoint(args.checkpoint)
    jax_probs = predictor.predict(images)
    digit = lambda probs: probs[:, :data.NUM_CLASSES].argmax(1)  # An 11th class is no digit.
    print(f"  file                {size / 2**20:.2f} MiB")
    print(f"  same digit          {np.mean(digit(onnx_probs) == digit(jax_probs)):.2%} "
          f"of {len(images)}")
    print(f"  largest difference  {np.abs(onnx_probs - jax_probs).max():.2e} (probability)")
    print(f"  test accuracy       JAX {np.mean(digit(jax_probs) == test.labels):.2%}, "
          f"ONNX {np.mean(digit(onnx_probs) == test.labels):.2%}")
    jax_ms = per_digit_ms(predictor.predict, images)
    onnx_ms = per_digit_ms(lambda x: session.run(None, {"images": x}), images)
    print(f"  per digit, batch 1  JAX {jax_ms:.2f} ms, onnxruntime {onnx_ms:.2f} ms "
          f"({onnx_ms / jax_ms:.2f}x)")


if __name__ == "__main__":
    main()
