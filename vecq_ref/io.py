"""Files: .npy/.npz (never unpickled) and atomic writes that refuse to overwrite.

``np.load`` is always called with ``allow_pickle=False``; every file is written to a
temporary name in the target folder and renamed into place, so a reader never sees half a
file, and an existing file is only replaced with ``force=True``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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


def load_array(path, name="input"):
    """Load one array from .npy (or the only array of an .npz), never unpickling."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`{name}` file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"`{name}` file {path} is not a plain .npy/.npz array "
                         f"(object arrays are refused): {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"`{name}` file {path} is not a readable .npy/.npz file: {exc}") from exc
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = list(data.keys())
            if len(keys) != 1:
                raise ValueError(f"`{name}` file {path} holds {len(keys)} arrays; expected one")
            return data[keys[0]]
    return data


def load_npz(path, name="input"):
    """Load every array of an .npz into a dict, never unpickling."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`{name}` file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.keys()}
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"`{name}` file {path} is not a readable .npz file: {exc}") from exc
