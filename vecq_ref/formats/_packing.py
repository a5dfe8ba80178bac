"""Unpacking the integer words of the safetensors formats, in plain NumPy (layouts: each reader).

Three layouts:

- :func:`unpack_words`: ``32/bits`` fields per int32 word, field ``k`` at bits
  ``bits·k … bits·k + bits − 1`` (GPTQ ``qweight`` along its rows, ``qzeros`` along its
  columns; AWQ along columns with its field order);
- :func:`unpack_dense`: a dense little-endian bit stream, element ``i`` at bit ``i·bits`` of
  the row's words, an element may straddle two words (compressed-tensors ``pack_to_int32``;
  for 2, 4 and 8 bits the same as :func:`unpack_words`);
- :func:`unpack_bytes_high_first`: two 4-bit codes per byte, the first in the high nibble
  (bitsandbytes).
"""

from __future__ import annotations

import numpy as np

#: AutoAWQ's GEMM order: field k of a word holds output feature 8c + AWQ_ORDER[k].
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def unpack_words(words, bits, axis, order=None):
    """Fields of int32 ``words`` along ``axis`` (``bits`` ∈ {2, 4, 8}).

    Parameters
    ----------
    words : ndarray of int32 or uint32, 2-D
    bits : int
    axis : {0, 1}
        The axis the fields were packed along: output length ``words.shape[axis]·32/bits``.
    order : sequence of int, optional
        Field ``k`` of word ``c`` is element ``(32/bits)·c + order[k]`` (AWQ); default the
        identity.

    Returns
    -------
    ndarray of int16, the unpacked fields (0 … 2^bits − 1).

    Examples
    --------
    >>> w = np.array([[0x76543210]], dtype=np.int32)
    >>> unpack_words(w, 4, axis=1).tolist()
    [[0, 1, 2, 3, 4, 5, 6, 7]]
    >>> unpack_words(w, 4, axis=1, order=AWQ_ORDER).tolist()
    [[0, 4, 1, 5, 2, 6, 3, 7]]
    """
    per = 32 // bits
    u = np.asarray(words).astype(np.uint32, copy=False)
    shifts = (np.arange(per, dtype=np.uint32) * np.uint32(bits))
    mask = np.uint32((1 << bits) - 1)
    if axis == 0:
        fields = (u[:, None, :] >> shifts[None, :, None]) & mask  # (n, per, m)
        if order is not None:
            fields = fields[:, np.argsort(order), :]
        return fields.reshape(u.shape[0] * per, u.shape[1]).astype(np.int16)
    fields = (u[:, :, None] >> shifts[None, None, :]) & mask  # (m, n, per)
    if order is not None:
        fields = fields[:, :, np.argsort(order)]
    return fields.reshape(u.shape[0], u.shape[1] * per).astype(np.int16)


def unpack_dense(words, bits, n):
    """The first ``n`` ``bits``-bit fields of each row of ``words`` (int32, 2-D), read as a
    little-endian bit stream (element ``i`` at bit ``i·bits``). Returns int16 (rows, n)."""
    if 32 % bits == 0:  # no element straddles a word: the same as 32/bits fields per word
        return unpack_words(words, bits, axis=1)[:, :n]
    u = np.ascontiguousarray(np.asarray(words).astype("<u4", copy=False))
    stream = np.unpackbits(u.view(np.uint8).reshape(u.shape[0], -1), axis=1,
                           bitorder="little")[:, : n * bits]
    weights = (1 << np.arange(bits)).astype(np.int16)
    return stream.reshape(u.shape[0], n, bits).astype(np.int16) @ weights


def unpack_bytes_high_first(data, n):
    """``n`` 4-bit codes from bytes, two per byte, the first in the high nibble. int16 (n,).

    Examples
    --------
    >>> unpack_bytes_high_first(np.array([0x1F, 0xA0], dtype=np.uint8), 3).tolist()
    [1, 15, 10]
    """
    b = np.asarray(data, dtype=np.uint8).reshape(-1)
    out = np.empty(2 * b.size, dtype=np.int16)
    out[0::2] = b >> 4
    out[1::2] = b & 0x0F
    return out[:n]
