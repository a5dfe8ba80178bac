"""TEMPORARY STAND-IN (helper K replaces this module at merge): the exact scale of a general
level set by brute force over every breakpoint, in plain Python/NumPy. Slow; same interface as
K's kernel.

``exact_levelset(xs, hs, levels, signed, zero_point, out, codes)``

- ``xs`` (rows, n) float64, finite; ``hs`` (rows, n) float64 ``h ≥ 0`` or shape (0, 0) = ones;
- ``levels`` (K,) float64 ascending distinct (with ``zero_point``: the codes' levels 0 … K − 1,
  every ``z`` in [0, K − 1] tried, levels ``levels − z``);
- ``out`` (rows, 9): step (signed; codes = nearest_index(x/step, levels − z)), alpha (signed
  S1/S2), lo, hi (the |step| interval where the codes are optimal), S1 = Σhxℓ, S2 = Σhℓ²,
  evaluations, certified (1/0), z;
- ``codes`` (rows, n) int16: index into ``levels``.

Candidates: for each z and sign, the breakpoints ``|x_i/m_j|`` (``m_j`` the nonzero midpoints),
the assignment evaluated strictly inside each interval between consecutive breakpoints (and
below the first, above the last); score ``max(0, sign·S1)²/S2``; ties: larger |step|, +α
first, smallest z.
"""

import numpy as np


def _nearest(y, levels):
    mids = 0.5 * (levels[1:] + levels[:-1])
    passed = (y[..., None] > mids) | ((y[..., None] == mids) & (mids >= 0))
    return passed.sum(axis=-1)


def _row(x, h, levels, signed, zero_point):
    best = None  # (score, |step|, sign rank, -z) compared lexicographically
    zs = range(levels.size) if zero_point else (0,)
    evaluations = 0
    for z in zs:
        lv = levels - z
        mids = 0.5 * (lv[1:] + lv[:-1])
        mids = mids[mids != 0]
        ax = np.abs(x[x != 0])
        b = np.unique((ax[:, None] / np.abs(mids)[None, :]).ravel()) if mids.size and ax.size \
            else np.zeros(0)
        if b.size:
            cand = np.concatenate([[b[0] / 2], (b[:-1] + b[1:]) / 2, [2 * b[-1]]])
            los = np.concatenate([[0.0], b])
            his = np.concatenate([b, [np.inf]])
        else:
            cand, los, his = np.array([1.0]), np.array([0.0]), np.array([np.inf])
        for sign in ((1.0, -1.0) if signed else (1.0,)):
            steps = sign * cand
            idx = _nearest(x[None, :] / steps[:, None], lv)
            ell = lv[idx]
            s1 = (h * x * ell).sum(axis=1)
            s2 = (h * ell * ell).sum(axis=1)
            evaluations += cand.size
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.where(s2 > 0, np.maximum(0.0, sign * s1) ** 2 / np.where(s2 > 0, s2, 1),
                                 0.0)
            for i in range(cand.size):
                key = (score[i], cand[i], sign, -z)
                if best is None or key > best[0]:
                    best = (key, z, sign, los[i], his[i], s1[i], s2[i], idx[i])
    _, z, sign, lo, hi, s1, s2, idx = best
    alpha = s1 / s2 if s2 > 0 and sign * s1 > 0 else 0.0
    a = abs(alpha)
    if lo < a < hi:
        mag = a
    elif np.isfinite(hi):
        mag = 0.5 * (lo + hi)
    else:
        mag = 2 * lo if lo > 0 else 1.0
    step = sign * mag
    idx = _nearest(x / step, levels - z)
    return (step, alpha, lo, hi, s1, s2, evaluations, 1.0, float(z)), idx


def exact_levelset(xs, hs, levels, signed, zero_point, out, codes):
    levels = np.asarray(levels, dtype=np.float64)
    for r in range(xs.shape[0]):
        x = np.asarray(xs[r], dtype=np.float64)
        h = np.ones_like(x) if hs.size == 0 else np.asarray(hs[r], dtype=np.float64)
        res, idx = _row(x, h, levels, bool(signed), bool(zero_point))
        out[r, :] = res
        codes[r, :] = idx
    return out
