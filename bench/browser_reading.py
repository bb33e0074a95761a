"""Both runtimes on the same uploads: the server's reader (hdr_jax, JAX) and the page's
(web/reader/ in this machine's headless Chromium, onnxruntime-web): how often each is
exactly right, how often they give the same answer, how close the 28x28 inputs are, the
page's time per upload and per digit, and what the page's first load weighs.

  python bench/browser_reading.py --data-dir DIR [--per-style 200] [--numbers 200]
      [--report-set tests/data/hard_numbers] [--framed 40]

Uploads: bench/uploads.py's realistic digits (every style) and gentle numbers of MNIST test
digits 5000-9999 (seed 14), the hard numbers report set, and bench/hard_uploads.py's framed
families (report seed 1). The last line is JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import header  # noqa: E402
from bench.hard_numbers import read_report_set  # noqa: E402
from bench.hard_uploads import FRAMES, framed_upload  # noqa: E402
from bench.page_reader import PageReader, compare, realistic_corpus  # noqa: E402
from hdr_jax import data, webpage  # noqa: E402
from hdr_jax.inference import Predictor  # noqa: E402
from hdr_jax.lifecycle import checkpoint_path  # noqa: E402
from hdr_jax.recognition import Recognizer  # noqa: E402

TOLERANCE = 0.01  # Largest difference of any pixel of a 28x28 input counted as "the same".
# What a first visit loads: the page, then (the service worker) the reader, model and runtime.
PAGE_FILES = ("index.html", "app.js", "history.js", "style.css", "config.js", "sw.js",
              "manifest.webmanifest", "icon.svg", "reader/reader.js", "reader/preprocess.js",
              "reader/frames.js", "reader/ndimage.js", "model/model.json", "model/model.onnx")


def first_load(web: Path) -> dict[str, dict[str, int]]:
    facts = json.loads((web / "model" / "model.json").read_text())
    groups = {"page (HTML, JS, CSS)": [f for f in PAGE_FILES if not f.startswith("model/")],
              "model": [f for f in PAGE_FILES if f.startswith("model/")],
              "runtime": facts["runtime_files"]}
    out = {}
    for name, files in groups.items():
        raw = [(web / f).read_bytes() for f in files]
        out[name] = {"bytes": sum(map(len, raw)),
                     "gzip": sum(len(gzip.compress(b, 9)) for b in raw)}
    return out


def model_ms_per_digit(reader: PageReader, repeats: int = 200) -> float:
    return reader.page.evaluate("""async (repeats) => {
        const image = { h: 28, w: 28, data: new Float32Array(784).fill(0.1) };
        for (let i = 0; i < 10; i++) await window.hdrReader.predict([image]);
        const start = performance.now();
        for (let i = 0; i < repeats; i++) await window.hdrReader.predict([image]);
        return (performance.now() - start) / repeats;
    }""", repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--per-style", type=int, default=200)
    p.add_argument("--numbers", type=int, default=200)
    p.add_argument("--report-set", default="tests/data/hard_numbers")
    p.add_argument("--framed", type=int, default=40, help="uploads per framed family")
    args = p.parse_args()
    header("the server's reader and the page's, on the same uploads")
    webpage.build(checkpoint_path())
    test = data.load_mnist(args.data_dir).test
    corpus = realistic_corpus(test, args.per_style, args.numbers)
    corpus += [(raw, "number", truth, "hard numbers (report)")
               for raw, truth in read_report_set(Path(args.report_set))]
    rng = np.random.default_rng(1)
    for kind in FRAMES:
        for i in rng.integers(5000, 10000, args.framed):
            corpus.append((framed_upload(test.images[i], kind, rng), "digit", str(test.labels[i]),
                           f"framed: {kind}"))
    recognizer = Recognizer(Predictor.from_checkpoint(checkpoint_path()))
    with PageReader() as reader:
        families = compare(corpus, recognizer, reader)
        per_digit = model_ms_per_digit(reader)
    print(f"{'uploads':<24}{'n':>6}{'server':>9}{'page':>9}{'same':>9}"
          f"{'inputs<=' + str(TOLERANCE):>13}{'page ms p50':>13}")
    summary = {}
    for family, f in families.items():
        pixels = np.asarray(f["pixels"])
        row = {"n": f["n"], "server": f["server"] / f["n"], "page": f["page"] / f["n"],
               "same": f["same"] / f["n"],
               "inputs_within": float(np.mean(pixels <= TOLERANCE)) if pixels.size else None,
               "page_ms_p50": float(np.median(f["ms"]))}
        summary[family] = row
        within = f"{row['inputs_within']:.2%}" if pixels.size else "-"
        print(f"{family:<24}{f['n']:>6}{row['server']:>9.2%}{row['page']:>9.2%}"
              f"{row['same']:>9.2%}{within:>13}{row['page_ms_p50']:>13.1f}")
    load = first_load(webpage.WEB)
    print(f"\nmodel alone in the page, batch 1: {per_digit:.2f} ms per digit")
    for name, size in load.items():
        print(f"first load, {name}: {size['bytes'] / 2**20:.2f} MiB "
              f"({size['gzip'] / 2**20:.2f} MiB gzipped)")
    print(json.dumps({"families": summary, "model_ms_per_digit": per_digit, "first_load": load}))


if __name__ == "__main__":
    main()
