// Any upload -> what the model was trained on, in the browser: a port of
// hdr_jax/preprocess.py, function by function and with the same names (in camelCase) and
// constants, so that the page reads what the server reads. What differs, and why: the
// browser decodes the image (its own JPEG and PNG decoders, EXIF orientation included), and
// the pixel limit is checked once it has. tests/test_web_reader.py holds the two to agreement
// on a corpus of realistic uploads.
import * as nd from "./ndimage.js";
import * as frames from "./frames.js";

export const MAX_PIXELS = 25_000_000;
export const WORK_SIDE = 512;
export const DECODE_SIDE = 2 * WORK_SIDE;
const MAX_PIECES = 24;
const MAX_HOLES_PER_DIGIT_WIDTH = 4;
export const STROKE = 0.15, FAINT_STROKE = 0.05;
const MAX_DIGIT_WIDTH = 1.4, JOIN_GAP = 0.3, MAX_CUTS = 12;
const SPACED_FROM = 0.45, SPACED_UP_TO = 6;  // preprocess's
const NARROW = 0.22, NARROW_FROM = 0.8;  // preprocess's
const FULL_INK = 0.6; // preprocess.FULL_INK
const SMALL_LINE = 20;  // preprocess.SMALL_LINE
const GRAINY = 0.3, GRAIN_SIGMA = 1.5, LOCAL_INK = 0.5;
const NOISE_MADS = 4.0;  // preprocess.NOISE_MADS (its FAINT_MADS floor is not shipped)
const UNDERLINE_SLOPE = 0.5, UNDERLINE_COVER = 0.8, UNDERLINE_LENGTH = 1.2;
const BOLD = 0.17, THIN_TO = 0.11;  // preprocess.BOLD, THIN_TO
const FINE = 0.05, THICK_TO = 0.08;  // preprocess.FINE, THICK_TO
const WORD_GAP = 0.35, SMALLER_WORD = 0.8, PRINTED_LETTERS = 3, LETTER_GAP = 0.3, BASELINE = 0.04;  // preprocess's
const EDGE_RUN = 0.4;
const EDGE_BAND = 0.08, EDGE_SPAN = 0.25;
const FRAGMENT_GAP = 4, RING_WIDER = 1.2, RIM = 1.8, RING_APART = 1.2, TINT = 1.08;  // preprocess's
const DISC_SQUARE = 1.3, DISC_FILL = 0.7, DISC_SOLID = 0.35, DISC_ROUND = 0.8;  // preprocess's
const WIRE_THIN = 0.5, WIRE_LONG = 1.3, WIRE_PIECE = 0.3;  // preprocess's

export class PreprocessError extends Error {}
export class ImageTooLarge extends PreprocessError {}
export class NoDigitFound extends PreprocessError {
  constructor(message = "no digit found: the image has no visible ink") { super(message); }
}
export class NotHandwriting extends NoDigitFound {
  constructor() {
    super("no digit found: the image looks like a pattern or a photo (a grid, a texture, a " +
          "code), not handwriting");
  }
}

// --- Decoding: {grey, scale, rgb} as preprocess.decode gives them. ---

/** Bytes (a Blob) -> {grey: image in [0, 1] (dark = 0), scale, rgb: null or {h, w, data:
 * Uint8Array of RGB}}, at most DECODE_SIDE pixels on the long side. */
export async function decode(blob, maxPixels = MAX_PIXELS) {
  if (!blob.size) throw new PreprocessError("the upload is empty");
  const head = new Uint8Array(await blob.slice(0, 3).arrayBuffer());
  const jpeg = head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch (err) {
    throw new PreprocessError("the upload is not an image this browser can read " +
                              "(PNG, JPEG, GIF, BMP, WebP ...)");
  }
  const { width, height } = bitmap;
  try {
    if (width * height > maxPixels) {
      throw new ImageTooLarge(`the image is ${width}x${height}, more than ${maxPixels} pixels`);
    }
    if (width < 1 || height < 1) throw new PreprocessError("the image has no pixels");
    return fromPixels(rgbaOf(bitmap), jpeg, Math.max(width, height));
  } finally {
    bitmap.close();
  }
}

function rgbaOf(bitmap) {
  const { width, height } = bitmap;
  // Very large photos are drawn at reduced size at once (the browser's own scaling): a
  // 25 MP RGBA copy would be 100 MB in a phone's tab.
  const shrink = width * height > 16_000_000 ? Math.ceil(Math.max(width, height) / (2 * DECODE_SIDE)) : 1;
  const w = Math.ceil(width / shrink), h = Math.ceil(height / shrink);
  const canvas = new OffscreenCanvas(w, h);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, w, h);
  return { h, w, data: context.getImageData(0, 0, w, h).data, channels: 4 };
}

/** Pixels as Pillow would hand them to _to_grey: a large JPEG drafted to grey at 1/2..1/8
 * scale (Pillow's DCT scaling), then an integer box reduction to DECODE_SIDE. */
export function fromPixels(rgba, jpeg, originalSide) {
  let pixels = rgba;
  if (jpeg && Math.max(pixels.w, pixels.h) > DECODE_SIDE) {
    const factor = WORK_SIDE / Math.max(pixels.w, pixels.h);
    const scale = Math.min(Math.floor(pixels.w / Math.max(1, Math.floor(pixels.w * factor))),
                           Math.floor(pixels.h / Math.max(1, Math.floor(pixels.h * factor))));
    const draft = [8, 4, 2, 1].find((a) => scale >= a);
    pixels = reduce(luminance(pixels), draft);
  }
  pixels = reduce(pixels, Math.ceil(Math.max(pixels.w, pixels.h) / DECODE_SIDE));
  const scale = originalSide / Math.max(pixels.w, pixels.h);
  if (pixels.channels === 1) return { grey: nd.map(pixels, (v) => v / 255), scale, rgb: null };
  const { h, w, data } = pixels;
  let opaque = true, minAlpha = 255, grey = true;
  for (let i = 0; i < h * w; i++) {
    const a = data[4 * i + 3];
    minAlpha = Math.min(minAlpha, a);
    if (a < 255) opaque = false;
    if (data[4 * i] !== data[4 * i + 1] || data[4 * i] !== data[4 * i + 2]) grey = false;
  }
  const rgb = grey || minAlpha < 250 ? null : { h, w, data: rgbOnly(data) };
  if (opaque) return { grey: nd.map(luminance(pixels), (v) => v / 255), scale, rgb };
  return { grey: flattenAlpha(pixels), scale, rgb };
}

function rgbOnly(rgba) {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) out.set(rgba.subarray(i, i + 3), j);
  return out;
}

/** Pillow's RGB -> L (ITU-R 601-2 luma, in integers). */
function luminance({ h, w, data }) {
  const out = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) {
    out[i] = (data[4 * i] * 19595 + data[4 * i + 1] * 38470 + data[4 * i + 2] * 7471 + 0x8000) >> 16;
  }
  return { h, w, data: out, channels: 1 };
}

/** Pillow's Image.reduce(factor): box averages (the last row and column of boxes smaller),
 * alpha premultiplied while averaging. */
function reduce(pixels, factor) {
  if (factor <= 1) return pixels;
  const { h, w, data, channels } = pixels;
  const oh = Math.ceil(h / factor), ow = Math.ceil(w / factor);
  const out = new Uint8ClampedArray(oh * ow * channels);
  const acc = new Float64Array(channels);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      acc.fill(0);
      let n = 0;
      for (let y = oy * factor; y < Math.min(h, (oy + 1) * factor); y++) {
        for (let x = ox * factor; x < Math.min(w, (ox + 1) * factor); x++) {
          const i = (y * w + x) * channels;
          const alpha = channels === 4 ? data[i + 3] / 255 : 1;
          for (let c = 0; c < channels; c++) acc[c] += c === 3 ? data[i + c] : data[i + c] * alpha;
          n++;
        }
      }
      const o = (oy * ow + ox) * channels;
      const alpha = channels === 4 ? acc[3] / n / 255 : 1;
      for (let c = 0; c < channels; c++) {
        out[o + c] = Math.round(c === 3 ? acc[c] / n : alpha > 0 ? acc[c] / n / alpha : 0);
      }
    }
  }
  return { h: oh, w: ow, data: out, channels };
}

/** preprocess._flatten_alpha: onto a background contrasting with the opaque (ink) pixels. */
function flattenAlpha({ h, w, data }) {
  const grey = nd.image(h, w), alpha = nd.image(h, w);
  for (let i = 0; i < h * w; i++) {
    grey.data[i] = (0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2]) / 255;
    alpha.data[i] = data[4 * i + 3] / 255;
  }
  const opaque = [];
  for (let i = 0; i < h * w; i++) if (alpha.data[i] > 0.5) opaque.push(grey.data[i]);
  const background = opaque.length && nd.median(opaque) < 0.5 ? 1 : 0;
  return nd.map(grey, (g, i) => g * alpha.data[i] + background * (1 - alpha.data[i]));
}

// --- From grey to ink (preprocess.polarised, ink_map and what they call). ---
function windowOf(grey) { return Math.max(3, Math.floor(Math.min(grey.h, grey.w) / 4)); }

export function polarised(grey) {
  const { h, w } = grey;
  const m = Math.max(1, Math.floor(h / 20)), n = Math.max(1, Math.floor(w / 20));
  const border = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (y < m || y >= h - m) border.push(grey.data[y * w + x]);
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < n; x++) border.push(grey.data[y * w + x]);
    for (let x = w - n; x < w; x++) border.push(grey.data[y * w + x]);
  }
  const paper = nd.median(border);
  let darkInk;
  if (Math.abs(paper - 0.5) > 0.2) {
    darkInk = paper > 0.5;
  } else {
    const smooth = nd.gaussianFilter(grey, 1.0), local = nd.uniformFilter(grey, windowOf(grey));
    const detail = smooth.data.map((v, i) => v - local.data[i]);
    darkInk = -nd.percentile(detail, 0.01) > nd.percentile(detail, 99.99);
  }
  return darkInk ? nd.map(grey, (v) => 1 - v) : nd.map(grey, (v) => v);
}

export function inkMap(grey, polarisedInk = null, brighter = null, alongALine = false) {
  const window = windowOf(grey);
  let ink = polarisedInk || polarised(grey);
  const beyond = beyondTheSheet(ink, window, brighter || region(ink));
  let sample = nd.sample(ink);
  if (nd.percentile(sample, 99.9) - nd.percentile(sample, 50) < 0.08) throw new NoDigitFound();
  const paper = opening(ink, window);
  ink = nd.map(ink, (v, i) => v - paper.data[i]);
  const floor = noiseFloor(nd.sample(ink));
  ink = nd.map(ink, (v) => Math.max(v - floor, 0));
  const strokes = ink.data.filter((v) => v > 0);
  if (!strokes.length) throw new NoDigitFound();
  const top = strokes.length > 20 ? nd.percentile(strokes, 95) : nd.max(strokes);
  if (top <= 0.05) throw new NoDigitFound();
  if (!alongALine) return nd.map(ink, (v, i) => (beyond.data[i] ? 0 : Math.min(Math.max(v / top, 0), 1)));
  // Full strength where the ink is (preprocess.LOCAL_INK): glare's washed-out digits too.
  const nearby = nd.maximumFilter1d(nd.maximumFilter1d(ink, window, 0), window, 1);
  const least = Math.fround(LOCAL_INK * top);  // (NumPy compares in float32.)
  return nd.map(ink, (v, i) => (beyond.data[i] ? 0
    : Math.min(Math.max(v / Math.max(nearby.data[i], least), 0), 1)));
}

/** preprocess._noise_floor: NOISE_MADS MADs above the background, Otsu's darker class
 * sigma-clipped up to five times. */
function noiseFloor(sample) {
  const threshold = nd.otsu(sample.map((v) => Math.min(Math.max(v, 0), 1)));
  let background = sample.filter((v) => v < threshold);
  if (!background.length) return 0;
  let med = 0, mad = 0;
  for (let k = 0; k < 5; k++) {
    med = nd.median(background);
    mad = nd.median(background.map((v) => Math.abs(v - med)));
    const clip = Math.fround(med + 3 * 1.4826 * mad);  // (numpy compares in float32.)
    const clipped = sample.filter((v) => v <= clip);
    if (clipped.length === background.length) break;  // The same pixels: nothing would change.
    background = clipped;
  }
  return med + NOISE_MADS * 1.4826 * mad;
}

/** preprocess._opening: a grey opening on 2x2 block minima, brought back by bilinear zoom. */
function opening(img, window, step = 2) {
  const { h, w } = img;
  if (window < 4 * step || Math.min(h, w) < 8 * step) return nd.greyOpening(img, window);
  const hh = Math.ceil(h / step) * step, ww = Math.ceil(w / step) * step;
  const blocks = nd.image(hh / step, ww / step);
  for (let by = 0; by < blocks.h; by++) {
    for (let bx = 0; bx < blocks.w; bx++) {
      let least = Infinity;
      for (let y = by * step; y < (by + 1) * step; y++) {
        for (let x = bx * step; x < (bx + 1) * step; x++) {
          least = Math.min(least, img.data[Math.min(y, h - 1) * w + Math.min(x, w - 1)]);
        }
      }
      blocks.data[by * blocks.w + bx] = least;
    }
  }
  const small = nd.greyOpening(blocks, Math.floor(window / step));
  return nd.crop(nd.resize(small, ww, hh, "bilinear"), 0, h, 0, w);
}

/** preprocess._region: Otsu's brighter part of polarised ink (frames, the sheet's edge). */
function region(ink) {
  const threshold = nd.otsu(nd.sample(ink));
  return nd.map(ink, (v) => (v > threshold ? 1 : 0), Uint8Array);
}

/** preprocess._beyond_the_sheet: the table around a sheet seen in perspective. */
function beyondTheSheet(ink, window, brighter) {
  const labelled = nd.label(brighter, false);
  const along = new Float64Array(labelled.n + 1);
  for (const v of nd.borderLabels(labelled.labels, ink.h, ink.w)) along[v] += 1;
  along[0] = 0;
  let beyond = nd.image(ink.h, ink.w, Uint8Array);
  const side = Math.min(ink.h, ink.w);
  let found = false;
  const allBoxes = nd.boxes(labelled);
  for (let index = 1; index <= labelled.n; index++) {
    if (along[index] < EDGE_RUN * side) continue;
    const [y0, y1, x0, x1] = allBoxes[index];
    const piece = nd.map(nd.crop({ ...labelled, data: labelled.labels }, y0, y1, x0, x1),
                         (v) => (v === index ? 1 : 0), Uint8Array);
    // (A piece filling its box has no edge inside it to measure from: its box's side.)
    const thick = piece.data.every((v) => v) ? Math.min(piece.h, piece.w) : 2 * nd.maxDistance(piece);
    const thin = thick <= 0.12 * side;
    const inside = nd.crop(ink, y0, y1, x0, x1);
    const local = nd.uniformFilter(inside, 5);
    const onPiece = [], localOnPiece = [];
    piece.data.forEach((v, i) => { if (v) { onPiece.push(inside.data[i]); localOnPiece.push(local.data[i]); } });
    const empty = nd.max(localOnPiece) - nd.median(onPiece) < 0.2;
    if ((thin || empty) && nd.label(nd.map(piece, (v) => (v ? 0 : 1), Uint8Array), false).n <= 2) {
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) if (piece.data[(y - y0) * piece.w + x - x0]) beyond.data[y * ink.w + x] = 1;
      }
      found = true;
    }
  }
  if (!found) return beyond;
  beyond = nd.binaryDilation(beyond, Math.max(2, Math.floor(window / 4)));
  return beyond;
}

/** preprocess.stroke_pieces: {labels, n, h, w} of the strokes (hysteresis), numbered in
 * raster order. */
export function strokePieces(ink) {
  const labelled = nd.label(nd.map(ink, (v) => (v > FAINT_STROKE ? 1 : 0), Uint8Array));
  const keep = new Uint8Array(labelled.n + 1);
  ink.data.forEach((v, i) => { if (v > STROKE) keep[labelled.labels[i]] = 1; });
  keep[0] = 0;
  const number = new Int32Array(labelled.n + 1);
  let n = 0;
  for (let i = 1; i <= labelled.n; i++) if (keep[i]) number[i] = ++n;
  return { labels: labelled.labels.map((v) => number[v]), n, h: ink.h, w: ink.w };
}

function maskOf(labelled) {
  return nd.map({ ...labelled, data: labelled.labels }, (v) => (v ? 1 : 0), Uint8Array);
}

/** preprocess._keep_digit_components: without printed lines and specks, and a rubber
 * stamp's ring where what is kept looks like no writing or stands taller than its pieces. */
export function keepDigitComponents(ink, alongALine = false, rgb = null) {
  let kept = null;
  try {
    kept = digitComponents(ink, alongALine);
  } catch (err) {
    if (!(err instanceof NotHandwriting)) throw err;
  }
  if (kept === null || tallerThanItsPieces(kept)) {
    const strokes = maskOf(strokePieces(ink));
    let without = withoutStamp(ink, strokes, rgb);
    if (without === ink) without = withoutWire(ink, strokes);
    if (without !== ink) return digitComponents(without, alongALine);
  }
  if (kept === null) throw new NotHandwriting();
  return kept;
}

/** preprocess._taller_than_its_pieces: the strokes span twice their median piece's height,
 * or one piece is 1.4 times as tall. */
function tallerThanItsPieces(strokesIn) {
  const box = extent(strokesIn);
  if (!box) return false;
  const [[r0, r1], [c0, c1]] = box;
  const strokes = nd.crop(strokesIn, r0, r1 + 1, c0, c1 + 1);
  const labelled = strokePieces(strokes);
  if (!labelled.n) return false;
  const heights = pieceHeights(labelled);
  const median = nd.median(heights);
  return strokes.h >= 2 * median || Math.max(...heights) >= 1.4 * median;
}

/** preprocess._piece_heights: how tall each labelled piece is, specks (under 5% of the
 * largest piece) left out. */
function pieceHeights(labelled) {
  if (!labelled.n) return [];
  const pieceSizes = nd.sizes(labelled.labels, labelled.n);
  const largest = nd.max(pieceSizes.slice(1)), boxes = nd.boxes(labelled), heights = [];
  for (let k = 1; k <= labelled.n; k++) if (pieceSizes[k] >= 0.05 * largest) heights.push(boxes[k][1] - boxes[k][0]);
  return heights;
}

/** preprocess._without_wire: the ink without a paper clip's wire (the same object where
 * there is none): strokes under WIRE_THIN of the width of those that make most of the ink,
 * grouped across the bold strokes they cross, where a group reaches WIRE_LONG times the rest's
 * tallest piece. */
export function withoutWire(ink, strokes) {
  const { distance, ridge } = ridges(strokes);
  if (!ridge.length) return ink;
  // Ridge distances weighted by themselves, at their median: the strokes that make most ink.
  const sorted = Float64Array.from(ridge).sort();
  const total = sorted.reduce((sum, d) => sum + d, 0);
  let k = 0;
  for (let sum = sorted[0]; sum < 0.5 * total; sum += sorted[++k]);
  const bold = sorted[k], thin = WIRE_THIN * bold;
  if (thin < 1) return ink;
  const core = nd.map(distance, (d, i) => (strokes.data[i] && d > thin ? 1 : 0), Uint8Array);
  const reach = nd.binaryDilation(core, Math.ceil(thin) + 1);
  const wide = nd.map(strokes, (v, i) => (v && reach.data[i] ? 1 : 0), Uint8Array);
  const heights = pieceHeights(nd.label(wide));
  // The wire's pieces either side of a bold stroke it crosses are one wire; bits of grain or
  // of print (each under WIRE_PIECE of the tallest piece long) are none of it.
  const pieces = nd.label(nd.map(strokes, (v, i) => (v && !wide.data[i] ? 1 : 0), Uint8Array));
  if (!heights.length || !pieces.n) return ink;
  const height = Math.max(...heights), lengths = nd.boxes(pieces).map(
    (b) => (b ? Math.max(b[1] - b[0], b[3] - b[2]) : 0));
  const wire = nd.map(strokes, (v, i) => (lengths[pieces.labels[i]] >= WIRE_PIECE * height ? 1 : 0),
                      Uint8Array);
  const groups = nd.label(nd.binaryDilation(wire, Math.ceil(2 * bold)));
  const wires = { ...groups, labels: groups.labels.map((v, i) => (wire.data[i] ? v : 0)) };
  const boxes = nd.boxes(wires), long = new Uint8Array(wires.n + 1);
  for (let k = 1; k <= wires.n; k++) {
    const box = boxes[k];
    long[k] = box && Math.max(box[1] - box[0], box[3] - box[2]) >= WIRE_LONG * height ? 1 : 0;
  }
  if (!long.some(Boolean)) return ink;
  return nd.map(ink, (v, i) => (long[wires.labels[i]] ? 0 : v), ink.data.constructor);
}

/** preprocess._ridges: each stroke pixel's distance to the paper, and the distances where it
 * peaks (the strokes' middle). */
function ridges(strokes) {
  const distance = nd.distanceTransform(strokes);
  let peak = distance;
  for (const axis of [0, 1]) peak = nd.maximumFilter1d(peak, 3, axis);
  const ridge = [];
  for (let i = 0; i < distance.data.length; i++) {
    if (strokes.data[i] && distance.data[i] >= peak.data[i]) ridge.push(distance.data[i]);
  }
  return { distance, ridge };
}

/** preprocess._without_stamp: the ink without a rubber stamp's ring (or two about one
 * centre) wider than the writing is tall (the same object where there is none); with the
 * upload's colours (`rgb`, any size), told from the pen by colour. */
export function withoutStamp(ink, strokes, rgb = null) {
  const colours = rgb ? resized(rgb, ink.h, ink.w) : null;
  const tints = colours ? tint(strokes, colours) : null;
  let ring = frames.findRing(strokes);
  if (!ring && tints) ring = colouredRing(strokes, tints);
  if (!ring) return ink;
  const { h, w } = strokes;
  const beside = frames.ringDistance(ring, h, w).map((d) => d / ring.halfWidth);
  const second = frames.secondRing(nd.map(strokes, (v, i) => (v && beside[i] > 1 ? 1 : 0), Uint8Array), ring);
  if (second) {
    const distance = frames.ringDistance(second, h, w);
    beside.forEach((b, i) => { beside[i] = Math.min(b, distance[i] / second.halfWidth); });
  }
  const rest = nd.map(strokes, (v, i) => (v && beside[i] > 1 ? 1 : 0), Uint8Array);
  // Slivers of the ring's ragged edge (pieces mostly just beside it) are the ring too.
  const slivers = nd.label(rest);
  const near = new Float64Array(slivers.n + 1), whole = nd.sizes(slivers.labels, slivers.n);
  slivers.labels.forEach((v, i) => { if (v && beside[i] <= RIM) near[v] += 1; });
  rest.data.forEach((v, i) => { const s = slivers.labels[i]; if (v && near[s] >= 0.7 * whole[s]) rest.data[i] = 0; });
  // The writing's height: its tallest piece not mostly on the rings.
  const labelled = nd.label(strokes);
  const pieceSizes = nd.sizes(labelled.labels, labelled.n), left = new Float64Array(labelled.n + 1);
  labelled.labels.forEach((v, i) => { if (rest.data[i]) left[v] += 1; });
  const largest = labelled.n ? nd.max(pieceSizes.slice(1)) : 0;
  const boxes = nd.boxes(labelled), heights = [];
  for (let k = 1; k <= labelled.n; k++) {
    if (pieceSizes[k] >= 0.05 * largest && left[k] >= 0.5 * pieceSizes[k]) heights.push(boxes[k][1] - boxes[k][0]);
  }
  // (The ring joins all the writing: its pieces off it.)
  if (!heights.length && nd.any(rest)) heights.push(...pieceHeights(nd.label(rest)));
  if (!heights.length || 2 * ring.radius < RING_WIDER * Math.max(...heights)) return ink;
  let stamp = nd.map(strokes, (v, i) => (v && !rest.data[i] ? 1 : 0), Uint8Array);
  if (colours) stamp = stampInk(stamp, rest, colours, tints);
  return nd.map(ink, (v, i) => (stamp.data[i] ? 0 : v));
}

/** preprocess._resized: colours {h, w, data: uint8 RGB} as three float channels at h x w,
 * each box-filtered as the working copy is. */
function resized(rgb, h, w) {
  return [0, 1, 2].map((c) => {
    const channel = nd.image(rgb.h, rgb.w);
    for (let i = 0; i < channel.data.length; i++) channel.data[i] = rgb.data[3 * i + c];
    return rgb.h === h && rgb.w === w ? channel : nd.resize(channel, w, h, "box");
  });
}

/** preprocess._tint: each pixel's share of each channel over the paper's (off `strokes`). */
function tint(strokes, colours) {
  const paperValues = [[], [], []];
  let seen = 0;
  strokes.data.forEach((v, i) => {
    if (v) return;
    if (seen++ % 7 === 0) colours.forEach((c, k) => paperValues[k].push(c.data[i]));
  });
  const paper = paperValues.map((values) => Math.max(nd.median(values), 1));
  const paperSum = paper[0] + paper[1] + paper[2] + 1;
  return colours.map((c, k) => nd.map(c, (v, i) => v / (colours[0].data[i] + colours[1].data[i] + colours[2].data[i] + 1) / (paper[k] / paperSum)));
}

/** preprocess._coloured_ring: a stamp's ring found among the strokes of one tint (`tints`:
 * tint's, per channel). */
function colouredRing(strokes, tints) {
  let best = null;
  for (const t of tints) {
    const ring = frames.findRing(nd.map(strokes, (v, i) => (v && t.data[i] > TINT ? 1 : 0), Uint8Array));
    if (ring && (!best || ring.radius > best.radius)) best = ring;
  }
  return best;
}

/** preprocess._stamp_ink: the stamp's ink told from the pen's by colour, on the ring or
 * off it (a patchy ring's specks, of the ring's tint); `onTheRing` itself where the two are
 * not RING_APART apart in any channel. */
function stampInk(onTheRing, writing, colours, tints) {
  if (nd.count(onTheRing) < 10 || nd.count(writing) < 10) return onTheRing;
  const medians = (mask) => colours.map((c) => nd.median(c.data.filter((_, i) => mask.data[i])));
  const ring = medians(onTheRing), pen = medians(writing);
  const ratios = ring.map((r, k) => r / (pen[k] + 1));
  const channel = ratios.indexOf(Math.max(...ratios));
  if (ring[channel] < RING_APART * pen[channel]) return onTheRing;
  const middle = (pen[channel] + ring[channel]) / 2, level = colours[channel].data;
  const tinted = tints[channel].data;
  return nd.map(onTheRing, (v, i) => (level[i] >= middle && (v || (writing.data[i] && tinted[i] > TINT)) ? 1 : 0), Uint8Array);
}

/** preprocess._with_fragments: {counted: each piece's size, a speck's (under 5% of the
 * largest) that of its group of pieces within FRAGMENT_GAP pixels of each other; groupOf}.
 * `pieceSizes`: per piece (index 0: piece 1), 0 for a piece never kept. */
function withFragments(labelled, pieceSizes) {
  const { groupOf, groupSizes } = fragmentGroups(labelled, pieceSizes);
  const largest = nd.max(pieceSizes);
  return { counted: pieceSizes.map((s, i) => (s >= 0.05 * largest ? s : groupSizes[groupOf[i]])), groupOf };
}

/** preprocess._fragment_groups: each piece's group (0: none) and each group's pixels, looked
 * for within the box of the pieces of at least 5% of the largest, widened by twice its height. */
function fragmentGroups(labelled, pieceSizes) {
  const largest = nd.max(pieceSizes);
  const groupOf = new Int32Array(pieceSizes.length);
  if (!pieceSizes.some((s) => s > 0 && s < 0.05 * largest)) return { groupOf, groupSizes: new Float64Array(1) };
  const { labels, h, w } = labelled;
  const big = nd.map({ h, w, data: labels }, (v) => (v && pieceSizes[v - 1] >= 0.05 * largest ? 1 : 0), Uint8Array);
  const [[r0, r1], [c0, c1]] = extent(big);
  const reach = 2 * (r1 - r0 + 1);
  const y0 = Math.max(0, r0 - reach), y1 = Math.min(h, r1 + 1 + reach);
  const x0 = Math.max(0, c0 - reach), x1 = Math.min(w, c1 + 1 + reach);
  const near = nd.crop({ h, w, data: labels }, y0, y1, x0, x1);
  const pieces = nd.map(near, (v) => (v && pieceSizes[v - 1] > 0 ? 1 : 0), Uint8Array);
  const groups = nd.label(nd.binaryDilation(pieces, Math.floor(FRAGMENT_GAP / 2)));
  const groupSizes = new Float64Array(groups.n + 1);
  pieces.data.forEach((v, i) => {
    if (!v) return;
    groupOf[near.data[i] - 1] = groups.labels[i];
    groupSizes[groups.labels[i]] += 1;
  });
  return { groupOf, groupSizes };
}

/** keepDigitComponents but for a stamp's ring. */
function digitComponents(inkIn, alongALine) {
  let ink = inkIn, labelled = strokePieces(ink);
  if (alongALine) {
    const without = withoutUnderline(ink, labelled);
    if (without !== ink) { ink = without; labelled = strokePieces(ink); }
  }
  let withoutLines;
  try {
    withoutLines = frames.removeLines(ink, maskOf(labelled));
  } catch (err) {
    if (err instanceof frames.Pattern) throw new NotHandwriting();
    throw err;
  }
  if (withoutLines !== ink) { ink = withoutLines; labelled = strokePieces(ink); }
  const withoutBox = frames.removeOutline(ink, labelled);
  if (withoutBox !== ink) { ink = withoutBox; labelled = strokePieces(ink); }
  if (labelled.n === 0) throw new NoDigitFound();
  const pieceSizes = nd.sizes(labelled.labels, labelled.n).slice(1);
  // Not writing: never kept.
  const disc = discs(labelled, pieceSizes);
  alongTheEdges(labelled, pieceSizes);
  disc.forEach((v, i) => { if (v) pieceSizes[i] = 0; });
  const largest = nd.max(pieceSizes);
  const keep = new Uint8Array(labelled.n + 1);
  const { counted, groupOf } = withFragments(labelled, pieceSizes);
  counted.forEach((s, i) => { keep[i + 1] = s >= Math.max(0.05 * largest, 2) ? 1 : 0; });
  const kept = keep.reduce((a, b) => a + b, 0);
  if (!kept || (largest < 8 && ink.data.length > 2000)) throw new NoDigitFound();
  // Fragments count as one piece, or none beside a piece kept for its own size.
  const bigGroups = new Set(), speckGroups = new Set();
  let big = 0;
  pieceSizes.forEach((s, i) => {
    if (!keep[i + 1]) return;
    if (s >= 0.05 * largest) { big++; bigGroups.add(groupOf[i]); } else speckGroups.add(groupOf[i]);
  });
  if (big + [...speckGroups].filter((g) => !bigGroups.has(g)).length > MAX_PIECES) throw new NotHandwriting();
  nearTheWriting(labelled, pieceSizes, keep, alongALine);
  const strokes = nd.map({ ...ink, data: labelled.labels }, (v) => keep[v], Uint8Array);
  const [ys, xs] = extent(strokes);
  const y0 = Math.max(ys[0] - 2, 0), x0 = Math.max(xs[0] - 2, 0);
  const y1 = Math.min(ys[1] + 3, ink.h), x1 = Math.min(xs[1] + 3, ink.w);
  const boxStrokes = nd.crop(strokes, y0, y1, x0, x1), boxInk = nd.crop(ink, y0, y1, x0, x1);
  checkHoles(nd.map(boxStrokes, (v, i) => (v && boxInk.data[i] > STROKE ? 1 : 0), Uint8Array));
  const grown = nd.binaryDilation(boxStrokes, 2);
  const out = nd.image(ink.h, ink.w);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (grown.data[(y - y0) * grown.w + x - x0]) out.data[y * ink.w + x] = ink.data[y * ink.w + x];
    }
  }
  return out;
}

/** preprocess._without_underline: the ink without the line drawn under the writing (the
 * same object where there is none). */
function withoutUnderline(ink, labelled) {
  const { labels, n, h, w } = labelled;
  const boxes = nd.boxes(labelled), pieceSizes = nd.sizes(labels, n);
  const largest = n ? nd.max(pieceSizes.slice(1)) : 0;
  const big = (k) => pieceSizes[k] >= 0.05 * largest;
  let out = ink;
  for (let k = 1; k <= n; k++) {
    const [y0, y1, x0, x1] = boxes[k];
    if (x1 - x0 < Math.max(12, y1 - y0) || !big(k) || y0 === 0 || x0 === 0 || y1 === h
        || x1 === w) continue;
    const piece = nd.image(y1 - y0, x1 - x0, Uint8Array);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) piece.data[(y - y0) * piece.w + x - x0] = labels[y * w + x] === k ? 1 : 0;
    }
    if (frames.boxLines(piece)) continue; // A row of printed cells: not underlined.
    const found = underlineBand(piece);
    if (!found) continue;
    // The writing above the line that does not touch it: pieces centred over it, ending above.
    let over = 0, tallest = found.above;
    const heights = [];
    for (let j = 1; j <= n; j++) {
      if (j === k || !big(j)) continue;
      const [oy0, oy1, ox0, ox1] = boxes[j];
      heights.push(oy1 - oy0);
      const centre = Math.floor((ox0 + ox1) / 2);
      if (x0 <= centre && centre < x1 && oy1 <= y0 + found.curve[centre - x0]) {
        over += 1;
        tallest = Math.max(tallest, oy1 - oy0);
      }
    }
    // Under two digits or more: one standing on it (part of its piece), the others clear.
    const typical = heights.length ? nd.median(heights) : 0;
    const under = over + (found.above >= 0.5 * typical ? 1 : 0);
    if (under < 2 || x1 - x0 < Math.max(tallest, UNDERLINE_LENGTH * typical)) continue;
    if (out === ink) out = { ...ink, data: Float32Array.from(ink.data) };
    found.band.data.forEach((v, i) => {
      if (v) out.data[(y0 + Math.floor(i / piece.w)) * w + x0 + (i % piece.w)] = 0;
    });
  }
  return out;
}

/** preprocess._underline_band: {band (a mask over the piece's box), curve (its bottom edge, a
 * row per column), above (how tall the piece is above it)}, or null. */
function underlineBand(piece) {
  const { h, w, data } = piece;
  const first = new Float64Array(w), thick = new Float64Array(w), xs = new Float64Array(w);
  for (let x = 0; x < w; x++) {
    let y = h - 1;
    while (y >= 0 && !data[y * w + x]) y--;
    let top = y;
    while (top >= 0 && data[top * w + x]) top--;
    first[x] = h - 1 - y;
    thick[x] = y - top;
    xs[x] = x;
  }
  const bottom = first.map((f) => h - 1 - f);
  let fit = fitParabola(xs, bottom);
  const residual = xs.map((x, i) => Math.abs(bottom[i] - fit.at(x)));
  const worst = nd.percentile(residual, 100 * UNDERLINE_COVER);
  const trimmed = Array.from(residual, (r) => r <= worst);
  fit = fitParabola(xs.filter((_, i) => trimmed[i]), bottom.filter((_, i) => trimmed[i]));
  const stroke = nd.median(thick.filter((_, i) => trimmed[i]));
  const on = Array.from(xs, (x, i) => Math.abs(bottom[i] - fit.at(x)) <= Math.max(1.5, 0.5 * stroke));
  const slope = Math.max(Math.abs(fit.slope(0)), Math.abs(fit.slope(w - 1)));
  if (on.filter(Boolean).length < UNDERLINE_COVER * w || slope > UNDERLINE_SLOPE) return null;
  const line = fitParabola(xs.filter((_, i) => on[i]), bottom.filter((_, i) => on[i]));
  const curve = Array.from(xs, (x) => line.at(x));
  const band = nd.image(h, w, Uint8Array);
  let rest = h;
  for (let x = 0; x < w; x++) {
    const own = on[x] && thick[x] <= 2 * stroke ? thick[x] : stroke;
    for (let y = 0; y < h; y++) {
      const inBand = y >= curve[x] - own - 1 && y <= curve[x] + 1.5;
      band.data[y * w + x] = inBand ? 1 : 0;
      if (!inBand && data[y * w + x]) rest = Math.min(rest, y);
    }
  }
  const above = rest < h ? Math.ceil(nd.max(curve) - stroke) - rest : 0;
  return { band, curve, above: Math.max(0, above) };
}

/** np.polyfit(xs, ys, 2), as {at(x), slope(x)}: least squares by the normal equations, in x
 * centred and scaled (well conditioned). */
function fitParabola(xs, ys) {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const s = Math.max(1, nd.max(xs.map((x) => Math.abs(x - m))));
  const sums = new Float64Array(5), rhs = new Float64Array(3);
  xs.forEach((x, i) => {
    const t = (x - m) / s;
    for (let p = 0, tp = 1; p < 5; p++, tp *= t) { sums[p] += tp; if (p < 3) rhs[p] += tp * ys[i]; }
  });
  // Cramer's rule on [[s0 s1 s2] [s1 s2 s3] [s2 s3 s4]] c = rhs: c0 + c1 t + c2 t^2.
  const det3 = (a) => a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6])
    + a[2] * (a[3] * a[7] - a[4] * a[6]);
  const A = [sums[0], sums[1], sums[2], sums[1], sums[2], sums[3], sums[2], sums[3], sums[4]];
  const d = det3(A);
  const c = [0, 1, 2].map((col) => det3(A.map((v, i) => (i % 3 === col ? rhs[Math.floor(i / 3)] : v))) / d);
  return {
    at: (x) => { const t = (x - m) / s; return c[0] + c[1] * t + c[2] * t * t; },
    slope: (x) => (c[1] + 2 * c[2] * (x - m) / s) / s,
  };
}

/** preprocess._along_the_edges: zeroes (in place) the sizes of the pieces that are a thin
 * strip along the picture's sides (the table past a sheet seen in perspective). */
function alongTheEdges(labelled, pieceSizes) {
  const { labels, n, h, w } = labelled;
  const by = Math.max(1, Math.floor(EDGE_BAND * h)), bx = Math.max(1, Math.floor(EDGE_BAND * w));
  const inBand = new Float64Array(n + 1);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = labels[y * w + x];
      if (v && (y < by || y >= h - by || x < bx || x >= w - bx)) inBand[v] += 1;
    }
  }
  const boxes = nd.boxes(labelled);
  for (let k = 1; k <= n; k++) {
    const [y0, y1, x0, x1] = boxes[k];
    const touches = y0 === 0 || x0 === 0 || y1 === h || x1 === w;
    const runs = x1 - x0 >= EDGE_SPAN * w || y1 - y0 >= EDGE_SPAN * h;
    if (touches && runs && inBand[k] >= 0.9 * pieceSizes[k - 1]) pieceSizes[k - 1] = 0;
  }
}

/** preprocess._discs: which pieces (index 0: piece 1) are solid round discs (a ring
 * binder's punched holes, a blot; DISC_SQUARE, DISC_FILL, DISC_SOLID, DISC_ROUND), where a
 * piece that is none stands at least as tall; specks (under 5% of the largest piece) are
 * none. */
function discs(labelled, pieceSizes) {
  const { labels, n, h, w } = labelled;
  const boxes = nd.boxes(labelled), out = new Uint8Array(n), largest = nd.max(pieceSizes);
  for (let k = 1; k <= n; k++) {
    const [y0, y1, x0, x1] = boxes[k];
    const bh = y1 - y0, bw = x1 - x0;
    // A disc the picture's side cuts goes on past it: any part of it is square enough.
    const cut = [y0 === 0, y1 === h, x0 === 0, x1 === w].map(Number);
    if (pieceSizes[k - 1] < 0.05 * largest || Math.min(bh, bw) < 4 || pieceSizes[k - 1] < DISC_FILL * bh * bw
        || (!cut.some(Boolean) && Math.max(bh, bw) > DISC_SQUARE * Math.min(bh, bw))) continue;
    if (!cut.some(Boolean) && roundness(labels, w, boxes[k], k) < DISC_ROUND) continue;
    const piece = nd.image(bh + 2, bw + 2, Uint8Array);
    for (let y = 0; y < bh + 2; y++) {
      for (let x = 0; x < bw + 2; x++) {
        // (Past a side: ink, not paper.)
        piece.data[y * (bw + 2) + x] = x === 0 ? cut[2] : x === bw + 1 ? cut[3] : y === 0 ? cut[0]
          : y === bh + 1 ? cut[1] : labels[(y0 + y - 1) * w + x0 + x - 1] === k ? 1 : 0;
      }
    }
    out[k - 1] = nd.maxDistance(piece) >= DISC_SOLID * Math.max(bh, bw) ? 1 : 0;
  }
  if (!out.some(Boolean)) return out;
  let tallest = 0;
  for (let k = 1; k <= n; k++) {
    if (!out[k - 1] && pieceSizes[k - 1] >= 0.05 * largest) tallest = Math.max(tallest, boxes[k][1] - boxes[k][0]);
  }
  return out.map((v, i) => (v && boxes[i + 1][1] - boxes[i + 1][0] <= tallest ? 1 : 0));
}

/** preprocess._roundness: how much of the circle about its centre that holds it piece `k`
 * (in `labels`, `w` wide, within `box`) fills. */
function roundness(labels, w, [y0, y1, x0, x1], k) {
  const ys = [], xs = [];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (labels[y * w + x] === k) { ys.push(y); xs.push(x); }
  const cy = ys.reduce((a, b) => a + b, 0) / ys.length, cx = xs.reduce((a, b) => a + b, 0) / xs.length;
  let reach = 0;
  ys.forEach((y, i) => { reach = Math.max(reach, Math.hypot(y - cy, xs[i] - cx)); });
  return ys.length / (Math.PI * (reach + 0.5) ** 2);
}

/** preprocess._near_the_writing: unkeeps (in place) the pieces further than half the
 * largest piece's height above or below its rows (along a line, or than half the height of a
 * kept piece close beside them). */
function nearTheWriting(labelled, pieceSizes, keep, alongALine) {
  const rows = nd.boxes(labelled).slice(1);
  // The largest piece clear of the picture's sides, if it is a quarter the largest's size.
  const inner = pieceSizes.map((size, i) => {
    const [y0, y1, x0, x1] = rows[i];
    return y0 > 0 && x0 > 0 && y1 < labelled.h && x1 < labelled.w ? size : 0;
  });
  const largest = nd.max(inner) >= 0.25 * nd.max(pieceSizes)
    ? inner.indexOf(nd.max(inner)) : pieceSizes.indexOf(nd.max(pieceSizes));
  const near = rows.map((box) => level(box, rows[largest]));
  if (alongALine) {  // A tilted line drifts: close beside a piece of it, centred in its rows.
    const most = nd.max(pieceSizes);
    const big = [...pieceSizes.keys()].filter((i) => pieceSizes[i] >= 0.05 * most);
    let grown = true;
    while (grown) {
      grown = false;
      for (const j of big) {
        const box = rows[j];
        if (!near[j] && big.some((i) => near[i] && beside(box, rows[i]))) near[j] = grown = true;
      }
    }
  }
  near.forEach((isNear, i) => { if (!isNear) keep[i + 1] = 0; });
}

/** preprocess._beside: whether a box is centred within another's rows, at most half its
 * height to its left or right. */
function beside([y0, y1, x0, x1], [top, bottom, left, right]) {
  const gap = Math.max(x0 - right, left - x1);
  return gap <= 0.5 * (bottom - top) && top <= (y0 + y1) / 2 && (y0 + y1) / 2 <= bottom;
}

/** preprocess._level: whether a box's rows lie within half its height of another's. */
function level([y0, y1], [top, bottom]) {
  const margin = 0.5 * (bottom - top);
  return top - margin <= y1 && y0 <= bottom + margin;
}

/** [[first row, last row], [first column, last column]] holding anything. */
function extent(img) {
  let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
  for (let y = 0; y < img.h; y++) {
    for (let x = 0; x < img.w; x++) {
      if (img.data[y * img.w + x] > 0) { y0 = Math.min(y0, y); y1 = y; x0 = Math.min(x0, x); x1 = Math.max(x1, x); }
    }
  }
  return y1 < 0 ? null : [[y0, y1], [x0, x1]];
}

/** preprocess._writing: the kept strokes, found again smoothed where they are grainy. */
function writing(work, ink, brighter, alongALine, rgb = null) {
  const found = inkMap(work, ink, brighter, alongALine);
  let strokes;
  try {
    strokes = keepDigitComponents(found, alongALine, rgb);
  } catch (err) {
    // Grain in pencil or chalk strokes counts as holes or pieces; smoothed, it does not.
    if (!(err instanceof NotHandwriting)) throw err;
    if (pits(nd.map(found, (v) => (v > STROKE ? 1 : 0), Uint8Array)) <= GRAINY) throw err;
    return keepDigitComponents(inkMap(work, nd.gaussianFilter(ink, GRAIN_SIGMA), brighter, alongALine),
                               alongALine, rgb);
  }
  const [ys, xs] = extent(strokes);
  const box = nd.crop(strokes, Math.max(0, ys[0] - 1), Math.min(strokes.h, ys[1] + 2),
                      Math.max(0, xs[0] - 1), Math.min(strokes.w, xs[1] + 2));
  if (ys[1] - ys[0] < SMALL_LINE) return strokes;
  if (pits(nd.map(box, (v) => (v > STROKE ? 1 : 0), Uint8Array)) <= GRAINY) return strokes;
  try {
    return keepDigitComponents(inkMap(work, nd.gaussianFilter(ink, GRAIN_SIGMA), brighter, alongALine),
                               alongALine, rgb);
  } catch (err) {
    if (!(err instanceof NoDigitFound)) throw err;
    return strokes;
  }
}

/** preprocess._pits: enclosed gaps of at most 4 pixels per 100 stroke pixels. */
function pits(strokes) {
  return gaps(strokes).filter((size) => size <= 4).length * 100 / Math.max(1, nd.count(strokes));
}

/** preprocess._gaps: the sizes of the 4-connected pieces of non-stroke away from the sides. */
function gaps(strokes) {
  const background = nd.label(nd.map(strokes, (v) => (v ? 0 : 1), Uint8Array), false);
  const sizes = nd.sizes(background.labels, background.n);
  const edge = new Set(nd.borderLabels(background.labels, strokes.h, strokes.w));
  const out = [];
  for (let i = 1; i <= background.n; i++) if (!edge.has(i)) out.push(sizes[i]);
  return out;
}

function checkHoles(strokes) {
  // A pixel-wide gap in a stroke is no hole: pencil and chalk leave grainy strokes.
  const closed = nd.greyClosing(strokes, 3);
  const holes = gaps(nd.map(strokes, (v, i) => (v || closed.data[i] ? 1 : 0), Uint8Array))
    .filter((size) => size >= 4).length;
  const digitWidths = Math.max(1, strokes.w / strokes.h);
  if (holes > MAX_HOLES_PER_DIGIT_WIDTH * digitWidths) throw new NotHandwriting();
}

/** preprocess.to_mnist: fit in 20x20 keeping the aspect ratio, centre the centre of mass. */
export function toMnist(ink) {
  const found = extent(ink);
  if (!found) throw new NoDigitFound();
  const [[ya, yb], [xa, xb]] = found;
  let cropped = nd.crop(ink, ya, yb + 1, xa, xb + 1);
  const { h, w } = cropped;
  const scale = 20 / Math.max(h, w);
  const newH = Math.max(1, roundHalfEven(h * scale)), newW = Math.max(1, roundHalfEven(w * scale));
  if (newH !== h || newW !== w) cropped = nd.resize(cropped, newW, newH, scale < 1 ? "lanczos" : "bilinear");
  const strokes = cropped.data.filter((v) => v > 0.05);
  if (strokes.length > 20) {
    const top = Math.max(FULL_INK * nd.percentile(strokes, 95), 0.05);
    cropped = nd.map(cropped, (v) => v / top);
  }
  cropped = nd.map(cropped, (v) => Math.min(Math.max(v, 0), 1));
  const out = nd.image(28, 28);
  const top = Math.floor((28 - newH) / 2), left = Math.floor((28 - newW) / 2);
  for (let y = 0; y < newH; y++) out.data.set(cropped.data.subarray(y * newW, (y + 1) * newW), (top + y) * 28 + left);
  const [cy, cx] = nd.centerOfMass(out);
  const shiftY = clamp(roundHalfEven(13.5 - cy), -top, 28 - (top + newH));
  const shiftX = clamp(roundHalfEven(13.5 - cx), -left, 28 - (left + newW));
  const rolled = nd.image(28, 28);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) rolled.data[((y + shiftY + 28) % 28) * 28 + ((x + shiftX + 28) % 28)] = out.data[y * 28 + x];
  }
  return rolled;
}

function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }

/** Python's round(): halves to even. */
function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 ? r - 1 : r;
}

export function isMnistFormat(grey) {
  if (grey.h !== 28 || grey.w !== 28) return false;
  const frame = [];
  for (let i = 0; i < 28; i++) frame.push(grey.data[i], grey.data[27 * 28 + i]);
  for (let i = 0; i < 28; i++) frame.push(grey.data[i * 28], grey.data[i * 28 + 27]);
  return nd.median(frame) < 0.1 && nd.max(grey.data) > 0.3;
}

function workingCopy(grey) {
  const factor = Math.max(grey.h, grey.w) / WORK_SIDE;
  if (factor <= 1) return [grey, 1];
  return [nd.resize(grey, roundHalfEven(grey.w / factor), roundHalfEven(grey.h / factor), "box"), factor];
}

function unpack(upload) { return upload.grey ? upload : { grey: upload, scale: 1, rgb: null }; }

/** One digit anywhere in the upload -> {image: 28x28, box: [x0, y0, x1, y1]}. */
export function preprocessDigit(upload, lookInside = 2) {
  const { grey, scale } = unpack(upload);
  if (isMnistFormat(grey)) return { image: grey, box: [0, 0, grey.w, grey.h] };
  const [work, factor] = workingCopy(grey);
  let ink = polarised(work);
  const brighter = region(ink);
  const inner = lookInside ? insideFrame(upload, ink, brighter, factor) : null;
  if (inner) {
    try {
      const digit = preprocessDigit(inner.upload, lookInside - 1);
      return { ...digit, box: shift(digit.box, inner.dx, inner.dy) };
    } catch (err) {
      if (!(err instanceof NoDigitFound)) throw err;
    }
  }
  ink = writing(work, ink, brighter, false, upload.rgb || null);
  const [[ya, yb], [xa, xb]] = extent(ink);
  const box = scaleBox([xa, ya, xb + 1, yb + 1], factor * scale,
                       roundHalfEven(grey.w * scale), roundHalfEven(grey.h * scale));
  return { image: toMnist(ink), box };
}

function insideFrame(upload, ink, brighter, factor) {
  const frame = frames.findFrame(brighter);
  if (!frame || !frames.sharp(ink, frame)) return null;
  const { grey, scale, rgb } = unpack(upload);
  const [y0, y1, x0, x1] = frame.box.map((v) => roundHalfEven(v * factor));
  let inner = rgb ? frames.colourContrast(cropRgb(rgb, y0, y1, x0, x1)) : nd.crop(grey, y0, y1, x0, x1);
  if (frame.inside) {
    const inside = nd.resizeNearest(frame.inside, inner.w, inner.h);
    const values = [];
    inside.data.forEach((v, i) => { if (v) values.push(inner.data[i]); });
    const fill = values.length ? nd.median(values) : 0;
    inner = nd.map(inner, (v, i) => (inside.data[i] ? v : fill));
  }
  return { upload: { grey: inner, scale, rgb: null },
           dx: roundHalfEven(x0 * scale), dy: roundHalfEven(y0 * scale) };
}

function cropRgb(rgb, y0, y1, x0, x1) {
  const out = { h: y1 - y0, w: x1 - x0, data: new Uint8Array((y1 - y0) * (x1 - x0) * 3) };
  for (let y = y0; y < y1; y++) out.data.set(rgb.data.subarray((y * rgb.w + x0) * 3, (y * rgb.w + x1) * 3), (y - y0) * out.w * 3);
  return out;
}

function shift(box, dx, dy) { return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy]; }

function scaleBox([x0, y0, x1, y1], factor, w, h) {
  return [Math.max(0, Math.floor(x0 * factor)), Math.max(0, Math.floor(y0 * factor)),
          Math.min(w, Math.ceil(x1 * factor)), Math.min(h, Math.ceil(y1 * factor))];
}

// --- Numbers: every way a line may be cut (preprocess.segment_number and number_line). ---

export function segmentNumber(ink) {
  const labelled = strokePieces(ink);
  if (labelled.n === 0) throw new NoDigitFound();
  const pieceSizes = nd.sizes(labelled.labels, labelled.n);
  const largest = nd.max(pieceSizes.slice(1));
  const objects = nd.boxes(labelled);
  // Specks kept as fragments (withFragments) are one piece with the others of their group.
  const { groupOf, groupSizes } = fragmentGroups(labelled, pieceSizes.slice(1));
  const pieces = [], fragments = new Map();
  for (let i = 1; i <= labelled.n; i++) {
    const [y0, y1, x0, x1] = objects[i];
    const piece = [x0, x1, y0, y1, pieceSizes[i]], group = groupOf[i - 1];
    if (pieceSizes[i] >= 0.05 * largest) pieces.push(piece);
    else if (groupSizes[group] >= 0.05 * largest) fragments.set(group, fragments.has(group) ? union(fragments.get(group), piece) : piece);
  }
  pieces.push(...fragments.values());
  pieces.sort(compareLists);
  const merged = [];
  for (const piece of pieces) {
    const last = merged.at(-1);
    if (last && overlap(piece, last) > 0.5 * Math.min(piece[1] - piece[0], last[1] - last[0])) {
      merged[merged.length - 1] = union(last, piece);
    } else {
      merged.push(piece);
    }
  }
  const written = withoutPrintedWords(merged);
  const tallest = Math.max(...written.map((g) => g[3] - g[2]));
  const digits = written.filter((g) => g[3] - g[2] >= 0.5 * tallest);
  const lineHeight = nd.median(digits.map((g) => g[3] - g[2])); // their median, as segment_number
  const typicalArea = nd.median(digits.map((g) => g[4]));
  for (const fragment of written.filter((g) => !digits.includes(g))) {
    let i = 0;
    for (let j = 1; j < digits.length; j++) if (-overlap(fragment, digits[j]) < -overlap(fragment, digits[i])) i = j;
    if (-overlap(fragment, digits[i]) <= 0.3 * lineHeight) digits[i] = union(digits[i], fragment);
    else if (fragment[4] >= 0.25 * typicalArea) digits.push(fragment);
  }
  digits.sort(compareLists);
  const columnSums = new Float64Array(ink.w);
  for (let y = 0; y < ink.h; y++) for (let x = 0; x < ink.w; x++) columnSums[x] += ink.data[y * ink.w + x];
  const columns = columnSums.map((_, x) => ((columnSums[x - 1] || 0) + columnSums[x] + (columnSums[x + 1] || 0)) / 3);
  const bounds = [Math.trunc(digits[0][0])];
  for (let k = 1; k < digits.length; k++) bounds.push(Math.floor((Math.trunc(digits[k - 1][1]) + Math.trunc(digits[k][0])) / 2));
  bounds.push(Math.trunc(digits.at(-1)[1]));
  const apart = [false];
  for (let k = 1; k < digits.length; k++) apart.push(digits[k][0] - digits[k - 1][1] > JOIN_GAP * lineHeight);
  apart.push(false);
  const cuts = [bounds[0]], between = [0], wall = [false];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const inside = valleys(columns, bounds[k], bounds[k + 1], lineHeight);
    cuts.push(...inside, bounds[k + 1]);
    wall.push(...inside.map(() => false), apart[k + 1]);
    between.push(cuts.length - 1);
  }
  const spans = [];
  for (let i = 0; i < cuts.length; i++) {
    for (let j = i + 1; j < cuts.length; j++) {
      const narrow = cuts[j] - cuts[i] <= MAX_DIGIT_WIDTH * lineHeight && !wall.slice(i + 1, j).some(Boolean);
      const nextPiece = between.includes(i) && j === between[between.indexOf(i) + 1];
      if (narrow || nextPiece) spans.push([i, j]);
    }
  }
  return { cuts, between, spans, lineHeight };
}

function compareLists(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** preprocess._without_printed_words: the pieces less a printed word at the line's start or
 * end (smaller than the rest, set apart, set as print is). */
function withoutPrintedWords(pieces) {
  const tallest = Math.max(...pieces.map((g) => g[3] - g[2]));
  const words = [[pieces[0]]];
  let right = pieces[0][1];
  for (const piece of pieces.slice(1)) {
    if (piece[0] - right > WORD_GAP * tallest) words.push([]);
    words.at(-1).push(piece);
    right = Math.max(right, piece[1]);
  }
  if (words.length === 1) return pieces;
  const heights = words.map((word) => nd.median(word.map((g) => g[3] - g[2])));
  const top = Math.max(...heights);
  return words.filter((word, k) => !((k === 0 || k === words.length - 1) &&
    heights[k] < SMALLER_WORD * top && setAsPrint(word, heights[k]))).flat();
}

/** preprocess._set_as_print: at least PRINTED_LETTERS pieces, each within LETTER_GAP of
 * `height` of the next, all but one with their bottoms within BASELINE of `height` of one
 * line (its slope the median of pairs'). */
function setAsPrint(word, height) {
  if (word.length < PRINTED_LETTERS) return false;
  for (let k = 1; k < word.length; k++) if (word[k][0] - word[k - 1][1] > LETTER_GAP * height) return false;
  const bottoms = word.map((g) => g[3]), centres = word.map((g) => (g[0] + g[1]) / 2);
  const slopes = [];
  for (let i = 0; i < word.length; i++) {
    for (let j = i + 1; j < word.length; j++) {
      if (centres[i] !== centres[j]) slopes.push((bottoms[j] - bottoms[i]) / (centres[j] - centres[i]));
    }
  }
  const slope = slopes.length ? nd.median(slopes) : 0;
  const offsets = bottoms.map((b, k) => b - slope * centres[k]);
  const middle = nd.median(offsets);
  const onLine = offsets.filter((o) => Math.abs(o - middle) <= BASELINE * height).length;
  return onLine >= Math.max(PRINTED_LETTERS, word.length - 1);
}

function valleys(columns, x0, x1, lineHeight) {
  const width = x1 - x0;
  const inside = columns.slice(x0, x1);
  const positive = Array.from(inside).filter((v) => v > 0);
  if (width < 3 || !positive.length) return [];
  const typical = nd.median(positive);
  const found = [];
  for (let i = 1; i < width - 1; i++) {
    if (inside[i] <= inside[i - 1] && inside[i] < inside[i + 1] && inside[i] < 0.6 * typical) found.push(x0 + i);
  }
  const spaced = [];
  for (let count = 2; count <= SPACED_UP_TO; count++) {
    if (width < SPACED_FROM * count * lineHeight) continue;
    for (let k = 1; k < count; k++) spaced.push(x0 + Math.floor((width * k) / count));
  }
  // Where a narrow digit (a 1) at either end would end: preprocess._valleys.
  const narrow = width >= NARROW_FROM * lineHeight
    ? [Math.trunc(x0 + NARROW * lineHeight), Math.trunc(x1 - NARROW * lineHeight)] : [];
  const interior = [];
  const gap = Math.max(2, Math.trunc(0.12 * lineHeight));
  const deepestFirst = found.map((x) => [columns[x], x]).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
  for (const x of [...deepestFirst, ...spaced, ...narrow]) {
    if (x0 + gap <= x && x <= x1 - gap && interior.every((y) => Math.abs(x - y) >= gap)) interior.push(x);
  }
  return interior.slice(0, MAX_CUTS).sort((a, b) => a - b);
}

function overlap(a, b) { return Math.min(a[1], b[1]) - Math.max(a[0], b[0]); }

function union(a, b) {
  return [Math.min(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.max(a[3], b[3]), a[4] + b[4]];
}

/** A number on one line -> {nCuts, pieces, spans: Map "i,j" -> digit, height}. */
export function numberLine(upload, lookInside = 2, closer = true) {
  const { grey, scale } = unpack(upload);
  const [work, factor] = workingCopy(grey);
  let ink = polarised(work);
  const brighter = region(ink);
  const inner = lookInside ? insideFrame(upload, ink, brighter, factor) : null;
  if (inner) {
    try {
      return shifted(numberLine(inner.upload, lookInside - 1), inner);
    } catch (err) {
      if (!(err instanceof NoDigitFound)) throw err;
    }
  }
  ink = writing(work, ink, brighter, true, upload.rgb || null);
  let { cuts, between, spans, lineHeight } = segmentNumber(ink);
  if (closer && factor > 1 && lineHeight < SMALL_LINE) {
    const near = aroundTheWriting(upload, ink, factor, lineHeight);
    try {
      return shifted(numberLine(near.upload, 0, false), near);
    } catch (err) {
      if (!(err instanceof NoDigitFound)) throw err;
    }
  }
  // Only the writing the cuts span: a printed word beside it, thickened, would pass for writing.
  const first = cuts[0], last = cuts[cuts.length - 1];
  const writingOnly = nd.map(ink, (v, i) => { const x = i % ink.w; return x >= first && x <= last ? v : 0; });
  const changed = restroked(writingOnly, lineHeight);
  if (changed) {
    ink = changed;
    ({ cuts, between, spans, lineHeight } = segmentNumber(ink));
  }
  const size = [roundHalfEven(grey.w * scale), roundHalfEven(grey.h * scale)];
  const digits = new Map();
  for (const [i, j] of spans) {
    const digit = digitBetween(ink, cuts[i], cuts[j], factor * scale, size);
    if (digit) digits.set(`${i},${j}`, digit);
  }
  return { nCuts: cuts.length, pieces: between, spans: digits, height: lineHeight * factor * scale };
}

/** preprocess.stroke_width: the strokes' usual width in pixels, at half their full strength:
 * twice the distance from their middle (the distance's ridge) to their edge, less one. */
export function strokeWidth(ink) {
  const inked = ink.data.filter((v) => v > 0);
  const half = 0.5 * nd.percentile(inked, 95);
  const { ridge } = ridges(nd.map(ink, (v) => (v > half ? 1 : 0), Uint8Array));
  return 2 * nd.median(ridge) - 1;
}

/** preprocess._restroked: bold strokes (a marker) thinned to MNIST's usual width, fine ones
 * (a fine pen, pencil) thickened to THICK_TO (square and cross erosions or dilations in
 * turn), or null. */
function restroked(ink, lineHeight) {
  const width = strokeWidth(ink);
  let change, radius;
  if (width > BOLD * lineHeight) {
    [change, radius] = [nd.greyErosion3, roundHalfEven((width - THIN_TO * lineHeight) / 2)];
  } else if (width < FINE * lineHeight) {
    [change, radius] = [nd.greyDilation3, roundHalfEven((THICK_TO * lineHeight - width) / 2)];
  } else {
    return null;
  }
  if (radius < 1) return null;
  let out = ink;
  for (let step = 0; step < radius; step++) out = change(out, step % 2 === 0);
  return out.data.some((v) => v > STROKE) ? out : null;
}

function shifted(line, { dx, dy }) {
  for (const [span, d] of line.spans) line.spans.set(span, { ...d, box: shift(d.box, dx, dy) });
  return line;
}

/** preprocess._around_the_writing: the writing, two line heights around, at decoded size. */
function aroundTheWriting(upload, ink, factor, lineHeight) {
  const { grey, scale } = unpack(upload);
  const [[ya, yb], [xa, xb]] = extent(ink);
  const margin = 2 * lineHeight;
  const y0 = Math.max(0, Math.trunc((ya - margin) * factor));
  const x0 = Math.max(0, Math.trunc((xa - margin) * factor));
  const y1 = Math.min(grey.h, Math.ceil((yb + 1 + margin) * factor));
  const x1 = Math.min(grey.w, Math.ceil((xb + 1 + margin) * factor));
  const rgb = upload.rgb ? cropRgb(upload.rgb, y0, y1, x0, x1) : null;
  return { upload: { grey: nd.crop(grey, y0, y1, x0, x1), scale, rgb },
           dx: roundHalfEven(x0 * scale), dy: roundHalfEven(y0 * scale) };
}

function digitBetween(ink, x0, x1, factor, size) {
  const piece = nd.crop(ink, 0, ink.h, x0, x1);
  const found = extent(piece);
  if (!found) return null;
  const [[ya, yb], [xa, xb]] = found;
  return { image: toMnist(piece), box: scaleBox([x0 + xa, ya, x0 + xb + 1, yb + 1], factor, ...size) };
}

/** Digit mode as a line with one span, as recognition._one_digit. */
export function oneDigit(digit) {
  return { nCuts: 2, pieces: [0, 1], spans: new Map([["0,1", digit]]), height: digit.box[3] - digit.box[1] };
}
