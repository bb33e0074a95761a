"""Memory and CPU of the worst uploads the limits allow: 25 MP (the most pixels) RGBA, palette,
16-bit and JPEG images, read in one request by the serving pipeline, in a fresh process.

Peak memory is the kernel's own count (VmHWM, reset once the process is idle) above the idle
process's resident memory; CPU is process time per image.

  python bench/upload_memory.py [--checkpoint checkpoints/alexnet-mnist]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BAR = (2300, 1500, 2700, 3500)  # x0, y0, x1, y1 of the tall bar (a "1") in every image.

_MEASURE = r"""
import json, sys, time
from pathlib import Path
from hdr_jax.inference import Predictor
try:
    from hdr_jax.recognition import Recognizer
    read = lambda r, uploads: [x.box for x in r.read(uploads)]
except ImportError:  # Code from before recognition.py (`--library` an earlier checkout).
    from hdr_jax.serving import Service as Recognizer
    read = lambda r, uploads: [x.get("box") for x in r.predict(uploads).get("results", [])]

def status(field):  # kB -> bytes, from the kernel's own accounting of this process.
    line = next(l for l in Path("/proc/self/status").read_text().splitlines()
                if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024

uploads = [Path(p).read_bytes() for p in sys.argv[2:]]
recognizer = Recognizer(Predictor.from_checkpoint(sys.argv[1]))
read(recognizer, uploads[-1:])  # Warmed up: now idle.
idle = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # Peak RSS (VmHWM) starts again from here.
cpu = time.process_time()
boxes = read(recognizer, uploads)  # One request holding all of them.
print(json.dumps({"peak_above_idle": status("VmHWM") - idle,
                  "cpu_per_image": (time.process_time() - cpu) / len(uploads),
                  "boxes": [list(b) if b else None for b in boxes]}))
"""


def write_worst_uploads(folder: Path) -> list[Path]:
    side = 5000
    ink = np.zeros((side, side), np.uint8)
    x0, y0, x1, y1 = BAR
    ink[y0:y1, x0:x1] = 255
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 3] = ink
    images = {"rgba.png": Image.fromarray(rgba, "RGBA"),
              "palette.png": Image.fromarray(255 - ink, "L").convert("P"),
              "grey16.png": Image.fromarray(65535 - ink.astype(np.uint16) * 257),
              "photo.jpg": Image.fromarray(255 - ink, "L").convert("RGB")}
    for name, image in images.items():
        image.save(folder / name, quality=90)
    return [folder / name for name in images]


def measure(checkpoint: Path, uploads: list[Path], library: Path = ROOT) -> dict:
    """Runs the pipeline (of the checkout `library`) on `uploads` in a fresh process."""
    from bench.common import subprocess_env

    env = subprocess_env(library, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(checkpoint),
                           *map(str, uploads)], cwd=library, env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "alexnet-mnist"))
    p.add_argument("--library", default=str(ROOT),
                   help="the checkout whose pipeline to measure (e.g. a worktree of HEAD~1)")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.common import header

    header(f"worst allowed uploads: 25 MP RGBA, palette, 16-bit, JPEG in one request; "
           f"pipeline of {args.library}")
    with tempfile.TemporaryDirectory() as folder:
        facts = measure(Path(args.checkpoint), write_worst_uploads(Path(folder)),
                        Path(args.library))
    print(f"  peak memory above the idle process: {facts['peak_above_idle'] / 2**20:.0f} MiB")
    print(f"  CPU per image: {facts['cpu_per_image']:.2f} s")
    print(f"  boxes (the bar is at {list(BAR)}): {facts['boxes']}")


if __name__ == "__main__":
    main()
