"""Per-element bounds on a step that keeps each code (``check.diagnose.step_bounds``).

Twin: :func:`vecq_ref.naive.step_bounds`. Element-wise: chunks of ``CHUNK`` elements are the
tasks, so results never depend on the thread count. ``max``/``min`` follow NumPy's
``maximum``/``minimum`` (a NaN of either wins; of two equal values, ±0 included, the second).
"""

import numpy as np
from numba import njit

from . import CHUNK, helper, run_tasks


@helper
def _maximum(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a > b else b


@helper
def _minimum(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


@njit(cache=True, nogil=True)
def _step_bounds_chunks(x, c, cmin, cmax, midrise, lo, hi, bad, t0, t1):
    """Chunks ``t0 ≤ t < t1`` of :func:`step_bounds` (flat float64 ``x``, int64 ``c``)."""
    n = x.shape[0]
    for t in range(t0, t1):
        for i in range(t * CHUNK, min(n, (t + 1) * CHUNK)):
            xi = x[i]
            ci = float(c[i])
            if midrise:
                a, b = ci, ci + 1.0
            else:
                a, b = ci - 0.5, ci + 0.5
            low, high, no = 0.0, np.inf, False
            if ci > cmin:  # x ≥ a·s (not for the lowest code, which the clip reaches)
                if a > 0.0:
                    high = _minimum(high, xi / a)
                elif a < 0.0:
                    low = _maximum(low, xi / a)
                elif xi < 0.0:
                    no = True
            if ci < cmax:  # x ≤ b·s (not for the highest code)
                if b > 0.0:
                    low = _maximum(low, xi / b)
                elif b < 0.0:
                    high = _minimum(high, xi / b)
                elif xi > 0.0:
                    no = True
            lo[i] = low
            hi[i] = high
            bad[i] = no


def step_bounds(x, c, cmin, cmax, midrise):
    """``(lo, hi, impossible)`` of float64 ``x`` and integer codes ``c`` (same shape): see
    ``vecq_ref.check.diagnose.step_bounds``; ``midrise``: its thresholds (else midtread's)."""
    xf = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    cf = np.ascontiguousarray(c, dtype=np.int64).reshape(-1)
    lo = np.empty(xf.size)
    hi = np.empty(xf.size)
    bad = np.empty(xf.size, dtype=np.bool_)
    ntasks = (xf.size + CHUNK - 1) // CHUNK
    run_tasks(_step_bounds_chunks, ntasks, xf.size,
              (xf, cf, float(cmin), float(cmax), bool(midrise), lo, hi, bad))
    shape = np.shape(x)
    return lo.reshape(shape), hi.reshape(shape), bad.reshape(shape)
