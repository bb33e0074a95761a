"""The `train.py` command line: one-line errors with a non-zero exit, never a traceback."""

import dataclasses
import json

import numpy as np
import pytest

from tests.conftest import run_cli, synthetic_mnist, write_idx_dataset


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for fragment in fragments:
        assert fragment in last, last


def test_missing_data_dir_is_refused_before_the_workdir_is_written(tmp_path):
    _assert_one_line_error(run_cli("--data-dir", str(tmp_path / "none"), "--workdir",
                                   str(tmp_path / "w")), "not a directory")
    assert not (tmp_path / "w").exists()


def test_an_internal_bug_shows_its_traceback_not_a_user_error(tmp_path):
    """Only the project's own error types are one-line user errors."""
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    broken = ("import runpy, sys, hdr_jax.train as t\n"
              "def bug(*a, **k): raise ValueError('a bug of ours')\n"
              "t.train_and_evaluate = bug\n"
              "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    proc = subprocess.run([sys.executable, "-c", broken, str(ROOT / "train.py"), "--data-dir",
                           str(data_dir), "--workdir", str(tmp_path / "w")], cwd=ROOT,
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: a bug of ours" in proc.stderr
    assert "error: a bug of ours" not in proc.stderr


def test_bad_idx_file(tmp_path):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    (data_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    _assert_one_line_error(run_cli("--data-dir", str(data_dir), "--workdir", str(tmp_path / "w")),
                           "t10k-labels-idx1-ubyte.gz")


def test_batch_that_does_not_divide_across_devices(tmp_path):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    _assert_one_line_error(run_cli("--data-dir", str(data_dir), "--workdir", str(tmp_path / "w"),
                                   "--cpu-devices", "4", "--batch-size", "30"),
                           "30 does not divide across 4 devices")


@pytest.mark.slow
def test_a_bfloat16_run_is_exported_as_a_float32_model(tmp_path):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    common = ["--data-dir", str(data_dir)]
    trained = run_cli("--workdir", str(tmp_path / "w"), "--epochs", "1", "--batch-size", "32",
                      "--validation-size", "64", "--width", "0.25", "--no-progress",
                      "--compute-dtype", "bfloat16", *common)
    assert trained.returncode == 0, trained.stderr[-2000:]
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert json.loads((tmp_path / "w" / "config.json").read_text())["model"][
        "compute_dtype"] == "bfloat16"
    exported = run_cli("export", "--workdir", str(tmp_path / "w"), "--out",
                       str(tmp_path / "ck"), "--batch-stats", "running", *common)
    assert exported.returncode == 0, exported.stderr[-2000:]
    metrics = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert metrics["config"]["model"]["compute_dtype"] == "bfloat16"
    served = json.loads((tmp_path / "ck" / "info.json").read_text())
    assert served["model"]["compute_dtype"] == "float32"
    # The same parameters computed in float32: the same answers but for a rounding tie or two
    # (203 test and 64 validation images).
    assert metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=2 / 203)
    assert metrics["val_accuracy"] == pytest.approx(summary["val_accuracy"], abs=2 / 64)


def test_evaluate_missing_checkpoint(tmp_path):
    _assert_one_line_error(run_cli("evaluate", "--checkpoint", str(tmp_path / "nope")),
                           "does not exist")


@pytest.mark.slow
def test_train_export_evaluate_round_trip(tmp_path):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    common = ["--data-dir", str(data_dir)]
    trained = run_cli("--workdir", str(tmp_path / "w"), "--epochs", "1", "--batch-size", "32",
                      "--validation-size", "64", "--width", "0.25", "--no-progress", *common)
    assert trained.returncode == 0, trained.stderr[-2000:]
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    # Kept running statistics: the exported model is the trained one, figure for figure.
    running = run_cli("export", "--workdir", str(tmp_path / "w"), "--out",
                      str(tmp_path / "ck-running"), "--batch-stats", "running", *common)
    assert running.returncode == 0, running.stderr[-2000:]
    running_metrics = json.loads((tmp_path / "ck-running" / "metrics.json").read_text())
    assert running_metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert running_metrics["val_accuracy"] == pytest.approx(summary["val_accuracy"])
    # The default re-estimates BatchNorm statistics on the clean training images.
    exported = run_cli("export", "--workdir", str(tmp_path / "w"), "--out",
                       str(tmp_path / "ck"), *common)
    assert exported.returncode == 0, exported.stderr[-2000:]
    metrics = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert "precise" in metrics["batch_stats"]
    printed = json.loads(exported.stdout.strip().splitlines()[-1])
    assert printed["accuracy"] == metrics["test_accuracy"]
    assert printed["val_loss"] == metrics["val_loss"] > 0
    # The browser's copy of the model is written beside the checkpoint.
    assert printed["browser_model"] == str(tmp_path / "ck" / "model.onnx")
    assert (tmp_path / "ck" / "model.onnx").stat().st_size > 10_000
    assert len(metrics["data_sha256"]) == 64 and metrics["train_command"].startswith("python")
    assert set(metrics["per_class"]) == {str(c) for c in range(10)}
    evaluated = run_cli("evaluate", "--checkpoint", str(tmp_path / "ck"), "--report-dir",
                        str(tmp_path / "report"), *common)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    last = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert last["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert last["count"] == 203
    assert "precision" in evaluated.stdout and "macro avg" in evaluated.stdout
    for png in ("confusion_matrix.png", "misclassified.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000
    # An ensemble of a model with itself is that model; TTA evaluates each image once, still.
    ensemble = run_cli("evaluate", "--checkpoint", str(tmp_path / "ck"), "--ensemble",
                       str(tmp_path / "ck"), "--tta", *common)
    assert ensemble.returncode == 0, ensemble.stderr[-2000:]
    both = json.loads(ensemble.stdout.strip().splitlines()[-1])
    assert both["models"] == 2 and both["tta"] is True and both["count"] == 203


def test_tta_probabilities_are_the_mean_over_shifted_views():
    from flax import nnx

    from hdr_jax import evaluate
    from hdr_jax.augment import tta_views
    from hdr_jax.config import ModelConfig
    from hdr_jax.data import Split
    from hdr_jax.model import create_model

    config = ModelConfig(conv_features=(8, 8, 8, 8, 8), dense_features=16)
    _, params, stats = nnx.split(create_model(config, seed=3), nnx.Param, nnx.BatchStat)
    variables = {"params": nnx.to_pure_dict(params), "batch_stats": nnx.to_pure_dict(stats)}
    info = {"model": dataclasses.asdict(config)}
    split = synthetic_mnist(n_train=8, n_test=40).test
    report, tta = evaluate.evaluate_variables(variables, info, split, batch_size=16,
                                               tta=True)
    singles = [evaluate.evaluate_variables(variables, info, Split(view, split.labels),
                                           batch_size=16)[1] for view in tta_views(split.images)]
    np.testing.assert_allclose(tta, np.mean(singles, axis=0), rtol=1e-5, atol=1e-7)
    assert report["count"] == 40
    assert report["accuracy"] == np.mean(tta.argmax(-1) == split.labels)


def test_init_from_a_folder_that_is_no_checkpoint_is_refused_before_the_workdir_is_written(
        tmp_path):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    _assert_one_line_error(run_cli("--data-dir", str(data_dir), "--workdir", str(tmp_path / "w"),
                                   "--validation-size", "0", "--init-from", str(tmp_path / "none")),
                           "not an hdr-jax inference checkpoint")
    assert not (tmp_path / "w").exists()


def test_init_from_a_checkpoint_of_another_shape_names_both_shapes(tmp_path,
                                                                   shipped_checkpoint):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    # The shipped model has 11 classes; this run asks for the default 10.
    _assert_one_line_error(run_cli("--data-dir", str(data_dir), "--workdir", str(tmp_path / "w"),
                                   "--validation-size", "0", "--init-from",
                                   str(shipped_checkpoint)),
                           "--init-from", "'num_classes': 11", "'num_classes': 10")
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_evaluate_counts_the_errors_its_accuracy_counts_for_an_eleven_class_model(
        mnist_dir, shipped_checkpoint):
    # The shipped model has an 11th class, "not one digit": never a digit, so never an error's
    # reading, as its accuracy (the best of the 10 digits) has it.
    evaluated = run_cli("evaluate", "--checkpoint", str(shipped_checkpoint), "--data-dir",
                        str(mnist_dir))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    last = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert last["count"] == 10_000
    assert last["errors"] == round(last["count"] * (1 - last["accuracy"]))
