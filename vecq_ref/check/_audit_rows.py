"""The rows of an audit (:mod:`vecq_ref.check.audit`): one tensor's storage bits per weight,
the :class:`AuditRow` and its figures from the per-row sums (:mod:`._audit_measure`). Below
both the audit and its tasks (:mod:`._audit_task`), so neither imports the other."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import _audit_measure as M

# --- one tensor -------------------------------------------------------------------------------

def _bits_per_weight(bt):
    """Storage bits per weight: codes plus what the file stores per group (the per-format
    storage rule, in one place).

    - GGUF: the type's bytes per block (``gguf.GGML_QUANT_SIZES``: Q4_0 4.5, Q8_0 8.5, …).
    - GPTQ, AWQ: ``bits + (scale bits + bits) / group_size`` — qzeros are stored (packed at
      ``bits``) per group and output channel for symmetric GPTQ too.
    - compressed-tensors: ``bits + scale bits / group_size``, plus ``bits / group_size`` when
      it stores a zero point (asymmetric: the zeros are not all one value).
    - bitsandbytes NF4/FP4: ``4 + 32 / blocksize`` (float32 absmax); with double quantization
      ``4 + 8 / blocksize + 32 / (blocksize · nested_blocksize)`` (uint8 absmax codes, float32
      nested absmax).
    - otherwise (torchao, HQQ, …): one scale per group, two (scale, minimum) for ``kind
      "min"``, in the scale's dtype.

    Per-tensor constants (GPTQ's ``g_idx``, code tables, a double quantization's offset) are
    left out: they do not grow with the weights.
    """
    try:
        import gguf

        qt = gguf.GGMLQuantizationType[bt.format.upper()]
        block, nbytes = gguf.GGML_QUANT_SIZES[qt]
        return 8.0 * nbytes / block
    except (ImportError, KeyError):
        pass
    g = bt.group_size
    scale = 8 * np.dtype(bt.scale_dtype).itemsize
    if bt.format in ("gptq", "awq"):
        return bt.bits + (scale + bt.bits) / g
    dq = getattr(bt, "double_quant", None)
    if bt.kind == "codebook" and dq is not None:
        return bt.bits + 8 / g + 32 / (g * dq["nested_blocksize"])
    extra = scale
    if bt.kind == "min":
        extra *= 2
    elif bt.kind == "offset":
        z = np.asarray(bt.zero)
        if z.size and not np.all(z == z.flat[0]):
            extra += bt.bits
    return bt.bits + extra / g


@dataclass(frozen=True)
class AuditRow:
    """One audited tensor. Relative DQLs are ``Σh(w − ŵ)²/Σh·w²`` (h = 1 without imatrix)."""

    quantized_name: str
    original_name: str
    format: str
    shape: tuple
    bits_per_weight: float
    rel_dql: float
    optimum_rel_dql: float
    gap_pct: float
    vecq_param_rel_dql: float
    vecq_exact_rel_dql: float
    not_nearest_share: float
    not_nearest_cost_pct: float
    rule_share: float
    diagnosis: str
    notes: tuple = ()
    remark: str = ""
    sums: dict = field(default_factory=dict)

    @property
    def n(self):
        """Parameter count."""
        return int(np.prod(self.shape))

    def as_dict(self):
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)


def _gap(x, opt):
    if not (opt > 0) or math.isnan(x):
        return 0.0 if x == opt else math.nan
    return 100.0 * (x / opt - 1.0)


def _row_from(qname, oname, info, sums, diagnosis):
    sww = sums["sww"]
    n = int(np.prod(info["shape"]))

    def rel(k):
        v = sums[k]
        if math.isnan(v):
            return math.nan
        return v / sww if sww > 0 else 0.0

    r = rel("shipped")
    if r > 1.0:
        raise ValueError(
            f"`quantized` tensor {qname!r} does not belong with `original` tensor {oname!r}: "
            f"their shapes agree but the relative DQL is {r:.4g} > 1 (worse than all zeros); "
            "wrong pairing")
    opt = rel("optimum")
    rtn = rel("rtn")
    remark = info.get("remark", "")
    if info["format"] == "gptq":
        remark = (f"GPTQ's error feedback: {100 * sums['rtn_diff'] / n:.2f} % of codes are not "
                  f"RTN of the stored scales, {_gap(r, rtn):+.2f} % weight DQL (by design)")
    return AuditRow(
        quantized_name=qname, original_name=oname, format=info["format"],
        shape=tuple(info["shape"]), bits_per_weight=info["bpw"], rel_dql=r,
        optimum_rel_dql=opt, gap_pct=_gap(r, opt), vecq_param_rel_dql=rel("vecq_param"),
        vecq_exact_rel_dql=rel("vecq_exact"),
        not_nearest_share=sums["rtn_diff"] / n,
        not_nearest_cost_pct=_gap(r, rtn),
        rule_share=(sums["rule_diff"] / n) if sums["rule_diff"] >= 0 else math.nan,
        diagnosis=diagnosis, notes=tuple(info.get("notes", ())), remark=remark,
        sums={k: (float(v) if k in M.FLOAT_MEASURES else int(v)) for k, v in sums.items()})
