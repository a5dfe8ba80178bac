"""``verify()``: check someone else's quantized tensor against VecQ (docs/theory.md §2, §3, §7).

Given the float weights ``w`` and a quantized output ``wq`` (or its ``codes`` and ``alpha``),
:func:`verify` answers, per tensor and per slice:

1. **Lattice.** Does ``wq`` lie on ``β + α·v`` with codes that fit ``bits``: midrise
   ``v = c + ½``, midtread narrow ``v = c ∈ ±(2^(k−1) − 1)`` or midtread full range
   ``−2^(k−1) … 2^(k−1) − 1``, each with ``β = 0``, ``β = mean(w)`` or a fitted β? α, β and
   the codes are recovered from ``wq`` alone (:mod:`vecq_ref.check.recover`): values are
   grouped into at most ``2^k`` levels and only lattices whose codes fit ``bits`` are
   admissible, so no "α = 1 ulp, codes ±10⁹" is ever proposed. The reconstruction, cast to
   ``wq``'s dtype, must agree with ``wq`` within ``ulps`` units in the last place, or within
   the float rounding of a straight-through output ``w + (wq − w)`` (then said). A tensor
   that fits only slice by slice is reported with the axis to pass.
2. **Driving (α).** Is α the least-squares optimum ``α* = ⟨w,v⟩/⟨v,v⟩`` for those codes
   (relative deviation ≤ ``alpha_rtol``)? The excess DQL of the given α is
   ``(α − α*)²·⟨v,v⟩``, reported relative to ``‖w‖²``.
3. **Lloyd condition.** Are the codes the nearest levels of ``w/α`` (``(w − β)/α`` on an offset
   lattice)? The count of codes that are
   not (ties count as nearest) is reported; VecQ-param's codes come from the step ``λ_k·σ``,
   not from α, so a few violations are normal and do not fail the verdict.
4. **Gaps.** The relative DQL of ``wq`` minus that of VecQ-param and of the exact optimum
   (docs/theory.md §4.3), each computed the same way from the values returned, rounded to ``wq``'s
   dtype like ``wq`` (with only codes and α given: from the lattice values ``α·v`` of each),
   never from ``Quantized.loss``. The exact optimum is the smallest any lattice output with
   the same ``bits`` can reach before rounding; rounding to the output dtype moves each
   relative DQL by at most ``Σ(2|w − wq|·u|wq| + (u·wq)²)/‖w‖²`` (``tolerances["dql_rounding"]``,
   printed for float16), so in float16 the exact optimum's output can be a little worse than
   VecQ-param's.
5. **Conventions.** Which entries of :mod:`vecq_ref.check.conventions` reproduce ``wq``: exactly
   (bit for bit in ``wq``'s dtype) or within ``ulps``.

6. **Components** (:mod:`vecq_ref.check.diagnose`): lattice, step rule, rounding, α rule and
   straight-through, each named against the rules released implementations use (docs/theory.md
   §7.1) with its relative-DQL cost and tolerance; printed as a table.

The verdict (conformance, :func:`verify`'s docstring) passes when (1) holds on a VecQ
lattice (midrise or narrow midtread, no offset), α is least-squares optimal within
``alpha_rtol``, and the step is one of VecQ's (λ_k·σ by the released tables and conventions,
or a search's step). The relative DQL against VecQ-param's (within ``(1 + dql_rtol)`` times
it plus twice ``dql_rounding``) is the quality, reported apart. Where ``wq`` is made of
subnormals so small that every output of its size lies within ``ulps`` of some k-bit lattice
(``max|wq| ≤ (2·ulps − 1)·η·(2^(k−1) − ½)``), a failure to place it is no evidence against
it: the verdict is then INCONCLUSIVE (``identifiable`` False, not passed) instead of a FAIL
naming a lattice rule. The tolerances used are part
of the report (``tolerances``), each derived from two errors kept apart:

- **representation**: a value ``x`` rounded to the output dtype is off by at most
  ``e(x) = max(u·|x|, η/2)``: ``u = ε/2`` of it (relative) where ``|x|`` is normal, and half
  the subnormal spacing ``η`` (the dtype's smallest positive value; absolute) below the
  smallest normal value ``η/(2u)``, where the two meet (float16: ``η = 2⁻²⁴ ≈ 6e-8`` below
  ``6.1e-5``; float32: ``η = 1.4e-45`` below ``1.2e-38``). α recovered from ``wq`` by least
  squares is then off by at most ``Σ|ṽ|·e(wq) / (α·Σṽ²)`` (``= u`` for β = 0 and normal
  values, larger where the levels are a few ``η`` apart; ``ṽ = v − mean(v)`` when β is fitted;
  plus the straight-through allowance when needed), ``r`` relative to the α read back; the
  deviation is reported relative to α* ``≥ α·(1 − r)``, so the bound is ``r/(1 − r)`` —
  ``representation_rtol``; an ``alpha`` passed in carries the ``u`` of its own dtype (with
  codes and no ``wq``, at least that of the output dtype assumed, ``w``'s). A bf16
  or fp8 (``ml_dtypes``) output is held to its own ``ε``, ``η`` and ulps. The quotients
  ``w/s`` an implementation rounds move the interval of steps that give the codes by ``u`` of
  the output dtype. The ``ulps``
  of the lattice test are counted in the dtype's own spacing, ``η`` among the subnormals, so a
  subnormal output is held to its own resolution: no slack of the smallest normal value,
  which would let distinct tiny values pass as one level (α = 0 is the lattice of an all-zero
  output only). Spacings and casts saturate at the dtype's largest finite value (its top
  binade's ulp), so values at the maximum get a verdict, never an overflow.
- **accumulation**: a sum over ``n`` terms (σ, ⟨w,v⟩, ⟨v,v⟩) is off by ``8ε + 4√n·ε``
  (a few roundings plus the random-walk growth), with ``ε`` of the wider of the output dtype
  and float32 — nobody accumulates in float16 — (``accumulation_rtol``,
  ``accumulation_dtype``; n the slice length).

``alpha_rtol = max(1e-6, representation + accumulation)``; ``step_rtol = u + accumulation``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from .. import _layout
from .. import _validation as V
from ..formats._block import BlockTensor
from ..lattice import code_range, level_offset
from ..quantize import quantize
from . import _floats, conventions
from . import _recover_ste as ste_mod
from . import diagnose as diagnose_mod
from . import recover as recover_mod

#: The printed report's line width (characters).
REPORT_WIDTH = 100
#: Default ``ulps`` tolerance by the byte size of ``wq``'s float dtype (fp8: 1 byte).
DEFAULT_ULPS = {1: 2, 2: 2, 4: 4, 8: 256}
#: The smallest default ``alpha_rtol`` (a float64 α has ~1e-14 of accumulation error; an α
#: within 1e-6 of α* costs under 1e-12 of relative DQL).
ALPHA_RTOL_FLOOR = 1e-6
DEFAULT_DQL_RTOL = 1e-3
_INT_TOL_COARSE = 0.1  # integrality tolerance when proposing α; the ulps test decides
#: The exact search (the exact optimum's gap and the ``vecq_ref_exact`` convention) runs only
#: where ``N·(2^(k−1) − 1)``, its breakpoints summed over the slices, is at most this: 12 bits
#: on 4096 weights (2²³) takes about a second, 16 bits on 4096 weights (2²⁷) minutes.
EXACT_BREAKPOINTS = 2 ** 24
#: ... or, in groups (``group_size``), where each group has at most this many breakpoints,
#: whatever their total: small groups take the search's fast swept path, about 0.2 µs per
#: weight at 4 bits in groups of 32 (3.4 s on one thread for 4096 × 4096), linear in the
#: number of groups (8 bits in groups of 32: 4064 per group).
EXACT_GROUP_BREAKPOINTS = 2 ** 12


# --- ulps ----------------------------------------------------------------------------------

ulp_distance = _floats.ulp_distance


# --- lattice recovery ----------------------------------------------------------------------

@dataclass
class _Row:
    lattice: str | None
    alpha: float
    codes: np.ndarray | None
    max_ulps: float
    in_range: bool
    ok: bool
    name: str | None = None      # the recover.LATTICES name (narrow / full-range midtread)
    offset: str = "none"         # β: "none", "mean" or "fitted"
    beta: float = 0.0
    ste: bool = False            # needed the straight-through allowance
    why: str = ""


class _Rows:
    """The readings of all slices, column by column (what a list of :class:`_Row` holds):
    no Python object per slice where :func:`~vecq_ref.check.recover.recover_rows` read
    them all. ``codes`` is (slices, n) int64; ``has_codes`` where a slice has codes."""

    def __init__(self, nrows, n):
        self.lattice = np.full(nrows, None, dtype=object)
        self.name = np.full(nrows, None, dtype=object)
        self.offset = np.full(nrows, "none", dtype=object)
        self.why = np.full(nrows, "", dtype=object)
        self.alpha = np.zeros(nrows)
        self.beta = np.zeros(nrows)
        self.max_ulps = np.zeros(nrows)
        self.codes = np.zeros((nrows, n), dtype=np.int64)
        self.has_codes = np.zeros(nrows, dtype=bool)
        self.in_range = np.zeros(nrows, dtype=bool)
        self.ok = np.zeros(nrows, dtype=bool)
        self.ste = np.zeros(nrows, dtype=bool)

    def __len__(self):
        return self.alpha.size

    def set(self, i, row):
        """Row ``i`` from one :class:`_Row`."""
        self.lattice[i], self.name[i], self.offset[i] = row.lattice, row.name, row.offset
        self.why[i] = row.why
        self.alpha[i], self.beta[i], self.max_ulps[i] = row.alpha, row.beta, row.max_ulps
        self.has_codes[i] = row.codes is not None
        if row.codes is not None:
            self.codes[i] = row.codes
        self.in_range[i], self.ok[i], self.ste[i] = row.in_range, row.ok, row.ste

    def set_read(self, got):
        """The rows :func:`~vecq_ref.check.recover.recover_rows` read (``got.read``)."""
        m = got.read
        for name in set(got.lattice[m].tolist()):  # a few names: one pass each
            sel = got.lattice == name
            self.name[sel] = name
            self.lattice[sel] = recover_mod.family(name)
        self.alpha[m] = got.alpha[m]
        # (in place: boolean indexing would copy the read rows' codes first)
        np.copyto(self.codes, got.codes, where=m[:, None])
        self.max_ulps[m] = got.max_ulps[m]
        self.ste[m] = got.straight_through[m]
        self.has_codes[m] = self.in_range[m] = self.ok[m] = True

    def count(self, offset_none=False):
        """Slices read (and with β = 0, with ``offset_none``)."""
        m = self.ok & (self.offset == "none") if offset_none else self.ok
        return int(np.count_nonzero(m))


def _alpha_format(fmt):
    """The format α is held in for an output of ``fmt``: its accumulation dtype, at the same
    working scale."""
    return _floats.fmt(diagnose_mod.accumulation_dtype(_floats.dtype_of(fmt)),
                       fmt.exp if isinstance(fmt, _floats.Scaled) else 0)


def _alpha_representation_rtol(rows_u, rows_w, Vv, alphas, offset, dtype, straight_through):
    """Bound on the relative error of α recovered from ``wq`` by least squares when each value
    is ``α·v (+ β)`` rounded to ``dtype``: ``Σ|ṽ|·e / (α·Σṽ²)`` with ``e = max(u·|wq|, η/2)``
    (``u = ε/2``, ``η`` the subnormal spacing: the error is absolute below the smallest normal
    value; plus ``2·ulp(|w| + |wq|)`` for a straight-through output) and ``ṽ = v``
    (``ṽ = v − mean(v)`` when β was fitted too). For β = 0, normal values and no
    straight-through this is ``u`` itself (as a bound relative to α*,
    :func:`_relative_to_alpha_star`: ``u/(1 − u)``). An α below the smallest normal value of
    the dtype it is accumulated in (:func:`~vecq_ref.check.diagnose.accumulation_dtype`: float32 for
    float16 and float32 outputs, float64 for float64) is itself held to that dtype's
    ``η/2`` (absolute), a relative error ``η/(2α) > u`` that every level inherits: it is
    added."""
    num = np.empty(alphas.shape)
    den = np.empty(alphas.shape)
    for s in _row_chunks(rows_u):  # row by row: the same sums in chunks of rows
        e = diagnose_mod.representation_error(rows_u[s], dtype)
        if straight_through:
            e = e + 2.0 * diagnose_mod.spacing(np.abs(rows_u[s]) + np.abs(rows_w[s]), dtype)
        v = Vv[s]
        vt = v - v.mean(axis=1, keepdims=True) if offset != "none" else v
        num[s] = np.sum(np.abs(vt) * e, axis=1)
        den[s] = alphas[s] * np.sum(vt * vt, axis=1)
    a_fmt = _alpha_format(dtype)
    half_eta = 0.5 * diagnose_mod.smallest_subnormal(a_fmt)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        sub = (alphas > 0) & (diagnose_mod.unit_roundoff(a_fmt) * alphas < half_eta)
        r = r + np.where(sub, half_eta / np.where(sub, alphas, 1.0), 0.0)
    return _relative_to_alpha_star(float(np.max(r)) if r.size else 0.0)


def _relative_to_alpha_star(r):
    """A bound ``r`` on ``|α − α*|/α`` (relative to the recovered or given α) as one on
    ``|α − α*|/α*``, the relative deviation verify reports: ``α* ≥ α·(1 − r)``, so
    ``r/(1 − r)`` (inf for ``r ≥ 1``). Where α is a few subnormal spacings (``r`` of a few
    parts in a thousand) the two differ in the third digit."""
    return r / (1.0 - r) if r < 1.0 else math.inf


def _fit(u, c, off):
    v = c + off
    vv = float(v @ v)
    return float(u @ v) / vv if vv > 0 else 0.0


def _recover_row(u, w, dtype, bits, lattice, tol_ulps):
    """α, β and codes of one row of ``wq`` (float64 ``u``); ``lattice`` None tries all."""
    lats = (recover_mod.LATTICES if lattice is None else
            ("midrise",) if lattice == "midrise" else ("midtread", "midtread-full"))
    return _row_of(recover_mod.recover(u, w, dtype, bits, lattices=lats, ulps=tol_ulps))


def _row_of(got):
    """The :class:`_Row` of a :class:`~vecq_ref.check.recover.Recovered`."""
    lat = None if got.lattice is None else recover_mod.family(got.lattice)
    in_range = got.codes is not None
    row = _Row(lat, got.alpha if math.isfinite(got.alpha) else 0.0, got.codes, got.max_ulps,
               in_range, got.ok)
    row.name, row.offset, row.beta, row.ste, row.why = (got.lattice, got.offset, got.beta,
                                                        got.straight_through, got.reason)
    return row


def _offset_as_others(rows, rows_q, rows_w, fmt, bits, tol_ulps):
    """Slices read with β = 0 where at least as many read β = mean(w): each re-read on the
    mean-offset lattice (:func:`~vecq_ref.check.recover.as_mean`, codes shifted by
    ``rint(mean(w)/α)``), taken where it fits without the straight-through allowance. In
    float16 a mean within a fraction of a step of ``j·α`` leaves both readings within a few
    ulps; the other slices' offset decides. ``rows`` is updated in place.

    The other way too: where more slices read β = 0 than β = mean(w), each slice read as
    β = mean(w) is re-read with β = 0 (:func:`~vecq_ref.check.recover.recover`, offset
    ``"none"`` only, its lattice) and taken so where that fits, straight-through allowance
    included (VecQ's float16 output through ``w + (v − w)``: a slice whose mean(w) lies
    within a few ulps of ``j·α`` fits both, and the mean reading needs no allowance)."""
    none = np.flatnonzero(rows.ok & (rows.offset == "none"))
    means = np.flatnonzero(rows.ok & (rows.offset == "mean"))
    n_mean = int(means.size)
    if n_mean == 0:
        return
    if n_mean < none.size:
        for i in means.tolist():
            got = recover_mod.recover(rows_q[i], rows_w[i], fmt, bits,
                                      lattices=(rows.name[i],), offsets=("none",),
                                      ulps=tol_ulps)
            if got.ok:
                rows.set(i, _row_of(got))
        return
    for i in none.tolist():
        got = recover_mod.Recovered(rows.name[i], "none", float(rows.alpha[i]), 0.0,
                                    rows.codes[i], float(rows.max_ulps[i]), bool(rows.ste[i]),
                                    True)
        alt = recover_mod.as_mean(rows_q[i], rows_w[i], fmt, bits, got, ulps=tol_ulps)
        if alt is not None and alt.ok and not alt.straight_through:
            rows.set(i, _Row(recover_mod.family(alt.lattice), alt.alpha, alt.codes,
                             alt.max_ulps, True, True, alt.lattice, "mean", alt.beta, False))


def _best_row(u, dtype, lattice, bits, tol_ulps, fit):
    """The lattice whose reconstruction α·(c + off) lies closest to ``u``.

    ``fit(off)`` returns the codes (float) and α to try for a lattice of level offset ``off``.
    """
    best = None
    for lat in (lattice,) if lattice else ("midrise", "midtread"):
        off = level_offset(lat)
        c, a = fit(off)
        rec = _floats.at_caller_scale(a * (c + off), dtype)
        d = float(np.max(ulp_distance(rec, _floats.at_caller_scale(u, dtype))))
        lo, hi = code_range(bits, lat) if (lat == "midrise" or bits >= 2) else (0, 0)
        row = _Row(lat, a, c.astype(np.int64), d, bool(c.min() >= lo and c.max() <= hi),
                   d <= tol_ulps)
        if best is None or row.max_ulps < best.max_ulps:
            best = row
    return best


def _rows_from_alpha(u, alpha, dtype, lattice, bits, tol_ulps):
    def fit(off):
        return (np.rint(u / alpha - off) if alpha > 0 else np.zeros_like(u)), alpha

    return _best_row(u, dtype, lattice, bits, tol_ulps, fit)


def _rows_from_codes(u, c, alpha, dtype, lattice, bits, tol_ulps):
    c64 = c.astype(np.float64)

    def fit(off):
        return c64, (alpha if alpha is not None else _fit(u, c64, off))

    return _best_row(u, dtype, lattice, bits, tol_ulps, fit)


# --- the report ----------------------------------------------------------------------------

@dataclass
class VerifyReport:
    """What :func:`verify` found: two answers. ``passed`` (= ``conforms``) is the
    conformance verdict, "is this VecQ's output?" (:func:`verify` says what that takes);
    ``quality`` is the relative DQL beside VecQ's; ``as_dict()`` is JSON-ready.

    Attributes
    ----------
    passed, conforms : bool, the output is VecQ's (lattice without offset, least-squares α,
        a step of VecQ's); ``reasons`` why not (empty when passed).
    rule : str or None, the VecQ rule the output follows, in words, when it conforms.
    quality : dict, ``relative_dql``, ``vecq_param``, ``vecq_exact`` (None where the exact
        search was not run), ``gap_to_param``, ``gap_to_exact``, ``within_param`` (within
        ``dql_rtol`` of VecQ-param's), ``note``, ``dql_rounding`` and ``reference_lattice``
        (the lattice VecQ-param and VecQ-exact ran on: the output's, printed beside them).
    format_quality : dict or None, the slot for the block-format answer (the output's own
        format's exact optimum: ``format``, ``relative_dql_optimum``, ``gap_to_optimum``,
        …), filled by the block-format diagnosis; None from :func:`verify` itself.
    w_dtype : str, the dtype of ``w``; ``dtype`` is that of ``wq`` (of ``w`` where only
        codes and α were given, ``from_values`` False).
    shape, dtype, bits, lattice, axis, group_size : the tensor and settings (``lattice`` as
        recovered when not given; None when ``wq`` is on no lattice).
    on_lattice : bool, every slice reconstructs as ``α·v`` within ``ulps``.
    codes_in_range : bool, the codes fit ``bits``.
    reconstruction_ulps : float, the largest ulp distance of ``α·v`` from ``wq``.
    alpha, alpha_lsq : float or ndarray per slice: recovered α and the least-squares α*.
    alpha_rel_dev : largest ``|α − α*|/α*`` over the slices.
    alpha_optimal : bool, ``alpha_rel_dev ≤ alpha_rtol``.
    excess_dql, excess_relative_dql : ``Σ(α − α*)²⟨v,v⟩`` and that over ``‖w‖²``.
    lloyd_violations : int, codes that are not a nearest level of ``w/α``.
    codes : ndarray of int64 (not in ``as_dict``); ``code_min``, ``code_max``, ``levels_used``.
    relative_dql, relative_dql_param, relative_dql_exact : of ``wq``, VecQ-param, the exact
        optimum (None when :mod:`vecq_ref.search` is missing or the exact search was not
        run: see ``extra``).
    gap_to_param, gap_to_exact : ``relative_dql`` minus those.
    conventions : list of dicts ``{name, description, exact, match, max_ulps, mismatches}``.
    matches, exact_matches : names of the conventions within ``ulps`` / bit-identical.
    negative_zeros : int, entries of ``wq`` equal to −0.0.
    tolerances : dict (every tolerance the verdict and the components used).
    lattice_name : "midrise", "midtread" (narrow) or "midtread-full"; None off the lattice.
    offset : "none", "mean" (β = mean(w), μL2Q) or "fitted"; beta : β per slice or None.
    straight_through : bool, some value needed the float rounding allowance of
        ``w + (wq − w)`` (``2·ulp(|w| + |wq|)``).
    per_slice_axis : int or None, the axis along which each slice fits its own lattice when
        the tensor as a whole does not.
    identifiable : bool, False when ``wq`` is too close to its dtype's resolution for the
        lattice to be told from the values (subnormals within ``ulps`` of lattices of every
        step up to ``(2·ulps − 1)·η``): ``passed`` is then False and the verdict reads
        INCONCLUSIVE (FAIL if the relative DQL fails too), never a claim about the lattice.
    components : list of :class:`vecq_ref.check.diagnose.Component`: lattice, step rule,
        rounding, α rule, straight-through, each with what was found, VecQ's choice, its
        relative DQL cost and the tolerance used.
    extra : dict, notes; ``"exact_search"``: why the exact search was not run (too many
        breakpoints, :data:`EXACT_BREAKPOINTS`), when it was not.
    """

    shape: tuple
    dtype: str
    bits: int
    lattice: str | None
    axis: int | None
    group_size: int | None
    on_lattice: bool
    codes_in_range: bool
    reconstruction_ulps: float
    alpha: object
    alpha_lsq: object
    alpha_rel_dev: float
    alpha_optimal: bool
    excess_dql: float
    excess_relative_dql: float
    lloyd_violations: int
    codes: np.ndarray | None
    code_min: int | None
    code_max: int | None
    levels_used: int | None
    relative_dql: float
    relative_dql_param: float | None
    relative_dql_exact: float | None
    gap_to_param: float | None
    gap_to_exact: float | None
    conventions: list
    matches: list
    exact_matches: list
    negative_zeros: int
    passed: bool
    reasons: list
    tolerances: dict
    name: str | None = None
    lattice_name: str | None = None
    offset: str | None = None
    beta: object = None
    straight_through: bool = False
    per_slice_axis: int | None = None
    components: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    identifiable: bool = True
    conforms: bool = False
    rule: str | None = None
    quality: dict = field(default_factory=dict)
    format_quality: dict | None = None
    format_report: object = None
    w_dtype: str | None = None
    from_values: bool = True

    def as_dict(self):
        """Every field but ``codes``, as plain Python (lists for per-slice arrays)."""
        out = {}
        for k, v in self.__dict__.items():
            if k == "codes":
                continue
            if k == "components":
                v = [c.as_dict() for c in v]
            if k == "format_report":
                v = None if v is None else v.as_dict()
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, np.generic):
                v = v.item()
            elif isinstance(v, tuple):
                v = list(v)
            if isinstance(v, float) and not math.isfinite(v):
                v = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            out[k] = v
        return out

    def to_json(self, **kwargs):
        """``as_dict()`` as a JSON string."""
        return json.dumps(self.as_dict(), **kwargs)

    def __str__(self):
        return "\n".join(self.lines())

    def lines(self, width=REPORT_WIDTH):
        """The printed report as lines of at most ``width`` characters: a header, the verdict
        (conformance) with its reasons, the quality (relative DQL beside VecQ's), one row per
        component (the finding in words, its numbers on the next line), the Lloyd count and
        the conventions, and the tolerances in a footer."""
        def f(x):
            return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) \
                else f"{x:.6g}"

        out = []

        def put(label, text, indent=2, lw=13):
            """``label`` in a column of ``lw``, ``text`` wrapped beside it (a "- " item with
            a hanging indent)."""
            lead = " " * indent + label.ljust(lw)
            hang = "  " if text.startswith("- ") else ""
            wrapped = textwrap.wrap(text, width=width - len(lead), break_on_hyphens=False,
                                    subsequent_indent=hang) or [""]
            out.append(lead + wrapped[0])
            out.extend(" " * len(lead) + t for t in wrapped[1:])

        head = f"{self.name}: " if self.name else ""
        gran = (f"axis={self.axis}" if self.axis is not None else
                f"group_size={self.group_size}" if self.group_size is not None else "per tensor")
        w_dt = f"w {self.w_dtype}, " if self.w_dtype else ""
        q_src = "wq" if self.from_values else "codes·α in"
        put("", f"{head}{self.shape}, {w_dt}{q_src} {self.dtype}, {self.bits} bits, {gran}",
            indent=0, lw=0)
        inconclusive = not self.identifiable and len(self.reasons) == 1
        if self.passed:
            put("verdict", "PASS: VecQ's output" + (f"; rule: {self.rule}" if self.rule else ""))
        else:
            fr = self.format_report
            if fr is not None:
                # Not VecQ's, but a block format's own rule reproduces it: say that, and print
                # that diagnosis instead of VecQ's components (which would describe a format
                # against a lattice it never claimed).
                what = (f"the {fr.rule}" if fr.rule else
                        f"{fr.label}, departing in {fr.departure}" if fr.departure else fr.label)
                put("verdict", f"FAIL: not VecQ's output; it is {what}")
                put("", "- the block format's own diagnosis follows (vecq_ref.verify(w, wq, "
                    f"format={fr.format!r}) gives it alone)")
                out.extend("  " + t for t in str(fr).splitlines())
                return out
            put("verdict", "INCONCLUSIVE: the lattice cannot be told from the values"
                if inconclusive else "FAIL: not VecQ's output")
            for why in self.reasons:
                put("", "- " + why)
        q = self.quality or {}
        put("quality", f"relative DQL {f(self.relative_dql)}")

        def gap_txt(g):
            if g is None:
                return ""
            return f" (gap {g:+.3g}" + (": better)" if g < 0 else ")")

        # the lattice VecQ-param and VecQ-exact were run on (the output's, recovered)
        on = f" ({q['reference_lattice']})" if q.get("reference_lattice") else ""
        put("", f"VecQ-param{on} {f(self.relative_dql_param)}{gap_txt(self.gap_to_param)}")
        if self.extra.get("exact_search"):
            put("", f"VecQ-exact{on} {self.extra['exact_search']}")
        else:
            put("", f"VecQ-exact{on} {f(self.relative_dql_exact)}"
                f"{gap_txt(self.gap_to_exact)}")
        fq = self.format_quality
        if fq:
            put("", f"{fq.get('format', 'format')} optimum {f(fq.get('relative_dql_optimum'))}"
                f"{gap_txt(fq.get('gap_to_optimum'))}")
        if q.get("note"):
            put("", q["note"])
        rnd = self.tolerances.get("dql_rounding", 0.0)
        if _floats.unit_roundoff(self.dtype) > 1e-7 and rnd > 0:
            put("", f"(each from values in {self.dtype}, whose rounding moves it by up to "
                    f"{rnd:.2g})")
        if not self.identifiable:
            put("lattice", "not identifiable (see the verdict)")
        elif not self.on_lattice:
            put("lattice", "NO (see the verdict)")
        else:
            b = self.beta
            b_txt = ("" if b is None else f"; β = {b:.9g}" if np.ndim(b) == 0
                     else f"; one β per slice ({np.size(b)})")
            ste = "; straight-through rounding allowed" if self.straight_through else ""
            put("lattice", f"yes: {self.lattice_name or self.lattice}{b_txt}; codes "
                f"{self.code_min}..{self.code_max}, {self.levels_used} levels, in range: "
                f"{'yes' if self.codes_in_range else 'NO'}; max {self.reconstruction_ulps:g} "
                f"ulps{' of the values' if b_txt else ''}{ste}")
            a = self.alpha
            a_txt = f"{a:.9g}" if np.ndim(a) == 0 else f"one per slice ({np.size(a)})"
            put("α", f"{a_txt}; least-squares optimal: "
                f"{'yes' if self.alpha_optimal else 'NO'} (relative deviation from α* "
                f"{self.alpha_rel_dev:.3g}, tolerance {self.tolerances['alpha_rtol']:.3g}; "
                f"excess relative DQL {self.excess_relative_dql:.3g})")
        if self.components:
            out.append("  " + "component".ljust(18) + "finding".ljust(width - 30) + "VecQ's?")
            for c in self.components:
                mark = {True: "yes", False: "NO", None: "n/a"}[c.is_vecq]
                if c.component == "straight-through":
                    mark = "either"
                body = textwrap.wrap(c.found, width=width - 32, break_on_hyphens=False) or [""]
                out.append("  " + c.component.ljust(18) + body[0].ljust(width - 30) + mark)
                out.extend(" " * 20 + t for t in body[1:])
                nums = [c.detail] if c.detail else []
                if c.cost is not None and not (isinstance(c.cost, float)
                                               and not math.isfinite(c.cost)):
                    nums.append(f"rel. DQL cost {c.cost:+.3g}")
                if c.is_vecq is False:
                    nums.append(f"VecQ's: {c.vecq}")
                if nums:
                    for t in textwrap.wrap("; ".join(nums), width=width - 20,
                                           break_on_hyphens=False):
                        out.append(" " * 20 + t)
        if self.on_lattice and self.identifiable and self.codes is not None:
            x_txt = "w/α" if self.offset in (None, "none") else "(w − β)/α"
            if self.lloyd_violations:
                put("Lloyd", f"{self.lloyd_violations} codes are not the nearest level of "
                    f"{x_txt}: expected where the codes come from a step rule (VecQ-param's "
                    f"λ_k·σ) rather than from α")
            else:
                put("Lloyd", f"every code is a nearest level of {x_txt}")
            if self.beta is not None and np.ndim(self.beta):
                b = np.asarray(self.beta, dtype=np.float64).reshape(-1)
                put("offsets", f"one β per slice ({b.size} slices): {b.min():.4g} … "
                    f"{b.max():.4g}, {np.count_nonzero(b)} non-zero")
        if self.conventions:
            exact = ", ".join(self.exact_matches) or "none"
            near = [m for m in self.matches if m not in self.exact_matches]
            put("conventions", f"bit for bit: {exact}" +
                (f"; within {self.tolerances['ulps']} ulps: {', '.join(near)}" if near else ""))
        t = self.tolerances
        parts = [f"ulps {t.get('ulps')} (straight-through: 2·ulp(|w| + |wq|))"]
        if "alpha_rtol" in t:
            parts.append(f"α {t['alpha_rtol']:.3g} (representation "
                         f"{t.get('representation_rtol', 0):.3g} + accumulation "
                         f"{t.get('accumulation_rtol', 0):.3g} in "
                         f"{t.get('accumulation_dtype')})")
        if "step_rtol" in t:
            parts.append(f"step {t['step_rtol']:.3g}")
        parts.append(f"quality: DQL within {t.get('dql_rtol'):g} of VecQ-param's")
        for k in ("working_scale_exponent", "output_scale_exponent"):
            if k in t:
                parts.append(f"{k.replace('_', ' ')} {t[k]}")
        put("tolerances", "; ".join(parts))
        return out


# --- verify ------------------------------------------------------------------------------

def _slice_arg(value, lay, nrows, name, positive=True):
    arr = np.asarray(value, dtype=np.float64) if value is not None else None
    if arr is None:
        return None
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr < 0)):
        V.fail(name, "finite and non-negative", f"a minimum of {float(np.min(arr))!r}")
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, lay.slice_shape)).reshape(nrows)
    except ValueError:
        V.fail(name, f"a scalar or an array of the slice shape {lay.slice_shape}",
               f"shape {arr.shape}")


def _output_dtype(wq):
    """The float dtype ``wq`` is stored in: float16/32/64, a ``ml_dtypes`` bf16/fp8 as
    itself (its ε and subnormals, not float32's), float64 for integers."""
    dt = np.asarray(wq).dtype
    return dt if dt.name in V.LOW_PRECISION else np.dtype(V.float_dtype_of(np.asarray(wq),
                                                                             "wq"))


_row_chunks = diagnose_mod.row_chunks


def _any_nonzero_rows(rows):
    """Per row: whether it holds a non-zero element (NaN counts), a chunk at a time."""
    out = np.empty(rows.shape[0], dtype=bool)
    for s in _row_chunks(rows):
        out[s] = np.any(rows[s] != 0, axis=1)
    return out


def _lloyd_violations(rows_x, alphas, Vv, off, lo, hi):
    """The elements whose code is not a nearest level of ``x/α`` (ties count as nearest;
    slack ``8ε·(|x| + |α·v|)``), for some rows (row by row: any chunk of rows gives its
    share)."""
    a = alphas[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        qn = np.where(a > 0, rows_x / np.where(a > 0, a, 1.0) - off, 0.0)
    near = np.clip(np.rint(qn), lo, hi) + off
    d_given = np.abs(rows_x - a * Vv)
    d_near = np.abs(rows_x - a * near)
    slack = 8 * np.finfo(np.float64).eps * (np.abs(rows_x) + np.abs(a * Vv))
    return int(np.count_nonzero(d_given > d_near + slack))


def _reference(w, bits, lattice, lay, method, dtype, exp=0, keep=None, x64=None, out=None,
               sww=None):
    """Relative DQL of ``method``'s output as ``wq``'s is computed: from the values it
    returns, stored in ``dtype`` (the dtype of ``wq``), or, with ``dtype`` None (only codes
    and α were given), from its lattice values ``α·v`` in float64. Never from
    ``Quantized.loss``, which may describe the values before their cast to the output dtype.
    ``w`` at the working scale ``2**exp``: for ``exp > 0`` (tiny weights) ``method`` runs on
    the caller's weights and returns what the caller would get (a subnormal α and values,
    rounded), scaled back up exactly. ``keep``: a dict that gets ``method``'s values (for
    the conventions of the same name, not quantized twice) where ``exp ≤ 0``
    (the :class:`~vecq_ref.quantize.Quantized`). ``x64``: ``w`` as float64 where the caller
    has it; ``out``: a float64 array of ``w``'s shape to work in (no temporaries); ``sww``:
    ``Σw²`` (float64, summed over the contiguous array) where the caller has it.
    """
    # In float64 whatever the dtype of ``w``: the same codes and α (the kernels read every
    # weight as float64) and the same values once cast to ``dtype`` (α·v is formed in float64
    # either way), and verify compiles the float64 kernels only.
    x = np.asarray(w, dtype=np.float64) if x64 is None else x64
    try:
        # tiny weights (exp > 0) at the caller's scale, where the subnormals round
        q = quantize(np.ldexp(x, -exp) if exp > 0 else x, bits, method=method,
                     lattice=lattice, axis=lay.axis, group_size=lay.group_size)
    except ImportError:
        return None
    if keep is not None and exp <= 0:
        keep[method] = q
    if dtype is None:
        rows_v = lay.to_rows(q.levels)
        a = np.broadcast_to(np.ldexp(np.asarray(q.alpha, dtype=np.float64), max(exp, 0)),
                            lay.slice_shape)
        d = lay.to_rows(x) - np.ascontiguousarray(a).reshape(-1)[:, None] * rows_v
    else:
        # a value beyond the dtype's largest finite value is stored as that value (saturated),
        # the closest an output of that dtype can come to it
        fmax = _floats.largest(_floats.dtype_of(dtype))
        clipped = np.clip(q.values, -fmax, fmax, out=None if out is None or
                          q.values.dtype != out.dtype else out)
        vals = diagnose_mod.cast(clipped, _floats.dtype_of(dtype))
        del clipped
        if out is None:
            d = vals.astype(np.float64)
        else:
            d = out
            np.copyto(d, vals)
        if exp > 0:
            np.ldexp(d, exp, out=d)
        np.subtract(x, d, out=d)
        del vals
    sww = float(np.sum(x * x)) if sww is None else sww
    return float(np.sum(np.square(d, out=d))) / sww if sww > 0 else 0.0


def _rounding_dql(rows_w, rows_q, dtype, alphas=None, rows_v=None, sww=None, out=None):
    """Bound on how much rounding values to ``dtype`` can move a relative DQL: each value
    moves by at most ``h = max(u·|q|, η/2)`` (its representation error, ``u = ε/2``, ``η`` the
    subnormal spacing), the DQL by ``Σ(2|w − q|·h + h²)/‖w‖²``. Where a slice's α (given
    with its levels ``rows_v``) is below the smallest normal value of the dtype it is held in
    (:func:`_alpha_format`), it is off by that dtype's ``η/2`` and each value ``α·v`` moves by
    ``|v|·η/2`` more. ``sww``: ``‖w‖²`` where the caller has it; ``out``: a float64 array of
    the rows' shape to work in."""
    sww = float(np.sum(rows_w * rows_w)) if sww is None else sww
    if sww == 0 or dtype is None:
        return 0.0
    # h = representation_error(rows_q, dtype), computed in place
    h = np.abs(rows_q)
    np.multiply(diagnose_mod.unit_roundoff(dtype), h, out=h)
    np.maximum(h, 0.5 * diagnose_mod.smallest_subnormal(dtype), out=h)
    if alphas is not None and rows_v is not None:
        a_fmt = _alpha_format(dtype)
        half_eta = 0.5 * diagnose_mod.smallest_subnormal(a_fmt)
        sub = (alphas > 0) & (diagnose_mod.unit_roundoff(a_fmt) * alphas < half_eta)
        if np.any(sub):  # (else h + 0: h itself)
            h = h + np.where(sub[:, None], half_eta * np.abs(rows_v), 0.0)
    # Σ(2|w − q|·h + h²), term by term as written, in place
    t = np.subtract(rows_w, rows_q, out=out)
    np.abs(t, out=t)
    np.multiply(2, t, out=t)
    np.multiply(t, h, out=t)
    np.add(t, np.multiply(h, h, out=h), out=t)
    return float(np.sum(t)) / sww


def verify(w, wq=None, *, codes=None, alpha=None, bits=None, lattice=None, axis=None,
           group_size=None, ulps=None, alpha_rtol=None, dql_rtol=DEFAULT_DQL_RTOL,
           check_conventions=True, compute_gaps=True, name=None, format=None, weights=None,
           dtype=None):
    """Check a quantized tensor against VecQ; two answers: conformance and quality.

    **Conformance** (``passed``, ``conforms``; the CLI's exit status): is ``wq`` what VecQ
    gives? It is when all of these hold:

    - ``wq`` lies on a VecQ lattice (midrise ``α·(c + ½)``, or narrow midtread ``α·c``,
      ``|c| ≤ 2^(k−1) − 1``) **without an offset** β, codes fitting ``bits``, within ``ulps``
      of ``wq``'s dtype;
    - α is the **least-squares** α* of its codes, within ``alpha_rtol`` (the representation
      error of the output dtype plus the accumulation error of the sums);
    - the step that gave the codes is **one of VecQ's**: ``λ_k·σ`` with the exact or the
      released 4-decimal λ table, σ with ddof 0 or 1, with or without ``+1e-7``, within
      ``step_rtol`` (σ accumulated, ``w/s`` rounded); or the step of VecQ's exact, grid or
      alternating search on ``w``; or ``wq`` is VecQ's own output (VecQ-param, the released
      Keras expression, a search's) within ``ulps``.

    The rule found is ``rule`` (e.g. "VecQ's 4-decimal λ_k × std (ddof 0) + 1e-7", the
    authors' Keras code). A wrong λ, a norm-matched α (the PyTorch port), an offset (μL2Q)
    or an abs-max scale does not conform, however good its DQL. ``reasons`` say why not.

    **Quality** (``quality``, not part of the verdict): the relative DQL ``‖w − wq‖²/‖w‖²``
    of ``wq`` beside VecQ-param's and VecQ-exact's (``gap_to_param``, ``gap_to_exact``;
    negative is better), and whether it is within ``dql_rtol`` of VecQ-param's
    (``within_param``). ``format_quality`` is the slot for the same measure against the exact
    optimum of the output's own block format (llama.cpp, GPTQ, …: filled by the block-format
    diagnosis, None here).

    The printed report (``str``) gives the verdict and its reasons, the quality, one row per
    component (lattice, step rule, rounding, α rule, straight-through: the finding in words,
    its numbers on the next line), and the tolerances in a footer; lines are at most 100
    characters.

    Parameters
    ----------
    w : array_like
        The float weights that were quantized.
    wq : array_like, optional
        The quantized values, shape of ``w``. Needed unless ``codes`` is given.
    codes : array_like of int, optional
        The integer codes, if known (then they are used instead of being recovered).
    alpha : float or array_like, optional
        α per tensor, or one per slice, if known.
    bits : int
        The bitwidth that was used, 1 … 16 (optional for a block format).
    lattice : {None, "midrise", "midtread"}
        None recovers it from ``wq``, or, with ``codes`` and no ``wq``, reads it from the
        codes and ``w`` (the family whose thresholds give the codes; a ValueError asks for
        it where both or neither do and their fits are alike).
    axis, group_size : int, optional
        Granularity (per channel along ``axis``, or per contiguous group of the last axis).
    ulps : int, optional
        Reconstruction and convention tolerance in units in the last place of ``wq``'s dtype
        (default 2 for float16, 4 for float32, 256 for float64).
    alpha_rtol : float, optional
        Relative tolerance on ``α − α*``. Default: ``max(1e-6, representation +
        accumulation)`` (about ``u = 4.9e-4`` for float16 ``wq``,
        ``6e-8 + 8ε + 4√n·ε`` of float32 for float32 ``wq``), so that a least-squares α
        accumulated in float32 and rounded into ``wq``'s dtype passes; a norm-matched α is
        ``1/cos θ − 1 ≈ J_o`` too large and fails where ``J_o`` exceeds it.
    dql_rtol : float
        ``quality["within_param"]``: the relative DQL exceeds VecQ-param's by at most this
        fraction (default 1e-3). Not part of the verdict.
    check_conventions : bool
        Run the convention zoo (one quantization per convention).
    compute_gaps : bool
        Quantize ``w`` with VecQ-param and the exact search for the DQL gaps (and the
        ``dql_rtol`` test of the verdict); False leaves those fields None. The exact
        search runs only where its breakpoints ``N·(2^(k−1) − 1)`` are at most
        :data:`EXACT_BREAKPOINTS` (2²⁴; minutes at 16 bits on thousands of weights), or
        in groups of at most :data:`EXACT_GROUP_BREAKPOINTS` (2¹²) each: beyond,
        ``relative_dql_exact`` is None and ``extra["exact_search"]`` says why.
    name : str, optional
        A label for the report.
    format : str, optional
        A block format's name (``"q4_0"``, ``"q8_0"``, ``"q4_1"``, ``"iq4_nl"``, ``"nf4"``,
        ``"gptq-asym"``, …: :func:`vecq_ref.check.blocks.verify_format`): check ``wq``
        against that format's rule and its exact optimum instead of against VecQ.
    weights : array_like, optional
        Importance ``h ≥ 0`` for a block format's check (weighted DQL and rules; e.g.
        ``format_rules.imatrix_weights(w, imatrix, "q4_0")`` for an imatrix-made GGUF): given
        without ``format``, the block format is identified from the values, as with ``format``
        (a ``FormatReport``; VecQ's own check is unweighted).
    dtype : str or numpy dtype, optional
        A block format's check only: the dtype the original weight is stored in when ``w``
        has been widened (``"float16"``, ``"bfloat16"``; default ``w.dtype``), passed to
        :func:`vecq_ref.check.blocks.verify_format` (AWQ and compressed-tensors compute in
        the weight's dtype). The VecQ check does not use it.

    Returns
    -------
    VerifyReport, or :class:`vecq_ref.check.blocks.FormatReport`
        A ``FormatReport`` when ``wq`` is a :class:`vecq_ref.formats.BlockTensor` (a tensor
        from a reader), or ``format`` or ``weights`` is given. Otherwise a ``VerifyReport``;
        when ``wq`` is not VecQ's output but lies on no VecQ lattice, slices of
        ``group_size``, and one of the block formats' rules reproduces it (llama.cpp's Q4_0
        from its values, say), that diagnosis is attached as ``format_report`` (its optimum
        in ``format_quality``) and printed in place of the VecQ components.

    Notes
    -----
    float64 ``w`` (with float64 ``wq``, if given) whose magnitudes leave the range where
    squared sums are safe (about 1e-150 … 1e150) is diagnosed at ``2**k·w`` and ``2**k·wq``
    (exact: a power of two), so the codes, the lattice and every relative figure are those of
    any other scale; ``alpha``, ``alpha_lsq`` and ``beta`` are scaled back to the units of
    ``w`` and ``excess_dql`` by ``2**(-2k)`` (±inf or 0 where that leaves the float64 range),
    and the reasons and the components' text give steps, weights and β in the units of ``w``
    (``tolerances["working_scale_exponent"] = k``). The output keeps its own resolution
    there: a value ``wq`` holds as a float64 subnormal is off by up to ``2**k·η/2``, and
    every tolerance, ulp count and reference output is the caller's. Conventions that are
    not scale-free (absolute epsilons, float32 replays) are then not run, nor are the
    float32 replays wherever ``|w|`` leaves ``[2**-60, 2**60]``. ``k`` is chosen for ``w``
    and ``wq`` together; where their magnitudes lie too far apart for one working scale (a
    ±1 output for weights of 1e-300), each is checked at its own: the lattice, α and codes
    from ``wq``, α* and the references from ``w``, and the figures comparing them through
    the factor between the two scales (a relative DQL or α deviation beyond float64 is
    ``inf``; ``tolerances["output_scale_exponent"]`` is ``wq``'s exponent).

    Examples
    --------
    >>> w = np.array([0.1, -0.4, 0.25, 0.9, -1.3, 0.05])
    >>> r = verify(w, [0.5, -0.5, 0.5, 0.5, -1.5, 0.5], bits=2)   # α = 1: not optimal
    >>> r.on_lattice, r.lattice, r.alpha, r.alpha_optimal, r.passed
    (True, 'midrise', 1.0, False, False)
    >>> r = verify(w, quantize(w, 2).values, bits=2)
    >>> r.passed, "vecq_ref_param" in r.exact_matches
    (True, True)
    """
    if isinstance(wq, BlockTensor) or format is not None or weights is not None:
        # importance weights go with a block format (VecQ's rule is unweighted): with
        # `weights` and no `format`, the format is identified from the values
        from .blocks import verify_format
        try:
            return verify_format(w, wq, format=format, group_size=group_size, bits=bits,
                                 weights=weights, dtype=dtype)
        except ValueError as exc:
            if isinstance(wq, BlockTensor) or format is not None or \
                    not str(exc).startswith("`quantized`"):
                raise
            V.fail("weights", "None for a VecQ check (importance weights go with a block "
                   "format's output: `format=` or a BlockTensor)",
                   "an array, and `wq` is no block format's output")
    if bits is None:
        V.fail("bits", "the bitwidth that was used, an int in [1, 16]", None, TypeError)
    fr = None
    quick = {}  # the quick reading of the groups, read once (by the block formats' gate)
    # per channel along axis 0 of a matrix is one group per row: the block formats' groups
    # of the row length (a per-channel GPTQ/AWQ output), as group_size=cols would be
    block_group = group_size if group_size is not None else _row_group(w, wq, axis)
    if wq is not None and codes is None and alpha is None and lattice is None and \
            block_group is not None:
        if group_size is not None:
            fr = _block_format_first(w, wq, bits, block_group, dtype, quick)
        else:  # per channel: the format's answer only where its rule reproduces it
            with np.errstate(all="ignore"):  # (a format's arithmetic may overflow: no answer)
                fr = _block_format_first(w, wq, bits, block_group, dtype, quick)
            fr = None if fr is None or fr.passed is False else fr
        # a format's rule reproduces it (or GPTQ: undecided), or every group is recovered on a
        # named format's level set that VecQ's offset lattices cannot also explain (not an
        # affine d·q + m, which a μL2Q-style output is too; not a codebook read off the values,
        # which any output is): the format's diagnosis is the answer
        if fr is not None and (fr.passed is not False or (
                fr.format in _BLOCK_CANDIDATES and fr.recovered_fraction >= 1.0
                and getattr(fr.block, "kind", "min") != "min")):
            return fr
    rep = _verify_any_scale(w, wq, codes=codes, alpha=alpha, bits=bits, lattice=lattice,
                            axis=axis, group_size=group_size, ulps=ulps, alpha_rtol=alpha_rtol,
                            dql_rtol=dql_rtol, check_conventions=check_conventions,
                            compute_gaps=compute_gaps, name=name, _quick=quick)
    # the caller's dtype, not the float32/float64 the check widened a float16/bf16 w to
    w_dt = V.as_array(w, "w").dtype
    if w_dt.kind == "f" or w_dt.name in V.LOW_PRECISION:
        rep = dataclasses.replace(rep, w_dtype=w_dt.name)
    if fr is None or rep.conforms or fr.format not in _BLOCK_CANDIDATES + ("q4_1", "q5_1") \
            or fr.recovered_fraction < 1.0:
        return rep
    return dataclasses.replace(rep, format_report=fr, format_quality=dict(
        format=fr.label if hasattr(fr, "label") else fr.format,
        rule=fr.rule, relative_dql_optimum=fr.optimum_rel_dql,
        gap_to_optimum=(None if fr.gap_pct is None else fr.gap_pct / 100.0),
        certified=getattr(fr, "optimum_certified", None)))


def _row_group(w, wq, axis):
    """The row length where ``axis`` makes one slice per row of a matrix ``w`` (axis 0 or
    −2 of a 2-D array: per output channel) and ``w``, ``wq`` fit float32 (the block formats'
    arithmetic), else None."""
    shape = np.shape(w)
    if len(shape) != 2 or shape[1] == 0 or np.shape(wq) != shape or \
            not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or \
            int(axis) not in (0, -2):
        return None
    big = float(np.finfo(np.float32).max)
    with np.errstate(invalid="ignore", over="ignore"):
        fits = all(np.all(np.abs(V.as_array(a, n)) <= big) for a, n in ((w, "w"), (wq, "wq")))
    return int(shape[1]) if fits else None


#: The named block formats ``verify`` may identify from values alone.
_BLOCK_CANDIDATES = ("q4_0", "q8_0", "q5_0", "iq4_nl", "gptq-sym", "gptq-asym", "awq-sym",
                     "awq-asym", "ct-sym", "ct-asym", "nf4", "fp4")


def _block_format_first(w, wq, bits, group_size, dtype=None, keep=None):
    """A grouped output that VecQ's quick reader does not place on a lattice through zero in
    most of its groups (full range, a zero point or offset, a codebook) goes to the block
    formats' diagnosis first (:func:`vecq_ref.check.blocks.verify_format`, the formats
    identified from the values); its report, or None where that does not apply or fails.
    ``keep``: a dict that gets the quick reading (``"rows"``: a
    :class:`~vecq_ref.check.recover.RowReadings` of the groups, read with ``wq``'s dtype,
    ``ulps=4`` and every lattice; ``"dtype"``), which :func:`_verify` reuses where it would
    read the same groups the same way."""
    arr = V.weights(w, "w")[0]
    q = V.weights(wq, "wq")[0]
    if q.shape != arr.shape or arr.ndim == 0 or arr.shape[-1] % group_size or \
            not np.all(np.isfinite(q)):
        return None
    U = q.reshape(-1, group_size).astype(np.float64)
    W = arr.reshape(-1, group_size).astype(np.float64)
    # read in the dtype wq is stored in (float16, bf16: not the float32 it was widened to,
    # whose ulps a float16 rounding of α·v exceeds, which sent VecQ's own float16 output to
    # the whole block diagnosis), with that dtype's default ulps where smaller than 4
    q_dtype = _output_dtype(wq)
    ulps = min(4, DEFAULT_ULPS[q_dtype.itemsize])
    quick = recover_mod.recover_rows(U, W, q_dtype, bits, ulps=ulps, columns=True)
    if keep is not None:
        keep.update(rows=quick, dtype=q_dtype, ulps=ulps, group_size=group_size,
                    shape=arr.shape, U=U, W=W)
    read = int(np.count_nonzero(quick.read))
    if read == len(quick):
        return None
    from .blocks import verify_format
    # Most groups read as narrow midtread may still be a full-range format whose groups
    # that never use the lowest code look narrow (compressed-tensors symmetric: −8…7 with
    # s > 0): the format is the answer only when its rule reproduces the output bit for bit.
    most = 2 * read >= len(quick)
    # w and wq as the caller gave them: a float16/bf16 w is quantized in its own dtype
    w0, q0 = V.as_array(w, "w"), V.as_array(wq, "wq")
    try:
        if most:
            # a rule that reproduces the output reproduces every group: first a sample
            # (up to 64 unread and 64 read groups, one a row), the whole tensor only if
            # the sample passes (a VecQ output costs no full format diagnosis)
            miss = np.flatnonzero(~quick.read)[:64]
            hit = np.flatnonzero(quick.read)[:64]
            pick = np.sort(np.concatenate([miss, hit]))
            sample = verify_format(w0.reshape(-1, group_size)[pick],
                                   q0.reshape(-1, group_size)[pick], group_size=group_size,
                                   bits=bits, dtype=dtype, quality=False)
            if sample.passed is not True:
                return None
        fr = verify_format(w0, q0, group_size=group_size, bits=bits, dtype=dtype)
    except ValueError:
        return None
    return fr if not most or fr.passed is True else None


def _verify_any_scale(w, wq=None, *, codes=None, alpha=None, bits, lattice=None, axis=None,
                      group_size=None, ulps=None, alpha_rtol=None, dql_rtol=DEFAULT_DQL_RTOL,
                      check_conventions=True, compute_gaps=True, name=None, _quick=None):
    """:func:`verify`'s VecQ check, at a working scale where float64 magnitudes need one.
    ``_quick``: :func:`_block_format_first`'s quick reading, reused at the caller's scale."""
    arr = V.weights(w, "w")[0]
    k = 0
    args = dict(bits=bits, lattice=lattice, axis=axis, group_size=group_size, ulps=ulps,
                alpha_rtol=alpha_rtol, dql_rtol=dql_rtol, check_conventions=check_conventions,
                compute_gaps=compute_gaps, name=name)
    if arr.dtype == np.float64 and (wq is None or V.as_array(wq, "wq").dtype == np.float64):
        k = V.scale_exponent(arr)
        if wq is not None:
            q64 = V.weights(wq, "wq")[0]
            if q64.shape == arr.shape:
                # one working scale for both where their magnitudes fit in it together;
                # w and wq each at their own where they lie too far apart for that
                k_both = _joint_scale(arr, q64)
                if k_both is None:
                    return _verify_apart(arr, q64, alpha, codes, args)
                k = k_both
    if not k:
        return _verify(arr, wq, codes=codes, alpha=alpha, _quick=_quick, **args)
    scaled_alpha = None if alpha is None else np.ldexp(np.asarray(alpha, dtype=np.float64), k)
    scaled_wq = None if wq is None else np.ldexp(V.weights(wq, "wq")[0], k)
    rep = _verify(np.ldexp(arr, k), scaled_wq, codes=codes, alpha=scaled_alpha,
                  _scale_exp=k, **args)

    def back(x):
        if x is None:
            return None
        return np.ldexp(np.asarray(x, dtype=np.float64), -k) if np.ndim(x) else \
            float(np.ldexp(x, -k))

    with np.errstate(over="ignore", under="ignore"):
        return dataclasses.replace(
            rep, alpha=back(rep.alpha), alpha_lsq=back(rep.alpha_lsq), beta=back(rep.beta),
            excess_dql=float(np.ldexp(rep.excess_dql, -2 * k)),
            tolerances={**rep.tolerances, "working_scale_exponent": k})


def _joint_scale(arr, q64):
    """The working-scale exponent of ``w`` and ``wq`` together (float64, finite), or None when
    their nonzero magnitudes span more binades than one working scale holds (then each needs
    its own: :func:`_verify_apart`)."""
    nz = [np.abs(x[x != 0]) for x in (arr.reshape(-1), q64.reshape(-1))]
    if not (nz[0].size and nz[1].size):
        return V.scale_exponent(arr) if nz[0].size else V.scale_exponent(q64, "wq")
    emin = int(np.frexp(min(float(nz[0].min()), float(nz[1].min())))[1])
    emax = int(np.frexp(max(float(nz[0].max()), float(nz[1].max())))[1])
    if emin > -V.SAFE_EXP and emax <= V.SAFE_EXP:
        return 0
    if emax - emin < 2 * V.SAFE_EXP:
        return -((emax + emin) // 2)
    # one of them alone may already span that much (its smallest values then flush, as
    # documented for w); only two arrays apart from each other need two scales
    k_w, k_q = V.scale_exponent(arr), V.scale_exponent(q64, "wq")
    return None if k_w != k_q else k_w


def _verify_apart(arr, q64, alpha, codes, args):
    """:func:`verify` for float64 ``w`` and ``wq`` too far apart in magnitude for one working
    scale (their nonzero values span more than ``2·SAFE_EXP`` binades together).

    The lattice, α, β and codes of ``wq`` come from ``wq`` alone at its own working scale
    ``2**k_q`` (``w`` is negligible there, or ``wq`` is negligible beside ``w``: either way
    no straight-through output ``w + (wq − w)`` can be both), α*, the references and the
    relative DQL from ``w`` at its own ``2**k_w``, and the figures that compare the two from
    ``t = 2**(k_w − k_q)``, the factor between the scales, without leaving float64: a relative
    DQL or α deviation beyond float64 is ``inf``, never a warning.
    """
    k_w, k_q = V.scale_exponent(arr), V.scale_exponent(q64, "wq")
    a_q = None if alpha is None else np.ldexp(np.asarray(alpha, dtype=np.float64), k_q)
    wq_s = np.ldexp(q64, k_q)
    rep = _verify(np.zeros_like(wq_s), wq_s, codes=codes, alpha=a_q,
                  **{**args, "check_conventions": False, "compute_gaps": False},
                  _scale_exp=k_q)
    lay = _layout.layout(arr.shape, args["axis"], args["group_size"])
    q_fmt = _floats.fmt(np.dtype(np.float64), k_w)
    rows_w = np.ascontiguousarray(lay.to_rows(np.ldexp(arr, k_w)), dtype=np.float64)
    rows_q = np.ascontiguousarray(lay.to_rows(wq_s), dtype=np.float64)
    sww = float(np.sum(rows_w * rows_w))
    shift = k_w - k_q                  # wq at w's working scale is rows_q·2**shift
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        d = rows_w - np.where(rows_q == 0, 0.0, np.ldexp(rows_q, shift))
        rel_dql = float(np.sum(d * d)) / sww
    bits = rep.bits
    lat = rep.lattice or "midrise"
    ref_lattice = "midrise" if (lat == "midtread" and bits < 2) else lat
    rel_param = rel_exact = None
    if args["compute_gaps"]:
        rel_param = _reference(np.ldexp(arr, k_w), bits, ref_lattice, lay, "param", q_fmt, k_w)
        rel_exact = _reference(np.ldexp(arr, k_w), bits, ref_lattice, lay, "exact", q_fmt, k_w)
    alpha_rtol = rep.tolerances["alpha_rtol"]
    # what rep says of α and the DQL compared wq with w = 0: recomputed below
    lattice_reasons = [r for r in rep.reasons if not r.startswith(("relative DQL", "α is"))]
    ratio = "larger" if shift > 0 else "smaller"
    reasons = [f"wq is about 10^{abs(shift) * math.log10(2):.0f} times {ratio} than w (w and "
               f"wq are checked at working scales of their own)"]
    reasons += lattice_reasons
    fields = {}
    if rep.codes is not None and rep.on_lattice:
        off = level_offset(lat)
        Vv = lay.to_rows(rep.codes).astype(np.float64) + off
        svv = np.einsum("ij,ij->i", Vv, Vv)
        swv = np.einsum("ij,ij->i", rows_w, Vv)
        a_star = np.where(svv > 0, swv / np.where(svv > 0, svv, 1.0), 0.0)  # at 2**k_w
        a_given = np.asarray(rep.alpha, dtype=np.float64).reshape(-1)     # at 2**k_q
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            a_w = np.ldexp(a_given, shift)                                  # at 2**k_w
            dev = np.where(a_star != 0, np.abs(a_w - a_star) / np.abs(a_star), np.inf)
            excess = (a_w - a_star) ** 2 * svv
            excess_rel = float(np.sum(excess)) / sww
            qn = np.where(a_w[:, None] > 0, rows_w / np.where(
                a_w[:, None] > 0, a_w[:, None], 1.0) - off, 0.0)
            lo, hi = recover_mod.code_range(bits, rep.lattice_name or lat)
            near = np.clip(np.rint(np.nan_to_num(qn)), lo, hi) + off
            lloyd = int(np.count_nonzero(np.abs(near - Vv) > 0.5 + 1e-9))
            excess_dql = float(np.ldexp(np.sum(excess), -2 * k_w))
        alpha_rel_dev = float(np.max(dev))
        if not alpha_rel_dev <= alpha_rtol:
            reasons.append(f"α is not the least-squares optimum for its codes (relative "
                           f"deviation {alpha_rel_dev:.3g} > {alpha_rtol:.3g}; excess "
                           f"relative DQL {excess_rel:.3g})")
        with np.errstate(over="ignore", under="ignore"):
            fields = dict(alpha_lsq=lay.slices(np.ldexp(a_star, -k_w)),
                          alpha_rel_dev=alpha_rel_dev,
                          alpha_optimal=bool(alpha_rel_dev <= alpha_rtol),
                          excess_dql=excess_dql, excess_relative_dql=excess_rel,
                          lloyd_violations=lloyd)

    def back(x, k):
        if x is None:
            return None
        with np.errstate(over="ignore", under="ignore"):
            return np.ldexp(np.asarray(x, dtype=np.float64), -k) if np.ndim(x) else \
                float(np.ldexp(x, -k))

    return dataclasses.replace(
        rep, **{"alpha_lsq": back(rep.alpha_lsq, k_q), "excess_dql": math.nan, **fields},
        alpha=back(rep.alpha, k_q), beta=back(rep.beta, k_q), relative_dql=rel_dql,
        relative_dql_param=rel_param, relative_dql_exact=rel_exact,
        gap_to_param=None if rel_param is None else rel_dql - rel_param,
        gap_to_exact=None if rel_exact is None else rel_dql - rel_exact,
        components=[], passed=False, reasons=reasons, conforms=False, rule=None,
        w_dtype=str(arr.dtype),
        quality={**rep.quality, "relative_dql": rel_dql, "vecq_param": rel_param,
                 "vecq_exact": rel_exact, "reference_lattice": ref_lattice,
                 "gap_to_param": None if rel_param is None else rel_dql - rel_param,
                 "gap_to_exact": None if rel_exact is None else rel_dql - rel_exact,
                 "within_param": None if rel_param is None else bool(
                     rel_dql <= rel_param * (1 + args["dql_rtol"]) + 1e-15)},
        tolerances={**rep.tolerances, "working_scale_exponent": k_w,
                    "output_scale_exponent": k_q})


#: Conventions with an absolute epsilon or a float32 replay: not run at a working scale.
_NOT_SCALE_FREE = frozenset({"paper_keras", "paper_keras_float32", "ul2q", "float32"})
#: Conventions that replay float32 arithmetic: not run where w or w² leaves float32's range.
_FLOAT32_REPLAYS = frozenset({"paper_keras_float32", "float32"})


#: Groups are replayed by the conventions this many weights at a time (results per group do
#: not depend on the chunk: every convention works group by group; small temporaries stay
#: in the cache and are not page-faulted in afresh).
_CONV_CHUNK = 1 << 18


def _convention_ulps(fn, lib, arr, bits, lattice, lay, q_fmt, target, ulps):
    """How far a convention's output (``fn``'s, or ``lib``: the library's, computed before)
    lies from ``target`` in ulps of ``q_fmt``: ``exact``, ``match`` (within ``ulps``),
    ``max_ulps`` and ``mismatches``. In groups along the last axis, ``_CONV_CHUNK`` weights
    at a time (the same figures)."""
    if lay.group_size is None or lay.axis is not None or arr.size <= _CONV_CHUNK:
        out = lib if lib is not None else fn(arr, bits, lattice, lay.axis, lay.group_size)
        d = ulp_distance(_floats.at_caller_scale(out, q_fmt), target)
        return {"exact": bool(np.all(d == 0)), "match": bool(np.all(d <= ulps)),
                "max_ulps": float(np.max(d)), "mismatches": int(np.count_nonzero(d > ulps))}
    g = lay.group_size
    rows_a = np.ascontiguousarray(arr).reshape(-1, g)
    rows_t = np.ascontiguousarray(target).reshape(-1, g)
    rows_l = None if lib is None else np.ascontiguousarray(lib).reshape(-1, g)
    step = max(1, _CONV_CHUNK // g)
    worst, bad = 0.0, 0
    for s in range(0, rows_a.shape[0], step):
        out = rows_l[s:s + step] if rows_l is not None else \
            fn(rows_a[s:s + step], bits, lattice, None, g)
        d = ulp_distance(_floats.at_caller_scale(out, q_fmt), rows_t[s:s + step])
        worst = max(worst, float(np.max(d)))
        bad += int(np.count_nonzero(d > ulps))
    return {"exact": worst == 0, "match": bad == 0, "max_ulps": worst, "mismatches": bad}


def _reusable(quick, q_fmt, ulps, lay, arr):
    """Whether :func:`_block_format_first`'s quick reading ``quick`` is what
    :func:`_verify` would compute itself: the same groups (the last axis in groups of the
    same size, no working scale), dtype and ``ulps``."""
    return bool(quick) and quick["rows"] is not None and ulps == quick["ulps"] and \
        not isinstance(q_fmt, _floats.Scaled) and np.dtype(q_fmt) == quick["dtype"] and \
        lay.axis is None and lay.group_size == quick["group_size"] and \
        arr.shape == quick["shape"] and len(quick["rows"]) == arr.size // lay.group_size


def _verify(w, wq=None, *, codes=None, alpha=None, bits, lattice=None, axis=None,
           group_size=None, ulps=None, alpha_rtol=None, dql_rtol=DEFAULT_DQL_RTOL,
           check_conventions=True, compute_gaps=True, name=None, _scale_exp=0,
           _quick=None):
    """:func:`verify` on range-safe arguments: the caller's times ``2**_scale_exp`` (exact),
    whose resolution is still the caller's (:class:`vecq_ref.check._floats.Scaled`)."""
    _scale_free_only = _scale_exp != 0
    if lattice is not None:
        lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice or "midrise")
    arr, _ = V.weights(w, "w")
    if wq is None and codes is None:
        V.fail("wq", "an array of quantized values (or pass `codes`)", "None", TypeError)
    q_arr = None
    if wq is not None:
        q_arr, _ = V.weights(wq, "wq")
        if q_arr.shape != arr.shape:
            V.fail("wq", f"of the shape of `w` {arr.shape}", f"shape {q_arr.shape}")
        # the output's own dtype, bf16 and fp8 included (computed in float32, exactly, but
        # rounded to their own ε and subnormals)
        q_dtype = _output_dtype(wq)
    else:
        # codes and α only: the output is assumed in w's float dtype (its tolerances too)
        q_dtype = _output_dtype(arr)
    # the output's resolution at the working scale: the caller's dtype, scaled
    q_fmt = _floats.fmt(q_dtype, _scale_exp)
    c_arr = None
    if codes is not None:
        c_arr = V.as_array(codes, "codes")
        if c_arr.dtype.kind not in "iu":
            V.fail("codes", "an integer array", f"dtype {c_arr.dtype}", TypeError)
        if c_arr.shape != arr.shape:
            V.fail("codes", f"of the shape of `w` {arr.shape}", f"shape {c_arr.shape}")
    lay = _layout.layout(arr.shape, axis, group_size)
    size = q_dtype.itemsize
    ulps = DEFAULT_ULPS[size] if ulps is None else V.integer(ulps, "ulps", 0)
    n_slice = int(np.prod(arr.shape)) // max(1, lay.to_rows(arr).shape[0]) if arr.size else 1
    if alpha_rtol is not None:
        alpha_rtol = V.real(alpha_rtol, "alpha_rtol", nonnegative=True)
    acc_rtol = diagnose_mod.accumulation_tol(q_dtype, n_slice)
    step_rtol = diagnose_mod.step_tol(q_dtype, n_slice)
    dql_rtol = V.real(dql_rtol, "dql_rtol", nonnegative=True)

    if q_arr is not None and _reusable(_quick, q_fmt, ulps, lay, arr):
        # the groups of w and wq as float64, made for the quick reading: not converted again
        rows_w, rows_q = _quick["W"], _quick["U"]
    else:
        rows_w = np.ascontiguousarray(lay.to_rows(arr), dtype=np.float64)
        rows_q = None if q_arr is None else np.ascontiguousarray(lay.to_rows(q_arr),
                                                                 dtype=np.float64)
    nrows = rows_w.shape[0]
    rows_c = None if c_arr is None else lay.to_rows(c_arr)
    alphas_in = _slice_arg(alpha, lay, nrows, "alpha")

    def recover(lat):
        out = _Rows(nrows, rows_w.shape[1])
        todo = range(nrows)
        ste_read = set()
        if rows_c is None and alphas_in is None:
            # the quick reading of every slice at once (β = 0, the largest step); the
            # slices it leaves open are searched one by one
            lats = (recover_mod.LATTICES if lat is None else
                    ("midrise",) if lat == "midrise" else ("midtread", "midtread-full"))
            if lats == recover_mod.LATTICES and _reusable(_quick, q_fmt, ulps, lay, arr):
                fast = _quick["rows"]  # the same groups, read the same way: not twice
            else:
                fast = recover_mod.recover_rows(rows_q, rows_w, q_fmt, bits, lattices=lats,
                                                ulps=ulps, columns=True)
            out.set_read(fast)
            todo = np.flatnonzero(~fast.read).tolist()
            # the straight-through groups among them that recover() would read on the midrise
            # lattice with the largest step, read many at a time (its very readings)
            for r, got in ste_mod.recover_rows_ste(rows_q, rows_w, q_fmt, bits, todo,
                                                   lattices=lats, ulps=ulps).items():
                row = _row_of(got)
                if row.name is None and row.lattice is not None:
                    row.name = row.lattice
                out.set(r, row)
                ste_read.add(r)
            todo = [r for r in todo if r not in ste_read]
        for r in todo:
            a_in = None if alphas_in is None else float(alphas_in[r])
            if rows_c is not None:
                if rows_q is None:
                    off = level_offset(lat or "midrise")
                    v = rows_c[r].astype(np.float64) + off
                    vv = float(v @ v)
                    a = a_in if a_in is not None else (
                        float(rows_w[r] @ v) / vv if vv > 0 else 0.0)
                    lo, hi = code_range(bits, lat or "midrise")
                    c = rows_c[r].astype(np.int64)
                    row = _Row(lat or "midrise", a, c, 0.0,
                               bool(c.min() >= lo and c.max() <= hi), True)
                else:
                    row = _rows_from_codes(rows_q[r], rows_c[r], a_in, q_fmt, lat, bits, ulps)
            elif a_in is not None:
                row = _rows_from_alpha(rows_q[r], a_in, q_fmt, lat, bits, ulps)
            else:
                row = _recover_row(rows_q[r], rows_w[r], q_fmt, bits, lat, ulps)
            if row.name is None and row.lattice is not None:
                row.name = row.lattice
            out.set(r, row)
        return out

    inferred = None
    if lattice is None and rows_c is not None and rows_q is None:
        # codes (and α) without values: the lattice is read from the codes, never assumed
        inferred = _lattice_from_codes(rows_w, rows_c, bits, step_rtol)
        lattice = recover_mod.family(inferred)
    rows = recover(lattice)
    if inferred is not None:
        lo_i, hi_i = recover_mod.code_range(bits, inferred)
        rows.name[:] = inferred
        rows.in_range = (rows.codes.min(axis=1, initial=lo_i) >= lo_i) & \
            (rows.codes.max(axis=1, initial=hi_i) <= hi_i)
    if lattice is None and rows_c is None and alphas_in is None:
        # slices that disagree on the lattice: redo them all within the most common family
        fams = rows.lattice[rows.ok].tolist()
        if fams and len(set(fams)) > 1:
            # the family under which most slices read as VecQ's (β = 0), then most fit at all,
            # then the most common: with two or three elements per slice and many bits, both
            # families fit many slices, and the first found need not be the one they share
            order = sorted(set(fams), key=lambda f: -fams.count(f))
            rows = max((recover(f) for f in order),
                       key=lambda rs: (rs.count(offset_none=True), rs.count()))
    elif lattice is None and not np.all(rows.ok) and bits >= 2:
        alt = recover("midtread")
        if alt.count() > rows.count():
            rows = alt
    if rows_c is None and alphas_in is None and rows_q is not None:
        _offset_as_others(rows, rows_q, rows_w, q_fmt, bits, ulps)
    on_lattice = bool(np.all(rows.ok))
    lat_found = rows.lattice[0] if on_lattice else lattice
    tried = set(rows.lattice.tolist()) - {None}
    work_lattice = lat_found or (tried.pop() if len(tried) == 1 else "midrise")
    if work_lattice == "midtread" and bits < 2:
        work_lattice = "midrise"
    names = [x for x in rows.name.tolist() if x]
    lattice_name = (("midtread-full" if "midtread-full" in names else names[0]) if names
                    else None)
    if lattice_name == "midtread-full" and on_lattice:
        work_lattice = "midtread"  # also at k = 1: codes −1, 0 (μL2Q-torch)
    off = level_offset(work_lattice)
    ref_lattice = "midrise" if (work_lattice == "midtread" and bits < 2) else work_lattice
    offsets = set(rows.offset.tolist())
    offset = ("fitted" if "fitted" in offsets else "mean" if "mean" in offsets else "none")
    betas = rows.beta
    straight_through = bool(np.any(rows.ste))
    # what the codes quantize (w − β on offset lattices; w itself where every β is +0)
    rows_x = rows_w if not np.any(betas) and not np.any(np.signbit(betas)) else \
        rows_w - betas[:, None]

    alphas = rows.alpha
    have_codes = bool(np.all(rows.has_codes))
    reasons = []
    rep_rtol = 0.0
    if have_codes:
        C = rows.codes
        Vv = C.astype(np.float64)
        Vv += off
        if alphas_in is not None:
            # an α passed in carries its own dtype's representation error (absolute where
            # the caller's α is subnormal)
            a_dt = np.asarray(alpha).dtype
            a_pos = alphas_in[alphas_in > 0]
            rep = np.zeros_like(a_pos)
            if a_dt.kind == "f":
                rep = diagnose_mod.representation_error(a_pos, _floats.fmt(a_dt, _scale_exp))
            if rows_q is None:
                # codes and α only: the output is taken to be codes·α in q_dtype (w's, as
                # the report labels it), so α is held to that dtype's rounding where it is
                # coarser than α's own (a float64 α of a float32 quantizer)
                rep = np.maximum(rep, diagnose_mod.representation_error(a_pos, q_fmt))
            rep_rtol = _relative_to_alpha_star(float(np.max(rep / a_pos))) \
                if a_pos.size else 0.0
        elif rows_q is not None:
            rep_rtol = _alpha_representation_rtol(rows_q, rows_w, Vv, alphas, offset,
                                                  q_fmt, straight_through)
    if alpha_rtol is None:
        alpha_rtol = max(ALPHA_RTOL_FLOOR, rep_rtol + acc_rtol)
    if have_codes:
        svv = np.einsum("ij,ij->i", Vv, Vv)
        swv = np.einsum("ij,ij->i", rows_x, Vv)
        sww = np.einsum("ij,ij->i", rows_w, rows_w)
        a_star = np.where(svv > 0, swv / np.where(svv > 0, svv, 1.0), 0.0)
        zmask, ell = diagnose_mod.zero_point_levels(Vv, alphas, betas)
        if np.any(zmask):
            # an integer zero point's output α·(u − z) (β = −z·α): its α* is the least-squares
            # α of its levels u − z, where that is the closer reading of α
            s_ll = np.einsum("ij,ij->i", ell, ell)
            a_zp = np.where(s_ll > 0, np.einsum("ij,ij->i", rows_w, ell) /
                            np.where(s_ll > 0, s_ll, 1.0), 0.0)
            zp = zmask & (np.abs(alphas - a_zp) < np.abs(alphas - a_star))
            a_star, svv = np.where(zp, a_zp, a_star), np.where(zp, s_ll, svv)
        excess_rows = (alphas - a_star) ** 2 * svv
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.where(a_star != 0, np.abs(alphas - a_star) / np.abs(a_star),
                           np.where(alphas == 0, 0.0, np.inf))
        alpha_rel_dev = float(np.max(dev))
        excess = float(np.sum(excess_rows))
        total_ww = float(np.sum(sww))
        excess_rel = excess / total_ww if total_ww > 0 else 0.0
        alpha_ok = alpha_rel_dev <= alpha_rtol
        # Lloyd: is each code a nearest level of w/α? (ties count as nearest)
        lo, hi = recover_mod.code_range(bits, lattice_name or work_lattice)
        lloyd = sum(_lloyd_violations(rows_x[s], alphas[s], Vv[s], off, lo, hi)
                    for s in _row_chunks(rows_x))
        codes_in_range = bool(np.all(rows.in_range))
        code_min, code_max = int(C.min()), int(C.max())
        levels_used = diagnose_mod.n_distinct(C)
        codes_out = lay.from_rows(C)
    else:  # no lattice fits some slice: nothing to say about α or the codes
        a_star = np.full(nrows, math.nan)
        alpha_rel_dev, excess, excess_rel, alpha_ok, lloyd = (math.nan, math.nan, math.nan,
                                                              False, 0)
        codes_in_range, code_min, code_max, levels_used, codes_out = False, None, None, None, None
    if rows_q is None:
        rows_q_eff = alphas[:, None] * (rows.codes + off)
    else:
        rows_q_eff = rows_q
    total_ww = float(np.sum(rows_w * rows_w))
    scratch = np.empty(rows_w.shape)  # to work in: one full-size array, not one per step
    d_q = np.subtract(rows_w, rows_q_eff, out=scratch)
    rel_dql = float(np.sum(np.square(d_q, out=d_q))) / total_ww if total_ww > 0 else 0.0
    nan_out = rows_q is not None and not np.all(np.isfinite(rows_q))
    if nan_out:
        rel_dql = math.nan
    rel_param = rel_exact = None
    library = {}  # quantize(arr, method=..., lattice=ref_lattice): not computed twice
    breakpoints = arr.size * (2 ** (bits - 1) - 1)
    # the grid and alternating searches only where the total is small (the grid's 3000
    # steps per slice cost minutes on millions of weights in small groups)
    searches_ok = breakpoints <= EXACT_BREAKPOINTS
    exact_ok = searches_ok or (
        lay.group_size is not None and lay.group_size * (2 ** (bits - 1) - 1) <=
        EXACT_GROUP_BREAKPOINTS)
    extra = {} if exact_ok or not (compute_gaps or check_conventions) else {
        "exact_search": f"not run: N·(2^(k−1) − 1) = {breakpoints} breakpoints > "
                        f"{EXACT_BREAKPOINTS} (search_step(w, bits, method='exact') runs it)"}
    if compute_gaps:
        ref_dtype = None if rows_q is None else q_fmt
        # w as float64 (a view of the rows where the layout is a reshape) and the scratch
        x64 = lay.from_rows(rows_w) if lay.axis is None else None
        work = lay.from_rows(scratch) if lay.axis is None else None
        # (Σw² of the rows is that of w: the same contiguous values in the same order)
        sww_x = total_ww if lay.axis is None else None
        rel_param = _reference(arr, bits, ref_lattice, lay, "param", ref_dtype, _scale_exp,
                               library, x64, work, sww_x)
        if exact_ok:
            rel_exact = _reference(arr, bits, ref_lattice, lay, "exact", ref_dtype,
                                   _scale_exp, library, x64, work, sww_x)
    dql_round = 0.0 if rows_q is None or nan_out else _rounding_dql(
        rows_w, rows_q_eff, q_fmt, alphas if have_codes else None, Vv if have_codes else None,
        total_ww, scratch)
    gap_param = None if rel_param is None else rel_dql - rel_param
    gap_exact = None if rel_exact is None else rel_dql - rel_exact

    conv_rows = []
    if check_conventions and not nan_out:
        target = _floats.at_caller_scale(lay.from_rows(rows_q_eff), q_fmt)
        # float32 replays need w and w² inside float32's normal range
        f32_ok = True
        for s in _row_chunks(rows_w):
            mags = np.abs(rows_w[s])
            mags = mags[mags != 0]
            if mags.size and not (mags.max() <= 2.0 ** 60 and mags.min() >= 2.0 ** -60):
                f32_ok = False
                break
        for cname in conventions.available(bits, ref_lattice):
            if (_scale_free_only and cname in _NOT_SCALE_FREE) or \
                    (not f32_ok and cname in _FLOAT32_REPLAYS) or \
                    (cname == "vecq_ref_exact" and not exact_ok):
                continue
            conv = conventions.CONVENTIONS[cname]
            lib = library.get(cname.removeprefix("vecq_ref_")) \
                if cname in ("vecq_ref_param", "vecq_ref_exact") else None
            lib = None if lib is None else lib.values
            try:
                found = _convention_ulps(conv.fn, lib, arr, bits, ref_lattice, lay, q_fmt,
                                         target, ulps)
            except ImportError:
                continue
            conv_rows.append({"name": cname, "description": conv.description, **found})
    matches = [c["name"] for c in conv_rows if c["match"]]
    exact_matches = [c["name"] for c in conv_rows if c["exact"]]

    components = []
    if on_lattice and have_codes and lattice_name is not None and total_ww > 0 and \
            np.all(alphas > 0):  # an all-zero slice has no step, α or rounding to name
        # VecQ-param per slice, computed for the quality (same rows, lattice and scale),
        # is the diagnosis's per-row VecQ-param: not quantized again
        lib_param = library.get("param")
        known = {} if lib_param is None or lay.per_tensor else {ref_lattice: SimpleNamespace(
            values=lay.to_rows(lib_param.values), codes=lay.to_rows(lib_param.codes))}
        components = diagnose_mod.diagnose(
            rows_w, rows_q_eff, C, alphas, betas, lattice_name, offset, q_dtype, bits,
            straight_through, float(np.max(rows.max_ulps)), alpha_rtol, step_rtol,
            _scale_exp, param=known, levels=Vv)
        if components[0].matches[0].startswith("midtread full range"):
            lattice_name = "midtread-full"

    per_slice_axis = None
    if nan_out:
        reasons.append("wq holds NaN or inf")
    n_other = len(reasons)  # the reasons before this one are not about the lattice
    if nan_out:
        pass
    elif not on_lattice:
        if lay.per_tensor and rows_q is not None and arr.ndim >= 2 and alphas_in is None \
                and rows_c is None:
            per_slice_axis = _fits_per_slice(arr, q_arr, q_fmt, bits, lattice, ulps)
        hint = (f"; it fits one lattice per slice along axis {per_slice_axis}: pass "
                f"`axis={per_slice_axis}`" if per_slice_axis is not None else "")
        worst = float(np.max(rows.max_ulps))
        why = next((x for x in rows.why.tolist() if x), "")
        closest = (why or (f"the worst slice is {worst:g} ulps off" if math.isfinite(worst)
                           else "no α makes every value of a slice a lattice level"))
        reasons.append(f"wq is not on a {lattice or 'midrise/midtread'} lattice β + α·v with "
                       f"codes of {bits} bits within {ulps} ulps (or the straight-through "
                       f"rounding) ({closest}){hint}")
    elif not codes_in_range:
        reasons.append(f"codes {code_min}..{code_max} do not fit {bits} bits "
                       f"({work_lattice} range {code_range(bits, work_lattice)})")
    if on_lattice and offset != "none":
        off_rows = np.flatnonzero(rows.offset != "none").tolist()
        i_off = off_rows[0]
        if nrows > 1 and len(off_rows) > 1:
            # one β per slice: summarised as such, never one slice's β for all of them
            b_caller = np.ldexp(betas[off_rows], -_scale_exp)
            # β equal to its slice's mean(w) (a freely fitted β labelled "mean" is not)
            means = sum(1 for i in off_rows if rows.offset[i] == "mean" and
                        float(betas[i]) == float(np.mean(rows_w[i])))
            reasons.append(f"the levels are offset by a β per slice ({len(off_rows)} of "
                           f"{nrows} slices, β from {float(b_caller.min()):.4g} to "
                           f"{float(b_caller.max()):.4g}" +
                           (f"; = mean(w) in {means}" if means else "") +
                           "); VecQ's lattice has no offset")
        else:
            where = f" in slice {i_off}" if nrows > 1 else ""
            beta_txt = float(np.ldexp(betas[i_off], -_scale_exp))  # in the caller's units
            reasons.append(f"the levels are offset by β = {beta_txt:.6g}"
                           f"{' = mean(w)' if rows.offset[i_off] == 'mean' else ''}{where} "
                           f"(μL2Q-style); VecQ's lattice has no offset")
    if on_lattice and lattice_name == "midtread-full":
        used = (f"codes down to {code_min}" if code_min == -(2 ** (bits - 1)) else
                f"its scale max|w|/(2^(k−1) − ½); the code {-(2 ** (bits - 1))} unused here")
        reasons.append(f"full-range midtread lattice ({used}); VecQ's midtread lattice is "
                       f"symmetric ±(2^(k−1) − 1)")
    if on_lattice and have_codes and not alpha_ok:
        reasons.append(f"α is not the least-squares optimum for its codes (relative deviation "
                       f"{alpha_rel_dev:.3g} > {alpha_rtol:.3g}; excess relative DQL "
                       f"{excess_rel:.3g})")
    identifiable = True
    if len(reasons) > n_other and rows_q is not None and alphas_in is None and \
            rows_c is None and not nan_out:
        fine = _resolution_limit(rows_q, q_fmt, bits, ulps)
        if fine is not None:
            # every output this small is within the ulps of some lattice: the lattice
            # reasons are artefacts of the search, not evidence against the values
            identifiable = False
            m_caller = float(np.ldexp(np.max(np.abs(rows_q)), -_scale_exp))
            reasons[n_other:] = [
                f"wq is too close to its dtype's resolution to identify the lattice: its "
                f"values are {q_dtype} subnormals of at most {m_caller:.3g} "
                f"= {fine[0]:g}·η, and every output that small lies within {ulps} ulps of "
                f"some {bits}-bit lattice (any α ≤ {fine[1]}·η), so the lattice, α and the "
                f"codes cannot be told from the values"]
    # conformance: is the step one of VecQ's? (the lattice, offset and α are above)
    step_rule, step_interval = None, None
    if on_lattice and have_codes and identifiable and lattice_name in ("midrise", "midtread") \
            and not nan_out:
        step_rule, step_interval = _vecq_step(rows_w, rows_x, C, alphas, bits, lattice_name,
                                              arr, lay, ref_lattice, exact_ok, step_rtol, False,
                                              searches_ok, library)
        if step_rule is None and rows_q is not None:
            # many bits on few weights, or values a few subnormal spacings apart: several
            # lattices fit, and the one recovered need not be VecQ's; VecQ's own output
            # reproducing wq is then a reading that fits too
            step_rule = _vecq_output(arr, rows_q, q_fmt, ulps, bits, ref_lattice, lay,
                                     exact_ok, _scale_exp, searches_ok, library)
        if step_rule is None and exact_ok:  # the searches (not where their cost explodes)
            step_rule = _vecq_step(rows_w, rows_x, C, alphas, bits, lattice_name, arr, lay,
                                   ref_lattice, exact_ok, step_rtol, True, searches_ok,
                                   library)[0]
        if step_rule is None:
            reasons.append("the step is none of VecQ's: not λ_k·σ (exact or 4-decimal table, "
                           "σ with ddof 0 or 1, ± 1e-7) within the tolerance, nor the step of "
                           "VecQ's exact, grid or alternating search" +
                           (f"; s ∈ {step_interval}" if step_interval else "") +
                           (f"; {hint}" if (hint := diagnose_mod.levels_hint(
                               C, bits, lattice_name)) else ""))
    # quality: the relative DQL beside VecQ's (not part of the verdict)
    quality_note = ""
    within_param = None
    if rel_param is not None and not nan_out:
        within_param = bool(rel_dql <= rel_param * (1 + dql_rtol) + 2 * dql_round + 1e-15)
        if not within_param:
            hint = diagnose_mod.levels_hint(C, bits, lattice_name) if (
                have_codes and on_lattice and lattice_name) else ""
            quality_note = (f"worse than VecQ-param by more than {dql_rtol:g} (relative)"
                            + (f"; {hint}" if hint else ""))
    quality = {"relative_dql": rel_dql, "vecq_param": rel_param, "vecq_exact": rel_exact,
               "gap_to_param": None if rel_param is None else rel_dql - rel_param,
               "gap_to_exact": None if rel_exact is None else rel_dql - rel_exact,
               "within_param": within_param, "note": quality_note,
               "dql_rounding": dql_round, "reference_lattice": ref_lattice}
    passed = not reasons

    def per_slice(x):
        return lay.slices(x)

    n_negzero = 0 if q_arr is None else int(np.count_nonzero((q_arr == 0) & np.signbit(q_arr)))
    if not passed and on_lattice and offset != "none" and rows_q is not None and \
            rows_c is None and alphas_in is None:
        # A few values at a high bitwidth fit several lattices, and the recovery may settle on
        # an offset one; where VecQ's own output reproduces wq bit for bit, its codes and α
        # are a reading that fits too, and the one this check is about.
        for method in ("param", "exact"):
            if f"vecq_ref_{method}" in exact_matches:
                q = quantize(arr, bits, method=method, lattice=ref_lattice, axis=lay.axis,
                             group_size=lay.group_size)
                alt = _verify(arr, wq, codes=q.codes, alpha=q.alpha, bits=bits,
                              lattice=ref_lattice, axis=axis, group_size=group_size, ulps=ulps,
                              alpha_rtol=alpha_rtol, dql_rtol=dql_rtol,
                              check_conventions=check_conventions, compute_gaps=compute_gaps,
                              name=name, _scale_exp=_scale_exp)
                if alt.passed:
                    return alt
    return VerifyReport(
        shape=tuple(arr.shape), dtype=str(q_dtype), bits=bits, lattice=lat_found,
        axis=lay.axis, group_size=lay.group_size, on_lattice=on_lattice,
        codes_in_range=bool(codes_in_range),
        reconstruction_ulps=float(np.max(rows.max_ulps)),
        alpha=per_slice(alphas), alpha_lsq=per_slice(a_star), alpha_rel_dev=alpha_rel_dev,
        alpha_optimal=bool(alpha_ok), excess_dql=excess, excess_relative_dql=excess_rel,
        lloyd_violations=lloyd, codes=codes_out, code_min=code_min, code_max=code_max,
        levels_used=levels_used, relative_dql=rel_dql, relative_dql_param=rel_param,
        relative_dql_exact=rel_exact, gap_to_param=gap_param, gap_to_exact=gap_exact,
        conventions=conv_rows, matches=matches, exact_matches=exact_matches,
        negative_zeros=n_negzero, passed=passed, reasons=reasons,
        tolerances={"ulps": ulps, "straight_through_ulps": "2·ulp(|w| + |wq|)",
                    "alpha_rtol": alpha_rtol, "dql_rtol": dql_rtol, "step_rtol": step_rtol,
                    "representation_rtol": rep_rtol, "accumulation_rtol": acc_rtol,
                    "accumulation_dtype": str(diagnose_mod.accumulation_dtype(q_dtype)),
                    "dql_rounding": dql_round},
        name=name,
        lattice_name=lattice_name if on_lattice else None,
        offset=offset if on_lattice else None,
        beta=per_slice(betas) if on_lattice and offset != "none" else None,
        straight_through=bool(straight_through and on_lattice),
        per_slice_axis=per_slice_axis,
        components=components, identifiable=identifiable, extra=extra,
        conforms=passed, rule=step_rule if passed else None, quality=quality,
        w_dtype=str(arr.dtype), from_values=rows_q is not None)


#: The searches tried up to 8 bits only (the paper's grid of 3000 λ in [0.001, 3]·σ costs
#: minutes at 16 bits, where λ_k lies below its first point).
_SMALL_K_SEARCHES = ("grid", "alternating")


def _vecq_step(rows_w, rows_x, C, alphas, bits, lattice, arr, lay, ref_lattice, exact_ok, rs,
               searches, searches_ok=None, library=None):
    """The VecQ step rule that gives the codes ``C`` in every slice, or None; and, for one
    slice, the interval of steps that give them (text, in units of σ).

    A rule is VecQ's when it is ``λ_k·σ`` (:func:`~vecq_ref.check.diagnose.is_vecq_step_rule`:
    the exact or 4-decimal table, σ with ddof 0 or 1, with or without ``+1e-7``) or the step
    VecQ's exact, grid or alternating search finds on ``w`` (``vecq_ref.quantize`` with that
    ``method``), lying within the interval of steps that give the codes, widened by ``rs``
    (σ accumulated, and the quotients ``w/s`` rounded to the output dtype). A slice of zeros
    (``w − β = 0``) takes any step. ``searches``: test the searches' steps (else the λ·σ
    rules only): the exact search's where ``exact_ok``, the grid's and the alternating
    search's where ``searches_ok`` too (default ``exact_ok``). ``library``: outputs of
    ``quantize(arr, method=…, lattice=ref_lattice)`` already computed (not run again)."""
    searches_ok = exact_ok if searches_ok is None else searches_ok
    lo, hi, bad = diagnose_mod.step_interval(rows_x, C, bits, lattice)
    free = ~_any_nonzero_rows(rows_x)
    usable = free | ~bad
    lo_t, hi_t = lo * (1 - rs), hi * (1 + rs)
    interval = None
    if rows_w.shape[0] == 1:
        sig = float(diagnose_mod._sigmas(rows_w)["σ (ddof 0)"][0])
        if not usable[0] or lo[0] > hi[0]:  # the elements' step intervals do not meet
            interval = "∅ (no single step gives these codes)"
        elif sig > 0 and math.isfinite(hi[0]):
            interval = f"[{lo[0] / sig:.6g}, {hi[0] / sig:.6g}]·σ"
    if not np.all(usable):
        return None, interval
    if not searches:
        cands = diagnose_mod.step_candidates(rows_w, rows_x, bits, lattice)
        names = [name for name, (s_, _) in cands.items()
                 if diagnose_mod.is_vecq_step_rule(name) and
                 np.all(free | ((lo_t <= s_) & (s_ <= hi_t)))]
        return (diagnose_mod.summarize_steps(names) if names else None), interval
    for method in ("exact", "grid", "alternating"):
        if not exact_ok or (method in _SMALL_K_SEARCHES and (bits > 8 or not searches_ok)):
            continue
        q = (library or {}).get(method)
        try:
            if q is None:
                q = quantize(arr, bits, method=method, lattice=ref_lattice, axis=lay.axis,
                             group_size=lay.group_size)
        except (ImportError, ValueError):
            continue
        s_ = np.asarray(q.step, dtype=np.float64).reshape(-1)
        if s_.size == lo.size and np.all(free | ((lo_t <= s_) & (s_ <= hi_t))):
            return f"the step of VecQ's {method} search", interval
    return None, interval


def _lattice_from_codes(rows_w, rows_c, bits, rs):
    """The lattice (a :data:`vecq_ref.check.recover.LATTICES` name) that integer codes given
    without ``wq`` come from, read from the codes and ``w``; a ValueError asks for
    ``lattice=`` where they cannot say.

    A lattice is possible when the codes fit its range and, in every slice, some step gives
    them under its thresholds (midrise: ``c ≤ w/s < c + 1``; midtread: ``|w/s − c| ≤ ½``;
    :func:`~vecq_ref.check.diagnose.step_bounds`, within ``rs``). Symmetric codes −7…7 at 4
    bits from ``rint(w/s)`` are midtread (narrow), −8…7 from it midtread full range, and
    ``floor(w/s)``'s −8…7 midrise: small weights of both signs tell the thresholds apart.
    Where both families remain, the one whose least-squares levels fit ``w`` better by more
    than a factor of two is taken; else the codes cannot say.
    """
    lo, hi = int(rows_c.min()), int(rows_c.max())
    possible, dql = [], {}
    for fam in ("midrise", "midtread"):
        name = fam
        if fam == "midtread":
            if bits < 2:
                continue
            nlo, nhi = recover_mod.code_range(bits, "midtread")
            name = "midtread" if (lo >= nlo and hi <= nhi) else "midtread-full"
        clo, chi = recover_mod.code_range(bits, name)
        if lo < clo or hi > chi:
            continue
        lo_s, hi_s, bad = diagnose_mod.step_interval(rows_w, rows_c, bits, name)
        v = rows_c.astype(np.float64) + level_offset(fam)
        dql[name] = diagnose_mod._rel_dql(rows_w, diagnose_mod._lsq_values(rows_w, v))
        if not np.any(bad) and np.all(lo_s <= hi_s * (1 + rs) ** 2):
            possible.append(name)
    if len(possible) == 1:
        return possible[0]
    pool = possible or list(dql)
    if len(pool) == 1:
        return pool[0]
    if len(pool) == 2:
        a, b = sorted(pool, key=lambda k: dql[k])
        if dql[a] * 2 < dql[b]:
            return a
    V.fail("lattice", "given: the codes fit " + (" and ".join(pool) or "no lattice") +
           f" (codes {lo}..{hi} at {bits} bits); pass `lattice=`", "None")


def _vecq_output(arr, rows_q, q_fmt, ulps, bits, lattice, lay, exact_ok, exp,
                 searches_ok=None, library=None):
    """``"VecQ-param's output"`` (or the released expression's, or VecQ-exact's where the
    exact search runs, or the grid's or the alternating search's where ``searches_ok``,
    default ``exact_ok``) when that output, rounded to ``wq``'s dtype, lies within ``ulps``
    of ``wq`` everywhere; else None. ``library``: ``quantize(arr, method=…,
    lattice=lattice)`` already computed (at the caller's scale, ``exp ≤ 0``): not run
    again."""
    searches_ok = exact_ok if searches_ok is None else searches_ok
    target = _floats.at_caller_scale(rows_q, q_fmt)
    x = np.ldexp(arr, -exp) if exp > 0 else arr
    lats = (lattice,) + ((("midtread",) if lattice == "midrise" else ("midrise",))
                         if bits >= 2 else ())
    for method in ("param", "paper", "exact", "grid", "alternating"):
        for lat in lats:
            if (method not in ("param", "paper") and not exact_ok) or \
                    (method == "paper" and lat != "midrise") or \
                    (method in _SMALL_K_SEARCHES and (bits > 8 or not searches_ok)):
                continue
            # (the library's float64 values round to wq's dtype as arr's own would: one
            # rounding where arr is float64 or of wq's dtype)
            q = (library or {}).get(method) if lat == lattice and exp <= 0 and (
                arr.dtype == np.float64 or _floats.dtype_of(q_fmt) == arr.dtype) else None
            try:
                if q is None and not _sample_matches(x, target, q_fmt, ulps, bits, method,
                                                     lat, lay, exp):
                    continue  # some group of the sample differs: the whole cannot match
                if q is None:
                    q = quantize(x, bits, method=method, lattice=lat, axis=lay.axis,
                                 group_size=lay.group_size)
            except (ImportError, ValueError):
                continue
            vals = np.ldexp(np.asarray(q.values, dtype=np.float64), max(exp, 0))
            got = _floats.at_caller_scale(lay.to_rows(vals), q_fmt)
            if np.all(ulp_distance(got, target) <= ulps):
                return {"param": "VecQ-param's output", "paper": "the released Keras expression",
                        "exact": "VecQ-exact's output"}.get(
                            method, f"VecQ's {method} search output") + f" ({lat})"
    return None


#: :func:`_vecq_output` first quantizes this many groups (where the groups run along the
#: last axis and there are more): an output that differs in one of them is not that
#: method's, and the whole tensor is not quantized for it.
SAMPLE_GROUPS = 256


def _sample_matches(x, target, q_fmt, ulps, bits, method, lat, lay, exp):
    """Whether ``method``'s output on the first :data:`SAMPLE_GROUPS` groups of ``x`` lies
    within ``ulps`` of those groups of ``target`` (True where there is no such sample:
    not in groups along the last axis, or no more groups than that). Each group is
    quantized on its own, so these are the first groups of the whole tensor's output."""
    if lay.axis is not None or lay.group_size is None or \
            target.shape[0] <= SAMPLE_GROUPS:
        return True
    part = np.ascontiguousarray(x).reshape(-1)[:SAMPLE_GROUPS * lay.group_size]
    q = quantize(part, bits, method=method, lattice=lat, group_size=lay.group_size)
    vals = np.ldexp(np.asarray(q.values, dtype=np.float64), max(exp, 0))
    got = _floats.at_caller_scale(vals.reshape(SAMPLE_GROUPS, lay.group_size), q_fmt)
    return bool(np.all(ulp_distance(got, target[:SAMPLE_GROUPS]) <= ulps))


def _resolution_limit(rows_q, fmt, bits, ulps):
    """``(max|wq|/η, (2·ulps − 1))`` when every output of ``wq``'s magnitude lies within
    ``ulps`` of some ``bits``-bit lattice, else None.

    Where every value is a subnormal of ``fmt`` (spacing ``η``) and ``max|wq| ≤
    (2·ulps − 1)·η·(2^(k−1) − ½)``, the midrise lattice of step ``α = (2·ulps − 1)·η`` holds
    all of them: its nearest level is within ``α/2``, rounded to the dtype within
    ``α/2 + η/2 = ulps·η`` (a multiple of η), and the codes fit. Any output that small
    passes the lattice test for some α, so none can be shown off every lattice, and the
    lattice the values came from cannot be singled out.
    """
    if ulps < 1:
        return None
    eta = diagnose_mod.smallest_subnormal(fmt)
    tiny = eta / (2 * diagnose_mod.unit_roundoff(fmt))  # the smallest normal value
    m = float(np.max(np.abs(rows_q))) if rows_q.size else 0.0
    if not m < tiny or m > (2 * ulps - 1) * eta * (2 ** (bits - 1) - 0.5):
        return None
    return m / eta, 2 * ulps - 1


def _fits_per_slice(arr, q_arr, q_fmt, bits, lattice, ulps):
    """The first axis along which every slice of ``wq`` lies on its own lattice, or None."""
    for ax in range(arr.ndim):
        lay = _layout.layout(arr.shape, ax, None)
        rw = np.ascontiguousarray(lay.to_rows(arr), dtype=np.float64)
        rq = np.ascontiguousarray(lay.to_rows(q_arr), dtype=np.float64)
        if all(_recover_row(rq[i], rw[i], q_fmt, bits, lattice, ulps).ok
               for i in range(rw.shape[0])):
            return ax
    return None


__all__ = ["VerifyReport", "ulp_distance", "verify"]
