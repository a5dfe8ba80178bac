"""bitsandbytes NF4/FP4 checkpoints in safetensors (transformers ``load_in_4bit``): layout below.

Per quantized linear ``P`` (``bnb.nn.Linear4bit``'s state dict,
``QuantState.as_dict(packed=True)``):

=============================================  =============  ==================================
tensor                                         dtype, shape   meaning
=============================================  =============  ==================================
``P.weight``                                   uint8 [n/2, 1]  two codes per byte, the first
                                                               in the high nibble (row-major)
``P.weight.absmax``                            fp32 [blocks]   scale per block of ``blocksize``
                                               (uint8 with     (double quantization: 8-bit
                                               nested_*)       codes of absmax − offset)
``P.weight.quant_map``                         fp32 [16]       the 4-bit table in code order
``P.weight.nested_absmax``                     fp32            scale per 256 absmax codes
``P.weight.nested_quant_map``                  fp32 [256]      the 8-bit dynamic table
``P.weight.quant_state.bitsandbytes__nf4``     uint8 JSON      quant_type, blocksize, dtype,
(or ``__fp4``)                                                 shape, nested_blocksize,
                                                               nested_dtype, nested_offset
=============================================  =============  ==================================

``W.flat[i] = quant_map[q_i]·absmax[i // blocksize]``. With double quantization the absmax is
first restored as bitsandbytes' ``dequantize_4bit`` does (``functional.py``, CPU kernel
``cdequantize_blockwise_cpu_fp32``): ``absmax[b] = nested_quant_map[c_b]·nested_absmax[b //
nested_blocksize] + nested_offset``, each operation in float32. Blocks run along the flattened
weight, so ``in`` must be a multiple of ``blocksize`` for the blocks to be groups of a row.
The codebook is the file's ``quant_map`` (compared with :data:`vecq_ref.codebooks.NF4` /
``FP4_TABLE``; a difference is noted).
"""

from __future__ import annotations

import math

import numpy as np

from .. import codebooks
from ._block import BlockTensor
from ._packing import unpack_bytes_high_first
from ._safetensors import SafetensorsCheckpoint, header_keys, json_blob, load_config, quant_method

_BLOB = ".weight.quant_state.bitsandbytes__"
_DTYPES = {"float16": np.float16, "float32": np.float32, "bfloat16": "bfloat16"}


def detect(path, config=None):
    """True for ``quant_method: bitsandbytes`` with 4-bit weights, or quant-state blobs."""
    config = load_config(path) if config is None else config
    qm = quant_method(config)
    if qm is not None:
        return qm == "bitsandbytes"
    return any(_BLOB in k for k in header_keys(path))


def open(path, config=None):  # noqa: A001 - the contract's name
    """Open a bitsandbytes 4-bit checkpoint; see :mod:`vecq_ref.formats`."""
    return BitsAndBytesCheckpoint(path, config)


def _value_dtype(name):
    dt = _DTYPES.get(name)
    if isinstance(dt, str):
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return None if dt is None else np.dtype(dt)


class BitsAndBytesCheckpoint(SafetensorsCheckpoint):
    """A bitsandbytes NF4/FP4 checkpoint: ``read(name)`` → BlockTensor (kind ``"codebook"``)."""

    family = "bitsandbytes"
    _parts = ("weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax",
              "weight.nested_quant_map", "weight.quant_state.bitsandbytes__nf4",
              "weight.quant_state.bitsandbytes__fp4")

    def __init__(self, path, config=None):
        super().__init__(path, config)
        qc = self.qconfig
        if qc.get("load_in_8bit") and not qc.get("load_in_4bit"):
            raise ValueError(f"`load_in_8bit` of {self.path} must be false (LLM.int8 "
                             "checkpoints, `weight` int8 with `SCB`, are not read); got true.")

    def _module_of(self, key):
        i = key.find(_BLOB)
        return key[:i] if i > 0 else None

    def _read_module(self, prefix):
        blob_key = self._modules[prefix]
        blob_field = blob_key[len(prefix) + 1:]
        try:
            state = json_blob(self.tensor(blob_key, prefix, blob_field, ("U8",)))
        except (UnicodeDecodeError, ValueError) as exc:
            self.fail(prefix, blob_field, "a JSON object (uint8 bytes)", f"unreadable: {exc}",
                      blob_key)
        quant_type = blob_key.rsplit("__", 1)[-1]
        for field in ("shape", "blocksize", "dtype"):
            if field not in state:
                self.fail(prefix, f"{blob_field}.{field}", "present in the quant state",
                          "nothing: it is missing", blob_key)
        shape = state["shape"]
        if not (isinstance(shape, list) and len(shape) == 2 and
                all(isinstance(s, int) and s > 0 for s in shape)):
            self.fail(prefix, f"{blob_field}.shape", "2 positive integers (out, in)",
                      repr(shape), blob_key)
        rows, cols = shape
        n = rows * cols
        bs = state["blocksize"]
        if not isinstance(bs, int) or bs <= 0 or cols % bs:
            self.fail(prefix, f"{blob_field}.blocksize", f"a positive divisor of in = {cols} "
                      "(blocks run along the flattened weight)", repr(bs), blob_key)
        value_dtype = _value_dtype(state["dtype"])
        if value_dtype is None:
            self.fail(prefix, f"{blob_field}.dtype", f"one of {tuple(_DTYPES)}",
                      repr(state["dtype"]), blob_key)
        packed = self.tensor(f"{prefix}.weight", prefix, "weight", ("U8",))
        if packed.size != math.ceil(n / 2):
            self.fail(prefix, "weight", f"{math.ceil(n / 2)} bytes for shape {tuple(shape)} "
                      f"in {blob_field}", f"{packed.size} bytes (shape {packed.shape})",
                      f"{prefix}.weight")
        codes = unpack_bytes_high_first(packed, n).reshape(rows, cols)
        n_blocks = n // bs
        absmax, notes, dq = self._absmax(prefix, state, n_blocks, blob_key, blob_field)
        qmap = np.asarray(self.tensor(f"{prefix}.weight.quant_map", prefix,
                                      "weight.quant_map", ("F32",)))
        self.expect_shape(prefix, "weight.quant_map", qmap.reshape(-1), (16,), "16 entries")
        ours = codebooks.NF4 if quant_type == "nf4" else codebooks.FP4_TABLE
        codebook = qmap.reshape(-1).astype(np.float64)
        fmt = quant_type if quant_type in ("nf4", "fp4") else "nf4"
        if not np.array_equal(codebook, ours):
            notes.append(f"quant_map differs from bitsandbytes' {quant_type.upper()} table in "
                         f"{int(np.count_nonzero(codebook != ours))} entries: the file's is used")
        notes.insert(0, f"bitsandbytes {quant_type.upper()}, blocksize {bs}, values in "
                        f"{state['dtype']}")
        return BlockTensor(
            name=prefix, format=fmt, kind="codebook", bits=4, group_size=bs, codes=codes,
            scale=absmax.astype(np.float64).reshape(rows, cols // bs),
            scale_dtype=np.dtype(np.float32), codebook=codebook, value_dtype=value_dtype,
            double_quant=dq,
            notes=tuple(notes), source=str(self.where(f"{prefix}.weight")))

    def _absmax(self, prefix, state, n_blocks, blob_key, blob_field):
        key = f"{prefix}.weight.absmax"
        nested = "nested_offset" in state or self.has(f"{prefix}.weight.nested_absmax")
        absmax = np.asarray(self.tensor(key, prefix, "weight.absmax",
                                        ("U8",) if nested else ("F32",))).reshape(-1)
        self.expect_shape(prefix, "weight.absmax", absmax, (n_blocks,),
                          "one per block of the flattened weight")
        if not nested:
            return absmax.astype(np.float32), [], None
        for field in ("nested_offset", "nested_blocksize"):
            if field not in state:
                self.fail(prefix, f"{blob_field}.{field}", "present (double quantization)",
                          "nothing: it is missing", blob_key)
        nbs = state["nested_blocksize"]
        if not isinstance(nbs, int) or nbs <= 0:
            self.fail(prefix, f"{blob_field}.nested_blocksize", "a positive integer",
                      repr(nbs), blob_key)
        n2 = -(-n_blocks // nbs)
        nested_absmax = np.asarray(self.tensor(f"{prefix}.weight.nested_absmax", prefix,
                                               "weight.nested_absmax", ("F32",))).reshape(-1)
        self.expect_shape(prefix, "weight.nested_absmax", nested_absmax, (n2,),
                          f"one per {nbs} absmax codes")
        qmap2 = np.asarray(self.tensor(f"{prefix}.weight.nested_quant_map", prefix,
                                       "weight.nested_quant_map", ("F32",))).reshape(-1)
        self.expect_shape(prefix, "weight.nested_quant_map", qmap2, (256,), "256 entries")
        offset = np.float32(float(state["nested_offset"]))
        restored = (qmap2[absmax] * nested_absmax[np.arange(n_blocks) // nbs]) + offset
        note = (f"double quantization: absmax = nested_quant_map[code]·nested_absmax "
                f"(per {nbs} blocks) + offset {float(offset)!r}, in float32 as bitsandbytes "
                "restores it")
        dq = {"codes": absmax.astype(np.uint8), "nested_absmax": nested_absmax.astype(np.float32),
              "nested_quant_map": qmap2.astype(np.float32), "offset": offset,
              "nested_blocksize": int(nbs)}
        return restored.astype(np.float32), [note], dq
