"""A zoo of VecQ conventions (docs/theory.md §7): what other implementations actually compute.

Each convention is VecQ-param (docs/theory.md §4.1: σ, ``s = λ_k·σ``, codes, least-squares α) with
exactly one choice changed, or a released expression as written. :func:`vecq_ref.verify`
runs every one of them on ``w`` and reports which reproduces a given output.

=======================  ===================================================================
name                     what differs from ``vecq_ref_param``
=======================  ===================================================================
``vecq_ref_param``       nothing: :func:`vecq_ref.quantize` with ``method="param"``
``vecq_ref_exact``       the exact step search (docs/theory.md §4.3), when :mod:`vecq_ref.search`
                         exists
``paper_keras``          the released Keras expression (``quantize(method="paper")``):
                         table λ, ``s = σλ + 1e-7``, ``rint(clip(w/s − ½))``,
                         ``α = Σwv/(Σv² + 1e-7)``
``paper_keras_float32``  the same expression evaluated entirely in float32, as Keras runs it
``floor``                midrise ``floor(w/s)``; midtread ``floor(w/s + ½)`` (ties up)
``round_half_away``      ``round_half_away(w/s − ½)`` midrise; ``round_half_away(w/s)`` midtread
``round_half_even``      ``rint(w/s − ½)`` midrise; ``rint(w/s)`` midtread
``sample_std``           σ with ddof = 1
``mean_centred``         codes and α of ``w − mean(w)``, output ``α·v + mean(w)``
                         (μL2Q's centring)
``ul2q``                 μL2Q as released (TF): ``s·v + mean(w)``, code λ table, codes of
                         ``(w − mean)/(s + 1e-7)``, no α refit (``baselines.ul2q``)
``norm_alpha``           ``α = ‖w‖/‖v‖`` (norm match) instead of ``⟨w,v⟩/⟨v,v⟩``
``reciprocal``           ``w·(1/s)`` instead of ``w/s``
``float32``              σ, ``w/s``, ``⟨w,v⟩``, ``⟨v,v⟩`` and ``α·v`` computed and accumulated
                         in float32 (NumPy's pairwise sums)
=======================  ===================================================================

The library's own rounding (``vecq_ref_param``) is ``floor`` on the midrise lattice and
``round_half_away`` on the midtread lattice, so those pairs always agree; the rounding
conventions differ from each other only on exact ties ``w/s ∈ Z`` (midrise) or
``w/s ∈ Z + ½`` (midtread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _layout, tables
from .. import _validation as V
from .._kernels.reduce import row_moments
from ..lattice import level_offset

PAPER_EPSILON = 1e-7


@dataclass(frozen=True)
class Convention:
    """One entry of the zoo: ``fn(w, bits, lattice, axis, group_size)`` → values."""

    name: str
    description: str
    fn: object
    midrise_only: bool = False
    needs: str | None = None  # an optional module the convention imports

    def applies(self, bits, lattice):
        if self.midrise_only and lattice != "midrise":
            return False
        if self.name == "ul2q" and bits > 8:
            return False
        if self.needs is not None:
            try:
                __import__(self.needs)
            except ImportError:
                return False
        return True


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _codes(q, bits, lattice, rounding):
    """Codes of scaled weights ``q`` under a rounding rule (``q`` already float)."""
    half = 2 ** (bits - 1)
    if lattice == "midrise":
        if rounding == "floor":
            c = np.floor(q)
        elif rounding == "half_away":
            c = _round_half_away(q - 0.5)
        else:
            c = np.rint(q - 0.5)
        return np.clip(c, -half, half - 1)
    if rounding == "floor":
        c = np.floor(q + 0.5)
    elif rounding == "half_away":
        c = _round_half_away(q)
    else:
        c = np.rint(q)
    return np.clip(c, -(half - 1), half - 1)


def _scaled(x, s, reciprocal):
    """``x/s`` (or ``x·(1/s)``) per row; a zero step sends w to ±inf and 0 to 0."""
    zero = s <= 0
    safe = np.where(zero, np.ones_like(s), s)
    q = x * (np.ones_like(safe) / safe) if reciprocal else x / safe
    if not np.any(zero):  # the common case: no full-size temporaries for the zero steps
        return q
    inf = np.where(x == 0, np.zeros_like(x), np.copysign(np.full_like(x, np.inf), x))
    return np.where(zero, inf, q)


def pipeline(w, bits, lattice="midrise", axis=None, group_size=None, *, rounding=None,
             ddof=0, center=False, alpha_rule="lsq", reciprocal=False, float32=False,
             paper=False):
    """VecQ-param with the given choices; returns the values ``α·v (+ mean)`` in float64.

    Parameters
    ----------
    w : array_like
    bits : int
    lattice : {"midrise", "midtread"}
    axis, group_size : int, optional
        Granularity, as in :func:`vecq_ref.quantize`.
    rounding : {None, "floor", "half_away", "half_even"}
        None is the library's rule (floor midrise, half away midtread).
    ddof : {0, 1}
        Degrees of freedom of σ.
    center : bool
        Quantize ``w − mean(w)`` and add the mean back.
    alpha_rule : {"lsq", "norm"}
        ``⟨w,v⟩/⟨v,v⟩`` or ``‖w‖/‖v‖``.
    reciprocal : bool
        Scale by ``w·(1/s)``.
    float32 : bool
        Evaluate everything in float32 (the result is float32).
    paper : bool
        The released expression: table λ, ``+1e-7`` on the step and on ``⟨v,v⟩``, round half
        to even after the clip.

    Returns
    -------
    ndarray
        The values, shape of ``w``: float64, or float32 with ``float32=True``.

    Examples
    --------
    >>> pipeline([0.1, -0.4, 0.25, 0.9], 2).round(4).tolist()
    [0.2875, -0.2875, 0.2875, 0.8625]
    >>> pipeline([0.1, -0.4, 0.25, 0.9], 2, alpha_rule="norm").round(4).tolist()
    [0.2947, -0.2947, 0.2947, 0.8842]
    """
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    arr, _ = V.weights(w, "w")
    lay = _layout.layout(arr.shape, axis, group_size)
    rows64 = np.ascontiguousarray(lay.to_rows(arr), dtype=np.float64)
    dt = np.float32 if float32 else np.float64
    if rounding is None:
        rounding = "half_even" if paper else ("floor" if lattice == "midrise" else "half_away")
    lam = tables.paper_lambda(bits) if paper else tables.optimal_step(bits, lattice)
    off = dt(level_offset(lattice))
    if float32:
        x = rows64.astype(np.float32)
        mean = x.mean(axis=1, keepdims=True, dtype=np.float32)
        sigma = x.std(axis=1, ddof=ddof, keepdims=True, dtype=np.float32)
    else:
        x = rows64
        # The library's own moments, so that the steps (and hence ties) agree bit for bit.
        mom = row_moments(x)
        mean = mom[:, :1]
        n = x.shape[1]
        var = mom[:, 1:2] * (n / (n - ddof) if n > ddof else 1.0)
        sigma = np.sqrt(var)
    xc = x - mean if center else x
    s = dt(lam) * sigma
    if paper:
        s = s + dt(PAPER_EPSILON)
    q = _scaled(xc, s, reciprocal)
    v = (_codes(q, bits, lattice, rounding) + off).astype(dt)
    svv = np.sum(v * v, axis=1, keepdims=True, dtype=dt)
    if alpha_rule == "norm":
        sww = np.sum(xc * xc, axis=1, keepdims=True, dtype=dt)
        alpha = np.sqrt(sww) / np.sqrt(np.where(svv > 0, svv, dt(1)))
    else:
        swv = np.sum(xc * v, axis=1, keepdims=True, dtype=dt)
        alpha = swv / (svv + dt(PAPER_EPSILON)) if paper else swv / np.where(svv > 0, svv, dt(1))
    alpha = np.where(svv > 0, alpha, dt(0))
    values = alpha * v
    if center:
        values = values + mean
    return lay.from_rows(values.astype(dt, copy=False))


def _library(method):
    def run(w, bits, lattice, axis, group_size):
        from ..quantize import quantize

        arr = np.asarray(w, dtype=np.float64)
        return quantize(arr, bits, method=method, lattice=lattice, axis=axis,
                        group_size=group_size).values
    return run


def _variant(**choices):
    def run(w, bits, lattice, axis, group_size):
        return pipeline(w, bits, lattice, axis, group_size, **choices)
    return run


def _ul2q(w, bits, lattice, axis, group_size):
    from .. import baselines

    arr = np.asarray(w, dtype=np.float64)
    if group_size is not None:  # baselines.ul2q knows axis only: one group per row
        lay = _layout.layout(arr.shape, None, group_size)
        rows = np.ascontiguousarray(lay.to_rows(arr))
        if V.scale_exponent(rows) == 0:
            return lay.from_rows(ul2q_rows(rows, bits))
        return lay.from_rows(baselines.ul2q(rows, bits, axis=0).values)
    return baselines.ul2q(arr, bits, axis=axis).values


def ul2q_rows(rows, bits, eps=PAPER_EPSILON):
    """``baselines.ul2q(rows, bits, axis=0).values`` for float64 rows in the range where it
    works at the caller's scale, all rows at once (the same operations, row by row
    identical: NumPy's mean and std along the last axis, the library's code kernel)."""
    from .._kernels import lattice as K
    from ..lattice import code_dtype

    beta = np.mean(rows, axis=1)
    s = tables.UL2Q_CODE[bits - 1] * np.std(rows, axis=1)
    codes = np.empty(rows.shape, dtype=code_dtype(bits))
    K.codes_rows(np.ascontiguousarray(rows - beta[:, None]), s + eps, bits, False, codes)
    return s[:, None] * (codes + 0.5) + beta[:, None]


_ZOO = (
    Convention("vecq_ref_param", "vecq_ref quantize(method='param'): ddof 0, floor (midrise) "
               "/ half-away (midtread), w/s, float64, least-squares α", _library("param")),
    Convention("vecq_ref_exact", "vecq_ref quantize(method='exact'): the globally optimal step",
               _library("exact"), needs="vecq_ref.search"),
    Convention("paper_keras", "released Keras expression in float64: s = σλ + 1e-7 (4-decimal "
               "table), rint(clip(w/s − ½)), α = Σwv/(Σv² + 1e-7)", _library("paper"),
               midrise_only=True),
    Convention("paper_keras_float32", "released Keras expression evaluated in float32",
               _variant(paper=True, float32=True), midrise_only=True),
    Convention("floor", "floor rule: floor(w/s) midrise, floor(w/s + ½) midtread",
               _variant(rounding="floor")),
    Convention("round_half_away", "round half away from zero: of w/s − ½ (midrise), w/s "
               "(midtread)", _variant(rounding="half_away")),
    Convention("round_half_even", "round half to even: of w/s − ½ (midrise), w/s (midtread)",
               _variant(rounding="half_even")),
    Convention("sample_std", "sample std σ (ddof = 1)", _variant(ddof=1)),
    Convention("mean_centred", "codes and α of w − mean(w); output α·v + mean(w)",
               _variant(center=True)),
    Convention("ul2q", "μL2Q as released: s·v + mean(w), code λ table, divisor s + 1e-7, no "
               "α refit (baselines.ul2q)",
               _ul2q, midrise_only=True, needs="vecq_ref.baselines"),
    Convention("norm_alpha", "norm-matched α = ‖w‖/‖v‖", _variant(alpha_rule="norm")),
    Convention("reciprocal", "w·(1/s) instead of w/s", _variant(reciprocal=True)),
    Convention("float32", "σ, w/s, ⟨w,v⟩, ⟨v,v⟩ and α·v in float32 (pairwise accumulation)",
               _variant(float32=True)),
)

#: Every convention by name, in the order :func:`vecq_ref.verify` tries them.
CONVENTIONS = {c.name: c for c in _ZOO}


def available(bits, lattice="midrise"):
    """Names of the conventions defined for ``bits`` and ``lattice`` (and importable).

    >>> "paper_keras" in available(4), "paper_keras" in available(4, "midtread")
    (True, False)
    """
    return [c.name for c in _ZOO if c.applies(bits, lattice)]


def apply(name, w, bits, lattice="midrise", axis=None, group_size=None):
    """The output of convention ``name`` on ``w`` (values; float64 unless the convention is
    a float32 one).

    Parameters
    ----------
    name : str
        A key of :data:`CONVENTIONS`.
    w : array_like
    bits : int
    lattice : {"midrise", "midtread"}
    axis, group_size : int, optional

    Returns
    -------
    ndarray, shape of ``w``.

    Examples
    --------
    >>> apply("sample_std", [0.1, -0.4, 0.25, 0.9], 2).round(4).tolist()
    [0.2875, -0.2875, 0.2875, 0.8625]
    """
    conv = CONVENTIONS.get(name) if isinstance(name, str) else None
    if conv is None:
        V.fail("name", f"one of {tuple(CONVENTIONS)}", repr(name))
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    if not conv.applies(bits, lattice):
        V.fail("lattice", f"a lattice/bitwidth convention {name!r} defines", f"{lattice!r}, "
               f"bits={bits}")
    return conv.fn(w, bits, lattice, axis, group_size)


__all__ = ["CONVENTIONS", "Convention", "apply", "available", "pipeline"]
