import gzip
import hashlib

import numpy as np
import pytest

from hdr_jax import data
from tests.conftest import synthetic_mnist


def _idx(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_dataset(folder, n_train=20, n_test=10, gz=True, overrides=None):
    rng = np.random.default_rng(0)
    contents = {
        "train-images-idx3-ubyte": _idx(2051, rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": _idx(2049, rng.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte": _idx(2051, rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx(2049, rng.integers(0, 10, n_test)),
    }
    contents.update(overrides or {})
    for name, raw in contents.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return contents


@pytest.mark.parametrize("gz", [True, False])
def test_good_idx_files_load_with_shapes_and_values(tmp_path, gz):
    contents = _write_dataset(tmp_path, gz=gz)
    mnist = data.load_idx_dir(tmp_path)
    assert mnist.train.images.shape == (20, 28, 28) and mnist.train.images.dtype == np.uint8
    assert mnist.test.labels.shape == (10,) and mnist.test.labels.dtype == np.int32
    raw = contents["t10k-labels-idx1-ubyte"]
    np.testing.assert_array_equal(mnist.test.labels, np.frombuffer(raw[8:], np.uint8))
    assert len(mnist.checksum()) == 64


def test_env_var_names_the_folder(tmp_path, monkeypatch):
    _write_dataset(tmp_path)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert len(data.load_mnist().train) == 20


@pytest.mark.parametrize("name, raw, message", [
    ("train-images-idx3-ubyte", _idx(2051, np.zeros((20, 28, 28)))[:-5], "truncated"),
    ("train-labels-idx1-ubyte", _idx(2051, np.zeros(20)), "bad magic number 2051"),
    ("t10k-images-idx3-ubyte", b"\x00\x00", "too short"),
    ("t10k-labels-idx1-ubyte", _idx(2049, np.full(10, 12)), "label 12 is not a digit"),
    ("t10k-images-idx3-ubyte", _idx(2051, np.zeros((10, 32, 32))), "must be 28x28"),
    ("t10k-labels-idx1-ubyte", _idx(2049, np.zeros(9)), "10 images but 9 labels"),
])
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, name, raw, message):
    _write_dataset(tmp_path, overrides={name: raw})
    with pytest.raises(data.DataError, match=message) as err:
        data.load_idx_dir(tmp_path)
    assert "\n" not in str(err.value)
    if "labels" not in message:
        assert name in str(err.value)


def test_gzip_with_one_flipped_byte_is_a_one_line_error_naming_the_file(tmp_path):

    mnist = synthetic_mnist(n_train=64, n_test=16)
    folder = data.write_idx_dir(tmp_path, mnist)
    victim = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(victim.read_bytes())
    raw[10] ^= 0xFF  # The deflate stream's first byte: zlib.error ("invalid block type").
    victim.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz: cannot read"):
        data.load_idx_dir(folder)


def test_garbled_gzip_and_missing_files(tmp_path):
    _write_dataset(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz: cannot read"):
        data.load_idx_dir(tmp_path)
    path.unlink()
    with pytest.raises(data.DataError, match="missing train-images-idx3-ubyte"):
        data.load_idx_dir(tmp_path)
    with pytest.raises(data.DataError, match="not a directory"):
        data.load_idx_dir(tmp_path / "nowhere")


def test_holdout_is_seeded_disjoint_and_complete():
    split = data.Split(np.arange(100 * 784, dtype=np.uint8).reshape(100, 28, 28) % 255,
                       np.arange(100, dtype=np.int32) % 10)
    split = data.Split(split.images, np.arange(100, dtype=np.int32))  # labels = identities
    train, val = data.holdout(split, 20, seed=1)
    train2, val2 = data.holdout(split, 20, seed=1)
    assert len(train) == 80 and len(val) == 20
    np.testing.assert_array_equal(val.labels, val2.labels)  # seeded
    assert not set(train.labels) & set(val.labels)  # disjoint
    assert sorted([*train.labels, *val.labels]) == list(range(100))  # complete
    np.testing.assert_array_equal(train.images, split.images[train.labels])  # images follow
    other = data.holdout(split, 20, seed=2)[1]
    assert set(other.labels) != set(val.labels)  # the seed matters
    with pytest.raises(data.DataError):
        data.holdout(split, 100, seed=1)


def test_tfds_path_through_tfds_mocking():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        mnist = data.load_tfds()
    assert mnist.source == "tfds:mnist"
    assert mnist.train.images.shape == (12, 28, 28) and mnist.train.images.dtype == np.uint8
    assert mnist.test.labels.dtype == np.int32 and mnist.test.labels.max() < 10


def test_tfds_unprepared_says_how_to_fix(tmp_path):
    with pytest.raises(data.DataError, match="--data-dir") as err:
        data.load_tfds(str(tmp_path))
    assert "\n" not in str(err.value)


def test_real_mnist_is_byte_exact(real_mnist):
    assert real_mnist.train.images.shape == (60000, 28, 28)
    # The loaded labels, re-serialised as IDX, are byte-identical to the published file.
    raw = _idx(2049, real_mnist.test.labels)
    assert hashlib.md5(raw).hexdigest() == "27ae3e4e09519cfbb04c329615203637"
    assert np.bincount(real_mnist.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892,
                                                            958, 1028, 974, 1009]
