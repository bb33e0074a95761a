"""Device counts and the strategies' building blocks."""

import json
import subprocess
import sys
import types

import pytest

from hdr_jax import parallel
from tests.conftest import ROOT, cli_env, synthetic_mnist, write_idx_dataset


@pytest.mark.parametrize("cores, batch, expected", [
    (2, 128, 2), (6, 128, 4), (10, 128, 8), (12, 128, 8), (24, 128, 16), (7, 30, 6),
    (1, 128, 1), (64, 1024, 64), (3, 7, 1)])
def test_cpu_device_count_is_the_most_devices_up_to_the_cores_that_divide_the_batch(
        cores, batch, expected):
    n = parallel.cpu_device_count(cores, batch)
    assert n == expected and batch % n == 0 and n <= cores


@pytest.mark.parametrize("platform, chunk, expected", [
    ("cpu", 1, 1), ("cpu", 20, 1), ("gpu", 1, 160), ("gpu", 20, 8), ("gpu", 29, 6),
    ("tpu", 200, 1)])
def test_chunks_in_flight_keep_160_steps_queued_on_accelerators_and_one_chunk_on_cpu(
        platform, chunk, expected):
    strategy = types.SimpleNamespace(devices=[types.SimpleNamespace(platform=platform)])
    assert parallel.chunks_in_flight(chunk, strategy) == expected


@pytest.mark.parametrize("platform, requested, expected", [
    ("cpu", 0, 200), ("gpu", 0, 468), ("tpu", 0, 468), ("cpu", 7, 7), ("gpu", 50, 50)])
def test_auto_checkpoints_every_200_steps_on_cpu_and_at_epoch_ends_on_accelerators(
        platform, requested, expected):
    strategy = types.SimpleNamespace(devices=[types.SimpleNamespace(platform=platform)])
    assert parallel.checkpoint_every_steps(requested, strategy, 468) == expected


def test_train_runs_on_a_six_core_machine_with_the_default_batch(tmp_path):
    """os.cpu_count() faked to 6: batch 128 used to stop with 'does not divide across 6'."""
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    fake_six_cores = ("import os, runpy, sys; os.cpu_count = lambda: 6; sys.argv = sys.argv[1:]; "
                      "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run(
        [sys.executable, "-c", fake_six_cores, str(ROOT / "train.py"), "--data-dir",
         str(data_dir), "--workdir", str(tmp_path / "w"), "--max-steps", "2", "--width", "0.25",
         "--validation-size", "0", "--no-progress"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CPU: 4 emulated devices (the most, up to 6 cores, that divide batch 128)" in \
        proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["step"] == 2
