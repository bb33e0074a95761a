"""Pure step functions: the training state, `train_step`, `eval_step` and the optimiser.

No loop, no I/O: `train.py` runs these in chunks over the devices, `evaluate.py` reuses
`eval_step` and `apply_model`. A step sees one (global, or per-device under pmap) batch.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from hdr_jax import augment, data
from hdr_jax.config import TrainConfig
from hdr_jax.model import AlexNet, create_model


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: global steps taken (the data position follows from it).
    params: nnx.State
    batch_stats: nnx.State
    opt_state: optax.OptState
    rng: jax.Array  # uint32 key data; per-step and per-example keys are folded in from it.


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW with linear warm-up and cosine decay; no weight decay on biases and norm scales."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.max_steps:
        total = min(total, config.max_steps)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total // 2)
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, total,
                                                  end_value=config.learning_rate * 1e-3)
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    return optax.adamw(schedule, weight_decay=config.weight_decay, mask=decay_mask)


def create_train_state(config: TrainConfig, tx: optax.GradientTransformation,
                       bn_axis_name: str | None = None) -> tuple[nnx.GraphDef, TrainState]:
    """The model's graph definition (static) and its initial state (host arrays)."""
    model = create_model(config.model, seed=config.seed, bn_axis_name=bn_axis_name)
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    state = TrainState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
        opt_state=tx.init(params),
        rng=jax.random.key_data(jax.random.fold_in(jax.random.key(config.seed), 1)),
    )
    return graphdef, jax.device_get(state)


def apply_model(graphdef: nnx.GraphDef, params: nnx.State, batch_stats: nnx.State,
                images: jax.Array, dropout_keys: jax.Array | None = None,
                train: bool = False) -> tuple[jax.Array, nnx.State]:
    """Runs the model as a pure function: (logits, updated batch statistics)."""
    model: AlexNet = nnx.merge(graphdef, params, batch_stats, copy=True)
    model.train() if train else model.eval()
    logits = model(images, dropout_keys)
    return logits, nnx.state(model, nnx.BatchStat)


def to_model_input(images: jax.Array) -> jax.Array:
    """uint8 [B, 28, 28] -> float [B, 28, 28, 1] in [0, 1]."""
    return (images.astype(jnp.float32) / 255.0)[..., None]


def class_targets(labels: jax.Array, num_classes: int) -> jax.Array:
    """One-hot targets. The label 10 means "not one digit" (say, two digits touching): a
    model with 11 classes learns it as its 11th; one with 10 as the uniform distribution,
    unsure of every digit."""
    one_hot = jax.nn.one_hot(labels, num_classes)  # All zeros for label == num_classes.
    return jnp.where((labels == num_classes)[:, None], 1.0 / num_classes, one_hot)


def digit_of(logits: jax.Array) -> jax.Array:
    """The most likely digit, whether or not the model has an 11th, "not one digit" class."""
    return jnp.argmax(logits[..., :data.NUM_CLASSES], -1)


def all_finite(tree) -> jax.Array:
    """True when every element of every leaf is finite (a bool scalar, computed on device)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, config: TrainConfig,
               state: TrainState, images: jax.Array, labels: jax.Array, positions: jax.Array,
               axis_name: str | None = None) -> tuple[TrainState, dict]:
    """One optimiser step on a batch of uint8 images. `positions` (the examples' places in the
    global batch) seed per-example randomness, so any split of the batch computes the same."""
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    example_keys = jax.vmap(lambda p: jax.random.fold_in(step_key, p))(positions)
    augment_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(example_keys)
    dropout_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(example_keys)
    x = augment.augment_batch(to_model_input(images), augment_keys, config.augment)

    def loss_fn(params, batch_stats):
        logits, new_stats = apply_model(graphdef, params, batch_stats, x, dropout_keys, True)
        targets = optax.smooth_labels(class_targets(labels, logits.shape[-1]),
                                      config.label_smoothing)
        loss = optax.softmax_cross_entropy(logits, targets).mean()
        return loss, (logits, new_stats)

    (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    if axis_name is not None:  # pmap: average per-device means (equal shard sizes).
        grads = jax.lax.pmean(grads, axis_name)
        loss, accuracy = jax.lax.pmean((loss, accuracy), axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=new_stats,
                              opt_state=opt_state)
    # `finite` is checked on the state after this update: a checkpoint must never hold
    # parameters that its own last update broke (a finite loss can still give a NaN update).
    metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads),
               "finite": all_finite((params, new_stats))}
    return new_state, metrics


def eval_step(graphdef: nnx.GraphDef, params: nnx.State, batch_stats: nnx.State,
              images: jax.Array, labels: jax.Array, mask: jax.Array,
              axis_name: str | None = None) -> dict:
    """Sums over the valid (unmasked) examples, plus every example's logits."""
    logits, _ = apply_model(graphdef, params, batch_stats, to_model_input(images))
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    sums = {
        "correct": jnp.sum((digit_of(logits) == labels) & mask),
        "loss": jnp.sum(jnp.where(mask, losses, 0.0)),
        "count": jnp.sum(mask),
    }
    if axis_name is not None:
        sums = jax.lax.psum(sums, axis_name)
        logits = jax.lax.all_gather(logits, axis_name, tiled=True)
    return {**sums, "logits": logits}
