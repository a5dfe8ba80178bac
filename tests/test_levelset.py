"""Nearest-level assignment of general level sets (``_kernels.levelset``) against its twin."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

from vecq_ref import codebooks, naive
from vecq_ref._kernels import levelset as K

FULL4 = np.arange(-8, 8, dtype=np.float64)


def _assign(x, step, levels):
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    out = np.empty(x.shape, dtype=np.int16)
    return K.assign_rows(x, np.full(x.shape[0], float(step)), levels, out)[0]


# --- hand-made -----------------------------------------------------------------------------


def test_full_range_ties_away_from_zero():
    # y = x/0.5 = [1, 1.5, -1.5, 0.5, -0.5, 7.6, -9]: ties ±1.5 → ±2, ±0.5 → ±1; clip [-8, 7].
    x = [0.5, 0.75, -0.75, 0.25, -0.25, 3.8, -4.5]
    idx = _assign(x, 0.5, FULL4)
    assert (FULL4[idx]).tolist() == [1, 2, -2, 1, -1, 7, -8]


def test_negative_step_mirrors():
    # A negative step divides by a negative number: y = x/(−0.5) = [−1, −1.5, 1.5].
    idx = _assign([0.5, 0.75, -0.75], -0.5, FULL4)
    assert FULL4[idx].tolist() == [-1, -2, 2]


def test_codebook_without_zero_and_tie_at_zero():
    # levels [-1, 1]: midpoint 0; y = 0 is a tie at m = 0 → the upper level.
    lv = np.array([-1.0, 1.0])
    assert _assign([0.0, -1e-300, 1e-300], 1.0, lv).tolist() == [1, 0, 1]
    # IQ4_NL: nearest to small values of either sign is the level 1 (midpoint -4.5 below).
    assert codebooks.IQ4_NL[_assign([-4.0, -4.5, -5.0, 0.0], 1.0, codebooks.IQ4_NL)].tolist() \
        == [1, -10, -10, 1]


def test_zero_step_rule_and_nan():
    assert _assign([2.0, -2.0, 0.0], 0.0, FULL4).tolist() == [15, 0, 8]
    assert naive.nearest_index(naive.scaled_signed([2.0, -2.0, 0.0], 0.0),
                               FULL4).tolist() == [15, 0, 8]
    assert _assign([np.nan], 1.0, FULL4).tolist() == [0]
    assert _assign([np.nan], 1.0, codebooks.NF4).tolist() == [0]


def test_uniform_detection():
    assert K.is_uniform(FULL4) and K.is_uniform(np.arange(16.0) - 3)
    assert not K.is_uniform(codebooks.NF4) and not K.is_uniform(FULL4 + 0.5)


# --- seeded random: kernel against twin ----------------------------------------------------


@pytest.mark.parametrize("levels", [FULL4, np.arange(0.0, 16.0) - 5, codebooks.NF4,
                                    codebooks.FP4, codebooks.IQ4_NL, np.array([2.5])],
                         ids=["full4", "zp5", "nf4", "fp4", "iq4nl", "single"])
@pytest.mark.parametrize("step", [0.37, -0.21, 1.0])
def test_assign_matches_twin(rng, levels, step):
    x = np.concatenate([rng.standard_normal(3000) * 3,
                        np.asarray(levels) * step,  # exactly on the levels
                        0.5 * (levels[1:] + levels[:-1]) * step])  # near the midpoints
    expected = naive.nearest_index(naive.scaled_signed(x, step), levels)
    assert_array_equal(_assign(x, step, levels), expected)


def test_assign_exact_midpoints_match_twin():
    # y exactly on every midpoint (step 1): the tie rule, uniform path and general path.
    for levels in (FULL4, codebooks.NF4, codebooks.IQ4_NL):
        mids = 0.5 * (levels[1:] + levels[:-1])
        got = _assign(mids, 1.0, levels)
        assert_array_equal(got, naive.nearest_index(mids, levels))
        far = np.where(mids >= 0, np.arange(1, levels.size), np.arange(levels.size - 1))
        assert_array_equal(got, far)


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40),
                  elements=st.floats(-1e6, 1e6, allow_nan=False)),
       st.floats(-100, 100).filter(lambda s: abs(s) > 1e-6),
       st.integers(0, 2))
def test_assign_property(x, step, which):
    levels = (FULL4, codebooks.NF4, codebooks.IQ4_NL)[which]
    got = _assign(x, step, levels)
    assert_array_equal(got, naive.nearest_index(naive.scaled_signed(x, step), levels))
    # nearest: no level is strictly closer to y than the one chosen.
    y = x / step
    d = np.abs(y - levels[got])
    assert np.all(d <= np.min(np.abs(y[:, None] - levels[None, :]), axis=1))
