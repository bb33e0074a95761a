"""The model for the browser (hdr_jax/browser.py): the same network as ONNX."""

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onnx import load, numpy_helper

from hdr_jax import browser
from hdr_jax.checkpoint import load_inference
from hdr_jax.inference import Predictor
from tests.conftest import ROOT, cli_env


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_onnx_model_reads_all_test_digits_as_jax_does(shipped_checkpoint, real_mnist, tmp_path):
    """All 10,000 test digits: the same argmax everywhere, probabilities within 1e-4."""
    path = browser.write_browser_model(shipped_checkpoint, tmp_path / "model.onnx")
    images = (real_mnist.test.images.astype(np.float32) / 255.0)[..., None]
    session = _session(path)
    onnx_probs = np.concatenate([session.run(None, {"images": images[i:i + 1000]})[0]
                                 for i in range(0, len(images), 1000)])
    jax_probs = Predictor.from_checkpoint(shipped_checkpoint).predict(images)
    assert onnx_probs.shape == (10_000, jax_probs.shape[1])
    np.testing.assert_array_equal(onnx_probs.argmax(1), jax_probs.argmax(1))
    np.testing.assert_allclose(onnx_probs, jax_probs, atol=1e-4)


def test_the_shipped_browser_model_holds_the_shipped_arrays(shipped_checkpoint):
    """checkpoints/alexnet-mnist/model.onnx is the export of the arrays beside it."""
    shipped = {t.name: numpy_helper.to_array(t)
               for t in load(str(shipped_checkpoint / browser.BROWSER_MODEL)).graph.initializer}
    fresh = {t.name: numpy_helper.to_array(t)
             for t in browser.to_onnx(*load_inference(shipped_checkpoint)).graph.initializer}
    assert shipped.keys() == fresh.keys()
    for name, array in fresh.items():
        np.testing.assert_array_equal(shipped[name], array, err_msg=name)


def test_one_batch_any_size_and_a_bad_checkpoint_is_one_line(shipped_checkpoint, tmp_path):
    session = _session(shipped_checkpoint / browser.BROWSER_MODEL)
    classes = load_inference(shipped_checkpoint)[1]["model"]["num_classes"]
    for n in (1, 7):
        (probs,) = session.run(None, {"images": np.zeros((n, 28, 28, 1), np.float32)})
        assert probs.shape == (n, classes) and np.allclose(probs.sum(1), 1, atol=1e-5)
    proc = subprocess.run([sys.executable, "-m", "hdr_jax.browser", "--checkpoint",
                           str(tmp_path / "missing")], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "missing").exists()
