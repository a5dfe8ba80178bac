"""Deterministic float64 reductions: span sums in a fixed order, row moments, extents, dots.

Every span sum here and in :mod:`._kernels.lattice` has the order of :mod:`._kernels`:
element ``i`` of the first ``n − n mod LANES`` goes to lane ``i mod LANES`` (lanes summed in
element order), the lanes are combined by the fixed halving tree :func:`_fold`, then the
remaining tail elements are added to it one by one. No ``fastmath``: the order is the code's.
"""

import numpy as np
from numba import njit, prange

from . import CHUNK, LANES


@njit(cache=True, nogil=True)
def _fold(acc):
    """Combine the ``LANES`` lanes by the fixed halving tree: lane j += lane j + h for
    h = LANES/2, …, 1; lane 0 then holds the sum. ``acc`` is overwritten."""
    h = acc.shape[0] // 2
    while h > 0:
        for j in range(h):
            acc[j] += acc[j + h]
        h //= 2
    return acc[0]


@njit(cache=True, nogil=True)
def _span_sum(x):
    """Σ x in float64 over a 1-D span in the order of :mod:`._kernels` (twin:
    ``naive.lane_sum``). The inner loop is an element-wise map over the lanes, so LLVM
    vectorizes it without reassociating anything."""
    n = x.shape[0]
    nb = n - n % LANES
    acc = np.zeros(LANES)
    for i in range(0, nb, LANES):
        for j in range(acc.shape[0]):
            acc[j] += np.float64(x[i + j])
    a = _fold(acc)
    for i in range(nb, n):
        a += np.float64(x[i])
    return a


@njit(cache=True, nogil=True)
def _span_sq_dev(x, m):
    """Σ (x − m)² in float64 over a 1-D span, in the order of :func:`_span_sum`."""
    n = x.shape[0]
    nb = n - n % LANES
    acc = np.zeros(LANES)
    for i in range(0, nb, LANES):
        for j in range(acc.shape[0]):
            d = np.float64(x[i + j]) - m
            acc[j] += d * d
    a = _fold(acc)
    for i in range(nb, n):
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


@njit(cache=True, nogil=True, parallel=True)
def abs_extent(x):
    """``(min nonzero |x|, max |x|, count of NaN/Inf)`` of a flat array (min and max are exact
    and order-free; an all-zero ``x`` gives ``(inf, 0, 0)``). Twin: ``naive.abs_extent``."""
    n = x.shape[0]
    nch = (n + CHUNK - 1) // CHUNK
    part = np.empty((nch, 3))
    for t in prange(nch):
        lo = t * CHUNK
        mn = np.inf
        mx = 0.0
        bad = 0.0
        for i in range(lo, min(n, lo + CHUNK)):
            a = abs(np.float64(x[i]))
            if not np.isfinite(a):
                bad += 1.0
            else:
                mx = max(mx, a)
                if a > 0.0:
                    mn = min(mn, a)
        part[t, 0] = mn
        part[t, 1] = mx
        part[t, 2] = bad
    mn = np.inf
    mx = 0.0
    bad = 0.0
    for t in range(nch):
        mn = min(mn, part[t, 0])
        mx = max(mx, part[t, 1])
        bad += part[t, 2]
    return mn, mx, bad


@njit(cache=True, nogil=True)
def _span_pair(x, y, b):
    """Σx², Σxy, Σy², Σ(x − b·y)² over 1-D spans, each in the order of :func:`_span_sum`."""
    n = x.shape[0]
    nb = n - n % LANES
    acc = np.zeros((4, LANES))
    for i in range(0, nb, LANES):
        for j in range(LANES):
            u = np.float64(x[i + j])
            v = np.float64(y[i + j])
            d = u - b * v
            acc[0, j] += u * u
            acc[1, j] += u * v
            acc[2, j] += v * v
            acc[3, j] += d * d
    out = np.empty(4)
    for k in range(4):
        out[k] = _fold(acc[k])
    for i in range(nb, n):
        u = np.float64(x[i])
        v = np.float64(y[i])
        d = u - b * v
        out[0] += u * u
        out[1] += u * v
        out[2] += v * v
        out[3] += d * d
    return out


@njit(cache=True, nogil=True, parallel=True)
def pair_sums(x, y, b):
    """``[Σx², Σxy, Σy², Σ(x − b·y)²]`` of flat float arrays, chunked and in a fixed order.

    Twin: ``naive.pair_sums``.
    """
    n = x.shape[0]
    nch = (n + CHUNK - 1) // CHUNK
    part = np.empty((nch, 4))
    for t in prange(nch):
        lo = t * CHUNK
        hi = min(n, lo + CHUNK)
        part[t] = _span_pair(x[lo:hi], y[lo:hi], b)
    out = np.zeros(4)
    for t in range(nch):
        for k in range(4):
            out[k] += part[t, k]
    return out
