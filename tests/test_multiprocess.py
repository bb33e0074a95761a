"""Two processes x 4 CPU devices (JAX's distributed runtime, gloo collectives) must train to the
same parameters as one process with 8 devices."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from bench.servers import free_port
from hdr_jax.evaluate import restore_workdir
from tests.conftest import ROOT, cli_env, run_cli, synthetic_mnist, write_idx_dataset

ARGS = ["--epochs", "1", "--max-steps", "6", "--batch-size", "32", "--validation-size", "0",
        "--checkpoint-every-steps", "3", "--width", "0.5", "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["mesh", "pmap"])
def test_two_processes_match_one_process(tmp_path, strategy):
    data_dir = write_idx_dataset(tmp_path / "data", synthetic_mnist())
    common = ["--data-dir", str(data_dir), "--strategy", strategy, *ARGS]
    single = run_cli(*common, "--workdir", str(tmp_path / "single"), "--cpu-devices", "8")
    assert single.returncode == 0, single.stderr[-2000:]

    port = free_port()
    env = cli_env()
    procs = [subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *common, "--workdir", str(tmp_path / "multi"),
         "--cpu-devices", "4", "--coordinator-address", f"127.0.0.1:{port}",
         "--num-processes", "2", "--process-id", str(i)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]

    a, b = restore_workdir(tmp_path / "single"), restore_workdir(tmp_path / "multi")
    assert a.step == b.step == 6
    # Cross-process all-reduces (gloo) sum in another order: equal to float tolerance.
    for x, y in zip(jax.tree.leaves(a.variables), jax.tree.leaves(b.variables), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=2e-6)
    # Only process 0 writes the run's metrics.
    assert len((tmp_path / "multi" / "metrics.jsonl").read_text().splitlines()) == 1
