"""search_step() and quantize() on every level set, weighted or not (FORMATS §1–§3): the
general path against a brute-force oracle written here, its kernels against their twins, and
VecQ's own unweighted searches unchanged."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import vecq_ref as vq
from vecq_ref import naive, quantize, search_step
from vecq_ref._kernels import levelset as KLS
from vecq_ref.codebooks import NAMED
from vecq_ref.lattice import LevelSet, level_set

ASYM = [-1.0, 0.3, 0.7, 1.5]  # a codebook without a zero level, not symmetric

#: (id, keyword arguments of the level set)
SETS = [
    ("midrise3", {"bits": 3}),
    ("midtread3", {"bits": 3, "lattice": "midtread"}),
    ("full3", {"bits": 3, "lattice": "midtread-full"}),
    ("full4-signed", {"bits": 4, "lattice": "midtread-full", "signed_scale": True}),
    ("midrise2-signed", {"bits": 2, "signed_scale": True}),
    ("zp3", {"bits": 3, "zero_point": "integer"}),
    ("nf4", {"codebook": "nf4"}),
    ("iq4nl-signed", {"codebook": "iq4_nl", "signed_scale": True}),
    ("asym", {"codebook": ASYM}),
    ("asym-signed", {"codebook": ASYM, "signed_scale": True}),
]
SET_IDS = [s[0] for s in SETS]
SET_KW = [s[1] for s in SETS]
#: (id, shape, layout keywords, a function giving the rows of an array of that shape)
LAYOUTS = [
    ("tensor", (10,), {}, lambda a: a.reshape(1, -1)),
    ("channel", (3, 7), {"axis": 0}, lambda a: a.reshape(3, -1)),
    ("group", (2, 8), {"group_size": 4}, lambda a: a.reshape(-1, 4)),
]


def _levels(kw):
    """The levels (for α > 0, z = 0), sign freedom and zero point of a level-set keyword set."""
    ls = level_set(kw.get("lattice"), kw.get("bits"), signed_scale=kw.get("signed_scale", False),
                   zero_point=kw.get("zero_point"), codebook=kw.get("codebook"))
    return np.asarray(ls.levels, dtype=np.float64), ls.signed_scale, ls.zero_point == "integer"


def _oracle(x, h, levels, signed, zero_point):
    """min over z, the sign and every step of ‖x − α·ℓ‖²_h, by brute force: the nearest levels
    (np.argmin) at every breakpoint |x_i/m_j|, between each pair of neighbours and beyond both
    ends, each assignment with its weighted least-squares α of the step's sign (any
    assignment's loss is ≥ the optimum, and the optimum's is among these).
    Returns ``(loss, sign, z)`` of the best (first found on ties: +, smallest z)."""
    x = np.asarray(x, dtype=np.float64)
    h = np.ones_like(x) if h is None else np.asarray(h, dtype=np.float64)
    best = (np.inf, 0.0, 0)
    for z in (range(levels.size) if zero_point else [0]):
        lv = levels - z
        mids = (lv[1:] + lv[:-1]) / 2
        cuts = sorted({abs(xi / m) for xi in x for m in mids if xi != 0 and m != 0})
        trial = cuts + [(a + b) / 2 for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        trial += [cuts[0] / 2, 2 * cuts[-1]] if cuts else [1.0]
        for sign in ((1.0, -1.0) if signed else (1.0,)):
            for s in trial:
                y = x / (sign * s)
                ell = lv[np.argmin(np.abs(y[:, None] - lv[None, :]), axis=1)]
                s1, s2 = np.sum(h * x * ell), np.sum(h * ell * ell)
                alpha = s1 / s2 if s2 > 0 and sign * s1 > 0 else 0.0
                loss = np.sum(h * (x - alpha * ell) ** 2)
                if loss < best[0] - 1e-13 * np.sum(h * x * x):
                    best = (loss, sign, z)
    return best


def _data(rng, shape, weighted):
    w = rng.standard_t(3, shape)
    h = None
    if weighted:
        h = rng.random(shape) * (rng.random(shape) < 0.8)  # some zero importances
    return w, h


# --- hand-checked cases ------------------------------------------------------------------


def test_zero_point_by_hand():
    # 2 bits, codes u ∈ {0, 1, 2, 3}: the best is z = 2 (levels −2 … 1) with α = 0.65, where
    # w/α = [0.15, −0.62, 0.38, 1.38, −2, 0.08] → ℓ = [0, −1, 0, 1, −2, 0], u = ℓ + 2;
    # S1 = 0.4 + 0.9 + 2.6 = 3.9, S2 = 6, α = 0.65; loss = Σw² − S1²/S2 = 2.735 − 2.535 = 0.2.
    w = [0.1, -0.4, 0.25, 0.9, -1.3, 0.05]
    q = quantize(w, 2, "exact", zero_point="integer")
    assert q.zero_point == 2
    assert q.codes.dtype == np.int8
    assert_array_equal(q.codes, [2, 1, 2, 3, 0, 2])
    assert_allclose(q.alpha, 0.65, rtol=1e-15)
    assert_allclose(q.loss.dql, 0.2, rtol=1e-12)
    assert_allclose(q.loss.relative_dql, 0.2 / 2.735, rtol=1e-12)
    assert_array_equal(q.levels, [0.0, -1.0, 0.0, 1.0, -2.0, 0.0])
    assert_array_equal(q.values, 0.65 * q.levels)
    r = search_step(w, 2, zero_point="integer")
    assert r.zero_point == 2 and r.certified and r.lattice == "midtread-full"
    assert r.interval[0] < abs(r.step) <= r.interval[1]


@pytest.mark.parametrize("method", ["exact", "grid", "alternating"])
def test_zero_point_ties_go_to_the_smallest_z(method):
    # 1 bit, u ∈ {0, 1}: z = 0 (levels 0, 1) and z = 1 (levels −1, 0) both fit one of the two
    # weights exactly (loss 1): the smallest z wins.
    q = quantize([1.0, -1.0], 1, method, zero_point="integer")
    assert q.zero_point == 0
    assert_array_equal(q.codes, [1, 0])
    assert_allclose(q.loss.dql, 1.0, rtol=1e-14)
    # Mostly negative weights: z = 1 is strictly better.
    q = quantize([-1.0, -2.0, 0.1], 1, method, zero_point="integer")
    assert q.zero_point == 1
    assert_array_equal(q.values, q.alpha * (q.codes.astype(float) - 1))


@pytest.mark.parametrize("method", ["exact", "grid", "alternating"])
@pytest.mark.parametrize("kw", [{"bits": 2}, {"bits": 4, "lattice": "midtread-full"},
                                {"codebook": "nf4"}], ids=["midrise", "full", "nf4"])
def test_signed_ties_go_to_positive_alpha(method, kw):
    # A symmetric set (midrise, NF4) or w = −w: α and −α give the same loss; +α wins.
    w = np.array([1.0, -1.0, 0.5, -0.5, 0.25])
    if "lattice" in kw:
        w = np.array([1.0, -1.0, 0.5, -0.5])
    pos = quantize(w, method=method, **kw)
    sgn = quantize(w, method=method, signed_scale=True, **kw)
    assert sgn.alpha > 0
    assert_allclose(sgn.loss.dql, pos.loss.dql, rtol=1e-12, atol=1e-15)


def test_signed_scale_takes_the_long_end():
    # midtread-full 2 bits: levels −2 … 1. A largest weight of +2 fits only with α < 0
    # (Q4_0's d = max/−8 rule): α = −1, codes −2, −1, 0 give the loss 0.
    w = [2.0, 1.0, 0.0]
    q = quantize(w, 2, "exact", "midtread-full", signed_scale=True)
    assert_allclose(q.alpha, -1.0, rtol=1e-15)
    assert_array_equal(q.codes, [-2, -1, 0])
    assert q.loss.dql == 0.0
    assert quantize(w, 2, "exact", "midtread-full").loss.dql > 0.01


def test_zero_importance_is_ignored():
    # h = 0 on the outlier: 2-bit midrise levels ±½, ±3/2 fit [1, 3] exactly with α = 2.
    q = quantize([1.0, 3.0, 100.0], 2, "exact", weights=[1.0, 1.0, 0.0])
    assert_allclose(q.alpha, 2.0, rtol=1e-15)
    assert q.loss.dql == 0.0
    assert_array_equal(q.codes[:2], [0, 1])


@pytest.mark.parametrize("method", ["exact", "grid", "alternating"])
@pytest.mark.parametrize("kw", SET_KW, ids=SET_IDS)
def test_edge_rows(method, kw):
    # N = 1, an all-zero vector, a constant vector.
    levels, signed, zp = _levels(kw)
    zero = quantize(np.zeros(5), method=method, **kw)
    assert zero.alpha == 0.0 and zero.loss.dql == 0.0 and zero.loss.relative_dql == 0.0
    assert_array_equal(zero.values, 0.0)
    for w in ([0.7], [-0.3] * 6):
        q = quantize(w, method=method, **kw)
        best, _, _ = _oracle(w, None, levels, signed, zp)
        tol = 1e-12 * np.sum(np.square(w))
        if method == "exact":
            assert_allclose(q.loss.dql, best, rtol=1e-9, atol=tol)
        assert q.loss.dql >= best - tol
        assert_array_equal(q.values, q.alpha * q.levels)


# --- exact against the oracle; grid and alternating never better ---------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=[x[0] for x in LAYOUTS])
@pytest.mark.parametrize("kw", SET_KW, ids=SET_IDS)
def test_exact_equals_oracle(kw, layout, weighted, rng):
    _, shape, lay_kw, to_rows = layout
    w, h = _data(rng, shape, weighted)
    levels, signed, zp = _levels(kw)
    q = quantize(w, method="exact", weights=h, **lay_kw, **kw)
    hr = None if h is None else to_rows(h)
    expected = [_oracle(row, None if hr is None else hr[i], levels, signed, zp)[0]
                for i, row in enumerate(to_rows(w))]
    got = q.loss.dql if q.slice_loss is None else q.slice_loss.dql
    norm = np.sum((1.0 if h is None else h) * w * w)
    assert_allclose(np.ravel(got), expected, rtol=1e-9, atol=1e-13 * norm)
    r = search_step(w, method="exact", weights=h, **lay_kw, **kw)
    assert np.all(r.certified)
    assert_allclose(r.relative_dql, q.loss.relative_dql if q.slice_loss is None else
                    q.slice_loss.relative_dql, rtol=1e-12, atol=1e-15)
    for method in ("grid", "alternating"):
        other = quantize(w, method=method, weights=h, **lay_kw, **kw)
        assert other.loss.dql >= q.loss.dql * (1 - 1e-12) - 1e-15 * norm
    # values are α·(level − z), codes in the set's dtype, inputs untouched
    ls = q.level_set
    assert q.codes.dtype == ls.code_dtype
    assert q.codes.min() >= ls.code_range[0] and q.codes.max() <= ls.code_range[1]
    alpha = np.asarray(q.alpha, dtype=np.float64)
    per_elem = to_rows(np.ones(shape)) * alpha.reshape(-1, 1)
    assert_array_equal(q.values, per_elem.reshape(shape) * q.levels)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=9),
       st.sampled_from(range(len(SETS))), st.booleans())
def test_exact_is_the_oracle_and_never_worse(ws, which, weighted):
    kw = SET_KW[which]
    w = np.array(ws)
    h = np.linspace(0.0, 2.0, w.size) if weighted else None
    levels, signed, zp = _levels(kw)
    best, _, _ = _oracle(w, h, levels, signed, zp)
    q = quantize(w, method="exact", weights=h, **kw)
    norm = np.sum((1.0 if h is None else h) * w * w)
    assert_allclose(q.loss.dql, best, rtol=1e-9, atol=1e-12 * norm)
    for method in ("grid", "alternating"):
        assert quantize(w, method=method, weights=h, **kw).loss.dql >= best - 1e-12 * norm


# --- one path: VecQ's unweighted searches unchanged, h ≡ 1 --------------------------------

#: sha256 of step, α, J_o, relative DQL of search_step (exact, grid, alternating) and of
#: codes, values, α, step, losses of quantize (param, exact, grid, alternating, paper),
#: computed before the one-path change (main at ee62bed), on ``_golden_weights``.
GOLDEN = {
    ("float64", "midrise", 2, "tensor"): "50ea32e19907c1f59a83",
    ("float64", "midrise", 2, "axis0"): "e4ae10e8d1670b2705bd",
    ("float64", "midrise", 2, "group16"): "ffd0edaa482468d5bdbc",
    ("float64", "midrise", 4, "tensor"): "9a008fe4e4b2d26dfce1",
    ("float64", "midrise", 4, "axis0"): "91e4154c407d7d1c2ac4",
    ("float64", "midrise", 4, "group16"): "07169a5abd159bf3d659",
    ("float64", "midtread", 3, "tensor"): "b96d14fac57178de9c6e",
    ("float64", "midtread", 3, "axis0"): "e85eccddb03d98ce7c8e",
    ("float64", "midtread", 3, "group16"): "444f8ad77ec94e9a0c7c",
    ("float32", "midrise", 2, "tensor"): "6a4be3b37a271858194f",
    ("float32", "midrise", 2, "axis0"): "597a5a7906d177618fe1",
    ("float32", "midrise", 2, "group16"): "a1a98185e9f5067b1a60",
    ("float32", "midrise", 4, "tensor"): "424287e7766c530c66c0",
    ("float32", "midrise", 4, "axis0"): "a428eb187d0093ca9a10",
    ("float32", "midrise", 4, "group16"): "554ddfb96b9944fdde01",
    ("float32", "midtread", 3, "tensor"): "d191e49dbaf03194d2aa",
    ("float32", "midtread", 3, "axis0"): "99e7988d56f2f2a427be",
    ("float32", "midtread", 3, "group16"): "1793915e76a0e9bf43c8",
}


def _golden_weights():
    return np.random.default_rng(2024).standard_t(4, (6, 64))


def _digest(arr, bits, lattice, kw):
    m = hashlib.sha256()
    for method in ("exact", "grid", "alternating"):
        r = search_step(arr, bits, method, lattice, **kw)
        for a in (r.step, r.alpha, r.orientation, r.relative_dql):
            m.update(np.asarray(a, dtype=np.float64).tobytes())
    for method in ("param", "exact", "grid", "alternating") + (
            ("paper",) if lattice == "midrise" else ()):
        q = quantize(arr, bits, method, lattice, **kw)
        m.update(q.codes.tobytes())
        m.update(q.values.tobytes())
        for a in (q.alpha, q.step, q.loss.dql, q.loss.relative_dql, q.loss.orientation):
            m.update(np.asarray(a, dtype=np.float64).tobytes())
    return m.hexdigest()[:20]


@pytest.mark.jit_only  # 9 searches and quantizations per case
@pytest.mark.parametrize("key", list(GOLDEN), ids=["-".join(map(str, k)) for k in GOLDEN])
def test_vecq_sets_unchanged(key):
    dtype, lattice, bits, lay = key
    kw = {"tensor": {}, "axis0": {"axis": 0}, "group16": {"group_size": 16}}[lay]
    assert _digest(_golden_weights().astype(dtype), bits, lattice, kw) == GOLDEN[key]


@pytest.mark.parametrize("method", ["exact", "grid", "alternating"])
@pytest.mark.parametrize("kw", SET_KW[2:], ids=SET_IDS[2:])
def test_unit_importance_is_unweighted(method, kw, rng):
    w = rng.standard_normal((2, 6))
    a = quantize(w, method=method, axis=0, **kw)
    b = quantize(w, method=method, axis=0, weights=np.ones(6), **kw)
    assert_array_equal(a.codes, b.codes)
    assert_array_equal(a.alpha, b.alpha)
    assert_array_equal(a.values, b.values)
    assert a.loss == b.loss


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_unit_importance_on_vecq_sets_reaches_the_same_optimum(lattice, rng):
    w = rng.standard_normal(40)
    old = quantize(w, 3, "exact", lattice)
    new = quantize(w, 3, "exact", lattice, weights=1.0)
    assert_allclose(new.loss.dql, old.loss.dql, rtol=1e-10)
    assert new.level_set.lattice == old.level_set.lattice == lattice


# --- results: codes, values, dtypes, inputs ------------------------------------------------


@pytest.mark.parametrize("method", ["grid", "alternating"])
def test_eight_bit_zero_point_codes_are_int16(method, rng):
    w = rng.standard_normal(50) + 0.5
    opts = {"num": 30} if method == "grid" else {}
    q = quantize(w, 8, method, zero_point="integer", **opts)
    assert q.codes.dtype == np.int16
    assert 0 <= q.codes.min() and q.codes.max() <= 255
    assert 0 <= q.zero_point <= 255
    assert_array_equal(q.values, q.alpha * (q.codes - q.zero_point).astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("kw", [{"bits": 3, "zero_point": "integer"}, {"codebook": "nf4"},
                                {"bits": 4, "lattice": "midtread-full", "signed_scale": True}],
                         ids=["zp", "nf4", "full-signed"])
def test_low_precision_inputs(dtype, kw, rng):
    w = rng.standard_normal((4, 8)).astype(dtype)
    q = quantize(w, method="exact", axis=0, **kw)
    ref = quantize(w.astype(np.float64), method="exact", axis=0, **kw)
    assert q.values.dtype == dtype
    assert_array_equal(q.codes, ref.codes)
    assert_array_equal(q.values, ref.values.astype(dtype))


def test_inputs_untouched_and_read_only_accepted(rng):
    w = rng.standard_normal((3, 8))
    h = rng.random(8)
    w0, h0 = w.copy(), h.copy()
    h.setflags(write=False)
    q = quantize(w, 3, "exact", weights=h, zero_point="integer", group_size=4)
    search_step(w, method="alternating", weights=h, codebook="fp4")
    assert_array_equal(w, w0)
    assert_array_equal(h, h0)
    assert q.zero_point.shape == (3, 2)
    assert isinstance(q.level_set, LevelSet)


def test_step_result_fields(rng):
    w = rng.standard_normal((2, 5))
    r = search_step(w, 3, "alternating", axis=0, zero_point="integer")
    assert r.zero_point.shape == (2,) and r.zero_point.dtype.kind == "i"
    assert r.iterations.shape == (2,) and np.all(r.evaluations >= r.iterations)
    assert r.level_set.zero_point == "integer" and r.level_set.bits == 3
    assert r.interval is None and r.lattice == "midtread-full"
    # the step's codes are the nearest levels of w/step
    q = quantize(w, 3, "alternating", axis=0, zero_point="integer")
    for i in range(2):
        u = naive.nearest_index(w[i] / r.step[i], np.arange(8.0) - r.zero_point[i])
        assert_array_equal(q.codes[i], u)


def test_grid_sigma_is_the_weighted_rms():
    # One candidate λ = 1: the step is σ_h = sqrt(Σhw²/Σh) = sqrt((1·4 + 3·0)/4) = 1.
    r = search_step([2.0, 0.0], 2, "grid", weights=[1.0, 3.0], lo=1.0, hi=1.0, num=1)
    assert r.step == 1.0


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"method": "param", "weights": [1.0] * 4}, "`weights`"),
    ({"method": "paper", "weights": 1.0}, "`weights`"),
    ({"method": "param", "codebook": "nf4", "bits": None}, "`codebook`"),
    ({"method": "param", "zero_point": "integer"}, "`zero_point`"),
    ({"method": "param", "signed_scale": True}, "`signed_scale`"),
    ({"method": "param", "lattice": "midtread-full"}, "`lattice`"),
    ({"method": "grid", "zero_point": "float"}, "`method`"),
    ({"method": "alternating", "codebook": "nf4", "bits": None, "init": "sigma"}, "`init`"),
    ({"method": "exact", "weights": [-1.0, 1, 1, 1]}, "`weights`"),
    ({"method": "exact", "weights": [1.0, 1.0]}, "`weights`"),
])
def test_bad_input(kwargs, name):
    args = {"w": np.ones(4), "bits": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        quantize(**args)
    if args["method"] != "paper":
        with pytest.raises(ValueError, match=name):
            search_step(**args)


# --- kernels against their twins -----------------------------------------------------------


def _rows(rng):
    x = rng.standard_t(3, (4, 9))
    x[1] = 0.0  # all zero
    x[2] = -0.4  # constant
    return x


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kw", SET_KW, ids=SET_IDS)
def test_grid_and_alternating_kernels_match_twins(kw, weighted, rng):
    levels, signed, zp = _levels(kw)
    x = _rows(rng)
    h = rng.random(x.shape) if weighted else np.empty((0, 0))
    lams = np.linspace(0.05, 3.0, 40)
    out = np.empty((x.shape[0], 7))
    KLS.grid_levelset(x, h, levels, signed, zp, lams, out)
    for r in range(x.shape[0]):
        t = naive.grid_levelset(x[r], h[r] if weighted else None, levels, signed, zp, lams)
        assert_allclose(out[r, [0, 1, 2, 3, 5, 6]], t, rtol=1e-12, atol=1e-300)
    for init, value, name in ((0, 0.0, "max"), (2, 0.3, 0.3)):
        KLS.alternating_levelset(x, h, levels, signed, zp, init, value, 50, out)
        for r in range(x.shape[0]):
            t = naive.alternating_levelset(x[r], h[r] if weighted else None, levels, signed,
                                           zp, name, 50)
            assert_allclose(out[r, [0, 1, 2, 3, 5, 6]], t, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("kw", SET_KW, ids=SET_IDS)
def test_levelset_sums_match_twin(kw, rng):
    levels, _, zp = _levels(kw)
    x = _rows(rng)
    h = rng.random(x.shape)
    steps = np.array([0.3, -0.7, 1.0, 0.0])
    zs = np.array([0, 1, 2, 1]) if zp else np.zeros(4, dtype=np.int64)
    codes = np.empty(x.shape, np.int32)
    out = np.empty((4, 3))
    KLS.levelset_sums(x, h, steps, zs, levels, codes, out)
    for r in range(4):
        idx, sums = naive.levelset_sums(x[r], h[r], steps[r], levels, zs[r])
        assert_array_equal(codes[r], idx)
        assert_allclose(out[r], sums, rtol=1e-12, atol=1e-300)


def test_alternating_kernel_by_hand():
    # midrise 2 bits, x = [1, 3]: α₀ = 3/1.5 = 2 gives ℓ = [½, 3/2], α = (½ + 9/2)/(¼ + 9/4)
    # = 2, the same codes: two evaluations, step 2.
    out = np.empty((1, 7))
    KLS.alternating_levelset(np.array([[1.0, 3.0]]), np.empty((0, 0)),
                             np.array([-1.5, -0.5, 0.5, 1.5]), False, False, 0, 0.0, 10, out)
    assert_array_equal(out[0], [2.0, 2.0, 5.0, 2.5, 2, 0, 2])


def test_codebook_levels_are_the_named_table():
    q = quantize(np.linspace(-1, 1, 16), method="exact", codebook="nf4")
    assert_array_equal(q.levels, NAMED["nf4"][q.codes])


def test_out_arrays_on_the_general_path(rng):
    w = rng.standard_normal((2, 8)).astype(np.float32)
    ref = quantize(w, 4, "grid", zero_point="integer", group_size=4, num=50)
    codes, values = np.zeros((2, 8), np.int8), np.zeros((2, 8), np.float32)
    q = quantize(w, 4, "grid", zero_point="integer", group_size=4, num=50,
                 out=(codes, values))
    assert q.codes is codes and q.values is values
    assert_array_equal(codes, ref.codes)
    assert_array_equal(values, ref.values)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-4, 4).filter(lambda v: v == 0 or abs(v) > 1e-3), min_size=1,
                max_size=12),
       st.sampled_from([1e-310, 1e-300, 1e-30, 1e30, 1e300]),
       st.sampled_from([2, 3, 5, 7]))
def test_power_of_two_scale_equivariance(ws, scale, which):
    # 2**e·w: the same codes and z, α and step times 2**e, the same relative loss (float64
    # weights are searched at a working scale, then scaled back).
    kw = SET_KW[which]
    w = np.array(ws)
    e = int(np.frexp(scale)[1])
    big = np.ldexp(w, e)
    if not np.any(big != 0) or not np.all(np.isfinite(big)) or \
            not np.array_equal(np.ldexp(big, -e), w):
        return  # underflow or overflow: not an exact scaling
    for method in ("exact", "grid"):
        a = quantize(w, method=method, **kw)
        b = quantize(big, method=method, **kw)
        assert_array_equal(a.codes, b.codes)
        assert a.zero_point == b.zero_point
        assert b.alpha == np.ldexp(a.alpha, e) and b.step == np.ldexp(a.step, e)
        assert_allclose(b.loss.relative_dql, a.loss.relative_dql, rtol=1e-12, atol=1e-300)


def test_zero_point_levels_along_a_middle_axis(rng):
    w = rng.standard_normal((2, 3, 4))
    q = quantize(w, 3, "grid", zero_point="integer", axis=1, num=60)
    assert q.zero_point.shape == (3,)
    expected = q.codes.astype(np.float64) - q.zero_point[None, :, None]
    assert_array_equal(q.levels, expected)
    assert_array_equal(q.values, np.asarray(q.alpha)[None, :, None] * expected)


@pytest.mark.parametrize("method", ["grid", "alternating"])
def test_same_results_on_any_thread_count(method, rng, monkeypatch):
    import vecq_ref._kernels as kernels

    w = rng.standard_normal((12, 8))
    h = rng.random((12, 8))
    opts = {"num": 40} if method == "grid" else {}
    with kernels.single_thread():
        one = quantize(w, 3, method, zero_point="integer", axis=0, weights=h, **opts)
    monkeypatch.setattr(kernels, "PARALLEL_MIN", 1)  # every call on all threads
    many = quantize(w, 3, method, zero_point="integer", axis=0, weights=h, **opts)
    assert_array_equal(many.codes, one.codes)
    assert_array_equal(many.alpha, one.alpha)
    assert_array_equal(many.slice_loss.dql, one.slice_loss.dql)


# --- a real offset (zero_point="float") through search_step and quantize --------------------


def test_float_offset_groups_are_exact_and_match_the_brute_force(rng):
    # Groups of 6 at 2 bits: certified, and the loss of the cells' brute force.
    w = rng.standard_normal((3, 12))
    h = rng.random(12) + 0.1
    q = vq.quantize(w, 2, "exact", zero_point="float", group_size=6, weights=h)
    assert np.all(q.info["search"].certified)
    hw = np.broadcast_to(h, w.shape).reshape(-1, 6)
    for r, x in enumerate(w.reshape(-1, 6)):
        _, _, loss, _ = naive.affine_brute(x, hw[r], 4)
        got = float(np.sum(hw[r] * (x - q.values.reshape(-1, 6)[r]) ** 2))
        assert got == pytest.approx(loss, rel=1e-12, abs=1e-15)
    # values are α·u + m with the offset of each group; the loss is vector_loss's.
    u = q.codes.reshape(-1, 6).astype(float)
    expect = q.alpha.reshape(-1, 1) * u + q.offset.reshape(-1, 1)
    np.testing.assert_allclose(q.values.reshape(-1, 6), expect, rtol=0, atol=0)
    assert q.loss.relative_dql == pytest.approx(
        vq.vector_loss(w, q.values, weights=h).relative_dql, rel=1e-12)


def test_float_offset_beats_integer_zero_point_on_thirds():
    # [0.3, 1.3, 2.3] is α = 1, m = 0.3 exactly: loss 0, while m = −z·α cannot be 0.3 with
    # α = 1 (and the integer optimum leaves a positive loss).
    w = np.array([0.3, 1.3, 2.3])
    q = vq.quantize(w, 2, "exact", zero_point="float")
    assert q.loss.dql == pytest.approx(0.0, abs=1e-28)
    assert q.alpha == pytest.approx(1.0) and q.offset == pytest.approx(0.3)
    assert vq.quantize(w, 2, "exact", zero_point="integer").loss.dql > 1e-3


def test_float_offset_long_rows_never_worse_than_integer_or_llama(rng):
    from vecq_ref import format_rules

    w = rng.standard_normal((2, 128)) * np.linspace(0.2, 3, 128)
    q = vq.quantize(w, 4, "exact", zero_point="float", group_size=64)
    assert not np.any(q.info["search"].certified)
    zi = vq.quantize(w, 4, "exact", zero_point="integer", group_size=64)
    assert np.all(q.slice_loss.dql <= zi.slice_loss.dql * (1 + 1e-12))
    qk = format_rules.make_qkx2_quants(w, nmax=15, group_size=64, weights=np.ones_like(w))
    for r, (x, c) in enumerate(zip(w.reshape(-1, 64), qk.codes.reshape(-1, 64), strict=True)):
        _, _, refit = naive.affine_fit(x, None, c)
        assert q.slice_loss.dql.reshape(-1)[r] <= refit * (1 + 1e-12)


def test_float_offset_is_exact_only_and_scale_equivariant(rng):
    with pytest.raises(ValueError, match="`method` must be 'exact' with zero_point='float'"):
        vq.search_step([1.0, 2.0, 3.0], 2, "grid", zero_point="float")
    with pytest.raises(ValueError, match="`signed_scale`"):
        vq.search_step([1.0, 2.0, 3.0], 2, zero_point="float", signed_scale=True)
    w = rng.standard_normal(20)
    a = vq.search_step(w, 3, zero_point="float")
    b = vq.search_step(np.ldexp(w, 40), 3, zero_point="float")
    assert b.alpha == np.ldexp(a.alpha, 40) and b.offset == np.ldexp(a.offset, 40)


def test_affine_fit_matches_twin(rng):
    from vecq_ref._kernels import affine as KA

    x = rng.standard_normal((4, 9))
    h = rng.random((4, 9))
    u = rng.integers(0, 4, size=(4, 9)).astype(float)
    u[3] = 2.0  # constant codes: α = 0, m the weighted mean
    for hs, hrow in ((np.empty((0, 0)), lambda r: None), (h, lambda r: h[r])):
        out = KA.affine_fit(x, hs, u, np.empty((4, 3)))
        for r in range(4):
            np.testing.assert_allclose(out[r], naive.affine_fit(x[r], hrow(r), u[r]),
                                       rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("zp", ["integer", "float"])
def test_zero_point_searches_stop_at_8_bits(zp):
    # 16 bits would build 65536 level sets of 65536 levels (the trial ran out of memory).
    with pytest.raises(ValueError, match="`bits` must be at most 8 with zero_point"):
        quantize(np.arange(32.0), 16, "exact", zero_point=zp)
    with pytest.raises(ValueError, match="`bits` must be at most 8"):
        search_step(np.arange(32.0), 9, "grid" if zp == "integer" else "exact", zero_point=zp)
