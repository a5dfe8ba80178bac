"""Real-offset search ``x̂ = α·u + m`` (``_kernels.affine``) against its twin
``naive.affine_brute`` and by hand (docs/theory.md, "Real offset: the 2-D search")."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jitcall import jitted
from numpy.testing import assert_allclose, assert_array_equal

from vecq_ref import naive
from vecq_ref._kernels import affine as A
from vecq_ref._kernels import single_thread

NOH = np.empty((0, 0))


def _search(x, h=None, k=4, exact_max=32):
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    h = NOH if h is None else np.atleast_2d(np.asarray(h, dtype=np.float64))
    out = np.full((x.shape[0], 7), np.nan)
    codes = np.full(x.shape, -1, dtype=np.int16)
    A.affine_search(x, h, k, exact_max, out, codes)
    return out, codes


def _check_fit(x, h, k, out, codes):
    """α > 0, codes in range, (α, m) the weighted least-squares fit of the codes (normal
    equations), S recomputed from them."""
    h = np.ones_like(x) if h is None else h
    alpha, m, s = out[A.ALPHA], out[A.OFFSET], out[A.LOSS]
    assert alpha > 0
    assert codes.min() >= 0 and codes.max() <= k - 1
    u = codes.astype(np.float64)
    r = x - alpha * u - m
    scale = np.sqrt((h * x * x).sum()) * np.sqrt(h.sum()) * k + 1e-300
    assert abs((h * r).sum()) <= 1e-9 * scale
    if np.unique(u[h > 0]).size > 1:
        assert abs((h * r * u).sum()) <= 1e-9 * scale
    assert_allclose(s, (h * r * r).sum(), rtol=1e-12, atol=1e-300)


def _int_zero_point_optimum(x, k):
    """min over z, u ∈ {0..K−1}^n, α > 0 of Σ(x − α(u − z))²: every code vector, every z."""
    best = np.inf
    for u in itertools.product(range(k), repeat=len(x)):
        for z in range(k):
            v = np.asarray(u, dtype=np.float64) - z
            if (v * v).sum() == 0 or (x * v).sum() <= 0:
                continue
            a = (x * v).sum() / (v * v).sum()
            best = min(best, ((x - a * v) ** 2).sum())
    return best


# --- hand-made -----------------------------------------------------------------------------


def test_two_distinct_values_fit_exactly():
    x = np.array([1.5, 4.0, 1.5, 4.0, 4.0])
    out, codes = _search(x, k=4)
    assert out[0, A.LOSS] <= 1e-28
    assert len(set(codes[0].tolist())) == 2 and out[0, A.CERTIFIED] == 1.0
    xhat = out[0, A.ALPHA] * codes[0] + out[0, A.OFFSET]
    assert_allclose(xhat, x, rtol=1e-15)


def test_real_offset_beats_every_integer_zero_point():
    # 0.3, 1.3, 2.3: α = 1, m = 0.3 fits exactly (loss 0). An integer zero point needs the
    # values on α·{−z … 3 − z}; they are in ratio 3 : 13 : 23, which no α with codes ≤ 3
    # realises, so its optimum (every code vector, every z, brute force) is > 0.
    x = np.array([0.3, 1.3, 2.3])
    out, codes = _search(x, k=4)
    assert out[0, A.LOSS] <= 1e-28
    assert_allclose([out[0, A.ALPHA], out[0, A.OFFSET]], [1.0, 0.3], rtol=1e-14)
    izp = _int_zero_point_optimum(x, 4)
    assert izp > 1e-3 > out[0, A.LOSS]
    # The twin may pick the codes 1, 2, 3 with m = −0.7: the same x̂, equally optimal.
    alpha, m, loss, codes = naive.affine_brute(x, None, 4)
    assert loss <= 1e-28
    assert_allclose(alpha * codes + m, x, rtol=1e-14)


def test_one_bit_hand_case():
    # K = 2 (one bit), x = [0, 1, 2, 10]: the split is {0, 1, 2} | {10}: m = 1, α = 9,
    # loss = (0−1)² + 0 + (2−1)² = 2 (the split {0, 1} | {2, 10} costs 0.5 + 32 = 32.5).
    out, codes = _search([0.0, 1.0, 2.0, 10.0], k=2)
    assert codes[0].tolist() == [0, 0, 0, 1]
    assert_allclose(out[0, [A.ALPHA, A.OFFSET, A.LOSS]], [9.0, 1.0, 2.0], rtol=1e-14)
    alpha, m, loss, tcodes = naive.affine_brute([0.0, 1.0, 2.0, 10.0], None, 2)
    assert_allclose([alpha, m, loss], [9.0, 1.0, 2.0], rtol=1e-14)
    assert tcodes.tolist() == [0, 0, 0, 1]
    # Sxx = Σx² − n·x̄² = 105 − 4·(13/4)² = 62.75.
    assert out[0, A.SXX] == 62.75


def test_zero_weights_are_ignored():
    x = np.array([0.1, -0.7, 0.4, 0.9, 25.0, -3.0])
    h = np.array([1.0, 2.0, 0.5, 1.0, 0.0, 0.0])
    out, codes = _search(x, h, k=4)
    ref, rcodes = _search(x[:4], h[:4], k=4)
    assert_array_equal(out[0, :3], ref[0, :3])
    assert_array_equal(codes[0, :4], rcodes[0])
    # The ignored elements get the nearest codes at the fit: 25 → 3, −3 → 0.
    assert codes[0, 4:].tolist() == [3, 0]
    alpha, m, loss, tcodes = naive.affine_brute(x, h, 4)
    assert_allclose([alpha, loss], out[0, [A.ALPHA, A.LOSS]], rtol=1e-12)
    # Four distinct values fit with codes 0…3 shifted or not: compare x̂, not m.
    assert_allclose((alpha * tcodes + m)[:4], (out[0, 0] * codes[0] + out[0, 1])[:4],
                    rtol=1e-12)
    _check_fit(x, h, 4, out[0], codes[0])


def test_weights_scale_like_repetition():
    # Integer weights act as repeated elements.
    x = np.array([0.0, 1.0, 3.0, 3.5])
    out, _ = _search(x, [2.0, 1.0, 3.0, 1.0], k=4)
    rep, _ = _search(np.repeat(x, [2, 1, 3, 1]), k=4)
    assert_allclose(out[0, A.LOSS], rep[0, A.LOSS], rtol=1e-12)


@pytest.mark.parametrize("x", [[2.5], [2.5] * 7, [0.0] * 5, [-1.0, -1.0]],
                         ids=["n1", "constant", "zeros", "negative-constant"])
def test_constant_rows(x):
    out, codes = _search(x, k=16)
    assert out[0, A.LOSS] == 0.0 and out[0, A.ALPHA] == 1.0 and out[0, A.OFFSET] == x[0]
    assert out[0, A.CERTIFIED] == 1.0 and out[0, A.SXX] == 0.0
    assert (codes == 0).all()
    assert naive.affine_brute(x, None, 16)[:3] == (1.0, x[0], 0.0)


def test_all_weights_zero():
    out, codes = _search([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], k=4)
    assert out[0, A.LOSS] == 0.0 and out[0, A.OFFSET] == 0.0
    assert codes[0].tolist() == [1, 2, 3]


# --- seeded random: kernel against twin ----------------------------------------------------


def _rows(rng, count, n):
    rows = [rng.standard_normal(n) for _ in range(count)]
    rows.append(rng.integers(-3, 4, n).astype(np.float64))  # ties and an exact grid
    rows.append(np.round(rng.standard_normal(n), 1))
    # Decimal and thirds grids: critical scales equal in exact arithmetic but a few ulps
    # apart in float64 (the search's rebuild path).
    rows.append(rng.integers(-5, 6, n) * 0.1)
    rows.append(rng.permutation(n) * 0.1 + 0.7)
    rows.append(rng.integers(0, 9, n) / 3.0)
    rows.append(np.exp(rng.standard_normal(n)))  # skewed, positive
    return np.array(rows)


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
def test_exact_matches_brute(rng, bits, n, weighted):
    k = 2 ** bits
    x = _rows(rng, 6, n)
    h = rng.exponential(size=x.shape) * (rng.random(x.shape) > 0.2) if weighted else None
    out, codes = _search(x, h, k=k)
    for r in range(x.shape[0]):
        hr = None if h is None else h[r]
        alpha, m, loss, _ = naive.affine_brute(x[r], hr, k)
        assert out[r, A.CERTIFIED] == 1.0
        assert_allclose(out[r, A.LOSS], loss, rtol=1e-12, atol=1e-14 * out[r, A.SXX])
        _check_fit(x[r], hr, k, out[r], codes[r])


@pytest.mark.jit_only
def test_exact_matches_brute_32_at_4_bits(rng):
    x = np.concatenate([rng.standard_normal((2, 32)), rng.integers(-12, 13, (1, 32)) * 0.25])
    h = np.abs(x) + 0.1
    out, codes = _search(x, h, k=16, exact_max=32)
    for r in range(x.shape[0]):
        _, _, loss, _ = naive.affine_brute(x[r], h[r], 16)
        assert_allclose(out[r, A.LOSS], loss, rtol=1e-12, atol=1e-14 * out[r, A.SXX])
        _check_fit(x[r], h[r], 16, out[r], codes[r])
        assert out[r, A.LOSS] <= out[r, A.START] * (1 + 1e-12)


@pytest.mark.jit_only
def test_heuristic_long_rows(rng):
    # n = 128 at 8 bits: not certified, never worse than its starts, and never worse than
    # the min-max (Q4_1-like) affine rule, refitted.
    x = rng.standard_normal((4, 128)) * np.array([[1.0], [0.01], [100.0], [3.0]])
    out, codes = _search(x, k=256, exact_max=32)
    for r in range(4):
        assert out[r, A.CERTIFIED] == 0.0
        assert out[r, A.LOSS] <= out[r, A.START] * (1 + 1e-12)
        _check_fit(x[r], None, 256, out[r], codes[r])
        lo, hi = x[r].min(), x[r].max()
        u = np.round((x[r] - lo) / ((hi - lo) / 255))
        minmax = ((x[r] - lo - u * (hi - lo) / 255) ** 2).sum()
        assert out[r, A.LOSS] <= minmax


def test_exact_beats_or_ties_heuristic_at_32(rng):
    x = rng.standard_normal((6, 32))
    ex, _ = _search(x, k=16, exact_max=32)
    he, _ = _search(x, k=16, exact_max=0)
    assert (he[:, A.CERTIFIED] == 0).all() and (ex[:, A.CERTIFIED] == 1).all()
    assert (ex[:, A.LOSS] <= he[:, A.LOSS] * (1 + 1e-12)).all()
    # On these Gaussian groups the heuristic's offset scan reaches the optimum too.
    assert_allclose(he[:, A.LOSS], ex[:, A.LOSS], rtol=1e-12)


def test_threads_do_not_change_results(rng):
    x = rng.standard_normal((64, 16))
    h = rng.exponential(size=x.shape)
    ref = _search(x, h, k=8)
    with single_thread():
        one = _search(x, h, k=8)
    assert_array_equal(ref[0], one[0])
    assert_array_equal(ref[1], one[1])
    # Rows on their own give the same bits as in a block.
    for r in (0, 37, 63):
        alone = _search(x[r], h[r], k=8)
        assert_array_equal(alone[0][0], ref[0][r])


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=40)
@given(st.integers(2, 9), st.integers(1, 3), st.integers(0, 2 ** 32 - 1), st.booleans())
def test_exact_is_brute_never_worse_than_heuristic_never_worse_than_starts(n, bits, seed, weighted):
    rng = np.random.default_rng(seed)
    k = 2 ** bits
    x = np.round(rng.standard_normal(n) * 4, rng.integers(0, 3))  # ties likely
    h = rng.exponential(size=n) * (rng.random(n) > 0.3) if weighted else None
    ex, ec = _search(x, h, k=k, exact_max=64)
    he, hc = _search(x, h, k=k, exact_max=0)
    for out, codes in ((ex, ec), (he, hc)):
        _check_fit(x, h, k, out[0], codes[0])
        assert out[0, A.LOSS] <= out[0, A.START] * (1 + 1e-12) + 1e-300
    assert ex[0, A.LOSS] <= he[0, A.LOSS] * (1 + 1e-12) + 1e-300
    assert ex[0, A.LOSS] <= ex[0, A.SXX] * (1 + 1e-12)
    _, _, loss, _ = naive.affine_brute(x, h, k)
    assert_allclose(ex[0, A.LOSS], loss, rtol=1e-12, atol=1e-14 * ex[0, A.SXX])


def _i64(size):
    return np.empty(size, dtype=np.int64)


@pytest.mark.parametrize("bits", [2, 3])
def test_sweep_alone_is_exact(rng, bits):
    # The exact sweep by itself (no heuristic start, no Lloyd polish) on rows whose critical
    # scales tie in exact arithmetic (grids) or not (Gaussian): its codes' refit is optimal.
    k = 2 ** bits
    sweep = jitted(A._exact)
    fit = jitted(A._fit)
    for x in _rows(rng, 3, 8):
        xv, inv = np.unique(x, return_inverse=True)
        gv = np.bincount(inv).astype(np.float64)
        nv, nb = xv.size, xv.size * (k - 1)
        nc = nv * (nv - 1) // 2 * (k - 2)
        u = np.zeros(nv, dtype=np.int64)
        sweep(xv, gv, nv, k, np.empty(nv), np.empty(nb), _i64(nb), _i64(nb), np.empty(nb + 1),
              np.empty(nb + 1), np.empty(nb + 1), np.empty(nc), _i64(nc), _i64(nc), _i64(nc), u,
              _i64(nv))
        _, _, loss, _ = fit(xv, gv, nv, u)
        _, _, expected, _ = naive.affine_brute(x, None, k)
        assert_allclose(loss, expected, rtol=1e-12, atol=1e-14 * x.var() * x.size)
