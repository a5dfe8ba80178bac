"""The step-interval kernel (``_kernels.bounds``) against its NumPy twin
(``naive.step_bounds``) and ``check.diagnose.step_bounds``'s NumPy formulas: the same bits,
signed zeros and NaN included, at any thread count (issue 22's speed point)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecq_ref import naive
from vecq_ref._kernels import bounds as K
from vecq_ref._kernels import single_thread
from vecq_ref.check import diagnose as D


def _same(a, b):
    return all(np.array_equal(x, y, equal_nan=True) and
               np.array_equal(np.signbit(x), np.signbit(y)) for x, y in zip(a, b, strict=True))


def test_hand_checked_bounds():
    # midrise, 2 bits (codes −2…1): x = 0.3 with code 0 needs 0 ≤ 0.3/s < 1: s > 0.3 (lo);
    # x = −0.6 with code −1 (thresholds −1, 0): −0.6 ≥ −s → s ≥ 0.6 (lo), the upper threshold
    # 0 gives nothing for x < 0; code 1 is the highest: x = 0.9 ≥ 1·s → s ≤ 0.9 (hi);
    # x = −0.2 with code 0 is impossible (0 ≤ x/s fails for every s > 0)
    x = np.array([0.3, -0.6, 0.9, -0.2])
    c = np.array([0, -1, 1, 0])
    lo, hi, bad = K.step_bounds(x, c, -2, 1, True)
    assert lo.tolist() == [0.3, 0.6, 0.0, 0.0]
    assert hi.tolist() == [np.inf, np.inf, 0.9, np.inf]
    assert bad.tolist() == [False, False, False, True]
    assert _same((lo, hi, bad), naive.step_bounds(x, c, -2, 1, True))


def _data(rng, n, bits):
    x = rng.standard_normal(n)
    x[rng.random(n) < 0.05] = 0.0
    x[rng.random(n) < 0.05] = -0.0
    x[:3] = [np.nan, np.inf, -np.inf]
    half = 2 ** (bits - 1)
    c = rng.integers(-half, half, n)
    return x, c


@pytest.mark.parametrize("midrise", [True, False])
def test_kernel_equals_twin_and_numpy_formulas_bit_for_bit(midrise):
    rng = np.random.default_rng(3)
    x, c = _data(rng, (1 << 17) + 12345, 4)  # above PARALLEL_MIN: threads
    lat = "midrise" if midrise else "midtread-full"
    cmin, cmax = (-8, 7)
    got = K.step_bounds(x, c, cmin, cmax, midrise)
    assert _same(got, naive.step_bounds(x, c, cmin, cmax, midrise))
    with single_thread():
        assert _same(got, K.step_bounds(x, c, cmin, cmax, midrise))
    assert _same(got, D.step_bounds(x, c, 4, lat))  # the kernel route
    small = D.step_bounds(x[:100], c[:100], 4, lat)  # the NumPy route (few elements)
    assert _same(small, tuple(g[:100] for g in got))
    assert np.any(np.signbit(got[0]) & (got[0] == 0)) or not midrise


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1,
                max_size=40), st.integers(1, 8), st.booleans(), st.integers(0, 2 ** 31))
def test_kernel_equals_twin_on_any_values(xs, bits, midrise, seed):
    x = np.array(xs, dtype=np.float64)
    half = 2 ** (bits - 1)
    lo_c, hi_c = (-half, half - 1) if midrise else (-(half - 1), half - 1)
    c = np.random.default_rng(seed).integers(lo_c, hi_c + 1, x.size)
    assert _same(K.step_bounds(x, c, lo_c, hi_c, midrise),
                 naive.step_bounds(x, c, lo_c, hi_c, midrise))
    # 2-D rows keep their shape
    got = K.step_bounds(x.reshape(1, -1), c.reshape(1, -1), lo_c, hi_c, midrise)
    assert got[0].shape == (1, x.size)
