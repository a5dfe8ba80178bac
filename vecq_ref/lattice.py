"""Lattices (code sets) of docs/theory.md §2: midrise (the paper's) and midtread.

========  ===============================  ========  =====================
lattice   integer codes c                  level v   k = 2
========  ===============================  ========  =====================
midrise   −2^(k−1) … 2^(k−1) − 1           c + ½     ±½, ±3/2
midtread  −(2^(k−1) − 1) … 2^(k−1) − 1     c         −1, 0, +1 (ternary)
========  ===============================  ========  =====================

Rounding conventions (pinned): ``q = w / s`` by true division in float64; midrise
``c = clip(floor(q))`` (so ``w = j·s`` exactly gets code ``j``, a zero weight gets ``c = 0``,
``v = +½``); midtread rounds ``|q|`` half away from zero.
"""

from __future__ import annotations

import numpy as np

from . import _layout
from . import _validation as V
from ._kernels import lattice as K


def code_dtype(bits):
    """int8 for k ≤ 8, int16 above."""
    return np.dtype(np.int8) if bits <= 8 else np.dtype(np.int16)


def code_range(bits, lattice="midrise"):
    """``(cmin, cmax)`` of the lattice at ``bits``.

    >>> code_range(2), code_range(2, "midtread")
    ((-2, 1), (-1, 1))
    """
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    half = 2 ** (bits - 1)
    return (-half if lattice == "midrise" else -(half - 1)), half - 1


def level_offset(lattice):
    return 0.5 if lattice == "midrise" else 0.0


def lattice_levels(bits, lattice="midrise"):
    """All levels of the lattice, ascending (float64).

    >>> lattice_levels(2).tolist()
    [-1.5, -0.5, 0.5, 1.5]
    """
    lo, hi = code_range(bits, lattice)
    return np.arange(lo, hi + 1, dtype=np.float64) + level_offset(lattice)


def codes(w, step, bits, lattice="midrise", *, axis=None, group_size=None):
    """Integer codes of ``w`` for the threshold spacing ``step`` (docs/theory.md §2).

    Parameters
    ----------
    w : array_like
        Weights (float16/32/64 or integer; ``__array__``/``__dlpack__`` accepted).
    step : float or array_like
        Positive step in weight units: a scalar, one per slice when ``axis``/``group_size`` is
        given, or any array broadcastable to ``w``.
    bits : int
        Bitwidth k in [1, 16] (≥ 2 for midtread).
    lattice : {"midrise", "midtread"}
    axis, group_size : int, optional
        Interpret ``step`` per slice along ``axis`` or per contiguous group of the last axis.

    Returns
    -------
    ndarray of int8 (k ≤ 8) or int16, shape of ``w``.

    Examples
    --------
    >>> codes([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0], 0.5, 2).tolist()
    [-2, -1, 0, 0, 1, 1]
    >>> codes([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0], 0.5, 2, "midtread").tolist()
    [-1, 0, 0, 1, 1, 1]
    """
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    arr, _ = V.weights(w, "w")
    lay = _layout.layout(arr.shape, axis, group_size)
    mid = lattice == "midtread"
    out_dtype = code_dtype(bits)
    if lay.per_tensor and np.ndim(step) > 0:
        st = _layout.positive_steps(step)
        try:
            flat = np.broadcast_to(st, arr.shape).ravel()
        except ValueError:
            V.fail("step", f"a scalar or an array broadcastable to {arr.shape}",
                   f"shape {np.shape(step)}")
        flat = np.ascontiguousarray(flat)
        out = np.empty(arr.size, dtype=out_dtype)
        K.codes_elementwise(np.ascontiguousarray(arr).ravel(), flat, bits, mid, out)
        return out.reshape(arr.shape)
    rows = lay.to_rows(arr)
    steps = _layout.row_steps(step, lay, rows.shape[0])
    out = np.empty(rows.shape, dtype=out_dtype)
    K.codes_rows(rows, steps, bits, mid, out)
    return lay.from_rows(out)


def levels(codes, lattice="midrise"):
    """Float levels ``v`` of integer codes: ``c + ½`` (midrise) or ``c`` (midtread).

    >>> levels([-2, 0, 1]).tolist()
    [-1.5, 0.5, 1.5]
    """
    lattice = V.lattice(lattice)
    c = V.as_array(codes, "codes")
    if c.dtype.kind not in "iu":
        V.fail("codes", "an integer array", f"dtype {c.dtype}", TypeError)
    return c.astype(np.float64) + level_offset(lattice)


__all__ = ["codes", "levels", "code_range", "lattice_levels", "code_dtype"]
