"""Golden vectors: a versioned, small set of inputs and VecQ outputs to test any quantizer.

:func:`generate` writes ``DIR/golden.npz`` (arrays ``<case>.w``, ``<case>.codes``,
``<case>.alpha``, ``<case>.step``, ``<case>.values``) and ``DIR/manifest.json`` (schema
version, library version, the formulas and conventions used, tolerances, and one entry per
case: method, bits, lattice, axis, kind, shape, relative DQL). Cases cover bits 1 … 8, both
lattices, the methods ``param``, ``exact`` (when :mod:`vecq_ref.search` is importable) and
``paper``, per tensor and per channel (``axis=0``), exact rounding ties (``kind="tie"``:
weights with ``w/s`` exactly on a threshold, where floor, round-half-away and round-half-even
disagree) and tiny hand-checkable vectors. Inputs are float64 (exact in float32 except for the
tie cases, whose ties only exist in float64), outputs float64.

:func:`check` runs any callable against a golden folder and returns a :class:`GoldenReport`.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .. import _validation as V
from .. import io
from .._version import __version__
from ..lattice import level_offset
from ..quantize import quantize

SCHEMA_VERSION = 1
#: Version of the committed numbers (2: λ_k from the float64 constants of
#: ``vecq_ref.tables``, sums in the fixed order of ``vecq_ref._kernels``).
SET_VERSION = 2
NPZ_NAME = "golden.npz"
MANIFEST_NAME = "manifest.json"
#: Tolerances :func:`check` applies by default (users' float32 arithmetic passes them).
TOLERANCES = {"codes": "exact", "alpha_rtol": 1e-5, "values_rtol": 1e-5,
              "reproduce_rtol": 1e-12}
FORMULAS = {
    "midrise": "c = clip(floor(w/s), -2^(k-1), 2^(k-1)-1), v = c + 1/2 (docs/theory.md §2)",
    "midtread": "c = sign(w)·min(floor(|w|/s + 1/2), 2^(k-1)-1), v = c (docs/theory.md §2)",
    "param": "σ = population std (ddof 0, w not centred), s = λ_k·σ with λ_k the float64 "
             "constant of vecq_ref.optimal_step (the exact root rounded once), "
             "α = <w,v>/<v,v>, w_q = α·v",
    "exact": "s = the global optimum of J_o over all steps (docs/theory.md §4.3), α = <w,v>/<v,v>",
    "paper": "released Keras expression: s = σ·λ + 1e-7 (4-decimal table, 6/(2^k-1) above "
             "8 bits), c = round_half_even(clip(w/s - 1/2, -2^(k-1), 2^(k-1)-1)), "
             "α = <w,v>/(<v,v> + 1e-7), float64 arithmetic",
    "axis": "axis=0: every slice w[i] is its own vector (own σ, step and α)",
}
CONVENTIONS = {
    "division": "w/s by true division in float64 (not w·(1/s))",
    "sigma": "population std, ddof = 0",
    "accumulation": "float64",
    "zero": "a zero weight gets midrise code 0 (v = +1/2); an all-zero vector gets α = 0",
    "ties": "midrise floor (w = j·s gets code j); midtread half away from zero; paper rint",
}

_TINY = {
    "tiny4": [0.1, -0.4, 0.25, 0.9],
    "tiny6": [0.1, -0.4, 0.25, 0.9, -1.3, 0.05],
    "ints5": [3.0, -1.0, 0.0, 0.5, -2.0],
    "zeros": [0.0, 0.0, 0.0, 0.0],
    "const": [0.5, 0.5, 0.5, 0.5],
    "one": [2.0],
}


def _search_available():
    try:
        from .. import search  # noqa: F401
    except ImportError:
        return False
    return True


def _robust_sigma(w):
    """σ (ddof 0) of ``w`` if it does not depend on how the variance is summed, else None.

    Kept only when the correctly rounded variance and its two float64 neighbours have the same
    square root, and NumPy's pairwise and a sequential two-pass sum give that σ too.
    """
    x = np.asarray(w, dtype=np.float64)
    n = x.size
    fr = [Fraction(float(v)) for v in x]
    m = sum(fr) / n
    var = float(sum((v - m) ** 2 for v in fr) / n)
    sig = math.sqrt(var)
    near = [math.nextafter(var, math.inf), math.nextafter(var, -math.inf)]
    mean_seq = 0.0
    for v in x:
        mean_seq += v
    mean_seq /= n
    m2_seq = 0.0
    for v in x:
        m2_seq += (v - mean_seq) ** 2
    others = [float(np.std(x)), math.sqrt(m2_seq / n)]
    return sig if all(math.sqrt(v) == sig for v in near) and all(
        o == sig for o in others) else None


def tie_vector(bits, lattice="midrise", n=24, seed=0, method="param"):
    """Weights whose ``w/s`` lands exactly on rounding thresholds for ``method``'s step.

    Midrise: ``w/s ∈ {0, 1, −1}`` for the first three entries (``{0}`` at k = 1); midtread:
    ``w/s ∈ {½, −½, 3/2, −3/2}`` (the last two only when k ≥ 3). The step depends on ``w``
    through σ, so the tie entries are set and the step recomputed until both agree exactly.
    Only vectors whose σ is robust are kept: the exactly rounded variance and its float64
    neighbours have the same square root, and several summation orders agree, so other float64
    implementations (and vecq_ref with or without its compiled kernels) very likely compute
    the same σ, the same step and hence the same ties.

    Parameters
    ----------
    bits : int
    lattice : {"midrise", "midtread"}
    n : int
        Length (≥ 8).
    seed : int
    method : {"param", "paper"}

    Returns
    -------
    ndarray of float64, shape (n,)

    Examples
    --------
    >>> w = tie_vector(3)
    >>> s = quantize(w, 3).step
    >>> (w[:3] / s).tolist()
    [0.0, 1.0, -1.0]
    """
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    n = V.integer(n, "n", 8)
    method = V.choice(method, "method", ("param", "paper"))
    half = 2 ** (bits - 1)
    if lattice == "midrise":
        targets = [0.0, 1.0, -1.0] if bits > 1 else [0.0]
    else:
        targets = [0.5, -0.5] + ([1.5, -1.5] if half - 1 >= 2 else [])
    t = np.array(targets)
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        w = rng.standard_normal(n)
        for _ in range(100):
            s = quantize(w, bits, method=method, lattice=lattice).step
            new = t * s
            if np.array_equal(w[:t.size], new):
                break
            w[:t.size] = new
        q = quantize(w, bits, method=method, lattice=lattice)
        if (np.array_equal(w[:t.size] / q.step, t)
                and _robust_sigma(w) == q.info["sigma"]):
            return w
    raise RuntimeError("no exact tie vector found")  # pragma: no cover


KINDS = ("random", "tie", "tiny")


def _cases(kinds=KINDS):
    """(name, w, method, bits, lattice, axis, kind) for the set, in a fixed order."""
    rng = np.random.default_rng(20200517)
    methods = ["param", "paper"] + (["exact"] if _search_available() else [])
    out = []
    for bits in range(1, 9) if "random" in kinds else ():
        for lattice in ("midrise", "midtread"):
            if lattice == "midtread" and bits < 2:
                continue
            for gran in ("tensor", "axis0"):
                w = rng.standard_normal((4, 12)).astype(np.float32).astype(np.float64)
                axis = 0 if gran == "axis0" else None
                for m in methods:
                    if m == "paper" and lattice != "midrise":
                        continue
                    out.append((f"{m}_{lattice}_k{bits}_{gran}", w, m, bits, lattice, axis,
                                "random"))
    for bits, lattice, method in ((1, "midrise", "param"), (2, "midrise", "param"),
                                  (3, "midrise", "param"), (4, "midrise", "param"),
                                  (2, "midrise", "paper"), (3, "midrise", "paper"),
                                  (2, "midtread", "param"), (3, "midtread", "param")):
        if "tie" not in kinds:
            break
        w = tie_vector(bits, lattice, n=16, seed=bits, method=method)
        out.append((f"tie_{method}_{lattice}_k{bits}", w, method, bits, lattice, None, "tie"))
    for label, values in _TINY.items() if "tiny" in kinds else ():
        w = np.array(values, dtype=np.float64)
        for bits in (1, 2, 3):
            for m in methods:
                out.append((f"tiny_{label}_{m}_k{bits}", w, m, bits, "midrise", None, "tiny"))
        out.append((f"tiny_{label}_param_midtread_k2", w, "param", 2, "midtread", None, "tiny"))
    return out


def generate(out, force=False, kinds=KINDS):
    """Write the golden set into the folder ``out`` (created if missing).

    Parameters
    ----------
    out : str or Path
        Target folder; ``golden.npz`` and ``manifest.json`` are written atomically.
    force : bool
        Replace existing files.
    kinds : sequence of {"random", "tie", "tiny"}
        The parts of the set to write (default all; ``tests/golden`` holds all).

    Returns
    -------
    dict
        The manifest.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = generate(d, kinds=["tiny"])
    ...     m["schema_version"], sorted({c["bits"] for c in m["cases"]})
    (1, [1, 2, 3])
    """
    kinds = tuple(kinds)
    for k in kinds:
        V.choice(k, "kinds", KINDS)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays, cases = {}, []
    for name, w, method, bits, lattice, axis, kind in _cases(kinds):
        q = quantize(w, bits, method=method, lattice=lattice, axis=axis)
        arrays[f"{name}.w"] = w
        arrays[f"{name}.codes"] = q.codes
        arrays[f"{name}.alpha"] = np.asarray(q.alpha, dtype=np.float64)
        arrays[f"{name}.step"] = np.asarray(q.step, dtype=np.float64)
        arrays[f"{name}.values"] = q.values
        cases.append({"name": name, "method": method, "bits": bits, "lattice": lattice,
                      "axis": axis, "kind": kind, "shape": list(w.shape),
                      "relative_dql": q.loss.relative_dql,
                      "orientation": q.loss.orientation})
    manifest = {
        "schema_version": SCHEMA_VERSION, "set_version": SET_VERSION, "library": "vecq_ref",
        "library_version": __version__, "generator": "vecq_ref.golden.generate",
        "arrays": NPZ_NAME,
        "array_keys": "<case>.w (float64 input), <case>.codes (int8), <case>.alpha and "
                      "<case>.step (float64; per slice with axis), <case>.values (float64)",
        "formulas": FORMULAS, "conventions": CONVENTIONS, "tolerances": TOLERANCES,
        "methods": sorted({c["method"] for c in cases}), "cases": cases,
    }
    io.save_npz(out / NPZ_NAME, arrays, force=force)
    io.write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n", force=force)
    return manifest


def load(path):
    """``(manifest, arrays)`` of a golden folder, checked for schema and completeness.

    Raises ``ValueError`` with one clear message on a missing, malformed, truncated or
    mismatched file.
    """
    path = Path(path)
    mpath = path / MANIFEST_NAME
    if not mpath.is_file():
        raise FileNotFoundError(f"golden folder {path} has no {MANIFEST_NAME}")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{mpath} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        got = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise ValueError(f"{mpath}: schema_version must be {SCHEMA_VERSION}; got {got!r}")
    arrays = io.load_npz(path / manifest.get("arrays", NPZ_NAME), "golden")
    for case in manifest.get("cases", []):
        for part in ("w", "codes", "alpha", "values"):
            key = f"{case['name']}.{part}"
            if key not in arrays:
                raise ValueError(f"golden arrays lack {key!r} (manifest and {NPZ_NAME} "
                                 "do not match)")
    return manifest, arrays


@dataclass
class GoldenReport:
    """Result of :func:`check`: one row per case run, ``passed`` when all rows pass.

    ``skipped`` counts the cases not run; ``skip_reasons`` says why, ``{reason: count}``.
    Each row has ``case``, ``kind`` (``"random"``, ``"tie"`` or ``"tiny"``), ``passed``,
    ``why``, ``max_rel_err``, ``codes_differing`` (count, from the returned codes or those the
    values imply), ``alpha_ratio`` (returned or implied α over the golden α; the extreme ratio
    per slice), ``nan_returned`` (count). ``notes`` explain a pattern in the failures (only
    the tie cases failing: a step rounded differently from the golden one).
    """

    rows: list
    tolerances: dict
    skipped: int
    skip_reasons: dict = field(default_factory=dict)
    #: What the failures have in common, when it explains them.
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return bool(self.rows) and all(r["passed"] for r in self.rows)

    @property
    def failures(self):
        return [r for r in self.rows if not r["passed"]]

    def as_dict(self):
        return {"passed": self.passed, "cases": len(self.rows), "skipped": self.skipped,
                "skip_reasons": self.skip_reasons, "failed": len(self.failures),
                "tolerances": self.tolerances, "notes": self.notes, "rows": self.rows}

    def __str__(self):
        run, failed = len(self.rows), len(self.failures)
        # Run and skipped cases counted apart: "30/30 passed (30 skipped)" read as if the
        # skipped cases were among those that passed.
        lines = [f"golden check: {run} of {run + self.skipped} cases run, {run - failed} "
                 f"passed, {failed} failed, {self.skipped} skipped "
                 f"[values_rtol={self.tolerances['values_rtol']:g}, "
                 f"alpha_rtol={self.tolerances['alpha_rtol']:g}, codes exact]"]
        for why, n in self.skip_reasons.items():
            lines.append(f"  skipped {n}: {why}")
        if not self.rows:
            lines.append("  no case was run, so nothing passed")
        for r in self.failures[:20]:
            lines.append(f"  FAIL {r['case']}: {r['why']}")
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more failures")
        lines += [f"  note: {n}" for n in self.notes]
        if self.failures:
            lines.append("  for what differs and what it costs, per component: "
                         "vecq_ref.verify(w, your_values, bits=...) (CLI: vecq-ref verify)")
        return "\n".join(lines)


def _accepts(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in params}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _unpack(result):
    """(values, codes or None, alpha or None) from whatever the callable returned."""
    get = (result.get if isinstance(result, dict) else
           (lambda k, d=None: getattr(result, k, d)))
    if isinstance(result, dict) or (hasattr(result, "values")
                                    and not callable(getattr(result, "values", None))):
        values = get("values", None)
        if values is None:
            values = get("wq", None)
        return values, get("codes", None), get("alpha", None)
    return result, None, None


def _compare(case, arrays, result, tol):
    """(passed, why, max relative error, detail dict) of one case."""
    name = case["name"]
    g_vals = arrays[f"{name}.values"]
    g_codes = arrays[f"{name}.codes"]
    g_alpha = np.asarray(arrays[f"{name}.alpha"], dtype=np.float64)
    detail = {"codes_differing": None, "alpha_ratio": None, "nan_returned": 0}
    values, codes, alpha = _unpack(result)
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return (False, f"returned {type(result).__name__}, not an array of values", math.inf,
                detail)
    if values.shape != g_vals.shape:
        return (False, f"values have shape {values.shape}; golden shape {g_vals.shape}",
                math.inf, detail)
    per_slice = case["axis"] is not None
    ga = np.abs(np.broadcast_to(g_alpha.reshape(g_alpha.shape + (1,) * (g_vals.ndim - 1))
                                if per_slice else g_alpha, g_vals.shape))
    why = []
    n_nan = int(np.count_nonzero(np.isnan(values)))
    n_inf = int(np.count_nonzero(np.isinf(values)))
    detail["nan_returned"] = n_nan
    if n_nan or n_inf:
        why.append(", ".join(x for x in (f"{n_nan} NaN" if n_nan else "",
                                         f"{n_inf} inf" if n_inf else "") if x) +
                   f" of {values.size} values returned")
    finite = np.isfinite(values)
    scale = np.maximum(np.abs(g_vals), ga)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(scale > 0, np.abs(values - g_vals) / np.where(scale > 0, scale, 1),
                       np.where(values == g_vals, 0.0, np.inf))
    err = np.where(finite, err, 0.0)
    max_err = float(np.max(err)) if finite.any() else math.inf
    off = level_offset(case["lattice"])
    # codes: returned, or implied by the values on the golden α
    if codes is not None:
        c = np.asarray(codes)
        if c.shape != g_codes.shape:
            why.append(f"codes have shape {c.shape}; golden {g_codes.shape}")
        else:
            detail["codes_differing"] = int(np.count_nonzero(c != g_codes))
    elif np.all(ga > 0):
        with np.errstate(invalid="ignore"):
            implied = np.rint(values / ga - off)
        detail["codes_differing"] = int(np.count_nonzero((implied != g_codes) & finite))
    # α: returned, or the least-squares fit of the values on the golden codes
    gv = g_codes.astype(np.float64) + off
    if alpha is not None:
        a = np.asarray(alpha, dtype=np.float64)
        if a.shape != g_alpha.shape and a.size != g_alpha.size:
            why.append(f"alpha has shape {a.shape}; golden {g_alpha.shape}")
            a = None
        else:
            a = a.reshape(g_alpha.shape)
    else:
        axes = tuple(range(1, g_vals.ndim)) if per_slice else None
        vals0 = np.where(finite, values, 0.0)
        svv = np.sum(gv * gv, axis=axes)
        a = np.where(svv > 0, np.sum(vals0 * gv, axis=axes) / np.where(svv > 0, svv, 1.0),
                     0.0)
    if a is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(g_alpha != 0, a / np.where(g_alpha != 0, g_alpha, 1.0),
                             np.where(a == 0, 1.0, np.inf))
        worst = float(np.ravel(ratio)[int(np.argmax(np.abs(np.ravel(ratio) - 1.0)))])
        detail["alpha_ratio"] = worst if math.isfinite(worst) else None
    if max_err > tol["values_rtol"] and math.isfinite(max_err):
        why.append(f"values differ by up to {max_err:.3g} (relative) at "
                   f"{int(np.count_nonzero(err > tol['values_rtol']))} entries")
    if detail["codes_differing"]:
        src = "" if codes is not None else " (implied by the values on the golden α)"
        why.append(f"{detail['codes_differing']} of {g_codes.size} codes differ{src}")
    if detail["alpha_ratio"] is not None and abs(detail["alpha_ratio"] - 1) > tol["alpha_rtol"]:
        src = "" if alpha is not None else " (fitted to the values on the golden codes)"
        why.append(f"α/golden α = {detail['alpha_ratio']:.9g}{src}")
    return not why, "; ".join(why), max_err, detail


def check(path, fn, *, methods=None, bits=None, lattices=None, kinds=None, dtype=np.float64,
          values_rtol=None, alpha_rtol=None):
    """Run ``fn`` on every golden case and compare with the stored outputs.

    Parameters
    ----------
    path : str or Path
        A folder written by :func:`generate` (e.g. ``tests/golden``).
    fn : callable
        Called as ``fn(w, bits=..., lattice=..., axis=..., method=...)`` with only the
        keywords its signature accepts (``bits`` is required). It may return the values, an
        object with ``values`` (and optionally ``codes``, ``alpha``) attributes, or a dict with
        those keys. Codes and α are compared when returned.
    methods : sequence of str, optional
        Cases to run by method. Default: all when ``fn`` accepts ``method``, else
        ``("param",)`` (the report says which cases that leaves out). A ``fn`` without a
        ``method`` parameter is run on the cases of every method named here: it is taken to
        implement them.
    bits, lattices, kinds : sequence, optional
        Further filters (``kinds`` among ``"random"``, ``"tie"``, ``"tiny"``). Cases ``fn`` cannot
        express (``axis`` or ``lattice`` not accepted) are skipped.
    dtype : dtype
        ``w`` is cast to this before the call (e.g. ``np.float32``); cases whose input is not
        exact in ``dtype`` (the float64 tie cases under float32) are skipped.
    values_rtol, alpha_rtol : float, optional
        Override the manifest's tolerances.

    Returns
    -------
    GoldenReport

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = generate(d, kinds=["tiny"])
    ...     report = check(d, quantize, values_rtol=1e-12, alpha_rtol=1e-12)
    >>> report.passed
    True
    """
    manifest, arrays = load(path)
    tol = dict(manifest.get("tolerances", TOLERANCES))
    if values_rtol is not None:
        tol["values_rtol"] = V.real(values_rtol, "values_rtol", nonnegative=True)
    if alpha_rtol is not None:
        tol["alpha_rtol"] = V.real(alpha_rtol, "alpha_rtol", nonnegative=True)
    if not callable(fn):
        V.fail("fn", "a callable", type(fn).__name__, TypeError)
    names, var_kw = _accepts(fn)

    def has(key):
        return var_kw or key in names

    all_methods = manifest.get("methods", [])
    skip = {}

    def skipped_for(why):
        skip[why] = skip.get(why, 0) + 1

    if methods is None:
        methods = all_methods if has("method") else ["param"]
        if not has("method"):
            rest = [m for m in all_methods if m != "param"]
            if rest:
                skip[f"cases of {', '.join(rest)} not run: fn has no `method` parameter, so "
                     f"only the param cases were run; pass methods=[...] to check fn "
                     f"against another method's cases"] = sum(
                         1 for c in manifest["cases"] if c["method"] in rest)
    else:
        methods = [V.choice(m, "methods", tuple(all_methods)) for m in methods]
    rows = []
    for case in manifest["cases"]:
        if (case["method"] not in methods or (bits is not None and case["bits"] not in bits)
                or (lattices is not None and case["lattice"] not in lattices)
                or (kinds is not None and case["kind"] not in kinds)):
            continue
        kwargs = {"bits": case["bits"]}
        if has("method"):
            kwargs["method"] = case["method"]
        # without a `method` parameter, fn is taken to implement the methods asked for
        if case["lattice"] != "midrise" or has("lattice"):
            if not has("lattice"):
                skipped_for(f"fn has no `lattice` parameter ({case['lattice']} cases)")
                continue
            kwargs["lattice"] = case["lattice"]
        if case["axis"] is not None:
            if not has("axis"):
                skipped_for("fn has no `axis` parameter (per-channel cases)")
                continue
            kwargs["axis"] = case["axis"]
        w64 = arrays[f"{case['name']}.w"]
        w = w64.astype(dtype)
        if not np.array_equal(w.astype(np.float64), w64):  # the input is not exact in dtype
            skipped_for(f"input not exact in {np.dtype(dtype).name}")
            continue
        try:
            result = fn(w, **kwargs)
        except ImportError as exc:
            skipped_for(f"fn raised ImportError: {exc}")
            continue
        except Exception as exc:  # a user's callable may raise anything: report it
            rows.append({"case": case["name"], "kind": case["kind"], "passed": False,
                         "max_rel_err": None,
                         "why": f"raised {type(exc).__name__}: {exc}",
                         "codes_differing": None, "alpha_ratio": None, "nan_returned": 0})
            continue
        ok, why, err, detail = _compare(case, arrays, result, tol)
        rows.append({"case": case["name"], "kind": case["kind"], "passed": ok,
                     "max_rel_err": err if math.isfinite(err) else None, "why": why,
                     **detail})
    return GoldenReport(rows, tol, sum(skip.values()), skip, _tie_note(rows, manifest))


#: The golden step of each method's tie cases, and what a tie case needs, for :func:`_tie_note`.
_TIE_STEPS = {
    "param": ("s = λ_k·σ with λ_k the float64 value of vecq_ref.optimal_step(k)",
              "ties need the float64 λ from optimal_step, not a printed one"),
    "paper": ("s = σ·λ + 1e-7 with the released 4-decimal λ table",
              "the paper ties need that expression exactly"),
}


def _tie_note(rows, manifest):
    """``[note]`` when every failing case is a tie case and every other case passed.

    The tie cases put ``w/s`` exactly on rounding thresholds of the golden step, so a step
    that differs in its last bits (a λ_k rounded to 10 printed decimals, say) moves a
    threshold past a weight: one code flips and, with α refitted, every value moves (by up
    to 0.9 relative), while every other case passes within the tolerances.
    """
    failed = [r for r in rows if not r["passed"]]
    if not failed or any(r["kind"] != "tie" for r in failed):
        return []
    if not any(r["passed"] and r["kind"] != "tie" for r in rows):
        return []  # no other case ran and passed: nothing singles the ties out
    method = {c["name"]: c["method"] for c in manifest["cases"]}
    steps = [_TIE_STEPS[m] for m in dict.fromkeys(method.get(r["case"]) for r in failed)
             if m in _TIE_STEPS] or list(_TIE_STEPS.values())
    return [f"only the {len(failed)} tie case{'s' if len(failed) > 1 else ''} failed and every "
            "other case passed. Tie cases put w/s exactly on a rounding threshold of the golden "
            f"step ({'; '.join(s for s, _ in steps)}), so they pass only with that step to the "
            "last bit and the golden rounding at a tie (manifest conventions, 'ties'). A λ "
            "rounded to fewer digits (e.g. the 10 decimals the README prints) moves the "
            "threshold past the weight and flips its code, and with α refitted every value "
            f"moves: {'; '.join(n for _, n in steps)}."]


__all__ = ["GoldenReport", "check", "generate", "load", "tie_vector"]
