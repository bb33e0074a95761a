"""What the page needs to read digits without the API: the model and a pinned runtime.

`web/` is static and has no build step of its own; this puts beside it

- `web/model/`: the checkpoint's browser model (`model.onnx`, see `browser.py`) and
  `model.json` (its name, step, test accuracy and low-confidence threshold: what the page
  shows and uses when the API cannot be reached);
- `web/vendor/onnxruntime-web-VERSION/`: onnxruntime-web's WebAssembly build, a pinned release taken
  from npm's registry and checked against its published SHA-512 before anything is written
  (nothing is fetched from a CDN when the page runs).

  python -m hdr_jax.webpage --checkpoint checkpoints/alexnet-mnist

`serve.py` runs it at start. Both folders are generated (git-ignored); copy `web/` whole to a
static host after running it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from hdr_jax.browser import BROWSER_MODEL

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
RUNTIME = "onnxruntime-web"
RUNTIME_VERSION = "1.30.0"
# npm's `dist.integrity` for that release (`npm view onnxruntime-web@1.30.0 dist.integrity`).
RUNTIME_INTEGRITY = ("sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7Qm"
                     "RMDs1SigqR4CXAfKYQ==")
# The WebAssembly-only build (no WebGPU/WebGL): the smallest that runs the model everywhere.
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
REGISTRY = "https://registry.npmjs.org"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hdr-jax" / "npm"


# What static servers must answer for the page's files: browsers refuse a module script or
# WebAssembly with another type, and not every system's mime.types lists these.
MIME_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
              ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml"}


def register_mime_types() -> None:
    import mimetypes

    for suffix, mime in MIME_TYPES.items():
        mimetypes.add_type(mime, suffix)


class WebpageError(RuntimeError):
    """The runtime or the model could not be put beside the page (one sentence)."""


def runtime_dir(web: Path = WEB) -> Path:
    """Versioned, so the page's service worker may cache it for good."""
    return web / "vendor" / f"{RUNTIME}-{RUNTIME_VERSION}"


def vendor_runtime(web: Path = WEB, cache: Path = CACHE) -> Path:
    """The pinned onnxruntime-web files in `runtime_dir(web)` (kept if they are already
    there); the npm tarball is cached in `cache`."""
    target = runtime_dir(web)
    stamp = target / "VERSION"
    if stamp.is_file() and stamp.read_text().strip() == RUNTIME_VERSION and all(
            (target / name).is_file() for name in RUNTIME_FILES):
        return target
    tarball = _tarball(cache)
    with tempfile.TemporaryDirectory(dir=web) as tmp, \
            tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        staged = Path(tmp) / RUNTIME
        staged.mkdir()
        # package.json names the licence (MIT); the package ships no separate file.
        for name in (*(f"dist/{f}" for f in RUNTIME_FILES), "package.json"):
            try:
                member = archive.extractfile(f"package/{name}")
            except KeyError:
                member = None
            if member is None:
                raise WebpageError(f"{RUNTIME} {RUNTIME_VERSION} has no {name}")
            (staged / Path(name).name).write_bytes(member.read())
        (staged / "VERSION").write_text(RUNTIME_VERSION + "\n")
        for old in target.parent.glob(f"{RUNTIME}*"):  # Other releases, or a damaged copy.
            shutil.rmtree(old)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(target)
    return target


def _tarball(cache: Path) -> bytes:
    """The release's npm tarball, from the cache or the registry, checked against its
    published integrity either way."""
    path = cache / f"{RUNTIME}-{RUNTIME_VERSION}.tgz"
    data = path.read_bytes() if path.is_file() else None
    if data is None or not _intact(data):
        url = f"{REGISTRY}/{RUNTIME}/-/{RUNTIME}-{RUNTIME_VERSION}.tgz"
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                data = response.read()
        except OSError as e:
            raise WebpageError(f"cannot download {url} ({e})") from None
        if not _intact(data):
            raise WebpageError(f"{url} does not match its published SHA-512; nothing written")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def _intact(data: bytes) -> bool:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() == \
        RUNTIME_INTEGRITY


def install_model(checkpoint: str | Path, web: Path = WEB) -> Path:
    """`web/model/model.onnx` and `model.json` from an inference checkpoint (its browser model
    is written first if it has none)."""
    from hdr_jax.checkpoint import CheckpointError, read_info

    checkpoint = Path(checkpoint)
    try:
        info = read_info(checkpoint)
    except CheckpointError as e:
        raise WebpageError(str(e)) from None
    source = checkpoint / BROWSER_MODEL
    if not source.is_file():
        from hdr_jax.browser import write_browser_model

        try:
            write_browser_model(checkpoint, source)
        except ModuleNotFoundError as e:
            raise WebpageError(f"{e.name} is missing: pip install -e '.[browser]'") from None
    facts = {
        "model": info.get("name", "hdr-jax"), "step": info.get("step"),
        "test_accuracy": info.get("test_accuracy"), "fingerprint": info.get("fingerprint"),
        "low_confidence_below": info.get("calibration", {}).get("low_confidence_below", 0.9),
        "runtime": f"{RUNTIME} {RUNTIME_VERSION}",
        # Paths from web/: where the reader imports the runtime from, what the service worker
        # caches for offline use.
        "runtime_path": runtime_dir(Path()).as_posix() + "/",
        "runtime_files": [(runtime_dir(Path()) / name).as_posix() for name in RUNTIME_FILES],
    }
    target = web / "model"
    target.mkdir(parents=True, exist_ok=True)
    for name, data in ((BROWSER_MODEL, source.read_bytes()),
                       ("model.json", json.dumps(facts, indent=2).encode())):
        tmp = target / (name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target / name)
    return target


def build(checkpoint: str | Path, web: Path = WEB) -> None:
    install_model(checkpoint, web)
    vendor_runtime(web)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "alexnet-mnist"))
    p.add_argument("--web", default=str(WEB), help="the page's folder (default: web/)")
    args = p.parse_args(argv)
    try:
        build(args.checkpoint, Path(args.web))
    except (OSError, ValueError, WebpageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"the page reads on the device: {args.web}/model, {runtime_dir(Path(args.web))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
