// The few array operations hdr_jax/preprocess.py takes from NumPy, scipy.ndimage and Pillow,
// with the same conventions (scipy's "reflect" borders and filter origins, scipy's label
// numbering, Pillow's resampling filters), so that the page's preprocessing is a line-by-line
// port of the Python one. An image is {h, w, data}: data a Float32Array (grey, ink) or a
// Uint8Array (masks, 0/1), row-major.

export function image(h, w, Type = Float32Array) {
  return { h, w, data: new Type(h * w) };
}

export function map(img, fn, Type = Float32Array) {
  const out = image(img.h, img.w, Type);
  for (let i = 0; i < img.data.length; i++) out.data[i] = fn(img.data[i], i);
  return out;
}

export function crop(img, y0, y1, x0, x1) {
  const out = image(y1 - y0, x1 - x0, img.data.constructor);
  for (let y = y0; y < y1; y++) out.data.set(img.data.subarray(y * img.w + x0, y * img.w + x1), (y - y0) * out.w);
  return out;
}

export function any(mask) { return mask.data.some((v) => v); }

/** The largest value (Math.max(...values) overflows the stack on a photo's pixels). */
export function max(values) {
  let best = -Infinity;
  for (const v of values) if (v > best) best = v;
  return best;
}

export function count(mask) {
  let n = 0;
  for (const v of mask.data) n += v ? 1 : 0;
  return n;
}

// --- Order statistics (NumPy's linear interpolation). ---
export function percentile(values, q) {
  const sorted = Float64Array.from(values).sort();
  if (!sorted.length) return NaN;
  const pos = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(values) { return percentile(values, 50); }

/** `image[::step, ::step]` flattened, with `step` as preprocess._sample chooses it. */
export function sample(img, target = 40000) {
  const step = Math.max(1, Math.floor(Math.sqrt(img.data.length / target)));
  const out = [];
  for (let y = 0; y < img.h; y += step) for (let x = 0; x < img.w; x += step) out.push(img.data[y * img.w + x]);
  return Float32Array.from(out);
}

/** Otsu's threshold of the values in [0, 1], over 128 bins (preprocess._otsu). */
export function otsu(values) {
  const hist = new Float64Array(128);
  for (const v of values) if (v >= 0 && v <= 1) hist[Math.min(Math.floor(v * 128), 127)] += 1;
  let total = 0, totalMass = 0;
  for (let i = 0; i < 128; i++) { total += hist[i]; totalMass += hist[i] * (i + 0.5) / 128; }
  let w0 = 0, m0 = 0, best = -1, arg = 0;
  for (let i = 0; i < 128; i++) {
    const centre = (i + 0.5) / 128;
    w0 += hist[i];
    m0 += hist[i] * centre;
    const w1 = total - w0;
    const between = w0 * w1 * (m0 / Math.max(w0, 1) - (totalMass - m0) / Math.max(w1, 1)) ** 2;
    if (between > best) { best = between; arg = i; }
  }
  return (arg + 0.5) / 128;
}

// --- Filters: separable, scipy's "reflect" border (d c b a | a b c d | d c b a). ---
function reflect(i, n) {
  const period = 2 * n;
  i = ((i % period) + period) % period;
  return i < n ? i : period - 1 - i;
}

/** A 1-D filter along `axis` (0: down columns, 1: along rows): out[i] = reduce of
 * in[i + start ... i + start + size - 1], the border reflected. `kind`: "sum", "min", "max"
 * (each in time independent of `size`: a running sum, van Herk and Gil-Werman's blocks), or
 * an array of weights. */
function filter1d(img, size, axis, start, kind) {
  const { h, w } = img;
  const out = image(h, w, img.data.constructor);
  const n = axis === 1 ? w : h, lines = axis === 1 ? h : w;
  const stride = axis === 1 ? 1 : w, lineStride = axis === 1 ? w : 1;
  const length = n + size - 1;
  const buffer = new Float64Array(length);
  const ahead = new Float64Array(length), behind = new Float64Array(length);
  const pick = kind === "min" ? Math.min : Math.max;
  for (let line = 0; line < lines; line++) {
    const base = line * lineStride;
    for (let k = 0; k < length; k++) buffer[k] = img.data[base + reflect(k + start, n) * stride];
    if (kind === "sum") {
      let acc = 0;
      for (let k = 0; k < size; k++) acc += buffer[k];
      for (let i = 0; i < n; i++) {
        out.data[base + i * stride] = acc;
        acc += buffer[i + size] - buffer[i];  // (Past the end on the last step: unused.)
      }
    } else if (kind === "min" || kind === "max") {
      for (let k = 0; k < length; k++) {  // Within blocks of `size`: from the block's start...
        ahead[k] = k % size ? pick(ahead[k - 1], buffer[k]) : buffer[k];
      }
      for (let k = length - 1; k >= 0; k--) {  // ...and from its end.
        behind[k] = (k + 1) % size && k + 1 < length ? pick(behind[k + 1], buffer[k]) : buffer[k];
      }
      for (let i = 0; i < n; i++) out.data[base + i * stride] = pick(behind[i], ahead[i + size - 1]);
    } else {
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let k = 0; k < size; k++) acc += kind[k] * buffer[i + k];
        out.data[base + i * stride] = acc;
      }
    }
  }
  return out;
}

export function uniformFilter(img, size) {
  let out = img;
  for (const axis of [0, 1]) {
    out = filter1d(out, size, axis, -Math.floor(size / 2), "sum");
    for (let i = 0; i < out.data.length; i++) out.data[i] /= size;
  }
  return out;
}

export function minimumFilter1d(img, size, axis) {
  return filter1d(img, size, axis, -Math.floor(size / 2), "min");
}

export function maximumFilter1d(img, size, axis) {
  return filter1d(img, size, axis, -Math.floor(size / 2), "max");
}

/** scipy.ndimage.grey_erosion(img, footprint=generate_binary_structure(2, square ? 2 : 1)):
 * the least value in each pixel's 3x3 square, or its cross of five. */
export function greyErosion3(img, square) {
  const down = minimumFilter1d(img, 3, 0);
  if (square) return minimumFilter1d(down, 3, 1);
  const across = minimumFilter1d(img, 3, 1);
  return map(down, (v, i) => Math.min(v, across.data[i]), img.data.constructor);
}

/** scipy.ndimage.grey_dilation(img, footprint=generate_binary_structure(2, square ? 2 : 1)):
 * the greatest value in each pixel's 3x3 square, or its cross of five. */
export function greyDilation3(img, square) {
  const down = maximumFilter1d(img, 3, 0);
  if (square) return maximumFilter1d(down, 3, 1);
  const across = maximumFilter1d(img, 3, 1);
  return map(down, (v, i) => Math.max(v, across.data[i]), img.data.constructor);
}

/** scipy.ndimage.grey_opening(img, size=(size, size)): erosion, then a dilation whose window
 * an even size shifts by one, so the two line up. */
export function greyOpening(img, size) {
  let out = img;
  for (const axis of [0, 1]) out = filter1d(out, size, axis, -Math.floor(size / 2), "min");
  const shift = size % 2 ? 0 : 1;
  for (const axis of [0, 1]) out = filter1d(out, size, axis, -Math.floor(size / 2) + shift, "max");
  return out;
}

/** scipy.ndimage.grey_closing(img, size=(size, size)) for an odd size: dilation, then
 * erosion. */
export function greyClosing(img, size) {
  let out = img;
  for (const kind of ["max", "min"]) {
    for (const axis of [0, 1]) out = filter1d(out, size, axis, -Math.floor(size / 2), kind);
  }
  return out;
}

/** scipy.ndimage.gaussian_filter(img, sigma) with its default truncate (4 sigmas). */
export function gaussianFilter(img, sigma) {
  const radius = Math.floor(4 * sigma + 0.5);
  const weights = [];
  let sum = 0;
  for (let k = -radius; k <= radius; k++) { weights.push(Math.exp(-0.5 * k * k / (sigma * sigma))); sum += weights.at(-1); }
  const kernel = weights.map((v) => v / sum);
  let out = img;
  for (const axis of [0, 1]) out = filter1d(out, kernel.length, axis, -radius, kernel);
  return out;
}

// --- Binary morphology (scipy's default cross structure, outside counts as background). ---
const CROSS = [[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]];

export function binaryDilation(mask, iterations = 1) {
  let cur = mask;
  for (let it = 0; it < iterations; it++) {
    const out = image(cur.h, cur.w, Uint8Array);
    for (let y = 0; y < cur.h; y++) {
      for (let x = 0; x < cur.w; x++) {
        if (!cur.data[y * cur.w + x]) continue;
        for (const [dy, dx] of CROSS) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < cur.h && xx >= 0 && xx < cur.w) out.data[yy * cur.w + xx] = 1;
        }
      }
    }
    cur = out;
  }
  return cur;
}

export function binaryErosion(mask, iterations = 1) {
  let cur = mask;
  for (let it = 0; it < iterations; it++) {
    const out = image(cur.h, cur.w, Uint8Array);
    for (let y = 0; y < cur.h; y++) {
      for (let x = 0; x < cur.w; x++) {
        out.data[y * cur.w + x] = CROSS.every(([dy, dx]) => {
          const yy = y + dy, xx = x + dx;
          return yy >= 0 && yy < cur.h && xx >= 0 && xx < cur.w && cur.data[yy * cur.w + xx];
        }) ? 1 : 0;
      }
    }
    cur = out;
  }
  return cur;
}

/** scipy.ndimage.binary_fill_holes: background not 4-connected to the border becomes mask. */
export function fillHoles(mask) {
  const background = map(mask, (v) => (v ? 0 : 1), Uint8Array);
  const { labels, n } = label(background, false);
  const edge = new Uint8Array(n + 1);
  for (const i of borderIndices(mask)) edge[labels[i]] = 1;
  return map(mask, (v, i) => (v || (labels[i] && !edge[labels[i]]) ? 1 : 0), Uint8Array);
}

function borderIndices(img) {
  const out = [];
  for (let x = 0; x < img.w; x++) out.push(x, (img.h - 1) * img.w + x);
  for (let y = 0; y < img.h; y++) out.push(y * img.w, y * img.w + img.w - 1);
  return out;
}

/** The labels on the picture's four sides (a row, the last row, a column, the last column). */
export function borderLabels(labels, h, w) {
  return borderIndices({ h, w }).map((i) => labels[i]);
}

// --- Connected pieces, numbered as scipy.ndimage.label numbers them (raster order). ---
export function label(mask, eight = true) {
  const { h, w } = mask;
  const labels = new Int32Array(h * w);
  const stack = new Int32Array(h * w);
  let n = 0;
  for (let start = 0; start < h * w; start++) {
    if (!mask.data[start] || labels[start]) continue;
    labels[start] = ++n;
    let top = 0;
    stack[top++] = start;
    while (top) {
      const i = stack[--top], y = (i / w) | 0, x = i - y * w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if ((!eight && dy && dx) || (!dy && !dx)) continue;
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const j = yy * w + xx;
          if (mask.data[j] && !labels[j]) { labels[j] = n; stack[top++] = j; }
        }
      }
    }
  }
  return { labels, n, h, w };
}

/** Pixels per label (index 0: background), as np.bincount. */
export function sizes(labels, n) {
  const out = new Float64Array(n + 1);
  for (const v of labels) out[v] += 1;
  return out;
}

/** scipy.ndimage.find_objects: each label's box as [y0, y1, x0, x1] (null where none). */
export function boxes({ labels, n, h, w }) {
  const out = Array.from({ length: n + 1 }, () => null);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = labels[y * w + x];
      if (!v) continue;
      const b = out[v];
      if (!b) out[v] = [y, y + 1, x, x + 1];
      else { b[0] = Math.min(b[0], y); b[1] = Math.max(b[1], y + 1); b[2] = Math.min(b[2], x); b[3] = Math.max(b[3], x + 1); }
    }
  }
  return out;
}

/** The largest Euclidean distance from a pixel of `mask` to one outside it (within the
 * array), as distance_transform_edt(mask).max(). */
export function maxDistance(mask) {
  let best = 0;
  const distance = distanceTransform(mask);
  for (let i = 0; i < distance.data.length; i++) {
    if (mask.data[i] && Number.isFinite(distance.data[i])) best = Math.max(best, distance.data[i]);
  }
  return best;
}

/** scipy.ndimage.distance_transform_edt(mask): each pixel's Euclidean distance to the nearest
 * one outside `mask` (Infinity where the array has none): Felzenszwalb and Huttenlocher's
 * transform. */
export function distanceTransform(mask) {
  const { h, w } = mask;
  const INF = 1e20;
  const f = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) f[i] = mask.data[i] ? INF : 0;
  const line = (get, set, n) => {
    const v = new Int32Array(n), z = new Float64Array(n + 1), d = new Float64Array(n);
    let k = 0;
    v[0] = 0; z[0] = -INF; z[1] = INF;
    for (let q = 1; q < n; q++) {
      let s;
      while (true) {
        s = ((get(q) + q * q) - (get(v[k]) + v[k] * v[k])) / (2 * q - 2 * v[k]);
        if (s > z[k] || k === 0) break;
        k--;
      }
      if (s <= z[k]) { v[0] = q; z[0] = -INF; z[1] = INF; k = 0; continue; }
      k++; v[k] = q; z[k] = s; z[k + 1] = INF;
    }
    k = 0;
    for (let q = 0; q < n; q++) {
      while (z[k + 1] < q) k++;
      d[q] = (q - v[k]) ** 2 + get(v[k]);
    }
    for (let q = 0; q < n; q++) set(q, d[q]);
  };
  for (let x = 0; x < w; x++) line((q) => f[q * w + x], (q, val) => { f[q * w + x] = val; }, h);
  for (let y = 0; y < h; y++) line((q) => f[y * w + q], (q, val) => { f[y * w + q] = val; }, w);
  const out = image(h, w, Float64Array);
  for (let i = 0; i < h * w; i++) out.data[i] = f[i] < INF / 2 ? Math.sqrt(f[i]) : Infinity;
  return out;
}

export function centerOfMass(img) {
  let total = 0, sy = 0, sx = 0;
  for (let y = 0; y < img.h; y++) {
    for (let x = 0; x < img.w; x++) {
      const v = img.data[y * img.w + x];
      total += v; sy += v * y; sx += v * x;
    }
  }
  return [sy / total, sx / total];
}

// --- Pillow's resampling of float images (Image.resize on mode "F", no reducing gap). ---
const FILTERS = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, fn: (x) => Math.max(0, 1 - Math.abs(x)) },
  lanczos: { support: 3, fn: (x) => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

function sinc(x) {
  if (x === 0) return 1;
  return Math.sin(Math.PI * x) / (Math.PI * x);
}

function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const centre = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(centre - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(centre + support + 0.5), inSize);
    const weights = [];
    let total = 0;
    for (let x = xmin; x < xmax; x++) {
      const k = filter.fn((x - centre + 0.5) / filterScale);
      weights.push(k);
      total += k;
    }
    out.push({ xmin, weights: weights.map((k) => (total ? k / total : 0)) });
  }
  return out;
}

/** Pillow's Image.resize((w, h), filter) of a float image: horizontal pass, then vertical. */
export function resize(img, w, h, filterName) {
  const filter = FILTERS[filterName];
  let cur = img;
  if (w !== img.w) {
    const cs = coefficients(img.w, w, filter);
    const out = image(img.h, w);
    for (let y = 0; y < img.h; y++) {
      for (let x = 0; x < w; x++) {
        const { xmin, weights } = cs[x];
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += weights[k] * img.data[y * img.w + xmin + k];
        out.data[y * w + x] = acc;
      }
    }
    cur = out;
  }
  if (h !== cur.h) {
    const cs = coefficients(cur.h, h, filter);
    const out = image(h, cur.w);
    for (let y = 0; y < h; y++) {
      const { xmin, weights } = cs[y];
      for (let x = 0; x < cur.w; x++) {
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += weights[k] * cur.data[(xmin + k) * cur.w + x];
        out.data[y * cur.w + x] = acc;
      }
    }
    cur = out;
  }
  return cur;
}

/** Pillow's nearest-neighbour resize of a mask. */
export function resizeNearest(mask, w, h) {
  const out = image(h, w, Uint8Array);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(mask.h - 1, Math.floor((y + 0.5) * mask.h / h));
    for (let x = 0; x < w; x++) {
      out.data[y * w + x] = mask.data[sy * mask.w + Math.min(mask.w - 1, Math.floor((x + 0.5) * mask.w / w))];
    }
  }
  return out;
}
