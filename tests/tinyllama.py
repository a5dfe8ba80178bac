"""A tiny LLaMA checkpoint with Hugging Face names, and its GGUF as llama.cpp makes it.

``write_tiny_llama(folder)`` writes ``model.safetensors`` (float32, the Hugging Face names
of ``LlamaForCausalLM``: 2 layers, hidden 64, 4 heads, 2 KV heads, intermediate 128,
vocabulary 32) and ``model.gguf``, converted as llama.cpp's ``convert_hf_to_gguf.py`` does it:
the ``gguf`` package's tensor-name map, Q and K rows permuted (``LlamaModel.permute``), the
architecture's metadata, and the weights quantized by ``gguf.quants.quantize`` (the reference
quantizers, bit for bit with llama.cpp's C). Everything is made at test time (milliseconds);
the audit's tests import it too; tests/_packers.py packs the same weights as GPTQ, AWQ,
compressed-tensors and NF4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_LAYERS, HIDDEN, N_HEAD, N_HEAD_KV, FFN, VOCAB = 2, 64, 4, 2, 128, 32
HEAD_DIM = HIDDEN // N_HEAD

#: GGUF type of each Hugging Face tensor (by the name's last part), cycling the four types
#: ``gguf`` can quantize that the tests need; norms stay F32, ``lm_head`` F16.
DEFAULT_TYPES = {
    "embed_tokens": "Q8_0", "q_proj": "Q4_0", "k_proj": "Q8_0", "v_proj": "Q4_1",
    "o_proj": "Q5_0", "gate_proj": "Q4_0", "up_proj": "Q5_0", "down_proj": "Q4_1",
    "lm_head": "F16",
}


def hf_tensors(seed=0):
    """{Hugging Face name: float32 array} of the tiny model (random, heavy-ish tails)."""
    rng = np.random.default_rng(seed)

    def mat(rows, cols):
        return (rng.standard_t(5, size=(rows, cols)) * 0.05).astype(np.float32)

    out = {"model.embed_tokens.weight": mat(VOCAB, HIDDEN)}
    for i in range(N_LAYERS):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(
            np.float32)
        out[p + "self_attn.q_proj.weight"] = mat(N_HEAD * HEAD_DIM, HIDDEN)
        out[p + "self_attn.k_proj.weight"] = mat(N_HEAD_KV * HEAD_DIM, HIDDEN)
        out[p + "self_attn.v_proj.weight"] = mat(N_HEAD_KV * HEAD_DIM, HIDDEN)
        out[p + "self_attn.o_proj.weight"] = mat(HIDDEN, N_HEAD * HEAD_DIM)
        out[p + "post_attention_layernorm.weight"] = (
            1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
        out[p + "mlp.gate_proj.weight"] = mat(FFN, HIDDEN)
        out[p + "mlp.up_proj.weight"] = mat(FFN, HIDDEN)
        out[p + "mlp.down_proj.weight"] = mat(HIDDEN, FFN)
    out["model.norm.weight"] = np.ones(HIDDEN, np.float32)
    out["lm_head.weight"] = mat(VOCAB, HIDDEN)
    return out


def converter_permute(w, n_head):
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py), written out: within each
    of ``n_head`` heads, row ``2i + j`` of the result is row ``j·h/2 + i`` of ``w``."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def write_tiny_llama(folder, types=None, permute=True, seed=0, arch="llama"):
    """Write ``model.safetensors`` and ``model.gguf`` into ``folder``.

    Parameters
    ----------
    folder : str or Path
    types : dict, optional
        Overrides of :data:`DEFAULT_TYPES` (``{"q_proj": "Q8_0"}``).
    permute : bool
        Permute the Q/K rows as the converter does (False: a converter that does not).
    seed : int
    arch : str
        ``general.architecture`` written to the file.

    Returns
    -------
    dict
        ``original`` and ``gguf`` (paths), ``tensors`` (the float weights by HF name),
        ``names`` (HF name → GGUF name), ``types`` (HF name → GGUF type).
    """
    import gguf
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = hf_tensors(seed)
    kinds = {**DEFAULT_TYPES, **(types or {})}
    original = folder / "model.safetensors"
    save_file(tensors, str(original))

    arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    tmap = gguf.get_tensor_name_map(arch_enum, N_LAYERS)
    path = folder / "model.gguf"
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(N_LAYERS)
    writer.add_context_length(128)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_layer_norm_rms_eps(1e-5)
    names, used = {}, {}
    for hf, w in tensors.items():
        name = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf
        if permute and hf.endswith("q_proj.weight"):
            w = converter_permute(w, N_HEAD)
        if permute and hf.endswith("k_proj.weight"):
            w = converter_permute(w, N_HEAD_KV)
        key = hf.split(".")[-2] if w.ndim == 2 else None
        kind = kinds.get(key, "F32") if w.ndim == 2 else "F32"
        qtype = gguf.GGMLQuantizationType[kind]
        if kind == "F32":
            writer.add_tensor(name, w)
        elif kind == "F16":
            writer.add_tensor(name, w.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(w, qtype), raw_dtype=qtype)
        names[hf], used[hf] = name, kind
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"original": original, "gguf": path, "tensors": tensors, "names": names,
            "types": used}
