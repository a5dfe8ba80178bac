"""The authors' released Keras VecQ expression evaluated in float32, as Keras runs it.

``vecq/quantize_methods/VecQ.py`` (GongCheng1919/VecQ) computes, in the tensor's dtype
(float32 in practice; docs/theory.md §7.1)::

    std   = K.std(w)                                  # population, not mean-centred w
    fixed = w / (std·λ + K.epsilon()) − 0.5           # λ the 4-decimal table, ε = 1e-7
    fixed = K.round(K.clip(fixed, −2^(k−1), 2^(k−1) − 1)) + 0.5     # half to even
    α     = K.sum(w·fixed) / (K.sum(fixed·fixed) + K.epsilon())
    out   = fixed·α

:func:`paper_float32` evaluates the same operations in the same order on float32 arrays with
NumPy (``quantize(w, bits, method="paper", precision="float32")``). Every elementwise step is
IEEE float32 and matches TF bit for bit; the three reductions (the mean and variance inside
``K.std`` and the two sums) are NumPy's pairwise float32 sums, whose order differs from TF's
reduction tree, so σ and α can differ from a TF run in the last bits, and a code flips only
where ``w/s − ½`` lands within that difference of a rounding threshold.
"""

from __future__ import annotations

import numpy as np

from .. import tables
from ..loss import VectorLoss, vector_loss

EPSILON32 = np.float32(1e-7)  # K.epsilon() as a float32 tensor constant
_LOSS_FIELDS = ("orientation", "modulus", "dql", "relative_dql", "excess")


def keras_row(x, bits):
    """One float32 row → (codes int, step, α, values, σ), float32 as Keras computes them."""
    x = np.asarray(x, dtype=np.float32)
    lam = np.float32(tables.paper_lambda(bits))
    m = x.mean(dtype=np.float32)
    d = x - m
    std = np.sqrt((d * d).mean(dtype=np.float32))
    step = std * lam + EPSILON32
    fixed = x / step - np.float32(0.5)
    half = 2 ** (bits - 1)
    fixed = np.rint(np.clip(fixed, np.float32(-half), np.float32(half - 1))) + np.float32(0.5)
    swv = np.sum(x * fixed, dtype=np.float32)
    svv = np.sum(fixed * fixed, dtype=np.float32)
    alpha = swv / (svv + EPSILON32)
    values = fixed * alpha
    codes = (fixed - np.float32(0.5)).astype(np.int64)
    return codes, step, alpha, values, std


def paper_float32(arr, lay, bits):
    """``quantize(..., method="paper", precision="float32")`` on validated input.

    Parameters
    ----------
    arr : ndarray
        The weights (any float dtype; evaluated as float32).
    lay : vecq_ref._layout.Layout
        The granularity.
    bits : int

    Returns
    -------
    Quantized
        ``values`` float32; ``alpha`` and ``step`` the float32 numbers the expression
        computes (as float64); ``loss`` of the float32 values against ``w`` in float64.
    """
    from ..lattice import code_dtype
    from ..quantize import Quantized

    rows = np.ascontiguousarray(lay.to_rows(arr))
    n = rows.shape[0]
    codes = np.empty(rows.shape, dtype=code_dtype(bits))
    values = np.empty(rows.shape, dtype=np.float32)
    alpha = np.empty(n)
    step = np.empty(n)
    sigma = np.empty(n)
    for r in range(n):
        codes[r], step[r], alpha[r], values[r], sigma[r] = keras_row(rows[r], bits)
    rows64 = rows.astype(np.float64)
    whole = vector_loss(rows64, values.astype(np.float64))
    slice_loss = None
    if not lay.per_tensor:
        per = [vector_loss(rows64[r], values[r].astype(np.float64)) for r in range(n)]
        slice_loss = VectorLoss(*(lay.slices(np.array([getattr(p, f) for p in per]))
                                  for f in _LOSS_FIELDS))
    return Quantized(
        codes=lay.from_rows(codes), alpha=lay.slices(alpha), step=lay.slices(step), bits=bits,
        lattice="midrise", method="paper", values=lay.from_rows(values), loss=whole,
        slice_loss=slice_loss, axis=lay.axis, group_size=lay.group_size,
        info={"precision": "float32", "sigma": lay.slices(sigma)})


__all__ = ["keras_row", "paper_float32"]
