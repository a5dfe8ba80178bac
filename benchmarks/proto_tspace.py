"""Prototype (issue 21, not taken): the chord bound in ``t = 1/α`` instead of ``α``.

``N(t) = max_q (2t·S1_q − S2_q) = t²·G(1/t)`` is a maximum of lines, so convex piecewise linear
in ``t`` everywhere: the chord over any cell bounds it from above with no constant ``C`` (today's
``_chord2`` needs ``C = S2(α1)`` on the cell), and ``max chord(t)/t²`` over a cell is closed form.
Plain NumPy, uncertified (no rounding slack): both bounds drive the same best-first branch and
bound (``CHORD_GRID`` probes, split at the geometric midpoint down to about 6 thresholds per
kept cell), on 300 groups of 32 of the benchmark's weights (signed −8 … 7, weighted); printed:
probes per group and thresholds left in kept leaves. Measured 2026-12-03: α-space 18.4 probes
(median 18, p90 21), 11.3 thresholds; t-space 16.1 (16, 19), 9.8 — about 12 % fewer probes,
not the factor issue 21's speed target needs (docs/performance.md).

Run from the repository root: ``python benchmarks/proto_tspace.py`` (about a minute).
"""

import heapq
import sys

import numpy as np

sys.path.insert(0, ".")

from benchmarks.bench_levelset import _weights  # noqa: E402
from vecq_ref._kernels.exact_levels import CHORD_GRID  # noqa: E402


def caps(x, d):
    """Path lengths of −8 … 7 for ``+α`` (``d = 0``) or ``−α``."""
    pos = x > 0
    return np.where(pos, 7, 8) if d == 0 else np.where(pos, 8, 7)


def state(a, h, cap, t):
    """S1, S2 and the sum of the codes of the nearest levels at ``1/α = t``."""
    c = np.minimum(np.floor(a * t + 0.5), cap)
    return (h * a * c).sum(), (h * c * c).sum(), c.sum()


def t_bound(t1, n1, t2, n2):
    """Max over ``[t1, t2]`` of ``chord(t)/t²``, the chord through ``(t1, n1)``, ``(t2, n2)``."""
    m = (n2 - n1) / (t2 - t1)
    c0 = n1 - m * t1
    cands = [t1, t2]
    if m != 0 and t1 < -2 * c0 / m < t2:
        cands.append(-2 * c0 / m)
    return max((c0 + m * t) / t ** 2 for t in cands)


def a_bound(a1, g1, a2, g2, c):
    """Today's α-space chord bound (``_chord2``'s ``_chord``, no rounding slack)."""
    h1 = g1 + c * a1 * a1
    h2 = g2 + c * a2 * a2
    sl = (h2 - h1) / (a2 - a1)
    if not c > 0:
        return max(g1, g2)
    av = min(max(sl / (2 * c), a1), a2)
    return h1 + sl * (av - a1) - c * av * av


def bb(a, h, capd, mode, leaf=6.0, max_probes=64):
    """Best-first branch and bound of one group: ``(probes, thresholds in kept leaves)``."""
    base = a.max() / 8.5
    stop = 2 * a.max()  # above it every code is 0
    probes = 0
    inc = 0.0
    cache = {}

    def probe(al):
        nonlocal probes, inc
        if al not in cache:
            probes += 1
            cache[al] = [state(a, h, cap, 1.0 / al) for cap in capd]
            for s1, s2, _ in cache[al]:
                if s2 > 0:
                    inc = max(inc, s1 * s1 / s2)
        return cache[al]

    sat = [state(a, h, cap, 1e300) for cap in capd]  # α → 0: every element at its cap
    for s1, s2, _ in sat:
        inc = max(inc, s1 * s1 / s2)
    pts = [base * f for f in CHORD_GRID if base * f < stop]
    for p in pts:
        probe(p)

    def sums(al, d, k):
        if al == 0:
            return sat[d][k]
        return 0.0 if al >= stop else probe(al)[d][k]

    def g(al, d):
        return 2 * al * sums(al, d, 0) - al * al * sums(al, d, 1)

    def ub(a1, a2, d):
        if mode == "alpha" or a1 == 0:  # the lowest cell reaches t = ∞: α-space there
            return a_bound(a1, g(a1, d), a2, g(a2, d), sums(a1, d, 1))
        t1, t2 = 1 / a2, 1 / a1
        return t_bound(t1, g(a2, d) * t1 * t1, t2, g(a1, d) * t2 * t2)

    edges = [0.0, *pts, stop]
    heap = [(-ub(p, q, d), p, q, d) for d in range(2) for p, q in zip(edges[:-1], edges[1:],
                                                                        strict=True)]
    heapq.heapify(heap)
    leaves = []
    while heap:
        _, p, q, d = heapq.heappop(heap)
        if ub(p, q, d) <= inc * (1 + 1e-12):
            continue
        ev = sums(p, d, 2) - sums(q, d, 2)  # thresholds crossed in the cell
        if ev <= leaf or probes >= max_probes:
            leaves.append((p, q, d, ev))
            continue
        m = np.sqrt(p * q) if p > 0 else 0.25 * q
        probe(m)
        heapq.heappush(heap, (-ub(p, m, d), p, m, d))
        heapq.heappush(heap, (-ub(m, q, d), m, q, d))
    return probes, sum(e for p, q, d, e in leaves if ub(p, q, d) > inc * (1 + 1e-12))


def main(ngroups=300):
    x, hh = _weights(4, 4096, 32, 0)
    rows = np.random.default_rng(0).choice(x.shape[0], ngroups, replace=False)
    for mode in ("alpha", "t"):
        v = np.array([bb(np.abs(x[r]), hh[r], [caps(x[r], 0), caps(x[r], 1)], mode)
                      for r in rows])
        print(f"{mode:5s} probes mean {v[:, 0].mean():.1f} median {np.median(v[:, 0]):.0f} "
              f"p90 {np.percentile(v[:, 0], 90):.0f} | thresholds in kept leaves "
              f"{v[:, 1].mean():.1f}")


if __name__ == "__main__":
    main()
