"""Nearest-level assignment for any level set (docs/theory.md §2): the codes of the formats'
level sets, which the exact, grid and alternating searches over general level sets share.

A level set is a sorted float64 array ``levels`` (ascending, distinct, ``K ≥ 1`` entries) and
its midpoints ``mids[j] = 0.5·(levels[j] + levels[j + 1])`` computed in float64 (the sum
rounds, then the halving is exact). ``uniform`` says the levels are the consecutive integers
``levels[0] … levels[0] + K − 1``, for which a faster expression gives the same index.

Conventions pinned here (and in ``naive.nearest_index``): the scaled weight is ``y = w / s``,
the float64 true division, for a step ``s`` of either sign (a signed scale); ``s = 0`` sends
``w > 0`` to ``+inf``, ``w < 0`` to ``−inf`` and ``0`` to ``0``. The index is that of the
nearest level; a ``y`` exactly on a midpoint ``m`` goes to the level farther from zero, which
is the upper one when ``m ≥ 0`` and the lower one when ``m < 0`` (for the integer lattices
this is rounding half away from zero, the midtread rule). NaN goes to index 0.
"""

import numpy as np
from numba import njit

from . import CHUNK, f64, helper, run_tasks


@helper
def nearest_index(y, levels, mids, uniform):
    """Index of the level nearest ``y`` (ties farther from zero; module docstring)."""
    k = levels.shape[0]
    if uniform:
        if y >= levels[k - 1]:  # also +inf
            return k - 1
        if y <= levels[0]:  # also −inf
            return 0
        c = np.floor(y)
        f = y - c  # exact for finite y (y − ⌊y⌋ is representable)
        if f > 0.5 or (f == 0.5 and c + 0.5 >= 0.0):
            c += 1.0
        c -= levels[0]
        if c > 0.0:  # NaN: index 0
            return np.int64(min(c, k - 1.0))
        return 0
    lo = 0
    hi = k - 1  # answer in [lo, hi]: the number of midpoints y passes
    while lo < hi:
        j = (lo + hi) // 2
        m = mids[j]
        if y > m or (y == m and m >= 0.0):
            lo = j + 1
        else:
            hi = j
    return lo


@helper
def scaled(w, s):
    """``w / s`` with the zero-step rule of the module docstring."""
    if s != 0.0:
        return w / s
    if w == 0.0:
        return 0.0
    return np.inf if w > 0.0 else -np.inf


@njit(cache=True, nogil=True)
def _assign_rows(x, steps, levels, mids, uniform, out, t0, t1):
    """Tasks ``t0 ≤ t < t1`` of :func:`assign_rows` (task t: chunk ``t % nch`` of row
    ``t // nch``)."""
    n = x.shape[1]
    nch = (n + CHUNK - 1) // CHUNK
    for t in range(t0, t1):
        r = t // nch
        lo = (t % nch) * CHUNK
        s = steps[r]
        for i in range(lo, min(n, lo + CHUNK)):
            out[r, i] = nearest_index(scaled(np.float64(x[r, i]), s), levels, mids, uniform)


def midpoints(levels):
    """``mids`` of the module docstring for a sorted float64 ``levels``."""
    levels = f64(levels)
    return f64(0.5 * (levels[1:] + levels[:-1]))


def is_uniform(levels):
    """True when ``levels`` are consecutive integers (the fast path of :func:`nearest_index`)."""
    levels = np.asarray(levels, dtype=np.float64)
    return bool(levels.size and np.all(levels == levels[0] + np.arange(levels.size))
                and float(levels[0]).is_integer())


def assign_rows(x, steps, levels, out):
    """Index of the nearest level of ``x[r, i] / steps[r]`` into ``out`` (same shape, an
    integer dtype holding ``len(levels) − 1``). Twin: ``naive.nearest_index``."""
    rows, n = x.shape
    levels = f64(levels)
    ntasks = rows * ((n + CHUNK - 1) // CHUNK)
    run_tasks(_assign_rows, ntasks, x.size,
              (x, f64(steps), levels, midpoints(levels), is_uniform(levels), out))
    return out
