"""Merging sorted runs: the second half of the parallel sort in ``search._sorted_rows``.

Twin: ``naive.merge_runs``. Values are moved, never computed, so the result holds exactly the
input's values in NumPy's sort order (NaN after every number, see :func:`_before`).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _before(x, y):
    """``x`` sorts strictly before ``y`` in NumPy's order (NaN after every number)."""
    return x < y or (y != y and x == x)


@njit(cache=True, nogil=True)
def _merge2(src, a0, a1, b0, b1, dst, o):
    """Merge ascending ``src[a0:a1]`` and ``src[b0:b1]`` into ``dst[o:]``; ties take ``a``."""
    i = a0
    j = b0
    while i < a1 and j < b1:
        x = src[i]
        y = src[j]
        if _before(y, x):
            dst[o] = y
            j += 1
        else:
            dst[o] = x
            i += 1
        o += 1
    while i < a1:
        dst[o] = src[i]
        i += 1
        o += 1
    while j < b1:
        dst[o] = src[j]
        j += 1
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
