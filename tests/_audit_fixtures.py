"""A tiny LLaMA-architecture checkpoint (random weights, Hugging Face names) and its GGUF
conversion the way llama.cpp's converter does it (names through the ``gguf`` package's tensor
maps, the Q/K row permutation, Q8_0/Q4_0 through the ``gguf`` package's quantizers).

Written for the audit tests (issue 23) because R1's ``tests/tinyllama.py`` was not on main yet;
the lead may replace it by that builder.
"""

from __future__ import annotations

import numpy as np

CONFIG = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "ffn": 96, "vocab": 80}


def tiny_llama(seed=0, config=CONFIG):
    """HF-named float32 tensors of a tiny LLaMA (dict, in the converter's order)."""
    rng = np.random.default_rng(seed)
    c = config
    hd = c["hidden"] // c["heads"]
    t = {"model.embed_tokens.weight": rng.standard_normal((c["vocab"], c["hidden"]))}
    for i in range(c["layers"]):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = rng.standard_normal((c["hidden"], c["hidden"]))
        t[p + "self_attn.k_proj.weight"] = rng.standard_normal((c["kv_heads"] * hd, c["hidden"]))
        t[p + "self_attn.v_proj.weight"] = rng.standard_normal((c["kv_heads"] * hd, c["hidden"]))
        t[p + "self_attn.o_proj.weight"] = rng.standard_normal((c["hidden"], c["hidden"]))
        t[p + "mlp.gate_proj.weight"] = rng.standard_normal((c["ffn"], c["hidden"]))
        t[p + "mlp.up_proj.weight"] = rng.standard_normal((c["ffn"], c["hidden"]))
        t[p + "mlp.down_proj.weight"] = rng.standard_normal((c["hidden"], c["ffn"]))
        t[p + "input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(c["hidden"])
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(c["hidden"])
    t["model.norm.weight"] = 1 + 0.1 * rng.standard_normal(c["hidden"])
    t["lm_head.weight"] = rng.standard_normal((c["vocab"], c["hidden"]))
    return {k: (0.02 * v if v.ndim == 2 else v).astype(np.float32) for k, v in t.items()}


def save_safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return path


def permute(w, n_head):
    """llama.cpp's converter permutation of Q/K rows (HF rotary halves → interleaved)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_gguf(path, tensors, qtype="Q4_0", config=CONFIG, arch="llama", float_names=()):
    """Convert HF-named ``tensors`` to a GGUF file as llama.cpp's converter would: 2-D weights
    quantized to ``qtype`` (or a dict name → qtype; "F32" keeps float), 1-D in F32."""
    import gguf

    c = config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(c["layers"])
    w.add_context_length(128)
    w.add_embedding_length(c["hidden"])
    w.add_feed_forward_length(c["ffn"])
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, c["layers"])
    for hf, arr in tensors.items():
        name = names.get_name(hf, try_suffixes=(".weight",))
        if hf.endswith("q_proj.weight"):
            arr = permute(arr, c["heads"])
        elif hf.endswith("k_proj.weight"):
            arr = permute(arr, c["kv_heads"])
        qt = qtype.get(hf, "Q4_0") if isinstance(qtype, dict) else qtype
        if arr.ndim == 1 or qt == "F32" or hf in float_names:
            w.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))
            continue
        t = gguf.GGMLQuantizationType[qt]
        w.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(arr), t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def dequantized(tensors, qtype="Q4_0"):
    """What the GGUF file's tensors dequantize to, in HF layout (the direct reference)."""
    import gguf

    out = {}
    for hf, arr in tensors.items():
        if arr.ndim == 1:
            continue
        t = gguf.GGMLQuantizationType[qtype]
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
