"""Codes and scales of a block format recovered from its dequantized values (issue 22).

Private to :mod:`vecq_ref.check.blocks`. Given ``wq`` (what a format's dequantizer returned)
and a candidate format, every group's values must be ``s·ℓ`` (+ ``m``) with ``ℓ`` in the
format's level set: the scale is the largest ``|s|`` for which every ``value/s`` is a level
(the coarsest consistent grid), then snapped to the storage dtype that reproduces the values.
A group whose values are all equal fixes no scale: it is recovered with the rule's scale
when the caller gives one (``hint``), else 0.
"""

from __future__ import annotations

import numpy as np

from ..formats._block import BlockTensor
from . import _block_rules as R

_F = np.float32
#: |value/s − level| allowed, in units of the level step (float32 products, sums).
_TOL = 2.0 ** -12
#: Relative error of a value rounded to float16 or bfloat16 (their unit roundoffs ≤ 2^-8).
_LOOSE = 2.0 ** -8


def _as_values(lev, s, m, dtype):
    """float32 dequantized values of levels ``lev`` (float64) with stored ``s`` and ``m``."""
    with np.errstate(over="ignore", invalid="ignore"):
        v = (s.astype(_F)[:, None] * lev.astype(_F)).astype(_F)
        if m is not None:
            v = (v + m.astype(_F)[:, None]).astype(_F)
    return v


def _snap(v, lev, s64, m64, dtypes):
    """Per group the stored scale (and minimum) in the first dtype of ``dtypes`` whose float32
    dequantization reproduces ``v`` exactly; else ``s64`` (float64, not representable)."""
    s_out, m_out = s64.copy(), None if m64 is None else m64.copy()
    done = np.zeros(v.shape[0], dtype=bool)
    for dt in dtypes:
        s_try = R.store(s64, dt)
        m_try = None if m64 is None else R.store(m64, dt)
        for nudge in (0, 1, -1):  # the float32 neighbours of s (s recovered from a rounded value)
            st = s_try if nudge == 0 else R.store(np.nextafter(
                s64.astype(_F), _F(np.inf) * nudge).astype(np.float64), dt)
            vals = _as_values(lev, st, m_try, dt)
            ok = ~done & np.all(vals == v, axis=1)
            if dt in ("float16", "bfloat16"):
                # dequantized in the scale's dtype (torch on an fp16/bf16 tensor): the
                # product s·ℓ (+ m) rounded to it
                ok |= ~done & np.all(R.store(vals, dt).astype(_F) == v, axis=1)
            s_out[ok] = st[ok]
            if m64 is not None:
                m_out[ok] = m_try[ok]
            done |= ok
    return s_out, m_out, done


def recover(wq, spec, group_size, hint=None):
    """``(BlockTensor, recovered)`` of ``wq`` (float array, rows × cols) as ``spec``'s format,
    ``recovered`` the fraction of groups whose values are exactly reproduced; ``(None, 0.0)``
    when no group fits the level set. ``hint``: per-group float32 scales to use where the
    values fix none (all equal)."""
    rows, cols = wq.shape
    v = np.ascontiguousarray(wq, dtype=_F).reshape(-1, group_size)
    v64 = v.astype(np.float64)
    G = v.shape[0]
    if spec.kind == "codebook":
        return _codebook(v, v64, spec, rows, cols, group_size)
    if spec.kind == "min":
        mn = v64.min(axis=1)
        span = v64.max(axis=1) - mn
        top = 2 ** spec.bits - 1
        s = np.zeros(G)
        lev = np.zeros_like(v64)
        found = np.zeros(G, dtype=bool)
        for c in range(1, top + 1):
            sc = span / c
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (v64 - mn[:, None]) / sc[:, None]
            ok = ~found & (span > 0) & np.all(np.abs(r - np.rint(r)) <= 64 * _TOL, axis=1)
            s[ok], lev[ok] = sc[ok], np.rint(r[ok])
            found |= ok
        flat = span == 0
        if hint is not None:
            s[flat] = hint[flat]
        s_st, m_st, exact = _snap(v, lev, s, mn, (R.SPECS[spec.key].recipe["storage"],
                                                   "float16", "bfloat16", "float32"))
        bt = BlockTensor("recovered", spec.family, "min", spec.bits, group_size,
                         lev.astype(np.int64).reshape(rows, cols),
                         s_st.reshape(rows, -1), np.dtype(np.float64),
                         minimum=m_st.reshape(rows, -1), notes=("recovered from values",))
        return bt, float(np.mean(exact | flat))
    # offset kind: levels c − z; the scale's sign free only for formats with a signed scale.
    lo, hi = spec.code_lo, spec.code_hi
    zf = spec.zero_fixed
    amax_i = np.argmax(np.abs(v64), axis=1)
    vmax = v64[np.arange(G), amax_i]
    s = np.zeros(G)
    lev = np.zeros_like(v64)
    z = np.zeros(G, dtype=np.int64) if zf is None else np.full(G, zf, dtype=np.int64)
    found = np.zeros(G, dtype=bool)
    top = max(abs(lo - (zf or 0)), abs(hi - (zf or 0))) if zf is not None else hi - lo
    signs = (-1.0, 1.0) if spec.key in ("q4_0", "q5_0") else (1.0,)
    # Values exactly s·ℓ first; then values s·ℓ rounded to a narrow dtype (an fp16/bf16
    # product: |value/s − ℓ| ≤ u·|ℓ|, u = 2^-8 covers both), whose codes are still the
    # format's (recovered approximately: no stored scale reproduces them bit for bit).
    for loose in (0.0, _LOOSE):
        for c in range(1, top + 1):
            for sign in signs:
                sc = sign * np.abs(vmax) / c
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = v64 / sc[:, None]
                ri = np.rint(r)
                ok = ~found & (vmax != 0) & np.all(np.abs(r - ri) <= _TOL + loose * np.abs(ri),
                                                   axis=1)
                if zf is not None:
                    ok &= (ri.min(axis=1) >= lo - zf) & (ri.max(axis=1) <= hi - zf)
                else:
                    ok &= ri.max(axis=1) - ri.min(axis=1) <= hi - lo
                s[ok], lev[ok] = sc[ok], ri[ok]
                found |= ok
    flat = vmax == 0
    if hint is not None:
        s[flat] = hint[flat]
    if zf is None:  # the zero point: the smallest that puts every code in range
        top_u = spec.code_hi - spec.code_lo
        z = np.minimum(np.maximum(-lev.min(axis=1), 0), top_u - lev.max(axis=1))
        z = z.astype(np.int64) + spec.code_lo  # compressed-tensors numbers codes from −2^(k−1)
    s_st, _, exact = _snap(v, lev, s, None, (spec.recipe["storage"], "float16", "bfloat16",
                                            "float32"))
    codes = (lev + z[:, None]).astype(np.int64)
    zero = z.reshape(rows, -1)
    bt = BlockTensor("recovered", spec.family, "offset", spec.bits, group_size,
                     codes.reshape(rows, cols), s_st.reshape(rows, -1), np.dtype(np.float64),
                     zero=zero, notes=("recovered from values",))
    ok_frac = float(np.mean((exact & found) | flat))
    return (bt, ok_frac) if np.any(found | flat) else (None, 0.0)


def _codebook(v, v64, spec, rows, cols, g):
    G = v.shape[0]
    table = spec.table
    amax_i = np.argmax(np.abs(v64), axis=1)
    vmax = v64[np.arange(G), amax_i]
    s = np.zeros(G)
    idx = np.zeros(v.shape, dtype=np.int64)
    found = np.zeros(G, dtype=bool)
    order = np.argsort(np.abs(table))[::-1]  # largest |entry| first: the largest |s|
    srt = np.argsort(table, kind="stable")
    ts = table[srt]
    for loose in (0.0, _LOOSE):  # exact products first, then fp16/bf16-rounded ones
        for j in order:
            if table[j] == 0:
                continue
            sc = vmax / table[j]
            if spec.family != "iq4_nl":
                ok_sign = sc > 0
            else:
                ok_sign = np.ones(G, dtype=bool)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = v64 / sc[:, None]
            pos = np.clip(np.searchsorted(ts, r), 1, ts.size - 1)
            near = np.where(np.abs(r - ts[pos - 1]) <= np.abs(ts[pos] - r), pos - 1, pos)
            err = np.abs(r - ts[near])
            tol = _TOL * np.max(np.abs(table)) + loose * np.abs(ts[near])
            ok = ~found & ok_sign & (vmax != 0) & np.all(err <= tol, axis=1)
            s[ok], idx[ok] = sc[ok], srt[near[ok]]
            found |= ok
    flat = vmax == 0
    zero_code = int(np.argmin(np.abs(table)))
    idx[flat] = zero_code
    lev = table[idx]
    s_st, _, exact = _snap(v, lev, s, None, (spec.recipe["storage"], "float16", "bfloat16",
                                            "float32"))
    bt = BlockTensor("recovered", spec.family, "codebook", spec.bits, g, idx.reshape(rows, cols),
                     s_st.reshape(rows, -1), np.dtype(np.float64), codebook=table,
                     notes=("recovered from values",))
    return ((bt, float(np.mean((exact & found) | flat))) if np.any(found | flat)
            else (None, 0.0))


def unknown_codebook(wq, g, max_levels=16):
    """An unknown codebook of at most ``max_levels`` entries shared by every group up to a
    positive per-group scale (the group's max |value|), or None. Returns ``(BlockTensor,
    table)``."""
    rows, cols = wq.shape
    v64 = np.asarray(wq, dtype=np.float64).reshape(-1, g)
    amax = np.max(np.abs(v64), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(amax[:, None] > 0, v64 / amax[:, None], 0.0)
    key = np.rint(r * 2 ** 20) / 2 ** 20
    table = np.unique(key)
    if table.size > max_levels or table.size < 2:
        return None
    idx = np.searchsorted(table, key)
    bits = int(np.ceil(np.log2(table.size)))
    bt = BlockTensor("recovered", "codebook", "codebook", bits, g, idx.reshape(rows, cols),
                     amax.reshape(rows, -1), np.dtype(np.float64), codebook=table,
                     notes=(f"an unknown {table.size}-entry codebook recovered from the "
                            "values",))
    return bt, table
