"""Elements exactly at a rounding threshold, and the tie rules their codes agree with
(``check.diagnose.rounding_votes`` in float32 or float64 arithmetic).

Twin: :func:`vecq_ref.naive.tie_votes`. Blocks of rows are the tasks; each writes its own
integer counts, summed in task order, so results never depend on the thread count.

The quotients are the dtype's own: an operation on two float32 values done in float64 and
rounded once to float32 is the float32 operation (float64 has more than 2·24 + 2 bits, so
the double rounding is innocuous for ``+ − × ÷``).
"""

import contextlib
import math

import numpy as np
from numba import config, njit

from . import CHUNK, helper, run_tasks, single_thread

#: From this magnitude a float64 rounds to ±inf in float32: 2¹²⁸ − 2¹⁰³, halfway between the
#: largest float32 and 2¹²⁸ (a tie, to the even neighbour: 2¹²⁸).
_F32_INF = 2.0 ** 128 - 2.0 ** 103


@helper
def _fl(v, f32):
    """``v`` rounded to float32 (``f32``) or left in float64."""
    if f32:
        if abs(v) >= _F32_INF:  # (the IEEE overflow, without NumPy's warning)
            return math.copysign(math.inf, v)
        return np.float64(np.float32(v))
    return v


@helper
def _on(q, t, mid, f32):
    """``q`` (a value of the dtype) on the threshold ``t``: midrise thresholds lie at the
    integers (codes ``t − 1 | t``), read as ``q == t`` or ``fl(q − ½) == t − ½``; midtread
    ones at ``j + ½`` (``q == t``)."""
    if q == t:
        return True
    return mid and _fl(q - 0.5, f32) == t - 0.5


@njit(cache=True, nogil=True)
def _tie_votes_rows(x, c, s, f32, mid, cmin, cmax, rows_per_task, counts, t0, t1):
    """Tasks ``t0 ≤ t < t1`` (rows ``t·rows_per_task`` onwards) of :func:`tie_votes`: into
    ``counts[t]`` the number of ties and of those whose code agrees with floor (ties up),
    half to even and half away from zero."""
    nrows, n = x.shape
    for t in range(t0, t1):
        n_at, n_up, n_even, n_away = 0, 0, 0, 0
        for r in range(t * rows_per_task, min(nrows, (t + 1) * rows_per_task)):
            sd = _fl(s[r], f32)
            if not (np.isfinite(sd) and sd > 0.0):
                continue  # no step in this dtype: nothing computed in it
            rec = _fl(1.0 / sd, f32)
            for j in range(n):
                xs = _fl(x[r, j], f32)
                q = _fl(xs / sd, f32)
                if not np.isfinite(q):
                    continue
                tt = np.rint(q) if mid else np.floor(q) + 0.5
                if not _on(q, tt, mid, f32):
                    continue
                # the same tie in the reciprocal form x·(1/s) (where 1/s is finite)
                q2 = _fl(xs * rec, f32) if np.isfinite(rec) else q
                if not (np.isfinite(q2) and _on(q2, tt, mid, f32)):
                    continue
                lower, upper = (tt - 1.0, tt) if mid else (tt - 0.5, tt + 0.5)
                cc = c[r, j]
                if lower < cmin or upper > cmax or not (cc == lower or cc == upper):
                    continue
                n_at += 1
                if cc == upper:
                    n_up += 1
                if cc == (lower if lower - 2.0 * np.floor(lower / 2.0) == 0.0 else upper):
                    n_even += 1
                if cc == (upper if tt > 0 else lower):
                    n_away += 1
        counts[t, 0] = n_at
        counts[t, 1] = n_up
        counts[t, 2] = n_even
        counts[t, 3] = n_away


def tie_votes(x, c, s, f32, midrise, cmin, cmax):
    """Ties of ``x/s`` per row and the tie rules their codes follow.

    Parameters
    ----------
    x : ndarray of float64, shape (rows, n)
        What the codes quantize (``w − β``).
    c : ndarray of int64 or float64, shape (rows, n)
        The codes.
    s : ndarray of float64, shape (rows,)
        One step per row.
    f32 : bool
        ``x``, ``s`` and the quotients in float32 (else float64).
    midrise : bool
        Thresholds at the integers (``rint``), else at ``j + ½`` (``floor + ½``).
    cmin, cmax : int
        The code range; a tie whose two codes do not both lie in it does not count.

    Returns
    -------
    ndarray of int64, shape (4,)
        The number of elements on a threshold of both ``x/s`` and ``x·(1/s)`` whose code is
        one of the threshold's two, and how many of them floor (ties up), half to even and
        half away from zero give.
    """
    nrows, n = x.shape
    rows_per_task = max(1, CHUNK // max(n, 1))
    ntasks = max(1, (nrows + rows_per_task - 1) // rows_per_task)
    counts = np.zeros((ntasks, 4), dtype=np.int64)
    # Pure Python (NUMBA_DISABLE_JIT=1): NumPy scalars warn where IEEE arithmetic overflows
    # (x/s beyond float64); one thread, whose error state this sets
    plain = config.DISABLE_JIT
    with np.errstate(all="ignore") if plain else contextlib.nullcontext(), \
            single_thread() if plain else contextlib.nullcontext():
        run_tasks(_tie_votes_rows, ntasks, x.size,
                  (x, c, s, bool(f32), bool(midrise), float(cmin), float(cmax),
                   rows_per_task, counts))
    return counts.sum(axis=0)
