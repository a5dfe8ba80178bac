"""The block formats' rules taken apart into components, and replayed one variant at a time.

Private to :mod:`vecq_ref.check.blocks`. A format's *recipe* names its components
(FORMATS.md §4–§6): the scale rule (how the float32 scale is computed from the group), the
storage of the scale (float16, bfloat16, float32), the zero point (fixed, GPTQ's, AWQ's,
compressed-tensors', llama.cpp's real minimum) and the rounding (half up after a float32 add,
half to even, half away, floor; clamp before or after; codes from the unrounded or the stored
scale). :func:`replay` computes the levels and stored scale of any recipe, in the format's own
float32 arithmetic, so a departure can be named by the variant that reproduces the output.
The reference rules themselves come from :mod:`vecq_ref.format_rules` (proven bit for bit
against the real code); the variants here reproduce them when every component is the
reference's (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import format_rules as FR
from ..codebooks import IQ4_NL, NF4

_F = np.float32


@dataclass(frozen=True)
class Spec:
    """One format (and symmetry) as the diagnosis sees it."""

    key: str                 # "q4_0", "gptq-sym", ...
    label: str               # "llama.cpp Q4_0"
    kind: str                # "offset", "min", "codebook"
    bits: int
    group: int               # the format's default group
    recipe: dict             # the reference components
    code_lo: int = 0         # code space [code_lo, code_hi] and its fixed zero (offset kind)
    code_hi: int = 15
    zero_fixed: int | None = None
    table: np.ndarray | None = None   # codebook in code order
    ties: str = "lower"               # codebook: nearest entry ties to the lower/upper entry
    family: str = ""                  # BlockTensor.format of the family
    symmetric: bool = True


def _r(scale, storage, zero, rounding, clamp="after", codes_scale="unrounded", arith="inverse"):
    return dict(scale=scale, storage=storage, zero=zero, rounding=rounding, clamp=clamp,
                codes_scale=codes_scale, arith=arith, zero_shift=0, arith_dtype="float32")


#: The families whose quantizers are torch code computing in the weight's dtype (AutoAWQ,
#: compressed-tensors); GPTQ casts the weight to float32 first, bitsandbytes computes in
#: float32.
TORCH_DTYPE_FAMILIES = ("awq", "compressed-tensors")


def in_dtype(spec, dtype):
    """``spec`` with its arithmetic in the weight's ``dtype`` ("float16", "bfloat16") where
    the family computes in it (compressed-tensors also keeps its scale in it)."""
    if dtype == "float32" or spec.family not in TORCH_DTYPE_FAMILIES:
        return spec
    recipe = dict(spec.recipe, arith_dtype=dtype)
    if spec.family == "compressed-tensors":
        recipe["storage"] = dtype
    return replace(spec, recipe=recipe)


def arith_words(dtype):
    """The arithmetic in words ("computed in float16, as torch does on an fp16 weight")."""
    short = {"float16": "fp16", "bfloat16": "bf16"}.get(dtype)
    return (f"computed in {dtype}, as torch does on {_article(short)} {short} weight"
            if short else "computed in float32")


def _article(word):
    """The article before an abbreviation read letter by letter: "an fp16", "a bf16"."""
    return "an" if word[:1].lower() in "aefhilmnorsx" else "a"


def _specs():
    s = {}
    for k in (4, 5):
        n = 2 ** (k - 1)
        key = f"q{k}_0"
        s[key] = Spec(key, f"llama.cpp Q{k}_0", "offset", k, 32,
                      _r("signed-max/-2^(k-1)", "float16", "fixed", "half-up-add"),
                      0, 2 * n - 1, n, family=key)
        key = f"q{k}_1"
        s[key] = Spec(key, f"llama.cpp Q{k}_1", "min", k, 32,
                      _r("minmax", "float16", "min", "half-up-add"), 0, 2 ** k - 1,
                      family=key, symmetric=False)
    s["q8_0"] = Spec("q8_0", "llama.cpp Q8_0", "offset", 8, 32,
                     _r("amax/(2^(k-1)-1)", "float16", "fixed", "half-away"), -127, 127, 0,
                     family="q8_0")
    s["iq4_nl"] = Spec("iq4_nl", "llama.cpp IQ4_NL", "codebook", 4, 32,
                       _r("iq4_nl search", "float16", "fixed", "nearest"), 0, 15,
                       table=IQ4_NL.astype(np.float64), ties="upper", family="iq4_nl")
    s["nf4"] = Spec("nf4", "bitsandbytes NF4", "codebook", 4, 64,
                    _r("absmax", "float32", "fixed", "nearest"), 0, 15,
                    table=NF4.astype(_F).astype(np.float64), family="nf4")
    s["fp4"] = Spec("fp4", "bitsandbytes FP4", "codebook", 4, 64,
                    _r("absmax", "float32", "fixed", "nearest"), 0, 15,
                    table=FR.BNB_FP4.astype(np.float64), family="fp4")
    for k in (2, 3, 4, 8):
        n, top = 2 ** (k - 1), 2 ** k - 1
        sfx = "" if k == 4 else f"-{k}bit"
        s[f"gptq-sym{sfx}"] = Spec(f"gptq-sym{sfx}", f"GPTQ symmetric {k}-bit grid", "offset",
                                   k, 128, _r("gptq 2amax/(2^k-1)", "float16", "fixed",
                                              "half-even", arith="divide"), 0, top, n,
                                   family="gptq")
        s[f"gptq-asym{sfx}"] = Spec(f"gptq-asym{sfx}", f"GPTQ asymmetric {k}-bit grid",
                                    "offset", k, 128,
                                    _r("minmax, 0 inside", "float16", "gptq", "half-even",
                                       arith="divide"), 0, top, family="gptq",
                                    symmetric=False)
        s[f"awq-sym{sfx}"] = Spec(f"awq-sym{sfx}", f"AWQ symmetric {k}-bit", "offset", k, 128,
                                  _r("amax/(2^(k-1)-1)", "float16", "fixed", "half-even",
                                     arith="divide"), -n, n - 1, 0, family="awq")
        s[f"awq-asym{sfx}"] = Spec(f"awq-asym{sfx}", f"AWQ asymmetric {k}-bit", "offset", k,
                                   128, _r("minmax", "float16", "awq", "half-even",
                                           arith="divide"), 0, top, family="awq",
                                   symmetric=False)
        s[f"ct-sym{sfx}"] = Spec(f"ct-sym{sfx}", f"compressed-tensors symmetric {k}-bit",
                                 "offset", k, 128,
                                 _r("amax/(2^(k-1)-1/2)", "float32", "fixed", "half-even",
                                    clamp="before", arith="divide"), -n, n - 1, 0,
                                 family="compressed-tensors")
        s[f"ct-asym{sfx}"] = Spec(f"ct-asym{sfx}", f"compressed-tensors asymmetric {k}-bit",
                                  "offset", k, 128,
                                  _r("minmax, 0 inside", "float32", "ct", "half-even",
                                     clamp="before", arith="divide"), -n, n - 1,
                                  family="compressed-tensors", symmetric=False)
    return s


SPECS = _specs()

def scale_words(key, k):
    """A scale rule in words, with the numbers of ``k`` bits (FORMATS.md §4–§6)."""
    n = 2 ** (k - 1)
    return {
        "signed-max/-2^(k-1)": f"abs-max, signed, over −{n} (d = max/−{n})",
        "amax/2^(k-1)": f"abs-max over {n}, positive",
        "amax/(2^(k-1)-1)": f"abs-max over {n - 1} = 2^(k−1) − 1 (Q8_0, AWQ symmetric)",
        "amax/(2^(k-1)-1/2)": f"abs-max over {n - 0.5:g} = 2^(k−1) − ½ (compressed-tensors)",
        "gptq 2amax/(2^k-1)": f"2·amax/{2 * n - 1} = 2·amax/(2^k − 1) (GPTQ's symmetric)",
        "minmax": f"min–max: (max − min)/{2 * n - 1}",
        "minmax, 0 inside": f"min–max with min ≤ 0 ≤ max forced: (max − min)/{2 * n - 1}",
        "absmax": "abs-max (the block's absmax, as stored)",
        "least squares": "least squares of the codes",
        "make_qx_quants": "llama.cpp's 19-candidate search (make_qx_quants)",
        "iq4_nl search": "llama.cpp's IQ4_NL search (15 tries, refit)",
        "iq4_nl ref": "IQ4_NL reference: d₀ = max/−127, refit, no tries",
    }[key]


ROUNDING_WORDS = {
    "half-up-add": "half up after a float32 add",
    "half-even": "half to even",
    "half-away": "half away from zero (roundf)",
    "floor": "floor",
    "nearest": "nearest entry",
}
_SIMPLE = ("signed-max/-2^(k-1)", "amax/2^(k-1)", "amax/(2^(k-1)-1)", "amax/(2^(k-1)-1/2)",
           "gptq 2amax/(2^k-1)", "minmax", "minmax, 0 inside", "absmax")


def store(s, dtype):
    """float32 scales as stored in ``dtype`` ("float16", "bfloat16", "float32"), widened to
    float64 (round to nearest even)."""
    s = np.asarray(s, dtype=_F)
    with np.errstate(over="ignore"):
        if dtype == "float16":
            return s.astype(np.float16).astype(np.float64)
        if dtype == "bfloat16":
            import ml_dtypes
            return s.astype(ml_dtypes.bfloat16).astype(np.float64)
    return s.astype(np.float64)


def representable(s, dtype):
    """Per group: is the float64 ``s`` exactly a ``dtype`` value?"""
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return store(s.astype(_F), dtype) == s


def scale_candidates(spec, x, h):
    """``{rule: float32 scale per group}`` for the simple rules and the searches that apply
    to ``spec`` (``x`` the float32 groups, ``h`` the importance or None)."""
    k = spec.bits
    n, top = _F(2 ** (k - 1)), _F(2 ** k - 1)
    amax = np.max(np.abs(x), axis=1)
    mx, mn = np.max(x, axis=1), np.min(x, axis=1)
    smax = FR._signed_max(x)
    out = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out["signed-max/-2^(k-1)"] = (smax / -n).astype(_F)
        out["amax/2^(k-1)"] = (amax / n).astype(_F)
        out["amax/(2^(k-1)-1)"] = (np.maximum(amax, _F(1e-5)) / (n - 1)).astype(_F) \
            if spec.family == "awq" else (amax / (n - 1)).astype(_F)
        half = (amax / _F((2 ** k - 1) / 2)).astype(_F)
        out["amax/(2^(k-1)-1/2)"] = np.where(half == 0, np.finfo(_F).eps, half).astype(_F)
        lo0, hi0 = np.minimum(mn, _F(0)), np.maximum(mx, _F(0))
        hs = np.maximum(np.abs(lo0), hi0)
        los = np.where(lo0 < 0, -hs, lo0)
        both = (los == 0) & (hs == 0)
        out["gptq 2amax/(2^k-1)"] = ((np.where(both, _F(1), hs) - np.where(both, _F(-1), los))
                                     / top).astype(_F)
        span = (mx - mn) if spec.family != "awq" else np.maximum(mx - mn, _F(1e-5))
        out["minmax"] = (span / top).astype(_F)
        both = (lo0 == 0) & (hi0 == 0)
        forced = ((hi0 - lo0) / top).astype(_F)
        if spec.family == "gptq":
            forced = np.where(both, _F(2) / top, forced).astype(_F)
        elif spec.family == "compressed-tensors":
            forced = np.where(forced == 0, np.finfo(_F).eps, forced).astype(_F)
        out["minmax, 0 inside"] = forced
        out["absmax"] = amax.astype(_F)
    if spec.key in ("q4_0", "q5_0"):
        out["make_qx_quants"] = FR.make_qx_quants(x, int(n), x.shape[1], weights=h).step
    if spec.key == "iq4_nl":
        out["iq4_nl search"] = FR.iq4_nl(x, x.shape[1], weights=h).step
        out["iq4_nl ref"] = FR.iq4_nl(x, x.shape[1], search=False).step
    return {k_: np.asarray(v, dtype=_F).reshape(-1) for k_, v in out.items()}


def zero_rule(spec, rule, x, s32):
    """The zero point per group a rule gives from the float32 scale (offset kind), in the
    spec's code numbering, in the spec's arithmetic; None for "fixed"."""
    top = _F(2 ** spec.bits - 1)
    mn = np.min(x, axis=1)
    rd = FR._rounder(spec.recipe.get("arith_dtype", "float32"))
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule == "gptq":
            return np.rint((-np.minimum(mn, _F(0)) / s32).astype(_F)).astype(np.int64)
        if rule == "awq":
            return np.clip(-np.rint(rd(mn / s32)), 0, top).astype(np.int64)
        if rule == "ct":
            lo = _F(spec.code_lo)
            z = np.clip(rd(lo - rd(np.minimum(mn, _F(0)) / s32)), lo, _F(spec.code_hi))
            return np.rint(np.where(np.isnan(z), _F(0), z)).astype(np.int64)
    return None


def _round(y, mode):
    """Integer of float32 ``y`` (half up: ``floor(y + ½)`` after one float32 add)."""
    if mode == "half-up-add":
        return np.floor((y + _F(0.5)).astype(_F))
    if mode == "half-even":
        return np.rint(y)
    if mode == "half-away":
        return FR._roundf(y)
    return np.floor(y)


def replay(spec, x, recipe, s32, zero=None, minimum=None):
    """Levels (float64, groups × g) and stored scale (float64, groups) of ``recipe`` on the
    float32 groups ``x`` with the float32 scale ``s32``. ``zero``: the zero point per group
    (offset kind; the fixed one when None); ``minimum``: the float32 minimum (min kind)."""
    stored = (store(s32, recipe["storage"]) if recipe.get("dq") is None else
              dq_store(s32, recipe["dq"]))
    rd = FR._rounder(recipe.get("arith_dtype", "float32"))
    # "stored": codes from the stored scale (and minimum); "stored-scale": the scale only.
    sc = s32 if recipe["codes_scale"] == "unrounded" else stored.astype(_F)
    sc = sc.astype(_F)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if spec.kind == "min":
            m = (store(minimum, recipe["storage"]) if recipe["codes_scale"] == "stored"
                 else minimum).astype(_F)
            base = (x - m[:, None]).astype(_F)
        else:
            base = x
        if recipe["arith"] == "inverse" or spec.kind == "codebook":
            inv = FR._inverse(sc) if spec.kind != "codebook" or spec.family == "iq4_nl" else \
                (_F(1) / np.maximum(sc, _F(1e-38))).astype(_F)
            y = (base * inv[:, None]).astype(_F)
        else:
            y = rd(base / sc[:, None])
        if spec.kind == "codebook":
            if spec.family != "iq4_nl":
                y = np.clip(y, _F(-1), _F(1))
            return spec.table[nearest_entry(y, spec.table, spec.ties)], stored
        if zero is None:
            zc = np.full(x.shape[0], spec.zero_fixed or 0, dtype=np.int64)
        else:
            zc = np.asarray(zero, dtype=np.int64)
        zf = zc.astype(_F)[:, None]
        lo, hi = spec.code_lo, spec.code_hi
        y = np.where(np.isfinite(y), y, _F(0))
        if recipe["clamp"] == "after":
            if recipe["rounding"] == "half-up-add":  # the C adds z + ½ in one float32 add
                c = np.floor((y + (zf + _F(0.5))).astype(_F))
            else:
                c = _round(y, recipe["rounding"]) + zf
            c = np.clip(c, lo, hi)
        else:
            c = _round(np.clip(rd(y + zf), lo, hi), recipe["rounding"])
            c = np.clip(c, lo, hi)
        lev = c.astype(np.float64) - (zc + recipe["zero_shift"])[:, None]
    return lev, stored


def nearest_entry(y, table, ties):
    """Index into ``table`` (code order) of the entry nearest the float32 ``y``, the float32
    midpoints deciding, ties to the ``"lower"`` or ``"upper"`` entry."""
    order = np.argsort(table, kind="stable")
    t = table[order].astype(_F)
    mids = ((t[:-1] + t[1:]) / _F(2)).astype(_F)
    pos = np.searchsorted(mids, y, side="left" if ties == "lower" else "right")
    return order[pos]


# --- bitsandbytes' double quantization of absmax ----------------------------------------------

#: Half-width, in units of the gap between two nested levels, of the band around their
#: midpoint where bitsandbytes' table search may pick either (its CPU search is not exactly
#: the nearest there: fixture bnb_nf4_dq, block 15, 2·10⁻⁴ of a gap from the midpoint).
DQ_MIDPOINT_BAND = 2.0 ** -10


def _dq_parts(a32, dq):
    """(nearest restored absmax, second choice or NaN) per group for the float32 absmax
    ``a32`` double-quantized with the stored nested absmax, table and offset."""
    a = np.asarray(a32, dtype=_F).reshape(-1)
    q2 = np.asarray(dq["nested_quant_map"], dtype=_F)
    na = np.asarray(dq["nested_absmax"], dtype=_F)[np.arange(a.size) // dq["nested_blocksize"]]
    off = _F(dq["offset"])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = ((a - off).astype(_F) / na).astype(_F)
        y = np.where(np.isfinite(y), y, _F(0))
    order = np.argsort(q2, kind="stable")
    t = q2[order].astype(np.float64)
    pos = np.clip(np.searchsorted(t, y), 1, t.size - 1)
    lo, hi = t[pos - 1], t[pos]
    nearer_hi = np.abs(hi - y) < np.abs(y - lo)
    first = np.where(nearer_hi, pos, pos - 1)
    second = np.where(nearer_hi, pos - 1, pos)
    near_mid = np.abs(y - (lo + hi) / 2) <= DQ_MIDPOINT_BAND * (hi - lo)

    def restore(j):
        return ((q2[order[j]] * na).astype(_F) + off).astype(_F).astype(np.float64)
    return restore(first), np.where(near_mid, restore(second), np.nan)


def dq_store(a32, dq):
    """The absmax ``a32`` (float32 per group) as double quantization stores and restores it
    (the nearest nested level), float64."""
    return _dq_parts(a32, dq)[0]


def dq_match(a32, dq, observed):
    """Per group: is ``observed`` (the restored stored absmax) the double quantization of
    ``a32``: its nearest nested level, or the other one of the two around it when ``a32``
    lies within :data:`DQ_MIDPOINT_BAND` of their midpoint?"""
    first, second = _dq_parts(a32, dq)
    obs = np.asarray(observed, dtype=np.float64).reshape(-1)
    return (obs == first) | (obs == second)


def dq_nested_check(a32, dq):
    """``(ok, words)``: the stored nested absmax is max |absmax − offset| per nested block
    (float32, exact) and the offset the mean of the absmax (float32, to 1e-6)."""
    a = np.asarray(a32, dtype=_F).reshape(-1)
    nbs = dq["nested_blocksize"]
    off = _F(dq["offset"])
    dev = np.abs((a - off).astype(_F))
    n2 = -(-a.size // nbs)
    pad = np.zeros(n2 * nbs, dtype=_F)
    pad[:a.size] = dev
    want = pad.reshape(n2, nbs).max(axis=1)
    na = np.asarray(dq["nested_absmax"], dtype=_F)
    bad_na = int(np.sum(want != na))
    mean = float(np.mean(a, dtype=np.float64))
    off_ok = abs(float(off) - mean) <= 1e-6 * max(abs(mean), 1e-30)
    words = []
    if bad_na:
        words.append(f"nested absmax not max |absmax − offset| in {bad_na} of {na.size} "
                     f"nested blocks")
    if not off_ok:
        words.append(f"offset {float(off):.9g} is not the absmax mean {mean:.9g}")
    return not words, "; ".join(words)
