"""Lattice codes, the fused quantize pass and dequantization (docs/theory.md §2, §3).

Conventions pinned here (and in ``naive``): the scaled weight is ``q = w / s``, the float64
true division (the kernels multiply by ``1/s`` where that provably gives the same codes, see
``_codes_by_reciprocal``; the result never depends on it); midrise ``c = clip(floor(q), -M, M-1)``;
midtread ``c = sign(q)·min(floor(|q| + ½), M-1)`` (ties away from zero), ``M = 2**(k-1)``.
A step of exactly 0 (a constant or all-zero vector under the σ-based rule) maps positive
weights to the top code, negative ones to the bottom code and zeros to code 0.
"""

import numpy as np
from numba import njit

from . import CHUNK, LANES, f64, helper, run_tasks
from .reduce import _fold


@helper
def _code(q, half, midtread):
    """The code of one scaled weight q = w/s (branch-free selects, so loops vectorize)."""
    if midtread:
        m = min(np.floor(abs(q) + 0.5), half - 1.0)
        return -m if q < 0.0 else m
    return min(max(np.floor(q), -half), half - 1.0)


#: ``w·(1/s)·(1 ± WIDEN)`` bracket ``w/s``: the roundings of 1/s and of ``(1/s)(1 ± WIDEN)``
#: add up to < 2**-52 relative, well inside 2**-48.
WIDEN = 2.0 ** -48


@helper
def _codes_by_reciprocal(x, r, half, midtread, out):
    """Codes from products with ``r = 1/s`` (multiplies vectorize, divisions barely do).

    The exact products ``w·r(1 ∓ WIDEN)`` bracket the exact ``w/s``; rounding to nearest is
    monotone (into the subnormals and to ±inf too), so ``fl(w·lo) ≤ fl(w/s) ≤ fl(w·hi)``
    (reversed for w < 0), and the code is monotone in q: where both products give the same
    code it is the code of ``fl(w/s)``. Needs normal ``lo`` and ``hi`` (the caller's step
    range). Returns how many elements were not settled (their code here may be wrong).
    """
    lo = r * (1.0 - WIDEN)
    hi = r * (1.0 + WIDEN)
    unsettled = 0
    for i in range(x.shape[0]):
        w = np.float64(x[i])
        c = _code(w * hi, half, midtread)
        unsettled += c != _code(w * lo, half, midtread)
        out[i] = c
    return unsettled


@helper
def _codes_span(x, s, half, midtread, out):
    """Codes of the 1-D span ``x`` into ``out`` (spans index from 0: plain vector loads).

    Exactly the codes of the true quotient ``w/s``: ``_codes_by_reciprocal`` settles almost
    every element; a span holding one it cannot settle (within ~2**-48 relative of a code
    boundary: rare, except for weights on exact multiples of s) is redone by division.
    Steps outside (1e-300, 1e300) always divide (1/s would lose precision).
    """
    n = x.shape[0]
    if s > 0.0:
        if 1e-300 < s < 1e300 and _codes_by_reciprocal(x, 1.0 / s, half, midtread, out) == 0:
            return
        for i in range(n):
            out[i] = _code(np.float64(x[i]) / s, half, midtread)
    else:
        for i in range(n):
            w = np.float64(x[i])
            q = 0.0 if w == 0.0 else (np.inf if w > 0.0 else -np.inf)
            out[i] = _code(q, half, midtread)


@helper
def _paper_codes_span(x, s, half, out):
    """Released Keras expression: rint(clip(w/s − ½, −M, M−1)) (rint = half to even)."""
    for i in range(x.shape[0]):
        out[i] = np.rint(min(max(np.float64(x[i]) / s - 0.5, -half), half - 1.0))


@helper
def _span_sums(x, codes, s, off):
    """Σc, Σc² (integer-valued: int64, exact) and Σw·v, Σr², Σr·v in float64; r = w − s·v.

    The float sums are in the order of ``reduce._span_sum`` (``LANES`` lanes, the halving tree
    ``reduce._fold``, then the tail): the order of :mod:`._kernels`, whatever the CPU.
    """
    n = x.shape[0]
    nb = n - n % LANES
    acc = np.zeros(3 * LANES)  # 1-D: the allocation every span sum compiles already
    ci = 0
    cc = 0
    for i in range(n):
        c = np.int64(codes[i])
        ci += c
        cc += c * c
    for i in range(0, nb, LANES):
        for j in range(LANES):
            v = np.float64(codes[i + j]) + off
            w = np.float64(x[i + j])
            r = w - s * v
            acc[j] += w * v
            acc[LANES + j] += r * r
            acc[2 * LANES + j] += r * v
    wv = _fold(acc[:LANES])
    rr = _fold(acc[LANES:2 * LANES])
    rv = _fold(acc[2 * LANES:])
    for i in range(nb, n):
        v = np.float64(codes[i]) + off
        w = np.float64(x[i])
        r = w - s * v
        wv += w * v
        rr += r * r
        rv += r * v
    return np.float64(ci), np.float64(cc), wv, rr, rv


@njit(cache=True, nogil=True)
def _codes_rows(x, steps, half, midtread, out, t0, t1):
    """Tasks ``t0 ≤ t < t1`` of :func:`codes_rows` (task t: chunk ``t % nch`` of row
    ``t // nch``)."""
    n = x.shape[1]
    nch = (n + CHUNK - 1) // CHUNK
    for t in range(t0, t1):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        _codes_span(x[r, lo:hi], steps[r], half, midtread, out[r, lo:hi])


def codes_rows(x, steps, bits, midtread, out):
    """Codes of each row ``x[r]`` for its step ``steps[r]`` into ``out`` (same shape)."""
    rows, n = x.shape
    ntasks = rows * ((n + CHUNK - 1) // CHUNK)
    run_tasks(_codes_rows, ntasks, x.size,
              (x, f64(steps), 2.0 ** (bits - 1), bool(midtread), out))


@njit(cache=True, nogil=True)
def _codes_elementwise(x, steps, half, midtread, out, t0, t1):
    """Chunks ``t0 ≤ t < t1`` of :func:`codes_elementwise`."""
    n = x.shape[0]
    for t in range(t0, t1):
        lo = t * CHUNK
        for i in range(lo, min(n, lo + CHUNK)):
            _codes_span(x[i:i + 1], steps[i], half, midtread, out[i:i + 1])


def codes_elementwise(x, steps, bits, midtread, out):
    """Codes of a flat ``x`` with one step per element (a broadcast step array)."""
    ntasks = (x.shape[0] + CHUNK - 1) // CHUNK
    run_tasks(_codes_elementwise, ntasks, x.size,
              (x, f64(steps), 2.0 ** (bits - 1), bool(midtread), out))


@helper
def _merge_chunk_sums(part, nch, n, off, out):
    """Each row's chunk sums ``part`` (Σc, Σc², Σwv, Σr², Σrv per chunk) added in chunk order
    into ``out`` (rows, 4): Σwv, Σv², Σr², Σrv, with Σv² from the integer sums and the offset
    ``off`` of the levels (½ midrise, 0 midtread)."""
    for r in range(out.shape[0]):
        ci = 0.0
        cc = 0.0
        for k in range(4):
            out[r, k] = 0.0
        for c in range(nch):
            ci += part[r * nch + c, 0]
            cc += part[r * nch + c, 1]
            out[r, 0] += part[r * nch + c, 2]
            out[r, 2] += part[r * nch + c, 3]
            out[r, 3] += part[r * nch + c, 4]
        out[r, 1] = cc + 2.0 * off * ci + off * off * n


@njit(cache=True, nogil=True)
def _codes_and_sums(x, steps, half, midtread, paper, codes, part, t0, t1, out):
    """Tasks ``t0 ≤ t < t1`` of :func:`codes_and_sums` into ``codes`` and ``part``; then,
    when ``out`` has rows, the chunks of each row summed in order into ``out``."""
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    off = 0.0 if midtread else 0.5
    for t in range(t0, t1):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        xs = x[r, lo:hi]
        cs = codes[r, lo:hi]
        if paper:
            _paper_codes_span(xs, steps[r], half, cs)
        else:
            _codes_span(xs, steps[r], half, midtread, cs)
        part[t, 0], part[t, 1], part[t, 2], part[t, 3], part[t, 4] = _span_sums(
            xs, cs, steps[r], off)
    _merge_chunk_sums(part, nch, n, off, out)


def codes_and_sums(x, steps, bits, midtread, paper, codes):
    """Fused pass: write the codes of each row and return its sums (rows, 4).

    Columns: Σ w·v, Σ v², Σ (w − s·v)², Σ (w − s·v)·v with v the level (code + ½ midrise,
    code midtread) and s the row's step. Σv² comes exactly from the integer sums Σc and Σc².
    ``paper`` selects the released Keras expression (midrise only; ``steps`` then already
    holds σλ + 1e-7). Twin: ``naive.codes_and_sums``.
    """
    rows, n = x.shape
    ntasks = rows * ((n + CHUNK - 1) // CHUNK)
    return run_tasks(_codes_and_sums, ntasks, x.size,
                     (x, f64(steps), 2.0 ** (bits - 1), bool(midtread), bool(paper), codes,
                      np.empty((ntasks, 5))), np.empty((rows, 4)))


@njit(cache=True, nogil=True)
def _level_sums(x, codes, steps, off, part, t0, t1, out):
    """Tasks ``t0 ≤ t < t1`` of :func:`level_sums` into ``part``; then, when ``out`` has rows,
    the chunks of each row summed in order into ``out`` (as :func:`_codes_and_sums`)."""
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    for t in range(t0, t1):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        part[t, 0], part[t, 1], part[t, 2], part[t, 3], part[t, 4] = _span_sums(
            x[r, lo:hi], codes[r, lo:hi], steps[r], off)
    _merge_chunk_sums(part, nch, n, off, out)


def level_sums(x, codes, steps, midtread):
    """The sums of :func:`codes_and_sums` for given ``codes`` and reference steps ``steps``
    (rows, 4), without computing codes: Σ w·v, Σ v², Σ (w − s·v)², Σ (w − s·v)·v.

    ``quantize`` calls it again with ``s = α*`` for the rare rows whose loss would cancel at
    the step that made the codes. Twin: ``naive.level_sums``.
    """
    rows, n = x.shape
    ntasks = rows * ((n + CHUNK - 1) // CHUNK)
    return run_tasks(_level_sums, ntasks, x.size,
                     (x, codes, f64(steps), 0.0 if midtread else 0.5, np.empty((ntasks, 5))),
                     np.empty((rows, 4)))


@njit(cache=True, nogil=True)
def _scale_levels(codes, alpha, off, out, t0, t1):
    """Tasks ``t0 ≤ t < t1`` of :func:`scale_levels`."""
    n = codes.shape[1]
    nch = (n + CHUNK - 1) // CHUNK
    for t in range(t0, t1):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        a = alpha[r]
        cs = codes[r, lo:hi]
        os_ = out[r, lo:hi]
        for i in range(hi - lo):
            os_[i] = a * (np.float64(cs[i]) + off)


def scale_levels(codes, alpha, off, out):
    """out[r, i] = alpha[r] · (codes[r, i] + off), computed in float64, stored in out's dtype."""
    rows, n = codes.shape
    ntasks = rows * ((n + CHUNK - 1) // CHUNK)
    run_tasks(_scale_levels, ntasks, codes.size, (codes, f64(alpha), float(off), out))
