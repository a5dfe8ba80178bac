"""The tie-vote kernel (``_kernels.ties``) against its NumPy twin (``naive.tie_votes``) and
``check.diagnose.rounding_votes``'s NumPy route: the same counts at any thread count, in
float32 and float64 arithmetic (issue 22's speed point)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecq_ref import naive
from vecq_ref._kernels import single_thread
from vecq_ref._kernels import ties as K
from vecq_ref.check import diagnose as D


def test_hand_checked_ties():
    # midrise, s = 0.5, codes −2…1: x = 0.5 is x/s = 1, a threshold (codes 0 | 1), with
    # code 1: floor (ties up) and half away agree, half to even (0) does not; x = −0.5 is
    # −1 (codes −2 | −1) with code −2: half away (−2) and half to even (−2) agree, floor
    # (−1) does not; x = 0.2 (0.4) is no tie; x = 0.25 is 0.5, no threshold of midrise
    x = np.array([[0.5, -0.5, 0.2, 0.25]])
    c = np.array([[1, -2, 0, 0]])
    s = np.array([0.5])
    for f32 in (False, True):
        assert K.tie_votes(x, c, s, f32, True, -2, 1).tolist() == [2, 1, 1, 2]
        assert naive.tie_votes(x, c, s, f32, True, -2, 1).tolist() == [2, 1, 1, 2]
    # midtread (thresholds at j + ½; ±1 and 0.4 are none): x = 0.25 is 0.5 (codes 0 | 1)
    # with code 0: half to even agrees, floor (ties up) and half away (1) do not
    assert K.tie_votes(x, c, s, False, False, -1, 1).tolist() == [1, 0, 1, 0]
    # a step that is no step (0, NaN): nothing counts
    assert K.tie_votes(x, c, np.array([0.0]), False, True, -2, 1).tolist() == [0, 0, 0, 0]


def _ties(rng, rows, n, bits, midrise):
    """Rows whose elements are often exactly on a threshold (``x = (j + o)·s`` with a
    random code on either side), some near one, some anywhere."""
    half = 2 ** (bits - 1)
    s = rng.uniform(0.01, 2.0, rows)
    s[rng.random(rows) < 0.05] = 0.0
    j = rng.integers(-half, half, (rows, n)).astype(np.float64)
    off = 0.0 if midrise else 0.5
    x = (j + off) * s[:, None]
    x[rng.random((rows, n)) < 0.2] *= 1 + 1e-9
    wild = rng.random((rows, n)) < 0.2
    x[wild] = rng.standard_normal(np.count_nonzero(wild))
    x[0, :3] = [np.nan, np.inf, 1e300]
    lo = j - (1 if midrise else 0)
    c = np.where(rng.random((rows, n)) < 0.5, lo, lo + 1).astype(np.int64)
    return x, c, s


@pytest.mark.parametrize("midrise", [True, False])
@pytest.mark.parametrize("f32", [False, True])
def test_kernel_equals_twin_and_numpy_route(midrise, f32):
    rng = np.random.default_rng(5)
    x, c, s = _ties(rng, 4500, 32, 4, midrise)  # 144,000 elements: above PARALLEL_MIN
    cmin, cmax = (-8, 7) if midrise else (-7, 7)
    got = K.tie_votes(x, c, s, f32, midrise, cmin, cmax)
    assert got[0] > 1000  # the case has ties to count
    assert got.tolist() == naive.tie_votes(x, c, s, f32, midrise, cmin, cmax).tolist()
    with single_thread():
        assert got.tolist() == K.tie_votes(x, c, s, f32, midrise, cmin, cmax).tolist()
    # diagnose.rounding_votes: the kernel route against its NumPy route (a small dtype
    # that is not float32/float64 takes NumPy; here the same dtype, cut below the limit)
    lat = "midrise" if midrise else "midtread"
    dt = np.float32 if f32 else np.float64
    n_k, ok_k = D.rounding_votes(x, c, s, 4, lat, dt)
    assert n_k == got[0]
    # rows small enough for the NumPy route, rule by rule
    n_sum = 0
    for r0 in range(0, 4500, 100):
        n_r, _ = D.rounding_votes(x[r0:r0 + 100], c[r0:r0 + 100].astype(np.float64),
                                  s[r0:r0 + 100], 4, lat, dt)
        n_sum += n_r
    assert n_sum == n_k
    small = D.rounding_votes(x[:100], c[:100], s[:100], 4, lat, dt)
    ref = naive.tie_votes(x[:100], c[:100], s[:100], f32, midrise, cmin, cmax)
    names = ("floor (ties up)", "half to even", "half away from zero")
    assert small == ((0, None) if ref[0] == 0 else
                     (ref[0], [k for k, a in zip(names, ref[1:], strict=True) if a == ref[0]]))
    sub = [k for k, a in zip(names, got[1:], strict=True) if a == got[0]]
    assert ok_k == sub


def test_kernel_route_agrees_with_numpy_route_on_one_rule():
    # floor codes of x/s in float32: every tie votes floor, and both routes say so
    rng = np.random.default_rng(11)
    s = rng.uniform(0.1, 1.0, 200)
    x = rng.integers(-8, 8, (200, 32)) * s[:, None]
    c = np.clip(np.floor(x.astype(np.float32) / s.astype(np.float32)[:, None]), -8, 7)
    c = c.astype(np.int64)
    big = D.rounding_votes(x, c, s, 4, "midrise", np.float32)  # 6400 elements: kernel
    assert big[0] > 0 and "floor (ties up)" in big[1]
    parts = [D.rounding_votes(x[i:i + 50], c[i:i + 50], s[i:i + 50], 4, "midrise",
                              np.float32) for i in range(0, 200, 50)]
    assert sum(p[0] for p in parts) == big[0]
    assert all(set(big[1]) <= set(p[1]) for p in parts if p[0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1,
                max_size=24), st.floats(1e-3, 1e3), st.integers(1, 6), st.booleans(),
       st.booleans(), st.integers(0, 2 ** 31))
def test_kernel_equals_twin_on_any_values(xs, s, bits, midrise, f32, seed):
    x = np.array([xs], dtype=np.float64)
    rng = np.random.default_rng(seed)
    half = 2 ** (bits - 1)
    cmin, cmax = (-half, half - 1) if midrise else (-(half - 1), half - 1)
    snap = rng.random(x.shape) < 0.5  # half the elements on a threshold
    j = rng.integers(cmin, cmax + 1, x.shape)
    x = np.where(snap, (j + (0.0 if midrise else 0.5)) * s, x)
    c = np.where(rng.random(x.shape) < 0.5, j, j - 1)
    sv = np.array([s])
    assert K.tie_votes(x, c, sv, f32, midrise, cmin, cmax).tolist() == \
        naive.tie_votes(x, c, sv, f32, midrise, cmin, cmax).tolist()
