"""Recover the lattice, α, β and codes of one quantized slice (used by ``verify``).

A quantizer's output ``u`` should be ``β + α·(c + off)`` with integer codes ``c`` that fit
``bits`` bits. Three code sets are candidates (docs/theory.md §2 and §7.1):

==============  =======================================  ==========================================
lattice         codes ``c``                              used by
==============  =======================================  ==========================================
midrise         −2^(k−1) … 2^(k−1)−1, ``v = c + ½``      VecQ, μL2Q (TF, Caffe)
midtread        −(2^(k−1)−1) … 2^(k−1)−1, ``v = c``      TWN, Brevitas (narrow range)
midtread full   −2^(k−1) … 2^(k−1)−1, ``v = c``          torch.ao / torchao symmetric, μL2Q-torch
==============  =======================================  ==========================================

each with ``β = 0``, with ``β = mean(w)`` (μL2Q) or, as a last resort, a fitted ``β``.

How: the values are grouped into levels, first one per distinct value (rounding ``α·v + β`` to
the dtype gives one value per level, within half an ulp of it), then, for a straight-through
output, into clusters (neighbours closer than their tolerance belong to one level); at most
``2^k`` levels are allowed, so a lattice whose codes would not fit ``bits`` is never proposed
(no "α = 1 ulp, codes ±10⁹"). α is the smallest gap between levels divided by ``j = 1, 2, …``
only while the span of the codes stays within ``2^k − 1``; every gap must be a whole number
of steps up to its own error (each level's representation error, large in float16) and that
of α, which is refined from the gaps whose step count is certain; α and the lowest level are
then fitted over the levels, the lattices tried in the order above, and α and β refitted by
least squares on every element. An element passes when it is within ``ulps`` units in the last place
of ``wq``'s dtype of ``β + α·v`` rounded to that dtype; failing that, within the float rounding
of a straight-through output ``w + (wq − w)`` (``2·ulp(|w| + |wq|)``), which is then reported
(``straight_through``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Lattice names in the order they are tried; the midtread pair differ only in the code range.
LATTICES = ("midrise", "midtread", "midtread-full")
OFFSETS = ("none", "mean", "fitted")
_COARSE = 0.05  # integrality tolerance (in codes) when proposing α; the ulps test decides
_MAX_DIVISOR = 4096  # α is tried as (smallest gap)/j for j ≤ this (levels at most 4096 apart)


def code_range(bits, lattice):
    """Codes of ``lattice`` (a name of :data:`LATTICES`) for ``bits``; (lo, hi) inclusive."""
    half = 2 ** (bits - 1)
    if lattice == "midtread":
        return -(half - 1), half - 1
    return -half, half - 1


def family(lattice):
    """``"midrise"`` or ``"midtread"`` (the level offset family) of a lattice name."""
    return "midrise" if lattice == "midrise" else "midtread"


@dataclass
class Recovered:
    """One slice: ``u ≈ beta + alpha·(codes + off)``.

    ``ok``: every element within tolerance and the codes fit; ``straight_through``: some
    element needed the straight-through allowance; ``max_ulps``: the largest distance of the
    reconstruction from ``u`` in ulps of the dtype; ``clusters``: distinct levels found (None
    when recovery stopped before clustering).
    """

    lattice: str | None
    offset: str
    alpha: float
    beta: float
    codes: np.ndarray | None
    max_ulps: float
    straight_through: bool
    ok: bool
    clusters: int | None = None
    reason: str = ""

    @property
    def off(self):
        return 0.5 if self.lattice == "midrise" else 0.0


def tolerances(u, w, dtype, ulps, terms=None):
    """Per-element tolerances (tight, straight-through) in value units, float64 arrays.

    ``terms``: the magnitude of the terms an offset lattice adds (``|α·v| + |β|``), whose
    rounding the sum carries.
    """
    dt = np.dtype(dtype)
    tiny = float(np.finfo(dt).tiny) if dt.kind == "f" else 0.0
    mag = np.abs(u) if terms is None else np.abs(u) + terms
    sp_u = np.spacing(mag.astype(dt)).astype(np.float64)
    tight = ulps * sp_u + tiny
    big = (np.abs(u) + np.abs(w)).astype(dt)
    ste = tight + 2.0 * np.spacing(big).astype(np.float64)
    return tight, ste


def allowed(u, w, dtype, ulps, alpha, v, beta):
    """Tolerances (tight, straight-through) of ``u ≈ β + α·v`` on an offset lattice.

    Each value carries the rounding of ``α·v`` and of the sum; α and β are fitted to values
    rounded at the scale of the largest level, an error every element inherits.
    """
    tight, ste = tolerances(u, w, dtype, ulps, np.abs(alpha * v) + abs(beta))
    fit = ulps * float(np.spacing(np.asarray(np.max(np.abs(u)), dtype=dtype)))
    return tight + fit, ste + fit


def _clusters(u, tol):
    order = np.argsort(u, kind="stable")
    us, ts = u[order], tol[order]
    new = np.empty(u.size, dtype=bool)
    new[0] = True
    new[1:] = np.diff(us) > ts[1:] + ts[:-1]
    label_sorted = np.cumsum(new) - 1
    labels = np.empty(u.size, dtype=np.int64)
    labels[order] = label_sorted
    k = int(label_sorted[-1]) + 1
    centres = np.bincount(labels, weights=u, minlength=k) / np.bincount(labels, minlength=k)
    return labels, centres


def _ulps(rec, u, dtype):
    from .verify import ulp_distance

    return ulp_distance(rec.astype(dtype), u.astype(dtype))


def _ste_fits_better(rec, u, w, dtype):
    """Does ``w + (rec − w)`` evaluated in ``dtype`` reproduce ``u`` bit for bit where ``rec``
    does not?"""
    dt = np.dtype(dtype)
    if dt == np.float64:
        return False
    r = rec.astype(dt)
    ud = u.astype(dt)
    if np.array_equal(r, ud):
        return False
    wd = w.astype(dt)
    with np.errstate(over="ignore", invalid="ignore"):
        s = wd + (r - wd)
    return bool(np.array_equal(s, ud))


def _try(u, w, dtype, bits, lat, offset, alpha0, level0, rel, labels, tight, ste, beta_mean,
         ulps):
    """Place the lattice for α ≈ ``alpha0`` (the lowest cluster at ``level0``, the clusters at
    ``rel`` steps above it); return a Recovered or None."""
    off = 0.5 if lat == "midrise" else 0.0
    lo, hi = code_range(bits, lat)
    span = int(rel[-1])
    if span > hi - lo:
        return None
    if offset == "fitted":
        c0 = lo + (hi - lo - span) // 2  # centre the codes in their range
    else:
        beta = 0.0 if offset == "none" else beta_mean
        x = (level0 - beta) / alpha0 - off
        c0 = int(np.rint(x))
        if abs(x - c0) > _COARSE:
            return None
    c = (rel + c0)[labels]
    if c.min() < lo or c.max() > hi:
        return None
    v = c + off
    if offset == "none":
        vv = float(v @ v)
        alpha, beta = (float(u @ v) / vv if vv > 0 else 0.0), 0.0
    else:
        # least squares of u on [v, 1]: α and β together (β then checked against mean(w))
        n = u.size
        sv, svv, su, suv = float(v.sum()), float(v @ v), float(u.sum()), float(u @ v)
        det = n * svv - sv * sv
        if det <= 0:
            return None
        alpha = (n * suv - sv * su) / det
        beta = (su - alpha * sv) / n
    if not alpha > 0:
        return None
    rec = beta + alpha * v
    if offset != "none":
        tight, ste = allowed(u, w, dtype, ulps, alpha, v, beta)
    err = np.abs(rec.astype(dtype).astype(np.float64) - u)
    if np.all(err <= tight):
        st = _ste_fits_better(rec, u, w, dtype)
    elif np.all(err <= ste):
        st = True
    else:
        return Recovered(lat, offset, alpha, beta, c.astype(np.int64),
                         float(np.max(_ulps(rec, u, dtype))), False, False)
    return Recovered(lat, offset, alpha, beta, c.astype(np.int64),
                     float(np.max(_ulps(rec, u, dtype))), st, True)


def recover(u, w, dtype, bits, *, lattices=LATTICES, offsets=OFFSETS, ulps=4):
    """The lattice of one slice ``u`` (float64 values of the output, dtype ``dtype``).

    Parameters
    ----------
    u, w : ndarray of float64, shape (n,)
        The output and the weights it came from.
    dtype : numpy dtype
        The dtype ``u`` was stored in (sets the ulp tolerances).
    bits : int
    lattices, offsets : sequences of names
        The candidates, in order of preference.
    ulps : int
        Tight tolerance in units in the last place.

    Returns
    -------
    Recovered
    """
    tight, ste = tolerances(u, w, dtype, ulps)
    if not np.all(np.isfinite(u)):
        return Recovered(None, "none", math.nan, 0.0, None, math.inf, False, False, None,
                         "wq holds NaN or inf")
    best, reason, oks = None, "", []
    for labels, centres, err in _levelings(u, ste, dtype):
        got = _search(u, w, dtype, bits, lattices, offsets, ulps, tight, ste, labels, centres,
                      err)
        if isinstance(got, str):
            reason = got  # the last leveling (clusters) says most
            continue
        if got.ok and got.offset == offsets[0] and not got.straight_through:
            return got
        if got.ok:
            oks.append(got)
        elif best is None or got.max_ulps < best.max_ulps:
            best = got
    if oks:  # the first offset in order, then one that needs no straight-through allowance
        return min(oks, key=lambda r: (list(offsets).index(r.offset), r.straight_through))
    if best is not None:
        best.reason = f"the closest lattice is {best.max_ulps:g} ulps off"
        return best
    return Recovered(None, "none", math.nan, 0.0, None, math.inf, False, False, None, reason)


def _levelings(u, ste, dtype):
    """Ways to group ``u`` into levels: (labels, centres, err) with ``err`` a bound on each
    centre's distance from its exact level α·v + β.

    First the distinct values: rounding α·v + β to the dtype gives one value per level, off
    by at most half a unit in the last place (the representation error). Then clusters of
    values within the straight-through allowance, which ``w + (wq − w)`` needs (a centre is
    then off by at most its cluster's allowance).
    """
    dt = np.dtype(dtype)
    centres, labels = np.unique(u, return_inverse=True)
    half_ulp = 0.5 * np.spacing(np.abs(centres).astype(dt)).astype(np.float64)
    tiny = float(np.finfo(dt).tiny) if dt.kind == "f" else 0.0
    yield labels.reshape(-1), centres, half_ulp + tiny
    labels, centres = _clusters(u, ste)
    err = np.zeros(centres.size)
    np.maximum.at(err, labels, ste)
    yield labels, centres, err


def _steps_of_gaps(gaps, gap_err, a0, e_a0):
    """The levels' positions in steps (from 0) for α ≈ ``a0 ± e_a0``, or None.

    Each gap in steps is an integer up to the coarse tolerance plus its own error and that of
    ``a0``; ``a0`` is first refined from the gaps whose step count is certain (the error of a
    sum of gaps is at most the sum of theirs, so this converges in a few rounds).
    """
    for _ in range(8):
        g = gaps / a0
        r = np.rint(g)
        tol = gap_err / a0 + g * e_a0 / a0
        sure = (r >= 1) & (np.abs(g - r) + tol < 0.5)
        if not np.any(sure):
            break
        a1, e1 = float(gaps[sure].sum() / r[sure].sum()), \
            float(gap_err[sure].sum() / r[sure].sum())
        if a1 == a0:
            break
        a0, e_a0 = a1, min(e1, e_a0)
    g = gaps / a0
    r = np.rint(g)
    if np.any(r < 1) or np.any(np.abs(g - r) > _COARSE + gap_err / a0 + g * e_a0 / a0):
        return None
    return np.concatenate(([0.0], np.cumsum(r)))


def _search(u, w, dtype, bits, lattices, offsets, ulps, tight, ste, labels, centres, err):
    """The lattice of one leveling of ``u``: a Recovered, or a reason (str) when none."""
    n_levels = 2 ** bits
    k = centres.size
    if k > n_levels:
        return f"{k} distinct levels (more than the {n_levels} of {bits} bits)"
    if k == 1:
        x = float(centres[0])
        if abs(x) <= float(np.max(ste)):  # all zero
            lat = "midtread" if "midtread" in lattices and bits >= 2 else lattices[0]
            return Recovered(lat, "none", 0.0, 0.0, np.zeros(u.size, np.int64), 0.0, False,
                             True, 1)
        # one non-zero level: α·(c + ½) with c = 0 or −1 on the midrise lattice
        if "midrise" in lattices:
            c = 0 if x > 0 else -1
            alpha = abs(x) * 2.0
            rec = np.full(u.size, alpha * (c + 0.5))
            e = np.abs(rec.astype(dtype).astype(np.float64) - u)
            return Recovered("midrise", "none", alpha, 0.0, np.full(u.size, c, np.int64),
                             float(np.max(_ulps(rec, u, dtype))), bool(np.any(e > tight)),
                             bool(np.all(e <= ste)), 1)
        c = 1 if x > 0 else -1
        return Recovered(lattices[0], "none", abs(x), 0.0, np.full(u.size, c, np.int64), 0.0,
                         False, True, 1)
    gaps = np.diff(centres)
    gap_err = err[:-1] + err[1:]          # bound on each gap's error
    i_min = int(np.argmin(gaps))
    dmin, e_dmin = float(gaps[i_min]), float(gap_err[i_min])
    span = float(centres[-1] - centres[0])
    e_span = float(err[0] + err[-1])
    # the smallest gap is j ≥ 1 steps; the codes span at most 2^k − 1 steps (errors allowed)
    jmax = min(int(math.floor((n_levels - 1) * (dmin + e_dmin) / max(span - e_span, dmin)
                              * (1 + 1e-3))), _MAX_DIVISOR)
    starts = [(dmin / j, e_dmin / j) for j in range(1, max(jmax, 0) + 1)]
    # α also from the smallest clearly non-zero level, ``|level| / (m + off)`` on a lattice
    # through zero (relative rounding error is the same at every magnitude, and m is smallest
    # there): where the only small gap is between large float16 levels (few elements, many
    # bits), the small levels carry α far more precisely than the gaps
    nz = np.abs(centres) > 4 * err
    if np.any(nz):
        i_a = int(np.argmin(np.where(nz, np.abs(centres), np.inf)))
        anchor, e_anchor = abs(float(centres[i_a])), float(err[i_a])
        for off in (0.5, 0.0):
            m_lo = max(int(math.ceil(anchor / (dmin + e_dmin) - off)), 0 if off else 1)
            m_hi = min(int(math.floor(anchor * (n_levels - 1) / max(span - e_span, dmin) - off)),
                       n_levels, m_lo + _MAX_DIVISOR)
            starts += [(anchor / (m + off), e_anchor / (m + off)) for m in range(m_lo, m_hi + 1)]
    props, seen = [], set()
    for a0, e_a0 in starts:
        rel = _steps_of_gaps(gaps, gap_err, a0, e_a0)
        if rel is None or rel[-1] > n_levels - 1 or rel.tobytes() in seen:
            continue
        seen.add(rel.tobytes())
        # α and the lowest level by least squares over the clusters (the errors average out)
        rm = rel - rel.mean()
        a_fit = float(rm @ (centres - centres.mean())) / float(rm @ rm)
        props.append((a_fit, float(centres.mean() - a_fit * rel.mean()), rel))
    beta_mean = float(np.mean(w))
    best = None
    for offset in offsets:
        fallback = None
        for a_fit, level0, rel in props:
            if not a_fit > 0:
                continue
            for lat in lattices:
                if lat == "midtread" and bits < 2:
                    continue
                got = _try(u, w, dtype, bits, lat, offset, a_fit, level0, rel, labels, tight,
                           ste, beta_mean, ulps)
                if got is None:
                    continue
                got.clusters = k
                if got.ok and not got.straight_through:
                    return got
                if got.ok:
                    # the straight-through allowance is wide: a lattice that needs none, if
                    # any, is the one (a nearby α can fit within the allowance)
                    fallback = fallback or got
                elif best is None or got.max_ulps < best.max_ulps:
                    best = got
        if fallback is not None:  # before a later (less likely) offset
            return fallback
    if best is not None:
        return best
    return f"{k} levels whose spacing fits no {bits}-bit lattice"


__all__ = ["LATTICES", "OFFSETS", "Recovered", "allowed", "code_range", "family", "recover",
           "tolerances"]
