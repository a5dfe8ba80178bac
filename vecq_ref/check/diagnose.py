"""Component-wise diagnosis of a quantizer's output from its recovered codes (``verify``).

Given the weights, the recovered lattice, codes, α and β of every slice, each component of a
quantizer is named against the rules real implementations use (docs/theory.md §7.1) and priced in
relative DQL (``‖w − w_q‖²/‖w‖²``):

- **lattice**: midrise / midtread narrow / midtread full range, β = 0, mean(w) or fitted.
  Cost: VecQ-param on that lattice (and offset) minus VecQ-param on the midrise lattice.
- **step rule**: the interval of steps ``s`` whose codes (any tie rule) are the recovered ones,
  tested within ``step_rtol`` (:func:`step_tol`) against ``λ·σ`` for the exact and 4-decimal
  VecQ tables and both μL2Q tables, σ with ddof 0 or 1 or the root mean square (not
  mean-centred), with or without ``+1e-7``, and against the abs-max scales. An empty
  interval is reported by the two elements whose bounds cross; codes that a narrower
  bitwidth holds are pointed out (:func:`levels_hint`). Cost: the codes with their α* minus
  VecQ-param's codes with α*.
- **α rule**: least squares, norm-matched ``‖w‖/‖v‖``, the step without refit, abs-max narrow
  or full range; the rules within ``alpha_rtol`` (representation error of the output dtype
  plus accumulation error, :mod:`vecq_ref.check.verify`), closest fit first ("the step"
  last: it fits whenever α lies in the step interval). Cost: ``(α − α*)²⟨v,v⟩/‖w‖²``.
- **rounding**: floor / half to even / half away from zero, from the elements whose ``w/s``
  is exactly on a threshold, read in the output dtype and then in the wider ones the
  implementation may have divided in (:func:`compute_dtypes`): the first whose ties agree on a
  rule names it; ties that disagree say ``w/s`` was not rounded to that dtype (none at all:
  not identifiable).
- **straight-through**: whether the output is the lattice only up to the float rounding of
  ``w + (wq − w)``. Cost: the DQL of the output minus that of the lattice values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validation as V
from .. import tables
from ..quantize import quantize
from ._floats import _eps, cast, representation_error, smallest_subnormal, spacing, unit_roundoff
from .recover import family

EPS = 1e-7  # the released codes' epsilon (Keras K.epsilon(), torch and TF literals)


@dataclass
class Component:
    """One row of the diagnosis table."""

    component: str
    found: str
    vecq: str
    cost: float | None
    matches: list
    tolerance: float | None
    is_vecq: bool | None
    detail: str = ""  # the numbers behind ``found`` (the report's second line)

    def as_dict(self):
        """Plain JSON-ready values (a non-finite cost or tolerance becomes None)."""
        out = dict(self.__dict__)
        for k in ("cost", "tolerance"):
            v = out[k]
            out[k] = None if v is None or not math.isfinite(v) else float(v)
        out["matches"] = list(out["matches"])
        return out


def _fmt_cost(x):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.3g}"


def table_text(components):
    """The table ``component · found · VecQ's · DQL cost`` as text lines."""
    head = ("component", "found", "VecQ's", "rel. DQL cost")
    rows = [head] + [(c.component, c.found, c.vecq, _fmt_cost(c.cost)) for c in components]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = []
    for r in rows:
        out.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return out


def rel_tol(dtype, n):
    """Relative tolerance of a quantity accumulated over ``n`` terms in ``dtype``:
    ``8ε + 4√n·ε`` (a few roundings, plus the random-walk growth of a sum's rounding)."""
    eps = _eps(dtype)
    return 8 * eps + 4 * math.sqrt(max(n, 1)) * eps


def accumulation_dtype(dtype):
    """The dtype sums are assumed accumulated in for an output of ``dtype``: the wider of it
    and float32 (no framework accumulates in float16 or bfloat16)."""
    return np.dtype(np.float64) if _eps(dtype) < _eps(np.float32) else np.dtype(np.float32)


def accumulation_tol(dtype, n):
    """Relative error of a sum over ``n`` terms (σ, ⟨w,v⟩, ⟨v,v⟩) for an output of ``dtype``:
    :func:`rel_tol` in :func:`accumulation_dtype`."""
    return rel_tol(accumulation_dtype(dtype), n)


def step_tol(dtype, n):
    """Relative tolerance on a step rule: σ accumulated (:func:`accumulation_tol`) plus the
    quotients ``w/s`` rounded to the output dtype (:func:`unit_roundoff`), which move the
    interval of steps that give the codes by that relative amount."""
    return unit_roundoff(dtype) + accumulation_tol(dtype, n)


# --- step interval -------------------------------------------------------------------------

#: From this many elements :func:`step_bounds` runs its kernel (twin:
#: :func:`vecq_ref.naive.step_bounds`, whose formulas are the ones below).
_BOUNDS_KERNEL_MIN = 1 << 12


def step_bounds(x, c, bits, lattice, thresholds=None):
    """Per-element bounds on the step: ``lo_i ≤ s ≤ hi_i`` keeps code ``c_i`` for ``x_i``.

    ``thresholds``: "midrise" (code c for ``c ≤ x/s < c + 1``) or "midtread"
    (``|x/s − c| ≤ ½``); default the lattice's own. Elementwise on arrays of any shape
    (rows of slices: reduce ``lo`` with max and ``hi`` with min along the last axis).
    Returns (lo, hi, impossible) with ``impossible`` the elements no step can give their
    code.
    """
    from .recover import code_range

    cmin, cmax = code_range(bits, lattice)
    midrise = (thresholds or family(lattice)) == "midrise"
    if np.size(x) >= _BOUNDS_KERNEL_MIN and np.asarray(x).dtype == np.float64 and \
            np.shape(c) == np.shape(x) and np.asarray(c).dtype.kind in "iu":
        # one pass without full-size temporaries (the same figures, NumPy's max/min)
        from .._kernels import bounds as _kb

        return _kb.step_bounds(x, c, cmin, cmax, midrise)
    c = c.astype(np.float64)
    if (thresholds or family(lattice)) == "midrise":
        a, b = c, c + 1.0
    else:
        a, b = c - 0.5, c + 0.5
    lo = np.zeros_like(x)
    hi = np.full_like(x, np.inf)
    bad = np.zeros(np.shape(x), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        # x ≥ a·s (not for the lowest code, which the clip reaches from below)
        use = c > cmin
        r = x / a
        hi = np.where(use & (a > 0), np.minimum(hi, r), hi)
        lo = np.where(use & (a < 0), np.maximum(lo, r), lo)
        bad |= use & (a == 0) & (x < 0)
        # x ≤ b·s (not for the highest code)
        use = c < cmax
        r = x / b
        lo = np.where(use & (b > 0), np.maximum(lo, r), lo)
        hi = np.where(use & (b < 0), np.minimum(hi, r), hi)
        bad |= use & (b == 0) & (x > 0)
    return lo, hi, bad


#: Row-wise work on (slices, n) arrays runs this many elements at a time (the same figures:
#: each row is computed on its own; no full-size temporaries).
ROWS_CHUNK = 1 << 18


def row_chunks(rows, size=None):
    """Slices of about ``size`` (default :data:`ROWS_CHUNK`) elements of the rows of the 2-D
    ``rows``, at least one row each."""
    step = max(1, (size or ROWS_CHUNK) // max(1, rows.shape[1]))
    return [slice(s, s + step) for s in range(0, rows.shape[0], step)]


def step_interval(x, c, bits, lattice, thresholds=None):
    """Per row of ``x`` (2-D) the interval of steps that keeps every code:
    ``(max lo_i, min hi_i, any impossible)`` of :func:`step_bounds`, a chunk of rows at a
    time."""
    lo = np.empty(x.shape[0])
    hi = np.empty(x.shape[0])
    bad = np.empty(x.shape[0], dtype=bool)
    for s in row_chunks(x):
        lo_i, hi_i, bad_i = step_bounds(x[s], c[s], bits, lattice, thresholds)
        lo[s], hi[s] = np.max(lo_i, axis=1), np.min(hi_i, axis=1)
        bad[s] = np.any(bad_i, axis=1)
    return lo, hi, bad


def _sigmas(w):
    """σ per row of ``w`` (2-D; a 1-D ``w`` is one row): ddof 0, ddof 1 and the root mean
    square, each an array of shape (rows,)."""
    w = np.atleast_2d(w)
    n = w.shape[1]
    var0 = np.empty(w.shape[0])
    ms = np.empty(w.shape[0])
    for s in row_chunks(w):  # row by row: the same means in chunks of rows
        m = np.mean(w[s], axis=1, keepdims=True)
        var0[s] = np.mean((w[s] - m) ** 2, axis=1)
        ms[s] = np.mean(w[s] * w[s], axis=1)
    out = {"σ (ddof 0)": np.sqrt(var0)}
    if n > 1:
        out["σ (ddof 1)"] = np.sqrt(var0 * n / (n - 1))
    out["rms (not mean-centred)"] = np.sqrt(ms)
    return out


#: The λ tables a step rule is tested against, in words (the names are the keys of
#: :func:`step_candidates`; the words are what the report prints).
LAMBDA_WORDS = {"λ VecQ exact": "VecQ's exact λ_k", "λ VecQ 4-decimal": "VecQ's 4-decimal λ_k",
                "λ μL2Q printed": "μL2Q's printed λ", "λ μL2Q code": "μL2Q's code λ"}
SIGMA_WORDS = {"σ (ddof 0)": "std (ddof 0)", "σ (ddof 1)": "sample std (ddof 1)",
               "rms (not mean-centred)": "rms (not mean-centred)"}
#: The step rules that are VecQ's own (issue 22: the released tables and conventions).
VECQ_LAMBDAS = ("λ VecQ exact", "λ VecQ 4-decimal")
VECQ_SIGMAS = ("σ (ddof 0)", "σ (ddof 1)")


def is_vecq_step_rule(name):
    """Whether a step-rule name of :func:`step_candidates` is one of VecQ's: ``λ_k·σ`` with
    the exact or the 4-decimal table, σ with ddof 0 or 1, with or without ``+1e-7``."""
    if "·" not in name:
        return False
    lname, tail = name.split("·", 1)
    return lname in VECQ_LAMBDAS and tail.removesuffix(" + 1e-7") in VECQ_SIGMAS


def step_candidates(w, x, bits, lattice, thresholds=None, sigmas=None):
    """Named step rules ``{name: (s, s_without_eps)}``, each an array with one step per row of
    ``w`` (2-D; ``x`` the rows the codes quantize, ``w − β``). ``sigmas``: ``_sigmas(w)``
    where the caller has it (not computed again)."""
    w = np.atleast_2d(w)
    x = np.atleast_2d(x)
    fam = thresholds or family(lattice)
    lams = {} if (fam == "midtread" and bits < 2) else {
        "λ VecQ exact": tables.optimal_step(bits, fam)}
    if fam == "midrise":
        lams["λ VecQ 4-decimal"] = tables.paper_lambda(bits)
        if bits <= 8:
            lams["λ μL2Q printed"] = tables.UL2Q_PRINTED[bits - 1]
            lams["λ μL2Q code"] = tables.UL2Q_CODE[bits - 1]
    out = {}
    sigmas = _sigmas(w) if sigmas is None else sigmas
    for lname, lam in lams.items():
        for sname, sig in sigmas.items():
            s = lam * sig
            out[f"{lname}·{sname}"] = (s, s)
            out[f"{lname}·{sname} + 1e-7"] = (s + EPS, s)
    amax = _abs_max_rows(x)
    half = 2 ** (bits - 1)
    if half > 1:
        out["abs-max narrow max|w|/(2^(k−1)−1)"] = (amax / (half - 1),) * 2
    out["abs-max full max|w|/(2^(k−1)−½)"] = (amax / (half - 0.5),) * 2
    return out


def _abs_max_rows(x):
    """``max|x|`` per row (0 for rows of no elements), a chunk of rows at a time."""
    if not x.shape[1]:
        return np.zeros(x.shape[0])
    out = np.empty(x.shape[0])
    for s in row_chunks(x):
        out[s] = np.max(np.abs(x[s]), axis=1)
    return out


def step_rule_words(name):
    """A step-rule name of :func:`step_candidates` in words:
    ``"λ VecQ 4-decimal·σ (ddof 1) + 1e-7"`` → ``"VecQ's 4-decimal λ_k × sample std (ddof 1)
    + 1e-7"``."""
    if "·" in name and name.startswith("λ"):
        lname, tail = name.split("·", 1)
        eps = tail.endswith(" + 1e-7")
        sname = tail.removesuffix(" + 1e-7")
        return f"{LAMBDA_WORDS[lname]} × {SIGMA_WORDS[sname]}" + (" + 1e-7" if eps else "")
    return {"abs-max narrow max|w|/(2^(k−1)−1)": "abs-max: max|w|/(2^(k−1) − 1)",
            "abs-max full max|w|/(2^(k−1)−½)": "abs-max: max|w|/(2^(k−1) − ½)"}.get(name, name)


def summarize_steps(names):
    """A short text for a set of matching step-rule names (a product is written as one)."""
    lam, rest = {}, []
    for nm in names:
        if "·" in nm and nm.startswith("λ"):
            lname, tail = nm.split("·", 1)
            eps = tail.endswith(" + 1e-7")
            sname = tail[: -len(" + 1e-7")] if eps else tail
            lam.setdefault(lname, set()).add((sname, eps))
        else:
            rest.append(nm)
    parts = []
    groups = {}
    for lname, combos in lam.items():
        groups.setdefault(frozenset(combos), []).append(lname)
    for combos, lnames in groups.items():
        sig = sorted({c[0] for c in combos})
        epss = {c[1] for c in combos}
        if len(combos) == len(sig) * len(epss):
            e = "" if epss == {False} else " + 1e-7" if epss == {True} else " (± 1e-7)"
            parts.append(f"{' or '.join(LAMBDA_WORDS[x] for x in lnames)} × "
                         f"{' or '.join(SIGMA_WORDS[x] for x in sig)}{e}")
        else:
            parts.extend(f"{' or '.join(LAMBDA_WORDS[x] for x in lnames)} × "
                         f"{SIGMA_WORDS[c[0]]}{' + 1e-7' if c[1] else ''}"
                         for c in sorted(combos))
    parts.extend(step_rule_words(r) for r in rest)
    return "; or ".join(parts)


# --- rounding --------------------------------------------------------------------------------

_TIE_RULES = ("floor (ties up)", "half to even", "half away from zero")


def rounding_votes(x, c, s, bits, lattice, dtype, thresholds=None):
    """Which tie rules agree with every element exactly at a threshold.

    ``x/s`` is evaluated in ``dtype`` (the output's, as the implementation did), both as
    ``x/s`` and as ``x·(1/s)`` (``x`` and ``c`` 2-D with one step per row, or 1-D with one
    step); only elements exactly on a threshold under both count: an
    element merely near one says nothing about the tie rule.
    Returns (number of ties, names of the rules that agree with all of them).
    """
    from .recover import code_range

    cmin, cmax = code_range(bits, lattice)
    dt = np.dtype(dtype)
    mid = (thresholds or family(lattice)) == "midrise"
    if dt in (np.dtype(np.float32), np.dtype(np.float64)) and \
            np.size(x) >= _BOUNDS_KERNEL_MIN and np.asarray(x).dtype == np.float64 and \
            np.shape(c) == np.shape(x) and np.asarray(c).dtype.kind in "iuf":
        # one pass without full-size temporaries (twin: vecq_ref.naive.tie_votes)
        from .._kernels import ties as _kt

        x2 = np.ascontiguousarray(np.atleast_2d(x))
        c2 = np.asarray(c).reshape(x2.shape)
        c2 = np.ascontiguousarray(c2, dtype=np.float64 if c2.dtype.kind == "f" else np.int64)
        s2 = np.ascontiguousarray(np.broadcast_to(np.asarray(s, dtype=np.float64).reshape(-1),
                                                  (x2.shape[0],)))
        n, *agree = (int(k) for k in _kt.tie_votes(x2, c2, s2, dt == np.float32, mid, cmin,
                                                   cmax))
        if n == 0:
            return 0, None
        return n, [name for name, k in zip(_TIE_RULES, agree, strict=True) if k == n]
    xs = cast(x, dt)
    sd = cast(s, dt)
    if np.ndim(xs) == 2 and np.ndim(sd) == 1:  # one step per row
        sd = sd[:, None]
    sd = sd[()]
    good = np.isfinite(sd) & (sd > 0)  # no step in this dtype: nothing computed in it
    if not np.any(good):
        return 0, None
    half = dt.type(0.5)

    def on(qq, tt):
        if mid:  # thresholds at integers: codes t − 1 | t
            with np.errstate(over="ignore", invalid="ignore"):
                return (qq == tt) | ((qq.astype(dt) - half).astype(np.float64) == tt - 0.5)
        return qq == tt  # thresholds at j + ½: codes j | j + 1

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        q = (xs / sd).astype(np.float64)
        t = np.rint(q) if mid else np.floor(q) + 0.5
        # the elements on a threshold of x/s; then of x·(1/s) (torch's reciprocal form,
        # where 1/s is finite in this dtype) among them only: a tie however the
        # implementation divides
        at = np.isfinite(q) & np.broadcast_to(good, np.shape(q)) & on(q, t)
        if not np.any(at):
            return 0, None
        r = np.broadcast_to(dt.type(1) / sd, np.shape(xs))[at]
        q2 = np.where(np.isfinite(r), (xs[at] * r).astype(np.float64), q[at])
    t, cc = t[at], np.asarray(c)[at]
    lower, upper = (t - 1, t) if mid else (t - 0.5, t + 0.5)
    keep = np.isfinite(q2) & on(q2, t)
    near = keep & (lower >= cmin) & (upper <= cmax) & ((cc == lower) | (cc == upper))
    n = int(np.count_nonzero(near))
    if n == 0:
        return 0, None
    c = cc
    cn, lo_, up_, tn = c[near], lower[near], upper[near], t[near]
    even = np.where(np.mod(lo_, 2) == 0, lo_, up_)
    away = np.where(tn > 0, up_, lo_)
    rules = {"floor (ties up)": up_, "half to even": even, "half away from zero": away}
    ok = [name for name, want in rules.items() if np.all(cn == want)]
    return n, ok


# --- the diagnosis -----------------------------------------------------------------------------

def compute_dtypes(dtype):
    """The dtypes an implementation with outputs of ``dtype`` may compute ``w/s`` in: that
    dtype and the wider of float32 and float64, narrowest first."""
    out = [np.dtype(dtype)]
    for d in (np.dtype(np.float32), np.dtype(np.float64)):
        if _eps(d) < _eps(out[-1]):
            out.append(d)
    return out


def n_distinct(codes):
    """The number of distinct values of an integer array (a count per value where their
    range is small: no sort of the whole array)."""
    if codes.size == 0:
        return 0
    lo, hi = int(codes.min()), int(codes.max())
    if hi - lo < 1 << 22:
        flat = codes.reshape(-1)
        counts = np.zeros(hi - lo + 1, dtype=np.intp)
        for s in range(0, flat.size, ROWS_CHUNK):  # no full-size temporary
            counts += np.bincount(np.subtract(flat[s:s + ROWS_CHUNK], lo, dtype=np.intp),
                                  minlength=hi - lo + 1)
        return int(np.count_nonzero(counts))
    return int(np.unique(codes).size)


def levels_hint(codes, bits, lattice):
    """``"uses 4 of 256 levels: is it a 2-bit output?"`` when the codes span a range that
    fewer bits hold (the output of a narrower quantizer checked at ``bits``), else ``""``."""
    from .recover import code_range

    if codes.size == 0 or bits < 2:
        return ""
    lo, hi = int(codes.min()), int(codes.max())
    cmin, cmax = code_range(bits, lattice)
    for b in range(1 if lattice != "midtread" else 2, bits):
        blo, bhi = code_range(b, lattice)
        if blo <= lo and hi <= bhi:
            return (f"uses {n_distinct(codes)} of {cmax - cmin + 1} levels: is it a "
                    f"{b}-bit output?")
    return ""


def _conflict(x, rows_c, bits, lattice, thresholds, scale_exp=0):
    """Why no step gives the codes: the two elements whose bounds cross (or one element that
    no step can give its code), in words (weights and steps in the caller's units: times
    ``2**-scale_exp``)."""
    def un(v):
        with np.errstate(over="ignore", under="ignore"):
            return float(np.ldexp(v, -scale_exp))

    def part(i):
        lo, hi, bad = step_bounds(x[i], rows_c[i], bits, lattice, thresholds)
        if np.any(bad):
            j = int(np.flatnonzero(bad)[0])
            return f"no step maps w = {un(x[i, j]):.6g} to code {int(rows_c[i, j])}"
        a, b = int(np.argmax(lo)), int(np.argmin(hi))
        if lo[a] > hi[b]:
            return (f"s ≥ {un(lo[a]):.6g} to map w = {un(x[i, a]):.6g} to code "
                    f"{int(rows_c[i, a])}, but s ≤ {un(hi[b]):.6g} to map "
                    f"w = {un(x[i, b]):.6g} to code {int(rows_c[i, b])}")
        return None

    if x.shape[0] > 1:
        # the slices whose bounds cross, all at once (:func:`step_interval`: max lo_i > min
        # hi_i or an impossible element, what ``part`` tests row by row); the words for the
        # first of them only (before: ``part`` on every slice, 12 s on 524,288 groups)
        lo_r, hi_r, bad_r = step_interval(x, rows_c, bits, lattice, thresholds)
        crossed = np.flatnonzero(bad_r | (lo_r > hi_r))
        first = part(int(crossed[0])) if crossed.size else None
        return f"{crossed.size} of {x.shape[0]} slices, e.g. {first}" if crossed.size else \
            "the slices' intervals are empty within the tolerance"
    first = part(0)
    return first if first is not None else "the interval is empty within the tolerance"


def _rel_dql(w, q, sww=None, out=None):
    """``‖w − q‖²/‖w‖²`` (``sww``: ``‖w‖²`` where the caller has it); one temporary, or
    none with ``out`` (an array of the shape of ``w`` to work in; it may be ``q``)."""
    sww = float(np.sum(w * w)) if sww is None else sww
    d = np.subtract(w, q, out=out)
    return float(np.sum(np.square(d, out=d))) / sww if sww > 0 else 0.0


def _lsq_values(x, v, out=None):
    svv = np.einsum("ij,ij->i", v, v)
    a = np.where(svv > 0, np.einsum("ij,ij->i", x, v) / np.where(svv > 0, svv, 1.0), 0.0)
    return np.multiply(a[:, None], v, out=out)


def _term_ulps(u, rec, terms, dtype):
    """The largest ``|cast(rec) − u|`` in units of the spacing of ``dtype`` at ``terms`` (the
    magnitude of the terms an offset reading adds; the unit of its tolerance)."""
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(cast(rec, dtype).astype(np.float64) - u)
        d = err / spacing(terms, dtype)
    return float(np.max(d)) if d.size else 0.0


#: The α rule of an integer zero point's output ``α·(u − z)`` (read as ``β + α·v``, β = −z·α).
ZP_RULE = "least squares ⟨w,ℓ⟩/⟨ℓ,ℓ⟩ of its levels ℓ = u − z (integer zero point)"


def zero_point_levels(v, alphas, betas):
    """``(mask, ℓ)``: the slices read as ``β + α·v`` whose levels ``v + β/α`` are integers
    ``u − z`` (within 1e-6: β = −α·v₀ as the reading fits it), an integer zero point's output
    ``α·(u − z)``, and those levels ``ℓ`` (rows of ``v`` elsewhere). ``v`` on integers
    (midtread) or on half-integers (midrise: ``α·(u − z)`` read as ``α·(c + ½) + α/2``, the
    midrise reading of four equally spaced levels) alike."""
    with np.errstate(divide="ignore", invalid="ignore"):
        j = np.where(alphas > 0, betas / np.where(alphas > 0, alphas, 1.0), 0.0)
    v0 = v[:, 0] if v.shape[1] else np.zeros(v.shape[0])
    t = v0 + j
    ti = np.rint(t)
    mask = (betas != 0) & (alphas > 0) & (np.abs(t - ti) <= 1e-6 * np.maximum(1.0, np.abs(ti)))
    return mask, v + np.where(mask, ti - v0, 0.0)[:, None]


def diagnose(rows_w, rows_u, rows_c, alphas, betas, lattice, offset, dtype, bits,
             straight_through, max_ulps, alpha_rtol, step_rtol=None, scale_exp=0, param=None,
             levels=None):
    """The components (a list of :class:`Component`) for slices of one tensor.

    ``rows_*`` are (slices, n) float64 / int arrays; ``lattice`` a name of
    :data:`vecq_ref.check.recover.LATTICES`; ``offset`` "none", "mean" or "fitted";
    ``alpha_rtol`` the tolerance of the α rules, ``step_rtol`` that of the step rules
    (default :func:`step_tol`); ``scale_exp``: the rows are the caller's times
    ``2**scale_exp`` (verify's working scale), and the text gives steps and weights in the
    caller's units. ``param``: ``{lattice: q}`` with ``q.values`` and ``q.codes`` (slices, n)
    of ``quantize(rows_w, bits, method="param", lattice=lattice, axis=0)`` where the caller
    has them (not quantized again). ``levels``: ``rows_c + off`` as float64 where the caller
    has it (read only).
    """
    fam = family(lattice)
    off = 0.5 if fam == "midrise" else 0.0
    nrows, n = rows_w.shape
    # (w itself where every β is +0: w − 0 is w, bit for bit)
    x = rows_w if not np.any(betas) and not np.any(np.signbit(betas)) else \
        rows_w - betas[:, None]
    if levels is not None and levels.shape == rows_c.shape and \
            np.array_equal(levels[:1], rows_c[:1] + off):
        v = levels
    else:
        v = rows_c.astype(np.float64)
        v += off
    # (β + α·v as α·v where every β is 0: the same squares of w minus it)
    rec = alphas[:, None] * v if not np.any(betas) else betas[:, None] + alphas[:, None] * v
    # one array of the rows' shape to work in (each fresh full-size temporary costs its
    # page faults, more than the arithmetic on it)
    scratch = np.empty_like(rows_w)
    tol = alpha_rtol
    total = float(np.sum(rows_w * rows_w))
    out = []

    # lattice -----------------------------------------------------------------------------
    lname = {"midrise": "midrise", "midtread": "midtread narrow",
             "midtread-full": "midtread full range"}[lattice]
    lo, hi = int(rows_c.min()), int(rows_c.max())
    btxt = {"none": "", "mean": ", β = mean(w)", "fitted": ", β fitted"}[offset]
    found = f"{lname}{btxt}"
    lat_detail = f"codes {lo}..{hi}, {n_distinct(rows_c)} levels"

    param = dict(param or {})  # VecQ-param per row of w: quantized once, read three times

    def param_rows(lat):
        if lat not in param:
            param[lat] = quantize(rows_w, bits, method="param", lattice=lat, axis=0)
        return param[lat]

    def param_rel(lat, centre):
        if not centre:
            return _rel_dql(rows_w, param_rows(lat).values, total, scratch)
        xx = rows_w - rows_w.mean(axis=1, keepdims=True)
        vals = quantize(xx, bits, method="param", lattice=lat, axis=0).values  # per row
        vals = vals + rows_w.mean(axis=1, keepdims=True)
        return _rel_dql(rows_w, vals, total, vals)

    hint = levels_hint(rows_c, bits, lattice)
    if hint:
        found += f"; {hint}"
    ref_lat = "midtread" if (fam == "midtread" and bits >= 2) else "midrise"
    try:
        base = param_rel("midrise", False)
        here = base if (ref_lat == "midrise" and offset == "none") else \
            param_rel(ref_lat, offset != "none")
        lat_cost = here - base
    except ValueError:
        base, lat_cost = None, None
    out.append(Component("lattice", found, "midrise, β = 0", lat_cost, [lname + btxt], None,
                         lattice in ("midrise", "midtread") and offset == "none", lat_detail))

    # step rule -----------------------------------------------------------------------------
    rs = step_tol(dtype, n) if step_rtol is None else step_rtol

    def bounds(th):
        lo_, hi_, bad = step_interval(x, rows_c, bits, lattice, th)
        return lo_, hi_, bool(np.any(lo_ > hi_ * (1 + rs) ** 2)) or bool(np.any(bad))

    sigmas = _sigmas(rows_w)  # for every call of step_candidates below

    def named(th_, los_, his_):
        cands = step_candidates(rows_w, x, bits, lattice, th_, sigmas)
        lo_t, hi_t = los_ * (1 - rs), his_ * (1 + rs)
        ok = {k: (lo_t <= s_) & (s_ <= hi_t) for k, (s_, _) in cands.items()}
        # α = the step (no refit): the rule must also give α itself (μL2Q, abs-max), in the
        # slices where some rule does
        with np.errstate(divide="ignore", invalid="ignore"):
            ok_a = {k: ok[k] & ((np.abs(s0 / alphas - 1) <= tol) | (np.abs(s1 / alphas - 1)
                                                                     <= tol))
                    for k, (s1, s0) in cands.items()}
        # (in every slice, or in none: a rule that gives α in a few of many slices by
        # chance must not drop a step rule that holds in all of them)
        use_a = bool(np.all((lo_t <= alphas) & (alphas <= hi_t) & np.any(
            np.stack(list(ok_a.values())), axis=0)))
        ok_b = ok_a if use_a else ok
        return [k for k in cands if np.all(ok_b[k])]

    options = [fam] + (["midrise"] if fam == "midtread" else [])
    th, los, his, empty, matches = fam, None, None, True, []
    for th_ in options:
        lo_, hi_, empty_ = bounds(th_)
        if empty_:
            continue
        m_ = named(th_, lo_, hi_)
        if los is None or (m_ and not matches):
            th, los, his, empty, matches = th_, lo_, hi_, False, m_
    if los is None:
        los, his, empty = bounds(fam)
    if nrows == 1:
        interval = f"[{V.scaled_str(los[0], scale_exp)}, {V.scaled_str(his[0], scale_exp)}]"
        sig = float(_sigmas(rows_w[:1])["σ (ddof 0)"][0])
        if sig > 0 and math.isfinite(his[0]):
            interval += f" = [{los[0] / sig:.6g}, {his[0] / sig:.6g}]·σ₀"
    else:
        interval = None
    if empty:
        found = ("none: no single step gives these codes "
                 f"({_conflict(x, rows_c, bits, lattice, fam, scale_exp)})")
    elif matches:
        found = summarize_steps(matches)
    else:
        found = "unknown: none of the λ·σ tables or abs-max scales tested"
    step_detail = "" if empty else (
        (f"s ∈ {interval}" if interval else f"one interval of steps per slice ({nrows})") +
        f"; tolerance {rs:.2g}")
    if th != fam:
        found += "; midrise thresholds round(x/s − ½) on integer levels (the +½ dropped)"
    try:
        # per row (x is w itself where every β is 0: the quantization above, not run again)
        vq = (param_rows(ref_lat) if not np.any(betas) else
              quantize(x, bits, method="param", lattice=ref_lat, axis=0)).codes
        v_ref = vq.astype(np.float64)
        v_ref += off
        sxx_all = total if x is rows_w else float(np.sum(x * x))
        step_cost = (_rel_dql(x, _lsq_values(x, v, scratch), sxx_all, scratch) -
                     _rel_dql(x, _lsq_values(x, v_ref, scratch), sxx_all, scratch)) \
            * sxx_all / total if total > 0 else 0.0
    except ValueError:
        step_cost = None
    vecq_step = "λ_k × std, the exact or 4-decimal table (± 1e-7, ddof 0 or 1)"
    out.append(Component("step rule", found, vecq_step, step_cost, matches, rs,
                         any(is_vecq_step_rule(m) for m in matches), step_detail))

    # rounding ------------------------------------------------------------------------------
    alpha_is_step = (not empty) and bool(np.all((alphas >= los * (1 - rs))
                                                & (alphas <= his * (1 + rs))))
    if not empty:
        # the step the ties are read at: α itself when α is the step, else each matching
        # rule's step (the one that puts the most elements exactly on a threshold)
        tries = [None] if (alpha_is_step or not matches) else matches

        cands_th = None if alpha_is_step or not matches else \
            step_candidates(rows_w, x, bits, lattice, th, sigmas)
        mid = np.where(np.isfinite(his), 0.5 * (los + his), los)

        def votes(dt):
            n_near, ok_all = 0, None
            for name in tries:
                s_rows = alphas if alpha_is_step else (
                    cands_th[name][0] if name is not None else mid)
                n_t, ok_t = rounding_votes(x, rows_c, s_rows, bits,
                                           lattice, dt, th)
                if n_t > n_near:
                    n_near, ok_all = n_t, (set(ok_t) if ok_t is not None else None)
            return n_near, ok_all

        # the quotients w/s are read in the output dtype, then in the wider ones an
        # implementation may have divided in: the first dtype whose ties agree on a rule. Ties
        # that disagree in a dtype say that w/s was not rounded to it (a float16 output
        # computed in float32 has many float16 "ties" that vote both ways), unless it is the
        # widest: then the rule is none of the three.
        dts = compute_dtypes(dtype)
        seen = []
        rfound, rmatch = None, []
        for k_dt, dt in enumerate(dts):
            n_near, ok_all = votes(dt)
            if n_near == 0:
                continue
            where = "" if dt == np.dtype(dtype) else f" in {dt} arithmetic"
            if ok_all or k_dt == len(dts) - 1:
                rmatch = [k for k in ("floor (ties up)", "half to even", "half away from zero")
                          if k in ok_all]
                rfound = (" or ".join(rmatch) or "none of floor/half-even/half-away") + \
                    f" ({n_near} element(s) at a threshold{where})"
                break
            seen.append(f"the {n_near} ties in {dt} disagree")
        if rfound is None and seen:
            wider = " or ".join(str(d) for d in dts[len(seen):])
            rfound = (f"not identifiable ({'; '.join(seen)}: w/s was not rounded to it; "
                      f"no element at a threshold in {wider})")
        elif rfound is None:
            rfound = "not identifiable (no element at a threshold)"
    else:
        rfound, rmatch = "not identifiable (no single step)", []
    vecq_round = "floor (midrise) / half away (midtread)"
    out.append(Component("rounding", rfound, vecq_round, 0.0 if rmatch else None, rmatch, rs,
                         None if not rmatch else ("floor (ties up)" in rmatch
                                                  if fam == "midrise"
                                                  else "half away from zero" in rmatch)))

    # α rule ------------------------------------------------------------------------------------
    svv = np.einsum("ij,ij->i", v, v)
    sxv = np.einsum("ij,ij->i", x, v)
    sxx = np.einsum("ij,ij->i", x, x)
    a_star = np.where(svv > 0, sxv / np.where(svv > 0, svv, 1.0), 0.0)
    half = 2 ** (bits - 1)
    amax = _abs_max_rows(x)
    cands = {"least squares ⟨w,v⟩/⟨v,v⟩": a_star,
             "norm-matched ‖w‖/‖v‖": np.sqrt(sxx) / np.sqrt(np.where(svv > 0, svv, 1.0)),
             "abs-max full max|w|/(2^(k−1)−½)": amax / (half - 0.5)}
    if half > 1:
        cands["abs-max narrow max|w|/(2^(k−1)−1)"] = amax / (half - 1)
    zmask, ell = zero_point_levels(v, alphas, betas)
    if np.any(zmask):
        # an integer zero point (β = −z·α): α is the least-squares α of its levels u − z
        s_ll = np.einsum("ij,ij->i", ell, ell)
        a_zp = np.where(s_ll > 0, np.einsum("ij,ij->i", rows_w, ell) /
                        np.where(s_ll > 0, s_ll, 1.0), 0.0)
        cands[ZP_RULE] = np.where(zmask, a_zp, a_star)
    devs = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, a in cands.items():
            devs[k] = float(np.max(np.abs(alphas / a - 1.0)))
        # (not where α is the least-squares α of its levels u − z: that α is a refit, up to
        # several per cent from the step that chose the codes, though it lies in their interval)
        if alpha_is_step and not (ZP_RULE in devs and devs[ZP_RULE] <= tol):
            devs["the step, no refit"] = 0.0
    # the closest-fitting rule first; "the step" last: it fits by construction whenever α
    # lies in the interval of steps, as α* or a named scale may
    amatch = sorted((k for k, d in devs.items() if d <= tol),
                    key=lambda k: (k == "the step, no refit", devs[k]))
    if amatch:
        d = devs[amatch[0]]
        afound = amatch[0]
        a_detail = f"α/rule − 1 = {d:.2g}; tolerance {tol:.2g}"
        if len(amatch) > 1:
            afound += " ≈ " + ", ".join(amatch[1:])
    else:
        afound = "unknown: none of least squares, norm-matched, abs-max or the step"
        a_detail = (f"α/α* − 1 = {devs['least squares ⟨w,v⟩/⟨v,v⟩']:.3g}; "
                    f"tolerance {tol:.2g}")
    excess = float(np.sum((alphas - a_star) ** 2 * svv)) / total if total > 0 else 0.0
    full = "abs-max full max|w|/(2^(k−1)−½)"
    if lattice == "midtread" and amatch and full in amatch and \
            "abs-max narrow max|w|/(2^(k−1)−1)" not in amatch and \
            "least squares ⟨w,v⟩/⟨v,v⟩" not in amatch:
        # (where VecQ's own least-squares α fits as well, within a tolerance wide enough
        # at a few subnormal spacings for both, the narrow lattice is the reading: VecQ's)
        # torch.ao / torchao: scale for −2^(k−1)..2^(k−1)−1; the code −2^(k−1) just unused
        out[0].found = out[0].found.replace("midtread narrow", "midtread full range") + \
            f" (code {-half} unused: the largest |w| is positive)"
        out[0].matches = ["midtread full range" + btxt]
        out[0].is_vecq = False
    if np.any(zmask) and amatch and amatch[0] == ZP_RULE:
        excess = float(np.sum((alphas - cands[ZP_RULE]) ** 2 * np.einsum(
            "ij,ij->i", ell, ell))) / total if total > 0 else 0.0
    out.append(Component("α rule", afound, "least squares ⟨w,v⟩/⟨v,v⟩", excess, amatch, tol,
                         bool(amatch) and amatch[0].startswith("least squares"), a_detail))

    # straight-through ------------------------------------------------------------------------
    if straight_through:
        sfound = "yes: wq is the float rounding of w + (α·v − w)"
        s_detail = f"up to {max_ulps:g} ulps from α·v (+ β)"
    else:
        sfound = "not needed: wq is α·v (+ β) to the ulps tolerance"
        s_detail = f"up to {max_ulps:g} ulps"
        if np.any(betas):
            # the tolerance of an offset reading is in ulps of the terms |α·v| + |β| (each
            # value carries their rounding, and α, β are fitted to rounded values): counted in
            # ulps of a value near zero, the same few ulps of the terms are many
            t_ulps = _term_ulps(rows_u, rec, np.abs(alphas[:, None] * v) + np.abs(betas)[:, None],
                                dtype)
            if t_ulps != max_ulps:
                s_detail = (f"up to {t_ulps:g} ulps of |α·v| + |β| (the tolerance's unit); "
                            f"{max_ulps:g} ulps of the value itself near zero: the rounding of "
                            "the terms and of the fitted α and β, not a gap")
    out.append(Component("straight-through", sfound, "either",
                         _rel_dql(rows_w, rows_u, total, scratch) -
                         _rel_dql(rows_w, rec, total, rec), [],
                         None, True, s_detail))
    return out


__all__ = ["Component", "accumulation_dtype", "accumulation_tol", "cast", "compute_dtypes",
           "diagnose", "levels_hint", "rel_tol", "representation_error", "rounding_votes",
           "smallest_subnormal", "spacing", "step_bounds", "step_candidates", "step_tol",
           "table_text", "unit_roundoff"]
