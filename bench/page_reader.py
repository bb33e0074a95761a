"""The page's own reader (web/reader/: the preprocessing port and onnxruntime-web) driven from
Python in headless Chromium, to compare it with hdr_jax's on the same upload bytes.

  with PageReader() as reader:
      answers = reader.read([raw, ...], mode="digit")

Each answer is the page's JSON for that upload (as the API's) plus `images`: the 28x28 inputs
the model saw, as float arrays, and `ms`: the time the browser took for it. `web/` must hold
the model and the runtime (`python -m hdr_jax.webpage`).
"""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]

# Runs in the page: reads one upload, keeps the 28x28 inputs of the digits it chose.
_READ = """async ([b64, mode]) => {
  const { DeviceReader } = await import('/reader/reader.js');
  window.hdrReader = window.hdrReader || await DeviceReader.load();
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const start = performance.now();
  const answer = await window.hdrReader.read(new Blob([bytes]), mode, { keepImages: true });
  answer.ms = performance.now() - start;
  return answer;
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class PageReader:
    """A static server for web/ and a headless Chromium page on it."""

    def __init__(self, web: Path = ROOT / "web"):
        self.web = web

    def __enter__(self) -> PageReader:
        from playwright.sync_api import sync_playwright

        from hdr_jax.webpage import register_mime_types

        register_mime_types()
        handler = functools.partial(_Quiet, directory=str(self.web))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM,
                                                         headless=True, args=CHROMIUM_ARGS)
        self.page = self._browser.new_page()
        self.page.goto(f"http://127.0.0.1:{self._server.server_port}/reader/blank.html")
        return self

    def __exit__(self, *exc) -> None:
        self._browser.close()
        self._playwright.stop()
        self._server.shutdown()

    def read(self, uploads: list[bytes], mode: str = "digit") -> list[dict]:
        answers = []
        for raw in uploads:
            answer = self.page.evaluate(_READ, [base64.b64encode(raw).decode(), mode])
            answer["images"] = [np.asarray(d.pop("image"), np.float32).reshape(28, 28)
                                for d in answer.get("digits", [answer]) if "image" in d]
            answers.append(answer)
        return answers


def realistic_corpus(test, n_per_style: int, n_numbers: int, seed: int = 14,
                     digits: range = range(5000, 10000)) -> list[tuple[bytes, str, str, str]]:
    """(upload, mode, truth, family): bench/uploads.py's realistic digit uploads (every style)
    and written numbers of 2-6 digits, of MNIST test digits in `digits`."""
    from bench.uploads import STYLES, digit_upload, number_upload

    rng = np.random.default_rng(seed)
    corpus = []
    for style in STYLES:
        for i in rng.integers(digits.start, digits.stop, n_per_style):
            corpus.append((digit_upload(test.images[i], style, rng), "digit",
                           str(test.labels[i]), style))
    for _ in range(n_numbers):
        idx = rng.integers(digits.start, digits.stop, int(rng.integers(2, 7)))
        corpus.append((number_upload([test.images[i] for i in idx], rng), "number",
                       "".join(str(test.labels[i]) for i in idx), "numbers"))
    return corpus


def answer_text(answer) -> str | None:
    """What an answer reads, from either runtime: the digits, or None for an error."""
    if isinstance(answer, dict):
        return None if "error" in answer else str(answer.get("number", answer.get("digit")))
    if hasattr(answer, "number"):
        return answer.number
    return str(answer.digit) if hasattr(answer, "digit") else None


def server_images(answer) -> list[np.ndarray]:
    if hasattr(answer, "digits"):
        return [d.image for d in answer.digits]
    return [answer.image] if hasattr(answer, "image") else []


def compare(corpus, recognizer, reader: PageReader) -> dict[str, dict]:
    """Each family's figures for both runtimes on the same uploads: `server` and `page`
    (exactly right), `same` (the same answer, errors included), `pixels` (each 28x28 input of
    uploads read with as many digits by both: its largest difference), `ms` (the page's time
    per upload)."""
    families: dict[str, dict] = {}
    for raw, mode, truth, family in corpus:
        (server,) = recognizer.read([raw], mode)
        (page,) = reader.read([raw], mode)
        f = families.setdefault(family, {"n": 0, "server": 0, "page": 0, "same": 0,
                                         "pixels": [], "ms": []})
        ours, theirs = answer_text(server), answer_text(page)
        f["n"] += 1
        f["server"] += ours == truth
        f["page"] += theirs == truth
        f["same"] += ours == theirs
        f["ms"].append(page["ms"])
        images = server_images(server)
        if images and len(images) == len(page["images"]):
            f["pixels"] += [float(np.abs(a - b).max()) for a, b in zip(images, page["images"],
                                                                      strict=True)]
    return families
