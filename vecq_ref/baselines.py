r"""Baseline quantizers for DQL comparisons (docs/theory.md §6), one function per published method.

Every function takes ``(w, bits, axis=None)`` (plus a few method options) and returns the
same :class:`~vecq_ref.quantize.Quantized` as :func:`vecq_ref.quantize`, with the method's
published rule and nothing "improved": no α refit where the method has none, no rescaling
where the method has none. ``loss`` is the vector loss of ``values`` against ``w`` computed in
float64 before the cast to the input's dtype (``slice_loss`` per slice with ``axis``), so
``loss.excess`` shows what a least-squares α would still remove.

========================  ==============  ========  ===================  ===================
function                  ``lattice``     levels    ``alpha``            ``step``
========================  ==============  ========  ===================  ===================
:func:`bwn`  (k = 1)      midrise         2         2·mean|w|            = alpha
:func:`twn`  (k = 2)      midtread        3         mean|w| if \|w\|>Δ    2Δ
:func:`ul2q`              offset-midrise  2^k       λ_k·σ                λ_k·σ
:func:`dorefa` (k ≥ 2)    midrise         2^k       2/(2^k − 1)          NaN (tanh-warped)
:func:`absmax` (k ≥ 2)    midtread        2^k − 1   max|w|/(2^(k−1)−1)   = alpha
:func:`aciq`  (k = 2..8)  midrise         2^k       2·c_k·σ/2^k          = alpha
:func:`vecq_normalpha`    midrise         2^k       ‖w‖/‖v‖              λ_k·σ (VecQ param)
:func:`lloyd_max`         nonuniform      2^k       NaN                  NaN
========================  ==============  ========  ===================  ===================

How ``values`` follow from ``codes``:

* ``midrise`` / ``midtread``: ``values = alpha·levels`` with ``levels = codes + ½`` or
  ``codes`` (docs/theory.md §2), exactly as for :func:`vecq_ref.quantize`; ``Quantized.levels``
  applies.
* ``offset-midrise`` (μL2Q): ``values = alpha·(codes + ½) + info["beta"]``.
* ``nonuniform`` (Lloyd–Max): ``values = info["levels"][codes + 2^(k−1)]``; codes are the level
  indices shifted into the midrise code range ``−2^(k−1) … 2^(k−1) − 1`` so int8 holds 8 bits.

For these two ``Quantized.levels`` (which only knows ``codes + ½`` for "midrise") does not give
the levels; use the rules above. Codes are int8 up to 8 bits, int16 above. With ``axis``
every slice ``w.take(i, axis)`` is quantized on its own, and ``alpha``, ``step`` and the
scalar ``info`` entries are arrays of length ``w.shape[axis]``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import _layout, tables
from . import _validation as V
from ._kernels import lattice as K
from ._kernels.reduce import pair_sums
from .lattice import code_dtype, lattice_levels, level_set
from .loss import VectorLoss, vector_loss
from .quantize import Quantized, quantize

#: ACIQ (Banner et al., 2019) Gaussian clipping constants c_k (σ units), k = 2..8.
ACIQ_GAUSSIAN = {2: 1.71, 3: 2.15, 4: 2.55, 5: 2.93, 6: 3.28, 7: 3.61, 8: 3.92}
#: μL2Q λ tables (k = 1..8) selectable by name.
UL2Q_TABLES = {"printed": tables.UL2Q_PRINTED, "code": tables.UL2Q_CODE}
#: TWN's threshold factor: Δ = 0.7·mean|w|.
TWN_DELTA = 0.7
LLOYD_INITS = ("auto", "uniform", "quantile")
_LOSS_FIELDS = ("orientation", "modulus", "dql", "relative_dql", "excess")
#: ``info`` entries in weight units (scaled back with α and the step).
_SCALED_INFO = ("bwn_alpha", "delta", "beta", "clip", "levels", "lsq_alpha")


# --- shared machinery ----------------------------------------------------------------------

def _bits(bits, lo, hi, why):
    """``bits`` as an int in [1, 16], then in the method's own range [lo, hi]."""
    bits = V.integer(bits, "bits", 1, V.MAX_BITS)
    if not lo <= bits <= hi:
        V.fail("bits", why, bits)
    return bits


def _lattice_codes(x, step, bits, midtread):
    """Library lattice codes (docs/theory.md §2) of one float64 row for ``step`` (0 allowed)."""
    out = np.empty((1, x.size), dtype=code_dtype(bits))
    K.codes_rows(x.reshape(1, -1), np.array([float(step)]), bits, midtread, out)
    return out[0]


def _stack_info(infos, lay):
    """Per-row info dicts → one dict: the row's own values per tensor, else arrays of the
    slice shape (trailing dimensions kept, e.g. a level table per slice)."""
    if lay.per_tensor:
        return dict(infos[0])
    return {key: np.asarray([d[key] for d in infos]).reshape(
        lay.slice_shape + np.shape(infos[0][key])) for key in infos[0]}


def _run(method, lattice, bits, w, axis, row_fn, **options):
    """Validate ``w``/``axis``, apply ``row_fn`` to every slice, assemble a ``Quantized``.

    ``row_fn(x, bits, **options)`` gets one float64 row and returns
    ``(codes, alpha, step, values, info)`` with ``values`` in float64.
    """
    arr, out_dtype = V.weights(w, "w")
    lay = _layout.layout(arr.shape, axis, None)
    # Work at 2**k·w where nothing overflows, then scale back. DoReFa's tanh is not
    # scale-equivariant by design and runs at the caller's scale. μL2Q's released absolute
    # ``eps`` (weight units) is carried into the working units as 2**k·eps, which is the
    # caller's-scale arithmetic: for huge weights (k < 0) eps is far below an ulp of the step
    # at either scale; tiny weights (k > 0), where eps dominates the divisor, stay at the
    # caller's scale.
    k = 0 if method == "dorefa" else V.scale_exponent(arr)
    eps = options.get("eps", 0.0)
    if eps and k > 0:
        k = 0
    elif eps and k:
        options = {**options, "eps": float(np.ldexp(eps, k))}
    rows = lay.to_rows(np.ldexp(arr, k) if k else arr)
    n_rows = rows.shape[0]
    codes = np.empty(rows.shape, dtype=code_dtype(bits))
    values = np.empty(rows.shape, dtype=np.float64)
    alpha = np.empty(n_rows)
    step = np.empty(n_rows)
    infos = []
    for r in range(n_rows):
        x = np.ascontiguousarray(rows[r], dtype=np.float64)
        codes[r], alpha[r], step[r], values[r], info = row_fn(x, bits, **options)
        infos.append(info)
    if k:
        with np.errstate(over="ignore", under="ignore"):
            alpha, step, values = (np.ldexp(a, -k) for a in (alpha, step, values))
            infos = [{key: (np.ldexp(val, -k) if key in _SCALED_INFO else val)
                      for key, val in d.items()} for d in infos]
        rows = lay.to_rows(arr)
    V.check_values_fit(values, out_dtype)
    whole = vector_loss(rows, values)
    slice_loss = None
    if not lay.per_tensor:
        per = [vector_loss(rows[r], values[r]) for r in range(n_rows)]
        slice_loss = VectorLoss(*(lay.slices(np.array([getattr(p, f) for p in per]))
                                  for f in _LOSS_FIELDS))
    return Quantized(
        codes=lay.from_rows(codes), alpha=lay.slices(alpha), step=lay.slices(step),
        bits=bits, lattice=lattice, method=method,
        values=lay.from_rows(values).astype(out_dtype, copy=False), loss=whole,
        slice_loss=slice_loss, axis=lay.axis, group_size=None,
        info=_stack_info(infos, lay))


# --- BWN -----------------------------------------------------------------------------------

def _bwn_row(x, bits):
    scale = float(np.mean(np.abs(x)))
    codes = np.where(x < 0, -1, 0)  # sign(w) with sign(0) := +1, the midrise rule
    alpha = 2.0 * scale  # the lattice levels are ±½
    return codes, alpha, alpha, alpha * (codes + 0.5), {"bwn_alpha": scale}


def bwn(w, bits=1, axis=None):
    """Binary weights (BWN, Rastegari et al. 2016): ``w_q = mean|w|·sign(w)`` (docs/theory.md §6).

    Lattice ``midrise`` at k = 1 (2 levels, ``v = ±½``), so ``alpha = 2·mean|w|`` and
    ``info["bwn_alpha"] = mean|w|``, the published α. ``mean|w|`` is the least-squares scale
    for the sign codes, so BWN equals VecQ at 1 bit. ``step`` is set to ``alpha`` (at one bit
    every step gives the same codes).

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int, default 1
        Must be 1.
    axis : int, optional
        Quantize each slice along this axis (per output channel) on its own.

    Returns
    -------
    Quantized
        ``method="bwn"``.

    Notes
    -----
    A zero weight gets ``+mean|w|`` (the lattice's sign-of-zero rule, docs/theory.md §2);
    ``torch.sign`` would send it to 0, a third level.

    Examples
    --------
    >>> q = bwn([0.5, -1.0, 2.0, 0.0])
    >>> q.codes.tolist(), float(q.alpha), q.values.tolist()
    ([0, -1, 0, 0], 1.75, [0.875, -0.875, 0.875, 0.875])
    """
    bits = _bits(bits, 1, 1, "1 for BWN (binary weights; other bitwidths: vecq_ref.quantize)")
    return _run("bwn", "midrise", bits, w, axis, _bwn_row)


# --- TWN -----------------------------------------------------------------------------------

def _twn_row(x, bits):
    a = np.abs(x)
    delta = TWN_DELTA * float(np.mean(a))
    keep = a > delta
    n_keep = int(np.count_nonzero(keep))
    alpha = float(np.mean(a[keep])) if n_keep else 0.0
    codes = np.where(keep, np.where(x < 0, -1, 1), 0)
    return codes, alpha, 2.0 * delta, alpha * codes, {"delta": delta}


def twn(w, bits=2, axis=None):
    """Ternary weights (TWN, Li & Liu 2016), docs/theory.md §6.

    ``Δ = 0.7·mean|w|``, ``v = sign(w)·[|w| > Δ]``, ``α = mean of |w| over |w| > Δ``.
    Lattice ``midtread`` at k = 2 (3 levels −1, 0, +1), ``values = alpha·codes``.
    ``step = 2Δ`` is the midtread step with the same threshold; the midtread rule keeps
    ``|w| ≥ step/2`` while TWN keeps ``|w| > Δ``, so they differ only for ``|w| == Δ`` exactly.
    ``info["delta"]`` holds Δ.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int, default 2
        Must be 2: TWN is ternary only.
    axis : int, optional
        Quantize each slice along this axis on its own.

    Returns
    -------
    Quantized
        ``method="twn"``; an all-zero slice gets α = 0.

    Examples
    --------
    >>> q = twn([0.1, -0.9, 0.5, 1.3, -0.2])
    >>> q.codes.tolist(), round(float(q.alpha), 12), round(q.info["delta"], 12)
    ([0, -1, 1, 1, 0], 0.9, 0.42)
    """
    bits = _bits(bits, 2, 2, "2 for TWN (ternary weights: the 3-level 2-bit midtread lattice)")
    return _run("twn", "midtread", bits, w, axis, _twn_row)


# --- μL2Q ----------------------------------------------------------------------------------

def _ul2q_row(x, bits, lam, eps):
    beta = float(np.mean(x))
    s = lam * float(np.std(x))
    codes = _lattice_codes(x - beta, s + eps, bits, False)
    return codes, s, s, s * (codes + 0.5) + beta, {"beta": beta, "lam": lam}


def ul2q(w, bits, axis=None, table="code", eps=1e-7):
    """μL2Q (Cheng et al., IJCNN 2019) as its released code computes it, docs/theory.md §6 and §7.1.

    ``β = mean(w)``, ``s = λ_k·std(w)`` (population std, ddof = 0, of the mean-centred weights),
    midrise codes of ``(w − β)/(s + eps)`` (the library's ``floor`` rule, docs/theory.md §2; the
    released ``round(x − ½)`` differs only on exact ties), ``w_q = s·v + β`` (no ``eps`` in the
    levels, no α refit). Lattice ``offset-midrise`` (2^k levels); ``alpha = step = s``,
    ``info["beta"] = β``, ``info["lam"] = λ_k``. The defaults are the released TF code's
    (``vecq/quantize_methods/uL2Q.py`` in GongCheng1919/VecQ): its λ table and ``+1e-7`` in the
    divisor; ``table="printed", eps=0`` is the formula as printed.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int
        1 … 8 (μL2Q's tables stop at 8 bits).
    axis : int, optional
        Quantize each slice along this axis on its own.
    table : {"code", "printed"}
        λ_k from μL2Q's released code (``tables.UL2Q_CODE``, default) or its printed Table I
        (``tables.UL2Q_PRINTED``); they differ in the third digit (docs/theory.md §4.1).
    eps : float
        Added to the step in the divisor only (released code: 1e-7; 0 for the printed
        formula). It is in weight units, so a nonzero ``eps`` is not scale-equivariant
        (``eps=0`` is, like every other baseline but DoReFa).

    Returns
    -------
    Quantized
        ``method="ul2q"``; ``values = alpha·(codes + ½) + info["beta"]``.

    Examples
    --------
    >>> q = ul2q([0.0, 1.0, 2.0, 5.0], 2)
    >>> q.codes.tolist(), q.info["beta"], round(float(q.step), 6)
    ([-2, -1, 0, 1], 2.0, 1.862017)
    >>> round(float(ul2q([0.0, 1.0, 2.0, 5.0], 2, table="printed", eps=0).step), 6)
    1.850998
    """
    bits = _bits(bits, 1, 8, "an integer in [1, 8] for μL2Q (its λ tables stop at 8 bits)")
    table = V.choice(table, "table", tuple(UL2Q_TABLES))
    eps = V.real(eps, "eps", nonnegative=True)
    lam = UL2Q_TABLES[table][bits - 1]
    q = _run("ul2q", "offset-midrise", bits, w, axis, _ul2q_row, lam=lam, eps=eps)
    q.info["table"] = table
    q.info["eps"] = eps
    return q


# --- DoReFa --------------------------------------------------------------------------------

def _dorefa_row(x, bits):
    n = 2 ** bits - 1
    t = np.tanh(x)
    m = float(np.max(np.abs(t)))
    # The published expression divides by max|tanh w|; an all-zero slice takes the ratio as 0.
    ratio = t / (2.0 * m) if m > 0 else np.zeros_like(t)
    i = np.rint(n * (ratio + 0.5))  # round half to even, as tf.round / torch.round
    values = 2.0 * (i / n) - 1.0
    codes = i - 2 ** (bits - 1)
    edges = (np.arange(n) + 0.5) / n - 0.5
    thresholds = np.arctanh(2.0 * m * edges) if m > 0 else np.zeros(n)
    return codes, 2.0 / n, np.nan, values, {"tanh_max": m, "thresholds": thresholds}


def dorefa(w, bits, axis=None):
    """DoReFa-Net weights (Zhou et al. 2016) for k ≥ 2, docs/theory.md §6.

    ``w_q = 2·quantize_k(tanh(w)/(2·max|tanh w|) + ½) − 1`` with
    ``quantize_k(x) = round((2^k − 1)·x)/(2^k − 1)``, round half to even. The output lies in
    [−1, 1] whatever the scale of ``w`` (DoReFa relies on the following layers to absorb the
    scale), and it is not rescaled here. The values are exactly the ``midrise`` lattice
    (2^k levels) with ``alpha = 2/(2^k − 1)``: ``codes = round(...) − 2^(k−1)``. The
    thresholds are uniform in ``tanh(w)``, not in ``w``, so ``step`` is NaN;
    ``info["thresholds"]`` lists the 2^k − 1 thresholds in weight units and
    ``info["tanh_max"]`` the normaliser ``max|tanh w|``.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int
        2 … 16 (DoReFa's 1-bit rule, ``E|w|·sign(w)``, is BWN: use :func:`bwn`).
    axis : int, optional
        Quantize each slice along this axis on its own (its own ``max|tanh w|``).

    Returns
    -------
    Quantized
        ``method="dorefa"``.

    Examples
    --------
    >>> q = dorefa([-1.0, -0.2, 0.1, 0.5], 2)
    >>> q.codes.tolist(), [round(v, 6) for v in q.values.tolist()]
    ([-2, -1, 0, 0], [-1.0, -0.333333, 0.333333, 0.333333])
    """
    bits = _bits(bits, 2, V.MAX_BITS,
                 "an integer in [2, 16] for DoReFa (its 1-bit rule E|w|·sign(w) is BWN)")
    return _run("dorefa", "midrise", bits, w, axis, _dorefa_row)


# --- abs-max symmetric integer -------------------------------------------------------------

def _absmax_row(x, bits, narrow_range):
    half = 2 ** (bits - 1)
    if narrow_range:
        s = float(np.max(np.abs(x))) / (half - 1)
        codes = _lattice_codes(x, s, bits, True)
    else:
        s = float(np.max(np.abs(x))) / (half - 0.5)
        q = x / s if s > 0 else np.zeros_like(x)
        c = np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5), -half, half - 1)
        codes = c.astype(code_dtype(bits))
    return codes, s, s, s * codes.astype(np.float64), {"narrow_range": narrow_range}


def absmax(w, bits, axis=None, narrow_range=True):
    """Symmetric integer quantization with the abs-max scale, docs/theory.md §6 and §7.1.

    ``narrow_range=True`` (Brevitas' ``Int8WeightPerTensorFloat`` / ``...PerChannelFloat``
    weights): ``s = max|w|/(2^(k−1) − 1)``, midtread codes ``c = round(w/s)`` in
    ``−(2^(k−1) − 1) … 2^(k−1) − 1`` (0 exact, the grid symmetric), lattice ``midtread``
    (2^k − 1 levels). ``narrow_range=False`` (torch.ao ``MinMaxObserver`` /
    ``PerChannelMinMaxObserver`` with a symmetric qscheme, torchao ``MappingType.SYMMETRIC``):
    ``s = max|w|/((qmax − qmin)/2) = max|w|/(2^(k−1) − ½)``, codes in
    ``−2^(k−1) … 2^(k−1) − 1``, lattice ``midtread-full`` (2^k levels; the code −2^(k−1) is
    used only when the largest ``|w|`` is negative). ``w_q = s·c``, ``alpha = step = s``, no
    refit. Rounding is half away from zero; ``torch.round`` rounds half to even, which
    differs only on exact ties ``w/s = j + ½``.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int
        2 … 16 (k = 1 leaves only the level 0).
    axis : int, optional
        Per-channel scales along this axis.
    narrow_range : bool
        True: codes ±(2^(k−1) − 1) (Brevitas); False: full range (torch.ao, torchao).

    Returns
    -------
    Quantized
        ``method="absmax"``; an all-zero slice gets ``s = 0`` and values 0.

    Examples
    --------
    >>> q = absmax([0.3, -1.5, 0.7, 0.1], 3)
    >>> q.codes.tolist(), float(q.alpha), q.values.tolist()
    ([1, -3, 1, 0], 0.5, [0.5, -1.5, 0.5, 0.0])
    >>> q = absmax([0.3, -1.75, 0.7, 0.1], 3, narrow_range=False)   # s = 1.75/3.5
    >>> q.codes.tolist(), float(q.alpha), q.lattice
    ([1, -4, 1, 0], 0.5, 'midtread-full')
    """
    bits = V.bits(bits, "midtread")
    if not isinstance(narrow_range, (bool, np.bool_)):
        V.fail("narrow_range", "True or False", repr(narrow_range), TypeError)
    lattice = "midtread" if narrow_range else "midtread-full"
    return _run("absmax", lattice, bits, w, axis, _absmax_row, narrow_range=bool(narrow_range))


# --- ACIQ ----------------------------------------------------------------------------------

def _aciq_row(x, bits):
    clip = ACIQ_GAUSSIAN[bits] * float(np.std(x))
    delta = 2.0 * clip / 2 ** bits
    codes = _lattice_codes(x, delta, bits, False)
    return codes, delta, delta, delta * (codes + 0.5), {"clip": clip}


def aciq(w, bits, axis=None):
    """ACIQ (Banner et al. 2019) with its Gaussian clipping constants, docs/theory.md §6.

    Clip at ``±c_k·σ`` (``σ`` the population std of ``w``, ddof = 0; ``c_k`` =
    :data:`ACIQ_GAUSSIAN`) and split the clip range into 2^k equal bins reconstructed at
    their midpoints — the grid whose noise ``Δ²/12`` with ``Δ = 2c_kσ/2^k`` the constants were
    derived from. That is the ``midrise`` lattice (2^k levels) with ``alpha = step = Δ``,
    codes ``clip(floor(w/Δ), −2^(k−1), 2^(k−1) − 1)``, top level ``c_kσ − Δ/2``. No α refit.
    ``info["clip"] = c_k·σ``.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int
        2 … 8 (the range of the published constants).
    axis : int, optional
        Per-channel σ along this axis.

    Returns
    -------
    Quantized
        ``method="aciq"``. A constant slice has σ = 0, hence Δ = 0 and values 0 (the
        published rule has no fallback).

    Examples
    --------
    >>> q = aciq([-2.0, -1.0, 0.0, 1.0, 2.0], 2)
    >>> q.codes.tolist(), round(float(q.step), 6), round(q.info["clip"], 6)
    ([-2, -1, 0, 0, 1], 1.209153, 2.418305)
    """
    bits = _bits(bits, 2, 8,
                 "an integer in [2, 8] for ACIQ (its Gaussian clip constants cover 2-8 bits)")
    return _run("aciq", "midrise", bits, w, axis, _aciq_row)


# --- VecQ codes with the norm-matched α ----------------------------------------------------

def _normalpha_row(x, bits):
    q = quantize(x, bits, method="param")
    v = q.codes.astype(np.float64) + 0.5
    sums = pair_sums(x, v, 0.0)
    alpha = float(np.sqrt(sums[0]) / np.sqrt(sums[2]))
    return q.codes, alpha, float(q.step), alpha * v, {"lsq_alpha": float(q.alpha)}


def vecq_normalpha(w, bits, axis=None):
    """VecQ codes with the norm-matched scale ``α = ‖w‖/‖v‖`` (docs/theory.md §6).

    The codes are those of ``quantize(w, bits, method="param")`` (midrise, ``step = λ_k·σ``);
    only α differs: the later PyTorch port matches the norms instead of projecting, which is
    not DQL-optimal (``α = ‖w‖/‖v‖ ≥ ⟨w,v⟩/‖v‖² = α*``). ``info["lsq_alpha"]`` holds α*.
    Lattice ``midrise``, 2^k levels.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int
        1 … 16.
    axis : int, optional
        Per-channel σ and α along this axis.

    Returns
    -------
    Quantized
        ``method="vecq_normalpha"``.

    Examples
    --------
    >>> q = vecq_normalpha([0.1, -0.4, 0.25, 0.9], 2)
    >>> q.codes.tolist(), round(float(q.alpha), 6), round(q.info["lsq_alpha"], 6)
    ([0, -1, 0, 1], 0.589491, 0.575)
    """
    bits = V.bits(bits)
    return _run("vecq_normalpha", "midrise", bits, w, axis, _normalpha_row)


# --- Lloyd–Max -----------------------------------------------------------------------------

def _nearest(levels, x):
    """Index of the nearest level (ascending ``levels``; ties go up) for each ``x``."""
    return np.searchsorted(0.5 * (levels[1:] + levels[:-1]), x, side="right")


def _lloyd(xs, cs, levels, max_iter):
    """Lloyd iterations on sorted ``xs`` with prefix sums ``cs`` (of ``xs − shift``).

    Returns ``(levels − shift, iterations, converged)``; converged means the partition did not
    change, i.e. the levels are a fixed point (centroids of their own nearest-neighbour cells).
    """
    n = xs.size

    def bounds(lv):
        inner = np.searchsorted(xs, 0.5 * (lv[1:] + lv[:-1]), side="left")
        return np.concatenate(([0], inner, [n]))

    b = bounds(levels)
    for it in range(1, max_iter + 1):
        count = np.diff(b)
        full = count > 0  # an empty cell keeps its level (it stays between its neighbours)
        levels = levels.copy()
        levels[full] = (cs[b[1:]][full] - cs[b[:-1]][full]) / count[full]
        new = bounds(levels)
        if np.array_equal(new, b):
            return levels, it, True
        b = new
    return levels, max_iter, False


def _lloyd_row(x, bits, init, max_iter):
    n_levels = 2 ** bits
    xs = np.sort(x)
    shift = float(xs[xs.size // 2])  # centre the prefix sums to keep the differences exact
    xs = xs - shift
    cs = np.concatenate(([0.0], np.cumsum(xs)))
    starts = {}
    named = init if isinstance(init, str) else "array"
    if named == "array":
        starts["array"] = init - shift
    if named in ("auto", "uniform"):
        q = quantize(x, bits, method="param")
        starts["uniform"] = float(q.alpha) * lattice_levels(bits) - shift
    if named in ("auto", "quantile"):
        edges = (np.arange(n_levels + 1) * xs.size) // n_levels
        count = np.diff(edges)
        sums = cs[edges[1:]] - cs[edges[:-1]]
        fill = xs[np.minimum(edges[:-1], xs.size - 1)]
        starts["quantile"] = np.where(count > 0, sums / np.maximum(count, 1), fill)
    best = None
    for name, start in starts.items():
        levels, iters, converged = _lloyd(xs, cs, start, max_iter)
        idx = _nearest(levels, xs)
        dql = float(np.sum((xs - levels[idx]) ** 2))
        if best is None or dql < best[0]:
            best = (dql, name, levels + shift, iters, converged)
    _, name, levels, iters, converged = best
    idx = _nearest(levels, x)
    info = {"levels": levels, "iterations": iters, "converged": converged, "init": name}
    return idx - n_levels // 2, np.nan, np.nan, levels[idx], info


def lloyd_max(w, bits, axis=None, init="auto", max_iter=10_000):
    """Lloyd–Max: the MSE-optimal 2^k-level scalar quantizer (1-D k-means), for context.

    Not a lattice: 2^k free levels, each weight mapped to its nearest level, iterated
    (Lloyd 1957/1982, Max 1960) until the partition stops changing — then every level is the
    mean of its cell and every threshold the midpoint of its levels. Any 2^k-level scalar
    quantizer, uniform or not, has at least the DQL of the global optimum, so this gives a
    floor for context. Lloyd's iteration never increases the DQL but can stop in a local
    optimum on arbitrary data (for a log-concave density such as the Gaussian the optimum is
    unique). Lattice ``nonuniform``; ``alpha`` and ``step`` are NaN.

    Each slice is sorted once; every iteration then costs one ``searchsorted`` of the 2^k − 1
    thresholds and prefix-sum differences, independent of N.

    Parameters
    ----------
    w : array_like
        Weights, any shape; never modified.
    bits : int
        1 … 16 (2^k levels).
    axis : int, optional
        Quantize each slice along this axis on its own.
    init : {"auto", "uniform", "quantile"} or array_like, default "auto"
        Starting levels. ``"uniform"``: the levels ``α*·v`` of ``quantize(w, bits)`` (the
        Gaussian-optimal uniform step), so the result's DQL is never above VecQ-param's;
        ``"quantile"``: the means of 2^k equal-count cells of the sorted weights; ``"auto"``
        runs both and keeps the lower DQL; an ascending array of 2^k levels starts every
        slice there (the result's DQL is then never above that quantizer's).
    max_iter : int, default 10000
        Upper bound on the Lloyd iterations per start.

    Returns
    -------
    Quantized
        ``method="lloyd_max"``; ``codes`` are level indices minus 2^(k−1);
        ``info["levels"]`` the ascending level table (per slice with ``axis``),
        ``info["iterations"]``, ``info["converged"]`` and ``info["init"]`` (the start kept);
        per tensor, ``level_set`` is that table as a codebook (:func:`vecq_ref.lattice.level_set`)
        when its levels are distinct, which ``quantize``/``search_step`` take as ``lattice=``.

    Examples
    --------
    >>> q = lloyd_max([0.0, 1.0, 2.0, 10.0, 11.0, 12.0], 1)
    >>> q.codes.tolist(), q.info["levels"].tolist(), q.values.tolist()
    ([-1, -1, -1, 0, 0, 0], [1.0, 11.0], [1.0, 1.0, 1.0, 11.0, 11.0, 11.0])
    """
    bits = V.bits(bits)
    max_iter = V.integer(max_iter, "max_iter", 0)
    if isinstance(init, str):
        init = V.choice(init, "init", LLOYD_INITS)
    else:
        arr = V.as_array(init, "init")
        if arr.dtype.kind not in "fiu" or arr.shape != (2 ** bits,):
            V.fail("init", f"one of {LLOYD_INITS} or an array of 2**bits = {2 ** bits} levels",
                   f"shape {arr.shape}, dtype {arr.dtype}", TypeError
                   if arr.dtype.kind not in "fiu" else ValueError)
        init = arr.astype(np.float64)
        if not np.all(np.isfinite(init)) or np.any(np.diff(init) < 0):
            V.fail("init", "finite levels in ascending order", init.tolist())
    q = _run("lloyd_max", "nonuniform", bits, w, axis, _lloyd_row, init=init,
             max_iter=max_iter)
    table = np.asarray(q.info["levels"])
    if table.ndim == 1 and np.all(np.diff(table) > 0):
        # Per tensor the level table is a codebook of docs/theory.md §2.1: searching its exact
        # scale (quantize(w, method="exact", codebook=q.level_set)) can only lower the DQL.
        return replace(q, level_set=level_set(codebook=table))
    return q


#: Every baseline by name.
BASELINES = {"bwn": bwn, "twn": twn, "ul2q": ul2q, "dorefa": dorefa, "absmax": absmax,
             "aciq": aciq, "vecq_normalpha": vecq_normalpha, "lloyd_max": lloyd_max}

__all__ = ["bwn", "twn", "ul2q", "dorefa", "absmax", "aciq", "vecq_normalpha", "lloyd_max",
           "BASELINES", "ACIQ_GAUSSIAN", "UL2Q_TABLES"]
