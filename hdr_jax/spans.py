"""Training examples of what the number reader sees: spans of lines of written digits.

The reader (`preprocess.number_line`, `recognition.read_line`) cuts a line of handwriting at
every plausible place and lets the model say which spans read best. A model trained on
isolated MNIST digits reads two touching digits as one sure digit, so the reader keeps the
pair, and reads a digit with a sliver of its neighbour less surely than it should. Here lines
of MNIST training digits (uneven pressure, touching and overlapping neighbours) are cut by the
reader's own `segment_number`, and every span becomes an example: the digit it holds (a
sliver of a neighbour allowed), or "no digit" (label `NO_DIGIT`) where it holds most of two:
the 11th class of a model that has one (`--num-classes 11`, the shipped model), else a
uniform target (`steps.class_targets`). A span that holds a part of one digit (under
`PART` of its ink, little of any other) is "no digit" too when asked (`parts=True`,
`--span-parts`): the reader otherwise cuts a 6 into "(" and "0" and reads the "(" as a sure 1.
It is left out by default, as are spans between a part and a whole digit: half a 4 is a
fair 1. Measured and not shipped: taught so, the model keeps touching digits together more
often (more wrong counts on the tuning numbers; BENCHMARKS.md, session 17).

A line may also be photographed (`photographed=True`, `--photo-spans`): put on paper with
uneven light, texture, sensor noise, blur and JPEG (`photograph`), then found again by the
reader's own ink finding (`preprocess.line_writing`) before it is cut. Its spans are what the
reader shows the model of a real photo: a faint digit's thin strokes broken up by the noise
floor, a loop left open, a blurred join. Their labels come from the clean line, which the
photo does not move.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hdr_jax import data, preprocess

NO_DIGIT = data.NUM_CLASSES
# A span is one digit when it holds this much of that digit's ink and other digits' ink is
# at most `INTRUSION` of it; it is no digit when it holds `PAIR` of two digits' ink.
WHOLE, INTRUSION, PAIR = 0.9, 0.2, 0.4
PART = 0.6  # A span is a part of a digit when it holds less than this much of its ink.
PART_OF_DIGIT = -1  # `span_label`'s answer for such a span.
TOUCHING = 0.5  # How often a gap between neighbours is a touch or an overlap.


def write_line(digits: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]:
    """uint8 [n, 28, 28] digits -> one line of ink (float [h, w], MNIST polarity) and, per
    digit, where it lies (first column, first row) and its own ink (what each span holds of
    it)."""
    height = int(rng.integers(30, 72))
    pieces = []
    for d in digits:
        ink = np.asarray(Image.fromarray(d, "L").resize((height, height),
                                                        Image.Resampling.BICUBIC),
                         np.float32) / 255.0
        cols = np.nonzero(ink.max(0) > 0.1)[0] if ink.max() > 0.1 else [0, height - 1]
        ink = np.clip(ink[:, cols[0]:cols[-1] + 1], 0, 1) * rng.uniform(0.4, 1.0)
        pieces.append(ink)
    gaps = [int(height * (rng.uniform(-0.15, 0.0) if rng.random() < TOUCHING
                          else rng.uniform(0.03, 0.3))) for _ in pieces[1:]] + [0]
    line = np.zeros((int(height * 1.3), sum(p.shape[1] for p in pieces) + sum(gaps)
                     + height), np.float32)
    x, placed = height // 2, []
    for piece, gap in zip(pieces, gaps, strict=True):
        top = int(height * 0.15) + int(rng.integers(-height // 12, height // 12 + 1))
        region = line[top:top + height, x:x + piece.shape[1]]
        np.maximum(region, piece[:region.shape[0]], out=region)
        placed.append((x, top, piece[:region.shape[0]]))
        x += piece.shape[1] + gap
    return line, placed


def span_label(left: int | np.ndarray, right: int | np.ndarray,
               placed: list[tuple[int, int, np.ndarray]]) -> int | None:
    """What a line holds between two cuts (columns, or a column per row of the line): a
    digit's index in the line, `NO_DIGIT` (most of two digits), `PART_OF_DIGIT` (under `PART`
    of one digit and little else), or None (neither: most of one digit but not all of it, or
    a digit with too much of a neighbour to be either)."""
    inside = np.array([ink_between(left, right, *digit) for digit in placed])
    share = inside / np.array([ink.sum() for _, _, ink in placed])
    main = int(share.argmax())
    if share[main] >= WHOLE and inside.sum() - inside[main] <= INTRUSION * inside[main]:
        return main
    if np.sum(share >= PAIR) >= 2:
        return NO_DIGIT
    if share[main] < PART and inside.sum() - inside[main] <= INTRUSION * inside[main]:
        return PART_OF_DIGIT
    return None


def ink_between(left: int | np.ndarray, right: int | np.ndarray, x: int, top: int,
                ink: np.ndarray) -> float:
    """How much of a digit's `ink`, placed at column `x` and row `top`, lies between the cuts."""
    h, w = ink.shape
    return float(ink[preprocess.between_cuts(left, right, slice(top, top + h), x, x + w)].sum())


def photograph(line: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A line of ink (MNIST polarity) written on paper and photographed: greyscale in [0, 1]
    as decoded from a JPEG (dark ink on light paper), and the margin of paper added on each
    side. Light falls off across the sheet, the paper has texture and the sensor noise, the
    lens blurs a little, the ink runs from near black to a pale grey (with `write_line`'s
    pressure, some digits barely clear the grain); each drawn per line."""
    from scipy import ndimage  # Deferred, as in `preprocess`.

    pad = int(rng.integers(8, 40))
    ink = np.pad(line, pad)
    h, w = ink.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0.0, 0.3) * ((np.cos(angle) * gx / w + np.sin(angle) * gy / h)
                                         + 1) / 2
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32),
                                      rng.uniform(0.7, 3))
    light *= 1 + rng.uniform(0.01, 0.06) * texture / max(float(texture.std()), 1e-6)
    paper, pen = light * rng.uniform(0.6, 0.95), rng.uniform(0.05, 0.55)
    grey = paper * (1 - ink) + pen * ink + rng.normal(0, rng.uniform(0.005, 0.07), (h, w))
    grey = ndimage.gaussian_filter(grey, rng.uniform(0, 1.5))
    buffer = io.BytesIO()
    Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L").save(
        buffer, "JPEG", quality=int(rng.integers(40, 96)))
    return np.asarray(Image.open(buffer), np.float32) / 255.0, pad


def line_examples(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                  parts: bool = False, photographed: bool = False
                  ) -> tuple[list[np.ndarray], list[int]]:
    """Every span the reader considers in one written line, as (28x28 uint8, label); a part
    of a digit is "no digit" with `parts`, else left out. `photographed`: the line is
    photographed and its ink found again by the reader, as in a real upload."""
    line, placed = write_line(digits, rng)
    try:
        if photographed:
            grey, pad = photograph(line, rng)
            line = preprocess.line_writing(grey)
            placed = [(x + pad, top + pad, own_ink) for x, top, own_ink in placed]
        cuts, pieces, spans, line_height = preprocess.segment_number(line)
    except preprocess.PreprocessError:  # No ink (not MNIST), or none the reader calls writing.
        return [], []
    paths = preprocess.cut_paths(line, cuts, pieces, line_height)  # As the reader cuts.
    images, targets = [], []
    for i, j in spans:
        which = span_label(paths[i], paths[j], placed)
        if which == PART_OF_DIGIT:
            which = NO_DIGIT if parts else None
        digit = preprocess.digit_between(line, paths[i], paths[j], 1.0, line.shape[::-1])
        if which is None or digit is None:
            continue
        images.append(np.round(digit.image * 255).astype(np.uint8))
        targets.append(NO_DIGIT if which == NO_DIGIT else int(labels[which]))
    return images, targets


def with_line_spans(split: data.Split, n: int, seed: int, parts: bool = False,
                    photographed: bool = False) -> data.Split:
    """`split` plus `n` span examples from lines of 2-5 of its own digits (seeded); with
    `parts`, parts of digits among them as "no digit"; `photographed`, from lines
    photographed and found again (a stream of its own: the plain spans stay the same)."""
    rng = np.random.default_rng([seed, 11 if photographed else 7])
    images: list[np.ndarray] = []
    targets: list[int] = []
    for _ in range(10 * n + 100):  # A line of MNIST digits gives 5-10 examples.
        if len(images) >= n:
            break
        pick = rng.integers(0, len(split), int(rng.integers(2, 6)))
        more, more_targets = line_examples(split.images[pick], split.labels[pick], rng,
                                           parts, photographed)
        images += more
        targets += more_targets
    else:
        raise data.DataError(f"lines of these digits gave {len(images)} of {n} span examples")
    return data.Split(np.concatenate([split.images, np.stack(images[:n])]),
                      np.concatenate([split.labels, np.array(targets[:n], np.int32)]))
