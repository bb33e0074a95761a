"""The serving Predictor: ahead-of-time compiled batch buckets give the model's own answers."""

import threading

import jax
import numpy as np

from hdr_jax.inference import Predictor


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28)).astype(np.float32)


def test_precompiled_buckets_match_the_model_applied_directly(shipped_checkpoint):
    predictor = Predictor.from_checkpoint(shipped_checkpoint, buckets=(1, 8), precompile=(1,))
    images = _images(11)
    expected = np.asarray(jax.nn.softmax(predictor.model(images[..., None])
                                         / predictor.temperature, axis=-1))
    # 11 images: one full bucket of 8, then 3 padded up to 8; single images use bucket 1.
    np.testing.assert_allclose(predictor.predict(images), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predictor.predict(images[:1]), expected[:1], rtol=1e-5, atol=1e-6)
    classes = predictor.model.config.num_classes  # 10 digits, and "not one digit".
    assert classes == 11 and predictor.predict(np.zeros((0, 28, 28))).shape == (0, classes)


def test_each_bucket_compiles_once_even_when_asked_from_many_threads(shipped_checkpoint):
    predictor = Predictor.from_checkpoint(shipped_checkpoint, buckets=(1, 8))
    calls = []
    jitted = predictor._probabilities

    class Counting:
        def lower(self, state, images):
            calls.append(images.shape)
            return jitted.lower(state, images)

    predictor._probabilities = Counting()
    threads = [threading.Thread(target=predictor.predict, args=(_images(5, i),))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    predictor.warmup()
    assert sorted(calls) == [(1, 28, 28), (8, 28, 28)]


def test_a_calibration_temperature_divides_the_logits(shipped_checkpoint):
    predictor = Predictor.from_checkpoint(shipped_checkpoint, buckets=(8,))
    cooled = Predictor(predictor.model, {**predictor.info, "calibration": {"temperature": 2.0}},
                       buckets=(8,))
    images = _images(8)
    # At the checkpoint's own temperature T, log p = z / T - logsumexp(z / T), so
    # softmax(log p * T / 2) = softmax(z / 2): the reference goes through the same compiled
    # model as the cooled answer.
    log_p = np.log(predictor.predict(images).astype(np.float64)) * predictor.temperature
    np.testing.assert_allclose(cooled.predict(images), jax.nn.softmax(log_p / 2.0, axis=-1),
                               rtol=1e-5, atol=1e-6)
    assert cooled.predict(images).argmax(-1).tolist() == predictor.predict(images).argmax(
        -1).tolist()
