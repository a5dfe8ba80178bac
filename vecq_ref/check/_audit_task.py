"""The audit's unit of work: one row block of one tensor, the same in-process and on Dask.

A task opens the two checkpoints by path (kept open per process: a worker reads many blocks)
and reads the one tensor it needs (the last tensor read is kept, so the next block of the same
tensor does not read it again). Everything a task returns is plain data: per-row arrays and a
few facts about the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _audit_measure as M

_OPEN = {}
_LAST = {}


@dataclass(frozen=True)
class TensorSpec:
    """What a worker needs to measure one tensor: paths, reader, names, shape, row blocks and
    the importance vector (per input column) or None, and the group limit of the certified
    exact real-offset optimum (``EXACT_OFFSET_GROUPS`` of :mod:`vecq_ref.check.audit`)."""

    original: str
    quantized: str
    reader: object
    qname: str
    oname: str
    shape: tuple
    blocks: list
    imatrix: object = None
    exact_offset_groups: int = 1024


def forget():
    """Close what this process keeps open (the serial run calls it at the end)."""
    for ctx, _ in _OPEN.values():
        ctx.__exit__(None, None, None)
    _OPEN.clear()
    _LAST.clear()


def _opened(kind, path, reader=None):
    key = (kind, path)
    if key not in _OPEN:
        if kind == "original":
            from .. import io

            ctx = io.open_tensors(path, "original")
            _, get = ctx.__enter__()
            _OPEN[key] = (ctx, get)
        else:
            ckpt = reader(path)
            ckpt.__enter__()
            _OPEN[key] = (ckpt, ckpt.read)
    return _OPEN[key][1]


#: Tensors kept per kind (original, quantized): a worker often gets the next block of the
#: tensor it just read, or of the one before.
_KEEP = 2


def _tensor(kind, path, name, reader=None):
    key = (kind, path, name)
    kept = _LAST.setdefault(kind, [])
    for i, (k, value) in enumerate(kept):
        if k == key:
            kept.insert(0, kept.pop(i))
            return value
    value = _opened(kind, path, reader)(name)
    kept.insert(0, (key, value))
    del kept[_KEEP:]
    return value


def _original(spec):
    from .. import io

    return io.as_float(np.asarray(_tensor("original", spec.original, spec.oname)))


def _checkpoint(spec):
    _opened("quantized", spec.quantized, spec.reader)
    return _OPEN[("quantized", spec.quantized)][0]


def _quantized(spec, prep=None):
    """The quantized tensor; as stored (rows not unpermuted) where :func:`prepare` found that
    the stored order is the original's (a converter that did not permute Q/K)."""
    if prep is not None and prep.get("stored_rows"):
        key = spec.qname + "\0stored"
        kept = _LAST.setdefault("quantized", [])
        hit = [v for k, v in kept if k == ("quantized", spec.quantized, key)]
        if hit:
            return hit[0]
        bt = _checkpoint(spec).read(spec.qname, unpermute=False)
        from dataclasses import replace

        note = (f"rows of {spec.qname} kept as stored: they fit the original without undoing "
                "llama.cpp's Q/K permutation (a converter that did not apply it)")
        if hasattr(bt, "codes"):
            bt = replace(bt, notes=tuple(n for n in bt.notes if "permuted" not in n) + (note,))
        kept.insert(0, (("quantized", spec.quantized, key), bt))
        del kept[_KEEP:]
        return bt
    return _tensor("quantized", spec.quantized, spec.qname, spec.reader)


def _stored_rows_fit(spec, bt):
    """True when the reader would undo a Q/K permutation the file does not have: the stored
    row order is closer to the original than the unpermuted one (formats._open's test)."""
    ckpt = _checkpoint(spec)
    perm = ckpt.permutation(spec.qname) if hasattr(ckpt, "permutation") else None
    if perm is None or not hasattr(bt, "codes") or tuple(bt.shape) != tuple(spec.shape):
        return False
    w = _original(spec).reshape(spec.shape).astype(np.float64)
    undone = bt.dequantize(np.float64)
    stored = undone[perm[0]]
    return bool(np.sum((w - stored) ** 2) < np.sum((w - undone) ** 2))


def _weights(spec, w, bt):
    """Importance h of rows ``w`` as llama.cpp derives it for ``bt``'s format, or None."""
    if spec.imatrix is None:
        return None
    from ..format_rules import IMATRIX_TYPES, imatrix_weights

    vec = np.asarray(spec.imatrix, dtype=np.float64)
    if bt.format in IMATRIX_TYPES:
        h = imatrix_weights(w, vec, bt.format)
        if h is not None:
            return np.asarray(h, dtype=np.float64)
        return None
    return np.broadcast_to(vec, w.shape).astype(np.float64)


def _check(spec, bt):
    """None if ``bt`` can be measured against the original; else a result dict saying why."""
    if not hasattr(bt, "codes"):
        arr = np.asarray(bt)
        return {"kind": "float", "why": f"left in float ({arr.dtype})"}
    if tuple(bt.shape) != tuple(spec.shape):
        shape = tuple(bt.shape)
        why = (f"shape {shape} is the original's {tuple(spec.shape)} transposed"
               if shape == tuple(spec.shape)[::-1] else
               f"shape {shape} differs from the original's {tuple(spec.shape)} "
               "(fused or split tensor?)")
        return {"kind": "mismatch", "why": why}
    return None


#: AWQ's folded per-input-channel scales are taken as present when the per-column fit spans
#: more than this ratio (max/min); quantization noise alone moves a column's fit by ~√(DQL/rows).
AWQ_FOLDED_RATIO = 1.2


def _column_fit(w, wq):
    """Per column c the least-squares s_c with ``wq[:, c] ≈ s_c·w[:, c]`` (correctly rounded
    sums, math.fsum: the same bits on every machine); 1 for an all-zero column."""
    import math

    num = np.array([math.fsum(col) for col in (w * wq).T])
    den = np.array([math.fsum(col) for col in (w * w).T])
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def prepare(spec):
    """What every block of the tensor needs from the whole of it, or None: ``stored_rows``
    (GGUF Q/K rows that were never permuted, :func:`_stored_rows_fit`), and for AWQ the
    per-column fit of the folded scales (``fit``, ``folded``)."""
    family = getattr(_checkpoint(spec), "family", None)
    if family == "gguf":
        ckpt = _checkpoint(spec)
        if not hasattr(ckpt, "permutation") or ckpt.permutation(spec.qname) is None:
            return None
        bt = _quantized(spec)
        return {"stored_rows": True} if _stored_rows_fit(spec, bt) else None
    if family in ("gptq", "compressed-tensors", "bitsandbytes"):
        return None  # no folded scales: spare the read
    bt = _quantized(spec)
    if getattr(bt, "format", None) != "awq" or _check(spec, bt) is not None:
        return None
    w = _original(spec).reshape(spec.shape).astype(np.float64)
    fit = _column_fit(w, bt.dequantize().astype(np.float64))
    pos = fit[fit > 0]
    folded = bool(pos.size) and float(pos.max() / pos.min()) > AWQ_FOLDED_RATIO
    return {"fit": fit, "folded": folded}


def _scaled(w, prep):
    """The original the quantizer saw: AWQ's columns times the fitted scales."""
    if prep is None or not prep.get("folded"):
        return w
    return w * prep["fit"][None, :]


def run_block(spec, r0, r1, prep=None):
    """Measures of rows ``r0:r1`` of ``spec``'s tensor: ``{"kind": "ok", "rows": {...}}``, or
    the reason it is not measured. ``prep``: :func:`prepare`'s result."""
    bt = _quantized(spec, prep)
    bad = _check(spec, bt)
    if bad is not None:
        return bad
    w = _scaled(_original(spec).reshape(spec.shape)[r0:r1], prep)
    part = M.rows_of(bt, r0, r1)
    h = _weights(spec, w, part)
    return {"kind": "ok",
            "rows": M.measure_block(w, part, h, exact_offset=_exact_offset(spec, bt))}


def info_of(spec, prep=None):
    """Facts about the quantized tensor the row needs (read on the process that calls it)."""
    from ._audit_rows import _bits_per_weight

    bt = _quantized(spec, prep)
    notes = list(bt.notes)
    if bt.two_level is not None:
        notes.append("two-level scales: the optimum has every sub-block at its own optimum "
                     "(scales unconstrained), a bound")
    if bt.kind == "min" and not _exact_offset(spec, bt):
        from .blocks import BEST_FOUND

        notes.append(f"real offset, more than {spec.exact_offset_groups} groups: the optimum "
                     f"is {BEST_FOUND}")
    info = {"format": bt.format, "shape": list(spec.shape), "bpw": _bits_per_weight(bt),
            "notes": notes}
    if prep is not None and "fit" in prep:
        fit = prep["fit"]
        lo, hi = float(fit.min()), float(fit.max())
        info["remark"] = (f"AWQ scales folded in per input channel (fit {lo:.3g}…{hi:.3g}): "
                          "measured against the scaled original" if prep["folded"] else
                          f"AWQ: no folded per-channel scales found (fit {lo:.3g}…{hi:.3g})")
    return info


def diagnose(spec, prep=None):
    """The one-line diagnosis of the whole tensor (check/blocks), in the original's dtype
    (the torch quantizers compute in it)."""
    bt = _quantized(spec, prep)
    w = _scaled(_original(spec).reshape(spec.shape), prep)
    dtype = np.asarray(_tensor("original", spec.original, spec.oname)).dtype.name
    return M.diagnosis(w, bt, _weights(spec, w, bt), dtype)


def _exact_offset(spec, bt):
    """Real-offset formats: the certified exact optimum (about 1.5 ms a group) only up to
    ``spec.exact_offset_groups`` groups (decided from the whole tensor, so every block of it
    agrees)."""
    return int(np.prod(spec.shape)) // bt.group_size <= spec.exact_offset_groups


def assemble(spec, parts, info, diagnosis_line):
    """The resume record of one tensor from its blocks' results (in row order)."""
    from ._audit_rows import _row_from

    for p in parts:
        if p["kind"] != "ok":
            return p
    rows = M.combine([p["rows"] for p in parts])
    sums = M.totals(rows)
    row = _row_from(spec.qname, spec.oname, info, sums, diagnosis_line(sums))
    return {"kind": "ok", "row": row.as_dict()}


def run_tensor(spec):
    """Measure one tensor in this process, block by block."""
    prep = prepare(spec)
    parts = [run_block(spec, r0, r1, prep) for r0, r1 in spec.blocks]
    if parts[0]["kind"] != "ok":
        return parts[0]
    return assemble(spec, parts, info_of(spec, prep), lambda sums: diagnose(spec, prep))
