"""Any reasonable upload -> exactly what the model was trained on.

MNIST digits are white ink on black, scaled (keeping the aspect ratio) to fit 20x20, and placed
in 28x28 so that their centre of mass is at the centre. This module decodes an upload with
Pillow (EXIF orientation, alpha, palette, 16-bit, CMYK), looks inside a frame if the digit is
in one (a plot, a screen, a form's box: `frames`), decides the polarity, removes uneven
lighting, shadows and printed lines, crops to the ink and rebuilds that format. `number` mode
finds every way a line of handwriting may be cut into digits (`number_line`); the recognizer
lets the model choose. Shared by the HTTP function, the CLI and the tests.

scipy.ndimage is imported where it is used, not with the module: importing it takes ~0.3 s, which
a serving cold start spends while XLA compiles the model (see `serving.create_service`).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import itertools

import numpy as np
from PIL import Image

from hdr_jax import frames

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
# Ink levels, as parts of the boldest strokes' 95th percentile: strokes reach `STROKE`, and
# grow through `FAINT_STROKE` (a digit written lightly beside bold ones).
STROKE, FAINT_STROKE = 0.15, 0.05
# Pieces this close (pixels of the working copy) count as one when specks are dropped: grain
# breaks a faint stroke into fragments this far apart.
FRAGMENT_GAP = 4
RING_WIDER = 1.2  # A stamp's ring is this much wider than the writing is tall, at least.
RIM = 1.8  # Of a ring's half-thickness: how far its ragged edge reaches.
# A coloured stamp's ring over a pen's strokes: in the channel where the ring is brightest
# beside the pen, it is `RING_APART` times as bright, or colour cannot tell them apart. Its
# ink has `TINT` times the paper's share of that channel. Chosen on the tuning generator with
# a stamp (session 23).
RING_APART, TINT = 1.2, 1.08
# A ring binder's punched hole (the table dark through it) is a solid round piece: its box
# square within `DISC_SQUARE`, `DISC_FILL` of it inked, its middle `DISC_SOLID` of its side
# from the paper, and `DISC_ROUND` of the circle about its centre that holds it inked. A 0,
# however bold, keeps its middle near a stroke's edge; a bold 6 or 8 whose loops closed is a
# blob, not a circle (0.77 at most on report sets 4, 7 and 8; holes 0.84-0.94) (session 23).
DISC_SQUARE, DISC_FILL, DISC_SOLID, DISC_ROUND = 1.3, 0.7, 0.35, 0.8
# A wire lying on the sheet (a paper clip): strokes under `WIRE_THIN` of the writing's
# strokes wide, in pieces at least `WIRE_PIECE` of its tallest piece long, reaching
# `WIRE_LONG` times as far as that piece. Chosen on the tuning generator with a paper clip
# and with pencil, and checked against spent report sets (session 19).
WIRE_THIN, WIRE_LONG, WIRE_PIECE = 0.5, 1.3, 0.3
# Line heights: a digit is at most `MAX_DIGIT_WIDTH` wide, pieces of ink closer than
# `JOIN_GAP` may be one broken digit, and a piece is cut at up to `MAX_CUTS` places.
MAX_DIGIT_WIDTH, JOIN_GAP, MAX_CUTS = 1.4, 0.3, 12
# A piece is also cut evenly into k digits (2 to `SPACED_UP_TO`: a run of touching digits)
# from k times `SPACED_FROM` line heights wide. Cut from 0.3 line heights a digit, more tuning
# numbers read right, but no more of the report sets (BENCHMARKS.md, session 19), with many
# more spans to read: every digit is offered in halves, and a half can read as a sure digit.
SPACED_FROM, SPACED_UP_TO = 0.45, 6
# A narrow digit (a 1) touching a wide one meets it near the piece's end, where no even
# spacing cuts and no valley shows (the 1's stroke and the 0's side both fill their columns):
# a piece from `NARROW_FROM` line heights wide is also cut `NARROW` line heights in from
# either end. Chosen on tuning seeds 13-14 (0.22, 0.27, 0.32: 90.3, 90.0, 90.1% against
# 89.5%; BENCHMARKS.md, session 22).
NARROW, NARROW_FROM = 0.22, 0.8
# Of a digit's 95th-percentile stroke level: full ink in MNIST format. MNIST's strokes are
# mostly saturated; a photo's, resized, are not, and less so where the pen pressed lightly.
# Chosen on the tuning generator with and without a pressure gradient (session 10).
FULL_INK = 0.6
# Cut inside a piece along the least ink (a path from top to bottom) instead of straight down.
# An experiment (`bench/hard_numbers.py --follow-strokes`), not in the page: off.
FOLLOW_STROKES = False
# A line whose digits are under this many pixels tall in the working copy is read again from
# the decoded pixels around it: a number photographed from afar.
SMALL_LINE = 20
# Strokes are grainy (pencil, chalk, a dim photo's noise) with more than `GRAINY` pits
# (enclosed gaps of at most 4 pixels) per 100 stroke pixels, and are then found again in the
# picture smoothed by a Gaussian of `GRAIN_SIGMA` pixels. Both chosen on the tuning generator
# with pencil, small writing and low light (session 12).
GRAINY, GRAIN_SIGMA = 0.3, 1.5
# Ink is at full strength at the strongest ink within `_window` of it, or at this share of
# the picture's stroke level where all ink nearby is fainter (chosen on the tuning generator
# with glare, pencil, small writing and low light, session 12).
LOCAL_INK = 0.5
# The noise floor: ink is what rises `NOISE_MADS` MADs above the paper's texture; along a line
# of digits, also what rises `FAINT_MADS` where it joins such ink (`_above_the_floor`; equal
# to `NOISE_MADS`, as shipped, it adds nothing). A faint floor of 3 kept faint digits' thin
# strokes (fresh tuning seeds 1-4: 89.1% -> 90.65%) but joined grain to small writing and a
# crumpled sheet's creases to the digits, and read 3 fewer of the eleventh report set at its
# first reading: measured and not shipped (`bench/hard_numbers.py --faint-mads`, session 20;
# the page's port has the shipped floor alone).
NOISE_MADS, FAINT_MADS = 4.0, 4.0
# An underline (a total underlined): a piece of ink wider than tall, clear of the picture's
# sides, whose bottom edge follows one gentle curve (a parabola, nowhere steeper than
# `UNDERLINE_SLOPE`) along `UNDERLINE_COVER` of its width, under two digits or more (standing
# on it or clear above it), at least as long as they are tall and `UNDERLINE_LENGTH` times the
# writing's usual digit height. A 2's flat foot, a 3's and a 2's touching, or the foot of a
# broken 1 are as smooth, but lie under one digit. Chosen on the tuning generator with and
# without an underline (session 13).
UNDERLINE_SLOPE, UNDERLINE_COVER, UNDERLINE_LENGTH = 0.5, 0.8, 1.2
# A line written with a felt-tip marker: strokes wider than `BOLD` of the line's digit height
# blur digits into blobs and join neighbours, so they are thinned to `THIN_TO` (a grey
# erosion) before the line is cut. MNIST's digits, enlarged 4x: 90th percentile 0.17, median
# 0.11 (`stroke_width`). Digit mode reads a lone bold digit as well as a thinned one, so only
# number mode thins. Checked on the tuning generator with and without a marker (session 14).
BOLD, THIN_TO = 0.17, 0.11
# A line written with a fine-liner or in pencil: strokes narrower than `FINE` of the digit
# height break into pieces and read faint, so they are thickened to `THICK_TO` (a grey
# dilation). The tuning generator's plain lines: 5th percentile 0.058, median 0.096; a fine
# pen's median 0.037, pencil's 0.067 (`bench/hard_numbers.py --stroke-widths`). `THICK_TO`
# read the most of 200 tuning numbers with a fine pen and with pencil of 0.08, 0.11 and 0.14
# (`--thick-to`, session 17).
FINE, THICK_TO = 0.05, 0.08
# A printed word before or after a number (a form's "Total", "No."): set apart from the rest
# by more than `WORD_GAP` of the tallest piece, smaller (its pieces' median height under
# `SMALLER_WORD` of the tallest word's), and set as print is: at least `PRINTED_LETTERS`
# pieces, none more than `LETTER_GAP` of its height from the next, all but one (a descender)
# with their bottoms within `BASELINE` of its height of one straight line. A size rule alone
# dropped real digits written small or unevenly; handwritten digits seldom line up so
# exactly, so close. Chosen on the tuning generator with and without a printed word, uneven
# sizes and small writing (session 15).
WORD_GAP, SMALLER_WORD, PRINTED_LETTERS, LETTER_GAP, BASELINE = 0.35, 0.8, 3, 0.3, 0.04
EDGE_RUN = 0.4  # Of a side of the picture: what runs along it is beyond the sheet.
# A piece of ink lying (nearly) all within this share of the picture from its sides, touching
# one and running along at least EDGE_SPAN of it, is the table's edge past a sheet seen in
# perspective, not writing.
EDGE_BAND, EDGE_SPAN = 0.08, 0.25


@dataclasses.dataclass(frozen=True)
class Decoded:
    """An upload decoded for reading: greyscale as a person sees it (float32 [h, w] in [0, 1],
    dark = 0), at most `DECODE_SIDE` pixels on its long side; `scale` is the upload's pixels
    per pixel of `grey`, so boxes map back onto the upload."""

    grey: np.ndarray
    scale: float = 1.0
    rgb: np.ndarray | None = None  # uint8 [h, w, 3] beside `grey`, for colour uploads.


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
        return Decoded(_to_grey(image), max(width, height) / max(image.size), _colour(image))
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


def _colour(image: Image.Image) -> np.ndarray | None:
    """The RGB pixels of a colour upload (where a digit inside a plot is told by its colour),
    unless they are transparent: a drawing on a transparent canvas is read by its alpha."""
    if image.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr") or "transparency" in image.info:
        return None
    if image.mode in ("RGBA", "P"):
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 250:
            return None
    return np.asarray(image.convert("RGB"))


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
    """Otsu's threshold of `values` in [0, 1] (others ignored), over 128 bins."""
    inside = values[(values >= 0) & (values <= 1)]
    # np.histogram's bins, counted by bincount: the same counts, several times faster.
    hist = np.bincount(np.minimum((inside * 128).astype(np.intp), 127), minlength=128)
    centres = (np.arange(128) + 0.5) / 128
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


def _window(grey: np.ndarray) -> int:
    """A window wider than any stroke, narrower than lighting changes, at the working size."""
    return max(3, min(grey.shape) // 4)


def polarised(grey: np.ndarray) -> np.ndarray:
    """Greyscale as seen -> the same with ink bright (MNIST polarity), lighting left in."""
    from scipy import ndimage  # Deferred: see the module docstring.

    h, w = grey.shape
    m, n = max(1, h // 20), max(1, w // 20)
    paper = float(np.median(np.concatenate([grey[:m].ravel(), grey[-m:].ravel(),
                                            grey[:, :n].ravel(), grey[:, -n:].ravel()])))
    if abs(paper - 0.5) > 0.2:  # A clearly light or dark border is the background.
        dark_ink = paper > 0.5
    else:  # A dim photo or a lit screen: ink departs from its surroundings the furthest.
        window = _window(grey)
        # (Smoothed first: a pixel of grain is no detail.)
        detail = ndimage.gaussian_filter(grey, 1.0) - ndimage.uniform_filter(grey, window)
        darkest, brightest = np.percentile(detail, [0.01, 99.99])
        dark_ink = -darkest > brightest
    return 1.0 - grey if dark_ink else grey.copy()


def ink_map(grey: np.ndarray, ink: np.ndarray | None = None,
            region: np.ndarray | None = None, along_a_line: bool = False) -> np.ndarray:
    """Greyscale as seen -> ink intensity in [0, 1] on a zero background (MNIST polarity).
    `ink`: `polarised(grey)`, and `region`: `_region(ink)`, where the caller has them.
    `along_a_line`: a line of digits, each brought to full strength where it is; one digit
    (inside a box, on a screen) is measured against its own strongest strokes."""
    from scipy import ndimage  # Deferred: see the module docstring.

    window = _window(grey)
    ink = polarised(grey) if ink is None else ink
    beyond = _beyond_the_sheet(ink, window, _region(ink) if region is None else region)
    sample = _sample(ink)  # Order statistics from a subsample: same answer, 4-16x cheaper.
    low, high = np.percentile(sample, [50, 99.9])
    if float(high - low) < 0.08:
        raise NoDigitFound()
    # The paper's own brightness: an opening (min, then max, over a window wider than any
    # stroke) keeps lighting gradients, vignetting and the sharp edge of a shadow, and drops
    # the strokes; what rises above it is ink (a top-hat transform).
    ink = ink - _opening(ink, window)
    sample = _sample(ink)
    if along_a_line and FAINT_MADS < NOISE_MADS:  # (Shipped: no faint floor, no second pass.)
        ink = _above_the_floor(ink, _noise_floor(sample), _noise_floor(sample, FAINT_MADS))
    else:
        ink = np.clip(ink - _noise_floor(sample), 0, None)
    strokes = ink[ink > 0]
    if strokes.size == 0:
        raise NoDigitFound()
    top = float(np.percentile(strokes, 95)) if strokes.size > 20 else float(strokes.max())
    if top <= 0.05:
        raise NoDigitFound()
    if not along_a_line:
        return np.where(beyond, 0.0, np.clip(ink / top, 0, 1)).astype(np.float32)
    # Full strength where the ink is (`LOCAL_INK`): a number half washed out by glare is
    # brought up there, not measured against the boldest digit.
    local = np.maximum(ndimage.maximum_filter(ink, size=window), LOCAL_INK * top)
    return np.where(beyond, 0.0, np.clip(ink / local, 0, 1)).astype(np.float32)


def _above_the_floor(top_hat: np.ndarray, floor: float, faint_floor: float) -> np.ndarray:
    """`top_hat` less `faint_floor` where it clears `faint_floor` and joins (8-connected)
    what clears `floor`, else 0: hysteresis across the noise floor. A faint digit's thin
    strokes and its loop's far side, which a photo's grain hides below the floor, stay with
    the strokes they are part of; grain alone never clears the floor, so it stays out."""
    from scipy import ndimage  # Deferred: see the module docstring.

    labels, n = ndimage.label(top_hat > faint_floor, structure=np.ones((3, 3)))
    keep = np.zeros(n + 1, bool)
    keep[labels[top_hat > floor]] = True
    keep[0] = False
    return np.where(keep[labels], top_hat - faint_floor, 0.0).astype(np.float32)


def _noise_floor(sample: np.ndarray, mads: float = NOISE_MADS) -> float:
    """The level paper texture and JPEG ringing stay under, in the top-hat `sample`: `mads`
    MADs above the background's median. The background starts as the darker of Otsu's two
    classes and is then sigma-clipped (kept within 3 MADs, up to five times): where there is little
    ink (small writing, far off) Otsu splits the paper's own texture in two, and its lower
    half alone would put the floor inside the texture."""
    background = sample[sample < _otsu(np.clip(sample, 0, 1))]
    if background.size == 0:
        return 0.0
    for _ in range(5):
        med = float(np.median(background))
        mad = float(np.median(np.abs(background - med)))
        clipped = sample[sample <= med + 3 * 1.4826 * mad]
        if clipped.size == background.size:  # (The same pixels: nothing more would change.)
            break
        background = clipped
    return med + mads * 1.4826 * mad


def _opening(image: np.ndarray, window: int, step: int = 2) -> np.ndarray:
    """A grey opening over a `window`-wide square, computed on `step`x`step` block minima
    and brought back by bilinear zoom: the paper's brightness is smooth, and a full-size
    opening made the 2 MP p50 1.10-1.24x slower (BENCHMARKS.md, session 15). On 4x4 blocks,
    the zoom blurred a hard shadow's edge into a line of ink as strong as the writing; on
    2x2, under half as strong."""
    from scipy import ndimage  # Deferred: see the module docstring.

    h, w = image.shape
    if window < 4 * step or min(h, w) < 8 * step:
        return ndimage.grey_opening(image, size=(window, window))
    hh, ww = -(-h // step) * step, -(-w // step) * step
    padded = np.pad(image, ((0, hh - h), (0, ww - w)), mode="edge")
    # Block minima by strided slices: the same values as reshape(...).min((1, 3)).
    columns = functools.reduce(np.minimum, (padded[:, k::step] for k in range(step)))
    blocks = functools.reduce(np.minimum, (columns[k::step] for k in range(step)))
    small = ndimage.grey_opening(blocks, size=(window // step,) * 2)
    return np.asarray(Image.fromarray(small, "F").resize((ww, hh), Image.Resampling.BILINEAR),
                      np.float32)[:h, :w]


def _region(ink: np.ndarray) -> np.ndarray:
    """The brighter of the two kinds of pixel in polarised `ink` (Otsu's split), before
    lighting is removed: where frames and what lies beyond the sheet are looked for."""
    return ink > _otsu(_sample(ink))


def _beyond_the_sheet(ink: np.ndarray, window: int, region: np.ndarray) -> np.ndarray:
    """Where a photo shows what lies around the sheet (a table seen in perspective): dark
    areas along a side of the picture (`region`: `_region(ink)`) that are thin wedges or
    hold no writing (a shadow across writing is neither), with a margin for the sheet's
    edge."""
    from scipy import ndimage  # Deferred: see the module docstring.

    labels, n = ndimage.label(region)
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    along = np.bincount(edges, minlength=n + 1)
    along[0] = 0
    beyond = np.zeros(ink.shape, bool)
    side = min(ink.shape)
    for index in np.nonzero(along >= EDGE_RUN * side)[0]:  # Rarely more than one.
        sl = ndimage.find_objects((labels == index).astype(np.int32))[0]
        piece = labels[sl] == index
        # (A piece filling its box has no edge inside it to measure from: its box's side.)
        thick = min(piece.shape) if piece.all() else 2 * ndimage.distance_transform_edt(
            piece).max()
        thin = thick <= 0.12 * side
        empty = (ndimage.uniform_filter(ink[sl], 5)[piece].max()
                 - np.median(ink[sl][piece])) < 0.2
        if (thin or empty) and ndimage.label(~piece)[1] <= 2:  # Not a grid of cells.
            beyond[sl] |= piece
    if not beyond.any():
        return beyond
    return ndimage.binary_dilation(beyond, iterations=max(2, window // 4))


def stroke_pieces(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """The strokes as connected pieces (8-connected, numbered 1..n in raster order, 0 where no
    stroke) and their count. A stroke is ink above `STROKE`, grown through ink above
    `FAINT_STROKE` (hysteresis), so a digit written lightly beside bold ones is kept whole,
    not as dots."""
    from scipy import ndimage  # Deferred: see the module docstring.

    labels, n = ndimage.label(ink > FAINT_STROKE, structure=np.ones((3, 3)))
    keep = np.zeros(n + 1, bool)
    keep[labels[ink > STROKE]] = True
    keep[0] = False
    number = np.zeros(n + 1, labels.dtype)
    number[keep] = np.arange(1, int(keep.sum()) + 1)  # The pieces kept, in label's order.
    return number[labels], int(keep.sum())


def _keep_digit_components(ink: np.ndarray, along_a_line: bool = False,
                           rgb: np.ndarray | None = None) -> np.ndarray:
    """Drops what is not writing: printed lines, specks (components far smaller than the
    largest one: dust, JPEG blocks) and punched holes (`_discs`); `along_a_line`, a line
    drawn under the writing too; and a rubber stamp's ring, or else a paper clip's wire,
    where what is kept looks like no writing or stands taller than its pieces (they are
    looked for only then: the ring's search is dear). `rgb`: the upload's colours
    (`Decoded.rgb`), where it has them."""
    try:
        kept = _digit_components(ink, along_a_line)
    except NotHandwriting:
        kept = None
    if kept is None or _taller_than_its_pieces(kept):
        strokes = stroke_pieces(ink)[0] > 0
        if (without := _without_stamp(ink, strokes, rgb)) is ink:
            without = _without_wire(ink, strokes)
        if without is not ink:
            return _digit_components(without, along_a_line)
    if kept is None:
        raise NotHandwriting()
    return kept


def _taller_than_its_pieces(strokes: np.ndarray) -> bool:
    """Whether `strokes` span twice as many rows as their median piece is tall, or one piece
    is 1.4 times as tall: between what written numbers reach and what a stamp's ring kept
    with them does (on the tuning generator, a throwaway look: BENCHMARKS.md, session 18)."""
    rows, cols = np.nonzero(strokes.any(1))[0], np.nonzero(strokes.any(0))[0]
    if rows.size == 0:
        return False
    labels, n = stroke_pieces(strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    if n == 0:
        return False
    heights = _piece_heights(labels)
    median = float(np.median(heights))
    return labels.shape[0] >= 2 * median or max(heights) >= 1.4 * median


def _piece_heights(labels: np.ndarray) -> list[int]:
    """How tall each piece of `labels` (1 to n, none empty) is, specks (under 5% of the
    largest piece) left out."""
    from scipy import ndimage  # Deferred: see the module docstring.

    sizes = np.bincount(labels.ravel())[1:]
    return [ys.stop - ys.start for (ys, _), size in zip(ndimage.find_objects(labels), sizes,
                                                        strict=True)
            if size >= 0.05 * sizes.max()]


def _digit_components(ink: np.ndarray, along_a_line: bool) -> np.ndarray:
    """`_keep_digit_components` but for a stamp's ring."""
    from scipy import ndimage  # Deferred: see the module docstring.

    labels, n = stroke_pieces(ink)
    # (The underline first: a long one would be taken for a printed line, but not whole.)
    if along_a_line and (without := _without_underline(ink, labels, n)) is not ink:
        ink = without
        labels, n = stroke_pieces(ink)
    try:
        without_lines = frames.remove_lines(ink, labels > 0)
    except frames.Pattern:
        raise NotHandwriting() from None
    if without_lines is not ink:
        ink = without_lines
        labels, n = stroke_pieces(ink)
    if n and (without_box := frames.remove_outline(ink, labels)) is not ink:
        ink = without_box
        labels, n = stroke_pieces(ink)
    mask = labels > 0
    if n == 0:
        raise NoDigitFound()
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # Pixels per piece.
    # Not writing: never kept.
    sizes = np.where(_along_the_edges(labels, sizes) | _discs(labels, sizes), 0, sizes)
    keep = np.zeros(n + 1, bool)
    counted, group_of = _with_fragments(labels, sizes)
    keep[1:] = counted >= max(0.05 * sizes.max(), 2)
    if not keep.any() or (sizes.max() < 8 and mask.size > 2000):  # Only specks: noise.
        raise NoDigitFound()
    # Fragments count as one piece, or none beside a piece kept for its own size.
    big = keep[1:] & (sizes >= 0.05 * sizes.max())
    if big.sum() + len(set(group_of[keep[1:] & ~big]) - set(group_of[big])) > MAX_PIECES:
        raise NotHandwriting()
    keep &= _near_the_writing(labels, sizes, along_a_line)
    # Keep the faint anti-aliased rim around kept strokes too (dilating only around them: the
    # digit is usually a small part of a photo).
    strokes = keep[labels]
    rows, cols = np.nonzero(strokes.any(1))[0], np.nonzero(strokes.any(0))[0]
    y0, x0 = max(int(rows[0]) - 2, 0), max(int(cols[0]) - 2, 0)
    y1, x1 = int(rows[-1]) + 3, int(cols[-1]) + 3
    # Holes are counted in the strokes proper: the faint rim hysteresis adds is ragged.
    _check_holes(strokes[y0:y1, x0:x1] & (ink[y0:y1, x0:x1] > STROKE))
    kept = np.zeros(mask.shape, bool)
    kept[y0:y1, x0:x1] = ndimage.binary_dilation(strokes[y0:y1, x0:x1], iterations=2)
    return np.where(kept, ink, 0.0)


def _without_stamp(ink: np.ndarray, strokes: np.ndarray, rgb: np.ndarray | None = None
                   ) -> np.ndarray:
    """`ink` without a rubber stamp's ring, or two one inside the other (`ink` itself if there
    is none): a circle of ink (`frames.find_ring`) at least `RING_WIDER` times as wide as the
    writing is tall (a 0 is no wider than the digits beside it). With the upload's colours
    (`rgb`, any size), the ring is looked for among the strokes of each tint too, and what
    goes is told from the pen by colour (`_stamp_ink`)."""
    from scipy import ndimage  # Deferred: see the module docstring.

    colours = None if rgb is None else _resized(rgb, ink.shape)
    tint = None if colours is None else _tint(strokes, colours)
    ring = frames.find_ring(strokes)
    if ring is None and tint is not None:
        ring = _coloured_ring(strokes, tint)
    if ring is None:
        return ink
    beside = ring.distance(strokes.shape) / ring.half_width  # (In half-thicknesses.)
    if (second := frames.second_ring(strokes & (beside > 1), ring)) is not None:
        beside = np.minimum(beside, second.distance(strokes.shape) / second.half_width)
    rest = strokes & (beside > 1)
    # Slivers of the ring's ragged edge (pieces mostly just beside it) are the ring too.
    slivers, n = ndimage.label(rest, structure=np.ones((3, 3)))
    near = np.bincount(slivers[rest & (beside <= RIM)], minlength=n + 1)
    whole = np.bincount(slivers.ravel(), minlength=n + 1)
    rest &= ~(near >= 0.7 * whole)[slivers]
    # The writing's height: its tallest piece not mostly on the rings (a digit the ring
    # crosses keeps its height; what is left of a patchy ring is no writing; a 5's bar is
    # no measure of it).
    labels, n = ndimage.label(strokes, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    kept = np.bincount(labels[rest], minlength=n + 1)[1:]
    heights = [ys.stop - ys.start for (ys, _), size, left in zip(
        ndimage.find_objects(labels), sizes, kept, strict=True)
        if size >= 0.05 * sizes.max() and left >= 0.5 * size]
    if not heights and rest.any():  # (The ring joins all the writing: its pieces off it.)
        heights = _piece_heights(ndimage.label(rest, structure=np.ones((3, 3)))[0])
    if not heights or 2 * ring.radius < RING_WIDER * max(heights):
        return ink
    stamp = strokes & ~rest
    if colours is not None:
        stamp = _stamp_ink(stamp, rest, colours, tint)
    return np.where(stamp, 0.0, ink).astype(ink.dtype)


def _coloured_ring(strokes: np.ndarray, tint: np.ndarray) -> frames.Ring | None:
    """A stamp's ring found among the strokes of one tint (`frames.find_ring`), where it is
    not found among all of them (a patchy ring crossed by the writing): those whose share of
    a colour channel is `TINT` times the paper's (`tint`: `_tint`; shading darkens every
    channel alike)."""
    rings = [frames.find_ring(strokes & (tint[..., k] > TINT)) for k in range(3)]
    return max((r for r in rings if r is not None), key=lambda r: r.radius, default=None)


def _stamp_ink(on_the_ring: np.ndarray, writing: np.ndarray, rgb: np.ndarray, tint: np.ndarray
               ) -> np.ndarray:
    """A stamp's ink told from the pen's by colour (`rgb`, float [h, w, 3] in 0-255), given
    the strokes on its ring (`on_the_ring`) and the rest (`writing`): in the channel where the
    ring is brightest beside the pen (a red ring is bright in red, a blue or black pen dark),
    the strokes nearer the ring's level there than the pen's: on the ring, all of them (where
    the pen crosses it, it is dark there and stays); off it, those of the ring's tint too (a
    patchy ring's specks, not a faint digit's grey; `tint`: `_tint` of the strokes).
    `on_the_ring` itself where the ring is under `RING_APART` times as bright in every
    channel (a ring the pen's colour)."""
    if on_the_ring.sum() < 10 or writing.sum() < 10:
        return on_the_ring
    ring, pen = np.median(rgb[on_the_ring], 0), np.median(rgb[writing], 0)
    channel = int(np.argmax(ring / (pen + 1)))
    if ring[channel] < RING_APART * pen[channel]:
        return on_the_ring
    bright = rgb[..., channel] >= (pen[channel] + ring[channel]) / 2
    tinted = tint[..., channel] > TINT
    return bright & (on_the_ring | writing & tinted)


def _tint(strokes: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Each pixel's share of each colour channel over the paper's (off the `strokes`; a
    channel the paper has none of counts as a level's worth)."""
    paper = np.maximum(np.median(rgb[~strokes][::7], 0), 1)
    return rgb / (rgb.sum(-1, keepdims=True) + 1) / (paper / (paper.sum() + 1))


def _resized(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Colours (uint8 [h, w, 3]) as float32 at `shape`, each channel box-filtered as
    `_working_copy` filters grey (so that the page's port reads the same)."""
    if rgb.shape[:2] == shape:
        return rgb.astype(np.float32)
    return np.stack([np.asarray(Image.fromarray(rgb[..., c].astype(np.float32), "F").resize(
        shape[::-1], Image.Resampling.BOX), np.float32) for c in range(3)], -1)


def _without_wire(ink: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """`ink` without a wire lying on the sheet, a paper clip (`ink` itself if there is none):
    the `strokes` under `WIRE_THIN` of the width of the strokes that make most of the ink,
    grouped across the bold strokes they cross, where a group reaches `WIRE_LONG` times as far
    as the rest's tallest piece is tall (not the median: a skipping pen breaks the writing
    into short pieces). Writing all in fine strokes (a fine pen, under 3 pixels wide) has
    none thinner by that much; a thin digit is no longer than the line."""
    from scipy import ndimage  # Deferred: see the module docstring.

    distance, ridge = _ridges(strokes)
    if not ridge.any():
        return ink
    # The strokes that make most of the ink: ridge distances weighted by themselves (a
    # stroke's pixels grow with its width), at their median. A long wire has more ridge.
    ridges = np.sort(distance[ridge])
    total = np.cumsum(ridges)
    bold = float(ridges[np.searchsorted(total, 0.5 * total[-1])])
    if (thin := WIRE_THIN * bold) < 1:
        return ink
    # What a disc wider than `thin` reaches, rolled inside the strokes, is writing.
    wide = strokes & ndimage.binary_dilation(distance > thin, iterations=int(np.ceil(thin)) + 1)
    heights = _piece_heights(ndimage.label(wide, structure=np.ones((3, 3)))[0])
    # The wire's pieces either side of a bold stroke it crosses are one wire; bits of grain
    # or of print (each under `WIRE_PIECE` of the tallest piece long) are none of it.
    pieces, n = ndimage.label(strokes & ~wide, structure=np.ones((3, 3)))
    if not heights or n == 0:
        return ink
    reach = np.array([0] + [max(ys.stop - ys.start, xs.stop - xs.start)
                            for ys, xs in ndimage.find_objects(pieces)])
    wire = (reach >= WIRE_PIECE * max(heights))[pieces]
    groups, n = ndimage.label(ndimage.binary_dilation(wire, iterations=int(np.ceil(2 * bold))),
                              structure=np.ones((3, 3)))
    wires = np.where(wire, groups, 0)
    long = np.zeros(n + 1, bool)
    long[1:] = [box is not None and max(box[0].stop - box[0].start, box[1].stop - box[1].start)
                >= WIRE_LONG * max(heights)
                for box in ndimage.find_objects(wires, max_label=n)]
    if not long.any():
        return ink
    return np.where(long[wires], 0.0, ink).astype(ink.dtype)


def _ridges(strokes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each stroke pixel's distance to the paper, and where it peaks (the strokes' middle)."""
    from scipy import ndimage  # Deferred: see the module docstring.

    distance = ndimage.distance_transform_edt(strokes)
    return distance, strokes & (distance >= ndimage.maximum_filter(distance, size=3))


def _with_fragments(labels: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each piece's size (`sizes`, 0 for a piece never kept), a speck's (under 5% of the
    largest piece) that of its group: the pieces within `FRAGMENT_GAP` pixels of it, and of
    them, and so on; and each piece's group (`_fragment_groups`). A faint digit that grain
    broke into fragments is as big as a digit, and a fragment beside a digit as big as the
    digit, where each alone is a speck."""
    group_of, group_sizes = _fragment_groups(labels, sizes)
    return np.where(sizes >= 0.05 * sizes.max(), sizes, group_sizes[group_of]), group_of


def _fragment_groups(labels: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which group of pieces (of `labels`, with `sizes`; those of size 0 in none, group 0)
    within `FRAGMENT_GAP` pixels of each other each piece is in, and each group's pixels.
    Looked for within the box of the pieces of at least 5% of the largest, widened by twice
    its height each way (faint digits are written beside bold ones; and a photo's whole area
    cost 1.2x the 2 MP p50)."""
    from scipy import ndimage  # Deferred: see the module docstring.

    if not ((sizes > 0) & (sizes < 0.05 * sizes.max())).any():  # No specks: nothing to group.
        return np.zeros(sizes.size, np.intp), np.zeros(1, np.intp)
    big = np.concatenate([[False], sizes >= 0.05 * sizes.max()])[labels]
    rows, cols = np.nonzero(big.any(1))[0], np.nonzero(big.any(0))[0]
    reach = 2 * (rows[-1] - rows[0] + 1)
    near = (slice(max(0, rows[0] - reach), rows[-1] + 1 + reach),
            slice(max(0, cols[0] - reach), cols[-1] + 1 + reach))
    pieces = np.concatenate([[False], sizes > 0])[labels[near]]
    groups, n = ndimage.label(ndimage.binary_dilation(pieces, iterations=FRAGMENT_GAP // 2),
                              structure=np.ones((3, 3)))
    group_of = np.zeros(sizes.size + 1, np.intp)
    group_of[labels[near][pieces]] = groups[pieces]
    return group_of[1:], np.bincount(groups[pieces], minlength=n + 1)


def _without_underline(ink: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """`ink` without the line drawn under the writing (`ink` itself if there is none): where it
    touches a digit, only the line's own thickness is taken from the digit's foot."""
    from scipy import ndimage  # Deferred: see the module docstring.

    h, w = labels.shape
    boxes = ndimage.find_objects(labels)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    big = sizes >= 0.05 * sizes.max(initial=0)
    out = ink
    for k, (ys, xs) in enumerate(boxes):
        if (xs.stop - xs.start < max(12, ys.stop - ys.start) or not big[k] or ys.start == 0
                or xs.start == 0 or ys.stop == h or xs.stop == w):
            continue
        piece = labels[ys, xs] == k + 1
        if frames.box_lines(piece) is not None:  # A row of printed cells: not underlined.
            continue
        found = _underline_band(piece)
        if found is None:
            continue
        band, curve, above = found
        # The writing above the line that does not touch it: pieces centred over it, ending
        # above it.
        over = [j for j, (oy, ox) in enumerate(boxes) if j != k and big[j]
                and xs.start <= (ox.start + ox.stop) // 2 < xs.stop
                and oy.stop <= ys.start + curve[(ox.start + ox.stop) // 2 - xs.start]]
        # Under two digits or more: one standing on it (part of its piece), the others clear.
        heights = [oy.stop - oy.start for j, (oy, _) in enumerate(boxes) if j != k and big[j]]
        typical = float(np.median(heights)) if heights else 0.0
        tallest = max([above] + [boxes[j][0].stop - boxes[j][0].start for j in over])
        under = len(over) + (above >= 0.5 * typical)
        if under >= 2 and xs.stop - xs.start >= max(tallest, UNDERLINE_LENGTH * typical):
            out = out.copy() if out is ink else out
            out[ys, xs][band] = 0.0
    return out


def _underline_band(piece: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Where in a piece's box (`piece`: bool, its pixels) a line lies along its bottom edge,
    that edge (a row per column) and how tall the piece is above it; None where the bottom
    edge follows no gentle curve along most of the piece's width (`UNDERLINE_*`)."""
    h, w = piece.shape
    rows = np.arange(h)[:, None]
    from_below = piece[::-1]
    first = np.argmax(from_below, 0)  # Rows up from the bottom to the piece's lowest pixel.
    # The run of ink going up from there: its thickness.
    solid = from_below | (rows < first)
    thick = np.where((~solid).any(0), np.argmax(~solid, 0), h) - first
    x, bottom = np.arange(w), (h - 1 - first).astype(np.float64)
    coef = np.polyfit(x, bottom, 2)
    residual = np.abs(bottom - np.polyval(coef, x))
    trimmed = residual <= np.quantile(residual, UNDERLINE_COVER)  # Drop the worst fifth, refit.
    coef = np.polyfit(x[trimmed], bottom[trimmed], 2)
    stroke = float(np.median(thick[trimmed]))
    on = np.abs(bottom - np.polyval(coef, x)) <= max(1.5, 0.5 * stroke)
    slope = np.abs(2 * coef[0] * np.array([0, w - 1]) + coef[1])
    if on.sum() < UNDERLINE_COVER * w or slope.max() > UNDERLINE_SLOPE:
        return None
    curve = np.polyval(np.polyfit(x[on], bottom[on], 2), x)
    # The line's own thickness where it lies alone; its usual one where a digit touches it.
    own = np.where(on & (thick <= 2 * stroke), thick, stroke)
    band = (rows >= curve - own - 1) & (rows <= curve + 1.5)
    rest = np.nonzero((piece & ~band).any(1))[0]
    above = int(np.ceil(curve.max() - stroke)) - int(rest[0]) if rest.size else 0
    return band, curve, max(0, above)


def _writing(work: np.ndarray, ink: np.ndarray, region: np.ndarray, along_a_line: bool,
             rgb: np.ndarray | None = None) -> np.ndarray:
    """The writing in the working copy `work` (`ink`: `polarised(work)`, `region`:
    `_region(ink)`) as `ink_map` intensities, what is not writing dropped. Grainy strokes
    (pencil, chalk, a dim photo's noise) are found again in `ink` smoothed, where the writing
    is tall enough that its pits are grain, not the bends of a thin stroke, or where grain
    made it look like no handwriting (a mesh of holes). `along_a_line`: as for `ink_map`;
    `rgb`: as for `_keep_digit_components`."""
    from scipy import ndimage  # Deferred: see the module docstring.

    found = ink_map(work, ink, region, along_a_line)
    try:
        strokes = _keep_digit_components(found, along_a_line, rgb)
    except NotHandwriting:
        # Grain in pencil or chalk strokes counts as holes or pieces; smoothed, it does not.
        if _pits(found > STROKE) <= GRAINY:
            raise
        return _keep_digit_components(ink_map(work, ndimage.gaussian_filter(ink, GRAIN_SIGMA),
                                              region, along_a_line), along_a_line, rgb)
    rows, cols = np.nonzero(strokes.any(1))[0], np.nonzero(strokes.any(0))[0]
    box = strokes[max(0, rows[0] - 1):rows[-1] + 2, max(0, cols[0] - 1):cols[-1] + 2]
    if rows[-1] - rows[0] < SMALL_LINE or _pits(box > STROKE) <= GRAINY:
        return strokes
    try:
        smooth = ndimage.gaussian_filter(ink, GRAIN_SIGMA)
        return _keep_digit_components(ink_map(work, smooth, region, along_a_line),
                                      along_a_line, rgb)
    except NoDigitFound:
        return strokes


def line_writing(grey: np.ndarray) -> np.ndarray:
    """The writing of a line of digits in `grey` (at the working size, no frame around it),
    as `number_line` finds it: `_writing`'s intensities along a line. For training examples
    (`spans.line_examples` of photographed lines)."""
    ink = polarised(grey)
    return _writing(grey, ink, _region(ink), along_a_line=True)


def _pits(strokes: np.ndarray) -> float:
    """Gaps of at most 4 pixels that `strokes` enclose, per 100 stroke pixels."""
    return float(np.sum(_gaps(strokes) <= 4) * 100 / max(1, int(strokes.sum())))


def _gaps(strokes: np.ndarray) -> np.ndarray:
    """The size of each gap `strokes` enclose: 4-connected pieces of what is not stroke,
    away from the sides."""
    from scipy import ndimage  # Deferred: see the module docstring.

    background, n = ndimage.label(~strokes)
    inside = np.ones(n + 1, bool)
    inside[np.concatenate([background[0], background[-1], background[:, 0],
                           background[:, -1]])] = False
    inside[0] = False
    return np.bincount(background.ravel(), minlength=n + 1)[inside]


def _along_the_edges(labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Which pieces are a thin strip along the picture's sides (`EDGE_BAND`, `EDGE_SPAN`):
    what is left of the table past a sheet in perspective where it is thinner than a stroke
    is wide, which `_beyond_the_sheet` misses when shading joins it to the paper."""
    from scipy import ndimage  # Deferred: see the module docstring.

    h, w = labels.shape
    by, bx = max(1, int(EDGE_BAND * h)), max(1, int(EDGE_BAND * w))
    band = np.zeros(labels.shape, bool)
    band[:by], band[-by:], band[:, :bx], band[:, -bx:] = True, True, True, True
    in_band = np.bincount(labels[band], minlength=sizes.size + 1)[1:]
    out = np.zeros(sizes.size, bool)
    for k, (ys, xs) in enumerate(ndimage.find_objects(labels)):
        touches = ys.start == 0 or xs.start == 0 or ys.stop == h or xs.stop == w
        runs = xs.stop - xs.start >= EDGE_SPAN * w or ys.stop - ys.start >= EDGE_SPAN * h
        out[k] = touches and runs and in_band[k] >= 0.9 * sizes[k]
    return out


def _discs(labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Which pieces are solid round discs (`DISC_SQUARE`, `DISC_FILL`, `DISC_SOLID`,
    `DISC_ROUND`: a ring binder's punched holes, a blot), where a piece that is none stands
    at least as tall (alone, a disc is what there is to read: a 0 filled in). Specks (under
    5% of the largest piece) are none: a faint stroke that grain broke up is solid bits
    (`_with_fragments`)."""
    from scipy import ndimage  # Deferred: see the module docstring.

    boxes = ndimage.find_objects(labels)
    discs = np.zeros(sizes.size, bool)
    for k, (ys, xs) in enumerate(boxes):
        h, w = ys.stop - ys.start, xs.stop - xs.start
        # A disc the picture's side cuts goes on past it: any part of it is square enough.
        cut = (ys.start == 0, ys.stop == labels.shape[0], xs.start == 0, xs.stop == labels.shape[1])
        if (sizes[k] < 0.05 * sizes.max() or min(h, w) < 4 or sizes[k] < DISC_FILL * h * w
                or (not any(cut) and max(h, w) > DISC_SQUARE * min(h, w))):
            continue
        piece = np.pad(labels[ys, xs] == k + 1, 1)
        if not any(cut) and _roundness(piece) < DISC_ROUND:
            continue
        piece[0], piece[-1], piece[:, 0], piece[:, -1] = cut  # (Past a side: ink, not paper.)
        middle = ndimage.distance_transform_edt(piece).max()
        discs[k] = middle >= DISC_SOLID * max(h, w)
    if not discs.any():
        return discs
    heights = np.array([ys.stop - ys.start for ys, _ in boxes])
    writing = ~discs & (sizes >= 0.05 * sizes.max())
    return discs & (heights <= heights[writing].max(initial=0))


def _roundness(piece: np.ndarray) -> float:
    """How much of the circle about its centre that holds it a piece (bool) fills: 0.9 for a
    disc (pixels' corners stick out), less for any other shape."""
    ys, xs = np.nonzero(piece)
    reach = float(np.hypot(ys - ys.mean(), xs - xs.mean()).max()) + 0.5
    return ys.size / (np.pi * reach ** 2)


def _near_the_writing(labels: np.ndarray, sizes: np.ndarray, along_a_line: bool = False
                      ) -> np.ndarray:
    """Which pieces lie near the rows of the writing's largest piece: a piece further than half
    its height above or below them is no part of the writing (a shadow's corner, a smudge at
    the sheet's edge), and would stretch the line's height if kept. That piece is the largest
    clear of the picture's sides where one is at least a quarter the size of the largest of
    all: the grainy edge of a shadow, cut off by a side, can outgrow a number written small.
    `along_a_line`: a piece close beside one kept, and level with it, is kept too."""
    from scipy import ndimage  # Deferred: see the module docstring.

    h, w = labels.shape
    boxes = ndimage.find_objects(labels)
    clear = np.array([ys.start > 0 and xs.start > 0 and ys.stop < h and xs.stop < w
                      for ys, xs in boxes])
    inner = np.where(clear, sizes, 0)
    largest = int(inner.argmax() if inner.max() >= 0.25 * sizes.max() else sizes.argmax())
    near = [_level(ys, boxes[largest][0]) for ys, _ in boxes]
    # A tilted line drifts: along a line, a piece close beside a piece of it (half its height
    # apart at most, as digits are spaced), centred within its rows, is part of it too.
    if along_a_line:
        big = np.nonzero(sizes >= 0.05 * sizes.max())[0]  # (Specks are dropped anyway.)
        grown = True
        while grown:
            grown = False
            for j in big:
                ys, xs = boxes[j]
                if not near[j] and any(near[i] and _beside(ys, xs, *boxes[i]) for i in big):
                    near[j] = grown = True
    return np.array([False] + near)


def _beside(rows: slice, cols: slice, of_rows: slice, of_cols: slice) -> bool:
    """Whether a piece's box (`rows`, `cols`) is centred within another's rows and at most
    half its height to its left or right."""
    height = of_rows.stop - of_rows.start
    gap = max(cols.start - of_cols.stop, of_cols.start - cols.stop)
    return gap <= 0.5 * height and of_rows.start <= (rows.start + rows.stop) / 2 <= of_rows.stop


def _level(rows: slice, of: slice) -> bool:
    """Whether rows lie within half its height of a piece's rows `of`."""
    margin = 0.5 * (of.stop - of.start)
    return of.start - margin <= rows.stop and rows.start <= of.stop + margin


def _check_holes(strokes: np.ndarray) -> None:
    """Raises NotHandwriting when the strokes enclose far more holes than digits have."""
    from scipy import ndimage  # Deferred: see the module docstring.

    # A pixel-wide gap in a stroke is no hole: pencil and chalk leave grainy strokes.
    holes = int(np.sum(_gaps(ndimage.grey_closing(strokes, size=(3, 3)) | strokes) >= 4))
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
    # Every digit at full ink, as MNIST's are: a faint digit beside bold ones reads as well,
    # and so does the faint side of one the pen pressed unevenly.
    strokes = crop[crop > 0.05]
    if strokes.size > 20:
        crop = crop / max(FULL_INK * float(np.percentile(strokes, 95)), 0.05)
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


def _colours(image: Decoded | np.ndarray) -> np.ndarray | None:
    return image.rgb if isinstance(image, Decoded) else None


def preprocess_digit(image: Decoded | np.ndarray, look_inside: int = 2) -> Digit:
    """One digit anywhere in the image -> MNIST format, and where it was in the upload. A
    digit inside a frame (a plot, a screen, a box; up to `look_inside` frames deep) is read
    inside it."""
    grey, scale = _unpack(image)
    h, w = grey.shape
    if is_mnist_format(grey):
        return Digit(grey.astype(np.float32), (0, 0, w, h))
    work, factor = _working_copy(grey)
    ink = polarised(work)
    region = _region(ink)
    if look_inside and (inner := _inside_frame(image, ink, region, factor)):
        try:
            digit = preprocess_digit(inner[0], look_inside - 1)
            return dataclasses.replace(digit, box=_shift(digit.box, *inner[1:]))
        except NoDigitFound:
            pass  # Not a frame after all (a bold 0): read the whole upload.
    ink = _writing(work, ink, region, along_a_line=False, rgb=_colours(image))
    ys, xs = np.nonzero(ink > 0)
    box = _scale_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), factor * scale,
                     round(w * scale), round(h * scale))
    return Digit(to_mnist(ink), box)


def _inside_frame(image: Decoded | np.ndarray, ink: np.ndarray, region: np.ndarray,
                  factor: float) -> tuple[Decoded, int, int] | None:
    """What is inside a frame in the picture (`ink`: the working copy `polarised`, `region`:
    its `_region`), as an upload of its own (a colour picture in grey by colour contrast),
    and its offset in the upload's pixels; None without a frame, or where an outline's edge
    is a ramp, not a step (a flash photo's dark corners). Frames are found before lighting
    is removed: a plot's filled area is wider than any stroke, so `ink_map` would take it
    for paper."""
    frame = frames.find_frame(region)
    if frame is None or not frames.sharp(ink, frame):
        return None
    grey, scale = _unpack(image)
    y0, y1, x0, x1 = (int(round(v * factor)) for v in frame.box)
    rgb = _colours(image)
    inner = (frames.colour_contrast(rgb[y0:y1, x0:x1]) if rgb is not None
             else grey[y0:y1, x0:x1])
    if frame.inside is not None:  # Only what the outline encloses, not its corners.
        inside = np.asarray(Image.fromarray(frame.inside).resize(inner.shape[::-1]))
        inner = np.where(inside, inner, np.median(inner[inside]) if inside.any() else 0)
    return Decoded(inner.astype(np.float32), scale), round(x0 * scale), round(y0 * scale)


def _shift(box: tuple[int, int, int, int], dx: int, dy: int) -> tuple[int, int, int, int]:
    return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy


def _scale_box(box, factor: float, w: int, h: int) -> tuple[int, int, int, int]:
    """A box in working pixels times `factor`, clamped to the upload's `w` x `h`."""
    x0, y0, x1, y1 = box
    return (int(max(0, np.floor(x0 * factor))), int(max(0, np.floor(y0 * factor))),
            int(min(w, np.ceil(x1 * factor))), int(min(h, np.ceil(y1 * factor))))


def segment_number(ink: np.ndarray
                   ) -> tuple[list[int], list[int], list[tuple[int, int]], float]:
    """Where one line of handwriting may be cut into digits: the candidate cut columns, left to
    right (the line's ends included); which of them separate its pieces; the pairs (i, j) of
    cuts between which one digit may lie; and the height of the line's digits.

    Connected components, then two repairs: pieces that overlap horizontally are merged (a
    broken stroke); pieces much shorter than the line are fragments (the detached top bar of a
    5, a break in a 1), joined to the nearest digit or, if far from every digit and small,
    dropped. Between pieces is a cut; inside a piece, touching digits meet where few pixels are
    ink: the valleys of its column profile, and the even spacings of a piece 2-4 digits wide,
    are cuts too. A span may join pieces (a broken digit) or split one (touching digits);
    which spans read best is for the model to say (`recognition`)."""
    labels, n = stroke_pieces(ink)
    if n == 0:
        raise NoDigitFound()
    merged: list[list[float]] = []
    for piece in _line_pieces(labels, n):
        if merged and _overlap(piece, merged[-1]) > 0.5 * min(piece[1] - piece[0],
                                                              merged[-1][1] - merged[-1][0]):
            merged[-1] = _union(merged[-1], piece)
        else:
            merged.append(piece)
    merged = _without_printed_words(merged)
    tallest = max(y1 - y0 for _, _, y0, y1, _ in merged)
    digits = [g for g in merged if g[3] - g[2] >= 0.5 * tallest]
    # The line's digit height is their median: digits of uneven size, or two touching ones off
    # a wavy baseline, make the tallest overstate it, and a digit much shorter than the line
    # is taken for a stroke (`recognition.LineCosts`).
    line_height = float(np.median([g[3] - g[2] for g in digits]))
    typical_area = float(np.median([g[4] for g in digits]))
    for fragment in (g for g in merged if not any(g is d for d in digits)):
        i = min(range(len(digits)), key=lambda j: -_overlap(fragment, digits[j]))
        if -_overlap(fragment, digits[i]) <= 0.3 * line_height:  # Touching or close.
            digits[i] = _union(digits[i], fragment)
        elif fragment[4] >= 0.25 * typical_area:  # A small digit, not a speck.
            digits.append(fragment)
    digits.sort()
    columns = np.convolve(ink.sum(0), np.ones(3) / 3, mode="same")
    bounds = [int(digits[0][0]), *((int(a[1]) + int(b[0])) // 2
                                   for a, b in itertools.pairwise(digits)), int(digits[-1][1])]
    # Pieces this close may be one digit broken in two; further apart they are two digits.
    apart = [False] + [b[0] - a[1] > JOIN_GAP * line_height
                       for a, b in itertools.pairwise(digits)] + [False]
    cuts, between, wall = [bounds[0]], [0], [False]
    for k, (x0, x1) in enumerate(itertools.pairwise(bounds)):
        inside = _valleys(columns, x0, x1, line_height)
        cuts += inside + [x1]
        wall += [False] * len(inside) + [apart[k + 1]]
        between.append(len(cuts) - 1)
    spans = [(i, j) for i in range(len(cuts)) for j in range(i + 1, len(cuts))
             if (cuts[j] - cuts[i] <= MAX_DIGIT_WIDTH * line_height and not any(wall[i + 1:j]))
             or (i in between and j == between[between.index(i) + 1])]
    return cuts, between, spans, line_height


def _line_pieces(labels: np.ndarray, n: int) -> list[list[float]]:
    """The `n` stroke pieces of `labels` as [x0, x1, y0, y1, area], left to right, less
    specks; specks kept as fragments (`_with_fragments`) are one piece with the others of
    their group: a faint digit that grain broke up is one piece of ink."""
    from scipy import ndimage  # Deferred: see the module docstring.

    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    group_of, group_sizes = _fragment_groups(labels, sizes)
    speck = sizes < 0.05 * sizes.max()
    fragments: dict[int, list[float]] = {}
    pieces = []
    for sl, size, group, small in zip(ndimage.find_objects(labels), sizes, group_of, speck,
                                      strict=True):
        piece = [sl[1].start, sl[1].stop, sl[0].start, sl[0].stop, float(size)]
        if not small:
            pieces.append(piece)
        elif group_sizes[group] >= 0.05 * sizes.max():
            fragments[group] = _union(fragments[group], piece) if group in fragments else piece
    return sorted(pieces + list(fragments.values()))


def _without_printed_words(pieces: list[list[float]]) -> list[list[float]]:
    """The pieces of a line ([x0, x1, y0, y1, area], left to right) less a printed word at its
    start or end (a form's "Total" before the number): words are split at gaps wider than
    `WORD_GAP` of the tallest piece; the first or the last of two or more, whose pieces'
    median height is under `SMALLER_WORD` of the tallest word's and which is set as print
    is (`_set_as_print`), is dropped."""
    tallest = max(y1 - y0 for _, _, y0, y1, _ in pieces)
    words, right = [[pieces[0]]], pieces[0][1]
    for piece in pieces[1:]:
        if piece[0] - right > WORD_GAP * tallest:
            words.append([])
        words[-1].append(piece)
        right = max(right, piece[1])
    if len(words) == 1:
        return pieces
    heights = [float(np.median([g[3] - g[2] for g in word])) for word in words]
    printed = [k in (0, len(words) - 1) and height < SMALLER_WORD * max(heights)
               and _set_as_print(word, height)
               for k, (word, height) in enumerate(zip(words, heights, strict=True))]
    return [g for word, dropped in zip(words, printed, strict=True) if not dropped for g in word]


def _set_as_print(word: list[list[float]], height: float) -> bool:
    """Whether a word's pieces are set as printed letters are: at least `PRINTED_LETTERS`,
    each within `LETTER_GAP` of `height` of the next, and all but one (a descender: the y of
    "Qty") with their bottoms within `BASELINE` of `height` of one line. The line's slope is
    the median of the slopes between pairs of pieces (Theil-Sen), so a descender does not tilt
    it; a line photographed tilted tilts it."""
    if len(word) < PRINTED_LETTERS or any(b[0] - a[1] > LETTER_GAP * height
                                          for a, b in itertools.pairwise(word)):
        return False
    bottoms = np.array([g[3] for g in word], float)
    centres = np.array([(g[0] + g[1]) / 2 for g in word], float)
    i, j = np.triu_indices(len(word), 1)
    apart = centres[i] != centres[j]
    slope = (float(np.median((bottoms[j] - bottoms[i])[apart] / (centres[j] - centres[i])[apart]))
             if apart.any() else 0.0)
    offsets = bottoms - slope * centres
    on_line = np.abs(offsets - float(np.median(offsets))) <= BASELINE * height
    return int(on_line.sum()) >= max(PRINTED_LETTERS, len(word) - 1)


def _valleys(columns: np.ndarray, x0: int, x1: int, line_height: float) -> list[int]:
    """Where the piece [x0, x1) may be cut inside: the columns with least ink (touching
    digits meet there), the even spacings of a piece wide enough for 2-6 digits, and where a
    narrow digit at either end would end."""
    width = x1 - x0
    inside = columns[x0:x1]
    if width < 3 or not (inside > 0).any():
        return []
    valleys = [x0 + i for i in range(1, width - 1)
               if inside[i] <= inside[i - 1] and inside[i] < inside[i + 1]
               and inside[i] < 0.6 * float(np.median(inside[inside > 0]))]
    spaced = [x0 + width * k // count for count in range(2, SPACED_UP_TO + 1)
              for k in range(1, count)
              if width >= SPACED_FROM * count * line_height]
    narrow = ([int(x0 + NARROW * line_height), int(x1 - NARROW * line_height)]
              if width >= NARROW_FROM * line_height else [])
    interior: list[int] = []
    gap = max(2, int(0.12 * line_height))
    # Deepest valleys first, then even spacings, then a narrow digit's ends.
    for x in sorted(valleys, key=lambda x: columns[x]) + spaced + narrow:
        if x0 + gap <= x <= x1 - gap and all(abs(x - y) >= gap for y in interior):
            interior.append(x)
    return sorted(interior[:MAX_CUTS])


def _overlap(a: list[float], b: list[float]) -> float:
    """Horizontal overlap of two [x0, x1, y0, y1, area] pieces; negative: the gap between."""
    return min(a[1], b[1]) - max(a[0], b[0])


def _union(a: list[float], b: list[float]) -> list[float]:
    return [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]


@dataclasses.dataclass(frozen=True)
class NumberLine:
    """A line of handwriting as the digits it may hold: `n_cuts` candidate cuts, left to
    right, and for each pair (i, j) of them that may hold one digit, that digit in MNIST format.
    Reading it is choosing a path of spans from the first cut to the last (touching digits
    split, broken ones joined); the recognizer lets the model choose. `pieces` are the cuts
    between connected pieces of ink: the reading before any choice."""

    n_cuts: int
    pieces: tuple[int, ...]
    spans: dict[tuple[int, int], Digit]
    height: float  # The line's digit height in the upload's pixels.


def number_line(image: Decoded | np.ndarray, look_inside: int = 2, closer: bool = True
                ) -> NumberLine:
    """A number written on one line -> every digit it may hold, in MNIST format. A number
    inside a frame (a form's box, a screen) is read inside it; one written small in a large
    picture (`closer`), again at the decoded resolution around it."""
    grey, scale = _unpack(image)
    h, w = grey.shape
    work, factor = _working_copy(grey)
    ink = polarised(work)
    region = _region(ink)
    if look_inside and (inner := _inside_frame(image, ink, region, factor)):
        try:
            return _shifted(number_line(inner[0], look_inside - 1), *inner[1:])
        except NoDigitFound:
            pass  # Not a frame after all: read the whole upload.
    ink = _writing(work, ink, region, along_a_line=True, rgb=_colours(image))
    cuts, pieces, spans, line_height = segment_number(ink)
    if closer and factor > 1 and line_height < SMALL_LINE:
        near = _around_the_writing(image, ink, factor, line_height)
        try:
            return _shifted(number_line(near[0], 0, closer=False), *near[1:])
        except NoDigitFound:
            pass  # (Seen closer, the writing is specks after all: the whole picture's reading.)
    # Only the writing the cuts span: a printed word beside it (`_without_printed_words`),
    # thickened, would join its letters and pass for writing.
    writing = np.zeros_like(ink)
    writing[:, cuts[0]:cuts[-1] + 1] = ink[:, cuts[0]:cuts[-1] + 1]
    if (restroked := _restroked(writing, line_height)) is not None:
        ink = restroked
        cuts, pieces, spans, line_height = segment_number(ink)
    size = (round(w * scale), round(h * scale))
    paths = cut_paths(ink, cuts, pieces, line_height)
    digits = {(i, j): digit_between(ink, paths[i], paths[j], factor * scale, size)
              for i, j in spans}
    # A span holding no ink (a gap) is no digit; each piece holds ink, so a path remains.
    return NumberLine(len(cuts), tuple(pieces),
                      {span: d for span, d in digits.items() if d is not None},
                      line_height * factor * scale)


def stroke_width(ink: np.ndarray) -> float:
    """The strokes' usual width in pixels, where they are at least half their full strength
    (the 95th percentile): twice the distance from their middle (the ridge of the distance
    to the paper) to their edge, less the middle pixel counted twice."""
    distance, ridge = _ridges(ink > 0.5 * float(np.percentile(ink[ink > 0], 95)))
    return 2 * float(np.median(distance[ridge])) - 1


def _restroked(ink: np.ndarray, line_height: float) -> np.ndarray | None:
    """A line of bold strokes (a marker) thinned to MNIST's usual stroke width, or of fine
    ones (a fine-liner, pencil) thickened to `THICK_TO`, by a grey erosion or dilation with a
    near-disk (a square would change diagonal strokes 1.4 times as much); None where the
    strokes are neither bold (`BOLD`) nor fine (`FINE`), or thinning would leave no stroke."""
    from scipy import ndimage  # Deferred: see the module docstring.

    width = stroke_width(ink)
    if width > BOLD * line_height:
        change, radius = ndimage.grey_erosion, round((width - THIN_TO * line_height) / 2)
    elif width < FINE * line_height:
        change, radius = ndimage.grey_dilation, round((THICK_TO * line_height - width) / 2)
    else:
        return None
    if radius < 1:
        return None
    out = ink
    for step in range(radius):  # Square and cross in turn: an octagon, near a disk.
        out = change(out, footprint=ndimage.generate_binary_structure(
            2, 2 if step % 2 == 0 else 1))
    return out if (out > STROKE).any() else None


def _shifted(line: NumberLine, dx: int, dy: int) -> NumberLine:
    """`line` read in a part of the upload, its boxes moved into the whole upload's pixels."""
    return dataclasses.replace(line, spans={
        span: dataclasses.replace(d, box=_shift(d.box, dx, dy)) for span, d in line.spans.items()})


def _around_the_writing(image: Decoded | np.ndarray, ink: np.ndarray, factor: float,
                        line_height: float) -> tuple[Decoded, int, int]:
    """The writing found in the working copy (`ink`, `factor` times smaller than `image`),
    with two line heights of paper around it, cut from `image` at its decoded resolution, and its
    offset in the upload's pixels: a number photographed from afar, read closer."""
    grey, scale = _unpack(image)
    ys, xs = np.nonzero(ink > 0)
    margin = 2 * line_height
    y0, x0 = (max(0, int((v.min() - margin) * factor)) for v in (ys, xs))
    y1 = min(grey.shape[0], int(np.ceil((ys.max() + 1 + margin) * factor)))
    x1 = min(grey.shape[1], int(np.ceil((xs.max() + 1 + margin) * factor)))
    rgb = _colours(image)
    return (Decoded(grey[y0:y1, x0:x1], scale, None if rgb is None else rgb[y0:y1, x0:x1]),
            round(x0 * scale), round(y0 * scale))


def digit_between(ink: np.ndarray, left: int | np.ndarray, right: int | np.ndarray,
                  factor: float, size: tuple[int, int]) -> Digit | None:
    """The ink between two cuts as one digit, or None where there is none. A cut is a column,
    or a column per row (a path along the least ink, `cut_paths`)."""
    x0, x1 = int(np.min(left)), int(np.max(right))
    piece = ink[:, x0:x1]
    if np.ndim(left) or np.ndim(right):  # Paths: keep only what lies between them.
        piece = np.where(between_cuts(left, right, slice(0, ink.shape[0]), x0, x1), piece, 0.0)
    ys, xs = np.nonzero(piece > 0)
    if ys.size == 0:
        return None
    box = _scale_box((x0 + xs.min(), ys.min(), x0 + xs.max() + 1, ys.max() + 1), factor, *size)
    return Digit(to_mnist(piece), box)


def between_cuts(left: int | np.ndarray, right: int | np.ndarray, rows: slice, x0: int,
                 x1: int) -> np.ndarray:
    """bool [rows, x1 - x0]: which pixels of those rows and columns [x0, x1) of a line lie
    between two cuts (columns, or a column per row of the line)."""
    def per_row(cut):
        return (np.asarray(cut)[rows] if np.ndim(cut) else np.full(rows.stop - rows.start, cut)
                )[:, None]
    columns = np.arange(x0, x1)[None, :]
    return (columns >= per_row(left)) & (columns < per_row(right))


def cut_paths(ink: np.ndarray, cuts: list[int], pieces: list[int], line_height: float
              ) -> list[int | np.ndarray]:
    """Where each cut runs: its column; with `FOLLOW_STROKES`, a cut inside a piece is a path
    from top to bottom through the least ink, within 0.3 line heights of its column and
    half-way to the next cuts (so paths never cross). Touching digits seldom meet along a
    vertical line."""
    paths: list[int | np.ndarray] = list(cuts)
    if not FOLLOW_STROKES:
        return paths
    for k in range(1, len(cuts) - 1):
        if k in pieces:
            continue
        reach = int(min(0.3 * line_height, (cuts[k] - cuts[k - 1]) / 2,
                        (cuts[k + 1] - cuts[k]) / 2))
        if reach >= 1:
            paths[k] = _least_ink_path(ink, cuts[k], reach)
    return paths


def _least_ink_path(ink: np.ndarray, column: int, reach: int) -> np.ndarray:
    """Dynamic programming down the rows: one column per row within `reach` of `column`,
    moving at most one column a row, the least ink crossed (a step aside and distance from
    `column` cost a little, so on paper the path runs straight)."""
    xs = np.arange(column - reach, column + reach + 1)
    band = ink[:, xs[0]:xs[-1] + 1] + 0.02 * np.abs(xs - column)
    cost = band[0].copy()
    moves = np.zeros(band.shape, np.int8)
    for y in range(1, band.shape[0]):
        options = np.stack([np.r_[np.inf, cost[:-1]] + 0.05, cost, np.r_[cost[1:], np.inf] + 0.05])
        moves[y] = options.argmin(0) - 1
        cost = options.min(0) + band[y]
    path = np.empty(band.shape[0], np.int64)
    i = int(cost.argmin())
    for y in range(band.shape[0] - 1, -1, -1):
        path[y] = xs[i]
        i += moves[y, i]
    return path


def preprocess_number(image: Decoded | np.ndarray) -> list[Digit]:
    """A number written on one line -> its connected pieces of ink as digits in MNIST format,
    left to right (the recognizer also weighs splitting and joining them: `number_line`)."""
    line = number_line(image)
    return [line.spans[i, j] for i, j in itertools.pairwise(line.pieces)]
