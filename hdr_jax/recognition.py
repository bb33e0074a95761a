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

import numpy as np

from hdr_jax import preprocess
from hdr_jax.inference import Predictor

MODES = ("digit", "number")
# Readings less sure than this are flagged `low_confidence`, unless the checkpoint carries its
# own threshold (`bench/calibration.py` fits one on realistic uploads).
LOW_CONFIDENCE_BELOW = 0.9


@dataclasses.dataclass(frozen=True)
class DigitReading:
    digit: int
    confidence: float
    probabilities: tuple[float, ...]
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
                 prediction_log: str | None = None):
        self.predictor = predictor
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
        prepared: list[list[preprocess.Digit] | preprocess.PreprocessError] = []
        for raw in uploads:
            try:
                decoded = preprocess.decode(raw, self.max_pixels)
                prepared.append(preprocess.preprocess_number(decoded) if mode == "number"
                                else [preprocess.preprocess_digit(decoded)])
            except preprocess.PreprocessError as e:
                prepared.append(e)
        batch = [d.image for ds in prepared if isinstance(ds, list) for d in ds]
        probabilities = iter(self.predictor.predict(np.stack(batch)) if batch else [])
        results: list[Reading | preprocess.PreprocessError] = []
        for raw, digits in zip(uploads, prepared, strict=True):
            if isinstance(digits, preprocess.PreprocessError):
                results.append(digits)
                continue
            readings = tuple(_reading(d, next(probabilities), self.low_confidence_below)
                             for d in digits)
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


def _reading(digit: preprocess.Digit, p: np.ndarray, low_below: float) -> DigitReading:
    return DigitReading(digit=int(p.argmax()), confidence=float(p.max()),
                        probabilities=tuple(round(float(x), 6) for x in p), box=digit.box,
                        image=digit.image, low_confidence=bool(p.max() < low_below))
