"""The audit's measurements of one row block of one tensor (docs: :func:`vecq_ref.audit`).

Every measure is returned **per row** (float64 sums, or integer counts), computed from that
row alone: a tensor cut into row blocks (Dask tasks) gives the same per-row bits as the whole
tensor, and the audit reduces the rows with :func:`math.fsum` (correctly rounded, so in any
order). The exact optimum is per group (docs/theory.md §4.5), so it is row-separable too.

Measures (``Σh`` the importance weights, 1 without an importance matrix):

=================  ==============================================================================
``sww``            ``Σh·w²``
``shipped``        ``Σh·(w − ŵ)²``, ŵ the stored tensor dequantized as its format does
``optimum``        the same for the exact optimum of the format's level set per group
                   (:func:`vecq_ref.formats.format_level_set`, :func:`vecq_ref.search_step`)
``vecq_param``     VecQ-param (midrise, λ_k·σ, positive α) at the format's bits and group size
``vecq_exact``     VecQ-exact (midrise, weighted when ``h`` is given) at the same bits/groups
``rtn``            round-to-nearest codes under the **stored** scales (and zeros/minimums)
``rtn_diff``       count of stored codes that differ from those nearest codes
``rule_diff``      count of codes that differ from the format's reference rule (−1: none)
=================  ==============================================================================
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels.reduce import row_dql_sums

FLOAT_MEASURES = ("sww", "shipped", "optimum", "vecq_param", "vecq_exact", "rtn")
COUNT_MEASURES = ("rtn_diff", "rule_diff")


_REFERENCE = ("q4_0", "q5_0", "q8_0", "q4_1", "q5_1", "iq4_nl")


def _rule_counts(w, bt):
    """Per row: codes that differ from the format's reference rule
    (:mod:`vecq_ref.format_rules`) on ``w``; −1 where the format has none here."""
    from .. import format_rules as fr

    if bt.format not in _REFERENCE or bt.group_size != 32 or bt.group_of_col is not None:
        return np.full(w.shape[0], -1, dtype=np.int64)
    codes = getattr(fr, bt.format)(w).codes.astype(np.int64)
    if bt.format in ("q4_0", "q5_0"):
        codes = codes + 2 ** (bt.bits - 1)
    return np.count_nonzero(codes != bt.codes, axis=1).astype(np.int64)


def rows_of(bt, r0, r1):
    """``bt`` (BlockTensor) restricted to rows ``r0:r1``."""
    from dataclasses import replace

    def cut(a):
        return None if a is None else np.asarray(a)[r0:r1]

    two = None
    if bt.two_level is not None:
        two = {k: (v[r0:r1] if isinstance(v, np.ndarray) and v.ndim == 2 else v)
               for k, v in bt.two_level.items()}
    return replace(bt, codes=bt.codes[r0:r1], scale=cut(bt.scale), zero=cut(bt.zero),
                   minimum=cut(bt.minimum), two_level=two)


def _contiguous_groups(bt):
    """(column order, group size) that makes ``bt``'s groups contiguous and equal, or
    (None, group_size) when they already are."""
    if bt.group_of_col is None:
        return None, bt.group_size
    g = np.asarray(bt.group_of_col)
    counts = np.bincount(g)
    if counts.size and np.all(counts == counts[0]):
        return np.argsort(g, kind="stable"), int(counts[0])
    return False, bt.group_size


def _code_range(bt):
    if bt.kind == "codebook":
        return 0, len(bt.codebook) - 1
    if bt.format == "q8_0":
        return -128, 127
    return 0, 2 ** bt.bits - 1


def _rtn(w, bt):
    """(values, codes) of the nearest codes of ``w`` under ``bt``'s stored scales."""
    s = bt.per_element(bt.scale)
    lo, hi = _code_range(bt)
    with np.errstate(divide="ignore", invalid="ignore"):
        if bt.kind == "codebook":
            cb = np.asarray(bt.codebook, dtype=np.float64)
            order = np.argsort(cb, kind="stable")
            srt = cb[order]
            mid = (srt[1:] + srt[:-1]) / 2
            x = w / s
            q = order[np.searchsorted(mid, x, side="left")]
        elif bt.kind == "offset":
            z = bt.per_element(bt.zero).astype(np.float64)
            q = np.clip(np.rint(w / s) + z, lo, hi)
        else:
            m = bt.per_element(bt.minimum)
            q = np.clip(np.rint((w - m) / s), lo, hi)
    q = np.where(s == 0, bt.codes, q).astype(bt.codes.dtype)
    from dataclasses import replace

    values = replace(bt, codes=q).dequantize().astype(np.float64)
    return values, q


def _row_fsum(a):
    """Per row Σ in float64, correctly rounded (math.fsum): any order, same bits."""
    return np.array([math.fsum(r) for r in a], dtype=np.float64)


def _level_set(bt):
    """The format's level set (check/blocks': a codebook format uses the table it stores)."""
    from .blocks import _level_set_of

    return _level_set_of(bt)


def _optimum_rows(w, bt, h, g, exact_offset, shipped=None):
    """Per row Σ of the exact optimum's DQL over the row's groups (real offset with
    ``exact_offset`` False: the best found per group, ``search.offset_best_found``, the rule
    check/blocks uses too, with the shipped values ``shipped`` (same layout as ``w``) as one
    candidate)."""
    from ..search import offset_best_found, search_step

    lset = _level_set(bt)
    rows = w.shape[0]
    if lset.zero_point == "float" and not exact_offset:
        x = w.reshape(-1, g)
        hg = None if h is None else h.reshape(-1, g)
        loss = offset_best_found(x, hg, lset.bits,
                                 None if shipped is None else shipped.reshape(-1, g))
        return _row_fsum(loss.reshape(rows, -1))
    res = search_step(w, method="exact", lattice=lset, group_size=g, weights=h)
    rel = np.asarray(res.relative_dql, dtype=np.float64).reshape(rows, -1)
    hw = None if h is None else h.reshape(-1, g)
    sww = row_dql_sums(w.reshape(-1, g), np.zeros((w.size // g, g)), hw)[:, 0]
    sww = sww.reshape(rows, -1)
    return _row_fsum(np.where(sww > 0, rel * sww, 0.0))


def _vecq_rows(w, bt, h, g, method):
    from ..quantize import quantize

    kw = {} if (method == "param" or h is None) else {"weights": h}
    q = quantize(w, bits=bt.bits, method=method, group_size=g, **kw)
    return row_dql_sums(w, np.asarray(q.values, dtype=np.float64), h)[:, 1]


def measure_block(w, bt, h=None, *, vecq=True, optimum=True, exact_offset=True):
    """Per-row measures (module docstring) of one row block.

    Parameters
    ----------
    w : ndarray, shape (rows, cols)
        The original's rows (any float dtype; widened to float64).
    bt : BlockTensor
        The quantized tensor's same rows (:func:`rows_of`).
    h : ndarray of float, shape (rows, cols), optional
        Importance weights.
    vecq, optimum : bool
        Compute VecQ-param/exact and the exact optimum (NaN rows when False).
    exact_offset : bool
        Real-offset formats (Q4_1/Q5_1): the exact search (about 1.5 ms a group), else the
        best found, never above the shipped (the caller decides from the whole tensor, so
        every block agrees).

    Returns
    -------
    dict
        Measure name → ndarray (rows,): float64 sums or int64 counts.
    """
    w = np.ascontiguousarray(w, dtype=np.float64)
    hh = None if h is None else np.ascontiguousarray(h, dtype=np.float64)
    wq = bt.dequantize().astype(np.float64)
    base = row_dql_sums(w, np.ascontiguousarray(wq), hh)
    out = {"sww": base[:, 0], "shipped": base[:, 1]}
    rtn_vals, rtn_codes = _rtn(w, bt)
    out["rtn"] = row_dql_sums(w, np.ascontiguousarray(rtn_vals), hh)[:, 1]
    out["rtn_diff"] = np.count_nonzero(rtn_codes != bt.codes, axis=1).astype(np.int64)
    out["rule_diff"] = _rule_counts(w, bt)
    order, g = _contiguous_groups(bt)
    nan = np.full(w.shape[0], np.nan)
    wo, ho, wqo = w, hh, wq
    if order is not None and order is not False:
        wo = np.ascontiguousarray(w[:, order])
        ho = None if hh is None else np.ascontiguousarray(hh[:, order])
        wqo = np.ascontiguousarray(wq[:, order])
    usable = order is not False and wo.shape[1] % g == 0
    out["optimum"] = (_optimum_rows(wo, bt, ho, g, exact_offset, wqo) if (optimum and usable)
                      else nan)
    if vecq and usable:
        out["vecq_param"] = _vecq_rows(wo, bt, ho, g, "param")
        out["vecq_exact"] = _vecq_rows(wo, bt, ho, g, "exact")
    else:
        out["vecq_param"] = out["vecq_exact"] = nan
    return out


def combine(parts):
    """Concatenate per-row measures of row blocks given in row order."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def totals(rows):
    """Per-tensor totals of per-row measures: floats by math.fsum, counts exactly."""
    out = {}
    for k, v in rows.items():
        if k in COUNT_MEASURES:
            out[k] = int(np.sum(v)) if np.all(v >= 0) else -1
        else:
            out[k] = math.fsum(v) if not np.any(np.isnan(v)) else math.nan
    return out


def diagnosis(w, bt, h, dtype=None):
    """The diagnosis of the whole tensor, in full (check/blocks' ``summary_line`` uncut: the
    JSON/CSV keep it whole, the table wraps it; the quality figures are the audit's own, so
    ``quality=False``); ``dtype`` the original's stored dtype (``verify_format``'s)."""
    from .blocks import verify_format

    return verify_format(w, bt, weights=h, quality=False, dtype=dtype).summary_line(None)
