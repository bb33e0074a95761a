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


NON_DIGITS = ("blank", "bricks", "grass", "noise", "qr", "blobs")


def non_digit_upload(kind: str, rng: np.random.Generator) -> bytes:
    """A photo-like upload with no digit in it: a blank lit sheet, a brick wall, grass, sensor
    noise, a QR-like code, or smooth shaded shapes (a cup, a pet's outline). JPEG or PNG."""
    h, w = int(rng.integers(300, 900)), int(rng.integers(300, 900))
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.75 + 0.2 * (gx / w * np.cos(angle) + gy / h * np.sin(angle))
    if kind == "blank":
        grey = light + rng.normal(0, 0.02, (h, w))
    elif kind == "bricks":
        bh, bw = int(rng.integers(20, 60)), int(rng.integers(50, 140))
        row = (gy // bh).astype(int)
        mortar = ((gy % bh) < 4) | (((gx + (row % 2) * bw / 2) % bw) < 4)
        grey = np.where(mortar, 0.85, 0.35 + 0.15 * rng.random((h // bh + 1, w // 10 + 2))[
            row, (gx // 10).astype(int)]) * light + rng.normal(0, 0.04, (h, w))
    elif kind == "grass":
        grey = np.full((h, w), 0.6, np.float32)
        for _ in range(int(rng.integers(150, 400))):
            x, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            length, lean = int(rng.integers(20, 90)), rng.uniform(-0.4, 0.4)
            for t in range(length):
                yy, xx = y0 - t, int(x + lean * t)
                if 0 <= yy < h and 0 <= xx < w - 2:
                    grey[yy, xx:xx + 2] = rng.uniform(0.05, 0.35)
        grey = grey * light
    elif kind == "noise":
        grey = rng.random((h, w))
    elif kind == "qr":
        n = int(rng.integers(21, 41))
        cells = rng.random((n, n)) < 0.5
        for cy, cx in ((0, 0), (0, n - 7), (n - 7, 0)):  # Finder patterns.
            cells[cy:cy + 7, cx:cx + 7] = True
            cells[cy + 1:cy + 6, cx + 1:cx + 6] = False
            cells[cy + 2:cy + 5, cx + 2:cx + 5] = True
        side = min(h, w) * 0.8
        ys = ((gy - (h - side) / 2) / side * n).astype(int)
        xs = ((gx - (w - side) / 2) / side * n).astype(int)
        inside = (ys >= 0) & (ys < n) & (xs >= 0) & (xs < n)
        grey = np.where(inside & cells[np.clip(ys, 0, n - 1), np.clip(xs, 0, n - 1)], 0.1, 0.95)
    elif kind == "blobs":
        grey = light.copy()
        for _ in range(int(rng.integers(2, 6))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.1, 0.4) * h, rng.uniform(0.1, 0.4) * w
            inside = ((gy - cy) / ry) ** 2 + ((gx - cx) / rx) ** 2 < 1
            shade = rng.uniform(0.1, 0.6) + 0.2 * (gx - cx) / rx
            grey = np.where(inside, shade, grey)
    else:
        raise ValueError(kind)
    image = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")
    return _encode(image, "JPEG", quality=int(rng.integers(60, 92)))
