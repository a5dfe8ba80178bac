"""GGUF on disk: the header checked field by field, and llama.cpp's blocks unpacked.

The header walk (:func:`scan`) reads what the GGUF format puts before the tensor data (magic,
version, metadata, tensor descriptions; ``gguf/gguf_reader.py`` and llama.cpp's
``docs/gguf.md`` describe it) and refuses a file whose fields do not fit: one ``ValueError``
naming the file, the tensor or metadata key, and the field. The ``gguf`` package's reader,
which is then trusted with the file, reports a truncated file as a failed ``reshape``.

The unpackers (:data:`UNPACK`) turn the raw blocks of one tensor, shape
``(n_blocks, type_size)`` bytes, into integer codes ``(n_blocks, block_size)`` and per-group
parameters, after the block layouts of ``ggml-common.h`` (the ``block_q4_0`` … ``block_q6_k``
structs) as gguf-py's ``quants.py`` dequantizes them. The tests compare the result with
``gguf.quants.dequantize`` bit for bit.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from ..codebooks import IQ4_NL

GGUF_MAGIC = b"GGUF"
QK_K = 256

# GGUF metadata value types: code → (struct format, size) for the fixed-size ones.
_SCALARS = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4),
            6: ("f", 4), 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
_STRING, _ARRAY = 8, 9


class _Bytes:
    """A cursor over the header bytes; running past the end names what was being read."""

    def __init__(self, fh, size):
        self.fh, self.size, self.pos = fh, size, 0

    def take(self, n, what):
        if n < 0 or self.pos + n > self.size:
            raise _Short(what, self.pos + n)
        self.fh.seek(self.pos)
        data = self.fh.read(n)
        self.pos += n
        return data

    def unpack(self, fmt, what):
        size = struct.calcsize(fmt)
        return struct.unpack("<" + fmt, self.take(size, what))[0]

    def string(self, what):
        n = self.unpack("Q", f"{what} (length)")
        if n > self.size:  # a corrupt length: do not try to read terabytes
            raise _Short(what, self.pos + n)
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Bad(what, f"is not UTF-8 ({exc.reason})") from None


class _Short(Exception):
    def __init__(self, what, end):
        super().__init__(what)
        self.what, self.end = what, end


class _Bad(Exception):
    def __init__(self, what, why):
        super().__init__(what)
        self.what, self.why = what, why


def _value(cur, vtype, what, keep):
    """One metadata value (arrays skipped unless small); ``keep`` False skips strings too."""
    if vtype in _SCALARS:
        fmt, _ = _SCALARS[vtype]
        return cur.unpack(fmt, what)
    if vtype == _STRING:
        return cur.string(what)
    if vtype == _ARRAY:
        itype = cur.unpack("I", f"{what} (element type)")
        count = cur.unpack("Q", f"{what} (element count)")
        if itype in _SCALARS:
            size = _SCALARS[itype][1]
            if count * size > cur.size:
                raise _Short(what, cur.pos + count * size)
            cur.take(count * size, what)
            return None
        if itype not in (_STRING, _ARRAY):
            raise _Bad(f"{what} (element type)", f"is {itype}, not a GGUF value type")
        for i in range(count):
            _value(cur, itype, f"{what}[{i}]", False)
        return None
    raise _Bad(f"{what} (type)", f"is {vtype}, not a GGUF value type")


def scan(path):
    """Check the header of the GGUF file ``path`` against its size and its own fields.

    Returns
    -------
    dict
        ``metadata``: {key: value} of the scalar and string metadata (arrays left out);
        ``tensors``: [(name, dims (ne0 first), ggml type code, offset from the data start)],
        in file order; ``data_start``: byte where the tensor data begins; ``size``: bytes.

    Raises
    ------
    ValueError
        One line: the file, the tensor or metadata key, and the field that does not fit; a
        big-endian file (the unpackers read little-endian blocks).
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 4 or head[:4] != GGUF_MAGIC:
            raise ValueError(f"GGUF file {path}: field 'magic' is {head[:4]!r}, not b'GGUF'")
        if len(head) == 8 and struct.unpack("<I", head[4:])[0] & 0xFFFF == 0:
            raise ValueError(f"GGUF file {path}: field 'version' says the file is big-endian; "
                             "this reader reads little-endian GGUF only")
        cur = _Bytes(fh, size)
        cur.pos = 4
        try:
            version = cur.unpack("I", "field 'version'")
            if version not in (2, 3):
                raise _Bad("field 'version'", f"is {version}; this reader knows 2 and 3")
            n_tensors = cur.unpack("Q", "field 'tensor_count'")
            n_kv = cur.unpack("Q", "field 'kv_count'")
            for count, field in ((n_tensors, "tensor_count"), (n_kv, "kv_count")):
                if count > size:  # each needs more than one byte
                    raise _Bad(f"field '{field}'", f"is {count}, more than the file's "
                                                   f"{size} bytes could describe")
            metadata = {}
            for i in range(n_kv):
                key = cur.string(f"metadata key #{i}")
                vtype = cur.unpack("I", f"metadata {key!r}: field 'type'")
                metadata[key] = _value(cur, vtype, f"metadata {key!r}: field 'value'", True)
            tensors, seen = [], set()
            for i in range(n_tensors):
                name = cur.string(f"tensor #{i}: field 'name'")
                where = f"tensor {name!r}"
                if name in seen:
                    raise _Bad(f"{where}: field 'name'", "appears twice")
                seen.add(name)
                n_dims = cur.unpack("I", f"{where}: field 'n_dims'")
                if not 1 <= n_dims <= 4:
                    raise _Bad(f"{where}: field 'n_dims'", f"is {n_dims}, not 1 … 4")
                dims = tuple(cur.unpack("Q", f"{where}: field 'ne[{d}]'")
                             for d in range(n_dims))
                code = cur.unpack("I", f"{where}: field 'type'")
                offset = cur.unpack("Q", f"{where}: field 'offset'")
                tensors.append((name, dims, code, offset))
        except _Short as exc:
            raise ValueError(f"GGUF file {path}: {exc.what} ends at byte {exc.end}, past the "
                             f"end of the file ({size} bytes): truncated?") from None
        except _Bad as exc:
            raise ValueError(f"GGUF file {path}: {exc.what} {exc.why}") from None
        except struct.error as exc:  # pragma: no cover - _Bytes.take checks the lengths
            raise ValueError(f"GGUF file {path}: unreadable header: {exc}") from None
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"GGUF file {path}: metadata 'general.alignment' is {alignment!r}, "
                         "not a power of two")
    data_start = -(-cur.pos // alignment) * alignment
    spans = []
    for name, dims, code, offset in tensors:
        where = f"GGUF file {path}: tensor {name!r}"
        try:
            qtype = GGMLQuantizationType(code)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise ValueError(f"{where}: field 'type' is {code}, not a ggml type this gguf "
                             "package knows") from None
        if 0 in dims:
            raise ValueError(f"{where}: field 'ne' is {list(dims)}: an empty dimension")
        if dims[0] % block:
            raise ValueError(f"{where}: field 'ne[0]' is {dims[0]}, not a multiple of "
                             f"{qtype.name}'s block of {block}")
        if offset % alignment:
            raise ValueError(f"{where}: field 'offset' is {offset}, not a multiple of the "
                             f"alignment {alignment}")
        n_bytes = int(np.prod(dims, dtype=object)) // block * type_size
        end = data_start + offset + n_bytes
        if end > size:
            # (one line of at most 200 characters after the CLI's prefix, for paths of 46)
            raise ValueError(f"{where}: field 'data' ends at byte {end}, past the end of the "
                             f"file ({size} bytes): truncated?")
        spans.append((offset, offset + n_bytes, name))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans[:-1], spans[1:], strict=True):
        if start < end:
            raise ValueError(f"GGUF file {path}: tensor {second!r}: field 'offset' is {start}, "
                             f"inside the data of tensor {first!r} (which ends at {end})")
    return {"metadata": metadata, "tensors": tensors, "data_start": data_start, "size": size}


# --- blocks → codes and parameters ---------------------------------------------------------
#
# Every unpacker takes ``b``, uint8 (n_blocks, type_size), and returns a dict with ``codes``
# (n_blocks, block) and ``scale`` (n_blocks, groups per block) float64, plus ``minimum``
# (kind "min") and the two-level parts ``d``, ``sub`` (``dmin``, ``sub_min``) where the
# format has them.

def _f16(b, at):
    """The float16 stored at bytes ``at, at + 1`` of every block, widened (exact)."""
    return np.ascontiguousarray(b[:, at:at + 2]).view("<f2")[:, 0].astype(np.float64)


def _nibbles(q):
    """Bytes (n, m) → (n, 2m) codes: the m low nibbles, then the m high nibbles."""
    return np.concatenate([q & 0x0F, q >> 4], axis=1)


def _crumbs(q):
    """Bytes (n, 32) → (n, 128) two-bit fields: bits 0–1 of the 32 bytes, then bits 2–3, …"""
    return np.concatenate([(q >> s) & 3 for s in (0, 2, 4, 6)], axis=1)


def _bits(q, count):
    """(n, count) bits of the little-endian bytes ``q``: bit j of the whole field."""
    return np.unpackbits(q, axis=1, bitorder="little")[:, :count]


def _high_bits(qh):
    """Bytes (n, 32) → (n, 256): bit 0 of the 32 bytes, then bit 1, … (Q3_K, Q5_K)."""
    return np.concatenate([(qh >> s) & 1 for s in range(8)], axis=1)


def _q4_0(b):
    return {"codes": _nibbles(b[:, 2:18]), "scale": _f16(b, 0)[:, None]}


def _q4_1(b):
    return {"codes": _nibbles(b[:, 4:20]), "scale": _f16(b, 0)[:, None],
            "minimum": _f16(b, 2)[:, None]}


def _q5_0(b):
    codes = _nibbles(b[:, 6:22]) | (_bits(b[:, 2:6], 32) << 4)
    return {"codes": codes, "scale": _f16(b, 0)[:, None]}


def _q5_1(b):
    codes = _nibbles(b[:, 8:24]) | (_bits(b[:, 4:8], 32) << 4)
    return {"codes": codes, "scale": _f16(b, 0)[:, None], "minimum": _f16(b, 2)[:, None]}


def _q8_0(b):
    return {"codes": np.ascontiguousarray(b[:, 2:34]).view(np.int8),
            "scale": _f16(b, 0)[:, None]}


def _iq4_nl(b):
    return {"codes": _nibbles(b[:, 2:18]), "scale": _f16(b, 0)[:, None]}


def _q2_k(b):
    # block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
    sc = b[:, 0:16]
    codes = np.concatenate([_crumbs(b[:, 16:48]), _crumbs(b[:, 48:80])], axis=1)
    d, dmin = _f16(b, 80), _f16(b, 82)
    sub, sub_min = (sc & 0x0F).astype(np.int16), (sc >> 4).astype(np.int16)
    return {"codes": codes, "scale": d[:, None] * sub, "minimum": -(dmin[:, None] * sub_min),
            "d": d, "sub": sub, "dmin": dmin, "sub_min": sub_min}


def _q3_k(b):
    # block_q3_K: hmask[32], qs[64], scales[12] (16 six-bit values, biased by 32), d.
    low = np.concatenate([_crumbs(b[:, 32:64]), _crumbs(b[:, 64:96])], axis=1)
    codes = low | (_high_bits(b[:, 0:32]) << 2)  # level = code − 4
    s = b[:, 96:108]
    j = np.arange(16)
    lo = (s[:, j % 8] >> (4 * (j // 8))) & 0x0F
    hi = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 0x03
    sub = (lo | (hi << 4)).astype(np.int16) - 32
    d = _f16(b, 108)
    return {"codes": codes, "scale": d[:, None] * sub, "d": d, "sub": sub}


def _k_scales(s):
    """The 8 six-bit scales and 8 six-bit mins of Q4_K/Q5_K's 12 bytes."""
    a, m, md = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    sc = np.concatenate([a & 0x3F, (md & 0x0F) | ((a >> 2) & 0x30)], axis=1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=1)
    return sc.astype(np.int16), mn.astype(np.int16)


def _q4_k(b):
    # block_q4_K: d, dmin, scales[12], qs[128] (4 chunks of 32 bytes → 64 codes each).
    d, dmin = _f16(b, 0), _f16(b, 2)
    sub, sub_min = _k_scales(b[:, 4:16])
    qs = b[:, 16:144]
    codes = np.concatenate([_nibbles(qs[:, 32 * c:32 * c + 32]) for c in range(4)], axis=1)
    return {"codes": codes, "scale": d[:, None] * sub, "minimum": -(dmin[:, None] * sub_min),
            "d": d, "sub": sub, "dmin": dmin, "sub_min": sub_min}


def _q5_k(b):
    # block_q5_K: d, dmin, scales[12], qh[32], qs[128].
    d, dmin = _f16(b, 0), _f16(b, 2)
    sub, sub_min = _k_scales(b[:, 4:16])
    qs = b[:, 48:176]
    low = np.concatenate([_nibbles(qs[:, 32 * c:32 * c + 32]) for c in range(4)], axis=1)
    codes = low | (_high_bits(b[:, 16:48]) << 4)
    return {"codes": codes, "scale": d[:, None] * sub, "minimum": -(dmin[:, None] * sub_min),
            "d": d, "sub": sub, "dmin": dmin, "sub_min": sub_min}


def _q6_k(b):
    # block_q6_K: ql[128], qh[64], scales[16] int8, d; two halves of 128 codes.
    halves = []
    for h in range(2):
        ql = _nibbles(b[:, 64 * h:64 * h + 64])
        qh = _crumbs(b[:, 128 + 32 * h:128 + 32 * h + 32])
        halves.append(ql | (qh << 4))  # level = code − 32
    sub = np.ascontiguousarray(b[:, 192:208]).view(np.int8).astype(np.int16)
    d = _f16(b, 208)
    return {"codes": np.concatenate(halves, axis=1), "scale": d[:, None] * sub,
            "d": d, "sub": sub}


def _iq4_xs(b):
    # block_iq4_xs: d, scales_h (uint16), scales_l[4], qs[128]; 8 sub-blocks of 32.
    j = np.arange(8)
    lo = (b[:, 4 + j // 2] >> (4 * (j % 2))) & 0x0F
    sh = np.ascontiguousarray(b[:, 2:4]).view("<u2")[:, :1].astype(np.int64)
    hi = (sh >> (2 * j)) & 0x03
    sub = (lo.astype(np.int16) | (hi.astype(np.int16) << 4)) - 32
    d = _f16(b, 0)
    qs = b[:, 8:136]
    codes = np.concatenate([_nibbles(qs[:, 16 * c:16 * c + 16]) for c in range(8)], axis=1)
    return {"codes": codes, "scale": d[:, None] * sub, "d": d, "sub": sub}


#: ggml type name → (format, kind, bits, group size, zero point or codebook, unpacker,
#: two-level super-block or None).
UNPACK = {
    "Q4_0": ("q4_0", "offset", 4, 32, 8, _q4_0, None),
    "Q4_1": ("q4_1", "min", 4, 32, None, _q4_1, None),
    "Q5_0": ("q5_0", "offset", 5, 32, 16, _q5_0, None),
    "Q5_1": ("q5_1", "min", 5, 32, None, _q5_1, None),
    "Q8_0": ("q8_0", "offset", 8, 32, 0, _q8_0, None),
    "IQ4_NL": ("iq4_nl", "codebook", 4, 32, IQ4_NL, _iq4_nl, None),
    "Q2_K": ("q2_k", "min", 2, 16, None, _q2_k, QK_K),
    "Q3_K": ("q3_k", "offset", 3, 16, 4, _q3_k, QK_K),
    "Q4_K": ("q4_k", "min", 4, 32, None, _q4_k, QK_K),
    "Q5_K": ("q5_k", "min", 5, 32, None, _q5_k, QK_K),
    "Q6_K": ("q6_k", "offset", 6, 16, 32, _q6_k, QK_K),
    "IQ4_XS": ("iq4_xs", "codebook", 4, 32, IQ4_NL, _iq4_xs, QK_K),
}
