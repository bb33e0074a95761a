// Pictures inside pictures, in the browser: a port of hdr_jax/frames.py (frames: a plot, a
// screen, a printed box; printed lines: ruled and squared paper, form cells), same names and
// constants. Masks are Uint8Array images (see ndimage.js).
import * as nd from "./ndimage.js";

const FRAME_COVERAGE = 0.9, FRAME_BAND = 0.12;
const MIN_FRAME = 0.1;
const FILLED_HOLES = 0.005;
const LINE_LENGTH = 0.6, LINE_THINNESS = 0.04;

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
    const [top, bottom, left, right] = [piece, flip(piece), transpose(piece), flip(transpose(piece))]
      .map((side) => Math.min(sideThickness(side), Math.trunc(0.1 * side.h)) + 2);
    if (y1 - y0 - top - bottom > 8 && x1 - x0 - left - right > 8) {
      return { box: [y0 + top, y1 - bottom, x0 + left, x1 - right], inside: null };
    }
  }
  return null;
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
    if (Math.min(h, w) > 0.25 * Math.max(h, w) || nd.count(piece) / (h * w) < 0.6 || Math.max(h, w) < 6) continue;
    const near = nd.crop(nearLines, ...box);
    const upright = h >= w;
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
