"""Prototype (not certified, not in the library): the exact level-set search in the α domain
for the full-range lattice lo … hi with a signed scale (issue 21, "Fast enough").

The problem per group is ``min over α > 0 and the sign of g(α) = Σ h·dist²(x, α·L)``, ``L`` the
lattice (``−α``: the mirrored lattice ``−hi … −lo``; one division and one rounding per element
serve both signs, only the clamp differs). On ``[α_lo, α_hi]`` an element whose ``x/k`` (a
level ``k ≠ 0`` of its sign, within the clamp) is not inside keeps every ``|x − αk|``
monotone, so its distance is at least ``min(g_i(α_lo), g_i(α_hi))``; else 0. The sum is a
lower bound of ``g`` on the gap (the α-domain bound proposed for issue 21). Search: one make_qx-like
incumbent pass (α = amax/(cap + ½), both signs) and its least-squares α as the centre; a
geometric grid of ``ngrid`` α from ``centre/spread`` to ``centre·spread²``, both signs per
pass; the tail bounds beyond the grid (counted when they fail to exclude, never searched: the
prototype's misses); the gap bounds; an exact sweep of the events ``|x|/(k + ½)`` in the
surviving gaps (``r = S1²/S2`` of every piece: each is an assignment, so ``max r`` over them is
the optimum when the optimum's gap survives).

Plain float64, one ``1/α`` multiply per element (not the library's ``fl(a/s)``), no rounding
slack: this measures the cost and the pruning, and checks ``r`` against the exact path to
1e-12; it does not produce certified states. Run:
``python benchmarks/proto_alpha.py`` (one thread; prints ns per weight and the agreement).
"""

import time

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _rnd(y):
    """Round half away from zero."""
    return np.floor(y + 0.5) if y >= 0.0 else -np.floor(-y + 0.5)


@njit(cache=True, nogil=True)
def alpha_rows(xs, hs, lo, hi, ngrid, spread, out, stats, stage=2):
    """Per row ``max r`` over both signs (``out[r]``); ``stats``: gaps kept, events swept,
    tails open. ``stage`` cuts the search short for the cost breakdown: 0 after the grid, 1
    after the gap bounds (no sweeps), 2 everything."""
    rows, n = xs.shape
    m = ngrid
    yy = np.empty((m, n))
    gp = np.empty((m, n))  # per-element loss at each grid α, + direction
    gm = np.empty((m, n))  # − direction (lattice −hi … −lo)
    al = np.empty(m)
    tot = np.empty((2, m))
    ev = np.empty((2 * n * (hi - lo + 1), 3))
    order = np.empty(ev.shape[0], dtype=np.int64)
    kept = 0
    swept = 0
    for r in range(rows):
        x2 = 0.0
        amax = 0.0
        xm = 0.0
        for i in range(n):
            x2 += hs[r, i] * xs[r, i] * xs[r, i]
            if abs(xs[r, i]) > amax:
                amax = abs(xs[r, i])
                xm = xs[r, i]
        if amax == 0.0:
            out[r] = 0.0
            continue
        # Incumbent: one pass at α = amax/(cap + ½) (both signs from one rounding), then the
        # least-squares α of the better sign as the grid's centre.
        capx = hi if xm > 0 else -lo
        inv = (capx + 0.5) / amax
        s1p = 0.0
        s2p = 0.0
        s1m = 0.0
        s2m = 0.0
        for i in range(n):
            x = xs[r, i]
            q = _rnd(x * inv)
            qp = min(max(q, lo), hi)
            qm = min(max(q, -hi), -lo)
            s1p += hs[r, i] * x * qp
            s2p += hs[r, i] * qp * qp
            s1m += hs[r, i] * x * qm
            s2m += hs[r, i] * qm * qm
        best = 0.0
        a0 = amax / capx
        if s1p > 0.0 and s1p * s1p / s2p > best:
            best = s1p * s1p / s2p
            a0 = s1p / s2p
        if s1m > 0.0 and s1m * s1m / s2m > best:
            best = s1m * s1m / s2m
            a0 = s1m / s2m
        ub = x2 - best  # loss upper bound
        # Grid around a0, both directions per pass.
        for j in range(m):
            al[j] = a0 * spread ** ((j - (m - 1) / 3.0) / ((m - 1) / 3.0))
            inv = 1.0 / al[j]
            tp = 0.0
            tm = 0.0
            s1p = 0.0
            s2p = 0.0
            s1m = 0.0
            s2m = 0.0
            for i in range(n):
                x = xs[r, i]
                yv = x * inv
                yy[j, i] = abs(yv)
                q = _rnd(yv)
                qp = min(max(q, lo), hi)
                qm = min(max(q, -hi), -lo)
                e = x - al[j] * qp
                gp[j, i] = hs[r, i] * e * e
                e = x - al[j] * qm
                gm[j, i] = hs[r, i] * e * e
                tp += gp[j, i]
                tm += gm[j, i]
                s1p += hs[r, i] * x * qp
                s2p += hs[r, i] * qp * qp
                s1m += hs[r, i] * x * qm
                s2m += hs[r, i] * qm * qm
            tot[0, j] = tp
            tot[1, j] = tm
            if s1p > 0.0 and s1p * s1p / s2p > best:
                best = s1p * s1p / s2p
            if s1m > 0.0 and s1m * s1m / s2m > best:
                best = s1m * s1m / s2m
        ub = x2 - best
        if stage == 0:
            out[r] = best
            continue
        # Tails: α ≤ al[0] (clipping: element beyond its end level), α ≥ al[-1] (an element
        # at count ≤ round(a/α_hi): its best is its first level or 0).
        for d in range(2):
            lbb = 0.0
            lba = 0.0
            for i in range(n):
                x = xs[r, i]
                a = abs(x)
                cap = (hi if x > 0 else -lo) if d == 0 else (-lo if x > 0 else hi)
                t = a - al[0] * cap
                if t > 0.0:
                    lbb += hs[r, i] * t * t
                t = al[m - 1] - a
                if t > 0.0 and cap >= 1:
                    # nearest at α ≥ al[-1]: 0 (error a) or ±α (error ≥ α − a)
                    lba += hs[r, i] * min(a * a, t * t)
            if lbb <= ub or lba <= ub:
                stats[2] += 1  # a tail not excluded: the prototype counts it (and misses it)
        # Gaps.
        for d in range(2):
            g = gp if d == 0 else gm
            for j in range(m - 1):
                a_lo = al[j]
                a_hi = al[j + 1]
                lb = 0.0
                for i in range(n):
                    x = xs[r, i]
                    a = abs(x)
                    cap = (hi if x > 0 else -lo) if d == 0 else (-lo if x > 0 else hi)
                    u = yy[j + 1, i]
                    v = yy[j, i]
                    k = max(np.ceil(u), 1.0)
                    if k <= v and k <= cap:
                        continue
                    lb += min(g[j, i], g[j + 1, i])
                if lb > ub:
                    continue
                kept += 1
                if stage == 1:
                    continue
                # Sweep the gap: state at a_hi, events |x|/(k + ½) in (a_lo, a_hi].
                inv = 1.0 / a_hi
                s1 = 0.0
                s2 = 0.0
                ne = 0
                for i in range(n):
                    x = xs[r, i]
                    a = abs(x)
                    cap = (hi if x > 0 else -lo) if d == 0 else (-lo if x > 0 else hi)
                    q = min(_rnd(a * inv), cap)
                    s1 += hs[r, i] * a * q
                    s2 += hs[r, i] * q * q
                    while q < cap:
                        t = a / (q + 0.5)
                        if t < a_lo:
                            break
                        ev[ne, 0] = t
                        ev[ne, 1] = hs[r, i] * a
                        ev[ne, 2] = hs[r, i] * (2.0 * q + 1.0)
                        order[ne] = ne
                        ne += 1
                        q += 1.0
                for p in range(1, ne):
                    o = order[p]
                    q = p - 1
                    while q >= 0 and ev[order[q], 0] < ev[o, 0]:
                        order[q + 1] = order[q]
                        q -= 1
                    order[q + 1] = o
                swept += ne
                for p in range(ne):
                    o = order[p]
                    s1 += ev[o, 1]
                    s2 += ev[o, 2]
                    if s1 > 0.0 and s1 * s1 / s2 > best:
                        best = s1 * s1 / s2
                ub = x2 - best
        out[r] = best
    stats[0] += kept
    stats[1] += swept
    return out


def main():
    import sys
    sys.path.insert(0, "benchmarks")
    from bench_levelset import FULL4, _exact, _make_qx, _weights

    from vecq_ref._kernels import single_thread
    rows, cols, group = 512, 4096, 32
    x, h = _weights(rows, cols, group, 0)
    ref = _exact(x, h, FULL4, True)
    r_ref = np.where((ref[:, 5] > 0) & (ref[:, 1] != 0), ref[:, 4] ** 2 / ref[:, 5], 0.0)
    for m, spread in ((6, 1.25), (12, 1.4), (16, 1.5), (24, 1.5), (32, 1.5), (48, 1.5)):
        out = np.empty(x.shape[0])
        stats = np.zeros(3, dtype=np.int64)
        alpha_rows(x[:4], h[:4], -8, 7, m, spread, out[:4], stats)
        stats[:] = 0
        with single_thread():
            t = time.thread_time()
            alpha_rows(x, h, -8, 7, m, spread, out, stats)
            dt = time.thread_time() - t
        bad = np.abs(out - r_ref) > 1e-12 * r_ref
        print(f"grid {m:2d} × {spread}: {dt / x.size * 1e9:6.1f} ns/w (thread CPU), "
              f"gaps kept {stats[0] / x.shape[0]:.2f}/group, events {stats[1] / x.shape[0]:.1f}"
              f"/group, tails open {stats[2]}, r misses {bad.sum()} of {x.shape[0]}")
    for m, spread in ((6, 1.25), (16, 1.5), (48, 1.5)):
        cost = []
        for stage in (0, 1):
            out = np.empty(x.shape[0])
            stats = np.zeros(3, dtype=np.int64)
            alpha_rows(x[:4], h[:4], -8, 7, m, spread, out[:4], stats, stage)
            with single_thread():
                t = time.thread_time()
                alpha_rows(x, h, -8, 7, m, spread, out, stats, stage)
                cost.append((time.thread_time() - t) / x.size * 1e9)
        print(f"grid {m:2d} × {spread}: incumbent + grid {cost[0]:.1f} ns/w, "
              f"+ tails and gap bounds {cost[1]:.1f} ns/w (thread CPU)")
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
