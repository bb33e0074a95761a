"""Serving: accuracy on realistic uploads, latency, throughput, cold start and memory of the
function under functions-framework's real server, against the baseline server
(bench/baseline_server.py: resize straight to 28x28, one model call per request), in one run.

  python bench/serving.py --data-dir DIR [--uploads 400] [--numbers 500] [--seconds 20]
                          [--cold-starts 5] [--compare-with DIR]
  python bench/serving.py --data-dir DIR --accuracy-only   # $HDR_CHECKPOINT's model, no servers
  python bench/serving.py --data-dir DIR --accuracy-only --library OLD   # another checkout's

`--compare-with DIR` adds the function of another checkout (e.g. `git worktree add DIR
HEAD~1`) as a third server, measured in the same run: before/after figures of a change.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import use_library_from_argv  # noqa: E402

use_library_from_argv(sys.argv)  # Before anything imports hdr_jax.

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402

from bench.baseline_server import naive_preprocess  # noqa: E402
from bench.common import header  # noqa: E402
from bench.servers import ROOT, free_port, function_command, wait_ready  # noqa: E402
from bench.uploads import STYLES, digit_upload, number_upload, png_bytes  # noqa: E402
from hdr_jax import data  # noqa: E402
from hdr_jax.inference import Predictor  # noqa: E402
from hdr_jax.lifecycle import checkpoint_path  # noqa: E402
from hdr_jax.recognition import Recognizer  # noqa: E402


def accuracy(mnist: data.Mnist, n_per_style: int, n_numbers: int) -> None:
    predictor = Predictor.from_checkpoint(checkpoint_path())
    recognizer = Recognizer(predictor)
    rng = np.random.default_rng(2026)
    print(f"\n## realistic uploads ({n_per_style} per style; numbers: {n_numbers})")
    print(f"  {'style':<12}{'ours':>8}{'baseline':>10}")
    all_ours, all_base = [], []
    for style in STYLES:
        idx = rng.integers(0, len(mnist.test), n_per_style)
        uploads = [digit_upload(mnist.test.images[i], style, rng) for i in idx]
        labels = mnist.test.labels[idx]
        ours = np.array([getattr(r, "digit", -1) for r in recognizer.read(uploads)])
        base = predictor.predict(np.stack([naive_preprocess(u) for u in uploads])
                                 )[:, :data.NUM_CLASSES].argmax(-1)  # The most likely digit.
        all_ours += list(ours == labels)
        all_base += list(base == labels)
        print(f"  {style:<12}{np.mean(ours == labels):8.2%}{np.mean(base == labels):10.2%}")
    print(f"  {'all digits':<12}{np.mean(all_ours):8.2%}{np.mean(all_base):10.2%}")
    exact = 0
    for _ in range(n_numbers):
        idx = rng.integers(0, len(mnist.test), int(rng.integers(2, 7)))
        raw = number_upload([mnist.test.images[i] for i in idx], rng)
        (answer,) = recognizer.read([raw], mode="number")
        exact += getattr(answer, "number", None) == "".join(str(mnist.test.labels[i])
                                                              for i in idx)
    print(f"  {'numbers 2-6':<12}{exact / n_numbers:8.2%}  (exactly right)")


def _png(img: np.ndarray) -> bytes:
    return png_bytes(img)


def _phone_jpeg(img: np.ndarray) -> bytes:
    rng = np.random.default_rng(0)
    upload = digit_upload(img, "photo", rng)  # A photo, re-rendered at 1632x1224 (2 MP).
    photo = Image.open(io.BytesIO(upload)).convert("RGB").resize((1632, 1224))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def cold_start(command: list[str], port: int, png: bytes,
               env: dict | None = None) -> tuple[float, psutil.Popen]:
    """Seconds from starting the server process to its first answered prediction."""
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    proc = psutil.Popen(command, cwd=ROOT, stdout=-3, stderr=-3,
                        env={**os.environ, **(env or {})})
    try:
        wait_ready(url, proc)
        r = requests.post(url, data=png, headers={"Content-Type": "image/png"}, timeout=60)
        assert r.status_code == 200, r.text
    except BaseException:
        proc.terminate()
        raise
    return time.perf_counter() - start, proc


def cold_starts(command_for_port, png: bytes, n: int, env: dict | None = None) -> list[float]:
    times = []
    for _ in range(n):
        port = free_port()
        seconds, proc = cold_start(command_for_port(port), port, png, env)
        proc.terminate()
        proc.wait(timeout=30)
        times.append(seconds)
    return times


def measure_server(name: str, command_for_port, mnist: data.Mnist, seconds: float,
                   cold_repeats: int, env: dict | None = None) -> dict:
    png = _png(mnist.test.images[0])
    jpeg = _phone_jpeg(mnist.test.images[0])
    colds = cold_starts(command_for_port, png, cold_repeats - 1, env)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cold, proc = cold_start(command_for_port(port), port, png, env)
    colds.append(cold)
    # Latency and throughput are of the steady state: after the first answer the larger batch
    # shapes still compile in the background for about a second.
    time.sleep(3)
    try:

        def latency(body, n):
            session = requests.Session()
            times = []
            for _ in range(n):
                t = time.perf_counter()
                r = session.post(url, data=body, headers={"Content-Type": "image/png"},
                                 timeout=60)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            return statistics.median(times) * 1000, float(np.percentile(times, 95)) * 1000

        png_p50, png_p95 = latency(png, 300)
        jpg_p50, jpg_p95 = latency(jpeg, 40)
        peak = [0]

        def rss():
            # PSS: pages shared by gunicorn's master and worker count once, not twice.
            procs = [proc, *proc.children(recursive=True)]
            return sum(p.memory_full_info().pss for p in procs if p.is_running())

        counts, errors = [0] * 8, [0] * 8
        until = time.perf_counter() + seconds

        def client(i):
            session = requests.Session()
            while time.perf_counter() < until:
                r = session.post(url, data=png, headers={"Content-Type": "image/png"},
                                 timeout=60)
                counts[i] += r.status_code == 200
                errors[i] += r.status_code != 200

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], rss())
            time.sleep(0.2)
        return {"name": name, "cold_s": statistics.median(colds), "cold_range": (min(colds),
                max(colds)), "png_p50": png_p50, "png_p95": png_p95,
                "jpg_p50": jpg_p50, "jpg_p95": jpg_p95, "rps": sum(counts) / seconds,
                "errors": sum(errors), "peak_mib": peak[0] / 2**20}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--uploads", type=int, default=400)
    p.add_argument("--numbers", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--accuracy-only", action="store_true",
                   help="the realistic uploads' accuracy ($HDR_CHECKPOINT's model), no servers")
    p.add_argument("--cold-starts", type=int, default=5,
                   help="start each server this many times; cold start is the median")
    p.add_argument("--compare-with", help="another checkout whose function to measure too")
    p.add_argument("--library", help="with --accuracy-only: read with the pipeline of this "
                                     "checkout instead (before/after figures of a change)")
    args = p.parse_args()
    from hdr_jax import preprocess

    header(f"serving, hdr_jax from {Path(preprocess.__file__).parents[1]}")
    mnist = data.load_idx_dir(args.data_dir)
    if not args.skip_accuracy:
        accuracy(mnist, args.uploads, args.numbers)
    if args.accuracy_only:
        return
    rows = [
        measure_server("hdr-jax function (functions-framework)", function_command, mnist,
                       args.seconds, args.cold_starts),
        measure_server("baseline (resize, 1 call/request)",
                       lambda port: [sys.executable, str(ROOT / "bench" / "baseline_server.py"),
                                     "--port", str(port)], mnist, args.seconds, args.cold_starts),
    ]
    if args.compare_with:
        other = Path(args.compare_with).resolve()
        rows.insert(1, measure_server(
            f"hdr-jax function at {other.name}",
            lambda port: function_command(port, other / "function" / "main.py"), mnist,
            args.seconds, args.cold_starts, env={"PYTHONPATH": str(other)}))
    print(f"\n## HTTP over loopback (concurrency 8 for {args.seconds:.0f} s)")
    print(f"  {'server':<42}{'cold s':>8}{'png p50':>9}{'p95':>7}{'2MP jpg p50':>13}{'p95':>7}"
          f"{'req/s':>8}{'errors':>8}{'peak PSS MiB':>14}")
    for r in rows:
        print(f"  {r['name']:<42}{r['cold_s']:8.2f}{r['png_p50']:9.1f}{r['png_p95']:7.1f}"
              f"{r['jpg_p50']:13.1f}{r['jpg_p95']:7.1f}{r['rps']:8.0f}{r['errors']:8d}"
              f"{r['peak_mib']:14.0f}")
    print(f"  ratio req/s ours/baseline: {rows[0]['rps'] / rows[-1]['rps']:.2f}x")
    if args.compare_with:
        print(f"  ratio this checkout / {rows[1]['name']}: req/s "
              f"{rows[0]['rps'] / rows[1]['rps']:.2f}x, png p50 "
              f"{rows[0]['png_p50'] / rows[1]['png_p50']:.2f}x, 2MP jpg p50 "
              f"{rows[0]['jpg_p50'] / rows[1]['jpg_p50']:.2f}x")
    for r in rows:
        lo, hi = r["cold_range"]
        print(f"  cold start of {r['name']}: median {r['cold_s']:.2f} s of {args.cold_starts} "
              f"starts (range {lo:.2f}-{hi:.2f} s)")


if __name__ == "__main__":
    main()
