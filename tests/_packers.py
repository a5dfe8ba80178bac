"""The tiny LLaMA (tests/tinyllama.py) packed as GPTQ, AWQ, compressed-tensors and NF4 (issue 23).

Each writer takes the float32 weights of :func:`tinyllama.hf_tensors`, quantizes every
linear weight of the decoder layers (``q/k/v/o_proj``, ``gate/up/down_proj``) with the
format's reference rule from :mod:`vecq_ref.format_rules` (so the codes are real), packs
them into the stored layout the readers in ``vecq_ref/formats/`` read (FORMATS.md §5; each
reader's module docstring), and leaves ``embed_tokens``, the norms and ``lm_head`` in
float32, as the real tools do. Written from the documented layouts, independently of the
readers' unpacking code (``vecq_ref.formats._packing``), so a test through the reader checks
both. Everything is made at test time (milliseconds).

Every writer returns ``{"folder", "original", "tensors", "quantized": [HF names],
"rule": {HF name: the format_rules result}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tinyllama import hf_tensors

#: Last name part of the weights the writers quantize.
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: AutoAWQ GEMM: field k of a word holds output feature 8c + AWQ_FIELDS[k].
AWQ_FIELDS = (0, 2, 4, 6, 1, 3, 5, 7)
GROUP = 32


def is_linear(name):
    """True for a decoder layer's linear weight (what the writers quantize)."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in LINEAR


def pack_nibbles(fields, axis):
    """int32 words of 8 nibbles along ``axis``: element ``8r + k`` at bits ``4k … 4k + 3``."""
    u = np.moveaxis(np.asarray(fields, np.int64) & 0xF, axis, 0)
    assert u.shape[0] % 8 == 0, u.shape
    u = u.reshape(u.shape[0] // 8, 8, *u.shape[1:])
    words = np.zeros((u.shape[0], *u.shape[2:]), np.uint32)
    for k in range(8):
        words |= (u[:, k].astype(np.uint32) << np.uint32(4 * k))
    return np.moveaxis(words.view(np.int32), 0, axis)


def awq_interleave(a):
    """``a`` [rows, out] with, within each 8 columns, field k holding column ``AWQ_FIELDS[k]``
    (what :func:`pack_nibbles` along ``out`` then packs in AutoAWQ's order)."""
    a = np.asarray(a)
    return a.reshape(a.shape[0], -1, 8)[:, :, np.asarray(AWQ_FIELDS)].reshape(a.shape[0], -1)


def pack_high_first(codes):
    """bitsandbytes' 4-bit storage: uint8 [n/2, 1], the flattened codes two per byte, the
    first in the high nibble."""
    c = np.asarray(codes, np.uint8).reshape(-1)
    return ((c[0::2] << 4) | c[1::2]).reshape(-1, 1)


def _start(folder, seed, quantization_config, extra_files=None):
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = hf_tensors(seed)
    original = folder / "original.safetensors"
    save_file(tensors, str(original))
    q = folder / "quantized"
    q.mkdir(exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "quantization_config": quantization_config}
    (q / "config.json").write_text(json.dumps(config, indent=1))
    for name, content in (extra_files or {}).items():
        (q / name).write_text(json.dumps(content, indent=1))
    return tensors, original, q


def _finish(q, original, tensors, out, rule):
    from safetensors.numpy import save_file

    for k, w in tensors.items():
        if not is_linear(k):
            out[k] = w
    # safetensors.numpy writes a view's buffer as is: transposes must be made contiguous.
    out = {k: np.ascontiguousarray(v) for k, v in out.items()}
    save_file(out, str(q / "model.safetensors"), metadata={"format": "pt"})
    return {"folder": q, "original": original, "tensors": tensors,
            "quantized": [k for k in tensors if is_linear(k)], "rule": rule}


def write_gptq(folder, seed=0, symmetric=False):
    """GPTQ "v1" (AutoGPTQ): ``qweight`` int32 [in/8, out] packed along ``in``, ``qzeros``
    int32 [groups, out/8] holding ``z − 1``, ``scales`` fp16 [groups, out], ``g_idx`` int32
    [in]; codes by :func:`~vecq_ref.format_rules.gptq_rtn` (GPTQ's grid, no error feedback)."""
    from vecq_ref.format_rules import gptq_rtn

    qc = {"quant_method": "gptq", "bits": 4, "group_size": GROUP, "desc_act": False,
          "sym": symmetric, "checkpoint_format": "gptq"}
    tensors, original, q = _start(folder, seed, qc, {"quantize_config.json": qc})
    out, rule = {}, {}
    for k, w in tensors.items():
        if not is_linear(k):
            continue
        r = gptq_rtn(w, bits=4, group_size=GROUP, symmetric=symmetric)
        z = np.asarray(r.info["zero_point"], np.int64)
        assert z.min() >= 1, "z = 0 does not survive v1's z − 1"
        p = k[: -len("weight")]
        out[p + "qweight"] = pack_nibbles(r.codes.T, axis=0)
        out[p + "qzeros"] = pack_nibbles((z - 1).T, axis=1)
        out[p + "scales"] = np.asarray(r.alpha).T.astype(np.float16)
        out[p + "g_idx"] = (np.arange(w.shape[1]) // GROUP).astype(np.int32)
        rule[k] = r
    return _finish(q, original, tensors, out, rule)


def write_awq(folder, seed=0):
    """AWQ GEMM (AutoAWQ): ``qweight`` int32 [in, out/8] packed along ``out`` in the order
    ``[0, 2, 4, 6, 1, 3, 5, 7]``, ``qzeros`` int32 [in/g, out/8] (z, same order), ``scales``
    fp16 [in/g, out]; codes by :func:`~vecq_ref.format_rules.awq_rtn` (asymmetric, no AWQ
    scaling: the search's scales are 1)."""
    from vecq_ref.format_rules import awq_rtn

    qc = {"quant_method": "awq", "bits": 4, "group_size": GROUP, "version": "gemm",
          "zero_point": True}
    tensors, original, q = _start(folder, seed, qc)
    out, rule = {}, {}
    for k, w in tensors.items():
        if not is_linear(k):
            continue
        r = awq_rtn(w, bits=4, group_size=GROUP, symmetric=False)
        z = np.asarray(r.info["zero_point"], np.int64)  # (out, groups)
        p = k[: -len("weight")]
        out[p + "qweight"] = pack_nibbles(awq_interleave(r.codes.T.astype(np.int64)), axis=1)
        out[p + "qzeros"] = pack_nibbles(awq_interleave(z.T), axis=1)
        out[p + "scales"] = np.asarray(r.alpha).T.astype(np.float16)
        rule[k] = r
    return _finish(q, original, tensors, out, rule)


def write_compressed_tensors(folder, seed=0, symmetric=False):
    """compressed-tensors ``pack-quantized``: ``weight_packed`` int32 [out, in/8] (signed
    codes + 8), ``weight_scale`` float32 [out, groups] (the weight's dtype),
    ``weight_zero_point`` int32 [out/8, groups] (z + 8 packed along out; asymmetric only),
    ``weight_shape`` int64 [2]; codes by :func:`~vecq_ref.format_rules.compressed_tensors_rtn`."""
    from vecq_ref.format_rules import compressed_tensors_rtn

    qc = {"quant_method": "compressed-tensors", "format": "pack-quantized",
          "quantization_status": "compressed", "ignore": ["lm_head"],
          "config_groups": {"group_0": {
              "targets": ["Linear"],
              "weights": {"num_bits": 4, "type": "int", "symmetric": symmetric,
                          "strategy": "group", "group_size": GROUP, "dynamic": False}}}}
    tensors, original, q = _start(folder, seed, qc)
    out, rule = {}, {}
    for k, w in tensors.items():
        if not is_linear(k):
            continue
        r = compressed_tensors_rtn(w, bits=4, group_size=GROUP, symmetric=symmetric)
        p = k[: -len("weight")]
        out[p + "weight_packed"] = pack_nibbles(r.codes.astype(np.int64) + 8, axis=1)
        out[p + "weight_scale"] = np.asarray(r.alpha).astype(np.float32)
        if not symmetric:
            z = np.asarray(r.info["zero_point"], np.int64)
            out[p + "weight_zero_point"] = pack_nibbles(z + 8, axis=0)
        out[p + "weight_shape"] = np.asarray(w.shape, np.int64)
        rule[k] = r
    return _finish(q, original, tensors, out, rule)


def write_nf4(folder, seed=0):
    """bitsandbytes NF4 (no double quantization): ``weight`` uint8 [n/2, 1], two codes per
    byte with the first in the high nibble, ``weight.absmax`` float32 per block of 64,
    ``weight.quant_map`` (the NF4 table), the ``quant_state`` JSON blob; codes by
    :func:`~vecq_ref.format_rules.bnb_nf4`."""
    from vecq_ref import codebooks
    from vecq_ref.format_rules import bnb_nf4

    qc = {"quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": False,
          "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": False,
          "bnb_4bit_compute_dtype": "float32", "bnb_4bit_quant_storage": "uint8"}
    tensors, original, q = _start(folder, seed, qc)
    out, rule = {}, {}
    for k, w in tensors.items():
        if not is_linear(k):
            continue
        r = bnb_nf4(w, group_size=64)
        blob = json.dumps({"quant_type": "nf4", "blocksize": 64, "dtype": "float32",
                           "shape": list(w.shape)}).encode()
        out[k] = pack_high_first(r.codes)
        out[k + ".absmax"] = np.asarray(r.alpha, np.float32).reshape(-1)
        out[k + ".quant_map"] = np.asarray(codebooks.NF4, np.float32)
        out[k + ".quant_state.bitsandbytes__nf4"] = np.frombuffer(blob, np.uint8).copy()
        rule[k] = r
    return _finish(q, original, tensors, out, rule)


WRITERS = {"gptq": write_gptq, "awq": write_awq, "compressed-tensors": write_compressed_tensors,
           "bitsandbytes": write_nf4}
