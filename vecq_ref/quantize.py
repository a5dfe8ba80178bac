"""``quantize()`` and the ``Quantized`` result (docs/theory.md §3, §4).

Methods
-------
``"param"``
    docs/theory.md §4.1: σ = population std of each vector (ddof = 0, not mean-centred for
    the codes), step = λ_k·σ with λ_k from :func:`vecq_ref.optimal_step`, codes, then α*
    (driving stage).
``"paper"``
    The released Keras expression, exactly: ``s = σ·λ + 1e-7`` with the released 4-decimal
    table (6/(2^k − 1) above 8 bits), ``v = round_half_even(clip(w/s − ½, −M, M − 1)) + ½``,
    ``α = ⟨w,v⟩/(⟨v,v⟩ + 1e-7)``. Midrise only. Arithmetic in float64 (the Keras code runs in
    the tensor's float32; see docs/theory.md §7 and ``vecq_ref.verify``).
``"exact"``, ``"grid"``, ``"alternating"``
    The step from the search of :func:`vecq_ref.search_step` (run on the same prepared
    rows: ``search._prepare`` validates, lays out and scales once for both), then the same
    codes and α* as ``"param"``. On every level set but VecQ's own unweighted ones (signed
    scale, midtread-full, integer zero point, codebooks, importance weights) the general
    path of :mod:`vecq_ref.search`: codes and sums of the nearest levels at the search's step,
    α = S1/S2, values ``α·(ℓ − z)``, weighted losses.

Every method but ``"paper"`` returns the least-squares α* for its codes, so
``loss.excess == 0`` up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _layout, tables
from . import _validation as V
from ._kernels import lattice as K
from ._kernels.reduce import row_moments
from .lattice import LevelSet, code_dtype, level_offset
from .loss import VectorLoss, dql_at, loss_from_sums, orientation_from_min

PAPER_EPSILON = 1e-7
FUSED_METHODS = ("param", "paper")
SEARCH_METHODS = ("exact", "grid", "alternating")
METHODS = FUSED_METHODS + SEARCH_METHODS


@dataclass(frozen=True, eq=False)
class Quantized:
    """A quantized tensor ``values = α·v`` with everything needed to check it.

    Attributes
    ----------
    codes : ndarray of int8/int16, shape of the input.
    alpha : float, or ndarray of the slice shape (per channel / group).
    step : float or ndarray: the threshold spacing that produced ``codes`` (weight units).
    bits, lattice, method : the settings used.
    values : ndarray, dequantized ``α·v`` in the input's float dtype (float64 for integers;
        float32 for bf16/fp8, whose rounding would move the levels off their lattice).
    loss : VectorLoss of the whole tensor (floats), from float64 sums of ``α·v`` before the
        cast to the output dtype.
    slice_loss : VectorLoss with one entry per slice, or None per tensor.
    axis, group_size : the granularity.
    info : method-specific extras (σ per slice, the search result, ...).
    zero_point : int or ndarray or None
        With ``zero_point="integer"``: ``z`` per slice (``values = α·(levels[code] − z)``).
    level_set : LevelSet or None
        The level set of the codes (None from the baselines).
    offset : float or ndarray or None
        With ``zero_point="float"``: the real ``m`` per slice (``values = α·levels + m``).
    """

    codes: np.ndarray
    alpha: object
    step: object
    bits: int
    lattice: str
    method: str
    values: np.ndarray
    loss: VectorLoss
    slice_loss: VectorLoss | None = None
    axis: int | None = None
    group_size: int | None = None
    info: dict = field(default_factory=dict)
    zero_point: object = None
    level_set: LevelSet | None = None
    offset: object = None

    @property
    def levels(self):
        """Float levels ``ℓ`` (``values = α·ℓ``): ``codes + ½`` (midrise, offset-midrise),
        ``codes`` (midtread, midtread-full), a codebook's level of each code, ``codes − z``
        with a zero point, or the level table ``info["levels"]`` looked up by code
        (nonuniform)."""
        if self.lattice == "nonuniform":
            table = np.asarray(self.info["levels"], dtype=np.float64)
            idx = self.codes.astype(np.intp) + 2 ** (self.bits - 1)
            if table.ndim == 1:
                return table[idx]
            lay = _layout.Layout(self.codes.shape, self.axis, self.group_size)
            rows = np.take_along_axis(table.reshape(-1, table.shape[-1]), lay.to_rows(idx), 1)
            return lay.from_rows(rows)
        lset = self.level_set
        if lset is not None and (lset.codebook is not None or lset.zero_point is not None):
            table = np.asarray(lset.levels, dtype=np.float64)
            ell = table[self.codes.astype(np.intp) - lset.code_range[0]]
            if self.zero_point is None:
                return ell
            lay = _layout.Layout(self.codes.shape, self.axis, self.group_size)
            z = np.asarray(self.zero_point, dtype=np.float64).reshape(-1)
            rows = lay.to_rows(ell)
            return lay.from_rows(rows - np.broadcast_to(z[:, None], (rows.shape[0], 1)))
        offset = 0.5 if self.lattice in ("midrise", "offset-midrise") else 0.0
        return self.codes.astype(np.float64) + offset

    def __repr__(self):
        a = self.alpha if np.ndim(self.alpha) == 0 else f"<{np.shape(self.alpha)} array>"
        return (f"Quantized(method={self.method!r}, bits={self.bits}, lattice={self.lattice!r}, "
                f"shape={self.codes.shape}, alpha={a}, "
                f"relative_dql={self.loss.relative_dql:.6g})")


def _fused(rows, steps, bits, lattice, paper, codes=None):
    """Codes (into ``codes`` when given) and float64 sums of every row for given steps."""
    if codes is None:
        codes = np.empty(rows.shape, dtype=code_dtype(bits))
    sums = K.codes_and_sums(rows, steps, bits, lattice == "midtread", paper, codes)
    return codes, sums


def _alpha(sums, paper):
    swv, svv = sums[:, 0], sums[:, 1]
    if paper:
        return swv / (svv + PAPER_EPSILON)
    return np.where(svv > 0, swv / np.where(svv > 0, svv, 1.0), 0.0)


def _losses(sww, sums, steps, alpha):
    """Per-row and whole-tensor VectorLoss from the fused sums (taken at the reference steps
    ``steps``: see :func:`_refined`)."""
    swv, svv, ds, rs = sums.T
    orient, dql, rel, excess = loss_from_sums(sww, swv, svv, ds, rs, steps, alpha)
    per_row = VectorLoss(orient, dql, dql, rel, excess)
    total_ww = float(np.sum(sww))
    total = float(np.sum(dql))
    swq = float(np.sum(alpha * swv))
    sqq = float(np.sum(alpha * alpha * svv))
    beta = swq / sqq if sqq > 0 else 0.0
    # min over one global scale β of ‖w − β·w_q‖², summed per row without cancellation.
    min_total = float(np.sum(dql_at(beta * alpha, ds, rs, svv, steps))) if sqq > 0 else total_ww
    whole = VectorLoss(
        float(orientation_from_min(min_total, total_ww, swq < 0)) if total_ww > 0 else 0.0,
        total, total, total / total_ww if total_ww > 0 else 0.0, max(total - min_total, 0.0))
    return whole, per_row


#: A row's loss from sums at a reference step ``s`` keeps all but ``log2(_CANCEL)`` bits when
#: its terms are at most ``_CANCEL`` times the result; beyond, it is summed again at α*.
_CANCEL = 2.0 ** 10


def _refined(rows, codes, sums, steps, alpha, lattice):
    """``(sums, reference steps)`` from which every row's loss is computed without cancellation.

    ``‖w − αv‖² = ds + 2(s − α)·rs + (s − α)²·Σv²`` and ``min = ds − rs²/Σv²`` (sums at the step
    ``s`` that made the codes) cancel when ``s`` is far from α and α* (``paper`` at weights far
    below its absolute 1e-7: ``s ≈ 1e-7``, α ≈ 1e-40, and the loss came out 0 or 1e51), or
    when the loss is tiny (a constant vector, weights already on a lattice). Such rows (their
    terms over :data:`_CANCEL` times the result, or not finite) are summed again at
    ``s = α* = Σwv/Σv²``, where ``rs ≈ 0`` and both losses are sums of non-negative terms. Rare:
    most rows keep the first pass's sums.
    """
    swv, svv, ds, rs = sums.T
    safe = np.where(svv > 0, svv, 1.0)
    with np.errstate(all="ignore"):
        d = steps - alpha
        dql = ds + 2.0 * d * rs + d * d * svv
        terms = ds + 2.0 * np.abs(d * rs) + d * d * svv
        lsq = ds - rs * rs / safe
        lsq_terms = ds + rs * rs / safe
        redo = ~((terms <= _CANCEL * dql) & (lsq_terms <= _CANCEL * lsq))
    redo &= svv > 0
    if not np.any(redo):
        return sums, steps
    ref = np.where(redo, np.where(svv > 0, swv / safe, 0.0), steps)
    again = K.level_sums(rows, codes, ref, lattice == "midtread")
    return np.where(redo[:, None], again, sums), ref


def _finish(out_dtype, lay, rows, codes, sums, moments, steps, alpha, bits, lattice,
             method, info, k=0, out=None, ref=None, level_set=None):
    """Assemble the result from sums at the working scale ``2**k·w`` (taken at the reference
    steps ``ref``, default ``steps``); α, step, σ and the losses are scaled back exactly
    (squared losses by ``2**(-2k)``)."""
    whole, per_row = _losses(moments[:, 2], sums, steps if ref is None else ref, alpha)
    # Values that do not fit the output dtype are an error, raised before they are made.
    # ``top`` ≥ every |α·v| of the lattice; only when it is near the limit are the codes
    # used read, at the working scale (where α·v is finite even beyond the float64 range).
    with np.errstate(over="ignore"):
        top = float(np.ldexp(np.max(np.abs(alpha)), bits - 1 - k))
    if not top * (1 + 2 ** -20) < float(np.finfo(out_dtype).max):
        V.check_values_fit(_abs_top(codes, alpha, lattice), out_dtype, k=k)
    if k < 0:  # α (2·mean|w| at 1 bit) can exceed float64 where every α·v fits
        V.check_scale_fits(np.maximum(np.abs(alpha), np.abs(steps)), k)
    with np.errstate(over="ignore", under="ignore"):
        if method == "paper" and k > 0:
            # Where 2**k·1e-7 overflowed (weights near 1e-310) the step at the caller's scale
            # is still σλ + 1e-7 there: computed so, rather than returned as inf.
            steps = np.where(np.isinf(steps), np.ldexp(np.sqrt(moments[:, 1]) *
                                                       tables.paper_lambda(bits), -k)
                             + PAPER_EPSILON, np.ldexp(steps, -k))
            k_steps = 0
        else:
            k_steps = k
        alpha, steps, sigma = (np.ldexp(a, -s) for a, s in (
            (alpha, k), (steps, k_steps), (np.sqrt(moments[:, 1]), k)))
    if out is _LOSS_ONLY:
        return whole, k
    work = np.float32 if out_dtype == np.float16 else out_dtype
    values = out.values if out is not None and out.values.dtype == work else (
        np.empty(rows.shape, dtype=work))
    K.scale_levels(codes, alpha, level_offset(lattice), values)
    whole, per_row = _unscale_loss(whole, k), _unscale_loss(per_row, k)
    slice_loss = None
    if not lay.per_tensor:
        slice_loss = VectorLoss(*(lay.slices(getattr(per_row, f)) for f in
                                  ("orientation", "modulus", "dql", "relative_dql", "excess")))
    codes, values = lay.from_rows(codes), lay.from_rows(values).astype(out_dtype, copy=False)
    if out is not None:
        codes, values = out.finish(codes, values)
    return Quantized(
        codes=codes, alpha=lay.slices(alpha), step=lay.slices(steps),
        bits=bits, lattice=lattice, method=method,
        values=values, loss=whole,
        slice_loss=slice_loss, axis=lay.axis, group_size=lay.group_size,
        info={"sigma": lay.slices(sigma), **info}, level_set=level_set)


def _abs_top(codes, alpha, lattice):
    """Largest |α·v| per row, in float64, from the codes actually used (at α's scale)."""
    off = level_offset(lattice)
    lo = codes.min(axis=1).astype(np.float64) + off
    hi = codes.max(axis=1).astype(np.float64) + off
    return np.abs(alpha) * np.maximum(np.abs(lo), np.abs(hi))


def _unscale_loss(loss, k):
    """A VectorLoss computed at the scale ``2**k·w`` in the units of ``w``: the squared losses
    times ``2**(-2k)`` (exact unless the result leaves the float64 range: then ±inf or a
    rounded subnormal), the relative ones unchanged."""
    if k == 0:
        return loss
    with np.errstate(over="ignore", under="ignore"):
        return VectorLoss(loss.orientation, np.ldexp(loss.modulus, -2 * k),
                          np.ldexp(loss.dql, -2 * k), loss.relative_dql,
                          np.ldexp(loss.excess, -2 * k))


def quantize(w, bits=None, method="param", lattice=None, axis=None, group_size=None,
             precision="float64", out=None, *, signed_scale=False, zero_point=None,
             codebook=None, weights=None, **options):
    """Quantize ``w`` to ``bits`` with VecQ: steer (choose the codes), then drive (α*).

    Parameters
    ----------
    w : array_like
        Weights: float16/32/64 or integer, any shape; ``__array__``/``__dlpack__`` accepted.
        Never modified.
    bits : int
        Bitwidth k in [1, 16] (≥ 2 for midtread); optional with a codebook.
    method : {"param", "paper", "exact", "grid", "alternating"}
        How the step is chosen (module docstring).
    lattice : {"midrise", "midtread", "midtread-full", "codebook"} or LevelSet, optional
        Default ``"midrise"`` (``"midtread-full"`` with a zero point, ``"codebook"`` with a
        codebook): :func:`vecq_ref.lattice.level_set`.
    axis : int, optional
        Quantize each slice along this axis (per output channel) with its own step and α.
    group_size : int, optional
        Quantize each contiguous group of this many weights along the last axis.
    precision : {"float64", "float32"}
        ``"float32"`` (``method="paper"`` only) evaluates the released Keras expression in
        float32 as Keras does (:mod:`vecq_ref.check.released`); values are float32.
    out : tuple of two ndarrays, optional
        ``(codes, values)`` to write the result into, as NumPy's ``out=``: ``codes`` of the
        code dtype (int8 for ``bits`` ≤ 8, else int16), ``values`` of the values' dtype (that
        of ``w``, float64 for integers), both of ``w``'s shape, writeable, sharing no memory
        with ``w`` or each other; any strides. The result's ``codes`` and ``values`` are
        these arrays. Saves allocating (and page-faulting) two tensors per call, e.g. in a
        training loop. Not with ``precision="float32"``.
    signed_scale : bool
        α of either sign (the mirrored level set is searched too).
    zero_point : {None, "integer", "float"}
        ``"integer"``: codes ``u ∈ [0, 2^k − 1]`` and ``values = α·(u − z)`` with an integer
        ``z`` per slice (the result's ``zero_point``); ``"float"``: ``values = α·u + m`` with
        a real ``m`` per slice (the result's ``offset``), ``method="exact"`` only (a 2-D
        search: exact for slices of up to 32 weights at up to 4 bits, else the best found,
        ``info["search"].certified`` False; :mod:`vecq_ref.search`).
    codebook : str or array_like, optional
        ``"nf4"``, ``"fp4"``, ``"iq4_nl"`` or ascending levels: ``values = α·codebook[code]``.
    weights : array_like, optional
        Importance ``h ≥ 0`` broadcastable to ``w``: the search minimises ``‖w − x̂‖²_h``
        and ``loss`` is the weighted loss (``dql = Σh·(w − x̂)²``, relative to ``Σh·w²``).
    **options
        Passed to :func:`vecq_ref.search_step` for the search methods.

    Returns
    -------
    Quantized

    Raises
    ------
    ValueError
        When ``w`` holds NaN/Inf, or when a value ``α·v`` would not fit ``w``'s dtype (e.g.
        float16 weights near 65504 whose top level lands above it): the message names the
        dtype and the fix (``w.astype(np.float32)``); inf is never returned.

    Notes
    -----
    Valid combinations (the level sets of :func:`vecq_ref.lattice.level_set`):

    ===========  ===============================  =========  =================================
    method       level sets                       weights    path
    ===========  ===============================  =========  =================================
    param        midrise, midtread (positive α)   no         λ_k·σ (VecQ's table)
    paper        midrise (positive α)             no         the released Keras expression
    exact        every level set                  optional   VecQ's search (midrise,
                                                             midtread, unweighted); else the
                                                             general path of
                                                             :mod:`vecq_ref.search`
    grid         every level set but a real       optional   as exact
    alternating  offset (``zero_point="float"``)
    ===========  ===============================  =========  =================================

    With ``zero_point="float"`` the values are ``α·u + m`` with the real ``offset`` m of each
    slice and the loss is the direct ``Σh(w − α·u − m)²`` (:mod:`vecq_ref.search`).

    On the general path the codes are those of the nearest level of ``w/step`` (ties farther
    from zero), in ``level_set.code_dtype`` (a codebook's index, ``u`` with a zero point),
    α = ⟨w,ℓ⟩_h/⟨ℓ,ℓ⟩_h (signed with ``signed_scale``), values ``α·(levels[code] − z)``
    computed in float64 then rounded once to the output dtype, and ``loss`` from the sums
    ``Σh·w²``, ``S1 = Σh·w·ℓ``, ``S2 = Σh·ℓ²``: ``dql = Σh·w² − 2αS1 + α²S2``.

    An all-zero vector gets σ = 0, step 0, codes 0, α = 0 and relative DQL 0. A constant
    vector gets σ = 0 exactly (step 0 with ``param`` and ``grid``), one code for all its
    weights, and values within the rounding of α = Σwv/Σv² (a few ulps: the relative DQL is
    that of the returned values, ≲ 1e-30, and 0 where α·v rounds back to ``w``).

    Scale: for any power of two ``2**e`` with ``2**e·w`` finite and exact, ``quantize(2**e·w)``
    has the same codes as ``quantize(w)`` and α, step and σ times ``2**e``, the squared losses
    times ``2**(2e)`` (float64 weights are computed at a power-of-two scale where nothing
    overflows or underflows, :func:`vecq_ref._validation.scale_exponent`, then scaled back;
    a squared loss beyond the float64 range is returned as inf, the relative losses are
    always finite). The ``"paper"`` method is the exception: the released expression adds an
    absolute 1e-7 (in weight units) to σλ, so its codes do depend on the scale; it is
    computed at the same working scale with that 1e-7 scaled too, which gives the codes and
    α of the caller's-scale float64 expression wherever that one neither overflows nor
    underflows, and finite results where it would (float64 weights near 1e300 or 1e-310).

    ``loss`` describes the float64 values ``α·v`` (before the cast to the output dtype): its
    sums are taken at a reference step close to α*, so the loss keeps its precision even when
    α is far from the step (``paper`` far below 1e-7) or the loss is tiny (VecQ's sets,
    unweighted; on the general path it comes from the sums above, with an absolute error of
    the order of ε·Σh·w²).

    Examples
    --------
    >>> q = quantize([0.1, -0.4, 0.25, 0.9], bits=2)
    >>> q.codes.tolist()
    [0, -1, 0, 1]
    >>> round(q.alpha, 6), q.values.round(4).tolist()
    (0.575, [0.2875, -0.2875, 0.2875, 0.8625])
    >>> z = quantize([0.1, -0.4, 0.25, 0.9], bits=2, method="exact", zero_point="integer")
    >>> z.codes.tolist(), z.zero_point, round(z.alpha, 6)
    ([1, 0, 2, 3], 1, 0.408333)
    >>> quantize([0.1, -0.4, 0.25, 0.9], method="exact", codebook="nf4").codes.tolist()
    [8, 4, 9, 13]
    """
    from .search import _prepare

    precision = V.choice(precision, "precision", ("float64", "float32"))
    prep = _prepare(w, bits, method, lattice, axis, group_size, signed_scale, zero_point,
                    codebook, weights, options, METHODS,
                    check_finite=precision == "float32", scale=precision == "float64")
    if precision == "float32" and prep.method != "paper":
        V.fail("precision", "'float64' unless method='paper'", repr(precision))
    if out is not None:
        if precision == "float32":
            V.fail("out", "None with precision='float32'", "a tuple", TypeError)
        out = _Out(out, w, prep.arr.shape, prep.lset.code_dtype, prep.out_dtype, prep.lay)
    if precision == "float32":
        return _paper_float32(prep.arr, prep.lay, prep.bits)
    if prep.general:
        return _quantize_general(prep, out)
    return _quantize_rows(prep, out=out)


def _paper_float32(arr, lay, bits):
    """``method="paper", precision="float32"`` on validated input
    (:func:`vecq_ref.check.released.paper_float32`)."""
    from ._paper32 import paper_float32_rows
    from .loss import vector_loss

    rows = np.ascontiguousarray(lay.to_rows(arr))
    codes, values, alpha, step, sigma = paper_float32_rows(rows, bits, code_dtype(bits))
    n = rows.shape[0]
    rows64 = rows.astype(np.float64)
    whole = vector_loss(rows64, values.astype(np.float64))
    slice_loss = None
    if not lay.per_tensor:
        per = [vector_loss(rows64[r], values[r].astype(np.float64)) for r in range(n)]
        slice_loss = VectorLoss(*(lay.slices(np.array([getattr(p, f) for p in per]))
                                  for f in ("orientation", "modulus", "dql", "relative_dql",
                                            "excess")))
    return Quantized(
        codes=lay.from_rows(codes), alpha=lay.slices(alpha), step=lay.slices(step), bits=bits,
        lattice="midrise", method="paper", values=lay.from_rows(values), loss=whole,
        slice_loss=slice_loss, axis=lay.axis, group_size=lay.group_size,
        info={"precision": "float32", "sigma": lay.slices(sigma)})


#: ``out`` of :func:`_quantize_rows` for :func:`_quantize_loss`: no values are made.
_LOSS_ONLY = object()


def _quantize_loss(w, bits, method="param", lattice="midrise", axis=None, codes=None):
    """``(loss, k)``: the whole-tensor loss of ``quantize(w, bits, method, lattice, axis)`` at
    the working scale ``2**k·w`` (its squared losses times ``2**(2k)``), bit for bit the
    sums of ``quantize``, without making its values (the same checks: a ValueError where
    ``quantize`` raises one). Private to :mod:`vecq_ref.check.report`, which needs only the
    loss: ``codes`` (a flat scratch array of ``w.size`` elements of the code dtype, reused
    from call to call) saves allocating codes too.
    """
    from .search import _prepare

    prep = _prepare(w, bits, method, lattice, axis, None, False, None, None, None, {}, METHODS)
    return _quantize_rows(prep, out=_LOSS_ONLY, codes=codes)


class _Out:
    """The caller's ``out=(codes, values)``, checked, and their row views to write into."""

    def __init__(self, out, w, shape, codes_dtype, values_dtype, lay):
        if not (isinstance(out, tuple) and len(out) == 2):
            V.fail("out", "a tuple (codes, values) of two ndarrays", V._describe(out),
                   TypeError)
        for i, (a, dtype, what) in enumerate(zip(out, (codes_dtype, values_dtype),
                                                 ("codes", "values"), strict=True)):
            name = f"out[{i}] ({what})"
            if not isinstance(a, np.ndarray):
                V.fail(name, "an ndarray", type(a).__name__, TypeError)
            if a.dtype != dtype:
                V.fail(name, f"of dtype {dtype}", f"dtype {a.dtype}", TypeError)
            if a.shape != tuple(shape):
                V.fail(name, f"of the shape of `w` {tuple(shape)}", f"shape {a.shape}")
            if not a.flags.writeable:
                V.fail(name, "writeable", "a read-only array")
            if np.may_share_memory(a, w):
                V.fail(name, "an array sharing no memory with `w`", "an overlapping one")
        if np.may_share_memory(out[0], out[1]):
            V.fail("out", "two arrays sharing no memory", "overlapping codes and values")
        self.arrays = out
        # Row views of the caller's arrays when the layout allows, else fresh rows copied at
        # the end (``to_rows`` copies only when a reshape cannot view).
        self.codes, self.values = (self._rows(a, lay) for a in out)

    @staticmethod
    def _rows(a, lay):
        rows = lay.to_rows(a)
        return rows if np.may_share_memory(rows, a) else np.empty(rows.shape, a.dtype)

    def finish(self, codes, values):
        """Copy into the caller's arrays what was not written there; return them."""
        for dst, src in zip(self.arrays, (codes, values), strict=True):
            if not np.may_share_memory(dst, src):
                np.copyto(dst, src)
        return self.arrays


def _quantize_rows(prep, out=None, codes=None):
    """VecQ's own level sets, unweighted: the step (λ_k·σ, the paper's, or the search's on
    the same rows), then the fused codes and sums."""
    arr, out_dtype, lay, k = prep.arr, prep.out_dtype, prep.lay, prep.k
    bits, method, lattice = prep.bits, prep.method, prep.lattice
    rows = prep.rows
    moments = row_moments(rows)
    if not np.all(np.isfinite(moments)):  # NaN/Inf in w, or Σw² overflowed
        V.finite(arr, "w", sums_overflowed=True)
    sigma = np.sqrt(moments[:, 1])
    info = {}
    if method == "param":
        steps = tables.optimal_step(bits, lattice) * sigma
    elif method == "paper":
        # The absolute 1e-7 is in weight units: at the working scale it is 2**k·1e-7, so
        # the step is exactly 2**k times the caller's-scale one wherever that is computable
        # (the same codes); where 2**k·1e-7 overflows the step is inf, and the codes of
        # w/s − ½ are those of −½ at either scale (|w/s| < 2**-1000 there).
        with np.errstate(over="ignore"):
            steps = sigma * tables.paper_lambda(bits) + np.ldexp(PAPER_EPSILON, k)
    else:
        from .search import _rescaled, _search_prepared

        # The search runs on the same rows at the working scale; it writes its codes into
        # ``codes`` (dead until the pass below) when given.
        result, _ = _search_prepared(prep, codes=codes)
        steps = np.ascontiguousarray(np.broadcast_to(result.step, lay.slice_shape),
                                     dtype=np.float64).reshape(rows.shape[0])
        info["search"] = _rescaled(result, k)
    steps = np.ascontiguousarray(steps, dtype=np.float64)
    # ``paper`` far below its 1e-7 (2**k·1e-7 near the float64 maximum) can overflow the
    # sums at the step; :func:`_refined` sums those rows again at α*.
    with np.errstate(over="ignore", invalid="ignore"):
        if out is not None and out is not _LOSS_ONLY:
            codes = out.codes
        elif codes is not None:
            codes = codes[:rows.size].reshape(rows.shape)
        codes, sums = _fused(rows, steps, bits, lattice, method == "paper", codes)
    alpha = _alpha(sums, method == "paper")
    sums, ref = _refined(rows, codes, sums, steps, alpha, lattice)
    return _finish(out_dtype, lay, rows, codes, sums, moments, steps, alpha, bits,
                   lattice, method, info, k, out=out, ref=ref, level_set=prep.lset)


def _quantize_general(prep, out=None):
    """Every level set but VecQ's own unweighted ones: the general search on the prepared
    rows (:func:`vecq_ref.search._search_general`), then codes, values ``α·(ℓ − z)`` and the
    weighted losses from its sums (``Σh·x²``, ``S1``, ``S2``)."""
    from .search import _general_result, _rescaled, _row_losses, _search_general

    g = _search_general(prep)
    lset, lay, k = prep.lset, prep.lay, prep.k
    sxx, s1, s2 = g.sums.T
    orient, dql, rel, excess = _row_losses(g)
    per_row = VectorLoss(orient, dql, dql, rel, excess)
    ell = np.asarray(lset.levels, dtype=np.float64)[g.idx] - g.zs[:, None]
    values = g.alpha[:, None] * ell  # float64, at the working scale
    if g.offsets is None:
        whole = _whole_weighted(sxx, s1, s2, g.alpha, dql)
    else:
        values += g.offsets[:, None]
        whole = _whole_offset(sxx, dql)
    V.check_values_fit(values, prep.out_dtype, k=k)
    if k < 0:
        V.check_scale_fits(np.maximum(np.abs(g.alpha), np.abs(g.steps)), k)
    with np.errstate(over="ignore", under="ignore"):
        values = np.ldexp(values, -k).astype(prep.out_dtype)
        alpha, steps = np.ldexp(g.alpha, -k), np.ldexp(g.steps, -k)
    codes = (g.idx + lset.code_range[0]).astype(lset.code_dtype)
    whole, per_row = _unscale_loss(whole, k), _unscale_loss(per_row, k)
    slice_loss = None
    if not lay.per_tensor:
        slice_loss = VectorLoss(*(lay.slices(getattr(per_row, f)) for f in
                                  ("orientation", "modulus", "dql", "relative_dql", "excess")))
    codes, values = lay.from_rows(codes), lay.from_rows(values)
    if out is not None:
        codes, values = out.finish(codes, values)
    zero_point = offset = None
    if lset.zero_point == "integer":
        zero_point = int(g.zs[0]) if lay.per_tensor else g.zs.reshape(lay.slice_shape)
    if g.offsets is not None:
        with np.errstate(over="ignore", under="ignore"):
            offset = lay.slices(np.ldexp(g.offsets, -k))
    return Quantized(
        codes=codes, alpha=lay.slices(alpha), step=lay.slices(steps), bits=prep.bits,
        lattice=lset.lattice, method=prep.method, values=values, loss=whole,
        slice_loss=slice_loss, axis=lay.axis, group_size=lay.group_size,
        info={"search": _rescaled(_general_result(prep, g), k)}, zero_point=zero_point,
        level_set=lset, offset=offset)


def _whole_offset(sxx, dql):
    """The whole tensor's VectorLoss of a real-offset result: the DQL summed over rows,
    relative to ``Σh·x²``, ``J_o`` with ``J_o(2 − J_o)`` that ratio, excess 0."""
    total_xx, total = float(np.sum(sxx)), float(np.sum(dql))
    rel = total / total_xx if total_xx > 0 else 0.0
    return VectorLoss(1.0 - np.sqrt(max(1.0 - rel, 0.0)), total, total, rel, 0.0)


def _whole_weighted(sxx, s1, s2, alpha, dql):
    """The whole tensor's VectorLoss from per-row sums (weighted): the DQL summed over rows,
    J_o and the excess against one global scale β of ``α·ℓ`` (``min = Σhx² − (ΣαS1)²/Σα²S2``)."""
    total_xx = float(np.sum(sxx))
    total = float(np.sum(dql))
    swq = float(np.sum(alpha * s1))
    sqq = float(np.sum(alpha * alpha * s2))
    min_total = max(total_xx - swq * swq / sqq, 0.0) if sqq > 0 else total_xx
    orient = (float(orientation_from_min(min_total, total_xx, swq < 0)) if total_xx > 0
              else 0.0)
    return VectorLoss(orient, total, total, total / total_xx if total_xx > 0 else 0.0,
                      max(total - min_total, 0.0))
