"""compressed-tensors checkpoints (llm-compressor, vLLM); the layout below.

``quantization_config`` (``quant_method: compressed-tensors``) names the ``format`` and, per
config group, the weights' ``num_bits``, ``symmetric``, ``strategy`` (``group``,
``channel``, ``tensor``) and ``group_size``. Two formats are read:

- ``pack-quantized``: ``P.weight_packed`` int32 [out, ⌈in·bits/32⌉], the signed codes
  ``q ∈ [−2^(b−1), 2^(b−1) − 1]`` stored as ``q + 2^(b−1)`` in a dense little-endian bit
  stream (element i at bit i·bits; compressed-tensors ``pack_to_int32``), ``P.weight_scale``
  [out, groups], ``P.weight_zero_point`` (asymmetric only) packed the same way along ``out``:
  int32 [⌈out·bits/32⌉, groups], ``P.weight_shape`` int [2] = (out, in), ``P.weight_g_idx``
  (optional, act-order);
- ``int-quantized`` (naive): ``P.weight`` int8 [out, in], ``P.weight_scale``,
  ``P.weight_zero_point`` (int, unpacked; asymmetric only).

``W = scale·(q − zero_point)``. The BlockTensor keeps the stored unsigned codes
``u = q + 2^(b−1)`` (0 … 2^b − 1) and ``zero = zero_point + 2^(b−1)`` (2^(b−1) when
symmetric), so ``u − zero = q − zero_point``.
"""

from __future__ import annotations

import re

import numpy as np

from ._block import BlockTensor
from ._packing import unpack_dense
from ._safetensors import SafetensorsCheckpoint, header_keys, load_config, quant_method

_SCALE_DTYPES = ("F16", "BF16", "F32")
_FORMATS = ("pack-quantized", "int-quantized")


def detect(path, config=None):
    """True for ``quant_method: compressed-tensors`` (or ``weight_packed`` tensors)."""
    config = load_config(path) if config is None else config
    qm = quant_method(config)
    if qm is not None:
        return qm == "compressed-tensors"
    return any(k.endswith(".weight_packed") for k in header_keys(path))


def open(path, config=None):  # noqa: A001 - the contract's name
    """Open a compressed-tensors checkpoint; see :mod:`vecq_ref.formats`."""
    return CompressedTensorsCheckpoint(path, config)


def _matches(target, prefix):
    if target.startswith("re:"):
        return re.match(target[3:], prefix) is not None
    return target == "Linear" or prefix == target or prefix.endswith("." + target)


class CompressedTensorsCheckpoint(SafetensorsCheckpoint):
    """A compressed-tensors checkpoint (pack-quantized or int-quantized)."""

    family = "compressed-tensors"
    _parts = ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape",
              "weight_g_idx", "weight")

    def __init__(self, path, config=None):
        # the format and groups are needed by _module_of, which the base calls
        self._groups = None
        super().__init__(path, config)

    def _config_groups(self):
        if self._groups is None:
            qc = self.qconfig
            self._default_format = qc.get("format")
            self._groups = [(name, grp) for name, grp in (qc.get("config_groups") or {}).items()
                            if isinstance(grp, dict)]
            self._ignore = list(qc.get("ignore") or [])
        return self._groups

    def _scheme(self, prefix):
        """(weights args dict, format) of the config group whose targets match ``prefix``."""
        groups = self._config_groups()
        for _, grp in groups:
            if any(_matches(t, prefix) for t in grp.get("targets") or ["Linear"]):
                return grp.get("weights") or {}, grp.get("format") or self._default_format
        if len(groups) == 1:
            return groups[0][1].get("weights") or {}, (groups[0][1].get("format") or
                                                        self._default_format)
        return {}, self._default_format

    def _module_of(self, key):
        if key.endswith(".weight_packed"):
            return key[: -len(".weight_packed")]
        if key.endswith(".weight") and f"{key}_scale" in self._file_of:
            return key[: -len(".weight")]  # int8 (int-quantized) or fp8 (float-quantized)
        return None

    def _read_module(self, prefix):
        args, fmt = self._scheme(prefix)
        if fmt not in _FORMATS:
            self.fail(prefix, "format", f"one of {_FORMATS} (quantization_config; others, "
                      "e.g. float-quantized fp8, are not read)", repr(fmt))
        bits = int(args.get("num_bits", 4 if fmt == "pack-quantized" else 8))
        sym = bool(args.get("symmetric", True))
        strategy = str(args.get("strategy", "group"))
        if args.get("type", "int") != "int":
            self.fail(prefix, "type", "'int' (quantization_config weights)",
                      repr(args.get("type")))
        if not 1 <= bits <= 8:
            self.fail(prefix, "num_bits", "in [1, 8]", bits)
        offset = 1 << (bits - 1)
        notes = [f"compressed-tensors {fmt}, {bits} bits, "
                 f"{'symmetric' if sym else 'asymmetric'}, strategy {strategy}"]
        scale = self.tensor(f"{prefix}.weight_scale", prefix, "weight_scale", _SCALE_DTYPES)
        if fmt == "pack-quantized":
            packed = self.tensor(f"{prefix}.weight_packed", prefix, "weight_packed",
                                 ("I32",), 2)
            rows, cols = self._weight_shape(prefix, packed, bits)
            codes = unpack_dense(packed, bits, cols)
            notes.append(f"codes stored as q + {offset} (0 … {2 * offset - 1}), dense bit "
                         "stream in int32 words")
        else:
            q = self.tensor(f"{prefix}.weight", prefix, "weight", ("I8",), 2)
            rows, cols = q.shape
            codes = np.asarray(q).astype(np.int16) + offset
            notes.append(f"int8 codes shifted by +{offset} to 0 … {2 * offset - 1}")
        scale = np.asarray(scale)
        if scale.ndim == 0 or scale.size == 1:  # strategy tensor: one scale
            scale = np.full((rows, 1), scale.reshape(-1)[0], dtype=scale.dtype)
        elif scale.ndim == 1:
            scale = scale.reshape(-1, 1)
        n_groups = scale.shape[1]
        if scale.shape[0] != rows or cols % n_groups:
            self.fail(prefix, "weight_scale", f"shape ({rows}, groups) with groups dividing "
                      f"in = {cols}", tuple(scale.shape), f"{prefix}.weight_scale")
        g = cols // n_groups
        if strategy == "group" and args.get("group_size") not in (None, g):
            self.fail(prefix, "weight_scale", f"{cols // int(args['group_size'])} groups "
                      f"(group_size {args['group_size']} in the config)",
                      f"{n_groups} groups", f"{prefix}.weight_scale")
        zero = np.full((rows, n_groups), offset, dtype=np.int64)
        if not sym:
            zero = self._zero_point(prefix, fmt, bits, rows, n_groups) + offset
        group_of_col = None
        if self.has(f"{prefix}.weight_g_idx"):
            g_idx = np.asarray(self.tensor(f"{prefix}.weight_g_idx", prefix, "weight_g_idx",
                                           ("I32", "I64"), 1)).astype(np.int64)
            self.expect_shape(prefix, "weight_g_idx", g_idx, (cols,), "in")
            if g_idx.size and (g_idx.min() < 0 or g_idx.max() >= n_groups):
                self.fail(prefix, "weight_g_idx", f"group indices in [0, {n_groups})",
                          f"values in [{g_idx.min()}, {g_idx.max()}]")
            if not np.array_equal(g_idx, np.arange(cols) // g):
                group_of_col = g_idx
                notes.append("act-order: weight_g_idx permutes the groups")
        return BlockTensor(
            name=prefix, format="compressed-tensors", kind="offset", bits=bits, group_size=g,
            codes=codes, scale=scale.astype(np.float64), scale_dtype=np.dtype(scale.dtype),
            zero=zero, group_of_col=group_of_col, value_dtype=np.dtype(scale.dtype),
            notes=tuple(notes),
            source=str(self.where(f"{prefix}.weight_scale")))

    def _weight_shape(self, prefix, packed, bits):
        if self.has(f"{prefix}.weight_shape"):
            ws = np.asarray(self.tensor(f"{prefix}.weight_shape", prefix, "weight_shape",
                                        ("I64", "I32"), 1))
            if ws.shape != (2,):
                self.fail(prefix, "weight_shape", "2 integers (out, in)", f"shape {ws.shape}",
                          f"{prefix}.weight_shape")
            rows, cols = int(ws[0]), int(ws[1])
        else:
            rows, cols = packed.shape[0], packed.shape[1] * 32 // bits
        need = -(-cols * bits // 32)
        self.expect_shape(prefix, "weight_packed", packed, (rows, need),
                          f"out × ⌈in·{bits}/32⌉ for weight_shape ({rows}, {cols})")
        return rows, cols

    def _zero_point(self, prefix, fmt, bits, rows, n_groups):
        key = f"{prefix}.weight_zero_point"
        if fmt == "pack-quantized":
            zp = self.tensor(key, prefix, "weight_zero_point", ("I32",), 2)
            self.expect_shape(prefix, "weight_zero_point", zp,
                              (-(-rows * bits // 32), n_groups),
                              f"⌈out·{bits}/32⌉ × groups, packed along out")
            return unpack_dense(np.asarray(zp).T, bits, rows).T.astype(np.int64) - (
                1 << (bits - 1))
        zp = np.asarray(self.tensor(key, prefix, "weight_zero_point", ("I8", "I32", "U8")))
        if zp.size == 1:
            return np.full((rows, n_groups), int(zp.reshape(-1)[0]), dtype=np.int64)
        zp = zp.reshape(rows, -1) if zp.ndim == 1 else zp
        self.expect_shape(prefix, "weight_zero_point", zp, (rows, n_groups), "out × groups")
        return zp.astype(np.int64)
