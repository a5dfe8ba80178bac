"""Helpers of the audit tests (issue 23): the direct reference (what a GGUF file's tensors
dequantize to), a reader that kills its Dask worker once, llama.cpp imatrix files, and a
stand-in checkpoint of BlockTensors for the families built here by hand (GPTQ, AWQ).

The tiny LLaMA checkpoint itself is R1's ``tests/tinyllama.py``.
"""

from __future__ import annotations

import numpy as np


def save_safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return path


def dequantized(tensors, types):
    """{HF name: what llama.cpp's quantizer of its GGUF type (``types``) gives back}, for the
    quantized types (the direct reference, in HF layout)."""
    import gguf

    out = {}
    for hf, arr in tensors.items():
        kind = types.get(hf, "F32")
        if arr.ndim == 1 or kind in ("F32", "F16"):
            continue
        t = gguf.GGMLQuantizationType[kind]
        out[hf] = gguf.quants.dequantize(gguf.quants.quantize(np.ascontiguousarray(arr), t), t)
    return out


def killing_reader(path):
    """The audit's default reader, except that the first Dask worker process to open ``path``
    dies (``os._exit``) once: a marker file beside ``path`` records that it happened."""
    import os
    from pathlib import Path

    from vecq_ref.check.audit import _default_reader

    try:
        from distributed import get_worker

        get_worker()
        in_worker = True
    except (ImportError, ValueError):
        in_worker = False
    marker = Path(str(path) + ".killed")
    if in_worker and not marker.exists():
        marker.touch()
        os._exit(1)
    return _default_reader(path)


def write_legacy_imatrix(path, vectors, ncall=3):
    """A legacy llama.cpp imatrix .dat (``save_imatrix_legacy``'s layout): values stored as
    mean × ncall."""
    import struct

    out = [struct.pack("<i", len(vectors))]
    for name in sorted(vectors):
        v = np.asarray(vectors[name], dtype=np.float32) * np.float32(ncall)
        b = name.encode()
        out += [struct.pack("<i", len(b)), b, struct.pack("<ii", ncall, v.size), v.tobytes()]
    out += [struct.pack("<i", 1), struct.pack("<i", 4), b"data"]
    with open(path, "wb") as fh:
        fh.write(b"".join(out))
    return path


def write_gguf_imatrix(path, vectors, count=5.0):
    """A GGUF imatrix (``save_imatrix``'s layout): ``<name>.in_sum2`` = mean × count and
    ``<name>.counts``."""
    import gguf

    w = gguf.GGUFWriter(str(path), "imatrix")
    for name in sorted(vectors):
        v = np.asarray(vectors[name], dtype=np.float32)
        w.add_tensor(name + ".in_sum2", (v * np.float32(count)).reshape(1, -1))
        w.add_tensor(name + ".counts", np.array([[count]], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_block_npz(path, blocks):
    """Store BlockTensors (name → BlockTensor) in an .npz that :func:`npz_block_reader` reads:
    a stand-in checkpoint for the formats whose readers are not on main yet (GPTQ, AWQ)."""
    import json

    arrays = {}
    for name, bt in blocks.items():
        arrays[f"{name}|codes"] = bt.codes
        arrays[f"{name}|scale"] = bt.scale
        arrays[f"{name}|zero"] = np.asarray(bt.zero)
        arrays[f"{name}|meta"] = np.frombuffer(json.dumps({
            "format": bt.format, "bits": bt.bits, "group_size": bt.group_size,
            "scale_dtype": np.dtype(bt.scale_dtype).name,
            "value_dtype": np.dtype(bt.value_dtype).name}).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


class _NpzCheckpoint:
    family = "test"
    architecture = None

    def __init__(self, path):
        self.path = str(path)
        self._z = np.load(path)

    def names(self):
        return [k.split("|")[0] for k in self._z.files if k.endswith("|codes")]

    def quantized_name(self, original):
        return original if original in self.names() else None

    def original_name(self, name):
        return name

    def read(self, name):
        import json

        from vecq_ref.formats import BlockTensor

        meta = json.loads(bytes(self._z[f"{name}|meta"]).decode())
        return BlockTensor(
            name=name, format=meta["format"], kind="offset", bits=meta["bits"],
            group_size=meta["group_size"], codes=self._z[f"{name}|codes"],
            scale=self._z[f"{name}|scale"], scale_dtype=np.dtype(meta["scale_dtype"]),
            zero=self._z[f"{name}|zero"], value_dtype=np.dtype(meta["value_dtype"]),
            source=self.path)

    def close(self):
        self._z.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def npz_block_reader(path):
    return _NpzCheckpoint(path)
