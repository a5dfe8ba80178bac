"""Merging sorted runs: the second half of the parallel sort in ``search._sorted_rows``.

Twin: ``naive.merge_runs``. Values are moved, never computed, so the result holds exactly the
input's values in NumPy's sort order (NaN after every number).
"""

import numpy as np
from numba import njit

from . import helper


@helper
def _numbers_end(src, a0, a1):
    """End of the numbers of the ascending run ``src[a0:a1]`` (its NaNs come last)."""
    while a1 > a0 and src[a1 - 1] != src[a1 - 1]:
        a1 -= 1
    return a1


@helper
def _merge2(src, a0, a1, b0, b1, dst, o):
    """Merge ascending ``src[a0:a1]`` and ``src[b0:b1]`` into ``dst[o:]``; ties take ``a``.

    The numbers are merged without branches on the data (``y < x`` picks by a select; a
    branch there is mispredicted half the time), then the NaNs of ``a``, then those of ``b``.
    """
    an = _numbers_end(src, a0, a1)
    bn = _numbers_end(src, b0, b1)
    i = a0
    j = b0
    while i < an and j < bn:
        x = src[i]
        y = src[j]
        take_b = y < x
        dst[o] = y if take_b else x
        j += take_b
        i += 1 - take_b
        o += 1
    o = _append(src, i, an, dst, o)
    o = _append(src, j, bn, dst, o)
    o = _append(src, an, a1, dst, o)
    return _append(src, bn, b1, dst, o)


@helper
def _append(src, lo, hi, dst, o):
    """Copy ``src[lo:hi]`` to ``dst[o:]`` (a loop: cheaper to compile than a slice
    assignment); returns the next free index of ``dst``."""
    for p in range(lo, hi):
        dst[o] = src[p]
        o += 1
    return o


@njit(cache=True, nogil=True)
def merge_runs(src, bounds, out, out64):
    """Merge the ascending runs ``src[bounds[c, 0]:bounds[c, 1]]`` into ``out`` (as long as
    the runs together), and copy the result as float64 into ``out64`` when it is not empty.

    Pairwise rounds (run 0 with 1, 2 with 3, ...; ties to the lower run), so ``⌈log₂ k⌉``
    passes over the data for ``k`` runs.
    """
    k = bounds.shape[0]
    n = out.shape[0]
    starts = bounds[:, 0].copy()
    ends = bounds[:, 1].copy()
    cur = src
    spare = [np.empty(n if k > 2 else 0, src.dtype), np.empty(n if k > 4 else 0, src.dtype)]
    rnd = 0
    while True:
        m = starts.shape[0]
        last = m <= 2
        dst = out if last else spare[rnd % 2]
        ns = np.empty((m + 1) // 2, np.int64)
        ne = np.empty((m + 1) // 2, np.int64)
        o = 0
        for p in range(0, m, 2):
            ns[p // 2] = o
            if p + 1 < m:
                o = _merge2(cur, starts[p], ends[p], starts[p + 1], ends[p + 1], dst, o)
            else:
                o = _merge2(cur, starts[p], ends[p], 0, 0, dst, o)
            ne[p // 2] = o
        cur = dst
        starts = ns
        ends = ne
        rnd += 1
        if last:
            break
    if out64.shape[0] > 0:
        for i in range(n):
            out64[i] = out[i]
