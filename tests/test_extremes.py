"""No warning escapes the public API at the ends of the float range (issue 20).

Every public function on float16/32/64 weights at the dtype's maximum, near its smallest
normal and among its subnormals (1e-320 for float64) returns a result or raises a
ValueError/TypeError naming the argument; with warnings turned into errors nothing else
comes out (no RuntimeWarning from an overflow, an underflow or an invalid operation).
"""

import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import vecq_ref as vq
from vecq_ref import baselines
from vecq_ref.check.report import model_report

DTYPES = [np.float16, np.float32, np.float64]
KINDS = ["max", "tiny", "subnormal"]
BASELINES = ("bwn", "twn", "absmax", "aciq", "dorefa", "ul2q", "lloyd_max", "vecq_normalpha")


def _weights(dtype, kind, u):
    """``u`` (values in [-1, 1]) at the end ``kind`` of ``dtype``'s range."""
    fi = np.finfo(dtype)
    scale = {"max": float(fi.max), "tiny": 4 * float(fi.smallest_normal),
             "subnormal": 1e-320 if dtype == np.float64 else 40 * float(fi.smallest_subnormal)}
    return (np.asarray(u) * scale[kind]).astype(dtype)


def _quiet(fn):
    """``fn()`` with every warning an error; a ValueError/TypeError is an answer (None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return fn()
        except (ValueError, TypeError) as exc:
            message = str(exc)
    assert "`" in message  # names the argument
    return None


def test_quantize_beyond_the_float64_range_is_a_value_error_without_warnings():
    fmax = np.finfo(np.float64).max
    w = np.array([0.99, -0.99, 0.5, -0.25]) * fmax
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # 2 bits, w/fmax = (½, −½, ¼, −¼): σ = 0.395·fmax, step ≈ 0.996σ ∈ (¼, ½]·fmax, codes
        # (1, −2, 0, −1), levels (1.5, −1.5, 0.5, −0.5), α = Σwv/Σv² = 1.75/5 = 0.35·fmax:
        # the top level 0.525·fmax fits, no warning on the way.
        h = np.array([0.5, -0.5, 0.25, -0.25]) * fmax
        q = vq.quantize(h, 2)
        assert q.codes.tolist() == [1, -2, 0, -1]
        assert q.alpha == pytest.approx(0.35 * fmax, rel=1e-12)
        assert_array_equal(q.values, np.array([1.5, -1.5, 0.5, -0.5]) * q.alpha)
        # w/fmax = (0.99, −0.99, ½, −¼): σ = 0.754·fmax, the same codes, α = (2.97 + 0.375)/5
        # = 0.669·fmax: the top level 1.5α = 1.0035·fmax = 1.80399e308 lies beyond float64.
        with pytest.raises(ValueError, match=r"`w` \(dtype float64\) quantizes to values "
                                             r"beyond the float64 range \(the largest \|α·v\| "
                                             r"is 1\.80399e\+308 > 1\.79769e\+308\); scale `w` "
                                             r"down by a power of two"):
            vq.quantize(w, 2)
        # 1 bit: α = 2·mean|w| = 1.365·fmax is beyond float64, though α·½ would fit.
        with pytest.raises(ValueError, match=r"`w` \(dtype float64\) has a scale α or step "
                                             r"beyond the float64 range \(2\.4\d+e\+308 > "):
            vq.quantize(w, 1)


def test_levels_beyond_float64_are_reported_with_their_magnitude():
    # α at the working scale 2**-1030·w: |α·v| is printed as the caller's value, 1.8e+310.
    from vecq_ref import _validation as V

    k = -1030
    top = 1.8e10 * (1e300 * 2.0 ** k)  # 1.8e310·2**-1030, finite
    with pytest.raises(ValueError, match=r"the largest \|α·v\| is 1\.8e\+310 > 1\.79769e\+308"):
        V.check_values_fit(np.array([top]), np.float64, k=k)
    V.check_values_fit(np.array([1.7e308 * 2.0 ** k]), np.float64, k=k)  # fits: no error
    assert V.scaled_str(1.5, -1030) == f"{float(Fraction(3 * 2 ** 1029, 10 ** 310)):.6g}e+310"
    assert V.scaled_str(2.0 ** -1074, 0) == "4.94066e-324"
    assert V.scaled_str(1.0, 1080) == f"{float(Fraction(10 ** 326, 2 ** 1080)):.6g}e-326"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["param", "paper", "exact", "grid", "alternating"])
def test_every_method_at_the_ends_of_the_range(rng, dtype, kind, method):
    # A value or a ValueError naming `w`, never a warning: quantize per tensor and per
    # channel at 2 and 8 bits, its loss, and verify of its output.
    u = rng.uniform(-1, 1, (2, 8))
    u[0, 0], u[1, 1] = 1.0, -1.0  # at the maximum: the dtype's largest value itself
    w = _weights(dtype, kind, u)
    for bits in (2, 8):
        for kw in ({}, {"axis": 0}):
            q = _quiet(lambda bits=bits, kw=kw: vq.quantize(w, bits, method=method, **kw))
            if q is not None:
                assert np.all(np.isfinite(q.values))
                assert np.isfinite(q.alpha).all() and np.isfinite(q.step).all()
                _quiet(lambda q=q: vq.vector_loss(w, q.values))
                _quiet(lambda q=q, bits=bits: vq.verify(w, q.values, bits=bits))


@settings(max_examples=25, deadline=None)
@given(dtype=st.sampled_from(DTYPES), kind=st.sampled_from(KINDS),
       u=st.lists(st.floats(-1, 1), min_size=2, max_size=12),
       method=st.sampled_from(("param", "paper", "exact", "grid", "alternating")),
       lattice=st.sampled_from(("midrise", "midtread")), bits=st.sampled_from((1, 2, 3, 8)),
       split=st.sampled_from((None, "axis", "group")))
def test_no_warning_escapes_at_the_ends_of_the_range(dtype, kind, u, method, lattice, bits,
                                                     split):
    w = _weights(dtype, kind, u + ([0.5] if len(u) % 2 else []))
    kw = {}
    if split == "axis":
        w, kw = w.reshape(2, -1), {"axis": 0}
    elif split == "group":
        kw = {"group_size": 2}
    if lattice == "midtread":
        bits = max(bits, 2)
    if method == "paper" and lattice == "midtread":
        method = "param"
    q = _quiet(lambda: vq.quantize(w, bits, method=method, lattice=lattice, **kw))
    if q is not None:
        assert np.all(np.isfinite(q.values))
        _quiet(lambda: vq.vector_loss(w, q.values))
        _quiet(lambda: vq.optimal_alpha(w, q.levels))
        _quiet(lambda: vq.verify(w, q.values, bits=bits))
    if method not in ("param", "paper"):
        _quiet(lambda: vq.search_step(w, bits, method=method, lattice=lattice, **kw))
    _quiet(lambda: vq.verify(w, w, bits=4))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_baselines_compare_and_report_at_the_ends_of_the_range(tmp_path, rng, dtype, kind):
    w = _weights(dtype, kind, rng.uniform(-1, 1, (4, 6)))
    for name in BASELINES:
        bits = 1 if name == "bwn" else 2 if name == "twn" else 3
        _quiet(lambda name=name, bits=bits: getattr(baselines, name)(w, bits))
    _quiet(lambda: vq.compare(w, bits=[1, 2]))
    path = tmp_path / "m.npz"
    np.savez(path, w=w)
    rep = _quiet(lambda: model_report(path, bits=[2, 8], method="exact", progress=False))
    assert rep is not None and len(rep.rows) == 2
    str(rep)  # printing it warns of nothing either
