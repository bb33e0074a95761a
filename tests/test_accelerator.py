"""On a GPU or TPU machine only, with HDR_TEST_ACCELERATOR=1 (they skip elsewhere): the
accelerator trains what the CPU trains, and `--deterministic` makes reruns bit-identical there."""

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
    """The same losses on both, to float32 rounding. Not the same parameters: Adam moves a
    parameter whose gradient is ~0 by a whole learning rate either way, so a rounding
    difference in such a gradient flips a step, with no effect on the loss."""
    dataset = synthetic_mnist()
    losses = {}
    # float32 products on both (NVIDIA's default for float32 is TF32), chunks of 2 steps.
    with jax.default_matmul_precision("highest"):
        for name, devices in (("accelerator", jax.devices()[:1]), ("cpu", cpu_devices(1))):
            config = small_config(tmp_path / name, max_steps=4, augment=AugmentConfig(),
                                  steps_per_dispatch=2)
            strategy = parallel.MeshStrategy(devices=devices)
            result = train_and_evaluate(config, dataset, progress=False, strategy=strategy)
            losses[name] = [result["train_loss"], result["test_loss"]]
    np.testing.assert_allclose(losses["accelerator"], losses["cpu"], rtol=1e-3)

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
