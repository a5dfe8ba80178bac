"""STAND-INS for the audit, until the readers (R1: ``vecq_ref.formats.open_quantized``) and the
block-format diagnosis (D: ``vecq_ref.check.blocks``) are on main. The lead removes this module
at merge; nothing outside :mod:`vecq_ref.check._audit_measure` imports it.

- :func:`_fallback_open_gguf`: a minimal GGUF reader following the reader contract of
  :mod:`vecq_ref.formats` (Q4_0, Q8_0, Q4_1 unpacked; F32/F16/BF16 as floats; names through the
  ``gguf`` package's tensor-name maps; the row permutation llama.cpp's converter applies to
  LLaMA Q and K undone).
- :func:`_fallback_diagnosis`: a one-line diagnosis from the share of codes that differ from the
  format's reference rule (:mod:`vecq_ref.format_rules`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# --- GGUF (stand-in for formats/llamacpp.py) ---------------------------------------------------

#: GGUF type name → (format, bits, kind, zero) of the stand-in's unpackers.
_UNPACKED = {"Q4_0": ("q4_0", 4, "offset", 8), "Q8_0": ("q8_0", 8, "offset", 0),
             "Q4_1": ("q4_1", 4, "min", None)}
_FLOAT = {"F32": np.float32, "F16": np.float16}


def _unpermute(w, n_head):
    """Undo llama.cpp's converter permutation of Q/K rows (``reshape(n_head, 2, d/2, …)``,
    axes 1 and 2 swapped): the inverse view swaps them back."""
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


class _GGUFCheckpoint:
    family = "gguf"

    def __init__(self, path):
        import gguf

        self.path = str(path)
        try:
            self._reader = gguf.GGUFReader(path, "r")
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise ValueError(f"{path}: not a readable GGUF file ({exc})") from None
        self._tensors = {t.name: t for t in self._reader.tensors}
        self.architecture = self._field("general.architecture")
        n_blocks = self._field(f"{self.architecture}.block_count") or 0
        self._n_head = self._field(f"{self.architecture}.attention.head_count")
        self._n_head_kv = self._field(f"{self.architecture}.attention.head_count_kv")
        arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(self.architecture)
        self._map = gguf.TensorNameMap(arch, int(n_blocks)) if arch is not None else None

    def _field(self, key):
        f = self._reader.fields.get(key)
        if f is None:
            return None
        value = f.parts[f.data[0]]
        if f.types and f.types[0].name == "STRING":
            return bytes(value).decode("utf-8")
        return value.tolist()[0]

    def names(self):
        return list(self._tensors)

    def quantized_name(self, original):
        if self._map is None:
            return None
        return self._map.get_name(original, try_suffixes=(".weight", ".bias"))

    def original_name(self, name):
        return None

    def _permutation(self, name):
        if self.architecture != "llama" or not self._n_head:
            return None
        if name.endswith("attn_q.weight"):
            return int(self._n_head)
        if name.endswith("attn_k.weight"):
            return int(self._n_head_kv or self._n_head)
        return None

    def read(self, name):
        from ..formats import BlockTensor

        t = self._tensors[name]
        kind = t.tensor_type.name
        cols = int(t.shape[0])
        rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
        heads = self._permutation(name)
        if kind in _FLOAT:
            arr = np.asarray(t.data).reshape(rows, cols) if len(t.shape) > 1 \
                else np.asarray(t.data)
            return _unpermute(arr, heads) if heads else arr
        if kind not in _UNPACKED:
            raise ValueError(f"{self.path}: tensor {name!r}: type {kind} is not read by the "
                             "audit's stand-in GGUF reader (Q4_0, Q8_0, Q4_1, F32, F16)")
        fmt, bits, bkind, zero = _UNPACKED[kind]
        raw = np.asarray(t.data, dtype=np.uint8).reshape(rows, -1)
        nb = cols // 32
        blocks = raw.reshape(rows, nb, -1)
        d = blocks[..., :2].copy().view(np.float16)[..., 0].astype(np.float64)
        minimum = None
        if fmt == "q4_0":
            qs = blocks[..., 2:]
            codes = np.concatenate([qs & 15, qs >> 4], axis=-1).astype(np.int8)
        elif fmt == "q4_1":
            minimum = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float64)
            qs = blocks[..., 4:]
            codes = np.concatenate([qs & 15, qs >> 4], axis=-1).astype(np.int8)
        else:
            codes = blocks[..., 2:].copy().view(np.int8)
        codes = codes.reshape(rows, cols)
        notes = ()
        if heads:
            codes = _unpermute(codes, heads)
            d = _unpermute(d, heads)
            minimum = None if minimum is None else _unpermute(minimum, heads)
            notes = (f"rows permuted by llama.cpp's converter ({heads} heads): undone",)
        return BlockTensor(
            name=name, format=fmt, kind=bkind, bits=bits, group_size=32, codes=codes,
            scale=d, scale_dtype=np.dtype(np.float16),
            zero=None if zero is None else np.broadcast_to(np.int64(zero), d.shape),
            minimum=minimum, value_dtype=np.dtype(np.float32), notes=notes,
            source=self.path)

    def close(self):
        self._reader = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fallback_open_gguf(path):
    """Open a GGUF file with the stand-in reader (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return _GGUFCheckpoint(path)


# --- diagnosis (stand-in for check/blocks.py's summary_line) ------------------------------------

_REFERENCE = {"q4_0": "llama.cpp Q4_0", "q5_0": "llama.cpp Q5_0", "q8_0": "llama.cpp Q8_0",
              "q4_1": "llama.cpp Q4_1", "q5_1": "llama.cpp Q5_1", "iq4_nl": "llama.cpp IQ4_NL"}


def _reference_codes(w, bt):
    """Codes of the format's reference rule on ``w`` in ``bt``'s numbering, or None."""
    from .. import format_rules as fr

    fmt = bt.format
    if fmt not in _REFERENCE or bt.group_size != 32:
        return None
    q = getattr(fr, fmt)(w)
    codes = q.codes.astype(np.int64)
    if fmt in ("q4_0", "q5_0"):
        codes = codes + 2 ** (bt.bits - 1)
    return codes


def _fallback_rule_counts(w, bt):
    """Per row: codes differing from the format's reference rule on ``w`` (−1 when the format
    has no reference rule here)."""
    ref = _reference_codes(w, bt)
    if ref is None:
        return np.full(w.shape[0], -1, dtype=np.int64)
    return np.count_nonzero(ref != bt.codes, axis=1).astype(np.int64)


def _fallback_diagnosis(fmt, n, rule_diff, rtn_diff):
    """One line (≤ 100 characters) from the counts over the whole tensor."""
    name = _REFERENCE.get(fmt)
    if rule_diff == 0 and name:
        return f"{name} reference rule, bit for bit"
    parts = []
    if name and rule_diff > 0:
        parts.append(f"{100 * rule_diff / n:.2f} % of codes differ from the {name} reference"
                     " rule")
    if rtn_diff:
        parts.append(f"{100 * rtn_diff / n:.2f} % not nearest under the stored scales")
    if not parts:
        return "codes nearest under the stored scales; no reference rule to compare"
    return "; ".join(parts)[:100]
