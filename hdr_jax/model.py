"""AlexNet's pattern, scaled to 28x28 grey digits, in Flax NNX.

Five 3x3 convolutions (AlexNet's 11x11/5x5 kernels and stride 4 would erase a 28-pixel digit),
ReLU, overlapping 3x3/stride-2 max-pooling after conv 1, 2 and 5, normalisation after each conv
(BatchNorm by default, AlexNet's local response normalisation as an option), then two
dropout-regularised dense layers and a logit per class: the 10 digits, and "not one digit"
where `ModelConfig.num_classes` is 11.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from hdr_jax.config import ModelConfig

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
IMAGE_SHAPE = (28, 28, 1)


def local_response_norm(x: jax.Array, size: int = 5, k: float = 2.0, alpha: float = 1e-4,
                        beta: float = 0.75) -> jax.Array:
    """AlexNet's cross-channel local response normalisation (NHWC)."""
    sq = jnp.square(x)
    summed = jax.lax.reduce_window(sq, 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1),
                                   [(0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)])
    return x / jnp.power(k + alpha / size * summed, beta)


def per_example_dropout(x: jax.Array, keys: jax.Array | None, rate: float) -> jax.Array:
    """Inverted dropout whose mask depends only on each example's own key.

    Drawing the mask per example (rather than for the whole batch) makes training give the same
    numbers whatever the batch is split into: 1 device, a mesh of 8, or 8 pmap replicas.
    """
    if keys is None or rate == 0.0:
        return x
    keep = jax.vmap(lambda k: jax.random.bernoulli(k, 1.0 - rate, x.shape[1:]))(keys)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class AlexNet(nnx.Module):
    """Input: images in [0, 1], shape [batch, 28, 28, 1]. Output: [batch, num_classes] logits."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs, bn_axis_name: str | None = None):
        if len(config.conv_features) != 5:
            raise ValueError("AlexNet has five conv layers: conv_features needs 5 widths")
        self.config = config
        dtype = jnp.dtype(config.compute_dtype)
        widths = (IMAGE_SHAPE[-1], *config.conv_features)
        self.convs = nnx.List([
            nnx.Conv(widths[i], widths[i + 1], (3, 3), padding="SAME",
                     use_bias=config.norm != "batch", dtype=dtype, rngs=rngs)
            for i in range(5)
        ])
        if config.norm == "batch":
            # Statistics over the global batch: under jit+mesh XLA reduces across devices by
            # itself; under pmap `bn_axis_name` makes BatchNorm pmean them.
            self.norms = nnx.List([
                nnx.BatchNorm(w, momentum=0.9, axis_name=bn_axis_name, dtype=dtype, rngs=rngs)
                for w in config.conv_features
            ])
        else:
            self.norms = None
        spatial = 4  # 28 -> 14 -> 7 -> 4 after three SAME 3x3/2 pools.
        flat = spatial * spatial * config.conv_features[-1]
        self.fc1 = nnx.Linear(flat, config.dense_features, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(config.dense_features, config.dense_features, dtype=dtype,
                              rngs=rngs)
        self.head = nnx.Linear(config.dense_features, config.num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, images: jax.Array, dropout_keys: jax.Array | None = None) -> jax.Array:
        """`dropout_keys`: one PRNG key per example turns dropout on (training only)."""
        x = (images.astype(jnp.float32) - MNIST_MEAN) / MNIST_STD
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = self.norms[i](x) if self.norms is not None else local_response_norm(x)
            x = nnx.relu(x)
            if i in (0, 1, 4):
                x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        x = x.reshape((x.shape[0], -1))
        rate = self.config.dropout_rate
        k1 = k2 = None
        if dropout_keys is not None:
            k1 = jax.vmap(lambda k: jax.random.fold_in(k, 1))(dropout_keys)
            k2 = jax.vmap(lambda k: jax.random.fold_in(k, 2))(dropout_keys)
        x = per_example_dropout(nnx.relu(self.fc1(x)), k1, rate)
        x = per_example_dropout(nnx.relu(self.fc2(x)), k2, rate)
        return self.head(x).astype(jnp.float32)  # The loss and softmax in float32.


def create_model(config: ModelConfig, seed: int = 0, bn_axis_name: str | None = None) -> AlexNet:
    return AlexNet(config, rngs=nnx.Rngs(params=seed), bn_axis_name=bn_axis_name)


def count_params(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def flops_per_image(config: ModelConfig) -> int:
    """Forward-pass FLOPs (2 x multiply-adds) of convolutions and dense layers for one image."""
    h, c_in, macs = 28, 1, 0
    for i, c_out in enumerate(config.conv_features):
        macs += h * h * 9 * c_in * c_out
        c_in = c_out
        if i in (0, 1, 4):
            h = (h + 1) // 2
    flat = h * h * c_in
    macs += flat * config.dense_features + config.dense_features ** 2
    macs += config.dense_features * config.num_classes
    return 2 * macs
