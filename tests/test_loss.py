import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import vecq_ref as vq
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
