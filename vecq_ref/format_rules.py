r"""The block formats' own quantization rules as baselines (FORMATS.md §4–§5), one function each.

Each function quantizes every group of ``group_size`` contiguous weights along the last axis
(default: the format's block) with the rule the format's own code applies, **in the
arithmetic of that code**: float32 where the source computes in float32 (llama.cpp's C,
bitsandbytes' and the torch quantizers on float32 weights), with its rounding (truncation
after ``+ 8.5f``, ``roundf``, ``nearest_int``, half to even), its sequential float32 sums and
its fp16 storage of scales. This is the stated exception to the library's float64 rule: a
baseline is worth having only if it is the format's result bit for bit. Inputs are rounded to
float32 first (the formats read float32 weights); nothing is "improved".

Every function returns a :class:`~vecq_ref.quantize.Quantized` with

* ``values``: the dequantized weights, float32, computed as the format's dequantizer does
  from what it stores (fp16 scales widened to float32);
* ``codes``: the format's integers (int8, or int16 above 8 bits), see the table;
* ``alpha``: the scale per group **as stored** (fp16-rounded where the format stores fp16),
  widened to float64, shape ``w.shape[:-1] + (w.shape[-1] // group_size,)``;
* ``step``: the float32 scale the codes were computed with (before the fp16 rounding);
* ``lattice``, ``bits``, ``group_size``; ``axis`` is None;
* ``info``: ``"stored_dtype"``, ``"source"``, and ``"zero_point"`` (integer per group) or
  ``"offset"`` (real per group, as stored) where the format has one, ``"codebook"`` (the
  levels, indexed by code) for the codebook formats; the searches add ``"iscale"``.

``loss`` is the vector loss of ``values`` against the float32 input; ``slice_loss`` is None.
Codes are the dequantizer's integers: Q4_0/Q5_0/:func:`make_qx_quants` store ``c + nmax``
(the nibble), compressed-tensors stores ``c + 2^(k−1)``. ``Quantized.levels`` (``codes`` as
floats for these lattice names) gives the level only for ``midtread``/``midtread-full``
without a zero point; otherwise use the table below.

================================  ==================  ======================  =================
function                          codes               ``values`` (float32)    ``lattice``
================================  ==================  ======================  =================
:func:`q4_0`, :func:`q5_0`        −8…7, −16…15        ``α·c`` (α signed)      ``midtread-full``
:func:`q8_0`                      −127…127            ``α·c``                 ``midtread``
:func:`q4_1`, :func:`q5_1`        0…15, 0…31          ``α·c + offset``        ``midtread-full``
:func:`make_qx_quants`            −nmax…nmax−1        ``α·c``                 ``midtread-full``
:func:`make_qkx2_quants`          0…nmax              ``α·c + offset``        ``midtread-full``
:func:`iq4_nl`                    0…15 (index)        ``α·codebook[c]``       ``codebook``
:func:`gptq_rtn`                  0…2^k−1             ``α·(c − zero_point)``  ``midtread-full``
:func:`awq_rtn` (asym)            0…2^k−1             ``α·(c − zero_point)``  ``midtread-full``
:func:`awq_rtn` (sym)             −2^(k−1)…2^(k−1)−1  ``α·c``                 ``midtread-full``
:func:`compressed_tensors_rtn`    −2^(k−1)…2^(k−1)−1  ``α·(c − zero_point)``  ``midtread-full``
:func:`bnb_nf4`, :func:`bnb_fp4`  0…15 (index)        ``α·codebook[c]``       ``codebook``
:func:`torchao_int4`              0…15                ``(c − 8)·α + zero``    ``midtread-full``
:func:`hqq_affine`                0…2^k−1             ``(c − zero)·α``        ``midtread-full``
================================  ==================  ======================  =================

(compressed-tensors symmetric: no ``zero_point``, i.e. 0.)

:func:`imatrix_weights` gives the per-element importance llama.cpp derives from an importance
matrix (FORMATS.md §2), to pass as ``weights=``. Readers of stored files are elsewhere
(``vecq_ref.formats``); these functions produce what those files would hold.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._kernels.rules import make_qx_rows
from .codebooks import FP4_TABLE, IQ4_NL, NF4
from .loss import vector_loss
from .quantize import Quantized

_F = np.float32
#: llama.cpp's block for the legacy and IQ4_NL types, and the K-quants' super-block.
QK = 32
QK_K = 256
_GGML = "ggml-org/ggml src/ggml-quants.c"
#: bitsandbytes' FP4 code table (:data:`vecq_ref.codebooks.FP4_TABLE`) in float32, code i ↦ level i.
BNB_FP4 = FP4_TABLE.astype(_F)
BNB_FP4.setflags(write=False)
_IQ4 = IQ4_NL.astype(_F)
#: ``info`` entries with one value per group (shaped like ``alpha``).
_PER_GROUP = ("zero_point", "offset", "iscale", "zero", "inverse", "initial_zero")


# --- shared machinery ----------------------------------------------------------------------

def _groups(w, group_size, default):
    """Validate ``w`` and ``group_size``; return ``(x, shape, g)``: ``x`` the float32 groups
    (n_groups, g), C-contiguous, never the caller's array."""
    arr, _ = V.weights(w, "w")
    if arr.ndim == 0:
        V.fail("w", "an array with at least one axis (groups run along the last)", "a scalar")
    g = V.group_size(default if group_size is None else group_size, arr.shape)
    with np.errstate(over="ignore"):
        x = np.array(arr, dtype=_F, order="C").reshape(-1, g)
    if not np.all(np.isfinite(x)):
        V.fail("w", "finite in float32 (the formats compute in float32)",
               f"a maximum |w| of {float(np.max(np.abs(arr))):.6g}")
    return x, arr.shape, g


def _importance(weights, shape, g, name="weights"):
    """``weights`` (importance h ≥ 0, broadcastable to ``shape``) as float32 groups, or None."""
    if weights is None:
        return None
    arr = V.as_array(weights, name)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        V.fail(name, "an array of real numbers", f"dtype {arr.dtype}", TypeError)
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        V.fail(name, f"broadcastable to the shape of `w` {tuple(shape)}",
               f"shape {arr.shape}")
    with np.errstate(over="ignore"):
        h = np.array(arr, dtype=_F, order="C").reshape(-1, g)
    if not np.all(np.isfinite(h)):
        V.fail(name, "finite in float32", "NaN or Inf values")
    if np.any(h < 0):
        V.fail(name, "non-negative", f"a minimum of {float(np.min(h))!r}")
    return h


def _fp16(a):
    """float32 → stored fp16 → float32 (round to nearest even, as GGML_FP32_TO_FP16 and
    torch's ``.half()``)."""
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=_F).astype(np.float16).astype(_F)


def _result(method, lattice, bits, x, shape, g, codes, values, alpha, step, info):
    """The one place a :class:`Quantized` is built from per-group results (``codes`` and
    ``values`` (n_groups, g); ``alpha``, ``step`` and per-group ``info`` arrays (n_groups,))."""
    slice_shape = tuple(shape[:-1]) + (shape[-1] // g,)
    dtype = np.int8 if bits < 8 or (bits == 8 and lattice != "unsigned") else np.int16
    if lattice == "unsigned":  # codes 0 … 2^k − 1 with a zero point: level_set's name
        lattice = "midtread-full"
    info = {k: (np.asarray(v).reshape(slice_shape) if k in _PER_GROUP else v)
            for k, v in info.items()}
    values = np.asarray(values, dtype=_F).reshape(shape)
    return Quantized(
        codes=np.asarray(codes).astype(dtype).reshape(shape),
        alpha=np.asarray(alpha, dtype=np.float64).reshape(slice_shape),
        step=np.asarray(step, dtype=np.float64).reshape(slice_shape),
        bits=bits, lattice=lattice, method=method, values=values,
        loss=vector_loss(x.reshape(shape), values), slice_loss=None, axis=None,
        group_size=g, info=info)


def _signed_max(x):
    """Per group, the signed element of largest |x| (the first on ties, as the C loops)."""
    return x[np.arange(x.shape[0]), np.argmax(np.abs(x), axis=1)]


def _inverse(d):
    """``d ? 1.0f/d : 0.0f`` in float32 (±inf when d is below 2^-128 in magnitude)."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(d != 0, _F(1.0) / np.where(d != 0, d, _F(1.0)), _F(0.0)).astype(_F)


def _as_codes(v, lo, hi, nan):
    """float32 ``v`` as integers clamped to ``[lo, hi]``, NaN → ``nan``.

    Only reached in blocks whose scale is so small that ``1/d`` overflows float32 (largest
    |x| below ≈ 2^-125): the C converts ±inf or NaN to an integer there (undefined
    behaviour); its stored fp16 scale is 0, so every value is 0 whatever the code.
    """
    return np.clip(np.where(np.isnan(v), nan, v), lo, hi).astype(np.int64)


def _roundf(v):
    """C ``roundf``: half away from zero, exact on float32."""
    t = np.trunc(v)
    return t + np.sign(v) * (np.abs(v - t) >= _F(0.5))


def _nearest_int(v):
    """ggml's ``nearest_int``: the low 23 bits of the float32 ``v + 1.5·2²³``, less 2²²
    (round half to even for |v| ≤ 2²²; beyond, the C's wrap-around, reproduced)."""
    with np.errstate(over="ignore", invalid="ignore"):
        bits = (np.asarray(v, dtype=_F) + _F(12582912.0)).view(np.int32)
    return (bits & 0x007FFFFF).astype(np.int64) - 0x00400000


def _seq_sum(terms):
    """Σ over the last axis, one element after the other in float32 (the C loops' order)."""
    total = np.zeros(terms.shape[0], dtype=_F)
    for i in range(terms.shape[1]):
        total = total + terms[:, i]
    return total


def _bits_of(levels):
    return max(1, int(np.ceil(np.log2(levels))))


# --- llama.cpp reference quantizers (no imatrix) -------------------------------------------

def _sym_zero(method, nmax, w, group_size, weights):
    x, shape, g = _groups(w, group_size, QK)
    h = _importance(weights, shape, g)
    info = {"stored_dtype": "float16", "source": f"{_GGML}: quantize_row_{method}_ref"}
    if h is None:
        d = (_signed_max(x) / _F(-nmax)).astype(_F)
        ident = _inverse(d)
        # (int8_t)(x·id + nmax + ½): truncation toward zero after a float32 add, then MIN.
        with np.errstate(invalid="ignore"):
            q = np.trunc((x * ident[:, None]).astype(_F) + _F(nmax + 0.5))
        codes = _as_codes(q, 0, 2 * nmax - 1, nmax) - nmax
        step = d
    else:
        codes, step, iscale = make_qx_rows(x, h, nmax, 1)
        info.update(source=f"{_GGML}: quantize_row_{method}_impl → make_qx_quants(rmse_type=1)",
                    iscale=iscale)
    alpha = _fp16(step)
    values = alpha[:, None] * codes.astype(_F)
    return _result(method, "midtread-full", _bits_of(2 * nmax), x, shape, g, codes, values,
                   alpha, step, info)


def q4_0(w, group_size=QK, weights=None):
    """llama.cpp Q4_0: ``d = max/−8``, codes ``trunc(x·(1/d) + 8.5) − 8`` clamped to 7.

    ``max`` is the signed element of largest ``|x|`` in the block (the first on ties), so ``d``
    (stored fp16) has the opposite sign and ``x = max`` gets code −8, the long end of
    ``[−8, 7]``. Float32 throughout: ``id = 1.0f/d`` (0 when d = 0), ``x·id`` rounded to
    float32, ``+ 8.5f`` rounded again, then truncated: ties of ``x·id`` at ``k + ½`` go up, and
    a value just below ``k + ½`` whose sum rounds up to ``k + 9`` goes up too. An all-zero
    block gets ``d = 0`` and codes 0.

    Parameters
    ----------
    w : array_like, shape (..., n)
        Weights; ``n`` a multiple of ``group_size``. Rounded to float32; never modified.
    group_size : int, default 32
        Weights per block along the last axis (QK4_0 = 32 in the format).
    weights : array_like, optional
        Importance ``h ≥ 0`` broadcastable to ``w``. When given, the scale comes from
        :func:`make_qx_quants` (``nmax = 8``, ``rmse_type = 1``) with these weights, as
        ``quantize_q4_0`` does with an importance matrix:
        ``weights=imatrix_weights(w, imatrix, "q4_0")`` reproduces it.

    Returns
    -------
    Quantized
        ``method="q4_0"``, codes −8…7, ``values = fp16(d)·c``.

    Raises
    ------
    ValueError, TypeError
        Bad ``w``, ``group_size`` (not a divisor of the last axis) or ``weights``.

    Notes
    -----
    Source: ggml-org/ggml ``src/ggml-quants.c`` ``quantize_row_q4_0_ref`` and
    ``quantize_row_q4_0_impl``; ``dequantize_row_q4_0``. Bit for bit with gguf-py and the C
    (tests/fixtures/formats).

    Examples
    --------
    >>> q = q4_0(np.linspace(-1, 0.5, 32))
    >>> float(q.alpha[0]), q.codes[:3].tolist(), float(q.values[0])
    (0.125, [-8, -8, -7], -1.0)
    """
    return _sym_zero("q4_0", 8, w, group_size, weights)


def q5_0(w, group_size=QK, weights=None):
    """llama.cpp Q5_0: ``d = max/−16``, codes ``trunc(x·(1/d) + 16.5) − 16`` clamped to 15.

    As :func:`q4_0` with ``nmax = 16`` (the 5th bit stored apart, which does not change the
    codes). With ``weights``: :func:`make_qx_quants` with ``nmax = 16``, as
    ``quantize_row_q5_0_impl``. Source: ggml-org/ggml ``src/ggml-quants.c``
    ``quantize_row_q5_0_ref``.

    Examples
    --------
    >>> q = q5_0(np.linspace(-1, 0.5, 32))
    >>> float(q.alpha[0]), int(q.codes.min()), int(q.codes.max())
    (0.0625, -16, 8)
    """
    return _sym_zero("q5_0", 16, w, group_size, weights)


def q8_0(w, group_size=QK):
    """llama.cpp Q8_0: ``d = amax/127``, codes ``roundf(x·(1/d))`` (half away from zero).

    Float32: ``id = 1.0f/d`` (0 when d = 0), ``x·id`` rounded to float32, then ``roundf``.
    ``d`` is stored fp16, ``values = fp16(d)·c``. Source: ggml-org/ggml
    ``src/ggml-quants.c`` ``quantize_row_q8_0_ref`` (no imatrix path: ``quantize_q8_0``
    ignores quant_weights).

    Examples
    --------
    >>> q = q8_0(np.array([1.0, -0.5] * 16))
    >>> q.codes[:2].tolist(), float(q.step[0]) == float(np.float32(1) / np.float32(127))
    ([127, -64], True)
    """
    x, shape, g = _groups(w, group_size, QK)
    d = (np.max(np.abs(x), axis=1) / _F(127.0)).astype(_F)
    with np.errstate(invalid="ignore"):
        codes = _as_codes(_roundf((x * _inverse(d)[:, None]).astype(_F)), -127, 127, 0)
    alpha = _fp16(d)
    values = alpha[:, None] * codes.astype(_F)
    return _result("q8_0", "midtread", 8, x, shape, g, codes, values, alpha, d,
                   {"stored_dtype": "float16", "source": f"{_GGML}: quantize_row_q8_0_ref"})


def _min_ref(method, nmax, w, group_size):
    x, shape, g = _groups(w, group_size, QK)
    mn = np.min(x, axis=1)
    d = ((np.max(x, axis=1) - mn) / _F(nmax)).astype(_F)
    ident = _inverse(d)
    with np.errstate(invalid="ignore"):
        q = _as_codes(np.trunc(((x - mn[:, None]) * ident[:, None]).astype(_F) + _F(0.5)),
                      0, 2 * nmax + 1, 0)
    # Q4_1 clamps with MIN(15, ·); Q5_1 does not (its uint8 keeps 5 bits: 32 would wrap).
    codes = np.minimum(q, nmax) if nmax == 15 else q & 31
    alpha = _fp16(d)
    offset = _fp16(mn)
    values = (alpha[:, None] * codes.astype(_F)).astype(_F) + offset[:, None]
    return _result(method, "unsigned", _bits_of(nmax + 1), x, shape, g, codes, values, alpha,
                   d, {"offset": offset.astype(np.float64), "stored_dtype": "float16",
                       "source": f"{_GGML}: quantize_row_{method}_ref"})


def q4_1(w, group_size=QK):
    """llama.cpp Q4_1: ``d = (max − min)/15``, ``m = min``, codes
    ``trunc((x − min)·(1/d) + 0.5)`` clamped to 15; ``values = fp16(d)·c + fp16(m)``.

    Float32 throughout, ``d`` and ``m`` stored fp16 (``info["offset"]`` is the stored ``m``);
    the dequantizer's ``d·c + m`` is two float32 roundings (no FMA in the reference build).
    Source: ggml-org/ggml ``src/ggml-quants.c`` ``quantize_row_q4_1_ref``. (The imatrix path
    of ``quantize_q4_1`` uses ``make_qkx3_quants``, not reproduced here.)

    Examples
    --------
    >>> q = q4_1(np.linspace(0, 1.5, 32))
    >>> float(q.alpha[0]), float(q.info["offset"][0]), q.codes[[0, -1]].tolist()
    (0.0999755859375, 0.0, [0, 15])
    """
    return _min_ref("q4_1", 15, w, group_size)


def q5_1(w, group_size=QK):
    """llama.cpp Q5_1: as :func:`q4_1` with ``(max − min)/31`` and codes 0…31 (the C does not
    clamp: its ``uint8`` cast keeps the low 5 bits, and no float32 input reaches 32).

    Source: ggml-org/ggml ``src/ggml-quants.c`` ``quantize_row_q5_1_ref``.

    Examples
    --------
    >>> q = q5_1(np.linspace(0, 3.1, 32))
    >>> q.codes[[0, -1]].tolist(), float(q.info["offset"][0])
    ([0, 31], 0.0)
    """
    return _min_ref("q5_1", 31, w, group_size)


# --- llama.cpp searches ----------------------------------------------------------------------

def make_qx_quants(w, nmax, group_size=QK, weights=None, rmse_type=1):
    """llama.cpp's 19-candidate weighted scale search ``make_qx_quants`` per group.

    Codes ``ℓ = clamp(nearest_int(iscale·x), −nmax, nmax − 1)`` for ``iscale = −nmax/max``
    and then ``iscale = −(nmax + 0.1·i)/max``, i = −9 … 9 (i ≠ 0), ``max`` the signed element
    of largest ``|x|``; each candidate scored by ``(Σhxℓ)²/Σhℓ²`` (kept only when strictly
    better, so the earliest wins ties) and the scale returned is the kept candidate's
    ``Σhxℓ/Σhℓ²``. ``h = weights`` when given; else by ``rmse_type``: 1 → x², 2 → 1,
    3 → ``|x|``, other → ``√|x|``. ``rmse_type = 0`` returns ``1/iscale`` with the first codes;
    a negative ``rmse_type`` returns ``½(Σhxℓ/Σhℓ² + 1/iscale)`` after the first candidate.
    A group whose largest ``|x|`` is below 1e-15 gets scale 0 and codes −nmax (the C's L = 0).

    Float32 arithmetic and sequential sums as the C (the stated exception to the float64
    rule), computed by a Numba kernel (``_kernels.rules``; twin ``naive.make_qx_quants``).
    Used by Q4_0/Q5_0 with an importance matrix (nmax 8/16, h = qw·√(σ² + x²)), Q6_K
    (nmax 32, group 16, h = qw or x²), Q3_K with an imatrix (nmax 4, group 16).

    Parameters
    ----------
    w : array_like, shape (..., n)
        Weights, rounded to float32.
    nmax : int
        Half the number of levels, 1 … 127 (codes −nmax … nmax − 1).
    group_size : int, default 32
    weights : array_like, optional
        Importance ``h ≥ 0`` broadcastable to ``w`` (the C's ``qw`` argument).
    rmse_type : int, default 1
        In −4 … 4, as the C.

    Returns
    -------
    Quantized
        ``method="make_qx_quants"``, ``alpha = step`` = the float32 scale the C returns (not
        stored: Q4_0/Q5_0 store it fp16, see :func:`q4_0`; the K-quants quantize it again),
        ``values = scale·ℓ`` in float32, ``info["iscale"]`` the kept candidate's ``iscale``.

    Notes
    -----
    Source: ggml-org/ggml ``src/ggml-quants.c`` ``make_qx_quants``, ``nearest_int``.

    Examples
    --------
    >>> q = make_qx_quants(np.linspace(-1, 0.5, 32), 8)
    >>> q.codes[:2].tolist(), round(float(q.alpha[0]), 6)
    ([-8, -8], 0.122512)
    """
    nmax = V.integer(nmax, "nmax", 1, 127)
    rmse_type = V.integer(rmse_type, "rmse_type", -4, 4)
    x, shape, g = _groups(w, group_size, QK)
    h = _importance(weights, shape, g)
    codes, scale, iscale = make_qx_rows(x, h, nmax, rmse_type)
    values = scale[:, None] * codes.astype(_F)
    return _result("make_qx_quants", "midtread-full", _bits_of(2 * nmax), x, shape, g, codes,
                   values, scale, scale, {
                       "iscale": iscale, "stored_dtype": "float32 (search result, not stored)",
                       "source": f"{_GGML}: make_qx_quants"})


def _q4k_ref_weights(x):
    """Q4_K/Q5_K reference weights per 32-block: ``√(Σx²/32) + |x|`` in float32."""
    av = np.sqrt(_seq_sum(x * x) / _F(x.shape[1])).astype(_F)
    return (av[:, None] + np.abs(x)).astype(_F)


def make_qkx2_quants(w, nmax=15, group_size=QK, weights=None, rmin=-1.0, rdelta=0.1,
                     nstep=20):
    """llama.cpp's affine search ``make_qkx2_quants`` (Q4_K/Q5_K/Q2_K reference) per group.

    ``min = min(x, 0)``, ``max = max x``; first codes ``clamp(nearest_int((x − min)·nmax/(max
    − min)), 0, nmax)`` with scale ``(max − min)/nmax``, then ``nstep + 1`` candidates
    ``iscale = (rmin + rdelta·i + nmax)/(max − min)``, each with the joint weighted
    least-squares ``(d, m)`` (``m > 0`` forced to 0 with ``d = Σhxℓ/Σhℓ²``), kept when its
    weighted squared error is strictly lower. The C's quirk is kept: a kept candidate's
    ``m`` replaces ``min`` for the later candidates (both in ``x − min`` and ``max − min``).
    ``values = d·ℓ + m`` (float32); ``info["offset"]`` is ``m`` (≤ 0).

    Parameters
    ----------
    w : array_like, shape (..., n)
    nmax : int, default 15
        Codes 0 … nmax (15: Q4_K, 31: Q5_K, 3: Q2_K), 1 … 255.
    group_size : int, default 32
    weights : array_like, optional
        Importance ``h ≥ 0`` broadcastable to ``w``. Default: Q4_K's reference weights
        ``√(Σx²/group) + |x|`` per group (``quantize_row_q4_K_ref``).
    rmin, rdelta : float, default −1.0, 0.1
        Rounded to float32 as the C's float arguments (Q4_K: −1, 0.1; Q5_K ref −0.5, 0.1).
    nstep : int, default 20
        ``nstep < 1`` returns the first codes and scale.

    Returns
    -------
    Quantized
        ``method="make_qkx2_quants"``, ``alpha = step`` = the float32 scale (not stored: Q4_K
        quantizes it to 6 bits under an fp16 super-block scale).

    Notes
    -----
    Source: ggml-org/ggml ``src/ggml-quants.c`` ``make_qkx2_quants`` (``use_mad = false``).

    Examples
    --------
    >>> q = make_qkx2_quants(np.linspace(0, 1.5, 32))
    >>> q.codes[[0, -1]].tolist(), float(q.info["offset"][0])
    ([0, 15], 0.0)
    """
    nmax = V.integer(nmax, "nmax", 1, 255)
    nstep = V.integer(nstep, "nstep")
    rmin, rdelta = _F(V.real(rmin, "rmin")), _F(V.real(rdelta, "rdelta"))
    x, shape, g = _groups(w, group_size, QK)
    h = _importance(weights, shape, g)
    if h is None:
        h = _q4k_ref_weights(x)
    mn = np.minimum(np.min(x, axis=1), _F(0.0))
    mx = np.max(x, axis=1)
    flat = mx == mn
    sum_w = _seq_sum(h)
    sum_x = (h[:, 0] * x[:, 0]).astype(_F)
    for i in range(1, g):
        sum_x = sum_x + h[:, i] * x[:, i]
    fn = _F(nmax)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        span = np.where(flat, _F(1.0), mx - mn).astype(_F)
        iscale = (fn / span).astype(_F)
        scale = (_F(1.0) / iscale).astype(_F)
        codes = np.clip(_nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
        diff = (scale[:, None] * codes.astype(_F) + mn[:, None]) - x
        best_error = _seq_sum(h * (diff * diff))
        kept = iscale.copy()
        for i in range(nstep + 1 if nstep >= 1 else 0):
            span = np.where(flat, _F(1.0), mx - mn).astype(_F)
            cand = ((rmin + rdelta * _F(i) + fn) / span).astype(_F)
            aux = np.clip(_nearest_int(cand[:, None] * (x - mn[:, None])), 0, nmax)
            fl = aux.astype(_F)
            sum_l = _seq_sum(h * fl)
            sum_l2 = _seq_sum(h * fl * fl)
            sum_xl = _seq_sum(h * fl * x)
            det = sum_w * sum_l2 - sum_l * sum_l
            ok = det > 0
            dsafe = np.where(ok, det, _F(1.0))
            this_scale = ((sum_w * sum_xl - sum_x * sum_l) / dsafe).astype(_F)
            this_min = ((sum_l2 * sum_x - sum_l * sum_xl) / dsafe).astype(_F)
            pos = this_min > 0
            this_min = np.where(pos, _F(0.0), this_min)
            this_scale = np.where(pos, sum_xl / np.where(sum_l2 != 0, sum_l2, _F(1.0)),
                                  this_scale).astype(_F)
            diff = (this_scale[:, None] * fl + this_min[:, None]) - x
            cur = _seq_sum(h * (diff * diff))
            better = ok & (cur < best_error) & ~flat
            codes = np.where(better[:, None], aux, codes)
            best_error = np.where(better, cur, best_error)
            scale = np.where(better, this_scale, scale).astype(_F)
            mn = np.where(better, this_min, mn).astype(_F)
            kept = np.where(better, cand, kept).astype(_F)
    codes = np.where(flat[:, None], 0, codes)
    scale = np.where(flat, _F(0.0), scale).astype(_F)
    kept = np.where(flat, _F(0.0), kept).astype(_F)
    values = (scale[:, None] * codes.astype(_F)).astype(_F) + mn[:, None]
    return _result("make_qkx2_quants", "unsigned", _bits_of(nmax + 1), x, shape, g, codes,
                   values, scale, scale, {
                       "offset": mn.astype(np.float64), "iscale": kept,
                       "stored_dtype": "float32 (search result, not stored)",
                       "source": f"{_GGML}: make_qkx2_quants"})


def _best_index(y):
    """``best_index_int8(16, kvalues_iq4nl, y)`` in float32: nearest entry, ties upward."""
    mu = np.clip(np.searchsorted(_IQ4, y, side="right"), 1, 15)
    lower = (y - _IQ4[mu - 1]).astype(_F) < (_IQ4[mu] - y).astype(_F)
    idx = np.where(lower, mu - 1, mu)
    return np.where(y <= _IQ4[0], 0, np.where(y >= _IQ4[15], 15, idx))


def _iq4_sums(x, h, idx):
    q = _IQ4[idx]
    return _seq_sum(h * q * x), _seq_sum(h * q * q)


def iq4_nl(w, group_size=QK, weights=None, search=True):
    """llama.cpp IQ4_NL: scale search over the non-linear 16-level table (``kvalues_iq4nl``).

    Per block, ``max`` the signed element of largest ``|x|``; ``search=True``
    (``quantize_iq4_nl``, what llama-quantize runs; ``ntry = 7``): ``d₀ = max/127``, codes
    the nearest table entry of ``x/d₀``, ``d = Σhqx/Σhq²``; then 15 tries ``id = (i −
    127)/max``, i = −7 … 7, each replacing ``d`` by its refit when ``(Σhqx)² > best·Σhq²``;
    finally codes = nearest entries of ``x·(1/d)``. ``search=False``
    (``quantize_row_iq4_nl_ref``, ``ntry = −1``): ``d₀ = max/−127``, the codes at ``d₀`` and
    their refit ``d`` (no tries, no reassignment). ``h = weights`` or x²; nearest entry as
    ``best_index_int8`` (ties to the upper index). ``d`` is stored fp16,
    ``values = fp16(d)·K[c]``.

    Parameters
    ----------
    w : array_like, shape (..., n)
    group_size : int, default 32
    weights : array_like, optional
        Importance ``h``; ``imatrix_weights(w, imatrix, "iq4_nl")`` reproduces
        ``quantize_iq4_nl`` with an importance matrix.
    search : bool, default True

    Returns
    -------
    Quantized
        ``method="iq4_nl"``, codes 0…15 indexing ``info["codebook"]`` (the table);
        ``step`` the float32 ``d`` (stored fp16 as ``alpha``), ``info["iscale"]`` the inverse
        scale the codes were assigned with (``1/d``; ``−127/max`` with ``search=False``).

    Notes
    -----
    Source: ggml-org/ggml ``src/ggml-quants.c`` ``quantize_row_iq4_nl_impl``,
    ``best_index_int8``. An all-zero block gets ``d = 0`` and code 8 (the entry nearest 0,
    what ``quantize_iq4_nl`` stores); the C reference path leaves such a block's nibbles
    from the previous block (an uninitialised buffer for the first), values 0 either way.

    Examples
    --------
    >>> q = iq4_nl(np.linspace(-1, 1, 32))
    >>> q.codes[[0, -1]].tolist(), q.info["codebook"][[0, 15]].tolist()
    ([0, 15], [-127.0, 113.0])
    """
    if not isinstance(search, (bool, np.bool_)):
        V.fail("search", "True or False", repr(search), TypeError)
    x, shape, g = _groups(w, group_size, QK)
    h = _importance(weights, shape, g)
    if h is None:
        h = (x * x).astype(_F)
    vmax = _signed_max(x)
    zero = np.abs(vmax) < _F(1e-15)
    vsafe = np.where(zero, _F(1.0), vmax)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = ((-vsafe if search else vsafe) / _IQ4[0]).astype(_F)
        iscale = (_F(1.0) / d).astype(_F)
        idx = _best_index(iscale[:, None] * x)
        sqx, sq2 = _iq4_sums(x, h, idx)
        d = np.where(sq2 > 0, sqx / np.where(sq2 > 0, sq2, _F(1.0)), _F(0.0)).astype(_F)
        best = (d * sqx).astype(_F)
        ntry = 7 if search else -1
        for itry in range(-ntry, ntry + 1):
            ident = (_F(itry + int(_IQ4[0])) / vsafe).astype(_F)
            cidx = _best_index(ident[:, None] * x)
            sqx, sq2 = _iq4_sums(x, h, cidx)
            better = (sq2 > 0) & (sqx * sqx > best * sq2)
            d = np.where(better, sqx / np.where(sq2 > 0, sq2, _F(1.0)), d).astype(_F)
            best = np.where(better, d * sqx, best).astype(_F)
        d = np.where(zero, _F(0.0), d).astype(_F)
        if search:
            iscale = _inverse(d)
            idx = _best_index(iscale[:, None] * x)
    idx = np.where(zero[:, None], 8, idx)
    alpha = _fp16(d)
    values = alpha[:, None] * _IQ4[idx]
    kind = "quantize_iq4_nl (ntry 7)" if search else "quantize_row_iq4_nl_ref (ntry -1)"
    return _result("iq4_nl", "codebook", 4, x, shape, g, idx, values, alpha, d, {
        "codebook": IQ4_NL.copy(), "stored_dtype": "float16",
        "iscale": np.where(zero, _F(0.0), iscale).astype(_F),
        "source": f"{_GGML}: quantize_row_iq4_nl_impl via {kind}"})


# --- importance -----------------------------------------------------------------------------

IMATRIX_TYPES = ("q4_0", "q5_0", "q4_1", "q5_1", "q8_0", "q3_k", "q4_k", "q5_k", "q6_k",
                 "iq4_nl")


def _sigma_weights(x, qw, sigma2):
    """``qw·sqrtf(σ² + x²)`` in float32 (σ² per row of ``x``)."""
    return (qw * np.sqrt((sigma2[:, None] + x * x).astype(_F))).astype(_F)


def imatrix_weights(w, imatrix, qtype):
    """The per-element importance ``h`` llama.cpp quantizes a type with (FORMATS.md §2).

    With an importance matrix ``qw`` (one value per input column, the last axis of ``w``):

    ======================================  ==========================================
    ``qtype``                               ``h`` (float32, the C's expression)
    ======================================  ==========================================
    q4_0, q5_0, q4_1, q5_1                  ``qw·√(σ² + x²)``, σ² = Σx²/n over the row
    q3_k, q4_k, q5_k                        ``qw·√(σ² + x²)``, σ² = 2Σx²/256 per super-block
    iq4_nl                                  ``qw·√(σ² + x²)``, σ² = Σx²·(2/32) per block
    q6_k                                    ``qw``
    q8_0                                    None (quant_weights ignored)
    ======================================  ==========================================

    With ``imatrix=None``, what the type's default path weighs with: None for the reference
    quantizers (q4_0, q5_0, q4_1, q5_1, q8_0: unweighted rules), ``x²`` for q3_k, q6_k and
    iq4_nl, ``√(Σx²/32) + |x|`` per 32-block for q4_k, q5_k (their ``_ref`` functions).
    Σx² is a sequential float32 sum, as the C.

    Parameters
    ----------
    w : array_like, shape (..., n)
        Weights (rounded to float32); every row is one llama.cpp row of ``n`` weights.
    imatrix : array_like of shape (n,), optional
        Non-negative importance per input column.
    qtype : str
        One of :data:`IMATRIX_TYPES`.

    Returns
    -------
    ndarray of float32, shape of ``w``, or None

    Notes
    -----
    Source: ggml-org/ggml ``src/ggml-quants.c``, ``quantize_row_<type>_impl`` (the
    ``weight[j] = qw[j]·sqrtf(sigma2 + xb[j]·xb[j])`` lines) and the ``_ref`` functions.

    Examples
    --------
    >>> h = imatrix_weights(np.ones((1, 32)), np.full(32, 2.0), "q4_0")
    >>> float(h[0, 0]) == float(np.float32(2) * np.sqrt(np.float32(2)))
    True
    """
    qtype = V.choice(qtype.lower() if isinstance(qtype, str) else qtype, "qtype",
                     IMATRIX_TYPES)
    arr, _ = V.weights(w, "w")
    if arr.ndim == 0:
        V.fail("w", "an array with at least one axis", "a scalar")
    n = arr.shape[-1]
    block = {"q3_k": QK_K, "q4_k": QK_K, "q5_k": QK_K}.get(qtype, QK)
    if n % block:
        V.fail("w", f"rows whose length is a multiple of {block} for {qtype}",
               f"rows of {n}")
    x = np.array(arr, dtype=_F, order="C").reshape(-1, n)
    if imatrix is None:
        if qtype in ("q4_0", "q5_0", "q4_1", "q5_1", "q8_0"):
            return None
        if qtype in ("q4_k", "q5_k"):
            return _q4k_ref_weights(x.reshape(-1, QK)).reshape(arr.shape)
        return (x * x).reshape(arr.shape)
    if np.shape(imatrix) != (n,):
        V.fail("imatrix", f"one value per column of `w`: shape ({n},)",
               f"shape {np.shape(imatrix)}")
    qw = _importance(imatrix, (n,), n, "imatrix").reshape(n)
    if qtype == "q8_0":
        return None
    if qtype == "q6_k":
        return np.broadcast_to(qw, arr.shape).astype(_F)
    if qtype in ("q4_0", "q5_0", "q4_1", "q5_1"):
        sigma2 = (_seq_sum(x * x) / _F(n)).astype(_F)
        return _sigma_weights(x, qw, sigma2).reshape(arr.shape)
    rows = x.reshape(-1, block)
    qwb = np.tile(qw.reshape(-1, block), (x.shape[0], 1))
    if qtype == "iq4_nl":
        sigma2 = (_seq_sum(rows * rows) * _F(2.0 / 32)).astype(_F)
    else:
        sigma2 = ((_F(2.0) * _seq_sum(rows * rows)) / _F(QK_K)).astype(_F)
    return _sigma_weights(rows, qwb, sigma2).reshape(arr.shape)


# --- GPTQ, AWQ, compressed-tensors ------------------------------------------------------------

def _rtn_setup(w, bits, group_size, symmetric):
    bits = V.integer(bits, "bits", 2, 8)
    if not isinstance(symmetric, (bool, np.bool_)):
        V.fail("symmetric", "True or False", repr(symmetric), TypeError)
    x, shape, g = _groups(w, group_size, 128)
    return bits, x, shape, g


#: The weight dtypes a torch quantizer's arithmetic is replayed in (``dtype=``).
TORCH_DTYPES = ("float32", "float16", "bfloat16")


def _torch_dtype(dtype):
    """``dtype=`` of the torch rules as a name in :data:`TORCH_DTYPES` (None: float32)."""
    if dtype is None:
        return "float32"
    name = getattr(dtype, "name", None) or getattr(np.dtype(dtype) if not isinstance(
        dtype, str) else None, "name", None) or str(dtype)
    name = {"half": "float16", "bf16": "bfloat16", "fp16": "float16"}.get(name, name)
    if name not in TORCH_DTYPES:
        V.fail("dtype", f"one of {TORCH_DTYPES} (the weight's dtype) or None", repr(dtype))
    return name


def _rounder(dtype):
    """``rd(a)``: float32 ``a`` rounded to ``dtype`` (nearest even) and widened back.

    torch computes an op on float16/bfloat16 tensors (on CPU) in float32 and rounds the result
    to the tensor's dtype; for + − × ÷ of such values float32 holds the exact result to more
    than 2p + 1 bits, so this double rounding equals one correct rounding.
    """
    if dtype == "float32":
        return lambda a: np.asarray(a, dtype=_F)
    if dtype == "float16":
        target = np.float16
    else:
        import ml_dtypes
        target = ml_dtypes.bfloat16

    def rd(a):
        with np.errstate(over="ignore"):
            return np.asarray(a, dtype=_F).astype(target).astype(_F)
    return rd


def _eps(dtype):
    """``torch.finfo(dtype).eps`` as float32."""
    return _F({"float32": np.finfo(_F).eps, "float16": 2.0 ** -10,
               "bfloat16": 2.0 ** -7}[dtype])


def gptq_rtn(w, bits=4, group_size=128, symmetric=True):
    """GPTQ's quantizer grid per group, applied round-to-nearest (no error feedback).

    ``xmin = min(min x, 0)``, ``xmax = max(max x, 0)``; symmetric: ``xmax = max(|xmin|,
    xmax)`` and ``xmin = −xmax`` when ``xmin < 0`` (an all-non-negative group keeps
    ``xmin = 0``); both 0 → ``(−1, 1)``. ``s = (xmax − xmin)/(2^k − 1)`` (sym: ``2·amax/15``
    at 4 bits), ``z = 2^(k−1)`` (sym) or ``round(−xmin/s)``; codes
    ``u = clamp(round(x/s) + z, 0, 2^k − 1)``, round half to even, float32 (GPTQ works on
    float32 weights). ``s`` is stored fp16 (``alpha``), ``values = fp16(s)·(u − z)``,
    ``info["zero_point"] = z`` (what "v2" checkpoints store; "v1" stores ``z − 1``).

    GPTQ proper changes the weights column by column (error feedback) before rounding them
    on this grid: its codes are round-to-nearest of the *updated* weights, not of ``w``.

    Source: AutoGPTQ/AutoGPTQ ``auto_gptq/quantization/quantizer.py``
    ``Quantizer.find_params`` (``perchannel=True``, ``mse=False``) and ``quantize``, bit for
    bit on the fixtures (codes, scale, zero); ModelCloud/GPTQModel keeps the same rule for
    groups. ``values`` use the stored fp16 scale; GPTQ's own fake-quant uses the float32
    ``step``.

    Examples
    --------
    >>> q = gptq_rtn(np.linspace(-1, 1, 128))
    >>> q.codes[[0, -1]].tolist(), int(q.info["zero_point"][0])
    ([1, 15], 8)
    """
    bits, x, shape, g = _rtn_setup(w, bits, group_size, symmetric)
    maxq = _F(2 ** bits - 1)
    xmin = np.minimum(np.min(x, axis=1), _F(0.0))
    xmax = np.maximum(np.max(x, axis=1), _F(0.0))
    if symmetric:
        xmax = np.maximum(np.abs(xmin), xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
    both = (xmin == 0) & (xmax == 0)
    xmin = np.where(both, _F(-1.0), xmin)
    xmax = np.where(both, _F(1.0), xmax)
    s = ((xmax - xmin) / maxq).astype(_F)
    if symmetric:
        z = np.full(x.shape[0], _F(2 ** (bits - 1)))
    else:
        z = np.rint((-xmin / s).astype(_F))
    codes = np.clip(np.rint((x / s[:, None]).astype(_F)) + z[:, None], 0, maxq)
    alpha = _fp16(s)
    values = alpha[:, None] * (codes - z[:, None]).astype(_F)
    return _result("gptq_rtn", "unsigned", bits, x, shape, g, codes.astype(np.int64), values,
                   alpha, s, {"zero_point": z.astype(np.int64), "stored_dtype": "float16",
                              "source": "AutoGPTQ/AutoGPTQ auto_gptq/quantization/"
                                        "quantizer.py: Quantizer.find_params, quantize"})


def awq_rtn(w, bits=4, group_size=128, symmetric=False, dtype=None):
    """AutoAWQ's ``pseudo_quantize_tensor`` per group (the rounding after AWQ's scaling).

    Asymmetric (AutoAWQ's default, ``zero_point=True``): ``s = max(max − min, 1e-5)/(2^k −
    1)`` (no ``min ≤ 0 ≤ max`` forcing), ``z = clamp(−round(min/s), 0, 2^k − 1)``, codes
    ``clamp(round(x/s) + z, 0, 2^k − 1)``. Symmetric: ``s = max(amax, 1e-5)/(2^(k−1) − 1)``,
    codes ``clamp(round(x/s), −2^(k−1), 2^(k−1) − 1)``. Round half to even. ``s`` stored
    fp16; ``values = fp16(s)·(c − z)``.

    ``dtype`` is the weight's dtype, the one AutoAWQ computes in (None: float32).
    ``"float16"``/``"bfloat16"``: ``w`` is rounded to it and every torch op (``max − min``,
    the clamp to ``1e-5``, ``/``, ``+``) is rounded to it, as torch does on such a tensor;
    the asymmetric codes are then what ``WQLinear_GEMM.from_linear`` packs,
    ``round((ŵ + z·s)/s)`` of the fake-quantized ``ŵ = (c − z)·s`` in that dtype (``c``
    unless the dtype's rounding moves it), and ``values`` use that dtype's ``s``.

    Source: casper-hansen/AutoAWQ ``awq/quantize/quantizer.py``
    ``AwqQuantizer.pseudo_quantize_tensor``; ``awq/modules/linear/gemm.py``
    ``WQLinear_GEMM.from_linear``.

    Examples
    --------
    >>> q = awq_rtn(np.linspace(0, 1.5, 128))
    >>> q.codes[[0, -1]].tolist(), int(q.info["zero_point"][0])
    ([0, 15], 0)
    >>> q = awq_rtn(np.linspace(0, 1.5, 128).astype(np.float16), dtype="float16")
    >>> q.codes[[0, -1]].tolist(), q.info["arithmetic"]
    ([0, 15], 'float16')
    """
    dt = _torch_dtype(dtype)
    bits, x, shape, g = _rtn_setup(w, bits, group_size, symmetric)
    rd = _rounder(dt)
    x = rd(x)
    source = "casper-hansen/AutoAWQ awq/quantize/quantizer.py: pseudo_quantize_tensor"
    # (Bit for bit with it on the fixtures: codes, scale, zero.)
    info = {"stored_dtype": "float16", "source": source, "arithmetic": dt}
    tiny = rd(_F(1e-5))
    if symmetric:
        amax = np.maximum(np.max(np.abs(x), axis=1), tiny)
        s = rd(amax / _F(2 ** (bits - 1) - 1))
        codes = np.clip(np.rint(rd(x / s[:, None])), -2 ** (bits - 1),
                        2 ** (bits - 1) - 1).astype(np.int64)  # integers: no −0.0
        alpha = _fp16(s)
        return _result("awq_rtn", "midtread-full", bits, x, shape, g, codes,
                       alpha[:, None] * codes.astype(_F), alpha, s, info)
    maxq = _F(2 ** bits - 1)
    mx, mn = np.max(x, axis=1), np.min(x, axis=1)
    s = rd(np.maximum(rd(mx - mn), tiny) / maxq)
    z = np.clip(-np.rint(rd(mn / s)), 0, maxq)
    codes = np.clip(np.rint(rd(x / s[:, None])) + z[:, None], 0, maxq)
    if dt != "float32":
        codes = _awq_packed(codes, z, s, rd, 0, maxq)
    alpha = _fp16(s)
    values = alpha[:, None] * (codes - z[:, None]).astype(_F)
    info["zero_point"] = z.astype(np.int64)
    return _result("awq_rtn", "unsigned", bits, x, shape, g, codes.astype(np.int64), values,
                   alpha, s, info)


def _awq_packed(codes, z, s, rd, lo, hi):
    """The codes ``WQLinear_GEMM.from_linear`` stores from ``pseudo_quantize_tensor``'s
    fake-quantized weight in the weight's dtype: ``round(rd(rd(ŵ + rd(z·s))/s))`` with
    ``ŵ = rd((c − z)·s)`` (its ``.to(int)`` does not clamp; clamped here to the code range,
    which the fixtures never leave)."""
    zc, sc = z[:, None], s[:, None]
    fq = rd((np.asarray(codes, dtype=_F) - zc) * sc)
    return np.clip(np.rint(rd(rd(fq + rd(zc * sc)) / sc)), lo, hi)


def compressed_tensors_rtn(w, bits=4, group_size=128, symmetric=True, dtype=None):
    """compressed-tensors' integer quantization per group (the "pack-quantized" weights).

    ``min = min(min x, 0)``, ``max = max(max x, 0)``; symmetric: ``s = max(|min|, |max|)/
    (15/2)`` (``amax/7.5`` at 4 bits), ``z = 0``; asymmetric: ``s = (max − min)/15``,
    ``z = round(clamp(−8 − min/s, −8, 7))`` (an all-zero group: 0/0, cast to 0); then a
    zero ``s`` becomes the dtype's eps (compressed-tensors 0.20.1; the October 2025 source,
    commit 52792be0, clamped every ``s`` below eps up to eps, before ``z``). Codes
    ``round(clamp(x/s + z, −2^(k−1), 2^(k−1) − 1))``: **clamp before round**, half to even,
    signed (stored +2^(k−1)). ``values = (c − z)·s``.

    ``dtype`` is the weight's dtype, the one compressed-tensors computes in and keeps the
    scale in (None: float32). ``"float16"``/``"bfloat16"``: ``w`` is rounded to it and every
    torch op (``max − min``, ``/``, ``−``, ``x/s + z``) is rounded to it, as torch does on
    such a tensor; eps is that dtype's (2^−10, 2^−7) and ``alpha`` is the scale in it.

    Source: neuralmagic/compressed-tensors ``quantization/utils/helpers.py``
    ``calculate_qparams``, ``quantization/lifecycle/forward_helpers.py`` ``_quantize``,
    ``_dequantize``.

    Examples
    --------
    >>> q = compressed_tensors_rtn(np.linspace(-1, 1, 128))
    >>> q.codes[[0, -1]].tolist(), float(q.alpha[0]) == float(np.float32(1) / np.float32(7.5))
    ([-7, 7], True)
    >>> q = compressed_tensors_rtn(np.linspace(-1, 1, 128).astype(np.float16), dtype="float16")
    >>> float(q.alpha[0]) == float(np.float16(1 / 7.5)), q.info["arithmetic"]
    (True, 'float16')
    """
    dt = _torch_dtype(dtype)
    bits, x, shape, g = _rtn_setup(w, bits, group_size, symmetric)
    rd = _rounder(dt)
    x = rd(x)
    qmin, qmax = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    mn = np.minimum(np.min(x, axis=1), _F(0.0))
    mx = np.maximum(np.max(x, axis=1), _F(0.0))
    if symmetric:
        s = rd(np.maximum(np.abs(mn), np.abs(mx)) / _F((qmax - qmin) / 2))
        z = np.zeros(x.shape[0], dtype=_F)
    else:
        s = rd(rd(mx - mn) / _F(qmax - qmin))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.clip(rd(_F(qmin) - rd(mn / s)), qmin, qmax)
        # An all-zero group: 0/0 = NaN, which the int8 cast turns into 0 (x86).
        z = np.rint(np.where(np.isnan(z), _F(0.0), z)).astype(np.int64).astype(_F)
    s = np.where(s == 0, _eps(dt), s).astype(_F)
    scaled = rd(rd(x / s[:, None]) + z[:, None])
    codes = np.rint(np.clip(scaled, qmin, qmax))
    values = rd(rd(codes - z[:, None]) * s[:, None])
    info = {"stored_dtype": f"{dt} (the weight's dtype)", "arithmetic": dt,
            "source": "neuralmagic/compressed-tensors: calculate_qparams, _quantize"}
    if not symmetric:
        info["zero_point"] = z.astype(np.int64)
    return _result("compressed_tensors_rtn", "midtread-full", bits, x, shape, g,
                   codes.astype(np.int64), values, s, s, info)


# --- bitsandbytes ---------------------------------------------------------------------------

def _bnb(method, table, w, group_size):
    x, shape, g = _groups(w, group_size, 64)
    order = np.argsort(table, kind="stable")
    mids = ((table[order[:-1]] + table[order[1:]]) / _F(2.0)).astype(_F)
    absmax = np.max(np.abs(x), axis=1)
    inv = (_F(1.0) / np.maximum(absmax, _F(1e-38))).astype(_F)
    scaled = np.clip((x * inv[:, None]).astype(_F), _F(-1.0), _F(1.0))
    codes = order[np.searchsorted(mids, scaled, side="left")]
    values = (table[codes] * absmax[:, None]).astype(_F)
    return _result(method, "codebook", 4, x, shape, g, codes, values, absmax, absmax, {
        "codebook": table.astype(np.float64), "stored_dtype": "float32",
        "source": "bitsandbytes-foundation/bitsandbytes bitsandbytes/backends/default/ops.py:"
                  " quantize_4bit, _dequantize_4bit_compute"})


def bnb_nf4(w, group_size=64):
    """bitsandbytes NF4: ``absmax`` per block (float32), code = nearest NF4 entry of
    ``clamp(x·(1/absmax), −1, 1)``.

    As bitsandbytes' CPU/default ``quantize_4bit``: ``1.0/absmax`` (absmax clamped to 1e-38)
    in float32, the product rounded, then ``torch.bucketize`` on the float32 midpoints of the
    sorted table (``right=False``): a value exactly on a midpoint goes to the **lower** entry.
    ``values = table[c]·absmax`` (float32), ``alpha = step = absmax`` (stored float32; double
    quantization of absmax is not applied). The table is :data:`vecq_ref.codebooks.NF4`.

    Source: bitsandbytes-foundation/bitsandbytes ``bitsandbytes/backends/default/ops.py``
    (``quantize_4bit``, ``_get_4bit_quantize_bounds``, ``_dequantize_4bit_compute``),
    ``functional.get_4bit_type``.

    Examples
    --------
    >>> q = bnb_nf4(np.linspace(-1, 1, 64))
    >>> q.codes[[0, 31, 32, -1]].tolist()
    [0, 7, 7, 15]
    """
    return _bnb("bnb_nf4", NF4.astype(_F), w, group_size)


def bnb_fp4(w, group_size=64):
    """bitsandbytes FP4: as :func:`bnb_nf4` with the FP4 table :data:`BNB_FP4` (codes in
    bitsandbytes' bit-pattern order; ``order = argsort(table)`` maps sorted positions back).

    The table is ``get_4bit_type("fp4")``: the e2m1 values divided by 12 in float32
    (0.0052083335, 0.6666667, ...), not the 4-decimal ``_FP4_QUANT_TABLE`` of
    ``backends/utils.py`` (:data:`vecq_ref.codebooks.FP4_TABLE`), which the quantizer does
    not use. Codes 0 and 8 (the sign bit over a zero) both hold +0.0 (the source's list
    literal ``-0`` is the integer 0) and are tied in the sort, which puts code 0 first (as a
    stable sort; bitsandbytes' ``torch.argsort`` agrees on the fixtures): a zero or a small
    negative ``x/absmax`` (above −0.0026) gets code 0, a small positive one code 8.

    Examples
    --------
    >>> q = bnb_fp4(np.linspace(-1, 1, 64))
    >>> q.codes[[0, -1]].tolist()
    [11, 3]
    """
    return _bnb("bnb_fp4", BNB_FP4, w, group_size)


# --- torchao int4 (tinygemm) and HQQ: real offsets ------------------------------------------

def _round_mode(rounding):
    modes = {"half-even": np.rint, "half-away": _roundf,
             "half-up": lambda a: np.floor(a + _F(0.5)), "floor": np.floor}
    if rounding not in modes:
        V.fail("rounding", f"one of {sorted(modes)}", repr(rounding))
    return modes[rounding]


def _tinygemm(x, s, zp, rd, rnd):
    """torchao's tinygemm codes and dequantized values of the float32 groups ``x`` (already
    in the dtype) under the stored ``s`` and ``zp`` (per group), ``rd`` the dtype's
    rounding after each op, ``rnd`` the rounding to an integer."""
    s, zp = np.asarray(s, dtype=_F)[:, None], np.asarray(zp, dtype=_F)[:, None]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        lo = rd(zp - rd(s * _F(8)))
        codes = np.clip(rnd(rd(rd(x - lo) / s)), 0, 15)
        codes = np.where(np.isfinite(codes), codes, _F(0))
        values = rd(rd((codes - _F(8)) * s) + zp)
    return codes, values


def torchao_int4(w, group_size=128, dtype=None, *, zero="min+8s", rounding="half-even"):
    """torchao's int4 weight-only affine quantization, "tinygemm" layout (float zero).

    Per group of ``g`` contiguous weights: ``s = max((max − min)/15, tiny)`` (``tiny`` the
    dtype's smallest normal), the **float** zero ``zp = min + 8·s``, both kept in the weight's
    dtype; codes ``q = clamp(round((x − (zp − 8·s))/s), 0, 15)``, round half to even; the
    dequantized ``x̂ = (q − 8)·s + zp`` (two roundings in the dtype, as torchao's
    ``_dequantize_affine_tinygemm`` does). As a real offset: ``x̂ = s·q + m``, ``m = zp − 8·s``.

    Parameters
    ----------
    w : array_like, shape (..., n)
        Weights; groups run along the last axis (``group_size`` must divide ``n``).
    group_size : int, default 128
    dtype : {None, "float32", "float16", "bfloat16"}
        The weight's dtype, the one torchao computes in and stores ``s`` and ``zp`` in
        (None: float32); ``w`` is rounded to it and every torch op is rounded to it.
    zero : {"min+8s", "min"}
        ``"min"``: a variant for diagnosis (``zp = min``, the tinygemm shift forgotten).
    rounding : {"half-even", "half-away", "half-up", "floor"}
        A variant for diagnosis (torch.round is half to even).

    Returns
    -------
    Quantized
        ``codes`` 0…15, ``alpha`` the stored ``s`` (float64), ``values`` (float32, the
        dtype's values), ``info["zero"]`` the stored ``zp`` and ``info["offset"]`` ``m =
        zp − 8·s`` (float64 per group), ``info["stored_dtype"]``, ``info["arithmetic"]``.

    Raises
    ------
    ValueError, TypeError
        A bad ``w``, ``group_size``, ``dtype``, ``zero`` or ``rounding``.

    Source: pytorch/ao ``torchao/quantization/quant_primitives.py``
    ``_choose_qparams_affine_tinygemm``, ``_quantize_affine_tinygemm``,
    ``_dequantize_affine_tinygemm`` (torchao 0.18.0; bit for bit with it on
    tests/fixtures/formats/affine).

    Examples
    --------
    >>> q = torchao_int4(np.linspace(0, 1.5, 128))
    >>> q.codes[[0, -1]].tolist(), bool(q.info["zero"][0] == np.float32(0.8))
    ([0, 15], True)
    """
    dt = _torch_dtype(dtype)
    V.choice(zero, "zero", ("min+8s", "min"))
    rnd = _round_mode(rounding)
    x, shape, g = _groups(w, group_size, 128)
    rd = _rounder(dt)
    x = rd(x)
    tiny = _F({"float32": np.finfo(_F).tiny, "float16": 2.0 ** -14,
               "bfloat16": np.finfo(_F).tiny}[dt])
    mx, mn = np.max(x, axis=1), np.min(x, axis=1)
    with np.errstate(over="ignore"):
        s = np.maximum(rd(rd(mx - mn) / _F(15)), tiny)
        zp = rd(mn + rd(s * _F(8))) if zero == "min+8s" else mn
    codes, values = _tinygemm(x, s, zp, rd, rnd)
    info = {"stored_dtype": dt, "arithmetic": dt, "zero": zp.astype(np.float64),
            "offset": zp.astype(np.float64) - 8.0 * s.astype(np.float64),
            "source": "pytorch/ao quant_primitives.py: _choose_qparams_affine_tinygemm, "
                      "_quantize_affine_tinygemm"}
    return _result("torchao_int4", "unsigned", 4, x, shape, g, codes.astype(np.int64),
                   values, s, s, info)


def hqq_groups(w, group_size=64, axis=0):
    """``w`` as HQQ groups it: rows of the returned (n_groups, group_size) array.

    HQQ (``Quantizer.quantize``) reshapes the flattened weight to ``(g, −1)`` for ``axis=0``
    (its default; a group is a column of that) and to ``(−1, g)`` for ``axis=1``.

    Examples
    --------
    >>> hqq_groups(np.arange(8).reshape(2, 4), 2).tolist()
    [[0, 4], [1, 5], [2, 6], [3, 7]]
    """
    arr = V.as_array(w, "w")
    g = V.integer(group_size, "group_size", 1)
    if arr.size % g:
        V.fail("group_size", f"a divisor of w.size = {arr.size}", g)
    if axis not in (0, 1) or isinstance(axis, bool):
        V.fail("axis", "0 or 1 (HQQ's axis)", repr(axis))
    return arr.reshape(g, -1).T.copy() if axis == 0 else arr.reshape(-1, g).copy()


def hqq_affine(w, bits=4, group_size=64, zero=None, *, rounding="half-even"):
    """HQQ's grid per group, in its float32 arithmetic, with its zero or a given one.

    HQQ (``hqq.core.quantize.Quantizer.quantize``) works on ``W.float()``:

    - inverse scale ``i = (2^k − 1)/(max − min)``, computed as torch does ``int / tensor``,
      ``(1/(max − min))·(2^k − 1)`` (two float32 roundings); 1 where ``|max − min| ≤ 1e−4``;
      at most 2·10⁴;
    - zero ``z = −min·i``; its optimiser (``optimize=True``, the default) then changes ``z``
      only (a proximal solver under an ℓ_0.7 loss, not replayed here: pass the stored ``z``
      as ``zero``);
    - codes ``q = clamp(round(w·i + z), 0, 2^k − 1)``, half to even; stored ``s = 1/i``;
      ``x̂ = (q − z)·s``.

    Parameters
    ----------
    w : array_like, shape (..., n)
        Groups are the rows of ``w`` reshaped ``(−1, group_size)``: use :func:`hqq_groups`
        first for HQQ's own layout.
    bits : int, default 4
    group_size : int, default 64
    zero : array_like, optional
        The stored (optimised) zero, one per group; default the min–max zero.
    rounding : {"half-even", "half-away", "half-up", "floor"}
        A variant for diagnosis (torch.round is half to even).

    Returns
    -------
    Quantized
        ``codes``, ``alpha`` the stored ``s`` (float32 values, float64), ``step`` the same,
        ``values`` float32, ``info["zero"]`` (float64 per group), ``info["inverse"]`` ``i``
        (float32 values), ``info["offset"]`` ``m = −z·s``.

    Source: mobiusml/hqq ``hqq/core/quantize.py`` ``Quantizer.quantize``,
    ``hqq/core/optimize.py`` ``optimize_weights_proximal_legacy`` (hqq 0.2.8.post1).

    Examples
    --------
    >>> q = hqq_affine(np.linspace(0, 1.5, 64))
    >>> q.codes[[0, -1]].tolist(), float(q.info["zero"][0]) + 0.0
    ([0, 15], 0.0)
    """
    bits = V.integer(bits, "bits", 1, 8)
    rnd = _round_mode(rounding)
    x, shape, g = _groups(w, group_size, 64)
    top = _F(2 ** bits - 1)
    mx, mn = np.max(x, axis=1), np.min(x, axis=1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        den = (mx - mn).astype(_F)
        # torch's ``15 / t`` is ``t.reciprocal() * 15`` (Tensor.__rtruediv__): two roundings.
        inv = ((_F(1) / den).astype(_F) * top).astype(_F)
        inv = np.where(np.abs(den) <= _F(1e-4), _F(1), inv)
        inv = np.minimum(inv, _F(2e4)).astype(_F)
        z0 = (-mn * inv).astype(_F)
    if zero is None:
        z = z0
    else:
        z = np.asarray(zero, dtype=_F).reshape(-1)
        if z.size != x.shape[0]:
            V.fail("zero", f"one value per group ({x.shape[0]})", f"{z.size} values")
    codes = np.clip(rnd(((x * inv[:, None]).astype(_F) + z[:, None]).astype(_F)), 0, top)
    s = (_F(1) / inv).astype(_F)
    values = ((codes - z[:, None]).astype(_F) * s[:, None]).astype(_F)
    info = {"stored_dtype": "float32", "zero": z.astype(np.float64), "inverse": inv,
            "initial_zero": z0.astype(np.float64),
            "offset": -z.astype(np.float64) * s.astype(np.float64),
            "source": "mobiusml/hqq hqq/core/quantize.py: Quantizer.quantize"}
    return _result("hqq_affine", "unsigned", bits, x, shape, g, codes.astype(np.int64),
                   values, s, s, info)


__all__ = ["q4_0", "q5_0", "q8_0", "q4_1", "q5_1", "make_qx_quants", "make_qkx2_quants",
           "iq4_nl", "imatrix_weights", "gptq_rtn", "awq_rtn", "compressed_tensors_rtn",
           "bnb_nf4", "bnb_fp4", "BNB_FP4", "IMATRIX_TYPES", "torchao_int4",
           "hqq_affine", "hqq_groups"]
