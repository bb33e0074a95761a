"""On-device data augmentation: a random affine (and optional elastic) warp per example.

Each example draws its distortion from its own PRNG key, so a batch augments identically however
it is split across devices. Used in training only; serving never calls it. Evaluation may ask
for `tta_views`: fixed one-pixel shifts whose predictions are averaged (test-time augmentation).
"""

from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

from hdr_jax.config import AugmentConfig


def random_affine_matrix(key: jax.Array, config: AugmentConfig) -> tuple[jax.Array, jax.Array]:
    """Forward 2x2 transform (rotation . shear . scale) and a shift in pixels, for one image."""
    k_rot, k_scale, k_shear, k_shift = jax.random.split(key, 4)
    symmetric = lambda k, shape=(): jax.random.uniform(k, shape, minval=-1.0, maxval=1.0)
    angle = jnp.deg2rad(config.max_rotation_deg) * symmetric(k_rot)
    lo, hi = config.scale_range
    scale = jax.random.uniform(k_scale, (), minval=lo, maxval=hi)
    shear = jnp.deg2rad(config.max_shear_deg) * symmetric(k_shear)
    shift = config.max_shift_px * symmetric(k_shift, (2,))
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.array([[cos, -sin], [sin, cos]])
    shearing = jnp.array([[1.0, jnp.tan(shear)], [0.0, 1.0]])
    return rotation @ shearing * scale, shift


def augment_image(image: jax.Array, key: jax.Array, config: AugmentConfig) -> jax.Array:
    """Warps one [H, W, C] float image; the background stays black (0)."""
    k_affine, k_elastic = jax.random.split(key)
    forward, shift = random_affine_matrix(k_affine, config)
    height, width, _ = image.shape
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2])
    # dm-pix maps each output pixel o to the input pixel `matrix @ o + offset`, so it wants the
    # inverse of the forward warp out = F (in - c) + c + shift.
    inverse = jnp.linalg.inv(forward)
    matrix = jnp.eye(3).at[:2, :2].set(inverse)
    offset = jnp.concatenate([centre - inverse @ (centre + shift), jnp.zeros(1)])
    warped = pix.affine_transform(image, matrix, offset=offset, order=1, mode="constant", cval=0.0)
    if config.elastic_alpha > 0:
        warped = pix.elastic_deformation(k_elastic, warped, config.elastic_alpha,
                                         config.elastic_sigma, order=1, mode="constant")
    if config.stroke_gaps > 0:  # Its own key: the warp's draws stay as they were.
        warped = stroke_gaps(warped, jax.random.fold_in(key, 7), config)
    return warped


def stroke_gaps(image: jax.Array, key: jax.Array, config: AugmentConfig) -> jax.Array:
    """Erases up to `config.stroke_gaps` discs of `gap_radius` pixels centred on the strokes of
    one [H, W, C] image (each drawn with probability 1/2, to 0-25% of its ink): a pen that
    skips, so the model learns to read across a gap."""
    k_where, k_keep, k_left = jax.random.split(key, 3)
    height, width, _ = image.shape
    ink = image[..., 0].ravel()
    # Centres on the strokes: ink above half, each pixel alike (a blank image: anywhere).
    logits = jnp.where(ink > 0.5, 0.0, -jnp.inf)
    logits = jnp.where(jnp.isfinite(logits).any(), logits, 0.0)
    n = config.stroke_gaps
    centres = jax.random.categorical(k_where, logits, shape=(n,))
    cy, cx = centres // width, centres % width
    keep = jax.random.bernoulli(k_keep, 0.5, (n,))
    left = jax.random.uniform(k_left, (n,), maxval=0.25)
    yy, xx = jnp.mgrid[0:height, 0:width]
    inside = ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
              <= config.gap_radius ** 2) & keep[:, None, None]
    factor = jnp.prod(jnp.where(inside, left[:, None, None], 1.0), axis=0)
    return image * factor[..., None]


def augment_batch(images: jax.Array, keys: jax.Array, config: AugmentConfig) -> jax.Array:
    """[B, H, W, C] float images, one PRNG key per image."""
    if not config.enabled:
        return images
    return jax.vmap(augment_image, in_axes=(0, 0, None))(images, keys, config)


TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # (dy, dx) in pixels.


def shift_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """[N, H, W] images moved by (dy, dx) pixels, filling the uncovered edge with 0 (black)."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """The test-time views of a batch: itself, and shifted one pixel up, down, left, right.
    (MNIST digits are centred by centre of mass, which is only accurate to a pixel.)"""
    return [shift_images(images, dy, dx) for dy, dx in TTA_SHIFTS]
