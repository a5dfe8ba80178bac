"""Float formats as the checks need them: rounding error, spacing and casts that stay finite
and silent at both ends of a dtype's range (subnormals, the largest finite value)."""

from __future__ import annotations

import numpy as np


def _finfo(dtype):
    dt = np.dtype(dtype)
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
    """``η`` of ``dtype``: its smallest positive value, the spacing of its subnormals."""
    return float(_finfo(dtype).smallest_subnormal)


def representation_error(x, dtype):
    """Bound on ``|fl(x) − x|`` for ``x`` rounded to ``dtype`` (float64 array):
    ``max(u·|x|, η/2)``.

    Relative (``u = ε/2``, :func:`unit_roundoff`) where ``|x|`` is normal, absolute (half the
    subnormal spacing ``η``, :func:`smallest_subnormal`) below the smallest normal value
    ``η/(2u)``, where the two meet.
    """
    return np.maximum(unit_roundoff(dtype) * np.abs(x), 0.5 * smallest_subnormal(dtype))


def spacing(x, dtype):
    """The spacing of ``dtype`` at ``|x|`` (the unit in the last place), float64; beyond
    ``dtype``'s largest finite value, that of its top binade (never inf, never a warning)."""
    fi = _finfo(dtype)
    dt = np.dtype(dtype)
    top = np.nextafter(dt.type(fi.max), dt.type(0))
    mag = np.minimum(np.abs(np.asarray(x, dtype=np.float64)), float(top)).astype(dt)
    return np.spacing(mag).astype(np.float64)


def cast(x, dtype):
    """``x`` rounded to ``dtype`` (IEEE: beyond the largest finite value by half a unit in the
    last place or more it is ±inf, which then matches no finite value), without a warning."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.asarray(x).astype(dtype)
