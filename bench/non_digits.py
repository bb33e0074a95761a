"""Uploads with no digit in them: how often they are refused (422), and how often real digits
are refused by mistake. The thresholds (`preprocess.MAX_PIECES`,
`MAX_HOLES_PER_DIGIT_WIDTH`) were chosen on `bench/uploads.py` images of seed 0; this reports
on other seeds.

  python bench/non_digits.py --data-dir DIR [--per-kind 100] [--digits 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import header  # noqa: E402
from bench.uploads import NON_DIGITS, STYLES, digit_upload, non_digit_upload, number_upload  # noqa: E402
from hdr_jax import data, preprocess  # noqa: E402
from hdr_jax.inference import Predictor  # noqa: E402
from hdr_jax.lifecycle import checkpoint_path  # noqa: E402
from hdr_jax.recognition import Recognizer  # noqa: E402


def refused(recognizer: Recognizer, uploads: list[bytes], mode: str) -> np.ndarray:
    return np.array([isinstance(r, preprocess.NoDigitFound)
                     for r in recognizer.read(uploads, mode)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--per-kind", type=int, default=100)
    p.add_argument("--digits", type=int, default=300, help="real uploads per digit style")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    header(f"non-digit uploads (seed {args.seed}; thresholds chosen on seed 0)")
    recognizer = Recognizer(Predictor.from_checkpoint(checkpoint_path()))
    rng = np.random.default_rng(args.seed)
    print(f"  {'non-digits':<14}{'refused, digit mode':>20}{'number mode':>13}"
          f"{'read, but flagged low confidence':>34}")
    for kind in NON_DIGITS:
        uploads = [non_digit_upload(kind, rng) for _ in range(args.per_kind)]
        readings = recognizer.read(uploads)
        read = [r for r in readings if not isinstance(r, preprocess.PreprocessError)]
        flagged = f"{np.mean([r.low_confidence for r in read]):.0%} of {len(read)}" if read \
            else "-"
        print(f"  {kind:<14}{refused(recognizer, uploads, 'digit').mean():20.0%}"
              f"{refused(recognizer, uploads, 'number').mean():13.0%}{flagged:>34}", flush=True)
    test = data.load_mnist(args.data_dir).test
    print(f"  {'real digits':<14}{'wrongly refused':>20}")
    for style in STYLES:
        idx = rng.integers(0, len(test), args.digits)
        uploads = [digit_upload(test.images[i], style, rng) for i in idx]
        print(f"  {style:<14}{refused(recognizer, uploads, 'digit').mean():20.2%}", flush=True)
    numbers = [number_upload([test.images[i] for i in rng.integers(0, len(test),
                                                                   int(rng.integers(2, 7)))],
                             rng) for _ in range(args.digits)]
    print(f"  {'numbers 2-6':<14}{refused(recognizer, numbers, 'number').mean():20.2%}")


if __name__ == "__main__":
    main()
