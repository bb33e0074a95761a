"""Does a model that has seen touching digits as "no digit" read written numbers better?

Most numbers the tuning generator makes are lost where two digits touch: the model reads the
pair as one sure digit (`hard_numbers.py --misses`). This trains the default recipe for
`--epochs` epochs from the same seed on each of `--variants`: `mnist`; `pairs`, MNIST plus
`--pairs` pairs of training digits pushed into each other (8-16 pixels of overlap), brought
to MNIST format as the number reader brings a span, labelled "no digit" (a uniform target,
`steps.class_targets`); `spans`, MNIST plus `--line-spans` spans of written lines of training
digits cut by the reader itself, each labelled with the digit it holds or "no digit"
(`hdr_jax/spans.py`, the `--line-spans` training option); `parts`, the same with the spans
that hold part of one digit labelled "no digit" too, and the reader cutting pieces evenly
from 0.3 line heights per digit instead of 0.45 (halves of digits offered, and doubted),
while it trains and while it reads; `strokes`, the `spans` examples cut and read along the
strokes (`preprocess.FOLLOW_STROKES`). Each is exported as we ship models and reads the tuning
generator's numbers (the report set stays closed) and the test set.

  python bench/pair_doubt.py --data-dir DIR [--epochs 6]
      [--variants mnist pairs spans parts strokes]
      [--pairs 6000] [--line-spans 12000] [--numbers 500]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def touching_pairs(train, n: int, seed: int = 0) -> np.ndarray:
    """`n` pairs of training digits overlapping by 8-16 pixels, each as one 28x28 uint8
    image the way the number reader would see the pair as one digit."""
    from hdr_jax import preprocess

    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    for k in range(n):
        a, b = train.images[rng.integers(0, len(train), 2)]
        dx = int(rng.integers(12, 21))  # b starts dx pixels after a: 8-16 pixels shared.
        canvas = np.zeros((28, 28 + dx), np.float32)
        canvas[:, :28] = a
        canvas[:, dx:] = np.maximum(canvas[:, dx:], b)
        out[k] = np.round(preprocess.to_mnist(canvas / 255.0) * 255).astype(np.uint8)
    return out


@contextlib.contextmanager
def parts_as_no_digit():
    """The `parts` variant: part of one digit is "no digit", and halves of digits are offered."""
    from hdr_jax import preprocess, spans

    label = spans.span_label

    def with_parts(left, right, placed):
        which = label(left, right, placed)
        inside = [spans.ink_between(left, right, *digit) / digit[2].sum() for digit in placed]
        return spans.NO_DIGIT if which is None and sorted(inside)[-2] < 0.1 else which

    with mock.patch.object(spans, "span_label", with_parts), \
            mock.patch.object(preprocess, "SPACED_FROM", 0.3):
        yield


def variant_context(variant: str) -> contextlib.AbstractContextManager:
    from hdr_jax import preprocess

    if variant == "parts":
        return parts_as_no_digit()
    if variant == "strokes":
        return mock.patch.object(preprocess, "FOLLOW_STROKES", True)
    return contextlib.nullcontext()


def train_and_export(dataset, epochs: int, data_dir: str, out: Path, line_spans: int = 0
                     ) -> float:
    from hdr_jax.config import TrainConfig
    from hdr_jax.evaluate import export
    from hdr_jax.train import train_and_evaluate

    workdir = out.parent / (out.name + "-run")
    config = TrainConfig(epochs=epochs, validation_size=0, workdir=str(workdir),
                         data_dir=data_dir, line_spans=line_spans)
    train_and_evaluate(config, dataset, progress=False)
    return export(workdir, out, data_dir)["test_accuracy"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--pairs", type=int, default=6000)
    p.add_argument("--line-spans", type=int, default=12000)
    p.add_argument("--variants", nargs="+",
                   choices=["mnist", "pairs", "spans", "parts", "strokes"],
                   default=["mnist", "pairs", "spans"])
    p.add_argument("--keep", help="keep the exported models in this folder")
    p.add_argument("--numbers", type=int, default=500)
    args = p.parse_args()
    from hdr_jax import parallel

    parallel.use_cpu_devices(parallel.cpu_device_count(os.cpu_count() or 1, 128))
    from bench.common import header
    from bench.hard_numbers import TUNING_DIGITS, failure_kinds, make_numbers
    from hdr_jax import data
    from hdr_jax.inference import Predictor
    from hdr_jax.recognition import Recognizer

    header(f"touching pairs as 'no digit': {args.epochs} epochs; {args.pairs} pairs, "
           f"{args.line_spans} line spans")
    mnist = data.load_mnist(args.data_dir)
    pairs = touching_pairs(mnist.train, args.pairs)
    with_pairs = data.Mnist(data.Split(np.concatenate([mnist.train.images, pairs]),
                                       np.concatenate([mnist.train.labels,
                                                       np.full(len(pairs), data.NUM_CLASSES,
                                                               np.int32)])),
                            mnist.test, mnist.source + " + touching pairs")
    numbers = make_numbers(mnist.test, args.numbers, 0, TUNING_DIGITS, unseen=False)
    variants = {"mnist": ("MNIST", mnist, 0), "pairs": ("MNIST + pairs as no digit", with_pairs, 0),
                "spans": ("MNIST + line spans", mnist, args.line_spans),
                "parts": ("MNIST + line spans, parts", mnist, args.line_spans),
                "strokes": ("MNIST + line spans, strokes", mnist, args.line_spans)}
    with tempfile.TemporaryDirectory() as scratch:
        for folder in args.variants:
            name, dataset, line_spans = variants[folder]
            model = Path(args.keep or scratch) / folder
            with variant_context(folder):
                accuracy = train_and_export(dataset, args.epochs, args.data_dir, model,
                                            line_spans)
                counts = failure_kinds(Recognizer(Predictor.from_checkpoint(model)), numbers)
            print(f"  {name:<28} test {accuracy:.2%}; tuning numbers exactly right "
                  f"{counts['right'] / len(numbers):.2%} {counts}", flush=True)

if __name__ == "__main__":
    main()
