"""Exact weighted scale search over any level set (``_kernels.exact_levels``) against its
brute-force twin ``naive.exact_levelset``: hand cases, seeded random, hypothesis, threads."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jitcall import jitted
from numpy.testing import assert_array_equal

from vecq_ref import codebooks, naive
from vecq_ref._kernels import exact_levels as K

threshold = jitted(K.threshold)

FULL2 = np.arange(-2.0, 2.0)
FULL3 = np.arange(-4.0, 4.0)
FULL4 = np.arange(-8.0, 8.0)
TERNARY = np.array([-1.0, 0.0, 1.0])
ZP2 = np.arange(4.0)
ZP3 = np.arange(8.0)


def _run(x, h, levels, signed=False, zero_point=False):
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float64)))
    hs = (np.zeros((0, 0)) if h is None
          else np.ascontiguousarray(np.atleast_2d(np.asarray(h, dtype=np.float64))))
    out = np.full((x.shape[0], K.COLS), np.nan)
    codes = np.full(x.shape, -1, dtype=np.int16)
    K.exact_levelset(x, hs, np.asarray(levels, dtype=np.float64), signed, zero_point, out,
                     codes)
    return out, codes


def _loss(x, h, lz, idx, alpha):
    h = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64)
    return float(np.sum(h * (x - alpha * lz[idx]) ** 2))


def _best_loss(x, h, lz, idx, sign):
    """Loss of the codes at their own least-squares α of the given sign (or 0)."""
    h = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64)
    lv = lz[idx]
    s2 = np.sum(h * lv * lv)
    alpha = np.sum(h * x * lv) / s2 if s2 > 0 else 0.0
    return _loss(x, h, lz, idx, alpha if alpha * sign > 0 else 0.0)


def _check_row(x, h, levels, signed, zero_point, out, codes):
    """The output's own consistency: codes reproduce from the step, S1/S2/α from the codes,
    the step is the top of its interval, and the loss equals the brute force's."""
    x = np.asarray(x, dtype=np.float64)
    step, alpha, lo, hi, s1, s2, evals, cert, z = out
    lz = np.asarray(levels, dtype=np.float64) - z
    assert_array_equal(codes, naive.nearest_index(naive.scaled_signed(x, step), lz))
    hh = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64)
    lv = lz[codes]
    np.testing.assert_allclose([s1, s2], [np.sum(hh * x * lv), np.sum(hh * lv * lv)],
                               rtol=1e-12, atol=1e-300)
    if s2 > 0 and alpha != 0:
        assert alpha == pytest.approx(s1 / s2, rel=1e-15)
        assert np.sign(alpha) == np.sign(step)
    assert 0 <= lo < hi
    if np.isfinite(hi) and step != 0:
        assert abs(step) == hi
    assert evals >= 0
    ref = naive.exact_levelset(x, h, levels, signed=signed, zero_point=zero_point)
    mine = _loss(x, h, lz, codes, alpha)
    theirs = _loss(x, h, np.asarray(levels) - ref["z"], ref["codes"], ref["alpha"])
    x2 = float(np.sum(hh * x * x))
    assert mine == pytest.approx(theirs, rel=1e-12, abs=1e-14 * x2)
    # The codes are optimal: no α does better with them than the optimum.
    sign = -1.0 if step < 0 else 1.0
    assert _best_loss(x, h, lz, codes, sign) >= theirs - 1e-12 * theirs - 1e-14 * x2
    return ref


# --- hand-made -----------------------------------------------------------------------------


def test_ternary_closed_form():
    # Levels −1, 0, 1: a state is a set of the k largest |x| at ±1, r_k = (Σ top-k |x|)²/k.
    x = np.array([0.3, -2.0, 1.1, -0.2, 0.9, 1.8])
    a = np.sort(np.abs(x))[::-1]
    rk = np.cumsum(a) ** 2 / np.arange(1, a.size + 1)
    k = int(np.argmax(rk)) + 1  # k = 4 here: (2 + 1.8 + 1.1 + 0.9)²/4 = 8.41
    assert k == 4 and rk[3] == pytest.approx(8.41)
    out, codes = _run(x, None, TERNARY)
    step, alpha, lo, hi, s1, s2 = out[0, :6]
    assert s1 ** 2 / s2 == pytest.approx(rk.max(), rel=1e-14)
    assert s2 == k and alpha == pytest.approx(5.8 / 4)
    assert_array_equal(TERNARY[codes[0]], [0, -1, 1, 0, 1, 1])
    # The interval: the 4th largest (0.9) is in while 0.9/s ≥ ½ (s ≤ 1.8, exact: 1.8 = 2·0.9),
    # the 5th (0.3) out while 0.3/s < ½ (s > 0.6).
    assert hi == 1.8 and lo == 0.6 and step == 1.8
    assert threshold(0.9, 0.5) == 1.8
    assert out[0, 7] == 1.0
    _check_row(x, None, TERNARY, False, False, out[0], codes[0])


def test_constant_block_tie_goes_to_the_larger_step():
    # x = [1, 1, 1]: every state moves all three at once, each level ℓ = 1 … 7 fits exactly
    # (r = 3 for all): the largest step wins, ℓ = 1 with hi = the largest s with 1/s ≥ ½.
    out, codes = _run([1.0, 1.0, 1.0], None, FULL4)
    step, alpha, lo, hi, s1, s2, evals, cert, z = out[0]
    assert s1 * s1 / s2 == 3.0
    assert step == hi == 2.0 and alpha == 1.0
    assert lo == threshold(1.0, 1.5) == pytest.approx(2.0 / 3.0, rel=1e-15)
    assert_array_equal(FULL4[codes[0]], [1, 1, 1])
    assert cert == 1.0


def test_plus_before_minus_on_a_tie():
    # Symmetric levels, x = [1, −1]: +α and −α give the same r and the same |step|.
    out, codes = _run([1.0, -1.0], None, TERNARY, signed=True)
    assert out[0, 0] == 2.0 and out[0, 1] == 1.0
    assert_array_equal(TERNARY[codes[0]], [1, -1])


def test_codebook_without_zero_small_negative_weights():
    # IQ4_NL has no zero level: a small negative x/α goes to the level 1, so S1 gets
    # negative terms. α ≈ 1: −3 and −2 sit above the midpoint −4.5 → level 1.
    x = np.array([113.0, 89.0, -3.0, -2.0, 25.0])
    out, codes = _run(x, None, codebooks.IQ4_NL)
    lv = codebooks.IQ4_NL[codes[0]]
    assert lv[2] == 1.0 and lv[3] == 1.0
    assert out[0, 4] < np.sum(np.abs(x * lv))  # negative terms in S1
    _check_row(x, None, codebooks.IQ4_NL, False, False, out[0], codes[0])
    # Weighted, signed: still the brute force's loss.
    h = np.array([1.0, 0.5, 2.0, 3.0, 0.25])
    out, codes = _run(x, h, codebooks.IQ4_NL, signed=True)
    _check_row(x, h, codebooks.IQ4_NL, True, False, out[0], codes[0])


def test_signed_wins_with_negative_alpha():
    # Q4_0-like: the long end of [−8, 7] is −8. x = −1·[−8, 7, 3, −2] fits exactly with
    # α = −1 (codes −8, 7, 3, −2); a positive α cannot reach +8 on the short end.
    x = np.array([8.0, -7.0, -3.0, 2.0])
    out_u, codes_u = _run(x, None, FULL4)
    out_s, codes_s = _run(x, None, FULL4, signed=True)
    assert out_s[0, 1] == -1.0 and out_s[0, 0] < 0
    assert_array_equal(FULL4[codes_s[0]], [-8, 7, 3, -2])
    assert _loss(x, None, FULL4, codes_s[0], out_s[0, 1]) == 0.0
    assert out_u[0, 1] > 0 and _loss(x, None, FULL4, codes_u[0], out_u[0, 1]) > 0.1
    _check_row(x, None, FULL4, True, False, out_s[0], codes_s[0])
    _check_row(x, None, FULL4, False, False, out_u[0], codes_u[0])


def test_zero_point_all_positive_prefers_z0():
    # Levels 0…3 − z; positive data can use 1, 2, 3 only with z = 0 (fits exactly at α = 1).
    x = np.array([3.0, 2.0, 1.0, 3.0])
    out, codes = _run(x, None, ZP2, zero_point=True)
    assert out[0, 8] == 0.0 and out[0, 1] == 1.0
    assert_array_equal(codes[0], [3, 2, 1, 3])
    # All negative data: z = 3 (levels −3 … 0) is the mirror image.
    out, codes = _run(-x, None, ZP2, zero_point=True)
    assert out[0, 8] == 3.0 and out[0, 1] == 1.0
    assert_array_equal(codes[0], [0, 1, 2, 0])


def test_zero_weights_count_for_nothing():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(20)
    h = rng.random(20) + 0.1
    h[[2, 7, 11]] = 0.0
    x[7] = 50.0  # a huge weight with h = 0 must not move the step
    out, codes = _run(x, h, FULL3, signed=True)
    keep = h > 0
    out2, codes2 = _run(x[keep], h[keep], FULL3, signed=True)
    np.testing.assert_allclose(out[0, [1, 4, 5]], out2[0, [1, 4, 5]], rtol=1e-12)
    assert_array_equal(codes[0][keep], codes2[0])
    _check_row(x, h, FULL3, True, False, out[0], codes[0])


@pytest.mark.parametrize("levels", [FULL4, codebooks.NF4, codebooks.IQ4_NL])
def test_degenerate_rows(levels):
    out, codes = _run(np.zeros((2, 5)), None, levels, signed=True)
    assert_array_equal(out[:, [0, 1, 2]], 0.0)
    assert np.all(out[:, 3] == np.inf) and np.all(out[:, 7] == 1.0)
    # All weights zero: the same.
    out, codes = _run(np.ones((1, 4)), np.zeros((1, 4)), levels)
    assert out[0, 0] == 0.0 and out[0, 1] == 0.0 and out[0, 3] == np.inf
    # N = 1: fits exactly.
    out, codes = _run([[-0.7]], None, levels, signed=True)
    assert _loss(np.array([-0.7]), None, levels, codes[0], out[0, 1]) < 1e-30


def test_single_level():
    out, codes = _run([[1.0, 2.0, -0.5]], None, [2.0])
    assert_array_equal(codes[0], 0)
    assert out[0, 1] == pytest.approx(2.5 / 6.0)
    assert out[0, 2] == 0.0 and out[0, 3] == np.inf


# --- seeded random: kernel against the brute force -----------------------------------------

LEVEL_SETS = {"full2": (FULL2, False), "full3": (FULL3, False), "full4": (FULL4, False),
              "nf4": (codebooks.NF4, False), "fp4": (codebooks.FP4, False),
              "iq4nl": (codebooks.IQ4_NL, False), "zp2": (ZP2, True), "zp3": (ZP3, True)}


@pytest.mark.parametrize(("name", "signed"), [(k, sg) for k, (_, zp) in LEVEL_SETS.items()
                                              for sg in ((False,) if zp else (False, True))])
@pytest.mark.parametrize("weighted", [False, True])
def test_random_rows_match_brute_force(name, weighted, signed):
    levels, zp = LEVEL_SETS[name]
    rng = np.random.default_rng([7, len(name), weighted, signed])
    rows = 6 if zp else 10
    n = 12
    x = rng.standard_normal((rows, n)) * np.exp(rng.standard_normal((rows, 1)))
    x[0, :4] = 0.0  # zeros
    x[1] = np.round(x[1] * 4) / 4  # ties on the grid
    if zp:
        x[2] = np.abs(x[2]) + 0.5  # one-sided rows
    h = (rng.random((rows, n)) * np.exp(rng.standard_normal((rows, n)))) if weighted else None
    if weighted:
        h[3, :3] = 0.0
    out, codes = _run(x, h, levels, signed, zp)
    for r in range(rows):
        _check_row(x[r], None if h is None else h[r], levels, signed, zp, out[r], codes[r])
    assert np.all(out[:, 7] == 1.0)


@pytest.mark.jit_only
def test_large_row_branch_and_bound_path():
    # More than K.SMALL active elements: the branch and bound inside the bracket.
    rng = np.random.default_rng(11)
    n = K.SMALL + 76
    x = rng.standard_normal(n)
    h = rng.random(n) + 0.05
    out, codes = _run(x, h, FULL2, signed=True)
    _check_row(x, h, FULL2, True, False, out[0], codes[0])
    assert out[0, 7] == 1.0


# --- hypothesis ----------------------------------------------------------------------------


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 7))
    vals = st.floats(-4, 4, allow_nan=False, allow_subnormal=False).map(
        lambda v: 0.0 if abs(v) < 1e-6 else v)
    x = np.array(draw(st.lists(vals, min_size=n, max_size=n)))
    lv = draw(st.lists(st.integers(-6, 6), min_size=1, max_size=5, unique=True))
    scale = draw(st.sampled_from([1.0, 0.5, 0.3]))
    levels = np.sort(np.array(lv, dtype=np.float64)) * scale
    hw = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7]), min_size=n, max_size=n))
    h = None if draw(st.booleans()) else np.array(hw)
    return x, h, levels, draw(st.booleans())


@settings(deadline=None)
@given(_cases())
def test_property_matches_brute_force(case):
    x, h, levels, signed = case
    out, codes = _run(x, h, levels, signed)
    _check_row(x, h, levels, signed, False, out[0], codes[0])


# --- threads and determinism ---------------------------------------------------------------


@pytest.mark.jit_only
def test_threads_and_determinism():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4096, 32))  # 2^17 weights: run on several threads
    h = rng.random((4096, 32))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run(x, h, FULL4, signed=True)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _run(x, h, FULL4, signed=True)
        again = _run(x, h, FULL4, signed=True)
    finally:
        numba.set_num_threads(before)
    for a, b in ((one, two), (two, again)):
        assert_array_equal(a[0].view(np.int64), b[0].view(np.int64))
        assert_array_equal(a[1], b[1])


def test_sweep_buffers_grow_each_on_its_own():
    # Reproducer (fresh-user trial): a row whose sweeps grow the key buffers past 128 and then
    # need nb + 1 bucket counters beyond the counters' last growth wrote out of bounds (heap
    # corruption). IQ4_NL, signed, weighted, groups of 32; every group must match the oracle.
    r = np.random.default_rng(0)
    W = r.standard_normal((16, 64))
    r.lognormal(size=64)
    h = r.lognormal(size=(16, 64))
    x, hx = W[5].reshape(2, 32), h[5].reshape(2, 32)
    levels = np.asarray(codebooks.IQ4_NL, dtype=np.float64)
    out = np.empty((2, 9))
    K.exact_levelset(np.ascontiguousarray(x), np.ascontiguousarray(hx), levels, True, False,
                     out, np.empty((2, 32), np.int16))
    for g in range(2):
        ref = naive.exact_levelset(x[g], hx[g], levels, signed=True)
        assert out[g, 4] ** 2 / out[g, 5] == pytest.approx(ref["S1"] ** 2 / ref["S2"],
                                                           rel=1e-12)


def test_compensated_step_carries_the_exact_error():
    # 1 + 2^-60 rounds to 1; the lost 2^-60 is carried, whichever operand is larger.
    assert K._add(1.0, 0.0, 2.0 ** -60) == (1.0, 2.0 ** -60)
    assert K._add(2.0 ** -60, 0.0, 1.0) == (1.0, 2.0 ** -60)
    assert K._add(0.5, 0.0, 0.25) == (0.75, 0.0)  # exact: nothing carried


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e300, 1e300), st.floats(-1e300, 1e300))
def test_property_compensated_step_is_exact(s, x):
    from fractions import Fraction

    t, c = K._add(s, 0.0, x)
    assert Fraction(t) + Fraction(c) == Fraction(s) + Fraction(x)
    # Neumaier's branch computes the same error (both are the exact one).
    ref = (s - t) + x if abs(s) >= abs(x) else (x - t) + s
    assert c == ref


def test_count_uniform_paths():
    # μ_c = c − ½, path length 3: count(2.5) = 3 (the tie goes up), count(2.49...) = 2, counts
    # beyond the path's end (and y = ∞) stop at 3, count(0.49...) = 0.
    mu = np.array([[0.0, 0.5, 1.5, 2.5]])
    for y, want in [(2.5, 3), (np.nextafter(2.5, 0.0), 2), (7.0, 3), (np.inf, 3),
                    (np.nextafter(0.5, 0.0), 0), (0.5, 1), (0.0, 0)]:
        with np.errstate(invalid="ignore"):  # ∞ − ⌊∞⌋ (plain Python, NUMBA_DISABLE_JIT)
            assert K._count(y, mu, 0, 3, True) == want
        assert K._count(y, mu, 0, 3, False) == want


@pytest.mark.parametrize(("levels", "expect"), [
    (FULL4, 1.0),
    (np.asarray(codebooks.NF4, dtype=np.float64), codebooks.NF4[8]),
    (np.asarray(codebooks.FP4, dtype=np.float64), codebooks.FP4[8]),
])
def test_float_ties_go_to_the_largest_step(levels, expect):
    # [0.7] (and a constant row) is represented exactly by every positive level ℓ with
    # α = 0.7/ℓ: r = (0.7ℓ)²/ℓ² ties in exact arithmetic but not in float. The documented rule
    # (the larger |step|) must win: the first positive level the steps reach from above, i.e.
    # the smallest positive level (1 on −8 … 7; NF4's 0.0796…, FP4's 0.0052…), not the level
    # whose rounding happened to give the largest float r (the trial got code 5 on −8 … 7).
    for x in (np.array([[0.7]]), np.full((1, 32), 0.7)):
        out = np.empty((1, 9))
        codes = np.empty(x.shape, np.int16)
        K.exact_levelset(x, np.empty((0, 0)), levels, False, False, out, codes)
        assert np.all(levels[codes[0]] == expect)
        assert out[0, 1] * expect == pytest.approx(0.7, rel=4e-16)


# --- only the paths a call can take are compiled (``_needed_paths``) ---------------------------

def test_needed_paths_by_row_length_and_sign():
    sh = np.array([True])
    x = np.ones((3, 32))
    assert K._needed_paths(x, None, K.LEAN, True, sh) == (True, None, None)
    assert K._needed_paths(x, None, K.LEAN, False, sh) == (None, True, None)
    assert K._needed_paths(x, None, K.LEAN, True, np.array([False])) == (None, True, None)
    # two level sets (zero points), one shared and one not: both lean paths
    assert K._needed_paths(x, None, K.LEAN, True, np.array([True, False])) == \
        (True, True, None)
    assert K._needed_paths(x, None, 0, True, sh) == (None, None, True)  # lean=0: general
    assert K._needed_paths(np.ones((0, 32)), None, K.LEAN, True, sh) == (None, None, None)


def test_needed_paths_counts_active_elements_of_long_rows():
    sh = np.array([True])
    n = K.LEAN + 10
    x = np.ones((2, n))
    assert K._needed_paths(x, None, K.LEAN, True, sh) == (None, None, True)
    # a sparse row (K.LEAN active elements of n) takes the lean path
    x[1, K.LEAN:] = 0.0
    assert K._needed_paths(x, None, K.LEAN, True, sh) == (True, None, True)
    # zero importance makes an element inactive: both rows now sparse
    h = np.ones((2, n))
    h[0, :11] = 0.0
    assert K._needed_paths(x, h, K.LEAN, True, sh) == (True, None, None)
    # all-zero rows search nothing
    assert K._needed_paths(np.zeros((2, n)), None, K.LEAN, True, sh) == (None, None, None)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_pruned_paths_give_the_same_bits(monkeypatch, signed, weighted):
    """Rows of every path in one call (long, sparse long, all-zero): the same output with
    every path compiled as with only the needed ones."""
    rng = np.random.default_rng(7)
    n = K.LEAN + 40
    x = rng.standard_normal((4, n))
    x[1, 50:] = 0.0           # 50 active: a lean path
    x[2] = 0.0                # no search
    h = rng.uniform(0.0, 2.0, size=x.shape) if weighted else None
    if weighted:
        h[3, :60] = 0.0       # 220 active of 296: a lean path through the weights
    got, got_codes = _run(x, h, FULL4, signed=signed)
    monkeypatch.setattr(K, "_needed_paths", lambda *a: (True, True, True))
    ref, ref_codes = _run(x, h, FULL4, signed=signed)
    assert_array_equal(got, ref)
    assert_array_equal(got_codes, ref_codes)


def test_a_row_on_a_pruned_path_raises(monkeypatch):
    monkeypatch.setattr(K, "_needed_paths", lambda *a: (None, None, None))
    with pytest.raises(RuntimeError, match="pruned"):
        _run(np.arange(1.0, 9.0), None, FULL4, signed=True)
    # rows with nothing to search need no path
    out, _ = _run(np.zeros(8), None, FULL4, signed=True)
    assert out[0, 0] == 0.0
