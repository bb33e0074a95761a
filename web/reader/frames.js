// Pictures inside pictures, in the browser: a port of hdr_jax/frames.py (frames: a plot, a
// screen, a printed box; printed lines: ruled and squared paper, form cells), same names and
// constants. Masks are Uint8Array images (see ndimage.js).
import * as nd from "./ndimage.js";

const FRAME_COVERAGE = 0.9, FRAME_BAND = 0.12;
const MIN_FRAME = 0.1;
const FILLED_HOLES = 0.005;
const FILLED = 0.5;
const LINE_LENGTH = 0.6, LINE_THINNESS = 0.04;
const BAR_THINNESS = 0.1;
const EDGE_STEP = 0.5;
const RING_TRIES = 200, RING_POINTS = 1000, RING_ARCS = 48;
const RING_BAND = 0.06, RING_COVERAGE = 0.75;
const REFITTED_COVERAGE = 0.8;
const RING_FILL = 0.4, RING_FLANK = 0.2;
const SECOND = [0.55, 0.9];

export class Pattern extends Error {}

function pieceOf({ labels, w }, index, [y0, y1, x0, x1]) {
  const out = nd.image(y1 - y0, x1 - x0, Uint8Array);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) out.data[(y - y0) * out.w + x - x0] = labels[y * w + x] === index ? 1 : 0;
  }
  return out;
}

/** The inside of the largest frame in `mask`: {box: [y0, y1, x0, x1], inside: mask or null}. */
export function findFrame(mask) {
  const { h, w } = mask;
  const labelled = nd.label(mask);
  if (labelled.n === 0) return null;
  const pieceSizes = nd.sizes(labelled.labels, labelled.n);
  const order = Array.from({ length: labelled.n }, (_, i) => i + 1)
    .sort((a, b) => pieceSizes[b] - pieceSizes[a]).slice(0, 3);
  const allBoxes = nd.boxes(labelled);
  for (const index of order) {
    if (pieceSizes[index] < 2 * MIN_FRAME * Math.min(h, w)) break;
    const [y0, y1, x0, x1] = allBoxes[index];
    if (y1 - y0 < MIN_FRAME * h || x1 - x0 < MIN_FRAME * w) continue;
    const piece = pieceOf(labelled, index, allBoxes[index]);
    if (!reachesEverySide(piece)) continue;
    const filled = nd.fillHoles(piece);
    const holes = nd.label(nd.map(filled, (v, i) => (v && !piece.data[i] ? 1 : 0), Uint8Array), false);
    if (!holes.n) continue; // A shadow across the sheet, a bold stroke: nothing shown inside.
    const holeSizes = nd.sizes(holes.labels, holes.n);
    let largest = 1;
    for (let i = 2; i <= holes.n; i++) if (holeSizes[i] > holeSizes[largest]) largest = i;
    const [hy0, hy1, hx0, hx1] = nd.boxes(holes)[largest];
    if ((hy1 - hy0) * (hx1 - hx0) >= 0.5 * piece.data.length) {
      const hole = nd.map({ ...piece, data: holes.labels }, (v) => (v === largest ? 1 : 0), Uint8Array);
      const inside = nd.crop(nd.binaryErosion(nd.fillHoles(hole), 3), hy0, hy1, hx0, hx1);
      return { box: [y0 + hy0, y0 + hy1, x0 + hx0, x0 + hx1], inside };
    }
    const holePixels = holes.labels.reduce((n, v) => n + (v > 0), 0);
    if (holePixels < FILLED_HOLES * piece.data.length) continue; // Grain in a shadow.
    if (nd.count(piece) < FILLED * piece.data.length) continue; // A row of printed cells.
    const [top, bottom, left, right] = [piece, flip(piece), transpose(piece), flip(transpose(piece))]
      .map((side) => Math.min(sideThickness(side), Math.trunc(0.1 * side.h)) + 2);
    if (y1 - y0 - top - bottom > 8 && x1 - x0 - left - right > 8) {
      return { box: [y0 + top, y1 - bottom, x0 + left, x1 - right], inside: null };
    }
  }
  return null;
}

/** frames.remove_outline: `ink` without a printed box around the writing (the same object
 * where there is none). `labelled`: the numbered stroke pieces. */
export function removeOutline(ink, labelled) {
  const { labels, n } = labelled;
  if (!n) return ink;
  const pieceSizes = nd.sizes(labels, n);
  const order = Array.from({ length: n }, (_, i) => i + 1)
    .sort((a, b) => pieceSizes[b] - pieceSizes[a]).slice(0, 3);
  const allBoxes = nd.boxes(labelled);
  for (const index of order) {
    const [y0, y1, x0, x1] = allBoxes[index];
    const piece = pieceOf(labelled, index, allBoxes[index]);
    const lines = boxLines(piece);
    if (!lines) continue;
    let enclosed = 0, inked = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if (lines.data[(y - y0) * piece.w + x - x0]) continue;
        enclosed++;
        if (labels[y * labelled.w + x] > 0) inked++;
      }
    }
    const inside = enclosed ? inked / enclosed : 0;
    if (!(inside >= 0.005 && inside <= 0.5)) continue; // Nothing inside (a 0), or a bold 1.
    const out = nd.map(ink, (v) => v);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const j = (y - y0) * piece.w + x - x0;
        if (lines.data[j] && piece.data[j]) out.data[y * ink.w + x] = 0;
      }
    }
    return out;
  }
  return ink;
}

/** frames.Ring.distance: each pixel's distance from the ring's middle line (Float64Array). */
export function ringDistance(ring, h, w) {
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) out[y * w + x] = Math.abs(Math.hypot(y - ring.y, x - ring.x) - ring.radius);
  }
  return out;
}

function pixelsOf(mask) {
  const ys = [], xs = [];
  for (let y = 0; y < mask.h; y++) for (let x = 0; x < mask.w; x++) if (mask.data[y * mask.w + x]) { ys.push(y); xs.push(x); }
  return { ys, xs };
}

/** frames.find_ring: the largest circle of ink in `mask` ({y, x, radius, halfWidth}), or
 * null. RANSAC over circles through three stroke pixels, chosen by the same fixed hash. */
export function findRing(mask) {
  const { ys, xs } = pixelsOf(mask);
  if (ys.length < 30) return null;
  const step = Math.ceil(ys.length / RING_POINTS);
  const py = [], px = [];
  for (let i = 0; i < ys.length; i += step) { py.push(ys[i]); px.push(xs[i]); }
  const m = py.length, third = Math.floor(m / 3), twoThirds = Math.floor((2 * m) / 3);
  const tries = [];
  for (let k = 0; k < RING_TRIES; k++) {
    const a = (k * 7919) % m, b = (k * 104729 + third) % m, c = (k * 1299709 + twoThirds) % m;
    const [y, x] = circleThrough([py[a], px[a]], [py[b], px[b]], [py[c], px[c]]);
    const radius = Math.hypot(py[a] - y, px[a] - x);
    if (!Number.isFinite(radius) || radius < 6 || radius > Math.max(mask.h, mask.w)) continue;
    const band = Math.max(1.5, RING_BAND * radius);
    const on = py.map((v, i) => Math.abs(Math.hypot(v - y, px[i] - x) - radius) <= band);
    const [inked, shown] = arcs(py, px, y, x, radius, on, mask.h, mask.w);
    if (shown >= Math.floor(RING_ARCS / 3) && inked >= RING_COVERAGE * shown) {
      tries.push({ y, x, radius, score: inked * (m + 1) + on.filter(Boolean).length, order: tries.length });
    }
  }
  tries.sort((p, q) => q.score - p.score || p.order - q.order);  // (np.argsort, kind="stable")
  let best = null;
  for (const t of tries.slice(0, 8)) {
    const ring = refit(ys, xs, { y: t.y, x: t.x, radius: t.radius, halfWidth: 0 });
    if (ring && covers(ys, xs, ring, mask.h, mask.w) && solid(mask, ring) && (!best || ring.radius > best.radius)) best = ring;
  }
  return best;
}

/** frames._covers: whether all the stroke pixels fill REFITTED_COVERAGE of the refitted
 * ring's arcs inside the picture. */
function covers(ys, xs, ring, h, w) {
  const band = Math.max(1.5, RING_BAND * ring.radius);
  const on = ys.map((y, i) => Math.abs(Math.hypot(y - ring.y, xs[i] - ring.x) - ring.radius) <= band);
  const [inked, shown] = arcs(ys, xs, ring.y, ring.x, ring.radius, on, h, w);
  return shown >= Math.floor(RING_ARCS / 3) && inked >= REFITTED_COVERAGE * shown;
}

/** frames.second_ring: a second ring about `ring`'s centre, inside it or outside, or null. */
export function secondRing(mask, ring) {
  const { ys, xs } = pixelsOf(mask);
  const distance = ys.map((y, i) => Math.hypot(y - ring.y, xs[i] - ring.x));
  const lo = SECOND[0] * ring.radius, hi = ring.radius / SECOND[0];
  const apart = distance.filter((d) => d >= lo && d < hi && Math.abs(d - ring.radius) >= (1 - SECOND[1]) * ring.radius);
  if (apart.length < 30) return null;
  const counts = new Float64Array(Math.max(...apart.map((d) => Math.trunc(d - lo))) + 1);
  for (const d of apart) counts[Math.trunc(d - lo)] += 1;
  const width = Math.max(1, Math.trunc(ring.halfWidth));
  const total = new Float64Array(counts.length + 1);
  counts.forEach((v, i) => { total[i + 1] = total[i] + v; });
  let at = 0, most = -1;
  for (let i = 0; i < counts.length; i++) {
    const near = total[Math.min(i + width + 1, counts.length)] - total[Math.max(i - width, 0)];
    if (near > most) { most = near; at = i; }
  }
  const radius = lo + at + 0.5;
  const on = distance.map((d) => Math.abs(d - radius) <= width);
  const [inked, shown] = arcs(ys, xs, ring.y, ring.x, radius, on, mask.h, mask.w);
  if (shown < Math.floor(RING_ARCS / 3) || inked < RING_COVERAGE * shown) return null;
  return refit(ys, xs, { y: ring.y, x: ring.x, radius, halfWidth: 0 });
}

/** frames._arcs, for one circle: how many of its arcs inside the picture hold a point on it,
 * and how many lie inside the picture. */
function arcs(py, px, y, x, radius, on, h, w) {
  const inked = new Uint8Array(RING_ARCS);
  on.forEach((v, i) => {
    if (!v) return;
    const arc = Math.floor((Math.atan2(py[i] - y, px[i] - x) / (2 * Math.PI)) * RING_ARCS);
    inked[((arc % RING_ARCS) + RING_ARCS) % RING_ARCS] = 1;
  });
  let count = 0, shown = 0;
  for (let k = 0; k < RING_ARCS; k++) {
    const middle = ((k + 0.5) / RING_ARCS) * 2 * Math.PI;
    const cy = y + radius * Math.sin(middle), cx = x + radius * Math.cos(middle);
    if (cy >= 0 && cy < h && cx >= 0 && cx < w) { shown++; count += inked[k]; }
  }
  return [count, shown];
}

function circleThrough([y1, x1], [y2, x2], [y3, x3]) {
  const d = 2 * (x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2));
  const s1 = x1 ** 2 + y1 ** 2, s2 = x2 ** 2 + y2 ** 2, s3 = x3 ** 2 + y3 ** 2;
  return [(s1 * (x3 - x2) + s2 * (x1 - x3) + s3 * (x2 - x1)) / d,
    (s1 * (y2 - y3) + s2 * (y3 - y1) + s3 * (y1 - y2)) / d];
}

/** frames._refit: the ring fitted to the stroke pixels near it (the normal equations, about
 * their mean), twice; null where too few lie near it, or all on a straight line. */
function refit(ys, xs, start) {
  let ring = start, reach = Math.max(1.5, 1.5 * RING_BAND * start.radius);
  for (let pass = 0; pass < 2; pass++) {
    const y = [], x = [];
    ys.forEach((v, i) => {
      if (Math.abs(Math.hypot(v - ring.y, xs[i] - ring.x) - ring.radius) <= reach) { y.push(v); x.push(xs[i]); }
    });
    if (y.length < 10) return null;
    const my = y.reduce((a, b) => a + b, 0) / y.length, mx = x.reduce((a, b) => a + b, 0) / x.length;
    const normal = [[0, 0, 0], [0, 0, 0], [0, 0, 0]], right = [0, 0, 0];
    y.forEach((v, i) => {
      const row = [2 * (v - my), 2 * (x[i] - mx), 1], target = (v - my) ** 2 + (x[i] - mx) ** 2;
      for (let r = 0; r < 3; r++) {
        right[r] += row[r] * target;
        for (let c = 0; c < 3; c++) normal[r][c] += row[r] * row[c];
      }
    });
    const solved = solve3(normal, right);
    if (!solved) return null;
    const [cy0, cx0, e] = solved;
    const radius = Math.sqrt(Math.max(e + cy0 ** 2 + cx0 ** 2, 0));
    const cy = cy0 + my, cx = cx0 + mx;
    const off = y.map((v, i) => Math.abs(Math.hypot(v - cy, x[i] - cx) - radius));
    ring = { y: cy, x: cx, radius, halfWidth: nd.percentile(off, 95) + 1.5 };
    reach = Math.min(reach, 2 * nd.median(off) + 1.5);
  }
  return ring;
}

/** A 3x3 linear system by Gaussian elimination with partial pivoting (as LAPACK's LU), or
 * null where it is singular. */
function solve3(matrix, right) {
  const a = matrix.map((row, r) => [...row, right[r]]);
  for (let c = 0; c < 3; c++) {
    let pivot = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(a[r][c]) > Math.abs(a[pivot][c])) pivot = r;
    if (a[pivot][c] === 0) return null;
    [a[c], a[pivot]] = [a[pivot], a[c]];
    for (let r = c + 1; r < 3; r++) {
      const f = a[r][c] / a[c][c];
      for (let k = c; k < 4; k++) a[r][k] -= f * a[c][k];
    }
  }
  const out = [0, 0, 0];
  for (let r = 2; r >= 0; r--) {
    let v = a[r][3];
    for (let k = r + 1; k < 3; k++) v -= a[r][k] * out[k];
    out[r] = v / a[r][r];
  }
  return out;
}

/** frames._solid: whether `mask` covers RING_FILL of the ring's band inside the picture and
 * at most RING_FLANK of its flanks (1.5 to 3 half-thicknesses from its middle line). */
function solid(mask, ring) {
  const distance = ringDistance(ring, mask.h, mask.w);
  let band = 0, covered = 0, flanks = 0, inked = 0;
  distance.forEach((d, i) => {
    if (d <= ring.halfWidth) { band++; covered += mask.data[i] ? 1 : 0; }
    else if (d > 1.5 * ring.halfWidth && d <= 3 * ring.halfWidth) { flanks++; inked += mask.data[i] ? 1 : 0; }
  });
  return band > 0 && covered / band >= RING_FILL && (!flanks || inked / flanks <= RING_FLANK);
}

/** frames.box_lines: a printed box's sides and walls in its piece's own box, or null. */
export function boxLines(piece) {
  if (Math.min(piece.h, piece.w) < 12 || !reachesEverySide(piece)) return null;
  const thickness = [piece, flip(piece), transpose(piece), flip(transpose(piece))].map(sideThickness);
  if (Math.min(...thickness) === 0) return null;
  const [top, bottom, left, right] = thickness.map((t) => t + 1);
  const { h, w } = piece;
  const lines = nd.image(h, w, Uint8Array);
  lines.data.fill(1);
  if (h - bottom > top && w - right > left) {
    const inner = nd.crop(piece, top, h - bottom, left, w - right);
    const columns = full(inner, 0), rows = full(inner, 1);
    for (let y = top; y < h - bottom; y++) {
      for (let x = left; x < w - right; x++) lines.data[y * w + x] = columns[x - left] || rows[y - top] ? 1 : 0;
    }
  }
  return lines;
}

/** frames._full: which columns (axis 0) or rows (axis 1) ink covers end to end, give or take
 * a pixel across, and their neighbours. */
function full(inner, axis) {
  const slack = nd.maximumFilter1d(inner, 3, 1 - axis);
  const { h, w } = inner;
  const [n, len] = axis === 0 ? [w, h] : [h, w];
  const isFull = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    let covered = 0;
    for (let i = 0; i < len; i++) covered += slack.data[axis === 0 ? i * w + k : k * w + i] ? 1 : 0;
    isFull[k] = covered / len >= FRAME_COVERAGE ? 1 : 0;
  }
  return isFull.map((v, k) => (v || isFull[k - 1] || isFull[k + 1] ? 1 : 0));
}

/** frames.sharp: whether an outline frame's inner edge is a step in `ink`, not a ramp. */
export function sharp(ink, frame) {
  if (!frame.inside) return true;
  const [y0, y1, x0, x1] = frame.box;
  const pad = 12;
  const wy0 = Math.max(0, y0 - pad), wy1 = Math.min(ink.h, y1 + pad);
  const wx0 = Math.max(0, x0 - pad), wx1 = Math.min(ink.w, x1 + pad);
  const inside = nd.image(wy1 - wy0, wx1 - wx0, Uint8Array);
  paste(inside, frame.inside, [y0 - wy0, y1 - wy0, x0 - wx0, x1 - wx0]);
  const window = nd.crop(ink, wy0, wy1, wx0, wx1);
  const rings = [3, 6, 12].map((k) => nd.binaryDilation(inside, k));
  const eroded = nd.binaryErosion(inside, 3);
  const groups = { justIn: [], justOut: [], outline: [], inside: [] };
  inside.data.forEach((v, i) => {
    const value = window.data[i];
    if (v) groups.inside.push(value);
    if (v && !eroded.data[i]) groups.justIn.push(value);
    if (rings[1].data[i] && !rings[0].data[i]) groups.justOut.push(value);
    if (!rings[2].data[i]) groups.outline.push(value);
  });
  if (!groups.justIn.length || !groups.justOut.length || !groups.outline.length) return true;
  const whole = nd.median(groups.outline) - nd.median(groups.inside);
  const step = nd.median(groups.justOut) - nd.median(groups.justIn);
  return Math.abs(step) >= EDGE_STEP * Math.abs(whole);
}

function flip(img) {
  const out = nd.image(img.h, img.w, img.data.constructor);
  for (let y = 0; y < img.h; y++) out.data.set(img.data.subarray(y * img.w, (y + 1) * img.w), (img.h - 1 - y) * img.w);
  return out;
}

function transpose(img) {
  const out = nd.image(img.w, img.h, img.data.constructor);
  for (let y = 0; y < img.h; y++) for (let x = 0; x < img.w; x++) out.data[x * img.h + y] = img.data[y * img.w + x];
  return out;
}

function reachesEverySide(piece) {
  const { h, w } = piece;
  const bh = Math.max(1, Math.trunc(FRAME_BAND * h)), bw = Math.max(1, Math.trunc(FRAME_BAND * w));
  const covered = (n, hit) => { let c = 0; for (let i = 0; i < n; i++) c += hit(i) ? 1 : 0; return c / n; };
  const rows = (y0, y1) => (x) => { for (let y = y0; y < y1; y++) if (piece.data[y * w + x]) return true; return false; };
  const cols = (x0, x1) => (y) => { for (let x = x0; x < x1; x++) if (piece.data[y * w + x]) return true; return false; };
  return [covered(w, rows(0, bh)), covered(w, rows(h - bh, h)), covered(h, cols(0, bw)),
          covered(h, cols(w - bw, w))].every((share) => share >= FRAME_COVERAGE);
}

function sideThickness(piece) {
  const band = Math.max(1, Math.trunc(FRAME_BAND * piece.h));
  let last = -1;
  for (let y = 0; y < band; y++) {
    let ink = 0;
    for (let x = 0; x < piece.w; x++) ink += piece.data[y * piece.w + x];
    if (ink / piece.w >= FRAME_COVERAGE) last = y;
  }
  return last + 1;
}

/** `ink` without printed horizontal and vertical lines (`ink` itself if it has none). */
export function removeLines(ink, mask) {
  const { h, w } = mask;
  const lines = nd.image(h, w, Uint8Array);
  for (const axis of [1, 0]) {
    const length = Math.max(12, Math.trunc(LINE_LENGTH * (axis === 1 ? w : h)));
    if (longestBand(mask, axis) < length) continue;
    const slack = nd.maximumFilter1d(mask, 3, 1 - axis);
    const opened = nd.maximumFilter1d(nd.minimumFilter1d(slack, length, axis), length, axis);
    const runs = nd.map(opened, (v, i) => (v && mask.data[i] ? 1 : 0), Uint8Array);
    const labelled = nd.label(runs, false);
    const allBoxes = nd.boxes(labelled);
    for (let i = 1; i <= labelled.n; i++) {
      const box = allBoxes[i];
      const extent = axis === 1 ? box[3] - box[2] : box[1] - box[0];
      const piece = pieceOf(labelled, i, box);
      const thickness = nd.count(piece) / Math.max(extent, 1);
      if (thickness <= LINE_THINNESS * extent && alone(piece, box, mask, axis, thickness)) {
        paste(lines, piece, box);
      }
    }
  }
  if (!nd.any(lines)) return ink;
  const strokes = nd.map(mask, (v, i) => (v && !lines.data[i] ? 1 : 0), Uint8Array);
  const across = closed(strokes, 0), along = closed(strokes, 1);
  const bridged = nd.map(lines, (v, i) => (v && (across.data[i] || along.data[i]) ? 1 : 0), Uint8Array);
  const kept = nd.map(strokes, (v, i) => v | bridged.data[i], Uint8Array);
  const printed = nd.map(lines, (v, i) => (v && !bridged.data[i] ? 1 : 0), Uint8Array);
  const { bars, count, rows } = barsBetween(kept, nd.binaryDilation(printed, 2));
  if (count >= 6 && rows >= 2) throw new Pattern();
  return nd.map(ink, (v, i) => (printed.data[i] || bars.data[i] ? 0 : v));
}

/** The most ink any band of three rows (axis 1) or columns (axis 0) holds along its length. */
function longestBand(mask, axis) {
  const { h, w } = mask;
  const [n, len] = axis === 1 ? [h, w] : [w, h];
  const at = axis === 1 ? (line, i) => mask.data[line * w + i] : (line, i) => mask.data[i * w + line];
  let best = 0;
  for (let line = 0; line + 2 < n; line++) {
    let total = 0;
    for (let i = 0; i < len; i++) total += at(line, i) | at(line + 1, i) | at(line + 2, i);
    best = Math.max(best, total);
  }
  return best;
}

function paste(target, piece, [y0, y1, x0, x1]) {
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) if (piece.data[(y - y0) * piece.w + x - x0]) target.data[y * target.w + x] = 1;
  }
}

/** frames._alone: whether a thin run of ink has paper on both sides. */
function alone(piece, [y0, y1, x0, x1], mask, axis, thickness) {
  const reach = Math.trunc(thickness) + 3;
  const acrossRows = axis === 1;  // A horizontal line: paper above and below it.
  const lo = Math.max(0, (acrossRows ? y0 : x0) - reach);
  const hi = Math.min(acrossRows ? mask.h : mask.w, (acrossRows ? y1 : x1) + reach);
  const [wy0, wy1, wx0, wx1] = acrossRows ? [lo, hi, x0, x1] : [y0, y1, lo, hi];
  const grown = nd.image(wy1 - wy0, wx1 - wx0, Uint8Array);
  paste(grown, piece, [y0 - wy0, y1 - wy0, x0 - wx0, x1 - wx0]);
  const spread = nd.maximumFilter1d(grown, 2 * reach + 1, acrossRows ? 0 : 1);
  let inBand = 0, inkInBand = 0;
  for (let y = wy0; y < wy1; y++) {
    for (let x = wx0; x < wx1; x++) {
      const i = (y - wy0) * grown.w + x - wx0;
      if (spread.data[i] && !grown.data[i]) {
        inBand++;
        inkInBand += mask.data[y * mask.w + x];
      }
    }
  }
  return inkInBand < 0.5 * inBand;
}

function closed(mask, axis, size = 7) {
  return nd.minimumFilter1d(nd.maximumFilter1d(mask, size, axis), size, axis);
}

function barsBetween(strokes, nearLines) {
  const labelled = nd.label(strokes);
  const bars = nd.image(strokes.h, strokes.w, Uint8Array);
  const allBoxes = nd.boxes(labelled);
  let count = 0;
  const spans = new Set();
  for (let i = 1; i <= labelled.n; i++) {
    const box = allBoxes[i];
    const piece = pieceOf(labelled, i, box);
    const { h, w } = piece;
    const upright = h >= w;
    if (Math.min(h, w) > 0.25 * Math.max(h, w) || Math.max(h, w) < 6 || !straight(piece, upright)) continue;
    const near = nd.crop(nearLines, ...box);
    const touches = (at) => {
      for (let k = 0; k < (upright ? w : h); k++) {
        const j = upright ? at * w + k : k * w + at;
        if (piece.data[j] && near.data[j]) return true;
      }
      return false;
    };
    if (touches(0) && touches(upright ? h - 1 : w - 1)) {
      paste(bars, piece, box);
      count++;
      spans.add(`${upright},${Math.floor((upright ? box[0] : box[2]) / 8)}`);
    }
  }
  return { bars, count, rows: spans.size };
}

/** frames._straight: a thin piece whose rows (columns) are short runs along one line. */
function straight(piece, upright) {
  const along = upright ? piece : transpose(piece);
  const n = along.h, centres = [];
  for (let y = 0; y < n; y++) {
    let count = 0, sum = 0;
    for (let x = 0; x < along.w; x++) if (along.data[y * along.w + x]) { count++; sum += x; }
    if (count === 0 || count > BAR_THINNESS * n + 2) return false;
    centres.push(sum / count);
  }
  const tMean = (n - 1) / 2, cMean = centres.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  centres.forEach((c, t) => { num += (t - tMean) * (c - cMean); den += (t - tMean) ** 2; });
  const slope = den ? num / den : 0;
  return centres.every((c, t) => Math.abs(c - (cMean + slope * (t - tMean))) <= 1.5);
}

/** frames.colour_contrast: a colour picture in grey by distance from its median colour. */
export function colourContrast(rgb) {
  const { h, w, data } = rgb;
  const step = Math.max(1, Math.trunc(Math.sqrt((h * w) / 40000)));
  const channels = [[], [], []];
  for (let y = 0; y < h; y += step) {
    for (let x = 0; x < w; x += step) for (let c = 0; c < 3; c++) channels[c].push(data[(y * w + x) * 3 + c]);
  }
  const background = channels.map((values) => nd.median(values));
  const distance = nd.image(h, w);
  for (let i = 0; i < h * w; i++) {
    distance.data[i] = Math.hypot(data[3 * i] - background[0], data[3 * i + 1] - background[1],
                                  data[3 * i + 2] - background[2]);
  }
  const top = Math.max(nd.percentile(distance.data, 99.5), 1e-6);
  return nd.map(distance, (v) => Math.min(Math.max(v / top, 0), 1));
}
