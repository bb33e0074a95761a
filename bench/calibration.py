"""Calibrated confidences for served readings: a softmax temperature and a low-confidence
threshold, fitted on one set of realistic uploads and reported on another.

Tuning set: uploads made by `bench/uploads.py` from MNIST test digits 0-4,999 (seed 11).
Report set: uploads from test digits 5,000-9,999 (seed 22), never used for fitting. (The
shipped model was trained on all 60,000 training digits, so their uploads would make it look
surer than it is on digits it has not seen; a temperature changes no prediction, so test
accuracy is untouched.)

  python bench/calibration.py --data-dir DIR [--per-style 400] [--write]

The temperature is adopted only if it also lowers the report set's negative log-likelihood
(a fit on a few dozen errors can sharpen what it should not); the low-confidence threshold is
then chosen on the tuning set for the adopted temperature. `--write` stores both in the
checkpoint's info.json ("calibration"), which serving reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
import scipy.special  # noqa: E402

from bench.common import header  # noqa: E402
from bench.uploads import STYLES, digit_upload  # noqa: E402
from hdr_jax import data  # noqa: E402
from hdr_jax.inference import Predictor  # noqa: E402
from hdr_jax.lifecycle import checkpoint_path  # noqa: E402
from hdr_jax.recognition import Recognizer  # noqa: E402

MAX_CORRECT_FLAGGED = 0.01  # The threshold may flag at most this share of right readings.


def scores(recognizer: Recognizer, split: data.Split, indices: np.ndarray, seed: int,
           per_style: int) -> tuple[np.ndarray, np.ndarray]:
    """(log-probabilities at temperature 1, labels) of realistic uploads of those digits: of
    every class the model has (a reading's own `probabilities` are the 10 digits')."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for style in STYLES:
        idx = rng.choice(indices, per_style, replace=False)
        uploads = [digit_upload(split.images[i], style, rng) for i in idx]
        for reading, label in zip(recognizer.read(uploads), split.labels[idx], strict=True):
            if hasattr(reading, "image"):
                images.append(reading.image)
                labels.append(label)
    p = np.maximum(recognizer.predictor.predict(np.stack(images)).astype(np.float64), 1e-30)
    return np.log(p) * recognizer.predictor.temperature, np.array(labels)


def nll(logp: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    log_q = scipy.special.log_softmax(logp / temperature, axis=-1)
    return float(-log_q[np.arange(len(labels)), labels].mean())


def ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: |accuracy - confidence| over equal-width confidence bins,
    weighted by how many readings fall in each."""
    confidence = probabilities.max(-1)
    correct = probabilities.argmax(-1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def fit_temperature(logp: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood."""
    return float(scipy.optimize.minimize_scalar(lambda t: nll(logp, labels, t),
                                                bounds=(0.05, 20), method="bounded").x)


def fit_threshold(logp: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """The highest confidence threshold that flags at most MAX_CORRECT_FLAGGED of the right
    readings."""
    p = scipy.special.softmax(logp / temperature, axis=-1)
    right = p.argmax(-1) == labels
    return round(float(np.quantile(p.max(-1)[right], MAX_CORRECT_FLAGGED)), 4)


def report(name: str, logp: np.ndarray, labels: np.ndarray, temperature: float,
           threshold: float) -> dict:
    before = scipy.special.softmax(logp, axis=-1)
    after = scipy.special.softmax(logp / temperature, axis=-1)
    right = after.argmax(-1) == labels
    flagged = after.max(-1) < threshold
    row = {"set": name, "readings": len(labels), "accuracy": float(right.mean()),
           "ece_before": ece(before, labels), "ece_after": ece(after, labels),
           "nll_before": nll(logp, labels, 1.0), "nll_after": nll(logp, labels, temperature),
           "errors_flagged": float(flagged[~right].mean()) if (~right).any() else None,
           "right_flagged": float(flagged[right].mean())}
    print(f"  {name:<8} {len(labels):>6} {row['accuracy']:8.2%} {row['ece_before']:8.4f} "
          f"{row['ece_after']:8.4f} {row['nll_before']:8.4f} {row['nll_after']:8.4f} "
          f"{row['errors_flagged'] or 0:9.1%} {row['right_flagged']:9.2%}", flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--checkpoint", default=str(checkpoint_path()))
    p.add_argument("--per-style", type=int, default=400)
    p.add_argument("--write", action="store_true", help="store the fit in info.json")
    args = p.parse_args()
    header("calibration: temperature and low-confidence threshold (realistic uploads)")
    test = data.load_mnist(args.data_dir).test
    recognizer = Recognizer(Predictor.from_checkpoint(args.checkpoint))
    tune = scores(recognizer, test, np.arange(0, 5000), 11, args.per_style)
    held_out = scores(recognizer, test, np.arange(5000, 10000), 22, args.per_style)
    fitted = fit_temperature(*tune)
    adopted = fitted if nll(*held_out, fitted) < nll(*held_out, 1.0) else 1.0
    threshold = fit_threshold(*tune, adopted)
    print(f"  temperature fitted on the tuning set: {fitted:.3f}; adopted: {adopted:.3f} "
          f"({'it lowers' if adopted != 1.0 else 'it does not lower'} the report set's NLL); "
          f"low confidence below {threshold:.4f}")
    print(f"  {'set':<8} {'n':>6} {'accuracy':>8} {'ECE':>8} {'ECE cal':>8} {'NLL':>8} "
          f"{'NLL cal':>8} {'errs flag':>9} {'right flag':>9}   (cal: temperature {fitted:.3f})")
    for name, scored in (("tuning", tune), ("report", held_out)):
        report(name, *scored, fitted, fit_threshold(*tune, fitted))
    print(f"  with the adopted temperature {adopted:.3f}:")
    rows = [report("tuning", *tune, adopted, threshold),
            report("report", *held_out, adopted, threshold)]
    if args.write:
        info_path = Path(args.checkpoint) / "info.json"
        info = json.loads(info_path.read_text())
        info["calibration"] = {
            "temperature": round(adopted, 4), "fitted_temperature": round(fitted, 4),
            "low_confidence_below": threshold,
            "fitted_on": "realistic uploads of MNIST test digits 0-4999 (bench/calibration.py)",
            "report_set": rows[1]}
        info_path.write_text(json.dumps(info, indent=2, sort_keys=True))
        print(f"  written to {info_path}")


if __name__ == "__main__":
    main()
