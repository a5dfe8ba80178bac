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


# --- the searches over a general level set (weighted), one row per task -------------------
#
# Conventions shared by the kernels below and their twins (``naive.grid_levelset``,
# ``naive.alternating_levelset``, ``naive.levelset_sums``): a row ``x`` (float64) with
# importance ``h ≥ 0`` (``hs`` of shape (0, 0): every h = 1); ``levels`` ascending, and with a
# zero point the codes' levels ``0 … K − 1``, of which the row uses ``levels − z``. A step ``s``
# of either sign assigns ``nearest_index(x/s, levels − z)``; its sums ``S1 = Σ h·x·ℓ`` and
# ``S2 = Σ h·ℓ²`` run sequentially over the row (``(h·ℓ)·x`` and ``(h·ℓ)·ℓ``), so they do not
# depend on the thread count. A candidate's score is ``max(0, sign(s)·S1)²/S2`` (0 when
# ``S2 = 0``): the loss removed by the best scale of the step's sign.


@helper
def _assign_sums(x, h, r, s, lv, mids, uniform, idx):
    """Indices (into ``idx``) of row ``r`` at the step ``s`` and ``(S1, S2)``."""
    n = x.shape[1]
    weighted = h.shape[0] > 0
    s1 = 0.0
    s2 = 0.0
    for i in range(n):
        xi = x[r, i]
        j = nearest_index(scaled(xi, s), lv, mids, uniform)
        idx[i] = j
        ell = lv[j]
        hl = h[r, i] * ell if weighted else ell
        s1 += hl * xi
        s2 += hl * ell
    return s1, s2


@helper
def _score(s1, s2, sign):
    """``max(0, sign·S1)²/S2``, 0 when ``S2 = 0``."""
    t = sign * s1
    if s2 > 0.0 and t > 0.0:
        return t * t / s2
    return 0.0


@helper
def _shifted(levels, z):
    """``levels − z`` and its midpoints (the same float64 expression as :func:`midpoints`)."""
    k = levels.shape[0]
    lv = np.empty(k)
    for j in range(k):
        lv[j] = levels[j] - z
    mids = np.empty(k - 1)
    for j in range(k - 1):
        mids[j] = 0.5 * (lv[j + 1] + lv[j])
    return lv, mids


@helper
def _weighted_rms(x, h, r):
    """``σ_h = sqrt(Σh·x²/Σh)`` of row ``r`` (sequential sums; 0 when Σh = 0)."""
    n = x.shape[1]
    weighted = h.shape[0] > 0
    shx = 0.0
    sh = 0.0
    for i in range(n):
        hi = h[r, i] if weighted else 1.0
        shx += hi * x[r, i] * x[r, i]
        sh += hi
    return np.sqrt(shx / sh) if sh > 0.0 else 0.0


@njit(cache=True, nogil=True)
def _grid_levelset_rows(x, h, levels, uniform, signed, zero_point, lams, out, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`grid_levelset`."""
    n = x.shape[1]
    nz = levels.shape[0] if zero_point else 1
    nsign = 2 if signed else 1
    num = lams.shape[0]
    idx = np.empty(n, np.int64)
    for r in range(t0, t1):
        sigma = _weighted_rms(x, h, r)
        best = -1.0
        bs = ba = b1 = b2 = 0.0
        bz = bi = 0
        for g in range(nsign):
            sign = 1.0 if g == 0 else -1.0
            for z in range(nz):
                lv, mids = _shifted(levels, z)
                for i in range(num):
                    s = sign * lams[i] * sigma
                    s1, s2 = _assign_sums(x, h, r, s, lv, mids, uniform, idx)
                    q = _score(s1, s2, sign)
                    if q > best:
                        best, bs, b1, b2, bz, bi = q, s, s1, s2, z, i
        ba = b1 / b2 if best > 0.0 else 0.0
        out[r, 0] = bs
        out[r, 1] = ba
        out[r, 2] = b1
        out[r, 3] = b2
        out[r, 4] = nsign * nz * num
        out[r, 5] = bz
        out[r, 6] = bi


def grid_levelset(x, h, levels, signed, zero_point, lams, out):
    """Grid search over a general level set, per row (weighted; conventions above): steps
    ``±λ·σ_h`` for ``λ`` in ``lams`` (``σ_h = sqrt(Σhx²/Σh)``), every ``z`` with a zero point;
    candidates in the order sign (+ first), z ascending, λ ascending; the first of largest
    score wins. ``out[r]`` = (step, α = S1/S2 (0 when the score is 0), S1, S2, evaluations, z,
    index of λ). Twin: ``naive.grid_levelset``."""
    levels = f64(levels)
    run_tasks(_grid_levelset_rows, x.shape[0], x.size,
              (x, h, levels, is_uniform(levels), bool(signed), bool(zero_point), f64(lams),
               out))
    return out


@helper
def _initial_step(x, h, r, lv, sign, init, value):
    """α₀ of :func:`alternating_levelset` for row ``r``, levels ``lv`` and the scale's sign."""
    if init == 1:
        return sign * value * _weighted_rms(x, h, r)
    if init == 2:
        return sign * value
    n = x.shape[1]
    xmax = x[r, 0]
    xmin = x[r, 0]
    for i in range(1, n):
        xmax = max(xmax, x[r, i])
        xmin = min(xmin, x[r, i])
    k = lv.shape[0]
    top = lv[k - 1] if sign > 0 else -lv[0]  # the extreme levels of sign·lv
    bot = lv[0] if sign > 0 else -lv[k - 1]
    mag = 0.0
    if top > 0.0 and xmax > 0.0:
        mag = max(mag, xmax / top)
    if bot < 0.0 and xmin < 0.0:
        mag = max(mag, xmin / bot)
    return sign * mag


@njit(cache=True, nogil=True)
def _alternating_levelset_rows(x, h, levels, uniform, signed, zero_point, init, value,
                               max_iter, out, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`alternating_levelset`."""
    n = x.shape[1]
    nz = levels.shape[0] if zero_point else 1
    nsign = 2 if signed else 1
    cur = np.empty(n, np.int64)
    prev = np.empty(n, np.int64)
    for r in range(t0, t1):
        best = -1.0
        bs = b1 = b2 = 0.0
        bz = bit = 0
        total = 0
        for g in range(nsign):
            sign = 1.0 if g == 0 else -1.0
            for z in range(nz):
                lv, mids = _shifted(levels, z)
                a = _initial_step(x, h, r, lv, sign, init, value)
                step = a
                s1 = s2 = 0.0
                it = 0
                while it < max_iter:
                    s1, s2 = _assign_sums(x, h, r, a, lv, mids, uniform, cur)
                    it += 1
                    step = a
                    same = it > 1
                    if same:
                        for i in range(n):
                            if cur[i] != prev[i]:
                                same = False
                                break
                    if same or s2 <= 0.0 or sign * s1 <= 0.0:
                        break
                    for i in range(n):
                        prev[i] = cur[i]
                    a = s1 / s2
                total += it
                q = _score(s1, s2, sign)
                if q > best:
                    best, bs, b1, b2, bz, bit = q, step, s1, s2, z, it
        out[r, 0] = bs
        out[r, 1] = b1 / b2 if best > 0.0 else 0.0
        out[r, 2] = b1
        out[r, 3] = b2
        out[r, 4] = total
        out[r, 5] = bz
        out[r, 6] = bit


def alternating_levelset(x, h, levels, signed, zero_point, init, value, max_iter, out):
    """Lloyd iterations in the h-metric over a general level set, per row (conventions
    above): from α₀, codes of ``x/α``, then ``α = S1/S2``, until the codes repeat, ``S2 = 0``,
    α would change sign, or ``max_iter`` code evaluations; one run per sign (+ first) and per
    ``z`` (ascending), the first of largest final score wins.

    α₀: ``init`` 0: the smallest |α| whose extreme levels reach both ends of the row
    (``max(x)/ℓ_top``, ``min(x)/ℓ_bottom`` of ``sign·(levels − z)``); 1: ``sign·value·σ_h``;
    2: ``sign·value``. ``out[r]`` = (the step that produced the final codes, α, S1, S2, code
    evaluations of all runs, z, evaluations of the winning run). Twin:
    ``naive.alternating_levelset``."""
    levels = f64(levels)
    run_tasks(_alternating_levelset_rows, x.shape[0], x.size,
              (x, h, levels, is_uniform(levels), bool(signed), bool(zero_point), int(init),
               float(value), int(max_iter), out))
    return out


@njit(cache=True, nogil=True)
def _levelset_sums_rows(x, h, steps, zs, levels, uniform, codes, out, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`levelset_sums`."""
    n = x.shape[1]
    weighted = h.shape[0] > 0
    idx = np.empty(n, np.int64)
    for r in range(t0, t1):
        lv, mids = _shifted(levels, zs[r])
        s1, s2 = _assign_sums(x, h, r, steps[r], lv, mids, uniform, idx)
        sxx = 0.0
        for i in range(n):
            codes[r, i] = idx[i]
            hx = h[r, i] * x[r, i] if weighted else x[r, i]
            sxx += hx * x[r, i]
        out[r, 0] = sxx
        out[r, 1] = s1
        out[r, 2] = s2


def levelset_sums(x, h, steps, zs, levels, codes, out):
    """Indices ``nearest_index(x/step, levels − z)`` of every row (into ``codes``, an integer
    array of x's shape) and ``out[r]`` = (Σh·x², S1, S2), sequential sums (conventions above).
    Twin: ``naive.levelset_sums``."""
    levels = f64(levels)
    run_tasks(_levelset_sums_rows, x.shape[0], x.size,
              (x, h, f64(steps), np.ascontiguousarray(zs, dtype=np.int64), levels,
               is_uniform(levels), codes, out))
    return out
