// hdr-jax upload page: no framework, no build step. Talks to the function's JSON API.
"use strict";

const ACCEPTED = ["png", "jpg", "jpeg", "jfif", "pjp", "pjpeg", "bmp", "gif", "webp"];
const $ = (id) => document.getElementById(id);

const CONFIG = window.HDR_CONFIG || {};
const TIMEOUT_SECONDS = CONFIG.timeoutSeconds || 30;

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
function apiUrl() { return API.url; }

// fetch with the page's time limit: a hung service must not hang the page.
async function fetchWithTimeout(url, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_SECONDS * 1000);
  try {
    return await fetch(url, { ...options, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

const state = { files: [], strokes: [], drawing: null };

function showError(message) { $("error").textContent = message || ""; }

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

// --- Inputs: chooser, camera, drag and drop, paste. ---
$("image-input").addEventListener("change", (e) => setFiles(e.target.files));
$("camera-input").addEventListener("change", (e) => setFiles(e.target.files));
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

// --- Prediction. ---
function mode() { return document.querySelector("input[name=mode]:checked").value; }

async function padBlob() {
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function predict() {
  showError("");
  let uploads = state.files;
  if (!uploads.length && state.strokes.length) {
    uploads = [new File([await padBlob()], "drawing.png", { type: "image/png" })];
  }
  if (!uploads.length) {
    showError("Choose, drop, paste or draw an image first.");
    return;
  }
  const form = new FormData();
  uploads.forEach((f) => form.append("image", f, f.name));
  form.append("mode", mode());
  form.append("include_input", "true");
  $("predict").disabled = true;
  let response, body;
  try {
    response = await fetchWithTimeout(apiUrl(), { method: "POST", body: form });
    body = await response.json().catch(() => ({}));
  } catch (err) {
    showError(err.name === "AbortError"
      ? `The prediction service did not answer within ${TIMEOUT_SECONDS} seconds. ` +
        "Try again, or send fewer or smaller images."
      : "Cannot reach the prediction service. Check your connection and try again.");
    return;
  } finally {
    $("predict").disabled = false;
  }
  if (!response.ok) {
    showError(body.error ? sentence(body.error) : `The service answered ${response.status}.`);
    return;
  }
  render(body, uploads);
}

function sentence(text) {
  const s = String(text);
  return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

function clearResult() {
  $("result").textContent = "";
  $("confidence").textContent = "";
  $("chart").replaceChildren();
  $("seen-images").replaceChildren();
  $("seen").hidden = true;
  $("results-list").replaceChildren();
}

function render(body, uploads) {
  clearResult();
  const results = body.results || [body];
  const first = results[0];
  if (first.error) {
    showError(`${uploads[0].name}: ${sentence(first.error)}`);
  } else {
    showOne(first);
  }
  if (results.length > 1) {
    results.forEach((r, i) => {
      const li = document.createElement("li");
      const name = uploads[i] ? uploads[i].name : `image ${i + 1}`;
      li.textContent = r.error ? `${name}: ${sentence(r.error)}`
        : `${name}: ${r.number !== undefined ? r.number : r.digit}` +
          (r.confidence !== undefined ? ` (${(100 * r.confidence).toFixed(1)}%)` : "") +
          (r.low_confidence ? " - low confidence" : "");
      $("results-list").append(li);
    });
  }
}

function showOne(result) {
  const digits = result.digits || [result];
  $("result").textContent = result.number !== undefined ? result.number : String(result.digit);
  const confidence = Math.min(...digits.map((d) => d.confidence));
  const doubtful = digits.filter((d) => d.low_confidence);
  $("result").classList.toggle("low", doubtful.length > 0);
  $("confidence").textContent = `confidence ${(100 * confidence).toFixed(1)}%` +
    (doubtful.length ? ` (low confidence: check ${doubtful.length > 1 ? "the marked digits"
      : digits.length > 1 ? "the marked digit" : "this reading"})` : "");
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

async function loadAbout() {
  try {
    const facts = await (await fetchWithTimeout(apiUrl())).json();
    const acc = facts.test_accuracy ? `${(100 * facts.test_accuracy).toFixed(2)}%` : "unknown";
    $("about-facts").textContent = `Model: ${facts.model}. Measured test accuracy on the ` +
      `10,000 MNIST test digits: ${acc} (checkpoint step ${facts.step}).`;
  } catch (err) {
    $("about-facts").textContent = "The prediction service is not reachable right now.";
  }
}

if (API.refused) {
  $("notice").textContent = `This link asked the page to send your images to ${API.refused}, ` +
    `which this page does not trust; it uses ${API.url} instead.`;
  $("notice").hidden = false;
}
redraw();
loadAbout();
