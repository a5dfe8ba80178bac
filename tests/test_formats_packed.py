"""Readers of GPTQ, AWQ, compressed-tensors and bitsandbytes checkpoints against the checkpoints
and dequantized weights the libraries themselves made (tests/fixtures/formats/packed/, made by
its make_packed.py: AutoGPTQ, AutoAWQ, compressed-tensors 0.20.1, bitsandbytes 0.50.2)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from vecq_ref import codebooks
from vecq_ref.formats import FAMILIES, format_level_set
from vecq_ref.formats._packing import AWQ_ORDER, unpack_bytes_high_first, unpack_dense, unpack_words

safetensors_numpy = pytest.importorskip("safetensors.numpy")
pytest.importorskip("ml_dtypes")

PACKED = Path(__file__).parent / "fixtures" / "formats" / "packed"
Q = "model.layers.0.self_attn.q_proj"
EXPECTED = np.load(PACKED / "expected.npz")
FOLDER_FAMILY = {"gptq": "gptq", "awq": "awq", "ct": "compressed-tensors",
                 "bnb": "bitsandbytes"}


def module_of(folder):
    return importlib.import_module(
        "vecq_ref.formats." + FAMILIES[FOLDER_FAMILY[folder.split("_")[0]]])


def open_folder(folder, path=None):
    return module_of(folder).open(path or PACKED / folder)


def bits_equal(a, b):
    """Bit-for-bit equality (so −0 ≠ +0 and NaN payloads count)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def copy_folder(folder, tmp_path):
    dst = tmp_path / folder
    shutil.copytree(PACKED / folder, dst)
    return dst


def rewrite(dst, change):
    """Load dst/model.safetensors, let ``change(tensors)`` edit the dict, save it back."""
    f = dst / "model.safetensors"
    tensors = dict(safetensors_numpy.load_file(str(f)))
    change(tensors)
    safetensors_numpy.save_file(tensors, str(f))


# --- the unpackers, by hand ---------------------------------------------------------------

def test_unpack_words_by_hand():
    w = np.array([[0x76543210]], dtype=np.uint32).astype(np.int32)
    assert unpack_words(w, 4, axis=0).ravel().tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert unpack_words(w, 4, axis=1).ravel().tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    # AWQ: field k of the word is feature order[k]: features 0, 2, 4, 6, 1, 3, 5, 7 get
    # 0, 1, 2, 3, 4, 5, 6, 7, i.e. feature f holds [0, 4, 1, 5, 2, 6, 3, 7][f].
    assert unpack_words(w, 4, axis=1, order=AWQ_ORDER).ravel().tolist() == [
        0, 4, 1, 5, 2, 6, 3, 7]
    # negative int32 words: the sign bit is field 7's top bit
    neg = np.array([[-1]], dtype=np.int32)
    assert unpack_words(neg, 4, axis=0).ravel().tolist() == [15] * 8
    assert unpack_words(np.array([[0x0000FF01]], np.int32), 8, axis=1).ravel().tolist() == [
        1, 255, 0, 0]


def test_unpack_dense_by_hand():
    # 3-bit stream of 11 elements 1, 2, …, 7, 0, 5, 6, 7: element 10 straddles bits 30–32.
    vals = [1, 2, 3, 4, 5, 6, 7, 0, 5, 6, 7]
    bits = "".join(format(v, "03b")[::-1] for v in vals)  # little-endian bit stream
    word0 = int(bits[:32][::-1], 2)
    word1 = int(bits[32:][::-1], 2)
    words = np.array([[word0, word1]], dtype=np.uint32).astype(np.int32)
    assert unpack_dense(words, 3, 11).ravel().tolist() == vals
    assert word1 == 0b1  # only the last bit of element 10 (7 = 0b111) spills over


def test_unpack_bytes_high_first_by_hand():
    assert unpack_bytes_high_first(np.array([0x1F, 0xA0], np.uint8), 4).tolist() == [
        1, 15, 10, 0]
    assert unpack_bytes_high_first(np.array([0x1F, 0xA0], np.uint8), 3).tolist() == [1, 15, 10]


def _pack_words(fields, bits, axis, order=None):
    """The twin of unpack_words: pack ``fields`` the documented way, one field at a time."""
    per = 32 // bits
    f = np.moveaxis(np.asarray(fields, dtype=np.uint64), axis, -1)
    out = np.zeros(f.shape[:-1] + (f.shape[-1] // per,), dtype=np.uint64)
    for c in range(out.shape[-1]):
        for k in range(per):
            src = per * c + (order[k] if order is not None else k)
            out[..., c] |= f[..., src] << np.uint64(bits * k)
    return np.moveaxis(out.astype(np.uint32).view(np.int32), -1, axis)


@settings(max_examples=40, deadline=None)
@given(bits=st.sampled_from([2, 4, 8]), axis=st.sampled_from([0, 1]), awq=st.booleans(),
       seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), m=st.integers(1, 5))
def test_unpack_words_inverts_packing(bits, axis, awq, seed, n, m):
    per = 32 // bits
    order = AWQ_ORDER if (awq and bits == 4) else None
    shape = (n * per, m) if axis == 0 else (m, n * per)
    fields = np.random.default_rng(seed).integers(0, 1 << bits, size=shape)
    words = _pack_words(fields, bits, axis, order)
    assert np.array_equal(unpack_words(words, bits, axis, order), fields)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 8), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 70),
       rows=st.integers(1, 3))
def test_unpack_dense_inverts_bit_stream(bits, seed, n, rows):
    vals = np.random.default_rng(seed).integers(0, 1 << bits, size=(rows, n))
    words = np.zeros((rows, -(-n * bits // 32)), dtype=np.uint64)
    for r in range(rows):
        for i in range(n):
            for b in range(bits):  # one bit at a time: the documented stream, literally
                if (int(vals[r, i]) >> b) & 1:
                    pos = i * bits + b
                    words[r, pos // 32] |= np.uint64(1 << (pos % 32))
    assert np.array_equal(unpack_dense(words.astype(np.uint32).view(np.int32), bits, n), vals)


# --- the real libraries' outputs, bit for bit -------------------------------------------

@pytest.mark.parametrize("key", EXPECTED.files)
def test_dequantize_equals_the_library(key):
    folder, original = key.split("/", 1)
    with open_folder(folder) as ck:
        bt = ck.read(ck.quantized_name(original))
        got = bt.dequantize()
    expected = EXPECTED[key]
    if got.dtype.name == "bfloat16":  # expected holds bf16 widened exactly to float32
        assert expected.dtype == np.float32
        got = got.astype(np.float32)
    assert bits_equal(got, expected)
    assert bt.shape == expected.shape == (64, 128)


@pytest.mark.parametrize("folder", sorted(p.name for p in PACKED.iterdir() if p.is_dir()))
def test_detect_names_only_its_own_family(folder):
    mine = FOLDER_FAMILY[folder.split("_")[0]]
    for family, mod_name in FAMILIES.items():
        if family == "gguf":
            continue
        mod = importlib.import_module(f"vecq_ref.formats.{mod_name}")
        assert mod.detect(PACKED / folder) is (family == mine), family
        # the config alone, and the tensors alone (no config.json), say the same
        assert mod.detect(PACKED / folder, json.loads(
            (PACKED / folder / "config.json").read_text())) is (family == mine)


@pytest.mark.parametrize("folder", ["gptq_v1_sym_g32", "awq_gemm_g64", "ct_pack_asym_g64",
                                    "bnb_nf4_dq"])
def test_detect_from_tensors_without_config(folder, tmp_path):
    dst = tmp_path / "only"
    dst.mkdir()
    shutil.copy(PACKED / folder / "model.safetensors", dst / "model.safetensors")
    mine = FOLDER_FAMILY[folder.split("_")[0]]
    found = [f for f, m in FAMILIES.items() if f != "gguf" and
             importlib.import_module(f"vecq_ref.formats.{m}").detect(dst / "model.safetensors")]
    assert found == [mine]


def test_names_and_original_names():
    with open_folder("ct_pack_sym_g32") as ck:
        assert ck.family == "compressed-tensors" and ck.architecture == "LlamaForCausalLM"
        assert ck.names() == ["model.layers.0.self_attn.k_proj", Q]
        assert ck.original_name(Q) == f"{Q}.weight"
        assert ck.original_name(f"{Q}.weight_packed") == f"{Q}.weight"
        assert ck.quantized_name(f"{Q}.weight") == Q
        assert ck.quantized_name("model.embed_tokens.weight") is None
        assert ck.read(f"{Q}.weight").name == Q
    with safetensors_numpy.safe_open(str(PACKED / "original.safetensors"), "numpy") as f:
        originals = set(f.keys())
    for folder in ("gptq_v1_sym_g32", "awq_gemm_g64", "bnb_nf4_dq"):
        with open_folder(folder) as ck:
            assert [ck.original_name(n) for n in ck.names()] == [f"{Q}.weight"]
            assert ck.original_name(f"{Q}.qweight" if "bnb" not in folder else
                                    f"{Q}.weight.absmax") == f"{Q}.weight"
            assert set(map(ck.original_name, ck.names())) <= originals
    ck = open_folder("awq_gemm_g64")
    ck.close()
    with pytest.raises(ValueError, match="closed"):
        ck.read(Q)


def test_float_tensors_are_names_too(tmp_path):
    dst = copy_folder("gptq_v1_sym_g32", tmp_path)
    lm = np.arange(8, dtype=np.float16).reshape(2, 4)
    rewrite(dst, lambda t: t.update({"lm_head.weight": lm}))
    with open_folder("gptq", dst) as ck:
        assert sorted(ck.names()) == ["lm_head.weight", Q]
        assert bits_equal(np.asarray(ck.read("lm_head.weight")), lm)
        assert ck.original_name("lm_head.weight") == "lm_head.weight"


def test_level_sets_of_the_readers():
    with open_folder("gptq_v1_sym_g32") as ck:
        assert format_level_set(ck.read(Q)).lattice == "midtread-full"
    with open_folder("gptq_v1_asym_actorder_g64") as ck:
        assert format_level_set(ck.read(Q)).zero_point == "integer"
    with open_folder("bnb_nf4") as ck:
        bt = ck.read(Q)
        assert bt.format == "nf4" and bt.kind == "codebook"
        assert np.array_equal(bt.codebook, codebooks.NF4)


# --- GPTQ: v1 / v2, act-order --------------------------------------------------------------

def test_gptq_v1_decided_from_symmetric_zeros():
    with open_folder("gptq_v1_sym_g32") as ck:
        bt = ck.read(Q)
    assert np.all(bt.zero == 8)  # stored 7 = z − 1
    assert "GPTQ v1 (no checkpoint_format; all stored zeros are 7" in bt.notes[0]


def test_gptq_v2_named_in_config_reads_as_v1():
    with open_folder("gptq_v2_sym_g32") as ck2, open_folder("gptq_v1_sym_g32") as ck1:
        b2, b1 = ck2.read(Q), ck1.read(Q)
    assert b2.notes[0].startswith("GPTQ v2 (checkpoint_format 'gptq_v2' in the config)")
    assert np.array_equal(b2.zero, b1.zero) and np.array_equal(b2.codes, b1.codes)
    assert bits_equal(b2.dequantize(), EXPECTED[f"gptq_v1_sym_g32/{Q}.weight"])


def _drop_format(dst):
    for name in ("config.json", "quantize_config.json"):
        cfg = json.loads((dst / name).read_text())
        qc = cfg.get("quantization_config", cfg)
        qc.pop("checkpoint_format", None)
        (dst / name).write_text(json.dumps(cfg))


def test_gptq_v2_decided_from_symmetric_zeros(tmp_path):
    dst = copy_folder("gptq_v2_sym_g32", tmp_path)
    _drop_format(dst)
    with open_folder("gptq", dst) as ck:
        bt = ck.read(Q)
    assert "GPTQ v2 (no checkpoint_format; all stored zeros are 8" in bt.notes[0]
    assert bits_equal(bt.dequantize(), EXPECTED[f"gptq_v1_sym_g32/{Q}.weight"])


def test_gptq_version_misnamed_shifts_every_value_by_one_step(tmp_path):
    # A v1 file declared v2: zeros read one too low, so every value is one scale too high.
    dst = copy_folder("gptq_v1_sym_g32", tmp_path)
    for name in ("config.json", "quantize_config.json"):
        cfg = json.loads((dst / name).read_text())
        cfg.get("quantization_config", cfg)["checkpoint_format"] = "gptq_v2"
        (dst / name).write_text(json.dumps(cfg))
    with open_folder("gptq", dst) as ck, open_folder("gptq_v1_sym_g32") as good:
        wrong, right = ck.read(Q), good.read(Q)
    assert np.all(wrong.zero == 7)
    diff = wrong.dequantize(np.float64) - right.dequantize(np.float64)
    assert np.array_equal(diff, right.per_element(right.scale))


def test_gptq_asymmetric_without_format_is_assumed_v1(tmp_path):
    dst = copy_folder("gptq_v1_asym_actorder_g64", tmp_path)
    _drop_format(dst)
    with open_folder("gptq", dst) as ck:
        bt = ck.read(Q)
    assert any("v1 assumed" in n for n in bt.notes)
    assert bits_equal(bt.dequantize(), EXPECTED[f"gptq_v1_asym_actorder_g64/{Q}.weight"])


def test_gptq_act_order_groups_follow_g_idx():
    with open_folder("gptq_v1_asym_actorder_g64") as ck:
        bt = ck.read(Q)
        g_idx = np.asarray(ck.tensor(f"{Q}.g_idx"))
    expected = EXPECTED[f"gptq_v1_asym_actorder_g64/{Q}.weight"]
    assert bt.group_of_col is not None and np.any(np.diff(g_idx) < 0)
    assert np.array_equal(bt.group_of_col, g_idx)
    assert sorted(np.bincount(g_idx).tolist()) == [64, 64]
    assert any("act-order" in n for n in bt.notes)
    # one element by hand: column c sits in group g_idx[c]
    c = int(np.flatnonzero(g_idx != np.arange(128) // 64)[0])
    g = int(g_idx[c])
    by_hand = np.float16(bt.scale[7, g] * (bt.codes[7, c] - bt.zero[7, g]))
    assert by_hand == expected[7, c]
    # the groups read as col // 64 instead give other values
    wrong = bt.scale[:, np.arange(128) // 64] * (bt.codes - bt.zero[:, np.arange(128) // 64])
    assert np.count_nonzero(wrong.astype(np.float16) != expected) > 100


# --- AWQ: the nibble order -----------------------------------------------------------------

def test_awq_order_matters_on_the_real_file():
    with open_folder("awq_gemm_g64") as ck:
        bt = ck.read(Q)
        qweight = np.asarray(ck.tensor(f"{Q}.qweight"))
    plain = unpack_words(qweight, 4, axis=1).T  # the identity order: wrong for AWQ
    assert not np.array_equal(plain, bt.codes)
    perm = np.arange(64).reshape(8, 8)[:, list(AWQ_ORDER)].ravel()
    assert np.array_equal(plain, bt.codes[perm])


def test_awq_tiny_file_by_hand(tmp_path):
    # in = 2, out = 8, one group of 2; word 0x76543210 in row 0, zeros word 0x11111111.
    qweight = np.array([[0x76543210], [0]], dtype=np.uint32).view(np.int32)
    qzeros = np.array([[0x11111111]], dtype=np.uint32).view(np.int32)
    scales = np.full((1, 8), 0.5, dtype=np.float16)
    f = tmp_path / "model.safetensors"
    safetensors_numpy.save_file({"m.qweight": qweight, "m.qzeros": qzeros, "m.scales": scales},
                                str(f))
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {
        "quant_method": "awq", "bits": 4, "group_size": 2, "version": "gemm"}}))
    from vecq_ref.formats import awq

    with awq.open(f) as ck:
        bt = ck.read("m")
    assert bt.codes[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert bt.dequantize()[:, 0].tolist() == [-0.5, 1.5, 0.0, 2.0, 0.5, 2.5, 1.0, 3.0]
    assert bt.dequantize()[:, 1].tolist() == [-0.5] * 8


# --- bitsandbytes: double quantization ----------------------------------------------------

def test_bnb_double_quant_absmax_restored_as_bitsandbytes_does():
    with open_folder("bnb_nf4_dq") as ck:
        bt = ck.read(Q)
        codes8 = np.asarray(ck.tensor(f"{Q}.weight.absmax"))
        amax2 = np.asarray(ck.tensor(f"{Q}.weight.nested_absmax"))
        qmap2 = np.asarray(ck.tensor(f"{Q}.weight.nested_quant_map"))
        blob = json.loads(np.asarray(ck.tensor(
            f"{Q}.weight.quant_state.bitsandbytes__nf4")).tobytes())
    assert codes8.dtype == np.uint8 and amax2.shape == (1,) and blob["nested_blocksize"] == 256
    # block 5 by hand, float32 throughout: code map × nested absmax, then + offset
    b5 = np.float32(qmap2[codes8[5]] * amax2[0]) + np.float32(blob["nested_offset"])
    assert bt.scale.reshape(-1)[5] == b5
    with open_folder("bnb_nf4") as plain:
        exact = plain.read(Q).scale
    # the 8-bit absmax is close to the exact one, not equal to it
    assert not np.array_equal(bt.scale, exact)
    assert np.max(np.abs(bt.scale / exact - 1)) < 0.05
    assert any("double quantization" in n for n in bt.notes)


def test_bnb_quant_map_of_the_file_wins(tmp_path):
    dst = copy_folder("bnb_nf4", tmp_path)

    def change(t):
        qm = t[f"{Q}.weight.quant_map"].copy()
        qm[15] = np.float32(0.9)
        t[f"{Q}.weight.quant_map"] = qm

    rewrite(dst, change)
    with open_folder("bnb", dst) as ck:
        bt = ck.read(Q)
    assert bt.codebook[15] == np.float64(np.float32(0.9))
    assert any("quant_map differs" in n and "1 entries" in n for n in bt.notes)


# --- corrupt and inconsistent files: one line naming file, tensor, field ------------------

def _one_line(exc_info, *words):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_truncated_file(tmp_path):
    dst = copy_folder("gptq_v1_sym_g32", tmp_path)
    f = dst / "model.safetensors"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[:-100])
    # Named as the GGUF reader names a truncated tensor: file, tensor, field (the file's last
    # tensor, scales: 4 groups × 64 outputs in F16 = 512 bytes, ending at the old end).
    with pytest.raises(ValueError, match="not a readable .safetensors file: truncated") as ei:
        open_folder("gptq", dst)
    _one_line(ei, str(f), f"tensor '{Q}', field 'scales' ({size} > {size - 100} bytes)")


@pytest.mark.parametrize(("folder", "key", "field", "edit"), [
    ("gptq_v1_sym_g32", f"{Q}.scales", "`scales`", lambda a: a[:, :32]),
    ("gptq_v1_sym_g32", f"{Q}.qzeros", "`qzeros`", None),
    ("gptq_v1_sym_g32", f"{Q}.g_idx", "`g_idx`", lambda a: a + 3),
    ("awq_gemm_g64", f"{Q}.qzeros", "`qzeros`", lambda a: a[:1]),
    ("ct_pack_asym_g64", f"{Q}.weight_zero_point", "`weight_zero_point`", None),
    ("ct_pack_asym_g64", f"{Q}.weight_shape", "`weight_packed`",
     lambda a: np.array([64, 256], dtype=a.dtype)),
    ("bnb_nf4_dq", f"{Q}.weight.nested_absmax", "`weight.nested_absmax`", None),
    ("bnb_nf4", f"{Q}.weight.absmax", "`weight.absmax`", lambda a: a[:-1]),
])
def test_inconsistent_tensor(tmp_path, folder, key, field, edit):
    dst = copy_folder(folder, tmp_path)

    def change(t):
        if edit is None:
            del t[key]
        else:
            t[key] = np.ascontiguousarray(edit(t[key]))

    rewrite(dst, change)
    with open_folder(folder, dst) as ck, pytest.raises(ValueError, match=re.escape(field)) as ei:
        ck.read(Q)
    _one_line(ei, field, repr(Q), str(dst / "model.safetensors"))


def test_bnb_blob_shape_disagreeing(tmp_path):
    dst = copy_folder("bnb_nf4_dq", tmp_path)
    key = f"{Q}.weight.quant_state.bitsandbytes__nf4"

    def change(t):
        blob = json.loads(t[key].tobytes())
        blob["shape"] = [64, 256]
        t[key] = np.frombuffer(json.dumps(blob).encode(), dtype=np.uint8).copy()

    rewrite(dst, change)
    with open_folder("bnb", dst) as ck, pytest.raises(ValueError, match="`weight`") as ei:
        ck.read(Q)
    _one_line(ei, "`weight`", repr(Q), "(64, 256)", str(dst / "model.safetensors"))


def test_unknown_name_and_unsupported_layouts(tmp_path):
    with open_folder("gptq_v1_sym_g32") as ck, pytest.raises(KeyError, match="nope"):
        ck.read("nope")
    dst = copy_folder("awq_gemm_g64", tmp_path)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["quantization_config"]["version"] = "gemv"
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="`version`.*'gemv'"):
        open_folder("awq", dst)


def test_refused_variants_name_what_is_not_read(tmp_path):
    # compressed-tensors fp8 (float-quantized) is a quantized module, not a float tensor;
    # the fp8 file is written by hand (8-byte header length, JSON header, data).
    f = tmp_path / "model.safetensors"
    header = json.dumps({"m.weight": {"dtype": "F8_E4M3", "shape": [2, 4],
                                      "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    f.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    scale = tmp_path / "scale"
    scale.mkdir()
    from vecq_ref.formats import bitsandbytes, compressed_tensors

    tensors = {"m.weight_scale": np.ones((2, 1), np.float16)}
    safetensors_numpy.save_file(tensors, str(scale / "model-2.safetensors"))
    shutil.copy(f, scale / "model-1.safetensors")
    (scale / "config.json").write_text(json.dumps({"quantization_config": {
        "quant_method": "compressed-tensors", "format": "float-quantized",
        "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 8,
                                                                   "type": "float"}}}}}))
    with compressed_tensors.open(scale) as ck:
        assert ck.names() == ["m"]
        with pytest.raises(ValueError, match="`format` of tensor 'm'.*'float-quantized'"):
            ck.read("m")
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {
        "quant_method": "bitsandbytes", "load_in_8bit": True}}))
    with pytest.raises(ValueError, match="`load_in_8bit`"):
        bitsandbytes.open(f)


def test_sharded_checkpoint_with_index(tmp_path):
    tensors = dict(safetensors_numpy.load_file(str(PACKED / "gptq_v1_sym_g32" /
                                                   "model.safetensors")))
    first = {k: v for k, v in tensors.items() if k.endswith((".qweight", ".g_idx"))}
    second = {k: v for k, v in tensors.items() if k not in first}
    safetensors_numpy.save_file(first, str(tmp_path / "model-00001-of-00002.safetensors"))
    safetensors_numpy.save_file(second, str(tmp_path / "model-00002-of-00002.safetensors"))
    weight_map = {k: "model-00001-of-00002.safetensors" for k in first}
    weight_map.update({k: "model-00002-of-00002.safetensors" for k in second})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": weight_map}))
    shutil.copy(PACKED / "gptq_v1_sym_g32" / "config.json", tmp_path / "config.json")
    from vecq_ref.formats import gptq

    assert gptq.detect(tmp_path)
    with gptq.open(tmp_path) as ck:
        bt = ck.read(Q)
        assert ck.where(f"{Q}.scales").name == "model-00002-of-00002.safetensors"
    assert bits_equal(bt.dequantize(), EXPECTED[f"gptq_v1_sym_g32/{Q}.weight"])


@pytest.mark.parametrize("folder", ["gptq_v1_sym_g32", "gptq_v1_asym_actorder_g64"])
def test_gptq_without_config_infers_the_group_size(folder, tmp_path):
    # Trial (issue 23): no config gave "scales must be (1, 64) (… group_size 128)".
    from vecq_ref.formats import gptq

    dst = tmp_path / "only"
    dst.mkdir()
    shutil.copy(PACKED / folder / "model.safetensors", dst / "model.safetensors")
    g = int(folder.rsplit("g", 1)[1])
    with open_folder(folder) as ref, gptq.open(dst / "model.safetensors") as ck:
        for name in ck.names():
            a, b = ref.read(name), ck.read(name)
            assert b.group_size == g == a.group_size
            assert_array_equal(b.dequantize(), a.dequantize())
            assert any(f"group size {g} inferred" in n for n in b.notes)


def test_gptq_without_config_and_odd_shapes_says_the_config_is_missing(tmp_path):
    from safetensors.numpy import load_file, save_file

    from vecq_ref.formats import gptq

    t = load_file(str(PACKED / "gptq_v1_sym_g32" / "model.safetensors"))
    key = next(k for k in t if k.endswith(".scales"))
    t[key] = np.zeros((0, t[key].shape[1]), t[key].dtype)  # no groups: nothing to infer from
    save_file(t, str(tmp_path / "model.safetensors"))
    with gptq.open(tmp_path / "model.safetensors") as ck, \
            pytest.raises(ValueError, match="quantize_config.json is missing"):
        ck.read(key[: -len(".scales")])
