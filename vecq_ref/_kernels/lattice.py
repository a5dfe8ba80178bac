"""Lattice codes, the fused quantize pass and dequantization (VECQ.md §2, §3).

Conventions pinned here (and in ``naive``): the scaled weight is ``q = w / s`` computed in
float64 by a true division (never ``w * (1/s)``); midrise ``c = clip(floor(q), -M, M-1)``;
midtread ``c = sign(q)·min(floor(|q| + ½), M-1)`` (ties away from zero), ``M = 2**(k-1)``.
A step of exactly 0 (a constant or all-zero vector under the σ-based rule) maps positive
weights to the top code, negative ones to the bottom code and zeros to code 0.
"""

import numpy as np
from numba import njit, prange

from . import CHUNK, REDUCE_MATH


@njit(cache=True, nogil=True)
def _code(q, half, midtread):
    """The code of one scaled weight q = w/s (branch-free selects, so loops vectorize)."""
    if midtread:
        m = min(np.floor(abs(q) + 0.5), half - 1.0)
        return -m if q < 0.0 else m
    return min(max(np.floor(q), -half), half - 1.0)


@njit(cache=True, nogil=True)
def _codes_span(row, s, half, midtread, out, lo, hi):
    if s > 0.0:
        if midtread:
            for i in range(lo, hi):
                out[i] = _code(np.float64(row[i]) / s, half, True)
        else:
            for i in range(lo, hi):
                out[i] = _code(np.float64(row[i]) / s, half, False)
    else:
        for i in range(lo, hi):
            w = np.float64(row[i])
            q = 0.0 if w == 0.0 else (np.inf if w > 0.0 else -np.inf)
            out[i] = _code(q, half, midtread)


@njit(cache=True, nogil=True)
def _paper_codes_span(row, s, half, out, lo, hi):
    """Released Keras expression: rint(clip(w/s − ½, −M, M−1)) (rint = half to even)."""
    for i in range(lo, hi):
        out[i] = np.rint(min(max(np.float64(row[i]) / s - 0.5, -half), half - 1.0))


@njit(cache=True, nogil=True, fastmath=REDUCE_MATH)
def _span_sums(row, codes, lo, hi, s, off):
    """Σc, Σc² (integer-valued, exact) and Σw·v, Σr², Σr·v in float64; r = w − s·v."""
    ci = 0.0
    cc = 0.0
    wv = 0.0
    rr = 0.0
    rv = 0.0
    for i in range(lo, hi):
        c = np.float64(codes[i])
        v = c + off
        w = np.float64(row[i])
        r = w - s * v
        ci += c
        cc += c * c
        wv += w * v
        rr += r * r
        rv += r * v
    return ci, cc, wv, rr, rv


@njit(cache=True, nogil=True, parallel=True)
def codes_rows(x, steps, bits, midtread, out):
    """Codes of each row ``x[r]`` for its step ``steps[r]`` into ``out`` (same shape)."""
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    half = 2.0 ** (bits - 1)
    for t in prange(rows * nch):
        r = t // nch
        lo = (t % nch) * CHUNK
        _codes_span(x[r], steps[r], half, midtread, out[r], lo, min(n, lo + CHUNK))


@njit(cache=True, nogil=True, parallel=True)
def codes_elementwise(x, steps, bits, midtread, out):
    """Codes of a flat ``x`` with one step per element (a broadcast step array)."""
    half = 2.0 ** (bits - 1)
    n = x.shape[0]
    nch = (n + CHUNK - 1) // CHUNK
    for t in prange(nch):
        lo = t * CHUNK
        for i in range(lo, min(n, lo + CHUNK)):
            _codes_span(x, steps[i], half, midtread, out, i, i + 1)


@njit(cache=True, nogil=True, parallel=True)
def codes_and_sums(x, steps, bits, midtread, paper, codes):
    """Fused pass: write the codes of each row and return its sums (rows, 4).

    Columns: Σ w·v, Σ v², Σ (w − s·v)², Σ (w − s·v)·v with v the level (code + ½ midrise,
    code midtread) and s the row's step. Σv² comes exactly from the integer sums Σc and Σc².
    ``paper`` selects the released Keras expression (midrise only; ``steps`` then already
    holds σλ + 1e-7). Twin: ``naive.codes_and_sums``.
    """
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    half = 2.0 ** (bits - 1)
    off = 0.0 if midtread else 0.5
    part = np.empty((rows * nch, 5))
    for t in prange(rows * nch):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        if paper:
            _paper_codes_span(x[r], steps[r], half, codes[r], lo, hi)
        else:
            _codes_span(x[r], steps[r], half, midtread, codes[r], lo, hi)
        part[t, 0], part[t, 1], part[t, 2], part[t, 3], part[t, 4] = _span_sums(
            x[r], codes[r], lo, hi, steps[r], off)
    out = np.zeros((rows, 4))
    for r in range(rows):
        ci = 0.0
        cc = 0.0
        for c in range(nch):
            ci += part[r * nch + c, 0]
            cc += part[r * nch + c, 1]
            out[r, 0] += part[r * nch + c, 2]
            out[r, 2] += part[r * nch + c, 3]
            out[r, 3] += part[r * nch + c, 4]
        out[r, 1] = cc + 2.0 * off * ci + off * off * n
    return out


@njit(cache=True, nogil=True, parallel=True)
def scale_levels(codes, alpha, off, out):
    """out[r, i] = alpha[r] · (codes[r, i] + off), computed in float64, stored in out's dtype."""
    rows, n = codes.shape
    nch = (n + CHUNK - 1) // CHUNK
    for t in prange(rows * nch):
        r = t // nch
        lo = (t % nch) * CHUNK
        a = alpha[r]
        crow = codes[r]
        orow = out[r]
        for i in range(lo, min(n, lo + CHUNK)):
            orow[i] = a * (np.float64(crow[i]) + off)
