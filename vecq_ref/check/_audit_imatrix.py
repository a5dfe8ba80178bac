"""Importance matrices for the audit: llama.cpp's imatrix files and ``.npz`` vectors.

Returns ``{tensor name: per-column importance (float64, shape (cols,))}``, the mean of the
squared activations of each input column, as ``llama-quantize`` passes it to the quantizers
(docs/theory.md §3.1):

- **GGUF** (``general.type = "imatrix"``, llama.cpp ``tools/imatrix/imatrix.cpp``
  ``save_imatrix``): tensors ``<name>.in_sum2`` (Σx² per column, one row per expert) and
  ``<name>.counts``; importance ``in_sum2 / counts`` (the first matrix for 2-D weights).
- **legacy .dat** (``save_imatrix_legacy``): int32 entry count; per entry int32 name length,
  the name, int32 ``ncall``, int32 ``nval``, ``nval`` float32 values (mean × ncall); then the
  chunk count and the dataset name. Importance ``values / ncall``.
- **.npz**: one array per tensor name (either file's naming), shape (cols,).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .. import _validation as V


def _bad(path, why):
    V.fail("imatrix", "a llama.cpp imatrix (GGUF or .dat) or an .npz of per-column vectors",
           f"{path}: {why}")


def _gguf(path):
    import gguf

    r = gguf.GGUFReader(path, "r")
    sums, counts = {}, {}
    for t in r.tensors:
        data = np.asarray(t.data, dtype=np.float64)
        if t.name.endswith(".in_sum2"):
            sums[t.name[:-len(".in_sum2")]] = data.reshape(-1, int(t.shape[0]))
        elif t.name.endswith(".counts"):
            counts[t.name[:-len(".counts")]] = data.ravel()
    if not sums:
        _bad(path, "a GGUF file without <tensor>.in_sum2 entries")
    out = {}
    for name, s in sums.items():
        if name not in counts:
            _bad(path, f"{name}.in_sum2 without {name}.counts")
        c = counts[name][0]
        out[name] = s[0] / c if c > 0 else np.ones(s.shape[1])
    return out


def _dat(path):
    raw = Path(path).read_bytes()
    out, pos = {}, 0

    def take(fmt):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(raw):
            _bad(path, f"truncated at byte {pos}")
        vals = struct.unpack_from(fmt, raw, pos)
        pos += size
        return vals

    (n,) = take("<i")
    if n < 1:
        _bad(path, f"{n} entries")
    for _ in range(n):
        (length,) = take("<i")
        if length < 0:
            _bad(path, f"a name length of {length} at byte {pos - 4}")
        name = take(f"<{length}s")[0].decode("utf-8", "replace")
        ncall, nval = take("<ii")
        if nval < 1:
            _bad(path, f"entry {name!r} has {nval} values")
        vals = np.array(take(f"<{nval}f"), dtype=np.float64)
        out[name] = vals / ncall if ncall > 0 else vals
    return out


def read_imatrix(path):
    """``{name: importance per column}`` from ``path`` (module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`imatrix` file {p} does not exist")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        return _gguf(p)
    if p.suffix.lower() == ".npz":
        from .. import io

        return {k: np.asarray(v, dtype=np.float64).ravel() for k, v in io.load_npz(p).items()}
    return _dat(p)
