"""Portable bits (issue #11): the same codes, α, step and loss on every CPU and at every scale.

* The kernels' float64 sums follow the order of their NumPy twins exactly (bit for bit).
* A fixed battery hashes the same under ``NUMBA_CPU_NAME=generic`` as on the host.
* Scaling ``w`` by any power of two ``2**e`` (exact in floating point) leaves every public
  function's codes unchanged and scales α, step and the losses exactly.
* The inputs quoted in the issue, by hand.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jitcall import jitted
from numpy.testing import assert_array_equal

import vecq_ref as vq
from vecq_ref import _validation as V
from vecq_ref import baselines as B
from vecq_ref import naive
from vecq_ref._kernels import CHUNK, LANES
from vecq_ref._kernels import lattice as KL
from vecq_ref._kernels import reduce as KR

HERE = Path(__file__).parent

# --- the kernels' summation order is the twins' ---------------------------------------------

SIZES = [0, 1, 7, 63, 64, 65, 200, 1000, 4097]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_span_sums_follow_the_twin_order_bit_for_bit(rng, n, dtype):
    x = (rng.standard_normal(n) * 3 + 1).astype(dtype)
    assert jitted(KR._span_sum)(x) == naive.lane_sum(x)
    assert jitted(KR._span_sq_dev)(x, 0.25) == naive.lane_sum((x.astype(np.float64) - 0.25) ** 2)
    codes = rng.integers(-4, 4, n).astype(np.int8)
    for lattice, off in (("midrise", 0.5), ("midtread", 0.0)):
        got = jitted(KL._span_sums)(x, codes, 0.37, off)
        assert got == naive.span_sums(x, codes, 0.37, lattice)


@pytest.mark.jit_only  # with the JIT off a helper is the plain function
def test_helpers_refuse_calls_from_python():
    # Compiled without a Python entry point, a helper called from Python must raise, not crash.
    with pytest.raises(TypeError, match="_span_sum is a kernel helper"):
        KR._span_sum(np.ones(3))
    assert jitted(KR._span_sum)(np.ones(3)) == 3.0


def test_lane_order_is_not_the_sequential_one():
    # The twin is not trivially a plain sum: 1 + 2**-53·(many) depends on the order.
    x = np.r_[1.0, np.full(LANES * 4 - 1, 2.0 ** -53)]
    seq = 0.0
    for v in x:
        seq += v
    assert seq == 1.0 and naive.lane_sum(x) > 1.0 and jitted(KR._span_sum)(x) == naive.lane_sum(x)


def test_pair_sums_and_extent_match_twins(rng):
    x = rng.standard_normal(CHUNK + 999)
    y = np.round(x * 3) / 3
    assert_array_equal(KR.pair_sums(x, y, 0.7), naive.pair_sums(x, y, 0.7))
    x[5] = 0.0
    x[17] = -1e-300
    assert KR.abs_extent(x) == naive.abs_extent(x)
    x[3] = np.nan
    assert KR.abs_extent(x)[2] == 1.0
    assert KR.abs_extent(np.zeros(5)) == (np.inf, 0.0, 0.0)


def test_row_moments_merge_chunks_in_order(rng):
    x = rng.standard_normal((2, 2 * CHUNK + 5)) + 100.0
    m = KR.row_moments(x)
    np.testing.assert_allclose(m, naive.row_moments(x), rtol=1e-12)


# --- the same bytes on a generic CPU and on the host ----------------------------------------

def _battery(tmp_path, cpu_name):
    """Start the battery in a subprocess; ``cpu_name=None`` is the host with Numba's default
    cache (warm from the rest of the suite), ``"generic"`` a baseline x86-64 CPU with a cache
    folder of its own, so no machine code compiled for the host can be reused."""
    env = dict(os.environ)
    env.pop("NUMBA_CPU_NAME", None)
    env.pop("NUMBA_CPU_FEATURES", None)
    if cpu_name:
        env["NUMBA_CACHE_DIR"] = str(tmp_path / f"numba-cache-{cpu_name}")
        env["NUMBA_CPU_NAME"] = cpu_name
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, str(HERE / "portable_battery.py"),
                             str(HERE / "golden")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _hashes(proc):
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.jit_only
def test_generic_cpu_and_host_give_identical_bytes(tmp_path):
    runs = [_battery(tmp_path, "generic"), _battery(tmp_path, None)]  # both at once
    generic, host = (_hashes(p) for p in runs)
    assert len(host) >= 38 and set(host) == set(generic)
    differ = sorted(k for k in host if host[k] != generic.get(k))
    assert not differ, f"outputs differ between NUMBA_CPU_NAME=generic and the host: {differ}"


# --- scale equivariance over the whole float64 range ----------------------------------------

def _scaled(w, e):
    """2**e·w when that is exact (finite, no bits lost), else None."""
    with np.errstate(over="ignore", under="ignore"):
        x = np.ldexp(w, e)
    if not np.all(np.isfinite(x)) or not np.array_equal(np.ldexp(x, -e), w):
        return None
    return x


def _same_scaled(a, b, e, power=1):
    """b == 2**(power·e)·a exactly wherever both are normal floats (else both rounded)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert not np.any(np.isnan(b))
    with np.errstate(over="ignore", under="ignore"):
        expect = np.ldexp(a, power * e)
    tiny = np.finfo(np.float64).tiny
    ok = (np.abs(expect) >= tiny) & np.isfinite(expect) & (np.abs(a) >= tiny)
    assert_array_equal(b[ok], expect[ok])


# Each example runs every public function twice: fewer than the profile's default.
_FEW = settings(max_examples=min(25, settings.default.max_examples))

weights = st.integers(2, 24).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-8, 8, allow_nan=False, width=32), min_size=n, max_size=n),
    st.integers(-1070, 1020), st.integers(-1100, 1100)))


def _normal_outputs(*arrays):
    """True when every nonzero |w| is far enough from the subnormals and the float64 maximum
    that α, the values and the squared losses of every method are normal floats: only then is
    the equivariance of returned values (and losses computed from them) exact."""
    mags = np.abs(np.concatenate([np.ravel(a) for a in arrays]))
    mags = mags[mags > 0]
    return bool(mags.size) and mags.min() >= 2.0 ** -960 and mags.max() <= 2.0 ** 1000


def _vector(data):
    values, m, e = data
    w = np.ldexp(np.asarray(values, dtype=np.float64), m)
    assume(np.all(np.isfinite(w)) and np.any(w != 0))
    assume(np.array_equal(np.ldexp(w, -m), np.asarray(values, dtype=np.float64)))
    x = _scaled(w, e)
    assume(x is not None)
    return w, x, e


@_FEW
@given(weights, st.sampled_from(["param", "exact", "grid", "alternating"]),
       st.sampled_from(["midrise", "midtread"]), st.integers(2, 4))
def test_quantize_and_search_are_scale_equivariant(data, method, lattice, bits):
    w, x, e = _vector(data)
    opts = {"num": 50} if method == "grid" else {}
    a = vq.quantize(w, bits, method, lattice, **opts)
    b = vq.quantize(x, bits, method, lattice, **opts)
    assert_array_equal(a.codes, b.codes)
    _same_scaled(a.alpha, b.alpha, e)
    _same_scaled(a.step, b.step, e)
    _same_scaled(a.loss.dql, b.loss.dql, e, 2)
    assert a.loss.relative_dql == b.loss.relative_dql
    assert a.loss.orientation == b.loss.orientation
    assert_array_equal(vq.codes(w, a.step, bits, lattice) if a.step > 0 else a.codes, a.codes)
    if method != "param":
        sa, sb = vq.search_step(w, bits, method, lattice, **opts), \
            vq.search_step(x, bits, method, lattice, **opts)
        _same_scaled(sa.step, sb.step, e)
        _same_scaled(sa.alpha, sb.alpha, e)
        assert sa.relative_dql == sb.relative_dql


@_FEW
@given(weights)
def test_codes_losses_alpha_and_baselines_are_scale_equivariant(data):
    w, x, e = _vector(data)
    step = float(np.max(np.abs(w))) / 3
    xstep = float(np.ldexp(step, e))
    if np.ldexp(xstep, -e) == step and xstep > 0 and np.isfinite(xstep):
        assert_array_equal(vq.codes(w, step, 3), vq.codes(x, xstep, 3))
    wq = np.round(w * 0.75)
    xq = _scaled(wq, e)
    if xq is not None:
        la, lb = vq.vector_loss(w, wq), vq.vector_loss(x, xq)
        assert la.relative_dql == lb.relative_dql and la.orientation == lb.orientation
        _same_scaled(la.dql, lb.dql, e, 2)
        assert not np.isnan([lb.dql, lb.relative_dql, lb.orientation, lb.excess]).any()
    v = np.where(w < 0, -0.5, 0.5)
    _same_scaled(vq.optimal_alpha(w, v), vq.optimal_alpha(x, v), e)
    for name, fn in B.BASELINES.items():
        if name == "dorefa":  # tanh(w): not scale-equivariant by design
            continue
        bits = {"bwn": 1, "twn": 2}.get(name, 2)
        # μL2Q's released code adds an absolute 1e-7 (weight units) to the divisor, like the
        # paper's step: only its eps-free formula can be scale-equivariant.
        opts = {"eps": 0.0} if name == "ul2q" else {}
        a, b = fn(w, bits, **opts), fn(x, bits, **opts)
        assert_array_equal(a.codes, b.codes, err_msg=name)
        if not np.isnan(a.alpha):
            _same_scaled(a.alpha, b.alpha, e)
        if _normal_outputs(w, x):  # else the returned values are rounded subnormals
            assert a.loss.relative_dql == b.loss.relative_dql, name
        assert not np.isnan(b.loss.relative_dql), name


@_FEW
@given(weights)
def test_compare_and_verify_are_scale_equivariant(data):
    w, x, e = _vector(data)
    methods = ["vecq_param", "vecq_exact", "bwn", "twn", "absmax", "lloyd_max"]
    # The baselines' losses are of the values returned, exact only when those are normal.
    assume(_normal_outputs(w, x))
    ra, rb = vq.compare(w, bits=[1, 2], methods=methods), vq.compare(x, bits=[1, 2],
                                                                      methods=methods)
    assert [(r["method"], r["rank"], r["relative_dql"]) for r in ra] == \
        [(r["method"], r["rank"], r["relative_dql"]) for r in rb]
    q = vq.quantize(w, 2)
    xv = _scaled(q.values, e)
    if xv is not None:
        a, b = vq.verify(w, q.values, bits=2), vq.verify(x, xv, bits=2)
        assert a.passed == b.passed and a.relative_dql == b.relative_dql
        assert_array_equal(a.codes, b.codes)
        assert b.alpha == np.ldexp(a.alpha, e)
        assert not np.isnan([b.relative_dql, b.alpha_rel_dev, b.excess_relative_dql]).any()


# --- the inputs, by hand -------------------------------------------------------------

W = np.array([0.3, -1.2, 0.8, 2.1, -0.4, -0.9, 1.5, 0.05, -2.2, 0.6])


def test_verify_near_the_ends_of_the_float64_range():
    # 2**600·W: ‖w‖² ≈ 2**1203.6 overflows float64, so verify works at 2**k·w (k = −599 by
    # scale_exponent's centring rule) and scales α back exactly; 2**-1000·W is normal.
    ref = vq.verify(W, vq.quantize(W, 3).values, bits=3)
    for e, k in [(600, -599), (-1000, 1001)]:
        x = np.ldexp(W, e)
        rep = vq.verify(x, vq.quantize(x, 3).values, bits=3)
        assert rep.passed and ref.passed
        assert_array_equal(rep.codes, ref.codes)
        assert rep.alpha == np.ldexp(ref.alpha, e)
        assert rep.relative_dql == ref.relative_dql
        assert rep.tolerances["working_scale_exponent"] == k
        assert "paper_keras" not in [c["name"] for c in rep.conventions]


def test_weights_near_1e_minus_170_keep_their_codes():
    # 1e-170 ≈ 2**-564.7: the vector at 2**-565 is exact, so nothing may change but the scale.
    ref = vq.quantize(W, 3)
    c, alpha, s, _ = naive.param_quantize(W, 3, vq.optimal_step(3))
    assert_array_equal(ref.codes, c)
    tiny = np.ldexp(W, -565)
    assert 1e-171 < np.max(np.abs(tiny)) < 1e-169
    q = vq.quantize(tiny, 3)
    assert_array_equal(q.codes, ref.codes)
    assert q.step == np.ldexp(ref.step, -565) > 0
    assert q.alpha == np.ldexp(ref.alpha, -565)
    assert q.loss.relative_dql == ref.loss.relative_dql
    # by hand: 1 − ⟨w,v⟩²/(‖w‖²‖v‖²) with α* = ⟨w,v⟩/‖v‖²
    v = c + 0.5
    assert q.loss.relative_dql == pytest.approx(1 - (W @ v) ** 2 / ((W @ W) * (v @ v)),
                                                rel=1e-12)
    assert q.loss.relative_dql > 0.01


def test_weights_near_1e200_give_finite_answers():
    big = np.ldexp(W, 664)  # max |w| ≈ 2.2·2**664 ≈ 2.1e200
    assert 1e200 < np.max(np.abs(big)) < 1e201
    # vector_loss(w, w/2): ‖w − w/2‖²/‖w‖² = 1/4 exactly; the DQL itself (≈ 4.5e400) is inf.
    L = vq.vector_loss(big, big / 2)
    assert L.relative_dql == 0.25 and L.orientation == 0.0 and L.dql == np.inf
    r, r1 = vq.search_step(big, 3), vq.search_step(W, 3)
    assert r.step == np.ldexp(r1.step, 664) and r.relative_dql == r1.relative_dql
    # abs-max by hand: s = max|w|/(2**(k−1) − 1) = 2.2·2**664/3, codes round(w/s)
    a = B.absmax(big, 3)
    assert a.alpha == pytest.approx(2.2 * 2.0 ** 664 / 3, rel=1e-15)
    assert_array_equal(a.codes, [0, -2, 1, 3, -1, -1, 2, 0, -3, 1])
    assert a.loss.relative_dql == B.absmax(W, 3).loss.relative_dql
    # BWN by hand: α = mean|w|, values ±mean|w|
    b = B.bwn(big)
    assert b.info["bwn_alpha"] == pytest.approx(np.mean(np.abs(W)) * 2.0 ** 664, rel=1e-15)
    assert not np.isnan(b.loss.relative_dql)
    assert vq.quantize(big, 3).loss.relative_dql == vq.quantize(W, 3).loss.relative_dql


def test_overflowing_values_name_w_not_an_internal_argument():
    # μL2Q's top level s·3/2 + β lies above the float64 maximum here.
    w = np.array([1.7e308, -1.7e308, 1.0e308, 0.0])
    with pytest.raises(ValueError, match=r"^`w` \(dtype float64\)") as err:
        B.ul2q(w, 2)
    assert "wq" not in str(err.value)


def test_float16_values_beyond_65504_raise_with_the_fix():
    w = np.array([65504, -23264], np.float16)
    # by hand: mean 21120, σ = 44384, s = λ_4·σ ≈ 14877.6; w/s ≈ 4.40, −1.56 → codes 4, −2;
    # v = 4.5, −1.5; α = (65504·4.5 + 23264·1.5)/(4.5² + 1.5²) = 329664/22.5 ≈ 14651.7 and the
    # top value 4.5·α ≈ 65932.8 > 65504, the float16 maximum.
    with pytest.raises(ValueError, match=r"`w` \(dtype float16\).*w\.astype\(np\.float32\)"):
        vq.quantize(w, 4)
    q = vq.quantize(w.astype(np.float32), 4)
    assert q.codes.tolist() == [4, -2]
    assert q.alpha == pytest.approx(329664 / 22.5, rel=1e-12)
    assert q.values.dtype == np.float32 and np.all(np.isfinite(q.values))
    assert q.values.tolist() == pytest.approx([4.5 * 329664 / 22.5, -1.5 * 329664 / 22.5],
                                              rel=1e-7)
    # float16 values that fit stay float16
    assert vq.quantize(w / np.float16(2), 4).values.dtype == np.float16


def test_big_endian_input_is_converted():
    be = np.linspace(-1, 1, 16).astype(">f4")
    ne = be.astype("<f4")
    before = be.copy()
    for fn in (lambda a: vq.quantize(a, 2), lambda a: vq.quantize(a, 3, "exact"),
               lambda a: B.absmax(a, 3), lambda a: B.bwn(a)):
        a, b = fn(be), fn(ne)
        assert_array_equal(a.codes, b.codes)
        assert a.alpha == b.alpha and a.values.dtype == np.float32
    assert vq.search_step(be, 2).step == vq.search_step(ne, 2).step
    assert_array_equal(vq.codes(be, 0.25, 2), vq.codes(ne, 0.25, 2))
    assert vq.vector_loss(be, be / 2).relative_dql == 0.25
    assert vq.optimal_alpha(be, np.sign(be)) == vq.optimal_alpha(ne, np.sign(ne))
    assert vq.compare(be, bits=2) == vq.compare(ne, bits=2)
    # by hand: 2-bit midrise codes of linspace(-1, 1, 16) at s = λ_2·σ
    s = vq.optimal_step(2) * float(np.std(ne.astype(np.float64)))
    assert_array_equal(vq.quantize(be, 2).codes, np.clip(np.floor(ne / s), -2, 1))
    assert_array_equal(be, before) and be.dtype == np.dtype(">f4")


class _RequiresGrad:
    """Stands in for a torch tensor with requires_grad=True: __array__ refuses, detach works."""

    def __init__(self, data, detach_ok=True):
        self.data = np.asarray(data, dtype=np.float32)
        self.detach_ok = detach_ok

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                           "Use tensor.detach().numpy() instead.")

    def detach(self):
        if not self.detach_ok:
            raise RuntimeError("no")
        return self.data


def test_requires_grad_tensors_are_read_through_detach():
    w = np.array([0.1, -0.4, 0.25, 0.9], dtype=np.float32)
    q = vq.quantize(_RequiresGrad(w), 2)
    # by hand (the quantize docstring): codes [0, −1, 0, 1], α = 0.575
    assert q.codes.tolist() == [0, -1, 0, 1] and q.alpha == pytest.approx(0.575, rel=1e-6)
    assert B.bwn(_RequiresGrad(w)).codes.tolist() == [0, -1, 0, 0]
    with pytest.raises(TypeError, match=r"`w`.*w\.detach\(\)\.cpu\(\)\.numpy\(\)"):
        vq.quantize(_RequiresGrad(w, detach_ok=False), 2)


def test_scale_exponent_rule():
    assert V.scale_exponent(np.array([1.0, -3.0])) == 0
    assert V.scale_exponent(np.array([1.0], dtype=np.float32)) == 0
    assert V.scale_exponent(np.zeros(3)) == 0
    # centred: 2**-600 … 2**-590 → exponents −599 … −589 → k = 594
    assert V.scale_exponent(np.ldexp(np.array([1.0, 1.0]), [-600, -590])) == 594
    # too wide for the safe range: max|w| goes to [½, 1)
    assert V.scale_exponent(np.array([1e300, 1e-300])) == -997
    with pytest.raises(ValueError, match="non-finite"):
        V.scale_exponent(np.array([1.0, np.inf]))
