"""verify on a plain cast of a mean-centred VecQ output (issue G2, from a fresh-user trial).

The output: per group of 32, β = mean(w), VecQ-param's codes of ``w − β`` (step λ₄·σ), α by
least squares, ``wq = (α·v + β).astype(dtype)``. Two wrong diagnoses were given:

1. float16: in a group where ``mean(w)`` is within a fraction of a step of ``α`` (β/α =
   1.0014), ``α·(v + 1)`` with β = 0 lies within a few float16 ulps of ``α·v + β``: the β = 0
   reading (codes shifted by one) was taken, with the straight-through allowance, or, read
   bit for bit by the quick path, without it; the report then said "step rule none", "α
   rule unknown". Expected: β = mean(w) and the generator's codes in every group.
2. A plain cast was reported as straight-through ("max 3720 ulps; straight-through
   rounding allowed"): a fitted β carries the values' rounding at the largest level, many
   ulps of a value near zero (α·v ≈ −β), and ``w + (rec − w)`` happened to round that away.
   Expected: no straight-through, and the reconstruction ulps of the cast (≤ ½ ulp: 0).

The rows used are those of the 256 × 256 trial tensor where each wrong reading happened.
"""

import numpy as np
import pytest

import vecq_ref as vq
from vecq_ref.check import recover as R
from vecq_ref.check.verify import verify


def _trial(n=256, seed=2):
    """The trial's weights (float32, groups of 32 as rows, float64), codes, α and β."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n, n)) * 0.02 + 0.01).astype(np.float32)
    g = w.reshape(-1, 32).astype(np.float64)
    beta = g.mean(axis=1, keepdims=True)
    c = g - beta
    s = vq.optimal_step(4) * c.std(axis=1, keepdims=True)
    v = np.clip(np.floor(c / s) + 0.5, -7.5, 7.5)
    a = (c * v).sum(axis=1, keepdims=True) / (v * v).sum(axis=1, keepdims=True)
    return g, (v - 0.5).astype(np.int64), a[:, 0], beta[:, 0], a * v + beta


@pytest.fixture(scope="module")
def trial():
    return _trial()


F16_STE_ROWS = [24, 562]      # β = 0 reading with the straight-through allowance (before)
F16_QUICK_ROWS = [1278, 1966]  # β = 0 reading bit for bit (quick path, before)
F32_ROWS = [769, 827, 875]     # straight-through claimed (769, 875); 3720 ulps (827)


def test_why_float16_cannot_tell_the_offset_by_one_step(trial):
    g, codes, a, beta, wq64 = trial
    i = 24
    # mean(w) is α to 0.15 %: β = 0 with codes one higher gives levels α·(v + 1) ...
    assert abs(beta[i] / a[i] - 1.0) < 2e-3
    u = wq64[i].astype(np.float16).astype(np.float64)
    shifted = (a[i] * (codes[i] + 1.5)).astype(np.float16).astype(np.float64)
    # ... 0.0014·α ≈ 1e-5 from each value, a few float16 ulps (spacing 3e-5 at 0.05) but
    # not all of them within a plain cast's half ulp
    ulps = np.abs(shifted - u) / np.spacing(np.abs(u).astype(np.float16)).astype(np.float64)
    assert 0 < ulps.max() <= 8
    # the true reading reproduces every value: a cast of α·v + β to float16
    assert np.array_equal(wq64[i].astype(np.float16), u.astype(np.float16))


@pytest.mark.parametrize("i", F16_STE_ROWS)
def test_recover_prefers_mean_offset_over_straight_through(trial, i):
    g, codes, a, beta, wq64 = trial
    u = wq64[i].astype(np.float16).astype(np.float64)
    got = R.recover(u, g[i], np.dtype(np.float16), 4, ulps=2)
    assert got.ok and got.offset == "mean" and not got.straight_through
    assert got.beta == float(np.mean(g[i]))  # β = mean(w) itself, not a fit of it
    np.testing.assert_array_equal(got.codes, codes[i])
    assert got.alpha == pytest.approx(a[i], rel=1e-3)  # float16: a few parts in 10⁴
    assert got.max_ulps <= 0.5


@pytest.mark.parametrize("i", F16_STE_ROWS + F16_QUICK_ROWS)
def test_as_mean_shifts_the_beta_zero_reading(trial, i):
    g, codes, a, beta, wq64 = trial
    u = wq64[i].astype(np.float16).astype(np.float64)
    # the β = 0 reading: codes one step higher (β ≈ α), the step α
    j = int(np.rint(beta[i] / a[i]))
    assert j == 1 or j == -1
    zero = R.Recovered("midrise", "none", float(a[i]), 0.0, codes[i] + j, 6.0, True, True)
    alt = R.as_mean(u, g[i], np.dtype(np.float16), 4, zero, ulps=2)
    assert alt.ok and alt.offset == "mean" and not alt.straight_through
    np.testing.assert_array_equal(alt.codes, codes[i])
    assert alt.beta == float(np.mean(g[i]))
    # nothing to shift: β = 0 reading with mean(w) under half a step, or codes out of range
    assert R.as_mean(u, g[i] - beta[i], np.dtype(np.float16), 4, zero) is None
    bad = codes[i] + j
    bad[0] = -8 if j == 1 else 7  # shifted by −j: −9 or 8, outside −8 … 7
    out = R.Recovered("midrise", "none", float(a[i]), 0.0, bad, 6.0, True, True)
    assert R.as_mean(u, g[i], np.dtype(np.float16), 4, out) is None


@pytest.mark.parametrize("i", F32_ROWS)
def test_recover_float32_cast_is_no_straight_through(trial, i):
    g, codes, a, beta, wq64 = trial
    u = wq64[i].astype(np.float32).astype(np.float64)
    got = R.recover(u, g[i], np.dtype(np.float32), 4, ulps=4)
    assert got.ok and got.offset == "mean" and not got.straight_through
    np.testing.assert_array_equal(got.codes, codes[i])
    # β = mean(w), α = α* reproduce the cast bit for bit: 0 ulps (not 3720 at a value
    # near zero, measured against a fitted β)
    assert got.max_ulps == 0.0
    assert got.beta == float(np.mean(g[i]))


def _sub(trial, rows, dtype):
    g, codes, a, beta, wq64 = trial
    rows = sorted(set(rows) | set(range(8)))
    return g[rows], wq64[rows].astype(dtype), codes[rows], a[rows], beta[rows]


def test_verify_float16_cast_reads_mean_offset_everywhere(trial):
    w, wq, codes, a, beta = _sub(trial, F16_STE_ROWS + F16_QUICK_ROWS, np.float16)
    r = verify(w.astype(np.float32), wq, bits=4, group_size=32)
    assert r.on_lattice and r.offset == "mean" and not r.straight_through
    np.testing.assert_array_equal(np.asarray(r.codes).reshape(codes.shape), codes)
    np.testing.assert_array_equal(np.asarray(r.beta).reshape(-1), w.mean(axis=1))
    assert r.reconstruction_ulps <= 0.5
    step = next(c for c in r.components if c.component == "step rule")
    assert step.found.startswith("VecQ's")  # not "none: no single step gives these codes"
    rule = next(c for c in r.components if c.component == "α rule")
    assert rule.found.startswith("least squares")  # not "unknown"
    ste = next(c for c in r.components if c.component == "straight-through")
    assert ste.found.startswith("not needed")


def test_verify_float32_cast_is_not_straight_through(trial):
    w, wq, codes, a, beta = _sub(trial, F32_ROWS, np.float32)
    r = verify(w.astype(np.float32), wq, bits=4, group_size=32)
    assert r.on_lattice and r.offset == "mean" and not r.straight_through
    assert r.reconstruction_ulps == 0.0
    assert "straight-through rounding allowed" not in str(r)
    np.testing.assert_array_equal(np.asarray(r.codes).reshape(codes.shape), codes)


def test_verify_still_reports_a_straight_through_offset_output(trial):
    # the control: w + (wq − w) evaluated in float16 is straight-through, and said so
    w, wq, codes, a, beta = _sub(trial, F16_STE_ROWS, np.float16)
    w16 = w.astype(np.float16)
    out = w16 + (wq - w16)
    assert not np.array_equal(out, wq)  # the rounding moved some values
    r = verify(w.astype(np.float32), out, bits=4, group_size=32)
    assert r.on_lattice and r.offset == "mean" and r.straight_through
    ste = next(c for c in r.components if c.component == "straight-through")
    assert ste.found.startswith("yes")
