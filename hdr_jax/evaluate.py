"""Evaluation: restore a model (training workdir or inference checkpoint), evaluate it over
every device, test-time augmentation and ensembles, precise BatchNorm, and export.

The training loop uses `Evaluator` each epoch; `train.py evaluate` / `export`, the benchmarks
and the tests use the rest. Nothing here trains.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from flax import nnx

from hdr_jax import augment, data, metrics, parallel
from hdr_jax.checkpoint import CheckpointError, TrainCheckpoints, load_inference, save_inference
from hdr_jax.config import ModelConfig, TrainConfig
from hdr_jax.inference import model_config_from_info, restore_model
from hdr_jax.model import AlexNet
from hdr_jax.steps import apply_model, create_train_state, eval_step, make_optimizer, to_model_input


@dataclasses.dataclass
class Evaluator:
    """Evaluates on a device-resident split, counting each image exactly once on any number of
    devices (the last batch is masked, not dropped or duplicated)."""

    strategy: parallel.Strategy
    graphdef: nnx.GraphDef
    batch_size: int

    def __post_init__(self):
        parallel.check_batch(self.batch_size, self.strategy.num_devices, "evaluation batch")
        fn = lambda variables, *args: eval_step(self.graphdef, *variables, *args)
        self._eval = self.strategy.compile_eval(fn, self.batch_size)

    def put(self, split: data.Split) -> tuple[jax.Array, jax.Array]:
        return self.strategy.replicate((split.images, split.labels))

    def __call__(self, variables: tuple[nnx.State, nnx.State],
                 split_on_device: tuple[jax.Array, jax.Array], with_logits: bool = False) -> dict:
        """`variables`: (params, batch_stats) on the strategy's devices."""
        images, labels = split_on_device
        n = labels.shape[-1]
        # Every batch is queued before any result is read: one wait, not one per batch.
        outs = [self._eval(variables, images, labels, i)
                for i in range(math.ceil(n / self.batch_size))]
        outs = self.strategy.fetch(outs if with_logits else
                                   [{k: o[k] for k in ("correct", "loss", "count")} for o in outs])
        totals = {k: sum(o[k].item() for o in outs) for k in ("correct", "loss", "count")}
        count = max(totals["count"], 1)
        result = {"accuracy": totals["correct"] / count, "loss": totals["loss"] / count,
                  "count": totals["count"]}
        if with_logits:
            result["logits"] = np.concatenate([o["logits"] for o in outs])[:n]
        return result


def eval_batch_size(requested: int, strategy: parallel.Strategy) -> int:
    """The evaluation batch: `requested` rounded down to a multiple of the device count."""
    n = strategy.num_devices
    return max(n, requested // n * n)


# --- Restoring --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RestoredRun:
    """A training workdir's checkpoint as inference variables."""

    variables: dict  # {'params', 'batch_stats'} pure dicts of numpy arrays.
    config: TrainConfig
    step: int
    epoch_metrics: dict  # The metrics.jsonl record of the epoch that ended at `step`, or {}.


def restore_workdir(workdir: str | Path, select: str = "final") -> RestoredRun:
    """The final checkpoint of a workdir, or its best by validation accuracy (`select="best"`)."""
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{workdir} is not a training workdir (no config.json)")
    config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    ckpts = TrainCheckpoints(workdir / "checkpoints", keep=config.keep_checkpoints)
    try:
        step = ckpts.latest_step() if select == "final" else (
            ckpts.best_step() or ckpts.latest_step())
        if step is None:
            raise CheckpointError(f"{workdir} holds no checkpoint yet")
        strategy = parallel.MeshStrategy()
        # The optimiser's shape (not its schedule) is all a restore target needs.
        _, host_state = create_train_state(config, make_optimizer(config, steps_per_epoch=1))
        state, _ = ckpts.restore(step, strategy.restore_target(host_state))
    finally:
        ckpts.close()
    host = jax.device_get(state)
    variables = {"params": nnx.to_pure_dict(host.params),
                 "batch_stats": nnx.to_pure_dict(host.batch_stats)}
    return RestoredRun(variables, config, step, epoch_record(workdir, step))


def epoch_record(workdir: Path, step: int) -> dict:
    """The metrics.jsonl record of the epoch that ended at `step` (empty if none did)."""
    path = workdir / "metrics.jsonl"
    if not path.is_file():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return next((r for r in records if r.get("step") == step), {})


def load_model(checkpoint: str | Path) -> tuple[dict, dict]:
    """(variables, info) from an inference checkpoint or a training workdir."""
    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if (path / "info.json").is_file():
        return load_inference(path)
    run = restore_workdir(path)
    return run.variables, {"model": run.config.to_dict()["model"], "step": run.step}


# --- Evaluating -------------------------------------------------------------------------------


def evaluate_variables(variables: dict, info: dict, split: data.Split, batch_size: int = 1000,
                       tta: bool = False) -> tuple[dict, np.ndarray]:
    """Classification report and probabilities on `split`, over every device (mesh). With `tta`
    the probabilities are the mean over `augment.tta_views` of the images."""
    model = restore_model(variables, model_config_from_info(info))
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    strategy = parallel.MeshStrategy()
    on_device = strategy.replicate((params, batch_stats))
    evaluator = Evaluator(strategy, graphdef, eval_batch_size(batch_size, strategy))
    views = augment.tta_views(split.images) if tta else [split.images]
    probabilities = np.mean([
        scipy.special.softmax(evaluator(on_device, evaluator.put(data.Split(view, split.labels)),
                                        with_logits=True)["logits"], axis=-1)
        for view in views], axis=0)
    return metrics.report_from_probabilities(split.labels, probabilities), probabilities


def evaluate_models(members: list[tuple[dict, dict]], split: data.Split,
                    tta: bool = False) -> tuple[dict, np.ndarray]:
    """Report and probabilities of one model, or of the mean of several models' probabilities
    (an ensemble); `members` are `load_model` results; `tta` averages each over the test-time
    views."""
    probabilities = np.mean([evaluate_variables(variables, info, split, tta=tta)[1]
                             for variables, info in members], axis=0)
    return metrics.report_from_probabilities(split.labels, probabilities), probabilities


# --- Precise BatchNorm ------------------------------------------------------------------------


def precise_batch_stats(model: AlexNet, images: np.ndarray, batch_size: int = 1000) -> dict:
    """BatchNorm statistics re-estimated on clean training images ("precise BN", Wu & Johnson
    2021): the population mean and variance of every normalised layer, averaged over equal
    batches, in place of the running averages kept while training.

    Why: the running averages come from the last ~10 augmented batches, while the model is
    evaluated and served on clean, centred digits. Returns the pure `batch_stats` dict."""
    model = nnx.clone(model)
    if model.norms is None:  # Local response normalisation keeps no statistics.
        return nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    if len(images) == 0:
        raise ValueError("precise BN needs training images, got none")
    for norm in model.norms:
        norm.momentum = 0.0  # The running statistics become exactly this batch's.
    model.train()
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    layer = lambda x: isinstance(x, dict) and "mean" in x

    @jax.jit
    def moments(params: nnx.State, stats: nnx.State, batch: jax.Array) -> dict:
        # No dropout keys: dropout stays off, as at inference.
        _, batch_stats = apply_model(graphdef, params, stats, to_model_input(batch), train=True)
        return jax.tree.map(lambda s: {"mean": s["mean"], "square": s["var"] + s["mean"] ** 2},
                            nnx.to_pure_dict(batch_stats), is_leaf=layer)

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
        totals, is_leaf=layer))


def with_precise_batch_stats(variables: dict, model_config: ModelConfig,
                             images: np.ndarray) -> dict:
    """`variables` with the BatchNorm statistics re-estimated on `images`; the parameters are
    the same arrays."""
    model = restore_model(variables, model_config)
    return {**variables, "batch_stats": precise_batch_stats(model, images)}


def precise_bn_images(mnist: data.Mnist, config: TrainConfig, batch_stats: str) -> np.ndarray:
    """The clean training images precise BN averages over: the run's whole training split
    ("precise"), or its MNIST digits alone, without the span examples (`--line-spans`,
    `--photo-spans`) ("precise-digits")."""
    if batch_stats == "precise-digits":
        config = dataclasses.replace(config, line_spans=0, photo_spans=0)
    return data.training_splits(mnist, config)[0].images


# --- Export -----------------------------------------------------------------------------------


def export(workdir: str | Path, out: str | Path, data_dir: str | None = None,
           select: str = "final", batch_stats: str = "precise") -> dict:
    """Writes a workdir's final (or best-by-validation) checkpoint as a small inference
    checkpoint, with metrics.json (test report, config, training command, data checksum, date)
    and the training curves; returns metrics.json's content.

    `batch_stats="precise"` re-estimates the BatchNorm statistics on the run's own clean
    training images (chosen on validation, see BENCHMARKS.md); "precise-digits" on its MNIST
    digits alone, without the span examples; "running" keeps the running averages.
    The default is the final checkpoint: the schedule anneals the learning rate to ~0, and a
    5,000-image validation split cannot tell apart epochs that differ by a few images.
    Validation chooses the recipe, not the epoch."""
    workdir = Path(workdir)
    run = restore_workdir(workdir, select)
    mnist = data.load_mnist(data_dir or run.config.data_dir)
    # (Line spans join the training split only: no need to make them for validation.)
    _, val_split = data.training_splits(mnist, dataclasses.replace(run.config, line_spans=0,
                                                                   photo_spans=0))
    variables = run.variables
    # Served in float32 whatever it trained in: the parameters are float32 either way.
    model_config = dataclasses.replace(run.config.model, compute_dtype="float32")
    if batch_stats != "running":
        variables = with_precise_batch_stats(variables, model_config,
                                             precise_bn_images(mnist, run.config, batch_stats))
    info = {"name": "hdr-jax AlexNet-style CNN", "model": dataclasses.asdict(model_config),
            "step": run.step, "batch_stats": batch_stats}
    report, _ = evaluate_variables(variables, info, mnist.test)
    val_report = evaluate_variables(variables, info, val_split)[0] if len(val_split) else None
    info["test_accuracy"] = report["accuracy"]
    save_inference(out, variables, info)
    summary = _export_summary(run, workdir, mnist, report, val_report, select, batch_stats)
    summary["browser_model"] = _write_browser_model(out)
    if parallel.is_primary():
        out = Path(out)
        (out / "metrics.json").write_text(json.dumps(summary, indent=2))
        curves = workdir / "metrics.jsonl"
        if curves.is_file():
            (out / "metrics.jsonl").write_text(curves.read_text())
    return summary


def _write_browser_model(out: str | Path) -> str:
    """The checkpoint for the page too (`browser.py`), where the `browser` extra is
    installed; otherwise says how to get it."""
    from hdr_jax import browser

    if not parallel.is_primary():
        return "written by the primary process"
    try:
        return str(browser.write_browser_model(out, Path(out) / browser.BROWSER_MODEL))
    except ModuleNotFoundError as e:
        return f"not written: {e.name} is missing (pip install -e '.[browser]')"


def _export_summary(run: RestoredRun, workdir: Path, mnist: data.Mnist, report: dict,
                    val_report: dict | None, select: str, batch_stats: str) -> dict:
    command = workdir / "command.txt"
    return {
        "test_accuracy": report["accuracy"], "test_loss": report["loss"],
        **{k: report[k] for k in ("per_class", "macro_avg", "weighted_avg", "confusion_matrix")},
        "selected_step": run.step, "selected_epoch_metrics": run.epoch_metrics,
        "selection": "final checkpoint" if select == "final" else "best validation accuracy",
        "batch_stats": {"precise": "re-estimated on the clean training images (precise BN)",
                        "precise-digits": "re-estimated on the clean training digits, without "
                                          "the line spans (precise BN)",
                        "running": "running averages from training"}[batch_stats],
        "val_accuracy": val_report["accuracy"] if val_report else None,
        "val_loss": val_report["loss"] if val_report else None,
        "config": run.config.to_dict(),
        "train_command": command.read_text().strip() if command.is_file() else None,
        "data_source": mnist.source, "data_sha256": mnist.checksum(),
        "date": datetime.date.today().isoformat(),
        "jax_version": jax.__version__,
    }
