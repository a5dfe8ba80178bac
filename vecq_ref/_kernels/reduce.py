"""Deterministic float64 reductions: span sums in a fixed order, row moments, extents, dots.

Every span sum here and in :mod:`._kernels.lattice` has the order of :mod:`._kernels`:
element ``i`` of the first ``n − n mod LANES`` goes to lane ``i mod LANES`` (lanes summed in
element order), the lanes are combined by the fixed halving tree :func:`_fold`, then the
remaining tail elements are added to it one by one. No ``fastmath``: the order is the code's.

Each public function here is a thin Python driver: its kernel runs a range of tasks (chunks)
into a table of partial results, on one thread or on several (:func:`._kernels.run_tasks`),
then the same kernel merges the table in task order.
"""

import numpy as np
from numba import njit

from . import CHUNK, LANES, helper, run_tasks


@helper
def _fold(acc):
    """Combine the ``LANES`` lanes by the fixed halving tree: lane j += lane j + h for
    h = LANES/2, …, 1; lane 0 then holds the sum. ``acc`` is overwritten."""
    h = acc.shape[0] // 2
    while h > 0:
        for j in range(h):
            acc[j] += acc[j + h]
        h //= 2
    return acc[0]


@helper
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


@helper
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


#: A span whose deviations from its mean are all below ``_NEAR·|mean|`` may be constant up to
#: the mean's rounding (at most ~2^-38 relative over a chunk of 2^14): it is checked.
_NEAR = 2.0 ** -30


@helper
def _span_constant(x):
    """Whether every element of the 1-D span equals the first."""
    first = x[0]
    for i in range(1, x.shape[0]):
        if x[i] != first:
            return False
    return True


@njit(cache=True, nogil=True)
def _row_moments(x, part, t0, t1, out):
    """Tasks ``t0 ≤ t < t1`` of :func:`row_moments` (task t: chunk ``t % nch`` of row
    ``t // nch``) into ``part``; then, when ``out`` has rows, the ordered merge into ``out``."""
    rows, n = x.shape
    nch = (n + CHUNK - 1) // CHUNK
    for t in range(t0, t1):
        r = t // nch
        lo = (t % nch) * CHUNK
        hi = min(n, lo + CHUNK)
        span = x[r, lo:hi]
        m = _span_sum(span) / (hi - lo)
        m2 = _span_sq_dev(span, m)
        # A constant span's rounded mean can miss its value by an ulp, leaving Σ(x − m)² > 0:
        # spans whose spread is that small are checked, and a constant one is exact.
        if m2 <= (hi - lo) * (_NEAR * m) ** 2 and _span_constant(span):
            m = np.float64(span[0])
            m2 = 0.0
        part[t, 0] = m
        part[t, 1] = m2
    for r in range(out.shape[0]):
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


def row_moments(x):
    """Per row of ``x`` (rows, n): [mean, population variance, Σx²] as float64 (rows, 3).

    Each chunk of ``CHUNK`` elements is read twice while it sits in cache (its mean, then its
    sum of squared deviations), and the chunks are merged in order with Chan's pairwise
    update, so the variance stays accurate when |mean| ≫ σ; a constant row gets its value as the
    mean and variance exactly 0 (its rounded mean alone would leave an ulp's residue).
    A non-finite input makes every column non-finite. Twin: ``naive.row_moments``.
    """
    rows, n = x.shape
    ntasks = rows * ((n + CHUNK - 1) // CHUNK)
    part = np.empty((ntasks, 2))
    out = np.empty((rows, 3))
    return run_tasks(_row_moments, ntasks, x.size, (x, part), out)


@njit(cache=True, nogil=True)
def _abs_extent(x, part, t0, t1, out):
    """Tasks (chunks) ``t0 ≤ t < t1`` of :func:`abs_extent` into ``part``; then, when ``out``
    has room, the merge into ``out`` (3,)."""
    n = x.shape[0]
    for t in range(t0, t1):
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
    if out.shape[0] > 0:
        mn = np.inf
        mx = 0.0
        bad = 0.0
        for t in range(part.shape[0]):
            mn = min(mn, part[t, 0])
            mx = max(mx, part[t, 1])
            bad += part[t, 2]
        out[0] = mn
        out[1] = mx
        out[2] = bad


def abs_extent(x):
    """``(min nonzero |x|, max |x|, count of NaN/Inf)`` of a flat array (min and max are exact
    and order-free; an all-zero ``x`` gives ``(inf, 0, 0)``). Twin: ``naive.abs_extent``."""
    ntasks = (x.shape[0] + CHUNK - 1) // CHUNK
    out = run_tasks(_abs_extent, ntasks, x.size, (x, np.empty((ntasks, 3))), np.empty(3))
    return float(out[0]), float(out[1]), float(out[2])


@helper
def _span_pair(x, y, b):
    """Σx², Σxy, Σy², Σ(x − b·y)² over 1-D spans, each in the order of :func:`_span_sum`."""
    n = x.shape[0]
    nb = n - n % LANES
    acc = np.zeros(4 * LANES)  # 1-D: the allocation every span sum compiles already
    for i in range(0, nb, LANES):
        for j in range(LANES):
            u = np.float64(x[i + j])
            v = np.float64(y[i + j])
            d = u - b * v
            acc[j] += u * u
            acc[LANES + j] += u * v
            acc[2 * LANES + j] += v * v
            acc[3 * LANES + j] += d * d
    out = np.empty(4)
    for k in range(4):
        out[k] = _fold(acc[k * LANES:(k + 1) * LANES])
    for i in range(nb, n):
        u = np.float64(x[i])
        v = np.float64(y[i])
        d = u - b * v
        out[0] += u * u
        out[1] += u * v
        out[2] += v * v
        out[3] += d * d
    return out


@njit(cache=True, nogil=True)
def _pair_sums(x, y, b, part, t0, t1, out):
    """Tasks (chunks) ``t0 ≤ t < t1`` of :func:`pair_sums` into ``part``; then, when ``out``
    has room, the chunks summed in order into ``out`` (4,)."""
    n = x.shape[0]
    for t in range(t0, t1):
        lo = t * CHUNK
        hi = min(n, lo + CHUNK)
        sums = _span_pair(x[lo:hi], y[lo:hi], b)
        for k in range(4):  # a loop: a row assignment compiles a shape check worth seconds
            part[t, k] = sums[k]
    if out.shape[0] > 0:
        for k in range(4):
            out[k] = 0.0
        for t in range(part.shape[0]):
            for k in range(4):
                out[k] += part[t, k]


def pair_sums(x, y, b):
    """``[Σx², Σxy, Σy², Σ(x − b·y)²]`` of flat float arrays, chunked and in a fixed order.

    Twin: ``naive.pair_sums``.
    """
    ntasks = (x.shape[0] + CHUNK - 1) // CHUNK
    return run_tasks(_pair_sums, ntasks, x.size, (x, y, float(b), np.empty((ntasks, 4))),
                     np.empty(4))



@helper
def _span_weighted_pair(x, y, h, b):
    """Σh·x², Σh·xy, Σh·y², Σh·(x − b·y)² over 1-D spans, each in the order of
    :func:`_span_sum`. Each term is ``h·(x·x)`` etc.: with ``h = 1`` exactly the terms of
    :func:`_span_pair`, so the sums are bit-identical to it."""
    n = x.shape[0]
    nb = n - n % LANES
    acc = np.zeros(4 * LANES)
    for i in range(0, nb, LANES):
        for j in range(LANES):
            u = np.float64(x[i + j])
            v = np.float64(y[i + j])
            g = np.float64(h[i + j])
            d = u - b * v
            acc[j] += g * (u * u)
            acc[LANES + j] += g * (u * v)
            acc[2 * LANES + j] += g * (v * v)
            acc[3 * LANES + j] += g * (d * d)
    out = np.empty(4)
    for k in range(4):
        out[k] = _fold(acc[k * LANES:(k + 1) * LANES])
    for i in range(nb, n):
        u = np.float64(x[i])
        v = np.float64(y[i])
        g = np.float64(h[i])
        d = u - b * v
        out[0] += g * (u * u)
        out[1] += g * (u * v)
        out[2] += g * (v * v)
        out[3] += g * (d * d)
    return out


@njit(cache=True, nogil=True)
def _weighted_pair_sums(x, y, h, b, part, t0, t1, out):
    """Tasks (chunks) ``t0 ≤ t < t1`` of :func:`weighted_pair_sums` into ``part``; then, when
    ``out`` has room, the chunks summed in order into ``out`` (4,)."""
    n = x.shape[0]
    for t in range(t0, t1):
        lo = t * CHUNK
        hi = min(n, lo + CHUNK)
        sums = _span_weighted_pair(x[lo:hi], y[lo:hi], h[lo:hi], b)
        for k in range(4):
            part[t, k] = sums[k]
    if out.shape[0] > 0:
        for k in range(4):
            out[k] = 0.0
        for t in range(part.shape[0]):
            for k in range(4):
                out[k] += part[t, k]


def weighted_pair_sums(x, y, h, b):
    """``[Σh·x², Σh·xy, Σh·y², Σh·(x − b·y)²]`` of flat float64 arrays (``h ≥ 0``), chunked
    and in the fixed order of :func:`pair_sums` (``h ≡ 1`` gives its bits).

    Twin: ``naive.weighted_pair_sums``.
    """
    ntasks = (x.shape[0] + CHUNK - 1) // CHUNK
    return run_tasks(_weighted_pair_sums, ntasks, x.size,
                     (x, y, h, float(b), np.empty((ntasks, 4))), np.empty(4))


@njit(cache=True, nogil=True)
def _row_dql_sums(x, y, h, weighted, out, t0, t1):
    """Rows ``t0 ≤ t < t1`` of :func:`row_dql_sums` into ``out`` (rows, 2). Each row is cut
    into spans of ``CHUNK`` elements, summed as :func:`_span_pair` (or
    :func:`_span_weighted_pair`) and the spans added in order. Rows write disjoint parts of
    ``out``: no merge."""
    n = x.shape[1]
    for t in range(t0, t1):
        a0 = 0.0
        a3 = 0.0
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            if weighted:
                sums = _span_weighted_pair(x[t, lo:hi], y[t, lo:hi], h[t, lo:hi], 1.0)
            else:
                sums = _span_pair(x[t, lo:hi], y[t, lo:hi], 1.0)
            a0 += sums[0]
            a3 += sums[3]
        out[t, 0] = a0
        out[t, 1] = a3


def row_dql_sums(x, y, h=None):
    """Per row ``[Σh·x², Σh·(x − y)²]`` of 2-D float64 arrays, shape (rows, 2).

    Each row's sums are those of :func:`pair_sums` (``h`` None) or
    :func:`weighted_pair_sums` on that row alone (``b = 1``), so a row's result does not
    depend on the other rows: a tensor cut into row blocks gives the same bits. Twin:
    ``naive.row_dql_sums``.
    """
    rows = x.shape[0]
    out = np.empty((rows, 2))
    weighted = h is not None
    hh = h if weighted else np.empty((0, 0))
    run_tasks(_row_dql_sums, rows, x.size, (x, y, hh, weighted, out))
    return out
