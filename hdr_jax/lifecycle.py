"""A serving process's lifecycle: which checkpoint it serves, and loading it once per process,
as early as is safe (the cold start). Builds the HTTP edge around the recognizer it loads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hdr_jax import preprocess
from hdr_jax.inference import Predictor
from hdr_jax.recognition import Recognizer
from hdr_jax.serving import HttpApi, Limits, ModelUnavailable

log = logging.getLogger(__name__)
REPO_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "alexnet-mnist"


def checkpoint_path() -> Path:
    """$HDR_CHECKPOINT, else `checkpoint/` beside a deployed function, else the shipped one."""
    if os.environ.get("HDR_CHECKPOINT"):
        return Path(os.environ["HDR_CHECKPOINT"])
    bundled = Path(os.environ.get("HDR_FUNCTION_DIR", ".")) / "checkpoint"
    return bundled if (bundled / "info.json").is_file() else REPO_CHECKPOINT


def create_recognizer(idle_seconds: float = 2.0) -> Recognizer:
    """Loads the model and compiles the batch-1 shape (what a first request needs). The larger
    buckets compile in the background once the first reading is made (or after
    `idle_seconds` without one), so that first answer neither waits for them nor shares the
    CPU with them."""
    predictor = Predictor.from_checkpoint(checkpoint_path(), precompile=(1,))
    # While batch 1 compiles (XLA does not hold the GIL): a first request's imports and code.
    pen = np.full((64, 96), 255, np.uint8)
    pen[16:48, 20:26] = pen[16:48, 60:66] = 0
    preprocess.preprocess_number(pen)
    predictor.warmup(predictor.buckets[:1])
    recognizer = Recognizer(predictor, Limits.from_env().max_pixels,
                            prediction_log=os.environ.get("HDR_PREDICTION_LOG") or None)

    def compile_the_rest() -> None:
        recognizer.answered.wait(timeout=idle_seconds)
        predictor.warmup(predictor.buckets[1:])

    # Not a daemon: a process that exits while XLA compiles would abort instead of exiting.
    threading.Thread(target=compile_the_rest, name="hdr-warmup").start()
    return recognizer


class ColdStart:
    """Creates the recognizer once per serving process, as early as is safe.

    functions-framework (and so Cloud Functions) serves through gunicorn, which imports the
    function in a master process and then forks workers; JAX's runtime threads do not survive
    a fork. So importing only imports (JAX's backend stays down), and loading starts in a
    background thread right after the fork, in the worker; a process that never forks (tests)
    loads at its first request. Requests wait for the load."""

    def __init__(self, factory: Callable[[], Recognizer] = create_recognizer):
        self._factory = factory
        self._lock = threading.Lock()
        self._recognizer: Recognizer | None = None
        self._error: BaseException | None = None
        os.register_at_fork(after_in_child=self._start_in_background)

    def _start_in_background(self) -> None:
        self._lock = threading.Lock()  # A lock copied across fork may be held; start afresh.
        threading.Thread(target=self._load, daemon=True, name="hdr-cold-start").start()

    def _load(self) -> None:
        with contextlib.suppress(ModelUnavailable):  # Logged once; requests answer 503.
            self.get()

    def get(self) -> Recognizer:
        """The recognizer, loading it if no one has; ModelUnavailable if loading failed."""
        with self._lock:
            if self._recognizer is None and self._error is None:
                try:
                    self._recognizer = self._factory()
                except BaseException as e:  # Keep failing loudly, not reloading per request.
                    log.exception("could not load the model")
                    self._error = e
            if self._error is not None:
                raise ModelUnavailable(f"the model could not be loaded: {self._error}")
            return self._recognizer


def create_api() -> HttpApi:
    """The function's HTTP edge, configured from the environment, over a cold-started model."""
    return HttpApi.from_env(ColdStart().get)
