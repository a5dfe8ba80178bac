"""``compare()``: VecQ, the baselines of docs/theory.md §6 and the block formats' own rules
side by side, grouped like for like.

Each record is one (method, bits) pair on the same ``w``. Methods on the same levels form a
like-for-like group and are ranked within it by relative DQL (``rank`` 1 = lowest; losses
equal up to rounding, :data:`RANK_RTOL`, share a rank, as in competition ranking "1, 2, 2, 4").
VecQ's methods and the baselines of §6 are grouped by their number of levels (``group`` =
that number): comparing across groups mixes in the extra level, since a 2^k-level midrise
quantizer and a (2^k − 1)-level midtread one use the same k bits but are not the same code
budget in practice (the midtread one keeps an exact zero). A format's rule is grouped with the
exact optimum of the format's level set (``level_set`` names it, docs/theory.md §2.1), and every
member of a group with an exact optimum gets ``gap_pct = 100·(loss − exact)/exact``.

Method names (display names: :mod:`vecq_ref.names`)
---------------------------------------------------
``vecq_param``, ``vecq_paper``
    :func:`vecq_ref.quantize` with ``method="param"`` / ``"paper"`` (midrise, 2^k levels).
``vecq_exact``, ``vecq_grid``, ``vecq_alternating``
    The search methods of :func:`vecq_ref.quantize` (midrise, or the level set of
    ``lattice``/``signed_scale``/``zero_point``/``codebook``; weighted with ``weights``);
    present only when :mod:`vecq_ref.search` is importable.
``vecq_param_midtread``, ``vecq_exact_midtread``
    VecQ on the midtread lattice (2^k − 1 levels, k ≥ 2): the like-for-like reference for
    TWN and abs-max (``vecq_exact_midtread`` needs :mod:`vecq_ref.search`).
``bwn``, ``twn``, ``ul2q``, ``ul2q_code``, ``dorefa``, ``absmax``, ``aciq``, ``vecq_normalpha``,
``lloyd_max``
    :mod:`vecq_ref.baselines` (``ul2q`` with μL2Q's printed λ table, ``ul2q_code`` with its
    code table). A method is skipped at a bitwidth it does not define (BWN at k ≠ 1, TWN at
    k ≠ 2, DoReFa, abs-max and midtread at k = 1, ACIQ and μL2Q above 8 bits).
The format rules (:mod:`vecq_ref.format_rules`; ``methods="formats"`` names them all)
    ``q4_0``, ``q5_0`` (llama.cpp reference, ``d = max/−8``), ``q4_0_search``,
    ``q5_0_search`` (``make_qx_quants``, the 19-candidate search), ``q8_0``, ``q4_1``,
    ``q5_1`` (min–max), ``q4_1_search``, ``q5_1_search`` (``make_qkx2_quants``, the affine
    search), ``iq4_nl`` (IQ4_NL's search), ``gptq_sym``, ``gptq_asym``, ``awq`` (AutoAWQ,
    asymmetric), ``ct_sym`` (compressed-tensors symmetric): round to nearest, any k in 2…8;
    ``nf4``, ``fp4`` (bitsandbytes). Each needs its bits (4 for ``q4_*``, ``iq4_nl``,
    ``nf4``, ``fp4``; 5 for ``q5_*``; 8 for ``q8_0``).
The exact optima (added with the rules that need them, or named)
    ``exact_q4_0``, ``exact_q5_0`` (midtread-full, α of either sign), ``exact_q8_0``
    (midtread, 255 levels), ``exact_int_sym`` (midtread-full, α > 0: GPTQ and
    compressed-tensors symmetric), ``exact_int_zp`` (integer zero point: GPTQ/AWQ
    asymmetric), ``exact_iq4_nl`` (IQ4_NL codebook, α of either sign), ``exact_nf4``,
    ``exact_fp4`` (bitsandbytes' codebooks), ``exact_q4_1``, ``exact_q5_1`` (real offset):
    :func:`vecq_ref.quantize` ``method="exact"`` on that level set, weighted with
    ``weights``. Where the search does not certify its result (``certified`` False: the
    real offset beyond groups of 32 at 4 bits, where :func:`vecq_ref.quantize` returns the
    best it found) ``gap_pct`` is a lower bound of the true gap.

Groups and importance weights
-----------------------------
``group_size=g`` quantizes every contiguous group of ``g`` weights along the last axis on its
own, with every method: VecQ through :func:`vecq_ref.quantize` (``group_size=``), each
baseline of :mod:`vecq_ref.baselines` (whose functions work per tensor or per slice) by
applying its published rule to each group as to a slice of its own (the tensor viewed as
``(groups, g)``, ``axis=0``), so none is left out, and the format rules per block (without
``group_size``: the format's own block, 32, 64 or 128). ``alpha`` and ``step`` are then lists
shaped like the groups. ``weights=h`` (importance ``h ≥ 0`` per element or per input column)
changes what is measured, for every method alike: each record's losses are
``vector_loss(w, values, weights=h)`` of the method's dequantized values (docs/theory.md,
importance weights), and the ranks follow the weighted relative DQL ``‖w − w_q‖²_h/‖w‖²_h``.
The methods that can use ``h`` get it: VecQ's searches and the exact optima (they minimise
the weighted loss), and the format searches that take importance weights (``*_search``,
``iq4_nl``: llama.cpp's imatrix path; pass ``format_rules.imatrix_weights(w, imatrix, type)``
as ``weights`` for llama.cpp's own h); the other rules ignore it, as their reference code
does. Without weights the losses are ``vector_loss(w, values)``, the same function.
"""

from __future__ import annotations

import importlib
import math
from functools import partial

import numpy as np

from . import _validation as V
from . import baselines as B
from .lattice import level_set
from .loss import vector_loss
from .names import level_set_name, method_name
from .quantize import quantize

#: VecQ and the baselines of docs/theory.md §6, in display order (the paper's methods, which
#: the figures draw; :data:`ALL_METHODS` adds the format rules and their exact optima).
METHODS = ("vecq_param", "vecq_paper", "vecq_exact", "vecq_grid", "vecq_alternating",
           "vecq_param_midtread", "vecq_exact_midtread", "vecq_normalpha", "bwn", "twn",
           "ul2q", "ul2q_code", "dorefa", "absmax", "aciq", "lloyd_max")
#: The block formats' own rules (:mod:`vecq_ref.format_rules`), in display order.
FORMAT_RULES = ("q4_0", "q4_0_search", "q5_0", "q5_0_search", "q8_0", "q4_1", "q4_1_search",
                "q5_1", "q5_1_search", "iq4_nl", "gptq_sym", "ct_sym", "gptq_asym", "awq",
                "nf4", "fp4")
#: The exact optimum of each format's level set.
EXACT = ("exact_q4_0", "exact_q5_0", "exact_q8_0", "exact_q4_1", "exact_q5_1", "exact_iq4_nl",
         "exact_int_sym", "exact_int_zp", "exact_nf4", "exact_fp4")
#: Every method ``compare`` knows, in display order.
ALL_METHODS = METHODS + FORMAT_RULES + EXACT
#: Methods that need :mod:`vecq_ref.search`.
SEARCH_BASED = ("vecq_exact", "vecq_grid", "vecq_alternating", "vecq_exact_midtread") + EXACT
#: VecQ's methods that run on any level set (``lattice``, ``signed_scale``, ...).
LEVEL_SET_METHODS = ("vecq_exact", "vecq_grid", "vecq_alternating")
#: Record fields, in order.
FIELDS = ("method", "bits", "lattice", "level_set", "levels", "group", "rank", "relative_dql",
          "gap_pct", "J_o", "J_m", "excess", "alpha", "step", "group_size", "weighted",
          "certified")

#: Losses closer than this (relative) share a rank: they differ by rounding only.
RANK_RTOL = 1e-12
#: Marks, in :func:`format_records`, a method whose lattice carries an offset.
OFFSET_MARK = "*"
#: Said under a group that holds an offset lattice.
OFFSET_LEGEND = (f"{OFFSET_MARK} offset lattice: levels α·v + β, β = mean(w) (one parameter "
                 "more: not like for like)")
#: Methods that fit free levels to each slice (per tensor, per slice along ``axis`` or per
#: group): one parameter per level, marked like an offset lattice (:data:`FREE_LEVELS_LEGEND`).
FREE_LEVELS = ("lloyd_max",)
#: Said under a group that holds a method of :data:`FREE_LEVELS` (``{where}``: "each group of
#: 32", "each slice", "the tensor").
FREE_LEVELS_LEGEND = (f"{OFFSET_MARK} free levels: fitted to {{where}}, one parameter per level "
                      "(not like for like)")
#: How an uncertified exact row is named: the best found, as verify and audit word it.
BEST_FOUND = "best found, not certified"
#: Said under a group whose exact optimum is not certified.
UNCERTIFIED_LEGEND = ("exact not certified: the best found (gap_pct a lower bound of the "
                      "true gap)")
#: Longest line :func:`format_records` writes.
MAX_LINE = 100

_MIDTREAD = ("vecq_param_midtread", "vecq_exact_midtread", "twn", "absmax")
# The bitwidths each method defines, as (lo, hi).
_BITS = {"bwn": (1, 1), "twn": (2, 2), "ul2q": (1, 8), "ul2q_code": (1, 8),
         "dorefa": (2, V.MAX_BITS), "absmax": (2, V.MAX_BITS), "aciq": (2, 8),
         "vecq_param_midtread": (2, V.MAX_BITS), "vecq_exact_midtread": (2, V.MAX_BITS)}


def _format_rule(name, fn, exact, bits, block, weighted=False):
    return name, {"fn": fn, "exact": exact, "bits": bits, "block": block, "weighted": weighted}


def _rules():
    """The format rules: ``{name: {fn(w, bits, g, h), exact, bits, block, weighted}}``."""
    from . import format_rules as F

    llama, ints = (4, 4), (2, 8)
    return dict([
        _format_rule("q4_0", lambda w, k, g, h: F.q4_0(w, g), "exact_q4_0", llama, 32),
        _format_rule("q4_0_search", lambda w, k, g, h: F.make_qx_quants(w, 8, g, weights=h),
                     "exact_q4_0", llama, 32, True),
        _format_rule("q5_0", lambda w, k, g, h: F.q5_0(w, g), "exact_q5_0", (5, 5), 32),
        _format_rule("q5_0_search", lambda w, k, g, h: F.make_qx_quants(w, 16, g, weights=h),
                     "exact_q5_0", (5, 5), 32, True),
        _format_rule("q8_0", lambda w, k, g, h: F.q8_0(w, g), "exact_q8_0", (8, 8), 32),
        _format_rule("q4_1", lambda w, k, g, h: F.q4_1(w, g), "exact_q4_1", llama, 32),
        _format_rule("q4_1_search", lambda w, k, g, h: F.make_qkx2_quants(
            w, 15, g, weights=h), "exact_q4_1", llama, 32, True),
        _format_rule("q5_1", lambda w, k, g, h: F.q5_1(w, g), "exact_q5_1", (5, 5), 32),
        _format_rule("q5_1_search", lambda w, k, g, h: F.make_qkx2_quants(
            w, 31, g, weights=h), "exact_q5_1", (5, 5), 32, True),
        _format_rule("iq4_nl", lambda w, k, g, h: F.iq4_nl(w, g, weights=h), "exact_iq4_nl",
                     llama, 32, True),
        _format_rule("gptq_sym", lambda w, k, g, h: F.gptq_rtn(w, k, g, symmetric=True),
                     "exact_int_sym", ints, 128),
        _format_rule("ct_sym", lambda w, k, g, h: F.compressed_tensors_rtn(
            w, k, g, symmetric=True), "exact_int_sym", ints, 128),
        _format_rule("gptq_asym", lambda w, k, g, h: F.gptq_rtn(w, k, g, symmetric=False),
                     "exact_int_zp", ints, 128),
        _format_rule("awq", lambda w, k, g, h: F.awq_rtn(w, k, g, symmetric=False),
                     "exact_int_zp", ints, 128),
        _format_rule("nf4", lambda w, k, g, h: F.bnb_nf4(w, g), "exact_nf4", llama, 64),
        _format_rule("fp4", lambda w, k, g, h: F.bnb_fp4(w, g), "exact_fp4", llama, 64),
    ])


#: The level set of each exact optimum: ``(keywords of level_set at bits k, label or None)``.
_EXACT_SETS = {
    "exact_q4_0": (lambda k: {"lattice": "midtread-full", "signed_scale": True}, None),
    "exact_q5_0": (lambda k: {"lattice": "midtread-full", "signed_scale": True}, None),
    "exact_q8_0": (lambda k: {"lattice": "midtread"}, None),
    "exact_q4_1": (lambda k: {"zero_point": "float"}, None),
    "exact_q5_1": (lambda k: {"zero_point": "float"}, None),
    "exact_iq4_nl": (lambda k: {"codebook": "iq4_nl", "signed_scale": True}, None),
    "exact_int_sym": (lambda k: {"lattice": "midtread-full"}, None),
    "exact_int_zp": (lambda k: {"zero_point": "integer"}, None),
    "exact_nf4": (lambda k: {"codebook": "nf4"}, None),
    "exact_fp4": (lambda k: {"codebook": "fp4"}, None),
}
_EXACT_BITS = {"exact_q4_0": (4, 4), "exact_q5_0": (5, 5), "exact_q8_0": (8, 8),
               "exact_q4_1": (4, 4), "exact_q5_1": (5, 5), "exact_iq4_nl": (4, 4),
               "exact_int_sym": (2, 8), "exact_int_zp": (2, 8), "exact_nf4": (4, 4),
               "exact_fp4": (4, 4)}
_EXACT_BLOCK = {"exact_q4_0": 32, "exact_q5_0": 32, "exact_q8_0": 32, "exact_q4_1": 32,
                "exact_q5_1": 32, "exact_iq4_nl": 32, "exact_int_sym": 128, "exact_int_zp": 128,
                "exact_nf4": 64, "exact_fp4": 64}


def search_available():
    """True when :mod:`vecq_ref.search` (exact, grid and alternating VecQ) can be imported."""
    try:
        importlib.import_module("vecq_ref.search")
    except ImportError:
        return False
    return True


def _bits_range(method):
    if method in FORMAT_RULES:
        return _rules()[method]["bits"]
    if method in EXACT:
        return _EXACT_BITS[method]
    return _BITS.get(method, (1, V.MAX_BITS))


def applies(method, bits):
    """Whether ``method`` defines a quantizer at ``bits``."""
    lo, hi = _bits_range(method)
    return lo <= bits <= hi


def n_levels(method, bits):
    """Number of levels ``method`` uses at ``bits``: 2^k, or 2^k − 1 on the midtread lattice,
    or the size of a format's level set (255 for Q8_0, 15 for bitsandbytes FP4)."""
    if (method in FORMAT_RULES or method in EXACT) and applies(method, bits):
        return int(_exact_set(_exact_of(method), bits)[0].levels.size)
    return 2 ** bits - 1 if method in _MIDTREAD else 2 ** bits


def _exact_of(method):
    return _rules()[method]["exact"] if method in FORMAT_RULES else method


def _exact_set(exact, bits):
    """``(LevelSet, label)`` of an exact optimum at ``bits``."""
    kwargs, label = _EXACT_SETS[exact]
    kw = kwargs(bits)
    ls = level_set(bits=None if "codebook" in kw else bits, **kw)
    return ls, label or level_set_name(ls)


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


class _Result:
    """What :func:`compare` reads of a method's result (values in ``w``'s shape)."""

    def __init__(self, values, lattice, alpha, step, certified=None):
        self.values, self.lattice, self.alpha, self.step = values, lattice, alpha, step
        self.certified = certified


def _certified(q):
    search = q.info.get("search")
    return None if search is None else bool(np.all(search.certified))


def _run(method, w, bits, axis, group_size, h=None, ls=None):
    """``method`` on ``w`` (float64), per tensor, per slice along ``axis`` or per group;
    ``ls``: VecQ's level-set keywords (``lattice``, ``signed_scale``, ...) when given."""
    if ls is not None and method in LEVEL_SET_METHODS + ("vecq_param", "vecq_paper"):
        q = quantize(w, None if "codebook" in ls else bits, method=method[len("vecq_"):],
                     axis=axis, group_size=group_size,
                     **ls, **({} if h is None or method not in LEVEL_SET_METHODS
                             else {"weights": h}))
        return _Result(q.values, q.lattice, q.alpha, q.step, _certified(q))
    if method in LEVEL_SET_METHODS + ("vecq_exact_midtread",) and h is not None:
        # The searches minimise the weighted loss (VecQ's own lattices).
        name = method[len("vecq_"):].removesuffix("_midtread")
        q = quantize(w, bits, method=name, axis=axis, group_size=group_size, weights=h,
                     lattice="midtread" if method.endswith("_midtread") else "midrise")
        return _Result(q.values, q.lattice, q.alpha, q.step, _certified(q))
    fn = _quantizer(method)
    if group_size is None:
        return fn(w, bits, axis=axis)
    if method.startswith("vecq_") and method != "vecq_normalpha":
        return fn(w, bits, group_size=group_size)
    # A baseline's rule applied to each group as to a slice of its own: rows of (groups, g).
    q = fn(w.reshape(-1, group_size), bits, axis=0)
    slice_shape = w.shape[:-1] + (w.shape[-1] // group_size,)
    return _Result(values=q.values.reshape(w.shape), lattice=q.lattice,
                   alpha=np.reshape(q.alpha, slice_shape), step=np.reshape(q.step, slice_shape))


def _run_rule(method, w, bits, g, h):
    spec = _rules()[method]
    q = spec["fn"](w, bits, g, h if spec["weighted"] else None)
    return _Result(q.values, q.lattice, q.alpha, q.step)


def _run_exact(method, w, bits, g, h):
    """The exact optimum ``method`` at ``bits`` per group of ``g`` (weighted with ``h``)."""
    ls, _ = _exact_set(method, bits)
    q = quantize(w, None, method="exact", lattice=ls, group_size=g,
                 **({} if h is None else {"weights": h}))
    return _Result(q.values, q.lattice, q.alpha, q.step, _certified(q))


def _plain(x):
    """A float, None for NaN, or a list (per-slice values), for records and JSON."""
    if x is None:
        return None
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return None if math.isnan(float(arr)) else float(arr)
    return [_plain(v) for v in arr]


def _on_sets(method, sets):
    """Whether the format rule or exact optimum ``method`` quantizes to one of the requested
    level sets ``sets`` (``{bits: (LevelSet, label)}``) at its bits."""
    return any(applies(method, k) and _exact_set(_exact_of(method), k)[1] == label
               for k, (_, label) in sets.items())


def _methods(methods, bits, ls, sets=None, formats_by_default=False):
    """Validated list of methods to run; ``None`` means every available one (with the
    format rules too when ``formats_by_default``)."""
    available = search_available()
    if methods is None:
        if ls is not None:
            # What the level set allows: a real offset has the exact search only (grid and
            # alternating search a step alone); with group_size and weights, the format rules
            # of that level set and their exact optima too (as without a level set).
            allowed = ("vecq_exact",) if ls.get("zero_point") == "float" else LEVEL_SET_METHODS
            methods = [m for m in allowed if available]
            if formats_by_default and available:
                rules = [m for m in FORMAT_RULES if _on_sets(m, sets)]
                methods += rules + list(dict.fromkeys(_rules()[m]["exact"] for m in rules))
            return methods
        methods = [m for m in METHODS if available or m not in SEARCH_BASED]
        if formats_by_default and available:
            rules = [m for m in FORMAT_RULES if any(applies(m, k) for k in bits)]
            methods += rules + list(dict.fromkeys(_rules()[m]["exact"] for m in rules))
        return methods
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = list(methods)
    if not methods:
        V.fail("methods", f"a non-empty list of names from {ALL_METHODS}", "an empty list")
    if "formats" in methods:
        at = methods.index("formats")
        # With a level set, "formats" names the rules of that level set only.
        methods[at:at + 1] = [m for m in FORMAT_RULES if any(applies(m, k) for k in bits)
                              and (ls is None or _on_sets(m, sets))]
        if not methods:
            where = (f"the requested bits {bits} ('formats' names no rule there: the rules "
                     "need bits 2 … 8)") if ls is None else (
                f"the requested bits {bits} and level set ('formats' names no rule on "
                f"{', '.join(label for _, label in sets.values()) or 'it'})")
            V.fail("methods", f"methods defined at {where}", repr("formats"))
    if ls is not None and not any(m in LEVEL_SET_METHODS + ("vecq_param", "vecq_paper")
                                  or ((m in FORMAT_RULES or m in EXACT) and _on_sets(m, sets))
                                  for m in methods):
        name = next(iter(ls))
        V.fail(name, "left out, or given with a method that runs on its level set "
               f"({', '.join(LEVEL_SET_METHODS)}, or a format rule of that level set): none "
               f"of the methods {methods} does", repr(ls[name]))
    for m in methods:
        V.choice(m, "methods", ALL_METHODS)
        if m in SEARCH_BASED and not available:
            V.fail("methods", "methods whose modules are importable "
                   f"({m!r} needs vecq_ref.search, which is not available)", repr(m))
        if not any(applies(m, k) for k in bits):
            lo, hi = _bits_range(m)
            V.fail("methods", f"methods defined at the requested bits {bits} "
                   f"({m!r} needs bits in [{lo}, {hi}])", repr(m))
    methods = list(dict.fromkeys(methods))
    # Each rule's exact optimum, after the rules (named ones keep their place).
    extra = [_rules()[m]["exact"] for m in methods if m in FORMAT_RULES]
    if extra and not available:
        V.fail("methods", "methods whose modules are importable (the format rules are "
               "compared with exact optima, which need vecq_ref.search)", repr(methods[0]))
    return list(dict.fromkeys(methods + extra))


def _bits_list(bits):
    if isinstance(bits, (list, tuple, range, np.ndarray)):
        out = [V.integer(b, "bits", 1, V.MAX_BITS) for b in bits]
        if not out:
            V.fail("bits", "at least one bitwidth", "an empty sequence")
        return sorted(dict.fromkeys(out))
    return [V.integer(bits, "bits", 1, V.MAX_BITS)]


def _requested_set(lattice, signed_scale, zero_point, codebook, bits):
    """VecQ's level-set keywords when any is given (validated at every bitwidth it fits),
    and ``{bits: (LevelSet, label)}`` where it applies; ``(None, {})`` when none is."""
    if lattice is None and not signed_scale and zero_point is None and codebook is None:
        return None, {}
    kw = {"lattice": lattice, "signed_scale": signed_scale, "zero_point": zero_point,
          "codebook": codebook}
    kw = {k: v for k, v in kw.items() if v is not None and v is not False}
    if codebook is not None:
        ls = level_set(**kw)
        if ls.bits not in bits:
            V.fail("bits", f"{ls.bits}, the bits of the codebook, among the requested bits",
                   bits)
        return kw, {ls.bits: (ls, level_set_name(ls))}
    sets = {}
    for k in bits:
        try:
            ls = level_set(bits=k, **kw)
        except ValueError:
            if k == 1 and lattice == "midtread":
                continue
            raise
        sets[k] = (ls, level_set_name(ls))
    return kw, sets


def compare(w, bits=range(1, 9), methods=None, axis=None, group_size=None, weights=None, *,
            lattice=None, signed_scale=False, zero_point=None, codebook=None):
    """Quantize ``w`` with VecQ, the baselines and the format rules; one record per
    (method, bits).

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified. Validated as in :func:`vecq_ref.quantize`.
    bits : int or sequence of int, default 1 … 8
        Bitwidths; a method is skipped at a bitwidth it does not define.
    methods : sequence of str or comma-separated str, optional
        Names from :data:`ALL_METHODS` (module docstring), or ``"formats"`` for every format
        rule defined at ``bits`` (with a level set given: every rule of that level set);
        each rule brings its exact optimum. Default: VecQ and the baselines
        (:data:`METHODS`), without the search-based ones when :mod:`vecq_ref.search` is
        missing; with ``group_size`` and ``weights`` both given (and no level set), the
        format rules defined at ``bits`` and their exact optima too (issue 21:
        ``compare(w, 4, group_size=32, weights=h)`` ranks them); with a level set given,
        VecQ's searches that run on it (the exact search alone with ``zero_point="float"``:
        grid and alternating search a step only), and with ``group_size`` and ``weights``
        the format rules of that level set and their exact optima too. Naming a method that
        is unavailable or defined at none of ``bits`` is an error, and so is a level set
        that none of the methods runs on.
    axis : int, optional
        Per-channel quantization along this axis for VecQ and the baselines; ``alpha`` and
        ``step`` are then lists, the losses are over the whole tensor.
    group_size : int, optional
        Quantize every group of this many contiguous weights along the last axis on its own,
        with every method (module docstring); a divisor of the last axis; not with ``axis``.
    weights : array_like, optional
        Importance weights ``h ≥ 0`` broadcastable to ``w`` (one per element, or one per
        input column: the last axis). The losses become the h-weighted ones of
        :func:`vecq_ref.vector_loss`, the ranks follow the weighted relative DQL, and the
        searches that can (module docstring) minimise the weighted loss.
    lattice, signed_scale, zero_point, codebook
        A level set (:func:`vecq_ref.level_set`) for ``vecq_exact``, ``vecq_grid`` and
        ``vecq_alternating`` (and ``vecq_param``/``vecq_paper`` on midrise or midtread):
        their records carry ``level_set`` and form its group. With ``methods="formats"`` it
        selects the rules of that level set (``zero_point="float"``: ``q4_1``,
        ``q4_1_search`` at 4 bits); a ValueError when no method named runs on it.

    Returns
    -------
    list of dict
        Sorted by bits, then VecQ's and the baselines' groups (by levels, descending), then
        the level sets' groups, each by rank, with the keys :data:`FIELDS`: ``method``,
        ``bits``, ``lattice`` (``Quantized.lattice``), ``level_set`` (the group's level set
        by name, None for the groups by number of levels), ``levels`` (number of levels),
        ``group`` (the number of levels, the like-for-like key with ``level_set``),
        ``rank`` (1-based by relative DQL within the group; ties up to rounding share a
        rank), ``relative_dql`` (‖w − w_q‖²/‖w‖², h-weighted with ``weights``),
        ``gap_pct`` (100·(relative_dql − exact)/exact against the group's exact optimum,
        None in a group without one), ``J_o`` (orientation loss), ``J_m`` (modulus loss
        ‖w − w_q‖², the DQL), ``excess`` (what a least-squares α would remove), ``alpha``
        and ``step`` (None where a method has none, e.g. Lloyd–Max), ``group_size`` (the
        block, a format's own without ``group_size``), ``weighted`` and ``certified``
        (exact optima: whether the search proved it; None for the others). Every loss is
        ``vector_loss(w, values, weights=weights)`` of the method's dequantized values.

    Examples
    --------
    >>> rows = compare([0.1, -0.4, 0.25, 0.9, -0.7], bits=2, methods=["vecq_param", "twn"])
    >>> [(r["method"], r["levels"], r["rank"]) for r in rows]
    [('vecq_param', 4, 1), ('twn', 3, 1)]
    """
    bits = _bits_list(bits)
    ls_kw, sets = _requested_set(lattice, signed_scale, zero_point, codebook, bits)
    # Issue 21's call, compare(w, bits, group_size=32, weights=h), ranks the formats' rules
    # against their exact optima: per group and weighted, the default includes them.
    methods = _methods(methods, bits, ls_kw, sets, formats_by_default=(
        weights is not None and group_size is not None and axis is None))
    arr, _ = V.weights(w, "w")
    # Every method reads the weights as float64 (the kernels widen each one), so float64
    # weights give the same records bit for bit (a test checks), and compare compiles the
    # float64 kernels only.
    arr = arr.astype(np.float64, copy=False)
    if axis is not None and group_size is not None:
        V.fail("axis", "None when `group_size` is given (groups run along the last axis)", axis)
    if group_size is not None:
        group_size = V.group_size(group_size, arr.shape)
    formats = [m for m in methods if m in FORMAT_RULES or m in EXACT]
    if formats and axis is not None:
        V.fail("axis", f"None with the format rules (they quantize blocks: {formats[0]!r})",
               axis)
    if formats and group_size is None and arr.ndim == 0:
        V.fail("w", "an array with a last axis for the format rules", "a 0-d array")
    h = V.importance(weights, arr.shape)
    records = []
    for k in bits:
        group = []
        for m in methods:
            rec = _record(m, arr, k, axis, group_size, h, ls_kw, sets)
            if rec is not None:
                group.append(rec)
        _rank(group)
        records.extend(group)
    return records


def _record(m, arr, k, axis, group_size, h, ls_kw, sets):
    """One record of method ``m`` at ``k`` bits, or None where ``m`` does not apply."""
    label, certified = None, None
    g = group_size
    if ls_kw is not None and m in LEVEL_SET_METHODS + ("vecq_param", "vecq_paper"):
        if k not in sets:
            return None
        ls, label = sets[k]
        if m in ("vecq_param", "vecq_paper") and not ls.vecq:
            return None
        q = _run(m, arr, k, axis, g, h, ls_kw)
        levels = int(ls.levels.size)
    elif m in FORMAT_RULES or m in EXACT:
        if not applies(m, k):
            return None
        ls, label = _exact_set(_exact_of(m), k)
        g = group_size or (_rules()[m]["block"] if m in FORMAT_RULES else _EXACT_BLOCK[m])
        if arr.shape[-1] % g:
            V.fail("group_size", f"a divisor of the last axis length {arr.shape[-1]} (the "
                   f"block of {m!r} without `group_size`)", g)
        if m in FORMAT_RULES:
            q = _run_rule(m, arr, k, g, h)
        else:
            q = _run_exact(m, arr, k, g, h)
        levels = int(ls.levels.size)
    else:
        if not applies(m, k):
            return None
        q = _run(m, arr, k, axis, g, h)
        levels = n_levels(m, k)
    if _is_exact(m):
        certified = q.certified if isinstance(q, _Result) else _certified(q)
    loss = vector_loss(arr, q.values, weights=h)
    return {"method": m, "bits": k, "lattice": q.lattice, "level_set": label,
            "levels": levels, "group": levels, "rank": 0,
            "relative_dql": float(loss.relative_dql), "gap_pct": None,
            "J_o": float(loss.orientation), "J_m": float(loss.modulus),
            "excess": float(loss.excess), "alpha": _plain(q.alpha), "step": _plain(q.step),
            "group_size": g, "weighted": h is not None, "certified": certified}


def _is_exact(method):
    return method in EXACT or method in ("vecq_exact", "vecq_exact_midtread")


def _group_key(r):
    return (r["level_set"] is not None, r["level_set"] or "", -r["group"], r["group_size"] or 0)


def _rank(group):
    """Rank each like-for-like group in place (and order ``group`` by group and rank);
    ``gap_pct`` against the group's exact optimum where it has one."""
    keys = list(dict.fromkeys(_group_key(r) for r in group))
    # VecQ's and the baselines' groups by levels (descending), then the level sets in order.
    keys.sort(key=lambda key: (key[0], key[2]) if not key[0] else (1, 0))
    ordered = []
    for key in keys:
        members = sorted((r for r in group if _group_key(r) == key),
                         key=lambda r: r["relative_dql"])
        # The relative DQL (J_m/‖w‖², the same ‖w‖² for all) ranks like J_m but is
        # finite, while J_m of weights near 1e200 exceeds the float64 range (inf); it is
        # inf only for values far from w's scale (DoReFa's ±1 for w near 1e-300), last.
        dql = np.array([r["relative_dql"] for r in members])
        for r, d in zip(members, dql, strict=True):
            # Competition ranking; losses equal to rounding (1e-12 relative) share a rank.
            below = d - RANK_RTOL * d if np.isfinite(d) else d
            r["rank"] = 1 + int(np.count_nonzero(dql < below))
        exact = [r["relative_dql"] for r in members if _is_exact(r["method"])]
        if exact and min(exact) > 0:
            ref = min(exact)
            for r in members:
                r["gap_pct"] = 100.0 * (r["relative_dql"] - ref) / ref
        ordered.extend(members)
    group[:] = ordered


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
        return f"<{np.size(value)}>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _method_cell(method, short=False, certified=None):
    """The display name (:mod:`vecq_ref.names`, as the figures show it) and the identifier;
    the identifier alone when ``short``. An exact row the search did not certify
    (``certified`` False) is named the best found (:data:`BEST_FOUND`), never "exact optimum"."""
    name = method_name(method)
    if certified is False:
        name = BEST_FOUND if method in EXACT else f"{name}, {BEST_FOUND}"
        return f"{method}, best found" if short else f"{name} ({method})"
    return method if name == method or short else f"{name} ({method})"


def free_levels(record):
    """Whether a :func:`compare` record's method fits free levels to each slice
    (:data:`FREE_LEVELS`, or a non-uniform lattice): not like for like, as an offset is not.

    Examples
    --------
    >>> free_levels({"method": "lloyd_max", "lattice": "nonuniform"})
    True
    """
    return record["method"] in FREE_LEVELS or record.get("lattice") == "nonuniform"


def _marked(record):
    return has_offset(record.get("lattice")) or free_levels(record)


def _free_where(rows):
    r = next(r for r in rows if free_levels(r))
    if r["group_size"]:
        return f"each group of {r['group_size']}"
    return "each slice" if isinstance(r.get("alpha"), list) else "the tensor"


#: Columns :func:`format_records` leaves out first when a line would exceed
#: :data:`MAX_LINE` characters.
_DROP_ORDER = ("excess", "J_m", "step", "lattice", "alpha", "J_o", "certified")


def _header(k, size, rows):
    r = rows[0]
    where = f", {r['level_set']}" if r["level_set"] else ""
    per = f", groups of {r['group_size']}" if r["group_size"] else ""
    weighted = ", weighted" if r["weighted"] else ""
    return f"{k} bits, {size} levels{where}{per}{weighted}:"


def _table(rows, shown, short):
    body = [[_method_cell(r[c], short, r.get("certified")) + (OFFSET_MARK if _marked(r) else "")
             if c == "method" else _cell(r.get(c)) for c in shown] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(shown)]
    lines = ["  " + "  ".join(c.rjust(w) for c, w in zip(shown, widths, strict=True))]
    return lines + ["  " + "  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True))
                    for b in body]


def format_records(records, columns=("method", "lattice", "rank", "relative_dql", "gap_pct",
                                     "J_o", "J_m", "alpha", "step")):
    """Readable text of :func:`compare` records: one block per like-for-like group.

    Methods show as their display name and identifier, e.g. ``VecQ-exact (vecq_exact)``.
    A method whose lattice carries an offset (:func:`has_offset`), or that fits free levels
    to each slice (:func:`free_levels`: Lloyd–Max), is marked with :data:`OFFSET_MARK` and a
    legend line under its group says what the mark means (neither is like for like); an
    exact row the search did not certify is named the best found (:data:`BEST_FOUND`); the
    ``step`` column is left out at 1 bit, where it means nothing (one threshold, at 0), and
    ``gap_pct`` where no group has an exact optimum. Per-slice ``alpha`` and ``step`` show as
    their count (``<4608>``). No line is longer than :data:`MAX_LINE` characters: columns
    are left out in the order of :data:`_DROP_ORDER`, then methods show by identifier only.
    """
    blocks = []
    keys = list(dict.fromkeys((r["bits"], _group_key(r)) for r in records))
    any_gap = any(r.get("gap_pct") is not None for r in records)
    for k, key in keys:
        rows = [r for r in records if r["bits"] == k and _group_key(r) == key]
        shown = [c for c in _columns(columns, k) if c != "gap_pct" or any_gap]
        short = False
        lines = _table(rows, shown, short)
        for c in _DROP_ORDER + ("method names",):
            if max(map(len, lines)) <= MAX_LINE:
                break
            if c == "method names":
                short = True
            elif c in shown:
                shown.remove(c)
            lines = _table(rows, shown, short)
        lines.insert(0, _header(k, rows[0]["group"], rows))
        if any(has_offset(r.get("lattice")) for r in rows):
            lines.append(f"  {OFFSET_LEGEND}")
        if any(free_levels(r) for r in rows):
            lines.append(f"  {FREE_LEVELS_LEGEND.format(where=_free_where(rows))}")
        if any(r.get("certified") is False for r in rows):
            lines.append(f"  {UNCERTIFIED_LEGEND}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


__all__ = ["compare", "format_records", "METHODS", "ALL_METHODS", "FORMAT_RULES", "EXACT",
           "FIELDS", "search_available", "applies", "n_levels", "has_offset", "free_levels"]
