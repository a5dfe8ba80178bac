"""Straight-through groups read many at a time, where :func:`recover` provably reads them so.

A straight-through output ``w + (α·v − w)`` rounds to a value an ulp or so from ``α·v``, so
a level holds two or more values and :func:`~vecq_ref.check.recover.recover_rows` (one value
per level) leaves the group to :func:`~vecq_ref.check.recover.recover`, which costs ≈ 0.5 ms
a group in Python (33,722 of the 524,288 groups of a 4096 × 4096 straight-through VecQ
output in groups of 32: 22 CPU seconds). :func:`recover_rows_ste` reads such groups on the
midrise lattice through zero with the largest step, vectorized over the groups, and returns
for each group it reads the :class:`~vecq_ref.check.recover.Recovered` that
:func:`~vecq_ref.check.recover.recover` returns for it, field for field; every other group
is left to :func:`~vecq_ref.check.recover.recover`.

Why the answer is :func:`recover`'s (the conditions are tested group by group; "exactly"
means the same floating-point operations on the same numbers, elementwise or as a max/min):

1. *The first leveling (one level per distinct value) gives no reading with β = 0 that
   fits.* Its proposals give distinct values distinct codes (the scan skips ``diff(v) < 1``,
   the enumeration of gaps returns none for two levels on one point), so two values
   ``u_a < u_b`` that are ``d`` apart get codes ``c_b ≥ c_a + 1``, hence
   ``α ≤ rec_b − rec_a``. A reading that fits has ``|cast(rec_i) − u_i| ≤ ste_i`` (the
   wide tolerance of :func:`tolerances`: with β = 0 no terms) and
   ``|rec_i − cast(rec_i)| ≤ ½·ulp(|u_i| + ste_i)``; so ``α ≤ d + 2B`` with
   ``B = max ste + ½·ulp(max|u| + max ste)`` and the values span at most
   ``(2^k − 1)·α + 2B``. A group whose span exceeds ``1.01·(2^k·(d + 2B) + 2B)`` (``d``
   the smallest gap between its distinct values) has no such reading; so :func:`recover`
   neither returns from the first leveling nor keeps a reading with β = 0 from it.
2. *The second leveling is the codes' partition.* Its greedy stabbing of the intervals
   ``u ± ste_bound`` gives one level per code when, per code, the intervals share a point
   (largest lower end ≤ smallest upper end) and those of consecutive codes are apart
   (largest upper end below the next code's smallest lower end): the smallest upper end
   left is then always in the lowest code left and stabs exactly its intervals. Its
   centres and errors are then computed here as :func:`_clusters` and :func:`_levelings`
   compute them.
3. *The scan of lattices through zero* (:func:`_zero_offset_props`) is replayed exactly
   (the same tolerances, anchor, order of levels, candidates ``anchor/|v|`` on both
   families, their elimination level by level and the "vague" marks). Our candidate is
   ``α₀ = 2·anchor`` (midrise, the anchor a level of code 0 or −1): it must survive. Every
   other surviving candidate has ``α₀' ≤ anchor`` on a level set that places every level
   within a quarter step, so its refitted α is at most ``1.25·anchor``; ours places every
   level within 0.05 of a step, so its refitted α is at least ``1.8·anchor``: it is the
   first proposal :func:`_pick` tries.
4. *Its placement* (:func:`_try`): the lowest code is the only integer within the start
   tolerance (checked with margins: 0.04 and 0.4 of a step), so the codes are ours; on
   the two midtread lattices no integer is within it (the levels are half a step off), so
   they give nothing. :func:`_place` then fits α by least squares with the same dot
   products (``u @ v`` per group, one group at a time) and :func:`_judge` decides: every
   element within the tight tolerance, and whether ``w + (rec − w)`` reproduces ``u`` bit
   for bit (``straight_through``). Within the wide tolerance only: left to :func:`recover`.
5. *Not straight-through:* :func:`_pick` returns it at once, :func:`_search` too, and
   :func:`recover` (β = 0 first, no allowance needed). *Straight-through:* :func:`_pick`
   keeps it as its fallback and returns it when no other proposal fits better; this is
   accepted only where the scan leaves our candidate alone and marks none vague (then
   ``exhaustive``: :func:`_search` returns it), and where the third leveling (chains within
   ``ste``) is the same partition (then :func:`_levelings` stops). :func:`recover` then
   takes it (β = 0 before the offsets that step 1's leveling may have fitted) and tries
   :func:`as_mean`, replayed by :func:`as_mean_rows` (its scalars with the same NumPy
   calls on the same rows, its judgement elementwise; skipped where ``|mean(w)/α| < 0.49``:
   ``j = 0``): where that reading fits without the allowance it is the answer.

The argument's margins (0.05, 0.04, 0.4 of a step, the factor 1.01) only make a group go
to :func:`recover` more often; the decisions that need no margin (the scan, the
tolerances, the judgement, the least-squares α) are the same floating-point operations.

Only float dtypes without a working scale, 1 ≤ bits ≤ 8, the midrise lattice first in
``lattices``, groups without subnormal values and with a tolerance small against the step
(float32, float64; float16 and bfloat16 groups mostly fail step 1 and go to
:func:`recover`).
"""

from __future__ import annotations

import numpy as np

from . import recover as R
from ._floats import Scaled, dtype_of
from ._floats import cast as _cast
from ._floats import smallest_subnormal as _smallest_subnormal
from ._floats import spacing as _spacing
from ._floats import unit_roundoff as _unit_roundoff

#: Groups read at a time (elements ≈ this × n × 2^k in the scan's temporaries).
CHUNK_ROWS = 1 << 12


def recover_rows_ste(U, W, dtype, bits, rows, *, lattices=R.LATTICES, ulps=4):
    """:func:`~vecq_ref.check.recover.recover` of the straight-through groups among ``rows``
    that it reads on the midrise lattice through zero with the largest step (see the module
    docstring for why the answer is the same).

    Parameters
    ----------
    U, W : ndarray of float64, shape (groups, n)
        The output and the weights, one group a row (C-contiguous rows: the dot products are
        those :func:`recover` makes on ``U[i]``).
    dtype : numpy dtype or :class:`~vecq_ref.check._floats.Scaled`
        The dtype the output was stored in; a ``Scaled`` one reads nothing.
    bits : int
    rows : sequence of int
        The groups to try (those :func:`~vecq_ref.check.recover.recover_rows` left open).
    lattices, ulps
        As in :func:`~vecq_ref.check.recover.recover`.

    Returns
    -------
    dict of int to Recovered
        For each group read, what ``recover(U[i], W[i], dtype, bits, lattices=lattices,
        ulps=ulps)`` returns; the groups not in it are left to :func:`recover`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(dtype, Scaled) or rows.size == 0 or not 1 <= bits <= 8 or \
            not lattices or lattices[0] != "midrise" or U.shape[1] < 2:
        return {}
    out = {}
    for s in range(0, rows.size, CHUNK_ROWS):
        _chunk(U, W, dtype, bits, rows[s:s + CHUNK_ROWS], lattices, ulps, out)
    return out


def _chunk(U, W, dtype, bits, rows, lattices, ulps, out):
    u, w = U[rows], W[rows]
    g, n = u.shape
    lo_c, hi_c = R.code_range(bits, "midrise")
    half_k = 2 ** (bits - 1)
    with np.errstate(all="ignore"):
        absu = np.abs(u)
        tiny = _smallest_subnormal(dtype) / (2.0 * _unit_roundoff(dtype))
        ok = np.all(np.isfinite(u), axis=1) & np.all(np.isfinite(w), axis=1) & \
            ~np.any((absu > 0) & (absu < tiny), axis=1)
        # codes of the largest midrise step (the quick reading's; checked below)
        alpha = 2.0 * np.min(absu, axis=1)
        ok &= alpha > 0
        alpha = np.where(ok, alpha, 1.0)
        for _ in range(2):
            v = np.rint(u / alpha[:, None] - 0.5) + 0.5
            alpha = np.einsum("ij,ij->i", u, v) / np.einsum("ij,ij->i", v, v)
            ok &= alpha > 0
            alpha = np.where(ok, alpha, 1.0)
        c = np.rint(u / alpha[:, None] - 0.5)
        ok &= np.all((c >= lo_c) & (c <= hi_c), axis=1)
        tight, ste = R.tolerances(u, w, dtype, ulps)

        # 1. the first leveling fits no β = 0 lattice: the values span too much for their
        # smallest gap
        us = np.sort(u, axis=1)
        gaps = np.diff(us, axis=1)
        d = np.min(np.where(gaps > 0, gaps, np.inf), axis=1)
        m_ste = np.max(ste, axis=1)
        big = np.max(absu, axis=1)
        b = m_ste + 0.5 * _spacing(big + m_ste, dtype)
        span = us[:, -1] - us[:, 0]
        ok &= np.isfinite(d) & (span > 1.01 * (2.0 ** bits * (d + 2.0 * b) + 2.0 * b))

        # 2. the second leveling (intervals u ± ste_bound) is the codes' partition
        order = np.argsort(u, axis=1, kind="stable")
        take = np.take_along_axis
        cs = take(c, order, axis=1)
        ok &= np.all(np.diff(cs, axis=1) >= 0, axis=1)
        tb = R.ste_bound(u, w, dtype)
        lo_e = take(u - tb, order, axis=1)
        hi_e = take(u + tb, order, axis=1)
        ste_s = take(ste, order, axis=1)
        new = np.ones((g, n), dtype=bool)
        new[:, 1:] = cs[:, 1:] != cs[:, :-1]
        # 5. (straight-through) the chains within ste are the same partition
        us2 = take(u, order, axis=1)
        chain_new = np.diff(us2, axis=1) > ste_s[:, 1:] + ste_s[:, :-1]
        same_chains = np.all(chain_new == new[:, 1:], axis=1)
        starts = np.flatnonzero(new.ravel())
        seg_row = starts // n
        k = np.bincount(seg_row, minlength=g)
        a = np.maximum.reduceat(lo_e.ravel(), starts)       # largest lower end
        bb = np.minimum.reduceat(hi_e.ravel(), starts)      # smallest upper end
        top = np.maximum.reduceat(hi_e.ravel(), starts)
        bottom = np.minimum.reduceat(lo_e.ravel(), starts)
        seg_ok = a <= bb
        apart = np.ones(starts.size, dtype=bool)
        same_row = seg_row[1:] == seg_row[:-1]
        apart[:-1] = ~same_row | (top[:-1] < bottom[1:])
        ok &= np.bincount(seg_row, weights=~(seg_ok & apart), minlength=g) == 0
        ok &= k >= 2
        mids = 0.5 * (a + bb)
        halves = 0.5 * (bb - a)
        err = halves + 0.5 * _spacing(np.abs(mids) + halves, dtype)
        t_lev = np.maximum(np.maximum.reduceat(ste_s.ravel(), starts), 0.0)
        t_lev = t_lev + err + ulps * _spacing(np.abs(mids), dtype)
        code_lev = cs.ravel()[starts]
        # levels as (groups, 2^k) columns, NaN-padded
        kk = 2 ** bits
        pos = np.arange(starts.size) - np.repeat(np.cumsum(k) - k, k)
        cen = np.full((g, kk), np.nan)
        tt = np.zeros((g, kk))
        code = np.zeros((g, kk))
        ok &= k <= kk  # (more only where the codes left their range: not read)
        put = pos < kk
        cen[seg_row[put], pos[put]] = mids[put]
        tt[seg_row[put], pos[put]] = t_lev[put]
        code[seg_row[put], pos[put]] = code_lev[put]
        valid = np.isfinite(cen)

        # 3. the scan of lattices through zero, replayed
        acen = np.abs(cen)
        nz = valid & (acen > tt)
        ok &= np.any(nz, axis=1)
        i_a = np.argmin(np.where(nz, acen, np.inf), axis=1)
        ga = np.arange(g)
        anchor = acen[ga, i_a]
        ok &= (code[ga, i_a] == 0) | (code[ga, i_a] == -1)
        anchor = np.where(ok, anchor, 1.0)
        rel_a = tt[ga, i_a] / anchor
        ok &= ~(np.nanmax(acen, axis=1) / 2.0 ** (bits + 1) > anchor)
        others = np.argsort(np.where(valid, -acen, np.inf), axis=1, kind="stable")
        offs = [0.5] + ([0.0] if bits >= 2 and any(x != "midrise" for x in lattices) else [])
        vague = np.zeros(g, dtype=bool)
        alive_all = []
        ours_dev = np.zeros(g)
        for off in offs:
            va = np.arange(1.0 - off, half_k + 0.5 - off)
            a0 = anchor[:, None] / va[None, :]
            alive = a0 > 0
            for p in range(kk):
                i = others[:, p]
                ci, ti = cen[ga, i], tt[ga, i]
                use = valid[ga, i] & (i != i_a)
                x = ci[:, None] / a0 - off
                nn = np.rint(x)
                tol = 2.0 * (ti + np.abs(ci) * rel_a)[:, None] / a0 + 1e-9
                fits = (np.abs(x - nn) <= tol) & (np.abs(nn + off) <= half_k)
                vague |= use & np.any(alive & fits & (tol >= 0.25), axis=1)
                alive &= ~use[:, None] | (fits & (tol < 0.25))
                if off == 0.5:
                    ours_dev = np.where(use, np.maximum(ours_dev, np.abs(x[:, 0] - nn[:, 0])),
                                        ours_dev)
            alive_all.append(alive)
        ours = alive_all[0][:, 0]
        others_alive = np.count_nonzero(alive_all[0][:, 1:], axis=1) + sum(
            np.count_nonzero(al, axis=1) for al in alive_all[1:])
        ok &= ours & (ours_dev <= 0.05)
        # our proposal: v = rint(centres/α₀ − ½) + ½ must be the codes (distinct, ascending)
        a0 = 2.0 * anchor
        vprop = np.rint(cen / a0[:, None] - 0.5)
        ok &= np.all(~valid | (vprop == code), axis=1)
        # 4. _try's start: the lowest code alone within its tolerance (margins)
        vv = code + 0.5
        vz = np.where(valid, vv, 0.0)
        cz = np.where(valid, cen, 0.0)
        tz = np.where(valid, tt, 0.0)
        svv = np.einsum("ij,ij->i", vz, vz)
        a_fit = np.einsum("ij,ij->i", vz, cz) / svv
        e_alpha = np.einsum("ij,ij->i", np.abs(vz), tz) / svv
        level0 = cen[:, 0]
        x0 = level0 / a_fit - 0.5
        t0 = 0.05 + (tt[:, 0] + np.abs(level0) * e_alpha / a_fit) / a_fit
        ok &= (np.abs(x0 - code[:, 0]) <= 0.04) & (t0 <= 0.4) & (a_fit > 0)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return
    # 4. _place and _judge, as they compute them (the dot products one group at a time)
    V = c[idx] + 0.5
    al = np.empty(idx.size)
    for j, i in enumerate(rows[idx].tolist()):
        vj = V[j]
        vvj = float(vj @ vj)
        al[j] = float(U[i] @ vj) / vvj if vvj > 0 else 0.0  # U[i]: the row recover reads
    uu, ww = u[idx], w[idx]
    with np.errstate(all="ignore"):
        rec = 0.0 + al[:, None] * V
        err_e = np.abs(_cast(rec, dtype).astype(np.float64) - uu)
        fits_tight = np.all(err_e <= tight[idx], axis=1) & (al > 0)
        dt = dtype_of(dtype)
        if dt == np.float64:
            st = np.zeros(idx.size, dtype=bool)
        else:
            r = _cast(rec, dt)
            ud = _cast(uu, dt)
            wd = _cast(ww, dt)
            s = wd + (r - wd)
            st = ~np.all(r == ud, axis=1) & np.all(s == ud, axis=1)
        ul = np.max(R._ulps(rec, uu, dtype), axis=1)
    # 5. straight-through: only where the scan proposed ours alone, none vague, and the
    # chains are the same levels
    keep = fits_tight & (~st | ((others_alive[idx] == 0) & ~vague[idx] & same_chains[idx]))
    mean_w = np.mean(ww, axis=1)
    codes = c[idx].astype(np.int64)
    try_mean = []
    for j in np.flatnonzero(keep).tolist():
        i, r = int(idx[j]), int(rows[idx[j]])
        got = R.Recovered("midrise", "none", float(al[j]), 0.0, codes[j].copy(),
                          float(ul[j]), bool(st[j]), True, int(k[i]))
        out[r] = got
        if st[j] and not abs(mean_w[j] / al[j]) < 0.49:
            try_mean.append(r)
    # recover() then tries the β = mean(w) reading (:func:`as_mean`): where it fits without
    # the straight-through allowance, it is the answer
    out.update(as_mean_rows(U, W, dtype, bits, {r: out[r] for r in try_mean}, ulps))


def as_mean_rows(U, W, dtype, bits, gots, ulps=4):
    """:func:`~vecq_ref.check.recover.as_mean` of many groups: for each row ``r`` of
    ``gots`` (a β = 0 reading of ``U[r]``), the reading on the ``mean(w)`` lattice where it
    is ok and not straight-through (what :func:`recover` then returns), else nothing.

    The scalars of :func:`_place` (its sums and dot products) are computed one group at a
    time with the same NumPy calls on the same rows; the judgement of each fit
    (:func:`_judge` with :func:`allowed`'s tolerances) is elementwise, for all at once; the
    choice among the fits that pass is :func:`_place`'s (the tight tolerance first, then
    β = mean(w), then the fewest ulps; the first on ties).

    Returns
    -------
    dict of int to Recovered
    """
    fits = []  # (row, α, β, v0: None, True (β = mean(w)) or v₀, codes c, v) in _place's order
    for r, got in gots.items():
        u, w = U[r], W[r]
        if got.codes is None or got.offset != "none" or not got.alpha > 0 or \
                got.lattice is None:
            continue
        j = float(np.rint(float(np.mean(w)) / got.alpha))
        if j == 0 or not np.isfinite(j):
            continue
        c = got.codes.astype(np.float64) - j
        lo, hi = R.code_range(bits, got.lattice)
        if c.min() < lo or c.max() > hi:
            continue
        v = c + got.off
        row = R._offset_fits(u, w, v, True)  # _place's own fits, in its order
        if row is None:
            continue
        fits += [(r, a, b, v0, c, v) for a, b, v0 in row if a > 0]
    if not fits:
        return {}
    rr = np.array([f[0] for f in fits])
    alpha = np.array([f[1] for f in fits])
    beta = np.array([f[2] for f in fits])
    by_v0 = np.array([f[3] is not None and f[3] is not True for f in fits])
    v0 = np.array([f[3] if by_v0[i] else 0.0 for i, f in enumerate(fits)])
    bitwise = np.array([f[3] is True for f in fits])
    C = np.stack([f[4] for f in fits])
    V = np.stack([f[5] for f in fits])
    u, w = U[rr], W[rr]
    with np.errstate(all="ignore"):
        rec = np.where(by_v0[:, None], alpha[:, None] * (V - v0[:, None]),
                       beta[:, None] + alpha[:, None] * V)
        # allowed(): the terms |α·v| + |β| and the fit's rounding at the largest level
        tight, ste = R.tolerances(u, w, dtype, ulps, np.abs(alpha[:, None] * V) +
                                  np.abs(beta)[:, None])
        fit = ulps * _spacing(np.max(np.abs(u), axis=1), dtype)
        tight, ste = tight + fit[:, None], ste + fit[:, None]
        err = np.abs(_cast(rec, dtype).astype(np.float64) - u)
        in_tight = np.all(err <= tight, axis=1)
        in_ste = np.all(err <= ste, axis=1)
        dt = dtype_of(dtype)
        if dt == np.float64:
            better = np.zeros(len(fits), dtype=bool)
        else:
            rd, ud, wd = _cast(rec, dt), _cast(u, dt), _cast(w, dt)
            better = ~np.all(rd == ud, axis=1) & np.all(wd + (rd - wd) == ud, axis=1)
        ul = np.max(R._ulps(rec, u, dtype), axis=1)
    ok = in_tight | in_ste
    wide = ~in_tight & in_ste
    st = np.where(in_tight, bitwise & better, in_ste)
    out = {}
    f = 0
    while f < len(fits):
        r = int(rr[f])
        e = f
        while e < len(fits) and rr[e] == r:
            e += 1
        oks = [i for i in range(f, e) if ok[i]]
        if oks:
            i = min(oks, key=lambda i: (bool(wide[i]), not bitwise[i], float(ul[i])))
            # β = mean(w) itself, as as_mean requires (not a freely fitted β)
            if not st[i] and float(beta[i]) == float(np.mean(W[r])):
                out[r] = R.Recovered(gots[r].lattice, "mean", float(alpha[i]), float(beta[i]),
                                     C[i].astype(np.int64), float(ul[i]), False, True,
                                     gots[r].clusters, wide=bool(wide[i]))
        f = e
    return out


__all__ = ["recover_rows_ste"]
