"""Lattice codes, the fused quantize pass and dequantization (VECQ.md §2, §3).

Conventions pinned here (and in ``naive``): the scaled weight is ``q = w / s`` computed in
float64 by a true division (never ``w * (1/s)``); midrise ``c = clip(floor(q), -M, M-1)``;
midtread ``c = sign(q)·min(floor(|q| + ½), M-1)`` (ties away from zero), ``M = 2**(k-1)``.
A step of exactly 0 (a constant or all-zero vector under the σ-based rule) maps positive
weights to the top code, negative ones to the bottom code and zeros to code 0.
"""

import numpy as np
from numba import njit, prange

from . import CHUNK


@njit(cache=True, nogil=True)
def _code(q, half, midtread):
    if midtread:
        m = np.floor(abs(q) + 0.5)
        if m > half - 1.0:
            m = half - 1.0
        return -m if q < 0.0 else m
    c = np.floor(q)
    if c < -half:
        c = -half
    elif c > half - 1.0:
        c = half - 1.0
    return c


@njit(cache=True, nogil=True)
def _codes_span(row, s, half, midtread, out, lo, hi):
    if s > 0.0:
        for i in range(lo, hi):
            out[i] = _code(np.float64(row[i]) / s, half, midtread)
    else:
        for i in range(lo, hi):
            w = np.float64(row[i])
            q = 0.0 if w == 0.0 else (np.inf if w > 0.0 else -np.inf)
            out[i] = _code(q, half, midtread)


@njit(cache=True, nogil=True)
def _paper_codes_span(row, s, half, out, lo, hi):
    """Released Keras expression: rint(clip(w/s − ½, −M, M−1)) (rint = half to even)."""
    for i in range(lo, hi):
        q = np.float64(row[i]) / s - 0.5
        if q < -half:
            q = -half
        elif q > half - 1.0:
            q = half - 1.0
        out[i] = np.rint(q)


@njit(cache=True, nogil=True)
def _span_sums(row, codes, lo, hi, s, off):
    """Σ w·v, Σ v², Σ (w − s·v)², Σ (w − s·v)·v over [lo, hi), v = code + off (2 lanes)."""
    a0 = a1 = b0 = b1 = c0 = c1 = d0 = d1 = 0.0
    i = lo
    while i + 2 <= hi:
        w0 = np.float64(row[i])
        w1 = np.float64(row[i + 1])
        v0 = np.float64(codes[i]) + off
        v1 = np.float64(codes[i + 1]) + off
        r0 = w0 - s * v0
        r1 = w1 - s * v1
        a0 += w0 * v0
        a1 += w1 * v1
        b0 += v0 * v0
        b1 += v1 * v1
        c0 += r0 * r0
        c1 += r1 * r1
        d0 += r0 * v0
        d1 += r1 * v1
        i += 2
    if i < hi:
        w0 = np.float64(row[i])
        v0 = np.float64(codes[i]) + off
        r0 = w0 - s * v0
        a0 += w0 * v0
        b0 += v0 * v0
        c0 += r0 * r0
        d0 += r0 * v0
    return a0 + a1, b0 + b1, c0 + c1, d0 + d1


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


@njit(cache=True, nogil=True)
def _combine(part, rows, nch):
    out = np.zeros((rows, part.shape[1]))
    for r in range(rows):
        for c in range(nch):
            for j in range(part.shape[1]):
                out[r, j] += part[r * nch + c, j]
    return out


@njit(cache=True, nogil=True, parallel=True)
def codes_and_sums(x, steps, bits, midtread, paper, codes):
    """Fused pass: write the codes of each row and return its sums (rows, 4).

    Columns: Σ w·v, Σ v², Σ (w − s·v)², Σ (w − s·v)·v with v the level (code + ½ midrise,
    code midtread) and s the row's step. ``paper`` selects the released Keras expression
    (midrise only; ``steps`` then already holds σλ + 1e-7). Twin: ``naive.codes_and_sums``.
    """
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    half = 2.0 ** (bits - 1)
    off = 0.0 if midtread else 0.5
    part = np.empty((rows * nch, 4))
    for t in prange(rows * nch):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        if paper:
            _paper_codes_span(x[r], steps[r], half, codes[r], lo, hi)
        else:
            _codes_span(x[r], steps[r], half, midtread, codes[r], lo, hi)
        a, b, c, d = _span_sums(x[r], codes[r], lo, hi, steps[r], off)
        part[t, 0] = a
        part[t, 1] = b
        part[t, 2] = c
        part[t, 3] = d
    return _combine(part, rows, nch)


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
