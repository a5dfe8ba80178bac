"""The released Keras VecQ expression in float32, row by row (below :mod:`vecq_ref.quantize`,
which builds its ``method="paper", precision="float32"`` result from :func:`paper_float32_rows`;
:mod:`vecq_ref.check.released` is the documented home of these functions)."""

from __future__ import annotations

import numpy as np

from . import tables

EPSILON32 = np.float32(1e-7)  # K.epsilon() as a float32 tensor constant

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


def paper_float32_rows(rows, bits, code_dtype):
    """:func:`keras_row` over the rows of a 2-D array: (codes, values float32, α, step, σ)."""
    rows = np.ascontiguousarray(rows)
    n = rows.shape[0]
    codes = np.empty(rows.shape, dtype=code_dtype)
    values = np.empty(rows.shape, dtype=np.float32)
    alpha = np.empty(n)
    step = np.empty(n)
    sigma = np.empty(n)
    for r in range(n):
        codes[r], step[r], alpha[r], values[r], sigma[r] = keras_row(rows[r], bits)
    return codes, values, alpha, step, sigma


__all__ = ["EPSILON32", "keras_row", "paper_float32_rows"]
