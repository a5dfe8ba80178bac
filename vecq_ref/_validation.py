"""Input checks at the public boundary, with one message template.

Every public function validates here once; kernels trust their inputs. Messages follow

    `name` must be <expected>; got <what came in>.

and raise ``TypeError`` for a wrong kind of object and ``ValueError`` for a wrong value.
"""

from __future__ import annotations

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
    """Return a NumPy view/copy of ``obj`` (ndarray, ``__array__`` or ``__dlpack__``)."""
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
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be an array of real numbers; got {_describe(obj)}.") from exc


def float_dtype_of(arr, name="w"):
    """The float dtype results are returned in: float16/32/64 kept, integers → float64."""
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (2, 4, 8):
        return arr.dtype
    if kind in "iu":
        return np.dtype(np.float64)
    fail(name, "an array of real numbers (float16/32/64 or integer)",
         f"dtype {arr.dtype}", TypeError)


def weights(obj, name="w", *, allow_empty=False, check_finite=True):
    """Validate a weight tensor; return ``(array, out_dtype)`` without copying when possible.

    The array returned is float32 or float64 (float16 and integers are widened) and is never
    written to. ``check_finite=False`` leaves the NaN/Inf check to the caller (a kernel that
    reads the data anyway then calls :func:`finite`).
    """
    arr = as_array(obj, name)
    out_dtype = float_dtype_of(arr, name)
    if arr.dtype == np.float16 or arr.dtype.kind in "iu":
        arr = arr.astype(np.float32 if arr.dtype == np.float16 else np.float64)
    if arr.size == 0 and not allow_empty:
        fail(name, "a non-empty array", f"shape {arr.shape}")
    if check_finite:
        finite(arr, name)
    return arr, out_dtype


def finite(arr, name="w", sums_overflowed=False):
    """Raise if ``arr`` holds NaN or Inf. With ``sums_overflowed=True`` a finite ``arr`` is
    reported as too large (its float64 sum of squares overflowed)."""
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(
            f"`{name}` contains {bad} non-finite values (NaN or Inf); "
            "quantization needs finite weights."
        )
    if sums_overflowed:
        fail(name, "of a magnitude whose sum of squares fits in float64 (|w| < ~1e150)",
             f"a maximum |w| of {float(np.max(np.abs(arr))):.3g}")


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
