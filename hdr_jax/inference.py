"""Loading a trained model for prediction: the one restore path that evaluation and serving use.

Serving pads every request to one of a few fixed batch sizes, so after `warmup()` nothing
compiles again however requests arrive.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hdr_jax import checkpoint
from hdr_jax.config import ModelConfig
from hdr_jax.model import create_model

DEFAULT_BUCKETS = (1, 8, 32, 128)


def model_config_from_info(info: dict) -> ModelConfig:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in info["model"].items()}
    return ModelConfig(**fields)


def restore_model(variables: dict, config: ModelConfig) -> nnx.Module:
    """An AlexNet in eval mode holding `variables` ({'params', 'batch_stats'} pure dicts)."""
    return _fill(_abstract_eval_model(config), variables)


def _abstract_eval_model(config: ModelConfig) -> nnx.Module:
    """The eval-mode model with shapes in place of arrays: nothing is initialised."""
    abstract = nnx.eval_shape(lambda: create_model(config))
    abstract.eval()
    return abstract


def _fill(abstract: nnx.Module, variables: dict) -> nnx.Module:
    graphdef, params, batch_stats = nnx.split(abstract, nnx.Param, nnx.BatchStat)
    nnx.replace_by_pure_dict(params, variables["params"])
    nnx.replace_by_pure_dict(batch_stats, variables["batch_stats"])
    return nnx.merge(graphdef, params, batch_stats)


def _abstract_images(size: int) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((size, 28, 28), jnp.float32)


def temperature_of(info: dict) -> float:
    """The checkpoint's calibration temperature (`bench/calibration.py` fits it on realistic
    uploads; 1.0, the model's own softmax, where none was fitted)."""
    return float(info.get("calibration", {}).get("temperature", 1.0))


def _probabilities_fn(graphdef: nnx.GraphDef, temperature: float = 1.0):
    @jax.jit
    def probabilities(state: nnx.State, images: jax.Array) -> jax.Array:
        model = nnx.merge(graphdef, state)
        return jax.nn.softmax(model(images[..., None]) / temperature, axis=-1)

    return probabilities


class Predictor:
    """Probabilities for batches of 28x28 images in [0, 1] (white ink on black, MNIST-style).

    Each batch size in `buckets` is compiled once, ahead of time, into its own executable;
    requests are padded up to the nearest bucket, so nothing compiles while serving."""

    def __init__(self, model: nnx.Module, info: dict, buckets: tuple[int, ...] = DEFAULT_BUCKETS,
                 _compiling: dict[int, Future] | None = None):
        graphdef, self._state = nnx.split(model)
        self.model, self.info, self.buckets = model, info, tuple(sorted(buckets))
        self.temperature = temperature_of(info)
        self._probabilities = _probabilities_fn(graphdef, self.temperature)
        self._executables: dict[int, Future] = dict(_compiling or {})
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, directory: str | Path, buckets: tuple[int, ...] = DEFAULT_BUCKETS,
                        precompile: tuple[int, ...] = ()) -> Predictor:
        """Loads an inference checkpoint. The batch sizes in `precompile` start compiling
        before the arrays are read: XLA compiles from the model's shapes alone and without
        holding the GIL, so on a cold start it runs alongside importing orbax and reading the
        checkpoint instead of after them."""
        info = checkpoint.read_info(directory)
        abstract = _abstract_eval_model(model_config_from_info(info))
        graphdef, abstract_state = nnx.split(abstract)
        probabilities = _probabilities_fn(graphdef, temperature_of(info))
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hdr-compile")
        compiling = {size: pool.submit(lambda s=size: probabilities.lower(
            abstract_state, _abstract_images(s)).compile()) for size in precompile}
        pool.shutdown(wait=False)
        variables, info = checkpoint.load_inference(directory)
        return cls(_fill(abstract, variables), info, buckets, compiling)

    def warmup(self, sizes: tuple[int, ...] | None = None) -> None:
        """Compiles the given batch sizes (default: every bucket) before traffic needs them."""
        for size in sizes or self.buckets:
            self._executable(size)

    def compiled(self) -> list[int]:
        """The batch sizes whose executables are ready."""
        with self._lock:
            return sorted(size for size, done in self._executables.items() if done.done())

    def _executable(self, size: int):
        # The first caller for a size compiles it; callers for other sizes do not wait.
        with self._lock:
            pending = self._executables.get(size)
            mine = pending is None
            if mine:
                pending = self._executables[size] = Future()
        if mine:
            try:
                pending.set_result(self._probabilities.lower(
                    self._state, _abstract_images(size)).compile())
            except BaseException as e:
                pending.set_exception(e)
        return pending.result()

    def predict(self, images: np.ndarray) -> np.ndarray:
        """[N, 28, 28] float in [0, 1] -> [N, classes] float32 probabilities (10 digits, and
        "not one digit" where the model has that 11th class)."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
        out = []
        largest = self.buckets[-1]
        for start in range(0, len(images), largest):
            chunk = images[start:start + largest]
            size = next(b for b in self.buckets if b >= len(chunk))
            padded = np.zeros((size, 28, 28), np.float32)
            padded[:len(chunk)] = chunk
            probabilities = self._executable(size)(self._state, jnp.asarray(padded))
            out.append(np.asarray(probabilities)[:len(chunk)])
        return (np.concatenate(out) if out else
                np.zeros((0, self.model.config.num_classes), np.float32))
