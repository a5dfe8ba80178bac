"""Lattices (code sets) of docs/theory.md §2, midrise (the paper's) and midtread, and the level
sets of the formats people ship (docs/theory.md, "Level sets"): the full range, zero points,
codebooks, a scale of either sign.

=============  ===============================  ==========  =====================
lattice        integer codes c                  level ℓ     k = 2
=============  ===============================  ==========  =====================
midrise        −2^(k−1) … 2^(k−1) − 1           c + ½       ±½, ±3/2
midtread       −(2^(k−1) − 1) … 2^(k−1) − 1     c           −1, 0, +1 (ternary)
midtread-full  −2^(k−1) … 2^(k−1) − 1           c           −2, −1, 0, +1
zero point     u = 0 … 2^k − 1                  u − z / u   (x̂ = α(u − z) / αu + m)
codebook       indices 0 … K − 1                book[c]     (NF4, FP4, IQ4_NL, any)
=============  ===============================  ==========  =====================

Rounding conventions (pinned): ``q = w / s`` by true division in float64; midrise
``c = clip(floor(q))`` (so ``w = j·s`` exactly gets code ``j``, a zero weight gets ``c = 0``,
``v = +½``); midtread rounds ``|q|`` half away from zero; every other set takes the nearest
level, a value exactly on a midpoint going to the level farther from zero
(:mod:`vecq_ref._kernels.levelset`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _layout
from . import _validation as V
from ._kernels import lattice as K
from ._kernels import levelset as LS


def code_dtype(bits):
    """int8 for k ≤ 8, int16 above."""
    return np.dtype(np.int8) if bits <= 8 else np.dtype(np.int16)


def code_range(bits, lattice="midrise"):
    """``(cmin, cmax)`` of the lattice at ``bits``.

    >>> code_range(2), code_range(2, "midtread")
    ((-2, 1), (-1, 1))
    """
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    half = 2 ** (bits - 1)
    return (-half if lattice == "midrise" else -(half - 1)), half - 1


def level_offset(lattice):
    return 0.5 if lattice == "midrise" else 0.0


def lattice_levels(bits, lattice="midrise"):
    """All levels of the lattice, ascending (float64).

    >>> lattice_levels(2).tolist()
    [-1.5, -0.5, 0.5, 1.5]
    """
    lo, hi = code_range(bits, lattice)
    return np.arange(lo, hi + 1, dtype=np.float64) + level_offset(lattice)


def codes(w, step, bits=None, lattice=None, *, axis=None, group_size=None, signed_scale=False,
          zero_point=None, z=None, offset=None, codebook=None):
    """Integer codes of ``w`` for the step ``step`` in any level set (docs/theory.md §2 and
    "Level sets"): the code of the level nearest ``w/step``.

    Parameters
    ----------
    w : array_like
        Weights (float16/32/64 or integer; ``__array__``/``__dlpack__`` accepted).
    step : float or array_like
        The step α in weight units (the level ``ℓ`` stands for ``α·ℓ``, plus the offset of a
        float zero point): a scalar, one per slice when ``axis``/``group_size`` is given, or
        any array broadcastable to ``w``. Positive and finite; of either sign (nonzero) with
        ``signed_scale=True``, where a negative step mirrors the level set.
    bits : int, optional
        Bitwidth k in [1, 16] (≥ 2 for midtread); optional for a codebook.
    lattice : {"midrise", "midtread", "midtread-full", "codebook"} or LevelSet, optional
        Default ``"midrise"`` (``"midtread-full"`` with a zero point, ``"codebook"`` with a
        codebook); a :class:`LevelSet` (then leave ``signed_scale``, ``zero_point`` and
        ``codebook`` at their defaults).
    axis, group_size : int, optional
        Interpret ``step`` (and ``z``, ``offset``) per slice along ``axis`` or per contiguous
        group of the last axis.
    signed_scale : bool
        Allow negative steps.
    zero_point : {None, "integer", "float"}
        ``"integer"``: codes ``u ∈ [0, 2^k − 1]`` are the nearest of ``w/step`` in the levels
        ``u − z`` (``x̂ = α·(u − z)``), ``z`` required. ``"float"``: ``u`` is the nearest of
        ``(w − offset)/step`` in ``0 … 2^k − 1`` (``x̂ = α·u + m``), ``offset`` required.
    z : int or array_like of int, optional
        The integer zero point(s) in ``[0, 2^k − 1]`` (scalar, per slice or broadcastable).
    offset : float or array_like, optional
        The real offset(s) ``m`` of a float zero point (scalar, per slice or broadcastable).
    codebook : str or array_like, optional
        ``"nf4"``, ``"fp4"``, ``"iq4_nl"`` or ascending levels: codes are indices into it.

    Returns
    -------
    ndarray, shape of ``w``
        ``LevelSet.code_dtype``: int8 when every code fits it, else int16 (int32 for the codes
        ``0 … 65535`` of a 16-bit zero point or a codebook of more than 32768 levels).

    Notes
    -----
    ``w/step`` is the float64 true division (``fl(w − m)/step`` for a float zero point).
    Ties: midrise rounds down to up (``c = floor(w/s)``, the paper's convention, for either
    sign of ``s``), every other set sends a value exactly on a midpoint to the level farther
    from zero (:mod:`vecq_ref._kernels.levelset`). Codes clip at the ends of the set.

    Raises
    ------
    ValueError, TypeError
        A combination outside :func:`level_set`'s table; ``step`` not positive (nonzero with
        ``signed_scale``) or not finite; ``z``/``offset`` missing, misplaced or out of range.

    Examples
    --------
    >>> codes([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0], 0.5, 2).tolist()
    [-2, -1, 0, 0, 1, 1]
    >>> codes([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0], 0.5, 2, "midtread").tolist()
    [-1, 0, 0, 1, 1, 1]
    >>> codes([1.0, -2.0, 0.3], -0.25, 4, "midtread-full", signed_scale=True).tolist()
    [-4, 7, -1]
    >>> codes([-0.5, 0.0, 0.4, 2.0], 0.1, 4, zero_point="integer", z=3).tolist()  # ℓ = u − 3
    [0, 3, 7, 15]
    """
    ls = level_set(lattice, bits, signed_scale=signed_scale, zero_point=zero_point,
                   codebook=codebook)
    arr, _ = V.weights(w, "w")
    lay = _layout.layout(arr.shape, axis, group_size)
    _check_zero_point_args(ls, z, offset)
    if ls.vecq:
        return _vecq_codes(arr, step, ls, lay)
    given = [step] + [v for v in (z, offset) if v is not None]
    elementwise = lay.per_tensor and any(np.ndim(v) > 0 for v in given)
    if elementwise:
        rows = np.ascontiguousarray(arr).reshape(-1, 1)
    else:
        rows = lay.to_rows(arr)
    n = rows.shape[0]
    steps = _row_values(_steps(step, ls), "step", lay, n, elementwise)
    if ls.zero_point == "float":
        m = _row_values(_reals(offset, "offset"), "offset", lay, n, elementwise)
        rows = rows.astype(np.float64) - m[:, None]
    if ls.lattice in ("midrise", "midtread"):  # a signed scale: y = w/s = (−w)/|s|
        neg = steps < 0
        if np.any(neg):
            rows = np.where(neg[:, None], -rows, rows)
        out = np.empty(rows.shape, dtype=ls.code_dtype)
        K.codes_rows(rows, np.abs(steps), ls.bits, ls.lattice == "midtread", out)
    else:
        lo = ls.code_range[0]
        levels_ = ls.levels
        idx = np.empty(rows.shape, dtype=np.int16 if levels_.size <= 2 ** 15 else np.int32)
        if ls.zero_point == "integer":
            zr = _row_values(_zero_points(z, ls.bits), "z", lay, n, elementwise).astype(np.int64)
            for zu in np.unique(zr):
                sel = zr == zu
                lv = levels_ - float(zu)
                if np.all(sel):
                    LS.assign_rows(rows, steps, lv, idx)
                else:
                    part = np.empty((int(sel.sum()), rows.shape[1]), dtype=idx.dtype)
                    idx[sel] = LS.assign_rows(np.ascontiguousarray(rows[sel]), steps[sel], lv,
                                              part)
        else:
            LS.assign_rows(rows, steps, levels_, idx)
        out = (idx + lo).astype(ls.code_dtype) if lo else idx.astype(ls.code_dtype, copy=False)
    if elementwise:
        return out.reshape(arr.shape)
    return lay.from_rows(out)


def _vecq_codes(arr, step, ls, lay):
    """Codes of VecQ's own lattices (midrise, midtread; positive step), by the lattice
    kernels (docs/theory.md §2)."""
    mid = ls.lattice == "midtread"
    out_dtype = code_dtype(ls.bits)
    bits = ls.bits
    if lay.per_tensor and np.ndim(step) > 0:
        st = _layout.positive_steps(step)
        try:
            flat = np.broadcast_to(st, arr.shape).ravel()
        except ValueError:
            V.fail("step", f"a scalar or an array broadcastable to {arr.shape}",
                   f"shape {np.shape(step)}")
        flat = np.ascontiguousarray(flat)
        out = np.empty(arr.size, dtype=out_dtype)
        K.codes_elementwise(np.ascontiguousarray(arr).ravel(), flat, bits, mid, out)
        return out.reshape(arr.shape)
    rows = lay.to_rows(arr)
    steps = _layout.row_steps(step, lay, rows.shape[0])
    out = np.empty(rows.shape, dtype=out_dtype)
    K.codes_rows(rows, steps, bits, mid, out)
    return lay.from_rows(out)


def _check_zero_point_args(ls, z, offset, levels_only=False):
    """``z`` exactly with an integer zero point, ``offset`` exactly with a float one (never
    for :func:`levels`: ``x̂ = α·u + m`` adds it after the level)."""
    if ls.zero_point == "integer" and z is None:
        V.fail("z", "the integer zero point(s) with zero_point='integer'", None, TypeError)
    if ls.zero_point != "integer" and z is not None:
        V.fail("z", "None unless zero_point='integer'", _describe(z))
    if ls.zero_point == "float" and offset is None and not levels_only:
        V.fail("offset", "the real offset(s) m with zero_point='float'", None, TypeError)
    if ls.zero_point != "float" and offset is not None:
        V.fail("offset", "None unless zero_point='float'", _describe(offset))


def _reals(value, name):
    """A real, finite scalar or array as float64."""
    arr = V.as_array(value, name)
    if arr.dtype.name in V.LOW_PRECISION:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "fiu":
        V.fail(name, "a real number or an array of them", f"dtype {arr.dtype}", TypeError)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        V.fail(name, "finite", "non-finite values (NaN or Inf)")
    return arr


def _steps(step, ls):
    """``step`` as float64: positive, or nonzero with a signed scale; always finite."""
    arr = _reals(step, "step")
    if arr.size == 0:
        return arr
    if ls.signed_scale:
        if np.any(arr == 0):
            V.fail("step", "nonzero (either sign with signed_scale=True) and finite", "0.0")
    elif np.min(arr) <= 0:
        V.fail("step", "positive and finite (a negative step needs signed_scale=True)",
               f"a minimum of {float(np.min(arr))!r}")
    return arr


def _zero_points(z, bits):
    """Integer zero points in ``[0, 2^k − 1]`` (integer dtype, or floats of integer value)."""
    arr = V.as_array(z, "z")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "fiu":
        V.fail("z", "an integer or an array of integers", f"dtype {arr.dtype}", TypeError)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        V.fail("z", "integer-valued", "non-integer values")
    top = 2 ** bits - 1
    if arr.size and (np.min(arr) < 0 or np.max(arr) > top):
        V.fail("z", f"in [0, {top}] (the codes' range at {bits} bits)",
               f"values in [{np.min(arr)}, {np.max(arr)}]")
    return arr.astype(np.float64)


def _row_values(arr, name, lay, rows, elementwise):
    """A scalar, per-slice or (``elementwise``) broadcastable array as one float64 per row."""
    if arr.ndim == 0:
        return np.full(rows, float(arr))
    shape = lay.shape if elementwise else lay.slice_shape
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, shape).reshape(rows),
                                    dtype=np.float64)
    except ValueError:
        V.fail(name, f"a scalar or an array broadcastable to {shape}", f"shape {arr.shape}")


def levels(codes, lattice=None, *, bits=None, signed_scale=False, zero_point=None,
           codebook=None, z=None, axis=None, group_size=None):
    """Float levels ``ℓ`` of integer codes (docs/theory.md §2, "Level sets"): ``c + ½``
    (midrise), ``c`` (midtread, midtread-full), ``u − z`` (integer zero point), ``u`` (float
    zero point: ``x̂ = α·u + m``), ``codebook[c]``.

    Parameters
    ----------
    codes : array_like of int
    lattice, bits, signed_scale, zero_point, codebook
        The level set, as for :func:`codes` (``lattice`` default ``"midrise"``; ``bits`` may
        be left out for midrise, midtread and midtread-full, and then codes are not checked
        against the range).
    z : int or array_like of int, optional
        The integer zero point(s) (required with ``zero_point="integer"``): a scalar, one per
        slice along ``axis`` / per group of ``group_size``, or broadcastable to ``codes``.
    axis, group_size : int, optional

    Returns
    -------
    ndarray of float64, shape of ``codes``.

    Raises
    ------
    TypeError
        ``codes`` not integers.
    ValueError
        Codes outside the set's range (when it is known), a bad combination or ``z``.

    Examples
    --------
    >>> levels([-2, 0, 1]).tolist()
    [-1.5, 0.5, 1.5]
    >>> levels([0, 8, 15], bits=4, zero_point="integer", z=8).tolist()
    [-8.0, 0.0, 7.0]
    >>> levels([0, 7, 15], codebook="nf4").tolist()
    [-1.0, 0.0, 1.0]
    """
    c = V.as_array(codes, "codes")
    if c.dtype.kind not in "iu":
        V.fail("codes", "an integer array", f"dtype {c.dtype}", TypeError)
    if (bits is None and not isinstance(lattice, LevelSet) and zero_point is None
            and codebook is None and not signed_scale):
        name = "midrise" if lattice is None else lattice
        if not isinstance(name, str):
            V.fail("lattice", f"one of {UNIFORM_LATTICES + ('codebook',)} or a LevelSet",
                   _describe(name), TypeError)
        if name == "codebook":
            V.fail("codebook", "given when lattice='codebook'", None)
        V.choice(name, "lattice", UNIFORM_LATTICES)
        if z is not None:
            V.fail("z", "None unless zero_point='integer'", _describe(z))
        return c.astype(np.float64) + (0.5 if name == "midrise" else 0.0)
    ls = level_set(lattice, bits, signed_scale=signed_scale, zero_point=zero_point,
                   codebook=codebook)
    _check_zero_point_args(ls, z, None, levels_only=True)
    lo, hi = ls.code_range
    if c.size and (int(np.min(c)) < lo or int(np.max(c)) > hi):
        V.fail("codes", f"in [{lo}, {hi}] for {ls!r}",
               f"values in [{int(np.min(c))}, {int(np.max(c))}]")
    if ls.codebook is not None:
        return ls.codebook[c]
    out = c.astype(np.float64) + ls.offset
    if ls.zero_point == "integer":
        zs = _zero_points(z, ls.bits)
        lay = _layout.layout(c.shape, axis, group_size)
        if lay.per_tensor:
            try:
                return out - np.broadcast_to(zs, c.shape)
            except ValueError:
                V.fail("z", f"a scalar or an array broadcastable to {c.shape}",
                       f"shape {zs.shape}")
        rows = lay.to_rows(out)
        zr = _row_values(zs, "z", lay, rows.shape[0], False)
        return lay.from_rows(rows - zr[:, None])
    if axis is not None or group_size is not None:
        _layout.layout(c.shape, axis, group_size)  # validated, though levels need no slices
    return out


# --- level sets of every format (FORMATS: docs/theory.md, "Level sets") -------------------

#: Uniform lattices by name. ``midtread-full`` is the full two's-complement range
#: −2^(k−1) … 2^(k−1) − 1 (GPTQ-sym, torch.ao, compressed-tensors-sym, llama.cpp Q4_0/Q5_0/Q8_0's
#: codes with the scale's sign free).
UNIFORM_LATTICES = ("midrise", "midtread", "midtread-full")
ZERO_POINTS = ("integer", "float")


@dataclass(frozen=True, eq=False)
class LevelSet:
    """A level set ``x̂ = α·ℓ + m`` of docs/theory.md §2.1: which integer codes exist,
    which level each stands for, and what is free per slice (the scale's sign, a zero point).

    Build one with :func:`level_set`; every function that takes ``lattice=`` accepts one.

    Attributes
    ----------
    lattice : {"midrise", "midtread", "midtread-full", "codebook"}
    bits : int
        Bits per code: ``k`` of a uniform lattice, ``ceil(log2 K)`` of a K-level codebook.
    signed_scale : bool
        α may be negative (the mirrored set ``−L`` is searched too).
    zero_point : {None, "integer", "float"}
        ``"integer"``: codes ``u ∈ [0, 2^k − 1]`` and ``x̂ = α(u − z)``, an integer ``z`` per
        slice; ``"float"``: ``x̂ = α·u + m``, a real ``m`` per slice. The lattice is then
        ``"midtread-full"`` (``z = 2^(k−1)`` is the full range).
    codebook : ndarray or None
        The codebook's levels (float64, ascending, distinct, read-only).
    name : str or None
        The codebook's name (``"nf4"``, ``"fp4"``, ``"iq4_nl"``) or None.
    """

    lattice: str
    bits: int
    signed_scale: bool = False
    zero_point: str | None = None
    codebook: np.ndarray | None = None
    name: str | None = None

    @property
    def levels(self):
        """The levels ``ℓ`` of the codes for α > 0 (and ``z = 0``), ascending float64: code
        ``c`` stands for ``levels[c − code_min]``."""
        if self.codebook is not None:
            return self.codebook
        lo, hi = self.code_range
        return np.arange(lo, hi + 1, dtype=np.float64) + self.offset

    @property
    def code_range(self):
        """``(cmin, cmax)``, the integer codes (a codebook's are indices ``0 … K − 1``)."""
        if self.codebook is not None:
            return 0, self.codebook.size - 1
        if self.zero_point is not None:
            return 0, 2 ** self.bits - 1
        half = 2 ** (self.bits - 1)
        return (-(half - 1) if self.lattice == "midtread" else -half), half - 1

    @property
    def offset(self):
        """``ℓ − c`` of a uniform lattice (½ midrise, 0 otherwise); 0 for a codebook."""
        return 0.5 if self.lattice == "midrise" else 0.0

    @property
    def uniform(self):
        """True for the uniform lattices (levels ``c + offset``)."""
        return self.codebook is None

    @property
    def code_dtype(self):
        """int8 when every code fits it (codes 0 … 255 at 8 bits do not), else int16, else
        int32 (codes 0 … 65535 of 16 bits with a zero point, or a codebook that large)."""
        lo, hi = self.code_range
        if -128 <= lo and hi <= 127:
            return np.dtype(np.int8)
        return np.dtype(np.int16) if -32768 <= lo and hi <= 32767 else np.dtype(np.int32)

    @property
    def vecq(self):
        """True for VecQ's own level sets (midrise, midtread; positive scale, no zero point,
        no codebook): the paper's λ tables and the original exact search apply."""
        return (self.lattice in ("midrise", "midtread") and not self.signed_scale
                and self.zero_point is None)

    def __repr__(self):
        parts = [repr(self.name or self.lattice), f"bits={self.bits}"]
        if self.signed_scale:
            parts.append("signed_scale=True")
        if self.zero_point:
            parts.append(f"zero_point={self.zero_point!r}")
        return f"LevelSet({', '.join(parts)})"


def _codebook(codebook):
    """A codebook argument (a name of :data:`vecq_ref.codebooks.NAMED` or levels) as
    ``(levels, name)``."""
    from . import codebooks

    if isinstance(codebook, str):
        key = codebook.lower()
        if key not in codebooks.NAMED:
            V.fail("codebook", f"one of {tuple(codebooks.NAMED)} or an array of levels",
                   repr(codebook))
        return codebooks.NAMED[key], key
    arr = V.as_array(codebook, "codebook")
    if arr.dtype.kind not in "fiu" or arr.ndim != 1:
        V.fail("codebook", "a 1-d array of real levels", f"{arr.ndim}-d {arr.dtype}", TypeError)
    arr = arr.astype(np.float64)
    if not 2 <= arr.size <= 2 ** V.MAX_BITS:
        V.fail("codebook", f"between 2 and {2 ** V.MAX_BITS} levels", f"{arr.size}")
    if not np.all(np.isfinite(arr)):
        V.fail("codebook", "finite", "non-finite levels")
    if not np.all(np.diff(arr) > 0):
        V.fail("codebook", "strictly ascending (sorted, distinct)", "unsorted or repeated levels")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr, None


def level_set(lattice=None, bits=None, *, signed_scale=False, zero_point=None, codebook=None):
    """Validate one combination of docs/theory.md's level-set table and return its
    :class:`LevelSet`.

    =================  =========  ============  ==============  ========================
    lattice            codebook   signed_scale  zero_point      codes
    =================  =========  ============  ==============  ========================
    midrise, midtread  —          yes           —               c (levels c + ½, c)
    midtread-full      —          yes           —               −2^(k−1) … 2^(k−1) − 1
    midtread-full      —          —             integer, float  0 … 2^k − 1
    codebook           levels     yes           —               indices 0 … K − 1
    =================  =========  ============  ==============  ========================

    Parameters
    ----------
    lattice : {"midrise", "midtread", "midtread-full", "codebook"} or LevelSet, optional
        Default: ``"midrise"``; ``"midtread-full"`` with a zero point; ``"codebook"`` with a
        codebook. A :class:`LevelSet` is returned as it is (the other arguments must then be
        left at their defaults, ``bits`` may repeat its bits).
    bits : int
        k in [1, 16] (≥ 2 midtread); for a codebook optional, and if given ``ceil(log2 K)``.
    signed_scale : bool
    zero_point : {None, "integer", "float"}
    codebook : str or array_like, optional
        ``"nf4"``, ``"fp4"``, ``"iq4_nl"`` (:mod:`vecq_ref.codebooks`) or ascending levels.

    Raises
    ------
    ValueError, TypeError
        For a combination outside the table, naming the argument.

    Examples
    --------
    >>> level_set("midtread-full", 4, signed_scale=True)
    LevelSet('midtread-full', bits=4, signed_scale=True)
    >>> level_set(bits=3, zero_point="integer").code_range
    (0, 7)
    >>> level_set(codebook="nf4").bits
    4
    """
    if isinstance(lattice, LevelSet):
        if signed_scale or zero_point is not None or codebook is not None:
            V.fail("lattice", "a lattice name when `signed_scale`, `zero_point` or `codebook` "
                   "is given", repr(lattice))
        if bits is not None and V.integer(bits, "bits") != lattice.bits:
            V.fail("bits", f"{lattice.bits}, the bits of `lattice`", bits)
        return lattice
    if not isinstance(signed_scale, (bool, np.bool_)):
        V.fail("signed_scale", "True or False", _describe(signed_scale), TypeError)
    signed_scale = bool(signed_scale)
    if zero_point is not None:
        V.choice(zero_point, "zero_point", ZERO_POINTS)
    if codebook is not None:
        if lattice not in (None, "codebook"):
            V.fail("lattice", "None or 'codebook' when `codebook` is given", repr(lattice))
        if zero_point is not None:
            V.fail("zero_point", "None with a codebook (its levels are fixed)", repr(zero_point))
        levels_, name = _codebook(codebook)
        need = max(1, int(np.ceil(np.log2(levels_.size))))
        if bits is not None and V.integer(bits, "bits", 1, V.MAX_BITS) != need:
            V.fail("bits", f"{need} (or None) for a codebook of {levels_.size} levels", bits)
        return LevelSet("codebook", need, signed_scale, None, levels_, name)
    if lattice == "codebook":
        V.fail("codebook", "given when lattice='codebook'", None)
    if lattice is None:
        lattice = "midtread-full" if zero_point is not None else "midrise"
    V.choice(lattice, "lattice", UNIFORM_LATTICES + ("codebook",))
    if bits is None:
        V.fail("bits", "an integer in [1, 16]", None, TypeError)
    bits = V.bits(bits, "midtread" if lattice == "midtread" else "midrise")
    if zero_point is not None:
        if lattice != "midtread-full":
            V.fail("lattice", "'midtread-full' (or None) with a zero point: its codes are "
                   "0 … 2^k − 1", repr(lattice))
        if signed_scale:
            V.fail("signed_scale", "False with a zero point (the mirrored set is another zero "
                   "point)", True)
    return LevelSet(lattice, bits, signed_scale, zero_point)


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


__all__ = ["codes", "levels", "code_range", "lattice_levels", "code_dtype", "LevelSet",
           "level_set"]
