"""GPTQ checkpoints in safetensors (AutoGPTQ / GPTQModel / transformers); the layout below.

Per quantized linear ``P`` (``P.weight`` in the float model):

==============  ============================  ====================================================
tensor          dtype, shape                  meaning
==============  ============================  ====================================================
``P.qweight``   int32 [in·bits/32, out]       codes packed along ``in``, element k at bits 4k…
``P.qzeros``    int32 [groups, out·bits/32]   zero points packed along ``out``
``P.scales``    fp16 [groups, out]            scale per group and output channel
``P.g_idx``     int32 [in] (optional)         group of each input column (act-order: permuted)
==============  ============================  ====================================================

``W[j, i] = scales[g, j]·(q[i, j] − z[g, j])`` with ``g = g_idx[i]``. The checkpoint format
"v1" (AutoGPTQ, and what GPTQModel saves by default) stores ``z − 1`` and loaders add 1 back
(after masking, so a stored 15 reads as z = 16); "v2" stores ``z``. The version is taken from
``checkpoint_format`` (or GPTQModel's ``format``) in ``quantize_config.json`` or the config's
``quantization_config``; without it, a symmetric quantizer's zeros decide (z = 2^(bits−1):
stored 7 is v1, stored 8 is v2 at 4 bits); asymmetric zeros cannot decide it, and v1 is
assumed. Every BlockTensor's ``notes`` say which rule decided. 2, 4 and 8 bits (3-bit words
straddle: not read).
"""

from __future__ import annotations

import numpy as np

from ._block import BlockTensor
from ._packing import unpack_words
from ._safetensors import SafetensorsCheckpoint, header_keys, load_config, quant_method

_INT32 = ("I32", "U32")
_SCALE_DTYPES = ("F16", "BF16", "F32")
_FORMAT_KEYS = ("checkpoint_format", "format")


def detect(path, config=None):
    """True when ``path`` holds a GPTQ checkpoint (``quant_method: gptq``, or ``.qweight``
    tensors laid out along ``in``: ``qweight.shape[1] == scales.shape[1]``)."""
    config = load_config(path) if config is None else config
    qm = quant_method(config)
    if qm is not None:
        return qm == "gptq"
    return _layout_from_keys(header_keys(path)) == "gptq"


def _layout_from_keys(keys):
    """``"gptq"`` / ``"awq"`` from the first ``.qweight``'s shape against its ``.scales``."""
    for k, (_, shape) in keys.items():
        if k.endswith(".qweight"):
            scales = keys.get(k[: -len("qweight")] + "scales")
            if scales is None or len(shape) != 2 or len(scales[1]) != 2:
                return None
            if shape[1] == scales[1][1]:
                return "gptq"
            if shape[1] * 8 == scales[1][1] or shape[1] * 4 == scales[1][1]:
                return "awq"
            return None
    return None


def open(path, config=None):  # noqa: A001 - the contract's name
    """Open a GPTQ checkpoint (file, index or folder); see :mod:`vecq_ref.formats`."""
    return GPTQCheckpoint(path, config)


class GPTQCheckpoint(SafetensorsCheckpoint):
    """A GPTQ checkpoint: ``names()``, ``read(name)`` → BlockTensor (kind ``"offset"``)."""

    family = "gptq"
    _parts = ("qweight", "qzeros", "scales", "g_idx")

    def __init__(self, path, config=None):
        super().__init__(path, config)
        qc = self.qconfig
        self.bits = int(qc.get("bits", qc.get("w_bit", 4)))
        gs = qc.get("group_size", qc.get("q_group_size"))
        # No quantization config: the group size is inferred from each module's shapes.
        self.group_size = None if gs is None else int(gs)
        self.sym = qc.get("sym")
        self.desc_act = qc.get("desc_act")
        named = [str(qc[k]).lower() for k in _FORMAT_KEYS if qc.get(k) is not None]
        self.checkpoint_format = named[0] if named else None
        if self.checkpoint_format not in (None, "gptq", "gptq_v2"):
            raise ValueError(f"`checkpoint_format` of {self.path} must be 'gptq' (v1) or "
                             f"'gptq_v2'; got {self.checkpoint_format!r} (a repacked layout "
                             "such as marlin is not read).")
        if self.bits not in (2, 4, 8):
            raise ValueError(f"`bits` of {self.path} must be 2, 4 or 8 (3-bit words straddle "
                             f"and are not read); got {self.bits}.")

    def _module_of(self, key):
        return key[: -len(".qweight")] if key.endswith(".qweight") else None

    def _read_module(self, prefix):
        bits, per = self.bits, 32 // self.bits
        qweight = self.tensor(f"{prefix}.qweight", prefix, "qweight", _INT32, 2)
        scales = self.tensor(f"{prefix}.scales", prefix, "scales", _SCALE_DTYPES, 2)
        qzeros = self.tensor(f"{prefix}.qzeros", prefix, "qzeros", _INT32, 2)
        cols, rows = qweight.shape[0] * per, qweight.shape[1]
        notes = []
        if self.group_size is None:
            n = scales.shape[0] if scales.ndim == 2 else 0
            g = -(-cols // n) if n else cols
            if n == 0 or -(-cols // g) != n:
                self.fail(prefix, "scales", f"groups × out for in = {cols} (no quantization "
                          "config gives the group size: config.json's quantization_config "
                          "or quantize_config.json is missing)", tuple(scales.shape),
                          f"{prefix}.scales")
            notes.append(f"no quantization config: group size {g} inferred from the shapes "
                         f"(scales {tuple(scales.shape)}, in = {cols}); {bits} bits assumed")
        else:
            g = cols if self.group_size <= 0 else self.group_size
        n_groups = -(-cols // g)
        self.expect_shape(prefix, "scales", scales, (n_groups, rows),
                          f"groups × out for in = {cols}, group_size {g}")
        self.expect_shape(prefix, "qzeros", qzeros, (n_groups, rows // per),
                          "groups × out·bits/32")
        codes = unpack_words(qweight, bits, axis=0).T
        stored = unpack_words(qzeros, bits, axis=1)
        group_of_col = None
        if self.has(f"{prefix}.g_idx"):
            g_idx = np.asarray(self.tensor(f"{prefix}.g_idx", prefix, "g_idx",
                                           ("I32", "I64"), 1)).astype(np.int64)
            self.expect_shape(prefix, "g_idx", g_idx, (cols,), "in")
            if g_idx.size and (g_idx.min() < 0 or g_idx.max() >= n_groups):
                self.fail(prefix, "g_idx", f"group indices in [0, {n_groups})",
                          f"values in [{g_idx.min()}, {g_idx.max()}]")
            if not np.array_equal(g_idx, np.arange(cols) // g):
                group_of_col = g_idx
                monotone = bool(np.all(np.diff(g_idx) >= 0))
                notes.append("act-order (desc_act): g_idx is " +
                             ("monotone but not col // group_size" if monotone else
                              "a permutation of the groups") + "; groups follow g_idx")
        if group_of_col is None and cols % g:  # a last, shorter group
            group_of_col = np.arange(cols) // g
        version, why = self._version(stored)
        zero = stored.astype(np.int64) + (1 if version == "v1" else 0)
        notes.append(f"GPTQ {version} ({why})" + (": stored zeros are z − 1, 1 added back"
                                                   if version == "v1" else
                                                   ": zeros stored as z"))
        if version == "v1" and np.any(stored == (1 << bits) - 1):
            n = int(np.count_nonzero(stored == (1 << bits) - 1))
            notes.append(f"{n} stored zeros are {(1 << bits) - 1}: read as z = {1 << bits} as "
                         "v1 loaders do (the quantizer's z = 0 underflowed; AutoGPTQ #331)")
        return BlockTensor(
            name=prefix, format="gptq", kind="offset", bits=bits, group_size=g,
            codes=codes, scale=np.asarray(scales).T.astype(np.float64),
            scale_dtype=np.dtype(scales.dtype), zero=zero.T,
            group_of_col=group_of_col, value_dtype=np.dtype(scales.dtype),
            notes=tuple(notes), source=str(self.where(f"{prefix}.qweight")))

    def _version(self, stored):
        """("v1" | "v2", how it was decided)."""
        if self.checkpoint_format is not None:
            v = "v2" if self.checkpoint_format == "gptq_v2" else "v1"
            return v, f"checkpoint_format {self.checkpoint_format!r} in the config"
        mid = 1 << (self.bits - 1)
        if self.sym is not False and stored.size and np.all(stored == stored.flat[0]):
            if stored.flat[0] == mid - 1:
                return "v1", (f"no checkpoint_format; all stored zeros are {mid - 1}, a "
                              f"symmetric quantizer's z = {mid} stored as z − 1")
            if stored.flat[0] == mid:
                return "v2", (f"no checkpoint_format; all stored zeros are {mid}, a "
                              f"symmetric quantizer's z = {mid} stored as is")
        return "v1", ("no checkpoint_format and zeros that do not decide it (asymmetric): "
                      "v1 assumed, what AutoGPTQ and GPTQModel save; a v2 file read so "
                      "would have every zero one too high")
