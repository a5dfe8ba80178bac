"""Input checks at the public boundary, with one message template.

Every public function validates here once; kernels trust their inputs. Messages follow

    `name` must be <expected>; got <what came in>.

and raise ``TypeError`` for a wrong kind of object and ``ValueError`` for a wrong value.
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np

LATTICES = ("midrise", "midtread")
MAX_BITS = 16


def fail(name, expected, got, exc=ValueError):
    """Raise ``exc`` with the library's one message template."""
    raise exc(f"`{name}` must be {expected}; got {got}.")


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def as_array(obj, name="w"):
    """Return a NumPy view/copy of ``obj`` (ndarray, ``__array__`` or ``__dlpack__``).

    Arrays in non-native byte order are converted to native order (a copy; the kernels read
    native floats only). An object with ``detach()`` whose ``__array__`` refuses (a torch
    tensor that requires grad) is read through ``obj.detach()``; torch is never imported.
    """
    arr = _as_array(obj, name)
    if arr.dtype.byteorder not in "=|" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _as_array(obj, name):
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__") and not hasattr(obj, "__array__"):
        try:
            return np.from_dlpack(obj)
        except (TypeError, RuntimeError, BufferError) as exc:
            raise TypeError(f"`{name}` could not be read through __dlpack__: {exc}") from exc
    if isinstance(obj, (str, bytes)) or obj is None:
        fail(name, "an array of real numbers", _describe(obj), TypeError)
    try:
        return np.asarray(obj)
    except (TypeError, ValueError, RuntimeError) as exc:
        detach = getattr(obj, "detach", None)
        if callable(detach):  # e.g. torch: "Can't call numpy() on Tensor that requires grad"
            try:
                return np.asarray(detach())
            except (TypeError, ValueError, RuntimeError) as exc2:
                raise TypeError(
                    f"`{name}` could not be read even through `{name}.detach()`: {exc2}; "
                    f"pass `{name}.detach().cpu().numpy()`.") from exc2
        raise TypeError(
            f"`{name}` must be an array of real numbers; got {_describe(obj)}.") from exc


#: ``ml_dtypes`` floats (bf16, fp8), which NumPy cannot compute with: read as their exact
#: float32 values (docs/theory.md, Numerics).
LOW_PRECISION = ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                 "float8_e5m2fnuz", "float8_e8m0fnu", "float8_e4m3", "float8_e4m3b11fnuz",
                 "float8_e3m4", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn")


def float_dtype_of(arr, name="w"):
    """The float dtype results are returned in: float16/32/64 kept, integers → float64,
    bf16/fp8 (``ml_dtypes``) → float32 (the dtype they are computed in)."""
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (2, 4, 8):
        return arr.dtype
    if kind in "iu":
        return np.dtype(np.float64)
    if arr.dtype.name in LOW_PRECISION:
        return np.dtype(np.float32)
    fail(name, "an array of real numbers (float16/32/64, bf16/fp8 through ml_dtypes, or "
               "integer; other types: convert first, e.g. `w.astype(np.float32)`)",
         f"dtype {arr.dtype}", TypeError)


def weights(obj, name="w", *, allow_empty=False, check_finite=True):
    """Validate a weight tensor; return ``(array, out_dtype)`` without copying when possible.

    The array returned is float32 or float64 (float16 and integers are widened) and is never
    written to. ``check_finite=False`` leaves the NaN/Inf check to the caller (a kernel that
    reads the data anyway then calls :func:`finite`).
    """
    arr = as_array(obj, name)
    out_dtype = float_dtype_of(arr, name)
    if arr.dtype == np.float16 or arr.dtype.kind in "iu" or arr.dtype.name in LOW_PRECISION:
        arr = arr.astype(np.float64 if arr.dtype.kind in "iu" else np.float32)
    if arr.size == 0 and not allow_empty:
        fail(name, "a non-empty array", f"shape {arr.shape}")
    if check_finite:
        finite(arr, name)
    return arr, out_dtype


def importance(obj, shape, name="weights"):
    """Validate importance weights ``h`` for a tensor of ``shape`` (docs/theory.md, weighted
    loss): real, finite, ``h ≥ 0`` (zeros allowed), broadcastable to ``shape`` (one per
    element, one per input column, i.e. the last axis, as an importance matrix gives, or a
    scalar). Returns a read-only float64 array of exactly ``shape`` (a broadcast view when
    possible; never the caller's memory made writeable), or None for ``obj is None``.
    """
    if obj is None:
        return None
    arr = as_array(obj, name)
    if arr.dtype.name in LOW_PRECISION:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        fail(name, "an array of non-negative real numbers", f"dtype {arr.dtype}", TypeError)
    given = arr.astype(np.float64, copy=False)
    try:
        arr = np.broadcast_to(given, shape)
    except ValueError:
        fail(name, f"broadcastable to the weights' shape {tuple(shape)} (one per element, or "
                   "one per input column: the last axis)", f"shape {given.shape}")
    # Counted among the caller's values, not after broadcasting (one NaN in a per-column
    # vector is one bad value, not one per row).
    bad = given.size - int(np.count_nonzero(np.isfinite(given)))
    if bad:
        fail(name, "finite", f"{bad} non-finite value{'s' if bad > 1 else ''} (NaN or Inf)")
    if arr.size and float(np.min(arr)) < 0:
        fail(name, "non-negative (h ≥ 0; zero weights are allowed)",
             f"a minimum of {float(np.min(arr))!r}")
    return arr


def finite(arr, name="w", sums_overflowed=False):
    """Raise if ``arr`` holds NaN or Inf. With ``sums_overflowed=True`` a finite ``arr`` is
    reported as too large (its float64 sum of squares overflowed)."""
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(
            f"`{name}` contains {bad} non-finite values (NaN or Inf); "
            "quantization needs finite weights."
        )
    if sums_overflowed:  # only method="paper", which runs at the caller's scale
        fail(name, "of a magnitude whose sum of squares fits in float64",
             f"a maximum |w| of {float(np.max(np.abs(arr))):.3g}")


#: float64 weights whose nonzero magnitudes all lie in ``[2**-SAFE_EXP, 2**SAFE_EXP)`` are
#: computed as given: no sum, square, product or quotient of the kernels can then overflow or
#: underflow (Σw² ≤ 2**840 for 2**40 weights, the smallest square 2**-800), so every float
#: operation is exactly equivariant under scaling by a power of two. float16/32 weights
#: (widened to float64 in the kernels) are always inside.
SAFE_EXP = 400


def scale_exponent(arr, name="w"):
    """The power of two ``k`` the public functions compute ``2**k · arr`` at (then scale back).

    0 when ``arr`` is not float64, all zero, or its nonzero magnitudes lie in the safe range
    (:data:`SAFE_EXP`); else, when the magnitudes span fewer than ``2·SAFE_EXP`` binades, the
    ``k`` that centres them in it; else the ``k`` that brings ``max|w|`` into [½, 1) (weights
    below ``2**-1074·2**-k`` then become 0; only a vector spanning more than 800 binades has
    any). Since computations inside the safe range are exactly scale-equivariant and
    ``2**k·arr`` is exact whenever it is normal, ``2**e·w`` and ``w`` get the same codes and
    their α, step and losses differ by exactly ``2**e`` (``2**(2e)`` for squared losses), up
    to the rounding of results that leave the float64 range. Raises on NaN/Inf (float64).
    """
    if arr.dtype != np.float64 or arr.size == 0:
        return 0
    from ._kernels.reduce import abs_extent

    lo, hi, bad = abs_extent(np.ascontiguousarray(arr).reshape(-1))
    if bad:
        finite(arr, name)
    if hi == 0.0:
        return 0
    emin, emax = int(np.frexp(lo)[1]), int(np.frexp(hi)[1])
    if emin > -SAFE_EXP and emax <= SAFE_EXP:
        return 0
    if emax - emin < 2 * SAFE_EXP:
        return -((emax + emin) // 2)
    return -emax


def check_values_fit(values, dtype, name="w", k=0):
    """Raise when float64 ``values`` (α·v, at the scale ``2**k`` of the caller's: see
    :func:`scale_exponent`) hold a value beyond the range of ``dtype``.

    The rule of every public function: values that do not fit the input's dtype are an
    error naming ``name``, its dtype and the fix; ±inf is never returned for finite input.
    The comparison is made at the working scale, so levels beyond the float64 range are
    reported with their magnitude, without an overflow on the way.
    """
    dtype = np.dtype(dtype)
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    limit = float(np.finfo(dtype).max)
    if k > 0 or top <= math.ldexp(limit, k):  # k > 0: weights scaled up, all fit
        if k or dtype == np.float64:
            return
        # Rounding to dtype can still reach inf just above the largest finite value.
        if np.isfinite(np.asarray(top).astype(dtype)):
            return
    wider = {np.dtype(np.float16): "np.float32", np.dtype(np.float32): "np.float64"}.get(dtype)
    fix = (f"pass `{name}.astype({wider})` to get them in {wider[3:]}" if wider else
           f"scale `{name}` down by a power of two (e.g. np.ldexp({name}, -8)), which leaves "
           "the codes unchanged, and scale α and the values back")
    raise ValueError(
        f"`{name}` (dtype {dtype}) quantizes to values beyond the {dtype} range (the largest "
        f"|α·v| is {scaled_str(top, k)} > {limit:.6g}); {fix}.")


def check_scale_fits(scales, k, name="w"):
    """Raise when a scale α or step (``scales``, at the working scale ``2**k``, ``k`` < 0:
    float64 weights near the float64 maximum) lies beyond the float64 range once scaled
    back, rather than return it as inf."""
    top = float(np.max(scales)) if np.size(scales) else 0.0
    limit = float(np.finfo(np.float64).max)
    if top <= math.ldexp(limit, k):
        return
    raise ValueError(
        f"`{name}` (dtype float64) has a scale α or step beyond the float64 range "
        f"({scaled_str(top, k)} > {limit:.6g}); scale `{name}` down by a power of two (e.g. "
        f"np.ldexp({name}, -8)), which leaves the codes unchanged, and scale α and the values "
        "back.")


def scaled_str(x, k):
    """``x·2**-k`` printed as ``{:.6g}`` would, also beyond the float64 range (no overflow,
    no underflow to 0)."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:.6g}"
    e10 = math.log10(abs(x)) - k * math.log10(2.0)
    if -300 < e10 < 308:
        return f"{math.ldexp(x, -k):.6g}"
    whole = math.floor(e10)
    mant = math.copysign(10 ** (e10 - whole), x)
    return f"{mant:.6g}e{whole:+03d}"


def integer(value, name, lo=None, hi=None):
    """Validate an integer (not bool) in ``[lo, hi]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        rng = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
        fail(name, f"an integer{rng}", _describe(value), TypeError)
    value = operator.index(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            fail(name, f"an integer >= {lo}", value)
        fail(name, f"an integer in [{lo}, {hi}]", value)
    return value


def real(value, name, *, positive=False, nonnegative=False):
    """Validate a finite real scalar."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        fail(name, "a real number", _describe(value), TypeError)
    value = float(value)
    if not np.isfinite(value):
        fail(name, "a finite real number", value)
    if positive and value <= 0:
        fail(name, "a positive real number", value)
    if nonnegative and value < 0:
        fail(name, "a non-negative real number", value)
    return value


def lattice(name_value, name="lattice"):
    if not isinstance(name_value, str):
        fail(name, f"one of {LATTICES}", _describe(name_value), TypeError)
    if name_value not in LATTICES:
        fail(name, f"one of {LATTICES}", repr(name_value))
    return name_value


def bits(value, lattice_name="midrise", name="bits"):
    """Validate ``bits`` in [1, 16]; midtread needs at least 2 bits (k = 1 has one level)."""
    value = integer(value, name, 1, MAX_BITS)
    if lattice_name == "midtread" and value < 2:
        fail(name, "at least 2 for the midtread lattice (k = 1 would leave only the level 0)",
             value)
    return value


def choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        fail(name, f"one of {tuple(options)}", _describe(value),
             TypeError if not isinstance(value, str) else ValueError)
    return value


def axis(value, ndim, name="axis"):
    """Normalise an axis (negative allowed) for an array of ``ndim`` dimensions."""
    value = integer(value, name)
    if not -ndim <= value < ndim:
        fail(name, f"an axis in [{-ndim}, {ndim - 1}] for a {ndim}-d array", value)
    return value % ndim


def group_size(value, shape, name="group_size"):
    """Validate a group size that divides the last axis of ``shape``."""
    value = integer(value, name, 1)
    if len(shape) == 0:
        fail(name, "None for a 0-d array (it has no last axis to group)", value)
    if shape[-1] % value:
        fail(name, f"a divisor of the last axis length {shape[-1]}", value)
    return value
