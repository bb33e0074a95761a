"""Test set-up: 8 emulated CPU devices (before JAX starts), real MNIST when available.

The suite runs on the CPU on every machine, so it means the same on a GPU or TPU machine (whose
kernels round differently and are not bit-reproducible by default). The tests marked
`accelerator` are the exception: `HDR_TEST_ACCELERATOR=1 python -m pytest -m accelerator` runs
them on the machine's GPU or TPU; without an accelerator, or without that variable, they skip.
"""

import os
import sys
from pathlib import Path

import jax

ACCELERATOR = os.environ.get("HDR_TEST_ACCELERATOR") == "1"
# Both must happen before any backend initialises: 8 CPU devices, which tests that need N
# devices ask for by name (`cpu_devices`), and the CPU as the only backend unless asked.
jax.config.update("jax_num_cpu_devices", 8)
if not ACCELERATOR:
    jax.config.update("jax_platforms", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hdr_jax import data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(config, items):
    """Tests marked `accelerator` run only with HDR_TEST_ACCELERATOR=1 on a GPU or TPU, and
    then alone (the others are the CPU suite)."""
    on_accelerator = ACCELERATOR and jax.default_backend() != "cpu"
    if not ACCELERATOR:
        skip_accelerator = "the accelerator tests: HDR_TEST_ACCELERATOR=1 python -m pytest -m " \
                           "accelerator"
    else:
        skip_accelerator = "needs a GPU or TPU; this machine has only the CPU"
    for item in items:
        if "accelerator" in item.keywords and not on_accelerator:
            item.add_marker(pytest.mark.skip(reason=skip_accelerator))
        elif "accelerator" not in item.keywords and on_accelerator:
            item.add_marker(pytest.mark.skip(
                reason="HDR_TEST_ACCELERATOR=1 runs the accelerator tests only"))


def cpu_devices(n: int) -> list:
    """The first `n` CPU devices, whatever the default backend is."""
    devices = jax.devices("cpu")[:n]
    assert len(devices) == n, f"the suite needs {n} CPU devices, has {len(devices)}"
    return devices


def real_mnist_dir() -> Path | None:
    """$HDR_DATA_DIR if it holds the IDX files (CI sets it), else None (tests skip)."""
    d = os.environ.get(data.DATA_DIR_ENV)
    if d and Path(d, "t10k-labels-idx1-ubyte.gz").exists() or (
            d and Path(d, "t10k-labels-idx1-ubyte").exists()):
        return Path(d)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    d = real_mnist_dir()
    if d is None:
        pytest.skip(f"real MNIST not available: set ${data.DATA_DIR_ENV} to the IDX folder")
    return d


@pytest.fixture(scope="session")
def real_mnist(mnist_dir) -> data.Mnist:
    return data.load_idx_dir(mnist_dir)


def synthetic_mnist(n_train: int = 512, n_test: int = 203, seed: int = 0) -> data.Mnist:
    """Learnable toy digits: class c is a bright bar at row 2c+4 plus noise."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.int32)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 4: 2 * c + 6, 4:24] = 255
        return data.Split(images, labels)

    return data.Mnist(train=split(n_train), test=split(n_test), source="synthetic")


@pytest.fixture
def toy_mnist() -> data.Mnist:
    return synthetic_mnist()


def write_idx_dataset(folder: Path, mnist: data.Mnist) -> Path:
    """Writes `mnist` as the four gzipped IDX files, for tests that go through the CLI."""
    return data.write_idx_dir(folder, mnist)


def cli_env(**extra: str) -> dict:
    """The environment of a `train.py` subprocess: this checkout importable first (and what
    was on PYTHONPATH after it: packages may live there), CPU devices only (the tests ask for
    N devices, which only the CPU can emulate, on a GPU machine too)."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "JAX_PLATFORMS": "cpu", **extra}


def run_cli(*args: str, env: dict | None = None, timeout: float = 600):
    """Runs `python train.py ARGS` from the repo root; returns the CompletedProcess."""
    import subprocess

    full_env = cli_env(**(env or {}))
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


SHIPPED = ROOT / "checkpoints" / "alexnet-mnist"


@pytest.fixture(scope="session")
def shipped_checkpoint() -> Path:
    """The committed inference checkpoint; the function loads it through $HDR_CHECKPOINT."""
    assert (SHIPPED / "info.json").is_file(), "the shipped checkpoint is missing"
    os.environ["HDR_CHECKPOINT"] = str(SHIPPED)
    return SHIPPED


# The page in a real headless Chromium (Debian's), against the real local function: shared by
# tests/test_web*.py.
@pytest.fixture(scope="module")
def site(shipped_checkpoint):
    from bench.servers import free_port, running

    port = free_port()
    with running([sys.executable, str(ROOT / "serve.py"), "--port", str(port)], port,
                 env={"HDR_CHECKPOINT": str(shipped_checkpoint)}):
        yield f"http://127.0.0.1:{port}/web/"


@pytest.fixture(scope="module")
def browser():
    import shutil

    from playwright.sync_api import sync_playwright

    from bench.page_reader import CHROMIUM, CHROMIUM_ARGS

    if not shutil.which("chromium"):
        pytest.fail("Debian chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
