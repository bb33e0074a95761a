"""Assembles a folder that Google Cloud Functions (gen2) deploys as it is:

  python -m hdr_jax.deploy --out build/function [--checkpoint checkpoints/alexnet-mnist]
  gcloud functions deploy hdr-jax --gen2 --runtime=python311 --source=build/function ...

main.py, the hdr_jax package (serving needs only part of it, but one copy keeps one truth),
the inference checkpoint as checkpoint/, and requirements.txt (CPU JAX)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from hdr_jax.checkpoint import CheckpointError, load_inference

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".hdr-jax-deploy"  # Written into every folder `build` makes; nothing else is replaced.


class DeployError(Exception):
    """A folder this command will not write into; one line for the command line."""


def build(out: Path, checkpoint: Path) -> Path:
    load_inference(checkpoint)  # Refuse to ship a missing or damaged checkpoint.
    if out.exists():
        if not (out / MARKER).is_file():
            raise DeployError(f"{out} exists and was not made by this command (no {MARKER}); "
                              "choose another --out or remove it yourself")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by python -m hdr_jax.deploy; replaced on the next build\n")
    shutil.copy(ROOT / "function" / "main.py", out / "main.py")
    shutil.copy(ROOT / "function" / "requirements.txt", out / "requirements.txt")
    shutil.copytree(ROOT / "hdr_jax", out / "hdr_jax",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The browser's copy of the model stays behind: the function serves the orbax one.
    shutil.copytree(checkpoint, out / "checkpoint", ignore=shutil.ignore_patterns("model.onnx"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "build" / "function"))
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "alexnet-mnist"))
    args = parser.parse_args(argv)
    try:
        out = build(Path(args.out), Path(args.checkpoint))
    except (CheckpointError, DeployError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"deployable function in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
