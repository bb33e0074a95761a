import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hdr_jax.augment import augment_batch, shift_images, tta_views
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


def test_shift_images_moves_pixels_and_fills_black():
    images = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5) + 1
    down_left = shift_images(images, 1, -2)
    np.testing.assert_array_equal(down_left[:, 1:, :3], images[:, :3, 2:])
    assert (down_left[:, 0] == 0).all() and (down_left[:, :, 3:] == 0).all()
    np.testing.assert_array_equal(shift_images(images, 0, 0), images)


def test_tta_views_are_the_image_and_its_four_one_pixel_shifts():
    images = np.zeros((1, 28, 28), np.uint8)
    images[0, 10, 10] = 255
    views = tta_views(images)
    peaks = [tuple(int(i) for i in np.argwhere(v[0])[0]) for v in views]
    assert peaks == [(10, 10), (9, 10), (11, 10), (10, 9), (10, 11)]


def test_stroke_gaps_only_erase_ink_in_a_few_small_discs_on_the_strokes():
    """A pen that skips: with the warp an identity, gaps take ink away and add none; what
    they change lies within `gap_radius` of at most `stroke_gaps` centres on the bar; the
    warp's own draws are untouched (the same keys without gaps give the same images)."""
    x = _digit_batch(16)
    keys = jax.random.split(jax.random.key(2), 16)
    gapped = np.asarray(augment_batch(x, keys, dataclasses.replace(IDENTITY, stroke_gaps=3)))
    plain = np.asarray(augment_batch(x, keys, IDENTITY))
    np.testing.assert_allclose(plain, x, atol=1e-6)
    assert (gapped <= plain + 1e-6).all()
    changed = np.abs(gapped - plain)[..., 0] > 1e-6
    assert changed.any(axis=(1, 2)).sum() >= 8  # Each gap is drawn with probability 1/2.
    for mask in changed:
        ys, xs = np.nonzero(mask)
        # Inside the bar's rows and columns, grown by the radius; 3 discs of radius 1.5: at
        # most 3 x 9 pixels.
        assert ys.size <= 27 and (ys.size == 0 or (ys.min() >= 6 and ys.max() <= 21
                                                   and xs.min() >= 10 and xs.max() <= 17))
