"""On a GPU or TPU machine only (they skip elsewhere): the accelerator trains what the CPU
trains, and `--deterministic` makes reruns bit-identical there."""

import jax
import numpy as np
import pytest

from hdr_jax import parallel
from hdr_jax.checkpoint import fingerprint
from hdr_jax.config import AugmentConfig
from hdr_jax.evaluate import restore_workdir
from hdr_jax.train import train_and_evaluate
from tests.conftest import cpu_devices, run_cli, synthetic_mnist, write_idx_dataset
from tests.test_train import small_config

pytestmark = pytest.mark.accelerator

def test_training_on_the_accelerator_matches_the_cpu(tmp_path):
    dataset = synthetic_mnist()
    params = {}
    for name, devices in (("accelerator", jax.devices()[:1]), ("cpu", cpu_devices(1))):
        config = small_config(tmp_path / name, max_steps=4, augment=AugmentConfig())
        strategy = parallel.MeshStrategy(devices=devices)
        result = train_and_evaluate(config, dataset, progress=False, strategy=strategy)
        params[name] = jax.tree.leaves(jax.device_get(result["state"].params))
    # Accelerators multiply float32 in reduced precision (TF32 on NVIDIA) by default.
    for a, b in zip(params["accelerator"], params["cpu"], strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-3)

def test_deterministic_reruns_are_bit_identical(tmp_path):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    fingerprints = []
    for run in ("a", "b"):
        proc = run_cli("--data-dir", str(data_dir), "--workdir", str(tmp_path / run),
                       "--max-steps", "8", "--width", "0.5", "--validation-size", "0",
                       "--deterministic", "--no-progress", env={"JAX_PLATFORMS": ""})
        assert proc.returncode == 0, proc.stderr[-2000:]
        fingerprints.append(fingerprint(restore_workdir(tmp_path / run).variables))
    assert fingerprints[0] == fingerprints[1]
