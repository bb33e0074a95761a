"""Training: the state, pure `train_step`/`eval_step` functions, and the loop around them."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from hdr_jax import augment, data, parallel
from hdr_jax.checkpoint import SELECTION_METRIC, TrainCheckpoints
from hdr_jax.config import TrainConfig
from hdr_jax.model import AlexNet, create_model

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss or the gradients stopped being finite; the last good checkpoint is kept."""


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


def train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, config: TrainConfig,
               state: TrainState, images: jax.Array, labels: jax.Array, positions: jax.Array,
               axis_name: str | None = None) -> tuple[TrainState, dict]:
    """One optimiser step on a (global, or per-device under pmap) batch of uint8 images."""
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    example_keys = jax.vmap(lambda p: jax.random.fold_in(step_key, p))(positions)
    augment_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(example_keys)
    dropout_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(example_keys)
    x = augment.augment_batch(to_model_input(images), augment_keys, config.augment)

    def loss_fn(params, batch_stats):
        logits, new_stats = apply_model(graphdef, params, batch_stats, x, dropout_keys, True)
        targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]),
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
    metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads)}
    return new_state, metrics


def eval_step(graphdef: nnx.GraphDef, state: TrainState, images: jax.Array, labels: jax.Array,
              mask: jax.Array, axis_name: str | None = None) -> dict:
    """Sums over the valid (unmasked) examples, plus every example's logits."""
    logits, _ = apply_model(graphdef, state.params, state.batch_stats, to_model_input(images))
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    sums = {
        "correct": jnp.sum((jnp.argmax(logits, -1) == labels) & mask),
        "loss": jnp.sum(jnp.where(mask, losses, 0.0)),
        "count": jnp.sum(mask),
    }
    if axis_name is not None:
        sums = jax.lax.psum(sums, axis_name)
        logits = jax.lax.all_gather(logits, axis_name, tiled=True)
    return {**sums, "logits": logits}


def precise_batch_stats(model: AlexNet, images: np.ndarray, batch_size: int = 1000) -> dict:
    """BatchNorm statistics re-estimated on clean training images ("precise BN", Wu & Johnson
    2021): the population mean and variance of every normalised layer, averaged over equal
    batches, in place of the running averages kept while training.

    Why: the running averages come from the last ~10 augmented batches, while the model is
    evaluated and served on clean, centred digits. Returns the pure `batch_stats` dict."""
    model = nnx.clone(model)
    if model.norms is None:  # Local response normalisation keeps no statistics.
        return nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    for norm in model.norms:
        norm.momentum = 0.0  # The running statistics become exactly this batch's.
    model.train()
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)

    @jax.jit
    def moments(params: nnx.State, stats: nnx.State, batch: jax.Array) -> dict:
        # No dropout keys: dropout stays off, as at inference.
        _, batch_stats = apply_model(graphdef, params, stats, to_model_input(batch), train=True)
        pure = nnx.to_pure_dict(batch_stats)
        return jax.tree.map(lambda s: {"mean": s["mean"], "square": s["var"] + s["mean"] ** 2},
                            pure, is_leaf=lambda x: isinstance(x, dict) and "var" in x)

    if len(images) == 0:
        raise ValueError("precise BN needs training images, got none")
    batch_size = min(batch_size, len(images))
    batches = len(images) // batch_size  # Equal batches; a remainder under one batch is left out.
    totals = None
    for i in range(batches):
        m = moments(params, stats, jnp.asarray(images[i * batch_size:(i + 1) * batch_size]))
        totals = m if totals is None else jax.tree.map(jnp.add, totals, m)
    return jax.device_get(jax.tree.map(
        lambda s: {"mean": s["mean"] / batches,
                   # E[x^2] - E[x]^2 can round a hair below 0 for a dead channel.
                   "var": jnp.maximum(s["square"] / batches - (s["mean"] / batches) ** 2, 0.0)},
        totals, is_leaf=lambda x: isinstance(x, dict) and "square" in x))


@dataclasses.dataclass
class Evaluator:
    """Evaluates on a device-resident split, counting each image exactly once on any number of
    devices (the last batch is masked, not dropped or duplicated)."""

    strategy: parallel.Strategy
    graphdef: nnx.GraphDef
    batch_size: int

    def __post_init__(self):
        parallel.check_batch(self.batch_size, self.strategy.num_devices, "evaluation batch")
        fn = lambda state, *args: eval_step(self.graphdef, state, *args)
        self._eval = self.strategy.compile_eval(fn, self.batch_size)

    def put(self, split: data.Split) -> tuple[jax.Array, jax.Array]:
        return self.strategy.replicate((split.images, split.labels))

    def __call__(self, state: TrainState, split_on_device: tuple[jax.Array, jax.Array],
                 with_logits: bool = False) -> dict:
        images, labels = split_on_device
        n = labels.shape[-1]
        totals = {"correct": 0, "loss": 0.0, "count": 0}
        all_logits = []
        for i in range(math.ceil(n / self.batch_size)):
            out = self.strategy.fetch(self._eval(state, images, labels, i))
            for k in totals:
                totals[k] += out[k].item()
            if with_logits:
                all_logits.append(out["logits"])
        count = max(totals["count"], 1)
        result = {"accuracy": totals["correct"] / count, "loss": totals["loss"] / count,
                  "count": totals["count"]}
        if with_logits:
            result["logits"] = np.concatenate(all_logits)[:n]
        return result


def _is_primary() -> bool:
    return jax.process_index() == 0


def training_splits(dataset: data.Mnist, config: TrainConfig) -> tuple[data.Split, data.Split]:
    """The (training, validation) images a run with `config` uses: export re-derives them."""
    train_split, val_split = data.holdout(dataset.train, config.validation_size, config.seed)
    if config.train_limit:
        train_split = train_split.take(slice(0, config.train_limit))
    return train_split, val_split


def train_and_evaluate(config: TrainConfig, dataset: data.Mnist | None = None,
                       progress: bool = True, strategy: parallel.Strategy | None = None) -> dict:
    """Trains (resuming from `config.workdir` if it holds checkpoints) and returns the final
    metrics. Raises TrainingDiverged, data.DataError, parallel.ParallelError, CheckpointError."""
    strategy = strategy or parallel.make_strategy(config.strategy)
    parallel.check_batch(config.batch_size, strategy.num_devices)
    dataset = dataset or data.load_mnist(config.data_dir)
    train_split, val_split = training_splits(dataset, config)
    steps_per_epoch = len(train_split) // config.batch_size
    if steps_per_epoch == 0:
        raise parallel.ParallelError(f"batch {config.batch_size} is larger than the "
                                     f"{len(train_split)} training images")
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    tx = make_optimizer(config, steps_per_epoch)
    graphdef, host_state = create_train_state(config, tx, strategy.bn_axis_name)
    workdir = Path(config.workdir).absolute()
    ckpts = TrainCheckpoints(workdir / "checkpoints", keep=config.keep_checkpoints)
    start = ckpts.latest_step()
    if start is not None:
        restored, _ = ckpts.restore(start, strategy.restore_target(host_state))
        state = strategy.from_checkpoint(restored)
        log.info("resumed from step %d in %s", start, ckpts.directory)
    else:
        state = strategy.replicate(host_state)
    step = int(start or 0)

    step_fn = lambda state, *args: train_step(graphdef, tx, config, state, *args)
    train_fn = strategy.compile_train(step_fn, config.batch_size, steps_per_epoch)
    evaluator = Evaluator(strategy, graphdef, _eval_batch(config, strategy))
    train_images, train_labels = strategy.replicate((train_split.images, train_split.labels))
    test_on_device = evaluator.put(dataset.test)
    val_on_device = evaluator.put(val_split) if len(val_split) else None
    data_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    meta = {"config": config.to_dict(), "steps_per_epoch": steps_per_epoch}
    metrics_path = workdir / "metrics.jsonl"
    if _is_primary():
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    last_saved = start
    final: dict = {}
    try:
        while step < total_steps:
            epoch = step // steps_per_epoch
            perm = strategy.permutation(jax.random.fold_in(data_key, epoch), len(train_split))
            epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
            bar = tqdm(total=epoch_end - epoch * steps_per_epoch, initial=step % steps_per_epoch,
                       desc=f"epoch {epoch + 1}/{config.epochs}", unit="step",
                       disable=not (progress and _is_primary()), leave=False)
            t0, images_seen, pending = time.perf_counter(), 0, []
            sums = {"loss": 0.0, "accuracy": 0.0, "n": 0}
            while step < epoch_end:
                state, metrics = train_fn(state, train_images, train_labels, perm)
                step += 1
                images_seen += config.batch_size
                pending.append(metrics)
                if step % config.log_every_steps == 0 or step == epoch_end or (
                        step % config.checkpoint_every_steps == 0):
                    _drain(strategy, pending, sums, step)
                    rate = images_seen / (time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}",
                                    acc=f"{sums['accuracy'] / sums['n']:.4f}",
                                    img_s=f"{rate:.0f}")
                    bar.n = step - epoch * steps_per_epoch
                    bar.refresh()
                    pending = []
                if step % config.checkpoint_every_steps == 0 and step != epoch_end:
                    ckpts.save(step, strategy.checkpointable(state), meta)
                    last_saved = step
            bar.close()
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch + 1, "step": step,
                      "train_loss": sums["loss"] / max(sums["n"], 1),
                      "train_accuracy": sums["accuracy"] / max(sums["n"], 1),
                      "images_per_second": images_seen / seconds, "seconds": seconds}
            test = evaluator(state, test_on_device)
            record.update(test_loss=test["loss"], test_accuracy=test["accuracy"])
            if val_on_device is not None:
                val = evaluator(state, val_on_device)
                record.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            selection = record.get("val_accuracy", record["test_accuracy"])
            ckpts.save(step, strategy.checkpointable(state), meta,
                       metrics={SELECTION_METRIC: selection, **_floats(record)})
            last_saved = step
            if _is_primary():
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                log.info("epoch %d: %s", epoch + 1, json.dumps(_floats(record)))
            final = record
    except TrainingDiverged as e:
        ckpts.wait()
        kept = f"last good checkpoint: step {last_saved}" if last_saved else "no checkpoint yet"
        raise TrainingDiverged(f"{e}; {kept} in {ckpts.directory}") from None
    finally:
        ckpts.wait()
        ckpts.close()
    final = final or {"step": step}
    final["state"] = state
    final["graphdef"] = graphdef
    return final


def _drain(strategy: parallel.Strategy, pending: list, sums: dict, step: int) -> None:
    """Moves the queued step metrics to the host, stopping the run on a non-finite value."""
    for metrics in strategy.fetch(pending):
        loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise TrainingDiverged(f"training diverged at or before step {step}: loss={loss}, "
                                   f"gradient norm={grad_norm}")
        sums["loss"] += loss
        sums["accuracy"] += float(metrics["accuracy"])
        sums["n"] += 1


def _eval_batch(config: TrainConfig, strategy: parallel.Strategy) -> int:
    n = strategy.num_devices
    return max(n, config.eval_batch_size // n * n)


def _floats(record: dict) -> dict:
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float)}
