"""The training loop, as a short function over small parts:

* `ChunkPlan`: which steps run together in one dispatch, and when a checkpoint is due;
* `EpochRunner`: runs one epoch's chunks back to back, reading each chunk's metrics while the
  next one runs on the device, so the host never stands between two steps;
* `RunRecorder`: owns the workdir's `command.txt`, `config.json` and `metrics.jsonl`, and is
  the one place that asks whether this is the primary process.

The steps themselves are pure functions in `steps.py`; evaluation lives in `evaluate.py`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from hdr_jax import data, parallel
from hdr_jax.checkpoint import SELECTION_METRIC, CheckpointError, TrainCheckpoints, load_inference
from hdr_jax.config import ModelConfig, TrainConfig
from hdr_jax.evaluate import Evaluator, eval_batch_size
from hdr_jax.inference import model_config_from_info
from hdr_jax.steps import TrainState, create_train_state, make_optimizer, train_step

log = logging.getLogger(__name__)

# The fields of a metrics.jsonl record that are times, not results: the only ones a rerun of
# the same steps may change.
TIMINGS = ("images_per_second", "seconds", "compile_seconds", "elapsed_seconds")


class TrainingDiverged(RuntimeError):
    """The loss, the gradients or the parameters stopped being finite; the last good
    checkpoint is kept."""


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """Chunks of `chunk` steps counted from each epoch's start (the last one shorter), so a
    run compiles at most a few chunk lengths; a checkpoint is due at the end of the first
    chunk that reaches a multiple of `checkpoint_every`, and at every epoch's end. The host
    reads a chunk's metrics once `in_flight` newer chunks are queued behind it."""

    steps_per_epoch: int
    chunk: int
    checkpoint_every: int
    in_flight: int = 1  # Chunks dispatched and not yet read, besides the newest.

    def chunks(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """[a, b) step ranges from `start` to `end`, both within one epoch."""
        epoch_start = start // self.steps_per_epoch * self.steps_per_epoch
        a = start
        while a < end:
            b = min(epoch_start + ((a - epoch_start) // self.chunk + 1) * self.chunk, end)
            yield a, b
            a = b

    def checkpoint_due(self, a: int, b: int, epoch_end: int) -> bool:
        return b != epoch_end and b // self.checkpoint_every > a // self.checkpoint_every


class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling (or loading compiled code from the
    persistent cache) while open: the part of an epoch's time that is not training. Read
    from JAX's own monitoring events, so it costs nothing when nothing compiles."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
              "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")  # This one includes cache loads.
    # One listener for the process (JAX 0.8 cannot remove one), adding up every compile.
    _total = 0.0
    _listening = False

    @classmethod
    def _listen(cls, event: str, seconds: float, **_) -> None:
        if event in cls.EVENTS:
            cls._total += seconds

    def __enter__(self) -> CompileClock:
        if not CompileClock._listening:
            jax.monitoring.register_event_duration_secs_listener(CompileClock._listen)
            CompileClock._listening = True
        self._start, self.seconds = CompileClock._total, 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = CompileClock._total - self._start


class RunRecorder:
    """The run's files in its workdir. Only the primary process writes; every process may
    call. `metrics.jsonl` holds one record per epoch, keyed by epoch: a record written again
    (an epoch re-run after a kill) replaces the old one, and the file is replaced atomically."""

    def __init__(self, workdir: str | Path):
        self.workdir = Path(workdir).absolute()
        self.metrics_path = self.workdir / "metrics.jsonl"
        self.primary = parallel.is_primary()

    def start(self, config: TrainConfig, command: str | None = None) -> None:
        if not self.primary:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write("config.json", json.dumps(config.to_dict(), indent=2))
        if command:
            self._write("command.txt", command + "\n")

    def records(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines()
                if line.strip()]

    def epoch(self, record: dict) -> None:
        if not self.primary:
            return
        kept = [r for r in self.records() if r.get("epoch") != record["epoch"]]
        records = sorted([*kept, record], key=lambda r: r["epoch"])
        self._write("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        log.info("epoch %d: %s", record["epoch"], json.dumps(floats(record)))

    def _write(self, name: str, text: str) -> None:
        tmp = self.workdir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(self.workdir / name)


@dataclasses.dataclass
class EpochRunner:
    """Runs the chunks of one epoch and checks every step's metrics; saves mid-epoch
    checkpoints as the plan says, each only after its steps were checked."""

    strategy: parallel.Strategy
    train_fn: Callable  # strategy.compile_train(...)
    plan: ChunkPlan
    ckpts: TrainCheckpoints
    train_data: tuple[jax.Array, jax.Array]  # (images, labels) on the devices.
    num_examples: int
    data_key: jax.Array
    batch_size: int
    meta: dict
    progress: bool = True
    log_every: int = 20  # Steps between refreshes of the progress bar's figures.

    def run(self, state: TrainState, epoch: int, start: int, end: int, epochs: int,
            sums: dict | None = None) -> tuple[TrainState, dict]:
        """Steps `start`..`end` of `epoch`; `sums` carries the training-metric sums of the
        epoch's earlier steps when it resumes mid-epoch (they travel in each checkpoint)."""
        spe = self.plan.steps_per_epoch
        perm = self.strategy.permutation(jax.random.fold_in(self.data_key, epoch),
                                         self.num_examples)
        bar = tqdm(total=min(spe, end - epoch * spe), initial=start - epoch * spe,
                   desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False,
                   disable=not (self.progress and parallel.is_primary()))
        sums = dict(sums or {"loss": 0.0, "accuracy": 0.0, "n": 0})
        t0 = time.perf_counter()
        with CompileClock() as clock:
            state = self._run_chunks(state, perm, start, end, sums, bar, t0)
        seconds = time.perf_counter() - t0
        bar.close()
        n = max(sums["n"], 1)
        return state, {"epoch": epoch + 1, "step": end, "train_loss": sums["loss"] / n,
                       "train_accuracy": sums["accuracy"] / n,
                       "images_per_second": (end - start) * self.batch_size / seconds,
                       "seconds": seconds, "compile_seconds": clock.seconds}

    def _run_chunks(self, state: TrainState, perm: jax.Array, start: int, end: int,
                    sums: dict, bar: tqdm, t0: float) -> TrainState:
        """Dispatches the chunks and reads each one's metrics `plan.in_flight` chunks later, so
        the device always has work queued. A checkpoint due after a chunk keeps that chunk's
        state (states are not donated, so it stays valid) and is saved once every step up to
        it has been checked, while later chunks run."""
        in_flight: collections.deque = collections.deque()
        due: collections.deque = collections.deque()  # (step, state) awaiting their save.

        def read_oldest() -> None:
            a, b, metrics = in_flight.popleft()
            self._absorb(a, metrics, sums, bar, t0, start)
            if due and due[0][0] == b:
                step, kept = due.popleft()
                # A copy: the save may write its JSON after later chunks added to `sums`.
                self.ckpts.save(step, self.strategy.checkpointable(kept),
                                {**self.meta, "epoch_sums": dict(sums)})

        for a, b in self.plan.chunks(start, end):
            state, metrics = self.train_fn(state, *self.train_data, perm, b - a)
            parallel.prefetch(metrics)
            while len(in_flight) >= self.plan.in_flight:
                read_oldest()
            in_flight.append((a, b, metrics))
            if self.plan.checkpoint_due(a, b, end):
                due.append((b, state))
        while in_flight:
            read_oldest()
        return state

    def _absorb(self, first: int, metrics: dict, sums: dict, bar: tqdm, t0: float,
                start: int) -> None:
        """Moves one chunk's metrics to the host; a non-finite value stops the run."""
        m = self.strategy.fetch(metrics)
        bad = ~(np.isfinite(m["loss"]) & np.isfinite(m["grad_norm"]) & m["finite"])
        if bad.any():
            i = int(np.argmax(bad))
            raise TrainingDiverged(f"training diverged at step {first + i + 1}: "
                                   f"loss={float(m['loss'][i])}, gradient norm="
                                   f"{float(m['grad_norm'][i])}, parameters finite: "
                                   f"{bool(m['finite'][i])}")
        sums["loss"] += float(m["loss"].sum())
        sums["accuracy"] += float(m["accuracy"].sum())
        sums["n"] += len(m["loss"])
        done = first + len(m["loss"])
        if done // self.log_every > first // self.log_every:
            rate = (done - start) * self.batch_size / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}",
                            acc=f"{sums['accuracy'] / sums['n']:.4f}", img_s=f"{rate:.0f}")
        bar.update(len(m["loss"]))


def train_and_evaluate(config: TrainConfig, dataset: data.Mnist | None = None,
                       progress: bool = True, strategy: parallel.Strategy | None = None,
                       command: str | None = None) -> dict:
    """Trains (resuming from `config.workdir` if it holds checkpoints) and returns the final
    metrics with the state. Everything is validated before the workdir is written. Raises
    TrainingDiverged, data.DataError, parallel.ParallelError, CheckpointError."""
    strategy = strategy or parallel.make_strategy(config.strategy)
    parallel.check_batch(config.batch_size, strategy.num_devices)
    dataset = dataset or data.load_mnist(config.data_dir)
    train_split, val_split = data.training_splits(dataset, config)
    steps_per_epoch = len(train_split) // config.batch_size
    if steps_per_epoch == 0:
        raise parallel.ParallelError(f"batch {config.batch_size} is larger than the "
                                     f"{len(train_split)} training images")
    total_steps = min(config.epochs * steps_per_epoch, config.max_steps or math.inf)
    tx = make_optimizer(config, steps_per_epoch)
    graphdef, host_state = create_train_state(config, tx, strategy.bn_axis_name)
    if config.init_from:
        host_state = started_from(config.init_from, config, tx, host_state)
    recorder = RunRecorder(config.workdir)
    ckpts = TrainCheckpoints(recorder.workdir / "checkpoints", keep=config.keep_checkpoints)
    try:
        state, step, sums = _initial_state(ckpts, strategy, host_state)
        recorder.start(config, command)
        step_fn = lambda state, *args: train_step(graphdef, tx, config, state, *args)
        runner = EpochRunner(
            strategy, strategy.compile_train(step_fn, config.batch_size, steps_per_epoch),
            _chunk_plan(config, strategy, steps_per_epoch),
            ckpts, strategy.replicate((train_split.images, train_split.labels)), len(train_split),
            jax.random.fold_in(jax.random.key(config.seed), 2), config.batch_size,
            {"config": config.to_dict(), "steps_per_epoch": steps_per_epoch}, progress,
            config.log_every_steps)
        evaluator = Evaluator(strategy, graphdef,
                              eval_batch_size(config.eval_batch_size, strategy))
        splits = {"test": evaluator.put(dataset.test)}
        if len(val_split):
            splits["val"] = evaluator.put(val_split)
        final: dict = {"step": step}
        began = time.perf_counter()
        while step < total_steps:
            epoch = step // steps_per_epoch
            end = min((epoch + 1) * steps_per_epoch, total_steps)
            state, record = runner.run(state, epoch, step, end, config.epochs, sums)
            sums = None
            for name, split in splits.items():
                result = evaluator((state.params, state.batch_stats), split)
                record.update({f"{name}_loss": result["loss"],
                               f"{name}_accuracy": result["accuracy"]})
            # Since this process's first step: compilation, evaluations and checkpoints too.
            record["elapsed_seconds"] = time.perf_counter() - began
            recorder.epoch(record)  # Before the checkpoint: a kill between re-runs the epoch.
            selection = record.get("val_accuracy", record["test_accuracy"])
            ckpts.save(end, strategy.checkpointable(state), runner.meta,
                       metrics={SELECTION_METRIC: selection, **floats(record)})
            step, final = end, record
    except TrainingDiverged as e:
        ckpts.wait()
        last = ckpts.latest_step()
        kept = f"last good checkpoint: step {last}" if last is not None else "no checkpoint yet"
        raise TrainingDiverged(f"{e}; {kept} in {ckpts.directory}") from None
    finally:
        ckpts.wait()
        ckpts.close()
    return {**final, "state": state, "graphdef": graphdef}


def _chunk_plan(config: TrainConfig, strategy: parallel.Strategy,
                steps_per_epoch: int) -> ChunkPlan:
    chunk = parallel.steps_per_dispatch(config.steps_per_dispatch, strategy)
    return ChunkPlan(steps_per_epoch, chunk, parallel.checkpoint_every_steps(
        config.checkpoint_every_steps, strategy, steps_per_epoch),
        parallel.chunks_in_flight(chunk, strategy))


def started_from(directory: str | Path, config: TrainConfig, tx: optax.GradientTransformation,
                 state: TrainState) -> TrainState:
    """`state` (fresh, on the host) holding the weights of the inference checkpoint at
    `directory` instead: its parameters and BatchNorm statistics, and the optimiser's state
    for them. A run that resumes from its own checkpoints takes theirs (`_initial_state`)."""
    variables, info = load_inference(directory)
    theirs, ours = _shape(model_config_from_info(info)), _shape(config.model)
    if theirs != ours:
        raise CheckpointError(f"--init-from {directory}: its model {theirs} is not this "
                              f"run's {ours}")
    params, batch_stats = state.params, state.batch_stats
    nnx.replace_by_pure_dict(params, variables["params"])
    nnx.replace_by_pure_dict(batch_stats, variables["batch_stats"])
    return state.replace(params=params, batch_stats=batch_stats, opt_state=tx.init(params))


def _shape(model: ModelConfig) -> dict:
    """What decides a model's arrays (dropout and the layers' arithmetic do not)."""
    return {"conv_features": list(model.conv_features), "dense_features": model.dense_features,
            "norm": model.norm, "num_classes": model.num_classes}


def _initial_state(ckpts: TrainCheckpoints, strategy: parallel.Strategy,
                   host_state: TrainState) -> tuple[TrainState, int, dict | None]:
    """The latest checkpoint's state on the devices (or the fresh one), its step, and the
    training-metric sums of its epoch so far (None at an epoch's start)."""
    start = ckpts.latest_step()
    if start is None:
        return strategy.replicate(host_state), 0, None
    restored, meta = ckpts.restore(start, strategy.restore_target(host_state))
    log.info("resumed from step %d in %s", start, ckpts.directory)
    return strategy.from_checkpoint(restored), int(start), meta.get("epoch_sums")


def floats(record: dict) -> dict:
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float)}
