"""Slow, obviously-correct NumPy twins of the kernels: they read like docs/theory.md.

Nothing here imports the kernels. Tests compare each kernel with the twin of the same name:
codes exactly, floats to 1e-12 relative.
"""

from __future__ import annotations

import numpy as np


def _half(bits):
    return 2 ** (bits - 1)


def midrise_codes(w, step, bits):
    """docs/theory.md §2: c = clip(floor(w / s), −2^(k−1), 2^(k−1) − 1), w/s in float64."""
    half = _half(bits)
    q = _scaled(w, step)
    return np.clip(np.floor(q), -half, half - 1)


def midtread_codes(w, step, bits):
    """docs/theory.md §2: c = sign(w)·min(floor(|w|/s + ½), 2^(k−1) − 1), ties away from zero."""
    half = _half(bits)
    q = _scaled(w, step)
    return np.sign(q) * np.minimum(np.floor(np.abs(q) + 0.5), half - 1)


def _scaled(w, step):
    """w / s in float64; a zero step sends w to ±inf and 0 to 0 (the constant-vector rule)."""
    w = np.asarray(w, dtype=np.float64)
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), w.shape)
    zero_step = np.where(w == 0, 0.0, np.copysign(np.inf, w))
    return np.where(step > 0, w / np.where(step > 0, step, 1.0), zero_step)


def codes(w, step, bits, lattice="midrise"):
    return (midrise_codes if lattice == "midrise" else midtread_codes)(w, step, bits)


def paper_codes(w, step, bits):
    """The released Keras expression: round_half_even(clip(w/s − ½, −M, M−1)), s = σλ + 1e-7."""
    half = _half(bits)
    q = np.asarray(w, dtype=np.float64) / step - 0.5
    return np.round(np.clip(q, -half, half - 1))


def levels(c, lattice="midrise"):
    """v = c + ½ (midrise) or v = c (midtread)."""
    return np.asarray(c, dtype=np.float64) + (0.5 if lattice == "midrise" else 0.0)


def row_moments(x):
    """Per row: mean, population variance (ddof = 0), Σx², all float64; a constant row's
    mean is its value and its variance 0."""
    x = np.asarray(x, dtype=np.float64)
    const = np.all(x == x[:, :1], axis=1)
    mean = np.where(const, x[:, 0], x.mean(axis=1))
    var = np.where(const, 0.0, x.var(axis=1))
    return np.stack([mean, var, (x * x).sum(axis=1)], axis=1)


def lane_sum(terms, lanes=64):
    """Σ terms in the kernels' order (:mod:`vecq_ref._kernels`): term ``i`` of the first
    ``n − n mod lanes`` into lane ``i mod lanes`` (each lane in order), the lanes folded by
    halving (lane j += lane j + h, h = lanes/2 … 1), then the tail added one by one."""
    t = np.asarray(terms, dtype=np.float64).ravel()
    nb = t.size - t.size % lanes
    acc = np.zeros(lanes)
    for i in range(0, nb, lanes):
        acc += t[i:i + lanes]
    h = lanes // 2
    while h:
        acc[:h] += acc[h:2 * h]
        h //= 2
    total = acc[0]
    for v in t[nb:]:
        total += v
    return total


def span_sums(x, codes, step, lattice="midrise"):
    """Σc, Σc², Σw·v, Σr², Σr·v (r = w − s·v) of one span, each in the kernels' order."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(codes, dtype=np.float64)
    v = levels(c, lattice)
    r = x - step * v
    return (c.sum(), (c * c).sum(), lane_sum(x * v), lane_sum(r * r), lane_sum(r * v))


def abs_extent(x):
    """(min nonzero |x|, max |x| over the finite entries, count of NaN/Inf)."""
    a = np.abs(np.asarray(x, dtype=np.float64).ravel())
    ok = np.isfinite(a)
    nz = a[ok & (a > 0)]
    return (nz.min() if nz.size else np.inf, a[ok].max() if ok.any() else 0.0,
            float(a.size - ok.sum()))


def pair_sums(x, y, b, chunk=1 << 14):
    """[Σx², Σxy, Σy², Σ(x − b·y)²]: lane sums per chunk, the chunks added in order."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    out = np.zeros(4)
    for lo in range(0, x.size, chunk):
        u, v = x[lo:lo + chunk], y[lo:lo + chunk]
        out += [lane_sum(u * u), lane_sum(u * v), lane_sum(v * v), lane_sum((u - b * v) ** 2)]
    return out


def weighted_pair_sums(x, y, h, b, chunk=1 << 14):
    """[Σh·x², Σh·xy, Σh·y², Σh·(x − b·y)²] (docs/theory.md, Importance weights): lane sums
    per chunk, the chunks added in order."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    h = np.asarray(h, dtype=np.float64).ravel()
    out = np.zeros(4)
    for lo in range(0, x.size, chunk):
        u, v, g = x[lo:lo + chunk], y[lo:lo + chunk], h[lo:lo + chunk]
        out += [lane_sum(g * u * u), lane_sum(g * u * v), lane_sum(g * v * v),
                lane_sum(g * (u - b * v) ** 2)]
    return out


def codes_and_sums(x, steps, bits, lattice="midrise", paper=False):
    """Codes per row and the sums Σwv, Σv², Σ(w − s v)², Σ(w − s v)v (float64)."""
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)[:, None]
    c = paper_codes(x, s, bits) if paper else codes(x, s, bits, lattice)
    v = levels(c, lattice)
    r = x - s * v
    sums = np.stack([(x * v).sum(1), (v * v).sum(1), (r * r).sum(1), (r * v).sum(1)], axis=1)
    return c, sums


def level_sums(x, c, steps, lattice="midrise"):
    """The sums of ``codes_and_sums`` for given codes ``c`` and reference steps."""
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)[:, None]
    v = levels(c, lattice)
    r = x - s * v
    return np.stack([(x * v).sum(1), (v * v).sum(1), (r * r).sum(1), (r * v).sum(1)], axis=1)


def scale_levels(c, alpha, lattice="midrise"):
    """Dequantized values α·v per row."""
    return np.asarray(alpha, dtype=np.float64)[:, None] * levels(c, lattice)


def param_quantize(w, bits, lam, lattice="midrise"):
    """docs/theory.md §4.1 for one vector: σ (ddof 0), s = λσ, codes, α* = ⟨w,v⟩/⟨v,v⟩, α·v."""
    w = np.asarray(w, dtype=np.float64).ravel()
    s = lam * w.std()
    c = codes(w, s, bits, lattice)
    v = levels(c, lattice)
    vv = v @ v
    alpha = (w @ v) / vv if vv > 0 else 0.0
    return c, alpha, s, alpha * v


def paper_quantize(w, bits, lam):
    """VecQ.py of the released code, line by line (float64 arithmetic)."""
    w = np.asarray(w, dtype=np.float64).ravel()
    s = w.std() * lam + 1e-7
    c = paper_codes(w, s, bits)
    v = c + 0.5
    alpha = (w @ v) / (v @ v + 1e-7)
    return c, alpha, s, alpha * v


def _ratios(w, steps, bits, lattice):
    """S1²/S2 (−1 when every level is 0) and the codes for each candidate step, one per row."""
    w = np.asarray(w, dtype=np.float64).ravel()
    steps = np.asarray(steps, dtype=np.float64)
    c = codes(np.broadcast_to(w, (steps.size, w.size)), steps[:, None], bits, lattice)
    v = levels(c, lattice)
    s1 = v @ w
    s2 = np.einsum("ij,ij->i", v, v)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(s2 > 0, s1 * s1 / np.where(s2 > 0, s2, 1.0), -1.0)
    return r, c


def _orientation(w, r):
    norm = np.sqrt(np.sum(np.asarray(w, dtype=np.float64) ** 2))
    return 0.0 if norm == 0 else 1.0 - np.sqrt(max(r, 0.0)) / norm


def exact_search(w, bits, lattice="midrise"):
    """docs/theory.md §4.3 by brute force: every breakpoint ``|w|/j`` (``|w|/(j − ½)`` midtread).

    The codes are tried at each breakpoint, between each pair of neighbours, and beyond both
    ends; the largest S1²/S2 wins (ties: the larger step). Returns
    ``(codes, step, orientation, steps, ratios)``, the last two for every step tried.
    """
    w = np.asarray(w, dtype=np.float64).ravel()
    a = np.unique(np.abs(w[w != 0]))
    j = np.arange(1, _half(bits), dtype=np.float64)
    b = np.unique((a[:, None] / (j - 0.5 if lattice == "midtread" else j)[None, :]).ravel())
    if b.size == 0:
        steps = np.array([1.0])
    else:
        steps = np.concatenate([[b[0] / 2], b, (b[:-1] + b[1:]) / 2, [2 * b[-1]]])
        steps = np.sort(steps)
    r, c = _ratios(w, steps, bits, lattice)
    i = len(r) - 1 - int(np.argmax(r[::-1]))
    return c[i], steps[i], _orientation(w, r[i]), steps, r


def grid_search(w, bits, lattice="midrise", lo=0.001, hi=3.0, num=3000):
    """docs/theory.md §4.2, the paper's search in plain NumPy: one pass over ``w`` per candidate.

    Steps ``λ·σ`` for ``λ ∈ linspace(lo, hi, num)``, σ the population std; the first step of
    largest S1²/S2 (smallest J_o) wins. Returns ``(step, orientation, index)``.
    """
    w = np.asarray(w, dtype=np.float64).ravel()
    steps = np.linspace(lo, hi, num) * w.std()
    half = _half(bits)
    v = np.empty_like(w)
    m = np.empty_like(w)
    r = np.empty(num)
    for i, s in enumerate(steps):
        if s <= 0:
            v[:] = levels(codes(w, 0.0, bits, lattice), lattice)
        elif lattice == "midrise":
            np.divide(w, s, out=v)
            np.floor(v, out=v)
            np.clip(v, -half, half - 1, out=v)
            v += 0.5
        else:
            np.divide(w, s, out=v)
            np.abs(v, out=m)
            m += 0.5
            np.floor(m, out=m)
            np.minimum(m, half - 1, out=m)
            np.copysign(m, v, out=v)
        s1, s2 = v @ w, v @ v
        r[i] = s1 * s1 / s2 if s2 > 0 else -1.0
    i = int(np.argmax(r))
    return steps[i], _orientation(w, r[i]), i


def alternating_search(w, bits, lattice="midrise", alpha0=None, max_iter=100):
    """docs/theory.md §4.4: ``v = codes(w, α)``, ``α = ⟨w,v⟩/⟨v,v⟩`` until ``v`` repeats.

    ``alpha0`` defaults to ``max|w|/(M − ½)`` (midrise) or ``max|w|/(M − 1)`` (midtread).
    Returns ``(codes, step, iterations)``: the α that produced the final codes and the number
    of code evaluations.
    """
    w = np.asarray(w, dtype=np.float64).ravel()
    half = _half(bits)
    if alpha0 is None:
        alpha0 = np.max(np.abs(w)) / (half - 1.0 if lattice == "midtread" else half - 0.5)
    alpha, prev, it = float(alpha0), None, 0
    while it < max_iter:
        c = codes(w, alpha, bits, lattice)
        it += 1
        step = alpha
        if prev is not None and np.array_equal(c, prev):
            break
        v = levels(c, lattice)
        s1, s2 = w @ v, v @ v
        if s2 <= 0 or s1 <= 0:
            break
        prev, alpha = c, s1 / s2
    return c, step, it


def merge_runs(src, bounds):
    """Twin of ``_kernels.sort.merge_runs``: the runs ``src[b0:b1]`` merged, by NumPy's sort."""
    return np.sort(np.concatenate([src[b0:b1] for b0, b1 in bounds]), kind="stable")


def nearest_index(y, levels):
    """docs/theory.md §2, any level set: the index of the level nearest ``y`` (float64) in the
    ascending ``levels``; on a midpoint ``m = 0.5·(a + b)`` (float64) the level farther from
    zero wins (the upper one when ``m ≥ 0``); NaN → 0."""
    y = np.asarray(y, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    mids = 0.5 * (levels[1:] + levels[:-1])
    passed = (y[..., None] > mids) | ((y[..., None] == mids) & (mids >= 0))
    return passed.sum(axis=-1)


def scaled_signed(w, step):
    """``w / s`` in float64 for a step of either sign; ``s = 0`` sends w to ±inf, 0 to 0."""
    w = np.asarray(w, dtype=np.float64)
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), w.shape)
    zero_step = np.where(w == 0, 0.0, np.copysign(np.inf, w))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(step != 0, w / np.where(step != 0, step, 1.0), zero_step)


# --- searches over a general level set (twins of _kernels/levelset.py's searches) ---------


def _in_order(terms):
    """Σ terms left to right (the kernels' order: exact ties between candidates then break
    the same way in the twin)."""
    return float(np.cumsum(terms)[-1]) if len(terms) else 0.0


def _levelset_candidate(x, h, step, levels, z):
    """Indices of ``x/step`` in ``levels − z`` and ``(S1, S2) = (Σ(h·ℓ)·x, Σ(h·ℓ)·ℓ)``."""
    lv = np.asarray(levels, dtype=np.float64) - z
    idx = nearest_index(scaled_signed(x, step), lv)
    ell = lv[idx]
    return idx, _in_order(h * ell * x), _in_order(h * ell * ell)


def _levelset_score(s1, s2, sign):
    """``max(0, sign·S1)²/S2``: the loss removed by the best scale of the step's sign."""
    t = sign * s1
    return t * t / s2 if s2 > 0 and t > 0 else 0.0


def _levelset_row_args(x, h, levels, zero_point):
    x = np.asarray(x, dtype=np.float64).ravel()
    h = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64).ravel()
    levels = np.asarray(levels, dtype=np.float64)
    return x, h, levels, (range(levels.size) if zero_point else (0,))


def grid_levelset(x, h, levels, signed, zero_point, lams):
    """The grid over a general level set, one row: steps ``±λ·σ_h``, ``σ_h = sqrt(Σhx²/Σh)``,
    candidates in the order sign (+ first), z ascending, λ ascending; the first of largest
    ``max(0, sign·S1)²/S2`` wins. Returns ``(step, alpha, S1, S2, z, index)``."""
    x, h, levels, zs = _levelset_row_args(x, h, levels, zero_point)
    sh = _in_order(h)
    sigma = np.sqrt(_in_order(h * x * x) / sh) if sh > 0 else 0.0
    best = None
    for sign in ((1.0, -1.0) if signed else (1.0,)):
        for z in zs:
            for i, lam in enumerate(np.asarray(lams, dtype=np.float64)):
                s = sign * lam * sigma
                _, s1, s2 = _levelset_candidate(x, h, s, levels, z)
                q = _levelset_score(s1, s2, sign)
                if best is None or q > best[0]:
                    best = (q, s, s1, s2, z, i)
    q, s, s1, s2, z, i = best
    return s, (s1 / s2 if q > 0 else 0.0), s1, s2, z, i


def alternating_levelset(x, h, levels, signed, zero_point, init="max", max_iter=100):
    """Lloyd in the h-metric over a general level set, one row: for each sign (+ first) and
    z (ascending), from α₀ (``"max"``: the smallest |α| whose extreme levels of
    ``sign·(levels − z)`` reach ``max(x)`` and ``min(x)``; a float: ``sign·init``) repeat codes
    of ``x/α``, ``α = S1/S2`` until the codes repeat, ``S2 = 0``, α changes sign or
    ``max_iter`` evaluations; the first run of largest final score wins.
    Returns ``(step, alpha, S1, S2, z, iterations)``."""
    x, h, levels, zs = _levelset_row_args(x, h, levels, zero_point)
    best = None
    for sign in ((1.0, -1.0) if signed else (1.0,)):
        for z in zs:
            lv = sign * (levels - z)
            if init == "max":
                ends = [x.max() / lv.max()] if lv.max() > 0 and x.max() > 0 else []
                ends += [x.min() / lv.min()] if lv.min() < 0 and x.min() < 0 else []
                a = sign * max(ends, default=0.0)
            else:
                a = sign * float(init)
            prev, it = None, 0
            while it < max_iter:
                idx, s1, s2 = _levelset_candidate(x, h, a, levels, z)
                it += 1
                step = a
                if (prev is not None and np.array_equal(idx, prev)) or s2 <= 0 \
                        or sign * s1 <= 0:
                    break
                prev, a = idx, s1 / s2
            q = _levelset_score(s1, s2, sign)
            if best is None or q > best[0]:
                best = (q, step, s1, s2, z, it)
    q, step, s1, s2, z, it = best
    return step, (s1 / s2 if q > 0 else 0.0), s1, s2, z, it


def levelset_sums(x, h, step, levels, z):
    """One row's indices ``nearest_index(x/step, levels − z)`` and ``(Σh·x², S1, S2)``."""
    x, h, levels, _ = _levelset_row_args(x, h, levels, False)
    idx, s1, s2 = _levelset_candidate(x, h, step, levels, z)
    return idx, (_in_order(h * x * x), s1, s2)


def _affine_losses(xv, gv, u):
    """Weighted least-squares loss of each code vector (rows of ``u``) for ``x̂ = α·u + m``
    with α > 0: ``Σg(x − x̄)² − cov²/var_u``, or ``Σg(x − x̄)²`` when ``var_u = 0`` or
    ``cov ≤ 0`` (α → 0⁺)."""
    w = gv.sum()
    xc = xv - (gv * xv).sum() / w
    varx = (gv * xc * xc).sum()
    uc = u - (u * gv).sum(axis=1, keepdims=True) / w
    varu = (gv * uc * uc).sum(axis=1)
    cov = (gv * xc * uc).sum(axis=1)
    ok = (varu > 0) & (cov > 0)
    return np.where(ok, varx - cov ** 2 / np.where(ok, varu, 1.0), varx)


def affine_brute(x, h, nlevels):
    """Best ``x̂ = α·u + m`` (α > 0, m real, codes ``u ∈ {0, …, K − 1}``) for ``Σh(x − x̂)²``,
    by the cells of the arrangement (docs/theory.md, "Real offset: the 2-D search").

    With ``τ = m + α/2`` the first threshold, ``u_i`` counts the thresholds ``τ + jα`` below
    ``x_i``. A vertex of the arrangement puts two distinct values on thresholds:
    ``α = (x_c − x_a)/d``, ``τ = x_a − jα``; the cells around it take every element on a
    threshold down (code j) or up (j + 1) in the patterns a small move of (α, τ) can make
    (the elements on thresholds, in increasing order, split into a prefix going one way and
    a suffix the other). The cells with no vertex at α < ∞ are the one- and two-level splits.
    Every candidate is refitted by weighted least squares; the best is returned as
    ``(alpha, m, loss, codes)``, codes of zero-weight elements the nearest at ``(α, m)``.
    Rows with fewer than two distinct positive-weight values: ``α = 1``, ``m`` that value
    (0 when all weights are zero), loss 0. For tiny rows only (O(n³K²) memory and time).
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64)
    k = int(nlevels)
    pos = h > 0
    xv, inv = np.unique(x[pos], return_inverse=True)
    gv = np.bincount(inv, weights=h[pos], minlength=xv.size)
    levels = np.arange(k, dtype=np.float64)
    if xv.size < 2:
        m = xv[0] if xv.size else 0.0
        return 1.0, float(m), 0.0, nearest_index(x - m, levels)
    n = xv.size
    cands = [(np.arange(n)[None, :] >= np.arange(n + 1)[:, None]).astype(np.float64)]
    a, c, d, j = (g.ravel() for g in np.meshgrid(np.arange(n), np.arange(n), np.arange(1, k - 1),
                                                 np.arange(k - 1), indexing="ij"))
    keep = (a < c) & (j + d <= k - 2)
    a, c, d, j = a[keep], c[keep], d[keep], j[keep]
    alpha = (xv[c] - xv[a]) / d
    tau = xv[a] - j * alpha
    s = (xv[None, :] - tau[:, None]) / alpha[:, None]
    r = np.round(s)
    on = (np.abs(s - r) <= 1e-9 * np.maximum(1.0, np.abs(s))) & (r >= 0) & (r <= k - 2)
    base = np.clip(np.ceil(s), 0, k - 1)
    base = np.where(on, r, base)  # elements on a threshold start "down"
    generic = on.sum(axis=1) == 2
    for up_a in (0, 1):
        for up_c in (0, 1):
            u = base[generic].copy()
            rows = np.arange(u.shape[0])
            u[rows, a[generic]] += up_a
            u[rows, c[generic]] += up_c
            cands.append(u)
    for v in np.flatnonzero(~generic):
        idx = np.flatnonzero(on[v])  # ascending values
        for cut in range(idx.size + 1):
            for prefix_up in (0, 1):
                u = base[v].copy()
                u[idx[:cut]] += prefix_up
                u[idx[cut:]] += 1 - prefix_up
                cands.append(u[None, :])
    u = np.concatenate(cands)
    losses = np.concatenate([_affine_losses(xv, gv, u[i:i + 4096])
                             for i in range(0, u.shape[0], 4096)])
    # The closed form loses digits to cancellation: refit the near-best candidates and sum
    # their losses directly.
    w = gv.sum()
    xbar = (gv * xv).sum() / w
    near = u[losses <= losses.min() + 1e-9 * (gv * (xv - xbar) ** 2).sum()]
    ubar = (gv * near).sum(axis=1, keepdims=True) / w
    uc = near - ubar
    varu = (gv * uc * uc).sum(axis=1)
    ok = varu > 0
    slope = np.where(ok, (gv * (xv - xbar) * uc).sum(axis=1) / np.where(ok, varu, 1.0), 0.0)
    ok &= slope > 0
    direct = (gv * (xv - slope[:, None] * near - (xbar - slope * ubar[:, 0])[:, None]) ** 2)
    direct = np.where(ok, direct.sum(axis=1), np.inf)
    pick = np.argmin(direct)
    best, alpha, m = near[pick], slope[pick], xbar - slope[pick] * ubar[pick, 0]
    codes = nearest_index((x - m) / alpha, levels)
    codes[pos] = best[inv].astype(codes.dtype)
    loss = (h * (x - alpha * codes - m) ** 2).sum()
    return float(alpha), float(m), float(loss), codes


def _nearest_int_f32(v):
    """ggml's ``nearest_int`` on a float32 array: ``v + 1.5·2²³`` in float32, half to even."""
    magic = np.float32(12582912.0)
    return (np.asarray(v, dtype=np.float32) + magic).astype(np.int64) - 12582912


def make_qx_quants(x, h, nmax, rmse_type):
    """llama.cpp ``make_qx_quants`` (docs/theory.md §7.2) for every row of float32 ``x``.

    The C in float32, vectorized over the rows: the initial step ``iscale = −nmax/max``
    (``max`` the signed element of largest |x|, the first on ties), codes
    ``clamp(nearest_int(iscale·x), −nmax, nmax − 1)``, weights ``h`` or (``h is None``) by
    ``rmse_type`` (1: x², 2: 1, 3: |x|, else √|x|), sums ``Σw·x·ℓ``, ``Σw·ℓ²`` added element by
    element in order; then the 18 candidates ``iscale = −(nmax + 0.1·i)/max``, i = −9 … 9,
    i ≠ 0, a candidate replacing the best when ``(Σwxℓ)² > best·Σwℓ²``. Returns
    ``(codes, scale, iscale)`` like ``_kernels.rules.make_qx_rows``.
    """
    x = np.asarray(x, dtype=np.float32)
    groups, n = x.shape
    f32 = np.float32
    first = np.argmax(np.abs(x), axis=1)
    vmax = x[np.arange(groups), first]
    zero = np.abs(vmax) < f32(1e-15)
    vmax_safe = np.where(zero, f32(1.0), vmax)
    if h is None:
        w = {1: x * x, 2: np.ones_like(x), 3: np.abs(x)}.get(
            abs(rmse_type), np.sqrt(np.abs(x)).astype(np.float32))
    else:
        w = np.asarray(h, dtype=np.float32)

    def candidate(iscale):
        codes = np.clip(_nearest_int_f32(iscale[:, None] * x), -nmax, nmax - 1)
        fl = codes.astype(np.float32)
        sumlx = np.zeros(groups, np.float32)
        suml2 = np.zeros(groups, np.float32)
        for i in range(n):
            sumlx = sumlx + w[:, i] * x[:, i] * fl[:, i]
            suml2 = suml2 + w[:, i] * fl[:, i] * fl[:, i]
        return codes, sumlx, suml2

    iscale = (-f32(nmax) / vmax_safe).astype(np.float32)
    codes, sumlx, suml2 = candidate(iscale)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(suml2 != 0, sumlx / suml2, f32(0.0)).astype(np.float32)
        inv = (f32(1.0) / iscale).astype(np.float32)
    if rmse_type == 0:
        scale = inv
    elif rmse_type < 0:
        scale = np.where(suml2 > 0, f32(0.5) * (scale + inv), inv).astype(np.float32)
    else:
        best = scale * sumlx
        best_iscale = iscale
        for step in range(-9, 10):
            if step == 0:
                continue
            cand = (-(f32(nmax) + f32(0.1) * f32(step)) / vmax_safe).astype(np.float32)
            c, slx, sl2 = candidate(cand)
            with np.errstate(divide="ignore", invalid="ignore"):
                better = (sl2 > 0) & (slx * slx > best * sl2)
                new_scale = np.where(better, slx / np.where(sl2 > 0, sl2, f32(1.0)), scale)
            codes = np.where(better[:, None], c, codes)
            scale = new_scale.astype(np.float32)
            best = np.where(better, scale * slx, best).astype(np.float32)
            best_iscale = np.where(better, cand, best_iscale).astype(np.float32)
        iscale = best_iscale
    codes = np.where(zero[:, None], -nmax, codes).astype(np.int8)
    scale = np.where(zero, f32(0.0), scale).astype(np.float32)
    iscale = np.where(zero, f32(0.0), iscale).astype(np.float32)
    return codes, scale, iscale


def affine_fit(x, h, u):
    """Weighted least squares ``x ≈ α·u + m`` of one row: ``(α, m, Σh(x − αu − m)²)``; α = 0
    and m the weighted mean when ``u`` is constant or the fitted α is not positive."""
    x, u = np.asarray(x, dtype=np.float64), np.asarray(u, dtype=np.float64)
    h = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64)
    if h.sum() == 0:
        return 1.0, 0.0, 0.0
    xbar, ubar = np.sum(h * x) / h.sum(), np.sum(h * u) / h.sum()
    suu, sxu = np.sum(h * (u - ubar) ** 2), np.sum(h * (x - xbar) * (u - ubar))
    alpha = sxu / suu if suu > 0 and sxu > 0 else 0.0
    m = xbar - alpha * ubar
    return alpha, m, float(np.sum(h * (x - alpha * u - m) ** 2))


def _levelset_state(x, h, lz, step):
    """Codes, S1 = Σh·x·ℓ and S2 = Σh·ℓ² of the nearest levels of x/step in ``lz``."""
    idx = nearest_index(scaled_signed(x, step), lz)
    lv = lz[idx]
    return idx, float(np.sum(h * x * lv)), float(np.sum(h * lv * lv))


def exact_levelset(x, h, levels, signed=False, zero_point=False):
    """docs/theory.md §4.5, brute force for one row: the step maximising ``r = S1²/S2`` (α = S1/S2
    of the step's sign) over the level sets ``levels − z`` (every integer ``z`` in
    ``[0, K − 1]`` with ``zero_point``, else ``z = 0``) and, with ``signed``, negative steps.

    Every breakpoint ``|x_i / m_j|`` (``m_j`` the midpoints, elements with ``h > 0``) is a
    candidate boundary; the assignment inside every interval between consecutive breakpoints
    (at its midpoint) and beyond the ends is evaluated. Ties: the larger ``|step|``, then
    ``+α`` before ``−α``, then the smallest ``z``. ``h=None`` means all ones.

    Returns a dict: step (the evaluated point), alpha, lo, hi (the bracketing breakpoints),
    S1, S2, z, codes (indices into ``levels``).
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.ones_like(x) if h is None or np.size(h) == 0 else np.asarray(h, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    best = None
    for z in (range(levels.size) if zero_point else [0]):
        lz = levels - z
        mids = 0.5 * (lz[1:] + lz[:-1])
        mids = mids[mids != 0]  # x/s never sits on 0: not a breakpoint
        live = (h > 0) & (x != 0)
        b = np.abs(x[live][:, None] / mids[None, :])
        b = np.unique(b[np.isfinite(b) & (b > 0)])[::-1]  # decreasing
        if b.size == 0:
            points, los, his = [1.0], [0.0], [np.inf]
        else:
            points = [2.0 * b[0]] + list(0.5 * (b[:-1] + b[1:])) + [0.5 * b[-1]]
            los = list(b) + [0.0]
            his = [np.inf] + list(b)
        for d in ([1.0, -1.0] if signed and not zero_point else [1.0]):
            for s, lo, hi in zip(points, los, his, strict=True):
                idx, s1, s2 = _levelset_state(x, h, lz, d * s)
                r = s1 * s1 / s2 if s2 > 0 and s1 * d > 0 else 0.0
                key = (r, hi)
                if best is None or key[0] > best[0][0] or (key[0] == best[0][0]
                                                           and key[1] > best[0][1]):
                    best = (key, dict(step=d * s, alpha=s1 / s2 if r > 0 else 0.0, lo=lo,
                                      hi=hi, S1=s1, S2=s2, z=z, codes=idx, r=r))
    return best[1]


def row_dql_sums(x, y, h=None):
    """Per row ``[Σh·x², Σh·(x − y)²]`` (h = 1 when None), shape (rows, 2): each row by
    :func:`pair_sums` / :func:`weighted_pair_sums` with ``b = 1``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = np.empty((x.shape[0], 2))
    for r in range(x.shape[0]):
        s = (pair_sums(x[r], y[r], 1.0) if h is None
             else weighted_pair_sums(x[r], y[r], np.asarray(h, dtype=np.float64)[r], 1.0))
        out[r] = s[0], s[3]
    return out


def step_bounds(x, c, cmin, cmax, midrise):
    """Per-element bounds ``lo_i ≤ s ≤ hi_i`` on a step that keeps code ``c_i`` for ``x_i``
    (codes ``cmin … cmax``; ``midrise``: ``c ≤ x/s < c + 1``, else ``|x/s − c| ≤ ½``), and
    the elements no step gives their code: ``x ≥ a·s`` unless ``c`` is the lowest code,
    ``x ≤ b·s`` unless it is the highest, for the thresholds ``a < b`` of the code."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(c).astype(np.float64)
    a, b = (c, c + 1.0) if midrise else (c - 0.5, c + 0.5)
    lo = np.zeros_like(x)
    hi = np.full_like(x, np.inf)
    bad = np.zeros(np.shape(x), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        use = c > cmin
        r = x / a
        hi = np.where(use & (a > 0), np.minimum(hi, r), hi)
        lo = np.where(use & (a < 0), np.maximum(lo, r), lo)
        bad |= use & (a == 0) & (x < 0)
        use = c < cmax
        r = x / b
        lo = np.where(use & (b > 0), np.maximum(lo, r), lo)
        hi = np.where(use & (b < 0), np.minimum(hi, r), hi)
        bad |= use & (b == 0) & (x > 0)
    return lo, hi, bad


def tie_votes(x, c, s, f32, midrise, cmin, cmax):
    """``[ties, floor, half to even, half away]``: the elements of ``x`` (rows, one step
    ``s`` per row) exactly on a rounding threshold of ``x/s`` and of ``x·(1/s)``, both
    computed in float32 (``f32``) or float64, whose code is one of the threshold's two codes
    (both in ``cmin … cmax``), and how many of them each tie rule gives. Midrise thresholds
    lie at the integers ``t`` (codes ``t − 1 | t``; also read as ``q − ½ == t − ½`` in the
    dtype), midtread ones at ``j + ½`` (codes ``j | j + 1``)."""
    dt = np.float32 if f32 else np.float64
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        xs = np.asarray(x).astype(dt)
        sd = np.asarray(s).astype(dt)[:, None]
        good = np.isfinite(sd) & (sd > 0)
        q = (xs / sd).astype(np.float64)
        t = np.rint(q) if midrise else np.floor(q) + 0.5
        r = np.broadcast_to(dt(1) / sd, xs.shape)
        q2 = np.where(np.isfinite(r), (xs * r).astype(np.float64), q)

        def on(qq):
            hit = qq == t
            if midrise:
                hit |= (qq.astype(dt) - dt(0.5)).astype(np.float64) == t - 0.5
            return np.isfinite(qq) & hit

        lower, upper = (t - 1, t) if midrise else (t - 0.5, t + 0.5)
    c = np.asarray(c).astype(np.float64)
    near = good & on(q) & on(q2) & (lower >= cmin) & (upper <= cmax) & \
        ((c == lower) | (c == upper))
    with np.errstate(invalid="ignore"):
        even = np.where(np.mod(lower, 2) == 0, lower, upper)
    away = np.where(t > 0, upper, lower)
    return np.array([np.count_nonzero(near), np.count_nonzero(near & (c == upper)),
                     np.count_nonzero(near & (c == even)),
                     np.count_nonzero(near & (c == away))], dtype=np.int64)
