"""AWQ checkpoints in safetensors (AutoAWQ GEMM layout, transformers); the layout below.

Per quantized linear ``P``:

==============  ============================  ====================================================
tensor          dtype, shape                  meaning
==============  ============================  ====================================================
``P.qweight``   int32 [in, out·bits/32]       codes packed along ``out``, field k of word c is
                                              output feature 8c + [0, 2, 4, 6, 1, 3, 5, 7][k]
``P.qzeros``    int32 [in/g, out·bits/32]     zero points, the same order, stored as z (no −1)
``P.scales``    fp16 [in/g, out]              scale per group and output channel
==============  ============================  ====================================================

``W[j, i] = scales[i // g, j]·(q[i, j] − z[i // g, j])`` (AutoAWQ ``dequantize_gemm``).
Only the GEMM layout (``version: gemm``, the default) is read; GEMV and the repacked kernels'
layouts are refused with a message naming ``version``.
"""

from __future__ import annotations

import numpy as np

from ._block import BlockTensor
from ._packing import AWQ_ORDER, unpack_words
from ._safetensors import SafetensorsCheckpoint, header_keys, load_config, quant_method
from .gptq import _layout_from_keys

_INT32 = ("I32", "U32")
_SCALE_DTYPES = ("F16", "BF16", "F32")


def detect(path, config=None):
    """True for ``quant_method: awq``, or ``.qweight`` tensors packed along ``out``."""
    config = load_config(path) if config is None else config
    qm = quant_method(config)
    if qm is not None:
        return qm == "awq"
    return _layout_from_keys(header_keys(path)) == "awq"


def open(path, config=None):  # noqa: A001 - the contract's name
    """Open an AWQ (GEMM) checkpoint; see :mod:`vecq_ref.formats`."""
    return AWQCheckpoint(path, config)


class AWQCheckpoint(SafetensorsCheckpoint):
    """An AWQ GEMM checkpoint: ``read(name)`` → BlockTensor (kind ``"offset"``)."""

    family = "awq"
    _parts = ("qweight", "qzeros", "scales")

    def __init__(self, path, config=None):
        super().__init__(path, config)
        qc = self.qconfig
        self.bits = int(qc.get("bits", qc.get("w_bit", 4)))
        self.group_size = int(qc.get("group_size", qc.get("q_group_size", 128)))
        self.version = str(qc.get("version", "gemm")).lower()
        if self.version != "gemm":
            raise ValueError(f"`version` of {self.path} must be 'gemm' (the layout read "
                             f"here); got {self.version!r}.")
        if self.bits != 4:
            raise ValueError(f"`bits` of {self.path} must be 4 (AutoAWQ's GEMM packing); "
                             f"got {self.bits}.")

    def _module_of(self, key):
        return key[: -len(".qweight")] if key.endswith(".qweight") else None

    def _read_module(self, prefix):
        bits, per = self.bits, 32 // self.bits
        qweight = self.tensor(f"{prefix}.qweight", prefix, "qweight", _INT32, 2)
        scales = self.tensor(f"{prefix}.scales", prefix, "scales", _SCALE_DTYPES, 2)
        qzeros = self.tensor(f"{prefix}.qzeros", prefix, "qzeros", _INT32, 2)
        cols, rows = qweight.shape[0], qweight.shape[1] * per
        g = cols if self.group_size <= 0 else self.group_size
        if cols % g:
            self.fail(prefix, "qweight", f"in = a multiple of group_size {g}",
                      f"in = {cols}", f"{prefix}.qweight")
        n_groups = cols // g
        self.expect_shape(prefix, "scales", scales, (n_groups, rows),
                          f"in/group_size × out for in = {cols}, out = {rows}")
        self.expect_shape(prefix, "qzeros", qzeros, (n_groups, rows // per),
                          "in/group_size × out·bits/32")
        codes = unpack_words(qweight, bits, axis=1, order=AWQ_ORDER).T
        zero = unpack_words(qzeros, bits, axis=1, order=AWQ_ORDER).astype(np.int64).T
        return BlockTensor(
            name=prefix, format="awq", kind="offset", bits=bits, group_size=g,
            codes=codes, scale=np.asarray(scales).T.astype(np.float64),
            scale_dtype=np.dtype(scales.dtype), zero=zero, value_dtype=np.dtype(scales.dtype),
            notes=("AWQ GEMM layout: nibbles in order [0, 2, 4, 6, 1, 3, 5, 7] along out, "
                   "undone; zeros stored as z",),
            source=str(self.where(f"{prefix}.qweight")))
