"""Step-search kernels (docs/theory.md §4.2–4.4) on rows sorted once.

Every row ``x`` arrives sorted (signed, ascending). It is split into two magnitude lists,
positives and negatives, each ascending, with suffix sums ``Q[p] = Σ_{i ≥ p} a_i``; zeros are
only counted (their code never moves). With ``M = 2**(k-1)``, a magnitude ``a`` is *active at
level* ``j`` (1 ≤ j < M) for the step ``s`` when

* midrise, positive: ``fl(a/s) ≥ j``; midrise, negative: ``fl(a/s) > j`` (``floor`` of a
  negative quotient rounds away from zero, so an exact tie stays one level lower);
* midtread: ``fl(fl(a/s) + ½) ≥ j``,

which is exactly when the lattice kernel gives the weight a level of magnitude above ``j``
(≥ ``j + ½`` midrise, ≥ ``j`` midtread). Activity is monotone in ``a`` and in ``s``, so the
codes of every weight for a step ``s`` are described by the *state* ``P[σ, j]``: the first
index of list ``σ`` active at level ``j``. Then, with ``c_j`` active magnitudes at level ``j``,

    S1 = Σ|w||v| = ½·Σa (midrise only) + Σ_j (Q⁺[P⁺_j] + Q⁻[P⁻_j])
    S2 = Σv²     = N/4 + Σ_j 2j·c_j (midrise)      or      Σ_j (2j − 1)·c_j (midtread).

``S1`` is summed over the levels by a fixed pairwise tree, so it is a deterministic, monotone
function of the state (float additions of non-negative terms are monotone): bounds built from
it are valid for the computed objective ``r = S1²/S2`` itself.

Every kernel has a plain-NumPy twin of the same name in :mod:`vecq_ref.naive`.

Compile time: every kernel reads the sorted rows in float64 only (the caller sorts in the
weights' dtype and widens), so the searches compile once whatever the input dtype. Every
use of a weight, in the state searches, σ and the final sums alike, is ``np.float64(a)`` or
a sign test, so the results are those of the rows in their own dtype, bit for bit.

The small helpers of the state searches are inlined by Numba itself (``inline="always"``):
left to LLVM they stay calls that pass whole array structs, and the searches run 20 % slower.
"""

import numpy as np
from numba import njit

from . import f64, helper, run_tasks
from .lattice import _codes_span, _span_sums
from .reduce import _span_sq_dev

_EPS = 2.220446049250313e-16
LLOYD = 8  # Lloyd iterations for the incumbent
REFINE_SKIP = 0.5  # heuristic: skip test (iv) when half the free bound's crossing term fails


@njit(cache=True, nogil=True, inline="always")
def _mag(arr, i):
    return abs(np.float64(arr[i]))


@njit(cache=True, nogil=True, inline="always")
def _active(a, s, j, strict, midtread):
    q = abs(np.float64(a)) / s
    if midtread:
        return q + 0.5 >= j
    if strict:
        return q > j
    return q >= j


@helper
def threshold(a, j, strict, midtread):
    """Largest float step at which magnitude ``a`` is active at level ``j`` (0 if none)."""
    if a <= 0.0:
        return 0.0
    g = a / (j - 0.5) if midtread else a / j
    if g <= 0.0:
        g = 5e-324
    if _active(a, g, j, strict, midtread):
        while True:
            u = np.nextafter(g, np.inf)
            if u == np.inf or not _active(a, u, j, strict, midtread):
                return g
            g = u
    while True:
        g = np.nextafter(g, 0.0)
        if g <= 0.0:
            return 0.0
        if _active(a, g, j, strict, midtread):
            return g


@njit(cache=True, nogil=True, inline="always")
def _first_at_least(arr, lo, hi, x):
    while lo < hi:
        mid = (lo + hi) >> 1
        if _mag(arr, mid) >= x:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True, inline="always")
def _first_active(arr, lo, hi, s, j, strict, midtread):
    """First index in [lo, hi) active at level ``j`` for the step ``s`` (activity is monotone
    in the magnitude). Magnitudes farther than 16ε (relative) from ``j·s`` (``(j − ½)·s``
    midtread) are decided by comparison alone; only those closer are divided exactly."""
    g = (j - 0.5) * s if midtread else j * s
    if lo < hi and _mag(arr, lo) > g * (1.0 + 16.0 * _EPS):
        return lo  # common when the bounds are tight: no search at all
    p = _first_at_least(arr, lo, hi, g * (1.0 - 16.0 * _EPS))
    if p < hi and _mag(arr, p) <= g * (1.0 + 16.0 * _EPS):
        q = _first_at_least(arr, p, hi, np.nextafter(g * (1.0 + 16.0 * _EPS), np.inf))
        while p < q:
            mid = (p + q) >> 1
            if _active(arr[mid], s, j, strict, midtread):
                q = mid
            else:
                p = mid + 1
    return p


@helper
def _state_at(s, ap, an, midtread, M, lo_st, hi_st, out):
    """State of the step ``s`` > 0, searched within ``lo_st ≤ out ≤ hi_st`` (known bounds)."""
    for sg in range(2):
        arr = ap if sg == 0 else an
        strict = sg == 1 and not midtread
        n = arr.shape[0]
        prev = 0
        out[sg, 0] = 0
        for j in range(1, M):
            if prev >= n:
                out[sg, j] = n
                continue
            lo = max(lo_st[sg, j], prev)
            hi = hi_st[sg, j]
            if lo < hi:
                lo = _first_active(arr, lo, hi, s, j, strict, midtread)
            out[sg, j] = lo
            prev = lo


@helper
def _sums(st, ap, an, Qp, Qn, ntot, M, midtread, buf):
    """(S1, S2, number of active (element, level) pairs) of a state."""
    npos = ap.shape[0]
    nneg = an.shape[0]
    buf[0] = 0.0 if midtread else 0.5 * (_q(ap, Qp, 0) + _q(an, Qn, 0))
    s2 = 0
    act = 0
    for j in range(1, M):
        buf[j] = _q(ap, Qp, st[0, j]) + _q(an, Qn, st[1, j])
        c = (npos - st[0, j]) + (nneg - st[1, j])
        act += c
        s2 += (2 * j - 1) * c if midtread else 8 * j * c
    width = M
    while width > 1:
        h = width >> 1
        for i in range(h):
            buf[i] = buf[2 * i] + buf[2 * i + 1]
        width = h
    S2 = float(s2) if midtread else (ntot + s2) / 4.0
    return buf[0], S2, act


@helper
def _ratio(S1, S2):
    return S1 * S1 / S2 if S2 > 0.0 else -1.0


#: The suffix sums are kept at every ``QSTRIDE``-th index only (``_suffix``): 16/QSTRIDE bytes
#: per weight instead of 8, at the cost of at most ``QSTRIDE − 1`` additions per lookup.
QSTRIDE = 8


def suffix_len(n):
    """Float64 entries ``_split`` needs for a row of ``n`` weights (both signs' checkpoints;
    ``_scratch`` computes the same)."""
    return 2 * (n // QSTRIDE + 4)


@helper
def _suffix(arr, Q):
    """Checkpoints of ``Q[p] = Σ_{i ≥ p} |arr[i]|``, compensated (TwoSum), so each entry is
    within ~1 ulp: the running pair ``(hi, lo)`` at index ``min(b·QSTRIDE, n)`` into
    ``Q[2b], Q[2b + 1]`` (``Q`` of length ``2·(⌈n/QSTRIDE⌉ + 1)``), returned. ``_q`` resumes
    the same additions from a checkpoint, so it gives every entry of the full table bit for
    bit from an eighth of its memory."""
    n = arr.shape[0]
    nb = (n + QSTRIDE - 1) // QSTRIDE
    Q[2 * nb] = 0.0
    Q[2 * nb + 1] = 0.0
    hi = 0.0
    lo = 0.0
    for i in range(n - 1, -1, -1):
        x = _mag(arr, i)
        t = hi + x
        bb = t - hi
        lo += (hi - (t - bb)) + (x - bb)
        hi = t
        if i % QSTRIDE == 0:
            Q[2 * (i // QSTRIDE)] = hi
            Q[2 * (i // QSTRIDE) + 1] = lo
    return Q[:2 * nb + 2]


@njit(cache=True, nogil=True, inline="always")
def _q(arr, Q, p):
    """``Q[p] = Σ_{i ≥ p} |arr[i]|`` (``Q[n] = 0``) from the checkpoints of ``_suffix``."""
    b = (p + QSTRIDE - 1) // QSTRIDE
    hi = Q[2 * b]
    lo = Q[2 * b + 1]
    for i in range(min(b * QSTRIDE, arr.shape[0]) - 1, p - 1, -1):
        x = _mag(arr, i)
        t = hi + x
        bb = t - hi
        lo += (hi - (t - bb)) + (x - bb)
        hi = t
    return hi + lo


@helper
def _split(row, Q):
    """Views of the positive and negative parts of a sorted row, each by ascending magnitude
    (read through ``_mag``), and their suffix sums' checkpoints (``_suffix``), in two views of
    ``Q`` (length at least ``suffix_len(len(row))``)."""
    n = row.shape[0]
    lo = 0
    hi = n
    while lo < hi:  # first index ≥ 0
        mid = (lo + hi) >> 1
        if row[mid] < 0:
            lo = mid + 1
        else:
            hi = mid
    nneg = lo
    hi = n
    while lo < hi:  # first index > 0
        mid = (lo + hi) >> 1
        if row[mid] <= 0:
            lo = mid + 1
        else:
            hi = mid
    ap = row[lo:][::1]  # strided ('A') like ``an``: one compiled `_suffix`, not two
    an = row[:nneg][::-1]
    m = 2 * ((n - lo + QSTRIDE - 1) // QSTRIDE + 1)
    return ap, an, _suffix(ap, Q[:m]), _suffix(an, Q[m:])


@helper
def _copy(dst, src):
    """``dst[:, :] = src`` for 2-D arrays, as a loop: each slice assignment Numba compiles
    costs seconds of compile time (its general broadcasting code), a loop a fraction."""
    for a in range(dst.shape[0]):
        for b in range(dst.shape[1]):
            dst[a, b] = src[a, b]


@helper
def _bounds_states(ap, an, M):
    Z = np.zeros((2, M), np.int64)
    F = np.empty((2, M), np.int64)
    for j in range(M):
        F[0, j] = ap.shape[0]
        F[1, j] = an.shape[0]
    return Z, F


@helper
def _interval(st, ap, an, M, midtread):
    """(lo, hi): the steps with this state are exactly the floats in (lo, hi]."""
    lo = 0.0
    hi = np.inf
    for sg in range(2):
        arr = ap if sg == 0 else an
        strict = sg == 1 and not midtread
        n = arr.shape[0]
        for j in range(1, M):
            p = st[sg, j]
            if p < n:
                hi = min(hi, threshold(_mag(arr, p), j, strict, midtread))
            if p > 0:
                lo = max(lo, threshold(_mag(arr, p - 1), j, strict, midtread))
    return lo, hi


@helper
def _same(a, b):
    for sg in range(2):
        for j in range(a.shape[1]):
            if a[sg, j] != b[sg, j]:
                return False
    return True


@helper
def _longer(a, m):
    """A copy of the 1-D ``a`` in a new array of length ``m`` ≥ len(a) (a loop, not
    ``np.concatenate``: cheaper to compile)."""
    b = np.empty(m, a.dtype)
    for i in range(a.shape[0]):
        b[i] = a[i]
    return b


@helper
def _grow(pool, pS1, pS2, pA, free, nfree, newcap):
    cap = pool.shape[0]
    new = np.empty((newcap, pool.shape[1], pool.shape[2]), np.int64)
    nS1 = np.empty(newcap)
    nS2 = np.empty(newcap)
    nA = np.empty(newcap, np.int64)
    for i in range(cap):  # loops, not slice assignments: 1 s of compile time instead of 9
        _copy(new[i], pool[i])
        nS1[i] = pS1[i]
        nS2[i] = pS2[i]
        nA[i] = pA[i]
    nfr = np.empty(newcap, np.int64)
    for i in range(nfree):
        nfr[i] = free[i]
    for i in range(newcap - cap):
        nfr[nfree + i] = newcap - 1 - i
    return new, nS1, nS2, nA, nfr, nfree + newcap - cap


@helper
def _reserve(k, pool, pS1, pS2, pA, free, nfree, max_slots, st_l, st_h, st_sc, ev, nst):
    """At least ``k`` free slots in the pool of states: it doubles up to ``max_slots``
    states, then the oldest ranges of the stack (from ``ev`` up, below ``nst``) give theirs
    back, their sums kept in ``st_sc`` (6 per range) and their slots marked −1; a range
    without states gets them recomputed when it is popped (``_exact_rows``). Returns the
    pool arrays, ``nfree`` and the new ``ev`` (ranges below it hold no states)."""
    while nfree < k:
        cap = pool.shape[0]
        if cap < max_slots:
            pool, pS1, pS2, pA, free, nfree = _grow(pool, pS1, pS2, pA, free, nfree,
                                                    min(2 * cap, max_slots))
            continue
        lo = int(st_l[ev])
        hi = int(st_h[ev])
        st_sc[6 * ev] = pS1[lo]
        st_sc[6 * ev + 1] = pS2[lo]
        st_sc[6 * ev + 2] = pA[lo]
        st_sc[6 * ev + 3] = pS1[hi]
        st_sc[6 * ev + 4] = pS2[hi]
        st_sc[6 * ev + 5] = pA[hi]
        free[nfree] = lo
        free[nfree + 1] = hi
        nfree += 2
        st_l[ev] = -1.0
        st_h[ev] = -1.0
        ev += 1
    return pool, pS1, pS2, pA, free, nfree, ev


@helper
def _stable_order(keys):
    """The permutation that sorts the 1-D ``keys`` (no NaN) stably, equal keys in index order:
    the one ``np.argsort(keys, kind="stable")`` returns (a stable order is unique), by a
    bottom-up merge sort. NumPy's argsort costs Numba ≈ 2 s to compile, this ≈ 0.3 s."""
    n = keys.shape[0]
    a = np.empty(n, np.int64)
    b = np.empty(n, np.int64)
    for i in range(n):
        a[i] = i
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i = lo
            j = mid
            for o in range(lo, hi):
                # the right run's element goes first only if strictly smaller: stable
                if j < hi and (i >= mid or keys[a[j]] < keys[a[i]]):
                    b[o] = a[j]
                    j += 1
                else:
                    b[o] = a[i]
                    i += 1
        a, b = b, a
        width *= 2
    return a


@helper
def _sweep_sorted(ap, an, Qp, Qn, ntot, M, midtread):
    """``_sweep_row`` by sorting all B breakpoints at once: O(B log B) time, O(B) memory
    (faster than the merge of ``_sweep_merged`` when B is small). Same outputs, bit for bit."""
    npos = ap.shape[0]
    B = (npos + an.shape[0]) * (M - 1)
    ts = np.empty(B)
    mags = np.empty(B)
    incs = np.empty(B, np.int64)
    k = 0
    for sg in range(2):
        arr = ap if sg == 0 else an
        strict = sg == 1 and not midtread
        for i in range(arr.shape[0]):
            a = _mag(arr, i)
            for j in range(1, M):
                t = threshold(a, j, strict, midtread)
                if t > 0.0:
                    ts[k] = t
                    mags[k] = a
                    incs[k] = (2 * j - 1) if midtread else 8 * j
                    k += 1
    order = _stable_order(ts[:k])
    hi_s = 0.0 if midtread else 0.5 * (_q(ap, Qp, 0) + _q(an, Qn, 0))
    lo_s = 0.0
    s2 = 0 if midtread else ntot
    S2 = float(s2) if midtread else s2 / 4.0
    bS1, bS2 = hi_s, S2
    br = _ratio(bS1, bS2)
    blo = ts[order[k - 1]] if k > 0 else 0.0
    bhi = np.inf
    evals = 1
    p = k - 1
    while p >= 0:
        t = ts[order[p]]
        while p >= 0 and ts[order[p]] == t:
            x = mags[order[p]]
            u = hi_s + x
            bb = u - hi_s
            lo_s += (hi_s - (u - bb)) + (x - bb)
            hi_s = u
            s2 += incs[order[p]]
            p -= 1
        S1 = hi_s + lo_s
        S2 = float(s2) if midtread else s2 / 4.0
        r = _ratio(S1, S2)
        evals += 1
        if r > br:
            br, bS1, bS2 = r, S1, S2
            bhi = t
            blo = ts[order[p]] if p >= 0 else 0.0
    step, consistent = _sweep_step(bS1, bS2, blo, bhi, M)
    return step, blo, bhi, bS1, bS2, evals, consistent


@helper
def _sweep_step(bS1, bS2, blo, bhi, M):
    """The step a sweep returns for its best interval ``(blo, bhi]`` with sums ``bS1``,
    ``bS2``: α* itself when it lies inside (Lloyd self-consistency), else a point of the
    interval; and whether α* lies inside to the rounding margin."""
    alpha = bS1 / bS2 if bS2 > 0.0 else 0.0
    margin = 8.0 * (np.log2(M) + 16.0) * _EPS
    consistent = blo * (1.0 - margin) <= alpha <= bhi * (1.0 + margin)
    if blo < alpha <= bhi:
        step = alpha
    elif bhi == np.inf:
        step = 2.0 * blo
    else:
        step = blo + 0.5 * (bhi - blo)
        if not blo < step <= bhi:
            step = bhi
    return step, consistent


@njit(cache=True, nogil=True, inline="always")
def _heap_less(ht, hid, a, b):
    """Heap order of the sweep: entry ``a`` comes after ``b`` (smaller threshold, or the same
    threshold and a smaller (sign, index) id)."""
    return ht[a] < ht[b] or (ht[a] == ht[b] and hid[a] < hid[b])


@njit(cache=True, nogil=True, inline="always")
def _heap_down(ht, hid, hj, size, i):
    """Restore the max-heap below ``i`` (entries: threshold, id, level)."""
    while True:
        c = 2 * i + 1
        if c >= size:
            return
        if c + 1 < size and _heap_less(ht, hid, c, c + 1):
            c += 1
        if not _heap_less(ht, hid, i, c):
            return
        ht[i], ht[c] = ht[c], ht[i]
        hid[i], hid[c] = hid[c], hid[i]
        hj[i], hj[c] = hj[c], hj[i]
        i = c


@helper
def _sweep_merged(ap, an, Qp, Qn, ntot, M, midtread):
    """``_sweep_row`` by merging: each weight's thresholds ``|w|/j`` (j = 1 … M − 1)
    already descend, so they are merged from the largest down by a heap of one entry per
    weight: O(B log N) time for B breakpoints, O(N) memory. Equal thresholds are taken by
    descending (sign, index, level) (negatives first, larger magnitudes first), so the sums
    add in one fixed order. Same outputs as the branch and bound (``_exact_rows``)."""
    npos = ap.shape[0]
    n = npos + an.shape[0]
    ht = np.empty(n)
    hid = np.empty(n, np.int64)
    hj = np.empty(n, np.int64)
    size = 0
    one = M // M  # not a literal 1: see `_exact_rows`
    for i in range(n):
        neg = i >= npos
        a = _mag(an, i - npos) if neg else _mag(ap, i)
        t = threshold(a, one, neg and not midtread, midtread) if M > 1 else 0.0
        if t > 0.0:
            ht[size] = t
            hid[size] = i
            hj[size] = 1
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _heap_down(ht, hid, hj, size, i)
    hi_s = 0.0 if midtread else 0.5 * (_q(ap, Qp, 0) + _q(an, Qn, 0))
    lo_s = 0.0
    s2 = 0 if midtread else ntot
    S2 = float(s2) if midtread else s2 / 4.0
    bS1, bS2 = hi_s, S2
    br = _ratio(bS1, bS2)
    blo = ht[0] if size > 0 else 0.0
    bhi = np.inf
    evals = 1
    while size > 0:
        t = ht[0]
        while size > 0 and ht[0] == t:
            i = hid[0]
            j = hj[0]
            neg = i >= npos
            strict = neg and not midtread
            a = _mag(an, i - npos) if neg else _mag(ap, i)
            # The weight's levels with this same threshold (possible only for tiny
            # magnitudes), added from the highest level down.
            top = j
            tn = 0.0
            while top + 1 < M:
                tn = threshold(a, top + 1, strict, midtread)
                if tn != t:
                    break
                top += 1
            if top + 1 >= M:
                tn = 0.0
            for jj in range(top, j - 1, -1):
                u = hi_s + a
                bb = u - hi_s
                lo_s += (hi_s - (u - bb)) + (a - bb)
                hi_s = u
                s2 += (2 * jj - 1) if midtread else 8 * jj
            if tn > 0.0:
                ht[0] = tn
                hj[0] = top + 1
            else:
                size -= 1
                ht[0] = ht[size]
                hid[0] = hid[size]
                hj[0] = hj[size]
            _heap_down(ht, hid, hj, size, 0)
        S1 = hi_s + lo_s
        S2 = float(s2) if midtread else s2 / 4.0
        r = _ratio(S1, S2)
        evals += 1
        if r > br:
            br, bS1, bS2 = r, S1, S2
            bhi = t
            blo = ht[0] if size > 0 else 0.0
    step, consistent = _sweep_step(bS1, bS2, blo, bhi, M)
    return step, blo, bhi, bS1, bS2, evals, consistent


@helper
def _sweep_row(ap, an, Qp, Qn, ntot, M, midtread, sort_max):
    """Exact search by sweeping every breakpoint (docs/theory.md §4.3 as written), for rows whose
    ``B = N·(M − 1)`` breakpoints are few enough: by sorting them (``_sweep_sorted``, O(B)
    memory) when ``B ≤ sort_max``, else by merging each weight's descending thresholds
    (``_sweep_merged``, O(N) memory). The two give the same outputs, bit for bit, and the
    same as the branch and bound (``_exact_rows``)."""
    if (ap.shape[0] + an.shape[0]) * (M - 1) <= sort_max:
        return _sweep_sorted(ap, an, Qp, Qn, ntot, M, midtread)
    return _sweep_merged(ap, an, Qp, Qn, ntot, M, midtread)


@helper
def _pick_step(best, lo, hi, alpha, ap, an, M, midtread):
    """A step inside (lo, hi]: α* when it lies there, else the midpoint (or ``hi``)."""
    if M == 1 or ap.shape[0] + an.shape[0] == 0:
        return alpha if alpha > 0.0 else 0.0
    if lo < alpha <= hi:
        s = alpha
    elif hi == np.inf:
        s = 2.0 * lo
    else:
        s = lo + 0.5 * (hi - lo)
    Z, F = _bounds_states(ap, an, M)
    cur = np.empty((2, M), np.int64)
    _state_at(s, ap, an, midtread, M, Z, F, cur)
    if _same(cur, best) or hi == np.inf:
        return s
    return hi


@helper
def _scratch(qbuf, cbuf, r, n):
    """Row ``r``'s buffers for ``_split`` and ``_loss_sums``: the caller's when it passed
    them (``qbuf``: rows × ``suffix_len(n)``, ``cbuf``: rows × n), else new ones. Large buffers
    allocated by NumPy are reused or huge-page backed; Numba's own fault in page by page,
    which costs more than the search on long rows."""
    if r < qbuf.shape[0]:
        return qbuf[r], cbuf[r]
    return np.empty(2 * (n // QSTRIDE + 4)), np.empty(n, cbuf.dtype)


@helper
def _sigma(row, ap, an, Qp, Qn):
    """Population std of the (sorted) row: its mean from the suffix sums, then Σ(x − mean)²."""
    n = row.shape[0]
    return np.sqrt(_span_sq_dev(row, (_q(ap, Qp, 0) - _q(an, Qn, 0)) / n) / n)


@helper
def _loss_sums(row, s, bits, midtread, out, codes):
    """Codes of every weight of ``row`` at the step ``s`` by the lattice kernel (into
    ``codes``, as long as ``row``), and the sums Σwv, Σv², Σ(w − sv)², Σ(w − sv)v, Σw² into
    ``out[0:5]`` (the fused pass of ``quantize``: the same kernels, so the same codes)."""
    n = row.shape[0]
    half = 2.0 ** (bits - 1)
    off = 0.0 if midtread else 0.5
    _codes_span(row, s, half, midtread, codes)
    ci, cc, swv, ds, rs = _span_sums(row, codes, s, off)
    out[0] = swv
    out[1] = cc + 2.0 * off * ci + off * off * n
    out[2] = ds
    out[3] = rs
    out[4] = _span_sq_dev(row, 0.0)


@helper
def _finish_exact(x, r, bits, midtread, out, codes, res):
    """Row ``r``'s result ``res`` = (step, lo, hi, S1, S2, evaluations, consistent) and the
    sums of its codes into ``out[r]``, with the certificate."""
    step, lo, hi, S1, S2, ev, ok = res
    _loss_sums(x[r], step, bits, midtread, out[r, 7:], codes)
    # Certificate: the codes of ``step`` are the optimal state (Σv² is exact).
    ok = ok and out[r, 8] == S2 and abs(out[r, 7] - S1) <= 1e-12 * S1
    out[r, 0] = step
    out[r, 1] = lo
    out[r, 2] = hi
    out[r, 3] = S1
    out[r, 4] = S2
    out[r, 5] = ev
    out[r, 6] = 1.0 if ok else 0.0


@helper
def _evaluate(st, ap, an, Qp, Qn, ntot, M, midtread, buf, best, inc):
    """(S1, S2, active pairs) of the state ``st``, which becomes the incumbent (copied into
    ``best``; ``inc`` = [r, active pairs, S1, S2]) when its r = S1²/S2 is larger, or equal
    with fewer active pairs."""
    S1, S2, A = _sums(st, ap, an, Qp, Qn, ntot, M, midtread, buf)
    r = _ratio(S1, S2)
    if r > inc[0] or (r == inc[0] and A < inc[1]):
        _copy(best, st)
        inc[0], inc[1], inc[2], inc[3] = r, A, S1, S2
    return S1, S2, A


@njit(cache=True, nogil=True)
def _exact_rows(x, bits, midtread, lam, max_slots, out, qbuf, cbuf, idx, t0, t1):
    """Branch and bound for the global maximum of S1²/S2 over all steps (see
    ``vecq_ref.search``) on the rows ``idx[t0:t1]`` of the sorted float64 rows ``x``; see
    :func:`exact_search`. One function, not a row loop calling a search function: Numba
    optimizes and emits everything a function calls once more for each calling level."""
    ntot = x.shape[1]
    M = 1 << (bits - 1)
    for t in range(t0, t1):
        ri = idx[t]
        Q, codes = _scratch(qbuf, cbuf, ri, ntot)
        ap, an, Qp, Qn = _split(x[ri], Q)
        best = np.empty((2, M), np.int64)
        s_init = lam * _sigma(x[ri], ap, an, Qp, Qn)
        Z, F = _bounds_states(ap, an, M)
        buf = np.empty(M)
        # Above every threshold no magnitude is active: the sign codes (midrise) or all zeros.
        inc = np.empty(4)  # the incumbent: r, active pairs, S1, S2 (see `_evaluate`)
        inc[0] = -np.inf
        _evaluate(F, ap, an, Qp, Qn, ntot, M, midtread, buf, best, inc)
        evals = 1
        margin = 8.0 * (np.log2(M) + 16.0) * _EPS
        if M > 1 and ap.shape[0] + an.shape[0] > 0:
            cur = np.empty((2, M), np.int64)
            prev = np.empty((2, M), np.int64)
            # Incumbent: Lloyd iterations s ← S1/S2 from the parametric step.
            s = s_init
            for it in range(LLOYD):
                if not (0.0 < s < np.inf):
                    break
                _state_at(s, ap, an, midtread, M, Z, F, cur)
                evals += 1
                S1, S2, A = _evaluate(cur, ap, an, Qp, Qn, ntot, M, midtread, buf, best, inc)
                if it > 0 and _same(cur, prev):
                    break
                _copy(prev, cur)
                if S2 <= 0.0:
                    break
                s = S1 / S2
            # The root range (sL, sH]: from below every threshold to the largest one.
            sH = 0.0
            sL = np.inf
            # Computed, not literal, arguments: a literal 1 or False (even through np.int64)
            # would compile another `threshold`.
            one = M // M
            plain = M < 0
            if ap.shape[0] > 0:
                sH = max(sH, threshold(_mag(ap, ap.shape[0] - 1), one, plain, midtread))
                sL = min(sL, threshold(_mag(ap, 0), M - 1, plain, midtread))
            if an.shape[0] > 0:
                sH = max(sH, threshold(_mag(an, an.shape[0] - 1), one, not midtread, midtread))
                sL = min(sL, threshold(_mag(an, 0), M - 1, not midtread, midtread))
            sL *= 0.5
            # At most `max_slots` states are held (memory O(max_slots·M)): beyond, the
            # oldest ranges of the stack keep only their sums (`_reserve`).
            cap = min(64, max_slots)
            pool = np.empty((cap, 2, M), np.int64)
            pS1 = np.empty(cap)
            pS2 = np.empty(cap)
            pA = np.empty(cap, np.int64)
            free = np.empty(cap, np.int64)
            for i in range(cap):
                free[i] = cap - 1 - i
            nfree = cap
            # The stack of ranges: pool slots of the two end states (small integers, held
            # exactly in float64, so one `_longer` serves all four) and the step range.
            st_l = np.empty(cap)
            st_h = np.empty(cap)
            st_lo = np.empty(cap)
            st_hi = np.empty(cap)
            st_sc = np.empty(6 * cap)
            ev = 0
            nst = 0
            if sH > 0.0:
                nfree -= 1
                lid = free[nfree]
                nfree -= 1
                hid = free[nfree]
                _state_at(np.nextafter(sL, np.inf), ap, an, midtread, M, Z, F, pool[lid])
                _state_at(sH, ap, an, midtread, M, pool[lid], F, pool[hid])
                for q in (lid, hid):
                    pS1[q], pS2[q], pA[q] = _evaluate(pool[q], ap, an, Qp, Qn, ntot, M,
                                                      midtread, buf, best, inc)
                    evals += 1
                st_l[0], st_h[0], st_lo[0], st_hi[0] = lid, hid, sL, sH
                nst = 1
            while nst > 0:
                nst -= 1
                ev = min(ev, nst)
                l, h, sL, sH = int(st_l[nst]), int(st_h[nst]), st_lo[nst], st_hi[nst]
                if l < 0:
                    # Its states were given back: the same states again (a state depends on
                    # its step alone), their sums as they were; no evaluation is counted.
                    pool, pS1, pS2, pA, free, nfree, ev = _reserve(
                        2, pool, pS1, pS2, pA, free, nfree, max_slots, st_l, st_h, st_sc, ev,
                        nst)
                    nfree -= 1
                    l = free[nfree]
                    nfree -= 1
                    h = free[nfree]
                    _state_at(sH, ap, an, midtread, M, Z, F, pool[h])
                    _state_at(np.nextafter(sL, np.inf), ap, an, midtread, M, Z, pool[h], pool[l])
                    pS1[l], pS2[l], pA[l] = st_sc[6 * nst], st_sc[6 * nst + 1], st_sc[6 * nst + 2]
                    pS1[h], pS2[h], pA[h] = (st_sc[6 * nst + 3], st_sc[6 * nst + 4],
                                             st_sc[6 * nst + 5])
                keep = pA[l] != pA[h]
                contracted = False
                try_refined = True
                if keep and pS2[h] > 0.0:
                    # Upper bound of S1²/S2 on the range: S1 is largest, S2 smallest at its
                    # ends.
                    if pS1[l] * pS1[l] / pS2[h] < inc[0]:
                        keep = False
                if keep:
                    # Self-consistency (docs/theory.md §3): an optimal state v has α*(v)
                    # inside its own interval, so a range whose α* bracket misses it holds no
                    # such state.
                    ahi = pS1[l] / pS2[h] if pS2[h] > 0.0 else np.inf
                    alo = pS1[h] / pS2[l]
                    if ahi * (1.0 + margin) < sL or alo * (1.0 - margin) > sH:
                        keep = False
                    aa = max(alo, sL) * (1.0 - margin)
                    ab = min(ahi, sH) * (1.0 + margin)
                    S1H = pS1[h]
                    S2H = pS2[h]
                    am = ab if S2H <= 0.0 else min(max(S1H / S2H, aa), ab)
                    fmax = 2.0 * am * S1H - am * am * S2H
                    # Free version of the refined bound below: a crossing (magnitude a, level j,
                    # S2 increment c) gains at most aa·(sH − aa)·c at α = aa, since a < j·sH.
                    if keep and aa <= ab and aa > 0.5 * sH * (1.0 + 4.0 * margin):
                        ub3 = fmax + aa * (sH - aa) * (pS2[l] - S2H)
                        if ub3 + 8.0 * margin * ab * pS1[l] < inc[0]:
                            keep = False
                        elif fmax + REFINE_SKIP * aa * (sH - aa) * (pS2[l] - S2H) >= inc[0]:
                            # The refined bound below would very likely fail too: split now rather
                            # than spend a state on it (a heuristic; exactness is unaffected).
                            try_refined = False
                    if try_refined and keep and aa <= ab and aa > 0.5 * sH * (1.0 + 4.0 * margin):
                        # Refined bound. For a fixed α, the best state of the range is the one of
                        # the step α; with α* confined to [aa, ab] ⊂ (sL, sH], each level crossing
                        # of the range is worth most at α = aa (its gain 2αa − α²ΔS2 peaks below
                        # sH/2), so max r ≤ max_[aa,ab] f_H − f_H(aa) + f_G(aa), f(α) = 2αS1 − α²S2,
                        # H the state at sH and G the state at aa.
                        if nfree < 1:
                            pool, pS1, pS2, pA, free, nfree, ev = _reserve(
                                1, pool, pS1, pS2, pA, free, nfree, max_slots, st_l, st_h, st_sc,
                                ev, nst)
                        nfree -= 1
                        g = free[nfree]
                        _state_at(max(aa, np.nextafter(sL, np.inf)), ap, an, midtread, M, pool[l],
                                  pool[h], pool[g])
                        S1, S2, A = _evaluate(pool[g], ap, an, Qp, Qn, ntot, M, midtread,
                                              buf, best, inc)
                        evals += 1
                        ub2 = (fmax - (2.0 * aa * S1H - aa * aa * S2H)
                               + (2.0 * aa * S1 - aa * aa * S2))
                        if ub2 + 8.0 * margin * ab * pS1[l] < inc[0]:
                            keep = False
                        elif (aa > np.nextafter(sL, np.inf)
                              and 5 * (A - pA[h]) < 4 * (pA[l] - pA[h])):
                            # Contract: steps below aa are the α* of no state of the range, so
                            # (sL, sH] shrinks to (aa⁻, sH], whose lower state is G.
                            _copy(pool[l], pool[g])
                            pS1[l], pS2[l], pA[l] = S1, S2, A
                            sL = np.nextafter(aa, 0.0)
                            contracted = True
                        free[nfree] = g
                        nfree += 1
                if keep and contracted:
                    st_l[nst], st_h[nst], st_lo[nst], st_hi[nst] = l, h, sL, sH
                    nst += 1
                    continue
                if not keep:
                    free[nfree] = l
                    free[nfree + 1] = h
                    nfree += 2
                    continue
                # Split at the median breakpoint of the busiest (sign, level) list.
                bsg = 0
                bj = M // M  # not a literal 1: see `one` above
                bc = -1
                for sg in range(2):
                    for j in range(1, M):
                        c = pool[h, sg, j] - pool[l, sg, j]
                        if c > bc:
                            bc, bsg, bj = c, sg, j
                mid = (pool[l, bsg, bj] + pool[h, bsg, bj] - 1) // 2
                arr = ap if bsg == 0 else an
                t = threshold(_mag(arr, mid), bj, bsg == 1 and not midtread, midtread)
                if nfree < 2:
                    pool, pS1, pS2, pA, free, nfree, ev = _reserve(
                        2, pool, pS1, pS2, pA, free, nfree, max_slots, st_l, st_h, st_sc, ev,
                        nst)
                nfree -= 1
                m1 = free[nfree]
                nfree -= 1
                m2 = free[nfree]
                _state_at(t, ap, an, midtread, M, pool[l], pool[h], pool[m1])
                _state_at(np.nextafter(t, np.inf), ap, an, midtread, M, pool[m1], pool[h], pool[m2])
                for q in (m1, m2):
                    pS1[q], pS2[q], pA[q] = _evaluate(pool[q], ap, an, Qp, Qn, ntot, M,
                                                      midtread, buf, best, inc)
                    evals += 1
                if nst + 2 > st_l.shape[0]:
                    k = st_l.shape[0]
                    st_l = _longer(st_l, 2 * k)
                    st_h = _longer(st_h, 2 * k)
                    st_lo = _longer(st_lo, 2 * k)
                    st_hi = _longer(st_hi, 2 * k)
                    st_sc = _longer(st_sc, 12 * k)
                ub1 = pS1[l] * pS1[l] / pS2[m1] if pS2[m1] > 0.0 else np.inf
                ub2 = pS1[m2] * pS1[m2] / pS2[h] if pS2[h] > 0.0 else np.inf
                # Push the less promising child first so the better one is searched next.
                if ub1 < ub2:
                    st_l[nst], st_h[nst], st_lo[nst], st_hi[nst] = l, m1, sL, t
                    st_l[nst + 1], st_h[nst + 1], st_lo[nst + 1], st_hi[nst + 1] = m2, h, t, sH
                else:
                    st_l[nst], st_h[nst], st_lo[nst], st_hi[nst] = m2, h, t, sH
                    st_l[nst + 1], st_h[nst + 1], st_lo[nst + 1], st_hi[nst + 1] = l, m1, sL, t
                nst += 2
        lo, hi = _interval(best, ap, an, M, midtread)
        bS1, bS2 = inc[2], inc[3]
        alpha = bS1 / bS2 if bS2 > 0.0 else 0.0
        consistent = lo * (1.0 - margin) <= alpha <= hi * (1.0 + margin)
        step = _pick_step(best, lo, hi, alpha, ap, an, M, midtread)
        _finish_exact(x, ri, bits, midtread, out, codes,
                      (step, lo, hi, bS1, bS2, evals, consistent))


@njit(cache=True, nogil=True)
def _sweep_rows(x, bits, midtread, sort_max, out, qbuf, cbuf, idx, t0, t1):
    """The breakpoint sweep (``_sweep_row``) on the rows ``idx[t0:t1]``; see
    :func:`exact_search`."""
    n = x.shape[1]
    M = 1 << (bits - 1)
    for t in range(t0, t1):
        r = idx[t]
        Q, codes = _scratch(qbuf, cbuf, r, n)
        ap, an, Qp, Qn = _split(x[r], Q)
        _finish_exact(x, r, bits, midtread, out, codes,
                      _sweep_row(ap, an, Qp, Qn, n, M, midtread, sort_max))


def _nonzeros(x):
    """Nonzero weights per sorted row: from where the zeros start and end (two binary
    searches) when the rows are few, by counting when they are many."""
    if x.shape[0] > 64:
        return np.count_nonzero(x, axis=1)
    return np.array([x.shape[1] - np.searchsorted(r, 0.0, "right") + np.searchsorted(r, 0.0)
                     for r in x], dtype=np.int64)


def exact_search(x, bits, midtread, lam, sweep_max, sort_max, max_slots, out, qbuf, cbuf):
    """Exact search per sorted float64 row of ``x`` (docs/theory.md §4.3). Twin:
    ``naive.exact_search``.

    ``lam·σ`` seeds the incumbent; the branch and bound holds at most ``max_slots`` (≥ 8)
    states of ``2M`` indices at once; rows with at most ``sweep_max`` breakpoints (nonzero
    weights × (M − 1)) are swept instead (``_sweep_row``; sorted when at most ``sort_max``):
    two kernels, so a call compiles only the one its rows need. ``out[r]`` = (step, lo, hi,
    S1, S2, evaluations, certified, Σwv, Σv², Σ(w − sv)², Σ(w − sv)v, Σw²) with the sums from
    the codes of ``step``.
    """
    breakpoints = _nonzeros(x) * ((1 << (bits - 1)) - 1)
    swept = breakpoints <= sweep_max
    mid = bool(midtread)
    for kernel, rows, extra in ((_sweep_rows, np.flatnonzero(swept), (int(sort_max),)),
                                (_exact_rows, np.flatnonzero(~swept),
                                 (float(lam), max(8, int(max_slots))))):
        if rows.size:
            run_tasks(kernel, rows.size, x.size,
                      (x, int(bits), mid, *extra, out, qbuf, cbuf, rows))


@njit(cache=True, nogil=True)
def _grid_rows(x, bits, midtread, lams, out, qbuf, cbuf, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`grid_search`."""
    n = x.shape[1]
    M = 1 << (bits - 1)
    num = lams.shape[0]
    for r in range(t0, t1):
        Q, codes = _scratch(qbuf, cbuf, r, n)
        ap, an, Qp, Qn = _split(x[r], Q)
        sigma = _sigma(x[r], ap, an, Qp, Qn)
        Z, F = _bounds_states(ap, an, M)
        cur = np.zeros((2, M), np.int64)
        lower = np.zeros((2, M), np.int64)
        buf = np.empty(M)
        br = -np.inf
        bi = 0
        bS1 = bS2 = 0.0
        for i in range(num):
            s = lams[i] * sigma
            if s > 0.0:
                _state_at(s, ap, an, midtread, M, lower, F, cur)
                _copy(lower, cur)
            else:
                _copy(cur, Z)
            S1, S2, _ = _sums(cur, ap, an, Qp, Qn, n, M, midtread, buf)
            q = _ratio(S1, S2)
            if q > br:
                br, bi, bS1, bS2 = q, i, S1, S2
        out[r, 0] = bi
        out[r, 1] = lams[bi] * sigma
        out[r, 2] = bS1
        out[r, 3] = bS2
        _loss_sums(x[r], out[r, 1], bits, midtread, out[r, 4:], codes)


def grid_search(x, bits, midtread, lams, out, qbuf, cbuf):
    """The paper's search per sorted float64 row (docs/theory.md §4.2): steps ``lams·σ``
    (``lams`` ascending), the first of largest S1²/S2 wins. Twin: ``naive.grid_search``.

    ``out[r]`` = (index, step, S1, S2, then the 5 sums of ``exact_search`` at the step).
    """
    run_tasks(_grid_rows, x.shape[0], x.size,
              (x, int(bits), bool(midtread), f64(lams), out, qbuf, cbuf))


@njit(cache=True, nogil=True)
def _alternating_rows(x, bits, midtread, init, value, max_iter, out, qbuf, cbuf, t0, t1):
    """Rows ``t0 ≤ r < t1`` of :func:`alternating_search`."""
    n = x.shape[1]
    M = 1 << (bits - 1)
    for r in range(t0, t1):
        Q, codes = _scratch(qbuf, cbuf, r, n)
        ap, an, Qp, Qn = _split(x[r], Q)
        Z, F = _bounds_states(ap, an, M)
        cur = np.empty((2, M), np.int64)
        prev = np.empty((2, M), np.int64)
        buf = np.empty(M)
        if init == 0:
            top = max(abs(x[r, 0]), abs(x[r, n - 1]))
            a = top / ((M - 1.0) if midtread else (M - 0.5))
        elif init == 1:
            a = value * _sigma(x[r], ap, an, Qp, Qn)
        else:
            a = value
        step = a
        it = 0
        while it < max_iter:
            if a > 0.0:
                _state_at(a, ap, an, midtread, M, Z, F, cur)
            else:
                _copy(cur, Z)
            it += 1
            step = a
            if it > 1 and _same(cur, prev):
                break
            S1, S2, _ = _sums(cur, ap, an, Qp, Qn, n, M, midtread, buf)
            if S2 <= 0.0 or S1 <= 0.0:
                break
            _copy(prev, cur)
            a = S1 / S2
        out[r, 0] = step
        out[r, 1] = it
        _loss_sums(x[r], step, bits, midtread, out[r, 2:], codes)


def alternating_search(x, bits, midtread, init, value, max_iter, out, qbuf, cbuf):
    """Alternating L2 (docs/theory.md §4.4) per sorted float64 row: codes of w/α, then
    α = S1/S2, repeated.

    α₀ = max|w|/(M − ½) (midrise) or max|w|/(M − 1) (midtread) for ``init`` 0, ``value·σ``
    for 1, ``value`` for 2. ``out[r]`` = (the α that produced the final codes, code
    evaluations, then the 5 sums of ``exact_search``). Twin: ``naive.alternating_search``.
    """
    run_tasks(_alternating_rows, x.shape[0], x.size,
              (x, int(bits), bool(midtread), int(init), float(value), int(max_iter), out,
               qbuf, cbuf))
