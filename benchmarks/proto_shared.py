"""Prototype (not certified, not in the library): one sorted event list for both signs of the
scale, for the full-range lattice −8 … 7 with a signed scale (issue 21, "Fast enough"; task S3).

For a step ``s > 0`` and the direction ``+α`` an element of magnitude ``a`` and sign σ sits at
count ``c = min(round(a/s), cap)`` (ties away from zero), ``cap = 7`` for σ = + and ``8`` for
σ = −; the direction ``−α`` swaps the caps. ``S1 = Σ h·a·c``, ``S2 = Σ h·c²`` and
``r = S1²/S2``. The thresholds ``a/(k − ½)``, ``k = 1 … 7``, are common to both directions;
only ``k = 8`` belongs to one (the direction where the element's cap is 8). So one list of
events, one sort, one sweep with two pairs of running sums.

Two variants, both per group of ``n`` weights:

- :func:`shared_rows`, probes only: two incumbent probes (``s = amax/7``, then the
  least-squares α of the better direction ``s_c``), a geometric grid ``s_c·f^j``
  (``j = −J … J``), coarse probes ``s_c·u`` and ``s_c/u`` for the ``up`` factors, and the two
  ends (``2·amax``: nothing moved; ``amin/7.5``: everything saturated). Each probe is one O(n)
  pass (one multiply and one rounding per element) giving both directions' ``S1, S2`` and
  ``X = Σ_{c>0} h·a²`` (``r ≤ X`` for every state with no more moved elements,
  Cauchy–Schwarz). Per interval between probes and per direction: the crossing bound (as
  ``exact_levels._prune_e``, without its slack) and ``X``; the events of the intervals that
  survive in either direction are generated from the counts stored at the interval's top,
  insertion-sorted and swept, both directions at a time.
- :func:`bucket_rows`, the lean path's pipeline shared: two incumbent probes; the bracket
  ``(sa, sb]`` from the loss bounds (``_lb_below``/``_lb_above``; one pass gives both
  directions' clipping bounds and the common rounding bound); the direct sums at ``sb`` of
  both directions from one rounding; the bracket's events once (each with ΔS1, ΔS2 per
  direction, zero where ``k = 8`` is the other direction's); buckets linear in the key with
  four sums; the crossing bound per bucket and direction; one sort and one sweep per
  surviving bucket for both directions.

Plain float64, ``a·(1/μ)`` keys and ``a·(1/s)`` counts, no rounding slack, no dirty edges and
no tie rule: this measures the cost and the pruning, and checks ``r`` against the exact path
to 1e-12; it does not produce certified states, intervals or codes. Run:
``python benchmarks/proto_shared.py`` (one thread; thread CPU time in ns per weight, the
stages, the agreement, and the 19-candidate search and today's exact path on the same input).
"""

import time

import numpy as np
from numba import njit

_NOHIST = np.zeros(0, dtype=np.int64)


@njit(cache=True, nogil=True, inline="always")
def _probe(s, a, hh, ha, cp, n, cnt, j):
    """Both directions' sums at step ``s`` (counts ``min(round(a/s), 8)`` stored in
    ``cnt[j]``): ``(S1+, S2+, S1−, S2−, X)``."""
    inv = 1.0 / s
    s1p = 0.0
    s2p = 0.0
    s1m = 0.0
    s2m = 0.0
    xm = 0.0
    for i in range(n):
        q = min(np.floor(a[i] * inv + 0.5), 8.0)
        cnt[j, i] = np.int64(q)
        c7 = min(q, 7.0)
        qp = q if cp[i] == 8 else c7
        qm = c7 if cp[i] == 8 else q
        s1p += ha[i] * qp
        s2p += hh[i] * (qp * qp)
        s1m += ha[i] * qm
        s2m += hh[i] * (qm * qm)
        if q > 0.0:
            xm += ha[i] * a[i]
    return s1p, s2p, s1m, s2m, xm


@njit(cache=True, nogil=True, inline="always")
def _r(s1, s2):
    return s1 * s1 / s2 if s1 > 0.0 and s2 > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _cross(slo, s1lo, s2lo, shi, s1hi, s2hi, best):
    """True when no state in ``(slo, shi]`` with ``α = S1/S2`` in it can beat ``best``
    (the crossing bound, ``exact_levels._prune_e`` without the rounding slack)."""
    if s1lo <= 0.0:
        return True
    amax = s1lo / s2hi if s2hi > 0.0 else np.inf
    amin = s1hi / s2lo
    if amax < slo or amin > shi:
        return True
    aa = max(amin, slo)
    ab = min(amax, shi)
    b = s1hi + 0.5 * shi * (s2lo - s2hi)
    c = s2lo
    al = min(max(b / c, aa), ab)
    return 2.0 * al * b - al * al * c < best


@njit(cache=True, nogil=True, inline="always")
def _cross_fast(slo, s1lo, s2lo, shi, s1hi, s2hi, best):
    """:func:`_cross` with the α range clamped to ``[slo, shi]`` only, tested on products
    first (one division where the unconstrained maximum ``b²/c`` reaches ``best``)."""
    if s1lo <= 0.0 or s1lo < slo * s2hi or s1hi > shi * s2lo:
        return True
    b = s1hi + 0.5 * shi * (s2lo - s2hi)
    c = s2lo
    if b * b < best * c:
        return True
    al = min(max(b / c, slo), shi)
    return 2.0 * al * b - al * al * c < best


@njit(cache=True, nogil=True)
def shared_rows(xs, hs, J, f, up, out, stats, stage=3, hist=_NOHIST):
    """Per row ``max r`` over both signs (``out[r]``). ``stats``: probes, intervals kept,
    events swept (sums over rows). ``stage`` cuts the search short for the cost breakdown:
    0 after the incumbent, 1 after the probes, 2 after the bounds, 3 everything."""
    rows, n = xs.shape
    imu = np.empty(9)
    imu[0] = 0.0
    for k in range(1, 9):
        imu[k] = 1.0 / (k - 0.5)
    a = np.empty(n)
    hh = np.empty(n)
    ha = np.empty(n)
    cp = np.empty(n, dtype=np.int64)
    npr = 2 * J + 1 + 2 * up.shape[0] + 2
    ps = np.empty(npr)
    sums = np.empty((npr, 5))
    cnt = np.empty((npr, n), dtype=np.int64)
    keep = np.empty(npr, dtype=np.int64)
    ev = np.empty((8 * n, 4))
    order = np.empty(8 * n, dtype=np.int64)
    nprobe = 0
    kept = 0
    swept = 0
    for r in range(rows):
        x2 = 0.0
        amax = 0.0
        amin = np.inf
        sat1p = 0.0
        sat2p = 0.0
        sat1m = 0.0
        sat2m = 0.0
        m = 0
        for i in range(n):
            x = xs[r, i]
            w = hs[r, i]
            if x == 0.0 or w == 0.0:
                continue
            ax = abs(x)
            a[m] = ax
            hh[m] = w
            ha[m] = w * ax
            c = 7 if x > 0.0 else 8
            cp[m] = c
            x2 += w * ax * ax
            amax = max(amax, ax)
            amin = min(amin, ax)
            sat1p += ha[m] * c
            sat2p += w * (c * c)
            sat1m += ha[m] * (15 - c)
            sat2m += w * ((15 - c) * (15 - c))
            m += 1
        if m == 0:
            out[r] = 0.0
            continue
        best = max(_r(sat1p, sat2p), _r(sat1m, sat2m))
        # Incumbent: amax/7, then the least-squares α of the better direction.
        s1p, s2p, s1m, s2m, _ = _probe(amax / 7.0, a, hh, ha, cp, m, cnt, 0)
        rp = _r(s1p, s2p)
        rm = _r(s1m, s2m)
        sc = s1p / s2p if rp >= rm else s1m / s2m
        best = max(best, rp, rm)
        s1p, s2p, s1m, s2m, _ = _probe(sc, a, hh, ha, cp, m, cnt, 0)
        rp = _r(s1p, s2p)
        rm = _r(s1m, s2m)
        best = max(best, rp, rm)
        if rp >= rm and s2p > 0.0:
            sc = s1p / s2p
        elif s2m > 0.0:
            sc = s1m / s2m
        if stage == 0:
            out[r] = best
            continue
        # Probes, descending in s: the top (nothing moved), coarse ones above the grid, the
        # grid, the bottom (everything saturated).
        top = 2.0 * amax * (1.0 + 1e-12)
        bot = amin / 7.5 * (1.0 - 1e-12)
        np_ = 0
        ps[np_] = top
        sums[np_, :] = 0.0
        for i in range(m):
            cnt[np_, i] = 0
        np_ += 1
        for u in range(up.shape[0] - 1, -1, -1):
            s = sc * up[u]
            if s < top and s > bot:
                ps[np_] = s
                np_ += 1
        for j in range(J, -J - 1, -1):
            s = sc * f ** j
            if s < ps[np_ - 1] and s > bot:
                ps[np_] = s
                np_ += 1
        for u in range(up.shape[0]):
            s = sc / up[u]
            if s < ps[np_ - 1] and s > bot:
                ps[np_] = s
                np_ += 1
        for j in range(1, np_):
            (sums[j, 0], sums[j, 1], sums[j, 2], sums[j, 3],
             sums[j, 4]) = _probe(ps[j], a, hh, ha, cp, m, cnt, j)
            best = max(best, _r(sums[j, 0], sums[j, 1]), _r(sums[j, 2], sums[j, 3]))
        ps[np_] = bot
        sums[np_, 0] = sat1p
        sums[np_, 1] = sat2p
        sums[np_, 2] = sat1m
        sums[np_, 3] = sat2m
        sums[np_, 4] = x2
        for i in range(m):
            cnt[np_, i] = 8
        np_ += 1
        nprobe += np_ - 2
        if stage == 1:
            out[r] = best
            continue
        # Bounds per interval (ps[j + 1], ps[j]] and direction: bit 1 = +, bit 2 = −.
        for j in range(np_ - 1):
            keep[j] = 0
            if sums[j + 1, 4] < best:
                continue
            for d in range(2):
                if not _cross(ps[j + 1], sums[j + 1, 2 * d], sums[j + 1, 2 * d + 1], ps[j],
                              sums[j, 2 * d], sums[j, 2 * d + 1], best):
                    keep[j] |= 1 << d
            if keep[j]:
                kept += 1
                if j < hist.shape[0]:
                    hist[j] += 1
        if stage == 2:
            out[r] = best
            continue
        # Events of each surviving interval, one sort, one sweep for both directions.
        for j in range(np_ - 1):
            if keep[j] == 0 or (j > 0 and sums[j + 1, 4] < best):
                continue
            lo = ps[j + 1]
            ne = 0
            for i in range(m):
                for k in range(cnt[j, i] + 1, 9):
                    key = a[i] * imu[k]
                    if key < lo:
                        break
                    ev[ne, 0] = key
                    ev[ne, 1] = ha[i]
                    ev[ne, 2] = hh[i] * (2 * k - 1)
                    ev[ne, 3] = 3 if k < 8 else (1 if cp[i] == 8 else 2)
                    order[ne] = ne
                    ne += 1
            for p in range(1, ne):
                o = order[p]
                q = p - 1
                kv = ev[o, 0]
                while q >= 0 and ev[order[q], 0] < kv:
                    order[q + 1] = order[q]
                    q -= 1
                order[q + 1] = o
            swept += ne
            u1p = sums[j, 0]
            u2p = sums[j, 1]
            u1m = sums[j, 2]
            u2m = sums[j, 3]
            for p in range(ne):
                o = order[p]
                msk = np.int64(ev[o, 3])
                if msk & 1:
                    u1p += ev[o, 1]
                    u2p += ev[o, 2]
                    if u1p * u1p > best * u2p:
                        best = u1p * u1p / u2p
                if msk & 2:
                    u1m += ev[o, 1]
                    u2m += ev[o, 2]
                    if u1m * u1m > best * u2m:
                        best = u1m * u1m / u2m
        out[r] = best
    stats[0] += nprobe
    stats[1] += kept
    stats[2] += swept
    return out


@njit(cache=True, nogil=True, inline="always")
def _lbs(s, a, hh, cp, n):
    """Both directions' clipping bounds of the loss at every ``α ≤ s`` (``exact_levels.
    _lb_below``: ``Σ h·max(a − s·cap, 0)²``, cap 7/8 by sign and direction) and the
    rounding bound at every ``α ≥ s`` (``_lb_above``, the same for both directions)."""
    bp = 0.0
    bm = 0.0
    ba = 0.0
    s7 = 7.0 * s
    s8 = 8.0 * s
    hs = 0.5 * s
    for i in range(n):
        ai = a[i]
        d7 = max(ai - s7, 0.0)
        d8 = max(ai - s8, 0.0)
        e7 = hh[i] * (d7 * d7)
        e8 = hh[i] * (d8 * d8)
        if cp[i] == 8:
            bp += e8
            bm += e7
        else:
            bp += e7
            bm += e8
        if ai >= hs:
            d = max(s - ai, 0.0)
            ba += hh[i] * (d * d)
        else:
            ba += hh[i] * (ai * ai)
    return bp, bm, ba


@njit(cache=True, nogil=True)
def bucket_rows(xs, hs, nbucket, out, stats, stage=4, flo=1.2, fhi=1.5, fast=False):
    """The lean path's pipeline with one event list for both signs: incumbent probes, a
    shared bracket (one pass gives both directions' clipping bounds and the common rounding
    bound), the direct sums at the bracket top for both directions from one rounding, the
    bracket's events once (``k = 8`` flagged with its direction), buckets linear in the key
    (about ``nbucket`` events each) with four sums, the crossing bound per segment and
    direction, one sort and one sweep of the surviving segments for both. ``stats``: bound
    passes, events, segments, segments kept, events swept. ``stage``: 0 after the
    incumbent, 1 after the bracket, 2 after the events, 3 after the buckets and bounds,
    4 everything."""
    rows, n = xs.shape
    imu = np.empty(9)
    imu[0] = 0.0
    for k in range(1, 9):
        imu[k] = 1.0 / (k - 0.5)
    a = np.empty(n)
    hh = np.empty(n)
    ha = np.empty(n)
    cp = np.empty(n, dtype=np.int64)
    cnt = np.empty((1, n), dtype=np.int64)
    ev = np.empty((8 * n, 5))
    evb = np.empty(8 * n, dtype=np.int64)
    order = np.empty(8 * n, dtype=np.int64)
    bsum = np.empty((8 * n + 1, 4))
    edge = np.empty((8 * n + 2, 4))
    bend = np.empty(8 * n + 2, dtype=np.int64)
    npass = 0
    nev = 0
    nseg = 0
    nkept = 0
    swept = 0
    for r in range(rows):
        x2 = 0.0
        amax = 0.0
        amin = np.inf
        sat1p = 0.0
        sat2p = 0.0
        sat1m = 0.0
        sat2m = 0.0
        m = 0
        for i in range(n):
            x = xs[r, i]
            w = hs[r, i]
            if x == 0.0 or w == 0.0:
                continue
            ax = abs(x)
            a[m] = ax
            hh[m] = w
            ha[m] = w * ax
            c = 7 if x > 0.0 else 8
            cp[m] = c
            x2 += w * ax * ax
            amax = max(amax, ax)
            amin = min(amin, ax)
            sat1p += ha[m] * c
            sat2p += w * (c * c)
            sat1m += ha[m] * (15 - c)
            sat2m += w * ((15 - c) * (15 - c))
            m += 1
        if m == 0:
            out[r] = 0.0
            continue
        best = max(_r(sat1p, sat2p), _r(sat1m, sat2m))
        sinc = amax / 7.0
        s = sinc
        for _ in range(2):
            s1p, s2p, s1m, s2m, _x = _probe(s, a, hh, ha, cp, m, cnt, 0)
            rp = _r(s1p, s2p)
            rm = _r(s1m, s2m)
            if max(rp, rm) > best:
                best = max(rp, rm)
                sinc = s
            s = s1p / s2p if rp >= rm else s1m / s2m
        if stage == 0:
            out[r] = best
            continue
        top = 2.0 * amax * (1.0 + 1e-12)
        bot = amin / 7.5 * (1.0 - 1e-12)
        lu = x2 - best
        f = flo
        sa = sinc / f
        while True:
            if sa <= bot:
                sa = bot
                break
            bp, bm, _b = _lbs(sa, a, hh, cp, m)
            npass += 1
            if min(bp, bm) > lu:
                break
            f *= f
            sa = sinc / f
        f = fhi
        sb = sinc * f
        while True:
            if sb >= top:
                sb = top
                break
            _b, _c, ba = _lbs(sb, a, hh, cp, m)
            npass += 1
            if ba > lu:
                break
            f *= f
            sb = sinc * f
        if stage == 1:
            out[r] = best
            continue
        # Direct sums at sb (both directions, one rounding) and the bracket's events.
        inv = 1.0 / sb
        inva = 1.0 / sa
        u1p = 0.0
        u2p = 0.0
        u1m = 0.0
        u2m = 0.0
        ne = 0
        lo = sa  # the bucket range is the bracket's (the keys lie in it)
        hi = sb
        for i in range(m):
            q = min(np.floor(a[i] * inv + 0.5), 8.0)
            c7 = min(q, 7.0)
            qp = q if cp[i] == 8 else c7
            qm = c7 if cp[i] == 8 else q
            u1p += ha[i] * qp
            u2p += hh[i] * (qp * qp)
            u1m += ha[i] * qm
            u2m += hh[i] * (qm * qm)
            qa = np.int64(min(np.floor(a[i] * inva + 0.5), 8.0))
            for k in range(np.int64(q) + 1, qa + 1):
                key = a[i] * imu[k]
                d1 = ha[i]
                d2 = hh[i] * (2 * k - 1)
                ev[ne, 0] = key
                ev[ne, 1] = d1
                ev[ne, 2] = d2
                ev[ne, 3] = d1
                ev[ne, 4] = d2
                if k == 8:  # only the direction where this element's cap is 8
                    ev[ne, 1 if cp[i] == 7 else 3] = 0.0
                    ev[ne, 2 if cp[i] == 7 else 4] = 0.0
                ne += 1
        best = max(best, _r(u1p, u2p), _r(u1m, u2m))
        nev += ne
        if stage == 2 or ne == 0:
            out[r] = best
            continue
        nbk = max(ne // nbucket, 1) if hi > lo else 1
        scale = nbk / (hi - lo) if nbk > 1 else 0.0
        for j in range(nbk):
            bsum[j, 0] = 0.0
            bsum[j, 1] = 0.0
            bsum[j, 2] = 0.0
            bsum[j, 3] = 0.0
            bend[j + 1] = 0
        bend[0] = 0
        for q in range(ne):
            j = min(np.int64((hi - ev[q, 0]) * scale), nbk - 1)
            evb[q] = j
            bsum[j, 0] += ev[q, 1]
            bsum[j, 1] += ev[q, 2]
            bsum[j, 2] += ev[q, 3]
            bsum[j, 3] += ev[q, 4]
            bend[j + 1] += 1
        for j in range(nbk):
            bend[j + 1] += bend[j]
        for q in range(ne):
            j = evb[q]
            order[bend[j]] = q
            bend[j] += 1
        # Edge j: the sums above bucket j (edge 0 = the state at sb), for both directions.
        edge[0, 0] = u1p
        edge[0, 1] = u2p
        edge[0, 2] = u1m
        edge[0, 3] = u2m
        for j in range(nbk):
            for c in range(4):
                edge[j + 1, c] = edge[j, c] + bsum[j, c]
            for d in range(2):
                e1 = edge[j + 1, 2 * d]
                e2 = edge[j + 1, 2 * d + 1]
                if e1 * e1 > best * e2:
                    best = e1 * e1 / e2
        nseg += nbk
        # Segment j = bucket j, its keys in [hi − (j + 1)/scale, hi − j/scale].
        for j in range(nbk):
            shi = sb if j == 0 else hi - j / scale
            slo = sa if j == nbk - 1 else hi - (j + 1) / scale
            keepd = 0
            for d in range(2):
                if fast:
                    pr = _cross_fast(slo, edge[j + 1, 2 * d], edge[j + 1, 2 * d + 1], shi,
                                     edge[j, 2 * d], edge[j, 2 * d + 1], best)
                else:
                    pr = _cross(slo, edge[j + 1, 2 * d], edge[j + 1, 2 * d + 1], shi,
                                edge[j, 2 * d], edge[j, 2 * d + 1], best)
                if not pr:
                    keepd |= 1 << d
            bsum[j, 0] = keepd
        if stage == 3:
            out[r] = best
            continue
        for j in range(nbk):
            if bsum[j, 0] == 0.0:
                continue
            nkept += 1
            k0 = 0 if j == 0 else bend[j - 1]
            k1 = bend[j]
            for p in range(k0 + 1, k1):
                o = order[p]
                q = p - 1
                kv = ev[o, 0]
                while q >= k0 and ev[order[q], 0] < kv:
                    order[q + 1] = order[q]
                    q -= 1
                order[q + 1] = o
            swept += k1 - k0
            u1p = edge[j, 0]
            u2p = edge[j, 1]
            u1m = edge[j, 2]
            u2m = edge[j, 3]
            for p in range(k0, k1):
                o = order[p]
                u1p += ev[o, 1]
                u2p += ev[o, 2]
                u1m += ev[o, 3]
                u2m += ev[o, 4]
                if u1p * u1p > best * u2p:
                    best = u1p * u1p / u2p
                if u1m * u1m > best * u2m:
                    best = u1m * u1m / u2m
        out[r] = best
    stats[0] += npass
    stats[1] += nev
    stats[2] += nseg
    stats[3] += nkept
    stats[4] += swept
    return out


def bracket_reach(x, h, ref, factors=(1.05, 1.1, 1.2, 1.5, 2.0)):
    """Fraction of groups whose loss bounds (``_lb_below`` with the caps of both directions,
    ``_lb_above``) exclude the steps below ``α*/f`` and above ``α*·f`` when the incumbent is
    the optimum itself (``ref``: the exact path's output): how narrow a bracket those bounds
    can give at best."""
    a = np.abs(x)
    cp = np.where(x > 0, 7.0, 8.0)
    r = ref[:, 4] ** 2 / ref[:, 5]
    al = np.abs(ref[:, 1])
    lu = np.sum(h * a * a, axis=1) - r
    rows = []
    for f in factors:
        lo = (al / f)[:, None]
        hi = (al * f)[:, None]
        bp = np.sum(h * np.maximum(a - lo * cp, 0.0) ** 2, axis=1)
        bm = np.sum(h * np.maximum(a - lo * (15.0 - cp), 0.0) ** 2, axis=1)
        d = np.where(a >= hi / 2, np.maximum(hi - a, 0.0) ** 2, a * a)
        ba = np.sum(h * d, axis=1)
        rows.append((f, np.mean(np.minimum(bp, bm) > lu), np.mean(ba > lu)))
    return rows


def main():
    import sys
    sys.path.insert(0, "benchmarks")
    from bench_levelset import FULL4, _exact, _make_qx, _weights

    from vecq_ref._kernels import single_thread
    rows, cols, group = 512, 4096, 32
    x, h = _weights(rows, cols, group, 0)
    ref = _exact(x, h, FULL4, True)
    r_ref = np.where((ref[:, 5] > 0) & (ref[:, 1] != 0), ref[:, 4] ** 2 / ref[:, 5], 0.0)
    g = x.shape[0]

    def timed(fn, args, stage):
        out = np.empty(g)
        stats = np.zeros(5, dtype=np.int64)
        fn(x[:4], h[:4], *args, out[:4], stats, stage)
        stats[:] = 0
        with single_thread():
            t = time.thread_time()
            fn(x, h, *args, out, stats, stage)
            dt = time.thread_time() - t
        return out, stats, dt / x.size * 1e9

    def agree(out):
        miss = np.sum(np.abs(out - r_ref) > 1e-12 * r_ref)
        return f"r misses {miss} of {g}, above exact {np.sum(out > r_ref * (1 + 1e-12))}"

    for J, fac, up in [(1, 1.05, (1.15, 1.4, 2.0, 4.0)), (1, 1.05, (1.2, 1.6, 3.0))]:
        args = (J, fac, np.array(up))
        out, st, ns = timed(shared_rows, args, 3)
        cost = [timed(shared_rows, args, s)[2] for s in (0, 1, 2)]
        print(f"probes J={J} f={fac} up={up}: {ns:.1f} ns/w (stages: incumbent {cost[0]:.1f}, "
              f"probes {cost[1]:.1f}, bounds {cost[2]:.1f}), probes {st[0] / g:.1f}/group, "
              f"intervals kept {st[1] / g:.2f}, events {st[2] / g:.1f}/group, {agree(out)}")
    for nb in (2, 3, 4):
        args = (nb,)
        out, st, ns = timed(bucket_rows, args, 4)
        cost = [timed(bucket_rows, args, s)[2] for s in (0, 1, 2, 3)]
        print(f"buckets of {nb}: {ns:.1f} ns/w (stages: incumbent {cost[0]:.1f}, bracket "
              f"{cost[1]:.1f}, events {cost[2]:.1f}, buckets+bounds {cost[3]:.1f}), bound passes "
              f"{st[0] / g:.2f}, events {st[1] / g:.1f}, buckets {st[2] / g:.1f}, kept "
              f"{st[3] / g:.2f}, swept {st[4] / g:.1f}/group, {agree(out)}")
    for f, below, above in bracket_reach(x[:4096], h[:4096], ref[:4096]):
        print(f"optimum as incumbent, f={f}: steps below α*/f excluded in {below:.2f} of the "
              f"groups, above α*·f in {above:.2f}")
    x32, h32 = x.astype(np.float32), h.astype(np.float32)
    _make_qx(x32[:8], h32[:8])
    with single_thread():
        t = time.thread_time()
        _make_qx(x32, h32)
        dt = time.thread_time() - t
    print(f"make_qx_rows: {dt / x.size * 1e9:.1f} ns/w (thread CPU)")
    with single_thread():
        t = time.thread_time()
        _exact(x, h, FULL4, True)
        dt = time.thread_time() - t
    print(f"exact_levelset (lean): {dt / x.size * 1e9:.1f} ns/w (thread CPU)")


if __name__ == "__main__":
    main()
