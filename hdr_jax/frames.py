"""Pictures inside pictures: a digit shown in a notebook's plot, on a screen photographed, in a
printed box or form cell, or on ruled or squared paper.

Two things set these apart from a digit on a sheet:

- a *frame*: one connected piece of ink that reaches every side of its own bounding box (a
  plot's filled area or its axes, a screen with its bezel, a printed box), found on the
  upload's dark (or light) areas before lighting is removed. The digit is read again inside
  it, as an upload of its own.
- *printed lines*: straight runs of ink much longer than they are thick, with paper on both
  sides (ruled and squared paper, the sides of form cells), found on the stroke mask. They
  are taken out, except where a stroke crosses them.

Pure array functions, no Pillow or model: `preprocess` calls them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# A frame's piece covers this share of the rows (columns) within `FRAME_BAND` of each side of
# its box; digits cover far less on at least one side (a 7's foot, a 0's corners).
FRAME_COVERAGE, FRAME_BAND = 0.9, 0.12
MIN_FRAME = 0.1  # Of the upload's width and height: smaller pieces are not frames.
# A filled frame (a plot's coloured area) shows the digit as holes, at least this share of its
# box (a few percent in plots, the digit often in pieces); a shadow across the sheet is as
# filled, but its holes are grain (about a tenth of a percent): the writing in it is darker
# still, so part of it.
FILLED_HOLES = 0.005
FILLED = 0.5  # A filled frame covers at least this share of its box (a plot's area: ~0.9).
# A printed line runs at least `LINE_LENGTH` of the upload's width (height, for a vertical
# line) and is at most `LINE_THINNESS` as thick as it is long (a 1 is ~1/7 as thick as tall).
LINE_LENGTH, LINE_THINNESS = 0.6, 0.04
BAR_THINNESS = 0.1  # A printed bar between two lines (a form cell's wall) is this thin.
EDGE_STEP = 0.5  # Of an outline's contrast, found across its inner edge (`sharp`).
# A rubber stamp's ring: circles through three stroke pixels are tried (`RING_TRIES`, the
# pixels spread by a fixed hash, so the page's port draws the same), and one is a ring where
# its ink, within `RING_BAND` of its radius, fills `RING_COVERAGE` of its arcs inside the
# picture (at least a third of the circle lies there).
RING_TRIES, RING_POINTS, RING_ARCS = 200, 1000, 48
RING_BAND, RING_COVERAGE = 0.06, 0.75
REFITTED_COVERAGE = 0.8  # (`_covers`)
RING_FILL, RING_FLANK = 0.4, 0.2  # Of a ring's band and of its flanks: ink's share (`_solid`).
# A stamp's second ring lies between SECOND[0] and SECOND[1] times the other's radius, inside
# it, or as far outside.
SECOND = (0.55, 0.9)


@dataclasses.dataclass(frozen=True)
class Ring:
    """A circle of ink (a stamp's ring): its centre, radius and half-thickness, in pixels."""

    y: float
    x: float
    radius: float
    half_width: float

    def distance(self, shape: tuple[int, ...]) -> np.ndarray:
        """Each pixel's distance from the ring's middle line."""
        gy, gx = np.ogrid[0:shape[0], 0:shape[1]]
        return np.abs(np.hypot(gy - self.y, gx - self.x) - self.radius)


@dataclasses.dataclass(frozen=True)
class Frame:
    """The inside of a frame: its box (y0, y1, x0, x1) in the mask's pixels and, for an outline
    (a bezel, a printed box), which pixels of that box lie inside the outline."""

    box: tuple[int, int, int, int]
    inside: np.ndarray | None = None


def find_frame(mask: np.ndarray) -> Frame | None:
    """The inside of the largest frame in `mask`, or None. A frame is an outline (what it
    encloses is most of its box) or a filled area with the digit as holes in it (a plot)."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    h, w = mask.shape
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # Pixels per piece.
    for index in np.argsort(-sizes)[:3]:  # The frame, if any, is among the largest pieces.
        if sizes[index] < 2 * MIN_FRAME * min(h, w):  # Too few pixels to reach every side.
            break
        rows, cols = np.nonzero((labels == index + 1).any(1))[0], \
            np.nonzero((labels == index + 1).any(0))[0]
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        sl = (slice(y0, y1), slice(x0, x1))
        if y1 - y0 < MIN_FRAME * h or x1 - x0 < MIN_FRAME * w:
            continue
        piece = labels[sl] == index + 1
        if not _reaches_every_side(piece):
            continue
        holes, count = ndimage.label(ndimage.binary_fill_holes(piece) & ~piece)
        if not count:  # A shadow across the sheet, a bold stroke: nothing shown inside.
            continue
        largest = 1 + int(np.argmax(np.bincount(holes.ravel(), minlength=count + 1)[1:]))
        hy, hx = ndimage.find_objects((holes == largest).astype(np.int32))[0]
        if (hy.stop - hy.start) * (hx.stop - hx.start) >= 0.5 * piece.size:  # An outline.
            # Shrunk a little: the outline's blurred inner edge is not the picture.
            inside = ndimage.binary_erosion(ndimage.binary_fill_holes(holes == largest),
                                            iterations=3)[hy, hx]
            return Frame((y0 + hy.start, y0 + hy.stop, x0 + hx.start, x0 + hx.stop), inside)
        if np.count_nonzero(holes) < FILLED_HOLES * piece.size:  # Grain in a shadow.
            continue
        if piece.mean() < FILLED:  # Thin lines with many holes: a row of printed cells.
            continue
        inset = [min(_side_thickness(side), int(0.1 * len(side))) + 2
                 for side in (piece, piece[::-1], piece.T, piece.T[::-1])]
        top, bottom, left, right = inset
        if y1 - y0 - top - bottom > 8 and x1 - x0 - left - right > 8:
            return Frame((y0 + top, y1 - bottom, x0 + left, x1 - right))
    return None


def remove_outline(ink: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`ink` without a printed box drawn around the writing (`ink` itself if there is none):
    one of the largest pieces (`labels`: numbered stroke pieces) that is a printed box
    (`box_lines`), with some ink inside it. Found on the strokes, not as a frame: a box
    printed in light grey is paper to `find_frame`'s split. A digit touching the box keeps
    all but the box's lines; a 0 alone has nothing inside and stays."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    sizes = np.bincount(labels.ravel())[1:]
    objects = ndimage.find_objects(labels)
    for index in np.argsort(-sizes)[:3]:
        sl = objects[index]
        piece = labels[sl] == index + 1
        if (lines := box_lines(piece)) is None:
            continue
        inside = (labels[sl][~lines] > 0).mean() if (~lines).any() else 0.0
        if not 0.005 <= inside <= 0.5:  # Nothing inside (a 0), or filled (a bold 1).
            continue
        out = ink.copy()
        out[sl][lines & piece] = 0.0
        return out
    return ink


def find_ring(mask: np.ndarray) -> Ring | None:
    """The largest circle of ink in `mask` (a stamp's ring; a 0 or a loop of a digit is one
    too, and the caller tells them apart by size), or None. RANSAC: each try is the circle
    through three stroke pixels, a ring where ink fills most of its arcs inside the picture.
    The eight that fill the most (a stamp's ring drawn whole before a circle that grazes the
    writing) are refitted to the pixels along them (least squares); of those that still fill
    most of their arcs (`_covers`) and are solid ink with paper on either side (`_solid`),
    the largest (a stamp's ring before a loop of a digit it crosses)."""
    ys, xs = np.nonzero(mask)
    if ys.size < 30:
        return None
    step = -(-ys.size // RING_POINTS)
    py, px = ys[::step].astype(np.float64), xs[::step].astype(np.float64)
    m, k = py.size, np.arange(RING_TRIES)
    a, b, c = (k * 7919) % m, (k * 104729 + m // 3) % m, (k * 1299709 + 2 * m // 3) % m
    y, x = _circle_through((py[a], px[a]), (py[b], px[b]), (py[c], px[c]))
    radius = np.hypot(py[a] - y, px[a] - x)
    tries = np.isfinite(radius) & (radius >= 6) & (radius <= max(mask.shape))
    y, x, radius = y[tries], x[tries], radius[tries]
    off = np.abs(np.hypot(py[None] - y[:, None], px[None] - x[:, None]) - radius[:, None])
    on = off <= np.maximum(1.5, RING_BAND * radius)[:, None]
    inked, shown = _arcs(py, px, y, x, radius, on, mask.shape)
    ring = (shown >= RING_ARCS // 3) & (inked >= RING_COVERAGE * shown)
    score = np.where(ring, inked * (m + 1) + on.sum(1), -1)
    best = np.argsort(-score, kind="stable")[:min(int(ring.sum()), 8)]
    found = [_refit(ys, xs, Ring(float(y[i]), float(x[i]), float(radius[i]), 0.0)) for i in best]
    return max((r for r in found if r is not None and _covers(ys, xs, r, mask.shape)
                and _solid(mask, r)), key=lambda r: r.radius, default=None)


def _covers(ys: np.ndarray, xs: np.ndarray, ring: Ring, shape: tuple[int, ...]) -> bool:
    """Whether the stroke pixels (`ys`, `xs`, all of them) fill `REFITTED_COVERAGE` of the
    refitted `ring`'s arcs inside the picture (a circle through a bold 5's bar and bowl passed
    on the sample but not refitted: BENCHMARKS.md, session 18)."""
    return _fills(ys, xs, ring.y, ring.x, ring.radius, max(1.5, RING_BAND * ring.radius),
                  REFITTED_COVERAGE, shape)


def _fills(ys: np.ndarray, xs: np.ndarray, y: float, x: float, radius: float, band: float,
           coverage: float, shape: tuple[int, ...]) -> bool:
    """Whether the pixels (`ys`, `xs`) within `band` of the circle (`y`, `x`, `radius`) fill
    `coverage` of its arcs inside the picture, and a third of the circle lies there."""
    on = np.abs(np.hypot(ys - y, xs - x) - radius) <= band
    inked, shown = _arcs(ys.astype(np.float64), xs.astype(np.float64), np.array([y]),
                         np.array([x]), np.array([radius]), on[None], shape)
    return shown[0] >= RING_ARCS // 3 and inked[0] >= coverage * shown[0]


def second_ring(mask: np.ndarray, ring: Ring) -> Ring | None:
    """A second ring about `ring`'s centre (a stamp's two rings: `ring` may be either), in
    `mask` without `ring`'s own ink, or None: the radius, `SECOND` times `ring`'s or its
    inverse, that most stroke pixels lie at, where ink fills `RING_COVERAGE` of its arcs
    inside the picture."""
    ys, xs = np.nonzero(mask)
    distance = np.hypot(ys - ring.y, xs - ring.x)
    lo, hi = SECOND[0] * ring.radius, ring.radius / SECOND[0]
    apart = ((distance >= lo) & (distance < hi)
             & (np.abs(distance - ring.radius) >= (1 - SECOND[1]) * ring.radius))
    if apart.sum() < 30:
        return None
    counts = np.bincount((distance[apart] - lo).astype(np.intp))
    width = max(1, int(ring.half_width))
    # Pixels within `width` of each whole radius from `lo` (a sliding sum).
    total = np.concatenate([[0], np.cumsum(counts)])
    at = np.arange(counts.size)
    near = total[np.minimum(at + width + 1, counts.size)] - total[np.maximum(at - width, 0)]
    radius = lo + int(np.argmax(near)) + 0.5
    if not _fills(ys, xs, ring.y, ring.x, radius, width, RING_COVERAGE, mask.shape):
        return None
    return _refit(ys, xs, Ring(ring.y, ring.x, radius, 0.0))


def _arcs(py: np.ndarray, px: np.ndarray, y: np.ndarray, x: np.ndarray, radius: np.ndarray,
          on: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """For circles (centres `y`, `x` and `radius`, [T] each) and points (`py`, `px`, [M]; `on`
    [T, M]: those on each circle): how many of each circle's `RING_ARCS` arcs inside the
    picture hold a point on it, and how many of its arcs lie inside the picture."""
    arc = np.floor(np.arctan2(py[None] - y[:, None], px[None] - x[:, None])
                   / (2 * np.pi) * RING_ARCS).astype(np.intp) % RING_ARCS
    inked = np.zeros((radius.size, RING_ARCS), bool)
    inked[np.nonzero(on)[0], arc[on]] = True
    middles = (np.arange(RING_ARCS) + 0.5) / RING_ARCS * 2 * np.pi
    cy = y[:, None] + radius[:, None] * np.sin(middles)
    cx = x[:, None] + radius[:, None] * np.cos(middles)
    shown = (cy >= 0) & (cy < shape[0]) & (cx >= 0) & (cx < shape[1])
    return (inked & shown).sum(1), shown.sum(1)


def _circle_through(p: tuple, q: tuple, r: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The centres (y, x) of the circles through three points each (arrays of y, x)."""
    (y1, x1), (y2, x2), (y3, x3) = p, q, r
    d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))
    s1, s2, s3 = x1 ** 2 + y1 ** 2, x2 ** 2 + y2 ** 2, x3 ** 2 + y3 ** 2
    with np.errstate(divide="ignore", invalid="ignore"):  # (Three points in a line: no circle.)
        return ((s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d,
                (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d)


def _refit(ys: np.ndarray, xs: np.ndarray, ring: Ring) -> Ring | None:
    """`ring` fitted to the stroke pixels near it (algebraically: least squares by the normal
    equations, about their mean), twice, the second time to those within twice their first
    spread (strokes crossing it pull less), and given their spread about it as its
    half-thickness; None where too few pixels lie near it, or all on a straight line."""
    reach = max(1.5, 1.5 * RING_BAND * ring.radius)
    for _ in range(2):
        near = np.abs(np.hypot(ys - ring.y, xs - ring.x) - ring.radius) <= reach
        if near.sum() < 10:
            return None
        y, x = ys[near].astype(np.float64), xs[near].astype(np.float64)
        my, mx = float(y.mean()), float(x.mean())
        design = np.stack([2 * (y - my), 2 * (x - mx), np.ones_like(y)], 1)
        try:
            cy, cx, e = np.linalg.solve(design.T @ design,
                                        design.T @ ((y - my) ** 2 + (x - mx) ** 2))
        except np.linalg.LinAlgError:  # (Pixels all on one straight line: no circle.)
            return None
        radius = float(np.sqrt(max(e + cy ** 2 + cx ** 2, 0.0)))
        cy, cx = float(cy) + my, float(cx) + mx
        off = np.abs(np.hypot(y - cy, x - cx) - radius)
        ring = Ring(cy, cx, radius, float(np.percentile(off, 95)) + 1.5)
        reach = min(reach, 2 * float(np.median(off)) + 1.5)
    return ring


def _solid(mask: np.ndarray, ring: Ring) -> bool:
    """Whether `mask` covers `RING_FILL` of `ring`'s band (within its half-thickness of its
    middle line) inside the picture, and at most `RING_FLANK` of its flanks (1.5 to 3
    half-thicknesses from it): a ring is solid ink with paper on either side, where a circle
    through grainy chalk, or along a line of writing, is neither."""
    distance = ring.distance(mask.shape)
    band = distance <= ring.half_width
    flanks = (distance > 1.5 * ring.half_width) & (distance <= 3 * ring.half_width)
    return (band.any() and float(mask[band].mean()) >= RING_FILL
            and (not flanks.any() or float(mask[flanks].mean()) <= RING_FLANK))


def box_lines(piece: np.ndarray) -> np.ndarray | None:
    """Where a printed box's lines lie in its piece's own box (`piece`: bool, its pixels): its
    four straight sides, and the walls from side to side inside it (a row of cells); None
    where the piece is no printed box (it does not reach every side of its box, or a side
    has no straight full row: a round 0, a blob)."""
    if min(piece.shape) < 12 or not _reaches_every_side(piece):
        return None
    thickness = [_side_thickness(side) for side in (piece, piece[::-1], piece.T, piece.T[::-1])]
    if min(thickness) == 0:
        return None
    top, bottom, left, right = (t + 1 for t in thickness)
    h, w = piece.shape
    lines = np.ones(piece.shape, bool)
    lines[top:h - bottom, left:w - right] = False
    inner = piece[top:h - bottom, left:w - right]
    if inner.size:  # Walls: (near-)full columns or rows, a pixel of lean allowed.
        walls = _full(inner, axis=0)[None, :] | _full(inner, axis=1)[:, None]
        lines[top:h - bottom, left:w - right] = walls
    return lines


def _full(inner: np.ndarray, axis: int) -> np.ndarray:
    """Which columns (axis 0) or rows (axis 1) of `inner` its ink covers from end to end,
    give or take a pixel across, and the pixels on either side of them."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    slack = ndimage.maximum_filter1d(inner.astype(np.uint8), 3, axis=1 - axis)
    full = slack.mean(axis) >= FRAME_COVERAGE
    return ndimage.binary_dilation(full, iterations=1) if full.any() else full


def sharp(ink: np.ndarray, frame: Frame) -> bool:
    """Whether an outline frame's inner edge is a step in `ink` (the picture the frame was
    found on, polarised), as a bezel's or a printed box's is, not a ramp, as the dark corners
    of a flash photo are: across 6 pixels at the edge, ink changes by at least `EDGE_STEP` of
    the whole difference between the outline and what it encloses."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    if frame.inside is None:
        return True
    y0, y1, x0, x1 = frame.box
    pad = 12
    inside = np.zeros(ink.shape, bool)
    inside[y0:y1, x0:x1] = frame.inside
    window = (slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad))
    inside, ink = inside[window], ink[window]
    rings = [ndimage.binary_dilation(inside, iterations=k) for k in (3, 6, 12)]
    just_in = inside & ~ndimage.binary_erosion(inside, iterations=3)
    just_out = rings[1] & ~rings[0]
    outline = ~rings[2]  # Beyond the edge: the frame itself (where the window holds it).
    if not (just_in.any() and just_out.any() and outline.any()):
        return True
    whole = float(np.median(ink[outline]) - np.median(ink[inside]))
    step = float(np.median(ink[just_out]) - np.median(ink[just_in]))
    return abs(step) >= EDGE_STEP * abs(whole)


def _reaches_every_side(piece: np.ndarray) -> bool:
    h, w = piece.shape
    bh, bw = max(1, int(FRAME_BAND * h)), max(1, int(FRAME_BAND * w))
    sides = (piece[:bh].any(0), piece[-bh:].any(0), piece[:, :bw].any(1), piece[:, -bw:].any(1))
    return all(float(side.mean()) >= FRAME_COVERAGE for side in sides)


def _side_thickness(piece: np.ndarray) -> int:
    """Rows from the top of `piece` to its last nearly full row near the top: the frame's own
    thickness, tick marks outside it included."""
    band = piece[:max(1, int(FRAME_BAND * len(piece)))]
    full = np.nonzero(band.mean(1) >= FRAME_COVERAGE)[0]
    return int(full.max()) + 1 if full.size else 0


class Pattern(Exception):
    """Printed lines with short straight segments between them: a wall, tiles, a table."""


def remove_lines(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`ink` without printed horizontal and vertical lines (`ink` itself if it has none);
    strokes crossing them are kept.
    Raises `Pattern` when what the lines leave is mostly short straight segments running
    from one line to the next (a brick wall's mortar), not writing."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    lines = np.zeros_like(mask)
    pixels = mask.astype(np.uint8)
    for axis in (1, 0):  # Along rows (horizontal lines), then along columns.
        length = max(12, int(LINE_LENGTH * mask.shape[axis]))
        band = np.moveaxis(pixels, 1 - axis, 0)  # Rows of the line's direction first.
        if (band[:-2] | band[1:-1] | band[2:]).sum(1).max(initial=0) < length:
            continue  # No band of three rows (columns) holds a line's length of ink.
        # A photo's lines lean a little: a pixel of slack across, then runs of `length`
        # (an opening by 1-D min/max filters, which cost the same for any length).
        slack = ndimage.maximum_filter1d(pixels, 3, axis=1 - axis)
        runs = ndimage.maximum_filter1d(ndimage.minimum_filter1d(slack, length, axis=axis),
                                        length, axis=axis).astype(bool) & mask
        labels, _ = ndimage.label(runs)
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            extent = sl[axis].stop - sl[axis].start
            piece = labels[sl] == i
            thickness = piece.sum() / max(extent, 1)
            if thickness <= LINE_THINNESS * extent and _alone(piece, sl, mask, axis, thickness):
                lines[sl] |= piece
    if not lines.any():
        return ink
    strokes = mask & ~lines
    # A stroke crossing a line continues on both sides of it: bridge the line there.
    bridged = (_closed(strokes, axis=0) | _closed(strokes, axis=1)) & lines
    # Straight bars from one line to the next are printed too: the walls between a form's
    # cells. Many of them in several rows are a pattern (a brick wall's joints).
    kept = strokes | bridged
    bars, count, rows = _bars_between(kept, ndimage.binary_dilation(lines & ~bridged,
                                                                    iterations=2))
    if count >= 6 and rows >= 2:
        raise Pattern()
    return np.where((lines & ~bridged) | bars, 0.0, ink).astype(ink.dtype)


def _alone(piece: np.ndarray, sl: tuple[slice, slice], mask: np.ndarray, axis: int,
           thickness: float) -> bool:
    """Whether a thin run of ink has paper on both sides (a printed line), not the rest of a
    thick stroke (the straight side of a bold 0)."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    reach = int(thickness) + 3
    across = 1 - axis
    lo = max(0, sl[across].start - reach)
    hi = min(mask.shape[across], sl[across].stop + reach)
    window = [sl[0], sl[1]]
    window[across] = slice(lo, hi)
    grown = np.zeros((hi - lo, piece.shape[1]) if across == 0 else (piece.shape[0], hi - lo),
                     bool)
    offset = sl[across].start - lo
    if across == 0:
        grown[offset:offset + piece.shape[0]] = piece
    else:
        grown[:, offset:offset + piece.shape[1]] = piece
    band = ndimage.maximum_filter1d(grown.astype(np.uint8), 2 * reach + 1,
                                    axis=across).astype(bool) & ~grown
    return (mask[tuple(window)] & band).sum() < 0.5 * band.sum()


def _closed(mask: np.ndarray, axis: int, size: int = 7) -> np.ndarray:
    """A binary closing along one axis (gaps shorter than `size` filled), by 1-D filters."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    grown = ndimage.maximum_filter1d(mask.astype(np.uint8), size, axis=axis)
    return ndimage.minimum_filter1d(grown, size, axis=axis).astype(bool)


def _bars_between(strokes: np.ndarray, near_lines: np.ndarray
                  ) -> tuple[np.ndarray, int, int]:
    """The pieces of `strokes` that are thin straight bars touching lines at both ends, how
    many there are, and in how many distinct rows (columns) of the picture they stand."""
    from scipy import ndimage  # Deferred: see preprocess's module docstring.

    labels, _ = ndimage.label(strokes, structure=np.ones((3, 3)))
    bars = np.zeros_like(strokes)
    count, spans = 0, set()
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        piece = labels[sl] == i
        h, w = piece.shape
        upright = h >= w
        if min(h, w) > 0.25 * max(h, w) or max(h, w) < 6 or not _straight(piece, upright):
            continue
        near = near_lines[sl]
        ends = (piece[0] & near[0], piece[-1] & near[-1]) if upright else \
            (piece[:, 0] & near[:, 0], piece[:, -1] & near[:, -1])
        if ends[0].any() and ends[1].any():
            bars[sl] |= piece
            count += 1
            axis = 0 if upright else 1
            spans.add((upright, sl[axis].start // 8))  # Bars of one course share a span.
    return bars, count, len(spans)


def _straight(piece: np.ndarray, upright: bool) -> bool:
    """Whether a thin piece is a straight bar, upright or lying, leaning a little as a photo's
    lines do (its box is then wider than the bar: a box's fill does not tell): every row
    (column) of it is a run at most `BAR_THINNESS` of its length (and 2 pixels of blur)
    whose centre stays within a pixel and a half of one straight line."""
    along = piece if upright else piece.T
    counts = along.sum(1)
    if counts.min() == 0 or counts.max() > BAR_THINNESS * len(counts) + 2:
        return False
    centres = (along * np.arange(along.shape[1])).sum(1) / counts
    t = np.arange(len(centres))
    fit = np.polyval(np.polyfit(t, centres, 1), t)
    return float(np.abs(centres - fit).max()) <= 1.5


def colour_contrast(rgb: np.ndarray) -> np.ndarray:
    """An inner picture in grey by how far each pixel's colour is from its background's (the
    median colour: a digit covers far less than half of its picture): a plot's digit in any
    colormap becomes light ink on a dark ground (float32 [h, w] in [0, 1])."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 40_000)))
    background = np.median(rgb[::step, ::step].reshape(-1, 3), 0)
    distance = np.linalg.norm(rgb.astype(np.float32) - background, axis=-1)
    top = float(np.percentile(distance, 99.5))
    return np.clip(distance / max(top, 1e-6), 0, 1).astype(np.float32)
