"""Deterministic float64 row reductions (moments)."""

import numpy as np
from numba import njit, prange

from . import CHUNK, REDUCE_MATH


@njit(cache=True, nogil=True, fastmath=REDUCE_MATH)
def _span_sum(x):
    """Σ x in float64 (``x`` a 1-D span: indexing from 0 lets LLVM use plain vector loads)."""
    a = 0.0
    for i in range(x.shape[0]):
        a += np.float64(x[i])
    return a


@njit(cache=True, nogil=True, fastmath=REDUCE_MATH)
def _span_sq_dev(x, m):
    """Σ (x − m)² in float64."""
    a = 0.0
    for i in range(x.shape[0]):
        d = np.float64(x[i]) - m
        a += d * d
    return a


@njit(cache=True, nogil=True, parallel=True)
def row_moments(x):
    """Per row of ``x`` (rows, n): [mean, population variance, Σx²] as float64 (rows, 3).

    Each chunk of ``CHUNK`` elements is read twice while it sits in cache (its mean, then its
    sum of squared deviations), and the chunks are merged in order with Chan's pairwise
    update, so the variance stays accurate when |mean| ≫ σ and a constant row gets exactly 0.
    A non-finite input makes every column non-finite. Twin: ``naive.row_moments``.
    """
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    part = np.empty((rows * nch, 2))
    for t in prange(rows * nch):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        span = x[r, lo:hi]
        m = _span_sum(span) / (hi - lo)
        part[t, 0] = m
        part[t, 1] = _span_sq_dev(span, m)
    out = np.empty((rows, 3))
    for r in range(rows):
        count = 0.0
        mean = 0.0
        m2 = 0.0
        for c in range(nch):
            nb = np.float64(min(n, (c + 1) * CHUNK) - c * CHUNK)
            tot = count + nb
            delta = part[r * nch + c, 0] - mean
            mean += delta * (nb / tot)
            m2 += part[r * nch + c, 1] + delta * delta * (count * nb / tot)
            count = tot
        out[r, 0] = mean
        out[r, 1] = m2 / n
        out[r, 2] = m2 + n * mean * mean
    return out
