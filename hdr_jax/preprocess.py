"""Any reasonable upload -> exactly what the model was trained on.

MNIST digits are white ink on black, scaled (keeping the aspect ratio) to fit 20x20, and placed
in 28x28 so that their centre of mass is at the centre. This module decodes an upload with
Pillow (EXIF orientation, alpha, palette, 16-bit, CMYK), decides the polarity, removes uneven
lighting and paper tint, crops to the ink and rebuilds that format. `number` mode first cuts a
line of handwriting into digits. Shared by the HTTP function, the CLI and the tests.

scipy.ndimage is imported where it is used, not with the module: importing it takes ~0.3 s, which
a serving cold start spends while XLA compiles the model (see `serving.create_service`).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

MAX_PIXELS = 25_000_000
WORK_SIDE = 512  # Big photos are analysed at this size; a digit needs far fewer pixels.
EXIF_ORIENTATION = 0x0112
ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the turn that undoes it.
# Uploads are decoded at reduced size down to this long side before any float copy is made,
# which bounds a request's memory whatever it sends (25 MP RGBA would be 400 MB in float32).
DECODE_SIDE = 2 * WORK_SIDE


class PreprocessError(ValueError):
    """An upload that cannot become MNIST digits: not an image, damaged, or empty. The
    message is one sentence for the person who uploaded it."""


class ImageTooLarge(PreprocessError):
    """More pixels than allowed, known from the header before any pixel is decoded."""


class NoDigitFound(PreprocessError):
    def __init__(self, message: str = "no digit found: the image has no visible ink"):
        super().__init__(message)


class NotHandwriting(NoDigitFound):
    """Ink that is not strokes of writing: a grid, a texture, a code."""

    def __init__(self):
        super().__init__("no digit found: the image looks like a pattern or a photo (a grid, a "
                         "texture, a code), not handwriting")


# Handwriting is a few strokes with a few enclosed holes (an 8 has two); a brick wall, grass
# or a QR code is dozens of pieces or holes. Chosen on bench/uploads.py's tuning images
# (digits: at most 7 pieces, 3 holes per digit-width; patterns: 7-206 holes); reported on
# others by bench/non_digits.py.
MAX_PIECES = 24
MAX_HOLES_PER_DIGIT_WIDTH = 4


@dataclasses.dataclass(frozen=True)
class Decoded:
    """An upload decoded for reading: greyscale as a person sees it (float32 [h, w] in [0, 1],
    dark = 0), at most `DECODE_SIDE` pixels on its long side; `scale` is the upload's pixels
    per pixel of `grey`, so boxes map back onto the upload."""

    grey: np.ndarray
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class Digit:
    image: np.ndarray  # float32 [28, 28] in [0, 1], MNIST format.
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the upload's (oriented) pixels.


def decode(raw: bytes, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Bytes -> what a person sees, in grey, at most `DECODE_SIDE` pixels on the long side.

    The pixel count is checked from the header, before any pixel is decoded, so a
    decompression bomb costs nothing; large images are reduced while still 8 or 16 bits per
    channel, so no full-size float copy is ever made."""
    if not raw:
        raise PreprocessError("the upload is empty")
    try:
        image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"the image has more than {max_pixels} pixels") from None
    except Exception:
        raise PreprocessError("the upload is not an image Pillow can read "
                              "(PNG, JPEG, GIF, BMP, WebP, TIFF ...)") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height}, more than {max_pixels} pixels")
    if width < 1 or height < 1:
        raise PreprocessError("the image has no pixels")
    try:
        if image.format == "JPEG" and max(width, height) > DECODE_SIDE:
            # Decode at 1/2..1/8 scale (DCT scaling), never below the working size: much faster.
            factor = WORK_SIDE / max(width, height)
            image.draft("L", (max(1, int(width * factor)), max(1, int(height * factor))))
        image.load()
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        # Reduced first, turned upright after: turning a full-size image copies it.
        image = _reduced(image)
        if orientation in ORIENTATIONS:
            image = image.transpose(ORIENTATIONS[orientation])
        # The long side survives the rotation; JPEG drafting and reduction shrink it.
        return Decoded(_to_grey(image), max(width, height) / max(image.size))
    except PreprocessError:
        raise
    except Exception as e:
        raise PreprocessError(f"the image data is damaged or truncated ({type(e).__name__})") \
            from None


def _reduced(image: Image.Image) -> Image.Image:
    """`image` with its long side brought down to at most `DECODE_SIDE` by an integer box
    reduction. It goes strip by strip, so that no converted full-size copy exists beside the
    decoded image (a 25 MP palette image would be 100 MB as RGBA, 200 MB with the
    premultiplied copy Pillow makes to average alpha correctly)."""
    factor = -(-max(image.size) // DECODE_SIDE)
    if factor <= 1:
        return image
    rows = 64 * factor
    strips = [_reduce_strip(image.crop((0, top, image.width, min(top + rows, image.height))),
                            factor) for top in range(0, image.height, rows)]
    out = Image.new(strips[0].mode, (strips[0].width, sum(s.height for s in strips)))
    for i, strip in enumerate(strips):
        out.paste(strip, (0, i * 64))
    return out


def _reduce_strip(strip: Image.Image, factor: int) -> Image.Image:
    """One strip reduced in a mode `_to_grey` reads: a palette becomes RGBA, 16-bit stays
    16-bit (averaged as 32-bit), alpha is premultiplied while averaging (Pillow does that), so
    transparent pixels lend no colour."""
    if strip.mode in ("P", "PA"):
        strip = strip.convert("RGBA")
    elif strip.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        strip = strip.convert("L" if strip.mode == "1" else "RGB")
    if strip.mode in ("I;16", "I;16B", "I;16L"):
        return strip.convert("I").reduce(factor).convert("I;16")
    return strip.reduce(factor)


def _to_grey(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        grey = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        return np.clip(grey / top, 0, 1).astype(np.float32)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return _flatten_alpha(image.convert("RGBA"))
    return np.asarray(image.convert("L"), np.float32) / 255.0


def _flatten_alpha(image: Image.Image) -> np.ndarray:
    """Composites onto a background that contrasts with the opaque (ink) pixels, so that a
    transparent canvas counts as background whatever colour the strokes are."""
    rgba = np.asarray(image, np.float32) / 255.0
    alpha = rgba[..., 3]
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha.min() > 0.98:
        return grey
    opaque = alpha > 0.5
    ink_is_dark = opaque.any() and float(np.median(grey[opaque])) < 0.5
    background = 1.0 if ink_is_dark else 0.0
    return (grey * alpha + background * (1 - alpha)).astype(np.float32)


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=128, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[np.argmax(between)])


def _sample(image: np.ndarray, target: int = 40_000) -> np.ndarray:
    step = max(1, int(np.sqrt(image.size / target)))
    return image[::step, ::step].ravel()


def _fit_background(ink: np.ndarray, background_mask: np.ndarray) -> np.ndarray:
    """Least-squares quadratic surface through the background pixels (sampled on a grid):
    lighting gradients and vignetting, without the strokes."""
    h, w = ink.shape
    step = max(1, int(np.sqrt(ink.size / 10_000)))
    ys, xs = np.nonzero(background_mask[::step, ::step])
    if len(ys) < 12:
        return np.full_like(ink, float(np.median(_sample(ink))))
    ys, xs = ys * step, xs * step
    y, x = ys.astype(np.float32) / h - 0.5, xs.astype(np.float32) / w - 0.5
    basis = np.stack([np.ones_like(y), y, x, y * y, x * x, x * y], -1)
    # Normal equations: a 6x6 solve instead of an SVD of the whole sample.
    coef = np.linalg.solve(basis.T @ basis + 1e-6 * np.eye(6, dtype=np.float32),
                           basis.T @ ink[ys, xs])
    # Evaluate c0 + c1 y + c2 x + c3 y^2 + c4 x^2 + c5 xy on the grid without building it.
    y = np.arange(h, dtype=np.float32)[:, None] / h - 0.5
    x = np.arange(w, dtype=np.float32)[None, :] / w - 0.5
    c = coef.astype(np.float32)
    return (c[0] + c[1] * y + c[3] * y * y) + (c[2] * x + c[4] * x * x) + c[5] * (y * x)


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Greyscale as seen -> ink intensity in [0, 1] on a zero background (MNIST polarity)."""
    h, w = grey.shape
    m, n = max(1, h // 20), max(1, w // 20)
    border = np.concatenate([grey[:m].ravel(), grey[-m:].ravel(),
                             grey[:, :n].ravel(), grey[:, -n:].ravel()])
    ink = 1.0 - grey if np.median(border) > 0.5 else grey.copy()
    sample = _sample(ink)  # Order statistics from a subsample: same answer, 4-16x cheaper.
    low, high = np.percentile(sample, [50, 99.9])
    if float(high - low) < 0.08:
        raise NoDigitFound()
    threshold = _otsu(sample)
    background = _fit_background(ink, ink < threshold)
    ink = ink - background
    sample = _sample(ink)
    bg_values = sample[sample < _otsu(np.clip(sample, 0, 1))]
    if bg_values.size:
        # Noise floor: paper texture and JPEG ringing sit within a few MADs of the background.
        med = float(np.median(bg_values))
        mad = float(np.median(np.abs(bg_values - med)))
        ink = ink - (med + 4 * 1.4826 * mad)
    ink = np.clip(ink, 0, None)
    strokes = ink[ink > 0]
    if strokes.size == 0:
        raise NoDigitFound()
    top = float(np.percentile(strokes, 95)) if strokes.size > 20 else float(strokes.max())
    if top <= 0.05:
        raise NoDigitFound()
    return np.clip(ink / top, 0, 1).astype(np.float32)


def _keep_digit_components(ink: np.ndarray) -> np.ndarray:
    """Drops specks: components far smaller than the largest one (dust, JPEG blocks)."""
    from scipy import ndimage  # Deferred: see the module docstring.

    mask = ink > 0.15
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        raise NoDigitFound()
    sizes = ndimage.sum_labels(mask, labels, range(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= max(0.05 * sizes.max(), 2)
    if not keep.any() or (sizes.max() < 8 and mask.size > 2000):  # Only specks: noise.
        raise NoDigitFound()
    if keep.sum() > MAX_PIECES:
        raise NotHandwriting()
    # Keep the faint anti-aliased rim around kept strokes too (dilating only around them: the
    # digit is usually a small part of a photo).
    boxes = [box for box, k in zip(ndimage.find_objects(labels), keep[1:], strict=True) if k]
    y0 = max(min(b[0].start for b in boxes) - 2, 0)
    x0 = max(min(b[1].start for b in boxes) - 2, 0)
    y1, x1 = max(b[0].stop for b in boxes) + 2, max(b[1].stop for b in boxes) + 2
    _check_holes(keep[labels[y0:y1, x0:x1]] & mask[y0:y1, x0:x1])
    kept = np.zeros(mask.shape, bool)
    kept[y0:y1, x0:x1] = ndimage.binary_dilation(keep[labels[y0:y1, x0:x1]], iterations=2)
    return np.where(kept, ink, 0.0)


def _check_holes(strokes: np.ndarray) -> None:
    """Raises NotHandwriting when the strokes enclose far more holes than digits have."""
    from scipy import ndimage  # Deferred: see the module docstring.

    background, n = ndimage.label(~strokes)
    if n <= MAX_HOLES_PER_DIGIT_WIDTH:
        return
    edge = np.unique(np.concatenate([background[0], background[-1], background[:, 0],
                                     background[:, -1]]))
    sizes = ndimage.sum_labels(np.ones(strokes.shape), background, range(1, n + 1))
    holes = int(np.sum(sizes >= 4)) - int(np.sum(sizes[edge[edge > 0] - 1] >= 4))
    digit_widths = max(1.0, strokes.shape[1] / strokes.shape[0])
    if holes > MAX_HOLES_PER_DIGIT_WIDTH * digit_widths:
        raise NotHandwriting()


def to_mnist(ink: np.ndarray) -> np.ndarray:
    """Ink crop (white on black, any size) -> 28x28: fit in 20x20 keeping the aspect ratio, then
    centre the centre of mass, as MNIST was made."""
    from scipy import ndimage  # Deferred: see the module docstring.

    ys, xs = np.nonzero(ink > 0)
    if ys.size == 0:
        raise NoDigitFound()
    crop = ink[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if (new_h, new_w) != (h, w):
        crop = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(
            (new_w, new_h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR,
            reducing_gap=None), np.float32)
    crop = np.clip(crop, 0, 1)
    out = np.zeros((28, 28), np.float32)
    top, left = (28 - new_h) // 2, (28 - new_w) // 2
    out[top: top + new_h, left: left + new_w] = crop
    cy, cx = ndimage.center_of_mass(out)
    shift_y, shift_x = round(13.5 - cy), round(13.5 - cx)
    # Clamp so nothing leaves the frame (a very lopsided digit stays whole).
    shift_y = int(np.clip(shift_y, -top, 28 - (top + new_h)))
    shift_x = int(np.clip(shift_x, -left, 28 - (left + new_w)))
    return np.roll(out, (shift_y, shift_x), axis=(0, 1))


def is_mnist_format(grey: np.ndarray) -> bool:
    """Already a 28x28 white-on-black digit (a black frame, some ink): nothing to do. (A few
    MNIST digits reach into the 4-pixel margin, so only the frame's median is asked for.)"""
    if grey.shape != (28, 28):
        return False
    frame = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(frame)) < 0.1 and float(grey.max()) > 0.3


def _working_copy(grey: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = grey.shape
    factor = max(h, w) / WORK_SIDE
    if factor <= 1:
        return grey, 1.0
    small = Image.fromarray(grey, "F").resize((round(w / factor), round(h / factor)),
                                              Image.Resampling.BOX)
    return np.asarray(small, np.float32), factor


def _unpack(image: Decoded | np.ndarray) -> tuple[np.ndarray, float]:
    return (image.grey, image.scale) if isinstance(image, Decoded) else (image, 1.0)


def preprocess_digit(image: Decoded | np.ndarray) -> Digit:
    """One digit anywhere in the image -> MNIST format, and where it was in the upload."""
    grey, scale = _unpack(image)
    h, w = grey.shape
    if is_mnist_format(grey):
        return Digit(grey.astype(np.float32), (0, 0, w, h))
    work, factor = _working_copy(grey)
    ink = _keep_digit_components(ink_map(work))
    ys, xs = np.nonzero(ink > 0)
    box = _scale_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), factor * scale,
                     round(w * scale), round(h * scale))
    return Digit(to_mnist(ink), box)


def _scale_box(box, factor: float, w: int, h: int) -> tuple[int, int, int, int]:
    """A box in working pixels times `factor`, clamped to the upload's `w` x `h`."""
    x0, y0, x1, y1 = box
    return (int(max(0, np.floor(x0 * factor))), int(max(0, np.floor(y0 * factor))),
            int(min(w, np.ceil(x1 * factor))), int(min(h, np.ceil(y1 * factor))))


def segment_number(ink: np.ndarray) -> list[tuple[int, int]]:
    """Column ranges [x0, x1) of the digits of one line of handwriting, left to right.

    Connected components, then three repairs: pieces that overlap horizontally are merged (a
    broken stroke); pieces much shorter than the line are fragments (the detached top bar of a
    5, a break in a 1), joined to the nearest digit or, if far from every digit and small,
    dropped; and pieces much wider than a digit are split at the thinnest columns (touching
    digits)."""
    from scipy import ndimage  # Deferred: see the module docstring.

    mask = ink > 0.15
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        raise NoDigitFound()
    sizes = ndimage.sum_labels(mask, labels, range(1, n + 1))
    objects = ndimage.find_objects(labels)
    pieces = sorted([sl[1].start, sl[1].stop, sl[0].start, sl[0].stop, float(size)]
                    for sl, size in zip(objects, sizes, strict=True)
                    if size >= 0.05 * sizes.max())
    merged: list[list[float]] = []
    for piece in pieces:
        if merged and _overlap(piece, merged[-1]) > 0.5 * min(piece[1] - piece[0],
                                                              merged[-1][1] - merged[-1][0]):
            merged[-1] = _union(merged[-1], piece)
        else:
            merged.append(piece)
    line_height = max(y1 - y0 for _, _, y0, y1, _ in merged)
    digits = [g for g in merged if g[3] - g[2] >= 0.5 * line_height] or merged
    typical_area = float(np.median([g[4] for g in digits]))
    for fragment in (g for g in merged if not any(g is d for d in digits)):
        i = min(range(len(digits)), key=lambda j: -_overlap(fragment, digits[j]))
        if -_overlap(fragment, digits[i]) <= 0.3 * line_height:  # Touching or close.
            digits[i] = _union(digits[i], fragment)
        elif fragment[4] >= 0.25 * typical_area:  # A small digit, not a speck.
            digits.append(fragment)
    digits.sort()
    columns = ink.sum(0)
    out: list[tuple[int, int]] = []
    for x0, x1, *_ in digits:
        x0, x1 = int(x0), int(x1)
        width = x1 - x0
        count = int(round(width / (0.75 * line_height))) if width > 1.1 * line_height else 1
        if count <= 1:
            out.append((x0, x1))
            continue
        cuts = [x0]
        for k in range(1, count):
            centre = x0 + width * k // count
            lo, hi = max(cuts[-1] + 1, centre - width // (3 * count)), centre + width // (3 * count)
            cuts.append(lo + int(np.argmin(columns[lo:hi + 1])) if hi > lo else centre)
        cuts.append(x1)
        out += list(zip(cuts[:-1], cuts[1:], strict=True))
    return out


def _overlap(a: list[float], b: list[float]) -> float:
    """Horizontal overlap of two [x0, x1, y0, y1, area] pieces; negative: the gap between."""
    return min(a[1], b[1]) - max(a[0], b[0])


def _union(a: list[float], b: list[float]) -> list[float]:
    return [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]


def preprocess_number(image: Decoded | np.ndarray) -> list[Digit]:
    """A number written on one line -> its digits in MNIST format, left to right."""
    grey, scale = _unpack(image)
    h, w = grey.shape
    work, factor = _working_copy(grey)
    ink = _keep_digit_components(ink_map(work))
    digits = []
    for x0, x1 in segment_number(ink):
        piece = np.zeros_like(ink)
        piece[:, x0:x1] = ink[:, x0:x1]
        ys, xs = np.nonzero(piece > 0)
        if ys.size == 0:
            continue
        box = _scale_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), factor * scale,
                         round(w * scale), round(h * scale))
        digits.append(Digit(to_mnist(piece), box))
    if not digits:
        raise NoDigitFound()
    return digits
