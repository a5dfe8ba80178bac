"""The vector loss: orientation, modulus, DQL, and the driving stage α* (docs/theory.md §3).

Conventions
-----------
* ``orientation`` ``J_o = 1 − ⟨w, w_q⟩/(‖w‖·‖w_q‖)``; 0 when ``w`` is all zero, 1 when ``w_q``
  is all zero but ``w`` is not (no direction at all is taken as orthogonal).
* ``modulus`` ``J_m = ‖w − w_q‖²`` (docs/theory.md's ``J_m(α) = ‖w − αv‖²`` at the given α),
  which for a vector loss is the DQL; ``excess`` is how far it is above ``min_α ‖w − α v‖²``.
* ``relative_dql = ‖w − w_q‖²/‖w‖²``, 0 for an all-zero ``w``.
* With importance weights ``h ≥ 0`` (``weights=``) every norm and inner product is the
  h-weighted one, ``⟨a, b⟩_h = Σ h·a·b`` (docs/theory.md, "Importance weights"): elements of
  weight 0 count for nothing, and all-zero weights are an all-zero ``w`` (0 everywhere).
All sums run in float64. ``J_o`` is evaluated as ``m/(1 + √(1 − m))`` with
``m = min_β ‖w − β w_q‖²/‖w‖²`` (``= J_o(2 − J_o)``), which keeps full relative precision
even when the angle is tiny (16-bit codes), where ``1 − cos`` would cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validation as V
from ._kernels.reduce import pair_sums, weighted_pair_sums


@dataclass(frozen=True)
class VectorLoss:
    """Vector loss of ``w_q`` against ``w``. Fields are floats, or arrays per slice.

    Attributes
    ----------
    orientation : J_o, the angle term (independent of the scale).
    modulus : J_m = ‖w − w_q‖².
    dql : direct quantization loss ‖w − w_q‖² (equal to ``modulus``).
    relative_dql : dql / ‖w‖² (inf only when it exceeds the float64 range).
    excess : dql − min over the scale, i.e. what a better α would remove (≥ 0).
    """

    orientation: float
    modulus: float
    dql: float
    relative_dql: float
    excess: float = 0.0

    def as_dict(self):
        return {k: _plain(getattr(self, k)) for k in
                ("orientation", "modulus", "dql", "relative_dql", "excess")}


def _plain(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x.tolist()


def orientation_from_min(min_dql, sww, cos_negative=False):
    """J_o from ``min_dql = min_β‖w − β w_q‖²`` and ``sww = ‖w‖²`` without cancellation."""
    min_dql = np.asarray(min_dql, dtype=np.float64)
    sww = np.asarray(sww, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.clip(np.where(sww > 0, min_dql / np.where(sww > 0, sww, 1.0), 0.0), 0.0, 1.0)
    root = np.sqrt(1.0 - m)
    return np.where(cos_negative, 1.0 + root, m / (1.0 + root))


def dql_at(alpha, ds, rs, svv, step):
    """‖w − α·v‖² = ds + 2(s − α)·rs + (s − α)²·svv from the sums of a reference step s."""
    d = np.asarray(step, dtype=np.float64) - alpha
    return np.maximum(ds + 2.0 * d * rs + d * d * svv, 0.0)


def loss_from_sums(sww, swv, svv, ds, rs, step, alpha):
    """Vector loss of ``α·v`` from float64 sums (arrays per row, or scalars).

    ``swv = Σwv``, ``svv = Σv²``, ``ds = Σ(w − s v)²`` and ``rs = Σ(w − s v)v`` for a reference
    step ``s`` close to α. Then ``‖w − αv‖² = ds + 2(s − α)rs + (s − α)²svv`` and
    ``min_α = ds − rs²/svv``: small terms only, so no catastrophic cancellation.
    """
    sww, swv, svv, ds, rs, step, alpha = (np.asarray(a, dtype=np.float64) for a in
                                          (sww, swv, svv, ds, rs, step, alpha))
    dql = dql_at(alpha, ds, rs, svv, step)
    safe = np.where(svv > 0, svv, 1.0)
    min_dql = np.where(svv > 0, np.maximum(ds - rs * rs / safe, 0.0), sww)
    dql = np.maximum(dql, min_dql)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(sww > 0, dql / np.where(sww > 0, sww, 1.0), 0.0)
    orient = orientation_from_min(min_dql, sww, cos_negative=swv < 0)
    orient = np.where(sww > 0, orient, 0.0)
    return orient, dql, rel, dql - min_dql


def _flat64(arr):
    return np.ascontiguousarray(arr, dtype=np.float64).reshape(-1)


def _importance(weights, shape):
    """``(sums, kh)``: the pair-sum function for ``weights`` (``None``: unweighted) and the
    power of two ``2**kh`` its ``h`` is taken at (max h in [1, 2), so ``h ≡ 1`` is used as it
    is); the sums come out multiplied by ``2**kh``."""
    h = V.importance(weights, shape)
    if h is None:
        return pair_sums, 0
    h = _flat64(h)
    top = float(np.max(h))
    kh = 1 - int(np.frexp(top)[1]) if top > 0 else 0
    h = np.ldexp(h, kh) if kh else np.array(h)  # writeable, C-contiguous: one specialization

    def sums(a, b, beta):
        return weighted_pair_sums(a, b, h, beta)

    return sums, kh


def optimal_alpha(w, v, *, weights=None):
    """The driving stage: α* = ⟨w, v⟩_h/⟨v, v⟩_h, the (weighted) least-squares scale for
    levels ``v``.

    Parameters
    ----------
    w, v : array_like, same shape
        Weights and levels (or any direction). Sums run in float64 in the fixed order of
        :mod:`vecq_ref._kernels` (the same bits on every CPU), each array at its own
        power-of-two working scale (so α* of ``2**e·w`` is exactly ``2**e·α*``).
    weights : array_like, optional
        Importance weights ``h ≥ 0`` broadcastable to ``w`` (one per element, one per input
        column, i.e. the last axis, or a scalar); float16/32/64, bf16 or integer. ``None``
        (default): ``h ≡ 1``, computed as before without weights. With ``h ≡ 1`` (or any
        power-of-two constant) the result is bit-identical to the unweighted one.

    Returns
    -------
    float
        α*; 0 when ``‖v‖_h = 0`` (``v`` all zero where ``h > 0``, or all weights zero); ±inf
        only when α* itself exceeds the float64 range.

    Raises
    ------
    ValueError, TypeError
        ``v`` of another shape; ``weights`` negative, non-finite or not broadcastable.

    Examples
    --------
    >>> optimal_alpha([1.0, 2.0], [0.5, 1.5])  # (0.5 + 3) / (0.25 + 2.25)
    1.4
    >>> optimal_alpha([1.0, 2.0], [0.5, 1.5], weights=[3.0, 1.0])  # (1.5 + 3) / (0.75 + 2.25)
    1.5
    """
    w, _ = V.weights(w, "w")
    v, _ = V.weights(v, "v")
    if w.shape != v.shape:
        V.fail("v", f"the shape of `w` {w.shape}", f"shape {v.shape}")
    sums_of, _ = _importance(weights, w.shape)
    kw, kv = V.scale_exponent(w, "w"), V.scale_exponent(v, "v")
    sums = sums_of(_flat64(np.ldexp(w, kw) if kw else w),
                   _flat64(np.ldexp(v, kv) if kv else v), 0.0)
    swv, svv = sums[1], sums[2]
    with np.errstate(over="ignore", under="ignore"):
        return float(np.ldexp(swv / svv, kv - kw)) if svv > 0 else 0.0


def vector_loss(w, wq, *, weights=None):
    """Vector loss of the quantized tensor ``wq`` against ``w`` (docs/theory.md §3), in the
    h-weighted norm with importance weights (docs/theory.md, "Importance weights").

    Parameters
    ----------
    w, wq : array_like, same shape
        Float weights and their quantized values.
    weights : array_like, optional
        Importance weights ``h ≥ 0`` broadcastable to ``w`` (one per element, one per input
        column, i.e. the last axis, or a scalar); float16/32/64, bf16 or integer. Then
        ``J_o = 1 − ⟨w, wq⟩_h/(‖w‖_h‖wq‖_h)``, ``dql = ‖w − wq‖²_h = Σ h·(w − wq)²``,
        ``relative_dql = ‖w − wq‖²_h/‖w‖²_h``. Elements with ``h = 0`` count for nothing;
        all weights zero (or ``w`` zero wherever ``h > 0``) is the all-zero ``w`` of the
        conventions: every field 0. ``None`` (default): ``h ≡ 1``, computed as before without
        weights; ``h ≡ 1`` passed explicitly gives bit-identical results (the weighted sums
        multiply each term by ``h`` = 1 exactly), and so does any power-of-two constant ``h``
        for ``orientation`` and ``relative_dql``.

    Returns
    -------
    VectorLoss
        ``orientation``, ``modulus``, ``dql``, ``relative_dql`` and ``excess`` as floats.

    Notes
    -----
    The sums run in float64 in the fixed order of :mod:`vecq_ref._kernels` (the same bits
    on every CPU). ``w`` and ``wq`` are each taken at their own power of two,
    ``2**kw·w`` and ``2**kq·wq`` (:func:`vecq_ref._validation.scale_exponent`), so neither
    vector's sums underflow or overflow whatever the scale of the other: ``orientation``
    comes from those sums alone (it does not depend on either scale) and is always finite.
    ``‖w − wq‖²`` is summed at one power of two ``2**k`` that keeps the larger of the two in
    range (``k = kw`` when ``kw = kq``), and the exponents are combined before anything is
    scaled back: ``relative_dql`` is ``‖w − wq‖²/‖w‖²`` to float64 precision, ``inf`` (no
    warning) only when that ratio exceeds the float64 range, i.e. when ``‖w − wq‖/‖w‖`` exceeds
    ``≈ 1.3e154`` (``wq`` at a very different scale from ``w``, e.g. ``sign(w)`` for ``w``
    near 1e-300); never ``inf`` for a ``wq`` within that factor of ``w``.
    ``dql``/``modulus``/``excess`` are exact up to one rounding, or ``inf`` when they exceed
    the float64 range (e.g. ``w`` near 1e200), or rounded towards 0 below it.
    Importance weights are taken at their own power of two (largest ``h`` in [1, 2)); a term
    ``h·w²`` more than about 2^-200 below the largest ``h`` and ``w²``'s working range may
    underflow to 0 (only for weights spanning hundreds of binades).

    Raises
    ------
    ValueError, TypeError
        ``wq`` of another shape, non-finite values; ``weights`` negative, non-finite or not
        broadcastable to ``w``.

    Examples
    --------
    >>> L = vector_loss([3.0, 4.0], [3.0, 3.0])
    >>> L.dql, L.relative_dql
    (1.0, 0.04)
    >>> vector_loss([3.0, 4.0], [3.0, 3.0], weights=[1.0, 0.5]).relative_dql  # 0.5 / 17
    0.029411764705882353
    """
    w, _ = V.weights(w, "w")
    q, _ = V.weights(wq, "wq")
    if w.shape != q.shape:
        V.fail("wq", f"the shape of `w` {w.shape}", f"shape {q.shape}")
    sums_of, kh = _importance(weights, w.shape)
    w, q = _flat64(w), _flat64(q)
    kw, kq = V.scale_exponent(w, "w"), V.scale_exponent(q, "wq")
    a = np.ldexp(w, kw) if kw else w
    b = np.ldexp(q, kq) if kq else q
    sww, swq, sqq, dql = sums_of(a, b, 1.0)
    k = kw
    if kw != kq:
        # The difference needs one scale for both; there only the smaller vector can underflow,
        # by less than an ulp of the larger one's part of the sum.
        k = V.scale_exponent(np.concatenate([w, q]))
        with np.errstate(under="ignore"):
            dql = sums_of(np.ldexp(w, k), np.ldexp(q, k), 1.0)[3]
    beta = swq / sqq if sqq > 0 else 0.0
    min_dql = sums_of(a, b, beta)[3]  # in units of 2**(2kw)
    orient = float(orientation_from_min(min_dql, sww, cos_negative=swq < 0)) if sww > 0 else 0.0
    with np.errstate(over="ignore", under="ignore"):
        # dql and sww are in units 2**(2k) and 2**(2kw): their quotient can leave the float64
        # range where the ratio itself does not, so the exponents are combined first.
        (md, ed), (mw, ew) = np.frexp(dql), np.frexp(sww)
        rel = float(np.ldexp(md / mw, ed - ew + 2 * (kw - k))) if sww > 0 else 0.0
        excess = max(dql - float(np.ldexp(min_dql, 2 * (k - kw))), 0.0)
        dql, excess = float(np.ldexp(dql, -2 * k - kh)), float(np.ldexp(excess, -2 * k - kh))
    return VectorLoss(orient, dql, dql, rel, excess)
