"""Quantization-aware training: float shadow weights and the straight-through estimator.

docs/theory.md §5: the float "shadow" weights stay in ``layer.params``; every forward pass
quantizes them afresh (a new σ each time) and the layer computes with the quantized values;
the backward pass is the straight-through estimator of the released code,
``∂L/∂w := ∂L/∂w_q`` for every element (no saturation mask, nothing through α or σ).

``ste="clipped"`` is the common variant that zeroes the gradient of shadow weights outside the
quantizer's range, ``|w| > α·max|v|`` (the largest level the codes can take, times α).

A method is resolved when the quantizer runs: one of :data:`vecq_ref.quantize.METHODS`
(``"param"``, ``"paper"``, ``"exact"``, ...) goes through :func:`vecq_ref.quantize`; any other
name is looked up as a function ``fn(w, bits, axis=None) -> Quantized`` in
:mod:`vecq_ref.baselines`; a callable with that signature is used as it is.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass

import numpy as np

from .. import _validation as V
from .._kernels import single_thread
from ..lattice import code_range, level_offset
from ..quantize import METHODS, quantize

STE_MODES = ("identity", "clipped")


@dataclass(frozen=True)
class QuantSpec:
    """How one layer's weights are quantized during training.

    Parameters
    ----------
    bits : int or None
        Bitwidth; None keeps the layer in float.
    method : str or callable
        ``"param"`` (default), ``"paper"``, ``"exact"``, ``"grid"``, ``"alternating"`` or the
        name of a baseline in :mod:`vecq_ref.baselines` (``"bwn"``, ``"twn"``, ...).
    lattice : {"midrise", "midtread"}
    axis, group_size : granularity as in :func:`vecq_ref.quantize` (None = per tensor, the
        paper's choice; ``axis=0`` = per output channel for Dense and Conv2D).
    ste : {"identity", "clipped"}
    bias_bits : int or None
        Quantize the bias too, per tensor with the same method (default None: float bias).
    """

    bits: int | None = None
    method: object = "param"
    lattice: str = "midrise"
    axis: int | None = None
    group_size: int | None = None
    ste: str = "identity"
    bias_bits: int | None = None

    def __post_init__(self):
        if self.bits is not None:
            V.bits(self.bits, self.lattice)
        if self.bias_bits is not None:
            V.bits(self.bias_bits, self.lattice, name="bias_bits")
        V.lattice(self.lattice)
        V.choice(self.ste, "ste", STE_MODES)
        if not callable(self.method) and not isinstance(self.method, str):
            V.fail("method", "a method name or a callable", repr(self.method), TypeError)

    def to_dict(self):
        d = asdict(self)
        if callable(self.method):
            d["method"] = getattr(self.method, "__name__", repr(self.method))
        return d


def resolve_method(method):
    """Return ``fn(w, bits, lattice, axis, group_size) -> Quantized`` for a method name."""
    if callable(method):
        return lambda w, bits, lattice, axis, group_size: method(w, bits, axis=axis)
    if method in METHODS:
        return lambda w, bits, lattice, axis, group_size: quantize(
            w, bits, method=method, lattice=lattice, axis=axis, group_size=group_size)
    try:
        baselines = importlib.import_module("vecq_ref.baselines")
    except ImportError:
        baselines = None
    fn = getattr(baselines, method, None) if baselines is not None else None
    if not callable(fn) or method.startswith("_"):
        V.fail("method", f"one of {METHODS} or the name of a function in vecq_ref.baselines",
               repr(method))
    return lambda w, bits, lattice, axis, group_size: fn(w, bits, axis=axis)


class WeightQuantizer:
    """Quantize on ``forward``; straight-through (optionally clipped) on ``backward``.

    After a forward pass ``last`` holds the :class:`vecq_ref.Quantized` result, whose loss
    fields (relative DQL, J_o, J_m) the training log reports. For the library's methods the
    codes and values are written into two buffers the quantizer keeps (``quantize(...,
    out=)``), reused every step while the weights keep their shape and dtype: the values a
    forward pass returns (and ``last.codes``, ``last.values``) are overwritten by the next.
    """

    def __init__(self, bits, method="param", lattice="midrise", axis=None, group_size=None,
                 ste="identity"):
        self.bits, self.method, self.lattice = bits, method, lattice
        self.axis, self.group_size = axis, group_size
        self.ste = V.choice(ste, "ste", STE_MODES)
        self._fn = resolve_method(method)
        self._reuse = isinstance(method, str) and method in METHODS
        self._buffers = None  # (codes, values) of the last forward, for out=
        self.last = None
        self._mask = None

    def forward(self, w):
        # Right after a BLAS call OpenBLAS's worker threads still spin; kernels handed to
        # the kernels' thread pool then wait for free cores, which on a small machine costs tens of
        # milliseconds per call, far more than quantizing a layer on one thread.
        with single_thread():
            if self._reuse:
                q = quantize(w, self.bits, method=self.method, lattice=self.lattice,
                             axis=self.axis, group_size=self.group_size,
                             out=self._out_for(w))
                self._buffers = (q.codes, q.values)
            else:
                q = self._fn(w, self.bits, self.lattice, self.axis, self.group_size)
        self.last = q
        if self.ste == "clipped":
            self._mask = np.abs(w) <= self._limit(q, w.ndim)
        return q.values.astype(w.dtype, copy=False)

    def _out_for(self, w):
        """The last forward's arrays when ``w`` still fits them (else None: fresh ones)."""
        if self._buffers is None or not isinstance(w, np.ndarray):
            return None
        codes, values = self._buffers
        fits = (codes.shape == values.shape == w.shape and values.dtype == w.dtype and
                codes.flags.writeable and values.flags.writeable and
                not np.may_share_memory(values, w))
        return self._buffers if fits else None

    def _limit(self, q, ndim):
        """α·max|v| per slice for VecQ methods; the largest |value| per tensor otherwise."""
        if q.method not in METHODS:
            return float(np.max(np.abs(q.values)))
        lo, hi = code_range(self.bits, q.lattice)
        vmax = max(abs(lo + level_offset(q.lattice)), abs(hi + level_offset(q.lattice)))
        alpha = np.abs(np.asarray(q.alpha, dtype=np.float64))
        if alpha.ndim and q.axis is not None and q.group_size is None:
            shape = [1] * ndim
            shape[q.axis] = -1
            alpha = alpha.reshape(shape)
        elif alpha.ndim:  # per group: expand each group's α over its members
            alpha = np.repeat(alpha, q.group_size, axis=-1).reshape(q.values.shape)
        return alpha * vmax

    def backward(self, grad):
        if self.ste == "clipped":
            return np.where(self._mask, grad, 0).astype(grad.dtype, copy=False)
        return grad


def layer_specs(model, quant):
    """Map every weight layer name to its QuantSpec (or None for float).

    ``quant`` is None (all float), one QuantSpec for every weight layer, or a dict
    ``{layer_name: QuantSpec | None}`` (unnamed weight layers stay float; the key
    ``"*"`` gives a default).
    """
    names = [n for n, layer in model.named_layers() if hasattr(layer, "quantizer")]
    if quant is None or isinstance(quant, QuantSpec):
        return {n: quant for n in names}
    if not isinstance(quant, dict):
        V.fail("quant", "None, a QuantSpec or a dict of them", repr(quant), TypeError)
    unknown = sorted(set(quant) - set(names) - {"*"})
    if unknown:
        V.fail("quant", f"keyed by weight layer names {names}", unknown)
    return {n: quant.get(n, quant.get("*")) for n in names}


def attach(model, quant):
    """Attach (or remove) quantizers on ``model``'s weight layers; returns the spec per layer."""
    specs = layer_specs(model, quant)
    layers = dict(model.named_layers())
    for name, spec in specs.items():
        layer = layers[name]
        layer.quantizer = layer.bias_quantizer = None
        if spec is None:
            continue
        if spec.bits is not None:
            layer.quantizer = WeightQuantizer(spec.bits, spec.method, spec.lattice, spec.axis,
                                              spec.group_size, spec.ste)
        if spec.bias_bits is not None:
            layer.bias_quantizer = WeightQuantizer(spec.bias_bits, spec.method, spec.lattice,
                                                   None, None, spec.ste)
    return specs


def quantized_layers(model):
    """``[(name, layer)]`` of the layers whose weights are quantized."""
    return [(n, layer) for n, layer in model.named_layers()
            if getattr(layer, "quantizer", None) is not None]
