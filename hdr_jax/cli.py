"""What the `train.py` commands do, between parsing flags and printing results."""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path

import jax
import numpy as np
import scipy.special
from flax import nnx

from hdr_jax import augment, data, metrics, parallel
from hdr_jax.checkpoint import CheckpointError, TrainCheckpoints, load_inference, save_inference
from hdr_jax.config import ModelConfig, TrainConfig
from hdr_jax.inference import model_config_from_info, restore_model
from hdr_jax.train import (
    Evaluator,
    TrainingDiverged,
    TrainState,
    create_train_state,
    make_optimizer,
    precise_batch_stats,
    train_and_evaluate,
    training_splits,
)

USER_ERRORS = (data.DataError, parallel.ParallelError, CheckpointError, TrainingDiverged,
               FileNotFoundError, ValueError)


def _print_json(obj: dict) -> None:
    if jax.process_index() == 0:
        print(json.dumps(obj), flush=True)


def train(config: TrainConfig, progress: bool = True) -> int:
    result = train_and_evaluate(config, progress=progress)
    _print_json({k: v for k, v in result.items() if isinstance(v, int | float)})
    return 0


def _restore_from_workdir(workdir: Path, select: str = "final"
                          ) -> tuple[dict, TrainConfig, int, dict]:
    """(inference variables, config, step, saved metrics) of a workdir's final checkpoint, or
    of its best by validation accuracy (`select="best"`)."""
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
        tx = make_optimizer(config, steps_per_epoch=1)
        _, host_state = create_train_state(config, tx)
        state, _ = ckpts.restore(step, strategy.restore_target(host_state))
        saved_metrics = _step_metrics(workdir, step)
    finally:
        ckpts.close()
    host = jax.device_get(state)
    variables = {"params": nnx.to_pure_dict(host.params),
                 "batch_stats": nnx.to_pure_dict(host.batch_stats)}
    return variables, config, step, saved_metrics


def _step_metrics(workdir: Path, step: int) -> dict:
    """The metrics.jsonl record of the epoch that ended at `step` (empty if none did)."""
    path = workdir / "metrics.jsonl"
    if not path.is_file():
        return {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("step") == step:
            return record
    return {}


def load_any(checkpoint: str | None) -> tuple[dict, dict]:
    """(variables, info) from an inference checkpoint or a training workdir."""
    if not checkpoint:
        raise ValueError("--checkpoint is required (an inference checkpoint or a workdir)")
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if (path / "info.json").is_file():
        return load_inference(path)
    variables, config, step, _ = _restore_from_workdir(path)
    return variables, {"model": config.to_dict()["model"], "step": step}


def evaluate_variables(variables: dict, info: dict, split: data.Split, batch_size: int = 1000,
                       tta: bool = False) -> tuple[dict, np.ndarray]:
    """Classification report and probabilities on `split`, over every device (mesh). With `tta`
    the probabilities are the mean over `augment.tta_views` of the images."""
    model = restore_model(variables, model_config_from_info(info))
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    strategy = parallel.MeshStrategy()
    state = strategy.replicate(TrainState(step=np.zeros((), np.int32), params=params,
                                          batch_stats=batch_stats, opt_state=(),
                                          rng=np.zeros(2, np.uint32)))
    n = strategy.num_devices
    evaluator = Evaluator(strategy, graphdef, max(n, batch_size // n * n))
    views = augment.tta_views(split.images) if tta else [split.images]
    probabilities = np.mean([
        scipy.special.softmax(evaluator(state, evaluator.put(data.Split(view, split.labels)),
                                        with_logits=True)["logits"], axis=-1)
        for view in views], axis=0)
    return metrics.report_from_probabilities(split.labels, probabilities), probabilities


def with_precise_batch_stats(variables: dict, model_config: ModelConfig,
                             images: np.ndarray) -> dict:
    """`variables` with the BatchNorm statistics re-estimated on `images`
    (`train.precise_batch_stats`); the parameters are the same arrays."""
    model = restore_model(variables, model_config)
    return {**variables, "batch_stats": precise_batch_stats(model, images)}


def evaluate(checkpoint: str | None, data_dir: str | None, report_dir: str | None,
             tta: bool = False, ensemble: tuple[str, ...] = ()) -> int:
    """Test-set report of one model, or with `ensemble` the mean of several models'
    probabilities; `tta` averages each over the test-time views. The JSON line's `accuracy`
    is of exactly what was asked for."""
    members = [load_any(path) for path in (checkpoint, *ensemble)]
    mnist = data.load_mnist(data_dir)
    probabilities = np.mean([evaluate_variables(variables, info, mnist.test, tta=tta)[1]
                             for variables, info in members], axis=0)
    report = metrics.report_from_probabilities(mnist.test.labels, probabilities)
    predictions = probabilities.argmax(-1)
    if jax.process_index() == 0:
        print(metrics.format_report(report))
        print("\nconfusion matrix (rows: true, columns: predicted)")
        for c, row in enumerate(report["confusion_matrix"]):
            print(f"  {c}: " + " ".join(f"{v:5d}" for v in row))
        if report_dir:
            out = Path(report_dir)
            out.mkdir(parents=True, exist_ok=True)
            metrics.plot_confusion_matrix(np.array(report["confusion_matrix"]),
                                          out / "confusion_matrix.png")
            metrics.plot_misclassified(mnist.test.images, mnist.test.labels, predictions,
                                       probabilities.max(-1), out / "misclassified.png")
            curves = Path(checkpoint) / "metrics.jsonl"
            metrics.plot_training_curves(curves, out / "training_curves.png")
            (out / "report.json").write_text(json.dumps(report, indent=2))
            print(f"\npictures and report.json written to {out}")
    _print_json({"accuracy": report["accuracy"], "count": report["count"],
                 "errors": int((predictions != mnist.test.labels).sum()),
                 "loss": report["loss"], "tta": tta, "models": len(members)})
    return 0


def export(workdir: str, out: str | None, data_dir: str | None = None,
           select: str = "final", batch_stats: str = "precise") -> int:
    """Writes the workdir's final (or best-by-validation) checkpoint as a small inference
    checkpoint with metrics.json (test report, config, training command, data checksum, date)
    and the training curves.

    `batch_stats="precise"` re-estimates the BatchNorm statistics on the run's own clean
    training images (`train.precise_batch_stats`; chosen on validation, see BENCHMARKS.md);
    "running" keeps the running averages of the checkpoint.

    The default is the final checkpoint: the schedule anneals the learning rate to ~0, so the
    last weights are the trained model, and a 5,000-image validation split cannot tell apart
    epochs that differ by a few images. Validation chooses the recipe, not the epoch."""
    if not out:
        raise ValueError("--out is required: where to write the inference checkpoint")
    workdir_path = Path(workdir)
    variables, config, step, saved = _restore_from_workdir(workdir_path, select)
    mnist = data.load_mnist(data_dir or config.data_dir)
    info = {"name": "hdr-jax AlexNet-style CNN", "model": config.to_dict()["model"],
            "step": step}
    train_split, val_split = training_splits(mnist, config)
    if batch_stats == "precise":
        variables = with_precise_batch_stats(variables, config.model, train_split.images)
    info["batch_stats"] = batch_stats
    report, _ = evaluate_variables(variables, info, mnist.test)
    val_report = evaluate_variables(variables, info, val_split)[0] if len(val_split) else None
    info["test_accuracy"] = report["accuracy"]
    out_path = Path(out)
    save_inference(out_path, variables, info)
    command = workdir_path / "command.txt"
    summary = {
        "test_accuracy": report["accuracy"], "test_loss": report["loss"],
        "per_class": report["per_class"], "macro_avg": report["macro_avg"],
        "weighted_avg": report["weighted_avg"], "confusion_matrix": report["confusion_matrix"],
        "selected_step": step, "selected_epoch_metrics": saved,
        "selection": "final checkpoint" if select == "final" else "best validation accuracy",
        "batch_stats": ("re-estimated on the clean training images (precise BN)"
                        if batch_stats == "precise" else "running averages from training"),
        "val_accuracy": val_report["accuracy"] if val_report else None,
        "config": config.to_dict(),
        "train_command": command.read_text().strip() if command.is_file() else None,
        "data_source": mnist.source, "data_sha256": mnist.checksum(),
        "date": datetime.date.today().isoformat(),
        "jax_version": jax.__version__,
    }
    if jax.process_index() == 0:
        (out_path / "metrics.json").write_text(json.dumps(summary, indent=2))
        curves = workdir_path / "metrics.jsonl"
        if curves.is_file():
            (out_path / "metrics.jsonl").write_text(curves.read_text())
    _print_json({"exported": str(out_path), "step": step, "batch_stats": batch_stats,
                 "val_accuracy": summary["val_accuracy"], "accuracy": report["accuracy"]})
    return 0


def record_command(workdir: str) -> None:
    """Keeps the exact training command in the workdir, for the shipped metrics.json."""
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (path / "command.txt").write_text(shlex.join(["python", *sys.argv]) + "\n")
