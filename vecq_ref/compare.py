"""``compare()``: VecQ and the baselines of docs/theory.md §6 side by side, grouped like for like.

Each record is one (method, bits) pair on the same ``w``. Methods with the same number of
levels form a like-for-like group (``group`` = that number) and are ranked within it by
relative DQL (``rank`` 1 = lowest; losses equal up to rounding, :data:`RANK_RTOL`, share a
rank, as in competition ranking "1, 2, 2, 4"). Comparing across groups mixes in the extra level: a
2^k-level midrise quantizer and a (2^k − 1)-level midtread one use the same k bits but are
not the same code budget in practice (the midtread one keeps an exact zero).

Method names
------------
``vecq_param``, ``vecq_paper``
    :func:`vecq_ref.quantize` with ``method="param"`` / ``"paper"`` (midrise, 2^k levels).
``vecq_exact``, ``vecq_grid``, ``vecq_alternating``
    The search methods of :func:`vecq_ref.quantize` (midrise); present only when
    :mod:`vecq_ref.search` is importable.
``vecq_param_midtread``, ``vecq_exact_midtread``
    VecQ on the midtread lattice (2^k − 1 levels, k ≥ 2): the like-for-like reference for
    TWN and abs-max (``vecq_exact_midtread`` needs :mod:`vecq_ref.search`).
``bwn``, ``twn``, ``ul2q``, ``ul2q_code``, ``dorefa``, ``absmax``, ``aciq``, ``vecq_normalpha``,
``lloyd_max``
    :mod:`vecq_ref.baselines` (``ul2q`` with μL2Q's printed λ table, ``ul2q_code`` with its
    code table). A method is skipped at a bitwidth it does not define (BWN at k ≠ 1, TWN at
    k ≠ 2, DoReFa, abs-max and midtread at k = 1, ACIQ and μL2Q above 8 bits).

Groups and importance weights
-----------------------------
``group_size=g`` quantizes every contiguous group of ``g`` weights along the last axis on its
own, with every method: VecQ through :func:`vecq_ref.quantize` (``group_size=``), each
baseline of :mod:`vecq_ref.baselines` (whose functions work per tensor or per slice) by
applying its published rule to each group as to a slice of its own (the tensor viewed as
``(groups, g)``, ``axis=0``), so none is left out; ``alpha`` and ``step`` are then lists
shaped like the groups. ``weights=h`` (importance ``h ≥ 0`` per element or per input column)
changes what is measured, for every method alike: each record's losses are
``vector_loss(w, values, weights=h)`` of the method's dequantized values (docs/theory.md,
importance weights), and the ranks follow the weighted relative DQL ``‖w − w_q‖²_h/‖w‖²_h``.
Without weights the losses are ``vector_loss(w, values)``, the same function.
"""

from __future__ import annotations

import importlib
import math
from functools import partial

import numpy as np

from . import _validation as V
from . import baselines as B
from .loss import vector_loss
from .names import method_name
from .quantize import quantize

#: Every method ``compare`` knows, in display order.
METHODS = ("vecq_param", "vecq_paper", "vecq_exact", "vecq_grid", "vecq_alternating",
           "vecq_param_midtread", "vecq_exact_midtread", "vecq_normalpha", "bwn", "twn",
           "ul2q", "ul2q_code", "dorefa", "absmax", "aciq", "lloyd_max")
#: Methods that need :mod:`vecq_ref.search`.
SEARCH_BASED = ("vecq_exact", "vecq_grid", "vecq_alternating", "vecq_exact_midtread")
#: Record fields, in order.
FIELDS = ("method", "bits", "lattice", "levels", "group", "rank", "relative_dql", "J_o",
          "J_m", "excess", "alpha", "step", "group_size", "weighted")

#: Losses closer than this (relative) share a rank: they differ by rounding only.
RANK_RTOL = 1e-12
#: Marks, in :func:`format_records`, a method whose lattice carries an offset.
OFFSET_MARK = "*"
#: Said under a group that holds an offset lattice.
OFFSET_LEGEND = (f"{OFFSET_MARK} offset lattice: levels α·v + β, β = mean(w) (one parameter "
                 "more: not like for like)")

_MIDTREAD = ("vecq_param_midtread", "vecq_exact_midtread", "twn", "absmax")
# The bitwidths each method defines, as (lo, hi).
_BITS = {"bwn": (1, 1), "twn": (2, 2), "ul2q": (1, 8), "ul2q_code": (1, 8),
         "dorefa": (2, V.MAX_BITS), "absmax": (2, V.MAX_BITS), "aciq": (2, 8),
         "vecq_param_midtread": (2, V.MAX_BITS), "vecq_exact_midtread": (2, V.MAX_BITS)}


def search_available():
    """True when :mod:`vecq_ref.search` (exact, grid and alternating VecQ) can be imported."""
    try:
        importlib.import_module("vecq_ref.search")
    except ImportError:
        return False
    return True


def applies(method, bits):
    """Whether ``method`` defines a quantizer at ``bits``."""
    lo, hi = _BITS.get(method, (1, V.MAX_BITS))
    return lo <= bits <= hi


def n_levels(method, bits):
    """Number of levels ``method`` uses at ``bits``: 2^k, or 2^k − 1 on the midtread lattice."""
    return 2 ** bits - 1 if method in _MIDTREAD else 2 ** bits


def _quantizer(method):
    if method.startswith("vecq_") and method != "vecq_normalpha":
        name = method[len("vecq_"):]
        lattice = "midrise"
        if name.endswith("_midtread"):
            name, lattice = name[: -len("_midtread")], "midtread"
        return partial(_vecq, method=name, lattice=lattice)
    if method == "ul2q":  # the printed formula (baselines.ul2q defaults to the released code)
        return partial(B.ul2q, table="printed", eps=0.0)
    if method == "ul2q_code":
        return partial(B.ul2q, table="code")
    return B.BASELINES[method]


def _vecq(w, bits, axis=None, *, method, lattice, group_size=None):
    return quantize(w, bits, method=method, lattice=lattice, axis=axis, group_size=group_size)


def _run(method, w, bits, axis, group_size):
    """``method`` on ``w`` (float64), per tensor, per slice along ``axis`` or per group."""
    fn = _quantizer(method)
    if group_size is None:
        return fn(w, bits, axis=axis)
    if method.startswith("vecq_") and method != "vecq_normalpha":
        return fn(w, bits, group_size=group_size)
    # A baseline's rule applied to each group as to a slice of its own: rows of (groups, g).
    q = fn(w.reshape(-1, group_size), bits, axis=0)
    slice_shape = w.shape[:-1] + (w.shape[-1] // group_size,)
    return _Grouped(values=q.values.reshape(w.shape), lattice=q.lattice,
                    alpha=np.reshape(q.alpha, slice_shape), step=np.reshape(q.step, slice_shape))


class _Grouped:
    """What :func:`compare` reads of a baseline run per group (values in ``w``'s shape)."""

    def __init__(self, values, lattice, alpha, step):
        self.values, self.lattice, self.alpha, self.step = values, lattice, alpha, step


def _plain(x):
    """A float, None for NaN, or a list (per-slice values), for records and JSON."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return None if math.isnan(float(arr)) else float(arr)
    return [_plain(v) for v in arr]


def _methods(methods, bits):
    """Validated list of methods to run; ``None`` means every available one."""
    available = search_available()
    if methods is None:
        return [m for m in METHODS if available or m not in SEARCH_BASED]
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = list(methods)
    if not methods:
        V.fail("methods", f"a non-empty list of names from {METHODS}", "an empty list")
    for m in methods:
        V.choice(m, "methods", METHODS)
        if m in SEARCH_BASED and not available:
            V.fail("methods", "methods whose modules are importable "
                   f"({m!r} needs vecq_ref.search, which is not available)", repr(m))
        if not any(applies(m, k) for k in bits):
            lo, hi = _BITS[m]
            V.fail("methods", f"methods defined at the requested bits {bits} "
                   f"({m!r} needs bits in [{lo}, {hi}])", repr(m))
    return list(dict.fromkeys(methods))


def _bits_list(bits):
    if isinstance(bits, (list, tuple, range, np.ndarray)):
        out = [V.integer(b, "bits", 1, V.MAX_BITS) for b in bits]
        if not out:
            V.fail("bits", "at least one bitwidth", "an empty sequence")
        return sorted(dict.fromkeys(out))
    return [V.integer(bits, "bits", 1, V.MAX_BITS)]


def compare(w, bits=range(1, 9), methods=None, axis=None, group_size=None, weights=None):
    """Quantize ``w`` with VecQ and every baseline; one record per (method, bits).

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified. Validated as in :func:`vecq_ref.quantize`.
    bits : int or sequence of int, default 1 … 8
        Bitwidths; a method is skipped at a bitwidth it does not define.
    methods : sequence of str or comma-separated str, optional
        Names from :data:`METHODS` (module docstring). Default: all, without the search-based
        ones when :mod:`vecq_ref.search` is missing. Naming a method that is unavailable or
        defined at none of ``bits`` is an error.
    axis : int, optional
        Per-channel quantization along this axis for every method; ``alpha`` and ``step``
        are then lists, the losses are over the whole tensor.
    group_size : int, optional
        Quantize every group of this many contiguous weights along the last axis on its own,
        with every method (module docstring); a divisor of the last axis; not with ``axis``.
    weights : array_like, optional
        Importance weights ``h ≥ 0`` broadcastable to ``w`` (one per element, or one per
        input column: the last axis). The losses become the h-weighted ones of
        :func:`vecq_ref.vector_loss` and the ranks follow the weighted relative DQL.

    Returns
    -------
    list of dict
        Sorted by bits, group (descending) and rank, with the keys :data:`FIELDS`:
        ``method``, ``bits``, ``lattice`` (``Quantized.lattice``), ``levels`` (number of
        levels), ``group`` (the like-for-like key: equal to ``levels``), ``rank`` (1-based by
        relative DQL within the group at these bits; ties up to rounding share a rank),
        ``relative_dql`` (‖w − w_q‖²/‖w‖²),
        ``J_o`` (orientation loss), ``J_m`` (modulus loss ‖w − w_q‖², i.e. the DQL),
        ``excess`` (what a least-squares α would remove), ``alpha`` and ``step`` (None where
        a method has none, e.g. Lloyd–Max), ``group_size`` (as given) and ``weighted``
        (whether the losses are h-weighted). Every loss is
        ``vector_loss(w, values, weights=weights)`` of the method's dequantized values.

    Examples
    --------
    >>> rows = compare([0.1, -0.4, 0.25, 0.9, -0.7], bits=2, methods=["vecq_param", "twn"])
    >>> [(r["method"], r["levels"], r["rank"]) for r in rows]
    [('vecq_param', 4, 1), ('twn', 3, 1)]
    """
    bits = _bits_list(bits)
    methods = _methods(methods, bits)
    arr, _ = V.weights(w, "w")
    # Every method reads the weights as float64 (the kernels widen each one), so float64
    # weights give the same records bit for bit (a test checks), and compare compiles the
    # float64 kernels only.
    arr = arr.astype(np.float64, copy=False)
    if axis is not None and group_size is not None:
        V.fail("axis", "None when `group_size` is given (groups run along the last axis)", axis)
    if group_size is not None:
        group_size = V.group_size(group_size, arr.shape)
    h = V.importance(weights, arr.shape)
    records = []
    for k in bits:
        group = []
        for m in methods:
            if not applies(m, k):
                continue
            q = _run(m, arr, k, axis, group_size)
            loss = vector_loss(arr, q.values, weights=h)
            group.append({"method": m, "bits": k, "lattice": q.lattice,
                          "levels": n_levels(m, k), "group": n_levels(m, k), "rank": 0,
                          "relative_dql": float(loss.relative_dql),
                          "J_o": float(loss.orientation), "J_m": float(loss.modulus),
                          "excess": float(loss.excess), "alpha": _plain(q.alpha),
                          "step": _plain(q.step), "group_size": group_size,
                          "weighted": h is not None})
        for size in sorted({r["group"] for r in group}, reverse=True):
            members = sorted((r for r in group if r["group"] == size),
                             key=lambda r: r["relative_dql"])
            # The relative DQL (J_m/‖w‖², the same ‖w‖² for all) ranks like J_m but is
            # finite, while J_m of weights near 1e200 exceeds the float64 range (inf); it is
            # inf only for values far from w's scale (DoReFa's ±1 for w near 1e-300), last.
            dql = np.array([r["relative_dql"] for r in members])
            for r, d in zip(members, dql, strict=True):
                # Competition ranking; losses equal to rounding (1e-12 relative) share a rank.
                below = d - RANK_RTOL * d if np.isfinite(d) else d
                r["rank"] = 1 + int(np.count_nonzero(dql < below))
            records.extend(members)
    return records


def has_offset(lattice):
    """Whether values on ``lattice`` carry an offset β besides the scale (``offset-…``).

    Examples
    --------
    >>> has_offset("offset-midrise"), has_offset("midrise")
    (True, False)
    """
    return str(lattice).startswith("offset")


def _columns(columns, bits):
    """``columns`` without those meaningless at ``bits``: at 1 bit the step (the spacing of
    thresholds of which there is a single one, at 0) sets nothing, only α does."""
    return [c for c in columns if not (bits == 1 and c == "step")]


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, list):
        return f"<{np.size(value)} per slice>"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _method_cell(method):
    """The display name (:mod:`vecq_ref.names`, as the figures show it) and the identifier."""
    name = method_name(method)
    return method if name == method else f"{name} ({method})"


def format_records(records, columns=("method", "lattice", "rank", "relative_dql", "J_o",
                                     "J_m", "alpha", "step")):
    """Readable text of :func:`compare` records: one block per like-for-like group.

    Methods show as their display name and identifier, e.g. ``VecQ-exact (vecq_exact)``.
    A method whose lattice carries an offset (:func:`has_offset`) is marked with
    :data:`OFFSET_MARK` and a legend line under its group says what the mark means; the
    ``step`` column is left out at 1 bit, where it means nothing (one threshold, at 0).
    """
    blocks = []
    keys = list(dict.fromkeys((r["bits"], r["group"]) for r in records))
    for k, size in keys:
        rows = [r for r in records if r["bits"] == k and r["group"] == size]
        shown = _columns(columns, k)
        body = [[_method_cell(r[c]) + (OFFSET_MARK if has_offset(r.get("lattice")) else "")
                 if c == "method" else _cell(r.get(c)) for c in shown] for r in rows]
        widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(shown)]
        lines = [f"{k} bits, {size} levels:",
                 "  " + "  ".join(c.rjust(w) for c, w in zip(shown, widths, strict=True))]
        lines += ["  " + "  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True))
                  for b in body]
        if any(has_offset(r.get("lattice")) for r in rows):
            lines.append(f"  {OFFSET_LEGEND}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


__all__ = ["compare", "format_records", "METHODS", "FIELDS", "search_available", "applies",
           "n_levels", "has_offset"]
