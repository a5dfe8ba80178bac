import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

import vecq_ref as vq
from vecq_ref import naive
from vecq_ref._kernels import CHUNK
from vecq_ref._kernels import lattice as K

CHUNK_PLUS = CHUNK + 123

# --- hand-made -----------------------------------------------------------------------------


def test_midrise_codes_by_hand():
    # w/s = [-2, -0.4, 0, 0.6, 1, 4]: floor → [-2, -1, 0, 0, 1, 4], clip to [-2, 1].
    w = np.array([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0])
    assert vq.codes(w, 0.5, 2).tolist() == [-2, -1, 0, 0, 1, 1]
    assert vq.levels(vq.codes(w, 0.5, 2)).tolist() == [-1.5, -0.5, 0.5, 0.5, 1.5, 1.5]


def test_midtread_codes_by_hand():
    # |w|/s + ½ = [2.5, 0.9, 0.5, 1.1, 1.5, 4.5]: floor → [2, 0, 0, 1, 1, 4], min(·, 1), sign.
    w = np.array([-1.0, -0.2, 0.0, 0.3, 0.5, 2.0])
    assert vq.codes(w, 0.5, 2, "midtread").tolist() == [-1, 0, 0, 1, 1, 1]
    assert vq.levels(vq.codes(w, 0.5, 2, "midtread"), "midtread").tolist() == [
        -1.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_midrise_ties_go_up():
    # w = j·s exactly: floor(j) = j, so the tie takes the upper interval (and -j for w < 0).
    w = np.array([0.5, 1.0, -0.5, -1.0, 0.0])
    assert vq.codes(w, 0.5, 3).tolist() == [1, 2, -1, -2, 0]


def test_midtread_ties_away_from_zero():
    # |w|/s = 0.5, 0.5, 1.5 → floor(1.0), floor(1.0), floor(2.0).
    assert vq.codes([0.25, -0.25, 0.75], 0.5, 3, "midtread").tolist() == [1, -1, 2]


def test_one_bit_is_sign_with_zero_positive():
    assert vq.codes([-3.0, -1e-300, 0.0, 2.0], 0.7, 1).tolist() == [-1, -1, 0, 0]
    assert vq.levels([-1, 0]).tolist() == [-0.5, 0.5]


def test_code_range_and_levels():
    assert vq.code_range(1) == (-1, 0)
    assert vq.code_range(8) == (-128, 127)
    assert vq.code_range(3, "midtread") == (-3, 3)
    assert vq.lattice_levels(2, "midtread").tolist() == [-1.0, 0.0, 1.0]


def test_code_dtype():
    assert vq.codes(np.ones(3), 0.1, 8).dtype == np.int8
    assert vq.codes(np.ones(3), 0.1, 9).dtype == np.int16
    assert vq.codes(np.ones(3), 1e-9, 16).tolist() == [32767] * 3


def test_per_channel_and_broadcast_steps():
    w = np.array([[1.0, -1.0, 0.4], [1.0, -1.0, 0.4]])
    per_row = vq.codes(w, [0.5, 1.0], 3, axis=0)
    assert per_row.tolist() == [[2, -2, 0], [1, -1, 0]]
    assert_array_equal(vq.codes(w, np.array([[0.5], [1.0]]), 3), per_row)
    per_col = vq.codes(w, [0.5, 1.0, 0.1], 3, axis=1)
    assert per_col.tolist() == [[2, -1, 3], [2, -1, 3]]
    groups = vq.codes(np.arange(8.0).reshape(2, 4), [[1.0, 2.0], [1.0, 4.0]], 4, group_size=2)
    assert groups.tolist() == [[0, 1, 1, 1], [4, 5, 1, 1]]


def test_step_is_validated():
    with pytest.raises(ValueError, match="`step` must be positive"):
        vq.codes([1.0], 0.0, 2)
    with pytest.raises(ValueError, match="`step` must be positive"):
        vq.codes([1.0, 2.0], [1.0, np.nan], 2)
    with pytest.raises(ValueError, match="`step` must be a scalar or an array broadcastable"):
        vq.codes([1.0, 2.0, 3.0], [1.0, 2.0], 2)
    with pytest.raises(TypeError, match="`codes` must be an integer array"):
        vq.levels([0.5])


# --- kernel against twin -------------------------------------------------------------------


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 9, 16])
def test_codes_rows_match_twin(rng, bits, lattice):
    if lattice == "midtread" and bits == 1:
        pytest.skip("midtread needs 2 bits")
    x = rng.standard_normal((3, 1001))
    steps = np.array([0.37, 0.01, 2.0]) / 2 ** (bits - 3)
    out = np.empty(x.shape, dtype=np.int16)
    K.codes_rows(x, steps, bits, lattice == "midtread", out)
    assert_array_equal(out, naive.codes(x, steps[:, None], bits, lattice))
    public = vq.codes(x, steps, bits, lattice, axis=0)
    assert_array_equal(public, naive.codes(x, steps[:, None], bits, lattice))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_codes_and_sums_match_twin(rng, dtype):
    x = (rng.standard_normal((2, 3000)) * 0.1).astype(dtype)
    steps = np.array([0.031, 0.07])
    for paper in (False, True):
        for lattice in (("midrise",) if paper else ("midrise", "midtread")):
            codes = np.empty(x.shape, dtype=np.int8)
            sums = K.codes_and_sums(x, steps, 4, lattice == "midtread", paper, codes)
            c, s = naive.codes_and_sums(x, steps, 4, lattice, paper)
            assert_array_equal(codes, c)
            scale = (x.astype(np.float64) ** 2).sum(1, keepdims=True) + (c * c).sum(1)[:, None]
            np.testing.assert_allclose(sums, s, rtol=1e-12, atol=1e-13 * scale.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_level_sums_match_twin_and_the_fused_pass(rng, dtype):
    x = (rng.standard_normal((3, 40000)) * 0.1).astype(dtype)  # rows of several chunks
    steps = np.array([0.031, 0.07, 0.0])
    for lattice in ("midrise", "midtread"):
        codes = np.empty(x.shape, dtype=np.int8)
        fused = K.codes_and_sums(x, steps, 4, lattice == "midtread", False, codes)
        # At the steps that made the codes: the fused pass's sums, bit for bit.
        assert_array_equal(K.level_sums(x, codes, steps, lattice == "midtread"), fused)
        ref = np.array([0.05, -2.0, 1e-7])  # any reference step
        got = K.level_sums(x, codes, ref, lattice == "midtread")
        want = naive.level_sums(x, codes, ref, lattice)
        scale = (x.astype(np.float64) ** 2).sum(1) + (codes.astype(np.float64) ** 2).sum(1)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * scale.max())


def _near_boundaries(rng, step, bits, lattice, n):
    """Weights on, and a few ulps either side of, every code boundary of ``step``."""
    half = 2 ** (bits - 1)
    j = rng.integers(-half - 1, half + 2, n).astype(np.float64)
    if lattice == "midtread":
        j = j + np.where(j < 0, -0.5, 0.5)
    w = j * step
    for _ in range(int(rng.integers(0, 4))):
        w = np.nextafter(w, rng.choice([-np.inf, np.inf], n))
    return w


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
def test_codes_on_and_near_boundaries_equal_true_division(rng, bits, lattice):
    # The kernel multiplies by 1/s and falls back to w/s where a product cannot settle the
    # code; on weights within ulps of every boundary the codes must still be those of w/s.
    if lattice == "midtread" and bits == 1:
        pytest.skip("midtread needs 2 bits")
    for step in (0.1, 1.0 / 3.0, 0.7 * 2.0 ** -bits, rng.uniform(1e-3, 10.0), 1e-290, 3e299):
        w = _near_boundaries(rng, step, bits, lattice, 4000)
        rest = rng.standard_normal(CHUNK_PLUS) * step * 2 ** (bits - 1)  # spans with no ties
        x = np.concatenate([rest, w, rest])[None]
        out = np.empty(x.shape, dtype=np.int16)
        K.codes_rows(x, np.array([step]), bits, lattice == "midtread", out)
        assert_array_equal(out[0], naive.codes(x[0], step, bits, lattice))


def test_codes_of_subnormal_quotients_equal_true_division():
    # Quotients in and below the subnormal range: the products round monotonically there too.
    w = np.array([-5e-324, 5e-324, -1e-310, 0.0, -0.0, 1e-300, -1e-300, -3e-308])
    for step in (1e-10, 1.0, 1e20, 1e299):
        for lattice in ("midrise", "midtread"):
            assert_array_equal(vq.codes(w, step, 3, lattice), naive.codes(w, step, 3, lattice))


def test_paper_codes_differ_from_floor_only_on_ties():
    # w/s = 1, 2, -1.5: round_half_even(w/s - ½) = [0, 2, -2] while floor gives [1, 2, -2].
    w = np.array([1.0, 2.0, -1.5])
    assert naive.paper_codes(w, 1.0, 3).tolist() == [0.0, 2.0, -2.0]
    assert naive.midrise_codes(w, 1.0, 3).tolist() == [1.0, 2.0, -2.0]
    codes = np.empty((1, 3), dtype=np.int8)
    K.codes_and_sums(w[None], np.array([1.0]), 3, False, True, codes)
    assert codes.tolist() == [[0, 2, -2]]


def test_zero_step_rule_matches_twin():
    x = np.array([[-2.0, 0.0, 3.0]])
    for lattice in ("midrise", "midtread"):
        out = np.empty(x.shape, dtype=np.int8)
        K.codes_rows(x, np.array([0.0]), 3, lattice == "midtread", out)
        assert_array_equal(out, naive.codes(x, 0.0, 3, lattice))
    assert naive.midrise_codes(x, 0.0, 3).tolist() == [[-4.0, 0.0, 3.0]]


@given(hnp.arrays(np.float64, st.integers(1, 50),
                  elements=st.floats(-1e6, 1e6, allow_subnormal=False)),
       st.floats(1e-3, 1e3), st.integers(2, 16), st.sampled_from(["midrise", "midtread"]))
def test_codes_inside_range_and_equal_twin(w, step, bits, lattice):
    c = vq.codes(w, step, bits, lattice)
    lo, hi = vq.code_range(bits, lattice)
    assert c.min() >= lo and c.max() <= hi
    assert_array_equal(c, naive.codes(w, step, bits, lattice))


# --- level sets (LevelSet, level_set) ------------------------------------------------------


def test_level_set_levels_by_hand():
    from vecq_ref.lattice import level_set

    assert level_set("midrise", 2).levels.tolist() == [-1.5, -0.5, 0.5, 1.5]
    assert level_set("midtread", 2).levels.tolist() == [-1.0, 0.0, 1.0]
    assert level_set("midtread-full", 2).levels.tolist() == [-2.0, -1.0, 0.0, 1.0]
    zp = level_set(bits=2, zero_point="integer")
    assert zp.lattice == "midtread-full" and zp.code_range == (0, 3)
    assert zp.levels.tolist() == [0.0, 1.0, 2.0, 3.0]
    nf4 = level_set(codebook="NF4")
    assert nf4.name == "nf4" and nf4.bits == 4 and nf4.code_range == (0, 15)
    assert level_set(codebook=[-1.0, 0.5, 2.0]).bits == 2


def test_level_set_code_dtypes():
    from vecq_ref.lattice import level_set

    assert level_set("midtread-full", 8).code_dtype == np.int8  # −128 … 127
    assert level_set(bits=8, zero_point="integer").code_dtype == np.int16  # 0 … 255
    assert level_set(bits=7, zero_point="float").code_dtype == np.int8  # 0 … 127
    assert level_set("midrise", 9).code_dtype == np.int16


def test_level_set_passthrough_and_vecq_flag():
    from vecq_ref.lattice import level_set

    ls = level_set("midtread-full", 4, signed_scale=True)
    assert level_set(ls) is ls and level_set(ls, 4) is ls
    assert not ls.vecq and level_set("midrise", 4).vecq
    with pytest.raises(ValueError, match="`bits` must be 4"):
        level_set(ls, 3)
    with pytest.raises(ValueError, match="`lattice` must be a lattice name"):
        level_set(ls, signed_scale=True)


@pytest.mark.parametrize(("kwargs", "name"), [
    (dict(lattice="midrise", bits=4, zero_point="integer"), "lattice"),
    (dict(bits=4, zero_point="int"), "zero_point"),
    (dict(bits=4, zero_point="float", signed_scale=True), "signed_scale"),
    (dict(codebook="nf5"), "codebook"),
    (dict(codebook=[1.0, 0.0]), "codebook"),
    (dict(codebook=[0.0, np.inf]), "codebook"),
    (dict(codebook=[1.0]), "codebook"),
    (dict(codebook="nf4", bits=3), "bits"),
    (dict(codebook="nf4", zero_point="integer"), "zero_point"),
    (dict(lattice="midrise", codebook="nf4"), "lattice"),
    (dict(lattice="codebook", bits=4), "codebook"),
    (dict(lattice="midtread", bits=1), "bits"),
    (dict(lattice="x", bits=2), "lattice"),
    (dict(lattice="midrise"), "bits"),
    (dict(lattice="midrise", bits=4, signed_scale=1), "signed_scale"),
])
def test_level_set_invalid_combinations(kwargs, name):
    from vecq_ref.lattice import level_set

    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        level_set(**kwargs)


# --- codes and levels of every level set ---------------------------------------------------


def test_q4_0_like_negative_step_by_hand():
    # Q4_0: d = max/−8 < 0. w/d = [1, −2, 0.3]/(−0.25) = [−4, 8, −1.2] → nearest in [−8, 7]:
    # −4, 7 (8 clips), −1.
    c = vq.codes([1.0, -2.0, 0.3], -0.25, 4, "midtread-full", signed_scale=True)
    assert c.tolist() == [-4, 7, -1] and c.dtype == np.int8
    assert vq.levels(c, "midtread-full").tolist() == [-4.0, 7.0, -1.0]
    # Ties go farther from zero: w/s = ±0.5, ±2.5 → ±1, ±3; the full range reaches −8.
    c = vq.codes([0.5, -0.5, 2.5, -2.5, -8.0, -9.0], 1.0, 4, "midtread-full")
    assert c.tolist() == [1, -1, 3, -3, -8, -8]


def test_integer_zero_point_by_hand():
    # z = 3 at 4 bits: levels u − 3 = −3 … 12. w/s = [−5, 0, 4, 20, 0.5] → −3, 0, 4, 12, 1
    # (the tie 0.5 goes away from zero), so u = [0, 3, 7, 15, 4].
    c = vq.codes([-0.5, 0.0, 0.4, 2.0, 0.05], 0.1, 4, zero_point="integer", z=3)
    assert c.tolist() == [0, 3, 7, 15, 4]
    assert vq.levels(c, bits=4, zero_point="integer", z=3).tolist() == [-3, 0, 4, 12, 1]
    # One z per row (axis 0): the second row's levels are u − 0 = 0 … 15.
    w = np.array([[-0.5, 0.4], [-0.5, 0.4]])
    c = vq.codes(w, 0.1, 4, axis=0, zero_point="integer", z=[3, 0])
    assert c.tolist() == [[0, 7], [0, 4]]
    assert vq.levels(c, bits=4, zero_point="integer", z=[3, 0], axis=0).tolist() == [
        [-3, 4], [0, 4]]


def test_float_zero_point_by_hand():
    # m = −0.15, s = 0.25: (w − m)/s = [1, 2, 4.6, −3.4] → nearest in 0 … 3: [1, 2, 3, 0].
    c = vq.codes([0.1, 0.35, 1.0, -1.0], 0.25, 2, zero_point="float", offset=-0.15)
    assert c.tolist() == [1, 2, 3, 0]
    assert vq.levels(c, bits=2, zero_point="float").tolist() == [1.0, 2.0, 3.0, 0.0]
    # (w − m)/s = 0.5 exactly: up (away from zero, all levels ≥ 0).
    assert vq.codes([0.5], 1.0, 2, zero_point="float", offset=0.0).tolist() == [1]


def test_codebook_codes_by_hand():
    from vecq_ref import codebooks

    # NF4 midpoint of 0.4407 and 0.5626 is 0.5017 > 0.5 → index 12; −0.9 lies below the
    # midpoint −0.848 of −1 and −0.696 → 0; 0 → 7 (the zero level); 2 clips to 15.
    c = vq.codes([0.5, -0.9, 0.0, 2.0], 1.0, codebook="nf4")
    assert c.tolist() == [12, 0, 7, 15] and c.dtype == np.int8
    assert vq.levels(c, codebook="nf4").tolist() == codebooks.NF4[[12, 0, 7, 15]].tolist()
    # A negative scale mirrors: w/s = [−0.5, 0.8, 0, −2] → indices 2, 14, 7, 0 (−0.5 lies
    # between the midpoints −0.6106 and −0.4600 around −0.5251; 0.8 between 0.6428 and
    # 0.8615 around 0.7230).
    c = vq.codes([0.25, -0.4, 0.0, 1.0], -0.5, codebook="nf4", signed_scale=True)
    assert c.tolist() == [2, 14, 7, 0]


def test_signed_midrise_and_midtread_mirror():
    # A negative step: the code of y = w/s by the lattice's own rule, i.e. the codes of −w at
    # |s|. Midrise w/s = [−2, 0.4, −0.6, 3] → floor: [−2, 0, −1, 1 (clipped)].
    w = np.array([1.0, -0.2, 0.3, -1.5])
    c = vq.codes(w, -0.5, 2, "midrise", signed_scale=True)
    assert c.tolist() == [-2, 0, -1, 1]
    assert_array_equal(c, vq.codes(-w, 0.5, 2, "midrise"))
    assert_array_equal(vq.codes(w, -0.5, 3, "midtread", signed_scale=True),
                       vq.codes(-w, 0.5, 3, "midtread"))
    # A positive step with signed_scale: the unsigned codes.
    assert_array_equal(vq.codes(w, 0.5, 3, signed_scale=True), vq.codes(w, 0.5, 3))


def test_level_set_object_is_accepted():
    from vecq_ref.lattice import level_set

    w = np.linspace(-2, 2, 37)
    ls = level_set("midtread-full", 4, signed_scale=True)
    assert_array_equal(vq.codes(w, -0.3, lattice=ls),
                       vq.codes(w, -0.3, 4, "midtread-full", signed_scale=True))
    assert_array_equal(vq.codes(w, 0.3, 4, ls), vq.codes(w, 0.3, 4, "midtread-full"))
    zp = level_set(bits=4, zero_point="integer")
    assert_array_equal(vq.codes(w, 0.3, lattice=zp, z=5),
                       vq.codes(w, 0.3, 4, zero_point="integer", z=5))
    assert_array_equal(vq.levels(np.arange(16), zp, z=5), np.arange(16) - 5.0)
    nf4 = level_set(codebook="nf4")
    assert_array_equal(vq.codes(w, 0.7, lattice=nf4), vq.codes(w, 0.7, codebook="nf4"))
    # VecQ's own lattice as a LevelSet: today's codes.
    assert_array_equal(vq.codes(w, 0.3, 3, level_set("midrise", 3)), vq.codes(w, 0.3, 3))


def test_general_code_dtypes():
    w = np.linspace(-1, 1, 1001)
    c = vq.codes(w, 1 / 256, 8, zero_point="integer", z=128)
    assert c.dtype == np.int16 and (c.min(), c.max()) == (0, 255)
    c = vq.codes(w, 2.0 ** -16, 16, zero_point="float", offset=-1.0)
    assert c.dtype == np.int32 and (c.min(), c.max()) == (0, 65535)
    c = vq.codes(w, 2.0 ** -16, 16, "midtread-full", signed_scale=True)
    assert c.dtype == np.int16 and (c.min(), c.max()) == (-32768, 32767)
    c = vq.codes(w, 1 / 128, 8, "midtread-full")
    assert c.dtype == np.int8 and (c.min(), c.max()) == (-128, 127)
    assert vq.codes(w, 0.9, 4, "midtread", signed_scale=True).dtype == np.int8


def _twin(w, steps, levels, lo, m=0.0):
    """Codes by the twin, one step (and offset) per row."""
    y = naive.scaled_signed(np.asarray(w, dtype=np.float64) - m, steps)
    return naive.nearest_index(y, levels) + lo


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_every_level_set_matches_twin(rng, bits):
    from vecq_ref import codebooks

    x = rng.standard_normal((3, 1500)) * 2
    x[:, :40] = np.arange(-20, 20) * 0.25  # multiples of a step: ties for s = ±0.5
    steps = np.array([0.5, -0.5, 3.0 / 2 ** bits])
    half = 2 ** (bits - 1)
    full = np.arange(-half, half, dtype=np.float64)
    got = vq.codes(x, steps, bits, "midtread-full", axis=0, signed_scale=True)
    assert_array_equal(got, _twin(x, steps[:, None], full, -half))
    u = np.arange(2 ** bits, dtype=np.float64)
    z = np.array([half, 0, 2 ** bits - 1])
    a = np.abs(steps)
    got = vq.codes(x, a, bits, axis=0, zero_point="integer", z=z)
    want = np.stack([_twin(x[r], a[r], u - z[r], 0) for r in range(3)])
    assert_array_equal(got, want)
    m = np.array([-1.0, 0.3, -2.0])
    got = vq.codes(x, a, bits, axis=0, zero_point="float", offset=m)
    assert_array_equal(got, _twin(x, a[:, None], u, 0, m[:, None]))
    if bits == 4:
        for book in (codebooks.NF4, codebooks.FP4, codebooks.IQ4_NL):
            got = vq.codes(x, steps, axis=0, codebook=book, signed_scale=True)
            assert_array_equal(got, _twin(x, steps[:, None], book, 0))
    for lattice in ("midrise", "midtread"):
        got = vq.codes(x, steps, bits, lattice, axis=0, signed_scale=True)
        y = x / steps[:, None]
        assert_array_equal(got, naive.codes(y, 1.0, bits, lattice))
        if lattice == "midtread":  # the same tie rule as the general twin
            assert_array_equal(got, _twin(x, steps[:, None], full[1:], -(half - 1)))


def test_groups_and_elementwise_parameters(rng):
    w = rng.standard_normal((4, 8))
    s = rng.uniform(0.1, 0.5, (4, 2))
    z = rng.integers(0, 16, (4, 2))
    got = vq.codes(w, s, 4, group_size=4, zero_point="integer", z=z)
    full_s, full_z = np.repeat(s, 4, axis=1), np.repeat(z, 4, axis=1)
    # The same per element (a broadcast array at per-tensor layout), and by the twin.
    assert_array_equal(vq.codes(w, full_s, 4, zero_point="integer", z=full_z), got)
    u = np.arange(16.0)
    want = [[_twin(w[i, j], full_s[i, j], u - full_z[i, j], 0) for j in range(8)]
            for i in range(4)]
    assert_array_equal(got, np.array(want))
    lv = vq.levels(got, bits=4, zero_point="integer", z=z, group_size=4)
    assert_array_equal(lv, got - full_z)
    assert_array_equal(vq.levels(got, bits=4, zero_point="integer", z=full_z), lv)
    # Elementwise signed steps on the full lattice, against the twin.
    st_ = rng.choice([-1.0, 1.0], (4, 8)) * 0.2
    got = vq.codes(w, st_, 3, "midtread-full", signed_scale=True)
    assert_array_equal(got, _twin(w, st_, np.arange(-4.0, 4.0), -4))


def test_codes_leave_inputs_untouched(rng):
    w = rng.standard_normal((2, 6)).astype(np.float32)
    s, m = np.array([0.2, 0.3]), np.array([-0.1, 0.1])
    copies = [a.copy() for a in (w, s, m)]
    vq.codes(w, s, 4, axis=0, zero_point="float", offset=m)
    vq.codes(w, -s, 4, "midrise", axis=0, signed_scale=True)
    for a, c in zip((w, s, m), copies, strict=True):
        assert_array_equal(a, c)


@pytest.mark.parametrize(("kwargs", "exc", "name"), [
    (dict(step=-0.25, bits=4, lattice="midtread-full"), ValueError, "step"),
    (dict(step=-0.25, bits=4), ValueError, "step"),
    (dict(step=0.0, bits=4, signed_scale=True), ValueError, "step"),
    (dict(step=[0.1, np.inf, 0.1], bits=4, lattice="midtread-full"), ValueError, "step"),
    (dict(step=0.1, bits=4, zero_point="integer"), TypeError, "z"),
    (dict(step=0.1, bits=4, z=3), ValueError, "z"),
    (dict(step=0.1, bits=4, zero_point="integer", z=16), ValueError, "z"),
    (dict(step=0.1, bits=4, zero_point="integer", z=-1), ValueError, "z"),
    (dict(step=0.1, bits=4, zero_point="integer", z=2.5), ValueError, "z"),
    (dict(step=0.1, bits=4, zero_point="integer", z=True), TypeError, "z"),
    (dict(step=0.1, bits=4, zero_point="integer", z=[1, 2]), ValueError, "z"),
    (dict(step=0.1, bits=4, zero_point="float"), TypeError, "offset"),
    (dict(step=0.1, bits=4, zero_point="float", offset=np.nan), ValueError, "offset"),
    (dict(step=0.1, bits=4, offset=0.5), ValueError, "offset"),
    (dict(step=0.1, bits=4, zero_point="integer", z=3, offset=0.5), ValueError, "offset"),
    (dict(step=-0.1, bits=4, zero_point="float", offset=0.0), ValueError, "step"),
    (dict(step=0.1, bits=4, zero_point="float", offset=0.0, signed_scale=True), ValueError,
     "signed_scale"),
    (dict(step=0.1, codebook="nf4", bits=3), ValueError, "bits"),
    (dict(step="a", bits=4, lattice="midtread-full"), TypeError, "step"),
])
def test_general_codes_errors(kwargs, exc, name):
    with pytest.raises(exc, match=f"`{name}` must"):
        vq.codes([0.1, -0.2, 0.3], **kwargs)


def test_general_levels_errors():
    with pytest.raises(ValueError, match="`codes` must be in \\[0, 15\\]"):
        vq.levels([16], codebook="nf4")
    with pytest.raises(ValueError, match="`codes` must be in \\[0, 15\\]"):
        vq.levels([-1], bits=4, zero_point="integer", z=0)
    with pytest.raises(ValueError, match="`codes` must be in \\[-8, 7\\]"):
        vq.levels([8], "midtread-full", bits=4)
    with pytest.raises(TypeError, match="`z` must be"):
        vq.levels([1], bits=4, zero_point="integer")
    with pytest.raises(ValueError, match="`z` must be None"):
        vq.levels([1], "midtread-full", z=1)
    with pytest.raises(ValueError, match="`lattice` must be one of"):
        vq.levels([1], "uniform")
    with pytest.raises(TypeError, match="`codes` must be an integer array"):
        vq.levels([0.5], codebook="nf4")
    assert vq.levels([-8, 7], "midtread-full").tolist() == [-8.0, 7.0]


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 30),
                  elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
       st.floats(1e-2, 1e2), st.booleans(), st.integers(0, 3), st.integers(2, 8))
def test_codes_are_nearest_levels(w, step, negative, kind, bits):
    # Whatever the set: the level of each code is a nearest level of w/s, in range.
    from vecq_ref.lattice import level_set

    ls = [level_set("midtread-full", bits, signed_scale=True),
          level_set("midtread", bits, signed_scale=True),
          level_set(bits=bits, zero_point="integer"),
          level_set(codebook="iq4_nl", signed_scale=True)][kind]
    s = -step if negative and ls.signed_scale else step
    z = {"z": 2 ** (bits - 1) - 1} if ls.zero_point else {}
    c = vq.codes(w, s, lattice=ls, **z)
    assert c.dtype == ls.code_dtype
    assert ls.code_range[0] <= c.min() and c.max() <= ls.code_range[1]
    lv = vq.levels(c, ls, **z)
    every = ls.levels - z.get("z", 0)
    y = w / s
    assert np.all(np.abs(y - lv) <= np.min(np.abs(y[:, None] - every[None, :]), axis=1))
