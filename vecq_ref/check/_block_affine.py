"""torchao int4 (tinygemm) and HQQ outputs, diagnosed one component at a time (issue 22).

Private to :mod:`vecq_ref.check.blocks` (the report and the quality figures live there). Both
formats have a real offset (``kind="min"``, FORMATS.md §5):

* **torchao int4** (tinygemm): ``s = (max − min)/15`` and the float zero ``zp = min + 8·s``
  in the weight's dtype, codes ``clamp(round((x − (zp − 8s))/s), 0, 15)`` half to even. Every
  component is decidable from ``w`` and the output: the verdict is PASS or FAIL, the departing
  component named by the variant (:func:`vecq_ref.format_rules.torchao_int4` with ``zero=``,
  ``rounding=``, another dtype) that reproduces it.
* **HQQ**: the min–max inverse scale ``i = 15/(max − min)`` (stored as ``1/i``) and a float
  zero **optimised** under an ℓ_0.7 loss (a proximal solver); codes ``round(w·i + z)``. The grid,
  the scale, the storage and the rounding (codes under the stored zero) are checked; the zero
  cannot be decided from the output alone (UNDECIDED, ``passed=None``) unless it is the
  unoptimised min–max zero (``optimize=False``: then PASS).

Sources: pytorch/ao ``torchao/quantization/quant_primitives.py``; mobiusml/hqq
``hqq/core/quantize.py``, ``hqq/core/optimize.py``.
"""

from __future__ import annotations

import numpy as np

from .. import format_rules as FR
from ..formats._block import BlockTensor
from ..formats.affine import hqq_block, torchao_int4_block
from . import _block_rules as R
from ._block_diagnose import Component, _file_dtype, _rel, _storage_dtype

_F = np.float32
TORCHAO = "torchao-int4"
HQQ = "hqq"
#: Format names accepted for each (``format=``).
ALIASES = {"torchao-int4": TORCHAO, "torchao": TORCHAO, "tinygemm": TORCHAO, "hqq": HQQ}
LABELS = {TORCHAO: "torchao int4 affine (tinygemm)", HQQ: "HQQ (half-quadratic, axis 0)"}
DEFAULT_GROUP = {TORCHAO: 128, HQQ: 64}
TORCHAO_RULE = "torchao int4 affine (tinygemm): min–max scale, float zero min + 8·s"
HQQ_OPT = ("HQQ's proximal solver (optimize_weights_proximal_legacy: lp_norm 0.7, beta 10, "
           "kappa 1.01, 20 iterations, early stop)")
HQQ_UNDECIDED = ("optimised under an ℓ_p loss (p = 0.7): the output alone cannot decide it; "
                 "its optimiser's settings (or the same library run on w) would")
ROUNDINGS = ("half-even", "half-away", "half-up", "floor")
ROUND_WORDS = {"half-even": "half to even", "half-away": "half away from zero",
               "half-up": "half up", "floor": "floor"}


def _eq(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    return a == np.asarray(b, dtype=np.float64).reshape(-1)


def _frac(mask):
    return f"{int(np.sum(mask))}/{mask.size} groups"


# --- torchao -----------------------------------------------------------------------------------

def torchao_recover(w, wq, g, dt):
    """``(BlockTensor, fraction of groups reproduced exactly)`` of the dequantized ``wq``: per
    group the first variant (zero rule × rounding) whose dequantized values are ``wq``'s,
    else the rule's ``s`` and ``zp`` with the nearest codes."""
    rows, cols = w.shape
    v = np.asarray(wq, dtype=_F).reshape(-1, g)
    G = v.shape[0]
    codes = np.zeros(v.shape, dtype=np.int64)
    s, zp = np.zeros(G), np.zeros(G)
    taken = np.zeros(G, dtype=bool)
    for zero in ("min+8s", "min"):
        for rounding in ROUNDINGS:
            q = FR.torchao_int4(w, g, dt, zero=zero, rounding=rounding)
            same = ~taken & np.all(q.values.reshape(-1, g) == v, axis=1)
            codes[same] = q.codes.reshape(-1, g)[same]
            s[same] = q.alpha.reshape(-1)[same]
            zp[same] = q.info["zero"].reshape(-1)[same]
            taken |= same
    left = ~taken
    if np.any(left):
        q = FR.torchao_int4(w, g, dt)
        s[left] = q.alpha.reshape(-1)[left]
        zp[left] = q.info["zero"].reshape(-1)[left]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.rint((v[left] - zp[left, None]) / s[left, None] + 8)
        codes[left] = np.clip(np.nan_to_num(c), 0, 15).astype(np.int64)
    bt = torchao_int4_block(codes.reshape(rows, cols), s.reshape(rows, -1),
                            zp.reshape(rows, -1), g, dtype=dt, name="recovered")
    return bt, float(np.mean(taken))


def torchao_check(w, bt, dt):
    """Components, verdict and notes of a torchao int4 BlockTensor ``bt`` against ``w``."""
    g = bt.group_size
    ref = FR.torchao_int4(w, g, dt)
    s = np.asarray(bt.scale, dtype=np.float64).reshape(-1)
    zp = (np.asarray(bt.zero, dtype=np.float64) if bt.zero is not None else
          np.asarray(bt.minimum, dtype=np.float64) + 8.0 * np.asarray(bt.scale))
    zp = zp.reshape(-1)
    q = np.asarray(bt.codes).reshape(-1, g)
    G = s.size
    rows = []
    inside = np.all((q >= 0) & (q <= 15), axis=1)
    rows.append(Component("level set", "real offset s·q + (zp − 8·s), codes 0…15",
                          bool(np.all(inside)),
                          "" if np.all(inside) else f"{int(np.sum(~inside))} groups outside"))
    # Scale rule: in the dtype (torchao), or computed in float32 and stored in the dtype.
    s_ok = _eq(s, ref.alpha)
    s32 = FR.torchao_int4(np.asarray(w, dtype=_F), g, "float32")
    s_f32 = _eq(s, R.store(s32.alpha, dt))
    words = f"min–max: (max − min)/15 in {dt}, at least the smallest normal"
    if np.all(s_ok):
        rows.append(Component("scale rule", words, True, _frac(s_ok)))
    elif np.all(s_f32) and dt != "float32":
        rows.append(Component("scale rule", f"min–max computed in float32, then stored in {dt}",
                              False, f"rule: computed in {dt} (torch on a {dt} weight); "
                              f"{_frac(s_f32)}"))
    else:
        rows.append(Component("scale rule", f"not min–max/15 in {G - int(np.sum(s_ok))} of {G} "
                              "groups", False, f"rule: {words}; {_frac(s_ok)}"))
    st = _file_dtype(bt) or _storage_dtype(np.concatenate([s, zp]))
    st_ok = bool(np.all(R.representable(s, dt)) and np.all(R.representable(zp, dt)))
    rows.append(Component("storage", f"scale and float zero stored in {st or 'no float dtype'}",
                          st_ok, "" if st_ok else f"the rule stores both in {dt}"))
    # Zero: the rule's min + 8·s (from the observed scale), or min (tinygemm shift forgotten).
    x = np.asarray(FR._rounder(dt)(np.asarray(w, dtype=_F)), dtype=_F).reshape(-1, g)
    mn = x.min(axis=1)
    rd = FR._rounder(dt)
    want = rd(mn + rd(s.astype(_F) * _F(8)))
    z_ok = _eq(zp, want)
    if np.all(z_ok):
        rows.append(Component("zero point", "float zero zp = min + 8·s (tinygemm), in every "
                              "group", True))
    elif np.all(_eq(zp, mn)):
        rows.append(Component("zero point", "zp = min, without tinygemm's + 8·s", False,
                              f"rule: zp = min + 8·s; {_frac(_eq(zp, mn))} hold zp = min"))
    else:
        rows.append(Component("zero point", f"not min + 8·s in {G - int(np.sum(z_ok))} of {G} "
                              "groups", False, f"rule: zp = min + 8·s; {_frac(z_ok)}"))
    # Rounding: codes under the stored s and zp.
    best = None
    for mode in ROUNDINGS:
        c, _ = FR._tinygemm(x, s, zp, rd, FR._round_mode(mode))
        m = np.all(c == q, axis=1)
        if best is None or m.sum() > best[1].sum():
            best = (mode, m)
        if np.all(m):
            break
    mode, m = best
    rw = f"{ROUND_WORDS[mode]}, clamped after"
    if np.all(m):
        rows.append(Component("rounding", rw, mode == "half-even",
                              ("" if mode == "half-even" else "rule: half to even (torch.round)"
                               "; ") + _frac(m)))
    else:
        rows.append(Component("rounding", f"no variant reproduces {G - int(m.sum())} of {G} "
                              f"groups; closest: {rw}", False, _frac(m)))
    dep = next((r for r in rows if r.ok is False), None)
    if dep is not None:
        vals = np.asarray(bt.dequantize(np.float64), dtype=np.float64)
        w64 = np.asarray(w, dtype=np.float64)
        dep.cost = _rel(vals, w64, None) - _rel(ref.values.astype(np.float64), w64, None)
        dep.cost_whole_rule = True
        return rows, False, None, f"{dep.name}: {dep.finding}", None, []
    return rows, True, f"{TORCHAO_RULE}, bit for bit", None, None, []


# --- HQQ ---------------------------------------------------------------------------------------

def hqq_recover(wg, wqg, g, bits=4):
    """``(BlockTensor, fraction reproduced)`` of HQQ values ``wqg`` (group layout, float32
    ``(q − z)·s``): ``s`` the rule's, ``z`` from the values' fractional part with the codes'
    integer offset that makes ``round(w·i + z)`` reproduce the most codes."""
    ref = FR.hqq_affine(wg, bits, g)
    s = np.asarray(ref.alpha, dtype=_F).reshape(-1)
    inv = ref.info["inverse"].reshape(-1)
    v = np.asarray(wqg, dtype=_F)
    top = 2 ** bits - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (v.astype(np.float64) / s[:, None])          # q − z
    t = np.nan_to_num(t)
    tmin = t.min(axis=1)
    span = np.rint(t.max(axis=1) - tmin)
    yw = (wg.astype(_F) * inv[:, None]).astype(np.float64)
    best = np.full(v.shape[0], -1)
    best_z = np.zeros(v.shape[0])
    for k in range(top + 1):
        z = k - tmin
        q = np.rint(t + z[:, None])
        ok = (k + span <= top)
        hits = np.sum(np.clip(np.rint(yw + z[:, None]), 0, top) == q, axis=1)
        better = ok & (hits > best)
        best = np.where(better, hits, best)
        best_z = np.where(better, z, best_z)
    codes = np.clip(np.rint(t + best_z[:, None]), 0, top).astype(np.int64)
    # The float32 zero: of the candidates q_j − t_j (and their float32 neighbours), the first
    # whose (q − z)·s gives every value of the group.
    z = best_z.astype(_F)
    ok = np.all(((codes - z[:, None]).astype(_F) * s[:, None]).astype(_F) == v, axis=1)
    cand = (codes - t).astype(_F)
    for c in (cand, np.nextafter(cand, _F(np.inf)), np.nextafter(cand, _F(-np.inf))):
        for j in range(g):
            if np.all(ok):
                break
            zj = c[:, j]
            hit = ~ok & np.all(((codes - zj[:, None]).astype(_F) * s[:, None]).astype(_F) == v,
                               axis=1)
            z = np.where(hit, zj, z)
            ok |= hit
    frac = float(np.mean(ok))
    bt = hqq_block(codes.T, s, z, g, nbits=bits, name="recovered")
    return bt, frac


def hqq_plausible(wg, vg, g, bits=4):
    """Cheap test before :func:`hqq_recover` (values alone): in every group the values over
    HQQ's min–max scale lie on one integer grid (``(q − z)`` up to float32 rounding)."""
    s = np.asarray(FR.hqq_affine(wg, bits, g).alpha, dtype=np.float64).reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.asarray(vg, dtype=np.float64) / s
    d = t - t.min(axis=1, keepdims=True)
    return bool(np.all(np.isfinite(d)) and np.all(np.abs(d - np.rint(d)) <= 1e-3)
                and np.all(d <= 2 ** bits - 1 + 1e-3))


def hqq_check(wg, bt):
    """Components, verdict and notes of an HQQ BlockTensor ``bt`` (group layout) against the
    weight in the same layout ``wg``."""
    g, bits = bt.group_size, bt.bits
    top = 2 ** bits - 1
    ref = FR.hqq_affine(wg, bits, g)
    s = np.asarray(bt.scale, dtype=np.float64).reshape(-1)
    z = np.asarray(bt.zero if bt.zero is not None else -np.asarray(bt.minimum) / bt.scale,
                   dtype=np.float64).reshape(-1)
    q = np.asarray(bt.codes)
    G = s.size
    rows = []
    inside = np.all((q >= 0) & (q <= top), axis=1)
    rows.append(Component("level set", f"integer codes 0…{top} with a float zero per group: "
                          "s·(q − z), m = −z·s", bool(np.all(inside)),
                          "" if np.all(inside) else f"{int(np.sum(~inside))} groups outside"))
    dt = _storage_dtype(s)
    s_ok = _eq(s, R.store(ref.alpha, dt or "float32"))
    words = f"min–max: s = 1/i, i = {top}/(max − min) (HQQ stores 1/scale)"
    rows.append(Component("scale rule", words if np.all(s_ok) else
                          f"not HQQ's min–max 1/i in {G - int(np.sum(s_ok))} of {G} groups",
                          bool(np.all(s_ok)), ("" if np.all(s_ok) else f"rule: {words}; ")
                          + _frac(s_ok)))
    dz = _storage_dtype(z)
    held = _file_dtype(bt)  # the file's dtype where bt is read from one (scale and zero)
    rows.append(Component("storage", f"scale (1/i) in {held or dt or 'no float dtype'}, zero "
                          f"in {held or dz or 'no float dtype'}", dt is not None and dz is not None,
                          "float32 from Quantizer.quantize; HQQLinear casts both to its "
                          "compute dtype"))
    z0 = R.store(ref.info["initial_zero"], dz or "float32")
    init = _eq(z, z0)
    moved = np.abs(z - z0)
    if np.all(init):
        rows.append(Component("zero point", "the min–max zero −min·i in every group "
                              "(optimize=False)", True))
    else:
        rows.append(Component("zero point", HQQ_UNDECIDED, None,
                              f"{G - int(np.sum(init))}/{G} groups moved from the min–max zero "
                              f"−min·i, by up to {float(moved.max()):.3g} codes ({HQQ_OPT})"))
    # Rounding: HQQ's codes round(w·i + z) with its float32 i (not 1/s) and the stored z.
    z32 = np.asarray(z, dtype=_F)
    best = None
    for mode in ROUNDINGS:
        c = FR.hqq_affine(wg, bits, g, zero=z32, rounding=mode).codes.reshape(q.shape)
        m = np.all(c == q, axis=1)
        if best is None or m.sum() > best[1].sum():
            best = (mode, m)
        if np.all(m):
            break
    mode, m = best
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.asarray(wg, dtype=np.float64) / s[:, None] + z[:, None]
    near = np.all((np.abs(y - q) <= 0.5 + 1e-4) | ((q == 0) & (y < 0))
                  | ((q == top) & (y > top)), axis=1)
    rw = f"{ROUND_WORDS[mode]} of w·i + z, clamped (codes nearest under the stored s and z)"
    if np.all(m):
        rows.append(Component("rounding", rw, mode == "half-even",
                              ("" if mode == "half-even" else "rule: half to even; ")
                              + _frac(m)))
    else:
        rows.append(Component("rounding", f"not round(w·i + z) in {G - int(m.sum())} of {G} "
                              f"groups; nearest under the stored s, z in {_frac(near)}", False,
                              f"closest: {ROUND_WORDS[mode]}, {_frac(m)}"))
    notes = [f"HQQ's zero is optimised by {HQQ_OPT} under an ℓ_0.7 loss: the output alone "
             "cannot identify it; running the same library (hqq 0.2.8.post1) on w with these "
             "settings would decide it."] if not np.all(init) else []
    dep = next((r for r in rows if r.ok is False), None)
    if dep is not None:
        return rows, False, None, f"{dep.name}: {dep.finding}", None, notes
    if not np.all(init):
        return rows, None, None, None, f"zero point: {HQQ_UNDECIDED}", notes
    return rows, True, "HQQ min–max grid, zero not optimised (optimize=False), bit for bit", \
        None, None, notes


# --- entry -------------------------------------------------------------------------------------

def is_block(bt):
    return isinstance(bt, BlockTensor) and bt.format in (TORCHAO, HQQ)


def diagnose(arr, quantized, fmt, group_size, dt):
    """``(fields, w, bt)``: the report's fields (components, passed, rule, departure,
    undecided, notes, recovered_fraction), the weight in ``bt``'s layout and ``bt``.
    ``arr`` is 2-D in the weight's layout; ``quantized`` a BlockTensor or the dequantized
    array of ``arr``'s shape; ``dt`` the dtype torchao computed in."""
    frac = 1.0
    if fmt == TORCHAO:
        if isinstance(quantized, BlockTensor):
            bt = quantized
            dt = _dt_name(bt.scale_dtype, dt)
        else:
            g = group_size or DEFAULT_GROUP[fmt]
            bt, frac = torchao_recover(arr, quantized, g, dt)
        w = arr
        out = torchao_check(w, bt, dt)
    else:
        g = quantized.group_size if isinstance(quantized, BlockTensor) else (
            group_size or DEFAULT_GROUP[fmt])
        w = FR.hqq_groups(arr, g)   # ``arr`` is always in the weight's own layout
        if isinstance(quantized, BlockTensor):
            bt = quantized
        else:
            bt, frac = hqq_recover(w, FR.hqq_groups(quantized, g), g)
        out = hqq_check(w, bt)
    rows, passed, rule, departure, undecided, notes = out
    if frac < 1.0:
        notes = notes + [f"{100 * (1 - frac):.2g} % of groups not reproduced exactly from the "
                         "values (recovered approximately)"]
    return dict(components=rows, passed=passed, rule=rule, departure=departure,
                undecided=undecided, notes=notes, recovered_fraction=frac), w, bt


def _dt_name(dtype, default):
    name = np.dtype(dtype).name
    return name if name in ("float32", "float16", "bfloat16") else default
