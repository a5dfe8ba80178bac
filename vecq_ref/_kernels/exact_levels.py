"""Exact, certified scale search over any level set, weighted (docs/theory.md, "Exact search
over any level set, weighted", §4.5): the global maximum of ``r = S1²/S2`` over all
steps, per row, for uniform lattices of any range, codebooks (NF4, FP4, IQ4_NL), signed scales
and integer zero points, with importance weights ``h ≥ 0``.

Paths. For a step ``s > 0`` an element of magnitude ``a = |x| > 0`` and sign σ sits at the
level nearest ``x/s`` (``levelset.nearest_index``, ties farther from zero). As ``s`` falls the
element walks away from zero along its sign's *path*: it starts at the level nearest ``0⁺``
(σ = +) or ``0⁻`` (σ = −) and takes its ``c``-th step when ``fl(a/s) ≥ μ_c``, with
``μ_c > 0`` the ``|midpoint|`` crossed (the tie rule makes both signs use ``≥``). So the state
of a step is the vector of counts ``c_i``, the counts only grow as ``s`` falls, and each
element has the exact float threshold ``T(a, μ) = max{s : fl(a/s) ≥ μ}`` per step of its path.
With ``λ = σ·ℓ`` (the level toward the element's own sign, negative only for the first level of
a zero-less codebook) ``S1 = Σ h·a·λ`` and ``S2 = Σ h·λ²`` both grow with every step of a path,
the monotonicity the bounds use. A negative step is the positive search on ``−x``.

Search per (direction, zero point): a few Lloyd iterations give an incumbent; two
per-element lower bounds of the loss (clipping below a step, rounding above it) bracket the
steps ``(sa, sb]`` where the optimum's self-consistent α* can lie; rows of up to ``SMALL``
active elements sweep every threshold inside (bucket-sorted keys ``a·(1/μ)``, exact thresholds
wherever two lie within 16ε, incremental compensated sums); larger rows run a branch and bound
inside the bracket (self-consistency test and the crossing bound
``f_v(α) ≤ f_H(α) + α(s_hi − α)·(S2(s_lo) − S2(s_hi))``), sweeping small ranges. Every
state's ``r`` carries a proven error bar; every state whose upper ``r`` reaches the best lower
``r`` is re-evaluated directly (compensated sums in element order) and the direct values
decide: the largest direct ``r``; among two or more candidates within ``TIE_RTOL`` of it the
self-consistent ones (``α = S1/S2`` inside their own interval) first, then the larger step
(docs/theory.md §4.5, "Ties": a long row has distinct states closer than ``TIE_RTOL``).
Twin: ``naive.exact_levelset`` (all breakpoints, brute force).

Lean path (:func:`_lean`, rows of up to ``LEAN`` active elements, the formats' groups): the
same winner, cheaper. Incumbents are division-free (counts of ``a·(1/s)``: *an* assignment,
whose ``r`` bounds the optimum below, docs/theory.md §4.5); the bracket as above; the
thresholds inside it go to buckets linear in the key, about ``BUCKET`` each; prefix sums at
the bucket edges (plain sums of non-negative increments with a proven error bound) raise the
best lower ``r``; segments between clean edges (no key within ``64ε`` of the edge) are
dropped by the crossing bound and only the survivors are sorted and swept; candidates and the
direct re-evaluations that decide are those of the general path. Arguments are packed (each
array argument of a Numba call costs two atomic reference-count updates) and every buffer is
allocated once per task. ``evaluations`` counts what each path evaluates (incumbents, direct
evaluations, edges, swept states), so it differs between the paths; every other output bit is
the same (tests/test_exact_lean.py). With a signed scale on the full-range lattices (whose two
paths share all but their last steps) lean rows search both directions at once
(:func:`_lean2`, docs/theory.md §4.5 "Both directions at once"): one rounding, bracket, event
list, bucketing and sort serve both; candidates and the decision stay per direction. Their
bracket comes from the chord bound (:func:`_chord2`, docs/theory.md §4.5 "Chord bound"):
``G(α) = Σhx² − D(α)`` plus ``C·α²`` is convex on a cell of α when ``C`` bounds the ``S2`` of
every state nearest in it, so probes at the cell's ends (one pass for both directions) bound
``G`` over it, and a branch and bound over cells leaves a narrow ``(sa, sb]``.
"""

import numpy as np
from numba import njit

from . import f64, helper, run_tasks
from .levelset import is_uniform, midpoints, nearest_index, scaled

_EPS = 2.220446049250313e-16
#: Relative slack of the interval and self-consistency tests (threshold vs real quotient).
_SL = 64.0 * _EPS
#: Lloyd iterations for the incumbent.
LLOYD = 3
#: A range with at most ``max(SWEEP, n_active // 2)`` breakpoints is swept, not split.
SWEEP = 64
#: ... or at most ``n_active · SPLIT_MUL`` (large rows: a split costs O(n), a swept state O(1)).
SPLIT_MUL = 1
#: Rows with at most this many active elements sweep their whole bracket (no branch and bound).
SMALL = 1024
#: Rows with at most this many active elements take the lean path (:func:`_lean`).
LEAN = 256
#: The lean path's buckets hold about this many thresholds each ...
BUCKET = 2
#: ... and brackets of at most this many thresholds are swept without buckets.
LEAN_SWEEP = 16
#: First guesses of the bracket's ends, ``sinc / BRACKET_LO`` and ``sinc · BRACKET_HI``
#: (squared until the loss bounds hold).
BRACKET_LO = 1.2
BRACKET_HI = 1.5
#: The chord bound's grid (both directions at once, :func:`_chord2`): probes at
#: ``α = max|x|/(c_max + ½)·f`` for these ``f`` ...
CHORD_GRID = (0.5, 0.9, 1.0, 1.13, 1.3, 1.7, 2.8)
#: ... and cells are split while a kept direction crosses more than this many thresholds.
CHORD_LEAF = 6.0
#: At most this many probes per row (then the cells left are kept).
CHORD_PROBES = 64
#: Output columns.
COLS = 9
#: States whose directly evaluated ``r`` agree within this relative amount are tied (it
#: exceeds the rounding of the compensated direct sums, a few ε): the larger |step| wins, then
#: +α, then the smallest z. So a constant or one-element row gets the top interval's codes
#: (``[0.7]`` on −8 … 7: code 1, α = 0.7, loss 0), not the code whose rounding happened to
#: give the largest float ``r``.
TIE_RTOL = 32.0 * _EPS
#: Among two or more tied candidates a state whose ``α = S1/S2`` lies outside its own interval
#: (relative slack ``SELF_RTOL``, as ``certified``) loses to every self-consistent one.
SELF_RTOL = 1e-12


@njit(cache=True, nogil=True, inline="always")
def _count(y, mu, g, cm, fast):
    """Steps taken along path ``g`` at ``y = fl(a/s) ≥ 0``: ``#{1 ≤ c ≤ cm : μ_c ≤ y}``."""
    if fast:  # μ_c = c − ½ (integer levels containing 0): floor and an exact fraction
        f = np.floor(y)
        f += 1.0 if y - f >= 0.5 else 0.0
        return np.int64(min(f, np.float64(cm)))  # also y = inf
    lo = 0
    hi = cm
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if mu[g, mid] <= y:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True, nogil=True, inline="always")
def _add(s, c, x):
    """Compensated step: ``(s, c)`` with ``s + c`` the running sum plus ``x``. The rounding
    error of ``s + x`` by Knuth's branch-free TwoSum: exactly the error Neumaier's branch
    computes (both are exact), so the same bits, without a mispredicted branch per term."""
    t = s + x
    bp = t - s
    c += (s - (t - bp)) + (x - bp)
    return t, c


@helper
def _eval(s, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt, store):
    """Direct ``(S1, S2, Σc)`` of the state at step ``s > 0``, compensated sums in element
    order; with ``store`` the counts are also written to ``cnt``."""
    s1 = 0.0
    e1 = 0.0
    s2 = c0
    e2 = 0.0
    ct = 0
    for i in range(nact):
        g = sg[i]
        c = _count(a[i] / s, mu, g, cmax[g], fast)
        if store:
            cnt[i] = c
        s1, e1 = _add(s1, e1, ha[i] * lam[g, c])
        s2, e2 = _add(s2, e2, h[i] * lam2[g, c])
        ct += c
    return s1 + e1, s2 + e2, ct


@helper
def threshold(a, m):
    """Largest float ``s > 0`` with ``fl(a/s) ≥ m`` (``a, m > 0``); 0 if none."""
    g = a / m
    if a / g >= m:
        while True:
            u = np.nextafter(g, np.inf)
            if u == np.inf or not a / u >= m:
                return g
            g = u
    while True:
        g = np.nextafter(g, 0.0)
        if g <= 0.0:
            return 0.0
        if a / g >= m:
            return g


@njit(cache=True, nogil=True, inline="always")
def _errs(s1, s2, m, n0):
    """Absolute error bounds of compensated sums of ``m`` terms (docs/theory.md)."""
    k = 8.0 * _EPS + 8.0 * m * _EPS * _EPS
    return k * (abs(s1) + 2.0 * n0), k * s2


@njit(cache=True, nogil=True, inline="always")
def _ratio(s1, s2):
    return s1 * s1 / s2 if s1 > 0.0 and s2 > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _rlo_rhi(s1, s2, m, n0):
    e1, e2 = _errs(s1, s2, m, n0)
    u = s1 + e1
    if u <= 0.0:
        rhi = 0.0
    else:
        d = s2 - e2
        rhi = np.inf if d <= 0.0 else u * u / d * (1.0 + 4.0 * _EPS)
    v = s1 - e1
    rlo = v * v / (s2 + e2) * (1.0 - 4.0 * _EPS) if v > 0.0 and s2 > 0.0 else 0.0
    return rlo, rhi


@helper
def _room(cand, ncand, need, best_lo):
    """``(cand, ncand)`` with room for ``need`` more candidates: those whose upper ``r`` is
    below ``best_lo`` are dropped first, then the buffer grows. Called outside loops only
    (an array reassigned inside a loop costs Numba reference counting on every iteration)."""
    if ncand + need <= cand.shape[0]:
        return cand, ncand
    k = 0
    for j in range(ncand):
        if cand[j, 0] >= best_lo:
            for q in range(4):
                cand[k, q] = cand[j, q]
            k += 1
    return _grow(cand, k + need), k


@njit(cache=True, nogil=True, inline="always")
def _put(cand, ncand, rhi, sa, smu, rdir):
    """Append a candidate: upper ``r``, the step (``smu = 0``) or the threshold's ``(a, μ)``,
    and the direct ``r`` (−1 when not evaluated directly). Room was made by :func:`_room`."""
    cand[ncand, 0] = rhi
    cand[ncand, 1] = sa
    cand[ncand, 2] = smu
    cand[ncand, 3] = rdir
    return ncand + 1


@helper
def _prune(slo, s1l, s2l, ml, shi, s1h, s2h, mh, n0, best_lo):
    """True when no self-consistent state inside ``(slo, shi]`` can reach ``best_lo``."""
    e1l, e2l = _errs(s1l, s2l, ml, n0)
    e1h, e2h = _errs(s1h, s2h, mh, n0)
    s1lu = s1l + e1l
    if s1lu <= 0.0:
        return True  # every state inside has S1 ≤ 0: α of the wrong sign, r = 0
    s2hl = s2h - e2h
    s2lu = s2l + e2l
    amax = s1lu / s2hl * (1.0 + 4.0 * _EPS) if s2hl > 0.0 else np.inf
    amin = max(s1h - e1h, 0.0) / s2lu * (1.0 - 4.0 * _EPS)
    lo = slo * (1.0 - _SL)
    hi = shi * (1.0 + _SL)
    if amax < lo or amin > hi:
        return True
    aa = max(amin, lo)
    ab = min(amax, hi)
    d = s2lu - max(s2hl, 0.0)
    b = s1h + e1h + 0.5 * hi * d
    c = s2lu
    al = min(max(b / c, aa), ab)
    ub = (2.0 * al * b - al * al * c) * (1.0 + 16.0 * _EPS)
    return ub < best_lo


@helper
def _isort(keys, perm, k0, k1):
    """Insertion sort of ``perm[k0:k1]`` by ``keys`` descending."""
    for i in range(k0 + 1, k1):
        p = perm[i]
        kv = keys[p]
        j = i - 1
        while j >= k0 and keys[perm[j]] < kv:
            perm[j + 1] = perm[j]
            j -= 1
        perm[j + 1] = p


@helper
def _grow(arr, need):
    """``arr`` or a larger copy with room for ``need`` rows."""
    if need <= arr.shape[0]:
        return arr
    big = np.empty((max(need, 2 * arr.shape[0]),) + arr.shape[1:], dtype=arr.dtype)
    big[:arr.shape[0]] = arr
    return big


@helper
def _lb_below(s, a, sg, h, nact, lam, cmax):
    """Lower bound of the loss ``Σh(x − αℓ)²`` of every assignment at any ``α ≤ s``: an
    element beyond its path's end level ``λ_top`` (``a > s·λ_top``) keeps at least
    ``(a − s·λ_top)²``; one whose path never turns positive keeps ``a²``."""
    t = 0.0
    for i in range(nact):
        g = sg[i]
        lt = lam[g, cmax[g]]
        ai = a[i]
        d = ai if lt <= 0.0 else max(ai - s * lt, 0.0)  # adding +0: the same bits
        t += h[i] * (d * d)
    return t


@helper
def _lb_above(s, a, sg, h, nact, lam, mu, cmax, pidx):
    """Lower bound of the loss of every nearest assignment at any ``α ≥ s``: an element is at
    a path level of count at most ``count(a/s)``; the best such level is its first positive
    one ``λ_p`` (error 0 if ``a ≥ s·λ_p``, else at least ``(s·λ_p − a)²``) or ``λ_0 ≤ 0``
    (error at least ``(a − s·λ_0)²``)."""
    t = 0.0
    for i in range(nact):
        g = sg[i]
        ai = a[i]
        m = np.inf
        l0 = lam[g, 0]
        if l0 <= 0.0:
            d = ai - s * l0
            m = d * d
        p = pidx[g]
        if p <= cmax[g] and (p == 0 or ai >= s * mu[g, p] * (1.0 - 4.0 * _EPS)):
            lp = lam[g, p]
            d = s * lp - ai
            m = min(m, d * d if d > 0.0 else 0.0)
        if m < np.inf:
            t += h[i] * m
    return t


@helper
def _isort_col(tk, perm, k0, k1):
    """Insertion sort of ``perm[k0:k1]`` by ``tk[:, 0]`` descending."""
    for i in range(k0 + 1, k1):
        p = perm[i]
        kv = tk[p, 0]
        j = i - 1
        while j >= k0 and tk[perm[j], 0] < kv:
            perm[j + 1] = perm[j]
            j -= 1
        perm[j + 1] = p


@helper
def _bucket_sort(bk, perm, cb, nb, lo, hi):
    """``perm[:nb]``: the order of ``bk[:nb]`` descending (keys in ``[lo, hi]``): a counting
    sort into ``nb`` buckets, then an insertion sort (nearly sorted by then)."""
    for j in range(nb + 1):
        cb[j] = 0
    scale = nb / (hi - lo) if hi > lo else 0.0
    for q in range(nb):
        j = min(np.int64((hi - bk[q]) * scale), nb - 1)
        cb[j + 1] += 1
    for j in range(nb):
        cb[j + 1] += cb[j]
    for q in range(nb):
        j = min(np.int64((hi - bk[q]) * scale), nb - 1)
        perm[cb[j]] = q
        cb[j] += 1
    _isort(bk, perm, 0, nb)


@helper
def _sweep(slo, shi, s1, s2, cnt, a, sg, h, ha, nact, lam, mu, imu, dl, dq, cmax, m0, n0,
           best_lo, cand, ncand, bk, bi, bc, perm, tk, cb):
    """Every state from the step ``shi`` (counts ``cnt``, sums ``s1, s2``) down to ``slo``:
    thresholds in decreasing order (exact ones inside clusters closer than 16ε), incremental
    sums, candidates pushed. Returns ``(best_lo, cand, ncand, states, bk, bi, bc, perm, tk,
    cb)``; ``tk`` rows hold (bucket or exact threshold, ΔS1, ΔS2) per threshold."""
    cut = slo * (1.0 - 16.0 * _EPS)
    nb = 0
    for i in range(nact):
        g = sg[i]
        ai = a[i]
        for c in range(cnt[i] + 1, cmax[g] + 1):
            if ai * imu[g, c] < cut:
                break
            nb += 1
    if nb == 0:
        return best_lo, cand, ncand, 0, bk, bi, bc, perm, tk, cb
    # Each buffer on its own (they grow at different times: cb holds nb + 1).
    bk = _grow(bk, nb)
    bi = _grow(bi, nb)
    bc = _grow(bc, nb)
    perm = _grow(perm, nb)
    tk = _grow(tk, nb)
    cb = _grow(cb, nb + 1)
    if ncand + nb > cand.shape[0]:
        cand, ncand = _room(cand, ncand, nb, best_lo)
    nb = 0
    lo = np.inf
    hi = 0.0
    for i in range(nact):
        g = sg[i]
        ai = a[i]
        hai = ha[i]
        hi_ = h[i]
        for c in range(cnt[i] + 1, cmax[g] + 1):
            key = ai * imu[g, c]
            if key < cut:
                break
            bk[nb] = key
            bi[nb] = i
            bc[nb] = c
            tk[nb, 1] = hai * dl[g, c]
            tk[nb, 2] = hi_ * dq[g, c]
            lo = min(lo, key)
            hi = max(hi, key)
            nb += 1
    if nb > 512:  # large: a merge sort (buckets of skewed keys would not stay small)
        o = np.argsort(-bk[:nb], kind="mergesort")
        for q in range(nb):
            perm[q] = o[q]
    else:
        _bucket_sort(bk, perm, cb, nb, lo, hi)
    # One relative error bound for every state of the sweep (S1 only grows along it; the sums
    # are compensated, of at most ``mend`` terms): r·(1 ± δ) bracket the exact r.
    mend = m0 + nb
    k2 = 8.0 * _EPS + 8.0 * mend * _EPS * _EPS
    s1start = s1 - k2 * (abs(s1) + 2.0 * n0)
    delta = 0.0
    if s1start > 0.0:
        delta = 1.01 * (3.0 * k2 + 4.0 * k2 * n0 / s1start) + 8.0 * _EPS
    up = 1.0 + delta
    dn = 1.0 - delta
    upf = up * (1.0 + 4.0 * _EPS)
    tol = 1.0 - 16.0 * _EPS
    u1 = s1
    c1 = 0.0
    u2 = s2
    c2 = 0.0
    states = 0
    k = 0
    while k < nb:
        p = perm[k]
        if k + 1 == nb or bk[perm[k + 1]] < bk[p] * tol:
            u1, c1 = _add(u1, c1, tk[p, 1])
            u2, c2 = _add(u2, c2, tk[p, 2])
            s1 = u1 + c1
            s2 = u2 + c2
            states += 1
            k += 1
            if s1start > 0.0:
                if s1 * s1 * upf >= best_lo * s2:
                    r = s1 * s1 / s2
                    best_lo = max(best_lo, r * dn)
                    i = bi[p]
                    ncand = _put(cand, ncand, r * up, a[i], mu[sg[i], bc[p]], -1.0)
            else:
                rlo, rhi = _rlo_rhi(s1, s2, mend, n0)
                best_lo = max(best_lo, rlo)
                if rhi >= best_lo:
                    i = bi[p]
                    ncand = _put(cand, ncand, rhi, a[i], mu[sg[i], bc[p]], -1.0)
            continue
        # A cluster: order by the exact thresholds, apply equal ones together.
        e = k + 1
        while e < nb and bk[perm[e]] >= bk[perm[e - 1]] * tol:
            e += 1
        for q in range(k, e):
            p = perm[q]
            tk[p, 0] = threshold(a[bi[p]], mu[sg[bi[p]], bc[p]])
        _isort_col(tk, perm, k, e)
        q = k
        while q < e:
            t = tk[perm[q], 0]
            while q < e and tk[perm[q], 0] == t:
                p = perm[q]
                u1, c1 = _add(u1, c1, tk[p, 1])
                u2, c2 = _add(u2, c2, tk[p, 2])
                q += 1
            s1 = u1 + c1
            s2 = u2 + c2
            states += 1
            rlo, rhi = _rlo_rhi(s1, s2, mend, n0)
            best_lo = max(best_lo, rlo)
            if rhi >= best_lo:
                ncand = _put(cand, ncand, rhi, t, 0.0, -1.0)
        k = e
    return best_lo, cand, ncand, states, bk, bi, bc, perm, tk, cb


@helper
def _core(a, sg, h, ha, nact, ext, x2, lam, lam2, mu, imu, dl, dq, cmax, pidx, fast, c0, n0,
          best_lo, pts, stack, cand, cnt, bk, bi, bc, perm, tk, cb):
    """Best state for steps ``s > 0`` of one (direction, level set), given the best lower
    ``r`` so far ``best_lo``: returns ``(r, s, evaluations, best_lo, pts, stack, cand, bk, bi,
    bc, perm, tk)``, ``s`` inside the winner's interval (``-1`` when no element moves, or
    ``r = -1`` when no state here can reach ``best_lo``)."""
    evals = 0
    movable = 0
    stop = 0.0
    sbot = np.inf
    s0 = 0.0
    for g in range(2):
        cm = cmax[g]
        if cm > 0 and ext[g, 0] > 0.0:
            movable += 1
            stop = max(stop, ext[g, 0] * imu[g, 1])
            sbot = min(sbot, ext[g, 1] * imu[g, cm])
            if lam[g, cm] > 0.0:
                s0 = max(s0, ext[g, 0] / lam[g, cm])
    if movable == 0:
        s1, s2, _ = _eval(1.0, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt, False)
        return (_ratio(s1, s2), -1.0, 1, best_lo, pts, stack, cand, bk, bi, bc, perm, tk, cb)
    stop *= 1.0 + 8.0 * _EPS
    sbot *= 1.0 - 8.0 * _EPS
    if not s0 > 0.0:
        s0 = np.sqrt(stop) * np.sqrt(sbot)
    s0 = min(max(s0, sbot), stop)
    m0 = nact + 2.0
    ncand = 0
    npts = 0
    # Incumbent: Lloyd from s0 (the largest magnitude at its path's end level).
    s = s0
    sinc = s0
    rinc = -1.0
    pts = _grow(pts, LLOYD + 2)
    cand, ncand = _room(cand, ncand, LLOYD + 2, best_lo)
    for _ in range(LLOYD):
        s1, s2, ct = _eval(s, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt, False)
        evals += 1
        pts[npts, 0] = s
        pts[npts, 1] = s1
        pts[npts, 2] = s2
        pts[npts, 3] = ct
        npts += 1
        r = _ratio(s1, s2)
        if r > rinc:
            rinc = r
            sinc = s
        rlo, rhi = _rlo_rhi(s1, s2, m0, n0)
        best_lo = max(best_lo, rlo)
        if rhi >= best_lo:
            ncand = _put(cand, ncand, rhi, s, 0.0, r)
        if s1 <= 0.0:
            break
        nxt = s1 / s2
        if not (nxt > sbot and nxt < stop) or nxt == s:
            break
        s = nxt
    # Bracket: α ≤ sa or α ≥ sb cannot beat the incumbent's loss (docs/theory.md): guess
    # sinc/1.2 and 1.5·sinc, widen until the loss bounds exclude the outside.
    lu = x2 * (1.0 + 4.0 * m0 * _EPS) - best_lo
    fac = 1.0 - 4.0 * m0 * _EPS
    f = BRACKET_LO
    sa = sinc / f
    while True:
        if sa <= sbot:
            sa = 0.0
            break
        if _lb_below(sa, a, sg, h, nact, lam, cmax) * fac > lu:
            break
        f *= f
        sa = sinc / f
    f = BRACKET_HI
    sb = sinc * f
    while True:
        if sb >= stop:
            sb = stop
            break
        if _lb_above(sb, a, sg, h, nact, lam, mu, cmax, pidx) * fac > lu:
            break
        f *= f
        sb = sinc * f
    sa *= 1.0 - _SL
    sb = min(sb * (1.0 + _SL), stop)
    if sb > sa:
        s1, s2, ct = _eval(sb, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt, True)
        evals += 1
        rlo, rhi = _rlo_rhi(s1, s2, m0, n0)
        best_lo = max(best_lo, rlo)
        if rhi >= best_lo:
            ncand = _put(cand, ncand, rhi, sb, 0.0, _ratio(s1, s2))
        if nact <= SMALL:
            best_lo, cand, ncand, st, bk, bi, bc, perm, tk, cb = _sweep(
                sa, sb, s1, s2, cnt, a, sg, h, ha, nact, lam, mu, imu, dl, dq, cmax, m0, n0,
                best_lo, cand, ncand, bk, bi, bc, perm, tk, cb)
            evals += st
        else:
            # Branch and bound over (sa, sb]: the bracket's ends and the Lloyd steps inside.
            pts = _grow(pts, npts + 2)
            pts[npts, 0] = sb
            pts[npts, 1] = s1
            pts[npts, 2] = s2
            pts[npts, 3] = ct
            npts += 1
            if sa > 0.0:
                s1, s2, ct = _eval(sa, a, sg, h, ha, nact, lam, lam2, mu, cmax,
                                   fast, c0, cnt, False)
                evals += 1
                rlo, rhi = _rlo_rhi(s1, s2, m0, n0)
                best_lo = max(best_lo, rlo)
                if rhi >= best_lo:
                    ncand = _put(cand, ncand, rhi, sa, 0.0, _ratio(s1, s2))
            else:
                sa = sbot
                s1, s2, ct = _eval(sa, a, sg, h, ha, nact, lam, lam2, mu, cmax,
                                   fast, c0, cnt, False)
                evals += 1
                rlo, rhi = _rlo_rhi(s1, s2, m0, n0)
                best_lo = max(best_lo, rlo)
                if rhi >= best_lo:
                    ncand = _put(cand, ncand, rhi, sa, 0.0, _ratio(s1, s2))
            pts[npts, 0] = sa
            pts[npts, 1] = s1
            pts[npts, 2] = s2
            pts[npts, 3] = ct
            npts += 1
            for i in range(1, npts):
                j = i
                while j > 0 and pts[j - 1, 0] < pts[j, 0]:
                    for q in range(4):
                        t = pts[j, q]
                        pts[j, q] = pts[j - 1, q]
                        pts[j - 1, q] = t
                    j -= 1
            nst = 0
            for i in range(npts - 1, 0, -1):
                if (pts[i, 0] >= sa and pts[i - 1, 0] <= sb and pts[i, 0] < pts[i - 1, 0]
                        and pts[i, 3] > pts[i - 1, 3]):
                    stack = _grow(stack, nst + 1)
                    stack[nst, 0] = i
                    stack[nst, 1] = i - 1
                    nst += 1
            smin_split = max(SWEEP, nact * SPLIT_MUL)
            while nst > 0:
                nst -= 1
                il = stack[nst, 0]
                ih = stack[nst, 1]
                slo = pts[il, 0]
                shi = pts[ih, 0]
                if _prune(slo, pts[il, 1], pts[il, 2], m0, shi, pts[ih, 1], pts[ih, 2], m0,
                          n0, best_lo):
                    continue
                nbp = np.int64(pts[il, 3] - pts[ih, 3])
                mid = np.sqrt(slo) * np.sqrt(shi)
                if nbp > smin_split and mid > slo and mid < shi:
                    s1, s2, ct = _eval(mid, a, sg, h, ha, nact, lam, lam2, mu, cmax,
                                       fast, c0, cnt, False)
                    evals += 1
                    pts = _grow(pts, npts + 1)
                    pts[npts, 0] = mid
                    pts[npts, 1] = s1
                    pts[npts, 2] = s2
                    pts[npts, 3] = ct
                    rlo, rhi = _rlo_rhi(s1, s2, m0, n0)
                    best_lo = max(best_lo, rlo)
                    if rhi >= best_lo:
                        cand, ncand = _room(cand, ncand, 1, best_lo)
                        ncand = _put(cand, ncand, rhi, mid, 0.0, _ratio(s1, s2))
                    stack = _grow(stack, nst + 2)
                    if pts[il, 3] > ct:
                        stack[nst, 0] = il
                        stack[nst, 1] = npts
                        nst += 1
                    if ct > pts[ih, 3]:
                        stack[nst, 0] = npts
                        stack[nst, 1] = ih
                        nst += 1
                    npts += 1
                    continue
                for i in range(nact):
                    g = sg[i]
                    cnt[i] = _count(a[i] / shi, mu, g, cmax[g], fast)
                best_lo, cand, ncand, st, bk, bi, bc, perm, tk, cb = _sweep(
                    slo, shi, pts[ih, 1], pts[ih, 2], cnt, a, sg, h, ha, nact, lam, mu, imu,
                    dl, dq, cmax, m0, n0, best_lo, cand, ncand, bk, bi, bc, perm, tk, cb)
                evals += st
    # The direct values decide among every candidate that may be the best: the largest
    # direct r, and among the candidates within TIE_RTOL of it (equal up to the rounding of
    # the direct sums) the largest step.
    top = -1.0
    for j in range(ncand):
        if cand[j, 0] < best_lo:
            cand[j, 3] = -2.0  # out of the running
            continue
        if cand[j, 3] < 0.0:
            s = cand[j, 1] if cand[j, 2] == 0.0 else threshold(cand[j, 1], cand[j, 2])
            s1, s2, _ = _eval(s, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt, False)
            evals += 1
            cand[j, 1] = s
            cand[j, 2] = 0.0
            cand[j, 3] = _ratio(s1, s2)
        top = max(top, cand[j, 3])
    # Among two or more tied candidates, one whose α = S1/S2 lies outside its own interval is
    # out first (it is beaten by the state at its α, docs/theory.md §4.5 "Ties"): a tie within
    # TIE_RTOL of distinct states of a long row (2^20 elements, 8 bits: 23ε apart).
    best_r = -1.0
    best_s = 0.0
    ntie = 0
    for j in range(ncand):
        if cand[j, 3] >= top * (1.0 - TIE_RTOL) and cand[j, 3] >= 0.0:
            ntie += 1
    while ntie > 1 and top > 0.0:
        jb = -1
        for j in range(ncand):
            if (cand[j, 3] >= top * (1.0 - TIE_RTOL) and cand[j, 2] == 0.0
                    and (jb < 0 or cand[j, 1] > cand[jb, 1])):
                jb = j
        if jb < 0:
            break
        evals += 1
        if _consistent(cand[jb, 1], a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt):
            best_r = top
            best_s = cand[jb, 1]
            break
        cand[jb, 2] = -1.0  # inconsistent: skipped above
    if best_r < 0.0:
        for j in range(ncand):
            r = cand[j, 3]
            if (r >= top * (1.0 - TIE_RTOL) and r >= 0.0
                    and (best_r < 0.0 or cand[j, 1] > best_s)):
                best_r = r
                best_s = cand[j, 1]
    if best_r >= 0.0:
        best_r = top
    return best_r, best_s, evals, best_lo, pts, stack, cand, bk, bi, bc, perm, tk, cb


@helper
def _consistent(s, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt):
    """True when the state at step ``s`` (``S1 > 0``) is self-consistent: its ``α = S1/S2``
    (the direct sums of :func:`_eval`) lies in its interval ``(lo, hi]`` up to
    ``SELF_RTOL``, i.e. every count at ``α·(1 + SELF_RTOL)`` is at most the state's and
    every count at ``α·(1 − SELF_RTOL)`` at least (counts only grow as the step falls)."""
    s1, s2, _ = _eval(s, a, sg, h, ha, nact, lam, lam2, mu, cmax, fast, c0, cnt, True)
    al = s1 / s2
    up = al * (1.0 + SELF_RTOL)
    dn = al * (1.0 - SELF_RTOL)
    for i in range(nact):
        g = sg[i]
        if _count(a[i] / up, mu, g, cmax[g], fast) > cnt[i]:
            return False
        if _count(a[i] / dn, mu, g, cmax[g], fast) < cnt[i]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _rb(s1, s2, e1, e2):
    """``(lower r, upper r)`` of the exact sums when ``s1, s2`` are within ``e1, e2`` of them
    (two roundings of ``u²/d``: ``(1 ± ε)² ⊂ 1 ± 4ε``)."""
    u = s1 + e1
    if u <= 0.0:
        rhi = 0.0
    else:
        d = s2 - e2
        rhi = np.inf if d <= 0.0 else u * u / d * (1.0 + 4.0 * _EPS)
    v = s1 - e1
    rlo = v * v / (s2 + e2) * (1.0 - 4.0 * _EPS) if v > 0.0 and s2 > 0.0 else 0.0
    return rlo, rhi


@njit(cache=True, nogil=True, inline="always")
def _state(s1, s2, e1, e2, best_lo):
    """:func:`_rb` with the divisions only where they matter: ``(best_lo, rhi)`` with
    ``best_lo`` raised by the state's lower ``r`` and ``rhi`` its upper ``r``, or −1 when it
    cannot reach ``best_lo``. The tests are on products with ``4ε`` more slack than the
    quotients (two more roundings), so they only ever keep more."""
    v = s1 - e1
    q = s2 + e2
    if v > 0.0 and s2 > 0.0 and v * v * (1.0 - 4.0 * _EPS) > best_lo * q * (1.0 + 4.0 * _EPS):
        best_lo = max(best_lo, v * v / q * (1.0 - 4.0 * _EPS))
    u = s1 + e1
    d = s2 - e2
    if u <= 0.0:
        return best_lo, -1.0
    if d <= 0.0:
        return best_lo, np.inf
    if u * u * (1.0 + 8.0 * _EPS) < best_lo * d:
        return best_lo, -1.0
    return best_lo, u * u / d * (1.0 + 4.0 * _EPS)


@njit(cache=True, nogil=True, inline="always")
def _cnt(y, tab, z, g, cm, fast):
    """:func:`_count` on the packed path table ``tab[z, 2] = μ``."""
    if fast:
        f = np.floor(y)
        f += 1.0 if y - f >= 0.5 else 0.0
        return np.int64(min(f, np.float64(cm)))
    lo = 0
    hi = cm
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if tab[z, 2, g, mid] <= y:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True, nogil=True, inline="always")
def _ev(s, el, sgs, dr, nact, tab, itab, z, fast, c0, wi, store):
    """:func:`_eval` on the packed arrays (element data ``el = (a, h, h·a)``, signs
    ``sgs[dr]``, paths ``tab[z]``); with ``store`` the counts go to ``wi[:, 6]``."""
    s1 = 0.0
    e1 = 0.0
    s2 = c0
    e2 = 0.0
    for i in range(nact):
        g = sgs[dr, i]
        c = _cnt(el[0, i] / s, tab, z, g, itab[z, 0, g], fast)
        if store:
            wi[i, 6] = c
        s1, e1 = _add(s1, e1, el[2, i] * tab[z, 0, g, c])
        s2, e2 = _add(s2, e2, el[1, i] * tab[z, 1, g, c])
    return s1 + e1, s2 + e2


@njit(cache=True, nogil=True, inline="always")
def _approx(s, el, sgs, dr, nact, tab, itab, z, fast, c0):
    """Plain sums ``(S1, S2)`` of *an* assignment near the state at step ``s`` (counts of
    ``a·(1/s)``, not ``fl(a/s)``: no division) and their error bounds: the products are within
    2ε, a plain sum of ``m`` terms within ``(m − 1)ε·Σ|terms|`` (theory §4.5). Any
    assignment's ``r`` bounds the optimum below (the nearest levels at its own α do at least
    as well), so it is a valid incumbent without being a state."""
    inv = 1.0 / s
    s1 = 0.0
    t1 = 0.0
    s2 = c0
    for i in range(nact):
        g = sgs[dr, i]
        c = _cnt(el[0, i] * inv, tab, z, g, itab[z, 0, g], fast)
        v = el[2, i] * tab[z, 0, g, c]
        s1 += v
        t1 += abs(v)
        s2 += el[1, i] * tab[z, 1, g, c]
    k = 1.01 * (nact + 4.0) * _EPS
    return s1, s2, k * t1, k * s2


@njit(cache=True, nogil=True, inline="always")
def _lbb(s, el, sgs, dr, nact, tab, itab, z):
    """:func:`_lb_below` on the packed arrays."""
    t = 0.0
    for i in range(nact):
        g = sgs[dr, i]
        lt = tab[z, 0, g, itab[z, 0, g]]
        ai = el[0, i]
        d = ai if lt <= 0.0 else max(ai - s * lt, 0.0)
        t += el[1, i] * (d * d)
    return t


@njit(cache=True, nogil=True, inline="always")
def _lba(s, el, sgs, dr, nact, tab, itab, z):
    """:func:`_lb_above` on the packed arrays."""
    t = 0.0
    for i in range(nact):
        g = sgs[dr, i]
        ai = el[0, i]
        m = np.inf
        l0 = tab[z, 0, g, 0]
        if l0 <= 0.0:
            d = ai - s * l0
            m = d * d
        p = itab[z, 1, g]
        if p <= itab[z, 0, g] and (p == 0 or ai >= s * tab[z, 2, g, p] * (1.0 - 4.0 * _EPS)):
            d = s * tab[z, 0, g, p] - ai
            m = min(m, d * d if d > 0.0 else 0.0)
        if m < np.inf:
            t += el[1, i] * m
    return t


@njit(cache=True, nogil=True, inline="always")
def _prune_e(slo, s1lu, s2lu, shi, s1hl, s1hu, s2hl, best_lo):
    """:func:`_prune` on sums given as bounds: ``s1lu, s2lu`` bound above every state's sums
    in ``(slo, shi]`` (sums of the state at ``slo``, or of a superset of its steps);
    ``s1hl ≤ S1 ≤ s1hu`` and ``s2hl ≤ S2`` of the state at ``shi`` (a subset of every state
    inside, each extra step crossed below ``shi``)."""
    if s1lu <= 0.0:
        return True
    amax = s1lu / s2hl * (1.0 + 4.0 * _EPS) if s2hl > 0.0 else np.inf
    amin = max(s1hl, 0.0) / s2lu * (1.0 - 4.0 * _EPS)
    lo = slo * (1.0 - _SL)
    hi = shi * (1.0 + _SL)
    if amax < lo or amin > hi:
        return True
    aa = max(amin, lo)
    ab = min(amax, hi)
    d = s2lu - max(s2hl, 0.0)
    b = s1hu + 0.5 * hi * d
    c = s2lu
    al = min(max(b / c, aa), ab)
    ub = (2.0 * al * b - al * al * c) * (1.0 + 16.0 * _EPS)
    return ub < best_lo


@njit(cache=True, nogil=True, inline="always")
def _isort_w(w, col, perm, k0, k1):
    """Insertion sort of ``perm[k0:k1]`` (``perm`` = ``wi[:, 3]``) by ``w[:, col]``
    descending."""
    for i in range(k0 + 1, k1):
        p = perm[i, 3]
        kv = w[p, col]
        j = i - 1
        while j >= k0 and w[perm[j, 3], col] < kv:
            perm[j + 1, 3] = perm[j, 3]
            j -= 1
        perm[j + 1, 3] = p


@helper
def _lean(el, sgs, dr, ext, x2, tab, itab, z, fast, c0, n0, best_lo, w, wi, nact, cap):
    """:func:`_core` for rows of at most ``LEAN`` active elements: the same winner (module
    docstring, "Lean path"), few arguments (each array argument of a call costs Numba two
    atomic reference-count updates), nothing allocated. ``ext[g]`` are the extreme magnitudes
    of the elements on path ``g`` *for this direction*. ``w`` (float) rows: ``[0, cap)`` the
    thresholds (key, ΔS1, ΔS2, exact threshold), ``[cap, 2cap + 1)`` the buckets (ΣΔS1,
    ΣΔS2, S1 and S2 at the upper edge), ``[2cap + 1, 4cap + 3)`` the candidates (as
    :func:`_put`); ``wi`` (int) columns: element, count, bucket of each threshold; the order;
    bucket ends and dirty flags; counts per element. Returns ``(r, s, evaluations, best_lo)``
    as :func:`_core`."""
    evals = 0
    movable = 0
    stop = 0.0
    sbot = np.inf
    s0 = 0.0
    for g in range(2):
        cm = itab[z, 0, g]
        if cm > 0 and ext[g, 0] > 0.0:
            movable += 1
            stop = max(stop, ext[g, 0] * tab[z, 3, g, 1])
            sbot = min(sbot, ext[g, 1] * tab[z, 3, g, cm])
            if tab[z, 0, g, cm] > 0.0:
                s0 = max(s0, ext[g, 0] / tab[z, 0, g, cm])
    if movable == 0:
        s1, s2 = _ev(1.0, el, sgs, dr, nact, tab, itab, z, fast, c0, wi, False)
        return _ratio(s1, s2), -1.0, 1, best_lo
    stop *= 1.0 + 8.0 * _EPS
    sbot *= 1.0 - 8.0 * _EPS
    if not s0 > 0.0:
        s0 = np.sqrt(stop) * np.sqrt(sbot)
    s0 = min(max(s0, sbot), stop)
    m0 = nact + 2.0
    # Incumbent: Lloyd from s0 on division-free assignments.
    s = s0
    sinc = s0
    rinc = -1.0
    for _ in range(LLOYD):
        s1, s2, e1, e2 = _approx(s, el, sgs, dr, nact, tab, itab, z, fast, c0)
        evals += 1
        rlo, _ = _rb(s1, s2, e1, e2)
        best_lo = max(best_lo, rlo)
        if rlo > rinc:
            rinc = rlo
            sinc = s
        if s1 <= 0.0:
            break
        nxt = s1 / s2
        if not (nxt > sbot and nxt < stop) or nxt == s:
            break
        s = nxt
    # Bracket (as _core): outside (sa, sb] no self-consistent state reaches best_lo.
    lu = x2 * (1.0 + 4.0 * m0 * _EPS) - best_lo
    fac = 1.0 - 4.0 * m0 * _EPS
    f = BRACKET_LO
    sa = sinc / f
    while True:
        if sa <= sbot:
            sa = 0.0
            break
        if _lbb(sa, el, sgs, dr, nact, tab, itab, z) * fac > lu:
            break
        f *= f
        sa = sinc / f
    f = BRACKET_HI
    sb = sinc * f
    while True:
        if sb >= stop:
            sb = stop
            break
        if _lba(sb, el, sgs, dr, nact, tab, itab, z) * fac > lu:
            break
        f *= f
        sb = sinc * f
    sa *= 1.0 - _SL
    sb = min(sb * (1.0 + _SL), stop)
    if not sb > sa:
        return -1.0, 0.0, evals, best_lo
    c0w = 2 * cap + 1  # first candidate row of w
    ncand = c0w
    # The state at sb, directly (its counts start the thresholds).
    s1, s2 = _ev(sb, el, sgs, dr, nact, tab, itab, z, fast, c0, wi, True)
    evals += 1
    e1, e2 = _errs(s1, s2, m0, n0)
    rlo, rhi = _rb(s1, s2, e1, e2)
    best_lo = max(best_lo, rlo)
    if rhi >= best_lo:
        ncand = _put(w, ncand, rhi, sb, 0.0, _ratio(s1, s2))
    # Every threshold in the bracket: key a·(1/μ), increments of S1 and S2.
    cut = sa * (1.0 - 16.0 * _EPS)
    nb = 0
    lo = np.inf
    hi = 0.0
    t1 = 0.0
    t2 = 0.0
    for i in range(nact):
        g = sgs[dr, i]
        ai = el[0, i]
        for c in range(wi[i, 6] + 1, itab[z, 0, g] + 1):
            key = ai * tab[z, 3, g, c]
            if key < cut:
                break
            d1 = el[2, i] * tab[z, 4, g, c]
            d2 = el[1, i] * tab[z, 5, g, c]
            w[nb, 0] = key
            w[nb, 1] = d1
            w[nb, 2] = d2
            wi[nb, 0] = i
            wi[nb, 1] = c
            t1 += d1
            t2 += d2
            lo = min(lo, key)
            hi = max(hi, key)
            nb += 1
    if nb > 0:
        # Buckets linear in the key over [lo, hi], about BUCKET thresholds each. Edge j is
        # where q = (hi − key)·scale = j; it is dirty when a key lies within tol of it (the
        # exact threshold may then lie on either side) and then splits no segment.
        nbk = 1 if nb <= LEAN_SWEEP or not hi > lo else nb // BUCKET
        scale = nbk / (hi - lo) if nbk > 1 else 0.0
        tol = 64.0 * _EPS * (hi * scale + nbk)
        for j in range(nbk + 1):
            w[cap + j, 0] = 0.0
            w[cap + j, 1] = 0.0
            wi[j, 4] = 0
            wi[j, 5] = 0
        for q in range(nb):
            x = (hi - w[q, 0]) * scale
            j = min(np.int64(x), nbk - 1)
            wi[q, 2] = j
            w[cap + j, 0] += w[q, 1]
            w[cap + j, 1] += w[q, 2]
            wi[j + 1, 4] += 1
            fr = x - j
            if fr < tol:
                wi[j, 5] = 1
            if fr > 1.0 - tol:
                wi[j + 1, 5] = 1
        for j in range(nbk):
            wi[j + 1, 4] += wi[j, 4]
        for q in range(nb):  # the order, grouped by bucket; then wi[j, 4] is bucket j's end
            j = wi[q, 2]
            wi[wi[j, 4], 3] = q
            wi[j, 4] += 1
        # Prefix sums at the edges (plain sums of non-negative terms onto the direct state
        # at sb) and one error bound for every edge and swept state (theory §4.5).
        kk = 1.01 * (nb + nbk + 8.0) * _EPS
        ee1 = e1 + kk * (abs(s1) + 2.0 * n0 + 2.0 * t1)
        ee2 = e2 + kk * (s2 + 2.0 * t2)
        p1 = s1
        p2 = s2
        for j in range(nbk):
            w[cap + j, 2] = p1
            w[cap + j, 3] = p2
            p1 += w[cap + j, 0]
            p2 += w[cap + j, 1]
            best_lo, _ = _state(p1, p2, ee1, ee2, best_lo)  # an assignment
        w[cap + nbk, 2] = p1
        w[cap + nbk, 3] = p2
        evals += nbk
        # Segments between clean edges, from the top; the crossing bound prunes.
        top = 0
        tl = 1.0 - 16.0 * _EPS
        for j in range(1, nbk + 1):
            if j < nbk and wi[j, 5] != 0:
                continue
            shi = sb if top == 0 else hi - top / scale
            slo = sa if j == nbk else hi - j / scale
            u1 = w[cap + top, 2]
            u2 = w[cap + top, 3]
            if _prune_e(slo, w[cap + j, 2] + ee1, w[cap + j, 3] + ee2, shi, u1 - ee1,
                        u1 + ee1, u2 - ee2, best_lo):
                top = j
                continue
            if top > 0:
                rlo, rhi = _rb(u1, u2, ee1, ee2)
                if rhi >= best_lo:
                    ncand = _put(w, ncand, rhi, shi, 0.0, -1.0)
            k0 = 0 if top == 0 else wi[top - 1, 4]
            k1 = wi[j - 1, 4]
            top = j
            _isort_w(w, 0, wi, k0, k1)
            c1 = 0.0
            c2 = 0.0
            k = k0
            while k < k1:
                p = wi[k, 3]
                if k + 1 == k1 or w[wi[k + 1, 3], 0] < w[p, 0] * tl:
                    u1, c1 = _add(u1, c1, w[p, 1])
                    u2, c2 = _add(u2, c2, w[p, 2])
                    evals += 1
                    k += 1
                    best_lo, rhi = _state(u1 + c1, u2 + c2, ee1, ee2, best_lo)
                    if rhi >= best_lo:
                        i = wi[p, 0]
                        ncand = _put(w, ncand, rhi, el[0, i],
                                     tab[z, 2, sgs[dr, i], wi[p, 1]], -1.0)
                    continue
                # A cluster: exact thresholds order it, equal ones apply together.
                e = k + 1
                while e < k1 and w[wi[e, 3], 0] >= w[wi[e - 1, 3], 0] * tl:
                    e += 1
                for q in range(k, e):
                    p = wi[q, 3]
                    i = wi[p, 0]
                    w[p, 3] = threshold(el[0, i], tab[z, 2, sgs[dr, i], wi[p, 1]])
                _isort_w(w, 3, wi, k, e)
                q = k
                while q < e:
                    t = w[wi[q, 3], 3]
                    while q < e and w[wi[q, 3], 3] == t:
                        p = wi[q, 3]
                        u1, c1 = _add(u1, c1, w[p, 1])
                        u2, c2 = _add(u2, c2, w[p, 2])
                        q += 1
                    evals += 1
                    best_lo, rhi = _state(u1 + c1, u2 + c2, ee1, ee2, best_lo)
                    if rhi >= best_lo:
                        ncand = _put(w, ncand, rhi, t, 0.0, -1.0)
                k = e
    best_r, best_s, ev = _decide(w, c0w, ncand, best_lo, el, sgs, dr, nact, tab, itab, z,
                                 fast, c0, wi)
    evals += ev
    return best_r, best_s, evals, best_lo


@njit(cache=True, nogil=True, inline="always")
def _lbb2(s, el, sgs, nact, tab, itab, z):
    """:func:`_lbb` of both directions in one pass (``sgs[1] = 1 − sgs[0]``)."""
    t0 = 0.0
    t1 = 0.0
    for i in range(nact):
        ai = el[0, i]
        g = sgs[0, i]
        l0 = tab[z, 0, g, itab[z, 0, g]]
        l1 = tab[z, 0, 1 - g, itab[z, 0, 1 - g]]
        d0 = ai if l0 <= 0.0 else max(ai - s * l0, 0.0)
        d1 = ai if l1 <= 0.0 else max(ai - s * l1, 0.0)
        t0 += el[1, i] * (d0 * d0)
        t1 += el[1, i] * (d1 * d1)
    return t0, t1


@njit(cache=True, nogil=True, inline="always")
def _approx2(s, el, sgs, nact, tab, itab, z):
    """:func:`_approx` of both directions from one rounding per element (``fast`` paths)."""
    inv = 1.0 / s
    cl = max(itab[z, 0, 0], itab[z, 0, 1])
    a1 = 0.0
    a2 = 0.0
    b1 = 0.0
    b2 = 0.0
    ta = 0.0
    tb = 0.0
    for i in range(nact):
        g = sgs[0, i]
        c = _cnt(el[0, i] * inv, tab, z, g, cl, True)
        ca = min(c, itab[z, 0, g])
        cb = min(c, itab[z, 0, 1 - g])
        v = el[2, i] * tab[z, 0, g, ca]
        a1 += v
        ta += abs(v)
        a2 += el[1, i] * tab[z, 1, g, ca]
        v = el[2, i] * tab[z, 0, 1 - g, cb]
        b1 += v
        tb += abs(v)
        b2 += el[1, i] * tab[z, 1, 1 - g, cb]
    k = 1.01 * (nact + 4.0) * _EPS
    return a1, a2, k * ta, k * a2, b1, b2, k * tb, k * b2


@njit(cache=True, nogil=True, inline="always")
def _probe2(inv, el, nact):
    """One pass at ``1/α ≈ inv`` for both directions of a signed scale on a full-range lattice
    (``λ_c = c``; ``el[3]``, ``el[4]``: each element's path length for ``+α`` and ``−α``):
    the plain sums ``S1, S2`` of the assignment ``c = min(⌊a·inv + ½⌋, c_max)`` of ``+α`` and
    of ``−α`` (one rounding serves both; the caps differ). Branch-free, two accumulators per
    sum (even and odd elements, added at the end: a fixed order, the same bits on every
    CPU)."""
    p1a = 0.0
    p2a = 0.0
    p1b = 0.0
    p2b = 0.0
    q1a = 0.0
    q2a = 0.0
    q1b = 0.0
    q2b = 0.0
    i = 0
    while i + 1 < nact:
        t = np.floor(el[0, i] * inv + 0.5)
        ca = min(t, el[3, i])
        cb = min(t, el[4, i])
        p1a += el[2, i] * ca
        p2a += el[1, i] * (ca * ca)
        p1b += el[2, i] * cb
        p2b += el[1, i] * (cb * cb)
        t = np.floor(el[0, i + 1] * inv + 0.5)
        ca = min(t, el[3, i + 1])
        cb = min(t, el[4, i + 1])
        q1a += el[2, i + 1] * ca
        q2a += el[1, i + 1] * (ca * ca)
        q1b += el[2, i + 1] * cb
        q2b += el[1, i + 1] * (cb * cb)
        i += 2
    if i < nact:
        t = np.floor(el[0, i] * inv + 0.5)
        ca = min(t, el[3, i])
        cb = min(t, el[4, i])
        p1a += el[2, i] * ca
        p2a += el[1, i] * (ca * ca)
        p1b += el[2, i] * cb
        p2b += el[1, i] * (cb * cb)
    return p1a + q1a, p2a + q2a, p1b + q1b, p2b + q2b


@njit(cache=True, nogil=True, inline="always")
def _gup(al, s1, s2, k, tb):
    """Upper bound of ``G(α) = max_q (2αS1(q) − α²S2(q))`` (``x2 − D(α)``, theory §4.5 "Chord
    bound") from the plain sums ``s1, s2 ≥ 0`` (relative error ``k``) of the assignment
    :func:`_probe2` gives at ``α``: its own value, the rounding of the sums and of this
    formula, and ``32εα·Σha ≥`` what an element nearer than ``10ε`` to a midpoint can miss."""
    p = 2.0 * al * s1
    q = al * al * s2
    return p - q + 1.02 * (k + 8.0 * _EPS) * (p + q) + 32.0 * _EPS * al * tb


@njit(cache=True, nogil=True, inline="always")
def _chord(a1, g1, a2, g2, c):
    """Upper bound of ``G`` on ``[a1, a2]`` given upper bounds ``g1, g2`` at the ends and
    ``c ≥ S2`` of every state nearest somewhere in the cell: ``G + cα²`` is convex there, so
    ``G ≤`` its chord ``− cα²``, whose maximum is at ``α = slope/(2c)`` clipped to the cell;
    plus ``64ε`` of the magnitudes for the rounding of this evaluation."""
    if not c > 0.0:
        u = max(g1, g2)
        return u + 64.0 * _EPS * abs(u)
    h1 = g1 + c * a1 * a1
    h2 = g2 + c * a2 * a2
    sl = (h2 - h1) / (a2 - a1)
    av = min(max(sl / (2.0 * c), a1), a2)
    u = h1 + sl * (av - a1) - c * av * av
    return u + 64.0 * _EPS * (abs(h1) + abs(h2) + c * a2 * a2)


@njit(cache=True, nogil=True, inline="always")
def _pt(j, al, inv, el, nact, k, tb, d0, bown, ball, wb):
    """Probe ``α`` into point ``j`` of ``wb`` (α, G↑ of ``+α`` and ``−α``, their ``C`` (S2 with
    a relative-error margin), their S1); the two assignments raise the lower
    bounds of ``r`` as :func:`_lean2` keeps them."""
    s1a, s2a, s1b, s2b = _probe2(inv, el, nact)
    wb[j, 0] = al
    wb[j, 1] = _gup(al, s1a, s2a, k, tb)
    wb[j, 2] = _gup(al, s1b, s2b, k, tb)
    wb[j, 3] = s2a * (1.0 + k)
    wb[j, 4] = s2b * (1.0 + k)
    wb[j, 5] = s1a
    wb[j, 6] = s1b
    # Lower r of each assignment (_rb's, without its upper r): S1 ≥ 0, so e1 = k·S1.
    ra = _rlo(s1a, s2a, k)
    rb = _rlo(s1b, s2b, k)
    bown = max(bown, ra if d0 == 0 else rb)
    ball = max(ball, ra, rb)
    return bown, ball


@njit(cache=True, nogil=True, inline="always")
def _rlo(s1, s2, k):
    """The lower ``r`` of :func:`_rb` for sums ``s1, s2 ≥ 0`` within ``k·s1``, ``k·s2``."""
    v = s1 * (1.0 - k)
    return v * v / (s2 * (1.0 + k)) * (1.0 - 4.0 * _EPS) if v > 0.0 and s2 > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _cell(wb, p, q, d0, bown, ball):
    """The cell between points ``p < q`` (in α): ``(score, keep flags)``, bit 0 for ``+α``,
    bit 1 for ``−α``: a direction is kept unless the chord bound of its ``G`` over the cell is
    below its lower bound of ``r`` less ``2·TIE_RTOL`` (no state within the tie tolerance of
    the optimum has its α there). The score (largest bound over the threshold) orders the
    search."""
    keep = 0
    sc = -np.inf
    for d in range(2):
        bl = bown if d == d0 else ball
        thr = bl * (1.0 - 2.0 * TIE_RTOL)
        u = _chord(wb[p, 0], wb[p, 1 + d], wb[q, 0], wb[q, 1 + d], wb[p, 3 + d])
        if not u < thr:
            keep |= 1 << d
            sc = max(sc, u - thr)
    return sc, keep


# Inlined, not a helper: a call passes its array arguments with atomic reference-count
# updates, once per row (docs/performance.md, "chord bound").
@njit(cache=True, nogil=True, inline="always")
def _chord2(el, d0, ext, stop, itab, z, bown, ball, wb, wi, nact):
    """The bracket of :func:`_lean2` by the chord bound (docs/theory.md §4.5, "Chord bound"):
    probes on a grid of α (each one pass for both directions, :func:`_probe2`), then a
    depth-first branch and bound over cells between probes, best cell first: a cell is dropped
    for a direction when its chord bound is below that direction's lower ``r`` (less the tie
    margin), split at its geometric midpoint while a kept direction crosses more than
    about ``CHORD_LEAF`` thresholds in it (``ΔS1`` over the mean ``h·a``), kept otherwise.
    Cells inside the hull of those kept already are not refined. Returns
    ``(sa, sb, bown, ball, evaluations)``: every state within ``2·TIE_RTOL`` of either
    direction's best has a step in ``(sa, sb]`` (self-consistent ones; widened by
    ``4·SELF_RTOL``). ``wb`` rows hold the probes, ``wi``
    columns 0–1 the stack."""
    cf0 = float(itab[z, 0, 0])
    cf1 = float(itab[z, 0, 1])
    cl = max(cf0, cf1)
    k = 1.01 * (nact + 4.0) * _EPS
    evals = 0
    amax = max(ext[0, 0], ext[1, 0])
    # Point 0: α → 0 (every element at its path's end: the largest S2 of all, C of the
    # lowest cell; G(0) = 0).
    s1a, s2a, s1b, s2b = _probe2(np.inf, el, nact)
    evals += 1
    ra = _rlo(s1a, s2a, k)
    rb = _rlo(s1b, s2b, k)
    bown = max(bown, ra if d0 == 0 else rb)
    ball = max(ball, ra, rb)
    tb = min(s1a, s1b) * (1.0 + 2.0 * k)  # ≥ Σ h·a (every path has a step)
    tm = tb / (cl * nact)  # about the mean h·a
    wb[0, 0] = 0.0
    wb[0, 1] = 0.0
    wb[0, 2] = 0.0
    wb[0, 3] = s2a * (1.0 + k)
    wb[0, 4] = s2b * (1.0 + k)
    wb[0, 5] = s1a
    wb[0, 6] = s1b
    # The grid, ascending; the last point is stop (no step of either direction above it:
    # G = 0, counts 0).
    base = amax / (cl + 0.5)
    npt = 1
    for f in CHORD_GRID:
        al = base * f
        if al >= stop:
            break
        inv = 1.0 / al * (1.0 + 4.0 * _EPS)
        bown, ball = _pt(npt, al, inv, el, nact, k, tb, d0, bown, ball, wb)
        evals += 1
        npt += 1
    for q in range(8):
        wb[npt, q] = 0.0
    wb[npt, 0] = stop
    npt += 1
    # Initial cells on the stack, the best on top (insertion by score).
    ns = 0
    for p in range(npt - 1):
        sc, keep = _cell(wb, p, p + 1, d0, bown, ball)
        if keep == 0:
            continue
        wb[p, 7] = sc
        j = ns
        while j > 0 and wb[wi[j - 1, 0], 7] > sc:
            wi[j, 0] = wi[j - 1, 0]
            wi[j, 1] = wi[j - 1, 1]
            j -= 1
        wi[j, 0] = p
        wi[j, 1] = p + 1
        ns += 1
    sa = np.inf
    sb = 0.0
    while ns > 0:
        ns -= 1
        p = wi[ns, 0]
        q = wi[ns, 1]
        a1 = wb[p, 0]
        a2 = wb[q, 0]
        if a1 >= sa and a2 <= sb:
            continue  # inside the hull already
        sc, keep = _cell(wb, p, q, d0, bown, ball)
        if keep == 0:
            continue
        ev = 0.0  # thresholds crossed in the cell, about: ΔS1 / mean(h·a)
        if keep & 1:
            ev = wb[p, 5] - wb[q, 5]
        if keep & 2:
            ev = max(ev, wb[p, 6] - wb[q, 6])
        if ev <= CHORD_LEAF * tm or npt >= CHORD_PROBES:
            sa = min(sa, a1)
            sb = max(sb, a2)
            continue
        m = np.sqrt(a1) * np.sqrt(a2) if a1 > 0.0 else 0.25 * a2
        if not (m > a1 and m < a2):
            sa = min(sa, a1)
            sb = max(sb, a2)
            continue
        inv = 1.0 / m * (1.0 + 4.0 * _EPS)
        bown, ball = _pt(npt, m, inv, el, nact, k, tb, d0, bown, ball, wb)
        evals += 1
        mi = npt
        npt += 1
        sl, kl = _cell(wb, p, mi, d0, bown, ball)
        sh, kh = _cell(wb, mi, q, d0, bown, ball)
        if kl != 0 and kh != 0:
            if sl > sh:
                wi[ns, 0] = mi
                wi[ns, 1] = q
                wi[ns + 1, 0] = p
                wi[ns + 1, 1] = mi
            else:
                wi[ns, 0] = p
                wi[ns, 1] = mi
                wi[ns + 1, 0] = mi
                wi[ns + 1, 1] = q
            ns += 2
        elif kl != 0:
            wi[ns, 0] = p
            wi[ns, 1] = mi
            ns += 1
        elif kh != 0:
            wi[ns, 0] = mi
            wi[ns, 1] = q
            ns += 1
    if sb <= 0.0:  # nothing kept (only rounding could do it): the whole range
        sa = 0.0
        sb = stop
    sa *= 1.0 - 4.0 * SELF_RTOL
    sb = min(sb * (1.0 + 4.0 * SELF_RTOL), stop)
    return sa, sb, bown, ball, evals


@helper
def _lean2(el, sgs, d0, ext, extm, x2, tab, itab, z, c0, best_lo, w, wb, wc, wi, nact, cap):
    """:func:`_lean` for both directions at once, on level sets whose two paths share their
    first ``P = min(c_max)`` steps (the same ``λ``, ``μ = c − ½``, ``λ_0 = 0``: the full-range
    lattices, module docstring "Lean path"): one rounding per element serves both directions,
    the bracket ``(sa, sb]`` is the union of theirs, the thresholds in it are generated, bucketed
    and sorted once (steps ``c > P`` flagged with the one direction that has them), and one
    sweep carries both directions' sums. Each direction keeps its own candidates (``wc``:
    rows ``[0, R)`` for ``+α``, ``[R, 2R)`` for ``−α``) and its own lower bound as
    :func:`_rows` gives it (the first direction ``d0`` only its own states', the second
    every state's), and the direct values decide per direction (:func:`_decide`). Returns
    ``(r₊, s₊, r₋, s₋, evaluations, best_lo)``; ``wb`` holds the buckets (ΣΔS1, ΣΔS2 of each
    direction, then S1 and S2 of each at the upper edge); ``wi`` column 7 the flags."""
    evals = 0
    bown = best_lo  # lower bound from the first direction's states only
    ball = best_lo  # from every state
    cl = max(itab[z, 0, 0], itab[z, 0, 1])
    pp = min(itab[z, 0, 0], itab[z, 0, 1])
    rr = wc.shape[0] // 2
    nc0 = 0
    nc1 = rr
    stop = 0.0
    for d in range(2):
        ex = ext if d == 0 else extm
        for g in range(2):
            if itab[z, 0, g] > 0 and ex[g, 0] > 0.0:
                stop = max(stop, ex[g, 0] * tab[z, 3, g, 1])
    stop *= 1.0 + 8.0 * _EPS
    m0 = nact + 2.0
    # The bracket by the chord bound's branch and bound over α (theory §4.5, "Chord bound").
    sa, sb, bown, ball, ev = _chord2(el, d0, ext, stop, itab, z, bown, ball, wb, wi, nact)
    evals += ev
    if not sb > sa:
        return -1.0, 0.0, -1.0, 0.0, evals, ball
    # The states at sb, directly (the counts of the longer path start the thresholds).
    s1a = 0.0
    e1a = 0.0
    s2a = c0
    e2a = 0.0
    s1b = 0.0
    e1b = 0.0
    s2b = c0
    e2b = 0.0
    for i in range(nact):
        g = sgs[0, i]
        c = _cnt(el[0, i] / sb, tab, z, g, cl, True)
        wi[i, 6] = c
        ca = min(c, itab[z, 0, g])
        cb = min(c, itab[z, 0, 1 - g])
        s1a, e1a = _add(s1a, e1a, el[2, i] * tab[z, 0, g, ca])
        s2a, e2a = _add(s2a, e2a, el[1, i] * tab[z, 1, g, ca])
        s1b, e1b = _add(s1b, e1b, el[2, i] * tab[z, 0, 1 - g, cb])
        s2b, e2b = _add(s2b, e2b, el[1, i] * tab[z, 1, 1 - g, cb])
    evals += 2
    s1a += e1a
    s2a += e2a
    s1b += e1b
    s2b += e2b
    ea1, ea2 = _errs(s1a, s2a, m0, 0.0)
    eb1, eb2 = _errs(s1b, s2b, m0, 0.0)
    rlo, rhi = _rb(s1a, s2a, ea1, ea2)
    if d0 == 0:
        bown = max(bown, rlo)
    ball = max(ball, rlo)
    rlo, rhi2 = _rb(s1b, s2b, eb1, eb2)
    if d0 == 1:
        bown = max(bown, rlo)
    ball = max(ball, rlo)
    if rhi >= (bown if d0 == 0 else ball):
        nc0 = _put(wc, nc0, rhi, sb, 0.0, _ratio(s1a, s2a))
    if rhi2 >= (bown if d0 == 1 else ball):
        nc1 = _put(wc, nc1, rhi2, sb, 0.0, _ratio(s1b, s2b))
    # Every threshold in the bracket, once: key a·(1/μ), increments, the directions it moves.
    cut = sa * (1.0 - 16.0 * _EPS)
    nb = 0
    lo = np.inf
    hi = 0.0
    ta1 = 0.0
    ta2 = 0.0
    tb1 = 0.0
    tb2 = 0.0
    for i in range(nact):
        g = sgs[0, i]
        dl = 0 if itab[z, 0, g] >= itab[z, 0, 1 - g] else 1
        gl = g if dl == 0 else 1 - g
        ai = el[0, i]
        for c in range(wi[i, 6] + 1, cl + 1):
            key = ai * tab[z, 3, gl, c]
            if key < cut:
                break
            d1 = el[2, i] * tab[z, 4, gl, c]
            d2 = el[1, i] * tab[z, 5, gl, c]
            w[nb, 0] = key
            w[nb, 1] = d1
            w[nb, 2] = d2
            wi[nb, 0] = i
            wi[nb, 1] = c
            msk = 3 if c <= pp else 1 << dl
            wi[nb, 7] = msk
            if msk & 1:
                ta1 += d1
                ta2 += d2
            if msk & 2:
                tb1 += d1
                tb2 += d2
            lo = min(lo, key)
            hi = max(hi, key)
            nb += 1
    if nb > 0:
        nbk = 1 if nb <= LEAN_SWEEP or not hi > lo else nb // BUCKET
        scale = nbk / (hi - lo) if nbk > 1 else 0.0
        tol = 64.0 * _EPS * (hi * scale + nbk)
        for j in range(nbk + 1):
            for q in range(4):
                wb[j, q] = 0.0
            wi[j, 4] = 0
            wi[j, 5] = 0
        for q in range(nb):
            x = (hi - w[q, 0]) * scale
            j = min(np.int64(x), nbk - 1)
            wi[q, 2] = j
            msk = wi[q, 7]
            if msk & 1:
                wb[j, 0] += w[q, 1]
                wb[j, 1] += w[q, 2]
            if msk & 2:
                wb[j, 2] += w[q, 1]
                wb[j, 3] += w[q, 2]
            wi[j + 1, 4] += 1
            fr = x - j
            if fr < tol:
                wi[j, 5] = 1
            if fr > 1.0 - tol:
                wi[j + 1, 5] = 1
        for j in range(nbk):
            wi[j + 1, 4] += wi[j, 4]
        for q in range(nb):
            j = wi[q, 2]
            wi[wi[j, 4], 3] = q
            wi[j, 4] += 1
        kk = 1.01 * (nb + nbk + 8.0) * _EPS
        eea1 = ea1 + kk * (abs(s1a) + 2.0 * ta1)
        eea2 = ea2 + kk * (s2a + 2.0 * ta2)
        eeb1 = eb1 + kk * (abs(s1b) + 2.0 * tb1)
        eeb2 = eb2 + kk * (s2b + 2.0 * tb2)
        pa1 = s1a
        pa2 = s2a
        pb1 = s1b
        pb2 = s2b
        for j in range(nbk):
            wb[j, 4] = pa1
            wb[j, 5] = pa2
            wb[j, 6] = pb1
            wb[j, 7] = pb2
            pa1 += wb[j, 0]
            pa2 += wb[j, 1]
            pb1 += wb[j, 2]
            pb2 += wb[j, 3]
            if d0 == 0:
                bown, _ = _state(pa1, pa2, eea1, eea2, bown)
                ball = max(ball, bown)
                ball, _ = _state(pb1, pb2, eeb1, eeb2, ball)
            else:
                bown, _ = _state(pb1, pb2, eeb1, eeb2, bown)
                ball = max(ball, bown)
                ball, _ = _state(pa1, pa2, eea1, eea2, ball)
        wb[nbk, 4] = pa1
        wb[nbk, 5] = pa2
        wb[nbk, 6] = pb1
        wb[nbk, 7] = pb2
        evals += 2 * nbk
        top = 0
        tl = 1.0 - 16.0 * _EPS
        for j in range(1, nbk + 1):
            if j < nbk and wi[j, 5] != 0:
                continue
            shi = sb if top == 0 else hi - top / scale
            slo = sa if j == nbk else hi - j / scale
            ua1 = wb[top, 4]
            ua2 = wb[top, 5]
            ub1 = wb[top, 6]
            ub2 = wb[top, 7]
            bla = bown if d0 == 0 else ball
            blb = bown if d0 == 1 else ball
            keep = 0
            if not _prune_e(slo, wb[j, 4] + eea1, wb[j, 5] + eea2, shi, ua1 - eea1,
                            ua1 + eea1, ua2 - eea2, bla):
                keep |= 1
                if top > 0:
                    rlo, rhi = _rb(ua1, ua2, eea1, eea2)
                    if rhi >= bla:
                        nc0 = _put(wc, nc0, rhi, shi, 0.0, -1.0)
            if not _prune_e(slo, wb[j, 6] + eeb1, wb[j, 7] + eeb2, shi, ub1 - eeb1,
                            ub1 + eeb1, ub2 - eeb2, blb):
                keep |= 2
                if top > 0:
                    rlo, rhi = _rb(ub1, ub2, eeb1, eeb2)
                    if rhi >= blb:
                        nc1 = _put(wc, nc1, rhi, shi, 0.0, -1.0)
            k0 = 0 if top == 0 else wi[top - 1, 4]
            k1 = wi[j - 1, 4]
            top = j
            if keep == 0:
                continue
            _isort_w(w, 0, wi, k0, k1)
            ca1 = 0.0
            ca2 = 0.0
            cb1 = 0.0
            cb2 = 0.0
            k = k0
            while k < k1:
                p = wi[k, 3]
                if k + 1 == k1 or w[wi[k + 1, 3], 0] < w[p, 0] * tl:
                    msk = wi[p, 7] & keep
                    k += 1
                    i = wi[p, 0]
                    if msk & 1:
                        ua1, ca1 = _add(ua1, ca1, w[p, 1])
                        ua2, ca2 = _add(ua2, ca2, w[p, 2])
                        evals += 1
                        bl = bown if d0 == 0 else ball
                        bl, rhi = _state(ua1 + ca1, ua2 + ca2, eea1, eea2, bl)
                        if d0 == 0:
                            bown = bl
                            ball = max(ball, bl)
                        else:
                            ball = bl
                        if rhi >= bl:
                            nc0 = _put(wc, nc0, rhi, el[0, i],
                                       tab[z, 2, sgs[0, i], wi[p, 1]], -1.0)
                    if msk & 2:
                        ub1, cb1 = _add(ub1, cb1, w[p, 1])
                        ub2, cb2 = _add(ub2, cb2, w[p, 2])
                        evals += 1
                        bl = bown if d0 == 1 else ball
                        bl, rhi = _state(ub1 + cb1, ub2 + cb2, eeb1, eeb2, bl)
                        if d0 == 1:
                            bown = bl
                            ball = max(ball, bl)
                        else:
                            ball = bl
                        if rhi >= bl:
                            nc1 = _put(wc, nc1, rhi, el[0, i],
                                       tab[z, 2, sgs[1, i], wi[p, 1]], -1.0)
                    continue
                # A cluster: exact thresholds order it, equal ones apply together.
                e = k + 1
                while e < k1 and w[wi[e, 3], 0] >= w[wi[e - 1, 3], 0] * tl:
                    e += 1
                for q in range(k, e):
                    p = wi[q, 3]
                    i = wi[p, 0]
                    g = sgs[0, i] if wi[p, 7] & 1 else sgs[1, i]
                    w[p, 3] = threshold(el[0, i], tab[z, 2, g, wi[p, 1]])
                _isort_w(w, 3, wi, k, e)
                q = k
                while q < e:
                    t = w[wi[q, 3], 3]
                    hit = 0
                    while q < e and w[wi[q, 3], 3] == t:
                        p = wi[q, 3]
                        msk = wi[p, 7] & keep
                        hit |= msk
                        if msk & 1:
                            ua1, ca1 = _add(ua1, ca1, w[p, 1])
                            ua2, ca2 = _add(ua2, ca2, w[p, 2])
                        if msk & 2:
                            ub1, cb1 = _add(ub1, cb1, w[p, 1])
                            ub2, cb2 = _add(ub2, cb2, w[p, 2])
                        q += 1
                    if hit & 1:
                        evals += 1
                        bl = bown if d0 == 0 else ball
                        bl, rhi = _state(ua1 + ca1, ua2 + ca2, eea1, eea2, bl)
                        if d0 == 0:
                            bown = bl
                            ball = max(ball, bl)
                        else:
                            ball = bl
                        if rhi >= bl:
                            nc0 = _put(wc, nc0, rhi, t, 0.0, -1.0)
                    if hit & 2:
                        evals += 1
                        bl = bown if d0 == 1 else ball
                        bl, rhi = _state(ub1 + cb1, ub2 + cb2, eeb1, eeb2, bl)
                        if d0 == 1:
                            bown = bl
                            ball = max(ball, bl)
                        else:
                            ball = bl
                        if rhi >= bl:
                            nc1 = _put(wc, nc1, rhi, t, 0.0, -1.0)
                k = e
    ra, sa_, ev = _decide(wc, 0, nc0, bown if d0 == 0 else ball, el, sgs, 0, nact, tab, itab,
                          z, True, c0, wi)
    evals += ev
    rb, sb_, ev = _decide(wc, rr, nc1, bown if d0 == 1 else ball, el, sgs, 1, nact, tab,
                          itab, z, True, c0, wi)
    evals += ev
    return ra, sa_, rb, sb_, evals, ball


# A helper, not inlined: inlining it too saves ≈ 3 ns/w more but costs ≈ 9 CPU-s of first
# compile (docs/performance.md, "chord bound").
@helper
def _decide(w, c0w, ncand, best_lo, el, sgs, dr, nact, tab, itab, z, fast, c0, wi):
    """The direct values decide among the candidates ``w[c0w:ncand]`` (as :func:`_put`) of
    direction ``dr`` (as :func:`_core`): ``(r, s, evaluations)``."""
    evals = 0
    top_r = -1.0
    for j in range(c0w, ncand):
        if w[j, 0] < best_lo:
            w[j, 3] = -2.0
            continue
        if w[j, 3] < 0.0:
            s = w[j, 1] if w[j, 2] == 0.0 else threshold(w[j, 1], w[j, 2])
            s1, s2 = _ev(s, el, sgs, dr, nact, tab, itab, z, fast, c0, wi, False)
            evals += 1
            w[j, 1] = s
            w[j, 2] = 0.0
            w[j, 3] = _ratio(s1, s2)
        top_r = max(top_r, w[j, 3])
    best_r = -1.0
    best_s = 0.0
    ntie = 0
    for j in range(c0w, ncand):
        if w[j, 3] >= top_r * (1.0 - TIE_RTOL) and w[j, 3] >= 0.0:
            ntie += 1
    while ntie > 1 and top_r > 0.0:  # self-consistent candidates first (as _core)
        jb = -1
        for j in range(c0w, ncand):
            if (w[j, 3] >= top_r * (1.0 - TIE_RTOL) and w[j, 2] == 0.0
                    and (jb < 0 or w[j, 1] > w[jb, 1])):
                jb = j
        if jb < 0:
            break
        evals += 1
        if _consistent_p(w[jb, 1], el, sgs, dr, nact, tab, itab, z, fast, c0, wi):
            best_r = top_r
            best_s = w[jb, 1]
            break
        w[jb, 2] = -1.0
    if best_r < 0.0:
        for j in range(c0w, ncand):
            r = w[j, 3]
            if (r >= top_r * (1.0 - TIE_RTOL) and r >= 0.0
                    and (best_r < 0.0 or w[j, 1] > best_s)):
                best_r = r
                best_s = w[j, 1]
    if best_r >= 0.0:
        best_r = top_r
    return best_r, best_s, evals


@helper
def _consistent_p(s, el, sgs, dr, nact, tab, itab, z, fast, c0, wi):
    """:func:`_consistent` on the packed arrays (counts in ``wi[:, 6]``)."""
    s1, s2 = _ev(s, el, sgs, dr, nact, tab, itab, z, fast, c0, wi, True)
    al = s1 / s2
    up = al * (1.0 + SELF_RTOL)
    dn = al * (1.0 - SELF_RTOL)
    for i in range(nact):
        g = sgs[dr, i]
        cm = itab[z, 0, g]
        if _cnt(el[0, i] / up, tab, z, g, cm, fast) > wi[i, 6]:
            return False
        if _cnt(el[0, i] / dn, tab, z, g, cm, fast) < wi[i, 6]:
            return False
    return True


# Inlined, not a helper: a call passes its array arguments with atomic reference-count
# updates, once per row (docs/performance.md, "chord bound").
@njit(cache=True, nogil=True, inline="always")
def _interval(s, el, sgs, d, nact, tab, itab, z, fast, wi):
    """``(lo, hi]``: the exact float steps with the same counts as the step ``s`` (counts
    into ``wi[:, 6]``). Keys ``a·(1/μ)`` find the extreme thresholds; exact ones only within
    16ε."""
    qmin = np.inf
    qmax = 0.0
    for i in range(nact):
        g = sgs[d, i]
        cm = itab[z, 0, g]
        ai = el[0, i]
        c = _cnt(ai / s, tab, z, g, cm, fast)
        wi[i, 6] = c
        if c >= 1:
            qmin = min(qmin, ai * tab[z, 3, g, c])
        if c < cm:
            qmax = max(qmax, ai * tab[z, 3, g, c + 1])
    hi = np.inf
    lo = 0.0
    qmin *= 1.0 + 16.0 * _EPS
    qmax *= 1.0 - 16.0 * _EPS
    for i in range(nact):
        g = sgs[d, i]
        c = wi[i, 6]
        ai = el[0, i]
        if c >= 1 and ai * tab[z, 3, g, c] <= qmin:
            hi = min(hi, threshold(ai, tab[z, 2, g, c]))
        if c < itab[z, 0, g] and ai * tab[z, 3, g, c + 1] >= qmax:
            lo = max(lo, threshold(ai, tab[z, 2, g, c + 1]))
    return lo, hi


@helper
def _general(el, sgs, d, ext, x2, tab, itab, z, fast, c0, n0, best_lo, cnt, nact):
    """:func:`_core` on one row (direction ``d``, level set ``z``) with its own buffers:
    ``(r, s, evaluations, best_lo)``. The buffers :func:`_core` grows live here, not in
    :func:`_rows`: arrays reassigned in the row loop cost Numba reference counting (atomic
    updates) on every row, the lean rows' included (≈ 13 ns per weight in groups of 32,
    docs/performance.md)."""
    pts = np.empty((64, 4))
    stack = np.empty((64, 2), dtype=np.int64)
    cand = np.empty((64, 4))
    bk = np.empty(64)
    bix = np.empty(64, dtype=np.int64)
    bc = np.empty(64, dtype=np.int64)
    perm = np.empty(64, dtype=np.int64)
    tk = np.empty((64, 3))
    cb = np.empty(65, dtype=np.int64)
    res = _core(el[0], sgs[d], el[1], el[2], nact, ext, x2, tab[z, 0], tab[z, 1], tab[z, 2],
                tab[z, 3], tab[z, 4], tab[z, 5], itab[z, 0], itab[z, 1], fast, c0, n0,
                best_lo, pts, stack, cand, cnt, bk, bix, bc, perm, tk, cb)
    return res[0], res[1], res[2], res[3]


@njit(cache=True, nogil=True)
def _rows(xs, hs, weighted, levz, midz, unifz, tabz, itabz, fastz, shz, signed, lean,
          use_lean2, use_lean, use_general, out, codes, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`exact_levelset`. ``use_lean2``, ``use_lean``,
    ``use_general``: ``True``, or ``None`` for a path no row takes (:func:`_needed_paths`);
    Numba prunes the branches of a ``None`` argument at compile time, so a call compiles only
    the paths it can take (a row that would take a pruned path raises)."""
    n = xs.shape[1]
    nz = levz.shape[0]
    lamz = tabz[:, 0]
    lam2z = tabz[:, 1]
    cmaxz = itabz[:, 0]
    el = np.empty((5, n))  # a, h, h·a; path lengths for +α and −α (_probe2)
    a = el[0]
    h = el[1]
    ha = el[2]
    sgs = np.empty((2, n), dtype=np.int64)
    sgp = sgs[0]
    sgm = sgs[1]
    pos = np.empty(n, dtype=np.int64)
    cnt = np.empty(n, dtype=np.int64)
    ext = np.zeros((2, 2))
    extm = np.zeros((2, 2))
    # The lean path's buffers: room for every threshold of a row it takes (``_lean``).
    cap = min(n, lean) * (levz.shape[1] - 1) + 1
    w = np.empty((4 * cap + 3, 4))
    wi = np.empty((max(cap + 1, n, CHORD_PROBES + 1), 8), dtype=np.int64)
    wb = np.empty((max(cap + 1, CHORD_PROBES + 1), 8))
    wc = np.empty((4 * cap + 4, 4))
    cf = np.empty(2)  # path lengths of the first level set (the only one _lean2 sees)
    cf[0] = float(itabz[0, 0, 0])
    cf[1] = float(itabz[0, 0, 1])
    for r in range(t0, t1):
        nact = 0
        hz = 0.0
        x2 = 0.0
        amax = 0.0
        imax = 0
        ext[0, 0] = 0.0
        ext[1, 0] = 0.0
        ext[0, 1] = np.inf
        ext[1, 1] = np.inf
        for i in range(n):
            x = xs[r, i]
            hi_ = hs[r, i] if weighted else 1.0
            if hi_ == 0.0:
                continue
            if x == 0.0:
                hz += hi_
                continue
            ax = abs(x)
            pos[nact] = i
            a[nact] = ax
            h[nact] = hi_
            ha[nact] = hi_ * ax
            sgp[nact] = 0 if x > 0.0 else 1
            sgm[nact] = 1 - sgp[nact]
            el[3, nact] = cf[sgp[nact]]
            el[4, nact] = cf[sgm[nact]]
            x2 += ha[nact] * ax
            if ax > amax:
                amax = ax
                imax = nact
            g = sgp[nact]
            ext[g, 0] = max(ext[g, 0], ax)
            ext[g, 1] = min(ext[g, 1], ax)
            nact += 1
        for g in range(2):
            extm[g, 0] = ext[1 - g, 0]
            extm[g, 1] = ext[1 - g, 1]
        best_r = -1.0
        best_hi = 0.0
        best_lo = 0.0
        best_d = 1.0
        best_z = 0
        evals = 0
        blo = 0.0
        if nact > 0:
            for z in range(nz):
                c0 = hz * lam2z[z, 0, 0]
                # The direction in which the largest magnitude has the longer path goes
                # first: its incumbent then narrows the other direction's bracket.
                d0 = 0
                if signed:
                    g = sgp[imax]
                    if lamz[z, 1 - g, cmaxz[z, 1 - g]] > lamz[z, g, cmaxz[z, g]]:
                        d0 = 1
                both = signed and shz[z] and nact <= lean
                rp = sp = rm = sm = -1.0
                if both:
                    if use_lean2 is not None:
                        rp, sp, rm, sm, ev, blo = _lean2(el, sgs, d0, ext, extm, x2, tabz,
                                                         itabz, z, c0, blo, w, wb, wc, wi,
                                                         nact, cap)
                        evals += ev
                    else:
                        raise RuntimeError("exact_levelset: the two-direction lean path "
                                           "was pruned")
                for dk in range(2 if signed else 1):
                    d = d0 if dk == 0 else 1 - d0
                    n0 = 0.0
                    for i in range(0 if both else nact):  # _lean2's level sets hold 0
                        if lamz[z, sgs[d, i], 0] < 0.0:
                            n0 += ha[i] * -lamz[z, sgs[d, i], 0]
                    if both:
                        rr = rp if d == 0 else rm
                        ss = sp if d == 0 else sm
                        ev = 0
                    elif nact <= lean:
                        if use_lean is not None:
                            rr, ss, ev, blo = _lean(el, sgs, d, ext if d == 0 else extm, x2,
                                                    tabz, itabz, z, fastz[z], c0, n0, blo, w,
                                                    wi, nact, cap)
                        else:
                            raise RuntimeError("exact_levelset: the lean path was pruned")
                    else:
                        if use_general is not None:
                            rr, ss, ev, blo = _general(el, sgs, d, ext if d == 0 else extm,
                                                       x2, tabz, itabz, z, fastz[z], c0, n0,
                                                       blo, cnt, nact)
                        else:
                            raise RuntimeError("exact_levelset: the general path was pruned")
                    evals += ev
                    if rr < 0.0 or rr < best_r * (1.0 - TIE_RTOL):
                        continue
                    if ss < 0.0:
                        lo, hi = 0.0, np.inf
                    else:
                        lo, hi = _interval(ss, el, sgs, d, nact, tabz, itabz, z, fastz[z], wi)
                    # Within TIE_RTOL of the best r so far is a tie (the rounding of the
                    # direct sums): the larger |step|, then +α, then the first z.
                    if (rr > best_r * (1.0 + TIE_RTOL) or hi > best_hi
                            or (hi == best_hi and d == 0 and best_d < 0.0)):
                        best_hi = hi
                        best_lo = lo
                        best_d = 1.0 if d == 0 else -1.0
                        best_z = z
                    best_r = max(best_r, rr)
        if best_r <= 0.0:
            step = 0.0
            best_lo = 0.0
            best_hi = np.inf
            best_z = 0
        elif best_hi == np.inf:
            step = best_d * (2.0 * best_lo if best_lo > 0.0 else 1.0)
        else:
            step = best_d * best_hi
        lev = levz[best_z]
        mids = midz[best_z]
        uni = unifz[best_z]
        # Codes: active elements from their counts at |step| (the kernel's own division and
        # count, the same as ``nearest_index``), the others by ``nearest_index``.
        for i in range(n):
            codes[r, i] = -1
        if step != 0.0:
            dw = 0 if best_d > 0.0 else 1
            p0 = lev.shape[0] - 1 - itabz[best_z, 0, 0]
            fast = fastz[best_z]
            sa = abs(step)
            for i in range(nact):
                g = sgs[dw, i]
                c = _cnt(a[i] / sa, tabz, best_z, g, itabz[best_z, 0, g], fast)
                codes[r, pos[i]] = p0 + c if g == 0 else itabz[best_z, 0, 1] - c
        s1 = 0.0
        s2 = 0.0
        for i in range(n):
            x = np.float64(xs[r, i])
            j = codes[r, i]
            if j < 0:
                j = nearest_index(scaled(x, step), lev, mids, uni)
                codes[r, i] = j
            hi_ = hs[r, i] if weighted else 1.0
            lv = lev[j]
            s1 += hi_ * x * lv
            s2 += hi_ * (lv * lv)
        alpha = s1 / s2 if s2 > 0.0 and best_r > 0.0 else 0.0
        out[r, 0] = step
        out[r, 1] = alpha
        out[r, 2] = best_lo
        out[r, 3] = best_hi
        out[r, 4] = s1
        out[r, 5] = s2
        out[r, 6] = evals
        aa = abs(alpha)
        ok = best_r <= 0.0 or (aa >= best_lo * (1.0 - 1e-12) and aa <= best_hi * (1.0 + 1e-12))
        out[r, 7] = 1.0 if ok else 0.0
        out[r, 8] = float(best_z)


def _paths(lz):
    """Per-sign paths of the level set ``lz``: ``λ``, ``λ²``, ``μ``, the increments of ``λ``
    and ``λ²``, the path lengths, and whether ``μ_c = c − ½`` (module docstring)."""
    k = lz.shape[0]
    mids = midpoints(lz)
    p0p = int(np.sum(mids <= 0.0))  # index of the level nearest 0⁺ (and of 0 itself)
    p0n = int(np.sum(mids < 0.0))   # index of the level nearest 0⁻
    lam = np.zeros((2, k))
    mu = np.zeros((2, k))
    cmax = np.array([k - 1 - p0p, p0n], dtype=np.int64)
    for c in range(cmax[0] + 1):
        lam[0, c] = lz[p0p + c]
        if c:
            mu[0, c] = mids[p0p + c - 1]
    for c in range(cmax[1] + 1):
        lam[1, c] = -lz[p0n - c]
        if c:
            mu[1, c] = -mids[p0n - c]
    lam2 = lam * lam
    imu = np.zeros((2, k))
    imu[mu > 0] = 1.0 / mu[mu > 0]
    pidx = np.array([next((c for c in range(cmax[g] + 1) if lam[g, c] > 0.0), cmax[g] + 1)
                     for g in range(2)], dtype=np.int64)
    dl = np.zeros((2, k))
    dq = np.zeros((2, k))
    dl[:, 1:] = lam[:, 1:] - lam[:, :-1]
    dq[:, 1:] = lam2[:, 1:] - lam2[:, :-1]
    fast = all(np.array_equal(mu[g, 1:cmax[g] + 1], np.arange(1, cmax[g] + 1) - 0.5)
               for g in range(2))
    return lam, lam2, mu, imu, dl, dq, cmax, pidx, fast


def exact_levelset(xs, hs, levels, signed, zero_point, out, codes, lean=LEAN, shared=True):
    """Exact weighted scale search over the level set ``levels``, per row (module docstring).

    Parameters
    ----------
    xs : ndarray, shape (rows, n), float64, C-contiguous
        Finite weights at a safe working scale (no ``|x|/|step|`` underflows or overflows).
    hs : ndarray, shape (rows, n) float64 ``≥ 0``, or shape (0, 0)
        Importance weights ``h``; the empty array means all ones. Zero-weight elements count
        for nothing (their codes are the nearest levels at the returned step).
    levels : ndarray, shape (K,), float64
        Ascending, distinct, ``K ≥ 1``. With ``zero_point`` these are the unsigned codes'
        levels and every ``z`` in ``[0, K − 1]`` is tried (the level sets ``levels − z``).
    signed : bool
        Also try negative steps (the mirrored set ``−levels``).
    zero_point : bool
        Try every integer zero point (then ``signed`` is False).
    out : ndarray, shape (rows, 9), float64
        Per row: step, alpha, lo, hi, S1, S2, evaluations, certified, z.
        ``codes = nearest_index(x / step, levels − z)`` (true float64 division) are the
        optimal codes; ``alpha = S1/S2`` (0 when ``S2 = 0`` or no state has ``α`` of the
        step's sign); the codes are optimal for every step of magnitude in ``(lo, hi]`` with
        ``step``'s sign, and ``step = ±hi`` (``±2·lo`` when ``hi = ∞``); ``S1 = Σ h·x·ℓ``,
        ``S2 = Σ h·ℓ²`` recomputed from the codes in element order; evaluations: states
        evaluated; certified: 1.0 when ``|alpha|`` lies in ``(lo, hi]`` (up to 1e-12).
        All-zero (or all-zero-weight) rows: step 0, alpha 0, interval (0, inf), certified.
    codes : ndarray, shape (rows, n), int16
        Index into ``levels`` (the unsigned code with a zero point).
    lean : int
        Rows with at most this many active elements (``x ≠ 0``, ``h > 0``) take the lean
        path (module docstring), the others the general one; ``0`` forces the general path
        (tests). Every output but ``evaluations`` is the same either way.
    shared : bool
        With a signed scale, lean rows of the full-range lattices search both directions at
        once (:func:`_lean2`); ``False`` searches them one after the other (tests). Every
        output but ``evaluations`` is the same either way.

    Notes
    -----
    Ties: ``r = S1²/S2`` equal within ``TIE_RTOL`` goes to a self-consistent state first
    (``|α|`` in its own interval up to ``SELF_RTOL``), then to the larger ``|step|`` (interval
    top ``hi``), then to ``+α`` before ``−α``, then to the smallest ``z``. Rows are
    independent and searched sequentially inside, so results are bit-identical for any thread count.
    Twin: :func:`vecq_ref.naive.exact_levelset`.
    """
    levels = f64(levels)
    k = levels.shape[0]
    zs = range(k) if zero_point else range(1)
    levz = np.array([levels - z for z in zs]) if zero_point else levels[None, :].copy()
    nz = levz.shape[0]
    midz = np.zeros((nz, max(k - 1, 1)))
    tabz = np.zeros((nz, 6, 2, k))  # per z: λ, λ², μ, 1/μ, Δλ, Δλ² (_paths)
    itabz = np.zeros((nz, 2, 2), dtype=np.int64)  # per z: path lengths, first positive
    fastz = np.zeros(nz, dtype=np.bool_)
    unifz = np.zeros(nz, dtype=np.bool_)
    for z in range(nz):
        midz[z, :k - 1] = midpoints(levz[z])
        unifz[z] = is_uniform(levz[z])
        (tabz[z, 0], tabz[z, 1], tabz[z, 2], tabz[z, 3], tabz[z, 4], tabz[z, 5], itabz[z, 0],
         itabz[z, 1], fastz[z]) = _paths(levz[z])
    weighted = hs.size > 0
    if not weighted:
        hs = np.zeros((1, 1))
    rows, n = xs.shape
    # Level sets whose two paths share their first min(c_max) steps, integer levels with 0
    # (the full-range lattices): with a signed scale both directions are searched at once.
    shz = np.zeros(nz, dtype=np.bool_)
    for z in range(nz):
        pp = int(itabz[z, 0].min())
        shz[z] = (shared and fastz[z] and pp >= 1 and tabz[z, 0, 0, 0] == 0.0
                  and tabz[z, 0, 1, 0] == 0.0
                  and np.array_equal(tabz[z, :, 0, :pp + 1], tabz[z, :, 1, :pp + 1]))
    signed = bool(signed and not zero_point)
    paths = _needed_paths(xs, hs if weighted else None, int(lean), signed, shz)
    run_tasks(_rows, rows, xs.size,
              (xs, hs, weighted, levz, midz, unifz, tabz, itabz, fastz, shz, signed,
               int(lean), *paths, out, codes))
    return out, codes


def _needed_paths(xs, hs, lean, signed, shz):
    """``(use_lean2, use_lean, use_general)`` for :func:`_rows`: ``True`` for a path some row
    may take, ``None`` for one no row takes (its code is then not compiled: a first call
    compiles a third to a half of the search).

    A row takes a path by its count of active elements (``x ≠ 0``, ``h ≠ 0``): none, no
    search; ``1 … lean``, the two-direction lean path (signed, level sets in ``shz``) or the
    one-direction lean path (the others); more, the general path. Rows of ``n ≤ lean``
    elements never take the general path; longer rows are counted (one pass, where the
    general path's search costs far more).
    """
    rows, n = xs.shape
    if rows == 0 or n == 0:
        return None, None, None
    if n <= lean:
        small, large = True, False
    else:
        active = xs != 0.0
        if hs is not None:
            active &= hs != 0.0
        nact = np.count_nonzero(active, axis=1)
        small = bool(np.any((nact >= 1) & (nact <= lean)))
        large = bool(np.any(nact > lean))
    both = signed and bool(np.any(shz))
    one = (not signed) or not bool(np.all(shz))
    return (True if small and both else None, True if small and one else None,
            True if large else None)
