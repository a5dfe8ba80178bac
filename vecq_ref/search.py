"""``search_step()``: the step (docs/theory.md §4) by the paper's grid, exactly, or by
alternating L2, for VecQ's lattices and every level set of docs/theory.md §2.1 (weighted or not).

Methods
-------
``"param"`` (§4.1)
    ``s = λ_k·σ``; no search (for comparisons).
``"grid"`` (§4.2)
    The paper's search: ``λ ∈ linspace(lo, hi, num)`` in σ units (default ``0.001 … 3.000``,
    3000 points, σ the population std), keep the first step of smallest ``J_o``.
``"exact"`` (§4.3)
    The global minimum of ``J_o`` over *all* steps ``s > 0``.
``"alternating"`` (§4.4)
    From ``α₀`` (``init="max"``: ``max|w|/(M − ½)`` midrise, ``max|w|/(M − 1)`` midtread;
    ``"sigma"``: the parametric step ``λ_k·σ``; or a positive float in weight units) repeat
    ``v = codes(w, α)`` (the nearest levels of ``w/α``), ``α = ⟨w,v⟩/⟨v,v⟩`` until ``v`` stops
    changing or ``max_iter`` code evaluations (default 100).

Level sets and weights (the general path)
-----------------------------------------
VecQ's own level sets (midrise, midtread, positive scale) without ``weights`` run the
kernels below and keep their results bit for bit. Every other combination of
:func:`vecq_ref.lattice.level_set` (midtread-full, signed scale, integer zero point, codebooks)
and every weighted search (importance ``h ≥ 0``, loss ``‖w − x̂‖²_h``) runs the general path
(theory §2.1, §4.5), where a signed step ``s`` gives the codes ``nearest_index(w/s, ℓ − z)`` (the
nearest level, ties farther from zero; :mod:`vecq_ref._kernels.levelset`), ``S1 = Σh·w·ℓ``,
``S2 = Σh·ℓ²`` and α = S1/S2 (0 when no α of the step's sign reduces the loss):

``"exact"``
    The breakpoint sweep of theory §4.5 (``_kernels.exact_levels.exact_levelset``): the best
    ``S1²/S2`` over every step of either allowed sign and every ``z``; ties (within
    ``TIE_RTOL``) to a self-consistent state, then the larger ``|s|``, then +α, then the
    smallest ``z``. ``interval`` bounds ``|s|``.
``"grid"``
    Steps ``±λ·σ_h`` for the same ``λ`` as above, where ``σ_h = sqrt(Σh·w²/Σh)`` is the
    weighted root mean square (not the std: it is the scale of ``‖w‖_h``, and a constant
    vector keeps a nonzero σ), every ``z`` with a zero point; candidates in the order sign
    (+ first), ``z`` ascending, ``λ`` ascending, the first of largest
    ``max(0, sign·S1)²/S2`` wins. Cost: signs × zero points × ``num`` passes over the row
    (a 4-bit zero point: 16 × 3000 passes). The range is in σ_h units for every set: a
    codebook normalised to [−1, 1] wants α near max|w|, which for long heavy-tailed rows can
    exceed the default ``hi = 3``: widen it.
``"alternating"``
    Lloyd in the h-metric, one run per sign and per ``z`` (every ``z``, each from its own
    α₀), the first of largest final score wins. ``init="max"``: the smallest ``|α₀|`` whose
    extreme levels of ``sign·(ℓ − z)`` reach both ``max(w)`` and ``min(w)`` (VecQ's
    ``max|w|/(M − ½)`` on midrise); ``"sigma"``: ``λ_k·σ_h`` with VecQ's λ_k of the midrise
    lattice (midtread's for the other uniform sets; refused for codebooks); a float: α₀ in
    weight units. Stops when the codes repeat, ``S2 = 0``, α would change sign, or after
    ``max_iter`` code evaluations per run.

Losses are weighted when ``weights`` are given: ``relative_dql = ‖w − α·ℓ‖²_h/‖w‖²_h``, from
the sums ``Σh·w²``, ``S1``, ``S2`` of the final codes.

A real offset (``zero_point="float"``: ``x̂ = α·u + m``, codes ``u ∈ [0, 2^k − 1]``, ``α > 0``,
a real ``m`` per slice; ``method="exact"`` only) is a two-dimensional search
(:mod:`vecq_ref._kernels.affine`, docs/theory.md §4.6): slices of at most
:data:`AFFINE_EXACT_MAX` weights at up to 4 bits are solved exactly over the cells of the
arrangement (``certified``); longer slices or more bits get the best of that kernel's
heuristic, the exact integer-zero-point optimum (``m = −z·α``) and llama.cpp's affine search
(``make_qkx2_quants``, :mod:`vecq_ref.format_rules`), each refitted by weighted least
squares, with ``certified`` False. ``step`` is then α, ``offset`` the ``m`` of each slice,
``orientation`` the ``J_o`` with ``J_o(2 − J_o)`` = the relative DQL, and ``excess`` 0 (α and
``m`` are the least-squares fit of the codes).

The exact algorithm
-------------------
Sort ``w`` once (signed, NumPy) and read it as two magnitude lists, positives and negatives,
each ascending, with compensated suffix sums. A step ``s`` is summarised by its *state*: for
each level ``j < M = 2^(k−1)`` and sign, the first index whose code reaches level ``j``. The
activity test is the lattice kernel's own float expression, so states reproduce ``codes`` bit
for bit, ties included (``w = ±j·s`` exactly: a positive weight gets code ``j``, level
``j + ½``, a negative one code ``−j``, level ``−j + ½``, one level lower in magnitude). Each
level's list is already sorted, so a state costs ``2(M − 1)`` binary searches (by comparison
with ``j·s``; only magnitudes within 16ε of it are divided), bounded by the states of the
range being refined, and ``S1 = Σ|w||v|``, ``S2 = Σv²`` (an integer) follow from the suffix
sums by a fixed pairwise sum over the levels.
The codes are constant on half-open float intervals ``(lo, hi]`` between breakpoints (``|w|/j``
midrise, ``|w|/(j − ½)`` midtread, each nudged to the exact float threshold).

Branch and bound over ranges ``(sL, sH]`` of steps, from the whole breakpoint range, with an
incumbent from a few Lloyd iterations at ``λ_k·σ``. ``S1`` and ``S2`` are monotone in ``s``, so
the states at a range's ends bound every state inside, and ``f_v(α) = 2αS1 − α²S2`` (whose
maximum over α is ``S1²/S2``) gives four tests; a range is dropped when

(i) ``S1(sL⁺)²/S2(sH)`` is below the incumbent;
(ii) the bracket ``[S1(sH)/S2(sL⁺), S1(sL⁺)/S2(sH)]`` of α* misses ``(sL, sH]``. Some optimal
     state ``v`` is *self-consistent*: ``codes(w, α*(v*))`` are the nearest levels of
     ``w/α*``, hence at least as good as ``v*`` with the same α* (docs/theory.md §3), so
     ``α*(v)`` lies in ``v``'s own interval, and only the range containing that point needs
     to see ``v``;
(iii) with α* confined to ``[aa, ab] ⊂ (sL, sH]``, ``max f_H + aa·(sH − aa)·(S2(sL⁺) − S2(sH))``
     is below the incumbent (``H`` the state at ``sH``; each level crossing of the range gains
     at most ``aa·(sH − aa)`` per unit of ``S2`` at ``α = aa``);
(iv) the same with the crossings' gains taken exactly from the state ``G`` at ``aa``:
     ``max_[aa,ab] f_H − f_H(aa) + f_G(aa)`` (each crossing's gain is largest at ``aa`` because
     it peaks below ``sH/2``).

When (iv) fails, the range is first contracted to ``(aa⁻, sH]`` (steps below ``aa`` are the α*
of none of its states; the state at ``aa`` is already known). Tests (ii)–(iv) carry a relative
slack ``8(log₂M + 16)ε`` that bounds the rounding of the
sums (compensated suffix sums, a pairwise tree, exact ``S2``), so they only ever keep more;
there is no tolerance on the objective and no early stop. Otherwise the range is split at
the median breakpoint of its busiest (sign, level) list. Every state computed is a candidate;
the best computed ``r = S1²/S2`` wins, ties going to the larger steps. Rows with at most
``min(2²¹, 64·M)`` breakpoints (small vectors, or k ≥ 12 with few weights, where the landscape
is too rough to prune), and from k = 14 on rows with up to ``max(64·M, 2²⁵)``, are instead
swept exactly as §4.3 describes: all ``N(M − 1)`` float thresholds in decreasing order, with
incremental (compensated) ``S1`` and exact ``S2``; sorted up to 2²¹ breakpoints, beyond that
merged from each weight's decreasing thresholds ``|w|/j`` by a heap of one entry per weight.

Complexity: ``O(N log N)`` for the sort (NumPy), ``O(N)`` to split, sum and compute the final
loss, then ``O(E·M·log N)`` for ``E`` evaluated states (``O(B log B)`` for a swept row of ``B``
breakpoints). Tests (ii)–(iv) drop ranges at relative distance ``d`` from the optimum once
their relative width is ``O(d)``, so ``E`` grows with ``M`` and ``log N``, not with the
``N(M − 1)`` breakpoints: measured on Gaussian data, 2²⁰ weights: ``E ≈ 360`` (4-bit),
``≈ 2000`` (8-bit); 4096 weights: ``≈ 190`` (4-bit), against 7·2²⁰ and 127·2²⁰ breakpoints.
(Test (iv) costs a state, so it is skipped when (iii) fails even with half its crossing term:
a pure speed heuristic.) A swept row: ``O(B log N)`` for ``B`` breakpoints (merged).

Memory: ``O(N)``, plus per row being searched at most ``_STATE_BYTES`` (64 MiB) of states
(``2M`` indices each; the depth-first stack holds two per range, and beyond that budget the
oldest ranges keep only their sums and get their states recomputed when popped: same results,
same evaluations), or ``O(min(B, 2²¹))`` for a sorted sweep. A search whose buffers cannot fit
in what the process may still allocate raises ``ValueError`` before allocating them.

Certificate (``certified``): the search finished, ``α*`` lies in ``interval`` (up to the slack
above), and the codes of the returned step have exactly the predicted ``Σv²`` and ``Σ|w||v|``
to 1e-12. The step returned is ``α*`` when it lies in ``(lo, hi]`` (then
``codes(w, α*)`` are the optimal codes), else the interval midpoint (``2·lo`` when
``hi = ∞``), else ``hi``. Degenerate rows: an all-zero vector has step 0, α 0, ``J_o = 0`` and
interval ``(0, ∞)``; ``k = 1`` midrise has one state, interval ``(0, ∞)`` and step ``α*``; a
constant vector's optimum is reached by its largest-step interval (the sign codes midrise).

Per channel / group each row is searched independently (blocks of rows on the kernels'
threads, :func:`vecq_ref._kernels.run_tasks`; everything in a row sequential), so results are
bit-identical for any number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import _layout, tables
from . import _validation as V
from ._kernels import f64, num_threads
from ._kernels import lattice as KL
from ._kernels import levelset as KLS
from ._kernels import search as K
from ._kernels.reduce import row_moments
from .lattice import LevelSet, code_dtype, level_set
from .loss import loss_from_sums, orientation_from_min

METHODS = ("exact", "grid", "alternating", "param")
INITS = ("max", "sigma")
_OPTIONS = {"exact": (), "param": (), "paper": (), "grid": ("lo", "hi", "num"),
            "alternating": ("init", "max_iter")}


@dataclass(frozen=True, eq=False)
class StepResult:
    """Result of :func:`search_step`. Per channel / group every numeric field is an array.

    Attributes
    ----------
    step : float or ndarray
        The step (weight units) whose codes the method returns: VecQ's level sets
        unweighted, the threshold spacing of ``codes(w, step)``; every other level set, the
        signed step ``s`` whose codes are the nearest levels of ``w/s`` (module docstring).
    alpha : float or ndarray
        Least-squares scale α* = ⟨w,ℓ⟩_h/⟨ℓ,ℓ⟩_h of those codes (negative only with
        ``signed_scale``; 0 when no scale of the step's sign reduces the loss).
    orientation, relative_dql : float or ndarray
        ``J_o`` and ``‖w − α·ℓ‖²_h/‖w‖²_h`` of the codes with α (weighted when ``weights``
        are given; for the least-squares α, ``J_o(2 − J_o)``).
    evaluations : int or ndarray
        Candidate steps (code vectors) evaluated.
    certified : bool or ndarray
        True only when global optimality over all steps is proven (``exact``).
    interval : tuple or ndarray or None
        ``exact`` only: ``(lo, hi)``, the codes are optimal exactly for steps (for general
        level sets: for ``|step|``) in ``(lo, hi]``; per slice an array of shape
        ``slice_shape + (2,)``.
    iterations : int or ndarray or None
        ``alternating`` only: code evaluations until the codes stopped changing (general
        level sets: of the winning run).
    method, bits, lattice : the settings used (``lattice`` is ``level_set.lattice``).
    zero_point : int or ndarray or None
        With ``zero_point="integer"``: the integer ``z`` of each slice (``x̂ = α(u − z)``).
    level_set : LevelSet
        The level set searched.
    offset : float or ndarray or None
        With ``zero_point="float"``: the real ``m`` of each slice (``x̂ = α·u + m``).
    """

    step: object
    alpha: object
    orientation: object
    relative_dql: object
    evaluations: object
    certified: object
    interval: object = None
    iterations: object = None
    method: str = "exact"
    bits: int = 4
    lattice: str = "midrise"
    zero_point: object = None
    level_set: LevelSet | None = None
    offset: object = None


def _grid_options(lo=0.001, hi=3.0, num=3000):
    lo = V.real(lo, "lo", positive=True)
    hi = V.real(hi, "hi", positive=True)
    num = V.integer(num, "num", 1)
    if num > 1 and not lo < hi:
        V.fail("hi", f"greater than `lo` = {lo!r}", hi)
    return np.linspace(lo, hi, num)


def _alternating_options(init="max", max_iter=100):
    if isinstance(init, str):
        init = V.choice(init, "init", INITS)
    elif init is None or isinstance(init, (bool, np.bool_)) or not np.isscalar(init):
        V.fail("init", f"one of {INITS} or a positive real number", repr(init), TypeError)
    else:
        init = V.real(init, "init", positive=True)
    return init, V.integer(max_iter, "max_iter", 1)


def _check_options(method, options):
    unknown = sorted(set(options) - set(_OPTIONS[method]))
    if unknown:
        allowed = _OPTIONS[method]
        V.fail("options", f"among {allowed} for method={method!r}" if allowed else
               f"empty for method={method!r}", unknown, TypeError)


# --- the one path: validate, lay out, scale once -------------------------------------------


@dataclass(frozen=True, eq=False)
class _Prepared:
    """The arguments of :func:`search_step` / :func:`vecq_ref.quantize`, validated once and
    laid out in rows at the working scale ``2**k·w`` (both functions run on this)."""

    arr: np.ndarray  # the weights at the working scale (float32/64; never the caller's, written)
    out_dtype: np.dtype  # the dtype values are returned in
    lay: _layout.Layout
    rows: np.ndarray  # lay.to_rows(arr)
    hrows: np.ndarray | None  # importance h per row (float64, C-contiguous), None unweighted
    lset: LevelSet
    method: str
    k: int  # the working scale's exponent (V.scale_exponent)
    lams: np.ndarray | None  # grid: λ in σ units
    init: object  # alternating: "max", "sigma" or α₀ at the working scale
    max_iter: int

    @property
    def bits(self):
        return self.lset.bits

    @property
    def lattice(self):
        return self.lset.lattice

    @property
    def general(self):
        """True for the general path: every level set but VecQ's own (midrise, midtread,
        positive scale) unweighted, which keep their own kernels."""
        return not (self.lset.vecq and self.hrows is None)


#: Zero-point searches (integer or real offset) run up to this many bits: they try every
#: zero point (2^k level sets of 2^k levels); GPTQ/AWQ/compressed-tensors use 2–8 bits.
ZERO_POINT_MAX_BITS = 8


def _prepare(w, bits, method, lattice, axis, group_size, signed_scale, zero_point, codebook,
             weights, options, methods=METHODS, *, check_finite=False, scale=True):
    """Validate every argument once and return the :class:`_Prepared` rows (``scale=False``:
    at the caller's scale, for the float32 paper expression)."""
    method = V.choice(method, "method", methods)
    lset = level_set(lattice, bits, signed_scale=signed_scale, zero_point=zero_point,
                     codebook=codebook)
    if method in ("param", "paper"):
        _check_fused(method, lset, weights)
    _check_options(method, options)
    if lset.zero_point is not None and method != "param" and lset.bits > ZERO_POINT_MAX_BITS:
        V.fail("bits", f"at most {ZERO_POINT_MAX_BITS} with zero_point={lset.zero_point!r} "
               "(the searches try every one of the 2^k zero points, each a level set of 2^k "
               "levels)", lset.bits)
    if lset.zero_point == "float" and method != "exact":
        V.fail("method", "'exact' with zero_point='float' (the real offset's two-dimensional "
               "search; grid and alternating search a step only)", repr(method))
    lams = _grid_options(**options) if method == "grid" else None
    init, max_iter = _alternating_options(**options) if method == "alternating" else (0, 0)
    if init == "sigma" and lset.codebook is not None:
        V.fail("init", "'max' or a positive real number with a codebook (no λ table holds for "
               "its levels)", "'sigma'")
    arr, out_dtype = V.weights(w, "w", check_finite=check_finite)
    lay = _layout.layout(arr.shape, axis, group_size)
    h = V.importance(weights, arr.shape)
    k = V.scale_exponent(arr) if scale else 0  # work at 2**k·w: nothing overflows
    if k:
        arr = np.ldexp(arr, k)
        if not isinstance(init, str):  # α₀ in weight units
            init = float(np.ldexp(init, k))
    rows = lay.to_rows(arr)
    hrows = None if h is None else f64(lay.to_rows(h))
    return _Prepared(arr, out_dtype, lay, rows, hrows, lset, method, k, lams, init, max_iter)


def _check_fused(method, lset, weights):
    """``param`` and ``paper`` hold for VecQ's own level sets, unweighted, only."""
    why = (f"for method={method!r} (its step comes from VecQ's λ table, which holds for the "
           "unweighted midrise and midtread sets only; use 'exact', 'grid' or 'alternating')")
    if weights is not None:
        V.fail("weights", f"None {why}", "importance weights")
    if lset.codebook is not None:
        V.fail("codebook", f"None {why}", repr(lset.name or "an array of levels"))
    if lset.zero_point is not None:
        V.fail("zero_point", f"None {why}", repr(lset.zero_point))
    if lset.signed_scale:
        V.fail("signed_scale", f"False {why}", True)
    if not lset.vecq:
        V.fail("lattice", f"'midrise' or 'midtread' {why}", repr(lset.lattice))
    if method == "paper" and lset.lattice != "midrise":
        V.fail("lattice", "'midrise' for method='paper' (the released code is midrise only)",
               repr(lset.lattice))


def search_step(w, bits=None, method="exact", lattice=None, axis=None, group_size=None, *,
                signed_scale=False, zero_point=None, codebook=None, weights=None, **options):
    """Find the step of ``w`` for a level set (docs/theory.md §4.1–4.5, §2.1).

    Parameters
    ----------
    w : array_like
        Weights, any shape (never modified).
    bits : int
        Bitwidth k in [1, 16] (≥ 2 for midtread); optional with a codebook.
    method : {"exact", "grid", "alternating", "param"}
        See the module docstring; ``exact`` is the global optimum.
    lattice : {"midrise", "midtread", "midtread-full", "codebook"} or LevelSet, optional
        Default ``"midrise"`` (``"midtread-full"`` with a zero point, ``"codebook"`` with a
        codebook): :func:`vecq_ref.lattice.level_set`.
    axis : int, optional
        One search per slice along this axis (per output channel).
    group_size : int, optional
        One search per contiguous group of the last axis.
    signed_scale : bool
        α of either sign (the mirrored level set is searched too).
    zero_point : {None, "integer", "float"}
        ``"integer"``: codes ``u ∈ [0, 2^k − 1]``, ``x̂ = α(u − z)``, the best integer ``z``
        of each slice; ``"float"``: ``x̂ = α·u + m``, a real ``m`` per slice (``exact``
        only; module docstring).
    codebook : str or array_like, optional
        ``"nf4"``, ``"fp4"``, ``"iq4_nl"`` or ascending levels.
    weights : array_like, optional
        Importance ``h ≥ 0`` broadcastable to ``w`` (per element or per input column): the
        search minimises ``‖w − x̂‖²_h = Σ h·(w − x̂)²``.
    **options
        ``grid``: ``lo``, ``hi`` (σ units), ``num``. ``alternating``: ``init``
        (``"max"``, ``"sigma"`` or a positive α₀ in weight units) and ``max_iter``.

    Returns
    -------
    StepResult
        For ``2**e·w`` the same codes, with ``step``, ``alpha`` and ``interval`` times
        ``2**e``: float64 weights are searched at a power-of-two working scale where no sum
        overflows (:func:`vecq_ref._validation.scale_exponent`), then scaled back.

    Raises
    ------
    ValueError, TypeError
        Naming the argument: a combination outside the table below, bad weights or options.

    Notes
    -----
    Valid combinations:

    ===========  ===============================  =========  =================================
    method       level sets                       weights    path
    ===========  ===============================  =========  =================================
    param        midrise, midtread (positive α)   no         λ_k·σ (VecQ's table)
    exact        every level set                  optional   VecQ's exact search (midrise,
                                                             midtread, unweighted); else the
                                                             general path (module
                                                             docstring); a real offset: the
                                                             2-D search
    grid         every level set but a real       optional   as exact (no 2-D search: a real
    alternating  offset (``zero_point="float"``)             offset is a ValueError)
    ===========  ===============================  =========  =================================

    Examples
    --------
    >>> r = search_step([0.1, -0.4, 0.25, 0.9, -1.3, 0.05], bits=2)
    >>> r.certified, bool(r.interval[0] < r.step <= r.interval[1])
    (True, True)
    >>> round(r.step, 6), round(r.relative_dql, 6)
    (0.672727, 0.089912)
    >>> g = search_step([0.1, -0.4, 0.25, 0.9, -1.3, 0.05], bits=2, method="grid")
    >>> bool(r.relative_dql <= g.relative_dql * (1 + 1e-12))
    True
    >>> z = search_step([0.1, -0.4, 0.25, 0.9, -1.3, 0.05], bits=2, zero_point="integer")
    >>> z.zero_point, round(z.alpha, 6)
    (2, 0.65)
    """
    prep = _prepare(w, bits, method, lattice, axis, group_size, signed_scale, zero_point,
                    codebook, weights, options)
    result, _ = _search_prepared(prep)
    return _rescaled(result, prep.k)


def _search_prepared(prep, codes=None):
    """``(StepResult at the working scale, the general path's per-row results or None)``
    (``codes``: see :func:`_search`)."""
    if not prep.general:
        result = _search(prep.rows, prep.bits, prep.method, prep.lattice, prep.lay, prep.lams,
                         prep.init, prep.max_iter, codes)
        return replace(result, level_set=prep.lset), None
    g = _search_general(prep)
    return _general_result(prep, g), g


def _rescaled(result, k):
    """``result`` computed for ``2**k·w`` in the units of ``w`` (α, step, interval × 2**-k)."""
    if k == 0:
        return result

    def back(x):
        return None if x is None else (
            tuple(float(np.ldexp(v, -k)) for v in x) if isinstance(x, tuple) else
            (float(np.ldexp(x, -k)) if np.ndim(x) == 0 else np.ldexp(x, -k)))

    with np.errstate(over="ignore", under="ignore"):
        return replace(result, step=back(result.step), alpha=back(result.alpha),
                       interval=back(result.interval), offset=back(result.offset))


# --- the general path: any level set, weighted or not ---------------------------------------


@dataclass(frozen=True, eq=False)
class _General:
    """Per-row results of the general path (at the working scale)."""

    steps: np.ndarray  # signed steps: codes = nearest_index(x/step, levels − z)
    alpha: np.ndarray  # S1/S2 of those codes (0 when no α of the step's sign helps)
    zs: np.ndarray  # int64 z per row (0 without a zero point)
    idx: np.ndarray  # int32 (rows, n): index into lset.levels
    sums: np.ndarray  # (rows, 3): Σh·x², S1 = Σh·x·ℓ, S2 = Σh·ℓ² of those codes
    evaluations: np.ndarray
    certified: np.ndarray
    interval: np.ndarray | None
    iterations: np.ndarray | None
    offsets: np.ndarray | None = None  # a real offset m per row (zero_point="float")
    dql: np.ndarray | None = None  # its direct loss Σh(x − αu − m)² per row


#: Slices of at most this many weights are searched exactly for a real offset (at ≤ 4 bits).
AFFINE_EXACT_MAX = 32


def _float_offset_search(prep):
    """The real offset per row (``zero_point="float"``, docs/theory.md §4.5; module docstring): the
    affine kernel, then for the rows it could not certify the better of its result, the
    exact integer zero point and llama.cpp's ``make_qkx2_quants``, each refitted."""
    from ._kernels import affine as KA

    xs = f64(prep.rows)
    if not np.all(np.isfinite(xs)):
        V.finite(xs, "w")
    nrows, n = xs.shape
    hs = prep.hrows if prep.hrows is not None else np.empty((0, 0))
    nlev = 2 ** prep.lset.bits
    out = np.empty((nrows, 7))
    u = np.empty(xs.shape, dtype=np.int32 if nlev > 32768 else np.int16)
    KA.affine_search(xs, hs, nlev, AFFINE_EXACT_MAX if nlev <= KA.EXACT_LEVELS else 0, out, u)
    alpha, offset = out[:, KA.ALPHA].copy(), out[:, KA.OFFSET].copy()
    dql, certified = out[:, KA.LOSS].copy(), out[:, KA.CERTIFIED] > 0
    evaluations = out[:, KA.EVALS].astype(np.int64)
    todo = np.flatnonzero(~certified)
    if todo.size:
        hsub = hs if prep.hrows is None else f64(prep.hrows[todo])
        a, m, d, c = alpha[todo], offset[todo], dql[todo], u[todo]
        _offset_candidates(xs[todo], hsub, nlev, a, m, d, c)
        alpha[todo], offset[todo], dql[todo], u[todo] = a, m, d, c
    idx = u.astype(np.int32)
    sums = np.empty((nrows, 3))
    KLS.levelset_sums(xs, hs, np.ones(nrows), np.zeros(nrows, np.int64),
                      f64(prep.lset.levels), np.empty(xs.shape, np.int32), sums)
    return _General(alpha.copy(), alpha, np.zeros(nrows, np.int64), idx, sums, evaluations,
                    certified, None, None, offsets=offset, dql=dql)


def _offset_candidates(xs, hs, nlev, alpha, offset, dql, u):
    """In place, per row of ``xs`` (float64, rows × n; ``hs`` the same shape or (0, 0): unit
    weights): where the exact integer-zero-point optimum's codes, then llama.cpp's
    ``make_qkx2_quants`` codes, each refitted by weighted least squares
    (:func:`_affine_refit`), have a strictly lower loss ``Σh(x − αu − m)²`` than ``dql``,
    they replace ``(alpha, offset, dql, u)``. The one rule behind every real-offset "best
    found" (:func:`_float_offset_search`, :func:`offset_best_found`)."""
    for cand in (_integer_zero_point_codes(xs, hs, nlev), _qkx2_codes(xs, hs, nlev)):
        a, m, d = _affine_refit(xs, hs, cand)
        better = d < dql
        u[better] = cand[better]
        alpha[better], offset[better], dql[better] = a[better], m[better], d[better]


def offset_best_found(x, h, bits, shipped=None):
    """Per row, the loss of the best real-offset fit found without the exact search.

    The fit ``x̂ = α·u + m`` (codes ``u ∈ [0, 2^bits − 1]``) of least loss among: the exact
    integer-zero-point optimum's codes and llama.cpp's ``make_qkx2_quants`` codes, each
    refitted by weighted least squares (the candidates ``search_step`` adds to its heuristic
    for the real-offset rows it cannot certify: :func:`_offset_candidates`), and the
    ``shipped`` values' own loss when given (a member of the level set). Not certified: an
    upper bound of the optimum, used by ``check.blocks.format_optimum`` and ``check.audit``
    above their group limits (so both give the same figure).

    Parameters
    ----------
    x : ndarray, float64, shape (rows, n)
        Finite weights, one group per row.
    h : ndarray of float, shape (rows, n), or None
        Importance ``h ≥ 0`` (None: unit weights).
    bits : int
        Bits of the codes (``2^bits`` levels).
    shipped : ndarray, shape (rows, n), optional
        Values of the same level set (a quantized output): its loss per row is a candidate.

    Returns
    -------
    ndarray, float64, shape (rows,)
        ``Σh(x − x̂)²`` per row, never above any candidate's.

    Source: docs/theory.md §4.6; ggml-org/ggml ``src/ggml-quants.c`` ``make_qkx2_quants``.
    """
    xs = f64(x)
    hs = np.empty((0, 0)) if h is None else f64(h)
    rows = xs.shape[0]
    dql = np.full(rows, np.inf)
    if shipped is not None:
        e = xs - np.asarray(shipped, dtype=np.float64)
        dql = np.sum((1.0 if h is None else hs) * e * e, axis=1)
    nlev = 2 ** int(bits)
    u = np.zeros(xs.shape, dtype=np.int32 if nlev > 32768 else np.int16)
    _offset_candidates(xs, hs, nlev, np.zeros(rows), np.zeros(rows), dql, u)
    return dql


def _integer_zero_point_codes(xs, hs, nlev):
    """Codes ``u`` of the exact integer-zero-point optimum of each row (a feasible real
    offset ``m = −z·α``)."""
    from ._kernels.exact_levels import exact_levelset

    out = np.empty((xs.shape[0], 9))
    idx = np.empty(xs.shape, np.int32)
    levels = np.arange(nlev, dtype=np.float64)
    exact_levelset(xs, hs, levels, False, True, out, np.empty(xs.shape, np.int16))
    sums = np.empty((xs.shape[0], 3))
    KLS.levelset_sums(xs, hs, f64(out[:, 0]), out[:, 8].astype(np.int64), levels, idx, sums)
    return idx


def _qkx2_codes(xs, hs, nlev):
    """Codes of llama.cpp's affine search ``make_qkx2_quants`` on each row (float32, as the C
    code; with the row's importance, or unit weights: the loss searched here)."""
    from .format_rules import make_qkx2_quants

    h = np.ones(xs.shape) if hs.size == 0 else hs
    q = make_qkx2_quants(xs, nmax=nlev - 1, group_size=xs.shape[1], weights=h)
    return np.asarray(q.codes, dtype=np.int32).reshape(xs.shape)


def _affine_refit(xs, hs, u):
    """Per row the weighted least-squares ``(α, m)`` of codes ``u`` and its loss
    ``Σh(x − αu − m)²`` (direct sums in index order: :func:`KA.affine_fit`)."""
    from ._kernels import affine as KA

    out = np.empty((xs.shape[0], 3))
    KA.affine_fit(xs, hs, f64(u), out)
    return out[:, 0], out[:, 1], out[:, 2]


def _sigma_lambda(lset):
    """λ of ``init="sigma"`` for a uniform set: VecQ's λ_k of the midrise lattice, or of the
    midtread lattice for midtread, midtread-full and zero points (one level more, or shifted)."""
    if lset.lattice == "midrise" or lset.bits < 2:
        return tables.optimal_step(lset.bits, "midrise")
    return tables.optimal_step(lset.bits, "midtread")


def _search_general(prep):
    """Search every row of ``prep`` over its level set (weighted or not): ``exact`` by
    ``_kernels.exact_levels.exact_levelset``, ``grid`` and ``alternating`` by the kernels of
    :mod:`vecq_ref._kernels.levelset`; then one pass for the codes and sums of the result."""
    lset = prep.lset
    if lset.zero_point == "float":
        return _float_offset_search(prep)
    xs = f64(prep.rows)  # float64, C-contiguous, writeable: one kernel specialization
    if not np.all(np.isfinite(xs)):
        V.finite(xs, "w")
    hs = prep.hrows if prep.hrows is not None else np.empty((0, 0))
    zp = lset.zero_point == "integer"
    levels = f64(lset.levels)
    nrows = xs.shape[0]
    interval = iterations = predicted = None
    certified = np.zeros(nrows, dtype=bool)
    if prep.method == "exact":
        from ._kernels.exact_levels import exact_levelset

        out = np.empty((nrows, 9))
        exact_levelset(xs, hs, levels, lset.signed_scale, zp, out,
                       np.empty(xs.shape, np.int16))
        steps, zs, evaluations = out[:, 0], out[:, 8], out[:, 6]
        interval, predicted = out[:, 2:4], out[:, 4:6]
        certified = out[:, 7] > 0
    else:
        out = np.empty((nrows, 7))
        if prep.method == "grid":
            KLS.grid_levelset(xs, hs, levels, lset.signed_scale, zp, prep.lams, out)
        else:
            init = prep.init
            code, value = ((0, 0.0) if init == "max" else
                           (1, _sigma_lambda(lset)) if init == "sigma" else (2, init))
            KLS.alternating_levelset(xs, hs, levels, lset.signed_scale, zp, code, value,
                                     prep.max_iter, out)
            iterations = out[:, 6].astype(np.int64)
        steps, zs, evaluations = out[:, 0], out[:, 5], out[:, 4]
    steps = f64(steps)
    zs = zs.astype(np.int64)
    idx = np.empty(xs.shape, dtype=np.int32)
    sums = np.empty((nrows, 3))
    KLS.levelset_sums(xs, hs, steps, zs, levels, idx, sums)
    sxx, s1, s2 = sums.T
    sign = np.where(steps < 0, -1.0, 1.0)
    ok = (s2 > 0) & (sign * s1 > 0)
    alpha = np.where(ok, s1 / np.where(ok, s2, 1.0), 0.0)
    if predicted is not None:  # the certificate: the codes at the step are the predicted ones
        with np.errstate(invalid="ignore"):
            tol = 1e-12 * np.sqrt(sxx * s2)
            certified &= (np.abs(s1 - predicted[:, 0]) <= tol) & (
                np.abs(s2 - predicted[:, 1]) <= 1e-12 * s2)
    return _General(steps, alpha, zs, idx, sums, evaluations.astype(np.int64), certified,
                    interval, iterations)


def _weighted_losses(sxx, s1, s2, alpha):
    """Per row ``(orientation, dql, relative_dql, excess)`` of ``α·ℓ`` from ``Σh·x²``, ``S1``,
    ``S2``: ``dql = ‖x − α·ℓ‖²_h = Σhx² − 2αS1 + α²S2`` (≥ 0), relative to ``Σhx²`` (0 for
    ``Σhx² = 0``), ``J_o`` in the h-metric from ``min_β = Σhx² − S1²/S2`` (1 when α = 0 and
    ``Σhx² > 0``: no direction), ``excess = dql − min_β``. From the sums, so the absolute
    error is of the order of ε·Σhx²."""
    dql = np.maximum(sxx - 2.0 * alpha * s1 + alpha * alpha * s2, 0.0)
    pos = s2 > 0
    best = np.where(pos, np.maximum(sxx - s1 * s1 / np.where(pos, s2, 1.0), 0.0), sxx)
    has = sxx > 0
    rel = np.where(has, dql / np.where(has, sxx, 1.0), 0.0)
    orient = np.where(alpha != 0, orientation_from_min(best, sxx), np.where(has, 1.0, 0.0))
    return orient, dql, rel, np.maximum(dql - best, 0.0)


def _general_result(prep, g):
    """The :class:`StepResult` of the general path's per-row results (working scale)."""
    sxx, s1, s2 = g.sums.T
    orient, _, rel, _ = _row_losses(g)
    lay = prep.lay
    return StepResult(
        step=_out(g.steps, lay, float), alpha=_out(g.alpha, lay, float),
        orientation=_out(orient, lay, float), relative_dql=_out(rel, lay, float),
        evaluations=_out(g.evaluations, lay, int), certified=_out(g.certified, lay, bool),
        interval=_intervals(g.interval, lay),
        iterations=None if g.iterations is None else _out(g.iterations, lay, int),
        method=prep.method, bits=prep.bits, lattice=prep.lattice,
        zero_point=_out(g.zs, lay, int) if prep.lset.zero_point == "integer" else None,
        level_set=prep.lset, offset=None if g.offsets is None else _out(g.offsets, lay, float))


def _row_losses(g):
    """Per row ``(orientation, dql, relative_dql, excess)`` of the general path's result:
    from the sums (:func:`_weighted_losses`), or for a real offset from its direct loss
    (``J_o`` with ``J_o(2 − J_o)`` the relative DQL; excess 0: α and m are the fit)."""
    sxx = g.sums[:, 0]
    if g.offsets is None:
        return _weighted_losses(sxx, g.sums[:, 1], g.sums[:, 2], g.alpha)
    has = sxx > 0
    rel = np.where(has, g.dql / np.where(has, sxx, 1.0), 0.0)
    orient = 1.0 - np.sqrt(np.maximum(1.0 - rel, 0.0))
    return orient, g.dql, rel, np.zeros_like(rel)


# --- VecQ's own level sets, unweighted ------------------------------------------------------


def _search(rows, bits, method, lattice, lay, lams, init, max_iter, codes=None):
    """search_step on validated weight rows at the working scale (``codes``: a flat scratch
    of at least ``rows.size`` elements of a code dtype for the codes of long rows, or None)."""
    mid = lattice == "midtread"
    nrows = rows.shape[0]
    lam_k = tables.optimal_step(bits, lattice)
    interval = iterations = None
    certified = np.zeros(nrows, dtype=bool)
    if method == "param":
        moments = row_moments(rows)
        if not np.all(np.isfinite(moments)):
            V.finite(rows, "w")
        steps = np.ascontiguousarray(lam_k * np.sqrt(moments[:, 1]))
        codes = np.empty(rows.shape, dtype=code_dtype(bits))
        sums = np.concatenate([KL.codes_and_sums(rows, steps, bits, mid, False, codes),
                               moments[:, 2:3]], axis=1)
        evaluations = np.ones(nrows, dtype=np.int64)
    else:
        # NaN sorts last, ±Inf to the ends. The searches compile once, for float64
        # (kernels/search.py docstring): ``xd`` is the sorted rows in float64.
        _check_memory(rows, bits, method)
        xd = _sorted_rows(rows, wide=True)
        if not (np.all(np.isfinite(xd[:, 0])) and np.all(np.isfinite(xd[:, -1]))):
            V.finite(rows, "w")
        qbuf, cbuf = _scratch(xd, bits, codes)
        if method == "exact":
            out = np.empty((nrows, 12))
            K.exact_search(xd, bits, mid, lam_k, _sweep_max(bits), _SORT_MAX,
                           _max_states(bits), out, qbuf, cbuf)
            steps, sums = out[:, 0], out[:, 7:]
            interval = out[:, 1:3]
            evaluations = out[:, 5].astype(np.int64)
            certified = out[:, 6] > 0
        elif method == "grid":
            out = np.empty((nrows, 9))
            K.grid_search(xd, bits, mid, lams, out, qbuf, cbuf)
            steps, sums = out[:, 1], out[:, 4:]
            evaluations = np.full(nrows, lams.size, dtype=np.int64)
        else:
            code, value = (0, 0.0) if init == "max" else (1, lam_k) if init == "sigma" \
                else (2, init)
            out = np.empty((nrows, 7))
            K.alternating_search(xd, bits, mid, code, value, max_iter, out, qbuf, cbuf)
            steps, sums = out[:, 0], out[:, 2:]
            iterations = evaluations = out[:, 1].astype(np.int64)
    swv, svv, ds, rs, sww = sums.T
    alpha = np.where(svv > 0, swv / np.where(svv > 0, svv, 1.0), 0.0)
    orient, _, rel, _ = loss_from_sums(sww, swv, svv, ds, rs, steps, alpha)
    return StepResult(
        step=_out(steps, lay, float), alpha=_out(alpha, lay, float),
        orientation=_out(orient, lay, float), relative_dql=_out(rel, lay, float),
        evaluations=_out(evaluations, lay, int), certified=_out(certified, lay, bool),
        interval=_intervals(interval, lay),
        iterations=None if iterations is None else _out(iterations, lay, int),
        method=method, bits=bits, lattice=lattice)


def _search_bytes(rows, bits, method):
    """An upper bound of the bytes the searches allocate for ``rows`` (beyond the result):
    the sorted rows in float64 (and a parallel sort's runs of float64 rows), the per-row
    buffers (suffix sums' checkpoints and codes), and per thread the exact
    search's states (``_max_states``), breakpoints of a sorted sweep (48 bytes each, at most
    ``_SORT_MAX``) and merged sweep (24 bytes per weight), or the other searches' level
    states (``O(M)``)."""
    nrows, n = rows.shape
    M = 2 ** (bits - 1)
    total = rows.size * (8 + (8 if rows.itemsize == 8 else 0) + 2 + 2)
    per_thread = 8 * 16 * M + 24 * n
    if method == "exact":
        per_thread += max(16 * M * _max_states(bits), 48 * min(_SORT_MAX, n * (M - 1)))
    return total + min(nrows, max(1, num_threads(rows.size))) * per_thread


def _available_bytes():
    """Bytes this process may still allocate: physical memory, and what an address-space
    limit (``RLIMIT_AS``) leaves above the current size; None when neither is known."""
    import os

    avail = []
    try:
        avail.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            avail.append(max(0, soft - size))
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return min(avail) if avail else None


def _check_memory(rows, bits, method):
    """Raise ValueError, before anything is allocated, when the search of ``rows`` cannot fit
    in the memory this process may still allocate (``_available_bytes``)."""
    need = _search_bytes(rows, bits, method)
    avail = _available_bytes()
    if avail is not None and need > avail:
        V.fail("w", f"small enough for method={method!r} at bits={bits}: its search needs "
                    f"about {need / 2**20:.0f} MiB, more than the {avail / 2**20:.0f} MiB this "
                    "process may still allocate", f"{rows.size} weights in {rows.shape[0]} rows")


def _sorted_rows(rows, wide=False):
    """``np.sort(rows, axis=1)`` on Numba's thread count of Python threads (NumPy's sort and
    the merge kernel release the GIL); with ``wide``, in float64 (what the search kernels
    read) and nothing else: sorting is exact, so the values are those of the rows' own sort,
    widened. Equal values are equal bit for bit, but for the order of ``-0.0`` and ``0.0``
    among the zeros, which nothing downstream reads (the searches see magnitudes and sums of
    squares).

    Memory: the result and nothing of the rows' size beside it when ``wide`` (float32 rows:
    their parallel sort's runs and merged row are the two halves of the float64 row, widened
    in place), else one more copy for the runs of a parallel sort.

    Many rows: blocks of rows, one per thread, each copied and sorted in place. Fewer rows
    than threads, each long: each row by :func:`_parallel_sort`, so a per-tensor search is not
    bound by one serial sort.
    """
    nrows, n = rows.shape
    out = np.empty(rows.shape, dtype=np.float64 if wide else rows.dtype)
    nthreads = num_threads(rows.size)  # 1 for small inputs: starting threads costs more
    if nthreads >= 2 and nrows < nthreads and n >= _PSORT_MIN:
        halves = out.dtype.itemsize == 2 * rows.dtype.itemsize
        for r in range(nrows):
            if halves:
                half = out[r].view(rows.dtype)
                _parallel_sort(rows[r], half[n:], None, nthreads, half[:n])
                _widen(out[r], half[n:])
            else:
                _parallel_sort(rows[r], out[r], None, nthreads)
        return out
    nthreads = min(nthreads, nrows)
    if nthreads < 2:
        out[...] = rows
        out.sort(axis=1)
        return out
    from concurrent.futures import ThreadPoolExecutor

    cuts = np.linspace(0, rows.shape[0], nthreads + 1).astype(int)

    def sort_block(i):
        block = out[cuts[i]:cuts[i + 1]]
        block[...] = rows[cuts[i]:cuts[i + 1]]
        block.sort(axis=1)

    with ThreadPoolExecutor(nthreads) as pool:
        list(pool.map(sort_block, range(nthreads)))
    return out


def _widen(wide, narrow):
    """``wide[:] = narrow`` where ``narrow`` (float32) is the upper half of ``wide``'s
    (float64) memory: front to back in blocks, so no block is written over before it is
    read (block ``[a, b)`` writes below byte ``8b``, the values after it start at ``4n + 4b``;
    NumPy buffers a block that overlaps its own source)."""
    n = wide.shape[0]
    for a in range(0, n, _WIDEN_BLOCK):
        wide[a:a + _WIDEN_BLOCK] = narrow[a:a + _WIDEN_BLOCK]


_WIDEN_BLOCK = 1 << 18
_PSORT_MIN = 1 << 16  # shorter rows: one np.sort beats starting threads


def _scratch(xs, bits, codes=None):
    """Per-row work buffers for the search kernels (``_kernels.search._scratch``) when the
    rows are few and long, allocated here by NumPy (reused or huge-page backed memory: the
    kernel's own allocations of such sizes fault in page by page, a cost of the order of
    the whole search): the suffix sums' checkpoints and the codes (in the caller's flat
    ``codes`` of at least ``xs.size`` elements when given). Many short rows: none, the
    kernels allocate (small, reused) their own."""
    rows, n = xs.shape
    if rows <= num_threads(xs.size) and n >= _PSORT_MIN:
        cbuf = (np.empty((rows, n), code_dtype(bits)) if codes is None else
                codes[:xs.size].reshape(xs.shape))
        return np.empty((rows, K.suffix_len(n))), cbuf
    return np.empty((0, 0)), np.empty((0, 0), code_dtype(bits))
_PSORT_SAMPLES = 64  # splitter samples per run


def _parallel_sort(x, out, out64, nthreads, runs=None):
    """Sort the 1-D ``x`` into ``out`` (and its float64 copy into ``out64`` unless None) with
    ``nthreads`` threads (``runs``: a buffer like ``x`` for the sorted runs, sharing no memory
    with ``out``, else a new one): ``nthreads`` runs sorted by NumPy at once, then ``nthreads``
    value ranges, cut at splitters sampled from the sorted runs, each merged by one thread
    (``_kernels.sort.merge_runs``). Equal values (NaN included) fall in one range, so the
    ranges laid end to end are the sorted row."""
    from concurrent.futures import ThreadPoolExecutor

    from ._kernels.sort import merge_runs

    n = x.shape[0]
    k = nthreads
    cuts = [n * i // k for i in range(k + 1)]
    if runs is None:
        runs = np.empty_like(x)

    def sort_run(i):
        run = runs[cuts[i]:cuts[i + 1]]
        run[...] = x[cuts[i]:cuts[i + 1]]
        run.sort()

    with ThreadPoolExecutor(k) as pool:
        list(pool.map(sort_run, range(k)))
        picks = [cuts[i] + np.linspace(0, cuts[i + 1] - cuts[i] - 1, _PSORT_SAMPLES).astype(int)
                 for i in range(k)]
        sample = np.sort(runs[np.concatenate(picks)])
        splitters = sample[[sample.size * p // k for p in range(1, k)]]
        # bounds[c, p]: where range p starts in run c (all values equal to a splitter go right)
        bounds = np.empty((k, k + 1), dtype=np.int64)
        for c in range(k):
            bounds[c, 0], bounds[c, k] = cuts[c], cuts[c + 1]
            bounds[c, 1:k] = cuts[c] + np.searchsorted(runs[cuts[c]:cuts[c + 1]], splitters)
        starts = np.concatenate([[0], np.cumsum(bounds[:, 1:].sum(0) - bounds[:, :-1].sum(0))])
        empty = np.empty(0)

        def merge(p):
            o0, o1 = starts[p], starts[p + 1]
            wide = empty if out64 is None or out64 is out else out64[o0:o1]
            merge_runs(runs, np.ascontiguousarray(bounds[:, p:p + 2]), out[o0:o1], wide)

        list(pool.map(merge, range(k)))


def _out(per_row, lay, kind):
    """Per-row values as a plain Python scalar per tensor, else an array of the slice shape."""
    return kind(np.asarray(per_row).reshape(-1)[0]) if lay.per_tensor else lay.slices(per_row)


def _sweep_max(bits):
    """Rows with at most this many breakpoints are swept rather than branch-and-bounded.

    From 14 bits on, rows of up to ``_SWEEP_MERGED_MAX`` breakpoints are swept too: with few
    weights per level the branch and bound cannot prune and visits ``O(M)`` states of ``M``
    levels each (minutes at 16 bits), while the merged sweep takes ``O(N)`` memory."""
    if _FORCE_SWEEP is not None:
        return (1 << 62) if _FORCE_SWEEP else -1
    if bits >= 14:
        return max(64 * 2 ** (bits - 1), _SWEEP_MERGED_MAX)
    return min(1 << 21, 64 * 2 ** (bits - 1))


_FORCE_SWEEP = None  # tests set True / False to pin one of the two exact algorithms
#: Swept rows with at most this many breakpoints sort them all (O(B) memory); longer ones
#: merge each weight's thresholds (O(N) memory, ≈ 2× slower). Tests change it.
_SORT_MAX = 1 << 21
#: Bytes of states the branch and bound of one row holds at most (``_max_states``).
_STATE_BYTES = 1 << 26


def _max_states(bits):
    """States (``2M`` int64 each) the branch and bound holds at once: ``_STATE_BYTES``
    worth, at least 8 (beyond, the oldest ranges keep only their sums and their states are
    recomputed: same results, same evaluations)."""
    return max(8, _STATE_BYTES // (16 * 2 ** (bits - 1)))


#: Breakpoints up to which rows of 14 bits and more are swept (``_sweep_max``): ≈ 10 s.
_SWEEP_MERGED_MAX = 1 << 25


def _intervals(interval, lay):
    if interval is None:
        return None
    if lay.per_tensor:
        return float(interval[0, 0]), float(interval[0, 1])
    return np.ascontiguousarray(interval).reshape(lay.slice_shape + (2,))


__all__ = ["StepResult", "search_step"]
