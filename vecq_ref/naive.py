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


def _levelset_state(x, h, lz, step):
    """Codes, S1 = Σh·x·ℓ and S2 = Σh·ℓ² of the nearest levels of x/step in ``lz``."""
    idx = nearest_index(scaled_signed(x, step), lz)
    lv = lz[idx]
    return idx, float(np.sum(h * x * lv)), float(np.sum(h * lv * lv))


def exact_levelset(x, h, levels, signed=False, zero_point=False):
    """FORMATS.md §3, brute force for one row: the step maximising ``r = S1²/S2`` (α = S1/S2
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
