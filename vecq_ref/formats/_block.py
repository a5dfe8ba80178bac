"""``BlockTensor``: one quantized weight tensor as a block format stores it, in VecQ's terms.

Every reader in :mod:`vecq_ref.formats` returns this one value type, and ``verify`` and
``audit`` take it. It keeps what the file holds (integer codes, per-group scales as stored,
zero points or minimums, a codebook, two-level scales) in the logical layout of the float
weight: ``rows × cols`` with ``rows`` the output channels and groups running along ``cols``
(the input dimension), as PyTorch and Hugging Face lay out ``weight``. GGUF's ``ne0`` is
``cols``.

Dequantization, one formula per kind (``g = group_of_col[c]``):

=================  =========================================  ==================================
``kind``           value of element (r, c)                    examples
=================  =========================================  ==================================
``"offset"``       ``scale[r, g] · (codes[r, c] − zero[r, g])``   Q4_0/Q5_0/Q8_0 (constant zero),
                                                               GPTQ, AWQ, compressed-tensors
``"min"``          ``scale[r, g] · codes[r, c] + minimum[r, g]``  Q4_1, Q5_1, Q4_K/Q5_K (min < 0
                                                               stored as −dmin·m_j)
``"codebook"``     ``scale[r, g] · codebook[codes[r, c]]``    IQ4_NL, NF4, FP4
=================  =========================================  ==================================

``scale`` is always the effective per-group scale (for two-level formats ``d · s_j``, with the
parts in ``two_level``), stored values widened exactly to float64, and ``scale_dtype`` says
what they were stored in. The dequantized values are computed in float64 and then rounded to
``value_dtype`` once (what the format's own dequantizer returns, float32 for GGUF).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("offset", "min", "codebook")


@dataclass(frozen=True, eq=False)
class BlockTensor:
    """One quantized tensor of a block format, unpacked.

    Attributes
    ----------
    name : str
        The tensor's name in its file (GGUF ``blk.0.attn_q.weight``, safetensors
        ``model.layers.0.self_attn.q_proj``, ...).
    format : str
        Canonical lower-case format name: ``"q4_0"``, ``"q5_0"``, ``"q8_0"``, ``"q4_1"``,
        ``"q5_1"``, ``"iq4_nl"``, ``"q2_k"`` … ``"q6_k"``, ``"gptq"``, ``"awq"``,
        ``"compressed-tensors"``, ``"nf4"``, ``"fp4"``.
    kind : {"offset", "min", "codebook"}
        Which dequantization formula applies (module docstring).
    bits : int
        Bits per code.
    group_size : int
        Elements per group along ``cols`` (for two-level formats the sub-block, e.g. 16 for
        Q6_K, 32 for Q4_K).
    codes : ndarray of int, shape (rows, cols)
        The stored integer codes, unpacked, in the format's own numbering (Q4_0: 0 … 15;
        codebooks: the index into ``codebook``).
    scale : ndarray of float64, shape (rows, n_groups)
        Effective per-group scale, as stored (exactly widened).
    scale_dtype : numpy dtype
        Storage dtype of the scale (float16, bfloat16 through ml_dtypes, float32).
    zero : ndarray of int or float64, shape (rows, n_groups), or None
        ``kind == "offset"``: the zero point each group's codes are measured from, as the
        format means it (GPTQ v1's stored ``z − 1`` already has its 1 added back; see
        ``notes``).
    minimum : ndarray of float64, shape (rows, n_groups), or None
        ``kind == "min"``: the additive offset per group.
    codebook : ndarray of float64, shape (n_levels,), or None
        ``kind == "codebook"``: the table, in code order.
    group_of_col : ndarray of int, shape (cols,), or None
        Group of each input column when it is not ``col // group_size`` (GPTQ act-order
        ``g_idx``).
    two_level : dict or None
        Two-level scales: ``{"d": (rows, n_super) float64, "sub": (rows, n_groups) int,
        "super_size": int, "dmin": ..., "sub_min": ...}`` as stored.
    value_dtype : numpy dtype
        The dtype the format's dequantizer returns (float32 for GGUF; float16 for GPTQ/AWQ).
    double_quant : dict or None
        bitsandbytes' double quantization of ``scale`` (``scale`` is then the restored
        absmax): ``{"codes": (n_groups,) uint8, "nested_absmax": (n_nested,) float32,
        "nested_quant_map": (256,) float32, "offset": float32, "nested_blocksize": int}`` as
        stored, groups in row-major order of ``scale``.
    notes : tuple of str
        What the reader detected and undid, in words ("GPTQ v1: stored zeros are z − 1",
        "rows of Q permuted by llama.cpp's converter: undone").
    source : str
        File the tensor came from (for messages).
    """

    name: str
    format: str
    kind: str
    bits: int
    group_size: int
    codes: np.ndarray
    scale: np.ndarray
    scale_dtype: np.dtype
    zero: np.ndarray | None = None
    minimum: np.ndarray | None = None
    codebook: np.ndarray | None = None
    group_of_col: np.ndarray | None = None
    two_level: dict | None = None
    double_quant: dict | None = None
    value_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    notes: tuple = ()
    source: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}; got {self.kind!r}.")
        if self.codes.ndim != 2:
            raise ValueError(f"`codes` must be 2-D (rows, cols); got shape {self.codes.shape}.")
        rows, cols = self.codes.shape
        if self.group_of_col is None and cols % self.group_size:
            raise ValueError(f"`group_size` must divide cols = {cols}; got {self.group_size}.")
        need = {"offset": "zero", "min": "minimum", "codebook": "codebook"}[self.kind]
        if getattr(self, need) is None:
            raise ValueError(f"a BlockTensor of kind {self.kind!r} needs `{need}`.")

    @property
    def shape(self):
        """(rows, cols) of the float weight."""
        return self.codes.shape

    @property
    def groups(self):
        """Group index of every column, shape (cols,)."""
        if self.group_of_col is not None:
            return np.asarray(self.group_of_col)
        return np.arange(self.codes.shape[1]) // self.group_size

    def per_element(self, arr):
        """Spread a per-group array (rows, n_groups) to (rows, cols)."""
        return np.asarray(arr)[:, self.groups]

    def levels(self):
        """The level of every element before the scale (float64, rows × cols): ``q − z``,
        ``q`` or ``codebook[q]``."""
        q = self.codes.astype(np.float64)
        if self.kind == "offset":
            return q - self.per_element(self.zero).astype(np.float64)
        if self.kind == "min":
            return q
        return np.asarray(self.codebook, dtype=np.float64)[self.codes]

    def dequantize(self, dtype=None):
        """The float weight this tensor stands for, shape (rows, cols), computed in float64
        and rounded once to ``dtype`` (default ``value_dtype``)."""
        dtype = self.value_dtype if dtype is None else dtype
        rows, cols = self.codes.shape
        if self.group_of_col is not None:
            out = self.per_element(self.scale) * self.levels()
            if self.kind == "min":
                out = out + self.per_element(self.minimum)
            return out.astype(dtype)
        # Contiguous groups: broadcast per-group values over (rows, n_groups, group_size)
        # instead of spreading them to every element (same float64 formula, same bits).
        ng, gs = cols // self.group_size, self.group_size
        q = self.codes.reshape(rows, ng, gs)
        if self.kind == "codebook":
            lev = np.asarray(self.codebook, dtype=np.float64)[q]
        else:
            lev = q.astype(np.float64)
            if self.kind == "offset":
                lev -= np.asarray(self.zero, dtype=np.float64)[:, :, None]
        out = lev
        out *= np.asarray(self.scale, dtype=np.float64)[:, :, None]
        if self.kind == "min":
            out += np.asarray(self.minimum, dtype=np.float64)[:, :, None]
        return out.reshape(rows, cols).astype(dtype)


#: The level set whose exact optimum is "the best the format allows", per format (issue 22:
#: same groups, level set, sign of the scale, zero-point kind). Formats whose scale may be
#: negative (llama.cpp's d = max/−8, IQ4_NL's d₀ = max/K[0]) get ``signed_scale=True``.
_FORMAT_LEVEL_SETS = {
    "q4_0": dict(lattice="midtread-full", bits=4, signed_scale=True),
    "q5_0": dict(lattice="midtread-full", bits=5, signed_scale=True),
    "q8_0": dict(lattice="midtread", bits=8, signed_scale=True),
    "q4_1": dict(bits=4, zero_point="float"),
    "q5_1": dict(bits=5, zero_point="float"),
    "iq4_nl": dict(codebook="iq4_nl", signed_scale=True),
    "nf4": dict(codebook="nf4"),
    "fp4": dict(codebook="fp4"),
}


def _symmetric_zero(z, bt):
    """Whether one zero point ``z`` shared by every group is a symmetric format's: codes
    0…2^k−1 about z = 2^(k−1); GPTQ v1's z − 1 = 2^(k−1) − 1 (a v1 checkpoint read as v2:
    the format is still the symmetric one); or codes numbered from −2^(k−1) about z = 0 (the
    compressed-tensors convention of codes recovered from values)."""
    half = 2 ** (bt.bits - 1)
    if z in (half, half - 1):
        return True
    codes = np.asarray(bt.codes)
    return z == 0 and codes.size > 0 and int(codes.min()) >= -half and \
        int(codes.max()) < half and int(codes.min()) < 0


def format_level_set(bt):
    """The :class:`~vecq_ref.lattice.LevelSet` of ``bt``'s format (``BlockTensor``): what its
    codes, scale sign and zero point can express, the set the exact search optimises over.

    GPTQ/AWQ/compressed-tensors: ``zero_point="integer"`` when the zero points vary (asymmetric),
    else ``midtread-full`` with a positive scale (symmetric: one zero point in every group,
    z = 2^(k−1), GPTQ v1's 2^(k−1) − 1 read as stored, or 0 with codes from −2^(k−1)).
    Two-level formats (K-quants) get their sub-block's level set (the optimum is then a
    bound: the sub-block scales are not constrained to ``d·s_j``).
    """
    from ..lattice import level_set

    fmt = bt.format
    if fmt in _FORMAT_LEVEL_SETS:
        return level_set(**_FORMAT_LEVEL_SETS[fmt])
    if bt.kind == "offset":
        z = np.asarray(bt.zero)
        if z.size and np.all(z == z.flat[0]) and _symmetric_zero(int(z.flat[0]), bt):
            return level_set("midtread-full", bt.bits,
                             signed_scale=bool(fmt.endswith("_k")))
        return level_set(bits=bt.bits, zero_point="integer")
    if bt.kind == "min":
        return level_set(bits=bt.bits, zero_point="float")
    return level_set(codebook=np.unique(np.asarray(bt.codebook, dtype=np.float64)))
