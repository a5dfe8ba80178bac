"""Float formats as the checks need them: rounding error, spacing and casts that stay finite
and silent at both ends of a dtype's range (subnormals, the largest finite value).

Each function takes a dtype or a :class:`Scaled` format: the values of a dtype multiplied by
``2**exp`` (verify's working scale), whose resolution is the dtype's at the caller's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaled:
    """Values of ``dtype`` seen at ``2**exp`` times their size (exact: a power of two).

    verify moves float64 values far from 1 to a working scale where squared sums are safe; a
    value the caller stored as a subnormal is still one there, off by up to half of
    ``2**exp·η`` (``η`` the dtype's smallest positive value), however many bits the working
    scale's floats would have. Spacing, rounding and representation error of a ``Scaled``
    format are those of ``dtype`` at ``x·2**-exp``, times ``2**exp``.
    """

    dtype: np.dtype
    exp: int = 0


def fmt(dtype, exp=0):
    """``dtype`` itself for ``exp = 0``, else ``Scaled(dtype, exp)``."""
    return Scaled(np.dtype(dtype), int(exp)) if exp else dtype


def dtype_of(f):
    """The numpy dtype of a dtype or a :class:`Scaled` format."""
    return f.dtype if isinstance(f, Scaled) else np.dtype(f)


def _exp(f):
    return f.exp if isinstance(f, Scaled) else 0


def _finfo(dtype):
    dt = dtype_of(dtype)
    if dt.kind == "f":
        return np.finfo(dt)
    try:  # bfloat16 / fp8 (ml_dtypes), whose finfo numpy does not know
        import ml_dtypes

        return ml_dtypes.finfo(dt)
    except (ImportError, ValueError, TypeError):
        return np.finfo(np.float64)


def _eps(dtype):
    return float(_finfo(dtype).eps)


def unit_roundoff(dtype):
    """``ε/2`` of ``dtype``: the largest relative error of a value rounded to it."""
    return 0.5 * _eps(dtype)


def smallest_subnormal(dtype):
    """``η`` of ``dtype``: its smallest positive value, the spacing of its subnormals (times
    ``2**exp`` for a :class:`Scaled` format)."""
    return float(np.ldexp(float(_finfo(dtype).smallest_subnormal), _exp(dtype)))


def largest(dtype):
    """The largest finite value of ``dtype`` (times ``2**exp`` for a :class:`Scaled` format;
    inf where that leaves the float64 range)."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(float(_finfo(dtype).max), _exp(dtype)))


def representation_error(x, dtype):
    """Bound on ``|fl(x) − x|`` for ``x`` rounded to ``dtype`` (float64 array):
    ``max(u·|x|, η/2)``.

    Relative (``u = ε/2``, :func:`unit_roundoff`) where ``|x|`` is normal, absolute (half the
    subnormal spacing ``η``, :func:`smallest_subnormal`) below the smallest normal value
    ``η/(2u)``, where the two meet.
    """
    return np.maximum(unit_roundoff(dtype) * np.abs(x), 0.5 * smallest_subnormal(dtype))


def _unscale(x, k):
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(np.asarray(x, dtype=np.float64), -k) if k else \
            np.asarray(x, dtype=np.float64)


def spacing(x, dtype):
    """The spacing of ``dtype`` at ``|x|`` (the unit in the last place), float64; beyond
    ``dtype``'s largest finite value, that of its top binade (never inf, never a warning)."""
    fi = _finfo(dtype)
    dt = dtype_of(dtype)
    k = _exp(dtype)
    top = np.nextafter(dt.type(fi.max), dt.type(0))
    mag = np.minimum(np.abs(_unscale(x, k)), float(top)).astype(dt)
    out = np.spacing(mag).astype(np.float64)
    return np.ldexp(out, k) if k else out


def cast(x, dtype):
    """``x`` rounded to ``dtype`` (IEEE: beyond the largest finite value by half a unit in the
    last place or more it is ±inf, which then matches no finite value), without a warning.
    For a :class:`Scaled` format: rounded at the caller's scale, float64 at the working one."""
    k = _exp(dtype)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if not k:
            return np.asarray(x).astype(dtype)
        return np.ldexp(_unscale(x, k).astype(dtype_of(dtype)).astype(np.float64), k)


def at_caller_scale(x, dtype):
    """``x`` rounded to ``dtype`` as the caller holds it (for a :class:`Scaled` format: at
    ``x·2**-exp``): the values whose units in the last place count."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return _unscale(x, _exp(dtype)).astype(dtype_of(dtype))


_UINT = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


def ulp_distance(a, b):
    """Units in the last place between same-dtype float arrays (±0 equal; NaN → max).

    >>> x = np.float32(1.0)
    >>> int(ulp_distance(x, np.nextafter(x, np.float32(2))))
    1
    """
    a = np.asarray(a)
    b = np.asarray(b, dtype=a.dtype)
    if a.shape == b.shape and a.size > 64:
        # most pairs are equal or a few apart: the keys only where they differ
        diff = ~(a == b)
        if not np.any(diff):
            return np.zeros(a.shape)
        out = np.zeros(a.shape)
        out[diff] = _ulp_keys(a[diff], b[diff])
        return out
    return _ulp_keys(a, b)


def _ulp_keys(a, b):
    # IEEE floats are sign and magnitude: read as integers of their width, two values of one
    # sign are as many ulps apart as their integers; of opposite signs, the sum of their
    # magnitudes (in float: approximate where it exceeds 2⁵³)
    shape = np.shape(a)
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    it = _UINT[a.dtype.itemsize]
    mask = np.iinfo(it).max
    ia = np.ascontiguousarray(a).view(it).reshape(np.shape(a))
    ib = np.ascontiguousarray(b).view(it).reshape(np.shape(b))
    same = (ia ^ ib) >= 0
    d = np.abs(ia.astype(np.int64) - ib).astype(np.float64)
    if not np.all(same):
        opp = ~same
        d[opp] = (ia[opp] & mask).astype(np.float64) + (ib[opp] & mask).astype(np.float64)
    bad = np.isnan(a) | np.isnan(b)
    if np.any(bad):
        d[bad] = np.inf
    return d.reshape(shape)
