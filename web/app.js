// hdr-jax upload page: no framework, no build step. Reads through the function's JSON API,
// or in this browser (web/reader/) when asked to or when the API cannot be reached; keeps
// every reading on this device (history.js) and works offline once visited (sw.js).
import * as history from "./history.js";

const ACCEPTED = ["png", "jpg", "jpeg", "jfif", "pjp", "pjpeg", "bmp", "gif", "webp"];
const FILES_PER_REQUEST = 8;  // A batch goes in requests of this many, so progress shows.
const $ = (id) => document.getElementById(id);

const CONFIG = window.HDR_CONFIG || {};
const TIMEOUT_SECONDS = CONFIG.timeoutSeconds || 30;
const WHERE = { server: "read on the server", device: "read on this device" };

// The API: config.js's, unless a `?api=` link names one on an origin the page trusts (its
// own, or one config.js lists). Any other is refused and said so: photos (EXIF included) must
// not go to a server the person did not choose.
const API = (() => {
  const configured = CONFIG.apiUrl || location.origin + "/";
  const asked = new URLSearchParams(location.search).get("api");
  if (!asked) return { url: configured };
  let origin = null;
  try { origin = new URL(asked, location.href).origin; } catch (err) { /* not a URL */ }
  const trusted = [location.origin, ...(CONFIG.allowedApiOrigins || [])];
  return trusted.includes(origin) ? { url: asked } : { url: configured, refused: asked };
})();

class Unreachable extends Error {}

// fetch with the page's time limit (a hung service must not hang the page) and the batch's
// cancel button.
async function fetchWithTimeout(url, options = {}, cancel = null) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, TIMEOUT_SECONDS * 1000);
  const onCancel = () => controller.abort();
  cancel?.addEventListener("abort", onCancel);
  try {
    return await fetch(url, { ...options, signal: controller.signal });
  } catch (err) {
    if (cancel?.aborted) throw err;
    throw new Unreachable(timedOut
      ? `The prediction service did not answer within ${TIMEOUT_SECONDS} seconds`
      : "Cannot reach the prediction service");
  } finally {
    clearTimeout(timer);
    cancel?.removeEventListener("abort", onCancel);
  }
}

const state = { files: [], strokes: [], drawing: null, last: null, batch: null };

function showError(message) { $("error").textContent = message || ""; }
function showNotice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

function isAccepted(file) {
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  return ACCEPTED.includes(ext) || (file.name === "image.png" && file.type === "image/png");
}

function setFiles(files) {
  const list = Array.from(files);
  const refused = list.filter((f) => !isAccepted(f));
  if (refused.length) {
    showError(`${refused.map((f) => f.name).join(", ")}: not a supported image type. ` +
              `Use ${ACCEPTED.map((e) => "." + e).join(" ")}.`);
    return;
  }
  if (!list.length) return;
  showError("");
  state.files = list;
  clearPad(false);
  showPreview(URL.createObjectURL(list[0]));
}

function showPreview(src) {
  $("preview").src = src;
  $("preview-wrap").hidden = false;
  const boxes = $("boxes");
  boxes.getContext("2d").clearRect(0, 0, boxes.width, boxes.height);
}

// --- Drawing pad: pointer events cover mouse, touch and pen. ---
const pad = $("pad");
const ctx = pad.getContext("2d");

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const stroke of state.strokes) {
    ctx.lineWidth = stroke.width;
    ctx.beginPath();
    stroke.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (stroke.points.length === 1) ctx.lineTo(stroke.points[0][0] + 0.1, stroke.points[0][1]);
    ctx.stroke();
  }
}

function padPoint(event) {
  const r = pad.getBoundingClientRect();
  return [(event.clientX - r.left) * pad.width / r.width,
          (event.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  const width = e.pointerType === "pen" && e.pressure ? 12 + 14 * e.pressure : 20;
  state.drawing = { width, points: [padPoint(e)] };
  state.strokes.push(state.drawing);
  state.files = [];
  redraw();
});
pad.addEventListener("pointermove", (e) => {
  if (!state.drawing) return;
  state.drawing.points.push(padPoint(e));
  redraw();
});
const endStroke = () => {
  if (!state.drawing) return;
  state.drawing = null;
  showPreview(pad.toDataURL("image/png"));
};
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function clearPad(hidePreview = true) {
  state.strokes = [];
  redraw();
  if (hidePreview) $("preview-wrap").hidden = true;
}
$("undo").addEventListener("click", () => {
  state.strokes.pop();
  redraw();
  if (state.strokes.length) showPreview(pad.toDataURL("image/png"));
  else $("preview-wrap").hidden = true;
});
$("clear-pad").addEventListener("click", () => clearPad());

// --- Inputs: one button (the system's chooser offers files and the camera), drop, paste. ---
$("add-images").addEventListener("click", () => $("image-input").click());
$("image-input").addEventListener("change", (e) => setFiles(e.target.files));
const drop = $("dropzone");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  setFiles(e.dataTransfer.files);
});
document.addEventListener("paste", (e) => {
  const files = Array.from(e.clipboardData.files || []);
  if (files.length) setFiles(files.map((f) => (f.name ? f : new File([f], "image.png",
                                                                     { type: f.type }))));
});

// --- Reading: on the server, or in this browser. ---
function mode() { return document.querySelector("input[name=mode]:checked").value; }

let deviceReader = null;
function loadDeviceReader() {
  deviceReader ??= import("./reader/reader.js").then((m) => m.DeviceReader.load())
    .catch((err) => { deviceReader = null; throw err; });
  return deviceReader;
}

async function readOnServer(files, readMode, cancel) {
  const form = new FormData();
  files.forEach((f) => form.append("image", f, f.name));
  form.append("mode", readMode);
  form.append("include_input", "true");
  const response = await fetchWithTimeout(API.url, { method: "POST", body: form }, cancel);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || `the service answered ${response.status}`;
    return files.map(() => ({ error, where: "server" }));
  }
  return (body.results || [body]).map((r) => ({ ...r, where: "server" }));
}

async function readOnDevice(file, readMode) {
  const reader = await loadDeviceReader();
  return { ...(await reader.read(file, readMode)), where: "device" };
}

/** Every upload's answer, in order; the API first unless reading on this device, and this
 * device for whatever is left once the API cannot be reached. */
async function readAll(uploads, readMode, batch) {
  const results = [];
  // Known to be offline: no request to wait out.
  let device = $("on-device").checked || !navigator.onLine;
  if (device && !$("on-device").checked) showNotice("This device is offline: reading on this device.");
  while (results.length < uploads.length && !batch.cancel.aborted) {
    if (!device) {
      const chunk = uploads.slice(results.length, results.length + FILES_PER_REQUEST);
      try {
        results.push(...await readOnServer(chunk, readMode, batch.cancel));
      } catch (err) {
        if (batch.cancel.aborted) break;  // Cancelled while the request was on its way.
        if (!(err instanceof Unreachable)) throw err;
        try {
          await loadDeviceReader();
        } catch (loadError) {
          throw new Unreachable(`${err.message}, and this browser cannot read on the device`);
        }
        showNotice(`${err.message}: reading on this device instead.`);
        device = true;
      }
    } else {
      results.push(await readOnDevice(uploads[results.length], readMode));
    }
    batch.progress(results.length);
  }
  return results;
}

async function predict() {
  showError("");
  showNotice(API.refused ? refusedNotice() : "");
  let uploads = state.files;
  if (!uploads.length && state.strokes.length) {
    uploads = [new File([await padBlob()], "drawing.png", { type: "image/png" })];
  }
  if (!uploads.length) {
    showError("Add, drop, paste or draw an image first.");
    return;
  }
  const batch = startBatch(uploads.length);
  const readMode = mode();
  let results;
  try {
    results = await readAll(uploads, readMode, batch);
  } catch (err) {
    showError(err instanceof Unreachable
      ? `${err.message}. Check your connection and try again.` : sentence(String(err.message || err)));
    return;
  } finally {
    endBatch();
  }
  if (batch.cancel.aborted) {
    $("history-status").textContent = `Cancelled: ${results.length} of ${uploads.length} read.`;
  }
  if (!results.length) return;
  render(results, uploads);
  // One column (a phone): the result is below the inputs, out of sight.
  if (matchMedia("(max-width: 760px)").matches) $("result-title").scrollIntoView({ block: "start" });
  await keep(results, uploads, readMode);
  if ($("speak-results").checked) speak(spoken(results));
}

function padBlob() { return new Promise((resolve) => pad.toBlob(resolve, "image/png")); }

function startBatch(total) {
  const cancel = new AbortController();
  $("predict").disabled = true;
  $("batch").hidden = total < 2;
  $("progress").max = total;
  const progress = (done) => {
    $("progress").value = done;
    $("progress-text").textContent = `Read ${done} of ${total}`;
  };
  progress(0);
  state.batch = { cancel: cancel.signal, abort: () => cancel.abort(), progress };
  return state.batch;
}

function endBatch() {
  $("predict").disabled = false;
  $("batch").hidden = true;
  state.batch = null;
}

$("cancel").addEventListener("click", () => state.batch?.abort());

function sentence(text) {
  const s = String(text);
  return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

// --- Showing a result. ---
function clearResult() {
  $("result").textContent = "";
  $("confidence").textContent = "";
  $("where").textContent = "";
  $("chart").replaceChildren();
  $("seen-images").replaceChildren();
  $("seen").hidden = true;
  $("results-list").replaceChildren();
  $("read-aloud").disabled = true;
  state.last = null;
}

function reading(r) { return r.number !== undefined ? r.number : String(r.digit); }

function confidenceOf(r) {
  return Math.min(...(r.digits || [r]).map((d) => d.confidence));
}

function render(results, uploads) {
  clearResult();
  const first = results[0];
  if (first.error) showError(`${uploads[0].name}: ${sentence(first.error)}`);
  else showOne(first);
  state.last = results;
  $("read-aloud").disabled = false;
  if (results.length > 1) {
    results.forEach((r, i) => {
      const li = document.createElement("li");
      const name = uploads[i] ? uploads[i].name : `image ${i + 1}`;
      li.textContent = r.error ? `${name}: ${sentence(r.error)}`
        : `${name}: ${reading(r)} (${(100 * confidenceOf(r)).toFixed(1)}%)` +
          (r.low_confidence ? " - low confidence" : "");
      $("results-list").append(li);
    });
  }
}

function showOne(result) {
  const digits = result.digits || [result];
  $("result").textContent = reading(result);
  const doubtful = digits.filter((d) => d.low_confidence);
  $("result").classList.toggle("low", doubtful.length > 0);
  $("confidence").textContent = `confidence ${(100 * confidenceOf(result)).toFixed(1)}%` +
    (doubtful.length ? ` (low confidence: check ${doubtful.length > 1 ? "the marked digits"
      : digits.length > 1 ? "the marked digit" : "this reading"})` : "");
  $("where").textContent = `· ${WHERE[result.where]}`;
  drawChart(digits[0].probabilities);
  $("seen").hidden = false;
  digits.forEach((d) => {
    if (!d.input) return;
    const img = document.createElement("img");
    img.src = d.input;
    img.alt = `28 by 28 input for the digit read as ${d.digit}` +
      (d.low_confidence ? " (low confidence)" : "");
    if (d.low_confidence) img.classList.add("low");
    $("seen-images").append(img);
  });
  if (result.digits) drawBoxes(result.digits);
}

function drawChart(probabilities) {
  const top = probabilities.indexOf(Math.max(...probabilities));
  const chart = $("chart");
  chart.replaceChildren();
  chart.setAttribute("aria-label", "probabilities: " +
    probabilities.map((p, d) => `${d}: ${(100 * p).toFixed(1)}%`).join(", "));
  probabilities.forEach((p, d) => {
    const bar = document.createElement("div");
    bar.className = "bar" + (d === top ? " top" : "");
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.height = `${Math.max(1, 100 * p)}%`;
    const label = document.createElement("span");
    label.textContent = d;
    bar.append(fill, label);
    chart.append(bar);
  });
}

function drawBoxes(digits) {
  const img = $("preview");
  const canvas = $("boxes");
  const draw = () => {
    canvas.width = img.clientWidth;
    canvas.height = img.clientHeight;
    const sx = img.clientWidth / img.naturalWidth;
    const sy = img.clientHeight / img.naturalHeight;
    const c = canvas.getContext("2d");
    c.clearRect(0, 0, canvas.width, canvas.height);
    c.lineWidth = 2;
    c.strokeStyle = "#e8590c";
    c.fillStyle = "#e8590c";
    c.font = "bold 16px system-ui";
    digits.forEach((d) => {
      const [x0, y0, x1, y1] = d.box;
      c.setLineDash(d.low_confidence ? [6, 4] : []);  // Dashed: low confidence.
      c.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
      c.fillText(String(d.digit), x0 * sx + 2, Math.max(14, y0 * sy - 2));
    });
  };
  if (img.complete && img.naturalWidth) draw(); else img.onload = draw;
}

$("predict").addEventListener("click", predict);
$("clear").addEventListener("click", () => {
  state.files = [];
  $("image-input").value = "";
  clearPad();
  clearResult();
  showError("");
});

// --- Speech: the browser's own synthesis (its voices work offline). ---
const WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

function spoken(results) {
  const say = (r) => (r.error ? sentence(r.error)
    : [...reading(r)].map((c) => WORDS[Number(c)]).join(" ") + (r.low_confidence ? ", low confidence" : ""));
  return results.length === 1 ? say(results[0])
    : results.map((r, i) => `image ${i + 1}: ${say(r)}`).join(". ");
}

function speak(text) {
  if (!("speechSynthesis" in window)) return;
  speechSynthesis.cancel();
  speechSynthesis.speak(new SpeechSynthesisUtterance(text));
}

$("read-aloud").addEventListener("click", () => state.last && speak(spoken(state.last)));

// --- History: every reading, kept in this browser. ---
async function thumbnail(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = 96 / Math.max(bitmap.width, bitmap.height, 1);
    const canvas = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * scale)),
                                       Math.max(1, Math.round(bitmap.height * scale)));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return await canvas.convertToBlob({ type: "image/png" });
  } catch (err) {
    return null;  // Not an image the browser can show: kept without a picture.
  }
}

async function keep(results, uploads, readMode) {
  for (const [i, r] of results.entries()) {
    const entry = {
      time: new Date().toISOString(), file: uploads[i].name, mode: readMode,
      result: r.error ? `error: ${r.error}` : reading(r),
      confidence: r.error ? null : confidenceOf(r), low_confidence: r.error ? null : Boolean(r.low_confidence),
      where: WHERE[r.where] || "", thumbnail: await thumbnail(uploads[i]),
    };
    try {
      entry.id = await history.add(entry);
    } catch (err) {
      $("history-status").textContent = "This browser did not keep the reading (private mode?).";
      return;
    }
    showHistoryEntry(entry);
  }
}

function showHistoryEntry(entry) {
  const li = document.createElement("li");
  if (entry.thumbnail) {
    const img = document.createElement("img");
    img.src = URL.createObjectURL(entry.thumbnail);
    img.alt = "";
    li.append(img);
  }
  const text = document.createElement("div");
  const value = document.createElement("div");
  value.className = "reading";
  value.textContent = entry.result;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = [entry.file, entry.confidence === null ? null : `${(100 * entry.confidence).toFixed(1)}%` +
    (entry.low_confidence ? " (low confidence)" : ""), entry.where,
  new Date(entry.time).toLocaleString()].filter(Boolean).join(" · ");
  text.append(value, meta);
  li.append(text);
  $("history").prepend(li);
}

async function loadHistory() {
  try {
    (await history.all()).forEach(showHistoryEntry);
  } catch (err) {
    $("history-status").textContent = "This browser does not keep readings (private mode?).";
  }
}

$("export-csv").addEventListener("click", async () => {
  const csv = history.toCsv(await history.all());
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  link.download = `hdr-jax-readings-${new Date().toISOString().slice(0, 10)}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});

$("clear-history").addEventListener("click", async () => {
  await history.clear();
  $("history").querySelectorAll("img").forEach((img) => URL.revokeObjectURL(img.src));
  $("history").replaceChildren();
  $("history-status").textContent = "History cleared.";
});

// --- Start-up. ---
async function loadAbout() {
  const describe = (facts, where) => {
    const acc = facts.test_accuracy ? `${(100 * facts.test_accuracy).toFixed(2)}%` : "unknown";
    return `Model: ${facts.model}. Measured test accuracy on the 10,000 MNIST test digits: ` +
      `${acc} (checkpoint step ${facts.step}). ${where}`;
  };
  try {
    const response = await fetchWithTimeout(API.url);
    $("about-facts").textContent = describe(await response.json(), "");
  } catch (err) {
    try {
      const facts = await (await fetch("model/model.json")).json();
      $("about-facts").textContent = describe(facts, "The prediction service is not reachable " +
        `right now; this page reads on this device (${facts.runtime}).`);
    } catch (missing) {
      $("about-facts").textContent = "The prediction service is not reachable right now.";
    }
  }
}

function refusedNotice() {
  return `This link asked the page to send your images to ${API.refused}, ` +
    `which this page does not trust; it uses ${API.url} instead.`;
}

for (const [id, key] of [["on-device", "hdr-on-device"], ["speak-results", "hdr-speak"]]) {
  $(id).checked = localStorage.getItem(key) === "1";
  $(id).addEventListener("change", () => localStorage.setItem(key, $(id).checked ? "1" : "0"));
}
$("on-device").addEventListener("change", () => { if ($("on-device").checked) loadDeviceReader().catch(() => {}); });
if (API.refused) showNotice(refusedNotice());
if ("serviceWorker" in navigator) navigator.serviceWorker.register("sw.js").catch(() => {});
redraw();
loadAbout();
loadHistory();
