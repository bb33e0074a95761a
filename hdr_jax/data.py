"""MNIST from a folder of IDX files or from TFDS, validated, as uint8 arrays.

MNIST is 55 MB: the training loop keeps it on the devices and shuffles there (see `train.py`),
so this module only has to load it once, correctly, and say clearly what is wrong when it can't.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hdr_jax.config import TrainConfig

DATA_DIR_ENV = "HDR_DATA_DIR"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
NUM_CLASSES = 10
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(Exception):
    """A dataset that is missing or malformed; the message is one line naming the culprit."""


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [n, 28, 28], white ink on black.
    labels: np.ndarray  # int32 [n]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclasses.dataclass(frozen=True)
class Mnist:
    train: Split
    test: Split
    source: str  # Where it came from, for reports.

    def checksum(self) -> str:
        """SHA-256 over all images and labels: names the exact data a model was trained on."""
        h = hashlib.sha256()
        for split in (self.train, self.test):
            h.update(np.ascontiguousarray(split.images).tobytes())
            h.update(np.ascontiguousarray(split.labels).astype("<i4").tobytes())
        return h.hexdigest()


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The explicit folder, else $HDR_DATA_DIR, else None (meaning TFDS)."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    return Path(chosen) if chosen else None


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Reads one IDX file (gzipped or not), checking magic number, dimensions and length."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        # zlib.error: a damaged gzip stream (a flipped byte fails its CRC or its inflation).
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: bad magic number {magic}, expected {expected_magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: header truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: {len(raw) - header} data bytes, header shape {shape} needs "
                        f"{expected} (truncated or garbled)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(data_dir: Path, stem: str) -> Path:
    # Accept the classic names and the common `train-images.idx3-ubyte` spelling, .gz or not.
    variants = [stem, stem.replace("-idx", ".idx")]
    for name in variants:
        for candidate in (data_dir / name, data_dir / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{data_dir}: missing {stem}[.gz]")


def load_idx_dir(data_dir: str | os.PathLike) -> Mnist:
    """MNIST from the four classic IDX files in `data_dir`."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a directory")
    arrays = {}
    for key, stem in _FILES.items():
        magic = IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC
        path = _find(data_dir, stem)
        arr = read_idx(path, magic)
        if key.endswith("images") and arr.ndim != 3:
            raise DataError(f"{path}: images must be 3-D, got shape {arr.shape}")
        if key.endswith("images") and arr.shape[1:] != (28, 28):
            raise DataError(f"{path}: images must be 28x28, got {arr.shape[1]}x{arr.shape[2]}")
        if key.endswith("labels"):
            if arr.ndim != 1:
                raise DataError(f"{path}: labels must be 1-D, got shape {arr.shape}")
            if arr.size and arr.max() >= NUM_CLASSES:
                raise DataError(f"{path}: label {int(arr.max())} is not a digit")
        arrays[key] = arr
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(f"{data_dir}: {split} has {n_img} images but {n_lab} labels")
    return Mnist(
        train=Split(arrays["train_images"], arrays["train_labels"].astype(np.int32)),
        test=Split(arrays["test_images"], arrays["test_labels"].astype(np.int32)),
        source=str(data_dir),
    )


def load_tfds(tfds_data_dir: str | None = None) -> Mnist:
    """MNIST through `tfds.data_source` (no TensorFlow needed once the dataset is prepared)."""
    import tensorflow_datasets as tfds

    splits = {}
    for split in ("train", "test"):
        try:
            source = tfds.data_source("mnist", split=split, data_dir=tfds_data_dir,
                                      download=False)
            examples = _read_all(source)
        except Exception as e:  # TFDS raises many types; all mean "not prepared here".
            raise DataError(
                f"TFDS 'mnist' ({split}) is not available: {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}. Prepare it once with TensorFlow "
                "(pip install 'hdr-jax[tfds-prepare]' && tfds build mnist) or pass --data-dir "
                "with the four IDX files."
            ) from None
        images = np.stack([np.asarray(ex["image"]).reshape(28, 28) for ex in examples])
        labels = np.asarray([int(ex["label"]) for ex in examples], dtype=np.int32)
        splits[split] = Split(images.astype(np.uint8), labels)
    return Mnist(train=splits["train"], test=splits["test"], source="tfds:mnist")


def _read_all(source) -> list:
    try:  # Batched random access on prepared array_record data.
        return list(source.__getitems__(list(range(len(source)))))
    except TypeError:  # Sources without the batched call (e.g. TFDS's mock data).
        return [source[i] for i in range(len(source))]


def load_mnist(data_dir: str | os.PathLike | None = None) -> Mnist:
    """IDX files from `data_dir` (or $HDR_DATA_DIR) when given, else TFDS `mnist`."""
    resolved = resolve_data_dir(data_dir)
    return load_idx_dir(resolved) if resolved is not None else load_tfds()


def holdout(train: Split, size: int, seed: int) -> tuple[Split, Split]:
    """Splits `size` random training images off as a validation set (fixed by `seed`)."""
    if size <= 0:
        return train, Split(train.images[:0], train.labels[:0])
    if size >= len(train):
        raise DataError(f"validation size {size} leaves no training images")
    order = np.random.default_rng(seed).permutation(len(train))
    return train.take(np.sort(order[size:])), train.take(np.sort(order[:size]))


def write_idx_dir(folder: str | os.PathLike, mnist: Mnist) -> Path:
    """Writes `mnist` as the four classic gzipped IDX files (what `load_idx_dir` reads)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def idx(magic: int, array: np.ndarray) -> bytes:
        dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()

    arrays = {"train_images": (IMAGES_MAGIC, mnist.train.images),
              "train_labels": (LABELS_MAGIC, mnist.train.labels),
              "test_images": (IMAGES_MAGIC, mnist.test.images),
              "test_labels": (LABELS_MAGIC, mnist.test.labels)}
    for key, (magic, array) in arrays.items():
        (folder / f"{_FILES[key]}.gz").write_bytes(gzip.compress(idx(magic, array), mtime=0))
    return folder


def training_splits(dataset: Mnist, config: TrainConfig) -> tuple[Split, Split]:
    """The (training, validation) images a run with `config` uses; export and the benchmarks
    re-derive them from the same config."""
    train_split, val_split = holdout(dataset.train, config.validation_size, config.seed)
    if config.train_limit:
        train_split = train_split.take(slice(0, config.train_limit))
    if config.line_spans or config.photo_spans:
        from hdr_jax import spans  # Deferred: spans needs preprocess (Pillow, SciPy).

        if config.line_spans:
            train_split = spans.with_line_spans(train_split, config.line_spans, config.seed,
                                                 config.span_parts)
        if config.photo_spans:
            train_split = spans.with_line_spans(train_split, config.photo_spans, config.seed,
                                                 photographed=True)
    return train_split, val_split
