"""Loading a trained model for prediction: the one restore path that evaluation and serving use.

Serving pads every request to one of a few fixed batch sizes, so after `warmup()` nothing
compiles again however requests arrive.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hdr_jax.checkpoint import load_inference
from hdr_jax.config import ModelConfig
from hdr_jax.model import create_model

DEFAULT_BUCKETS = (1, 8, 32, 128)


def model_config_from_info(info: dict) -> ModelConfig:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in info["model"].items()}
    return ModelConfig(**fields)


def restore_model(variables: dict, config: ModelConfig) -> nnx.Module:
    """An AlexNet in eval mode holding `variables` ({'params', 'batch_stats'} pure dicts)."""
    abstract = nnx.eval_shape(lambda: create_model(config))
    graphdef, params, batch_stats = nnx.split(abstract, nnx.Param, nnx.BatchStat)
    nnx.replace_by_pure_dict(params, variables["params"])
    nnx.replace_by_pure_dict(batch_stats, variables["batch_stats"])
    model = nnx.merge(graphdef, params, batch_stats)
    model.eval()
    return model


@dataclasses.dataclass
class Predictor:
    """Probabilities for batches of 28x28 images in [0, 1] (white ink on black, MNIST-style)."""

    model: nnx.Module
    info: dict
    buckets: tuple[int, ...] = DEFAULT_BUCKETS

    def __post_init__(self):
        graphdef, state = nnx.split(self.model)

        @jax.jit
        def probabilities(state, images):
            model = nnx.merge(graphdef, state)
            return jax.nn.softmax(model(images[..., None]), axis=-1)

        self._state = state
        self._probabilities = probabilities

    @classmethod
    def from_checkpoint(cls, directory: str | Path,
                        buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> Predictor:
        variables, info = load_inference(directory)
        return cls(restore_model(variables, model_config_from_info(info)), info, buckets)

    def warmup(self, sizes: tuple[int, ...] | None = None) -> None:
        """Compiles the given batch sizes (default: every bucket) before traffic needs them."""
        for size in sizes or self.buckets:
            self.predict(np.zeros((size, 28, 28), np.float32))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """[N, 28, 28] float in [0, 1] -> [N, 10] float32 probabilities."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
        out = []
        largest = self.buckets[-1]
        for start in range(0, len(images), largest):
            chunk = images[start:start + largest]
            size = next(b for b in self.buckets if b >= len(chunk))
            padded = np.zeros((size, 28, 28), np.float32)
            padded[:len(chunk)] = chunk
            out.append(np.asarray(self._probabilities(self._state, jnp.asarray(padded)))[
                :len(chunk)])
        return np.concatenate(out) if out else np.zeros((0, 10), np.float32)
