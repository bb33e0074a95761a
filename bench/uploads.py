"""Realistic uploads made from MNIST test digits, with their true labels.

Shared by the tests and the benchmarks. Styles: photos of dark ink on tinted paper (lighting
gradient, noise, JPEG), drawings on a transparent canvas (PNG with alpha), screenshots (dark on
white), large off-centre images, and raw MNIST PNGs. `number_upload` writes 2-6 digits on one
line. Everything is seeded.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

STYLES = ("photo", "transparent", "screenshot", "offcentre", "mnist")


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """An array (uint8 grey or RGB(A), or uint16 grey) as the bytes of a PNG file."""
    return _encode(Image.fromarray(array, mode), "PNG")


def _paper_photo(ink: np.ndarray, rng: np.random.Generator, canvas_hw: tuple[int, int]) -> bytes:
    """`ink`: float [h, w] in [0, 1] (1 = ink), placed on a lit sheet of paper, JPEG."""
    H, W = canvas_hw
    h, w = ink.shape
    top, left = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
    full = np.zeros((H, W), np.float32)
    full[top:top + h, left:left + w] = ink
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.78 + 0.17 * ((np.cos(angle) * gx / W + np.sin(angle) * gy / H) + 1) / 2
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)], np.float32)
    ink_colour = np.array([0.1, 0.1, rng.uniform(0.1, 0.45)], np.float32)  # Black or blue pen.
    paper = light[..., None] * tint
    rgb = paper * (1 - full[..., None]) + ink_colour * full[..., None] * light[..., None]
    rgb += rng.normal(0, 0.02, rgb.shape).astype(np.float32)
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return _encode(image, "JPEG", quality=int(rng.integers(60, 92)))


def _scaled(digit: np.ndarray, height: int) -> np.ndarray:
    image = Image.fromarray((digit * 255).astype(np.uint8), "L")
    return np.asarray(image.resize((height, height), Image.Resampling.BICUBIC),
                      np.float32) / 255.0


def digit_upload(digit: np.ndarray, style: str, rng: np.random.Generator) -> bytes:
    """`digit`: uint8 [28, 28] MNIST image."""
    d = digit.astype(np.float32) / 255.0
    if style == "mnist":
        return _encode(Image.fromarray(digit, "L"), "PNG")
    if style == "photo":
        size = int(rng.integers(90, 320))
        return _paper_photo(_scaled(d, size), rng, (int(rng.integers(size + 40, 1200)),
                                                    int(rng.integers(size + 40, 1600))))
    if style == "transparent":
        size = int(rng.integers(150, 400))
        ink = _scaled(d, size)
        dark = rng.random() < 0.5
        colour = 20 if dark else 250
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = (ink * 255).astype(np.uint8)
        return _encode(Image.fromarray(rgba, "RGBA"), "PNG")
    if style == "screenshot":
        size = int(rng.integers(60, 200))
        H, W = size + int(rng.integers(20, 200)), size + int(rng.integers(20, 400))
        canvas = np.full((H, W), 255, np.uint8)
        top, left = rng.integers(0, H - size + 1), rng.integers(0, W - size + 1)
        canvas[top:top + size, left:left + size] = (255 - _scaled(d, size) * 255).astype(np.uint8)
        return _encode(Image.fromarray(canvas, "L").convert("RGB"), "PNG")
    if style == "offcentre":
        size = int(rng.integers(100, 300))
        H, W = 800, 1000
        canvas = np.zeros((H, W), np.uint8)
        top = int(rng.choice([0, H - size]))
        left = int(rng.choice([0, W - size]))
        canvas[top:top + size, left:left + size] = (_scaled(d, size) * 255).astype(np.uint8)
        return _encode(Image.fromarray(canvas, "L"), "PNG")
    raise ValueError(style)


def number_upload(digits: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """Several MNIST digits written on one line, photographed on paper."""
    size = int(rng.integers(80, 160))
    pieces = []
    for d in digits:
        ink = _scaled(d.astype(np.float32) / 255.0, size)
        cols = np.nonzero(ink.max(0) > 0.1)[0]
        pieces.append(ink[:, max(0, cols.min() - 2): cols.max() + 3] if cols.size else ink)
    gap = int(size * rng.uniform(0.08, 0.3))
    width = sum(p.shape[1] for p in pieces) + gap * (len(pieces) - 1)
    line = np.zeros((size, width), np.float32)
    x = 0
    for p in pieces:
        dy = int(rng.integers(-size // 12, size // 12 + 1))
        shifted = np.roll(p, dy, axis=0)
        line[:, x:x + p.shape[1]] = np.maximum(line[:, x:x + p.shape[1]], shifted)
        x += p.shape[1] + gap
    return _paper_photo(line, rng, (size + int(rng.integers(60, 400)),
                                    width + int(rng.integers(60, 600))))
