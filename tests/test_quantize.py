import numba
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

import vecq_ref as vq
from vecq_ref import naive, tables
from vecq_ref._kernels.reduce import row_moments

# --- hand-checkable ------------------------------------------------------------------------


def test_param_by_hand():
    # w = [0.1, -0.4, 0.25, 0.9]: mean 0.2125, σ² = 0.861875/4, σ = 0.46418...;
    # s = 0.99569·σ = 0.46218 → w/s = [0.22, -0.87, 0.54, 1.95] → codes [0, -1, 0, 1],
    # v = [½, −½, ½, 3/2], ⟨w,v⟩ = 0.05 + 0.2 + 0.125 + 1.35 = 1.725, ⟨v,v⟩ = 3, α = 0.575,
    # w_q = [0.2875, −0.2875, 0.2875, 0.8625], DQL = 0.050625, ‖w‖² = 1.0425.
    w = np.array([0.1, -0.4, 0.25, 0.9])
    q = vq.quantize(w, 2)
    sigma = np.sqrt(0.861875 / 4)
    assert q.step == pytest.approx(vq.optimal_step(2) * sigma, rel=1e-15)
    assert q.codes.tolist() == [0, -1, 0, 1]
    assert q.alpha == pytest.approx(0.575, rel=1e-15)
    np.testing.assert_allclose(q.values, [0.2875, -0.2875, 0.2875, 0.8625], rtol=1e-15)
    assert q.loss.dql == pytest.approx(0.050625, rel=1e-12)
    assert q.loss.relative_dql == pytest.approx(0.050625 / 1.0425, rel=1e-12)
    assert q.loss.excess == pytest.approx(0.0, abs=1e-15)
    assert q.values.dtype == np.float64 and q.codes.dtype == np.int8


def test_midtread_by_hand():
    # w = [1, −1, 0.1, 2]: σ = √(6.01/4 − 0.525²) = 1.0735..., s = 1.2240·σ = 1.3140;
    # |w|/s + ½ = [1.26, 1.26, 0.58, 2.02] → codes [1, −1, 0, 1] (clipped), α = 4/3.
    w = np.array([1.0, -1.0, 0.1, 2.0])
    q = vq.quantize(w, 2, lattice="midtread")
    assert q.codes.tolist() == [1, -1, 0, 1]
    assert q.alpha == pytest.approx(4 / 3, rel=1e-15)
    assert q.lattice == "midtread"


def test_one_bit_is_bwn():
    # k = 1 midrise: v = sign(w)/2 and α* = 2·mean|w|, so w_q = mean|w|·sign(w) (BWN).
    w = np.array([0.3, -1.2, 0.5, -0.1, 2.0])
    q = vq.quantize(w, 1)
    np.testing.assert_allclose(q.values, np.mean(np.abs(w)) * np.sign(w), rtol=1e-15)


def test_single_weight_and_constant_vectors():
    q = vq.quantize([-2.5], 4)
    assert q.values.tolist() == [-2.5] and q.loss.dql == 0.0
    q = vq.quantize(np.full(7, 3.0), 3)
    assert q.step == 0.0 and q.codes.tolist() == [3] * 7
    np.testing.assert_allclose(q.values, 3.0, rtol=1e-15)
    assert q.loss.relative_dql == pytest.approx(0.0, abs=1e-15)


def test_all_zero_vector_is_defined():
    for method in ("param", "paper"):
        q = vq.quantize(np.zeros(6, dtype=np.float32), 3, method=method)
        assert q.alpha == 0.0
        assert q.values.tolist() == [0.0] * 6
        assert (q.loss.relative_dql, q.loss.orientation, q.loss.dql) == (0.0, 0.0, 0.0)
    q = vq.quantize(np.zeros(4), 3, lattice="midtread")
    assert q.alpha == 0.0 and q.codes.tolist() == [0] * 4


def test_paper_by_hand():
    # σ = 1 for w = [−1, 1]; s = 0.9957 + 1e-7; w/s − ½ = [−1.5043, 0.5043] → round [−2, 1]
    # → v = [−3/2, 3/2]; α = 3/(4.5 + 1e-7).
    q = vq.quantize([-1.0, 1.0], 2, method="paper")
    assert q.codes.tolist() == [-2, 1]
    assert q.step == 0.9957 + 1e-7
    assert q.alpha == 3.0 / (4.5 + 1e-7)
    assert q.loss.excess > 0  # the epsilon makes α a little short of α*


# --- against the NumPy twins ---------------------------------------------------------------


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8, 12, 16])
def test_param_matches_twin(rng, bits, lattice):
    if lattice == "midtread" and bits == 1:
        return
    w = rng.standard_normal(2001) * 0.05 + 0.01
    q = vq.quantize(w, bits, lattice=lattice)
    c, alpha, s, values = naive.param_quantize(w, bits, vq.optimal_step(bits, lattice), lattice)
    assert_array_equal(q.codes, c)
    assert q.step == pytest.approx(s, rel=1e-12)
    assert q.alpha == pytest.approx(alpha, rel=1e-12)
    np.testing.assert_allclose(q.values, values, rtol=1e-12)
    direct = vq.vector_loss(w, values)
    assert q.loss.dql == pytest.approx(direct.dql, rel=1e-10)
    assert q.loss.orientation == pytest.approx(direct.orientation, rel=1e-9)


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 9, 16])
def test_paper_matches_twin(rng, bits):
    w = rng.standard_normal(3001).astype(np.float32)
    q = vq.quantize(w, bits, method="paper")
    c, alpha, s, values = naive.paper_quantize(w, bits, tables.paper_lambda(bits))
    assert_array_equal(q.codes, c)
    assert q.alpha == pytest.approx(alpha, rel=1e-12)
    np.testing.assert_allclose(q.values, values.astype(np.float32), rtol=1e-6)


def test_row_moments_match_twin(rng):
    x = rng.standard_normal((3, 70001)) * 3 + 1e4  # |mean| ≫ σ and several chunks a row
    np.testing.assert_allclose(row_moments(x), naive.row_moments(x), rtol=1e-12)
    assert row_moments(np.full((1, 5), 7.25))[0, 1] == 0.0


@pytest.mark.parametrize("n", [2, 72, 3 * (1 << 14) + 5])  # one chunk and several
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_constant_row_has_its_value_as_mean_and_variance_zero(n, dtype):
    # 0.7·n summed and divided by n misses 0.7 by an ulp for most n, which left σ ≈ 1e-16 and
    # a param step of 1.1e-16 instead of 0. The twin says what a constant row's moments are.
    v = dtype(0.7)
    x = np.full((2, n), v)
    x[1] = -0.3
    m = row_moments(x)
    assert m[0, 0] == np.float64(v) and m[1, 0] == np.float64(dtype(-0.3))
    assert m[:, 1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(m, naive.row_moments(x), rtol=1e-12)
    assert naive.row_moments(x)[:, 1].tolist() == [0.0, 0.0]
    # One element an ulp away is not constant: its (tiny) variance is kept.
    x[0, n // 2] = np.nextafter(v, dtype(1))
    assert row_moments(x)[0, 1] > 0.0 and naive.row_moments(x)[0, 1] > 0.0


def test_a_constant_vector_gets_sigma_and_step_zero():
    """README: σ 0, step 0, one code (the top level), values within α's rounding of w."""
    for v in (0.7, -0.3, 1e-3, 0.1):
        w = np.full(72, v)
        for method in ("param", "grid"):
            q = vq.quantize(w, 4, method=method)
            assert q.step == 0.0 and q.info["sigma"] == 0.0, (v, method, q.step)
            assert q.codes.tolist() == [7 if v > 0 else -8] * 72
            # α = Σwv/Σv² (v = 7.5 or −8.5) from two rounded sums: α·v is w to a few ulps
            # (0.001: 3), not exactly, and the reported loss is that of the returned values.
            assert np.all(np.abs(q.values - w) <= 4 * np.spacing(abs(v)))
            ref = vq.vector_loss(w, q.values).relative_dql
            assert q.loss.relative_dql == pytest.approx(ref, rel=1e-6, abs=0)
            assert q.loss.relative_dql < 1e-30
            if np.all(q.values == w):
                assert q.loss.relative_dql == 0.0


@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e4m3fn"])
def test_low_precision_inputs_get_float32_values(fmt):
    """README: bf16/fp8 come back in float32, the exact values they are computed as, because
    rounding the levels to the storage type would take them off the lattice."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = getattr(ml_dtypes, fmt)
    w = np.random.default_rng(0).standard_normal(20000).astype(dtype)
    bits = 8 if fmt == "bfloat16" else 4
    q = vq.quantize(w, bits)
    ref = vq.quantize(w.astype(np.float32), bits)
    assert q.values.dtype == np.float32 and w.dtype == dtype  # the input untouched
    assert_array_equal(q.values, ref.values)
    assert_array_equal(q.codes, ref.codes)
    # Why not the storage type: rounded to it, some level moves by over a tenth of a step.
    moved = np.abs(q.values.astype(dtype).astype(np.float64) - q.values) / q.alpha
    assert moved.max() > 0.1
    assert vq.baselines.bwn(w).values.dtype == np.float32


# --- granularity ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["param", "paper"])
def test_per_channel_equals_per_slice(rng, method):
    w = rng.standard_normal((5, 3, 4, 4)).astype(np.float32) * np.arange(1, 6)[:, None, None,
                                                                               None]
    for axis in (0, 1, -1):
        q = vq.quantize(w, 3, method=method, axis=axis)
        assert q.alpha.shape == (w.shape[axis],)
        for i in range(w.shape[axis]):
            one = vq.quantize(np.take(w, i, axis=axis), 3, method=method)
            assert_array_equal(np.take(q.codes, i, axis=axis), one.codes)
            assert q.alpha[i] == one.alpha
            assert q.step[i] == one.step
            assert_array_equal(np.take(q.values, i, axis=axis), one.values)
            assert q.slice_loss.dql[i] == pytest.approx(one.loss.dql, rel=1e-12)
        assert q.loss.dql == pytest.approx(np.sum(q.slice_loss.dql), rel=1e-12)


def test_per_group_equals_per_slice(rng):
    w = rng.standard_normal((4, 12))
    q = vq.quantize(w, 4, group_size=3)
    assert q.alpha.shape == (4, 4)
    for r in range(4):
        for g in range(4):
            one = vq.quantize(w[r, 3 * g:3 * g + 3], 4)
            assert_array_equal(q.codes[r, 3 * g:3 * g + 3], one.codes)
            assert q.alpha[r, g] == one.alpha


def test_whole_tensor_loss_of_per_channel(rng):
    w = rng.standard_normal((8, 50)) * np.linspace(0.1, 3, 8)[:, None]
    q = vq.quantize(w, 3, axis=0)
    direct = vq.vector_loss(w, q.values)
    assert q.loss.dql == pytest.approx(direct.dql, rel=1e-10)
    assert q.loss.orientation == pytest.approx(direct.orientation, rel=1e-9)
    assert q.loss.excess == pytest.approx(direct.excess, rel=1e-6)


# --- dtypes, inputs, determinism -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_dtypes(rng, dtype):
    w = (rng.standard_normal(300) * 10).astype(dtype)
    q = vq.quantize(w, 4)
    assert q.values.dtype == (np.float64 if dtype == np.int32 else dtype)
    ref = vq.quantize(w.astype(np.float64), 4)
    assert_array_equal(q.codes, ref.codes)
    assert q.alpha == pytest.approx(ref.alpha, rel=1e-12)


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_ml_dtypes_floats_are_their_float32_values(rng, name):
    # bf16/fp8 (ml_dtypes) used to be refused with a TypeError; docs/theory.md (Numerics)
    # promises them: computed, and returned, as their exact float32 values.
    ml_dtypes = pytest.importorskip("ml_dtypes")
    w = rng.standard_normal((6, 50)).astype(getattr(ml_dtypes, name))
    before = w.copy()
    w32 = w.astype(np.float32)
    for method in ("exact", "param", "paper"):
        q, ref = vq.quantize(w, 3, method, axis=0), vq.quantize(w32, 3, method, axis=0)
        assert q.values.dtype == np.float32
        assert_array_equal(q.values, ref.values)
        assert_array_equal(q.codes, ref.codes)
    assert vq.search_step(w, 4).step == vq.search_step(w32, 4).step
    assert vq.vector_loss(w, w32 * 0.5).relative_dql == vq.vector_loss(w32, w32 * 0.5).relative_dql
    assert w.view(np.uint8).tobytes() == before.view(np.uint8).tobytes()  # never modified


def test_other_unknown_dtypes_say_how_to_convert():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    with pytest.raises(TypeError, match=r"`w` must be an array of real numbers .*e\.g\. "
                                        r"`w\.astype\(np\.float32\)`\); got dtype int4\."):
        vq.quantize(np.zeros(4, dtype=ml_dtypes.int4), 2)


class _ArrayLike:
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a


class _DLPackOnly:
    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_array_protocols(rng):
    w = rng.standard_normal(100).astype(np.float32)
    ref = vq.quantize(w, 3)
    for obj in (_ArrayLike(w), _DLPackOnly(w), w.tolist()):
        q = vq.quantize(obj, 3)
        assert_array_equal(q.codes, ref.codes)


def test_caller_array_untouched(rng):
    w = rng.standard_normal((6, 40)).astype(np.float32)
    w.flags.writeable = False  # any write would raise
    before = w.copy()
    for kwargs in ({}, {"axis": 1}, {"group_size": 8}, {"method": "paper"}):
        vq.quantize(w, 3, **kwargs)
    assert_array_equal(w, before)


def test_non_contiguous_input(rng):
    w = rng.standard_normal((30, 40))
    view = w[::2, ::3]
    assert_array_equal(vq.quantize(view, 4).codes, vq.quantize(view.copy(), 4).codes)


@pytest.mark.jit_only
def test_bit_identical_for_any_thread_count(rng):
    w = rng.standard_normal((3, 150_001)).astype(np.float32)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            results.append([vq.quantize(w, 4), vq.quantize(w, 4, axis=0),
                            vq.quantize(w, 3, method="paper")])
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(*results, strict=True):
        assert a.values.tobytes() == b.values.tobytes()
        assert np.asarray(a.alpha).tobytes() == np.asarray(b.alpha).tobytes()
        assert a.loss == b.loss


@pytest.mark.jit_only
def test_bit_identical_whatever_the_memory_alignment(rng):
    # The vectorized reductions must not depend on where the data sits in memory.
    w = rng.standard_normal(100_003).astype(np.float32)
    ref = vq.quantize(w, 4)
    for shift in (1, 2, 3, 5):
        buf = np.empty(w.size + shift, dtype=np.float32)
        moved = buf[shift:]
        moved[:] = w
        q = vq.quantize(moved, 4)
        assert q.values.tobytes() == ref.values.tobytes()
        assert q.alpha == ref.alpha and q.loss == ref.loss


# --- properties ----------------------------------------------------------------------------

# Squares of |w| < 1e-150 are subnormal in float64, where the loss loses relative precision
# (documented in the README's conventions); the properties are stated above that floor.
weights = hnp.arrays(np.float64, st.integers(1, 60),
                     elements=st.floats(-1e3, 1e3).filter(lambda x: x == 0 or abs(x) > 1e-150))


@given(weights, st.integers(1, 8), st.integers(-3, 3))
def test_scaling_by_powers_of_two_is_exact(w, bits, e):
    c = 2.0 ** e
    a, b = vq.quantize(w, bits), vq.quantize(c * w, bits)
    assert_array_equal(a.codes, b.codes)
    assert b.alpha == c * a.alpha
    assert_array_equal(b.values, c * a.values)


@given(weights, st.integers(1, 8), st.floats(0.01, 100))
def test_positive_homogeneity(w, bits, c):
    a, b = vq.quantize(w, bits), vq.quantize(c * w, bits)
    np.testing.assert_allclose(b.values, c * a.values, rtol=1e-9,
                               atol=1e-9 * c * (np.abs(w).max() + 1e-300))
    assert b.loss.relative_dql == pytest.approx(a.loss.relative_dql, rel=1e-6, abs=1e-12)


@given(weights, st.integers(1, 8), st.sampled_from(["midrise", "midtread"]))
def test_sign_symmetry_off_ties(w, bits, lattice):
    assume(not (lattice == "midtread" and bits == 1))
    q = vq.quantize(w, bits, lattice=lattice)
    assume(q.step > 0)
    ratio = w / q.step
    grid = ratio if lattice == "midrise" else np.abs(ratio) - 0.5
    assume(not np.any(np.isclose(grid, np.round(grid), rtol=0, atol=1e-9)))
    m = vq.quantize(-w, bits, lattice=lattice)
    np.testing.assert_allclose(m.values, -q.values, rtol=1e-12, atol=1e-300)
    assert m.alpha == pytest.approx(q.alpha, rel=1e-12)


@given(weights, st.integers(1, 16), st.sampled_from(["midrise", "midtread"]),
       st.sampled_from(["param", "paper"]))
def test_codes_inside_lattice(w, bits, lattice, method):
    assume(not (lattice == "midtread" and bits == 1))
    assume(not (method == "paper" and lattice == "midtread"))
    q = vq.quantize(w, bits, method=method, lattice=lattice)
    lo, hi = vq.code_range(bits, lattice)
    assert q.codes.min() >= lo and q.codes.max() <= hi
    assert q.loss.relative_dql <= 1.0 + 1e-12


@given(weights, st.integers(1, 12))
def test_paper_differs_from_param_only_by_ties_epsilon_and_table(w, bits):
    # Same step (the released λ and its +1e-7): codes agree except on ties of the released
    # expression, t = w/s − ½ a half-integer as evaluated (which includes |w/s| below half
    # an ulp of ½, where the subtraction rounds to −½), and α differs only through the
    # +1e-7 in its denominator.
    p = vq.quantize(w, bits, method="paper")
    assume(p.step > 0)
    floor_codes = vq.codes(w, p.step, bits)
    t = np.asarray(w, dtype=np.float64) / p.step - 0.5
    tie = t - np.floor(t) == 0.5
    assert_array_equal(p.codes[~tie], floor_codes[~tie])
    v = p.levels
    assert p.alpha == pytest.approx((w @ v) / (v @ v), rel=1e-7 / (v @ v) + 1e-14, abs=1e-300)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"w": [1.0, np.nan, np.inf]}, ValueError, "`w` contains 2 non-finite values"),
    ({"w": []}, ValueError, "`w` must be a non-empty array; got shape \\(0,\\)"),
    ({"bits": 0}, ValueError, "`bits` must be an integer in \\[1, 16\\]; got 0"),
    ({"bits": 17}, ValueError, "`bits` must be an integer in \\[1, 16\\]; got 17"),
    ({"bits": 2.0}, TypeError, "`bits` must be an integer"),
    ({"bits": True}, TypeError, "`bits` must be an integer"),
    ({"bits": 1, "lattice": "midtread"}, ValueError, "`bits` must be at least 2 for the midtr"),
    ({"w": ["a", "b"]}, TypeError, "`w` must be an array of real numbers"),
    ({"w": np.array([1 + 1j])}, TypeError, "`w` must be an array of real numbers"),
    ({"w": np.array([True, False])}, TypeError, "`w` must be an array of real numbers"),
    ({"w": "abc"}, TypeError, "`w` must be an array of real numbers"),
    ({"axis": 2}, ValueError, "`axis` must be an axis in \\[-2, 1\\] for a 2-d array; got 2"),
    ({"group_size": 5}, ValueError, "`group_size` must be a divisor of the last axis length 6"),
    ({"group_size": 0}, ValueError, "`group_size` must be an integer >= 1; got 0"),
    ({"axis": 0, "group_size": 2}, ValueError, "`axis` must be None when `group_size`"),
    ({"method": "bogus"}, ValueError, "`method` must be one of"),
    ({"lattice": "uniform"}, ValueError, "`lattice` must be one of"),
    ({"method": "paper", "lattice": "midtread"}, ValueError, "`lattice` must be 'midrise'"),
    ({"tol": 1}, TypeError, "`options` must be empty for method='param'"),
])
def test_bad_input(kwargs, exc, message):
    args = {"w": np.ones((3, 6)), "bits": 3}
    args.update(kwargs)
    with pytest.raises(exc, match=message):
        vq.quantize(**args)


def _fresh_out(q):
    return (np.full(q.codes.shape, 99, q.codes.dtype), np.full(q.values.shape, 9, q.values.dtype))


# The searches on these sizes take minutes as plain Python: compiled runs only.
@pytest.mark.parametrize("method", ["param", "paper"] + [
    pytest.param(m, marks=pytest.mark.jit_only) for m in ("exact", "grid", "alternating")])
@pytest.mark.parametrize(("shape", "dtype", "kw"), [
    ((300,), np.float32, {}),
    ((6, 50), np.float64, {"axis": 0}),
    ((6, 50), np.float32, {"axis": 1}),  # rows are a copy: written back at the end
    ((4, 60), np.float16, {"group_size": 20}),  # values computed in float32, then cast
    ((3, 4, 5), np.float64, {"axis": 2}),
])
def test_out_gives_the_same_result_in_the_callers_arrays(rng, method, shape, dtype, kw):
    w = rng.standard_normal(shape).astype(dtype)
    before = w.copy()
    for bits in (2, 4, 9):
        if method == "paper" and bits > 8:
            continue
        q = vq.quantize(w, bits, method=method, **kw)
        for out in (_fresh_out(q), tuple(np.asfortranarray(a) for a in _fresh_out(q)),
                    tuple(np.empty(a.shape[::-1], a.dtype).T for a in _fresh_out(q))):
            got = vq.quantize(w, bits, method=method, out=out, **kw)
            assert got.codes is out[0] and got.values is out[1]
            assert_array_equal(out[0], q.codes)
            assert out[1].tobytes() == np.ascontiguousarray(q.values).tobytes()
            assert got.loss == q.loss and np.array_equal(got.alpha, q.alpha)
            assert np.array_equal(got.step, q.step)
    assert_array_equal(w, before)


def test_out_reused_buffers_are_overwritten_whole(rng):
    w = rng.standard_normal((8, 30)).astype(np.float32)
    out = (np.empty(w.shape, np.int8), np.empty(w.shape, np.float32))
    for bits in (2, 8, 3):
        q = vq.quantize(w * bits, bits, axis=0, out=out)
        fresh = vq.quantize(w * bits, bits, axis=0)
        assert_array_equal(q.codes, fresh.codes)
        assert_array_equal(q.values, fresh.values)


def test_out_errors_name_out():
    w = np.linspace(-1, 1, 10, dtype=np.float32)
    codes, values = np.zeros(10, np.int8), np.zeros(10, np.float32)
    cases = [
        ([codes, values], TypeError, r"`out` must be a tuple \(codes, values\)"),
        ((codes,), TypeError, "`out` must be a tuple"),
        ((codes.tolist(), values), TypeError, r"`out\[0\] \(codes\)` must be an ndarray"),
        ((codes.astype(np.int16), values), TypeError, r"`out\[0\] \(codes\)` must be of dtype "
                                                       "int8; got dtype int16"),
        ((codes, values.astype(np.float64)), TypeError, r"`out\[1\] \(values\)` must be of "
                                                         "dtype float32"),
        ((codes, values[:9]), ValueError, r"`out\[1\] \(values\)` must be of the shape of `w` "
                                          r"\(10,\); got shape \(9,\)"),
        ((codes.reshape(2, 5), values), ValueError, r"`out\[0\] \(codes\)` must be of the shape"),
        ((codes, w), ValueError, r"`out\[1\] \(values\)` must be an array sharing no memory "
                                 "with `w`"),
        ((values.view(np.int8)[:10], values), ValueError, "`out` must be two arrays sharing no "
                                                          "memory"),
    ]
    ro = values.copy()
    ro.flags.writeable = False
    cases.append(((codes, ro), ValueError, r"`out\[1\] \(values\)` must be writeable"))
    for out, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            vq.quantize(w, 4, out=out)
    with pytest.raises(TypeError, match="`out` must be None with precision='float32'"):
        vq.quantize(w, 4, method="paper", precision="float32", out=(codes, values))
    # int16 codes above 8 bits; float64 values for integer weights
    q = vq.quantize(np.arange(10), 9, out=(np.zeros(10, np.int16), np.zeros(10)))
    assert q.codes.dtype == np.int16 and q.values.dtype == np.float64


@pytest.mark.parametrize("scale", [2.0 ** -1040, 1e-300, 1e300])
def test_out_at_the_working_scale(rng, scale):
    # float64 weights far from 1 are quantized at a power-of-two working scale and the
    # values scaled back: into the caller's arrays exactly as into fresh ones.
    w = rng.standard_normal((4, 30)) * scale
    for method in ("param", "exact", "alternating"):
        q = vq.quantize(w, 4, method=method, axis=0)
        out = (np.empty(w.shape, np.int8), np.empty(w.shape))
        got = vq.quantize(w, 4, method=method, axis=0, out=out)
        assert_array_equal(out[0], q.codes)
        assert out[1].tobytes() == q.values.tobytes()
        assert np.all(np.isfinite(out[1])) and np.any(out[1] != 0)
        assert np.array_equal(got.alpha, q.alpha) and got.loss == q.loss


# --- the loss describes the values returned, at every scale (issue 20) ---------------------


def _loss_of_alpha_v(w, q):
    """The vector loss of the float64 values α·v (what ``Quantized.loss`` documents)."""
    return vq.vector_loss(np.asarray(w, dtype=np.float64), q.alpha * q.levels)


def _same_loss(got, ref):
    """Relative DQLs equal up to the rounding of α·v itself: each value carries an error of
    ε·|w|, which moves ‖w − α·v‖²/‖w‖² by up to ≈ 2ε·√(relative DQL) (what limits both
    numbers when the loss is tiny: a vector on its lattice, a constant one)."""
    eps = np.finfo(np.float64).eps
    return got == pytest.approx(ref, rel=1e-9, abs=8 * eps * np.sqrt(ref) + 1e-300)


def _describes(w, q, values):
    """``q.loss`` is the loss of ``values`` (α·v in float64, or ``q.values``) up to their
    distance from α·v: ‖w − values‖ and ‖w − α·v‖ differ by at most ‖α·v − values‖ (triangle
    inequality), α·v by at most 4ε|α·v| + 2**-1074 from the exact product of the working-scale
    α (α itself is rounded when it is scaled back, into the subnormals too)."""
    w64 = np.asarray(w, dtype=np.float64).ravel()
    v = np.abs(np.asarray(q.levels, dtype=np.float64).ravel())
    av = (q.alpha * q.levels).ravel()
    got = np.asarray(values, dtype=np.float64).ravel()
    k = -int(np.frexp(np.max(np.abs(w64)))[1])  # norms at a scale where squares are normal
    delta = (np.abs(np.ldexp(av - got, k)) + 4 * np.finfo(np.float64).eps *
             np.abs(np.ldexp(av, k)) + np.ldexp(2.0 ** -1074 * (v + 1), k))
    norm = np.linalg.norm(np.ldexp(w64, k))
    reported = np.sqrt(q.loss.relative_dql) * norm
    actual = np.linalg.norm(np.ldexp(w64 - got, k))
    slack = 1e-9 * max(actual, reported)  # the sums' rounding (≲ 2**10·ε relative)
    assert abs(actual - reported) <= np.linalg.norm(delta) + slack, (actual, reported)


@pytest.mark.parametrize(("dtype", "e"), [(np.float32, -132), (np.float64, -1040)])
def test_paper_far_below_its_epsilon_reports_the_loss_of_its_values(dtype, e):
    # w = [3, −1, 2, 2]·u with u = 2**e (≈ 2e-40 in float32, ≈ 9e-314 in float64: subnormal
    # both). s = σλ + 1e-7 = 1e-7 to the last bit, w/s − ½ = −½ exactly in float64, rint → −0:
    # every code 0, v = ½. α = Σw·½/(Σv² + 1e-7) = 3u/(1 + 1e-7), so α·v = c·u with
    # c = 1.5/(1 + 1e-7) and ‖w − α·v‖²/‖w‖² = (18 − 12c + 4c²)/18 = ½ + ½·ε², ε ≈ 1e-7.
    # (The sums at the step 1e-7 cancelled: this used to report 0, or 1e51.)
    u = 2.0 ** e
    w = (np.array([3.0, -1.0, 2.0, 2.0]) * u).astype(dtype)
    assert np.array_equal(w.astype(np.float64), np.array([3.0, -1.0, 2.0, 2.0]) * u)
    q = vq.quantize(w, 4, method="paper")
    assert q.codes.tolist() == [0, 0, 0, 0]
    c = 1.5 / (1 + 1e-7)
    assert q.alpha == pytest.approx(2 * c * u, rel=1e-15)
    assert q.loss.relative_dql == pytest.approx((18 - 12 * c + 4 * c * c) / 18, rel=1e-12)
    assert q.loss.relative_dql == pytest.approx(0.5, abs=1e-13)
    returned = vq.vector_loss(w.astype(np.float64), q.values.astype(np.float64)).relative_dql
    if dtype == np.float32:
        # c·u rounded to float32's subnormal grid (2**-149, 2**17 times finer than u) is
        # 1.5·u exactly, whose relative DQL is (1.5² + 2.5² + 0.5² + 0.5²)/18 = ½ exactly.
        assert q.values.tolist() == [1.5 * u] * 4 and returned == 0.5
    else:
        assert returned == pytest.approx(0.5, rel=1e-9)


def test_paper_on_tiny_gaussian_float32_describes_its_values(rng):
    # The input: N(0, 1)·1e-40 in float32; the loss was reported as 0.
    w = (rng.standard_normal(1000) * 1e-40).astype(np.float32)
    q = vq.quantize(w, 4, method="paper")
    ref = _loss_of_alpha_v(w, q)
    assert q.loss.relative_dql > 0.99
    assert q.loss.relative_dql == pytest.approx(ref.relative_dql, rel=1e-12)
    assert q.loss.orientation == pytest.approx(ref.orientation, rel=1e-9)
    _describes(w, q, q.values)


@pytest.mark.parametrize("e", [1000, -1040])
def test_paper_at_the_ends_of_the_float64_range(rng, e):
    # Near 1e300 the sums of squares overflowed (a ValueError); near 1e-310 they underflowed
    # (σ = 0, loss 0). At 2**1000·w the 1e-7 is far below σλ's last bit, so the codes are
    # those of s = σλ: the codes of w (σ ≈ 1, no weight within 1e-6 of a boundary), α and
    # the loss exactly scaled. At 2**-1040·w the 1e-7 is all of s: every code 0.
    w = rng.standard_normal(500)
    q1 = vq.quantize(w, 3, method="paper")
    scaled = np.ldexp(w, e)
    q = vq.quantize(scaled, 3, method="paper")
    if e > 0:
        margin = np.abs(w / q1.step - 0.5 - np.round(w / q1.step - 0.5))
        assert np.min(np.abs(margin - 0.5)) > 1e-6
        assert_array_equal(q.codes, q1.codes)
        assert q.alpha == np.ldexp(q1.alpha, e)
        assert q.loss.relative_dql == pytest.approx(q1.loss.relative_dql, rel=1e-12)
    else:
        assert np.all(q.codes == 0)
    ref = _loss_of_alpha_v(scaled, q)
    assert 0 < q.loss.relative_dql == pytest.approx(ref.relative_dql, rel=1e-12)
    assert np.all(np.isfinite(q.values))


def test_constant_and_on_lattice_vectors_report_their_tiny_loss():
    # The loss of a vector already on a lattice is rounding only (here ≈ 1e-32 relative, the
    # error of α·v in float64); summed at a step far from α it came out as ≈ 1e-15.
    signs = 0.7 * np.array([1.0, -1.0, 1.0, 1.0, -1.0])  # on the 1-bit lattice ±½·1.4
    for w, bits in ((np.full(300, 1.3e-30), 3), (np.full(300, 1.3), 3), (signs, 1)):
        for method in ("param", "paper", "grid"):
            q = vq.quantize(w, bits, method=method)
            ref = _loss_of_alpha_v(w, q)
            assert _same_loss(q.loss.relative_dql, ref.relative_dql)
            if method != "paper":
                assert q.loss.relative_dql < 1e-28
            elif bits == 3:
                # Constant: v constant too, α = α*·Σv²/(Σv² + 1e-7), so the relative DQL is
                # (1e-7/(Σv² + 1e-7))² (v = ½ at 1.3e-30, the top level 3.5 at 1.3).
                svv = float(np.sum(q.levels ** 2))
                assert svv == (75.0 if w[0] < 1 else 3675.0)
                # (to ≈ 1e-7 relative: the roundings of α, a few ε, against 1e-9).
                assert q.loss.relative_dql == pytest.approx((1e-7 / (svv + 1e-7)) ** 2,
                                                            rel=1e-5)


_SCALES = st.sampled_from([1e-310, 1e-300, 1e-45, 1e-40, 1e-30, 1e-7, 1e-4, 1.0, 1e4, 1e30,
                           1e38, 1e300])


@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(-4, 4)), _SCALES,
       st.sampled_from([np.float16, np.float32, np.float64]), st.integers(1, 8),
       st.sampled_from(["param", "paper", "exact", "grid", "alternating"]))
def test_reported_loss_is_the_loss_of_the_returned_values(base, scale, dtype, bits, method):
    with np.errstate(all="ignore"):
        w = (base * scale).astype(dtype)
    assume(np.all(np.isfinite(w)) and np.any(w != 0))
    # Far enough below the dtype's maximum that the top level fits (else a ValueError).
    assume(np.max(np.abs(w.astype(np.float64))) < float(np.finfo(dtype).max) / 4)
    q = vq.quantize(w, bits, method=method)
    _describes(w, q, q.alpha * q.levels)
    _describes(w, q, q.values)


@pytest.mark.parametrize("kwargs", [{"method": "exact"}, {"method": "grid", "axis": 0},
                                    {"method": "exact", "zero_point": "integer"},
                                    {"method": "alternating", "weights": [1.0, 2.0, 0.5]}])
def test_one_path_validates_and_scales_once(monkeypatch, kwargs):
    # quantize runs the search on its own prepared rows: `w` is validated and its working
    # scale found once (they were twice, in quantize and again in search_step).
    from vecq_ref import _validation as V

    calls = {"weights": 0, "scale_exponent": 0}
    for name in calls:
        original = getattr(V, name)

        def counted(*args, _original=original, _name=name, **kw):
            calls[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(V, name, counted)
    w = np.array([[0.1, -0.4, 0.25], [0.9, -1.3, 0.05]]) * 1e-200  # a working scale k ≠ 0
    q = vq.quantize(w, 3, **kwargs)
    assert calls == {"weights": 1, "scale_exponent": 1}
    r = q.info["search"]
    assert_array_equal(np.asarray(r.step), np.asarray(q.step))
    assert r.level_set is q.level_set


@pytest.mark.parametrize(("h", "count"), [
    (np.r_[np.nan, np.ones(63)], "1 non-finite value "),               # one per column
    (np.r_[np.inf, np.nan, np.ones(62)][None, :], "2 non-finite values"),  # a (1, 64) row
    (np.where(np.eye(8, 64) > 0, np.nan, 1.0), "8 non-finite values"),   # one per element
])
def test_non_finite_weights_are_counted_as_given(h, count):
    """Trial T3 item 10: one NaN in a per-column ``weights`` of an 8×64 ``w`` was reported as
    "8 non-finite values" (counted after broadcasting); the count is the caller's."""
    w = np.random.default_rng(0).standard_normal((8, 64))
    with pytest.raises(ValueError, match=rf"`weights` must be finite; got {count}"):
        vq.quantize(w, 4, "exact", weights=h)
    with pytest.raises(ValueError, match=rf"`weights` must be finite; got {count}"):
        vq.vector_loss(w, w, weights=h)
