"""search_step(): exact, grid, alternating (docs/theory.md §4.2–4.4) against their NumPy twins."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jitcall import jitted
from numpy.testing import assert_allclose, assert_array_equal

from vecq_ref import codes, naive, quantize, search_step
from vecq_ref import search as S
from vecq_ref._kernels import search as K
from vecq_ref.search import StepResult

LATTICE_BITS = [("midrise", k) for k in range(1, 7)] + [("midtread", k) for k in range(2, 7)]


def _dql(w, r):
    return r.relative_dql * float(np.sum(np.asarray(w, dtype=np.float64) ** 2))


def _sample(kind, n, rng):
    if kind == "gaussian":
        return rng.standard_normal(n)
    if kind == "laplace":
        return rng.laplace(size=n)
    if kind == "student3":
        return rng.standard_t(3, n)
    if kind == "uniform":
        return rng.uniform(-1, 1, n)
    if kind == "sparse":
        return rng.standard_normal(n) * (rng.random(n) < 0.3)
    if kind == "duplicates":
        return rng.choice([-1.5, -0.5, 0.25, 0.5, 2.0], n)
    if kind == "equal":
        return 0.3 * rng.choice([-1.0, 1.0], n)
    raise AssertionError(kind)


def _check_against_twin(w, bits, lattice):
    r = search_step(w, bits, lattice=lattice)
    c, step, jo, steps, ratios = naive.exact_search(w, bits, lattice)
    assert_allclose(r.orientation, jo, rtol=1e-9, atol=1e-13)
    mine = codes(w, r.step, bits, lattice)
    best = ratios.max()
    near = steps[ratios >= best - 1e-10 * abs(best)]
    w64 = np.asarray(w, dtype=np.float64).ravel()
    rivals = naive.codes(np.broadcast_to(w64, (near.size, w64.size)), near[:, None], bits,
                         lattice)
    if len(np.unique(rivals, axis=0)) == 1:
        assert_array_equal(mine, c)  # a unique optimum: the very same codes
    assert r.certified
    lo, hi = r.interval
    assert lo < r.step <= hi
    return r


# --- hand-made cases ----------------------------------------------------------------------

@pytest.mark.parametrize(("lattice", "strict"), [("midrise", False), ("midrise", True),
                                                 ("midtread", False)])
@pytest.mark.parametrize("a", [2.0, 3.0, 0.75, 1e-3, 7.0 / 3.0])
@pytest.mark.parametrize("j", [1, 2, 3])
def test_threshold_is_the_last_step_reaching_the_level(lattice, strict, a, j):
    t = jitted(K.threshold)(a, j, strict, lattice == "midtread")
    w = -a if strict else a

    def reached(s):
        c = int(codes([w], s, 4, lattice)[0])
        return (c <= -j - 1) if strict else (abs(c) >= j)

    assert reached(t)
    assert not reached(np.nextafter(t, np.inf))


def test_exact_ties_follow_the_code_convention(algorithm):
    # w = j·s exactly: a positive weight gets code j, a negative one −j (midrise).
    w = np.array([2.0, -2.0, 1.0, -1.0, 0.5])
    for bits in (2, 3):
        r = search_step(w, bits)
        lo, hi = r.interval
        opt = codes(w, r.step, bits)
        assert_array_equal(codes(w, hi, bits), opt)
        if np.isfinite(hi):
            assert not np.array_equal(codes(w, np.nextafter(hi, np.inf), bits), opt)
        assert_array_equal(codes(w, np.nextafter(lo, np.inf), bits), opt)
        if lo > 0:
            assert not np.array_equal(codes(w, lo, bits), opt)
        _check_against_twin(w, bits, "midrise")


def test_all_zero_vector():
    r = search_step(np.zeros(5), 3)
    assert (r.step, r.alpha, r.orientation, r.relative_dql) == (0.0, 0.0, 0.0, 0.0)
    assert r.interval == (0.0, np.inf) and r.certified


def test_one_bit_midrise_is_sign_codes_with_alpha_step():
    w = np.array([0.5, -1.0, 2.0])
    r = search_step(w, 1)
    assert r.interval == (0.0, np.inf) and r.certified
    assert_allclose(r.step, r.alpha)
    assert_allclose(r.alpha, 2 * np.mean(np.abs(w)) / 1.0, rtol=1e-15)


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_constant_and_single_weight_are_exact(lattice):
    for w in ([0.7] * 6, [-2.5], [3.0]):
        r = search_step(w, 3, lattice=lattice)
        assert r.orientation <= 1e-15 and r.relative_dql <= 1e-15 and r.certified
        q = quantize(w, 3, method="exact", lattice=lattice)
        assert_allclose(q.values, w, rtol=1e-15)


@pytest.mark.jit_only
def test_sixteen_bits_small_vector():
    w = np.array([0.3, -1.7, 0.01])
    for lattice in ("midrise", "midtread"):
        _check_against_twin(w, 16, lattice)


@pytest.fixture(params=["branch-and-bound", "sweep", "merged-sweep"])
def algorithm(request, monkeypatch):
    """Pin one of the two exact algorithms (small rows are swept by default), the sweep
    sorting its breakpoints (the default for short rows) or merging them."""
    monkeypatch.setattr(S, "_FORCE_SWEEP", request.param != "branch-and-bound")
    if request.param == "merged-sweep":
        monkeypatch.setattr(S, "_SORT_MAX", -1)
    return request.param


# --- against the brute-force twin ---------------------------------------------------------

KINDS = ["gaussian", "laplace", "student3", "uniform", "sparse", "duplicates", "equal"]


@pytest.mark.parametrize(("lattice", "bits"), LATTICE_BITS)
@pytest.mark.parametrize("kind", KINDS)
def test_exact_equals_brute_force(lattice, bits, kind, algorithm, rng):
    for n in (1, 2, 9, 40):
        _check_against_twin(_sample(kind, n, rng), bits, lattice)


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_exact_float32_equals_brute_force(lattice, algorithm, rng):
    w = rng.standard_normal(50).astype(np.float32)
    r = _check_against_twin(w, 4, lattice)
    assert_array_equal(codes(w, r.step, 4, lattice),
                       naive.exact_search(w, 4, lattice)[0])


def test_certificate(algorithm, rng):
    w = rng.standard_t(3, 200)
    for bits in (2, 3, 4):
        r = search_step(w, bits)
        lo, hi = r.interval
        assert lo < r.alpha <= hi  # Lloyd self-consistency
        assert_array_equal(codes(w, r.alpha, bits), codes(w, r.step, bits))
        grid = search_step(w, bits, method="grid", num=300)
        param = search_step(w, bits, method="param")
        assert r.orientation <= grid.orientation * (1 + 1e-12)
        assert r.orientation <= param.orientation * (1 + 1e-12)
        # every grid candidate, one by one
        lams = np.linspace(0.001, 3.0, 300) * np.std(w)
        ratios, _ = naive._ratios(w, lams, bits, "midrise")
        assert naive._orientation(w, ratios.max()) >= r.orientation * (1 - 1e-12)


# --- grid and alternating against their twins ---------------------------------------------

@pytest.mark.parametrize(("lattice", "bits"), [("midrise", 2), ("midrise", 4), ("midtread", 3)])
def test_grid_matches_twin(lattice, bits, rng):
    w = rng.laplace(size=300)
    r = search_step(w, bits, method="grid", lattice=lattice, lo=0.01, hi=2.5, num=200)
    step, jo, _ = naive.grid_search(w, bits, lattice, lo=0.01, hi=2.5, num=200)
    assert_allclose(r.step, step, rtol=1e-12)
    assert_allclose(r.orientation, jo, rtol=1e-9)
    assert r.evaluations == 200 and not r.certified and r.interval is None


@pytest.mark.parametrize(("lattice", "bits"), [("midrise", 2), ("midrise", 5), ("midtread", 3)])
@pytest.mark.parametrize("init", ["max", "sigma", 0.05])
def test_alternating_matches_twin(lattice, bits, init, rng):
    w = rng.standard_normal(500)
    r = search_step(w, bits, method="alternating", lattice=lattice, init=init)
    if init == "max":
        alpha0 = None
    elif init == "sigma":
        from vecq_ref import optimal_step
        alpha0 = optimal_step(bits, lattice) * np.std(w)
    else:
        alpha0 = init
    c, step, it = naive.alternating_search(w, bits, lattice, alpha0)
    assert_allclose(r.step, step, rtol=1e-12)
    assert_array_equal(codes(w, r.step, bits, lattice), c)
    assert r.iterations == it == r.evaluations


def test_alternating_max_iter_stops(rng):
    w = rng.standard_normal(1000)
    r = search_step(w, 6, method="alternating", max_iter=2)
    assert r.iterations == 2


# --- properties ---------------------------------------------------------------------------

@given(st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=40),
       st.integers(2, 5), st.sampled_from(["midrise", "midtread"]))
@example([96.25, 96.328125], 2, "midrise")  # equal directions, unequal rounding
def test_exact_is_never_worse(ws, bits, lattice):
    w = np.array(ws, dtype=np.float64)
    ex = search_step(w, bits, lattice=lattice)
    assert ex.certified
    S._FORCE_SWEEP = False
    try:
        bb = search_step(w, bits, lattice=lattice)
    finally:
        S._FORCE_SWEEP = None
    assert bb.certified
    assert_allclose(bb.orientation, ex.orientation, rtol=1e-9, atol=1e-15)
    for other in (search_step(w, bits, method="grid", lattice=lattice, num=100),
                  search_step(w, bits, method="param", lattice=lattice),
                  search_step(w, bits, method="alternating", lattice=lattice)):
        # DQL is a difference of sums of size ‖w‖²: compare to that absolute precision.
        assert _dql(w, ex) <= _dql(w, other) * (1 + 1e-9) + 1e-12 * float(w @ w) + 1e-300


# --- large vectors ------------------------------------------------------------------------

@pytest.mark.jit_only
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_large_gaussian_exact_step_near_param(bits, rng):
    w = rng.standard_normal(1 << 17)
    ex = search_step(w, bits)
    pa = search_step(w, bits, method="param")
    assert abs(ex.step / pa.step - 1) < 0.01
    assert ex.relative_dql <= pa.relative_dql


@pytest.mark.jit_only
@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_heavy_tails_exact_strictly_better_than_param(lattice, rng):
    w = rng.standard_t(3, 1 << 15)
    ex = search_step(w, 4, lattice=lattice)
    pa = search_step(w, 4, method="param", lattice=lattice)
    assert ex.relative_dql < pa.relative_dql * (1 - 1e-3)


# --- per channel / group ------------------------------------------------------------------

FIELDS = ("step", "alpha", "orientation", "relative_dql", "evaluations", "certified")


@pytest.mark.parametrize("method", ["exact", "grid", "alternating"])
def test_per_channel_equals_per_slice(method, rng):
    w = rng.standard_t(4, (5, 3, 8)).astype(np.float32)
    opts = {"num": 50} if method == "grid" else {}
    r = search_step(w, 3, method=method, axis=1, **opts)
    assert r.step.shape == (3,)
    for i in range(3):
        one = search_step(w[:, i, :], 3, method=method, **opts)
        for f in FIELDS:
            assert getattr(r, f)[i] == getattr(one, f), f
        if method == "exact":
            assert tuple(r.interval[i]) == one.interval
    g = search_step(w, 3, method=method, group_size=4, **opts)
    assert g.step.shape == (5, 3, 2)
    one = search_step(w[2, 1, 4:], 3, method=method, **opts)
    assert g.step[2, 1, 1] == one.step and g.orientation[2, 1, 1] == one.orientation


@pytest.mark.jit_only
def test_bit_identical_for_any_thread_count(rng):
    import numba

    w = rng.standard_normal((16, 3000))
    a = search_step(w, 4, axis=0)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = search_step(w, 4, axis=0)
    finally:
        numba.set_num_threads(old)
    for f in FIELDS:
        assert_array_equal(getattr(a, f), getattr(b, f))
    assert_array_equal(a.interval, b.interval)


# --- quantize end to end ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["exact", "grid", "alternating"])
@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_quantize_uses_the_search(method, lattice, rng):
    w = rng.laplace(size=(4, 64))
    q = quantize(w, 3, method=method, lattice=lattice)
    r = q.info["search"]
    assert isinstance(r, StepResult)
    assert_array_equal(q.codes, codes(w, r.step, 3, lattice))
    assert_allclose(q.alpha, r.alpha, rtol=1e-12)
    assert_allclose(q.loss.relative_dql, r.relative_dql, rtol=1e-9)
    qa = quantize(w, 3, method=method, lattice=lattice, axis=0)
    assert_array_equal(qa.codes, codes(w, qa.info["search"].step, 3, lattice, axis=0))


def test_quantize_exact_beats_param(rng):
    w = rng.standard_t(3, 2000)
    assert (quantize(w, 3, method="exact").loss.dql
            <= quantize(w, 3, method="param").loss.dql)


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "exc", "name"), [
    ({"method": "newton"}, ValueError, "`method`"),
    ({"method": 3}, TypeError, "`method`"),
    ({"method": "grid", "lo": -1.0}, ValueError, "`lo`"),
    ({"method": "grid", "lo": 2.0, "hi": 1.0}, ValueError, "`hi`"),
    ({"method": "grid", "hi": float("nan")}, ValueError, "`hi`"),
    ({"method": "grid", "num": 0}, ValueError, "`num`"),
    ({"method": "grid", "num": 2.5}, TypeError, "`num`"),
    ({"method": "alternating", "init": "median"}, ValueError, "`init`"),
    ({"method": "alternating", "init": -1.0}, ValueError, "`init`"),
    ({"method": "alternating", "init": [1.0]}, TypeError, "`init`"),
    ({"method": "alternating", "max_iter": 0}, ValueError, "`max_iter`"),
    ({"method": "exact", "num": 10}, TypeError, "`options`"),
    ({"method": "grid", "init": "max"}, TypeError, "`options`"),
    ({"bits": 17}, ValueError, "`bits`"),
    ({"bits": 1, "lattice": "midtread"}, ValueError, "`bits`"),
    ({"lattice": "odd"}, ValueError, "`lattice`"),
    ({"axis": 3}, ValueError, "`axis`"),
    ({"group_size": 3}, ValueError, "`group_size`"),
])
def test_bad_input(kwargs, exc, name):
    kwargs = {"bits": 3, **kwargs}
    with pytest.raises(exc, match=name):
        search_step(np.ones((2, 4)), **kwargs)


@pytest.mark.parametrize("w", [[1.0, np.nan], [], [np.inf]])
def test_bad_weights(w):
    with pytest.raises(ValueError, match="`w`"):
        search_step(w, 3)


def test_input_not_modified(rng):
    w = rng.standard_normal(100)
    before = w.copy()
    search_step(w, 4)
    assert_array_equal(w, before)


# --- command line -------------------------------------------------------------------------

def test_cli_search(tmp_path, capsys, rng):
    import json

    from vecq_ref.cli import main

    path = tmp_path / "w.npy"
    w = rng.standard_normal((3, 40))
    np.save(path, w)
    assert main(["search", str(path), "--bits", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = search_step(w, 3)
    assert out["step"] == r.step and out["certified"] is True
    assert main(["search", str(path), "--bits", "2", "--method", "grid", "--axis", "0"]) == 0
    assert "relative_dql" in capsys.readouterr().out
    assert main(["search", str(path), "--bits", "17"]) == 2


@pytest.mark.parametrize("shape", [(1, 9), (2, 5), (7, 33)])
def test_sorted_rows_equal_np_sort(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0] = np.nan
    assert_array_equal(S._sorted_rows(x), np.sort(x, axis=1))


def _awkward_row(rng, n, dtype):
    """Gaussian values with ±0, NaN, ±Inf, ties and a long run of one value."""
    x = rng.standard_normal(n).astype(dtype)
    x[::7] = 0.0
    x[3::11] = -0.0
    x[5::13] = np.nan
    x[6::17] = np.inf
    x[8::19] = -np.inf
    x[n // 3:n // 3 + n // 10] = x[n // 2]
    return x


def _same_sorted(got, want):
    """Equal to NumPy's sort value for value, NaN included, and bit for bit but for the sign
    of zeros: NumPy's own SIMD sort does not keep it (``np.sort`` of float32 ``[-0.0, …]``
    may return ``+0.0``), so neither can a comparison with it."""
    assert_array_equal(got, want)
    nz = (want != 0) & ~np.isnan(want)
    assert got[nz].tobytes() == want[nz].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 9, 1000, 4099])
@pytest.mark.parametrize("k", [2, 3, 4, 16])
def test_parallel_sort_equals_np_sort(rng, dtype, n, k):
    x = _awkward_row(rng, n, dtype)
    before = x.copy()
    out, out64 = np.empty_like(x), np.empty(n)
    S._parallel_sort(x, out, out64, k)
    _same_sorted(out, np.sort(x))
    _same_sorted(out64, np.sort(x).astype(np.float64))
    assert_array_equal(x, before)  # the input is never modified


def test_parallel_sort_all_equal_and_presorted(rng):
    for x in (np.zeros(500), np.full(500, np.nan), np.arange(500.0), np.arange(500.0)[::-1],
              np.repeat([-0.0, 0.0], 250)):
        out = np.empty_like(x)
        S._parallel_sort(x, out, None, 4)
        _same_sorted(out, np.sort(x))


def test_merge_runs_matches_its_twin(rng):
    from vecq_ref._kernels.sort import merge_runs

    src = _awkward_row(rng, 300, np.float64)
    bounds = np.array([[0, 40], [40, 41], [41, 41], [41, 200], [200, 300]])
    for b in bounds:
        src[b[0]:b[1]].sort()
    out = np.empty(300)
    merge_runs(src, bounds, out, np.empty(0))
    _same_sorted(out, naive.merge_runs(src, bounds))


@pytest.mark.parametrize("threads", [1, 2])
def test_sorted_rows_many_threads_equal_np_sort(rng, monkeypatch, threads):

    monkeypatch.setattr(S, "_PSORT_MIN", 16)
    monkeypatch.setattr(S, "num_threads", lambda size: 4 * threads)
    calls = []
    real = S._parallel_sort
    monkeypatch.setattr(S, "_parallel_sort", lambda *a: calls.append(a) or real(*a))
    for dtype in (np.float32, np.float64):
        calls.clear()
        x = np.stack([_awkward_row(rng, 999, dtype) for _ in range(threads)])
        before = x.copy()
        xd = S._sorted_rows(x, wide=True)  # float32: sorted in the halves of the float64 rows
        assert len(calls) == threads  # each row by the parallel sort
        assert xd.dtype == np.float64
        for r in range(threads):
            _same_sorted(xd[r], np.sort(x[r]).astype(np.float64))
        assert_array_equal(x, before)
        _same_sorted(S._sorted_rows(x)[0], np.sort(x[0]))


@pytest.mark.jit_only  # three searches of 5000 weights per case: minutes as plain Python
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_exact_search_same_with_parallel_sort(rng, monkeypatch, bits, lattice):
    # The parallel sort is exact, so every field of the search result is bit-identical.
    w = rng.standard_normal(5000).astype(np.float32)
    w[::9] = 0.0
    w[1::10] = -0.0
    for method in ("exact", "grid", "alternating"):
        serial = search_step(w, bits, method=method, lattice=lattice)
        monkeypatch.setattr(S, "_PSORT_MIN", 16)
        monkeypatch.setattr(S, "num_threads", lambda size: 3)
        parallel = search_step(w, bits, method=method, lattice=lattice)
        monkeypatch.undo()
        for f in ("step", "alpha", "orientation", "relative_dql", "evaluations", "certified",
                  "interval", "iterations"):
            assert np.asarray(getattr(parallel, f)).tobytes() == \
                np.asarray(getattr(serial, f)).tobytes(), (method, f)


def test_nonzeros_of_sorted_rows_by_search_and_by_count(rng):
    # -0.0 is a zero; few rows use two binary searches, many rows count: both agree.
    from vecq_ref._kernels.search import _nonzeros

    x = np.sort(np.array([[-1.0, -0.0, 0.0, 0.0, 2.0, 3.0], [0.0] * 6,
                          [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]), axis=1)
    assert _nonzeros(x).tolist() == [3, 0, 6]
    many = np.sort(rng.integers(-2, 3, (100, 7)).astype(np.float64), axis=1)
    many[many == 0] = np.where(rng.random(np.count_nonzero(many == 0)) < 0.5, -0.0, 0.0)
    many = np.sort(many, axis=1)
    assert _nonzeros(many).tolist() == np.count_nonzero(many, axis=1).tolist()
    assert _nonzeros(many[:5]).tolist() == np.count_nonzero(many[:5], axis=1).tolist()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1000, 4097])
def test_stable_order_is_numpys_stable_argsort(rng, n):
    # The sweep's own merge sort: the stable permutation, ties (many here) in index order.
    keys = rng.integers(0, max(1, n // 8), n).astype(np.float64) * 0.375
    assert_array_equal(jitted(K._stable_order)(keys), np.argsort(keys, kind="stable"))
    assert_array_equal(jitted(K._stable_order)(keys[::-1].copy()),
                       np.argsort(keys[::-1], kind="stable"))


# --- high bitwidths: time and memory bounded (issue 20) -----------------------------------

def _brute_ratio(w, bits):
    """The largest S1²/S2 over every state, midrise, in plain NumPy: every weight's
    thresholds ``|w|/j`` sorted and crossed from the largest down, each crossing of level j
    adding ``|w|`` to S1 = Σ|w||v| and ``2j`` to S2 = Σv² (levels ``c + ½``); the first state
    (no crossing) is the sign codes, S1 = ½Σ|w|, S2 = N/4. Sums in long double: millions of
    crossings, each state's sums within ≈ 1e-13 (relative) on x86-64."""
    a = np.abs(np.asarray(w, dtype=np.float64))
    a = a[a > 0]
    j = np.arange(1, 2 ** (bits - 1), dtype=np.float64)
    t = (a[:, None] / j[None, :]).ravel()
    order = np.argsort(-t, kind="stable")
    big = np.longdouble
    s1 = big(0.5) * a.sum(dtype=big) + np.cumsum(
        np.broadcast_to(a[:, None], (a.size, j.size)).ravel()[order], dtype=big)
    s2 = big(np.asarray(w).size / 4) + np.cumsum(
        np.broadcast_to(2 * j, (a.size, j.size)).ravel()[order], dtype=big)
    # Only the states after the last crossing of a group of equal thresholds exist.
    last = np.append(t[order][1:] != t[order][:-1], True)
    return max(0.5 * a.sum() ** 2 / np.asarray(w).size, float(np.max(s1[last] ** 2 / s2[last])))


def _ratio_of(w, r, bits):
    v = codes(w, r.step, bits).astype(np.float64) + 0.5
    return float(np.abs(w) @ np.abs(v)) ** 2 / float(v @ v)


_LIMITED = r"""
import json, resource, sys
import numpy as np
import vecq_ref as vq
from vecq_ref import search as S
vq.search_step(np.arange(1.0, 9.0), 14)  # compile both sweeps and the branch and bound first
vq.search_step(np.linspace(-1, 1, 3000), 14)
S._SORT_MAX = -1
vq.search_step(np.arange(1.0, 9.0), 14)
S._SORT_MAX = 1 << 21
with open("/proc/self/statm") as f:
    size = int(f.read().split()[0]) * resource.getpagesize()
limit = size + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
out = []
for bits, n, kind in json.loads(sys.argv[2]):
    w = (np.random.default_rng(n).standard_normal(n) if kind == "gauss" else np.full(n, 0.7))
    r = vq.search_step(w, bits)
    out.append([r.step, r.alpha, r.orientation, r.evaluations, bool(r.certified)])
print(json.dumps(out))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm") or np.finfo(np.longdouble).eps > 1e-18,
                    reason="needs Linux /proc and an extended long double (brute force)")
@pytest.mark.jit_only  # millions of breakpoints
def test_fourteen_to_sixteen_bits_fit_under_an_address_space_limit():
    # Before: 72 N(0,1) weights took 27 s and 4.4 GB at 16 bits, 2.2 GB at 14; a constant
    # vector grew to 17 GB (one 2M-index state per level of the branch and bound's stack).
    # Now each case runs within 1.5 GB above the child's size, in seconds.
    cases = [[14, 72, "gauss"], [15, 72, "gauss"], [16, 72, "gauss"],
             [14, 72, "const"], [16, 72, "const"], [14, 5000, "const"]]
    proc = subprocess.run([sys.executable, "-c", _LIMITED, str(3 << 29), json.dumps(cases)],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for (bits, n, kind), (step, alpha, orient, evals, certified) in zip(
            cases, json.loads(proc.stdout), strict=True):
        w = np.random.default_rng(n).standard_normal(n) if kind == "gauss" else np.full(n, 0.7)
        assert certified, (bits, n, kind)
        r = StepResult(step, alpha, orient, None, evals, certified, bits=bits)
        if kind == "gauss":
            # The certified optimum is the brute force's, to rounding.
            best = _brute_ratio(w, bits)
            assert _ratio_of(w, r, bits) >= best * (1 - 1e-12)
            # J_o = 1 − cos, cos² = r/‖w‖².
            assert_allclose(1 - np.sqrt(_ratio_of(w, r, bits) / float(w @ w)), orient,
                            rtol=1e-5, atol=1e-14)
        else:
            # A constant vector: every code vector is parallel to w, J_o = 0 exactly, and
            # α·v reproduces w.
            assert orient <= 1e-15
            v = codes(w, step, bits).astype(np.float64) + 0.5
            assert_allclose(alpha * v, w, rtol=1e-14)


def test_brute_ratio_by_hand():
    # w = [3, -1], 2 bits (M = 2, one level j = 1): thresholds 3 and 1. Above 3: sign codes,
    # v = [½, -½], S1 = 2, S2 = ½, r = 8. Between 1 and 3: v = [3/2, -½], S1 = 5, S2 = 5/2,
    # r = 10. Below 1: v = [3/2, -3/2], S1 = 6, S2 = 9/2, r = 8. The best: 10.
    assert _brute_ratio([3.0, -1.0], 2) == pytest.approx(10.0)
    r = search_step([3.0, -1.0], 2)
    assert _ratio_of(np.array([3.0, -1.0]), r, 2) == pytest.approx(10.0)


@pytest.mark.parametrize("bits", [3, 8, 11])
@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
@pytest.mark.parametrize("kind", ["gaussian", "duplicates", "equal", "tiny"])
def test_merged_sweep_is_the_sorted_sweep_bit_for_bit(monkeypatch, rng, bits, lattice, kind):
    # Long swept rows merge each weight's descending thresholds (O(N) memory) instead of
    # sorting all of them: same steps, α, intervals and evaluations, ties included (equal
    # thresholds are summed in the same order). "tiny": subnormal magnitudes, where one
    # weight's thresholds of neighbouring levels can be equal.
    n = 40
    w = (rng.integers(-30, 30, n) * 5e-324 if kind == "tiny" else _sample(kind, n, rng))
    monkeypatch.setattr(S, "_FORCE_SWEEP", True)
    sorted_ = search_step(w, bits, lattice=lattice)
    monkeypatch.setattr(S, "_SORT_MAX", -1)
    merged = search_step(w, bits, lattice=lattice)
    for f in ("step", "alpha", "interval", "evaluations", "certified", "orientation"):
        assert getattr(merged, f) == getattr(sorted_, f), f


@pytest.mark.parametrize(("bits", "n", "kind"), [(4, 20000, "gaussian"), (9, 3000, "student3"),
                                                 (11, 400, "equal"), (10, 2000, "duplicates")])
def test_branch_and_bound_with_few_states_held_is_the_same(monkeypatch, rng, bits, n, kind):
    # With at most 8 states held (instead of 64 MB worth) the oldest ranges of the stack
    # give theirs back and get them recomputed when popped: the same search, bit for bit.
    w = _sample(kind, n, rng)
    monkeypatch.setattr(S, "_FORCE_SWEEP", False)
    full = search_step(w, bits, lattice="midrise")
    monkeypatch.setattr(S, "_STATE_BYTES", 0)
    assert S._max_states(bits) == 8
    few = search_step(w, bits, lattice="midrise")
    for f in ("step", "alpha", "interval", "evaluations", "certified", "orientation"):
        assert getattr(few, f) == getattr(full, f), f
    assert full.evaluations > 8  # more states than held: some were given back


def test_search_that_cannot_fit_raises_before_allocating(monkeypatch):
    # 1000 weights at 16 bits need at least 16·M·8 = 4 MiB of states; with 1 MiB left:
    monkeypatch.setattr(S, "_available_bytes", lambda: 1 << 20)
    w = np.linspace(-1, 1, 1000)
    with pytest.raises(ValueError, match=r"`w` must be small enough for method='exact' at "
                                         r"bits=16: its search needs about \d+ MiB, more than "
                                         r"the 1 MiB"):
        search_step(w, 16)
    assert S._search_bytes(w[None], 16, "exact") > 16 * 2 ** 15 * 8
    monkeypatch.setattr(S, "_available_bytes", lambda: None)  # unknown: no check
    assert search_step(w[:5], 16).certified


def test_available_bytes_reads_the_address_space_limit():
    avail = S._available_bytes()
    assert avail is None or avail > 0


@pytest.mark.jit_only
def test_cli_search_sixteen_bits(tmp_path, capsys):
    from vecq_ref.cli import main

    path = tmp_path / "w.npy"
    w = np.random.default_rng(3).standard_normal(72)
    np.save(path, w)
    assert main(["search", str(path), "--bits", "16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["certified"] is True
    assert out["step"] == search_step(w, 16).step


@pytest.mark.jit_only  # 2**16 levels
@settings(max_examples=25)
@given(st.lists(st.sampled_from([0.0, 0.7, -0.7, 1e-3, -2.5, 3.0, 1e-300, 5e-324, 1e300]),
                min_size=1, max_size=6)
       | st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=6),
       st.integers(12, 16))
def test_fuzz_high_bits_few_or_equal_weights(ws, bits):
    # Few, equal, zero, tiny and huge weights at 12–16 bits: answered at once, certified,
    # the sorted and the merged sweep bit-identical, and no state better (brute force).
    w = np.array(ws)
    r = search_step(w, bits)
    assert r.certified and np.isfinite(r.step) and r.step >= 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, "_SORT_MAX", -1)
        merged = search_step(w, bits)
    assert (merged.step, merged.alpha, merged.evaluations) == (r.step, r.alpha, r.evaluations)
    if np.any(w != 0) and np.all((np.abs(w) > 1e-200) | (w == 0)) and np.all(np.abs(w) < 1e200):
        assert _ratio_of(w, r, bits) >= _brute_ratio(w, bits) * (1 - 1e-12)


def test_widen_in_place_from_the_upper_half(monkeypatch):
    # n = 10 float32 values in bytes 40…80 of a 10-float64 buffer, widened in blocks of 3:
    # block [a, b) writes bytes [8a, 8b), its source starts at 40 + 4a: the last blocks overlap.
    monkeypatch.setattr(S, "_WIDEN_BLOCK", 3)
    buf = np.empty(10)
    half = buf.view(np.float32)
    half[10:] = np.arange(10, dtype=np.float32) / 3
    S._widen(buf, half[10:])
    assert_array_equal(buf, (np.arange(10, dtype=np.float32) / 3).astype(np.float64))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 17, 100])
def test_suffix_checkpoints_give_every_suffix_sum(rng, n):
    # Every Q[p] from the checkpoints equals the full compensated table (its twin here, the
    # loop of TwoSum additions from the end), bit for bit, Q[n] = 0 included.
    from vecq_ref._kernels import search as KS

    a = np.sort(np.abs(rng.standard_normal(n) * 10.0 ** rng.integers(-5, 5, n)))
    want = np.zeros(n + 1)
    hi = lo = 0.0
    for i in range(n - 1, -1, -1):
        t = hi + a[i]
        bb = t - hi
        lo += (hi - (t - bb)) + (a[i] - bb)
        hi = t
        want[i] = hi + lo
    Q = jitted(KS._suffix)(a, np.empty(KS.suffix_len(n)))
    got = np.array([KS._q(a, Q, p) for p in range(n + 1)])
    assert got.tobytes() == want.tobytes()
