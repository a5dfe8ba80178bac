"""Real offset (float zero point): ``x̂ = α·u + m`` with codes ``u ∈ {0, …, K − 1}``, ``α > 0``
and ``m`` real, minimising the weighted loss ``S = Σ h·(x − α·u − m)²`` per row
(docs/theory.md §4.6, "Real offset: the 2-D search").

Exact search (rows with at most ``exact_max`` weights and ``K ≤ 16``): with ``τ = m + α/2``
the position of the first threshold, code ``u_i`` is the number of thresholds
``τ + j·α`` (``j = 0 … K − 2``) below ``x_i``. Element ``i`` changes code when ``τ`` crosses one
of its *keys* ``x_i − j·α``; two keys of different elements coincide only at the *critical*
scales ``α = (x_c − x_a)/d``, ``d = 1 … K − 2``. Between consecutive critical scales the order
of the keys is fixed, and the code vectors met by sweeping ``τ`` are the prefixes of that
order; every open cell of the arrangement is one of them in some interval. The search starts
below the smallest critical scale (keys ordered by value), evaluates every prefix, then takes
the critical scales in increasing order as events: at ``(x_c − x_a)/d`` the keys ``(a, j)``
and ``(c, j + d)`` swap places, and a swap of adjacent keys changes exactly one prefix, which
is scored in O(1) from running sums (Σh·u, Σh·u², Σh·(x − x̄)·u); a prefix within 1e-9·Sxx
of the incumbent is refitted and its loss summed directly (the sums cancel digits). Where the
events of one scale do not find their keys adjacent (critical scales equal in exact
arithmetic but not in float64), the order is rebuilt by insertion sort at the midpoint of the
next interval, scoring every prefix a swap changes. A final nearest-level pass never makes
the best worse (Lloyd) and is kept when strictly better. Cost O(n²K²) events and
O(n²K log(nK)) for sorting them, per row; O(n²K) memory.

Heuristic (longer rows, or ``K > 16``): starting points min–max (Q4_1's ``d = (max −
min)/(K − 1)``, ``m = min``), llama.cpp's ``make_qkx2_quants`` candidates ``iscale = (−1 +
0.1·i + K − 1)/(max − min)``, ``i = 0 … 20`` (``m`` not forced ≤ 0) and GPTQ's asymmetric
integer zero point, each with nearest codes, refitted (the best of these refits is column 6
of ``out``), then alternated (nearest codes, least-squares refit) while the loss strictly
drops. Then, when ``n·(K − 1) ≤ SCAN_MAX``, the best offset (an exact sweep of ``τ`` over the
keys in order) at 41 scales ``f·(max − min)/(K − 1)``, ``f = ½ … 3/2`` geometric, each
alternated; finally the best offset at the incumbent's scale, alternated, while that helps
(``n·(K − 1) ≤ sweep_max``). Only strict improvements replace the incumbent, so the result is
never worse than any starting point. Exact rows run the starting points and the final step
but not the 41-scale scan.

Twin: ``naive.affine_brute`` (vertices of the arrangement and the cells around them).
"""

import numpy as np
from numba import njit

from . import helper, run_tasks
from .levelset import nearest_index

#: Columns of ``out``.
ALPHA, OFFSET, LOSS, SXX, EVALS, CERTIFIED, START = range(7)
#: Largest level count searched exactly.
EXACT_LEVELS = 16
#: Alternation rounds of the heuristic (each is one nearest pass and one refit).
MAX_ROUNDS = 100
#: The heuristic sweeps the offset at SCAN_SCALES scales when ``n·(K − 1)`` is at most
#: SCAN_MAX (4-bit groups up to 2184 weights, 8-bit groups up to 128).
SCAN_MAX = 1 << 15
SCAN_SCALES = 41


@helper
def _compress(x, h, unit, xv, gv, idx):
    """Distinct values of the positive-weight elements, ascending, into ``xv`` with their
    summed weights in ``gv``; returns their count. ``idx`` is scratch (length n)."""
    n = x.shape[0]
    cnt = 0
    for i in range(n):
        if unit or h[i] > 0.0:
            idx[cnt] = i
            cnt += 1
    # Insertion sort of the indices by value (stable, so equal values keep index order).
    for p in range(1, cnt):
        e = idx[p]
        q = p
        while q > 0 and x[idx[q - 1]] > x[e]:
            idx[q] = idx[q - 1]
            q -= 1
        idx[q] = e
    nv = 0
    for p in range(cnt):
        i = idx[p]
        w = 1.0 if unit else h[i]
        if nv > 0 and xv[nv - 1] == x[i]:
            gv[nv - 1] += w
        else:
            xv[nv] = x[i]
            gv[nv] = w
            nv += 1
    return nv


@helper
def _centre(xv, gv, nv, xc):
    """``(Σg, x̄_g, Σg(x − x̄_g)²)`` of the first ``nv`` values, with ``xc = x − x̄_g``,
    sums in index order."""
    wsum = 0.0
    sx = 0.0
    for i in range(nv):
        wsum += gv[i]
        sx += gv[i] * xv[i]
    xbar = sx / wsum
    varx = 0.0
    for i in range(nv):
        xc[i] = xv[i] - xbar
        varx += gv[i] * xc[i] * xc[i]
    return wsum, xbar, varx


@helper
def _fit(xv, gv, nv, u):
    """Weighted least-squares ``(α, m)`` of codes ``u`` and the loss, summed directly in index
    order. Returns ``(α, m, loss, ok)``; ``ok`` is False when the codes are constant on the
    support or their fitted α is not positive (then α = 0, m = the weighted mean)."""
    wsum = 0.0
    sx = 0.0
    su = 0.0
    for i in range(nv):
        wsum += gv[i]
        sx += gv[i] * xv[i]
        su += gv[i] * u[i]
    xbar = sx / wsum
    ubar = su / wsum
    suu = 0.0
    sxu = 0.0
    for i in range(nv):
        du = u[i] - ubar
        suu += gv[i] * du * du
        sxu += gv[i] * (xv[i] - xbar) * du
    if suu > 0.0 and sxu > 0.0:
        alpha = sxu / suu
        m = xbar - alpha * ubar
        return alpha, m, _loss(xv, gv, nv, u, alpha, m), True
    return 0.0, xbar, _loss(xv, gv, nv, u, 0.0, xbar), False


@helper
def _loss(xv, gv, nv, u, alpha, m):
    s = 0.0
    for i in range(nv):
        e = xv[i] - alpha * u[i] - m
        s += gv[i] * e * e
    return s


@helper
def _nearest(xv, nv, alpha, m, levels, mids, u):
    """``u`` = nearest codes of ``(x − m)/α`` (levelset's rule: ties go up). Returns whether
    any code changed."""
    changed = False
    for i in range(nv):
        c = nearest_index((xv[i] - m) / alpha, levels, mids, True)
        if c != u[i]:
            u[i] = c
            changed = True
    return changed


@helper
def _polish(xv, gv, nv, u, alpha, m, loss, levels, mids, v):
    """Alternate nearest codes and least-squares refits from the fitted ``(α, m)`` of ``u``
    while the loss strictly drops; ``u`` ends holding the best codes. ``v`` is scratch.
    Returns ``(α, m, loss, rounds)``."""
    rounds = 0
    for _ in range(MAX_ROUNDS):
        for i in range(nv):
            v[i] = u[i]
        if not _nearest(xv, nv, alpha, m, levels, mids, v):
            break
        a2, m2, l2, ok = _fit(xv, gv, nv, v)
        rounds += 1
        if not ok or not l2 < loss:
            break
        for i in range(nv):
            u[i] = v[i]
        alpha, m, loss = a2, m2, l2
    return alpha, m, loss, rounds


@helper
def _eval(su, suu, sxu, wsum, varx):
    """Loss of the least-squares fit from the running sums (x centred): ``varx − cov²/var_u``."""
    varu = suu - su * su / wsum
    if varu > 0.0 and sxu > 0.0:
        return varx - sxu * sxu / varu
    return varx


@helper
def _copy_prefix(order, p, k, nv, u):
    """Codes after the first ``p`` key crossings of ``order`` (key ``e`` = element ``e // (k −
    1)``, threshold ``e % (k − 1)``): each crossing lowers its element's code by one."""
    for i in range(nv):
        u[i] = k - 1
    for q in range(p):
        u[order[q] // (k - 1)] -= 1


@helper
def _cross(order, p, gv, xc, k, csu, csuu, csxu):
    """Running sums of the prefix of length ``p + 1`` from that of length ``p``: crossing key
    ``order[p]`` lowers its element's code from ``j + 1`` to ``j``."""
    e = order[p]
    i = e // (k - 1)
    j = e % (k - 1)
    csu[p + 1] = csu[p] - gv[i]
    csuu[p + 1] = csuu[p] - gv[i] * (2 * j + 1)
    csxu[p + 1] = csxu[p] - gv[i] * xc[i]


@helper
def _consider(order, p, k, xv, gv, nv, v, u, bdir):
    """Codes of the prefix of length ``p`` into ``v``, refitted and scored directly; copied
    to ``u`` when strictly better than ``bdir``. Returns the best direct loss."""
    _copy_prefix(order, p, k, nv, v)
    _, _, loss, ok = _fit(xv, gv, nv, v)
    if ok and loss < bdir:
        for i in range(nv):
            u[i] = v[i]
        return loss
    return bdir


@helper
def _exact(xv, gv, nv, k, xc, keys, order, pos, csu, csuu, csxu, crit, eva, evc, evd, u, v):
    """Best codes of the exact search into ``u``; returns the number of code vectors
    evaluated. ``nv ≥ 2`` distinct values, ``k ≥ 2``.

    The keys' order is kept for scales just above the critical scales met so far: at a
    critical scale (x_c − x_a)/d the keys (a, j) and (c, j + d) swap, and each swap changes
    one prefix. Where several events share a scale and a swap finds its keys not adjacent,
    the order is rebuilt at the next interval's midpoint by insertion sort (adjacent swaps,
    each evaluated), which also covers every prefix that changes."""
    nb = nv * (k - 1)
    wsum, xbar, varx = _centre(xv, gv, nv, xc)
    su0 = (k - 1) * wsum
    suu0 = (k - 1) * (k - 1) * wsum
    nc = 0
    for a in range(nv):
        for c in range(a + 1, nv):
            for d in range(1, k - 1):
                crit[nc] = (xv[c] - xv[a]) / d
                eva[nc] = a
                evc[nc] = c
                evd[nc] = d
                nc += 1
    ev = np.argsort(crit[:nc], kind="mergesort")
    # For α below every critical scale the keys x_i − jα sort by value, then by −j.
    q = 0
    for i in range(nv):
        for j in range(k - 2, -1, -1):
            order[q] = i * (k - 1) + j
            pos[order[q]] = q
            q += 1
    csu[0] = 0.0
    csuu[0] = 0.0
    csxu[0] = 0.0
    # The running sums score a prefix to within far less than tol; a prefix that may beat
    # the incumbent's directly summed loss bdir by that much is refitted and summed directly.
    tol = 1e-9 * varx
    bdir = np.inf
    for i in range(nv):
        u[i] = k - 1
    for p in range(nb):
        _cross(order, p, gv, xc, k, csu, csuu, csxu)
        s = _eval(su0 + csu[p + 1], suu0 + csuu[p + 1], csxu[p + 1], wsum, varx)
        if s - tol < bdir and bdir > 0.0:
            bdir = _consider(order, p + 1, k, xv, gv, nv, v, u, bdir)
    evals = nb + 1
    t = 0
    while t < nc:
        cval = crit[ev[t]]
        t_end = t + 1
        while t_end < nc and crit[ev[t_end]] == cval:
            t_end += 1
        rebuild = False
        for q in range(t, t_end):
            e = ev[q]
            a = eva[e]
            c = evc[e]
            d = evd[e]
            for ja in range(k - 1 - d):
                e1 = a * (k - 1) + ja
                e2 = c * (k - 1) + ja + d
                p = pos[e1]
                if p + 1 >= nb or order[p + 1] != e2:
                    rebuild = True
                    continue
                order[p] = e2
                order[p + 1] = e1
                pos[e2] = p
                pos[e1] = p + 1
                _cross(order, p, gv, xc, k, csu, csuu, csxu)
                s = _eval(su0 + csu[p + 1], suu0 + csuu[p + 1], csxu[p + 1], wsum, varx)
                evals += 1
                if s - tol < bdir and bdir > 0.0:
                    bdir = _consider(order, p + 1, k, xv, gv, nv, v, u, bdir)
        if rebuild:
            alpha = 0.5 * (cval + crit[ev[t_end]]) if t_end < nc else 2.0 * cval
            for e in range(nb):
                keys[e] = xv[e // (k - 1)] - (e % (k - 1)) * alpha
            for p in range(1, nb):
                q = p
                while q > 0 and keys[order[q - 1]] > keys[order[q]]:
                    e = order[q]
                    order[q] = order[q - 1]
                    order[q - 1] = e
                    # Only the prefix of length q changed: it now holds e, not order[q].
                    _cross(order, q - 1, gv, xc, k, csu, csuu, csxu)
                    s = _eval(su0 + csu[q], suu0 + csuu[q], csxu[q], wsum, varx)
                    evals += 1
                    if s - tol < bdir and bdir > 0.0:
                        bdir = _consider(order, q, k, xv, gv, nv, v, u, bdir)
                    q -= 1
            for p in range(nb):
                pos[order[p]] = p
        t = t_end
    return evals


@helper
def _offset_sweep(xv, gv, nv, k, alpha, xc, keys, order, u):
    """Best codes over all offsets at the fixed scale ``alpha`` (a sweep of ``τ`` over the
    keys in increasing order, O(n·(K + (max − min)/α))) into ``u`` when better than the codes
    already in ``u``; returns the number of code vectors evaluated. The order is computed from
    ``(x − x_min)/α``, so it may differ from the float order of ``x − jα`` where keys are
    within rounding of each other: every prefix is still a valid code vector."""
    nb = nv * (k - 1)
    wsum, xbar, varx = _centre(xv, gv, nv, xc)
    su = 0.0
    suu = 0.0
    sxu = 0.0
    for i in range(nv):
        su += gv[i] * u[i]
        suu += gv[i] * u[i] * u[i]
        sxu += gv[i] * xc[i] * u[i]
    best = _eval(su, suu, sxu, wsum, varx)
    # Keys in increasing order without a sort: with y = (x − x_min)/α = n + f (n integer,
    # 0 ≤ f < 1), key (i, j) sits at n_i − j + f_i, so walk the integers L = n_i − j upwards
    # and, at each, the elements by increasing f (ties in index order).
    nint = np.empty(nv, dtype=np.int64)
    for i in range(nv):
        y = (xv[i] - xv[0]) / alpha
        fl = np.floor(y)
        nint[i] = np.int64(fl)
        keys[i] = y - fl
    byf = np.argsort(keys[:nv], kind="mergesort")
    p = 0
    for lev in range(nint[0] - (k - 2), nint[nv - 1] + 1):
        for q in range(nv):
            i = byf[q]
            j = nint[i] - lev
            if 0 <= j <= k - 2:
                order[p] = i * (k - 1) + j
                p += 1
    su = (k - 1) * wsum
    suu = (k - 1) * (k - 1) * wsum
    sxu = 0.0
    bestp = -1
    for p in range(nb):
        e = order[p]
        i = e // (k - 1)
        j = e % (k - 1)
        su -= gv[i]
        suu -= gv[i] * (2 * j + 1)
        sxu -= gv[i] * xc[i]
        s = _eval(su, suu, sxu, wsum, varx)
        if s < best:
            best = s
            bestp = p + 1
    if bestp >= 0:
        _copy_prefix(order, bestp, k, nv, u)
    return nb


@helper
def _try_start(xv, gv, nv, u, best_u, best, levels, mids, v, start):
    """Refit and polish the codes ``u``; keep them in ``best_u`` when their loss beats
    ``best[2]`` (``best`` = [α, m, loss, start loss]; a ``start``'s refitted loss also goes
    to ``best[3]``). Returns the rounds run."""
    alpha, m, loss, ok = _fit(xv, gv, nv, u)
    if not ok:
        return 0
    if start and loss < best[3]:
        best[3] = loss
    alpha, m, loss, rounds = _polish(xv, gv, nv, u, alpha, m, loss, levels, mids, v)
    if loss < best[2]:
        best[0] = alpha
        best[1] = m
        best[2] = loss
        for i in range(nv):
            best_u[i] = u[i]
    return rounds + 1


@helper
def _heuristic(xv, gv, nv, k, levels, mids, xc, keys, order, u, best_u, v, best, sweep_max,
               scan_max):
    """Best codes found from the starting points of the module docstring into ``best_u``;
    ``best`` receives [α, m, loss, best start loss]. Returns the number of evaluations."""
    lo = xv[0]
    hi = xv[nv - 1]
    rng = hi - lo
    evals = 0
    # Min–max (Q4_1).
    alpha = rng / (k - 1)
    _nearest(xv, nv, alpha, lo, levels, mids, u)
    evals += _try_start(xv, gv, nv, u, best_u, best, levels, mids, v, True)
    # llama.cpp make_qkx2_quants candidates (rmin −1, rdelta 0.1, nstep 20).
    for i in range(21):
        iscale = (-1.0 + 0.1 * i + (k - 1)) / rng
        if not iscale > 0.0:  # K = 2: the first candidate has no scale
            continue
        _nearest(xv, nv, 1.0 / iscale, lo, levels, mids, u)
        evals += _try_start(xv, gv, nv, u, best_u, best, levels, mids, v, True)
    # GPTQ asymmetric integer zero point: s = (max − min)/(K − 1) with min ≤ 0 ≤ max.
    zlo = min(lo, 0.0)
    zhi = max(hi, 0.0)
    s = (zhi - zlo) / (k - 1)
    z = min(max(np.floor(-zlo / s + 0.5), 0.0), k - 1.0)
    _nearest(xv, nv, s, -z * s, levels, mids, u)
    evals += _try_start(xv, gv, nv, u, best_u, best, levels, mids, v, True)
    # The best offset at each of SCAN_SCALES scales f·(max − min)/(K − 1), f from ½ to 3/2
    # geometrically (the optimum's f lies in [0.57, 1.32] on Gaussian groups of 32 at 2 and
    # 4 bits; the loss over the offset is not convex, so the starts' own offsets miss it).
    if nv * (k - 1) <= scan_max:
        for i in range(SCAN_SCALES):
            f = 0.5 * 3.0 ** (i / (SCAN_SCALES - 1.0))
            for e in range(nv):
                u[e] = best_u[e]
            evals += _offset_sweep(xv, gv, nv, k, f * rng / (k - 1), xc, keys, order, u)
            evals += _try_start(xv, gv, nv, u, best_u, best, levels, mids, v, False)
    # Best offset at the incumbent's scale, then alternate; repeat while it helps.
    if nv * (k - 1) <= sweep_max:
        for _ in range(MAX_ROUNDS):
            for i in range(nv):
                u[i] = best_u[i]
            evals += _offset_sweep(xv, gv, nv, k, best[0], xc, keys, order, u)
            before = best[2]
            evals += _try_start(xv, gv, nv, u, best_u, best, levels, mids, v, False)
            if not best[2] < before:
                break
    return evals


@njit(cache=True, nogil=True)
def _affine_rows(xs, hs, k, exact_max, sweep_max, out, codes, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`affine_search`."""
    n = xs.shape[1]
    unit = hs.shape[0] == 0
    levels = np.arange(k).astype(np.float64)
    mids = 0.5 * (levels[1:] + levels[:-1])
    xv = np.empty(n)
    gv = np.empty(n)
    xc = np.empty(n)
    idx = np.empty(n, dtype=np.int64)
    u = np.empty(n, dtype=np.int64)
    best_u = np.empty(n, dtype=np.int64)
    v = np.empty(n, dtype=np.int64)
    exact_ok = k <= EXACT_LEVELS and n <= exact_max
    nbmax = n * (k - 1)
    if not exact_ok:
        nbmax = min(nbmax, max(sweep_max, SCAN_MAX))
    keys = np.empty(nbmax)
    order = np.empty(nbmax, dtype=np.int64)
    ncrit = n * (n - 1) // 2 * max(k - 2, 0) if exact_ok else 0
    crit = np.empty(ncrit)
    eva = np.empty(ncrit, dtype=np.int64)
    evc = np.empty(ncrit, dtype=np.int64)
    evd = np.empty(ncrit, dtype=np.int64)
    pos = np.empty(nbmax if exact_ok else 0, dtype=np.int64)
    csu = np.empty(nbmax + 1 if exact_ok else 0)
    csuu = np.empty(nbmax + 1 if exact_ok else 0)
    csxu = np.empty(nbmax + 1 if exact_ok else 0)
    best = np.empty(4)
    hrow = np.empty(0)
    for r in range(t0, t1):
        x = xs[r]
        if not unit:
            hrow = hs[r]
        nv = _compress(x, hrow, unit, xv, gv, idx)
        evals = 0
        sxx = 0.0
        if nv == 0:  # every weight zero: the loss is 0 whatever the fit
            alpha = 1.0
            m = 0.0
            loss = 0.0
            start = 0.0
        elif nv == 1:  # constant on the support: m = x, α free (1), codes 0
            alpha = 1.0
            m = xv[0]
            loss = 0.0
            start = 0.0
        else:
            sxx = _centre(xv, gv, nv, xc)[2]  # (xc is scratch for the searches below)
            best[0] = 0.0
            best[1] = 0.0
            best[2] = np.inf
            best[3] = np.inf
            evals = _heuristic(xv, gv, nv, k, levels, mids, xc, keys, order, u, best_u, v,
                               best, nbmax if exact_ok else sweep_max, 0 if exact_ok else SCAN_MAX)
            alpha = best[0]
            m = best[1]
            loss = best[2]
            start = best[3]
            if exact_ok:
                evals += _exact(xv, gv, nv, k, xc, keys, order, pos, csu, csuu, csxu, crit,
                                eva, evc, evd, u, v)
                a2, m2, l2, ok = _fit(xv, gv, nv, u)
                if ok and l2 < loss:
                    a2, m2, l2, _ = _polish(xv, gv, nv, u, a2, m2, l2, levels, mids, v)
                    if l2 < loss:
                        alpha, m, loss = a2, m2, l2
                        for i in range(nv):
                            best_u[i] = u[i]
        # Every element (zero weights included) gets the nearest code at the final fit;
        # the positive-weight ones keep the searched codes (their fit is (α, m)).
        for i in range(n):
            c = nearest_index((x[i] - m) / alpha, levels, mids, True)
            if nv >= 2 and (unit or hrow[i] > 0.0):
                c = best_u[_find(xv, nv, x[i])]
            codes[r, i] = c
        out[r, ALPHA] = alpha
        out[r, OFFSET] = m
        out[r, LOSS] = _row_loss(x, hrow, unit, codes[r], alpha, m)
        out[r, SXX] = sxx
        out[r, EVALS] = evals
        out[r, CERTIFIED] = 1.0 if (exact_ok or nv <= 1) else 0.0
        out[r, START] = start


@helper
def _find(xv, nv, value):
    """Index of ``value`` in the ascending distinct values ``xv[:nv]`` (binary search)."""
    lo = 0
    hi = nv - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if xv[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@helper
def _row_loss(x, h, unit, c, alpha, m):
    """``Σ h (x − α c − m)²`` over the row in index order."""
    s = 0.0
    for i in range(x.shape[0]):
        e = x[i] - alpha * c[i] - m
        s += (1.0 if unit else h[i]) * e * e
    return s


def affine_search(xs, hs, nlevels, exact_max, out, codes, sweep_max=1 << 16):
    """Best ``x̂ = α·u + m`` per row (module docstring) into ``out`` and ``codes``.

    Parameters
    ----------
    xs : ndarray, float64, shape (rows, n)
        Finite weights (working scale).
    hs : ndarray, float64, shape (rows, n) or (0, 0)
        Importance ``h ≥ 0``; shape (0, 0) means all ones. Zero weights are ignored by the
        search; their elements get the nearest code at the final ``(α, m)``.
    nlevels : int
        ``K ≥ 2``: codes ``0 … K − 1``.
    exact_max : int
        Rows with ``n ≤ exact_max`` and ``K ≤ 16`` are solved exactly (certified); the others
        get the heuristic's best (certified 0).
    out : ndarray, float64, shape (rows, 7)
        Per row: α (> 0), m, S = ``Σ h (x − α u − m)²`` recomputed from the codes in index
        order, Sxx = ``Σ h (x − x̄_h)²`` (the loss of the best constant; 0 when fewer than two
        distinct positive-weight values), evaluations (code vectors scored), certified
        (1.0/0.0), S0 = the best loss among the heuristic's starting points (each refitted;
        0 for rows with fewer than two distinct values).
    codes : ndarray, int16, shape (rows, n)
        Codes in ``[0, K − 1]``; ``(α, m)`` is their weighted least-squares fit. Rows with
        fewer than two distinct positive-weight values: m = that value (0 when every weight
        is zero), α = 1, codes the nearest of ``(x − m)/α``; S = 0.
    sweep_max : int
        The heuristic's offset sweep runs when ``n·(K − 1) ≤ sweep_max``.

    Returns
    -------
    out, codes
    """
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    hs = np.ascontiguousarray(hs, dtype=np.float64)
    rows, n = xs.shape
    k = int(nlevels)
    cost = n * k * (n * k if (n <= exact_max and k <= EXACT_LEVELS) else 1)
    run_tasks(_affine_rows, rows, rows * cost,
              (xs, hs, k, int(exact_max), int(sweep_max), out, codes))
    return out, codes


@njit(cache=True, nogil=True)
def _affine_fit_rows(xs, hs, u, out, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`affine_fit`."""
    n = xs.shape[1]
    ones = np.ones(n)
    for r in range(t0, t1):
        g = ones if hs.shape[0] == 0 else hs[r]
        wsum = 0.0
        for i in range(n):
            wsum += g[i]
        if wsum == 0.0:  # nothing weighs: any fit, loss 0
            out[r, 0], out[r, 1], out[r, 2] = 1.0, 0.0, 0.0
            continue
        alpha, m, loss, _ = _fit(xs[r], g, n, u[r])
        out[r, 0], out[r, 1], out[r, 2] = alpha, m, loss


def affine_fit(xs, hs, u, out):
    """Per row the weighted least-squares ``(α, m)`` of the codes ``u`` (float64, rows × n)
    and the loss ``Σh(x − αu − m)²`` into ``out`` (rows, 3), sums in index order (``_fit``):
    α = 0 and m the weighted mean where the codes are constant or the fitted α is not
    positive. Twin: ``naive.affine_fit``."""
    run_tasks(_affine_fit_rows, xs.shape[0], xs.size, (xs, hs, u, out))
    return out
