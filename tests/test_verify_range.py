"""verify at the ends of the float range: subnormal, tiny and near-max outputs get the verdicts
mid-range ones get (issue 20, part B). pytest turns every warning into an error, so each test
also checks that no warning escapes verify / recover / diagnose."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecq_ref import quantize
from vecq_ref.check import diagnose
from vecq_ref.check.verify import verify
from vecq_ref.cli import main

F16_MAX = float(np.finfo(np.float16).max)
F32_MAX = float(np.finfo(np.float32).max)
SIGMAS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1.0, 1e2, 1e4]


def _own(w, bits, method="param", lattice="midrise", axis=None, dtype=np.float16):
    """The library's output for ``w``, stored in ``dtype`` (the caller's cast)."""
    return quantize(w, bits, method=method, lattice=lattice, axis=axis).values.astype(dtype)


def _nudged(wq, alpha):
    """``wq`` with its largest element moved a quarter step towards 0: off every lattice of as
    few bits (a level α/4 from another needs codes 4× apart)."""
    out = wq.astype(np.float64)
    i = int(np.argmax(np.abs(out)))
    out.flat[i] -= np.sign(out.flat[i]) * 0.25 * alpha
    return out.astype(wq.dtype)


# --- representation error: relative above the smallest normal, absolute below ------------------

def test_representation_error_is_half_the_subnormal_spacing_below_the_normals():
    eta = 2.0 ** -24                       # float16's smallest subnormal
    u = 2.0 ** -11                         # float16's unit roundoff
    x = np.array([0.0, 3 * eta, 2.0 ** -14, 1.0])
    # below 2^-14 (the smallest normal, η/(2u)) the error is η/2; at and above it u·|x|
    assert diagnose.representation_error(x, np.float16).tolist() == [
        eta / 2, eta / 2, u * 2.0 ** -14, u]
    assert 2.0 ** -14 * u == eta / 2       # the two bounds meet at the smallest normal
    # the spacing saturates at the top binade instead of overflowing to inf
    assert diagnose.spacing([0.0, 1.0, F16_MAX, 1e6], np.float16).tolist() == [
        eta, 2.0 ** -10, 32.0, 32.0]


# --- false PASS: distinct values are not a k-bit output at any scale ---------------------------

@pytest.mark.parametrize(("dtype", "sigma"), [(np.float16, 3e-4), (np.float32, 1e-38)])
def test_distinct_tiny_values_are_not_a_2_bit_output(dtype, sigma):
    w = (np.random.default_rng(0).standard_normal(200) * sigma).astype(dtype)
    n_distinct = np.unique(w).size
    assert n_distinct > 4                 # 2 bits hold at most 4 levels: no 2-bit lattice
    r = verify(w, w, bits=2, check_conventions=False)
    assert not r.passed and not r.on_lattice
    assert "distinct levels" in r.reasons[0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_alpha_zero_only_for_an_all_zero_output(dtype):
    eta = float(np.finfo(dtype).smallest_subnormal)
    w = np.zeros(6, dtype=dtype)
    r = verify(w, w, bits=2, check_conventions=False)
    assert r.passed and r.alpha == 0.0
    # zeros and one non-zero value 7η: the zeros are the level 0 of a midtread lattice, so
    # α = 7η (codes 0 and 1; least squares 3·7η·1/3), never α = 0
    wq = (np.array([0, 0, 0, 7, 7, 7]) * eta).astype(dtype)
    r = verify(wq, wq, bits=2, check_conventions=False)
    assert r.passed and r.alpha == 7 * eta and r.codes.tolist() == [0, 0, 0, 1, 1, 1]


# --- false FAIL: the library's own output passes at every scale ----------------------------------

@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("sigma", SIGMAS + ["max"])
def test_own_param_outputs_pass_and_nudged_ones_fail_at_every_scale(dtype, sigma):
    rng = np.random.default_rng(7)
    if sigma == "max":  # near the dtype maximum: the largest |w| is 99% of it
        fmax = float(np.finfo(dtype).max)
        w = rng.uniform(-0.9, 0.9, (4, 16)) * fmax
        w[0, 0] = 0.99 * fmax
    else:
        w = rng.standard_normal((4, 16)) * sigma
    failed = []
    for bits in (1, 2, 4, 8):
        for lattice in ("midrise", "midtread")[: 1 if bits == 1 else 2]:
            for axis in (None, 0):
                for w_in in (w, w.astype(dtype)):  # float64 weights, or weights of the dtype
                    wq = _own(w_in, bits, lattice=lattice, axis=axis, dtype=dtype)
                    r = verify(w_in, wq, bits=bits, axis=axis, check_conventions=False)
                    if not r.passed:
                        failed.append((bits, lattice, axis, w_in.dtype, r.reasons))
    assert not failed
    # off the lattice: a 2-bit output with one element a quarter step away fails
    wq = _own(w, 2, dtype=dtype)
    q = quantize(w, 2)
    r = verify(w, _nudged(wq, q.alpha), bits=2, check_conventions=False)
    assert not r.passed and not r.on_lattice


@pytest.mark.jit_only
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("sigma", [1e-5, 1e-4, 1.0, 1e4])
def test_own_exact_outputs_pass_at_every_scale(dtype, sigma):
    w = np.random.default_rng(3).standard_normal((4, 16)) * sigma
    for bits in (2, 4, 8):
        for lattice in ("midrise", "midtread"):
            for axis in (None, 0):
                wq = _own(w, bits, method="exact", lattice=lattice, axis=axis, dtype=dtype)
                r = verify(w, wq, bits=bits, axis=axis, check_conventions=False)
                assert r.passed, (bits, lattice, axis, r.reasons)


def test_float32_subnormal_outputs_pass():
    # σ = 1e-39: most values below float32's smallest normal 1.18e-38
    w = np.random.default_rng(1).standard_normal(64) * 1e-39
    for bits in (2, 4, 8):
        for lattice in ("midrise", "midtread"):
            wq = _own(w, bits, lattice=lattice, dtype=np.float32)
            assert np.any(np.abs(wq) < np.finfo(np.float32).tiny)
            r = verify(w, wq, bits=bits, check_conventions=False)
            assert r.passed, (bits, lattice, r.reasons)


def test_subnormal_alpha_tolerance_is_absolute():
    # float16 σ = 3e-5: α of 8 bits is a few subnormal spacings; the α recovered from the
    # values is off by up to Σ|v|·(η/2)/(α·Σv²), far more than u = 4.9e-4
    w = np.random.default_rng(2).standard_normal(64) * 3e-5
    q = quantize(w, 8)
    wq = q.values.astype(np.float16)
    r = verify(w, wq, bits=8, check_conventions=False)
    assert r.passed
    eta = 2.0 ** -24
    v = r.codes + 0.5
    e = np.maximum(2.0 ** -11 * np.abs(wq.astype(np.float64)), eta / 2)
    assert r.tolerances["representation_rtol"] == pytest.approx(
        float(np.abs(v) @ e) / (r.alpha * float(v @ v)), rel=1e-12)
    assert r.tolerances["representation_rtol"] > 2.0 ** -11


# --- near the maximum: a verdict, no overflow ----------------------------------------------------

def test_float16_values_at_the_maximum_get_a_verdict():
    w = np.array([[65504, -65504], [60000, 1]], dtype=np.float16)
    # per tensor: four levels 65504, 60000, 1, −65504; on a 4-bit lattice through zero the
    # levels' magnitudes differ by at most 15× (midtread 7/1 …, midrise 7.5/0.5), not 60000×
    r = verify(w, w, bits=4)
    assert not r.passed and not r.on_lattice
    assert "not on a" in r.reasons[0]
    # per slice: [65504, −65504] is the midrise pair ±α·7.5; [60000, 1] only an offset lattice
    r = verify(w, w, bits=4, axis=0)
    assert r.on_lattice and not r.passed
    assert "β = 30000.5 = mean(w) in slice 1" in r.reasons[0]


def test_cli_verify_at_the_float16_maximum_prints_a_verdict(tmp_path, capsys):
    w = np.array([[65504, -65504], [60000, 1]], dtype=np.float16)
    np.save(tmp_path / "w.npy", w)
    assert main(["verify", str(tmp_path / "w.npy"), str(tmp_path / "w.npy"), "--bits", "4"]) == 1
    out, err = capsys.readouterr()
    assert "verdict:     FAIL" in out
    assert err.count("\n") == 1 and "Traceback" not in err and "Warning" not in err


# --- hypothesis: scale × dtype × bits -------------------------------------------------------------

@given(dtype=st.sampled_from([np.float16, np.float32]), bits=st.integers(1, 8),
       midtread=st.booleans(), per_channel=st.booleans(), seed=st.integers(0, 2**16),
       log2_sigma=st.floats(-17, 13))
def test_own_output_passes_and_a_nudged_one_fails_at_any_scale(dtype, bits, midtread,
                                                              per_channel, seed, log2_sigma):
    lattice = "midtread" if midtread and bits >= 2 else "midrise"
    if dtype == np.float32:
        log2_sigma = log2_sigma * 8  # 2^-136 … 2^104: down into float32's subnormals
    w = np.random.default_rng(seed).standard_normal((3, 12)) * 2.0 ** log2_sigma
    axis = 0 if per_channel else None
    wq = _own(w, bits, lattice=lattice, axis=axis, dtype=dtype)
    r = verify(w, wq, bits=bits, axis=axis, check_conventions=False)
    assert r.passed, r.reasons
    if bits <= 2 and not per_channel:
        q = quantize(w, bits, lattice=lattice)
        assert not verify(w, _nudged(wq, q.alpha), bits=bits, check_conventions=False).passed
