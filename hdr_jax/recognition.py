"""The recognition pipeline: uploaded images -> digits or numbers, batched through one model
call. It knows nothing of HTTP: results are typed, failures are `preprocess` exceptions, and
the HTTP edge (`serving.py`) maps them to statuses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Iterator

import numpy as np

from hdr_jax import data, preprocess
from hdr_jax.inference import Predictor

MODES = ("digit", "number")
# Readings less sure than this are flagged `low_confidence`, unless the checkpoint carries its
# own threshold (`bench/calibration.py` fits one on realistic uploads).
LOW_CONFIDENCE_BELOW = 0.9


@dataclasses.dataclass(frozen=True)
class LineCosts:
    """What a way of cutting a line of handwriting into digits costs, in log-confidence:
    `split` per digit (extra digits must earn their place), `join` per gap between pieces of
    ink a digit spans (two close digits can look like one to the model), `short` per line
    height a digit's ink is shorter than `short_from` line heights (a stroke of a 4 or a 7
    alone looks like a 1).
    Chosen on bench/hard_uploads.py's tuning generator: `bench/hard_numbers.py --sweep`, last
    for the model with a "not one digit" class (session 16: a part of a digit reads as a
    sure 1 to it, so each digit pays 0.5)."""

    split: float = 0.5
    join: float = 3.0
    short_from: float = 0.9
    short: float = 5.0


@dataclasses.dataclass(frozen=True)
class DigitReading:
    digit: int
    confidence: float
    probabilities: tuple[float, ...]  # The 10 digits'; a model's 11th class takes the rest.
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the upload's (oriented) pixels.
    image: np.ndarray  # The 28x28 float image the model saw.
    low_confidence: bool = False  # Less sure than the checkpoint's calibrated threshold.


@dataclasses.dataclass(frozen=True)
class NumberReading:
    digits: tuple[DigitReading, ...]

    @property
    def number(self) -> str:
        return "".join(str(d.digit) for d in self.digits)


Reading = DigitReading | NumberReading


class Recognizer:
    """Reads digits (`mode="digit"`: one per image) or numbers (`"number"`: a line of digits
    per image) from uploads. Every digit of every image goes through one batched model call.
    With `prediction_log` set, appends time, mode, result and the upload's SHA-256 (never the
    image) per reading."""

    def __init__(self, predictor: Predictor, max_pixels: int = preprocess.MAX_PIXELS,
                 prediction_log: str | None = None, line_costs: LineCosts = LineCosts()):
        self.predictor = predictor
        self.line_costs = line_costs
        self.max_pixels = max_pixels
        self.prediction_log = prediction_log
        self._log_lock = threading.Lock()
        self.answered = threading.Event()  # Set once the first reading has been made.
        self.low_confidence_below = float(predictor.info.get("calibration", {}).get(
            "low_confidence_below", LOW_CONFIDENCE_BELOW))

    @property
    def info(self) -> dict:
        return self.predictor.info

    def read(self, uploads: list[bytes], mode: str = "digit"
             ) -> list[Reading | preprocess.PreprocessError]:
        """One result per upload, in order: a reading, or the error that upload raised."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        prepared: list[preprocess.NumberLine | preprocess.PreprocessError] = []
        for raw in uploads:
            try:
                decoded = preprocess.decode(raw, self.max_pixels)
                prepared.append(preprocess.number_line(decoded) if mode == "number" else
                                _one_digit(preprocess.preprocess_digit(decoded)))
            except preprocess.PreprocessError as e:
                prepared.append(e)
        batch = [d.image for line in prepared if isinstance(line, preprocess.NumberLine)
                 for d in line.spans.values()]
        probabilities = iter(self.predictor.predict(np.stack(batch)) if batch else [])
        results: list[Reading | preprocess.PreprocessError] = []
        for raw, line in zip(uploads, prepared, strict=True):
            if isinstance(line, preprocess.PreprocessError):
                results.append(line)
                continue
            readings = tuple(read_line(line, probabilities, self.low_confidence_below,
                                       self.line_costs))
            result = NumberReading(readings) if mode == "number" else readings[0]
            results.append(result)
            self._log(raw, mode, result)
        self.answered.set()
        return results

    def _log(self, raw: bytes, mode: str, result: Reading) -> None:
        if not self.prediction_log:
            return
        digits = result.digits if isinstance(result, NumberReading) else (result,)
        slim = [{"digit": d.digit, "confidence": d.confidence, "box": list(d.box),
                 "low_confidence": d.low_confidence} for d in digits]
        summary = ({"number": result.number, "digits": slim}
                   if isinstance(result, NumberReading) else
                   {"digit": slim[0]["digit"], "confidence": slim[0]["confidence"]})
        line = json.dumps({"time": time.time(), "mode": mode,
                           "sha256": hashlib.sha256(raw).hexdigest(), "result": summary})
        with self._log_lock, open(self.prediction_log, "a") as f:
            f.write(line + "\n")


def _one_digit(digit: preprocess.Digit) -> preprocess.NumberLine:
    """Digit mode as a line with one span, so both modes share one batch and one reading."""
    return preprocess.NumberLine(2, (0, 1), {(0, 1): digit}, float(digit.box[3] - digit.box[1]))


def read_line(line: preprocess.NumberLine, probabilities: Iterator[np.ndarray],
              low_below: float, costs: LineCosts) -> list[DigitReading]:
    """The line's most plausible reading over every way of cutting it (dynamic programming
    over its cuts): the highest sum of log-confidences, less `costs`. Takes one row of
    `probabilities` per span of `line`, in its order."""
    spans = {span: _reading(d, next(probabilities), low_below)
             for span, d in line.spans.items()}
    score = {span: _plausibility(r, span, line, costs) for span, r in spans.items()}
    best: list[tuple[float, list[DigitReading] | None]] = [(0.0, [])]
    for j in range(1, line.n_cuts):
        best.append(max(((best[i][0] + score[i, j], best[i][1] + [spans[i, j]])
                         for i in range(j) if (i, j) in spans and best[i][1] is not None),
                        key=lambda scored: scored[0], default=(-np.inf, None)))
    return best[-1][1]


def _plausibility(reading: DigitReading, span: tuple[int, int], line: preprocess.NumberLine,
                  costs: LineCosts) -> float:
    i, j = span
    height = (reading.box[3] - reading.box[1]) / line.height
    return (np.log(max(reading.confidence, 1e-9)) - costs.split
            - costs.join * sum(i < p < j for p in line.pieces)
            - costs.short * max(0.0, costs.short_from - height))


def _reading(digit: preprocess.Digit, p: np.ndarray, low_below: float) -> DigitReading:
    # A model's 11th class, "not one digit", takes its share from every digit's confidence.
    digits = p[:data.NUM_CLASSES]
    best = int(digits.argmax())
    return DigitReading(digit=best, confidence=float(digits[best]),
                        probabilities=tuple(round(float(x), 6) for x in digits), box=digit.box,
                        image=digit.image, low_confidence=bool(digits[best] < low_below))
