"""The GGUF reader (vecq_ref.formats.llamacpp), open_quantized, pair and `verify --tensor`.

The oracle is the ``gguf`` package: files are written by its ``GGUFWriter`` with tensors
quantized by ``gguf.quants.quantize`` (bit for bit with llama.cpp's C) or hand-built blocks,
and every unpacked tensor must dequantize to ``gguf.quants.dequantize`` bit for bit.
"""

import json
import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

gguf = pytest.importorskip("gguf")
pytest.importorskip("safetensors")

from tinyllama import (  # noqa: E402
    HEAD_DIM,
    N_HEAD,
    N_HEAD_KV,
    converter_permute,
    write_tiny_llama,
)

from vecq_ref import format_rules  # noqa: E402
from vecq_ref.cli import main  # noqa: E402
from vecq_ref.formats import BlockTensor, format_level_set, open_quantized, pair  # noqa: E402
from vecq_ref.formats._gguf_layout import UNPACK  # noqa: E402
from vecq_ref.formats.llamacpp import GGUFCheckpoint, rotary_permutation  # noqa: E402

Q = gguf.GGMLQuantizationType
#: Byte offsets of the float16 scales (d, dmin, m) in each type's block.
F16_AT = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
          "IQ4_NL": [0], "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2],
          "Q6_K": [208], "IQ4_XS": [0]}


def same_bits(a, b):
    """Equal float32 arrays bit for bit (−0.0 ≠ 0.0, NaN payloads compared)."""
    a, b = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def random_blocks(qtype, n_blocks, rng):
    """Random bytes for ``n_blocks`` blocks, with finite random float16 scales."""
    _, type_size = gguf.GGML_QUANT_SIZES[Q[qtype]]
    b = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for at in F16_AT[qtype]:
        d = (rng.standard_normal(n_blocks) * 0.01).astype(np.float16)
        b[:, at:at + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return b


def write_gguf(path, tensors, arch="llama", meta=None):
    """A GGUF file of ``{name: (array, type name or None)}``; quantized arrays are raw bytes
    (n_rows, bytes per row) or float arrays quantized here."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in (meta or {}).items():
        w.add_uint32(key, value)
    for name, (arr, kind) in tensors.items():
        if kind is None:
            w.add_tensor(name, arr)
        elif arr.dtype == np.uint8:
            w.add_tensor(name, arr, raw_dtype=Q[kind])
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, Q[kind]), raw_dtype=Q[kind])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def stored(ckpt, name):
    """gguf's own dequantization of the tensor as stored, (rows, cols)."""
    t = ckpt._tensors[name]
    return gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(
        ckpt.info(name)["shape"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_llama(tmp_path_factory.mktemp("tiny"))


# --- hand-checked blocks ---------------------------------------------------------------------

def test_q4_0_block_by_hand(tmp_path):
    # d = −0.25 (fp16), nibbles: element j < 16 is the low nibble of byte j, j ≥ 16 the high.
    block = np.zeros((1, 18), np.uint8)
    block[0, :2] = np.array([-0.25], np.float16).view(np.uint8)
    block[0, 2:] = 0x3C  # low nibble 12, high nibble 3: codes 12 (x16) then 3 (x16)
    path = write_gguf(tmp_path / "h.gguf", {"t": (block, "Q4_0")})
    with open_quantized(path) as ck:
        bt = ck.read("t")
    assert bt.format == "q4_0" and bt.kind == "offset" and bt.bits == 4 and bt.shape == (1, 32)
    assert_array_equal(bt.codes[0], [12] * 16 + [3] * 16)
    assert_array_equal(bt.zero, [[8]])
    # d·(q − 8): −0.25·4 = −1 and −0.25·(−5) = 1.25
    assert_array_equal(bt.dequantize()[0], [-1.0] * 16 + [1.25] * 16)


def test_q6_k_block_by_hand(tmp_path):
    # Code 33 = 0b10_0001: low nibble 1 (ql bytes 0x11), high bits 2 (qh bytes 0b10101010);
    # sub-block j has the int8 scale j + 1, d = 0.5: value 0.5·(j + 1)·(33 − 32).
    block = np.zeros((1, 210), np.uint8)
    block[0, :128] = 0x11
    block[0, 128:192] = 0xAA
    block[0, 192:208] = np.arange(1, 17)
    block[0, 208:210] = np.array([0.5], np.float16).view(np.uint8)
    path = write_gguf(tmp_path / "h.gguf", {"t": (block, "Q6_K")})
    with open_quantized(path) as ck:
        bt = ck.read("t")
    assert (bt.format, bt.kind, bt.bits, bt.group_size) == ("q6_k", "offset", 6, 16)
    assert np.all(bt.codes == 33)
    assert_array_equal(bt.two_level["sub"][0], np.arange(1, 17))
    assert_array_equal(bt.two_level["d"], [[0.5]])
    expected = np.repeat(0.5 * np.arange(1, 17), 16)
    assert_array_equal(bt.dequantize()[0], expected)
    assert format_level_set(bt).signed_scale


def test_q4_k_block_by_hand(tmp_path):
    # Sub-blocks 0–3: scale j + 1 and min 2 (six bits in bytes 4–7 and 8–11 of the block);
    # sub-blocks 4–7: scale 5, min 3 from the packed bytes 12–15 (0x35); codes all 7;
    # d = 1, dmin = 0.25: value (j-th scale)·7 − 0.25·(j-th min).
    block = np.zeros((1, 144), np.uint8)
    block[0, 0:2] = np.array([1.0], np.float16).view(np.uint8)
    block[0, 2:4] = np.array([0.25], np.float16).view(np.uint8)
    block[0, 4:8] = [1, 2, 3, 4]
    block[0, 8:12] = 2
    block[0, 12:16] = 0x35
    block[0, 16:] = 0x77
    path = write_gguf(tmp_path / "h.gguf", {"t": (block, "Q4_K")})
    with open_quantized(path) as ck:
        bt = ck.read("t")
    assert (bt.format, bt.kind, bt.group_size) == ("q4_k", "min", 32)
    sc = np.array([1, 2, 3, 4, 5, 5, 5, 5])
    mn = np.array([2, 2, 2, 2, 3, 3, 3, 3])
    assert_array_equal(bt.two_level["sub"][0], sc)
    assert_array_equal(bt.two_level["sub_min"][0], mn)
    assert_array_equal(bt.dequantize()[0], np.repeat(sc * 7.0 - 0.25 * mn, 32))


# --- every unpacked type against gguf's dequantize, bit for bit ------------------------------

@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
def test_quantized_by_gguf_equal_its_dequantize(tmp_path, rng, qtype):
    w = (rng.standard_t(4, size=(6, 96)) * 0.1).astype(np.float32)
    w[0, :32] = 0.0  # an all-zero block (d = 0)
    w[1, :32] = 0.3  # a constant block
    path = write_gguf(tmp_path / "q.gguf", {"w": (w, qtype)})
    with open_quantized(path) as ck:
        bt = ck.read("w")
        assert ck.info("w") == {"type": qtype, "shape": (6, 96), "unpacked": True}
        ref = stored(ck, "w")
    assert bt.shape == w.shape and bt.scale.shape == (6, 3)
    assert same_bits(bt.dequantize(), ref)
    # The codes and stored scales are the format's rule (format_rules, proven against C).
    rule = getattr(format_rules, qtype.lower())(w)
    shift = {"Q4_0": 8, "Q5_0": 16}.get(qtype, 0)
    assert_array_equal(bt.codes.astype(int) - shift, rule.codes)
    assert_array_equal(bt.scale, rule.alpha)
    if bt.kind == "min":
        assert_array_equal(bt.minimum, rule.info["offset"])


@pytest.mark.parametrize("qtype", sorted(UNPACK))
def test_random_blocks_equal_gguf_dequantize(tmp_path, rng, qtype):
    block, _ = gguf.GGML_QUANT_SIZES[Q[qtype]]
    rows, per_row = 3, 2
    raw = random_blocks(qtype, rows * per_row, rng).reshape(rows, -1)
    path = write_gguf(tmp_path / "k.gguf", {"t": (raw, qtype)})
    with open_quantized(path) as ck:
        bt = ck.read("t")
        ref = stored(ck, "t")
    fmt, kind, bits, group, *_ = UNPACK[qtype]
    assert isinstance(bt, BlockTensor)
    assert (bt.format, bt.kind, bt.bits, bt.group_size) == (fmt, kind, bits, group)
    assert bt.shape == (rows, per_row * block) and bt.scale.shape == (rows, per_row * block
                                                                      // group)
    assert bt.codes.min() >= -128 and bt.codes.max() < 2 ** bits
    assert same_bits(bt.dequantize(), ref)


@pytest.mark.parametrize("qtype", ["Q4_0", "Q5_0", "Q8_0", "Q4_1", "Q5_1"])
def test_committed_gguf_outputs(tmp_path, qtype):
    """gguf 0.19.0's raw blocks and dequantized values, committed in
    tests/fixtures/formats/gguf_ref.npz (random rows and hand-made edge blocks)."""
    from pathlib import Path

    ref = np.load(Path(__file__).parent / "fixtures" / "formats" / "gguf_ref.npz")
    for part in ("rand", "edge"):
        raw, deq = ref[f"{part}_{qtype.lower()}_raw"], ref[f"{part}_{qtype.lower()}_deq"]
        path = write_gguf(tmp_path / f"{part}.gguf", {"t": (raw, qtype)})
        with open_quantized(path) as ck:
            bt = ck.read("t")
        assert bt.shape == deq.shape
        assert same_bits(bt.dequantize(), deq), part


def test_tiny_model_bytes_as_recorded(tmp_path):
    """tinyllama writes the bytes manifest.json records, with the versions it records."""
    import hashlib
    from importlib.metadata import version
    from pathlib import Path

    manifest = json.loads((Path(__file__).parent / "fixtures" / "formats" / "gguf" /
                           "manifest.json").read_text())
    now = {k: version(k) for k in ("numpy", "gguf", "safetensors")}
    if any(manifest["versions"][k] != v for k, v in now.items()):
        pytest.skip(f"versions {now} differ from the manifest's {manifest['versions']}")
    made = write_tiny_llama(tmp_path)
    for key, name in (("gguf", "model.gguf"), ("original", "model.safetensors")):
        digest = hashlib.sha256(made[key].read_bytes()).hexdigest()
        assert digest == manifest["sha256"][name], name


@given(seed=st.integers(0, 2 ** 32 - 1), qtype=st.sampled_from(sorted(UNPACK)),
       n=st.integers(1, 4))
def test_unpackers_match_gguf_property(seed, qtype, n):
    from vecq_ref.formats._gguf_layout import UNPACK as table

    rng = np.random.default_rng(seed)
    b = random_blocks(qtype, n, rng)
    fmt, kind, bits, group, zero, unpack, _ = table[qtype]
    p = unpack(b)
    extra = ({"zero": np.full(p["scale"].shape, zero)} if kind == "offset" else
             {"minimum": p["minimum"]} if kind == "min" else
             {"codebook": np.asarray(zero, float)})
    bt = BlockTensor(name="t", format=fmt, kind=kind, bits=bits, group_size=group,
                     codes=p["codes"], scale=p["scale"], scale_dtype=np.float16, **extra)
    assert same_bits(bt.dequantize(), gguf.quants.dequantize(b, Q[qtype]))


def test_float_and_other_types(tmp_path, rng):
    w = rng.standard_normal((4, 64)).astype(np.float32)
    bf16 = gguf.quants.quantize(w, Q.BF16)
    path = write_gguf(tmp_path / "f.gguf", {
        "f32": (w, None), "f16": (w.astype(np.float16), None), "bf16": (bf16, "BF16"),
        "tq2": (np.tile(w, (1, 4)), "TQ2_0"),
        "norm": (w[0], None)})
    with open_quantized(path) as ck:
        assert_array_equal(ck.read("f32"), w)
        assert ck.read("f16").dtype == np.float16
        assert_array_equal(ck.read("f16"), w.astype(np.float16))
        got = ck.read("bf16")
        assert got.dtype == np.float32 and same_bits(got, stored(ck, "bf16"))
        tq = ck.read("tq2")
        assert ck.info("tq2") == {"type": "TQ2_0", "shape": (4, 256), "unpacked": False}
        assert same_bits(tq, stored(ck, "tq2"))
        assert ck.read("norm").shape == (64,)


# --- names and the converter's permutation ---------------------------------------------------

def test_rotary_permutation_by_hand():
    # 8 rows, 2 heads of 4: within a head rows (0, 1 | 2, 3) interleave to 0, 2, 1, 3.
    assert_array_equal(rotary_permutation(8, 2), [0, 2, 1, 3, 4, 6, 5, 7])
    w = np.arange(24.0).reshape(8, 3)
    assert_array_equal(converter_permute(w, 2), w[rotary_permutation(8, 2)])


def test_names_both_ways(tiny):
    with open_quantized(tiny["gguf"]) as ck:
        assert ck.family == "gguf" and ck.architecture == "llama"
        assert sorted(ck.names()) == sorted(tiny["names"].values())
        for hf, name in tiny["names"].items():
            assert ck.original_name(name) == hf
            assert ck.original_name(name, available=list(tiny["tensors"])) == hf
            assert ck.quantized_name(hf) == name
            # An original saved under a prefix (BERT's "bert.", a wrapper's "base.").
            assert ck.original_name(name, available=["base." + hf, "x"]) == "base." + hf
            assert ck.quantized_name("base." + hf) == name
        assert ck.quantized_name("model.layers.7.self_attn.q_proj.weight") is None
        assert ck.original_name("no.such.tensor") is None


def test_permutation_undone(tiny):
    with open_quantized(tiny["gguf"]) as ck:
        for i in range(2):
            for proj, heads, gname in (("q_proj", N_HEAD, f"blk.{i}.attn_q.weight"),
                                       ("k_proj", N_HEAD_KV, f"blk.{i}.attn_k.weight")):
                w = tiny["tensors"][f"model.layers.{i}.self_attn.{proj}.weight"]
                bt = ck.read(gname)
                assert any("permuted by llama.cpp's converter" in n for n in bt.notes)
                # Blocks lie within rows, so quantizing the original directly gives the
                # same values in the original's row order.
                kind = Q[tiny["types"][f"model.layers.{i}.self_attn.{proj}.weight"]]
                direct = gguf.quants.dequantize(gguf.quants.quantize(w, kind), kind)
                assert same_bits(bt.dequantize(), direct)
                raw = ck.read(gname, unpermute=False)
                assert raw.notes == ()
                assert same_bits(raw.dequantize(), stored(ck, gname))
                perm = rotary_permutation(heads * HEAD_DIM, heads)
                assert same_bits(raw.dequantize(), direct[perm])
        v = ck.read("blk.0.attn_v.weight")
        assert v.notes == ()
        with pytest.raises(ValueError, match="no converter permutation"):
            ck.read("blk.0.attn_v.weight", unpermute=True)


def test_pair_either_naming_and_unpermuted_file(tiny, tmp_path):
    orig, path = tiny["original"], tiny["gguf"]
    w1, q1, n1 = pair(orig, path, "blk.1.attn_k.weight")
    w2, q2, n2 = pair(orig, path, "model.layers.1.self_attn.k_proj.weight")
    assert n1["original"] == n2["original"] == "model.layers.1.self_attn.k_proj.weight"
    assert n1["quantized"] == n2["quantized"] == "blk.1.attn_k.weight"
    assert_array_equal(w1, tiny["tensors"][n1["original"]])
    assert same_bits(q1.dequantize(), q2.dequantize())
    # A converter that did not permute: pair sees the stored rows fit and keeps them.
    plain = write_tiny_llama(tmp_path / "plain", permute=False)
    w, q, names = pair(plain["original"], plain["gguf"], "blk.0.attn_q.weight")
    kind = Q[plain["types"]["model.layers.0.self_attn.q_proj.weight"]]
    assert same_bits(q.dequantize(),
                     gguf.quants.dequantize(gguf.quants.quantize(w, kind), kind))
    assert any("kept as stored" in n for n in names["notes"])
    # A float tensor of the quantized file comes back as its array.
    w, q, names = pair(orig, path, "lm_head.weight")
    assert names["quantized"] == "output.weight" and q.dtype == np.float16


PACKED = ["gptq_v1_sym_g32", "gptq_v1_asym_actorder_g64", "awq_gemm_g64", "ct_pack_sym_g32",
          "bnb_nf4_dq"]


@pytest.mark.parametrize("folder", PACKED)
def test_pair_through_the_safetensors_readers(folder):
    """pair works on every family open_quantized reaches: the packed checkpoints of
    tests/fixtures/formats/packed against their float original, in either naming."""
    from pathlib import Path

    root = Path(__file__).parent / "fixtures" / "formats" / "packed"
    expected = np.load(root / "expected.npz")
    hf = "model.layers.0.self_attn.q_proj.weight"
    names = [hf, "model.layers.0.self_attn.q_proj"]
    if folder.startswith("gptq"):
        names.append("model.layers.0.self_attn.q_proj.qweight")  # a member tensor
    got = [pair(root / "original.safetensors", root / folder, name) for name in names]
    for w, q, names in got:
        assert names["original"] == hf and names["quantized"] == "model.layers.0.self_attn.q_proj"
        assert isinstance(q, BlockTensor) and q.shape == w.shape
        ref = expected[f"{folder}/{hf}"]
        assert_array_equal(q.dequantize(ref.dtype), ref)


def test_pair_refuses(tiny, tmp_path):
    with pytest.raises(ValueError, match="`tensor` 'blk.0.attn_qq.weight' is in neither file"):
        pair(tiny["original"], tiny["gguf"], "blk.0.attn_qq.weight")
    with pytest.raises(TypeError, match="`tensor` must be a tensor name"):
        pair(tiny["original"], tiny["gguf"], 3)
    with pytest.raises(FileNotFoundError, match="`original` file"):
        pair(tmp_path / "none.safetensors", tiny["gguf"], "blk.0.attn_q.weight")
    # Same shapes, other values: a wrong pairing is an error, not a verdict.
    other = write_tiny_llama(tmp_path / "other", seed=5)
    with pytest.raises(ValueError, match="do not pair"):
        pair(other["original"], tiny["gguf"], "blk.0.ffn_up.weight")


def test_open_quantized_dispatch(tiny, tmp_path):
    odd = tmp_path / "model.bin"  # the magic decides, not the suffix
    odd.write_bytes(tiny["gguf"].read_bytes())
    with open_quantized(odd) as ck:
        assert isinstance(ck, GGUFCheckpoint)
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        open_quantized(tmp_path / "nope.gguf")
    with pytest.raises(ValueError, match=r"model\.safetensors is not a quantized checkpoint"
                                         r".*GGUF magic.*quant_method"):
        open_quantized(tiny["original"])


def test_open_quantized_dispatches_safetensors_to_the_family_that_detects(
        tiny, tmp_path, monkeypatch):
    import types

    from vecq_ref.formats import _open

    seen = []

    def stub(family, claims):
        def detect(path, config):
            seen.append((family, config))
            return claims
        return types.SimpleNamespace(detect=detect, open=lambda path, config: (family, path))

    stubs = {"gptq": stub("gptq", False), "awq": stub("awq", True)}
    real = _open._family_module
    monkeypatch.setattr(_open, "_family_module", lambda module: (
        real(module) if module == "llamacpp" else stubs.get(module)))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(tiny["original"].read_bytes())
    config = {"quantization_config": {"quant_method": "awq"}}
    (folder / "config.json").write_text(json.dumps(config))
    assert open_quantized(folder) == ("awq", folder)
    assert seen == [("gptq", config), ("awq", config)]
    # The config beside a file is read too; a GGUF never reaches the families.
    assert open_quantized(folder / "model.safetensors")[0] == "awq"
    assert isinstance(open_quantized(tiny["gguf"]), GGUFCheckpoint)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json cannot be read as JSON"):
        open_quantized(folder)
    stubs["awq"] = stub("awq", False)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"quant_method is 'awq'.*\(gptq, awq\)"
                                         r".*not available: compressed-tensors, bitsandbytes"):
        open_quantized(folder)


# --- corrupt files: one line naming the file, the tensor and the field -----------------------

def _tensor_info_at(data, name):
    """Offset of the n_dims field after the tensor name ``name`` in the header."""
    return data.index(name.encode()) + len(name)


def corruptions(tiny, tmp_path):
    data = tiny["gguf"].read_bytes()
    at = _tensor_info_at(data, "blk.0.attn_q.weight")
    out = {}

    def put(label, raw):
        p = tmp_path / f"{label}.gguf"
        p.write_bytes(raw)
        out[label] = p

    put("magic", b"GGUX" + data[4:])
    put("endian", data[:4] + struct.pack(">I", 3) + data[8:])
    put("header", data[:20])
    key = data.index(b"llama.block_count")
    put("key", data[:key + 5])
    put("metadata", data[:key + len("llama.block_count") + 2])
    put("tensor_info", data[:at + 6])
    put("data", data[:-100])
    bad_type = bytearray(data)
    bad_type[at + 4 + 16:at + 4 + 20] = struct.pack("<I", 99)
    put("type", bytes(bad_type))
    bad_dim = bytearray(data)
    bad_dim[at + 4:at + 12] = struct.pack("<Q", 48)  # ne0 not a multiple of 32
    put("ne0", bytes(bad_dim))
    overlap = bytearray(data)  # output.weight (the last tensor) moved onto the first's data
    end = _tensor_info_at(data, "output.weight") + 4 + 16 + 4
    overlap[end:end + 8] = struct.pack("<Q", 0)
    put("offset", bytes(overlap))
    return out


EXPECTED = {
    "magic": r"field 'magic'",
    "endian": r"field 'version' says the file is big-endian",
    "header": r"field 'kv_count'.*past the end",
    "key": r"metadata key #\d+ ends at byte \d+, past the end",
    "metadata": r"metadata 'llama\.block_count': field 'type' ends at byte \d+, past the end",
    "tensor_info": r"tensor 'blk\.0\.attn_q\.weight': field 'ne\[0\]'.*past the end",
    "data": r"tensor 'output\.weight': field 'data'.*past the end of the file",
    "type": r"tensor 'blk\.0\.attn_q\.weight': field 'type' is 99",
    "ne0": r"tensor 'blk\.0\.attn_q\.weight': field 'ne\[0\]' is 48",
    "offset": r"tensor '[\w.]+': field 'offset' is 0, inside the data of tensor '[\w.]+'",
}


def test_corrupt_files_one_line(tiny, tmp_path):
    for label, path in corruptions(tiny, tmp_path).items():
        with pytest.raises(ValueError, match=EXPECTED[label]) as info:
            open_quantized(path)
        text = str(info.value)
        assert "\n" not in text and str(path) in text, label


def test_inconsistent_metadata(tmp_path, rng):
    w = rng.standard_normal((8, 32)).astype(np.float32)
    path = write_gguf(tmp_path / "b.gguf", {"blk.0.attn_v.weight": (w, None),
                                            "blk.3.attn_v.weight": (w, None)},
                      meta={"llama.block_count": 2})
    with pytest.raises(ValueError, match=r"tensor 'blk\.3\.attn_v\.weight': metadata "
                                         r"'llama\.block_count' is 2"):
        open_quantized(path)
    path = write_gguf(tmp_path / "h.gguf", {"blk.0.attn_q.weight": (w, None)},
                      meta={"llama.block_count": 1, "llama.attention.head_count": 3})
    with open_quantized(path) as ck:
        with pytest.raises(ValueError, match=r"tensor 'blk\.0\.attn_q\.weight': metadata "
                                             r"'llama\.attention\.head_count' is 3"):
            ck.read("blk.0.attn_q.weight")
    path = write_gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": (w, None)},
                      meta={"llama.block_count": 1})
    with open_quantized(path) as ck:
        with pytest.raises(ValueError, match="'llama.attention.head_count' is missing"):
            ck.read("blk.0.attn_q.weight")


def test_metadata_arrays_skipped_and_checked(tmp_path, rng):
    w = rng.standard_normal((2, 32)).astype(np.float32)
    path = tmp_path / "a.gguf"
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_block_count(1)
    wr.add_token_list(["<s>", "a", "bb", "ccc"])
    wr.add_array("test.numbers", [1, 2, 3])
    wr.add_array("test.nested", [[1, 2], [3]])
    wr.add_string("general.name", "tiny")
    wr.add_tensor("blk.0.attn_v.weight", w)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    with open_quantized(path) as ck:
        assert ck.metadata["general.name"] == "tiny"
        assert ck.metadata["test.numbers"] is None  # arrays are not kept
        assert_array_equal(ck.read("blk.0.attn_v.weight"), w)
    data = path.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:data.index(b"ccc") + 1])
    with pytest.raises(ValueError, match=r"metadata 'tokenizer\.ggml\.tokens': field "
                                         r"'value'\[3\] ends at byte \d+, past the end"):
        open_quantized(cut)


def test_bert_names_need_the_original(tmp_path, rng):
    """A BERT GGUF: the map's first candidate is another family's name; with the original's
    names the BERT one is found, in both directions, and nothing is permuted."""
    w = rng.standard_normal((64, 64)).astype(np.float32)
    path = write_gguf(tmp_path / "bert.gguf", {"blk.0.attn_q.weight": (w, "Q8_0")},
                      arch="bert", meta={"bert.block_count": 1,
                                         "bert.attention.head_count": 4})
    hf = ["embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"]
    with open_quantized(path) as ck:
        assert ck.architecture == "bert"
        assert ck.original_name("blk.0.attn_q.weight", available=hf) == hf[1]
        assert ck.quantized_name(hf[1]) == "blk.0.attn_q.weight"
        assert ck.quantized_name("bert." + hf[1]) == "blk.0.attn_q.weight"
        assert ck.permutation("blk.0.attn_q.weight") is None
        assert ck.read("blk.0.attn_q.weight").notes == ()


# --- the command line ------------------------------------------------------------------------

def test_cli_verify_tensor_either_naming(tiny, capsys):
    orig, path = str(tiny["original"]), str(tiny["gguf"])
    payloads = []
    for name in ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight"):
        rc = main(["verify", orig, path, "--tensor", name, "--json"])
        out = capsys.readouterr().out
        payload = json.loads(out)
        assert rc == (0 if payload["passed"] else 1)
        payloads.append(payload)
    for p in payloads:
        assert p["pair"]["original"] == "model.layers.0.self_attn.k_proj.weight"
        assert p["pair"]["quantized"] == "blk.0.attn_k.weight"
        assert any("undone" in n for n in p["pair"]["notes"])
    assert payloads[0]["reports"] == payloads[1]["reports"]
    # The text report's pair:/note: lines wrap at 100 characters (trial: 150-250), uncut.
    main(["verify", orig, path, "--tensor", "blk.0.attn_k.weight"])
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 100
    flat = " ".join(text.split())
    assert all(" ".join(n.split()) in flat for n in payloads[0]["pair"]["notes"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--tensor", "blk.0.nothing.weight"], r"--tensor 'blk\.0\.nothing\.weight' is in neither"),
    (["--tensor", "output.weight"], r"kept in float \(float16\).*give --bits"),
    (["--tensor", "blk.0.attn_k.weight", "--bits", "4"], r"--bits 4 contradicts.*q8_0"),
    (["--tensor", "blk.0.attn_k.weight", "--format", "q4_0"], r"--format q4_0 contradicts.*q8_0"),
])
def test_cli_verify_tensor_errors(tiny, capsys, argv, message):
    rc = main(["verify", str(tiny["original"]), str(tiny["gguf"]), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert re.search(message, err), err


def test_cli_corrupt_file_exit_2(tiny, tmp_path, capsys):
    for label, path in corruptions(tiny, tmp_path).items():
        rc = main(["verify", str(tiny["original"]), str(path), "--tensor",
                   "blk.0.attn_q.weight"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, (label, err)
        assert str(path) in err and "Traceback" not in err


def test_cli_verify_tensor_example_of_the_help(tmp_path, monkeypatch, capsys):
    """The --tensor example of ``verify --help``, on the tiny model under its file names."""
    import shlex

    from vecq_ref.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["verify"]
    lines = [ln.strip() for ln in sub.epilog.splitlines() if "--tensor" in ln]
    assert len(lines) == 1
    argv = shlex.split(lines[0])[1:]
    monkeypatch.chdir(tmp_path)
    made = write_tiny_llama(tmp_path)
    made["original"].rename(argv[1])
    made["gguf"].rename(argv[2])
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc in (0, 1)
    # The pair: line wraps at 100 characters onto indented continuation lines.
    assert " ".join(out.split()).startswith(
        f"pair: {argv[1]}['model.layers.0.self_attn.q_proj.weight'] and "
        f"{argv[2]}['blk.0.attn_q.weight'] (q4_0, 4 bits, groups of 32)")
    assert max(map(len, out.splitlines())) <= 100


def test_cli_verify_needs_bits_without_tensor(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.ones(8, np.float32))
    rc = main(["verify", str(tmp_path / "w.npy"), str(tmp_path / "w.npy")])
    assert rc == 2 and "--bits is required" in capsys.readouterr().err
    rc = main(["verify", str(tmp_path / "w.npy"), "--tensor", "x"])
    assert rc == 2 and "--tensor needs two files" in capsys.readouterr().err
