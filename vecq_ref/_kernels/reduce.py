"""Deterministic float64 row reductions (moments, dot products)."""

import numpy as np
from numba import njit, prange

from . import CHUNK


@njit(cache=True, nogil=True)
def _span_moments(row, lo, hi, shift):
    """Σ(x−K), Σ(x−K)², Σx² over row[lo:hi] in float64 with 4 interleaved lanes."""
    a0 = a1 = a2 = a3 = 0.0
    b0 = b1 = b2 = b3 = 0.0
    c0 = c1 = c2 = c3 = 0.0
    i = lo
    while i + 4 <= hi:
        x0 = np.float64(row[i])
        x1 = np.float64(row[i + 1])
        x2 = np.float64(row[i + 2])
        x3 = np.float64(row[i + 3])
        d0 = x0 - shift
        d1 = x1 - shift
        d2 = x2 - shift
        d3 = x3 - shift
        a0 += d0
        a1 += d1
        a2 += d2
        a3 += d3
        b0 += d0 * d0
        b1 += d1 * d1
        b2 += d2 * d2
        b3 += d3 * d3
        c0 += x0 * x0
        c1 += x1 * x1
        c2 += x2 * x2
        c3 += x3 * x3
        i += 4
    while i < hi:
        x0 = np.float64(row[i])
        d0 = x0 - shift
        a0 += d0
        b0 += d0 * d0
        c0 += x0 * x0
        i += 1
    return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3), (c0 + c1) + (c2 + c3)


@njit(cache=True, nogil=True, parallel=True)
def row_moments(x):
    """Per row of ``x`` (rows, n): [mean, population variance, Σx²] as float64 (rows, 3).

    Shifted sums (shift = the row's first element) keep the variance accurate when
    |mean| ≫ σ and make a constant row's variance exactly 0. Twin: ``naive.row_moments``.
    """
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    part = np.zeros((rows * nch, 3))
    for t in prange(rows * nch):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        s1, s2, s3 = _span_moments(x[r], lo, hi, np.float64(x[r, 0]))
        part[t, 0] = s1
        part[t, 1] = s2
        part[t, 2] = s3
    out = np.empty((rows, 3))
    for r in range(rows):
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for c in range(nch):
            s1 += part[r * nch + c, 0]
            s2 += part[r * nch + c, 1]
            s3 += part[r * nch + c, 2]
        dm = s1 / n
        var = s2 / n - dm * dm
        out[r, 0] = np.float64(x[r, 0]) + dm
        out[r, 1] = var if var > 0.0 else 0.0
        out[r, 2] = s3
    return out
