"""llama.cpp's 19-candidate weighted scale search ``make_qx_quants`` (docs/theory.md §7.2), in the
float32 arithmetic of the C source, one group (a row of ``x``) at a time.

Source: ggml-org/ggml ``src/ggml-quants.c``, ``make_qx_quants`` and ``nearest_int``; read,
not copied. Every operation is the C one in float32, in the C order: the sums run
sequentially over the group (the C loops are not vectorized: no ``-ffast-math``), integer
codes are converted to float32 before they multiply, and ``nearest_int(v)`` is the float32
addition ``v + 1.5·2²³`` whose result's low mantissa bits are the integer (round half to
even). This is the stated exception to the library's float64 rule: the point is to be the
format's own result bit for bit. Groups are independent, so tasks are blocks of groups and
nothing depends on the thread count. Twin: ``naive.make_qx_quants``.
"""

import numpy as np
from numba import njit

from . import helper, run_tasks

#: Groups per task of :func:`make_qx_rows`.
GROUPS_PER_TASK = 512
#: ``GROUP_MAX_EPS``: a group whose largest |x| is below this is all zero.
GROUP_MAX_EPS = np.float32(1e-15)
_MAGIC = np.float32(12582912.0)  # 1.5·2²³


@helper
def nearest_int(v):
    """``nearest_int`` of ggml: round a float32 to the nearest integer, half to even."""
    return np.int64(v + _MAGIC) - 12582912


@helper
def _weight(x, h, has_h, i, rmse_type, r):
    """The C's ``w`` of element ``i``: ``qw[i]`` when given, else by ``rmse_type``."""
    xi = x[r, i]
    if has_h:
        return h[r, i]
    if rmse_type == 1:
        return xi * xi
    if rmse_type == 2:
        return np.float32(1.0)
    if rmse_type == 3:
        return np.float32(abs(xi))
    return np.float32(np.sqrt(np.float32(abs(xi))))


@helper
def _codes(x, r, iscale, nmax, codes):
    """``codes[r, i] = clamp(nearest_int(iscale·x), −nmax, nmax − 1)`` (the C's ``L − nmax``)."""
    for i in range(x.shape[1]):
        codes[r, i] = max(-nmax, min(nmax - 1, nearest_int(iscale * x[r, i])))


@helper
def _group(x, h, has_h, r, nmax, rmse_type, codes):
    """One group: writes ``codes[r]`` and returns ``(scale, iscale)`` as the C returns them."""
    n = x.shape[1]
    vmax = np.float32(0.0)
    amax = np.float32(0.0)
    for i in range(n):
        ax = np.float32(abs(x[r, i]))
        if ax > amax:
            amax = ax
            vmax = x[r, i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            codes[r, i] = -nmax  # the C's L = 0
        return np.float32(0.0), np.float32(0.0)
    fnmax = np.float32(nmax)
    iscale = -fnmax / vmax
    if rmse_type == 0:
        _codes(x, r, iscale, nmax, codes)
        return np.float32(1.0) / iscale, iscale
    return_early = rmse_type < 0
    if return_early:
        rmse_type = -rmse_type
    sumlx = np.float32(0.0)
    suml2 = np.float32(0.0)
    for i in range(n):
        li = max(-nmax, min(nmax - 1, nearest_int(iscale * x[r, i])))
        codes[r, i] = li
        w = _weight(x, h, has_h, i, rmse_type, r)
        fl = np.float32(li)
        sumlx += w * x[r, i] * fl
        suml2 += w * fl * fl
    scale = sumlx / suml2 if suml2 != 0 else np.float32(0.0)
    if return_early:
        if suml2 > 0:
            return np.float32(0.5) * (scale + np.float32(1.0) / iscale), iscale
        return np.float32(1.0) / iscale, iscale
    best = scale * sumlx
    best_iscale = iscale
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(fnmax + np.float32(0.1) * np.float32(step)) / vmax
        sumlx = np.float32(0.0)
        suml2 = np.float32(0.0)
        for i in range(n):
            li = max(-nmax, min(nmax - 1, nearest_int(iscale * x[r, i])))
            w = _weight(x, h, has_h, i, rmse_type, r)
            fl = np.float32(li)
            sumlx += w * x[r, i] * fl
            suml2 += w * fl * fl
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            _codes(x, r, iscale, nmax, codes)
            scale = sumlx / suml2
            best = scale * sumlx
            best_iscale = iscale
    return scale, best_iscale


@njit(cache=True, nogil=True)
def _make_qx_rows(x, h, has_h, nmax, rmse_type, codes, scale, iscale, t0, t1):
    """Tasks ``t0 ≤ t < t1`` of :func:`make_qx_rows` (task t: groups ``t·GROUPS_PER_TASK …``)."""
    g = x.shape[0]
    for t in range(t0, t1):
        for r in range(t * GROUPS_PER_TASK, min(g, (t + 1) * GROUPS_PER_TASK)):
            scale[r], iscale[r] = _group(x, h, has_h, r, nmax, rmse_type, codes)


def make_qx_rows(x, h, nmax, rmse_type):
    """``make_qx_quants`` of every row of the float32 array ``x`` (groups × n) with weights
    ``h`` (float32, same shape) or ``None``.

    Returns ``(codes, scale, iscale)``: int8 codes ``L − nmax`` in ``[−nmax, nmax − 1]``, the
    float32 scale the C returns, and the float32 ``iscale`` whose codes were kept (0 for an
    all-zero group). Twin: ``naive.make_qx_quants``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    has_h = h is not None
    h = np.ascontiguousarray(h, dtype=np.float32) if has_h else np.zeros((1, 1), np.float32)
    groups = x.shape[0]
    codes = np.empty(x.shape, dtype=np.int8)
    scale = np.empty(groups, dtype=np.float32)
    iscale = np.empty(groups, dtype=np.float32)
    ntasks = (groups + GROUPS_PER_TASK - 1) // GROUPS_PER_TASK
    run_tasks(_make_qx_rows, ntasks, x.size,
              (x, h, has_h, np.int64(nmax), np.int64(rmse_type), codes, scale, iscale))
    return codes, scale, iscale
