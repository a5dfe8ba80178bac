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
