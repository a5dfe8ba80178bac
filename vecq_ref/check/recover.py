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
output, into the groups of values that can be one stored level: ``w + (out − w)`` rounded
twice is within ``½·ulp(|wq − w| + ½·ulp(wq)) + ½·ulp(wq)`` of ``out`` (:func:`ste_bound`,
in ulps at each value's own magnitude, which an offset β moves; exact below twice the
smallest normal value; an exact 0 where ``out`` is within half an ulp of ``w`` from zero),
so values whose intervals share a point are one level; then chains of values within the
wider allowance below (coarser levels some lattice may still hold). At most
``2^k`` levels are allowed, so a lattice whose codes would not fit ``bits`` is never proposed
(no "α = 1 ulp, codes ±10⁹"). α is the smallest gap between levels divided by ``j = 1, 2, …``
only while the span of the codes stays within ``2^k − 1``; every gap must be a whole number
of steps up to its own error (each level's representation error, large in float16) and that
of α, which is refined from the gaps whose step count is certain; α and the lowest level are
then fitted over the levels, the lattices tried in the order above, and α and β refitted by
least squares on every element (on an offset ``mean(w)`` lattice β = mean(w) itself first,
α by least squares on ``u − β`` or ``w − β``, the closest: a fitted β is many ulps off at a
value near zero; a float16 β = 0 reading that needs the straight-through allowance is
re-read with β = mean(w) and its codes shifted, :func:`as_mean`). An element passes when
it is within ``ulps`` units in the last place
of ``wq``'s dtype of ``β + α·v`` rounded to that dtype; failing that, within the float rounding
of a straight-through output ``w + (wq − w)`` (``2·ulp(|w| + |wq|)``; at an exact zero
:func:`ste_bound`), which is then reported (``straight_through``); within the ``ulps``
tolerance, where ``w + (rec − w)`` gives ``wq`` bit for bit and ``rec`` does not, only when
β is 0 or mean(w) (a fitted β's rounding can be undone so by chance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._floats import at_caller_scale as _at_caller_scale
from ._floats import cast as _cast
from ._floats import dtype_of as _dtype_of
from ._floats import smallest_subnormal as _smallest_subnormal
from ._floats import spacing as _spacing
from ._floats import ulp_distance
from ._floats import unit_roundoff as _unit_roundoff

#: Lattice names in the order they are tried; the midtread pair differ only in the code range.
LATTICES = ("midrise", "midtread", "midtread-full")
OFFSETS = ("none", "mean", "fitted")
_COARSE = 0.05  # integrality tolerance (in codes) when proposing α; the ulps test decides
_MAX_DIVISOR = 4096  # α is tried as (smallest gap)/j for j ≤ this (levels at most 4096 apart)
_SPLITS = 256  # ambiguous step counts split per start (levels a few subnormal spacings apart)
_C0_TRIES = 1  # lowest codes tried beside the nearest one where its error allows them


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
    element needed the straight-through allowance (``wide``: beyond the tight tolerance;
    else ``w + (α·v + β − w)`` gives ``u`` bit for bit where ``α·v + β`` does not);
    ``max_ulps``: the largest distance of the reconstruction from ``u`` in ulps of the
    dtype; ``clusters``: distinct levels found (None when recovery stopped before
    clustering).
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
    wide: bool = False  # some element needed the straight-through tolerance, not the tight one

    @property
    def off(self):
        return 0.5 if self.lattice == "midrise" else 0.0


def ste_bound(u, w, dtype):
    """Bound on ``|u − out|`` when ``u`` is the straight-through output ``w + (out − w)``
    evaluated in ``dtype`` (float64 array, value units).

    Both operations round to nearest: ``d = fl(out − w) = out − w + e₁`` and
    ``u = fl(w + d) = out + e₁ + e₂`` with ``|e₁| ≤ ½·ulp(d)``, ``|e₂| ≤ ½·ulp(u)``, and
    ``|d| = |u − e₂ − w| ≤ |u − w| + ½·ulp(u)``; hence ``|u − out| ≤ ½·ulp(|u − w| + ½·ulp(u))
    + ½·ulp(u)``, from the values themselves (ulps of ``dtype`` at each magnitude: an offset
    β moves the levels, and so the ulps, away from those of ``α·v``). A sum below twice the
    smallest normal value is exact (floats are multiples of the subnormal spacing η, which is
    the spacing there): its term is 0. An exact zero is no exception: ``w + (out − w)`` is 0
    wherever ``|out| ≤ ½·ulp(w)`` (a level within half an ulp of w from zero, β ≈ −α·v).
    """
    exact_below = _smallest_subnormal(dtype) / _unit_roundoff(dtype)  # 2 × smallest normal

    def half_ulp(x):
        x = np.abs(x)
        return np.where(x < exact_below, 0.0, 0.5 * _spacing(x, dtype))

    h = half_ulp(u)
    return half_ulp(np.abs(u - w) + h) + h


def tolerances(u, w, dtype, ulps, terms=None):
    """Per-element tolerances (tight, straight-through) in value units, float64 arrays.

    ``terms``: the magnitude of the terms an offset lattice adds (``|α·v| + |β|``), whose
    rounding the sum carries.
    """
    mag = np.abs(u) if terms is None else np.abs(u) + terms
    # ulps of the dtype at each value: relative for normal values, the subnormal spacing η
    # (absolute) below them, so that a subnormal output is judged by its own resolution
    tight = ulps * _spacing(mag, dtype)
    # an exact zero of the output is the straight-through rounding of a level only within
    # half an ulp of w from zero (ste_bound), never of one farther off; elsewhere the
    # allowance is wider than ste_bound (α and β are fitted to values carrying it)
    ste = np.where(u == 0, tight + ste_bound(u, w, dtype),
                   tight + 2.0 * _spacing(np.abs(u) + np.abs(w), dtype))
    return tight, ste


def allowed(u, w, dtype, ulps, alpha, v, beta):
    """Tolerances (tight, straight-through) of ``u ≈ β + α·v`` on an offset lattice.

    Each value carries the rounding of ``α·v`` and of the sum; α and β are fitted to values
    rounded at the scale of the largest level, an error every element inherits.
    """
    tight, ste = tolerances(u, w, dtype, ulps, np.abs(alpha * v) + abs(beta))
    fit = ulps * float(_spacing(np.max(np.abs(u)), dtype))
    return tight + fit, ste + fit


def _clusters(u, tol, most):
    """Group ``u`` into levels: values whose intervals ``u ± tol`` share a point (the stored
    level, which each value is within ``tol`` of). Fewest groups: in order of the intervals'
    upper ends, each group takes every value left whose interval holds the first upper end
    left (greedy stabbing, optimal for intervals). Returns labels (groups numbered by
    position) and, per group, the midpoint and half-width of the intersection of its
    intervals (where the level lies); None beyond ``most`` groups.
    """
    lo_e, hi_e = u - tol, u + tol
    by_hi = np.lexsort((u, hi_e))
    by_lo = np.argsort(lo_e, kind="stable")
    lo_sorted = lo_e[by_lo]
    labels = np.full(u.size, -1, dtype=np.int64)
    mids, halves = [], []
    i = j = 0
    while True:
        while i < u.size and labels[by_hi[i]] >= 0:
            i += 1
        if i == u.size:
            break
        if len(mids) == most:
            return None
        point = hi_e[by_hi[i]]  # the smallest upper end left: inside every interval taken
        j2 = int(np.searchsorted(lo_sorted, point, side="right"))
        # every value with lower end ≤ an earlier point joined an earlier group
        m = by_lo[j:j2]
        j = j2
        labels[m] = len(mids)
        a, b = float(np.max(lo_e[m])), float(np.min(hi_e[m]))
        mids.append(0.5 * (a + b))
        halves.append(0.5 * (b - a))
    mids, halves = np.array(mids), np.array(halves)
    rank = np.argsort(mids, kind="stable")
    inv = np.empty_like(rank)
    inv[rank] = np.arange(rank.size)
    return inv[labels], mids[rank], halves[rank]


def _chains(u, tol):
    """Group ``u`` into chains of neighbours closer than their tolerances ``tol`` together:
    labels (by position) and centres (the means). A coarse grouping the search also tries:
    with a wide tolerance, values a few ulps apart that some lattice holds as one level."""
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
    # counted in the caller's units (a Scaled format's subnormals keep their spacing η)
    return ulp_distance(_at_caller_scale(rec, dtype), _at_caller_scale(u, dtype))


def _ste_fits_better(rec, u, w, dtype):
    """Does ``w + (rec − w)`` evaluated in ``dtype`` reproduce ``u`` bit for bit where ``rec``
    does not?"""
    dt = _dtype_of(dtype)
    if dt == np.float64:
        return False
    r = _cast(rec, dt)
    ud = _cast(u, dt)
    if np.array_equal(r, ud):
        return False
    wd = _cast(w, dt)
    with np.errstate(over="ignore", invalid="ignore"):
        s = wd + (r - wd)
    return bool(np.array_equal(s, ud))


def _try(u, w, dtype, bits, lat, offset, alpha0, level0, rel, labels, tight, ste, beta_mean,
         ulps, e_alpha=0.0, e_level=0.0):
    """Place the lattice for α ≈ ``alpha0`` (the lowest cluster at ``level0``, the clusters at
    ``rel`` steps above it; ``e_alpha``, ``e_level`` bounds on their errors); return a
    Recovered or None.

    The lowest level's code is the integer nearest ``level0/α0 − off``, or, where its own
    error and α's leave more than one integer possible (levels a few subnormal spacings
    apart), each of them, nearest first: the first that fits is the reading (a code range
    another integer would exceed is then not forced on the output)."""
    off = 0.5 if lat == "midrise" else 0.0
    lo, hi = code_range(bits, lat)
    span = int(rel[-1])
    if span > hi - lo:
        return None
    if offset == "fitted":
        starts = [lo + (hi - lo - span) // 2]  # centre the codes in their range
    else:
        beta = 0.0 if offset == "none" else beta_mean
        x = (level0 - beta) / alpha0 - off
        # the lowest level in steps is an integer up to its own error and that of α (large
        # where the levels are a few subnormal spacings apart)
        t = _COARSE + (e_level + abs(level0 - beta) * e_alpha / alpha0) / alpha0
        c_lo, c_hi = max(math.ceil(x - t), lo), min(math.floor(x + t), hi - span)
        # the nearest few: a lattice whose lowest code is further off would move α, refitted
        # over every level, by more than the levels' errors
        c_n = int(np.rint(x))
        starts = sorted(range(max(c_lo, c_n - _C0_TRIES), min(c_hi, c_n + _C0_TRIES) + 1),
                        key=lambda c: abs(x - c))
        if not starts:  # no integer within the errors, or none that keeps the codes in range
            return None
    first = None
    for c0 in starts:
        got = _place(u, w, dtype, lat, offset, off, rel + c0, labels, tight, ste, ulps)
        if got is not None and got.ok:
            return got
        first = first or got
    return first


def _place(u, w, dtype, lat, offset, off, rel_c, labels, tight, ste, ulps):
    """The lattice ``lat`` with codes ``rel_c[labels]``: α (and β) by least squares, and
    whether every element is within its tolerance; None when no positive α fits."""
    c = rel_c[labels]
    v = c + off
    if offset == "none":
        vv = float(v @ v)
        fits = [((float(u @ v) / vv if vv > 0 else 0.0), 0.0, None)]
    else:
        fits = _offset_fits(u, w, v, offset == "mean")
        if fits is None:
            return None
    first, oks = None, []
    for alpha, beta, v0 in fits:
        if not alpha > 0:
            continue
        # β = mean(w) (``v0`` True) is exact: whether ``w + (rec − w)`` gives ``u`` bit for
        # bit where ``rec`` does not says something there; not for a fitted β
        got = _judge(u, w, dtype, lat, offset, c, v, alpha, beta,
                     None if v0 is True else v0, tight, ste, ulps,
                     bitwise=v0 is True or (offset == "none" and v0 is None))
        if got.ok:
            if offset != "mean":
                return got
            oks.append((got, v0 is not True))
        first = first or got
    if oks:  # within the tight tolerance, then β = mean(w), then the closest
        return min(oks, key=lambda x: (x[0].wide, x[1], x[0].max_ulps))[0]
    return first


def _offset_fits(u, w, v, mean):
    """The fits :func:`_place` tries for a lattice with an offset, in its order: ``(α, β,
    v₀)`` per fit (``v₀`` None for a free fit, True for β = mean(w), the zero level's ``v``
    for an integer zero point); None where ``[v, 1]`` has no least-squares solution.
    ``mean``: also β = mean(w) (the offset ``"mean"``). Shared with
    :func:`vecq_ref.check._recover_ste.as_mean_rows` (the same operations, the same bits)."""
    # least squares of u on [v, 1]: α and β together (β then checked against mean(w))
    n = u.size
    sv, svv, su, suv = float(v.sum()), float(v @ v), float(u.sum()), float(u @ v)
    det = n * svv - sv * sv
    if det <= 0:
        return None
    alpha = (n * suv - sv * su) / det
    fits = [(alpha, (su - alpha * sv) / n, None)]
    if mean:
        # β = mean(w) itself, with α by least squares on ``u − β`` and on ``w − β`` (α*,
        # the mean-centred convention's): a free fit of β carries the values' rounding at
        # the largest level, many ulps of a value near zero (α·v ≈ −β), and moves the
        # thresholds w − β the codes came from: β = mean(w) is the reading wherever it
        # fits, the closest of its two α, the free fit only where neither does
        beta_m = float(np.mean(w))
        fits += [(float((u - beta_m) @ v) / svv, beta_m, True),
                 (float((w - beta_m) @ v) / svv, beta_m, True)]
    zero = u == 0
    if np.any(zero) and np.all(v[zero] == v[zero][0]):
        # a level exactly at zero (an integer zero point): β = −α·v₀, the levels
        # α·(v − v₀), so that the zero level is exactly 0 as stored; tried first. (A
        # straight-through output is also 0 at a level within half an ulp of w from
        # zero, not at it: then the free fit above.)
        v0 = float(v[zero][0])
        d = v - v0
        dd = float(d @ d)
        if dd > 0:
            alpha = float(u @ d) / dd
            fits.insert(0, (alpha, -alpha * v0, v0))
    return fits


def _judge(u, w, dtype, lat, offset, c, v, alpha, beta, v0, tight, ste, ulps, bitwise=True):
    """Recovered for the lattice ``β + α·v`` (``α·(v − v₀)`` where ``v0`` is not None).

    ``bitwise``: within the tight tolerance, a straight-through output is told by
    ``w + (rec − w)`` giving ``u`` bit for bit where ``rec`` does not; only where ``rec`` is
    read back exactly enough (β = 0 or β = mean(w)): a fitted β carries errors of a few ulps
    at the largest level, many ulps of a value near zero (α·v ≈ −β), which ``w + (rec − w)``
    may round away by chance. Such a reading within the tight tolerance is a plain cast."""
    rec = beta + alpha * v if v0 is None else alpha * (v - v0)
    if offset != "none":
        tight, ste = allowed(u, w, dtype, ulps, alpha, v, beta)
    err = np.abs(_cast(rec, dtype).astype(np.float64) - u)
    wide = False
    if np.all(err <= tight):
        st = bitwise and _ste_fits_better(rec, u, w, dtype)
    elif np.all(err <= ste):
        st = wide = True
    else:
        return Recovered(lat, offset, alpha, beta, c.astype(np.int64),
                         float(np.max(_ulps(rec, u, dtype))), False, False)
    return Recovered(lat, offset, alpha, beta, c.astype(np.int64),
                     float(np.max(_ulps(rec, u, dtype))), st, True, wide=wide)


def as_mean(u, w, dtype, bits, got, *, ulps=4):
    """The reading of ``got`` (β = 0, codes ``c``, step α) on the lattice offset by
    ``β = mean(w)``: codes ``c − j`` with ``j = rint(mean(w)/α) ≠ 0``, α refitted with
    β = mean(w) (:func:`_place`); None where ``j = 0``, the codes leave their range, ``got``
    has none, or only a freely fitted β (not mean(w)) places the values.

    Where ``mean(w)`` is within a fraction of a step of ``j·α`` the two readings differ by
    less than a few ulps of the dtype (float16): the values alone cannot tell them apart,
    and the β = 0 one may need the straight-through allowance where this one does not.

    Parameters
    ----------
    u, w : ndarray of float64, shape (n,)
        The output and the weights it came from.
    dtype : numpy dtype or :class:`vecq_ref.check._floats.Scaled`
        The dtype ``u`` was stored in.
    bits : int
    got : Recovered
        A reading with β = 0 (``offset == "none"``).
    ulps : int
        Tight tolerance in units in the last place.

    Returns
    -------
    Recovered or None
        ``offset == "mean"``; judged as :func:`recover` judges (``ok``, ``straight_through``).
    """
    if got.codes is None or got.offset != "none" or not got.alpha > 0 or got.lattice is None:
        return None
    j = float(np.rint(float(np.mean(w)) / got.alpha))
    if j == 0 or not math.isfinite(j):
        return None
    c = got.codes.astype(np.float64) - j
    lo, hi = code_range(bits, got.lattice)
    if c.min() < lo or c.max() > hi:
        return None
    tight, ste = tolerances(u, w, dtype, ulps)
    alt = _place(u, w, dtype, got.lattice, "mean", got.off, c, np.arange(u.size), tight, ste,
                 ulps)
    if alt is None or alt.beta != float(np.mean(w)):
        # only β = mean(w) itself: a freely fitted β near j·α is the β = 0 reading with its
        # codes shifted (a VecQ output through a straight-through estimator, whose two
        # stored values at one level fit the refit within the tight tolerance), not an offset
        return None
    alt.clusters = got.clusters
    return alt


def recover(u, w, dtype, bits, *, lattices=LATTICES, offsets=OFFSETS, ulps=4):
    """The lattice of one slice ``u`` (float64 values of the output, dtype ``dtype``).

    Parameters
    ----------
    u, w : ndarray of float64, shape (n,)
        The output and the weights it came from.
    dtype : numpy dtype or :class:`vecq_ref.check._floats.Scaled`
        The dtype ``u`` was stored in (sets the ulp tolerances); a ``Scaled`` one when ``u``
        is the caller's output times ``2**exp``, whose ulps are then the caller's.
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
    for labels, centres, err in _levelings(u, w, ste, dtype, 2 ** bits):
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
        got = min(oks, key=lambda r: (list(offsets).index(r.offset), r.straight_through))
        if got.offset == "none" and got.straight_through and "mean" in offsets:
            alt = as_mean(u, w, dtype, bits, got, ulps=ulps)
            if alt is not None and alt.ok and not alt.straight_through:
                return alt
        return got
    if best is not None:
        best.reason = f"the closest lattice is {best.max_ulps:g} ulps off"
        return best
    return Recovered(None, "none", math.nan, 0.0, None, math.inf, False, False, None, reason)


def _levelings(u, w, ste, dtype, most):
    """Ways to group ``u`` into levels: (labels, centres, err) with ``err`` a bound on each
    centre's distance from its exact level α·v + β.

    First the distinct values: rounding α·v + β to the dtype gives one value per level, off
    by at most half a unit in the last place (the representation error). Then, for a
    straight-through output ``w + (out − w)``, the values whose intervals ``u ± ste_bound``
    share a point (values an ulp or a few apart that are one stored level ``out``): the
    centre is the middle of that common interval, off from ``out`` by at most its
    half-width, and ``out`` from the exact level by half an ulp. Last, where it groups them
    otherwise, chains of values within the wider allowance ``ste`` (the acceptance test's),
    a centre then off by at most its chain's allowance: coarser levels a lattice may still
    hold within the tolerance (values a few subnormal spacings apart). The second is
    skipped beyond ``most`` levels (more than ``bits`` can hold).
    """
    centres, labels = np.unique(u, return_inverse=True)
    yield labels.reshape(-1), centres, 0.5 * _spacing(centres, dtype)
    got = _clusters(u, ste_bound(u, w, dtype), most)
    if got is not None:
        labels_b, centres, half = got
        yield labels_b, centres, half + 0.5 * _spacing(np.abs(centres) + half, dtype)
    labels, centres = _chains(u, ste)
    if got is not None and np.array_equal(labels, labels_b):
        return  # the same levels, their errors bounded more closely above
    err = np.zeros(centres.size)
    np.maximum.at(err, labels, ste)
    yield labels, centres, err


def _steps_of_levels(d, e, lo, hi, a0, budget, fixed=None):
    """The levels' positions in steps from the lowest, one array per interval of α in
    ``[lo, hi]`` that places every level, or an empty list.

    ``d``: each level's distance from the lowest (``d[0] = 0``), ``e`` a bound on its error;
    a level is ``r ≥ 1`` whole steps up when ``|d − r·α| ≤ e + c·α`` (``c`` the coarse
    tolerance), i.e. ``(d − e)/(r + c) ≤ α ≤ (d + e)/(r − c)``. The interval is narrowed by
    every level whose step count is then certain (exact interval arithmetic: where levels are
    a few subnormal spacings apart their errors are as large as the steps, and a single gap
    says little); where none is, the nearest ambiguous level is split into its step counts,
    the one nearest ``a0`` first, at most ``budget[0]`` times in all (``fixed``: the step
    counts chosen so far, NaN where free).
    """
    c = _COARSE
    dd, ee = d[1:], e[1:]
    if fixed is None:
        fixed = np.full(dd.size, np.nan)
    free = np.isnan(fixed)
    while True:
        r_lo = np.maximum(np.ceil((dd - ee) / hi - c), 1.0)
        r_hi = np.floor((dd + ee) / lo + c)
        if np.any(r_hi < r_lo) or np.any(~free & ((fixed < r_lo) | (fixed > r_hi))):
            return []
        r_lo = np.where(free, r_lo, fixed)
        r_hi = np.where(free, r_hi, fixed)
        sure = r_lo == r_hi
        lo2 = max(lo, float(np.max((dd[sure] - ee[sure]) / (r_lo[sure] + c)))) \
            if np.any(sure) else lo
        hi2 = min(hi, float(np.min((dd[sure] + ee[sure]) / (r_lo[sure] - c)))) \
            if np.any(sure) else hi
        if lo2 > hi2:
            return []
        if lo2 == lo and hi2 == hi:
            break
        lo, hi = lo2, hi2
    if np.all(sure):
        if np.any(np.diff(r_lo) < 1):  # two distinct levels on one lattice point
            return []
        return [np.concatenate(([0.0], r_lo))]
    i = int(np.flatnonzero(~sure)[np.argmin((r_hi - r_lo)[~sure])])
    out = []
    # at most ``budget[0]`` step counts are tried: those nearest dd/a0 (the range itself may
    # be astronomically wide where ``lo`` is tiny)
    r_a, r_b = float(r_lo[i]), float(r_hi[i])
    r_mid = min(max(math.floor(dd[i] / a0), r_a), r_b)
    first = int(max(r_a, min(r_mid - budget[0], r_b - 2 * budget[0])))
    last = int(min(r_b, first + 2 * budget[0]))
    for r in sorted(range(first, last + 1), key=lambda r: abs(dd[i] / r - a0)):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        lo_r = max(lo, (dd[i] - ee[i]) / (r + c))
        hi_r = min(hi, (dd[i] + ee[i]) / (r - c))
        if lo_r <= hi_r:
            fx = fixed.copy()
            fx[i] = r
            out += _steps_of_levels(d, e, lo_r, hi_r, a0, budget, fx)
    return out


def _search(u, w, dtype, bits, lattices, offsets, ulps, tight, ste, labels, centres, err):
    """The lattice of one leveling of ``u``: a Recovered, or a reason (str) when none."""
    n_levels = 2 ** bits
    k = centres.size
    if k > n_levels:
        return f"{k} distinct levels (more than the {n_levels} of {bits} bits)"
    if k == 1:
        x = float(centres[0])
        if not np.any(u):
            # all zero: α = 0. Only then: a zero level is exactly 0 in every dtype, and so is
            # w + (0 − w), so α = 0 is never the lattice of a non-zero output.
            lat = "midtread" if "midtread" in lattices and bits >= 2 else lattices[0]
            return Recovered(lat, "none", 0.0, 0.0, np.zeros(u.size, np.int64), 0.0, False,
                             True, 1)
        if x == 0:
            return "non-zero values about a single level at 0 (α = 0 is not a lattice)"
        # one non-zero level: α·(c + ½) with c = 0 or −1 on the midrise lattice, or α·c with
        # c = ±1 on a midtread one
        lat = "midrise" if "midrise" in lattices else lattices[0]
        if lat == "midrise":
            c, alpha = (0 if x > 0 else -1), abs(x) * 2.0
        else:
            c, alpha = (1 if x > 0 else -1), abs(x)
        rec = np.full(u.size, alpha * (c + (0.5 if lat == "midrise" else 0.0)))
        e = np.abs(_cast(rec, dtype).astype(np.float64) - u)
        return Recovered(lat, "none", alpha, 0.0, np.full(u.size, c, np.int64),
                         float(np.max(_ulps(rec, u, dtype))), bool(np.any(e > tight)),
                         bool(np.all(e <= ste)), 1)
    beta_mean = float(np.mean(w))
    best = None
    zprops, exhaustive, vague = _zero_offset_props(
        centres, err, ste, labels, dtype, bits, lattices, ulps) if "none" in offsets \
        else ([], False, [])
    if offsets[0] == "none":
        # VecQ's reading first: a lattice through zero, found from the values' ratios by a
        # scan whose cost is bounded (≤ 2^(k−1) steps per level, vectorized), before the
        # enumeration of gaps, which with few levels and many bits admits many lattices and
        # would otherwise miss codes farther than its divisor bound
        got = _pick(u, w, dtype, bits, lattices, ("none",), ulps, tight, ste, labels, k,
                    beta_mean, zprops)
        if isinstance(got, Recovered) and got.ok and (exhaustive or not got.straight_through):
            return got
        if exhaustive:
            # every lattice through zero that fits was proposed: the gaps are enumerated
            # for the offset lattices only
            offsets = tuple(offsets[1:])
            best = got if isinstance(got, Recovered) else None
            if not offsets:
                return got
    gaps = np.diff(centres)
    gap_err = err[:-1] + err[1:]          # bound on each gap's error
    i_min = int(np.argmin(gaps))
    dmin, e_dmin = float(gaps[i_min]), float(gap_err[i_min])
    span = float(centres[-1] - centres[0])
    e_span = float(err[0] + err[-1])
    c = _COARSE
    # the codes span at most 2^k − 1 steps: a lower bound on α
    a_min = max((span - e_span) / (n_levels - 1 + c), 0.0)
    # the smallest gap is j ≥ 1 steps; the codes span at most 2^k − 1 steps (errors allowed)
    jmax = min(int(math.floor((n_levels - 1) * (dmin + e_dmin) / max(span - e_span, dmin)
                              * (1 + 1e-3))), _MAX_DIVISOR)
    starts = [(dmin / j, (dmin - e_dmin) / (j + c), (dmin + e_dmin) / (j - c))
              for j in range(1, max(jmax, 0) + 1)]
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
            starts += [(anchor / (m + off), (anchor - e_anchor) / (m + off + c),
                        (anchor + e_anchor) / (m + off - c)) for m in range(m_lo, m_hi + 1)]
    d = centres - centres[0]
    e_d = err + err[0]
    seen = {rel.tobytes() for _, _, rel, _, _ in zprops}

    def gap_props():
        yield from zprops
        total = [_MAX_DIVISOR]  # splits of ambiguous step counts, over all starts
        for a0, lo, hi in _placeable(starts, a_min, d, e_d):
            lo = max(lo, a_min)
            if not (hi >= lo and hi > 0) or total[0] <= 0:
                continue
            budget = [min(_SPLITS, total[0])]
            a0 = min(max(a0, lo), hi)
            rels = _steps_of_levels(d, e_d, max(lo, 1e-300), hi, a0, budget)
            total[0] -= min(_SPLITS, total[0]) - budget[0]
            for rel in rels:
                if rel[-1] > n_levels - 1 or rel.tobytes() in seen:
                    continue
                seen.add(rel.tobytes())
                # α and the lowest level by least squares over the clusters (the errors
                # average out; bounded by the centres' errors through the fit's weights)
                rm = rel - rel.mean()
                a_fit = float(rm @ (centres - centres.mean())) / float(rm @ rm)
                e_fit = float(np.abs(rm) @ err) / float(rm @ rm)
                yield (a_fit, float(centres.mean() - a_fit * rel.mean()), rel, e_fit,
                       float(np.max(err)) + float(rel.mean()) * e_fit)
        yield from vague

    # made as they are tried: the first fit of the first offset ends the enumeration
    props = _Lazy(gap_props())
    return _pick(u, w, dtype, bits, lattices, offsets, ulps, tight, ste, labels, k, beta_mean,
                 props, best)


def _placeable(starts, a_min, d, e, most=64):
    """The starts ``(a0, lo, hi)`` whose α interval leaves every one of (at most ``most`` of)
    the levels a whole step count: the first test of :func:`_steps_of_levels`, for all starts
    at once (a start that fails it proposes nothing)."""
    if not starts:
        return starts
    st = np.array(starts, dtype=np.float64)
    lo = np.maximum(np.maximum(st[:, 1], a_min), 1e-300)[:, None]
    hi = st[:, 2][:, None]
    pick = np.argsort(-d[1:], kind="stable")[:most] + 1  # the farthest levels, most steps
    dd, ee = d[pick][None, :], e[pick][None, :]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        r_lo = np.maximum(np.ceil((dd - ee) / hi - _COARSE), 1.0)
        r_hi = np.floor((dd + ee) / lo + _COARSE)
        ok = ~np.any(r_hi < r_lo, axis=1) | ~(hi[:, 0] > 0)
    return [s for s, keep in zip(starts, ok, strict=True) if keep]


class _Lazy:
    """A list made from an iterator as far as it is read; read again, it replays."""

    def __init__(self, it):
        self._it, self._done = it, []

    def __iter__(self):
        i = 0
        while True:
            if i < len(self._done):
                yield self._done[i]
            else:
                nxt = next(self._it, None)
                if nxt is None:
                    return
                self._done.append(nxt)
                yield nxt
            i += 1


def _zero_offset_props(centres, err, ste, labels, dtype, bits, lattices, ulps):
    """Proposals ``(α, lowest level, steps, e_α, e_level)`` of lattices through zero (β = 0),
    whether they are all that can fit (``exhaustive``), and the proposals of candidates that
    some level could not judge, to be tried after the gaps' (``vague``).

    The smallest non-zero level is ``α·v`` with ``|v|`` one of the ``2^(k−1)`` offsets of the
    family; each candidate α is kept while every other level lies within its tolerance
    (``ulps`` and its representation error, plus that of α) of a lattice point: a
    vectorized scan, at most ``2^(k−1)`` candidates per level, the survivors then tested by
    :func:`_try`. At most ``_SPLITS`` proposals per family; the largest α first. Each
    level's tolerance includes the straight-through allowance of its elements, so that when
    no candidate was dropped (for its tolerance of a quarter step or more, or beyond
    ``_SPLITS``) no other lattice through zero fits within tolerance.
    """
    if centres.size < 2:
        return [], False, []
    t = np.zeros(centres.size)
    np.maximum.at(t, labels, ste)
    t = t + err + ulps * _spacing(np.abs(centres), dtype)  # each level's tolerance
    nz = np.abs(centres) > t
    if not np.any(nz):
        return [], False, []
    i_a = int(np.argmin(np.where(nz, np.abs(centres), np.inf)))
    anchor = abs(float(centres[i_a]))
    rel_a = float(t[i_a]) / anchor
    half = 2 ** (bits - 1)
    others = np.argsort(-np.abs(centres), kind="stable")  # the largest discriminate most
    others = others[others != i_a]
    props = []
    offs = ([0.5] if "midrise" in lattices else []) + \
        ([0.0] if bits >= 2 and any(lat != "midrise" for lat in lattices) else [])
    if float(np.max(np.abs(centres))) / 2.0 ** (bits + 1) > anchor:
        return [], True, []  # |v| spans at most 2^k (½ … 2^(k−1) − ½)
    exhaustive = True
    spared = []  # candidates some level could not judge (a quarter step of tolerance or more)
    for off in offs:
        va = np.arange(1.0 - off, half + 0.5 - off)  # |v| of the anchor: ½…half−½ or 1…half
        a0 = anchor / va
        a0 = a0[a0 > 0]  # (a subnormal anchor's smallest steps underflow)
        for i in others:
            x = float(centres[i]) / a0 - off
            n = np.rint(x)
            tol = 2.0 * (float(t[i]) + abs(float(centres[i])) * rel_a) / a0 + 1e-9
            # a tolerance of a quarter step or more tells nothing (levels a few subnormal
            # spacings apart): such lattices are left to the enumeration of gaps
            fits = (np.abs(x - n) <= tol) & (np.abs(n + off) <= half)
            vague = fits & (tol >= 0.25)
            if np.any(vague):
                exhaustive = False
                spared.append((off, a0[vague]))
            a0 = a0[fits & (tol < 0.25)]
            if a0.size == 0:
                break
        if a0.size > _SPLITS:
            # few levels, many candidates: keep those whose least-squares α places every
            # level within twice its tolerance (the test :func:`_try` makes, loosened)
            a0 = a0[_fits_through_zero(centres, t, a0, off)[0]]
        exhaustive = exhaustive and a0.size <= _SPLITS
        for a in a0[:_SPLITS]:
            v = np.rint(centres / a - off) + off
            if np.any(np.diff(v) < 1):  # two levels on one lattice point
                continue
            vv = float(v @ v)
            a_fit = float(v @ centres) / vv
            props.append((a_fit, float(centres[0]), v - v[0], float(np.abs(v) @ t) / vv,
                          float(t[0])))
    # the candidates a level could not judge, placed on every level by least squares (α
    # refined from them): proposed after the gaps' own (float16 at 12 bits: a level's
    # tolerance is more than a step, and the ratios alone cannot say which codes)
    vague = []
    mags = np.abs(centres[centres != 0])
    ratio = mags / _spacing(mags, dtype)  # 2^(p−1) … 2^p for normal values, less below them
    if mags.size == 0 or ratio.min() < max(512.0, 0.5 * ratio.max()):
        spared = []  # subnormal levels: their spacing is absolute, left to the gaps
    for off, a in spared:
        keep, a_fit = _fits_through_zero(centres, t, a[:1 << 15], off)
        for a in np.unique(a_fit[keep])[::-1][:_SPLITS]:
            v = np.rint(centres / a - off) + off
            if np.all(np.diff(v) >= 1):
                vv = float(v @ v)
                vague.append((float(v @ centres) / vv, float(centres[0]), v - v[0],
                              float(np.abs(v) @ t) / vv, float(t[0])))
    # the largest α (smallest codes) first, whichever the family, as the gaps propose them
    return sorted(props, key=lambda p: -p[0]), exhaustive, vague


def _fits_through_zero(centres, t, a0, off, chunk=1 << 20, rounds=3):
    """Mask of the steps ``a0`` whose codes ``rint(centres/α − off)``, with α refitted by
    least squares through zero (``rounds`` times), leave every level within ``2·t`` of its
    lattice point; and the refitted α."""
    keep = np.zeros(a0.size, dtype=bool)
    a_out = np.zeros(a0.size)
    step = max(1, chunk // centres.size)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for s in range(0, a0.size, step):
            a = a0[s:s + step, None]
            for _ in range(rounds):
                v = np.rint(centres[None, :] / a - off) + off
                a = np.sum(v * centres, axis=1, keepdims=True) / np.sum(v * v, axis=1,
                                                                        keepdims=True)
            keep[s:s + step] = np.all(np.abs(centres - a * v) <= 2.0 * t, axis=1) & \
                (a[:, 0] > 0)
            a_out[s:s + step] = a[:, 0]
    return keep, a_out


def _pick(u, w, dtype, bits, lattices, offsets, ulps, tight, ste, labels, k, beta_mean, props,
          best=None):
    """The first proposal that fits, offsets in order (one that needs no straight-through
    allowance before one that does); else the closest (a Recovered) or a reason (str)."""
    for offset in offsets:
        fallback = full = None
        for a_fit, level0, rel, e_fit, e_level in props:
            if not a_fit > 0:
                continue
            for lat in lattices:
                if lat == "midtread" and bits < 2:
                    continue
                got = _try(u, w, dtype, bits, lat, offset, a_fit, level0, rel, labels, tight,
                           ste, beta_mean, ulps, e_fit, e_level)
                if got is None:
                    continue
                got.clusters = k
                if got.ok and not got.straight_through and lat == "midtread-full" and \
                        "midtread" in lattices:
                    # a few levels a few subnormal spacings apart fit several steps: the
                    # narrow (VecQ) lattice, if another step gives it, is the reading
                    full = full or got
                    continue
                if got.ok and not got.straight_through:
                    return got
                if got.ok:
                    # the straight-through allowance is wide: a lattice that needs none, if
                    # any, is the one (a nearby α can fit within the allowance)
                    fallback = fallback or got
                elif best is None or got.max_ulps < best.max_ulps:
                    best = got
        if full is not None:
            return full
        if fallback is not None:  # before a later (less likely) offset
            return fallback
    if best is not None:
        return best
    return f"{k} levels whose spacing fits no {bits}-bit lattice"


def _levels_and_one_value(u, c, lo, hi):
    """Per row of codes ``c`` (integers in ``lo … hi``) and values ``u``: the number of
    distinct codes, and whether every code holds one value only. A table of the smallest and
    largest value per (row, code) where it is small; else sorted rows."""
    rows, n = c.shape
    k = int(hi - lo + 1)
    if rows * k <= 1 << 24:
        idx = (np.arange(rows)[:, None] * k + (c - lo).astype(np.int64)).ravel()
        uu = u.ravel()
        big = np.full(rows * k, np.inf)
        small = np.full(rows * k, -np.inf)
        np.minimum.at(big, idx, uu)
        np.maximum.at(small, idx, uu)
        used = np.isfinite(big)
        one = ((big == small) | ~used).reshape(rows, k)
        return np.count_nonzero(used.reshape(rows, k), axis=1), np.all(one, axis=1)
    n_vals = 1 + np.count_nonzero(np.diff(np.sort(u, axis=1), axis=1), axis=1)
    n_codes = 1 + np.count_nonzero(np.diff(np.sort(c, axis=1), axis=1), axis=1)
    return n_codes, n_vals == n_codes


#: :func:`recover_rows` reads this many elements at a time (every row is read on its own:
#: the same readings, with temporaries that stay in the cache).
ROWS_CHUNK = 1 << 18


@dataclass
class RowReadings:
    """:func:`recover_rows`' readings column by column (``columns=True``): row ``i`` was read
    where ``read[i]``, on the lattice ``lattice[i]`` (a :data:`LATTICES` name; None where
    not read), β = 0, with ``alpha[i]``, ``codes[i]`` (zeros where not read),
    ``max_ulps[i]``, ``straight_through[i]`` and ``clusters[i]`` distinct levels."""

    read: np.ndarray
    lattice: np.ndarray
    alpha: np.ndarray
    codes: np.ndarray
    max_ulps: np.ndarray
    straight_through: np.ndarray
    clusters: np.ndarray

    def __len__(self):
        return self.read.size

    @classmethod
    def empty(cls, nrows, n):
        return cls(np.zeros(nrows, dtype=bool), np.full(nrows, None, dtype=object),
                   np.zeros(nrows), np.zeros((nrows, n), dtype=np.int64), np.zeros(nrows),
                   np.zeros(nrows, dtype=bool), np.zeros(nrows, dtype=np.int64))

    def recovered(self):
        """One :class:`Recovered` or None per row (:func:`recover_rows`' list)."""
        out = [None] * len(self)
        for i in np.flatnonzero(self.read).tolist():
            out[i] = Recovered(self.lattice[i], "none", float(self.alpha[i]), 0.0,
                               self.codes[i].copy(), float(self.max_ulps[i]),
                               bool(self.straight_through[i]), True, int(self.clusters[i]))
        return out


def recover_rows(U, W, dtype, bits, *, lattices=LATTICES, ulps=4, columns=False):
    """:func:`recover` for many slices at once, where it is quick: the lattices through zero
    (β = 0) with the largest step, which :func:`recover` tries first.

    The largest step a lattice through zero can have is fixed by the smallest non-zero
    ``|u|`` of the slice: ``2·min|u|`` on the midrise lattice (``|v| ≥ ½``), ``min|u|`` on a
    midtread one (``|v| ≥ 1``), tried in that order (largest α first, as :func:`recover`
    does); the codes are ``rint(u/α − off)``, α is refitted by least squares (twice), and the
    slice is read so when every element lies within ``ulps`` of ``α·v`` rounded to ``dtype``,
    each level holds one value (as many distinct values as codes) and the codes fit ``bits``
    (narrow midtread only: a full-range reading is left to :func:`recover`, which first
    looks for a narrow one). Slices holding subnormal values
    are left to :func:`recover`. Vectorized over the rows.

    Parameters
    ----------
    U, W : ndarray of float64, shape (rows, n)
        The output and the weights, one slice per row.
    dtype, bits, lattices, ulps
        As in :func:`recover`.
    columns : bool, default False
        Return the readings as one :class:`RowReadings` (no object per row).

    Returns
    -------
    list of Recovered or None, or RowReadings
        One per row: the reading, or None where :func:`recover` must decide.
    """
    nrows, n = U.shape
    out = RowReadings.empty(nrows, n)
    step = max(1, ROWS_CHUNK // max(n, 1))
    for s in range(0, nrows, step):
        _recover_rows(U[s:s + step], W[s:s + step], dtype, bits, lattices, ulps, out, s)
    return out if columns else out.recovered()


def _recover_rows(U, W, dtype, bits, lattices, ulps, out, first):
    """:func:`recover_rows` on one chunk of rows, into ``out`` from row ``first`` on."""
    nrows, n = U.shape
    if n == 0 or nrows == 0 or not np.all(np.isfinite(U)):
        return
    absu = np.abs(U)
    # slices with subnormal values are left to :func:`recover` (levels a few η apart fit
    # many lattices; its enumeration decides among them)
    tiny = _smallest_subnormal(dtype) / (2.0 * _unit_roundoff(dtype))
    todo = ~np.any((absu > 0) & (absu < tiny), axis=1)
    tight = ulps * _spacing(absu, dtype)
    for lat in lattices:
        if lat == "midtread-full" or (lat == "midtread" and bits < 2):
            continue
        off = 0.5 if lat == "midrise" else 0.0
        lo, hi = code_range(bits, lat)
        rows = np.flatnonzero(todo)
        if rows.size == 0:
            break
        u = U[rows]
        a = absu[rows]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if off:  # no zero level: a zero means another lattice
                x = np.min(a, axis=1)
                alpha = 2.0 * x
            else:
                x = np.min(np.where(a > 0, a, np.inf), axis=1)
                alpha = x.copy()
            good = np.isfinite(alpha) & (alpha > 0)
            alpha = np.where(good, alpha, 1.0)
            for _ in range(2):
                c = np.rint(u / alpha[:, None] - off)
                v = c + off
                vv = np.einsum("ij,ij->i", v, v)
                alpha = np.where(vv > 0, np.einsum("ij,ij->i", u, v) / np.where(vv > 0, vv, 1),
                                 0.0)
                good &= alpha > 0
                alpha = np.where(good, alpha, 1.0)
            c = np.rint(u / alpha[:, None] - off)
            v = c + off
            good &= np.all((c >= lo) & (c <= hi), axis=1)
            rec = alpha[:, None] * v
            err = np.abs(_cast(rec, dtype).astype(np.float64) - u)
            good &= np.all(err <= tight[rows], axis=1)
        if not np.any(good):
            continue
        # one value per level, as rounding α·v to the dtype gives (more values than levels:
        # a straight-through output, or not a k-bit one: left to :func:`recover`)
        gi = np.flatnonzero(good)
        n_codes, one_value = _levels_and_one_value(u[gi], c[gi], lo, hi)
        good[gi[~one_value]] = False
        n_codes = n_codes[one_value]
        gi = np.flatnonzero(good)
        if gi.size == 0:
            continue
        # straight-through: w + (α·v − w) reproduces u where α·v rounded does not
        dt = _dtype_of(dtype)
        r = _cast(rec[gi], dtype)
        ud = _cast(u[gi], dtype)
        exact = np.all(r == ud, axis=1)
        st = np.zeros(gi.size, dtype=bool)
        if dt != np.float64 and not np.all(exact):
            wd = _cast(W[rows[gi]], dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                same = np.all(wd + (r - wd) == ud, axis=1)
            st = ~exact & same
        ul = np.max(ulp_distance(_at_caller_scale(rec[gi], dtype),
                                 _at_caller_scale(u[gi], dtype)), axis=1)
        at = first + rows[gi]
        out.read[at] = True
        out.lattice[at] = lat
        out.alpha[at] = alpha[gi]
        out.codes[at] = c[gi]
        out.max_ulps[at] = ul
        out.straight_through[at] = st
        out.clusters[at] = n_codes
        todo[rows[gi]] = False


__all__ = ["LATTICES", "OFFSETS", "Recovered", "RowReadings", "allowed", "as_mean", "code_range",
           "family", "recover", "recover_rows", "ste_bound", "tolerances"]
