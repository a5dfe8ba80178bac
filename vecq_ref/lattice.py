"""Lattices (code sets) of docs/theory.md §2: midrise (the paper's) and midtread.

========  ===============================  ========  =====================
lattice   integer codes c                  level v   k = 2
========  ===============================  ========  =====================
midrise   −2^(k−1) … 2^(k−1) − 1           c + ½     ±½, ±3/2
midtread  −(2^(k−1) − 1) … 2^(k−1) − 1     c         −1, 0, +1 (ternary)
========  ===============================  ========  =====================

Rounding conventions (pinned): ``q = w / s`` by true division in float64; midrise
``c = clip(floor(q))`` (so ``w = j·s`` exactly gets code ``j``, a zero weight gets ``c = 0``,
``v = +½``); midtread rounds ``|q|`` half away from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _layout
from . import _validation as V
from ._kernels import lattice as K


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


def codes(w, step, bits, lattice="midrise", *, axis=None, group_size=None):
    """Integer codes of ``w`` for the threshold spacing ``step`` (docs/theory.md §2).

    Parameters
    ----------
    w : array_like
        Weights (float16/32/64 or integer; ``__array__``/``__dlpack__`` accepted).
    step : float or array_like
        Positive step in weight units: a scalar, one per slice when ``axis``/``group_size`` is
        given, or any array broadcastable to ``w``.
    bits : int
        Bitwidth k in [1, 16] (≥ 2 for midtread).
    lattice : {"midrise", "midtread"}
    axis, group_size : int, optional
        Interpret ``step`` per slice along ``axis`` or per contiguous group of the last axis.

    Returns
    -------
    ndarray of int8 (k ≤ 8) or int16, shape of ``w``.

    Examples
    --------
    >>> codes([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0], 0.5, 2).tolist()
    [-2, -1, 0, 0, 1, 1]
    >>> codes([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0], 0.5, 2, "midtread").tolist()
    [-1, 0, 0, 1, 1, 1]
    """
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    arr, _ = V.weights(w, "w")
    lay = _layout.layout(arr.shape, axis, group_size)
    mid = lattice == "midtread"
    out_dtype = code_dtype(bits)
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


def levels(codes, lattice="midrise"):
    """Float levels ``v`` of integer codes: ``c + ½`` (midrise) or ``c`` (midtread).

    >>> levels([-2, 0, 1]).tolist()
    [-1.5, 0.5, 1.5]
    """
    lattice = V.lattice(lattice)
    c = V.as_array(codes, "codes")
    if c.dtype.kind not in "iu":
        V.fail("codes", "an integer array", f"dtype {c.dtype}", TypeError)
    return c.astype(np.float64) + level_offset(lattice)


# --- level sets of every format (FORMATS: docs/theory.md, "Level sets") -------------------

#: Uniform lattices by name. ``midtread-full`` is the full two's-complement range
#: −2^(k−1) … 2^(k−1) − 1 (GPTQ-sym, torch.ao, compressed-tensors-sym, llama.cpp Q4_0/Q5_0/Q8_0's
#: codes with the scale's sign free).
UNIFORM_LATTICES = ("midrise", "midtread", "midtread-full")
ZERO_POINTS = ("integer", "float")


@dataclass(frozen=True, eq=False)
class LevelSet:
    """A level set ``x̂ = α·ℓ + m`` of docs/theory.md (FORMATS §1): which integer codes exist,
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
        """int8 when every code fits it (codes 0 … 255 at 8 bits do not), else int16."""
        lo, hi = self.code_range
        return np.dtype(np.int8) if -128 <= lo and hi <= 127 else np.dtype(np.int16)

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
