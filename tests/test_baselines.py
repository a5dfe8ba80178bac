import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import vecq_ref as vq
from vecq_ref import baselines as B
from vecq_ref import tables

# --- hand-worked small vectors -------------------------------------------------------------


def test_bwn_by_hand():
    # mean|w| = 3.5/4 = 0.875; v = ±½ so the lattice α is 1.75; sign(0) := +1.
    w = np.array([0.5, -1.0, 2.0, 0.0])
    q = B.bwn(w)
    assert q.codes.tolist() == [0, -1, 0, 0]
    assert q.codes.dtype == np.int8
    assert q.alpha == 1.75
    assert q.info["bwn_alpha"] == 0.875
    assert q.values.tolist() == [0.875, -0.875, 0.875, 0.875]
    assert q.lattice == "midrise"
    assert q.method == "bwn"
    assert q.bits == 1
    assert_array_equal(q.values, q.alpha * q.levels)
    # DQL = 0.375² + 0.125² + 1.125² + 0.875² = 2.1875, ‖w‖² = 5.25; α is least squares.
    assert q.loss.dql == pytest.approx(2.1875, rel=1e-15)
    assert q.loss.relative_dql == pytest.approx(2.1875 / 5.25, rel=1e-15)
    assert q.loss.excess == pytest.approx(0.0, abs=1e-15)


def test_bwn_equals_vecq_at_one_bit():
    w = np.array([0.3, -1.2, 0.5, 0.0, -0.1, 2.0])
    assert_allclose(B.bwn(w).values, vq.quantize(w, 1).values, rtol=1e-15)


def test_twn_by_hand():
    # mean|w| = 3.0/5 = 0.6, Δ = 0.42: keep −0.9, 0.5, 1.3 → α = 2.7/3 = 0.9.
    w = np.array([0.1, -0.9, 0.5, 1.3, -0.2])
    q = B.twn(w)
    assert q.codes.tolist() == [0, -1, 1, 1, 0]
    assert q.lattice == "midtread"
    assert q.alpha == pytest.approx(0.9, rel=1e-15)
    assert q.info["delta"] == pytest.approx(0.42, rel=1e-15)
    assert q.step == pytest.approx(0.84, rel=1e-15)
    assert_allclose(q.values, [0.0, -0.9, 0.9, 0.9, 0.0], rtol=1e-15)
    assert q.loss.dql == pytest.approx(0.01 + 0.0 + 0.16 + 0.16 + 0.04, rel=1e-12)
    assert q.loss.excess == pytest.approx(0.0, abs=1e-15)


def test_twn_threshold_is_strict():
    # mean|w| = 1 exactly, so Δ = 0.7 and the weight 0.7 (= Δ) is not kept: |w| > Δ.
    w = np.array([0.7, -1.3, 1.0, 1.0])
    assert np.mean(np.abs(w)) == 1.0
    assert 0.7 * 1.0 == 0.7
    q = B.twn(w)
    assert q.codes.tolist() == [0, -1, 1, 1]
    assert q.alpha == pytest.approx(3.3 / 3, rel=1e-15)


def test_ul2q_by_hand():
    # β = 2, σ = √3.5; w − β = [−2, −1, 0, 3]; with s ≈ 1.85: [−1.08, −0.54, 0, 1.62].
    w = np.array([0.0, 1.0, 2.0, 5.0])
    for table, lam in (("printed", 0.9894), ("code", 0.99529008541347519)):
        q = B.ul2q(w, 2, table=table)
        s = lam * math.sqrt(3.5)
        assert q.codes.tolist() == [-2, -1, 0, 1]
        assert q.lattice == "offset-midrise"
        assert q.alpha == pytest.approx(s, rel=1e-15)
        assert q.step == q.alpha
        assert q.info["beta"] == 2.0
        assert q.info["table"] == table
        assert_allclose(q.values, s * np.array([-1.5, -0.5, 0.5, 1.5]) + 2.0, rtol=1e-15)
        assert_allclose(q.values, q.alpha * (q.codes + 0.5) + q.info["beta"], rtol=1e-15)
    # issue #12: the default is the released code's (code table, + 1e-7 in the divisor)
    assert B.ul2q(w, 3).info["lam"] == tables.UL2Q_CODE[2]
    assert B.ul2q(w, 3).info["eps"] == 1e-7
    assert B.ul2q(w, 3, table="printed").info["lam"] == tables.UL2Q_PRINTED[2]


def test_ul2q_eps_is_in_the_divisor_only():
    # w = [−1, 1, −t, t]: β = 0 and σ² = (1 + t²)/2, so t = λ/√(2 − λ²) sits on the threshold
    # s = λσ; a hair above it, floor(t/s) = 1 without eps but 0 with the released + 1e-7
    lam = tables.UL2Q_PRINTED[1]
    t = lam / math.sqrt(2 - lam * lam) * (1 + 1e-9)
    w = np.array([-1.0, 1.0, -t, t])
    q0 = B.ul2q(w, 2, table="printed", eps=0.0)
    q1 = B.ul2q(w, 2, table="printed")
    s = lam * math.sqrt((1 + t * t) / 2)
    assert q0.step == q1.step == pytest.approx(s, rel=1e-15)  # eps is not in the step
    assert t / s > 1 > t / (s + 1e-7)
    assert q0.codes.tolist() == [-2, 1, -2, 1]
    assert q1.codes.tolist() == [-2, 1, -1, 0]
    assert_allclose(q1.values, s * (q1.codes + 0.5), rtol=1e-15)  # nor in the levels


def test_absmax_full_range_by_hand():
    # torch.ao symmetric: s = max|w|/(2^(k−1) − ½) = 1.75/3.5 = 0.5; the negative maximum
    # takes the extra code −4
    q = B.absmax(np.array([0.3, -1.75, 0.7, 0.1]), 3, narrow_range=False)
    assert q.lattice == "midtread-full" and q.alpha == q.step == 0.5
    assert q.codes.tolist() == [1, -4, 1, 0]
    assert q.values.tolist() == [0.5, -2.0, 0.5, 0.0]
    # a positive maximum: w/s = 3.5 rounds to 4, clipped to 3; −4 unused
    q = B.absmax(np.array([0.3, 1.75, -0.7, 0.1]), 3, narrow_range=False)
    assert q.codes.tolist() == [1, 3, -1, 0]
    # narrow range (Brevitas) on the same input: s = 1.75/3
    q = B.absmax(np.array([0.3, 1.75, -0.7, 0.1]), 3)
    assert q.lattice == "midtread" and q.step == pytest.approx(1.75 / 3, rel=1e-15)
    assert q.codes.tolist() == [1, 3, -1, 0]
    with pytest.raises(TypeError, match="`narrow_range` must be True or False"):
        B.absmax([1.0, 2.0], 3, narrow_range="full")


def test_ul2q_reproduces_a_constant_vector():
    q = B.ul2q(np.full(5, -0.25), 4)
    assert q.step == 0.0
    assert q.values.tolist() == [-0.25] * 5
    assert q.loss.dql == 0.0


def test_dorefa_by_hand():
    # tanh w = [−0.7616, −0.1974, 0.0997, 0.4621], max 0.7616; x = t/(2m) + ½ =
    # [0, 0.370, 0.565, 0.803]; 3x = [0, 1.11, 1.70, 2.41] → [0, 1, 2, 2] → 2i/3 − 1.
    w = np.array([-1.0, -0.2, 0.1, 0.5])
    q = B.dorefa(w, 2)
    assert q.codes.tolist() == [-2, -1, 0, 0]
    assert q.lattice == "midrise"
    assert_allclose(q.values, [-1.0, -1 / 3, 1 / 3, 1 / 3], rtol=1e-15)
    assert q.alpha == pytest.approx(2 / 3, rel=1e-15)
    assert math.isnan(q.step)
    assert_allclose(q.values, q.alpha * q.levels, rtol=1e-15)
    assert q.info["tanh_max"] == pytest.approx(math.tanh(1.0), rel=1e-15)
    # The thresholds in weight units reproduce the codes.
    t = q.info["thresholds"]
    assert t.shape == (3,)
    assert np.all(np.diff(t) > 0)
    assert_array_equal(np.searchsorted(t, w) - 2, q.codes)


def test_dorefa_is_not_rescaled():
    # The published rule maps max|w| to ±1 whatever the scale of w.
    w = np.array([0.01, -0.003, 0.002, -0.02])
    q = B.dorefa(w, 3)
    assert q.values.min() == -1.0
    assert np.abs(q.values).max() == 1.0
    assert q.loss.relative_dql > 100


def test_absmax_by_hand():
    # s = 1.5/3 = 0.5; w/s = [0.8, −3, 1.4, 0.2] → [1, −3, 1, 0]; α* = 5.6/11 ≠ s.
    w = np.array([0.4, -1.5, 0.7, 0.1])
    q = B.absmax(w, 3)
    assert q.codes.tolist() == [1, -3, 1, 0]
    assert q.lattice == "midtread"
    assert q.alpha == 0.5
    assert q.step == 0.5
    assert q.values.tolist() == [0.5, -1.5, 0.5, 0.0]
    assert q.loss.dql == pytest.approx(0.01 + 0.0 + 0.04 + 0.01, rel=1e-12)
    assert q.loss.excess == pytest.approx(0.06 - (2.91 - 5.6 ** 2 / 11), rel=1e-9)


def test_absmax_ties_round_away_from_zero():
    q = B.absmax(np.array([0.25, -0.25, -1.5]), 3)  # s = 0.5, w/s = ±0.5
    assert q.codes.tolist() == [1, -1, -3]


def test_aciq_by_hand():
    # σ = √2, clip = 1.71·√2 = 2.4183, Δ = 2·clip/4 = 1.2092; w/Δ = [−1.65, −0.83, 0, 0.83, 1.65].
    w = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    q = B.aciq(w, 2)
    clip = 1.71 * math.sqrt(2.0)
    assert q.info["clip"] == pytest.approx(clip, rel=1e-15)
    assert q.alpha == pytest.approx(clip / 2, rel=1e-15)
    assert q.step == q.alpha
    assert q.codes.tolist() == [-2, -1, 0, 0, 1]
    assert_allclose(q.values, clip / 2 * np.array([-1.5, -0.5, 0.5, 0.5, 1.5]), rtol=1e-15)


def test_aciq_clips_outliers_to_the_top_level():
    w = np.array([0.1, -0.2, 0.3, 0.0, 50.0])
    q = B.aciq(w, 3)
    assert q.codes[-1] == 3
    assert q.values[-1] == pytest.approx(3.5 * q.step, rel=1e-15)
    assert q.values[-1] < q.info["clip"]


def test_vecq_normalpha_by_hand():
    # Codes of quantize(w, 2): v = [½, −½, ½, 3/2]; ‖w‖² = 1.0425, ‖v‖² = 3.
    w = np.array([0.1, -0.4, 0.25, 0.9])
    q = B.vecq_normalpha(w, 2)
    p = vq.quantize(w, 2)
    assert_array_equal(q.codes, p.codes)
    assert q.step == p.step
    assert q.alpha == pytest.approx(math.sqrt(1.0425 / 3), rel=1e-15)
    assert q.info["lsq_alpha"] == pytest.approx(0.575, rel=1e-15)
    assert q.loss.dql > p.loss.dql
    assert q.loss.orientation == pytest.approx(p.loss.orientation)


def test_lloyd_max_by_hand():
    # Two clusters, one level each: the means 1 and 11.
    q = B.lloyd_max([0.0, 1.0, 2.0, 10.0, 11.0, 12.0], 1)
    assert q.info["levels"].tolist() == [1.0, 11.0]
    assert q.info["converged"]
    assert q.codes.tolist() == [-1, -1, -1, 0, 0, 0]
    assert q.lattice == "nonuniform"
    assert math.isnan(q.alpha)
    assert math.isnan(q.step)
    assert q.loss.dql == 4.0
    # As many distinct weights as levels: every weight is its own level.
    w = np.array([5.0, 0.0, 9.0, 1.0])
    q = B.lloyd_max(w, 2)
    assert q.values.tolist() == w.tolist()
    assert q.loss.dql == 0.0
    assert q.codes.tolist() == [0, -2, 1, -1]


def test_lloyd_max_fixed_point_and_code_table():
    rng = np.random.default_rng(3)
    w = rng.standard_normal(3000)
    q = B.lloyd_max(w, 3)
    levels = q.info["levels"]
    assert q.info["converged"]
    assert levels.shape == (8,)
    assert np.all(np.diff(levels) > 0)
    assert_allclose(q.values, levels[q.codes + 4], rtol=0)
    for j in range(8):  # each level is the mean of its cell
        assert levels[j] == pytest.approx(w[q.codes == j - 4].mean(), rel=1e-12)
    assert q.codes.dtype == np.int8
    assert B.lloyd_max(w, 8).codes.min() >= -128


def test_lloyd_max_inits():
    w = np.concatenate([np.zeros(50), np.linspace(10, 11, 50)])
    auto = B.lloyd_max(w, 2)
    for init in ("uniform", "quantile"):
        assert auto.loss.dql <= B.lloyd_max(w, 2, init=init).loss.dql
    start = [-1.0, 0.0, 10.0, 11.0]
    q = B.lloyd_max(w, 2, init=start, max_iter=0)
    assert q.info["iterations"] == 0
    assert q.info["levels"].tolist() == start
    assert q.info["init"] == "array"


def test_float32_in_float32_out_and_input_untouched():
    w = np.linspace(-1, 1, 37, dtype=np.float32)
    before = w.copy()
    for name, fn, k in _cases():
        q = fn(w, k)
        assert q.values.dtype == np.float32, name
        assert q.codes.shape == w.shape
        assert q.codes.dtype == np.int8
    assert_array_equal(w, before)


def _cases():
    return [("bwn", B.bwn, 1), ("twn", B.twn, 2), ("ul2q", B.ul2q, 3), ("dorefa", B.dorefa, 3),
            ("absmax", B.absmax, 4), ("aciq", B.aciq, 4),
            ("vecq_normalpha", B.vecq_normalpha, 3), ("lloyd_max", B.lloyd_max, 2)]


@pytest.mark.parametrize(("name", "fn", "k"), _cases(), ids=[c[0] for c in _cases()])
def test_axis_is_per_slice(rng, name, fn, k):
    w = rng.standard_normal((5, 3, 4)) * np.array([1.0, 3.0, 0.1])[None, :, None]
    q = fn(w, k, axis=1)
    assert q.axis == 1
    assert np.shape(q.alpha) == (3,)
    assert q.slice_loss.dql.shape == (3,)
    for i in range(3):
        one = fn(w[:, i, :], k)
        assert_array_equal(q.codes[:, i, :], one.codes)
        assert_allclose(q.values[:, i, :], one.values, rtol=1e-15)
        assert_allclose(q.slice_loss.dql[i], one.loss.dql, rtol=1e-12)
        assert np.isnan(one.alpha) or q.alpha[i] == pytest.approx(one.alpha, rel=1e-15)
    assert q.loss.dql == pytest.approx(np.sum(q.slice_loss.dql), rel=1e-12)


def test_lloyd_max_axis_level_tables(rng):
    q = B.lloyd_max(rng.standard_normal((6, 40)), 2, axis=0)
    assert q.info["levels"].shape == (6, 4)
    assert q.info["iterations"].shape == (6,)


def test_all_zero_weights_are_defined():
    z = np.zeros(6)
    for name, fn, k in _cases():
        q = fn(z, k)
        assert q.loss.relative_dql == 0.0 or name == "dorefa", name
        assert np.all(np.isfinite(q.values)), name


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: B.bwn([1.0, 2.0], 2), ValueError, r"`bits` must be 1 for BWN .*; got 2\."),
    (lambda: B.twn([1.0, 2.0], 3), ValueError, r"`bits` must be 2 for TWN \(ternary.*; got 3\."),
    (lambda: B.twn([1.0, 2.0], 1), ValueError, r"`bits` must be 2 for TWN"),
    (lambda: B.dorefa([1.0, 2.0], 1), ValueError, r"`bits` must be an integer in \[2, 16\] for "
                                                  r"DoReFa .*; got 1\."),
    (lambda: B.aciq([1.0, 2.0], 9), ValueError, r"`bits` must be an integer in \[2, 8\] for ACIQ"),
    (lambda: B.ul2q([1.0, 2.0], 9), ValueError, r"`bits` must be an integer in \[1, 8\] for μL2Q"),
    (lambda: B.ul2q([1.0, 2.0], 2, table="paper"), ValueError, r"`table` must be one of"),
    (lambda: B.absmax([1.0, 2.0], 1), ValueError, r"`bits` must be at least 2 for the midtread"),
    (lambda: B.absmax([1.0, 2.0], 17), ValueError, r"`bits` must be an integer in \[1, 16\]"),
    (lambda: B.vecq_normalpha([1.0, 2.0], 2.0), TypeError, r"`bits` must be an integer"),
    (lambda: B.twn([1.0, 2.0], True), TypeError, r"`bits` must be an integer"),
    (lambda: B.bwn([1.0, np.nan]), ValueError, r"`w` contains 1 non-finite"),
    (lambda: B.aciq([], 2), ValueError, r"`w` must be a non-empty array"),
    (lambda: B.absmax(np.ones((2, 3)), 2, axis=2), ValueError, r"`axis` must be an axis in"),
    (lambda: B.lloyd_max([1.0, 2.0], 2, init="kmeans++"), ValueError, r"`init` must be one of"),
    (lambda: B.lloyd_max([1.0, 2.0], 2, init=[0.0, 1.0]), ValueError,
     r"`init` must be one of .* or an array of 2\*\*bits = 4 levels"),
    (lambda: B.lloyd_max([1.0, 2.0], 1, init=[1.0, 0.0]), ValueError,
     r"`init` must be finite levels in ascending order"),
    (lambda: B.lloyd_max([1.0, 2.0], 1, max_iter=-1), ValueError, r"`max_iter` must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- large-N Gaussian closed forms ---------------------------------------------------------


@pytest.fixture(scope="module")
def gauss():
    return np.random.default_rng(12345).standard_normal(10 ** 6)


@pytest.mark.jit_only
def test_bwn_gaussian_closed_form(gauss):
    assert B.bwn(gauss).loss.relative_dql == pytest.approx(1 - 2 / math.pi, abs=1e-3)


@pytest.mark.jit_only
def test_twn_gaussian_closed_form(gauss):
    # Δ = 0.7·E|x| = 0.7·√(2/π); relative DQL = 1 − (2φ(Δ))²/(2·S(Δ)) = 0.19162...
    delta = 0.7 * math.sqrt(2 / math.pi)
    closed = 1 - (2 * stats.norm.pdf(delta)) ** 2 / (2 * stats.norm.sf(delta))
    assert closed == pytest.approx(0.1917, abs=1e-4)
    assert B.twn(gauss).loss.relative_dql == pytest.approx(closed, abs=2e-3)


# Sampling spread of the relative DQL at 10^6 weights grows with k (the few weights beyond the
# top level weigh more): about 0.2 % at k = 2, 1 % at k = 6, 3 % at k = 8 (12 seeds).
_SAMPLE_RTOL = {1: 5e-3, 2: 1e-2, 3: 1e-2, 4: 2e-2, 5: 3e-2, 6: 4e-2, 7: 7e-2, 8: 0.12}


@pytest.mark.jit_only
@pytest.mark.parametrize("k", range(1, 9))
def test_vecq_param_gaussian_expected_dql(gauss, k):
    expected = tables.expected_relative_dql(tables.optimal_step(k), k)
    got = vq.quantize(gauss, k).loss.relative_dql
    assert got == pytest.approx(expected, rel=_SAMPLE_RTOL[k])


@pytest.mark.jit_only
def test_lloyd_max_gaussian_matches_max_1960(gauss):
    # Max (1960), optimal non-uniform quantizer of N(0, 1): MSE 0.1175 (4 levels),
    # 0.03455 (8 levels), 0.009497 (16 levels).
    for k, mse in ((2, 0.1175), (3, 0.03455), (4, 0.009497)):
        q = B.lloyd_max(gauss, k)
        assert q.info["converged"]
        assert q.loss.relative_dql == pytest.approx(mse, rel=2e-2)


# --- ordering properties -------------------------------------------------------------------

# Magnitudes below 1e-100 are left out: their squares underflow, which tests float64 range
# handling (the search's own tests) rather than the ordering of the quantizers.
_elements = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False).filter(
        lambda x: x == 0 or abs(x) > 1e-100),
    st.integers(-40, 40).map(lambda i: i / 8.0))
weights = hnp.arrays(np.float64, st.integers(1, 60), elements=_elements)


# Each example runs a few quantize calls; keep the property tests to a few seconds each.
few = settings(max_examples=min(25, settings.default.max_examples))


def _le(a, b, w):
    """a ≤ b up to float64 rounding of sums of the size ‖w‖²."""
    return a <= b + 1e-9 * float(np.dot(w, w)) + 1e-300


@few
@given(w=weights, k=st.integers(1, 8))
def test_norm_matched_alpha_never_beats_projection(w, k):
    p, n = vq.quantize(w, k), B.vecq_normalpha(w, k)
    assert_array_equal(p.codes, n.codes)
    assert _le(p.loss.dql, n.loss.dql, w)


@few
@given(w=weights, k=st.integers(1, 8))
def test_lloyd_max_uniform_start_never_worse_than_param(w, k):
    assert _le(B.lloyd_max(w, k, init="uniform").loss.dql, vq.quantize(w, k).loss.dql, w)
    assert _le(B.lloyd_max(w, k).loss.dql, vq.quantize(w, k).loss.dql, w)


@few
@given(w=weights)
def test_bwn_is_least_squares_at_one_bit(w):
    assert _le(B.bwn(w).loss.dql, vq.quantize(w, 1).loss.dql, w)
    assert _le(vq.quantize(w, 1).loss.dql, B.bwn(w).loss.dql, w)


@pytest.fixture(scope="module")
def search():
    return pytest.importorskip("vecq_ref.search")


@few
@given(w=weights, k=st.integers(1, 8))
def test_exact_vecq_le_param_le_normalpha(search, w, k):
    exact = vq.quantize(w, k, method="exact").loss.dql
    param = vq.quantize(w, k).loss.dql
    assert _le(exact, param, w)
    assert _le(param, B.vecq_normalpha(w, k).loss.dql, w)


@few
@given(w=weights, k=st.integers(2, 8))
def test_exact_midtread_le_twn_and_absmax(search, w, k):
    exact = vq.quantize(w, k, method="exact", lattice="midtread").loss.dql
    assert _le(exact, B.absmax(w, k).loss.dql, w)
    if k == 2:
        assert _le(exact, B.twn(w).loss.dql, w)


@few
@given(w=weights, k=st.integers(2, 8))
def test_exact_midrise_le_aciq(search, w, k):
    assert _le(vq.quantize(w, k, method="exact").loss.dql, B.aciq(w, k).loss.dql, w)


@few
@given(w=weights, k=st.integers(1, 6))
def test_lloyd_max_le_exact_uniform(search, w, k):
    exact = vq.quantize(w, k, method="exact")
    start = float(exact.alpha) * vq.lattice_levels(k)
    assert _le(B.lloyd_max(w, k, init=start).loss.dql, exact.loss.dql, w)


@pytest.mark.parametrize("dist", ["normal", "laplace", "student_t3"])
def test_lloyd_max_default_le_exact_uniform_on_samples(search, dist):
    rng = np.random.default_rng(7)
    w = {"normal": rng.standard_normal, "laplace": rng.laplace,
         "student_t3": lambda n: rng.standard_t(3, n)}[dist](4000)
    for k in (1, 2, 3, 4):
        exact = vq.quantize(w, k, method="exact").loss.dql
        assert B.lloyd_max(w, k).loss.dql <= exact


def test_lloyd_max_levels_are_a_codebook_whose_exact_scale_can_only_help(rng):
    w = rng.standard_normal(400)
    q = B.lloyd_max(w, 2)
    assert q.level_set is not None and q.level_set.lattice == "codebook"
    np.testing.assert_array_equal(q.level_set.codebook, q.info["levels"])
    np.testing.assert_array_equal(q.levels, q.info["levels"][q.codes + 2])
    e = vq.quantize(w, method="exact", lattice=q.level_set)
    assert e.info["search"].certified
    assert e.loss.dql <= q.loss.dql * (1 + 1e-12)
    assert B.lloyd_max(rng.standard_normal((3, 40)), 2, axis=0).level_set is None
