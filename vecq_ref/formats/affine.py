"""torchao int4 (tinygemm) and HQQ tensors as :class:`BlockTensor` values (real offsets).

Neither library has a checkpoint layout of its own that this package reads (torchao keeps
tensor subclasses in a ``state_dict``, HQQ a dict of ``W_q`` and ``meta``): these builders take
the arrays the libraries return (codes unpacked, scale, zero) and give the one value type
``verify_format`` and ``format_optimum`` take. Both are ``kind="min"``, ``x̂ = s·q + m``:

========================  ===============================  =====================================
builder                   stored                           minimum ``m``
========================  ===============================  =====================================
:func:`torchao_int4_block` ``s``, float zero ``zp``          ``zp − 8·s`` (tinygemm:
                          (weight's dtype, bf16 typical)    ``x̂ = (q − 8)·s + zp``)
:func:`hqq_block`          ``s = 1/i``, float zero ``z``     ``−z·s`` (``x̂ = (q − z)·s``)
                          (float32; HQQLinear casts both
                          to its compute dtype)
========================  ===============================  =====================================

The stored float zero is kept in ``zero`` (float64) beside ``minimum``. ``dequantize()``
computes ``s·q + m`` in float64 and rounds once; the libraries round twice in their dtype
(torchao ``(q − 8)·s`` then ``+ zp``; HQQ ``q − z`` then ``·s``), so the two may differ by an
ulp: :func:`vecq_ref.format_rules.torchao_int4` and :func:`~vecq_ref.format_rules.hqq_affine`
give the libraries' own values bit for bit.

Sources: pytorch/ao ``torchao/quantization/quant_primitives.py`` (``_choose_qparams_affine_
tinygemm``, ``_quantize_affine_tinygemm``, ``_dequantize_affine_tinygemm``); mobiusml/hqq
``hqq/core/quantize.py`` (``Quantizer.quantize``, ``Quantizer.dequantize``).
"""

from __future__ import annotations

import numpy as np

from .. import _validation as V
from ._block import BlockTensor

_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16)}


def _dtype_of(a, dtype, name):
    if dtype is None:
        dt = np.asarray(a).dtype
        # A float64 array (widened values): float32 unless ``dtype`` says otherwise.
        name_ = dt.name if dt.name in ("bfloat16", "float16", "float32") else "float32"
    else:
        name_ = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32",
                 "half": "float16"}.get(str(dtype), getattr(dtype, "name", str(dtype)))
    if name_ == "bfloat16":
        import ml_dtypes
        return name_, np.dtype(ml_dtypes.bfloat16)
    if name_ not in _DTYPES:
        V.fail(name, "float32, float16 or bfloat16", repr(dtype if dtype is not None
                                                             else np.asarray(a).dtype))
    return name_, _DTYPES[name_]


def _codes(codes, lo, hi, name="codes"):
    c = V.as_array(codes, name)
    if c.dtype.kind not in "iuf":
        V.fail(name, "an array of integers", f"dtype {c.dtype}", TypeError)
    ci = np.asarray(c, dtype=np.float64)
    if c.size and (np.any(ci != np.rint(ci)) or ci.min() < lo or ci.max() > hi):
        V.fail(name, f"integers {lo}…{hi}", f"values from {ci.min():g} to {ci.max():g}")
    return ci.astype(np.int64)


def _per_group(a, shape, name):
    arr = np.asarray(V.as_array(a, name), dtype=np.float64)
    if arr.size != shape[0] * shape[1]:
        V.fail(name, f"one value per group, {shape[0]}×{shape[1]}", f"shape {arr.shape}")
    return arr.reshape(shape)


def torchao_int4_block(codes, scale, zero_point, group_size=128, *, dtype=None, name=""):
    """A torchao int4 tinygemm tensor (``x̂ = (q − 8)·s + zp``) as a :class:`BlockTensor`.

    Parameters
    ----------
    codes : array_like of int, shape (rows, cols)
        The codes 0…15, unpacked (``_quantize_affine_tinygemm``'s output).
    scale, zero_point : array_like, shape (rows, cols // group_size)
        As torchao returns them (``_choose_qparams_affine_tinygemm``): ``s`` and the float zero
        ``zp``, in the weight's dtype (a float32 array holding bf16 values: pass ``dtype``).
    group_size : int, default 128
    dtype : str, optional
        "bfloat16", "float16" or "float32": what ``s`` and ``zp`` are stored in (default:
        ``scale``'s dtype; float32 for a float64 array).
    name : str

    Returns
    -------
    BlockTensor
        ``format="torchao-int4"``, ``kind="min"``, ``minimum = zp − 8·s`` (exact in
        float64), ``zero = zp``, ``value_dtype`` the dtype.

    Raises
    ------
    ValueError, TypeError
        Codes outside 0…15 or not integers, shapes that do not match, an unknown dtype.

    Examples
    --------
    >>> bt = torchao_int4_block(np.full((1, 4), 8), [[0.5]], [[1.0]], 4, dtype="float32")
    >>> bt.dequantize().tolist()
    [[1.0, 1.0, 1.0, 1.0]]
    """
    q = _codes(codes, 0, 15)
    if q.ndim != 2:
        V.fail("codes", "2-D (rows, cols)", f"shape {q.shape}")
    g = V.group_size(group_size, q.shape)
    shape = (q.shape[0], q.shape[1] // g)
    dname, dt = _dtype_of(scale, dtype, "dtype")
    s = _per_group(scale, shape, "scale")
    zp = _per_group(zero_point, shape, "zero_point")
    return BlockTensor(name, "torchao-int4", "min", 4, g, q, s, dt, zero=zp,
                       minimum=zp - 8.0 * s, value_dtype=dt,
                       notes=(f"torchao tinygemm: float zero zp = m + 8·s stored in {dname}",))


def hqq_block(codes, scale, zero, group_size=64, *, nbits=4, dtype=None, name=""):
    """An HQQ tensor (``Quantizer.quantize``, axis 0) as a :class:`BlockTensor` of its groups.

    HQQ groups the flattened weight as ``reshape(g, −1)`` (axis 0: a group is a column): the
    BlockTensor is in that group layout, **one group per row**, shape ``(size/g, g)``
    (:func:`vecq_ref.format_rules.hqq_groups` puts ``w`` in it).

    Parameters
    ----------
    codes : array_like of int, shape (g, size/g)
        ``W_q`` unpacked (``bitpack=False``, or ``Quantizer.unpack``), as HQQ returns it.
    scale, zero : array_like, size/g values
        ``meta["scale"]`` (``1/i``) and ``meta["zero"]`` (the optimised float zero).
    group_size : int, default 64
    nbits : int, default 4
    dtype : str, optional
        What ``scale`` and ``zero`` are stored in (default: their dtype; float32 for float64).
    name : str

    Returns
    -------
    BlockTensor
        ``format="hqq"``, ``kind="min"``, ``minimum = −z·s``, ``zero = z``, codes (size/g, g).

    Raises
    ------
    ValueError, TypeError
        Codes outside 0…2^nbits − 1, a shape that is not (g, size/g), a wrong count of scales.

    Examples
    --------
    >>> bt = hqq_block(np.array([[0], [15]]), [0.1], [5.0], 2)
    >>> bt.shape, np.round(bt.dequantize(), 6).tolist()
    ((1, 2), [[-0.5, 1.0]])
    """
    bits = V.integer(nbits, "nbits", 1, 8)
    q = _codes(codes, 0, 2 ** bits - 1)
    g = V.integer(group_size, "group_size", 1)
    if q.ndim != 2 or q.shape[0] != g:
        V.fail("codes", f"HQQ's (group_size, size/group_size) = ({g}, …) layout",
               f"shape {q.shape}")
    qg = np.ascontiguousarray(q.T)
    dname, dt = _dtype_of(scale, dtype, "dtype")
    s = _per_group(scale, (qg.shape[0], 1), "scale")
    z = _per_group(zero, (qg.shape[0], 1), "zero")
    return BlockTensor(name, "hqq", "min", bits, g, qg, s, dt, zero=z, minimum=-z * s,
                       value_dtype=np.dtype(np.float32),
                       notes=(f"HQQ axis 0: rows are its groups (w.reshape({g}, −1).T)",
                              f"HQQ stores 1/scale and a float zero, in {dname}"))


__all__ = ["torchao_int4_block", "hqq_block"]
