import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hdr_jax.augment import augment_batch
from hdr_jax.config import AugmentConfig

IDENTITY = AugmentConfig(max_rotation_deg=0, scale_range=(1.0, 1.0), max_shift_px=0,
                         max_shear_deg=0)


def _digit_batch(n=4):
    x = np.zeros((n, 28, 28, 1), np.float32)
    x[:, 8:20, 12:16] = 1.0
    return jnp.asarray(x)


def test_identity_and_disabled_leave_images_unchanged():
    x = _digit_batch()
    keys = jax.random.split(jax.random.key(0), 4)
    np.testing.assert_allclose(augment_batch(x, keys, IDENTITY), x, atol=1e-6)
    off = dataclasses.replace(AugmentConfig(), enabled=False)
    np.testing.assert_array_equal(augment_batch(x, keys, off), x)


def test_per_example_keys_make_batch_split_irrelevant_and_examples_differ():
    x = _digit_batch(6)
    keys = jax.random.split(jax.random.key(1), 6)
    whole = augment_batch(x, keys, AugmentConfig())
    parts = jnp.concatenate([augment_batch(x[:2], keys[:2], AugmentConfig()),
                             augment_batch(x[2:], keys[2:], AugmentConfig())])
    np.testing.assert_allclose(whole, parts, atol=1e-6)
    assert not np.allclose(whole[0], whole[1])
    assert whole.shape == x.shape and float(whole.min()) >= 0.0 and float(whole.max()) <= 1.0


def test_shift_moves_the_centre_of_mass_by_at_most_max_shift():
    config = dataclasses.replace(IDENTITY, max_shift_px=2.0)
    x = _digit_batch(64)
    out = np.asarray(augment_batch(x, jax.random.split(jax.random.key(2), 64), config))[..., 0]
    rows = np.arange(28)
    com_r = (out.sum(2) * rows).sum(1) / out.sum((1, 2))
    com_c = (out.sum(1) * rows).sum(1) / out.sum((1, 2))
    base_r, base_c = 13.5, 13.5
    assert np.all(np.abs(com_r - base_r) <= 2.01) and np.all(np.abs(com_c - base_c) <= 2.01)
    assert np.std(com_r) > 0.5  # Shifts really vary.
    # Ink is conserved by a pure shift (bilinear, away from the border).
    np.testing.assert_allclose(out.sum((1, 2)), 48.0, rtol=1e-4)


def test_elastic_option_changes_images():
    x = _digit_batch(2)
    keys = jax.random.split(jax.random.key(3), 2)
    elastic = dataclasses.replace(IDENTITY, elastic_alpha=34.0)
    assert not np.allclose(augment_batch(x, keys, elastic), x)
