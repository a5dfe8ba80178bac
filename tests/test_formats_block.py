"""BlockTensor: the three dequantization formulas, by hand; the contiguous-group fast path equals
the general (g_idx) path; bad construction is named; format_level_set per format."""

import numpy as np
import pytest

from vecq_ref.formats import BlockTensor, format_level_set


def _bt(kind, **kw):
    codes = np.array([[0, 3, 15, 8], [7, 8, 9, 1]], dtype=np.uint8)
    base = dict(name="t", format=kw.pop("format", "x"), kind=kind, bits=4, group_size=2,
                codes=codes, scale=np.array([[0.5, 2.0], [1.0, -0.25]]),
                scale_dtype=np.dtype(np.float16))
    base.update(kw)
    return BlockTensor(**base)


def test_offset_by_hand():
    bt = _bt("offset", zero=np.array([[8, 8], [8, 0]]))
    # row 0: 0.5·(0−8), 0.5·(3−8), 2·(15−8), 2·(8−8); row 1: 1·(7−8), 1·(8−8), −0.25·9, −0.25·1
    expect = np.array([[-4.0, -2.5, 14.0, 0.0], [-1.0, 0.0, -2.25, -0.25]], dtype=np.float32)
    np.testing.assert_array_equal(bt.dequantize(), expect)
    assert bt.dequantize().dtype == np.float32


def test_min_by_hand():
    bt = _bt("min", minimum=np.array([[-1.0, 0.5], [0.0, 2.0]]))
    expect = np.array([[-1.0, 0.5, 30.5, 16.5], [7.0, 8.0, -0.25, 1.75]])
    np.testing.assert_array_equal(bt.dequantize(np.float64), expect)


def test_codebook_by_hand():
    cb = np.linspace(-1.0, 1.0, 16)
    bt = _bt("codebook", codebook=cb)
    expect = np.array([[0.5 * cb[0], 0.5 * cb[3], 2 * cb[15], 2 * cb[8]],
                       [cb[7], cb[8], -0.25 * cb[9], -0.25 * cb[1]]])
    np.testing.assert_array_equal(bt.dequantize(np.float64), expect)


@pytest.mark.parametrize("kind", ["offset", "min", "codebook"])
def test_contiguous_path_equals_group_index_path(kind):
    rng = np.random.default_rng(0)
    rows, cols, g = 5, 96, 32
    extra = {"offset": dict(zero=rng.integers(0, 16, (rows, cols // g))),
             "min": dict(minimum=rng.normal(size=(rows, cols // g))),
             "codebook": dict(codebook=np.sort(rng.normal(size=16)))}[kind]
    kw = dict(name="t", format="x", kind=kind, bits=4, group_size=g,
              codes=rng.integers(0, 16, (rows, cols)).astype(np.uint8),
              scale=rng.normal(size=(rows, cols // g)), scale_dtype=np.dtype(np.float32), **extra)
    a = BlockTensor(**kw).dequantize(np.float64)
    b = BlockTensor(**kw, group_of_col=np.arange(cols) // g).dequantize(np.float64)
    np.testing.assert_array_equal(a, b)


def test_bad_construction_named():
    with pytest.raises(ValueError, match="`kind`"):
        _bt("affine")
    with pytest.raises(ValueError, match="`zero`"):
        _bt("offset")
    with pytest.raises(ValueError, match="`group_size`"):
        _bt("min", minimum=np.zeros((2, 2)), group_size=3)


def test_format_level_set():
    q40 = _bt("offset", format="q4_0", zero=np.full((2, 2), 8))
    assert format_level_set(q40).signed_scale and format_level_set(q40).code_range == (-8, 7)
    sym = _bt("offset", format="gptq", zero=np.full((2, 2), 8))
    assert not format_level_set(sym).signed_scale and format_level_set(sym).code_range == (-8, 7)
    asym = _bt("offset", format="gptq", zero=np.array([[8, 7], [3, 8]]))
    assert format_level_set(asym).zero_point == "integer"
    assert format_level_set(_bt("min", format="q4_1", minimum=np.zeros((2, 2)))).zero_point \
        == "float"
