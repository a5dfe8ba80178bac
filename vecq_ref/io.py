"""Files: .npy/.npz (never unpickled) and atomic writes that refuse to overwrite.

``np.load`` is always called with ``allow_pickle=False``; every file is written to a
temporary name in the target folder and renamed into place, so a reader never sees half a
file, and an existing file is only replaced with ``force=True``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


def _check_target(path, force):
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_path(path, force=False):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds."""
    path = _check_target(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text, force=False):
    """Atomically write ``text`` (UTF-8)."""
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_npz(path, arrays, force=False):
    """Atomically write a dict of arrays as an uncompressed .npz."""
    with atomic_path(path, force) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


_BAD_FILE = (ValueError, OSError, EOFError, zipfile.BadZipFile)


def _read(path, name):
    """Every array in a .npy (key None) or .npz file, read with ``allow_pickle=False``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`{name}` file {path} does not exist")
    try:
        with open(path, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if isinstance(data, np.lib.npyio.NpzFile):
                with data:
                    return {k: data[k] for k in data.keys()}
            return {None: data}
    except _BAD_FILE as exc:
        why = ("object arrays are refused" if "allow_pickle" in str(exc)
               else "malformed or truncated")
        raise ValueError(f"`{name}` file {path} is not a readable .npy/.npz file "
                         f"({why}): {exc}") from exc


def load_array(path, name="input"):
    """Load one array from .npy (or the only array of an .npz), never unpickling."""
    arrays = _read(path, name)
    if len(arrays) != 1:
        raise ValueError(f"`{name}` file {path} holds {len(arrays)} arrays; expected one")
    return next(iter(arrays.values()))


def load_npz(path, name="input"):
    """Load every array of an .npz (or the one of a .npy, named ``array``) into a dict."""
    arrays = _read(path, name)
    return {("array" if k is None else k): v for k, v in arrays.items()}
