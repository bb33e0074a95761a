"""The `train.py` command line: one-line errors with a non-zero exit, never a traceback."""

import json

import pytest

from tests.conftest import run_cli, synthetic_mnist, write_idx_dataset


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for fragment in fragments:
        assert fragment in last, last


def test_missing_data_dir(tmp_path):
    _assert_one_line_error(run_cli("--data-dir", str(tmp_path / "none"), "--workdir",
                                   str(tmp_path / "w")), "not a directory")


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
    exported = run_cli("export", "--workdir", str(tmp_path / "w"), "--out",
                       str(tmp_path / "ck"), *common)
    assert exported.returncode == 0, exported.stderr[-2000:]
    metrics = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert len(metrics["data_sha256"]) == 64 and metrics["train_command"].startswith("python")
    assert set(metrics["per_class"]) == {str(c) for c in range(10)}
    evaluated = run_cli("evaluate", "--checkpoint", str(tmp_path / "ck"), "--report-dir",
                        str(tmp_path / "report"), *common)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    last = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert last["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert last["count"] == 203
    assert "precision" in evaluated.stdout and "macro avg" in evaluated.stdout
    for png in ("confusion_matrix.png", "misclassified.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000
