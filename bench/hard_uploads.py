"""Hard uploads: written numbers photographed badly, and digits inside other pictures.

`hard_number_upload` writes 2-8 MNIST digits on one line with uneven pen pressure (faint
digits beside bold ones), touching neighbours, tilt, grain, shading, blur and JPEG quality
40-95. It is the *tuning* generator; `unseen=True` adds what tuning never saw (a perspective
view, motion blur, paper fibres, a pressure gradient inside each digit) and makes the report
set kept under `tests/data/hard_numbers/` (`python bench/hard_numbers.py --write-report-set`);
the second report set, `tests/data/hard_numbers_2/`, adds `UNSEEN_2` too (uneven sizes on a
wavy baseline, slant, a skipping pen, low light); the third, `UNSEEN_3` (ruled paper, glare,
small writing, pencil) and the fourth `UNSEEN_4` (the other side's writing showing through, an
underline, a steeper tilt, chalk on a board), each effect drawn per number with probability
1/2; the fifth `UNSEEN_5` (a felt-tip marker, a folded sheet, a sticky note on a desk, a photo
scaled down by a messenger app), each of the twenty drawn with probability 1/4; the sixth
`UNSEEN_6` (a red pen, a crumpled sheet, a printed word before the number, a photo stored
turned with the EXIF tag that turns it back), each of the 24 with probability 1/4; the
seventh `UNSEEN_7` (a separator between groups of digits, a hard-edged shadow, the lines above
or below cut off by the photo's edge, a fine pen), each of the 28 with probability 1/4; the
eighth `UNSEEN_8` (digits written far apart, dot-grid paper, a coffee cup's ring, a thumb over
the photo's edge), each of the 32 with probability 1/4; the ninth `UNSEEN_9` (one digit to a
printed cell, a highlighter's band, a rubber stamp's ring, a phone's flash), each of the 36
with probability 1/4; the tenth `UNSEEN_10` (a cheque's security print, a carbon copy, a
fountain pen's blots, a paper clip), each of the 40 with probability 1/4; the eleventh
`UNSEEN_11` (continental 1s and 7s, a yellow legal pad, a halftone screen, a photo out of
focus), each of the 44 with probability 1/4; the twelfth `UNSEEN_12` (digits rubbed out near
the number, a ring binder's punched holes, a wide-angle lens's barrel distortion, ink
bleeding into absorbent paper), each of the 48 with probability 1/24: two at a time on
average, as most real photos have them.

`framed_upload` puts one digit inside another picture: a notebook's plot of the 28x28 array
(any colormap, axes, ticks, margins), a screen photographed, a printed box or form cell, ruled
or squared paper. Everything is seeded.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

FRAMES = ("plot", "screen", "box", "ruled", "squared")
# Colormaps as (position, RGB) stops, so the generator needs no matplotlib: sampled from
# matplotlib 3.9's tables at 0, 0.25, 0.5, 0.75, 1.
COLORMAPS = {
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "magma": [(0, 0, 4), (81, 18, 124), (183, 55, 121), (252, 137, 97), (252, 253, 191)],
    "plasma": [(13, 8, 135), (126, 3, 168), (204, 71, 120), (248, 149, 64), (240, 249, 33)],
    "gray": [(0, 0, 0), (64, 64, 64), (128, 128, 128), (191, 191, 191), (255, 255, 255)],
    "gray_r": [(255, 255, 255), (191, 191, 191), (128, 128, 128), (64, 64, 64), (0, 0, 0)],
    "hot": [(10, 0, 0), (191, 0, 0), (255, 117, 0), (255, 255, 48), (255, 255, 255)],
    "jet": [(0, 0, 127), (0, 128, 255), (124, 255, 121), (255, 148, 0), (127, 0, 0)],
    "Blues": [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
    "coolwarm": [(59, 76, 192), (141, 176, 254), (221, 221, 221), (244, 154, 123), (180, 4, 38)],
}


def _jpeg(image: Image.Image, quality: int, orientation: int = 1) -> bytes:
    """JPEG bytes; with an EXIF `orientation` (3, 6, 8), the pixels are stored turned so that
    the tag turns them back, as a phone stores a photo taken on its side."""
    buf = io.BytesIO()
    image = image.convert("RGB")
    if orientation == 1:
        image.save(buf, "JPEG", quality=quality)
        return buf.getvalue()
    stored = image.transpose({3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
                              8: Image.Transpose.ROTATE_270}[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _ink(digit: np.ndarray, height: int, rng: np.random.Generator, bold: float) -> np.ndarray:
    """An MNIST digit as pen ink at `height` pixels, cropped to its columns; `bold` > 0
    thickens the strokes, < 0 thins them."""
    ink = np.asarray(Image.fromarray(digit, "L").resize((height, height),
                                                        Image.Resampling.BICUBIC),
                     np.float32) / 255.0
    radius = int(round(abs(bold) * height / 40))
    if radius:
        size = 2 * radius + 1
        ink = (ndimage.grey_dilation if bold > 0 else ndimage.grey_erosion)(ink, size=size)
    cols = np.nonzero(ink.max(0) > 0.1)[0]
    return ink[:, max(0, cols.min() - 1): cols.max() + 2] if cols.size else ink


# How often a number has uneven pressure, touching neighbours, a shadow across the sheet.
MIXED_PRESSURE, TOUCHING, SHADOW = 0.6, 0.4, 0.5
# What tuning never saw, by name (`unseen=True` is all of them; a subset ablates).
UNSEEN = ("gradient", "fibres", "motion", "perspective")
# What neither tuning nor the first report set has, written down before any of it was read
# (session 10), for the second report set (`hard_numbers.REPORT_RECIPES`): digits of uneven
# size off a wavy baseline, slanted writing, a ballpoint that skips, and a low-light photo's
# colour cast and sensor noise.
UNSEEN_2 = ("sizes", "slant", "skips", "low light")
# What none of the above has, written down before the third report set was made or read
# (session 11, after the second set's ablation was used): a number written on ruled paper, a
# lamp's or flash's glare washing part of it out, a number photographed from afar (digits
# 24-48 pixels tall in a larger photo), and pencil (grey graphite, grainy strokes). The third
# set gives each number each effect of all three lists with probability 1/2.
UNSEEN_3 = ("ruled", "glare", "small", "pencil")
# What none of the above has, written down in session 12 before the fourth report set was made
# or read (after the third set's ablation was used to find the small-writing and pencil
# refusals): writing from the sheet's other side showing through, the number underlined, a
# line tilted more than any before (6-15 degrees), and chalk on a dark board.
UNSEEN_4 = ("show-through", "underline", "tilt", "board")
# What none of the above has, written down in session 13 before the fifth report set was made
# or read (after the underline was taken out on the tuning generator): a felt-tip marker (bold
# strokes with soft, bled edges), the sheet folded (a crease across it, the light stepping
# there), the number on a yellow sticky note with the desk around it, and the photo scaled
# down by a messenger app (the whole photo 300-640 pixels long) before its JPEG.
UNSEEN_5 = ("marker", "fold", "sticky note", "downscaled")
# What none of the above has, written down in session 14 before the sixth report set was made
# or read (after the marker's bold strokes were thinned on the tuning generator): a red pen, a
# crumpled sheet (creases and facets all over it), a printed word before the number (a form's
# "Total" or "No."), and a phone's photo stored turned, with the EXIF tag that turns it back.
UNSEEN_6 = ("red pen", "crumpled", "label", "turned")
# Written down in session 15 before the seventh report set was made or read: a separator
# between groups of digits (an amount's "1,250" or "12.50"; the label is the digits alone), a
# hard-edged shadow cast across the sheet (the phone's), the writing of the lines above or
# below cut off by the photo's edge, and a fine pen (thin strokes, written large).
UNSEEN_7 = ("separator", "cast shadow", "line above", "fine pen")
# Written down in session 16 before the eighth report set was made or read (after the model
# with a "not one digit" class was shipped and the line costs swept for it): digits written
# far apart (a postcode's or a form's, 0.4-1 digit heights between them), dot-grid paper (a
# bullet journal's), a coffee cup's brown ring on the sheet near or across the number, and a
# thumb holding the sheet, over the photo's edge beside the number.
UNSEEN_8 = ("spaced", "dot grid", "coffee stain", "thumb")
# Written down in session 17 (15:20 UTC) before the ninth report set was made or read (after a
# printed box's outline, a form's leaning walls, a fine pen's thin strokes and pencil grain
# were worked on, on the tuning generator and the framed digits): the number written one
# digit to a printed cell (a postcode's or a cheque's row of boxes), a highlighter's
# translucent band across it, a round rubber stamp's ring near or over it, and a phone's
# flash (a small white hot spot, the corners dark).
UNSEEN_9 = ("cells", "highlighter", "stamp", "flash")
# Written down in session 18 (18:21 UTC) before the tenth report set was made or read (after a
# rubber stamp's ring and faint digits broken up by grain were worked on, on the tuning
# generator): a cheque's security print behind the writing (fine wavy lines in a pale
# colour), the number as a carbon copy (soft, spotty blue-black strokes and carbon smudges on
# the sheet), a fountain pen's blots (round drops on the strokes, and wet ink dragged by the
# hand), and a paper clip on the sheet near or over the number.
UNSEEN_10 = ("guilloche", "carbon copy", "blots", "paper clip")
# Written down in session 20 (00:40 UTC) before the eleventh report set was made or read (after
# a paper clip's wire was taken out, on the tuning generator): digits written the continental
# way (a 1 with a long flag, a 7 with a bar across its stem: MNIST's writers seldom did), a
# yellow legal pad (blue rules, and a red margin line down the sheet near or through the
# number), a printed halftone screen behind part of the writing (a form's shaded field), and a
# photo out of focus (a disk blur: the autofocus caught the background).
UNSEEN_11 = ("continental", "legal pad", "halftone", "defocus")
# Written down in session 22 (07:10 UTC) before the twelfth report set was made or read (after
# a cut where a narrow digit ends was added, on tuning seeds 13-14): pencil digits rubbed out
# near the number (faint, smeared ghosts of other digits and the eraser's grey), a ring
# binder's punched holes beside it (dark disks where the table shows through), a wide-angle
# lens's barrel distortion (a phone held close: straight lines bow), and ink bleeding into
# absorbent paper (a napkin's or a paper towel's: feathered, hairy strokes).
UNSEEN_12 = ("erased", "punch holes", "barrel", "bleed")
# The order a per-number draw takes (new lists go at the end: earlier sets draw the same).
EVERY_EFFECT = (UNSEEN + UNSEEN_2 + UNSEEN_3 + UNSEEN_4 + UNSEEN_5 + UNSEEN_6 + UNSEEN_7
                + UNSEEN_8 + UNSEEN_9 + UNSEEN_10 + UNSEEN_11 + UNSEEN_12)
# Printed words a form puts before a number.
LABELS = ("Total", "No.", "Amount", "Ref.", "Tel.", "Code", "Qty", "Date", "Invoice")


def unseen_effects(unseen: bool | frozenset[str] | set[str]) -> frozenset[str]:
    return frozenset(UNSEEN if unseen is True else unseen or ())


def _line(digits: list[np.ndarray], rng: np.random.Generator, unseen: frozenset[str],
          labels: list[int] | None = None) -> np.ndarray:
    """Digits side by side: float [h, w] ink in [0, 1]; some faint, some touching. `labels`
    (the digits') is needed by "continental" only."""
    height = int(rng.integers(50, 150))
    if "small" in unseen:  # Photographed from afar.
        height = int(rng.integers(24, 49))
    if "fine pen" in unseen:  # A fine-liner, the number written large: thin strokes.
        height = int(rng.integers(100, 181))
    mixed = rng.random() < MIXED_PRESSURE  # Pressure changes from digit to digit.
    pieces = []
    for k, d in enumerate(digits):
        if "continental" in unseen and labels is not None:
            d = _continental(d, labels[k], rng)
        pressure = rng.uniform(0.4, 1.0) if mixed else rng.uniform(0.75, 1.0)
        size = int(height * rng.uniform(0.75, 1.15)) if "sizes" in unseen else height
        bold = rng.uniform(1.0, 2.0) if "marker" in unseen else rng.uniform(-0.3, 0.7)
        if "fine pen" in unseen:
            bold = -rng.uniform(0.6, 1.0)
        ink = _ink(d, size, rng, bold) * pressure
        if "gradient" in unseen:  # The pen presses harder at one side of each digit.
            ramp = np.linspace(rng.uniform(0.5, 1.0), 1.0, ink.shape[1], dtype=np.float32)
            ink = ink * (ramp if rng.random() < 0.5 else ramp[::-1])
        if "skips" in unseen:  # A ballpoint that skips: short gaps in the strokes.
            ink = _skips(ink, rng)
        pieces.append(ink)
    touching = rng.random() < TOUCHING
    gaps = [int(height * (rng.uniform(-0.12, 0.02) if touching and rng.random() < 0.5
                          else rng.uniform(0.04, 0.3))) for _ in pieces]
    if "spaced" in unseen or "cells" in unseen:  # Far apart, as a postcode or form asks.
        gaps = [int(height * rng.uniform(0.4, 1.0)) for _ in pieces]
    marks = _separators(len(pieces), rng) if "separator" in unseen else {}
    for k in marks:  # Room for the mark.
        gaps[k] = max(gaps[k], 0) + int(height * rng.uniform(0.2, 0.35))
    width = sum(p.shape[1] for p in pieces) + sum(gaps[:-1]) + height
    line = np.zeros((int(height * 1.4) + (height if "sizes" in unseen else 0), width),
                    np.float32)
    x = height // 2
    # A baseline that rises and falls along the line (writing without a ruler).
    wave = ((rng.uniform(0.05, 0.2) * height, rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi))
            if "sizes" in unseen else (0.0, 0.0, 0.0))
    for k, (piece, gap) in enumerate(zip(pieces, gaps, strict=True)):
        top = int(height * 0.2 + rng.integers(-height // 12, height // 12 + 1))
        if "sizes" in unseen:  # Bottoms on the wavy baseline, whatever each digit's size.
            top += height // 2 + height - piece.shape[0] + int(
                wave[0] * np.sin(wave[1] * 2 * np.pi * x / width + wave[2]))
        region = line[top:top + piece.shape[0], x:x + piece.shape[1]]
        np.maximum(region, piece[:region.shape[0], :region.shape[1]], out=region)
        if k in marks:  # On the baseline, half-way to the next digit.
            _mark(line, marks[k], (top + 0.85 * piece.shape[0],
                                   x + piece.shape[1] + gap / 2), height, rng)
        x += piece.shape[1] + gap
    line = line[:, :x + height // 2]
    if "underline" in unseen:
        line = _underline(line, height, rng)
    if "slant" in unseen:  # Writing that leans right, as most hands do.
        shear = np.tan(np.radians(rng.uniform(8, 22)))
        h, w = line.shape
        extra = int(shear * h)
        line = np.asarray(Image.fromarray(line, "F").transform(
            (w + extra, h), Image.Transform.AFFINE, (1, shear, -extra, 0, 1, 0),
            Image.Resampling.BILINEAR), np.float32)
    angle = rng.uniform(-5, 5)
    if "tilt" in unseen:  # The phone, or the sheet, turned further.
        angle = float(np.sign(angle) or 1) * rng.uniform(6, 15)
    return np.asarray(Image.fromarray(line, "F").rotate(angle, Image.Resampling.BILINEAR,
                                                        expand=True), np.float32)


def _continental(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """An MNIST 1 given a long flag down to the left from its top, or a 7 a bar across its
    stem, as much of Europe writes them; other digits as they are (uint8 [h, w])."""
    if label not in (1, 7):
        return digit
    ys, xs = np.nonzero(digit > 100)
    if ys.size == 0:
        return digit
    stroke = Image.new("L", digit.shape[::-1])
    draw = ImageDraw.Draw(stroke)
    width = int(rng.integers(2, 4))
    tall = int(ys.max() - ys.min())
    if label == 1:  # The flag: from the top, 30-60 degrees below the horizontal.
        top = int(ys.min())
        x = float(xs[ys <= top + 1].mean())
        length, angle = rng.uniform(0.3, 0.5) * tall, np.radians(rng.uniform(30, 60))
        draw.line([(x, top), (x - length * np.cos(angle), top + length * np.sin(angle))],
                  fill=255, width=width)
    else:  # The bar: across the stem, a little below the middle.
        y = int(ys.min() + tall * rng.uniform(0.45, 0.6))
        row = xs[np.abs(ys - y) <= 1]
        x = float(row.mean()) if row.size else float(xs.mean())
        half = rng.uniform(3, 5.5)
        draw.line([(x - half, y), (x + half, y)], fill=255, width=width)
    pen = ndimage.gaussian_filter(np.asarray(stroke, np.float32), 0.6)
    return np.maximum(digit, np.clip(pen * 1.3, 0, 255).astype(np.uint8))


def _separators(n: int, rng: np.random.Generator) -> dict[int, str]:
    """Where an amount of `n` digits has its separators, after which digit: a decimal point or
    comma before the last two, or a thousands comma or point every three from the right."""
    if n >= 5 and rng.random() < 0.5:
        mark = str(rng.choice([",", "."]))
        return {k: mark for k in range(n - 4, -1, -3)}
    return {max(0, n - 3): str(rng.choice([",", "."]))}


def _mark(line: np.ndarray, mark: str, at: tuple[float, float], height: int,
          rng: np.random.Generator) -> None:
    """A handwritten point (a dot) or comma (a short stroke down and to the left) into
    `line`, its top at `at` (y, x)."""
    y, x = at
    width = max(1.5, rng.uniform(0.05, 0.09) * height)
    length = rng.uniform(0.03, 0.06) * height if mark == "." else rng.uniform(0.12, 0.22) * height
    lean = rng.uniform(0.2, 0.6) if mark == "," else 0.0
    gy, gx = np.mgrid[0:line.shape[0], 0:line.shape[1]].astype(np.float32)
    t = np.clip((gy - y) / max(length, 1e-6), 0, 1)
    distance = np.hypot(gx - (x - lean * length * t), gy - (y + length * t))
    np.maximum(line, np.clip(width / 2 + 0.5 - distance, 0, 1) * rng.uniform(0.7, 1.0),
               out=line)


def _underline(line: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A pen stroke under the written digits, as people underline a total: a little below the
    lowest ink or touching it, a stroke wide, gently bowed, from near the first digit to near
    the last."""
    rows = np.nonzero(line.max(1) > 0.3)[0]
    cols = np.nonzero(line.max(0) > 0.3)[0]
    if rows.size == 0:
        return line
    h, w = line.shape
    y = rows[-1] + rng.uniform(-0.02, 0.12) * height
    x0 = int(cols[0] + rng.uniform(-0.2, 0.2) * height)
    x1 = int(cols[-1] + rng.uniform(-0.2, 0.2) * height)
    width = max(1.5, rng.uniform(0.05, 0.1) * height)
    bow = rng.uniform(-0.06, 0.06) * height
    extra = int(y + width + abs(bow) + 2) - h
    line = np.pad(line, ((0, max(0, extra)), (0, 0)))
    gy, gx = np.mgrid[0:line.shape[0], 0:w].astype(np.float32)
    t = np.clip((gx - x0) / max(1, x1 - x0), 0, 1)
    centre = y + rng.uniform(-0.05, 0.05) * height * (2 * t - 1) + bow * 4 * t * (1 - t)
    stroke = np.clip(width / 2 + 0.5 - np.abs(gy - centre), 0, 1)
    stroke *= (gx >= max(0, x0)) & (gx <= min(w - 1, x1))
    return np.maximum(line, stroke.astype(np.float32) * rng.uniform(0.7, 1.0))


def _show_through(digits: list[np.ndarray], shape: tuple[int, int], rng: np.random.Generator
                  ) -> np.ndarray:
    """Writing on the sheet's other side, seen through the paper: the digits mirrored, in
    another place and size, blurred and faint (how much it darkens the paper, [h, w])."""
    h, w = shape
    size = int(rng.integers(40, 140))
    mirrored = [np.fliplr(d) for d in digits[::-1]]
    inks = [_ink(d, size, rng, 0.2) for d in mirrored]
    ghost = np.concatenate([np.pad(i, ((0, 0), (0, size // 6))) for i in inks], axis=1)
    out = np.zeros(shape, np.float32)
    top, left = int(rng.integers(-size // 2, h)), int(rng.integers(-ghost.shape[1] // 2, w))
    ys, xs = slice(max(0, top), min(h, top + size)), slice(max(0, left),
                                                           min(w, left + ghost.shape[1]))
    out[ys, xs] = ghost[ys.start - top: ys.stop - top, xs.start - left: xs.stop - left]
    return ndimage.gaussian_filter(out, rng.uniform(1.5, 3.5)) * rng.uniform(0.08, 0.2)


def _grainy(ink: np.ndarray, rng: np.random.Generator, sigma: float,
            level: tuple[float, float], weight: float) -> np.ndarray:
    """`ink` as graphite or chalk leaves it: only the paper's raised grain (noise smoothed over
    `sigma` pixels) takes it, around a `level` drawn in that range."""
    grain = ndimage.gaussian_filter(rng.normal(0, 1, ink.shape).astype(np.float32), sigma)
    return ink * np.clip(rng.uniform(*level) + weight * grain / max(grain.std(), 1e-6), 0, 1)


def _skips(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3 places on a digit's strokes where the pen left almost no ink, each about a
    stroke wide."""
    ys, xs = np.nonzero(ink > 0.5)
    if ys.size == 0:
        return ink
    h, w = ink.shape
    gy, gx = np.mgrid[0:h, 0:w]
    radius = max(2.0, 0.05 * h)
    for k in rng.integers(0, ys.size, int(rng.integers(1, 4))):
        ink = np.where((gy - ys[k]) ** 2 + (gx - xs[k]) ** 2 <= radius ** 2,
                       ink * rng.uniform(0.0, 0.25), ink)
    return ink.astype(np.float32)


def _ruled(paper: np.ndarray, baseline: int, spacing: int, rng: np.random.Generator
           ) -> np.ndarray:
    """Ruled paper: thin blue or grey lines a line of writing apart, one near the number's
    baseline, and sometimes a red margin."""
    h, w, _ = paper.shape
    colour = np.array([(0.55, 0.7, 0.95), (0.65, 0.65, 0.68)][int(rng.integers(0, 2))],
                      np.float32)
    rule = np.zeros((h, w), np.float32)
    spacing = max(8, int(spacing * rng.uniform(0.8, 1.2)))
    width = int(rng.integers(1, 4))
    for y in range(baseline % spacing, h, spacing):
        rule[y:y + width] = 1.0
    if rng.random() < 0.5:
        margin = int(rng.uniform(0.03, 0.15) * w)
        paper = paper * (1 - rule[..., None] * (1 - colour))
        rule = np.zeros((h, w), np.float32)
        rule[:, margin:margin + width] = 1.0
        colour = np.array((0.95, 0.45, 0.45), np.float32)
    rule = ndimage.gaussian_filter(rule, 0.5)
    return paper * (1 - rule[..., None] * (1 - colour))


def _legal_pad(paper: np.ndarray, number: tuple[int, int, int, int],
               rng: np.random.Generator) -> np.ndarray:
    """`paper` as a yellow legal pad: blue rules a line apart, one near the number's baseline
    (`number`: its top, left, height, width), and a red margin line (sometimes two) down the
    sheet somewhere from a line height left of the number to half-way along it."""
    H, W, _ = paper.shape
    top, left, h, w = number
    yellow = np.array([1.0, rng.uniform(0.93, 0.99), rng.uniform(0.55, 0.75)], np.float32)
    rules = np.zeros((H, W), np.float32)
    spacing = max(8, int(h * rng.uniform(0.8, 1.2)))
    for y in range((top + int(0.8 * h)) % spacing, H, spacing):
        rules[y:y + int(rng.integers(1, 3))] = 1.0
    margin = np.zeros((H, W), np.float32)
    x = int(np.clip(rng.uniform(left - h / 1.4, left + w / 2), 0, W - 3))
    margin[:, x:x + int(rng.integers(1, 4))] = 1.0
    if rng.random() < 0.5:
        second = min(W - 2, x + int(rng.integers(3, 7)))
        margin[:, second:second + 1] = 1.0
    blue = np.array((0.55, 0.7, 0.95), np.float32)
    red = np.array((0.95, rng.uniform(0.35, 0.55), rng.uniform(0.4, 0.6)), np.float32)
    paper = paper * yellow * (1 - ndimage.gaussian_filter(rules, 0.5)[..., None] * (1 - blue))
    return paper * (1 - ndimage.gaussian_filter(margin, 0.5)[..., None] * (1 - red))


def _halftone(shape: tuple[int, int], number: tuple[int, int, int, int],
              rng: np.random.Generator) -> np.ndarray:
    """A printed field shaded with a halftone screen (multiplies the paper, [h, w, 3]): round
    dots 3-7 pixels apart on a grid at 45 degrees, grey or a colour, covering a rectangle
    from somewhere in the number (`number`: top, left, height, width) past its right end, or
    all of it."""
    H, W = shape
    top, left, h, w = number
    y0 = max(0, top - int(rng.uniform(0.1, 0.5) * h))
    y1 = min(H, top + h + int(rng.uniform(0.1, 0.5) * h))
    x0 = max(0, left + int(rng.uniform(-0.3, 0.7) * w))
    x1 = min(W, left + w + int(rng.uniform(0.05, 0.5) * w))
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    period = rng.uniform(3, 7)
    u, v = (gx + gy) / np.sqrt(2), (gx - gy) / np.sqrt(2)
    screen = (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period)) / 4 + 0.5
    dots = ndimage.gaussian_filter((screen > rng.uniform(0.55, 0.8)).astype(np.float32), 0.5)
    field = np.zeros((H, W), np.float32)
    field[y0:y1, x0:x1] = 1.0
    colour = np.array([(0.3, 0.3, 0.3), (0.4, 0.55, 0.85), (0.85, 0.45, 0.45)][
        int(rng.integers(0, 3))], np.float32)
    return 1 - rng.uniform(0.4, 0.8) * (dots * field)[..., None] * (1 - colour)


def _defocus(image: Image.Image, radius: float) -> Image.Image:
    """`image` out of focus: each pixel spread over a disk of `radius` pixels."""
    r = int(np.ceil(radius))
    gy, gx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (gx ** 2 + gy ** 2 <= radius ** 2).astype(np.float32)
    pixels = np.asarray(image, np.float32)
    blurred = np.stack([ndimage.convolve(pixels[..., c], disk / disk.sum(), mode="nearest")
                        for c in range(3)], -1)
    return Image.fromarray(np.clip(blurred + 0.5, 0, 255).astype(np.uint8), "RGB")


def _erased(digits: list[np.ndarray], shape: tuple[int, int],
            number: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Pencil digits rubbed out near the number (multiplies the paper, [h, w]): 2-4 of the
    line's digits, written about as large, smeared and faint (5-18% dark), above, below or
    across the number's ends, and the eraser's grey over them."""
    H, W = shape
    top, left, h, w = number
    size = max(8, int(h / 1.4))
    ghost = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(2, 5))):
        ink = _ink(digits[int(rng.integers(0, len(digits)))], size, rng, rng.uniform(-0.3, 0.5))
        ink = ndimage.gaussian_filter(ink, rng.uniform(0.8, 2.5)) * rng.uniform(0.05, 0.18)
        y = int(top + h / 2 + rng.uniform(-1.2, 1.2) * size - size / 2)
        x = int(left + rng.uniform(-0.2, 1.0) * w)
        y0, x0 = max(0, y), max(0, x)
        y1, x1 = min(H, y + ink.shape[0]), min(W, x + ink.shape[1])
        if y1 > y0 and x1 > x0:
            region = ghost[y0:y1, x0:x1]
            np.maximum(region, ink[y0 - y:y1 - y, x0 - x:x1 - x], out=region)
    smear = ndimage.gaussian_filter(ghost, rng.uniform(2, 6)) * rng.uniform(0.5, 1.5)
    return 1 - np.clip(ghost + smear, 0, 0.3)


def _bleed(ink: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """Ink bleeding into absorbent paper: each stroke spreads along the fibres around it
    (grain drawn out along one direction), so its edges feather and grow hairs."""
    H, W = ink.shape
    grain = ndimage.gaussian_filter(rng.random((H, W)).astype(np.float32),
                                    (rng.uniform(0.5, 1.0), rng.uniform(2.0, 4.0)))
    grain = ndimage.rotate(grain, rng.uniform(0, 180), reshape=False, mode="reflect")
    grain = (grain - grain.mean()) / max(float(grain.std()), 1e-6)
    spread = ndimage.gaussian_filter(ink, rng.uniform(0.02, 0.04) * height)
    feather = np.clip((spread * 1.8 - 0.25) * (0.6 + 0.5 * grain), 0, 1)
    return np.maximum(ink, rng.uniform(0.5, 0.85) * feather).astype(np.float32)


def _punch_holes(rgb: np.ndarray, number: tuple[int, int, int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """`rgb` with a ring binder's 2-3 punched holes in a column beside the number (0.3-1.2
    digit heights past one end, on whichever side has room), the dark table showing through
    each: disks 0.25-0.45 digit heights across, 2.5-4 diameters apart, one near the number's
    middle row."""
    H, W, _ = rgb.shape
    top, left, h, w = number
    size = h / 1.4
    radius = rng.uniform(0.125, 0.225) * size
    past = rng.uniform(0.3, 1.2) * size + radius
    sides = [x for x in (left - past, left + w + past) if radius <= x <= W - radius]
    if not sides:
        return rgb
    cx = float(sides[int(rng.integers(0, len(sides)))])
    step = rng.uniform(5, 8) * radius
    first = top + h / 2 + rng.uniform(-0.5, 0.5) * step - step * int(rng.integers(0, 3))
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    hole = np.zeros((H, W), np.float32)
    for k in range(int(rng.integers(2, 4))):
        dist = np.hypot(gy - (first + k * step), gx - cx)
        hole = np.maximum(hole, np.clip(radius + 0.5 - dist, 0, 1))
    table = np.array([rng.uniform(0.08, 0.35)] * 3, np.float32) * rng.uniform(
        [0.9, 0.85, 0.8], [1.1, 1.0, 1.0])
    return rgb * (1 - hole[..., None]) + table * hole[..., None]


def _barrel(image: Image.Image, k: float) -> Image.Image:
    """`image` through a wide-angle lens: a point at radius r from the middle (in half
    diagonals) is seen at r (1 + k r^2), so straight lines bow outwards."""
    W, H = image.size
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    half = np.hypot(W, H) / 2
    dy, dx = (gy - H / 2) / half, (gx - W / 2) / half
    # Where each output pixel comes from: the inverse of r -> r (1 + k r^2), to first order.
    scale = 1 / (1 + k * (dx ** 2 + dy ** 2))
    coords = [H / 2 + dy * scale * half, W / 2 + dx * scale * half]
    pixels = np.asarray(image, np.float32)
    bent = np.stack([ndimage.map_coordinates(pixels[..., c], coords, order=1, mode="nearest")
                     for c in range(3)], -1)
    return Image.fromarray(np.clip(bent + 0.5, 0, 255).astype(np.uint8), "RGB")


def _dot_grid(paper: np.ndarray, spacing: int, rng: np.random.Generator) -> np.ndarray:
    """Dot-grid paper: small grey dots in a square grid, a quarter to half a line apart, over
    the whole sheet."""
    h, w, _ = paper.shape
    step = max(6, int(spacing * rng.uniform(0.25, 0.5)))
    dots = np.zeros((h, w), np.float32)
    dots[int(rng.integers(0, step))::step, int(rng.integers(0, step))::step] = 1.0
    dots = np.clip(ndimage.gaussian_filter(dots, rng.uniform(0.6, 1.2)) * rng.uniform(3, 6), 0, 1)
    return paper * (1 - rng.uniform(0.3, 0.6) * dots)[..., None]


def _cells(paper: np.ndarray, ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A row of printed cells, one around each digit of the number in `ink` (the sheet's ink,
    the digits far apart): walls half-way between digits and beyond the first and the last,
    the row's top and bottom lines a little above and below the writing, in grey, blue or
    light red."""
    rows, cols = np.nonzero(ink.max(1) > 0.1)[0], ink.max(0) > 0.1
    height = rows[-1] - rows[0] + 1
    starts = np.nonzero(cols[1:] & ~cols[:-1])[0] + 1
    ends = np.nonzero(cols[:-1] & ~cols[1:])[0] + 1
    starts = np.concatenate([[0], starts]) if cols[0] else starts
    ends = np.concatenate([ends, [len(cols)]]) if cols[-1] else ends
    # Runs of ink columns; runs closer than a fifth of a line apart are one digit's.
    digits: list[tuple[int, int]] = []
    for start, end in zip(starts, ends, strict=True):
        if digits and start - digits[-1][1] <= 0.2 * height:
            digits[-1] = (digits[-1][0], end)
        else:
            digits.append((start, end))
    walls = [(a[1] + b[0]) // 2 for a, b in itertools.pairwise(digits)]
    pad = int(height * rng.uniform(0.15, 0.35))
    walls = [max(0, digits[0][0] - pad), *walls, min(ink.shape[1] - 1, digits[-1][1] + pad)]
    y0 = max(0, rows[0] - int(height * rng.uniform(0.05, 0.3)))
    y1 = min(ink.shape[0] - 1, rows[-1] + int(height * rng.uniform(0.05, 0.3)))
    thick = int(rng.integers(1, 4))
    printed = np.zeros(ink.shape, np.float32)
    printed[y0:y0 + thick, walls[0]:walls[-1] + thick] = 1.0
    printed[y1:y1 + thick, walls[0]:walls[-1] + thick] = 1.0
    for x in walls:
        printed[y0:y1 + thick, x:x + thick] = 1.0
    colour = np.array([(0.6, 0.6, 0.62), (0.55, 0.65, 0.95), (0.95, 0.55, 0.55)][
        int(rng.integers(0, 3))], np.float32)
    printed = ndimage.gaussian_filter(printed, 0.5)
    return paper * (1 - printed[..., None] * (1 - colour))


def _highlighter(shape: tuple[int, int], number: tuple[int, int, int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """A highlighter's translucent band across the number (multiplies the picture): yellow,
    green or pink, half to one and a bit line heights tall, leaning up to 3 degrees, from
    before the number to after it or stopping part-way."""
    top, left, h, w = number
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    middle = top + h / 2 + rng.uniform(-0.2, 0.2) * h
    lean = np.tan(np.radians(rng.uniform(-3, 3)))
    across = np.abs(gy - middle - lean * (gx - left)) - rng.uniform(0.25, 0.55) * h
    x0 = left - rng.uniform(0, 0.3) * h
    x1 = left + w * (1.0 if rng.random() < 0.6 else rng.uniform(0.4, 0.9)) + rng.uniform(0, 0.3) * h
    band = ((across < 0) & (gx >= x0) & (gx <= x1)).astype(np.float32)
    band = ndimage.gaussian_filter(band, 1.0) * rng.uniform(0.6, 0.9)
    colour = np.array([(1.0, 0.95, 0.25), (0.55, 1.0, 0.45), (1.0, 0.55, 0.8)][
        int(rng.integers(0, 3))], np.float32)
    return 1 - band[..., None] * (1 - colour)


def _stamp(shape: tuple[int, int], number: tuple[int, int, int, int],
           rng: np.random.Generator) -> np.ndarray:
    """A round rubber stamp (multiplies the picture): one or two rings 0.6-1.2 line heights
    across, red, blue or purple, patchy as stamp ink is, centred within a line height of the
    number anywhere along it, so that it often crosses the writing."""
    h = number[2]
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    cy, cx = _near(number, rng)
    radius = rng.uniform(0.6, 1.2) * h
    distance = np.hypot(gy - cy, gx - cx)
    width = rng.uniform(0.05, 0.1) * radius
    ring = np.abs(distance - radius) < width
    if rng.random() < 0.5:
        ring |= np.abs(distance - radius * rng.uniform(0.7, 0.8)) < 0.6 * width
    patchy = ndimage.gaussian_filter(rng.random(shape).astype(np.float32), 2.0)
    patchy = np.clip((patchy - patchy.mean()) / max(float(patchy.std()), 1e-6) * 0.5 + 0.8, 0, 1)
    strength = ndimage.gaussian_filter(ring.astype(np.float32), 0.8) * patchy
    strength *= rng.uniform(0.5, 0.85)
    colour = np.array([(0.85, 0.15, 0.2), (0.2, 0.3, 0.8), (0.5, 0.2, 0.6)][
        int(rng.integers(0, 3))], np.float32)
    return 1 - strength[..., None] * (1 - colour)


def _guilloche(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A cheque's security print (multiplies the paper, [h, w, 3]): two families of fine wavy
    lines 4-9 pixels apart crossing at an angle, green, blue or pink, 30-60% strong."""
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    pattern = np.zeros(shape, np.float32)
    for _ in range(2):
        a = rng.uniform(0, np.pi)
        along, across = np.cos(a) * gx + np.sin(a) * gy, -np.sin(a) * gx + np.cos(a) * gy
        wave = rng.uniform(3, 15) * np.sin(2 * np.pi * along / rng.uniform(30, 120)
                                           + rng.uniform(0, 2 * np.pi))
        phase = (across + wave) / rng.uniform(4, 9)
        pattern = np.maximum(pattern, (0.5 + 0.5 * np.cos(2 * np.pi * phase)) ** 3)
    colour = np.array([(0.45, 0.75, 0.55), (0.45, 0.6, 0.9), (0.9, 0.5, 0.7)][
        int(rng.integers(0, 3))], np.float32)
    return 1 - rng.uniform(0.3, 0.6) * pattern[..., None] * (1 - colour)


def _carbon_copy(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The strokes as a carbon copy: pressed through a sheet, soft (blurred 1-2 pixels) and
    spotty where the carbon took unevenly."""
    soft = ndimage.gaussian_filter(ink, rng.uniform(1.0, 2.0)) * rng.uniform(1.2, 1.6)
    spots = ndimage.gaussian_filter(rng.random(ink.shape).astype(np.float32), 1.0)
    spots = np.clip((spots - spots.mean()) / max(float(spots.std()), 1e-6) * 0.25 + 0.8, 0, 1)
    return np.clip(soft * spots, 0, 1)


def _carbon_smudges(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Carbon rubbed onto the copy (multiplies the paper, [h, w]): 2-6 soft grey-blue smudges
    anywhere, 5-15% dark."""
    smudges = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(2, 7))):
        y, x = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        smudges[y, x] = 1.0
    sigma = rng.uniform(0.03, 0.1) * max(shape)
    smudges = ndimage.gaussian_filter(smudges, sigma)
    smudges /= max(float(smudges.max()), 1e-9)
    return 1 - rng.uniform(0.05, 0.15) * smudges


def _blots(ink: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A fountain pen's blots on the strokes (`ink`, the sheet's; `height`: the line's): 1-3
    round drops 0.06-0.15 line heights across where the pen rested, and, half the time, wet
    ink dragged right by the hand (a faint smear of the writing, a tenth to a third of a line
    height long)."""
    ys, xs = np.nonzero(ink > 0.5)
    if ys.size == 0:
        return ink
    gy, gx = np.ogrid[0:ink.shape[0], 0:ink.shape[1]]
    out = ink.copy()
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(0, ys.size))
        radius = rng.uniform(0.03, 0.075) * height
        drop = np.clip(radius + 0.5 - np.hypot(gy - ys[k], gx - xs[k]), 0, 1)
        out = np.maximum(out, drop.astype(np.float32))
    if rng.random() < 0.5:
        length = max(2, int(rng.uniform(0.1, 0.33) * height))
        smear = ndimage.uniform_filter1d(out, length, axis=1, origin=-(length // 2))
        out = np.maximum(out, rng.uniform(0.15, 0.35) * smear)
    return out


def _paper_clip(rgb: np.ndarray, number: tuple[int, int, int, int],
                rng: np.random.Generator) -> np.ndarray:
    """A paper clip lying on the sheet (`rgb`, [h, w, 3]): a wire 2-4 pixels thick bent into
    two nested rounded loops 1-2 line heights long, turned any way, grey metal with a bright
    edge, centred within a line height of the number (`number`: top, left, height, width)."""
    top, left, h, w = number
    length, wire = int(rng.uniform(1.0, 2.0) * h), int(rng.integers(2, 5))
    width = max(4 * wire, int(length * rng.uniform(0.3, 0.4)))
    canvas = Image.new("L", (length + 4 * wire, width + 4 * wire))
    draw = ImageDraw.Draw(canvas)
    o = 2 * wire
    draw.rounded_rectangle((o, o, o + length, o + width), radius=width // 2, outline=255,
                           width=wire)
    inset = int(width * 0.25)
    draw.rounded_rectangle((o + inset, o + inset, o + length - 2 * inset, o + width - inset),
                           radius=max(1, width // 2 - inset), outline=255, width=wire)
    clip = np.asarray(canvas.rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR,
                                    expand=True), np.float32) / 255
    cy, cx = _near(number, rng)
    y0, x0 = int(cy) - clip.shape[0] // 2, int(cx) - clip.shape[1] // 2
    H, W, _ = rgb.shape
    ys = slice(max(0, y0), min(H, y0 + clip.shape[0]))
    xs = slice(max(0, x0), min(W, x0 + clip.shape[1]))
    metal = rng.uniform(0.45, 0.7)
    if ys.stop <= ys.start or xs.stop <= xs.start:  # (It lies past the picture's side.)
        return rgb
    part = clip[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0, None]
    shine = ndimage.shift(part[..., 0], (-1, -1), order=0) * (1 - part[..., 0])
    out = rgb.copy()
    out[ys, xs] = out[ys, xs] * (1 - part) + metal * part
    out[ys, xs] = np.maximum(out[ys, xs], 0.95 * np.clip(shine, 0, 1)[..., None])
    return out


def _flash(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone's flash: the corners 30-60% darker than the middle, a cold cast, and a small
    white hot spot (5-12% of the photo's longer side) anywhere, washing out what it covers."""
    h, w, _ = rgb.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((gy - h / 2) / (h / 2)) ** 2 + ((gx - w / 2) / (w / 2)) ** 2
    lit = 1 - rng.uniform(0.3, 0.6) * np.clip(r2 / 2, 0, 1)
    rgb = rgb * lit[..., None] * np.array([0.95, 0.98, 1.05], np.float32)
    return _washed_out(rgb, rng.uniform(0.05, 0.12) * max(h, w), (0.7, 1.0), rng)


def _washed_out(rgb: np.ndarray, radius: float, strength: tuple[float, float],
                rng: np.random.Generator) -> np.ndarray:
    """`rgb` under a bright spot (a lamp's glare, a flash's hot spot) of `radius` pixels
    anywhere, taking it `strength` (drawn from the range) of the way to white at its middle."""
    h, w, _ = rgb.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    spot = np.exp(-((gy - rng.uniform(0, h)) ** 2 + (gx - rng.uniform(0, w)) ** 2)
                  / (2 * radius ** 2))
    return rgb + (1 - rgb) * (rng.uniform(*strength) * spot)[..., None]


def _near(number: tuple[int, int, int, int], rng: np.random.Generator) -> tuple[float, float]:
    """A point within a line height of the number's middle row, anywhere along it: where a
    ring (a stamp's, a cup's) is centred so that it often crosses the writing."""
    top, left, h, w = number
    return top + h / 2 + rng.uniform(-1, 1) * h, left + rng.uniform(0, 1) * w


def _coffee_ring(shape: tuple[int, int], number: tuple[int, int, int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """A coffee cup's ring (multiplies the picture, [h, w, 3]): brown, darkest at its rim, 1.2-3
    line heights across, centred within a line height of the number's middle row and anywhere
    along it, so that it often crosses the writing."""
    h = number[2]
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    cy, cx = _near(number, rng)
    radius = rng.uniform(0.6, 1.5) * h
    dist = np.hypot(gy - cy, gx - cx)
    rim = np.exp(-((dist - radius) / (rng.uniform(0.02, 0.06) * radius)) ** 2)
    with np.errstate(over="ignore"):  # (Far outside exp overflows: no stain there.)
        inside = 1 / (1 + np.exp((dist - radius) / 2))
    stain = rng.uniform(0.2, 0.45) * rim + rng.uniform(0.03, 0.12) * inside
    return 1 - stain[..., None] * np.array([0.3, 0.5, 0.75], np.float32)  # Brown: blue goes.


def _thumb(rgb: np.ndarray, number: tuple[int, int, int, int], rng: np.random.Generator
           ) -> np.ndarray:
    """`rgb` with a thumb over the photo's edge that is farthest from the number: a shaded,
    out-of-focus, skin-coloured ellipse reaching at most 90% of the way to the number."""
    H, W, _ = rgb.shape
    top, left, h, w = number
    room = {"top": top, "bottom": H - top - h, "left": left, "right": W - left - w}
    edge = max(room, key=room.get)
    if room[edge] < 20:
        return rgb
    depth = rng.uniform(0.4, 0.9) * room[edge]
    across = depth * rng.uniform(1.0, 1.8)  # The thumb's half-width along the edge.
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    if edge in ("top", "bottom"):
        along, into = gx - rng.uniform(0, W), gy if edge == "top" else H - 1 - gy
    else:
        along, into = gy - rng.uniform(0, H), gx if edge == "left" else W - 1 - gx
    q = np.sqrt((along / across) ** 2 + (into / depth) ** 2)  # < 1 inside the ellipse.
    with np.errstate(over="ignore"):
        mask = ndimage.gaussian_filter(1 / (1 + np.exp((q - 1) * 25)), rng.uniform(2, 6))
    skin = np.array([rng.uniform(0.75, 0.95), rng.uniform(0.5, 0.7), rng.uniform(0.4, 0.6)],
                    np.float32)
    shade = np.clip(1.1 - 0.5 * q, 0.4, 1.0) * rng.uniform(0.6, 1.0)  # Rounded: darker edges.
    return rgb * (1 - mask[..., None]) + (shade[..., None] * skin) * mask[..., None]


def _paper(shape: tuple[int, int], rng: np.random.Generator, unseen: frozenset[str]
           ) -> np.ndarray:
    """A photographed sheet: float RGB [h, w, 3] with light, tint, a shadow and grain."""
    h, w = shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.05, 0.3)
    light = 1 - strength * ((np.cos(angle) * gx / w + np.sin(angle) * gy / h) + 1) / 2
    if rng.random() < SHADOW:  # A soft shadow (a hand, the phone) across part of the sheet.
        a = rng.uniform(0, 2 * np.pi)
        d = np.cos(a) * (gx - rng.uniform(0, w)) + np.sin(a) * (gy - rng.uniform(0, h))
        light *= 1 - rng.uniform(0.1, 0.35) / (1 + np.exp(-d / rng.uniform(5, 40)))
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32),
                                      rng.uniform(1, 4))
    light = light * (1 + rng.uniform(0.01, 0.05) * texture / max(texture.std(), 1e-6))
    if "fibres" in unseen:  # Paper fibres: short light and dark streaks.
        fibres = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(20, 80))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, max(1, w - 30)))
            fibres[y, x:x + int(rng.integers(5, 30))] = rng.uniform(-0.08, 0.08)
        light = light + ndimage.gaussian_filter(fibres, 0.7)
    tint = np.array([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.82, 0.97)], np.float32)
    return light[..., None] * tint * rng.uniform(0.8, 1.0)


def hard_number_upload(digits: list[np.ndarray], rng: np.random.Generator,
                       unseen: bool | frozenset[str] | set[str] = False,
                       labels: list[int] | None = None) -> bytes:
    """`digits`: uint8 [28, 28] MNIST images, written left to right and photographed: JPEG.
    `unseen`: True for every effect of `UNSEEN`, or a set of their names. `labels`: the
    digits' (only "continental" needs them)."""
    unseen = unseen_effects(unseen)
    line = _line(digits, rng, unseen, labels)
    h, w = line.shape
    printed = None
    if "label" in unseen:  # A printed word before the number, on the paper, in black.
        printed = _label(h, rng)
        line = np.concatenate([np.zeros((h, printed.shape[1]), np.float32), line], axis=1)
        printed = np.pad(printed, ((0, 0), (0, w)))
        w = line.shape[1]
    H, W = h + int(rng.integers(40, 300)), w + int(rng.integers(40, 400))
    if "small" in unseen:  # The rest of the sheet is in view too.
        H, W = H + int(rng.integers(100, 500)), W + int(rng.integers(100, 700))
    # Kept clear of the edges a perspective view may cut off (the number stays on the sheet).
    my, mx = (int(0.08 * H), int(0.08 * W)) if "perspective" in unseen else (0, 0)
    H, W = H + 2 * my, W + 2 * mx
    top = my + int(rng.integers(0, H - 2 * my - h + 1))
    left = mx + int(rng.integers(0, W - 2 * mx - w + 1))
    ink = np.zeros((H, W), np.float32)
    ink[top:top + h, left:left + w] = line
    if "line above" in unseen:
        _neighbour_line(ink, digits, (top, h), rng)
    pen = {0: (0.08, 0.08, 0.1), 1: (0.1, 0.12, 0.45), 2: (0.3, 0.3, 0.32)}[
        int(rng.integers(0, 3))]  # Black, blue, pencil.
    if "red pen" in unseen:
        pen = (rng.uniform(0.7, 0.9), rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.25))
    paper = _paper((H, W), rng, unseen)
    if printed is not None:
        paper = paper.copy()
        paper[top:top + h, left:left + w] *= 1 - 0.9 * printed[..., None]
    if "crumpled" in unseen:  # Creases all over the sheet, each tilting a facet of it.
        for _ in range(int(rng.integers(4, 10))):
            paper = paper * _fold((H, W), (H / 2, W / 2), max(H, W) // 2, rng)[..., None]
    if "ruled" in unseen:
        paper = _ruled(paper, top + int(0.8 * h), h, rng)
    if "dot grid" in unseen:
        paper = _dot_grid(paper, h, rng)
    if "cells" in unseen:
        paper = _cells(paper, ink, rng)
    if "guilloche" in unseen:
        paper = paper * _guilloche((H, W), rng)
    if "legal pad" in unseen:
        paper = _legal_pad(paper, (top, left, h, w), rng)
    if "halftone" in unseen:
        paper = paper * _halftone((H, W), (top, left, h, w), rng)
    if "show-through" in unseen:
        paper = paper * (1 - _show_through(digits, (H, W), rng))[..., None]
    if "erased" in unseen:
        paper = paper * _erased(digits, (H, W), (top, left, h, w), rng)[..., None]
    if "fold" in unseen:
        paper = paper * _fold((H, W), (top + h / 2, left + w / 2), h, rng)[..., None]
    if "sticky note" in unseen:
        paper = _sticky_note(paper, (top, left, h, w), rng)
    if "marker" in unseen:  # Felt-tip ink bleeds into the paper: soft edges.
        ink = np.clip(ndimage.gaussian_filter(ink, rng.uniform(0.8, 2.0)) * 1.3, 0, 1)
    if "pencil" in unseen:  # Graphite: grey, and only the paper's raised grain takes it.
        pen = (rng.uniform(0.25, 0.45),) * 3
        ink = _grainy(ink, rng, 0.8, (0.55, 0.8), 0.5)
    if "board" in unseen:  # Chalk on a dark board, with the haze of what was wiped off.
        haze = ndimage.gaussian_filter(rng.random((H, W)).astype(np.float32), 25)
        haze = (haze - haze.min()) / max(float(np.ptp(haze)), 1e-6)
        board = np.array([(0.12, 0.2, 0.16), (0.13, 0.13, 0.14)][int(rng.integers(0, 2))],
                         np.float32) * rng.uniform(0.7, 1.3)
        paper = (paper / max(float(paper.mean()), 1e-6)) * board + (
            rng.uniform(0.05, 0.2) * haze)[..., None]
        pen = (rng.uniform(0.8, 0.95),) * 3
        ink = _grainy(ink, rng, 1.0, (0.6, 0.9), 0.4)
    if "carbon copy" in unseen:
        ink, pen = _carbon_copy(ink, rng), (0.12, 0.13, rng.uniform(0.3, 0.45))
        paper = paper * _carbon_smudges((H, W), rng)[..., None]
    if "blots" in unseen:
        ink = _blots(ink, h, rng)
    if "bleed" in unseen:
        ink = _bleed(ink, h, rng)
    rgb = paper * (1 - ink[..., None]) + np.array(pen, np.float32) * ink[..., None]
    if "cast shadow" in unseen:  # The phone's shadow: a hard edge across the number.
        rgb = rgb * _cast_shadow((H, W), (top, left, h, w), rng)[..., None]
    if "coffee stain" in unseen:
        rgb = rgb * _coffee_ring((H, W), (top, left, h, w), rng)
    if "thumb" in unseen:
        rgb = _thumb(rgb, (top, left, h, w), rng)
    if "highlighter" in unseen:
        rgb = rgb * _highlighter((H, W), (top, left, h, w), rng)
    if "stamp" in unseen:
        rgb = rgb * _stamp((H, W), (top, left, h, w), rng)
    if "flash" in unseen:
        rgb = _flash(rgb, rng)
    if "paper clip" in unseen:
        rgb = _paper_clip(rgb, (top, left, h, w), rng)
    if "punch holes" in unseen:
        rgb = _punch_holes(rgb, (top, left, h, w), rng)
    rgb += rng.normal(0, rng.uniform(0.005, 0.04), rgb.shape).astype(np.float32)
    if "low light" in unseen:  # Indoor light: a colour cast, and the sensor's noise.
        rgb = rgb * rng.uniform(0.55, 0.85) * rng.uniform([0.9, 0.85, 0.7], [1.05, 1.0, 1.0])
        rgb += rng.normal(0, rng.uniform(0.02, 0.06), rgb.shape).astype(np.float32)
        rgb += ndimage.gaussian_filter(rng.normal(0, 0.03, rgb.shape), (1.5, 1.5, 0))
    if "glare" in unseen:  # A lamp or flash reflected by the sheet: part of it washed out.
        rgb = _washed_out(rgb, rng.uniform(0.15, 0.4) * max(H, W), (0.4, 0.85), rng)
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.6)))
    if "defocus" in unseen:  # Digits about h / 1.4 tall: a disk 2.5-6% of that across.
        image = _defocus(image, h / 1.4 * rng.uniform(0.025, 0.06))
    if "motion" in unseen and rng.random() < 0.5:  # Hand shake: motion blur.
        length = int(rng.integers(2, 6))
        kernel = np.zeros((length * 2 + 1,) * 2, np.float32)
        a = rng.uniform(0, np.pi)
        for t in range(-length, length + 1):
            kernel[length + round(t * np.sin(a)), length + round(t * np.cos(a))] = 1
        pixels = np.asarray(image, np.float32)
        blurred = np.stack([ndimage.convolve(pixels[..., c], kernel / kernel.sum())
                            for c in range(3)], -1)
        image = Image.fromarray(np.clip(blurred, 0, 255).astype(np.uint8), "RGB")
    if "perspective" in unseen:  # A phone held at a slight angle: the sheet in perspective.
        jitter = rng.uniform(-0.06, 0.06, 8) * np.array([W, H] * 4)
        quad = np.array([0, 0, 0, H, W, H, W, 0], np.float64) + jitter
        image = image.transform((W, H), Image.Transform.QUAD, quad.tolist(),
                                Image.Resampling.BILINEAR, fillcolor=(90, 90, 90))
    if "barrel" in unseen:
        image = _barrel(image, rng.uniform(0.04, 0.14))
    if "downscaled" in unseen:  # Sent through a messenger app: scaled down, then its JPEG.
        side = int(rng.integers(300, 641))
        if max(image.size) > side:
            f = side / max(image.size)
            image = image.resize((max(1, round(W * f)), max(1, round(H * f))),
                                 Image.Resampling.BILINEAR)
    turn = int(rng.choice([3, 6, 8])) if "turned" in unseen else 1
    return _jpeg(image, int(rng.integers(40, 96)), turn)


def _label(height: int, rng: np.random.Generator) -> np.ndarray:
    """A printed word (`LABELS`) as ink [height, its width + a gap], its letters 0.3-0.5 of
    the line's height, standing on the line's baseline."""
    from PIL import ImageFont

    word = str(rng.choice(LABELS))
    font = ImageFont.load_default(size=max(8, int(height * rng.uniform(0.3, 0.5))))
    x0, y0, x1, y1 = font.getbbox(word)
    gap = int(height * rng.uniform(0.3, 1.0))
    canvas = Image.new("L", (x1 + gap, height))
    ImageDraw.Draw(canvas).text((0, int(0.85 * height) - y1), word, fill=255, font=font)
    return np.asarray(canvas, np.float32) / 255


def _neighbour_line(ink: np.ndarray, digits: list[np.ndarray], number: tuple[int, int],
                    rng: np.random.Generator) -> None:
    """Adds to `ink` the line written above the number (its lower part, cut off by the top
    edge) or, where there is no room above, below it (its upper part): the same digits in
    another order, as tall as the number's line, a little apart from it."""
    top, h = number
    H, W = ink.shape
    other = _line([digits[i] for i in rng.permutation(len(digits))], rng, frozenset())
    width = max(1, round(other.shape[1] * h / other.shape[0]))
    other = np.asarray(Image.fromarray(other, "F").resize((width, h), Image.Resampling.BILINEAR),
                       np.float32)
    gap, shown = int(rng.uniform(0.05, 0.2) * h), int(rng.uniform(0.25, 0.6) * h)
    x = int(rng.integers(-width // 3, max(1, W - 2 * width // 3)))
    cols = slice(max(0, x), min(W, x + width))
    part = slice(cols.start - x, cols.stop - x)
    if top - gap >= 0.15 * h:
        rows = min(shown, top - gap)
        np.maximum(ink[:rows, cols], other[h - rows:, part], out=ink[:rows, cols])
    elif H - (top + h + gap) >= 0.15 * h:
        rows = min(shown, H - (top + h + gap))
        np.maximum(ink[H - rows:, cols], other[:rows, part], out=ink[H - rows:, cols])


def _cast_shadow(shape: tuple[int, int], number: tuple[int, int, int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """A shadow with a hard edge (multiplies the picture, [h, w]): the edge a straight line
    through the number's box at any angle, the shadowed side 30-60% darker."""
    top, left, h, w = number
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    y0, x0 = top + rng.uniform(0.2, 0.8) * h, left + rng.uniform(0.1, 0.9) * w
    d = np.cos(a) * (gx - x0) + np.sin(a) * (gy - y0)
    with np.errstate(over="ignore"):  # (Far from the edge exp overflows: the side is 1.)
        return 1 - rng.uniform(0.3, 0.6) / (1 + np.exp(-d / rng.uniform(0.5, 2.5)))


def _fold(shape: tuple[int, int], near: tuple[float, float], height: int,
          rng: np.random.Generator) -> np.ndarray:
    """The light on a sheet folded once (multiplies the paper, [h, w]): a crease in a straight
    line within about a line height of the number, a thin dark line along it, and one side
    a little darker, tilted away from the light."""
    h, w = shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, np.pi)
    y0, x0 = near[0] + rng.uniform(-1, 1) * height, near[1] + rng.uniform(-1, 1) * height
    d = np.sin(a) * (gx - x0) - np.cos(a) * (gy - y0)  # Signed distance to the crease.
    with np.errstate(over="ignore"):  # (Far from the crease exp overflows: the side is 1.)
        side = 1 - rng.uniform(0.03, 0.12) / (1 + np.exp(-d / rng.uniform(1, 6)))
    crease = 1 - rng.uniform(0.08, 0.25) * np.exp(-(d / rng.uniform(0.7, 1.5)) ** 2)
    return side * crease


def _sticky_note(paper: np.ndarray, line: tuple[int, int, int, int], rng: np.random.Generator
                 ) -> np.ndarray:
    """`paper` as a yellow sticky note around the number (`line`: its top, left, height,
    width) lying on a desk, whose wood or laminate shows past the note's edges."""
    H, W, _ = paper.shape
    top, left, h, w = line
    y0 = max(0, top - int(rng.uniform(0.3, 1.5) * h))
    y1 = min(H, top + h + int(rng.uniform(0.3, 1.5) * h))
    x0 = max(0, left - int(rng.uniform(0.1, 0.6) * w))
    x1 = min(W, left + w + int(rng.uniform(0.1, 0.6) * w))
    note = np.zeros((H, W), np.float32)
    note[y0:y1, x0:x1] = 1
    note = ndimage.gaussian_filter(note, 1.0)[..., None]
    yellow = np.array([1.0, rng.uniform(0.88, 0.97), rng.uniform(0.35, 0.6)], np.float32)
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (H, W)).astype(np.float32), (1, 12))
    desk = (np.array([(0.45, 0.3, 0.18), (0.6, 0.6, 0.62), (0.25, 0.22, 0.2)][
        int(rng.integers(0, 3))], np.float32) * rng.uniform(0.7, 1.2)
        * (1 + 0.08 * grain / max(float(grain.std()), 1e-6))[..., None])
    return note * paper * yellow + (1 - note) * desk * paper.mean()


def _colormap(values: np.ndarray, name: str) -> np.ndarray:
    stops = np.array(COLORMAPS[name], np.float32)
    position = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    frac = (position - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def _plot(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A notebook's `plt.imshow(digit, cmap=...)`: the array as nearest-neighbour blocks on a
    white figure, with a frame, ticks, tick labels, sometimes a title and a colorbar."""
    cmap = str(rng.choice(list(COLORMAPS)))
    side = int(rng.integers(140, 420))
    area = Image.fromarray(_colormap(digit / 255.0, cmap), "RGB").resize(
        (side, side), Image.Resampling.NEAREST)
    margin_l, margin_t = int(rng.integers(30, 90)), int(rng.integers(15, 70))
    W = margin_l + side + int(rng.integers(15, 120))
    H = margin_t + side + int(rng.integers(30, 80))
    figure = Image.new("RGB", (W, H), (255, 255, 255))
    figure.paste(area, (margin_l, margin_t))
    draw = ImageDraw.Draw(figure)
    draw.rectangle([margin_l - 1, margin_t - 1, margin_l + side, margin_t + side],
                   outline=(0, 0, 0))
    for k in range(0, 28, 5):  # Ticks and labels every 5 pixels, as matplotlib puts them.
        x = margin_l + int((k + 0.5) * side / 28)
        y = margin_t + int((k + 0.5) * side / 28)
        draw.line([x, margin_t + side, x, margin_t + side + 4], fill=(0, 0, 0))
        draw.line([margin_l - 5, y, margin_l - 1, y], fill=(0, 0, 0))
        draw.text((x - 4, margin_t + side + 6), str(k), fill=(0, 0, 0))
        draw.text((margin_l - 22, y - 5), str(k), fill=(0, 0, 0))
    if rng.random() < 0.4 and W - margin_l - side > 40:  # A colorbar to the right.
        bar = _colormap(np.linspace(1, 0, side)[:, None].repeat(12, 1), cmap)
        figure.paste(Image.fromarray(bar, "RGB"), (margin_l + side + 12, margin_t))
    if rng.random() < 0.5:
        draw.text((margin_l + side // 3, max(2, margin_t - 14)), f"label = {rng.integers(10)}",
                  fill=(0, 0, 0))
    return figure


def _screen(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phone or monitor photographed: a dark bezel around a lit screen showing the digit
    (light or dark mode), on a desk, slightly blurred, with a screen-door grid."""
    side = int(rng.integers(100, 300))
    dark_mode = rng.random() < 0.5
    digit_px = np.asarray(Image.fromarray(digit, "L").resize((side, side),
                                                             Image.Resampling.BICUBIC),
                          np.float32) / 255.0
    sw, sh = side + int(rng.integers(40, 200)), side + int(rng.integers(60, 300))
    screen = np.full((sh, sw), 0.1 if dark_mode else 0.92, np.float32)
    top, left = int(rng.integers(10, sh - side - 10)), int(rng.integers(10, sw - side - 10))
    region = screen[top:top + side, left:left + side]
    screen[top:top + side, left:left + side] = (np.maximum(region, digit_px * 0.9) if dark_mode
                                                else region * (1 - 0.9 * digit_px))
    screen *= 1 - 0.08 * (np.arange(sh)[:, None] % 3 == 0)  # Screen-door rows.
    bezel = int(rng.integers(8, 40))
    H, W = sh + 2 * bezel + int(rng.integers(60, 300)), sw + 2 * bezel + int(rng.integers(60, 300))
    desk = np.full((H, W), rng.uniform(0.45, 0.75), np.float32)
    y, x = int(rng.integers(0, H - sh - 2 * bezel)), int(rng.integers(0, W - sw - 2 * bezel))
    desk[y:y + sh + 2 * bezel, x:x + sw + 2 * bezel] = 0.05
    desk[y + bezel:y + bezel + sh, x + bezel:x + bezel + sw] = screen
    desk += rng.normal(0, 0.02, desk.shape).astype(np.float32)
    tint = np.array([rng.uniform(0.85, 1), rng.uniform(0.9, 1), 1.0], np.float32)
    rgb = np.clip(desk[..., None] * tint, 0, 1)
    image = Image.fromarray((rgb * 255).astype(np.uint8), "RGB")
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))).rotate(
        rng.uniform(-4, 4), Image.Resampling.BILINEAR, fillcolor=(120, 120, 120))


def _paper_with(digit: np.ndarray, rng: np.random.Generator, kind: str) -> Image.Image:
    """A digit written on paper printed with a box (form cell), ruled lines or squares."""
    size = int(rng.integers(60, 160))
    ink = _ink(digit, size, rng, rng.uniform(-0.3, 1.0))
    H, W = size + int(rng.integers(120, 400)), ink.shape[1] + int(rng.integers(160, 500))
    paper = np.full((H, W), 0.93, np.float32)
    top, left = int(rng.integers(50, H - size - 50)), int(rng.integers(60, W - ink.shape[1] - 60))
    printed = np.zeros((H, W), bool)
    thick = int(rng.integers(1, 4))
    if kind == "box":
        pad = int(size * rng.uniform(0.1, 0.35))
        y0, y1 = top - pad, top + size + pad
        x0, x1 = left - pad - size // 4, left + ink.shape[1] + pad + size // 4
        y0, x0, y1, x1 = max(y0, 2), max(x0, 2), min(y1, H - 3), min(x1, W - 3)
        printed[y0:y1, x0:x0 + thick] = printed[y0:y1, x1 - thick:x1] = True
        printed[y0:y0 + thick, x0:x1] = printed[y1 - thick:y1, x0:x1] = True
        if rng.random() < 0.5:  # The neighbouring cells of a row of boxes, left and right.
            width = x1 - x0
            for x in range(x0 - width, -1, -width) if x0 > width else []:
                printed[y0:y1, x:x + thick] = True
            for x in range(x1 + width, W, width):
                printed[y0:y1, x - thick:x] = True
            printed[y0:y0 + thick, :] = printed[y1 - thick:y1, :] = True
    else:
        spacing = int(size * rng.uniform(0.35, 0.9) if kind == "squared"
                      else size * rng.uniform(0.45, 1.1))
        offset = int(rng.integers(0, spacing))
        printed[offset::spacing, :] = True
        if kind == "squared":
            printed[:, offset::spacing] = True
        if thick > 1:
            printed = ndimage.binary_dilation(printed, iterations=thick // 2)
    line_colour = rng.uniform(0.45, 0.8)  # Printed lines: grey, blue or light red.
    grey = np.where(printed, line_colour, paper)
    region = grey[top:top + size, left:left + ink.shape[1]]
    grey[top:top + size, left:left + ink.shape[1]] = region * (1 - 0.9 * ink)
    hue = {0: (1.0, 1.0, 1.0), 1: (0.85, 0.9, 1.1), 2: (1.1, 0.85, 0.85)}[int(rng.integers(3))]
    rgb = np.where(printed[..., None], np.clip(grey[..., None] * np.array(hue), 0, 1),
                   grey[..., None] * np.array([1.0, 0.98, 0.93]))
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb *= (0.85 + 0.15 * gx / W)[..., None]
    rgb += rng.normal(0, 0.015, rgb.shape)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")


def framed_upload(digit: np.ndarray, kind: str, rng: np.random.Generator) -> bytes:
    """`digit`: uint8 [28, 28] MNIST image, inside a picture of `kind` (see `FRAMES`)."""
    if kind == "plot":
        return _png(_plot(digit, rng))  # Screenshots are PNGs.
    if kind == "screen":
        return _jpeg(_screen(digit, rng), int(rng.integers(60, 92)))
    if kind in ("box", "ruled", "squared"):
        return _jpeg(_paper_with(digit, rng, kind), int(rng.integers(60, 92)))
    raise ValueError(kind)
