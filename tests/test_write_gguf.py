"""``vecq_ref.formats.llamacpp.write_gguf``: a float checkpoint written as a GGUF file quantized
by llama.cpp's reference rule. The oracle is the ``gguf`` package's own ``quants.quantize``
(bit for bit with llama.cpp's C), read back through the project's reader."""

import os
import stat

import numpy as np
import pytest
from numpy.testing import assert_array_equal

gguf = pytest.importorskip("gguf")
pytest.importorskip("safetensors")
ml_dtypes = pytest.importorskip("ml_dtypes")

from safetensors.numpy import save_file  # noqa: E402

from vecq_ref.formats import BlockTensor, open_quantized  # noqa: E402
from vecq_ref.formats.llamacpp import write_gguf  # noqa: E402


def bert(path, dtype=np.float32):
    """Two BERT layers with Hugging Face names, one tensor the map does not know."""
    rng = np.random.default_rng(3)
    t = {"embeddings.word_embeddings.weight": rng.standard_normal((40, 64)),
         "encoder.layer.0.attention.self.query.weight": rng.standard_normal((64, 64)),
         "encoder.layer.1.intermediate.dense.weight": rng.standard_normal((96, 64)),
         "encoder.layer.1.output.dense.weight": rng.standard_normal((64, 48)),  # 48 % 32 ≠ 0
         "encoder.layer.1.output.LayerNorm.weight": rng.standard_normal(64),
         "pooler.unknown.thing": rng.standard_normal((4, 32))}
    save_file({k: (0.05 * v).astype(dtype) for k, v in t.items()}, str(path))
    return {k: (0.05 * v).astype(dtype) for k, v in t.items()}


@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0", "Q5_1"])
def test_written_tensors_are_ggufs_own_quantization(tmp_path, qtype):
    src = tmp_path / "model.safetensors"
    t = bert(src)
    res = write_gguf(src, tmp_path / "m.gguf", qtype)
    assert res["path"] == tmp_path / "m.gguf"
    assert res["skipped"] == ["pooler.unknown.thing"]
    kinds = {k: v[1] for k, v in res["tensors"].items()}
    assert kinds == {"embeddings.word_embeddings.weight": qtype,
                     "encoder.layer.0.attention.self.query.weight": qtype,
                     "encoder.layer.1.intermediate.dense.weight": qtype,
                     "encoder.layer.1.output.dense.weight": "F32",
                     "encoder.layer.1.output.LayerNorm.weight": "F32"}
    qt = gguf.GGMLQuantizationType[qtype]
    with open_quantized(tmp_path / "m.gguf") as ck:
        assert ck.architecture == "bert" and ck.block_count == 2
        for hf, (name, kind) in res["tensors"].items():
            assert ck.original_name(name) == hf or hf in ck.original_candidates(name)
            got = ck.read(name)
            if kind == "F32":
                assert_array_equal(got, t[hf])
                continue
            assert isinstance(got, BlockTensor)
            want = gguf.quants.dequantize(gguf.quants.quantize(t[hf], qt), qt)
            assert np.array_equal(got.dequantize().view(np.uint32),
                                  want.astype(np.float32).view(np.uint32))


def test_bfloat16_is_widened_exactly(tmp_path):
    src = tmp_path / "model.safetensors"
    t = bert(src, ml_dtypes.bfloat16)
    write_gguf(src, tmp_path / "m.gguf")
    hf = "encoder.layer.0.attention.self.query.weight"
    w = t[hf].astype(np.float32)
    qt = gguf.GGMLQuantizationType.Q4_0
    with open_quantized(tmp_path / "m.gguf") as ck:
        got = ck.read(ck.quantized_name(hf)).dequantize()
    assert_array_equal(got, gguf.quants.dequantize(gguf.quants.quantize(w, qt), qt))


def test_never_overwrites_without_force_and_honours_the_umask(tmp_path):
    src = tmp_path / "model.safetensors"
    bert(src)
    out = tmp_path / "m.gguf"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="force"):
        write_gguf(src, out)
    assert out.read_bytes() == b"keep"
    old = os.umask(0o027)
    try:
        write_gguf(src, out, force=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("kw", "name"), [
    ({"qtype": "Q4_K_M"}, "qtype"), ({"qtype": 4}, "qtype"), ({"qtype": "F16"}, "qtype"),
    ({"qtype": "F32"}, "qtype"),
    ({"arch": "no-such-arch"}, "arch"), ({"arch": "llama"}, "arch"), ({"arch": None}, "arch"),
])
def test_bad_arguments_name_themselves(tmp_path, kw, name):
    src = tmp_path / "model.safetensors"
    bert(src)
    with pytest.raises(ValueError, match=f"`{name}`"):
        write_gguf(src, tmp_path / "m.gguf", **kw)
    assert not (tmp_path / "m.gguf").exists()


def test_a_checkpoint_the_map_does_not_know_is_refused(tmp_path):
    src = tmp_path / "model.safetensors"
    save_file({"foo.bar": np.ones((4, 32), np.float32)}, str(src))
    with pytest.raises(ValueError, match="none of its 1 tensors"):
        write_gguf(src, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_qtype_in_any_case_and_the_error_lists_what_gguf_quantizes(tmp_path):
    src = tmp_path / "model.safetensors"
    bert(src)
    res = write_gguf(src, tmp_path / "m.gguf", "q8_0")  # as verify and audit print it
    assert {k for _, k in res["tensors"].values()} == {"Q8_0", "F32"}
    with pytest.raises(ValueError, match="`qtype`") as e:
        write_gguf(src, tmp_path / "n.gguf", "Q4_K_M")
    msg = str(e.value)
    for t in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"):
        assert t in msg
    assert "F16" not in msg.split("got")[0]
