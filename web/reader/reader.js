// Reading digits in this browser: preprocess.js's port of the server's preprocessing, the
// shipped network as ONNX in onnxruntime-web (vendored by `python -m hdr_jax.webpage`), and
// the same choice of cuts as hdr_jax/recognition.py. Answers have the API's JSON shape, so
// the page shows both the same way.
import * as pre from "./preprocess.js";

// recognition.LineCosts' defaults.
const LINE_COSTS = { split: 0.5, join: 3.0, shortFrom: 0.9, short: 5.0 };
const BASE = new URL("../", import.meta.url);

export class DeviceReader {
  constructor(ort, session, facts) {
    this.ort = ort;
    this.session = session;
    this.facts = facts;
  }

  /** Loads the runtime and the model (from the service worker's cache when offline). */
  static async load() {
    const facts = await (await fetch(new URL("model/model.json", BASE))).json();
    const runtime = new URL(facts.runtime_path, BASE);
    const ort = await import(new URL("ort.wasm.min.mjs", runtime).href);
    ort.env.wasm.wasmPaths = runtime.href;
    ort.env.wasm.numThreads = 1;  // Threads need cross-origin isolation, which a static host rarely gives.
    ort.env.wasm.proxy = false;
    const model = await (await fetch(new URL("model/model.onnx", BASE))).arrayBuffer();
    const session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
    return new DeviceReader(ort, session, facts);
  }

  /** The 10 digits' probabilities for 28x28 images (one model call). A model with an 11th
   * class, "not one digit", gives it a share that no digit gets (recognition._reading). */
  async predict(images) {
    const batch = new Float32Array(images.length * 784);
    images.forEach((img, i) => batch.set(img.data, i * 784));
    const input = new this.ort.Tensor("float32", batch, [images.length, 28, 28, 1]);
    const { probabilities } = await this.session.run({ images: input });
    const classes = probabilities.dims[1];
    return images.map((_, i) => Array.from(probabilities.data.subarray(i * classes, i * classes + 10)));
  }

  /** One upload (a Blob) -> the API's answer for it: a digit, a number, or {error}. */
  async read(blob, mode = "digit", { keepImages = false } = {}) {
    let line;
    try {
      const decoded = await pre.decode(blob);
      line = mode === "number" ? pre.numberLine(decoded) : pre.oneDigit(pre.preprocessDigit(decoded));
    } catch (err) {
      if (err instanceof pre.PreprocessError) return { error: err.message };
      throw err;
    }
    const spans = [...line.spans.entries()];
    const rows = await this.predict(spans.map(([, d]) => d.image));
    const lowBelow = this.facts.low_confidence_below;
    const readings = readLine(line, spans.map(([key, d], i) => [key, reading(d, rows[i], lowBelow)]));
    for (const r of readings) {  // Only the chosen digits become pictures.
      r.input = inputUrl(r.image);
      // The 28x28 itself only for comparing with the server's (bench/page_reader.py).
      if (keepImages) r.image = Array.from(r.image.data); else delete r.image;
    }
    if (mode !== "number") {
      const { box, ...digit } = readings[0];  // The API gives a box only to a number's digits.
      return digit;
    }
    return { number: readings.map((r) => r.digit).join(""), low_confidence: readings.some((r) => r.low_confidence),
             digits: readings };
  }
}

function reading(digit, p, lowBelow) {
  const confidence = Math.max(...p);
  return { digit: p.indexOf(confidence), confidence, low_confidence: confidence < lowBelow,
           probabilities: p.map((x) => Math.round(x * 1e6) / 1e6), box: digit.box,
           image: digit.image };
}

/** recognition.read_line: the reading with the highest sum of log-confidences, less costs. */
export function readLine(line, readings, costs = LINE_COSTS) {
  const byKey = new Map(readings);
  const best = [[0, []]];
  for (let j = 1; j < line.nCuts; j++) {
    let chosen = [-Infinity, null];
    for (let i = 0; i < j; i++) {
      const r = byKey.get(`${i},${j}`);
      if (!r || best[i][1] === null) continue;
      const score = best[i][0] + plausibility(r, i, j, line, costs);
      if (score > chosen[0]) chosen = [score, [...best[i][1], r]];
    }
    best.push(chosen);
  }
  return best.at(-1)[1];
}

function plausibility(r, i, j, line, costs) {
  const height = (r.box[3] - r.box[1]) / line.height;
  const joined = line.pieces.filter((p) => i < p && p < j).length;
  return Math.log(Math.max(r.confidence, 1e-9)) - costs.split - costs.join * joined -
    costs.short * Math.max(0, costs.shortFrom - height);
}

/** A 28x28 image in [0, 1] as a PNG data URL (what the API's `include_input` gives). */
function inputUrl(img) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(28, 28);
  img.data.forEach((v, i) => {
    const g = Math.round(255 * v);
    pixels.data.set([g, g, g, 255], 4 * i);
  });
  context.putImageData(pixels, 0, 0);
  return canvas.toDataURL("image/png");
}
