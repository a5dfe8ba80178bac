"""`verify` routes block formats to their own diagnosis (issue 22): a BlockTensor or `format=`
goes to `check.blocks.verify_format`; a grouped output that VecQ's quick reader cannot place on a
lattice through zero, and that a format's rule reproduces, is diagnosed as that format (the
issue's `verify(w, wq, bits=4, group_size=32)` on llama.cpp's Q4_0); VecQ's own outputs are not
diverted."""

import numpy as np
import pytest

from vecq_ref import format_rules as FR
from vecq_ref import quantize, verify
from vecq_ref.check.blocks import FormatReport
from vecq_ref.check.verify import VerifyReport
from vecq_ref.formats import BlockTensor


@pytest.fixture(scope="module")
def w():
    return np.random.default_rng(7).standard_normal((8, 128)).astype(np.float32)


def test_q4_0_values_are_diagnosed_as_q4_0(w):
    wq = FR.q4_0(w).values.astype(np.float32)
    r = verify(w, wq, bits=4, group_size=32)
    assert isinstance(r, FormatReport)
    assert r.passed is True and "Q4_0" in r.rule and "bit for bit" in r.rule
    assert all(len(line) <= 100 for line in str(r).splitlines())
    assert r.optimum_rel_dql <= r.rel_dql
    # the quality answer under the keys a VecQ report uses
    assert r.quality["relative_dql"] == r.rel_dql and r.quality["format_optimum"] == \
        r.optimum_rel_dql and r.quality["vecq_exact"] == r.vecq_exact_rel_dql


def test_format_and_block_tensor_go_to_the_format_check(w):
    q = FR.q4_0(w)
    wq = q.values.astype(np.float32)
    r = verify(w, wq, format="q4_0")
    assert isinstance(r, FormatReport) and r.passed is True
    codes = (np.asarray(q.codes).reshape(w.shape) + 8).astype(np.uint8)
    scale = np.asarray(q.alpha, dtype=np.float64).reshape(w.shape[0], -1)
    bt = BlockTensor("t", "q4_0", "offset", 4, 32, codes, scale, np.dtype(np.float16),
                     zero=np.full(scale.shape, 8))
    np.testing.assert_array_equal(bt.dequantize(), wq)
    rb = verify(w, bt)
    assert isinstance(rb, FormatReport) and rb.passed is True and rb.claimed


def test_vecq_output_is_not_diverted(w):
    wq = quantize(w, 4, group_size=32).values
    r = verify(w, wq, bits=4, group_size=32)
    assert isinstance(r, VerifyReport) and r.passed


def test_weights_without_a_format_and_missing_bits_are_named(w):
    with pytest.raises(ValueError, match="`weights`"):
        verify(w, w, bits=4, weights=np.ones_like(w))
    with pytest.raises(TypeError, match="`bits`"):
        verify(w, w)


def _dtype(name):
    if name == "float16":
        return np.float16
    return getattr(pytest.importorskip("ml_dtypes"), name)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_vecq_output_skips_the_block_diagnosis(w, dtype, monkeypatch):
    # VecQ's own output cast to float16/bf16: the gate reads the groups in that dtype (its
    # ulps, not float32's), places every group on VecQ's lattice and runs no block format's
    # diagnosis (before: every candidate format on the whole tensor, 744 s at 4096 × 4096);
    # the report is the one the VecQ check makes without the gate's quick reading
    from vecq_ref.check import blocks
    from vecq_ref.check import verify as verify_mod

    wq = quantize(w, 4, group_size=32).values.astype(_dtype(dtype))
    fast = verify(w, wq, bits=4, group_size=32)
    gate = verify_mod._block_format_first

    def boom(*a, **k):
        raise AssertionError("verify_format called for VecQ's own output")

    monkeypatch.setattr(blocks, "verify_format", boom)
    assert str(verify(w, wq, bits=4, group_size=32)) == str(fast)
    monkeypatch.undo()
    monkeypatch.setattr(verify_mod, "_block_format_first", lambda *a, **k: None)
    slow = verify(w, wq, bits=4, group_size=32)
    assert isinstance(fast, VerifyReport) and fast.passed and fast.w_dtype == "float32"
    assert str(fast) == str(slow) and fast.as_dict() == slow.as_dict()
    # the gate's reading is the check's own (reused, not made twice): same dtype and ulps
    keep = {}
    assert gate(w, wq, 4, 32, None, keep) is None
    assert keep["dtype"] == np.dtype(_dtype(dtype)) and keep["ulps"] == 2
    assert bool(np.all(keep["rows"].read))


def test_float16_q4_0_is_still_diagnosed(w):
    # a format's output in float16 is still sent to the block diagnosis: Q4_0's full range
    # −8…7 is no reading of VecQ's narrow lattices (d·q is exact in float16)
    wq = FR.q4_0(w).values.astype(np.float16)
    r = verify(w, wq, bits=4, group_size=32)
    assert isinstance(r, FormatReport) and "Q4_0" in r.label
