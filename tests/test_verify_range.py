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


def _sweep_weights(sigma, dtype):
    """(4, 16) float64 weights of std ``sigma``, or, for ``"max"``, near ``dtype``'s maximum:
    the largest |w| is 99% of it."""
    rng = np.random.default_rng(7)
    if sigma == "max":
        fmax = float(np.finfo(dtype).max)
        w = rng.uniform(-0.9, 0.9, (4, 16)) * fmax
        w[0, 0] = 0.99 * fmax
        return w
    return rng.standard_normal((4, 16)) * sigma


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
    w = _sweep_weights(sigma, dtype)
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
    # a bound on |α − α*|/α, r, is one of r/(1 − r) on |α − α*|/α* (α* ≥ α·(1 − r))
    rel_alpha = float(np.abs(v) @ e) / (r.alpha * float(v @ v))
    assert r.tolerances["representation_rtol"] == pytest.approx(
        rel_alpha / (1 - rel_alpha), rel=1e-12)
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
    assert "verdict      FAIL" in out
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


# --- float64: the working scale keeps the caller's resolution -----------------------------------

F64_ETA = float(np.finfo(np.float64).smallest_subnormal)  # 2^-1074 ≈ 4.9e-324
SIGMAS64 = [1e-320, 1e-318, 1e-316, 1e-310, 1e-300, 1.0, 1e300]


@pytest.mark.parametrize("sigma", SIGMAS64 + ["max"])
def test_own_float64_param_outputs_pass_and_nudged_ones_fail_at_every_scale(sigma):
    w = _sweep_weights(sigma, np.float64)
    failed = []
    for bits in (1, 2, 4, 8):
        for lattice in ("midrise", "midtread")[: 1 if bits == 1 else 2]:
            for axis in (None, 0):
                wq = quantize(w, bits, lattice=lattice, axis=axis).values
                r = verify(w, wq, bits=bits, axis=axis, check_conventions=False)
                if not r.passed:
                    failed.append((bits, lattice, axis, r.reasons))
    assert not failed
    q = quantize(w, 2)
    r = verify(w, _nudged(q.values, q.alpha), bits=2, check_conventions=False)
    assert not r.passed and r.identifiable
    # at 1e-320 the step is ≈ 2000η and 256 ulps (256η) let another α absorb the nudge: on a
    # lattice within the tolerance, yet α is not least-squares for it
    assert not r.on_lattice or sigma == 1e-320


@pytest.mark.jit_only
@pytest.mark.parametrize("sigma", [1e-320, 1e-318, 1e300])
def test_own_float64_exact_outputs_pass_at_the_ends_of_the_range(sigma):
    w = np.random.default_rng(0).standard_normal((4, 50)) * sigma
    for bits in (1, 2, 4, 8):
        for lattice in ("midrise", "midtread")[: 1 if bits == 1 else 2]:
            for axis in (None, 0):
                wq = quantize(w, bits, method="exact", lattice=lattice, axis=axis).values
                r = verify(w, wq, bits=bits, axis=axis, check_conventions=False)
                assert r.passed, (bits, lattice, axis, r.reasons)


def test_float64_subnormal_alpha_carries_its_own_rounding():
    # σ = 1e-318 ≈ 2·10⁵ η: the 8-bit α is a float64 subnormal of a few thousand η, so the
    # library's α (and every level α·v) is off by up to η/2: η/(2α) ≈ 1e-4 relative, far
    # more than float64's u. The tolerance is the values' Σ|v|·e/(α·Σv²) plus η/(2α).
    w = np.random.default_rng(0).standard_normal(200) * 1e-318
    q = quantize(w, 8)
    assert q.alpha < float(np.finfo(np.float64).tiny)
    r = verify(w, q.values, bits=8, check_conventions=False)
    assert r.passed, r.reasons
    assert r.tolerances["working_scale_exponent"] > 0
    v = r.codes + 0.5
    # η/2 is not a float64 number: relative terms as (η/α)/2
    half_eta_rel = F64_ETA / r.alpha / 2
    e_over_alpha = np.maximum(2.0 ** -53 * (np.abs(q.values) / r.alpha), half_eta_rel)
    expected = float(np.abs(v) @ e_over_alpha) / float(v @ v) + half_eta_rel
    # relative to α* (α* ≥ α·(1 − r)): r/(1 − r)
    assert r.tolerances["representation_rtol"] == pytest.approx(
        expected / (1 - expected), rel=1e-9)
    assert 1e-5 < half_eta_rel < 1e-3
    # ulps are the caller's: the levels are rounded to multiples of η, so at most ½ ulp off
    assert r.reconstruction_ulps <= 1


def test_float64_messages_are_in_the_callers_units():
    rng = np.random.default_rng(4)
    k = 1060                                   # exact: w·2^-k is a float64 subnormal
    x = rng.standard_normal(64) + 0.7          # the working-scale picture, α = 1, β = 2^-1·…
    w = np.ldexp(x * 2.0 ** 16, -k)
    # an offset 2-bit lattice β + α·(c + ½), α = 2^14 η·…: every value exact at the caller's
    # scale (β a multiple of η, α·(c + ½) a multiple of 2^13 η)
    beta = np.ldexp(np.round(np.mean(x) * 2.0 ** 16), -k)
    alpha = np.ldexp(2.0 ** 14, -k)
    c = np.clip(np.floor((w - beta) / alpha), -2, 1)
    wq = beta + alpha * (c + 0.5)
    r = verify(w, wq, bits=2, check_conventions=False)
    assert r.on_lattice and r.offset in ("mean", "fitted") and not r.passed
    assert float(r.alpha) == alpha
    why = next(x for x in r.reasons if "offset by β" in x)
    shown = float(why.split("β = ")[1].split()[0])
    assert shown == pytest.approx(beta, rel=1e-5)        # the caller's β, ~1e-314
    # the step interval of the components: the caller's units too (the codes were made
    # with the step α, so α lies in it)
    # (the numbers are the component's second line, ``detail``, since issue 22)
    step = next(c for c in r.components if c.component == "step rule").detail
    lo, hi = (float(t) for t in step.split("s ∈ [")[1].split("]")[0].split(", "))
    assert lo <= alpha <= hi and hi < 2 * alpha


# --- too close to the dtype's resolution: INCONCLUSIVE, never a false PASS -----------------------

def test_lattice_of_a_few_subnormal_spacings_is_not_identifiable():
    # float32 σ = 1e-43 ≈ 71η, 8 bits: α ≈ 1.9η. Every output of this size lies within 4 ulps
    # (4η) of the midrise lattice of step 7η = (2·4 − 1)·η: the nearest level is within 3.5η,
    # rounded to a multiple of η within 4η, and 179η ≤ 7η·127.5 keeps the codes in range.
    eta = float(np.finfo(np.float32).smallest_subnormal)
    w = np.random.default_rng(7).standard_normal((4, 16)) * 1e-43
    wq = quantize(w, 8).values.astype(np.float32)
    m = float(np.max(np.abs(wq))) / eta
    assert m == 179 and m <= 7 * 127.5
    u = wq.astype(np.float64).ravel()
    c = np.floor(u / (7 * eta))
    rec = (7 * eta * (c + 0.5)).astype(np.float32).astype(np.float64)
    assert np.all(np.abs(rec - u) <= 4 * eta) and c.min() >= -128 and c.max() <= 127
    r = verify(w, wq, bits=8, check_conventions=False)
    assert not r.passed and not r.identifiable
    assert len(r.reasons) == 1 and "too close to its dtype's resolution" in r.reasons[0]
    assert "179·η" in r.reasons[0] and "any α ≤ 7·η" in r.reasons[0]
    text = str(r)
    assert "verdict      INCONCLUSIVE" in text and "FAIL" not in text
    assert "lattice      not identifiable" in text
    # just above the resolution (2 bits: α ≈ 70η) a value a quarter step off still fails
    q = quantize(w, 2)
    r = verify(w, _nudged(q.values.astype(np.float32), q.alpha), bits=2,
               check_conventions=False)
    assert not r.passed and r.identifiable and "FAIL" in str(r)


def test_float64_own_output_at_the_resolution_is_inconclusive_not_a_wrong_rule():
    # σ = 1e-322 ≈ 20η: every float64 output this small is within 256 ulps of some 8-bit
    # lattice (α ≤ 511η); the library's param output either passes or is INCONCLUSIVE
    w = np.random.default_rng(0).standard_normal(200) * 1e-322
    for lattice in ("midrise", "midtread"):
        r = verify(w, quantize(w, 8, lattice=lattice).values, bits=8, check_conventions=False)
        assert r.passed or (not r.identifiable and len(r.reasons) == 1), r.reasons


def test_an_astronomical_range_of_step_counts_is_not_enumerated():
    from vecq_ref.check.recover import _steps_of_levels

    # one level 1.0 above the lowest; α anywhere in [1e-300, 1]: the step counts 1 … 1e300
    # are not listed, the ones nearest 1/α₀ are tried (α₀ = 0.5: two steps)
    budget = [8]
    out = _steps_of_levels(np.array([0.0, 1.0]), np.zeros(2), 1e-300, 1.0, 0.5, budget)
    assert [list(o) for o in out][0] == [0.0, 2.0]
    assert budget[0] >= 0


# --- bf16 and fp8 outputs are held to their own dtype (trial item 2) ----------------------------

def test_bf16_output_is_judged_in_bf16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    # 2-bit VecQ of [0.1, -0.4, 0.25, 0.9, -1.3, 0.05] (float64): α = 0.85…, levels ±α/2,
    # ±3α/2. In bfloat16 (8 significant bits, ε = 2^-7) α/2 = 0.4265… is 0.427734375, 0.07 %
    # off: far beyond float32's 4 ulps (that is what reading it as float32 gave), within
    # bfloat16's own half ulp u = 2^-8.
    w = np.array([0.1, -0.4, 0.25, 0.9, -1.3, 0.05])
    wq = quantize(w, 2).values.astype(ml_dtypes.bfloat16)
    r = verify(w, wq, bits=2)
    assert r.passed, r.reasons
    assert r.dtype == "bfloat16" and str(r).splitlines()[0].startswith(
        "(6,), w float64, wq bfloat16, 2 bits")
    assert r.tolerances["representation_rtol"] >= 2.0 ** -8     # u of bfloat16, not 0
    assert r.tolerances["accumulation_dtype"] == "float32"


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float8_e4m3fn"])
def test_low_precision_own_outputs_pass_and_off_lattice_ones_fail(dtype_name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dt = getattr(ml_dtypes, dtype_name)
    # fp8 e4m3 has 4 significant bits: a quarter step is told from a level up to 2 bits;
    # bfloat16's 8 up to 3 bits (beyond, a quarter step is inside the straight-through
    # rounding 2·ulp(|w| + |wq|) of the dtype)
    tell = {"bfloat16": (1, 2, 3), "float8_e4m3fn": (1, 2)}[dtype_name]
    for seed in range(3):
        w = np.random.default_rng(seed).standard_normal((32, 32)).astype(dt)
        for bits in (1, 2, 3, 4, 8) if dtype_name == "bfloat16" else (1, 2, 3, 4):
            wq = quantize(w, bits).values.astype(dt)
            r = verify(w, wq, bits=bits, check_conventions=False)
            assert r.passed, (seed, bits, r.reasons)
            assert r.dtype == dtype_name
            if bits in tell:
                alpha = float(np.atleast_1d(r.alpha)[0])
                bad = verify(w, _nudged(wq, alpha), bits=bits, check_conventions=False)
                assert not bad.passed, (seed, bits)


# --- w and wq at scales too far apart for one working scale (trial item 5) ----------------------

@pytest.mark.parametrize("scale", [1e-320, 1e-300])
def test_output_far_from_the_weights_scale_gets_a_verdict_not_an_overflow(scale):
    from vecq_ref import baselines

    w0 = np.random.default_rng(0).standard_normal(50)
    w = w0 * scale
    wq = baselines.dorefa(w, 2).values          # ±1/3, ±1: DoReFa ignores the scale of w
    assert np.all(np.minimum(abs(np.abs(wq) - 1 / 3), abs(np.abs(wq) - 1)) < 1e-15)
    r = verify(w, wq, bits=2)                   # warnings are errors here: none escapes
    # wq is a clean 2-bit midrise output (α = 2/3, codes −2..1), just not of these weights:
    # α* = ⟨w,v⟩/⟨v,v⟩ is of the size of w, α/α* ≈ 1e300 or more, ‖w − wq‖²/‖w‖² ≈ ‖wq‖²/‖w‖²
    # ≈ 1e600 or more: beyond float64, inf (said, not a warning)
    assert r.on_lattice and r.lattice_name == "midrise" and r.alpha == pytest.approx(2 / 3)
    assert (r.code_min, r.code_max) == (-2, 1)
    assert 0 < r.alpha_lsq < 1e3 * scale
    assert not r.passed and not r.alpha_optimal
    assert r.relative_dql == np.inf and r.alpha_rel_dev > 1e290
    assert r.relative_dql_param == pytest.approx(0.1, abs=2e-3)  # VecQ on w, at w's scale
    assert "times larger than w" in r.reasons[0]
    assert "non-finite" not in str(r)


def test_output_far_below_the_weights_scale_has_relative_dql_one():
    w = np.random.default_rng(0).standard_normal(50)
    wq = np.sign(w) * 1e-300                    # 1-level-per-sign output of a negligible size
    r = verify(w, wq, bits=2)
    # ‖w − wq‖² = ‖w‖² to float64 precision, and α is negligible beside α*: deviation 1
    assert r.relative_dql == 1.0 and r.alpha_rel_dev == pytest.approx(1.0)
    assert not r.passed and "times smaller than w" in r.reasons[0]
    # the same output at w's own scale passes nothing either, but is not "at another scale"
    r1 = verify(w, np.sign(w), bits=2)
    assert not r1.passed and "another scale" not in "; ".join(r1.reasons)


@pytest.mark.parametrize("scale", [1e-320, 1e-300, 1e300])
def test_own_outputs_at_the_ends_share_one_working_scale(scale):
    w = np.random.default_rng(0).standard_normal(50) * scale
    r = verify(w, quantize(w, 2).values, bits=2, check_conventions=False)
    assert r.passed, r.reasons
    assert "output_scale_exponent" not in r.tolerances


# --- float16 subnormal own outputs (trial item 4) -----------------------------------------------

def test_alpha_deviation_is_bounded_relative_to_alpha_star():
    # σ = 1e-5, seed 3, 40 weights, 1 bit: 2·mean|w| = α = 287·η exactly (η = 2^-24), so the
    # levels ±143.5·η are float16 ties, stored (to even) as ±144·η. The α read back is 288·η:
    # off by η from α*, |α − α*|/α* = 1/287. The bound on the values' error is (η/2)/(144·η)
    # = 1/288 relative to the α read back; relative to α* (≥ 287·η) it is 1/287, the
    # deviation itself (the worst case, reached). The old tolerance 1/288 + accumulation
    # printed as "0.00348 > 0.00348".
    eta = 2.0 ** -24
    w = (np.random.default_rng(3).standard_normal(40) * 1e-5).astype(np.float16)
    q = quantize(w, 1)
    assert q.alpha == 287 * eta
    assert np.array_equal(np.unique(np.abs(q.values.astype(np.float64))), [144 * eta])
    r = verify(w, q.values, bits=1)
    assert r.passed, r.reasons
    assert r.alpha == 288 * eta and r.alpha_lsq == 287 * eta
    assert r.alpha_rel_dev == pytest.approx(1 / 287, rel=1e-12)
    assert r.tolerances["representation_rtol"] == pytest.approx(1 / 287, rel=1e-12)
    assert 1 / 288 + r.tolerances["accumulation_rtol"] < 1 / 287 <= r.tolerances["alpha_rtol"]
    # one η more (290·η) is beyond it: α read back 2η from α*, 2/287 > 1/287 + accumulation
    off = np.where(q.values > 0, 145 * eta, -145 * eta).astype(np.float16)
    bad = verify(w, off, bits=1)
    assert not bad.passed and not bad.alpha_optimal


def test_narrow_midtread_reading_preferred_when_both_fit():
    from vecq_ref.check import recover

    eta = 2.0 ** -24
    # two float16 subnormals −11·η, −8·η: VecQ's 3-bit midtread α = 49/13·η with codes
    # (−3, −2) gives −11.3·η and −7.54·η, stored as −11·η, −8·η; α = 2.72·η with codes
    # (−4, −3) (full range: −10.9·η, −8.2·η) fits too. The narrow reading is VecQ's.
    u = np.array([-11 * eta, -8 * eta])
    got = recover.recover(u, u, np.dtype(np.float16), 3, lattices=("midtread", "midtread-full"),
                          ulps=2)
    assert got.ok and got.lattice == "midtread" and got.codes.tolist() == [-3, -2]
    assert got.alpha == pytest.approx(49 / 13 * eta, rel=1e-12)
    # σ = 1e-6, seed 6, 4-bit midtread (the trial's): codes −7..5, −8 unused; read as narrow
    w = (np.random.default_rng(6).standard_normal(40) * 1e-6).astype(np.float16)
    q = quantize(w, 4, lattice="midtread")
    r = verify(w, q.values, bits=4, lattice="midtread", check_conventions=False)
    assert r.passed, r.reasons
    assert r.lattice_name == "midtread" and r.code_min >= -7


# (σ, seed, bits, methods, lattice, group_size): float16 σ·N(0,1), 40 weights; each of these
# own outputs failed before (α deviation over a bound relative to α, or a full-range reading)
_SUBNORMAL_PAST_FAILS = [
    (2e-5, 5, 1, "peg", "midrise", 2), (1e-5, 0, 1, "peg", "midrise", 2),
    (1e-5, 0, 2, "eg", "midrise", 2), (1e-5, 0, 2, "peg", "midtread", 2),
    (1e-5, 0, 3, "peg", "midrise", 2), (1e-5, 0, 4, "peg", "midtread", 2),
    (1e-5, 2, 2, "peg", "midrise", 2), (1e-5, 2, 4, "p", "midtread", 2),
    (1e-5, 3, 1, "peg", "midrise", None), (1e-5, 6, 2, "eg", "midtread", 2),
    (1e-5, 7, 1, "peg", "midrise", 2), (1e-5, 7, 2, "eg", "midtread", 2),
    (7e-6, 0, 4, "peg", "midrise", 2), (7e-6, 5, 4, "eg", "midtread", None),
    (7e-6, 6, 3, "p", "midrise", 2), (7e-6, 7, 2, "peg", "midtread", 2),
    (3e-6, 2, 2, "peg", "midtread", None), (3e-6, 5, 4, "eg", "midtread", None),
    (3e-6, 7, 3, "p", "midtread", 2), (1e-6, 0, 3, "eg", "midtread", None),
    (1e-6, 1, 3, "eg", "midrise", 2), (1e-6, 4, 3, "p", "midtread", 2),
    (1e-6, 5, 2, "eg", "midtread", None), (1e-6, 5, 3, "eg", "midtread", 2),
    (1e-6, 6, 4, "peg", "midtread", None), (1e-6, 7, 1, "peg", "midrise", 2),
    (1e-6, 7, 4, "eg", "midtread", 2),
]


@pytest.mark.parametrize("case", _SUBNORMAL_PAST_FAILS, ids=str)
def test_own_float16_subnormal_outputs_pass(case):
    sigma, seed, bits, methods, lattice, group_size = case
    w = (np.random.default_rng(seed).standard_normal(40) * sigma).astype(np.float16)
    kw = {"lattice": lattice} if lattice == "midtread" else {}
    for m in methods:
        method = {"p": "param", "e": "exact", "g": "grid"}[m]
        q = quantize(w, bits, method=method, lattice=lattice, group_size=group_size)
        r = verify(w, q.values, bits=bits, group_size=group_size, check_conventions=False, **kw)
        assert r.passed and r.identifiable, (method, r.reasons)
