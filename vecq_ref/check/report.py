"""Whole-model reports: VecQ-param, a search method and the paper expression on every tensor.

:func:`model_report` reads a ``.safetensors`` file (or a sharded checkpoint: its
``model.safetensors.index.json`` or the folder of shards), an ``.npz`` or a ``.npy`` one tensor
at a time through :func:`vecq_ref.io.open_tensors` (memory-mapped where the format allows), so
memory stays near the largest tensor (smaller ones are quantized a few at once on threads, at
most ``2^23`` elements together: ``_Runner``), and returns a :class:`ModelReport` with one row
per (weight tensor, bitwidth): shape, σ, excess kurtosis, relative DQL of ``param``, of
``method`` (default ``exact``) and of ``paper``, the gap ``gap = param − method`` (absolute, in
relative-DQL units) and ``gap_pct = 100·(param − method)/param`` (how much of VecQ-param's loss
the method removes), and the time spent; plus size-weighted totals per bitwidth
(``Σ DQL / Σ ‖w‖²``). Weight tensors are the float arrays with at least two dimensions
(``all_tensors=True`` takes every float array with two or more elements). bf16, fp8 (E4M3,
E5M2) and float16 tensors are quantized as their (exact) float32 values and the row keeps the
source ``dtype``. Every other tensor is listed in ``skipped`` with its name and the reason:
integer or boolean, empty, 1-D, non-finite values (NaN/Inf), a dtype without NumPy values.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validation as V
from .._format import format_table
from ..io import UnsupportedDtype, is_low_precision, open_tensors
from ..lattice import code_dtype, level_set
from ..quantize import METHODS, _quantize_loss, quantize

_CHUNK = 1 << 20  # elements per block: float64 temporaries stay at 8 MiB whatever the tensor


def _blocks(x, k=0):
    for i in range(0, x.size, _CHUNK):
        b = np.asarray(x[i:i + _CHUNK], dtype=np.float64)
        yield np.ldexp(b, k) if k else b


def _moments(w, k=0):
    """``(n, mean, Σd², Σd⁴, Σw²)`` of ``2**k·w`` with ``d = 2**k·w − mean``, in float64, block
    by block.

    Two passes over fixed blocks of the flattened tensor, summed in block order, so memory
    is a few blocks (not copies of the tensor) and the result does not depend on threads.
    ``k`` (:func:`vecq_ref._validation.scale_exponent`) keeps squares and fourth powers of
    weights near 1e-310 or 1e300 in range (the fourth powers of tiny deviations may still
    underflow: then the kurtosis is NaN).
    """
    x = np.asarray(w).reshape(-1)
    n = x.size
    total = sww = 0.0
    for b in _blocks(x, k):
        total += float(np.sum(b))
        sww += float(np.dot(b, b))
    mean = total / n
    s2 = s4 = 0.0
    for b in _blocks(x, k):
        d2 = np.square(b - mean)
        s2 += float(np.sum(d2))
        s4 += float(np.dot(d2, d2))
    return n, mean, s2, s4, sww


def tensor_stats(w):
    """``(σ, excess kurtosis)`` of the flattened tensor in float64 (kurtosis NaN when σ = 0).

    Computed block by block (:data:`_CHUNK` elements), so it needs no copy of the tensor, at
    a power-of-two scale where nothing overflows or underflows (so σ of weights near 1e-310
    or 1e300 is theirs, not 0 or inf).

    >>> s, k = tensor_stats([1.0, -1.0, 1.0, -1.0])
    >>> s, k
    (1.0, -2.0)
    """
    arr = np.asarray(w)
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float64)
    k = V.scale_exponent(arr) if arr.size else 0
    n, _, s2, s4, _ = _moments(arr, k)
    return _sigma_kurtosis(n, s2, s4, k)


def _sigma_kurtosis(n, s2, s4, k=0):
    """σ of ``w`` and its excess kurtosis from the moments of ``2**k·w``."""
    m2 = s2 / n
    if m2 == 0:
        return 0.0, float("nan")
    kurt = (s4 / n) / (m2 * m2) - 3.0 if s4 > 0 else float("nan")
    return float(np.ldexp(m2 ** 0.5, -k)), kurt


class _Total:
    """A non-negative sum of terms ``x·2**e`` of any exponents (the DQL and ‖w‖² of tensors
    near 1e-310 and near 1e300 in one total), kept as ``m·2**e`` with ``m`` in [½, 1).

    Terms are added in call order (file order), so the total never depends on threads.
    """

    def __init__(self):
        self.m, self.e = 0.0, 0

    def add(self, x, e):
        if not x > 0:
            return
        mx, ex = math.frexp(x)
        ex += e
        if self.m == 0:
            self.m, self.e = mx, ex
            return
        top = max(self.e, ex)
        m, de = math.frexp(math.ldexp(self.m, self.e - top) + math.ldexp(mx, ex - top))
        self.m, self.e = m, top + de

    def __truediv__(self, other):
        if other.m == 0:
            return 0.0
        return math.ldexp(self.m / other.m, self.e - other.e)


def _skip_reason(arr, all_tensors, axis, group_size=None):
    """Why ``arr`` is not reported (None: it is), in a few words for the skipped list."""
    dt, shape = arr.dtype, tuple(arr.shape)
    if not (dt.kind == "f" or is_low_precision(dt)):
        kind = {"b": "boolean", "i": "integer", "u": "integer", "c": "complex"}.get(
            dt.kind, "non-numeric")
        return f"{kind} {dt} {shape}, not weights"
    if arr.size == 0:
        return f"empty {dt} {shape}"
    if arr.size < 2 or not (all_tensors or arr.ndim >= 2):
        return f"{dt} {shape}: {arr.ndim}-D (--all reports it)" if arr.size >= 2 else (
            f"{dt} {shape}: a single value")
    if axis is not None and not -arr.ndim <= axis < arr.ndim:
        return f"no axis {axis} in {shape}"
    if group_size is not None and shape[-1] % group_size:
        return f"last axis {shape[-1]} of {shape} not a multiple of --group-size {group_size}"
    return None


def _as_weights(arr):
    """Float values to quantize: bf16/fp8/fp16 as float32 (exact), float32/64 as stored."""
    if is_low_precision(arr.dtype) or (arr.dtype.kind == "f" and arr.dtype.itemsize < 4):
        return arr.astype(np.float32)
    return arr


@dataclass
class ModelReport:
    """Rows per (tensor, bits), totals per bits, the tensors skipped and why."""

    path: str
    bits: list
    method: str
    lattice: str
    axis: int | None
    rows: list
    totals: list
    skipped: list
    seconds: float
    group_size: int | None = None
    level_set: str | None = None
    weighted: bool = False

    def as_dict(self):
        return {"file": self.path, "bits": self.bits, "method": self.method,
                "lattice": self.lattice, "level_set": self.level_set, "axis": self.axis,
                "group_size": self.group_size, "weighted": self.weighted,
                "rows": self.rows, "totals": self.totals, "skipped": self.skipped,
                "seconds": self.seconds}

    @property
    def granularity(self):
        """``"per tensor"``, ``"axis=0"`` or ``"groups of 32"``."""
        if self.group_size is not None:
            return f"groups of {self.group_size}"
        return "per tensor" if self.axis is None else f"axis={self.axis}"

    @property
    def columns(self):
        m = self.method
        if self.level_set is not None or self.weighted:  # param, paper: VecQ's unweighted
            return ["name", "shape", "dtype", "bits", "sigma", "kurtosis", m, "time"]
        cols = ["name", "shape", "dtype", "bits", "sigma", "kurtosis", "param"]
        if m != "param":
            cols.append(m)
        return cols + ["paper", "gap_pct", "time"]

    @property
    def left_out(self):
        """One line saying which of the usual columns (param, paper, gap_pct) are left out and
        why (``--weights``, or a level set other than VecQ's), or ``""`` when none is."""
        gone = [c for c in ("param", "paper", "gap_pct") if c not in self.columns]
        if not gone:
            return ""
        why = ("unweighted rules (--weights)" if self.weighted else
               "VecQ's midrise/midtread only")
        what = "VecQ-param and the paper expression" if "param" in gone else "the paper expression"
        # One line within 100 characters (the longest is 99).
        return f"left out: {', '.join(gone)} ({what}: {why})"

    def _cells(self, r):
        m = self.method
        out = {"name": r["name"], "shape": "x".join(map(str, r["shape"])),
               "dtype": r.get("dtype"), "bits": r["bits"],
               "sigma": r.get("sigma"), "kurtosis": r.get("kurtosis"),
               "param": r["relative_dql_param"], m: r[f"relative_dql_{m}"],
               "paper": r["relative_dql_paper"], "gap_pct": _shown_gap_pct(r, m),
               "time": r["time"]}
        for m_ in r.get("errors", {}):
            out[m_] = "error"
        return {k: ("" if v is None else v) for k, v in out.items()}

    def __str__(self):

        body = [self._cells(r) for r in self.rows]
        body += [self._cells({**t, "name": "TOTAL", "shape": [t["size"]], "sigma": None,
                              "kurtosis": None}) for t in self.totals]
        gap = ("" if self.level_set is not None or self.weighted
               else f"gap_pct = 100·(param − {self.method})/param; ")
        weighted = ", h-weighted (--weights)" if self.weighted else ""
        lines = [f"{self.path}: relative DQL{weighted}, {self.level_set or self.lattice}, "
                 f"{self.granularity}; {gap}time in s",
                 format_table(body, self.columns, "{:.5g}")]
        left = self.left_out
        if left:
            lines.append(left)
        for r in self.rows:
            for m, why in r.get("errors", {}).items():
                lines.append(f"error: {m} on tensor {r['name']!r} at --bits {r['bits']}: "
                             f"{why}")
        if self.skipped:
            vectors = [s["name"] for s in self.skipped if s["why"].endswith("(--all reports it)")]
            others = [s for s in self.skipped if s["name"] not in set(vectors)]
            parts = [f"{s['name']} ({s['why']})" for s in others]
            if vectors:
                parts.append(f"{len(vectors)} 1-D tensors (--all reports them)")
            lines.append(f"skipped {len(self.skipped)}: " + "; ".join(parts))
        return "\n".join(lines)

    def plot(self, ax=None):
        """Total relative DQL against bits, one line per method; returns the lines drawn.

        Each method has its own colour, marker and line style and its display name
        (:mod:`vecq_ref.names`); a note under the axes names methods whose lines coincide.
        """
        from ..names import QUANTITIES, method_name
        from ..plotting import _note_coincident, _styled_plot

        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.gca()
        lines, drawn = [], []
        bits = [t["bits"] for t in self.totals]
        for m in dict.fromkeys(["param", self.method, "paper"]):
            ys = [t[f"relative_dql_{m}"] for t in self.totals]
            if all(y is not None for y in ys) and ys:
                lines += _styled_plot(ax, bits, ys, len(lines),
                                      label=method_name(m, self.lattice))
                drawn.append((lines[-1].get_label(), bits, ys))
        ax.set_yscale("log")
        ax.set_xticks(bits)
        ax.set_xlabel(QUANTITIES["bits"])
        ax.set_ylabel(QUANTITIES["relative_dql_total"])
        ax.set_title(Path(self.path).name)
        ax.legend(fontsize="small")
        _note_coincident(ax, drawn, True)
        return lines


def _progress(total, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="tensor", file=sys.stderr)


def model_report(path, bits=(2, 3, 4, 5, 6, 7, 8), method="exact", lattice=None,
                 axis=None, all_tensors=False, progress=None, workers=None, group_size=None, *,
                 signed_scale=False, zero_point=None, codebook=None, weights=None):
    """Relative DQL of VecQ-param, ``method`` and the paper expression on every tensor.

    Parameters
    ----------
    path : str or Path
        ``.safetensors`` (needs the ``io`` extra: safetensors, ml_dtypes), a
        ``model.safetensors.index.json`` or a folder of shards, ``.npz`` or ``.npy``.
    bits : sequence of int
    method : {"exact", "grid", "alternating", "param", "paper"}
        The method compared with VecQ-param (``gap``, ``gap_pct`` columns).
    lattice : {"midrise", "midtread", "midtread-full"}, optional
        ``paper`` is reported for midrise only. ``None``: midrise (``"midtread-full"`` with
        a zero point).
    signed_scale, zero_point, codebook
        Another level set (:func:`vecq_ref.level_set`): then only ``method`` is reported
        (``param`` and ``paper`` exist on midrise and midtread only) and ``level_set`` names
        it.
    axis : int, optional
        Per-channel along this axis (tensors with fewer dimensions are skipped).
    all_tensors : bool
        Also report 1-D float tensors (biases, norms).
    group_size : int, optional
        Quantize every group of this many contiguous weights along the last axis on its own
        (as :func:`vecq_ref.quantize`); tensors whose last axis it does not divide are
        skipped with the reason. Not with ``axis``.
    progress : bool, optional
        Show a tqdm bar; default: only when stderr is a terminal.
    weights : array_like, optional
        Importance weights ``h ≥ 0`` (validated as in :func:`vecq_ref.quantize`): one array
        broadcast to every tensor (one per element, or one per input column: the last
        axis); a tensor it does not broadcast to is skipped with the reason. Then only
        ``method`` (a search) is reported, minimising and measuring the h-weighted loss,
        and the totals are ``Σ DQL_h / Σ h·w²``.
    workers : int, optional
        Tensors quantized at once (default: Numba's thread count; 1: one after another).
        Rows, totals and skipped list are the same for any value; only ``time`` differs.

    Returns
    -------
    ModelReport

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> f = os.path.join(d, "m.npz")
    >>> rng = np.random.default_rng(0)
    >>> np.savez(f, fc=rng.standard_normal((8, 16)), bias=np.zeros(8))
    >>> r = model_report(f, bits=[2], method="param")
    >>> [row["name"] for row in r.rows], r.skipped[0]["name"]
    (['fc'], 'bias')
    """
    method = V.choice(method, "method", METHODS)
    bits = list(bits)
    if not bits:
        V.fail("bits", "at least one bitwidth", "[]")
    sets = [level_set(lattice, b, signed_scale=signed_scale, zero_point=zero_point,
                      codebook=codebook) for b in bits]
    bits = [ls.bits for ls in sets]
    extra = {}  # the level set's keywords when it is not VecQ's own
    label = None
    if not sets[0].vecq:
        from ..names import level_set_name

        extra = {"lattice": sets[0].lattice, "signed_scale": bool(signed_scale),
                 "zero_point": zero_point, "codebook": codebook}
        label = level_set_name(sets[0])
        if method in ("param", "paper"):
            V.fail("method", f"a search method on the level set {label!r} (param and paper are "
                   "VecQ's midrise/midtread only)", repr(method))
    lattice = sets[0].lattice
    if weights is not None:
        h = V.as_array(weights, "weights")
        h = V.importance(h, h.shape, "weights")
        if method in ("param", "paper"):
            V.fail("method", "a search method with `weights` (param and paper are VecQ's "
                   "unweighted rules)", repr(method))
        extra = {**(extra or {"lattice": lattice}), "weights": h}
    if axis is not None:
        axis = V.integer(axis, "axis")
    if group_size is not None:
        group_size = V.integer(group_size, "group_size", 1)
        if axis is not None:
            V.fail("axis", "None when `group_size` is given (groups run along the last axis)",
                   axis)
    if workers is not None:
        workers = V.integer(workers, "workers", 1)
    rows, skipped = [], []
    acc = {b: {"sww": _Total(), "size": 0, "time": 0.0, "failed": set(), "param": _Total(),
               method: _Total(), "paper": _Total()} for b in bits}
    start = time.perf_counter()
    with open_tensors(path) as (keys, get), _Runner(workers) as run:
        if not keys:
            raise ValueError(f"`input` file {path} holds no tensors")
        bar = _progress(len(keys), progress)

        def collect(key, result):
            # In file order, on this thread: the rows, the bar and the sums of ``acc``.
            if result is not None:
                tensor_rows, parts = result
                rows.extend(tensor_rows)
                _accumulate(acc, parts)
            if bar is not None:
                bar.set_postfix_str(key[-30:])
                bar.update(1)

        try:
            for key in keys:
                try:
                    arr = get(key)
                    why = _skip_reason(arr, all_tensors, axis, group_size)
                    if why is None and weights is not None:
                        why = _weights_fit(extra["weights"], arr.shape)
                except UnsupportedDtype as exc:
                    arr, why = None, str(exc)
                except (ValueError, TypeError, MemoryError) as exc:
                    raise _located(exc, path, key) from exc
                if why is None:
                    source = str(arr.dtype)
                    arr = _as_weights(arr)
                    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                    if bad:
                        why = f"{bad} non-finite values (NaN or Inf)"
                if why is not None:
                    skipped.append({"name": key, "why": why})
                    run.submit(key, 0, None, collect)
                else:
                    run.submit(key, arr.size, lambda a=arr, k=key, s=source: _tensor_rows(
                        k, a, bits, method, lattice, axis, s, path, group_size, extra),
                               collect)
                del arr
            run.drain(collect)
        finally:
            if bar is not None:
                bar.close()
    totals = []
    for b in bits:
        a = acc[b]
        if a["size"] == 0:
            continue
        # A method that failed on some tensor has no total (it would leave that tensor out).
        rel = {m: (None if m in a["failed"] or (extra and m != method) else a[m] / a["sww"])
               for m in ("param", method, "paper")}
        paper_ok = lattice == "midrise" and not extra
        totals.append({"bits": b, "size": a["size"], "relative_dql_param": rel["param"],
                       f"relative_dql_{method}": rel[method],
                       "relative_dql_paper": rel["paper"] if paper_ok else None,
                       **_gap(rel["param"], rel[method]), "time": a["time"]})
    return ModelReport(str(path), bits, method, lattice, axis, rows, totals, skipped,
                       time.perf_counter() - start, group_size, label, weights is not None)


def _weights_fit(h, shape):
    """Why the importance weights ``h`` cannot weight a tensor of ``shape`` (None: they can)."""
    try:
        if np.broadcast_shapes(h.shape, tuple(shape)) == tuple(shape):
            return None
    except ValueError:
        pass
    return f"--weights of shape {h.shape} do not broadcast to {tuple(shape)}"


def gap_rounding_bound(n, param, other):
    """Largest ``|param − other|`` (relative DQL) that float64 rounding alone can produce.

    Each relative DQL is a float64 sum over ``n`` elements, divided by ``‖w‖²`` (another such
    sum); recursive summation of ``n`` non-negative terms errs by at most ``γ_n ≈ n·u``
    relative (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2), ``u = ε/2``.
    Two such values, the division and the step-correction terms of ``loss.dql_at`` stay
    within ``4·n·ε·max(param, other)`` (a factor ≥ 2 of margin).
    """
    return 4.0 * n * np.finfo(np.float64).eps * max(abs(param), abs(other))


def _shown_gap_pct(r, method):
    """``gap_pct`` as printed: a negative gap within the rounding bound is shown as 0.

    ``exact`` is the minimum over all steps (docs/theory.md §4.3), so ``param − exact`` cannot be
    negative in exact arithmetic; a negative value smaller than :func:`gap_rounding_bound`
    is the two sums' rounding (seen: −3.8e-13 % on a 768×768 pooler) and is printed as 0.
    For the other methods it is zero within what float64 can tell. Anything larger is shown
    as computed; ``as_dict`` (JSON) always keeps the computed value.
    """
    g, param, other = r["gap_pct"], r["relative_dql_param"], r[f"relative_dql_{method}"]
    if g is None or other is None or not g < 0:
        return g
    n = r["size"] if "size" in r else int(np.prod(r["shape"]))
    if abs(param - other) <= gap_rounding_bound(n, param, other):
        return 0.0
    return g


def _gap(param, other):
    if param is None or other is None:
        return {"gap": None, "gap_pct": None}
    return {"gap": param - other,
            "gap_pct": 100.0 * (param - other) / param if param > 0 else 0.0}


def _located(exc, path, key):
    """``exc`` (same type) with the file and the tensor named, where its message lacks them."""
    msg = str(exc) or type(exc).__name__
    where = [] if str(path) in msg else [f"`input` file {path}"]
    if repr(key) not in msg:
        where.append(f"tensor {key!r}")
    return type(exc)(": ".join([*where, msg]))


def _tensor_rows(key, arr, bits, method, lattice, axis, source, path="input", group_size=None,
                 extra=None):
    try:
        return _rows_of(key, arr, bits, method, lattice, axis, source, group_size, extra)
    except (ValueError, TypeError, MemoryError) as exc:
        raise _located(exc, path, key) from exc


def _general_loss(arr, bits, method, k, **options):
    """``(loss, k)`` of ``quantize(arr, bits, method, **options)`` (groups, other level sets)
    as :func:`vecq_ref.quantize._quantize_loss` gives it: at the working scale ``2**k·w`` (a
    power of two: the same codes, every squared loss times ``2**(2k)``), except ``paper``,
    whose absolute 1e-7 makes its codes depend on the scale (computed as given, ``k = 0``)."""
    if options.get("codebook") is not None:
        bits = None
    if method == "paper" or not k:
        return quantize(arr, bits, method=method, **options).loss, 0
    scaled = np.ldexp(np.asarray(arr, dtype=np.float64), k)
    return quantize(scaled, bits, method=method, **options).loss, k


def _rows_of(key, arr, bits, method, lattice, axis, source, group_size=None, extra=None):
    """The rows of one tensor and, per bitwidth, its parts of the totals (added to ``acc``
    by :func:`_accumulate` in file order, so the totals never depend on the threads).

    Only the losses are computed (:func:`vecq_ref.quantize._quantize_loss`: no values, one
    codes buffer for every call), at the working scale ``2**k·w`` of the tensor, so σ and the
    totals of weights near 1e-310 or 1e300 are theirs. A method that fails on this tensor
    (a ValueError: e.g. values beyond the float32 range) leaves its cell empty with the
    reason in the row's ``errors``; the other cells and tensors are reported.
    """
    k = V.scale_exponent(arr)
    n, _, s2, s4, sww = _moments(arr, k)
    sigma, kurt = _sigma_kurtosis(n, s2, s4, k)
    if extra and extra.get("weights") is not None:  # the totals' Σ h·w², at 2**k·w
        x = np.ldexp(np.asarray(arr, dtype=np.float64), k)
        sww = float(np.sum(np.broadcast_to(extra["weights"], arr.shape) * np.square(x)))
    codes = np.empty(arr.size, dtype=code_dtype(max(bits)))
    out, parts = [], []
    for b in bits:
        t0 = time.perf_counter()
        rel, dql, errors = {}, {}, {}
        for m in dict.fromkeys(("param", method, "paper")):
            rel[m] = None
            if (m == "paper" and lattice != "midrise") or (extra and m != method):
                continue
            try:
                with np.errstate(all="ignore"):
                    if group_size is None and not extra:
                        loss, kq = _quantize_loss(arr, b, method=m, lattice=lattice,
                                                  axis=axis, codes=codes)
                    else:
                        loss, kq = _general_loss(arr, b, m, k, axis=axis,
                                                 group_size=group_size,
                                                 **(extra or {"lattice": lattice}))
            except ValueError as exc:
                errors[m] = str(exc)
                continue
            except MemoryError as exc:
                errors[m] = f"out of memory ({exc or 'MemoryError'})"
                continue
            rel[m] = float(loss.relative_dql)
            # Σ DQL of this tensor at the scale of ``sww`` (both 2**(2k) times w's units).
            dql[m] = (float(loss.dql), -2 * kq)
        dt = time.perf_counter() - t0
        parts.append((b, (sww, -2 * k), arr.size, dt, dql, set(errors)))
        row = {"name": key, "shape": list(arr.shape), "dtype": source,
               "bits": b, "sigma": sigma, "kurtosis": None if np.isnan(kurt) else kurt,
               "relative_dql_param": rel["param"], f"relative_dql_{method}": rel[method],
               "relative_dql_paper": rel["paper"], **_gap(rel["param"], rel[method]),
               "time": dt}
        if errors:
            row["errors"] = errors
        out.append(row)
    return out, parts


def _accumulate(acc, parts):
    for b, sww, size, dt, dql, failed in parts:
        a = acc[b]
        a["sww"].add(*sww)
        a["size"] += size
        a["time"] += dt
        a["failed"] |= failed
        for m, v in dql.items():
            a[m].add(*v)


#: Tensors of at least this many elements are quantized one at a time with every Numba
#: thread; smaller ones concurrently, one per worker thread, each kernel on its worker alone.
_ALONE = 1 << 22
#: Elements in flight at once (besides one tensor of any size run alone): the memory bound.
_INFLIGHT = 1 << 23


def _concurrent_kernels_ok():
    """Whether kernels may run on several threads at once: always, compiled (every kernel
    is a ``nogil`` function and the kernels' own thread pool is thread-safe); not in the
    pure-Python ``NUMBA_DISABLE_JIT`` mode, where the GIL serializes them anyway."""
    import numba

    return not numba.config.DISABLE_JIT


class _Runner:
    """Runs tensors' work on a thread pool, hands results back in submission order.

    The kernels release the GIL, so tensors quantize concurrently; at most ``workers``
    tensors and :data:`_INFLIGHT` elements are in flight, and a tensor of :data:`_ALONE`
    elements or more runs by itself on the calling thread with every Numba thread. Each
    result is the same as a serial run's (every kernel is deterministic for any thread
    count); only the ``time`` cells change.
    """

    def __init__(self, workers):
        import numba

        self.workers = numba.get_num_threads() if workers is None else workers
        self.pending = []  # (key, size, future or None, collect), in submission order
        self.pool = None

    def __enter__(self):
        if self.workers > 1 and _concurrent_kernels_ok():
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vecq-report")
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, key, size, work, collect):
        if work is None:
            self.pending.append((key, 0, None, collect))
        elif self.pool is None or size >= _ALONE:
            self.drain(collect)
            collect(key, work())
            return
        else:
            busy = sum(p[1] for p in self.pending)
            while self.pending and (len(self.pending) >= self.workers or
                                    busy + size > _INFLIGHT):
                busy -= self._pop()
            self.pending.append((key, size, self.pool.submit(_alone_on_thread, work),
                                 collect))
        self._pop_done()

    def _pop(self):
        key, size, fut, collect = self.pending.pop(0)
        collect(key, None if fut is None else fut.result())
        return size

    def _pop_done(self):
        while self.pending and (self.pending[0][2] is None or self.pending[0][2].done()):
            self._pop()

    def drain(self, collect=None):
        while self.pending:
            self._pop()


def _alone_on_thread(work):
    from .._kernels import single_thread

    with single_thread():
        return work()


__all__ = ["ModelReport", "UnsupportedDtype", "model_report", "open_tensors", "tensor_stats"]
