import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import vecq_ref as vq
from vecq_ref import baselines
from vecq_ref.loss import loss_from_sums


def test_vector_loss_by_hand():
    # w = (3, 4), wq = (3, 3): ‖w − wq‖² = 1, ‖w‖² = 25, cos = 21/(5·√18).
    L = vq.vector_loss([3.0, 4.0], [3.0, 3.0])
    assert L.dql == 1.0 and L.modulus == 1.0
    assert L.relative_dql == pytest.approx(0.04, rel=1e-15)
    assert L.orientation == pytest.approx(1 - 21 / (5 * np.sqrt(18)), rel=1e-12)
    # best scale β = 21/18 leaves 25 − 21²/18 = 0.5; the excess is 1 − 0.5.
    assert L.excess == pytest.approx(0.5, rel=1e-12)


def test_optimal_alpha_by_hand():
    assert vq.optimal_alpha([1.0, 2.0], [0.5, 1.5]) == pytest.approx(1.4, rel=1e-15)
    assert vq.optimal_alpha([1.0, 2.0], [0.0, 0.0]) == 0.0


def test_degenerate_vectors():
    zero = vq.vector_loss([0.0, 0.0], [0.0, 0.0])
    assert (zero.orientation, zero.dql, zero.relative_dql) == (0.0, 0.0, 0.0)
    none = vq.vector_loss([1.0, -1.0], [0.0, 0.0])
    assert none.orientation == 1.0 and none.relative_dql == 1.0
    opposite = vq.vector_loss([1.0, 0.0], [-1.0, 0.0])
    assert opposite.orientation == pytest.approx(2.0)


def test_identity_min_dql_and_alpha_perturbation(rng):
    w = rng.standard_normal(500)
    v = vq.levels(vq.codes(w, 0.4, 3))
    a = vq.optimal_alpha(w, v)
    best = vq.vector_loss(w, a * v)
    jo = best.orientation
    assert best.dql == pytest.approx((w @ w) * jo * (2 - jo), rel=1e-12)
    assert best.excess == pytest.approx(0.0, abs=1e-12 * (w @ w))
    for d in (1e-3, -1e-3, 0.1, -0.1):
        worse = vq.vector_loss(w, (a * (1 + d)) * v)
        assert worse.dql > best.dql
        assert worse.orientation == pytest.approx(jo, rel=1e-12)  # α leaves the angle alone
        assert worse.excess == pytest.approx((a * d) ** 2 * (v @ v), rel=1e-9)


def test_tiny_angles_keep_precision(rng):
    # 16-bit codes: 1 − cos ≈ 1e-10, where 1 − ⟨w,v⟩/(‖w‖‖v‖) would keep ~6 digits only.
    w = rng.standard_normal(10_000)
    v = vq.levels(vq.codes(w, 2e-4, 16))  # no clipping: max|w| < 6.5
    L = vq.vector_loss(w, vq.optimal_alpha(w, v) * v)
    m = L.dql / (w @ w)
    assert L.orientation == pytest.approx(1 - np.sqrt(1 - m), rel=1e-12)
    assert L.orientation == pytest.approx(m / 2, rel=1e-6)


def test_loss_from_sums_equals_direct(rng):
    w = rng.standard_normal(1000)
    s = 0.3
    v = vq.levels(vq.codes(w, s, 4))
    r = w - s * v
    for alpha in (s, 0.29, 0.31):
        orient, dql, rel, excess = loss_from_sums(w @ w, w @ v, v @ v, r @ r, r @ v, s, alpha)
        L = vq.vector_loss(w, alpha * v)
        assert float(dql) == pytest.approx(L.dql, rel=1e-12)
        assert float(rel) == pytest.approx(L.relative_dql, rel=1e-12)
        assert float(orient) == pytest.approx(L.orientation, rel=1e-10)
        assert float(excess) == pytest.approx(L.excess, rel=1e-8, abs=1e-14)


@given(hnp.arrays(np.float64, st.integers(2, 40), elements=st.floats(-100, 100)),
       st.floats(0.01, 10))
def test_split_is_exact(w, step):
    # min over α of ‖w − αv‖² = ‖w‖²·J_o·(2 − J_o) for any codes (docs/theory.md §3).
    v = vq.levels(vq.codes(w, step, 3))
    L = vq.vector_loss(w, vq.optimal_alpha(w, v) * v)
    jo = L.orientation
    assert L.dql == pytest.approx((w @ w) * jo * (2 - jo), rel=1e-9, abs=1e-9)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="`wq` must be the shape of `w`"):
        vq.vector_loss([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="`v` must be the shape of `w`"):
        vq.optimal_alpha([1.0, 2.0], [1.0])


# --- w and wq at very different scales (trial of issue 20, item 1) -------------------------

def _exact_loss(w, wq):
    """``(J_o, relative DQL, DQL)`` of the float64 values of ``w`` and ``wq`` from exact
    rational sums, each rounded once to float64 (``inf`` beyond its range)."""
    x = [Fraction(float(a)) for a in np.asarray(w, dtype=np.float64).ravel()]
    y = [Fraction(float(a)) for a in np.asarray(wq, dtype=np.float64).ravel()]
    sww, sqq = sum(a * a for a in x), sum(b * b for b in y)
    swq = sum(a * b for a, b in zip(x, y, strict=True))
    d = sum((a - b) ** 2 for a, b in zip(x, y, strict=True))

    def rounded(r):
        try:
            return float(r)
        except OverflowError:
            return math.inf

    if not sww:
        jo = 0.0
    elif not sqq:
        jo = 1.0
    else:
        m = float(1 - swq * swq / (sww * sqq))  # = J_o(2 − J_o), exact before this rounding
        root = math.sqrt(1.0 - m)
        jo = 1.0 + root if swq < 0 else m / (1.0 + root)
    return jo, rounded(d / sww) if sww else 0.0, rounded(d)


@pytest.fixture
def w0():
    return np.random.default_rng(0).standard_normal(50)


def test_orientation_is_the_same_at_any_relative_scale(w0):
    # J_o of w0 against sign(w0), directly at scale 1: 1 − Σ|w|/(‖w‖·√50) ≈ 0.195.
    jo = 1 - np.sum(np.abs(w0)) / (np.linalg.norm(w0) * np.sqrt(50))
    assert 0.19 < jo < 0.2
    s = np.sign(w0)
    assert vq.vector_loss(w0, s).orientation == pytest.approx(jo, rel=1e-12)
    for a, b in [(1e-300, 1.0), (1e-200, 1.0), (1e-160, 1e160), (1.0, 1e-300), (1e300, 1e-300),
                 (1e-300, 1e300), (1.0, 1e-320)]:
        L = vq.vector_loss(w0 * a, s * b)
        assert L.orientation == pytest.approx(jo, rel=1e-12), (a, b)
    # w0·1e-320 is subnormal (its values keep ~10 bits): J_o is that of the values passed.
    tiny = w0 * 1e-320
    assert vq.vector_loss(tiny, s).orientation == pytest.approx(
        vq.vector_loss(np.ldexp(tiny, 1070), s).orientation, rel=1e-13)


def test_relative_dql_of_values_at_very_different_scales(w0):
    s = np.sign(w0)
    ww = w0 @ w0
    # w = w0·1e-150 against sign(w0): ‖w − s‖² = 50 − 2e-150·Σ|w0| + … = 50 to 1e-150, over
    # ‖w‖² = 1e-300·‖w0‖²: about 1e300, representable.
    L = vq.vector_loss(w0 * 1e-150, s)
    assert L.relative_dql == pytest.approx(50 / (1e-300 * ww), rel=1e-13)
    assert L.dql == pytest.approx(50.0, rel=1e-15) and L.excess <= L.dql
    # ≈ 50/(‖w0‖²·1e-400) and ≈ 1e600/… lie beyond float64: inf, with no warning; the DQL
    # itself is 50 (or ‖w0‖²·1e320, again beyond float64).
    for a, b, dql in [(1e-200, 1.0, 50.0), (1e-300, 1.0, 50.0), (1e-160, 1e160, math.inf)]:
        L = vq.vector_loss(w0 * a, s * b)
        assert L.relative_dql == math.inf and L.dql == pytest.approx(dql, rel=1e-15), (a, b)
    # A tiny wq is not "all zero": ‖w0 − 1e-300·s‖²/‖w0‖² = 1 − 2e-300·Σ|w0|/‖w0‖² = 1.0.
    L = vq.vector_loss(w0, s * 1e-300)
    assert L.relative_dql == 1.0 and L.dql == pytest.approx(ww, rel=1e-15)
    assert vq.vector_loss(w0 * 1e300, s * 1e-300).relative_dql == 1.0


def test_baseline_loss_at_a_scale_far_from_its_values(w0):
    # DoReFa's values are ±1, ±1/3 (to rounding) whatever the scale of w: tanh(w)/max|tanh(w)|
    # ≈ w/max|w|.
    for scale in (1e-300, 1e-150):
        q = baselines.dorefa(w0 * scale, 2)
        assert np.all(np.isclose(np.abs(q.values), 1 / 3) | (np.abs(q.values) == 1.0))
        jo, rel, dql = _exact_loss(w0 * scale, q.values)
        v = q.values
        assert jo == pytest.approx(1 - (w0 @ v) / (np.linalg.norm(w0) * np.linalg.norm(v)),
                                   rel=1e-12)
        assert q.loss.orientation == pytest.approx(jo, rel=1e-12)
        assert q.loss.dql == pytest.approx(v @ v, rel=1e-12) and dql == pytest.approx(v @ v)
        if scale == 1e-300:  # ‖v‖²/(1e-600·‖w0‖²): beyond float64
            assert rel == math.inf and q.loss.relative_dql == math.inf
        else:
            assert rel == pytest.approx((v @ v) / (1e-300 * (w0 @ w0)), rel=1e-12)
            assert q.loss.relative_dql == pytest.approx(rel, rel=1e-12)


_DECADES = {np.float16: (-7.0, 4.0), np.float32: (-44.0, 37.0), np.float64: (-320.0, 300.0)}
_FLOATS = st.sampled_from(list(_DECADES))


@given(st.integers(1, 30), st.integers(0, 2**32 - 1), _FLOATS, _FLOATS,
       st.floats(0, 1), st.floats(0, 1), st.sampled_from(["near", "sign", "independent"]))
# w ≈ 4e-89 against wq ≈ 9e-322: ‖w − wq‖²/‖w‖² = 1, but the two sums, each at its own scale,
# had a quotient beyond float64 (was inf).
@example(1, 0, np.float64, np.float64, 0.375, 0.0, "near")
def test_loss_at_independent_scales_matches_exact_sums(n, seed, dw, dq, uw, uq, kind):
    # w and wq at their own decades anywhere in their dtype's range (subnormals included):
    # J_o is that of the same values brought to scale 1 by powers of two (exact), and J_o,
    # the relative DQL and the DQL are the exactly summed ones rounded once (inf beyond
    # float64).
    g = np.random.default_rng(seed)
    w0 = g.standard_normal(n)
    q0 = {"near": w0 + 0.3 * g.standard_normal(n), "sign": np.sign(w0),
          "independent": g.standard_normal(n)}[kind]
    lo, hi = _DECADES[dw]
    w = (w0 * 10.0 ** (lo + uw * (hi - lo))).astype(dw)
    lo, hi = _DECADES[dq]
    wq = (q0 * 10.0 ** (lo + uq * (hi - lo))).astype(dq)
    L = vq.vector_loss(w, wq)
    jo, rel, dql = _exact_loss(w, wq)
    assert L.orientation == pytest.approx(jo, rel=1e-10, abs=1e-13)
    assert L.relative_dql == pytest.approx(rel, rel=1e-12, abs=2.0 ** -1070)
    assert L.dql == pytest.approx(dql, rel=1e-12, abs=2.0 ** -1070)
    assert L.modulus == L.dql and 0.0 <= L.excess <= L.dql

    def at_one(x):
        x = x.astype(np.float64)
        top = np.max(np.abs(x))
        return np.ldexp(x, -int(np.frexp(top)[1])) if top else x

    assert L.orientation == pytest.approx(vq.vector_loss(at_one(w), at_one(wq)).orientation,
                                          rel=1e-13, abs=1e-15)


# --- importance weights (FORMATS §2, docs/theory.md "Importance weights") ------------------

def test_weighted_loss_by_hand():
    # h = (2, 1, 0): the third element counts for nothing, whatever its values.
    # ‖w‖²_h = 2·1 + 1·4 = 6, ‖w − wq‖²_h = 2·0 + 1·1 = 1, ⟨w, wq⟩_h = 2 + 2 = 4,
    # ‖wq‖²_h = 2 + 1 = 3: cos_h = 4/√18, min_β = 6 − 16/3 = 2/3, excess = 1 − 2/3.
    w, wq, h = [1.0, 2.0, 100.0], [1.0, 1.0, -50.0], [2.0, 1.0, 0.0]
    L = vq.vector_loss(w, wq, weights=h)
    assert L.dql == 1.0 and L.modulus == 1.0
    assert L.relative_dql == pytest.approx(1 / 6, rel=1e-15)
    assert L.orientation == pytest.approx(1 - 4 / np.sqrt(18), rel=1e-13)
    assert L.excess == pytest.approx(1 / 3, rel=1e-13)
    assert vq.optimal_alpha(w, wq, weights=h) == pytest.approx(4 / 3, rel=1e-15)
    # Unweighted, the third element dominates: a different answer.
    assert vq.vector_loss(w, wq).relative_dql > 0.2


def test_weighted_split_is_exact(rng):
    # min_α ‖w − αℓ‖²_h = ‖w‖²_h·J_o(2 − J_o) at the weighted α*, and only there.
    w = rng.standard_normal((40, 64))
    h = rng.lognormal(0.0, 1.5, 64)  # per input column
    ell = vq.levels(vq.codes(w, 0.4, 3))
    a = vq.optimal_alpha(w, ell, weights=h)
    hw = np.broadcast_to(h, w.shape)
    assert a == pytest.approx((hw * w * ell).sum() / (hw * ell * ell).sum(), rel=1e-12)
    assert a != pytest.approx(vq.optimal_alpha(w, ell), rel=1e-6)
    L = vq.vector_loss(w, a * ell, weights=h)
    jo, sww = L.orientation, (hw * w * w).sum()
    assert L.dql == pytest.approx(sww * jo * (2 - jo), rel=1e-12)
    assert L.dql == pytest.approx((hw * (w - a * ell) ** 2).sum(), rel=1e-12)
    assert L.relative_dql == pytest.approx(L.dql / sww, rel=1e-12)
    assert L.excess == pytest.approx(0.0, abs=1e-12 * sww)
    for d in (1e-3, -0.1):
        worse = vq.vector_loss(w, (a * (1 + d)) * ell, weights=h)
        assert worse.dql > L.dql and worse.orientation == pytest.approx(jo, rel=1e-12)
        assert worse.excess == pytest.approx((a * d) ** 2 * (hw * ell * ell).sum(), rel=1e-9)


def test_weighted_sums_kernel_matches_twin(rng):
    from vecq_ref import naive
    from vecq_ref._kernels.reduce import pair_sums, weighted_pair_sums

    n = 2 * (1 << 14) + 77  # several chunks and a tail
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    h = rng.exponential(size=n)
    h[::7] = 0.0
    for b in (0.0, 1.0, -0.3):
        got = weighted_pair_sums(x, y, h, b)
        np.testing.assert_allclose(got, naive.weighted_pair_sums(x, y, h, b), rtol=1e-12)
        # h ≡ 1: the unweighted kernel's bits.
        assert weighted_pair_sums(x, y, np.ones(n), b).tolist() == pair_sums(x, y, b).tolist()


def _losses(L):
    return (L.orientation, L.modulus, L.dql, L.relative_dql, L.excess)


@pytest.mark.parametrize(("sw", "sq"), [(1.0, 1.0), (1e-300, 1.0), (1e-160, 1e160), (1.0, 0.3)])
def test_weights_all_ones_are_bit_identical(rng, sw, sq):
    w = rng.standard_normal((5, 13))
    wq = vq.levels(vq.codes(w, 0.5, 3)) * 0.45
    w, wq = w * sw, wq * sq
    plain = vq.vector_loss(w, wq)
    assert _losses(vq.vector_loss(w, wq, weights=np.ones(13))) == _losses(plain)
    assert _losses(vq.vector_loss(w, wq, weights=1)) == _losses(plain)
    assert vq.optimal_alpha(w, wq, weights=np.ones((5, 13))) == vq.optimal_alpha(w, wq)
    # A power-of-two constant h: the same angle and relative DQL, the DQL scaled exactly.
    four = vq.vector_loss(w, wq, weights=4.0)
    assert (four.orientation, four.relative_dql) == (plain.orientation, plain.relative_dql)
    if plain.dql < 1e300:
        assert four.dql == 4 * plain.dql
    # Any other constant: the same up to rounding.
    three = vq.vector_loss(w, wq, weights=3.0)
    assert three.relative_dql == pytest.approx(plain.relative_dql, rel=1e-12)
    assert three.orientation == pytest.approx(plain.orientation, rel=1e-12)


def test_per_column_weights_equal_explicit_elements(rng):
    w = rng.standard_normal((6, 10))
    wq = np.round(w * 2) / 2
    col = rng.uniform(0.0, 3.0, 10)
    full = np.tile(col, (6, 1))
    assert _losses(vq.vector_loss(w, wq, weights=col)) == \
        _losses(vq.vector_loss(w, wq, weights=full))
    assert vq.optimal_alpha(w, wq, weights=col) == vq.optimal_alpha(w, wq, weights=full)
    # The column weights are not the row weights: h = col broadcasts along the last axis.
    assert vq.vector_loss(w, wq, weights=col).dql == pytest.approx(
        (col[None, :] * (w - wq) ** 2).sum(), rel=1e-12)


def test_zero_weights():
    w, wq = np.array([1.0, -2.0, 3.0]), np.array([0.5, -2.5, 0.0])
    zero = vq.vector_loss(w, wq, weights=np.zeros(3))
    assert _losses(zero) == (0.0, 0.0, 0.0, 0.0, 0.0)  # like an all-zero w
    assert vq.optimal_alpha(w, wq, weights=[0.0, 0.0, 0.0]) == 0.0
    # w zero wherever h > 0: again the all-zero w.
    assert vq.vector_loss([0.0, 5.0], [1.0, 1.0], weights=[1.0, 0.0]).relative_dql == 0.0
    # wq zero wherever h > 0: no direction (J_o = 1), relative DQL 1, α* = 0.
    L = vq.vector_loss([1.0, 5.0], [0.0, 1.0], weights=[1.0, 0.0])
    assert (L.orientation, L.relative_dql) == (1.0, 1.0)
    assert vq.optimal_alpha([1.0, 5.0], [0.0, 1.0], weights=[1.0, 0.0]) == 0.0


def test_low_precision_weights_are_accepted(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    w = rng.standard_normal(40)
    wq = np.round(w)
    h64 = np.round(rng.uniform(0, 4, 40) * 8) / 8  # exact in every dtype below
    ref = _losses(vq.vector_loss(w, wq, weights=h64))
    for dt in (np.float32, np.float16, ml_dtypes.bfloat16, np.int64):
        h = (h64 * 8).astype(dt) if dt is np.int64 else h64.astype(dt)
        got = vq.vector_loss(w, wq, weights=h)
        if dt is np.int64:  # 8·h: the same angle and relative DQL, 8 times the DQL
            assert (got.orientation, got.relative_dql) == (ref[0], ref[3])
            assert got.dql == 8 * ref[2]
        else:
            assert _losses(got) == ref, dt
            assert vq.optimal_alpha(w, wq, weights=h) == vq.optimal_alpha(w, wq, weights=h64)


def test_weighted_caller_arrays_untouched(rng):
    w = rng.standard_normal((3, 4)).astype(np.float32)
    wq = np.round(w)
    h = rng.uniform(0, 2, 4)
    copies = [a.copy() for a in (w, wq, h)]
    h.setflags(write=False)
    vq.vector_loss(w, wq, weights=h)
    vq.optimal_alpha(w, wq, weights=h)
    for a, c in zip((w, wq, h), copies, strict=True):
        assert a.tobytes() == c.tobytes() and a.dtype == c.dtype
    assert not h.flags.writeable


@pytest.mark.parametrize(("weights", "exc", "match"), [
    ([1.0, -1.0], ValueError, "non-negative"),
    ([1.0, np.nan], ValueError, "finite"),
    ([np.inf, 1.0], ValueError, "finite"),
    ([1.0, 2.0, 3.0], ValueError, "broadcastable"),
    (np.ones((2, 2)), ValueError, "broadcastable"),
    (["a", "b"], TypeError, "non-negative real"),
    ([1 + 1j, 1.0], TypeError, "non-negative real"),
    ([True, False], TypeError, "non-negative real"),
    ("h", TypeError, "array of real numbers"),
])
def test_bad_weights(weights, exc, match):
    for call in (lambda: vq.vector_loss([1.0, 2.0], [1.0, 1.0], weights=weights),
                 lambda: vq.optimal_alpha([1.0, 2.0], [1.0, 1.0], weights=weights)):
        with pytest.raises(exc, match=rf"`weights` must be .*{match}"):
            call()


@given(st.integers(1, 30), st.integers(0, 2**32 - 1), st.floats(0.05, 5.0),
       st.sampled_from([0.0, 0.3, 1.0]))
def test_weighted_property(n, seed, step, zero_frac):
    # For any codes and h ≥ 0 (some zero): the split is exact at α*_h, the relative DQL lies in
    # [0, 1], elements of zero weight can be changed freely, and h ≡ 1 is the unweighted loss.
    g = np.random.default_rng(seed)
    w = g.standard_normal(n) * 10.0 ** g.uniform(-3, 3)
    h = g.lognormal(0.0, 2.0, n) * (g.uniform(size=n) >= zero_frac)
    ell = vq.levels(vq.codes(w, step * np.std(w) + 1e-300, 3))
    a = vq.optimal_alpha(w, ell, weights=h)
    L = vq.vector_loss(w, a * ell, weights=h)
    sww = float(np.sum(h * w * w))
    jo = L.orientation
    assert L.dql == pytest.approx(sww * jo * (2 - jo), rel=1e-9, abs=1e-12 * sww)
    assert 0.0 <= L.relative_dql <= 1.0 + 1e-12
    assert L.dql == pytest.approx(float(np.sum(h * (w - a * ell) ** 2)), rel=1e-9,
                                  abs=1e-12 * sww)
    w2 = np.where(h > 0, w, g.standard_normal(n))
    L2 = vq.vector_loss(w2, a * ell, weights=h)
    assert L2.relative_dql == pytest.approx(L.relative_dql, rel=1e-12, abs=1e-15)
    assert _losses(vq.vector_loss(w, a * ell, weights=np.ones(n))) == \
        _losses(vq.vector_loss(w, a * ell))
