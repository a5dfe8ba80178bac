"""The components of a block format's rule, checked one at a time (issue 22).

Private to :mod:`vecq_ref.check.blocks` (the report, the quality figures and the entry point
live there): the output's levels, scales and zero points in group matrices, the format's
shipped rules (:mod:`vecq_ref.format_rules`) compared bit for bit, and, when none matches, one
:class:`Component` per row (level set, scale rule, storage, zero point, rounding), each named by
the variant (:mod:`._block_rules`) that reproduces the output and priced in relative DQL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import _validation as V
from .. import format_rules as FR
from . import _block_rules as R

_F = np.float32


def _n(v):
    """An integer with a typographic minus."""
    return str(int(v)).replace("-", "−")


@dataclass
class Component:
    """One row of the report: ``name`` (level set, scale rule, storage, zero point, rounding),
    ``finding`` in words, ``ok`` (True, False, or None: cannot tell), ``detail`` the numbers,
    ``cost`` the relative DQL the departure costs (None when not priced)."""


    name: str
    finding: str
    ok: bool | None
    detail: str = ""
    cost: float | None = None
    #: True when ``cost`` is the whole rule's difference (the component could not be
    #: replayed alone: a scale rule or level set that departs).
    cost_whole_rule: bool = False


# --- grouping -------------------------------------------------------------------------------

def _group_matrix(arr, bt_groups, g):
    """(groups, g) of a (rows, cols) array, groups in the order of a per-group array
    reshaped to -1 (row-major over (row, group)); columns gathered by ``bt_groups``."""
    if bt_groups is not None:
        order = np.argsort(bt_groups, kind="stable")
        arr = arr[:, order]
    return np.ascontiguousarray(arr).reshape(-1, g)


def _columns(bt):
    """The column order that makes ``bt``'s groups contiguous (None when already so)."""
    if bt.group_of_col is None:
        return None
    gi = np.asarray(bt.group_of_col)
    counts = np.bincount(gi)
    if np.any(counts != counts[0]):
        V.fail("quantized", "a BlockTensor whose groups (g_idx) all have the same size",
               f"group sizes from {counts.min()} to {counts.max()}")
    return gi


@dataclass
class _Obs:
    lev: np.ndarray           # (G, g) float64 levels ℓ (q − z, q, table[q])
    scale: np.ndarray         # (G,) stored scale (float64)
    zero: np.ndarray | None   # (G,) zero point in the spec's numbering
    minimum: np.ndarray | None
    values: np.ndarray        # (G, g) float64 dequantized
    dq: dict | None = None    # bitsandbytes' double quantization of the absmax, as stored
    n_per_row: int = 1        # groups per row
    stored: str | None = None  # the dtype the file stores the scales in (None: from values)
    either: np.ndarray | None = None  # per group, both signs fit (where lev is cut short)


def _file_dtype(bt):
    """The dtype a file stores ``bt``'s scales (and zeros, minimums) in, by name
    (``BlockTensor.scale_dtype``); None for a tensor recovered from values, whose storage
    only the values can tell (:func:`_storage_dtype`)."""
    if bt.name == "recovered" or "recovered from values" in bt.notes:
        return None
    name = np.dtype(bt.scale_dtype).name
    return name if name in ("float16", "bfloat16", "float32", "float64") else None


def _stored(obs, vals=None):
    """The scale's storage dtype to print: the file's, else the narrowest that holds
    ``vals`` (default the scales)."""
    return obs.stored or _storage_dtype(obs.scale if vals is None else vals)


def _observed(bt, spec, cols, g):
    lev = _group_matrix(bt.levels(), cols, g)
    scale = np.asarray(bt.scale, dtype=np.float64).reshape(-1)
    zero = minimum = None
    if bt.kind == "offset":
        z = np.asarray(bt.zero).reshape(-1).astype(np.int64)
        if spec.code_lo < 0 and bt.codes.min() >= 0:  # unsigned numbering of a signed format
            z = z + spec.code_lo
        zero = z
    if bt.kind == "min":
        minimum = np.asarray(bt.minimum, dtype=np.float64).reshape(-1)
    values = scale[:, None] * lev + (0.0 if minimum is None else minimum[:, None])
    return _Obs(lev, scale, zero, minimum, values, bt.double_quant,
                int(np.asarray(bt.scale).shape[-1]), _file_dtype(bt))


# --- the formats' whole rules ----------------------------------------------------------------

def _whole_rules(spec, x, h):
    """``[(name, levels, stored scale, zero or None, minimum or None, float32 scale)]``: the
    format's shipped rules on the float32 groups ``x``."""
    g, k = x.shape[1], spec.bits
    out = []

    def add(name, q, lev, zero=None, minimum=None):
        out.append((name, lev.reshape(x.shape).astype(np.float64),
                    np.asarray(q.alpha, dtype=np.float64).reshape(-1), zero, minimum,
                    np.asarray(q.step, dtype=_F).reshape(-1),
                    np.asarray(q.values, dtype=_F).reshape(x.shape),
                    np.asarray(q.codes).reshape(x.shape).astype(np.int64)))

    fam = spec.family
    if spec.key in ("q4_0", "q5_0"):
        fn = FR.q4_0 if spec.key == "q4_0" else FR.q5_0
        q = fn(x, g)
        add("reference rule", q, q.codes)
        if h is not None:
            q = fn(x, g, weights=h)
            add("imatrix path (make_qx_quants with the given weights)", q, q.codes)
    elif spec.key == "q8_0":
        q = FR.q8_0(x, g)
        add("reference rule", q, q.codes)
    elif spec.kind == "min":
        q = (FR.q4_1 if k == 4 else FR.q5_1)(x, g)
        add("reference rule", q, q.codes, minimum=q.info["offset"].reshape(-1))
    elif fam == "iq4_nl":
        q = FR.iq4_nl(x, g, weights=h)
        add("quantize_iq4_nl search" + (" (weighted)" if h is not None else ""), q,
            spec.table[q.codes])
        q = FR.iq4_nl(x, g, search=False)
        add("reference path (quantize_row_iq4_nl_ref)", q, spec.table[q.codes])
    elif fam in ("nf4", "fp4"):
        q = (FR.bnb_nf4 if fam == "nf4" else FR.bnb_fp4)(x, g)
        add("quantize_4bit", q, spec.table[q.codes])
    else:
        fn = {"gptq": FR.gptq_rtn, "awq": FR.awq_rtn,
              "compressed-tensors": FR.compressed_tensors_rtn}[fam]
        kw = {} if fam == "gptq" else {"dtype": spec.recipe.get("arith_dtype", "float32")}
        q = fn(x, k, g, symmetric=spec.symmetric, **kw)
        z = q.info.get("zero_point")
        z = None if z is None else np.asarray(z).reshape(-1).astype(np.int64)
        lev = q.codes.reshape(x.shape).astype(np.int64) - (0 if z is None else z[:, None])
        name = {"gptq": "with round to nearest (Quantizer)", "awq": "pseudo_quantize_tensor",
                "compressed-tensors": "calculate_qparams + quantize"}[fam]
        add(name, q, lev, zero=z)
    return out


def _same(obs, lev, scale, zero, minimum, spec, s32=None):
    """Per group: levels, stored scale and zero/minimum all equal (a double-quantized absmax:
    the stored one is the double quantization of the rule's float32 ``s32``)."""
    if obs.dq is not None and s32 is not None:
        ok = np.all(obs.lev == lev, axis=1) & R.dq_match(s32, obs.dq, obs.scale)
    else:
        ok = np.all(obs.lev == lev, axis=1) & (obs.scale == scale)
    if minimum is not None and obs.minimum is not None:
        ok &= obs.minimum == minimum
    if zero is not None and obs.zero is not None and not spec.symmetric:
        ok &= obs.zero == zero
    return ok


# --- components -----------------------------------------------------------------------------

def _level_set_row(spec, obs):
    G = obs.scale.size
    neg = int(np.sum(obs.scale < 0))
    signed_ok = spec.key in ("q4_0", "q5_0", "q8_0", "iq4_nl")
    if spec.kind == "codebook":
        inside = np.all(np.isin(obs.lev, spec.table), axis=1)
        words = f"codebook {spec.family.upper()} ({np.unique(spec.table).size} levels)"
    elif spec.kind == "min":
        top = 2 ** spec.bits - 1
        inside = np.all((obs.lev >= 0) & (obs.lev <= top), axis=1)
        words = f"real offset d·q + m, codes 0…{top}"
    else:
        z = obs.zero if obs.zero is not None else np.full(G, spec.zero_fixed or 0)
        u = obs.lev + z[:, None]
        inside = np.all((u >= spec.code_lo) & (u <= spec.code_hi), axis=1)
        if spec.symmetric:
            lo, hi = spec.code_lo - (spec.zero_fixed or 0), spec.code_hi - (spec.zero_fixed or 0)
            kind = "full range" if lo == -hi - 1 else "narrow range"
            words = f"{kind} {_n(lo)}…{_n(hi)}"
        else:
            words = (f"integer zero point, codes {_n(spec.code_lo)}…{_n(spec.code_hi)} (z from "
                     f"{_n(z.min())} to {_n(z.max())})")
    if neg:
        either = _either_sign(spec, obs)
        if np.any(either):
            # Counted from the values alone, so that a scale recovered from them and one a
            # rule (weighted or not) gives are counted alike: a group whose values some
            # scale of either sign reproduces is not counted as negative.
            forced = int(np.sum((obs.scale < 0) & ~either))
            words += (f", signed scale (negative in {forced} of {G} groups; either sign "
                      f"fits {int(np.sum(either))})")
        else:
            words += f", signed scale (negative in {neg} of {G} groups)"
    bad_sign = neg and not signed_ok
    ok = bool(np.all(inside)) and not bad_sign
    detail = "" if ok else (f"{int(np.sum(~inside))} groups outside the level set" +
                            (f"; {neg} negative scales" if bad_sign else ""))
    return Component("level set", words, ok, detail)


def _either_sign(spec, obs):
    """Per group: whether the values are also those of a scale of the other sign (the levels
    negated, or halved when all are even, stay in the level set), so that the sign of the
    scale is not a fact of the values. Only the formats with a fixed zero or a codebook."""
    G = obs.scale.size
    if obs.either is not None:
        return obs.either
    if spec.kind == "codebook":
        flip = np.all(np.isin(-obs.lev, spec.table), axis=1)
    elif spec.kind == "offset" and spec.symmetric:
        z = spec.zero_fixed or 0
        u = -obs.lev + z
        flip = np.all((u >= spec.code_lo) & (u <= spec.code_hi), axis=1)
        # all levels even: the values are also 2·s times the halved levels, whose
        # negation fits a two's-complement range
        even = np.all(np.mod(obs.lev, 2) == 0, axis=1)
        flip |= even & (spec.code_hi - z >= 1)
    else:
        return np.zeros(G, dtype=bool)
    return flip & (obs.scale != 0)


def _lsq(obs, x, h):
    hh = 1.0 if h is None else h
    num = np.sum(hh * x * obs.lev, axis=1)
    den = np.sum(hh * obs.lev * obs.lev, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


def _scale_row(spec, obs, x, h, ref_s32):
    G = obs.scale.size
    cands = R.scale_candidates(spec, x, h)
    ref_key = spec.recipe["scale"]
    cands[ref_key] = ref_s32   # the reference's own float32 scale (bit for bit)
    hits = {}
    for key, s32 in cands.items():
        if obs.dq is not None:
            hits[key] = (R.dq_match(s32, obs.dq, obs.scale), spec.recipe["storage"])
            continue
        best = None
        for dt in (spec.recipe["storage"], "float16", "bfloat16", "float32"):
            m = R.store(s32, dt) == obs.scale
            if best is None or m.sum() > best[0].sum():
                best = (m, dt)
        hits[key] = best
    if spec.kind != "min" and obs.dq is None:
        ls = _lsq(obs, x.astype(np.float64), h)
        ulp = np.abs(ls) * (2.0 ** -10 if spec.recipe["storage"] == "float16" else 2.0 ** -23)
        hits["least squares"] = (np.abs(obs.scale - ls) <= ulp, spec.recipe["storage"])
    key = max(hits, key=lambda k: (hits[k][0].sum(), k == ref_key))
    n = int(hits[key][0].sum())
    words = R.scale_words(key, spec.bits)
    if key == "least squares":
        words += " (weighted)" if h is not None else " (plain)"
    allowed = key == ref_key or key in ("make_qx_quants", "iq4_nl search", "iq4_nl ref")
    if n < G:
        words = (f"none of these in {G - n} groups; closest: {words}" if n < G / 2 else
                 f"{words} in {n} of {G} groups")
    ok = n == G and allowed
    ident = key if n == G else None
    detail = ("" if ok or key == ref_key else
              f"rule: {_short(R.scale_words(ref_key, spec.bits))}; ") + f"{n}/{G} groups"
    row = Component("scale rule", words, ok, detail)
    return row, ident, cands.get(ident), hits[key][1], hits[ref_key][0]


def _short(words):
    """A rule's words without their parenthesis or formula ("min–max: (max − min)/15" →
    "min–max")."""
    return words.split(" = ")[0].split(" (")[0].split(": ")[0].rstrip(":")


def _storage_dtype(vals):
    for dt in ("float16", "bfloat16", "float32"):
        if np.all(R.representable(vals, dt)):
            return dt
    return None


def _zero_row(spec, obs, rule_zero):
    """(row or None, the constant offset of the stored zeros from the rule's, or None)."""
    if spec.kind != "offset" or obs.zero is None:
        return None, 0
    if spec.symmetric:
        if spec.family not in ("gptq", "awq", "compressed-tensors"):
            return None, 0
        rule_zero = np.full(obs.zero.size, spec.zero_fixed or 0)
    elif rule_zero is None:
        return None, 0
    diff = obs.zero - rule_zero
    G = diff.size
    if np.all(diff == 0):
        what = "the rule's z" if not spec.symmetric else f"z = {_n(spec.zero_fixed or 0)}"
        return Component("zero point", f"{what}, in every group", True), 0
    if np.all(diff == -1):
        return Component("zero point", "z − 1 in every group: GPTQ v1's stored zeros read "
                         "without their + 1", False, f"{G}/{G} groups one below the rule's z"), -1
    n = int(np.sum(diff == 0))
    return Component("zero point", f"not the rule's z in {G - n} of {G} groups", False,
                     f"offsets from {_n(diff.min())} to {_n(diff.max())}"), None


def _rounding_variants(spec):
    ref = spec.recipe
    if spec.kind == "codebook":
        modes = [("nearest", c, s, t) for s in ("unrounded", "stored")
                 for t in (spec.ties, "upper" if spec.ties == "lower" else "lower")
                 for c in ("after",)]
    else:
        rounds = [ref["rounding"]] + [m for m in ("half-up-add", "half-even", "half-away",
                                                  "floor") if m != ref["rounding"]]
        clamps = [ref["clamp"], "before" if ref["clamp"] == "after" else "after"]
        scales = ("unrounded", "stored") + (("stored-scale",) if spec.kind == "min" else ())
        modes = [(r, c, s, spec.ties) for s in scales for r in rounds for c in clamps]
    return modes


def _replay(spec, x, recipe, s32, zero, ties):
    sp = spec if ties == spec.ties else _with_ties(spec, ties)
    mn = np.min(x, axis=1) if spec.kind == "min" else None
    return R.replay(sp, x, recipe, s32, zero=zero, minimum=mn)


def _with_ties(spec, ties):
    return replace(spec, ties=ties)


_CLAMP_WORDS = {"after": "clamped after", "before": "clamped before"}


def _rounding_row(spec, obs, x, s32, zero, shift, storage):
    G = obs.scale.size
    recipe0 = dict(spec.recipe, zero_shift=shift, storage=storage, dq=obs.dq)
    best = None
    m_rule = None  # groups the rule's own rounding (the first variant) reproduces
    for mode, clamp, cs, ties in _rounding_variants(spec):
        rec = dict(recipe0, rounding=mode, clamp=clamp, codes_scale=cs)
        lev, _ = _replay(spec, x, rec, s32, zero, ties)
        m = int(np.sum(np.all(lev == obs.lev, axis=1)))
        if m_rule is None:
            m_rule = m
        if best is None or m > best[0]:
            best = (m, mode, clamp, cs, ties, rec)
        if m == G:
            break
    m, mode, clamp, cs, ties, rec = best
    ref = spec.recipe
    if spec.kind == "codebook":
        words = f"nearest entry, ties to the {ties} entry"
        ok_round = ties == spec.ties
    else:
        words = f"{R.ROUNDING_WORDS[mode]}, {_CLAMP_WORDS[clamp]}"
        ok_round = mode == ref["rounding"] and clamp == ref["clamp"]
    if m < G:
        words = (f"no variant reproduces {G - m} of {G} groups; closest: {words}" if m < G / 2
                 else f"{words} in {m} of {G} groups")
    ok = ok_round and m == G
    rule_words = (f"nearest entry, ties to the {spec.ties} entry" if spec.kind == "codebook"
                  else f"{R.ROUNDING_WORDS[ref['rounding']]}, {_CLAMP_WORDS[ref['clamp']]}")
    # How many groups depart: those whose codes the rule's own rounding does not give (not
    # the m the variant found reproduces, which may be every group).
    detail = ("" if ok or m_rule == m else
              f"rule: {rule_words}: other codes in {G - m_rule} of {G} groups; ") + \
        f"{m}/{G} groups"
    row = Component("rounding", words, ok if m == G else False, detail)
    return row, (rec, ties) if m == G else None, cs if m == G else None


def _rel(values, w, h):
    d = w - values
    hh = 1.0 if h is None else h
    den = float(np.sum(hh * w * w))
    return float(np.sum(hh * d * d)) / den if den > 0 else 0.0


#: GPTQ's lazy-batch block (AutoGPTQ/GPTQModel ``fasterquant(blocksize=128)``): a group's grid
#: is found on weights already updated by every earlier block.
GPTQ_BLOCK = 128
UNDECIDED_ROUNDING = "cannot be decided from the output alone: needs the calibration inputs"
UNDECIDED_ROUNDING_WHY = "the Hessian would decide; round-to-nearest of w reproduces "
DQ_WORDS = ("absmax double-quantized (8 bits per 256 blocks); codes from the unquantized "
            "absmax")


def _storage_words(spec, obs, dt_obs, cs):
    if obs.dq is not None:
        words = DQ_WORDS if cs in (None, "unrounded") else (
            "absmax double-quantized (8 bits per 256 blocks); codes from the stored "
            "(double-quantized) absmax, not the unquantized one")
        return words
    words = f"scale stored in {dt_obs or 'no float16/bfloat16/float32'}"
    if spec.kind == "min":
        words += f", minimum in {_stored(obs, obs.minimum)}"
    if cs in ("stored", "stored-scale"):
        what = "scale and minimum" if cs == "stored" and spec.kind == "min" else "scale"
        words += f"; codes from the stored {spec.recipe['storage']} {what}, not the float32 one"
    elif cs == "unrounded":
        words += "; codes from the unrounded float32 scale"
    arith = spec.recipe.get("arith_dtype", "float32")
    if arith != "float32":
        words += f"; {R.arith_words(arith)}"
    return words


def _diagnose(spec, w64, x, h, obs, rules, alt_rules=()):
    """(components, passed, rule, departure, notes); ``rules`` from :func:`_whole_rules`;
    ``alt_rules``: the same rules computed in float32 where the format computes in the
    weight's float16/bfloat16 (a match names the arithmetic). ``passed`` is None when the
    output alone cannot decide (GPTQ's error feedback); ``departure`` then says why."""
    for name, lev, scale, zero, minimum, s32, *_ in rules:
        if np.all(_same(obs, lev, scale, zero, minimum, spec, s32)):
            rows = _conforming_rows(spec, obs, name, h)
            label = name
            if obs.dq is not None:
                label = f"{name}, absmax double-quantized"
                ok, why = R.dq_nested_check(s32, obs.dq)
                if not ok:
                    st = next(r for r in rows if r.name == "storage")
                    st.ok, st.detail = False, why
                    return rows, False, None, f"storage: {why}", []
            return rows, True, f"{spec.label} {label}, bit for bit", None, []
    arith = spec.recipe.get("arith_dtype", "float32")
    for name, lev, scale, zero, minimum, s32, *_ in alt_rules:
        if np.all(_same(obs, lev, scale, zero, minimum, spec, s32)):
            rows = _conforming_rows(spec, obs, name, h)
            st = next(r for r in rows if r.name == "storage")
            short = {"float16": "fp16", "bfloat16": "bf16"}[arith]
            st.finding = (f"scale stored in {_stored(obs)}; computed in float32, "
                          f"not in {arith} as torch does on {R._article(short)} {short} weight")
            st.ok, st.detail = False, f"the rule: {R.arith_words(arith)}"
            ref_lev, ref_scale, ref_min = rules[0][1], rules[0][2], rules[0][4]
            ref_vals = ref_scale[:, None] * ref_lev + (0 if ref_min is None
                                                       else ref_min[:, None])
            st.cost = _rel(obs.values, w64, h) - _rel(ref_vals, w64, h)
            st.cost_whole_rule = True
            return rows, False, None, f"storage: {st.finding}", []
    _, ref_lev, ref_scale, ref_zero, ref_min, ref_s32 = rules[0][:6]
    rows = [_level_set_row(spec, obs)]
    srow, ident, s32_ident, st_dt, ref_hits = _scale_row(spec, obs, x, h, ref_s32)
    rows.append(srow)
    s32 = s32_ident if s32_ident is not None else ref_s32
    rule_zero = R.zero_rule(spec, spec.recipe["zero"], x, s32) if not spec.symmetric \
        and spec.kind == "offset" else None
    if rule_zero is not None and s32_ident is None:
        rule_zero = ref_zero
    zrow, shift = _zero_row(spec, obs, rule_zero)
    dt_obs = _stored(obs)
    rrow, replayable, cs = _rounding_row(spec, obs, x, s32, rule_zero, shift or 0,
                                         st_dt if ident else spec.recipe["storage"])
    exp = spec.recipe["storage"]
    st_ok = bool(np.all(R.representable(obs.scale, exp)))
    if spec.kind == "min":
        st_ok = st_ok and bool(np.all(R.representable(obs.minimum, exp)))
    detail = "" if st_ok else f"the format stores {exp}, codes from float32"
    if cs in ("stored", "stored-scale"):
        st_ok = False
    if obs.dq is not None and ident is not None:
        ok, why = R.dq_nested_check(s32, obs.dq)
        if not ok:
            st_ok, detail = False, why
    rows.append(Component("storage", _storage_words(spec, obs, dt_obs, cs), bool(st_ok),
                          "" if st_ok else detail))
    if zrow is not None:
        rows.append(zrow)
    rows.append(rrow)
    if spec.family == "gptq":
        _gptq_undecided(spec, obs, rows, ref_hits, replayable is None)
    if h is None and spec.key in IMATRIX_KEYS:
        _imatrix_undecided(spec, x, obs, rows)
    # a scale rule of its own named in every group (abs-max over 8 claimed as Q4_1) is no
    # imatrix's: the imatrix note would mislead
    notes = _notes(spec, rows, h, scale_named=ident is not None and ident not in (
        spec.recipe["scale"], "least squares", "make_qx_quants", "iq4_nl search"))
    _price(spec, w64, x, h, obs, rows, replayable, ref_lev, ref_scale, ref_min, s32)
    dep = next((r for r in rows if r.ok is False), None)
    if dep is None and any(r.ok is None for r in rows):
        why = next(r for r in rows if r.ok is None)
        return rows, None, None, f"{why.name}: {why.finding}", notes
    departure = None if dep is None else f"{dep.name}: {dep.finding}"
    if dep is None:  # every component as the rule, yet not bit for bit (should not happen)
        departure = "the output differs from the rule in groups no component explains"
    return rows, False, None, departure, notes


#: The formats whose importance-weighted search (llama.cpp's imatrix path) ``_imatrix_undecided``
#: tells apart from any other rule without the importance: Q4_0/Q5_0 (``make_qx_quants``),
#: IQ4_NL (``quantize_row_iq4_nl_impl``).
IMATRIX_KEYS = ("q4_0", "q5_0", "iq4_nl")
IMATRIX_UNDECIDED = ("some importance's search (llama.cpp's imatrix path) in {groups}: which "
                     "importance cannot be told from the output alone; its imatrix would "
                     "decide")


def _imatrix_undecided(spec, x, obs, rows):
    """Without importance weights, an output whose scale rule or rounding departs from the
    format's plain rules may still be its importance-weighted search's: where it can be
    (:func:`_weighting_possible`), those components are undecided (``ok = None``: the verdict
    is UNDECIDED), else they stay departures (no importance matrix gives the output)."""
    by = {r.name: r for r in rows}
    dep = [by[k] for k in ("scale rule", "rounding") if k in by and by[k].ok is False]
    if any(r.ok is False for r in rows if r not in dep) or any(r.ok is None for r in rows):
        return
    whole = not dep  # every component as a plain rule's in its groups, the whole as none
    if whole:
        dep = [by["scale rule"]] if "scale rule" in by else []
        if not dep:
            return
    G = obs.scale.size
    if not _weighting_possible(spec, x, obs):
        return
    for r in dep:
        r.ok, r.cost, r.cost_whole_rule = None, None, False
        r.detail = (f"plain rules: {r.finding}" + (" in each group, no one rule in all"
                                                   if whole else ""))
    dep[0].finding = IMATRIX_UNDECIDED.format(groups="its one group" if G == 1 else
                                              f"all {G} groups")
    for r in dep[1:]:
        r.finding = "as that search's, in every group (its codes at its scale)"


#: Groups whose scale constraints enter :func:`_importance_feasible` (the first ones; any
#: subset's infeasibility is proof).
IMATRIX_LP_GROUPS = 4096
#: Relative slack on the scale interval (the C's float32 sums; the LP's tolerances).
IMATRIX_SLACK = 1e-4


def _weighting_possible(spec, x, obs):
    """Could the output be the format's search under SOME importance matrix ``qw ≥ 0`` (one
    per input column, ``h = qw·√(σ² + x²)``, FORMATS.md §2)? The search's candidate codes do
    not depend on ``h``; which one is kept and the scale (``Σhxℓ/Σhℓ²``, a weighted mean of
    ``x/ℓ``) do. Per group the codes must be one of the candidates' (IQ4_NL: the nearest
    entries of ``x/d`` for a ``d`` that rounds to the stored fp16 scale) and the stored scale
    the fp16 rounding of a value in ``[min x/ℓ, max x/ℓ]`` of such a candidate; then, where a
    group's candidate codes are determined, one ``qw`` for all groups must put every scale in
    its interval (a linear feasibility problem, :func:`_importance_feasible`). Groups whose
    ``max |x|`` is below 1e-15 can be when their scale is 0; Q4_0/Q5_0 values ``d·ℓ`` are
    read as ``(−d)·(−ℓ)`` too. False is proof that no importance matrix gives the output;
    True is not proof that one does (the candidate each group keeps is not checked).

    Source: ggml-org/ggml ``src/ggml-quants.c`` ``make_qx_quants``,
    ``quantize_row_q4_0_impl``, ``quantize_row_iq4_nl_impl``."""
    G, g = x.shape
    x = np.asarray(x, dtype=_F)
    ax = np.abs(x)
    mx = x[np.arange(G), np.argmax(ax, axis=1)]  # the first of largest |x|, as the C
    tiny = ax.max(axis=1) < _F(1e-15)
    safe = np.where(tiny, _F(1), mx)
    d16 = obs.scale
    possible = np.zeros(G, dtype=bool)
    fixed = np.zeros(G, dtype=bool)  # the codes whose refit is the scale are determined
    lev_d = np.zeros(x.shape)
    sign_d = np.ones(G)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if spec.key in ("q4_0", "q5_0"):
            nmax = 8 if spec.key == "q4_0" else 16
            iscales = [_F(-nmax) / safe] + [-(_F(nmax) + _F(0.1) * _F(i)) / safe
                                            for i in range(-9, 10) if i]
            for isc in iscales:
                lev = np.clip(FR._nearest_int(isc[:, None] * x), -nmax, nmax - 1)
                # the same values as (−d, −ℓ) too (a scale recovered from values has either sign)
                for sign in (1.0, -1.0):
                    ok = np.all(lev == sign * obs.lev, axis=1) & \
                        _in_hull(x, lev.astype(np.float64), sign * d16)
                    new = ok & ~fixed
                    lev_d[new], sign_d[new], fixed[new] = lev[new], sign, True
                    possible |= ok
        else:
            table = FR._IQ4
            codes = np.searchsorted(table, obs.lev.astype(_F))
            cands = [(_F(1) / (-safe / table[0]))]
            cands += [(_F(i) + table[0]) / safe for i in range(-7, 8)]
            lo16, hi16 = _fp16_interval(d16)
            hull = np.zeros(G, dtype=bool)
            count = np.zeros(G, dtype=np.int64)
            for iid in cands:
                lev = table[FR._best_index((iid[:, None] * x).astype(_F))].astype(np.float64)
                ok = _in_hull(x, lev, d16)
                other = ok & hull & np.any(lev != lev_d, axis=1)
                count += other
                new = ok & ~hull
                lev_d[new] = lev[new]
                hull |= ok
            fixed = hull & (count == 0)
            ca = FR._best_index((x * (_F(1) / lo16.astype(_F))[:, None]).astype(_F))
            cb = FR._best_index((x * (_F(1) / hi16.astype(_F))[:, None]).astype(_F))
            near = np.all((codes >= np.minimum(ca, cb)) & (codes <= np.maximum(ca, cb)), axis=1)
            possible = hull & near
    possible = (possible & ~tiny) | (tiny & (d16 == 0))
    if not np.all(possible):
        return False
    use = np.flatnonzero(fixed & ~tiny)[:IMATRIX_LP_GROUPS]
    return _importance_feasible(spec, x, obs.n_per_row, use, lev_d, sign_d * d16)


def _importance_feasible(spec, x, n_per_row, use, lev, d16):
    """Is there ``qw ≥ 0`` (one per column) whose ``h = qw·√(σ² + x²)`` makes the weighted
    refit ``Σhxℓ/Σhℓ²`` of codes ``lev`` round to ``d16`` in every group of ``use``? Linear
    in ``qw``: per group ``Σ qw·c·ℓ(x − d_lo·ℓ) ≥ 0``, ``Σ qw·c·ℓ(x − d_hi·ℓ) ≤ 0`` and (a
    scale) ``Σ qw·c·ℓ² ≥ 1``, solved by scipy's HiGHS; only a proven infeasibility (status 2)
    answers False."""
    G, g = x.shape
    if use.size == 0 or (n_per_row * g) % FR.QK:  # (llama.cpp's rows: whole 32-blocks)
        return True
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    n = n_per_row * g
    c = FR.imatrix_weights(x.reshape(-1, n), np.ones(n), spec.key).reshape(G, g)
    c = c.astype(np.float64)[use]
    xs, ls, d = x.astype(np.float64)[use], lev[use], d16[use]
    lo, hi = _fp16_interval(d)
    lo, hi = lo - IMATRIX_SLACK * np.abs(d), hi + IMATRIX_SLACK * np.abs(d)
    cols = (use % n_per_row)[:, None] * g + np.arange(g)[None, :]
    blocks = [-(c * ls * (xs - lo[:, None] * ls)), c * ls * (xs - hi[:, None] * ls),
              -(c * ls * ls)]
    k = use.size
    data = np.concatenate([b.reshape(-1) for b in blocks])
    rows = np.concatenate([np.repeat(np.arange(k) + i * k, g) for i in range(3)])
    colx = np.tile(cols.reshape(-1), 3)
    A = csr_matrix((data, (rows, colx)), shape=(3 * k, n))
    b = np.concatenate([np.zeros(2 * k), -np.ones(k)])
    res = linprog(np.zeros(n), A_ub=A, b_ub=b, bounds=(0, None), method="highs")
    return res.status != 2


def _fp16_interval(d16):
    """Per value of float16 ``d16``: the interval of reals that round to it (float64)."""
    h = d16.astype(np.float16)
    up = np.nextafter(h, np.float16(np.inf)).astype(np.float64)
    down = np.nextafter(h, np.float16(-np.inf)).astype(np.float64)
    return (d16 + down) / 2, (d16 + up) / 2


def _in_hull(x, lev, d16):
    """Per group: is ``d16`` the fp16 rounding of a weighted mean of ``x/ℓ`` over ``ℓ ≠ 0``
    (with relative slack 1e-5)?"""
    nz = lev != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(nz, x.astype(np.float64) / np.where(nz, lev, 1.0), np.nan)
    lo, hi = np.nanmin(np.where(nz, r, np.inf), axis=1), np.nanmax(np.where(nz, r, -np.inf),
                                                                   axis=1)
    lo16, hi16 = _fp16_interval(d16)
    lo = lo - 1e-5 * np.abs(lo)
    hi = hi + 1e-5 * np.abs(hi)
    return np.any(nz, axis=1) & (hi16 >= lo) & (lo16 <= hi)


def _gptq_undecided(spec, obs, rows, ref_hits, partial):
    """GPTQ rounds weights its error feedback has updated (and finds the grid of a group
    past the first block on updated weights): where round-to-nearest of ``w`` does not
    reproduce the output, the output alone cannot decide (``ok = None``), and says what
    would; the components it can check (level set, storage, zero point, the grid of the
    first block's groups) stay checked. ``partial``: no rounding variant reproduces every
    group (one that does, yet is not the rule's, is a departure error feedback cannot make)."""
    by = {r.name: r for r in rows}
    G = obs.scale.size
    g = obs.lev.shape[1]
    sr = by["scale rule"]
    if sr.ok is False:
        # Groups are row-major over (row, group); a group's columns in GPTQ's processing
        # order (act-order: g_idx's) start at (its index within the row)·g.
        within = (np.arange(G) % obs.n_per_row) * g < GPTQ_BLOCK
        if np.all(ref_hits[within]) and np.any(within):
            n_first = int(np.sum(within))
            sr.ok = None
            sr.finding = (f"GPTQ's grid in all {n_first} groups of the first {GPTQ_BLOCK} "
                          f"columns; {int(np.sum(~ref_hits))} later groups' grid is of weights "
                          "GPTQ had already updated: cannot tell")
            sr.detail = f"{int(np.sum(ref_hits))}/{G} groups match the grid of w"
    rr = by["rounding"]
    if rr.ok is False and partial:
        m = rr.detail.rsplit("; ", 1)[-1]
        rr.ok = None
        rr.finding = UNDECIDED_ROUNDING
        rr.detail = f"{UNDECIDED_ROUNDING_WHY}{m}"
        rr.cost = None
        rr.cost_whole_rule = False


def _conforming_rows(spec, obs, name, h):
    G = obs.scale.size
    rows = [_level_set_row(spec, obs)]
    key = spec.recipe["scale"]
    sw = R.scale_words(key, spec.bits)
    if "make_qx" in name:
        sw = R.scale_words("make_qx_quants", spec.bits) + " with the given weights"
    elif "reference path" in name:
        sw = R.scale_words("iq4_nl ref", spec.bits)
    if obs.dq is not None:
        sw = "abs-max (the block's max |w|, float32, before double quantization)"
    rows.append(Component("scale rule", sw, True, f"{G}/{G} groups"))
    if obs.dq is not None:
        words = DQ_WORDS
    else:
        words = (f"scale stored in {obs.stored or spec.recipe['storage']}"
                 + (", minimum too" if spec.kind == "min" else "")
                 + "; codes from the unrounded float32 scale")
        arith = spec.recipe.get("arith_dtype", "float32")
        if arith != "float32":
            words = (f"scale stored in {obs.stored or spec.recipe['storage']}; "
                     f"{R.arith_words(arith)}")
    rows.append(Component("storage", words, True))
    if not spec.symmetric and spec.kind == "offset":
        rows.append(Component("zero point", "the rule's z, in every group", True))
    elif spec.family in ("gptq", "awq", "compressed-tensors"):
        rows.append(Component("zero point", f"z = {_n(spec.zero_fixed or 0)}, in every group",
                              True))
    rw = ("nearest entry, ties to the " + spec.ties + " entry" if spec.kind == "codebook" else
          f"{R.ROUNDING_WORDS[spec.recipe['rounding']]}, {_CLAMP_WORDS[spec.recipe['clamp']]}")
    if "make_qx" in name:
        rw = "the search's codes (nearest_int: half to even)"
    rows.append(Component("rounding", rw, True, f"{G}/{G} groups"))
    return rows


def _notes(spec, rows, h, scale_named=False):
    notes = []
    bad = {r.name for r in rows if r.ok is False}
    if spec.family == "gptq" and {r.name for r in rows if r.ok is not True} & {"rounding",
                                                                             "scale rule"}:
        notes.append("GPTQ's error feedback rounds updated weights, not w: the output alone "
                     "cannot identify it; the calibration inputs (its Hessian) would.")
    if "zero point" in bad and not any("GPTQ v1" in r.finding for r in rows):
        notes.append("zero points not the rule's: an optimised zero (HQQ) cannot be identified "
                     "from the output alone; the quantizer's settings would.")
    undecided = {r.name for r in rows if r.ok is None}
    if spec.key in ("q4_0", "q5_0", "iq4_nl", "q4_1", "q5_1") and h is None and \
            not scale_named and ("scale rule" in bad or undecided & {"scale rule", "rounding"}):
        notes.append("an imatrix-made GGUF cannot be identified without its imatrix: pass "
                     f"weights=imatrix_weights(w, imatrix, {spec.key!r}) (CLI: --weights "
                     "FILE.npy holding those weights).")
    return notes


def _price(spec, w64, x, h, obs, rows, replayable, ref_lev, ref_scale, ref_min, s32):
    """Put each departing component back to the rule's and price the change in rel. DQL."""
    rel_obs = _rel(obs.values, w64, h)
    ref_vals = ref_scale[:, None] * ref_lev + (0 if ref_min is None else ref_min[:, None])
    rel_ref = _rel(ref_vals, w64, h)
    dep = [r for r in rows if r.ok is False]
    if not dep:
        return
    if replayable is None or any(r.name in ("scale rule", "level set") for r in dep):
        dep[0].cost = rel_obs - rel_ref
        dep[0].cost_whole_rule = True
        return
    rec, ties = replayable
    mn = np.min(x, axis=1) if spec.kind == "min" else None
    for r in dep:
        fix = dict(rec)
        if r.name == "rounding":
            fix.update(rounding=spec.recipe["rounding"], clamp=spec.recipe["clamp"])
            t = spec.ties
        else:
            t = ties
        if r.name == "storage":
            fix.update(codes_scale="unrounded", storage=spec.recipe["storage"])
        if r.name == "zero point":
            fix.update(zero_shift=0)
        zero = R.zero_rule(spec, spec.recipe["zero"], x, s32) if (
            not spec.symmetric and spec.kind == "offset") else None
        sp = spec if t == spec.ties else _with_ties(spec, t)
        lev, st = R.replay(sp, x, fix, s32, zero=zero, minimum=mn)
        vals = st[:, None] * lev
        if mn is not None:
            vals = vals + R.store(mn, fix["storage"])[:, None]
        r.cost = rel_obs - _rel(vals, w64, h)
