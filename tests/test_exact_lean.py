"""The lean path of the exact level-set search (``_kernels.exact_levels._lean``, rows of at
most ``LEAN`` active elements) against the general path (``_core``, forced with ``lean=0``)
and the brute-force twin ``naive.exact_levelset``: every output bit but the evaluation count,
and the codes, must agree (issue 21)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from vecq_ref import codebooks, naive
from vecq_ref._kernels import exact_levels as K

FULL2 = np.arange(-2.0, 2.0)
FULL3 = np.arange(-4.0, 4.0)
FULL4 = np.arange(-8.0, 8.0)
LEVEL_SETS = {"full2": (FULL2, False), "full4": (FULL4, False),
              "ternary": (np.array([-1.0, 0.0, 1.0]), False), "nf4": (codebooks.NF4, False),
              "fp4": (codebooks.FP4, False), "iq4nl": (codebooks.IQ4_NL, False),
              "zp3": (np.arange(8.0), True)}
#: Output columns that must agree bit for bit (all but 6, the evaluation count).
SAME = [0, 1, 2, 3, 4, 5, 7, 8]


def _both(x, h, levels, signed=False, zero_point=False):
    """(lean out, lean codes, general out, general codes, lean out and codes with the two
    directions searched one after the other)."""
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float64)))
    hs = (np.zeros((0, 0)) if h is None
          else np.ascontiguousarray(np.atleast_2d(np.asarray(h, dtype=np.float64))))
    levels = np.asarray(levels, dtype=np.float64)
    res = []
    for lean, shared in ((K.LEAN, True), (0, True), (K.LEAN, False)):
        out = np.full((x.shape[0], K.COLS), np.nan)
        codes = np.full(x.shape, -1, dtype=np.int16)
        K.exact_levelset(x, hs, levels, signed, zero_point, out, codes, lean, shared)
        res += [out, codes]
    return res


def _assert_same(x, h, levels, signed=False, zero_point=False):
    lo, lc, go, gc, so, sc = _both(x, h, levels, signed, zero_point)
    assert_array_equal(lo[:, SAME].view(np.int64), go[:, SAME].view(np.int64))
    assert_array_equal(lc, gc)
    assert_array_equal(so[:, SAME].view(np.int64), go[:, SAME].view(np.int64))
    assert_array_equal(sc, gc)
    assert np.all(lo[:, 7] == 1.0)
    return lo, lc


def _assert_brute(x, h, levels, signed, zero_point, out, codes):
    """The winner's r equals the brute force's (which breaks float ties by the largest
    rounded r, not by TIE_RTOL: the states themselves may differ on ties), and the codes
    are the nearest levels at the returned step."""
    ref = naive.exact_levelset(x, h, levels, signed=signed, zero_point=zero_point)
    r = out[4] ** 2 / out[5] if out[5] > 0 and out[1] != 0 else 0.0
    assert r == pytest.approx(ref["r"], rel=1e-12, abs=1e-300)
    lz = np.asarray(levels, dtype=np.float64) - out[8]
    assert_array_equal(codes, naive.nearest_index(naive.scaled_signed(x, out[0]), lz))


def _rows(rng, rows, n, zp):
    x = rng.standard_normal((rows, n)) * np.exp(rng.standard_normal((rows, 1)))
    x[0, : n // 3] = 0.0  # zeros
    x[1] = np.round(x[1] * 4) / 4  # ties on the grid (clusters of equal thresholds)
    x[2] = 0.7  # constant: every state ties, the largest step wins
    x[3] = 0.0
    x[3, n // 2] = -1.3  # one active element
    x[4] = rng.choice([0.3, -0.9, 1.5, 2.7, -0.45], n)  # few magnitudes: equal keys, dirty edges
    x[5] *= 1e-140  # tiny and huge (safe working scale)
    x[6] *= 1e140
    if zp:
        x[7] = np.abs(x[7]) + 0.5  # one-sided
    return x


@pytest.mark.parametrize("name", list(LEVEL_SETS))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("signed", [False, True])
def test_lean_matches_general_and_brute_force(name, weighted, signed):
    levels, zp = LEVEL_SETS[name]
    if zp and signed:
        pytest.skip("a zero point excludes signed steps")
    rng = np.random.default_rng([5, len(name), weighted, signed])
    rows, n = 10, 24
    x = _rows(rng, rows, n, zp)
    h = (rng.random((rows, n)) * np.exp(rng.standard_normal((rows, n)))) if weighted else None
    if weighted:
        h[8, :5] = 0.0  # zero weights count for nothing
    out, codes = _assert_same(x, h, levels, signed, zp)
    for r in range(rows):
        _assert_brute(x[r], None if h is None else h[r], levels, signed, zp, out[r], codes[r])


@pytest.mark.jit_only
@pytest.mark.parametrize("n", [32, 64, 128, 256, 257])
def test_lean_matches_general_on_format_groups(n):
    # The benchmark's rows (float32 weights, llama.cpp-style importance), groups of 32 … 256
    # (the bucket bounds prune there), 4 bits signed and NF4; 257: the general path on both.
    rng = np.random.default_rng(n)
    x = rng.standard_normal((24, n)).astype(np.float32).astype(np.float64)
    h = np.exp(rng.standard_normal(n))[None, :] * np.sqrt(1.0 + x * x)
    x[0] = np.round(x[0] * 8) / 8  # many equal thresholds
    _assert_same(x, h, FULL4, signed=True)
    _assert_same(x, None, FULL4, signed=True)
    _assert_same(x, h, codebooks.NF4)
    out, codes = _assert_same(x[:3], h[:3], codebooks.IQ4_NL, signed=True)
    if n <= 64:
        for r in range(3):
            _assert_brute(x[r], h[r], codebooks.IQ4_NL, True, False, out[r], codes[r])


def test_lean_threshold_switch():
    # lean = n: the lean path; the same row with lean = n − 1 takes the general path, and both
    # give the same bits (the switch counts active elements: zeros and zero weights are not).
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 20))
    x[:, :4] = 0.0
    for lean in (16, 15):
        out = np.empty((3, K.COLS))
        codes = np.empty((3, 20), dtype=np.int16)
        K.exact_levelset(x, np.zeros((0, 0)), FULL3, True, False, out, codes, lean)
        ref = _both(x, None, FULL3, True)
        assert_array_equal(out[:, SAME], ref[0][:, SAME])
        assert_array_equal(codes, ref[1])


def test_shared_directions_taken_only_where_paths_share_steps():
    # −8 … 7 signed: the paths 0 … 7 and 0 … 8 share 7 steps, so lean rows search both
    # directions at once (other evaluation counts, the same bits: _assert_same); −4 … 4
    # shares every step, so too; NF4's paths differ from the first step: the directions one
    # after the other (the same evaluation counts with shared=True and False).
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 32))
    lo, _, _, _, so, _ = _both(x, None, FULL4, signed=True)
    assert np.any(lo[:, 6] != so[:, 6])
    lo, _, _, _, so, _ = _both(x, None, codebooks.NF4, signed=True)
    assert_array_equal(lo[:, 6], so[:, 6])
    _assert_same(x, None, np.arange(-4.0, 5.0), signed=True)
    lo, _, _, _, so, _ = _both(x, None, np.arange(-4.0, 5.0), signed=True)
    assert np.any(lo[:, 6] != so[:, 6])


def test_both_directions_in_one_pass_match_each():
    # _approx2 and _lbb2 give each direction's _approx and _lbb bit for bit (the same counts
    # from one rounding, the same sums in the same order).
    rng = np.random.default_rng(8)
    x = rng.standard_normal(40)
    x[:3] = [4.0, -4.0, 0.01]  # one at each cap
    h = rng.random(40) + 0.1
    lam, lam2, mu, imu, dl, dq, cmax, pidx, fast = K._paths(FULL4)
    tab = np.array([lam, lam2, mu, imu, dl, dq])[None]
    itab = np.array([cmax, pidx])[None]
    el = np.array([np.abs(x), h, h * np.abs(x)])
    sgs = np.array([(x < 0).astype(np.int64), (x > 0).astype(np.int64)])
    for s in (0.05, 0.21, 0.3, 0.5, 1.7):
        both = K._approx2(s, el, sgs, 40, tab, itab, 0)
        assert both[:4] == K._approx(s, el, sgs, 0, 40, tab, itab, 0, fast, 0.0)
        assert both[4:] == K._approx(s, el, sgs, 1, 40, tab, itab, 0, fast, 0.0)
        if s <= 0.5:
            assert both[:4] != both[4:]  # 4/s ≥ 7.5: the caps 7 and 8 differ
        assert K._lbb2(s, el, sgs, 40, tab, itab, 0) == (
            K._lbb(s, el, sgs, 0, 40, tab, itab, 0), K._lbb(s, el, sgs, 1, 40, tab, itab, 0))


def test_lean_hand_case():
    # x = [3, 1] on −2 … 1, unsigned: r(s) over the states, worked out by hand:
    # s > 6: codes (0, 0), r = 0; 2 < s ≤ 6: (1, 0): S1 = 3, S2 = 1, r = 9;
    # s ≤ 2: (1, 1): S1 = 4, S2 = 2, r = 8. The best is r = 9, α = 3, its interval (2, 6]
    # (the thresholds 3/0.5 and 1/0.5), step 6; the codes (indices into −2 … 1): (3, 2).
    out, codes = _assert_same([3.0, 1.0], None, FULL2)
    assert out[0, 0] == 6.0 and out[0, 1] == 3.0
    assert out[0, 2] == 2.0 and out[0, 3] == 6.0
    assert (out[0, 4], out[0, 5]) == (3.0, 1.0)
    assert_array_equal(codes[0], [3, 2])


def test_state_bounds():
    # (S1, S2) = (3, 2) exactly: r = 4.5; the lower bound raises best_lo to 4.5·(1 − 4ε)
    # (within one rounding), the upper bound is 4.5·(1 + 4ε); a best_lo above the upper
    # bound drops the state (−1), one between keeps it.
    eps = np.finfo(float).eps
    lo, hi = K._state(3.0, 2.0, 0.0, 0.0, 4.0)
    assert lo == pytest.approx(4.5 * (1 - 4 * eps), rel=2 * eps)
    assert hi == pytest.approx(4.5 * (1 + 4 * eps), rel=2 * eps)
    assert K._state(3.0, 2.0, 0.0, 0.0, 4.6)[1] == -1.0
    assert K._state(3.0, 2.0, 0.0, 0.0, 4.5)[1] > 0.0
    # Errors widen both ways: (3 ± 0.1)² / (2 ∓ 0.1).
    lo, hi = K._state(3.0, 2.0, 0.1, 0.1, 0.0)
    assert lo == pytest.approx(2.9 ** 2 / 2.1, rel=1e-14)
    assert hi == pytest.approx(3.1 ** 2 / 1.9, rel=1e-14)
    assert K._state(-1.0, 2.0, 0.5, 0.0, 0.0)[1] == -1.0  # S1 ≤ 0 at most: no candidate


def test_approx_is_an_assignment_with_bounded_error():
    # The division-free incumbent: its sums are those of *some* codes (each element at a
    # level of its path), and within the stated error of the exact sums of those codes.
    rng = np.random.default_rng(4)
    x = rng.standard_normal(40)
    h = rng.random(40) + 0.1
    lam, lam2, mu, imu, dl, dq, cmax, pidx, fast = K._paths(FULL4)
    tab = np.array([lam, lam2, mu, imu, dl, dq])[None]
    itab = np.array([cmax, pidx])[None]
    el = np.array([np.abs(x), h, h * np.abs(x)])
    sgs = np.array([(x < 0).astype(np.int64), (x > 0).astype(np.int64)])
    for s in (0.05, 0.21, 0.3, 1.7):
        s1, s2, e1, e2 = K._approx(s, el, sgs, 0, 40, tab, itab, 0, fast, 0.0)
        idx = naive.nearest_index(x * (1.0 / s), FULL4)  # the levels of a·(1/s)
        lv = FULL4[idx]
        assert abs(s1 - np.sum(h * x * lv)) <= e1 + 1e-12 * np.sum(h * np.abs(x) * 8)
        assert abs(s2 - np.sum(h * lv * lv)) <= e2 + 1e-12 * np.sum(h * 64)
        assert 0.0 < e1 <= 1e-13 * np.sum(h * np.abs(x) * 8)


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 12))
    vals = st.floats(-4, 4, allow_nan=False, allow_subnormal=False).map(
        lambda v: 0.0 if abs(v) < 1e-6 else v)
    x = np.array(draw(st.lists(vals, min_size=n, max_size=n)))
    lv = draw(st.lists(st.integers(-6, 6), min_size=1, max_size=6, unique=True))
    scale = draw(st.sampled_from([1.0, 0.5, 0.3]))
    levels = np.sort(np.array(lv, dtype=np.float64)) * scale
    hw = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7]), min_size=n, max_size=n))
    h = None if draw(st.booleans()) else np.array(hw)
    zp = draw(st.booleans()) and levels.size <= 4
    return x, h, levels, draw(st.booleans()) and not zp, zp


@settings(deadline=None, max_examples=150)
@given(_cases())
def test_property_lean_matches_general_and_brute_force(case):
    x, h, levels, signed, zp = case
    out, codes = _assert_same(x, h, levels, signed, zp)
    _assert_brute(x, h, levels, signed, zp, out[0], codes[0])


def test_self_consistency_hand_case():
    # x = [3, 1] on −4 … 3 (positive path 0, 1, 2, 3; midpoints 0.5, 1.5, 2.5), step s > 0.
    # s = 1.9: codes (2, 1) (3/1.9 = 1.58, 1/1.9 = 0.53), S1 = 7, S2 = 5, α = 1.4; the
    # interval of these codes is (1.2, 2] ∩ (2/3, 2] = (1.2, 2]: α inside, consistent.
    # s = 1.1: codes (3, 1), S1 = 10, S2 = 10, α = 1 ∈ (2/3, 1.2]: consistent.
    # s = 0.6: codes (3, 2), S1 = 11, S2 = 13, α = 0.846 > 2/3 (1/0.6 = 1.67 is code 2 only
    # for s ≤ 2/3): outside (0.4, 2/3], not consistent (the state at α = 0.846 is (3, 1),
    # loss 2 < 11²/13 … i.e. r = 10 > 121/13 = 9.31).
    from jitcall import jitted
    lam, lam2, mu, imu, dl, dq, cmax, pidx, fast = K._paths(FULL3)
    a = np.array([3.0, 1.0])
    sg = np.zeros(2, dtype=np.int64)
    h = np.ones(2)
    cons = jitted(K._consistent)
    cons_p = jitted(K._consistent_p)
    tab = np.array([lam, lam2, mu, imu, dl, dq])[None]
    itab = np.array([cmax, pidx])[None]
    el = np.array([a, h, h * a])
    sgs = np.array([sg, 1 - sg])
    for s, want in ((1.9, True), (1.1, True), (0.6, False)):
        cnt = np.empty(2, dtype=np.int64)
        assert cons(s, a, sg, h, h * a, 2, lam, lam2, mu, cmax, fast, 0.0, cnt) is want
        wi = np.empty((2, 7), dtype=np.int64)
        assert cons_p(s, el, sgs, 0, 2, tab, itab, 0, fast, 0.0, wi) is want


@pytest.mark.slow
@pytest.mark.jit_only
def test_long_8bit_signed_row_is_certified():
    # The benchmark's per-tensor row (2^20 N(0, 1), levels −128 … 127, signed, unweighted):
    # near the optimum ten distinct states have direct r within TIE_RTOL (32ε) of the best,
    # 23ε apart at most; the largest step among them is not self-consistent (α 6.7e-8 below
    # its interval), so the old tie rule returned it, uncertified. Self-consistent candidates
    # now go first: certified, and the codes are the nearest levels at α itself.
    x = np.random.default_rng(1).standard_normal((1, 1 << 20))
    out = np.empty((1, K.COLS))
    codes = np.empty(x.shape, dtype=np.int16)
    K.exact_levelset(x, np.zeros((0, 0)), np.arange(-128.0, 128.0), True, False, out, codes)
    assert out[0, 7] == 1.0
    lo, hi, alpha = out[0, 2], out[0, 3], out[0, 1]
    assert alpha < 0 and lo < -alpha * (1 + 1e-12) and -alpha <= hi * (1 + 1e-12)
    idx = naive.nearest_index(naive.scaled_signed(x[0], alpha), np.arange(-128.0, 128.0))
    assert_array_equal(codes[0], idx)


@pytest.mark.jit_only
def test_8bit_signed_matches_brute_force():
    # 8 bits, signed, on a subsample-sized row (the brute force evaluates every one of the
    # 2·160·255 breakpoint intervals): the same r as the brute force, both paths the same bits.
    x = np.random.default_rng(1).standard_normal(160)
    levels = np.arange(-128.0, 128.0)
    out, codes = _assert_same(x, None, levels, signed=True)
    _assert_brute(x, None, levels, True, False, out[0], codes[0])


# The chord bound's bracket (_chord2: both directions at once, docs/theory.md §4.5 "Chord
# bound"): its pieces against NumPy, and the whole path against the general one.

def _el(x, h, levels):
    """The packed element rows _rows gives _lean2: a, h, h·a, the path length for +α and −α."""
    lam, lam2, mu, imu, dl, dq, cmax, pidx, fast = K._paths(levels)
    a = np.abs(x)
    g = (x < 0).astype(np.int64)
    return np.array([a, h, h * a, cmax[g].astype(float), cmax[1 - g].astype(float)])


def _g_nearest(x, h, levels, al):
    """G(α) = Σhx² − Σh·dist²(x, αL) of the nearest levels at α (α < 0: the mirrored set)."""
    lv = levels[naive.nearest_index(x / al, levels)]
    return np.sum(h * x * x) - np.sum(h * (x - al * lv) ** 2)


def test_chord_hand_case():
    # g1 = g2 = 1 on [1, 2], c = 1: h1 = 1 + 1 = 2, h2 = 1 + 4 = 5, slope 3, vertex
    # α = 3/2 inside: 2 + 3·½ − (3/2)² = 1.25, plus 64ε·(2 + 5 + 4) of rounding slack.
    # With c = 0 (no state in the cell has a level) the bound is the larger end, 1.
    eps = np.finfo(float).eps
    assert K._chord(1.0, 1.0, 2.0, 1.0, 1.0) == 1.25 + 64 * eps * 11
    assert K._chord(1.0, 1.0, 2.0, 0.5, 0.0) == 1.0 + 64 * eps
    # The vertex clipped: g2 = 10 makes h2 = 14, slope 12, vertex 6 > 2: the bound at α = 2,
    # 2 + 12 − 4 = 10 (= g2).
    assert K._chord(1.0, 1.0, 2.0, 10.0, 1.0) == pytest.approx(10.0, rel=1e-14)


def test_probe_is_both_directions_assignments():
    # _probe2 at inv = 1/α: the exact sums of the codes ⌊a·inv + ½⌋ capped per direction
    # (+α on −8 … 7: an element x > 0 on 0 … 7, x < 0 on 0 … 8; −α the other way round),
    # within the plain sums' bound k·S.
    rng = np.random.default_rng(11)
    x = rng.standard_normal(41)
    x[:4] = [4.0, -4.0, 0.31, -0.25]  # beyond both caps; ties of a·inv + ½ at α = 1/2
    h = rng.random(41) + 0.1
    el = _el(x, h, FULL4)
    k = 1.01 * (41 + 4) * np.finfo(float).eps
    for al in (0.05, 0.21, 0.5, 1.7):
        s1a, s2a, s1b, s2b = K._probe2(1.0 / al, el, 41)
        t = np.floor(np.abs(x) * (1.0 / al) + 0.5)
        for s1, s2, cap in ((s1a, s2a, el[3]), (s1b, s2b, el[4])):
            c = np.minimum(t, cap)
            assert abs(s1 - np.sum(h * np.abs(x) * c)) <= k * s1
            assert abs(s2 - np.sum(h * c * c)) <= k * s2
        if al <= 0.5:
            assert (s1a, s2a) != (s1b, s2b)  # the caps 7 and 8 differ at 4/α ≥ 8


@st.composite
def _cells(draw):
    n = draw(st.integers(1, 24))
    vals = st.floats(-4, 4, allow_nan=False, allow_subnormal=False).filter(lambda v: v != 0)
    x = np.array(draw(st.lists(vals, min_size=n, max_size=n)))
    if draw(st.booleans()):
        x = np.round(x * 4) / 4  # ties: midpoints hit exactly
        x[x == 0] = 0.25  # active elements only, as _rows packs them
    h = np.array(draw(st.lists(st.sampled_from([0.1, 0.5, 1.0, 3.7]), min_size=n,
                               max_size=n)))
    levels = draw(st.sampled_from([FULL2, FULL3, FULL4]))
    a1 = draw(st.floats(0.01, 3.0))
    a2 = a1 * draw(st.floats(1.0001, 3.0))
    return x, h, levels, a1, a2


@settings(deadline=None, max_examples=80)
@given(_cells())
def test_property_chord_bound_covers_g(case):
    # The chord bound of a cell [α1, α2] from the probes at its ends (as _chord2 makes them)
    # is at least G(±α) = Σhx² − Σh·dist²(x, ±αL) at every sampled α in the cell (each
    # direction), and at the cell [0, α2] with the saturated counts' C; a C too small or a
    # missing rounding term shows here.
    x, h, levels, a1, a2 = case
    n = x.size
    el = _el(x, h, levels)
    k = 1.01 * (n + 4.0) * np.finfo(float).eps
    wb = np.zeros((3, 8))
    s1a, s2a, s1b, s2b = K._probe2(np.inf, el, n)
    tb = min(s1a, s1b) * (1.0 + 2.0 * k)
    assert tb >= np.sum(h * np.abs(x))
    wb[0, 3] = s2a * (1.0 + k)
    wb[0, 4] = s2b * (1.0 + k)
    for j, al in ((1, a1), (2, a2)):
        K._pt(j, al, 1.0 / al * (1.0 + 4.0 * np.finfo(float).eps), el, n, k, tb, 0, 0.0, 0.0,
              wb)
    alphas = np.concatenate([np.geomspace(a1, a2, 200), [a1, a2]])
    low = np.geomspace(a1 * 1e-3, a1, 50)
    for d, sign in ((0, 1.0), (1, -1.0)):
        u = K._chord(wb[1, 0], wb[1, 1 + d], wb[2, 0], wb[2, 1 + d], wb[1, 3 + d])
        u0 = K._chord(0.0, 0.0, wb[1, 0], wb[1, 1 + d], wb[0, 3 + d])
        x2 = np.sum(h * x * x)
        for al in alphas:
            assert u >= _g_nearest(x, h, levels, sign * al) - 1e-13 * x2
        for al in low:
            assert u0 >= _g_nearest(x, h, levels, sign * al) - 1e-13 * x2


@st.composite
def _signed_groups(draw):
    n = draw(st.integers(1, 40))
    vals = st.floats(-4, 4, allow_nan=False, allow_subnormal=False).map(
        lambda v: 0.0 if abs(v) < 1e-6 else v)
    x = np.array(draw(st.lists(vals, min_size=n, max_size=n)))
    q = draw(st.sampled_from([0.0, 2.0, 8.0]))
    if q:
        x = np.round(x * q) / q  # equal magnitudes: clusters of equal thresholds, ties
    hw = draw(st.lists(st.sampled_from([0.0, 0.3, 1.0, 2.0]), min_size=n, max_size=n))
    h = None if draw(st.booleans()) else np.array(hw)
    return x, h, draw(st.sampled_from([FULL2, FULL3, FULL4]))


@settings(deadline=None, max_examples=80)
@given(_signed_groups())
def test_property_chord_path_matches_general_and_brute_force(case):
    # Signed full-range groups (the chord bound's path) with ties, zeros and zero weights:
    # every output bit but evaluations equals the general path's and the sequential one's,
    # and the winner's r the brute force's.
    x, h, levels = case
    out, codes = _assert_same(x, h, levels, True)
    _assert_brute(x, h, levels, True, False, out[0], codes[0])
