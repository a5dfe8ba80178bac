"""llama.cpp's GGUF files: tensors as :class:`BlockTensor`, names as Hugging Face's.

The file is read through the ``gguf`` package (``gguf.GGUFReader``, memory-mapped) after
:func:`._gguf_layout.scan` has checked its header against its size. Per tensor:

- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and
  IQ4_XS are unpacked into codes and per-group scales (minimums; the two-level parts ``d``,
  ``s_j`` in ``BlockTensor.two_level``), docs/theory.md §7.2; ``BlockTensor.dequantize()`` equals
  ``gguf.quants.dequantize`` bit for bit;
- F32, F16, BF16 (and F64, the integer types) come back as arrays: float32 for BF16 (exact),
  the stored dtype otherwise;
- every other type the ``gguf`` package dequantizes (IQ2/IQ3/IQ1, TQ1_0/TQ2_0, MXFP4, …)
  comes back as its dequantized float32 array; :meth:`GGUFCheckpoint.info` says which.

Shapes: GGUF lists ``ne0`` (the row length) first; tensors come back as the Hugging Face
weight, ``(rows, cols) = (ne1·ne2·…, ne0)``, 1-D tensors as ``(ne0,)``.

Names: the ``gguf`` package's tensor-name map for the file's ``general.architecture`` and
``<arch>.block_count`` (``gguf.get_tensor_name_map``) takes ``blk.0.attn_q.weight`` to
``model.layers.0.self_attn.q_proj.weight`` and back. llama.cpp's converter
(``convert_hf_to_gguf.py``, ``LlamaModel.permute``) reorders the rows of LLaMA-family Q and K
projections so that each head's rotary pairs are interleaved: within each of the ``n`` heads
(``n_head`` for Q, ``n_head_kv`` for K) the rows ``[0 … h/2)`` and ``[h/2 … h)`` of the head
are interleaved. The reader undoes it for the architectures whose converter applies it
(:data:`PERMUTED_ARCHITECTURES`), with the head counts from the metadata, and says so in
``BlockTensor.notes``; :func:`vecq_ref.formats.pair` checks against the original which row
order fits.

Beyond the reader contract, :class:`GGUFCheckpoint` has ``metadata`` (the scalar and string
metadata), ``block_count``, ``info(name)`` (ggml type, shape, whether it is unpacked),
``permutation(name)``, ``original_candidates(name)`` and ``read(name, unpermute=None)``.
Not handled: big-endian GGUF files (refused), per-layer head counts
(metadata arrays), and the converter's stacked MoE experts (read as one tensor of
``ne1·ne2`` rows, with no Hugging Face counterpart).
"""

from __future__ import annotations

import builtins
import dataclasses
import re

import numpy as np

from ._block import BlockTensor
from ._gguf_layout import GGUF_MAGIC, UNPACK, scan

FAMILY = "gguf"

#: GGUF architectures whose llama.cpp converter permutes the rows of Q and K
#: (``LlamaModel.permute`` and its copies in the converter's subclasses).
PERMUTED_ARCHITECTURES = frozenset({"llama", "deci", "granite", "granitemoe", "bailingmoe"})

_BLOCK = re.compile(r"^blk\.(\d+)\.")
_SUFFIXES = (".weight", ".bias")
#: Without the original's names, ``original_name`` prefers the names transformers' decoder
#: models use (the map lists every model family's name for each GGUF tensor).
_PREFERRED = ("model.layers.", "model.embed_tokens", "model.norm", "lm_head")
_FLOAT_TYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
_INT_TYPES = {"I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64}


def detect(path, config=None):
    """True when ``path`` is a file that starts with the GGUF magic."""
    try:
        with builtins.open(path, "rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def open(path, config=None):  # noqa: A001 - the family modules' contract
    """The :class:`GGUFCheckpoint` of ``path`` (``config`` is not used: GGUF is
    self-describing)."""
    return GGUFCheckpoint(path)


def rotary_permutation(rows, n_head):
    """Row order of llama.cpp's converter: ``permuted = w[perm]`` for ``w`` (rows, cols).

    Parameters
    ----------
    rows : int
        Rows of the projection (``n_head · head_dim``).
    n_head : int
        Heads the rows are split into (``n_head`` for Q, ``n_head_kv`` for K).

    Returns
    -------
    perm : ndarray of int, shape (rows,)
        Within each head of ``h = rows / n_head`` rows, row ``2i + j`` of the converted head
        is row ``j·h/2 + i`` of the original (``i < h/2``, ``j ∈ {0, 1}``).

    Examples
    --------
    Two heads of four rows: the halves ``(0, 1 | 2, 3)`` of each head interleave, and
    ``np.argsort(perm)`` undoes it.

    >>> perm = rotary_permutation(8, 2)
    >>> perm.tolist()
    [0, 2, 1, 3, 4, 6, 5, 7]
    >>> np.argsort(perm)[perm].tolist()
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    half = rows // n_head // 2
    return np.arange(rows).reshape(n_head, 2, half).swapaxes(1, 2).reshape(-1)


def _arch_enum(arch):
    from gguf.constants import MODEL_ARCH_NAMES

    return next((k for k, v in MODEL_ARCH_NAMES.items() if v == arch), None)


class GGUFCheckpoint:
    """An open GGUF file (the reader contract of :mod:`vecq_ref.formats`).

    Parameters
    ----------
    path : str or Path
        The ``.gguf`` file.

    Raises
    ------
    ValueError
        A truncated or inconsistent file: one line naming the file, the tensor or metadata
        key, and the field.
    ImportError
        The ``gguf`` package is missing (``pip install "vecq_ref[formats]"``).
    """

    family = FAMILY

    def __init__(self, path):
        try:
            import gguf
        except ImportError as exc:
            raise ImportError(f"reading GGUF ({path}) needs the optional package gguf: "
                              'pip install "vecq_ref[formats]"') from exc
        self.path = str(path)
        header = scan(self.path)
        self.metadata = header["metadata"]
        try:
            self._reader = gguf.GGUFReader(self.path)
        except Exception as exc:  # the header scan passed: say what the package said
            raise ValueError(f"GGUF file {self.path}: the gguf package cannot read it: "
                             f"{' '.join(str(exc).split())}") from None
        self._tensors = {t.name: t for t in self._reader.tensors}
        arch = self.metadata.get("general.architecture")
        self.architecture = arch if isinstance(arch, str) else None
        self._check_metadata()
        self._names = self._name_maps()

    # -- metadata ------------------------------------------------------------------------

    def _meta_int(self, key, default=None):
        value = self.metadata.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise ValueError(f"GGUF file {self.path}: metadata {key!r} is {value!r}, not a "
                             "positive integer")
        return value

    def _check_metadata(self):
        blocks = [int(m.group(1)) for n in self._tensors if (m := _BLOCK.match(n))]
        self.block_count = max(blocks) + 1 if blocks else 0
        if self.architecture is None:
            return
        key = f"{self.architecture}.block_count"
        stated = self._meta_int(key)
        if stated is not None:
            if stated < self.block_count:
                first = next(n for n in self._tensors if (m := _BLOCK.match(n))
                             and int(m.group(1)) >= stated)
                raise ValueError(f"GGUF file {self.path}: tensor {first!r}: metadata {key!r} "
                                 f"is {stated}, but the file has blocks up to "
                                 f"{self.block_count - 1}")
            self.block_count = stated

    # -- names -----------------------------------------------------------------------------

    def _name_maps(self):
        arch = _arch_enum(self.architecture) if self.architecture else None
        if arch is None:
            return None
        import gguf

        tmap = gguf.get_tensor_name_map(arch, self.block_count)
        reverse = {}
        for hf, (_, gguf_name) in tmap.mapping.items():
            if hf != gguf_name:
                reverse.setdefault(gguf_name, []).append(hf)
        return tmap, reverse

    def names(self):
        """The file's tensors, in file order."""
        return list(self._tensors)

    def original_candidates(self, name):
        """Every Hugging Face name the name map gives for the GGUF tensor ``name``."""
        if self._names is None:
            return []
        _, reverse = self._names
        for suffix in _SUFFIXES + ("",):
            if suffix and not name.endswith(suffix):
                continue
            base = name[:len(name) - len(suffix)] if suffix else name
            if base in reverse:
                return [hf + suffix for hf in reverse[base]]
        return []

    def original_name(self, name, available=None):
        """The Hugging Face name of the GGUF tensor ``name``, or None.

        With ``available`` (the original checkpoint's names) the candidate it holds, also
        under a prefix (``bert.`` + the map's ``encoder.layer.0…``); without it the map's
        first candidate in the naming of ``LlamaForCausalLM`` (``model.layers.…``,
        ``model.embed_tokens``, ``model.norm``, ``lm_head``), else the map's first.
        """
        candidates = self.original_candidates(name)
        if available is None:
            ranked = sorted(candidates, key=lambda c: not c.startswith(_PREFERRED))
            return ranked[0] if ranked else None
        available = list(available)
        held = set(available)
        for c in candidates:
            if c in held:
                return c
        for c in candidates:
            hits = [a for a in available if a.endswith("." + c)]
            if len(hits) == 1:
                return hits[0]
        return None

    def quantized_name(self, original):
        """The GGUF name of the Hugging Face tensor ``original`` (a leading prefix such as
        ``bert.`` is tried away), or None."""
        if self._names is None:
            return None
        tmap, _ = self._names
        parts = original.split(".")
        for i in range(len(parts)):
            got = tmap.get_name(".".join(parts[i:]), try_suffixes=_SUFFIXES)
            if got is not None and got in self._tensors:
                return got
        return None

    # -- tensors ---------------------------------------------------------------------------

    def _tensor(self, name):
        try:
            return self._tensors[name]
        except KeyError:
            near = ", ".join(list(self._tensors)[:5])
            raise KeyError(f"GGUF file {self.path} has no tensor {name!r} (it has {near}, "
                           "…)") from None

    def info(self, name):
        """``{"type": ggml type name, "shape": (rows, cols) or (ne0,), "unpacked": bool}``."""
        t = self._tensor(name)
        return {"type": t.tensor_type.name, "shape": self._shape(t),
                "unpacked": t.tensor_type.name in UNPACK}

    @staticmethod
    def _shape(t):
        dims = [int(d) for d in t.shape]
        if len(dims) == 1:
            return (dims[0],)
        return (int(np.prod(dims[1:])), dims[0])

    def permutation(self, name):
        """``(perm, n_head, field)`` when the converter permuted the rows of ``name`` (a Q or
        K projection of a :data:`PERMUTED_ARCHITECTURES` file), else None."""
        if self.architecture not in PERMUTED_ARCHITECTURES:
            return None
        base = re.sub(r"\.(weight|bias)$", "", _BLOCK.sub("", name))
        if base not in ("attn_q", "attn_k"):
            return None
        key = f"{self.architecture}.attention.head_count"
        n_head = self._meta_int(key)
        if base == "attn_k":
            kv = f"{key}_kv"
            if self.metadata.get(kv) is not None:
                key, n_head = kv, self._meta_int(kv)
        if n_head is None:
            raise ValueError(f"GGUF file {self.path}: tensor {name!r}: metadata {key!r} is "
                             "missing; the converter's Q/K row order cannot be undone "
                             "without it")
        rows = self._shape(self._tensor(name))[0]
        if rows % (2 * n_head):
            raise ValueError(f"GGUF file {self.path}: tensor {name!r}: metadata {key!r} is "
                             f"{n_head}, which does not split its {rows} rows into heads of "
                             "an even size")
        return rotary_permutation(rows, n_head), n_head, key

    def read(self, name, unpermute=None):
        """One tensor: a :class:`BlockTensor` (unpacked types), else an ndarray.

        Parameters
        ----------
        name : str
            The GGUF name (``blk.0.attn_q.weight``).
        unpermute : bool or None
            Undo the converter's Q/K row permutation; None: where :meth:`permutation` says
            the converter applied it.
        """
        t = self._tensor(name)
        qtype = t.tensor_type.name
        shape = self._shape(t)
        raw = np.asarray(t.data)
        if qtype in UNPACK:
            out = self._unpack(name, qtype, raw, shape)
        else:
            out = self._as_array(name, t, raw, shape)
        perm = self.permutation(name) if unpermute in (None, True) else None
        if unpermute and perm is None:
            raise ValueError(f"GGUF file {self.path}: tensor {name!r} is not a Q or K "
                             f"projection of a LLaMA-family file ({self.architecture}); "
                             "there is no converter permutation to undo")
        if perm is None:
            return out
        inverse = np.argsort(perm[0])
        note = (f"rows of {name} permuted by llama.cpp's converter (LlamaModel.permute, "
                f"{perm[1]} heads from {perm[2]}): undone")
        if isinstance(out, np.ndarray):
            return out[inverse]
        return permute_rows(out, inverse, note)

    def _as_array(self, name, t, raw, shape):
        import gguf

        qtype = t.tensor_type.name
        if qtype in _FLOAT_TYPES or qtype in _INT_TYPES:
            return raw.reshape(shape)
        try:
            values = gguf.quants.dequantize(raw, t.tensor_type)
        except NotImplementedError:
            raise ValueError(f"GGUF file {self.path}: tensor {name!r}: field 'type' is "
                             f"{qtype}, which the gguf package cannot dequantize") from None
        return np.asarray(values, dtype=np.float32).reshape(shape)

    def _unpack(self, name, qtype, raw, shape):
        import gguf

        fmt, kind, bits, group, zero, unpack, super_size = UNPACK[qtype]
        _, type_size = gguf.constants.GGML_QUANT_SIZES[_t_enum(qtype)]
        rows, cols = shape if len(shape) == 2 else (1, shape[0])
        blocks = raw.reshape(-1, type_size)
        parts = unpack(blocks)
        groups = cols // group

        def per_row(a):
            return np.asarray(a).reshape(rows, -1)

        codes = per_row(parts["codes"]).reshape(rows, cols)
        scale = per_row(parts["scale"]).astype(np.float64)
        extra = {}
        if kind == "offset":
            extra["zero"] = np.full((rows, groups), zero, dtype=np.int16)
        elif kind == "min":
            extra["minimum"] = per_row(parts["minimum"]).astype(np.float64)
        else:
            extra["codebook"] = np.asarray(zero, dtype=np.float64)
        notes = []
        if super_size is not None:
            two = {"d": per_row(parts["d"]), "sub": per_row(parts["sub"]),
                   "super_size": super_size}
            if "dmin" in parts:
                two["dmin"] = per_row(parts["dmin"])
                two["sub_min"] = per_row(parts["sub_min"])
            extra["two_level"] = two
            notes.append(f"two-level scales: d (float16) per {super_size} weights times an "
                         f"integer s_j per {group}")
        if len(shape) == 1:
            notes.append(f"a 1-D tensor of {cols} weights, read as one row")
        return BlockTensor(name=name, format=fmt, kind=kind, bits=bits, group_size=group,
                           codes=codes, scale=scale, scale_dtype=np.dtype(np.float16),
                           value_dtype=np.dtype(np.float32), notes=tuple(notes),
                           source=self.path, **extra)

    # -- context manager -------------------------------------------------------------------

    def close(self):
        """Let go of the memory map (arrays already read stay valid)."""
        self._reader = None
        self._tensors = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"GGUFCheckpoint({self.path!r}, architecture={self.architecture!r}, "
                f"{len(self._tensors)} tensors)")


def _t_enum(name):
    """The ``gguf`` package's ``GGMLQuantizationType`` of the type called ``name``."""
    from gguf.constants import GGMLQuantizationType

    return GGMLQuantizationType[name]


def permute_rows(bt, index, note=None):
    """``bt`` (a :class:`BlockTensor`) with its rows taken in the order ``index`` (codes,
    scales, zero points or minimums and the two-level parts alike); ``note`` appended."""
    def rows(a):
        return None if a is None else np.asarray(a)[index]

    two = None
    if bt.two_level is not None:
        two = {k: (v if k == "super_size" else rows(v)) for k, v in bt.two_level.items()}
    return dataclasses.replace(
        bt, codes=rows(bt.codes), scale=rows(bt.scale), zero=rows(bt.zero),
        minimum=rows(bt.minimum), two_level=two,
        notes=bt.notes + ((note,) if note else ()))


def _block_index_bound(names):
    """One more than the largest integer component of any name (the size of the name map)."""
    found = [int(p) for n in names for p in n.split(".") if p.isdigit()]
    return max(found) + 1 if found else 0


def _quantizable_types():
    """{name: GGMLQuantizationType} of the block types ``gguf.quants.quantize`` implements
    (tried on one zero block each; float types left out)."""
    import gguf

    found = {}
    for t in gguf.GGMLQuantizationType:
        size = gguf.GGML_QUANT_SIZES.get(t)
        if size is None or size[0] == 1:
            continue
        try:
            gguf.quants.quantize(np.zeros((1, size[0]), np.float32), t)
        except (NotImplementedError, gguf.quants.QuantError, ValueError, TypeError):
            continue
        found[t.name] = t
    return found


def write_gguf(original, out, qtype="Q4_0", *, arch="bert", force=False):
    """Write a float safetensors checkpoint as a GGUF file quantized by llama.cpp's reference
    rule (no importance matrix): the file an audit of "plain" ``llama-quantize`` output reads.

    Every tensor whose Hugging Face name the ``gguf`` package's tensor-name map for ``arch``
    knows is written under its GGUF name; the 2-D float ones whose row length is a multiple of
    the type's block size are quantized by ``gguf.quants.quantize`` (bit for bit llama.cpp's
    C reference quantizers), the others kept as float32. Tensors the map does not know are left
    out (and listed in the result). ``<arch>.block_count`` is written; no other
    hyper-parameter is, so the file is for reading tensors (``vecq-ref verify``/``audit``,
    :func:`vecq_ref.formats.open_quantized`), not for running the model.

    Parameters
    ----------
    original : str or Path
        A float checkpoint: ``.safetensors``, a ``model.safetensors.index.json`` or a folder of
        shards (float16/bfloat16/fp8 are widened to float32, exactly, before quantizing;
        integer tensors are written as they are).
    out : str or Path
        The ``.gguf`` file to write (atomically, with the umask's permissions).
    qtype : str
        A block type the installed ``gguf`` package quantizes, in any case: ``"Q4_0"``,
        ``"Q4_1"``, ``"Q5_0"``, ``"Q5_1"``, ``"Q8_0"`` (and whatever else its
        ``quants.quantize`` implements: the error for another type lists them).
    arch : str
        GGUF architecture name (``general.architecture``: ``"bert"``, ``"gpt2"``, …). Not one
        of :data:`PERMUTED_ARCHITECTURES`: llama.cpp's converter reorders those models' Q/K
        rows and needs their head counts, which this writer does not reproduce (use llama.cpp's
        ``convert_hf_to_gguf.py``; the reader undoes its permutation).
    force : bool
        Overwrite ``out`` if it exists.

    Returns
    -------
    dict
        ``path`` (``out``), ``tensors`` (Hugging Face name → ``(GGUF name, type name)``) and
        ``skipped`` (the names the map does not know).

    Raises
    ------
    ValueError
        ``qtype`` the ``gguf`` package cannot quantize, ``arch`` unknown or permuted, or a
        checkpoint without any tensor the map knows.
    FileExistsError
        ``out`` exists and ``force`` is false.
    ImportError
        ``gguf`` or ``safetensors`` missing (``pip install "vecq_ref[formats]"``).

    Examples
    --------
    >>> write_gguf("model.safetensors", "model-q4_0.gguf", "Q4_0")  # doctest: +SKIP
    """
    from pathlib import Path

    from .._validation import fail
    from ..io import as_float, atomic_path, check_target, open_tensors

    try:
        import gguf
    except ImportError as exc:
        raise ImportError('writing GGUF needs the optional package gguf: '
                          'pip install "vecq_ref[formats]"') from exc
    arch_enum = _arch_enum(arch) if isinstance(arch, str) else None
    if arch_enum is None:
        fail("arch", "a GGUF architecture name known to the gguf package (e.g. 'bert')", arch)
    if arch in PERMUTED_ARCHITECTURES:
        fail("arch", "an architecture whose converter keeps the Q/K row order (llama.cpp's "
                     "convert_hf_to_gguf.py permutes those of "
                     f"{sorted(PERMUTED_ARCHITECTURES)}; use it for them)", arch)
    quantizable = _quantizable_types()
    qt = quantizable.get(qtype.upper()) if isinstance(qtype, str) else None
    if qt is None:
        fail("qtype", f"a block type the gguf package quantizes ({', '.join(quantizable)}; "
                      "any case)", qtype)
    qtype, block = qt.name, gguf.GGML_QUANT_SIZES[qt][0]
    check_target(out, force)
    with open_tensors(original, "original") as (keys, get):
        tmap = gguf.TensorNameMap(arch_enum, _block_index_bound(keys))
        names = {k: tmap.get_name(k, try_suffixes=_SUFFIXES) for k in keys}
        mapped = {k: n for k, n in names.items() if n is not None}
        if not mapped:
            raise ValueError(f"`original` {original}: none of its {len(keys)} tensors has a "
                             f"GGUF name in the gguf package's map for arch {arch!r}")
        blocks = [int(m.group(1)) for n in mapped.values() if (m := _BLOCK.match(n))]
        result = {}
        with atomic_path(out, force) as tmp:
            writer = gguf.GGUFWriter(str(tmp), arch)
            writer.add_block_count(max(blocks) + 1 if blocks else 0)
            for k, name in mapped.items():
                a = as_float(np.asarray(get(k)))
                if a.dtype.kind == "f":
                    a = np.ascontiguousarray(a, dtype=np.float32)
                    quantized = a.ndim == 2 and a.shape[1] % block == 0
                    writer.add_tensor(name, gguf.quants.quantize(a, qt) if quantized else a,
                                      raw_dtype=qt if quantized else None)
                    result[k] = (name, qtype if quantized else "F32")
                else:
                    writer.add_tensor(name, np.ascontiguousarray(a))
                    result[k] = (name, str(a.dtype))
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
    return {"path": Path(out), "tensors": result,
            "skipped": [k for k in keys if names[k] is None]}
