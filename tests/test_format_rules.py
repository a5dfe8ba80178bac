"""The formats' own rules (vecq_ref.format_rules) bit for bit against the real code's outputs.

Fixtures (tests/fixtures/formats, made by make_fixtures.py there): gguf-py's reference
quantizers (checked byte-equal to ggml's C when made), ggml's C searches (``make_qx_quants``,
``make_qkx2_quants``, ``quantize_iq4_nl``, the Q4_0/Q5_0 imatrix path) and bitsandbytes'
CPU ``quantize_4bit``. Raw GGUF blocks are parsed here from the layouts of ggml-common.h.
"""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

from vecq_ref import format_rules as FR
from vecq_ref import naive
from vecq_ref._kernels.rules import make_qx_rows

FIX = Path(__file__).parent / "fixtures" / "formats"
F = np.float32


def _load(name):
    with np.load(FIX / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


INP = _load("inputs.npz")
GGUF = _load("gguf_ref.npz")
GGML = _load("ggml_c.npz")
BNB = _load("bnb.npz")
EDGE_NAMES = INP["edge_names"].tolist()


def _edge(name):
    return INP["edge"][EDGE_NAMES.index(name)]


# --- GGUF block parsing (ggml-common.h layouts) ---------------------------------------------

_SIZES = {"q4_0": 18, "q5_0": 22, "q4_1": 20, "q5_1": 24, "q8_0": 34, "iq4_nl": 18}


def _fp16(b):
    return np.ascontiguousarray(b).view(np.float16).astype(F).reshape(-1)


def _nibbles(qs):
    """Element j in the low nibble of byte j, element j + 16 in the high nibble."""
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int64)


def parse(raw, kind):
    """``(d, m or None, codes (blocks, 32))`` from raw blocks, codes as vecq_ref gives them."""
    b = np.asarray(raw, dtype=np.uint8).reshape(-1, _SIZES[kind])
    d = _fp16(b[:, :2])
    if kind == "q8_0":
        return d, None, b[:, 2:].view(np.int8).astype(np.int64)
    if kind in ("q4_0", "iq4_nl"):
        q = _nibbles(b[:, 2:])
        return d, None, q - 8 if kind == "q4_0" else q
    if kind == "q4_1":
        return d, _fp16(b[:, 2:4]), _nibbles(b[:, 4:])
    m = _fp16(b[:, 2:4]) if kind == "q5_1" else None
    off = 4 if kind == "q5_1" else 2
    qh = np.ascontiguousarray(b[:, off:off + 4]).view("<u4").reshape(-1, 1)
    high = (qh >> np.arange(32, dtype=np.uint32)) & 1
    q = _nibbles(b[:, off + 4:]) | (high.astype(np.int64) << 4)
    return d, m, q - 16 if kind == "q5_0" else q


def _same_bits(a, b):
    assert_array_equal(np.asarray(a, dtype=F).view(np.uint32),
                       np.asarray(b, dtype=F).view(np.uint32))


REF = {"q4_0": FR.q4_0, "q5_0": FR.q5_0, "q8_0": FR.q8_0, "q4_1": FR.q4_1, "q5_1": FR.q5_1}


# --- hand-made -------------------------------------------------------------------------------


def test_q4_0_float32_ties_by_hand():
    # max = 8 → d = 8/−8 = −1, id = −1; code = trunc(−x + 8.5) − 8.
    x = np.zeros(32, dtype=F)
    x[:6] = [8.0, 0.5, -0.5, 7.5, -7.5, 0.0]
    x[6] = np.nextafter(F(0.5), F(0))   # −x + 8.5 = 8.00000003 → 8.0 in float32 → code 0
    x[7] = -np.nextafter(F(0.5), F(0))  # −x + 8.5 = 8.99999997 → 9.0 in float32 → code 1
    q = FR.q4_0(x)
    # 8 → −8 + 8.5 = 0.5 → 0 → −8; 0.5 → 8.0 → 0; −0.5 → 9.0 → 1 (half up); 7.5 → 1.0 → −7;
    # −7.5 → 16.0 → MIN(15) → 7; 0 → 8.5 → 8 → 0.
    assert q.codes[:8].tolist() == [-8, 0, 1, -7, 7, 0, 0, 1]
    assert float(q.alpha[0]) == -1.0 and float(q.step[0]) == -1.0
    assert q.values[:5].tolist() == [8.0, -0.0, -1.0, 7.0, -7.0]
    assert q.lattice == "midtread-full" and q.bits == 4 and q.values.dtype == F


def test_q8_0_roundf_half_away_by_hand():
    x = np.zeros(32, dtype=F)
    x[:5] = [127.0, 2.5, -2.5, 0.5, -0.5]  # d = 1: roundf(±2.5) = ±3, roundf(±0.5) = ±1
    q = FR.q8_0(x)
    assert q.codes[:5].tolist() == [127, 3, -3, 1, -1]


def test_q4_1_and_q5_1_by_hand():
    x = np.linspace(0, 15, 32).astype(F)
    x[1] = 0.5  # (0.5 − 0)·1 + 0.5 = 1.0 → code 1 (half up)
    q = FR.q4_1(x)
    assert q.codes[[0, 1, -1]].tolist() == [0, 1, 15]
    assert float(q.alpha[0]) == 1.0 and float(q.info["offset"][0]) == 0.0
    q5 = FR.q5_1(np.linspace(-1, 30, 32))  # d = 31/31 = 1, m = −1
    assert q5.codes.tolist() == list(range(32))
    assert float(q5.info["offset"][0]) == -1.0


def test_groups_of_one_value():
    # Q4_0 of one value v: d = v/−8, code −8, value fp16(v/−8)·−8 = v (v/8 exact in fp16).
    q = FR.q4_0(np.array([[3.0, -2.0]]), group_size=1)
    assert q.codes.tolist() == [[-8, -8]] and q.values.tolist() == [[3.0, -2.0]]
    assert q.alpha.shape == (1, 2)
    # Q4_1: max = min → d = 0, codes 0, value = fp16(min).
    q1 = FR.q4_1(np.array([0.1, -2.0]), group_size=1)
    assert q1.codes.tolist() == [0, 0]
    assert q1.values.tolist() == [float(np.float16(0.1)), -2.0]
    # Q8_0: code ±127.
    assert FR.q8_0(np.array([0.3, -5.0]), group_size=1).codes.tolist() == [127, -127]
    # make_qx_quants: every candidate fits exactly, the first (code −8) is kept.
    mq = FR.make_qx_quants(np.array([0.3, -5.0]), 8, group_size=1)
    assert mq.codes.tolist() == [-8, -8]
    np.testing.assert_allclose(mq.values, [0.3, -5.0], rtol=1e-6)


def test_all_zero_blocks():
    z = np.zeros((2, 32))
    for fn in REF.values():
        q = fn(z)
        assert np.all(q.values == 0) and np.all(q.alpha == 0)
    assert np.all(FR.q4_0(z).codes == 0)       # trunc(0 + 8.5) − 8
    assert np.all(FR.make_qx_quants(z, 8).codes == -8)  # the C's L = 0
    assert np.all(FR.iq4_nl(z).codes == 8)     # entry nearest 0: K[8] = 1
    assert np.all(FR.bnb_nf4(np.zeros(64)).codes == 7)  # NF4's 0.0


def test_gptq_sym_by_hand():
    # s = 2·1/15 = 0.13333334 (float32), z = 8; x/s = ±7.4999996 → ±7 (not ±7.5).
    x = np.array([-1.0, -0.5, 0.0, 1.0], dtype=F)
    q = FR.gptq_rtn(x, group_size=4)
    assert q.codes.tolist() == [1, 4, 8, 15]
    assert int(q.info["zero_point"][0]) == 8
    assert float(q.alpha[0]) == float(np.float16(F(2) / F(15)))
    assert_array_equal(q.values, F(q.alpha[0]) * (q.codes - 8).astype(F))


def test_gptq_sym_nonnegative_group_quirk():
    # All ≥ 0: xmin stays 0, s = 3/15 = 0.2, z still 8: codes clamp at 15 (value 7s max).
    q = FR.gptq_rtn(np.array([0.0, 1.0, 2.0, 3.0]), group_size=4)
    assert q.codes.tolist() == [8, 13, 15, 15]
    # An all-zero group: (xmin, xmax) = (−1, 1), s = 2/15.
    z = FR.gptq_rtn(np.zeros(4), group_size=4)
    assert z.codes.tolist() == [8] * 4 and float(z.step[0]) == float(F(2) / F(15))


def test_gptq_asym_by_hand():
    # min −1, max 0.5: s = 1.5/15 = 0.1, z = round(1/0.1) = 10.
    q = FR.gptq_rtn(np.array([-1.0, 0.0, 0.25, 0.5]), group_size=4, symmetric=False)
    assert int(q.info["zero_point"][0]) == 10
    assert q.codes.tolist() == [0, 10, 12, 15]  # 0.25/0.1 = 2.5 → 2 (half to even)


def test_awq_by_hand():
    q = FR.awq_rtn(np.array([0.5, 1.0, 1.25, 2.0]), group_size=4)
    # No min ≤ 0 forcing: s = 1.5/15 = 0.1, z = clamp(−round(5), 0, 15) = 0.
    assert int(q.info["zero_point"][0]) == 0
    # 1.25/s = 12.4999998 rounds to 12.5 in float32 → 12 (half to even); 2/s = 20 → 15.
    assert q.codes.tolist() == [5, 10, 12, 15]
    s = FR.awq_rtn(np.array([-1.0, 0.5, 0.0, 0.25]), group_size=4, symmetric=True)
    # s = 1/7 = 0.14285715 (float32, rounded up): −1/s = −7, 0.5/s = 3.4999998 → 3 (not the
    # half 3.5 → 4 of exact arithmetic), 0.25/s = 1.7499999 → 2.
    assert s.codes.tolist() == [-7, 3, 0, 2] and s.lattice == "midtread-full"
    assert FR.awq_rtn(np.zeros(4), group_size=4, symmetric=True).codes.tolist() == [0] * 4


def test_compressed_tensors_by_hand():
    # sym: s = 1/7.5 = 0.13333334 (float32): ±1/s = ±7.4999996 → ±7; 0.5/s = 3.75 → 4.
    q = FR.compressed_tensors_rtn(np.array([-1.0, 1.0, 0.5, 0.0]), group_size=4)
    assert q.codes.tolist() == [-7, 7, 4, 0] and "zero_point" not in q.info
    # asym: min −1, max 0.5: s = 0.1, z = round(−8 + 10) = 2; codes clamp(x/s + 2) rounded.
    a = FR.compressed_tensors_rtn(np.array([-1.0, 0.5, 0.0, 0.25]), group_size=4,
                                  symmetric=False)
    assert int(a.info["zero_point"][0]) == 2
    assert a.codes.tolist() == [-8, 7, 2, 4]  # 0.25/0.1 + 2 = 4.5 → 4 (half to even)
    assert_array_equal(a.values, ((a.codes - 2).astype(F) * F(a.alpha[0])))


def test_bnb_ties_go_to_the_lower_entry():
    table = np.array(FR.bnb_nf4(np.zeros(64)).info["codebook"], dtype=F)
    mid = (table[9] + table[10]) / F(2)
    x = np.zeros(64, dtype=F)
    x[:3] = [1.0, mid, np.nextafter(mid, F(1))]
    assert FR.bnb_nf4(x).codes[:3].tolist() == [15, 9, 10]


def test_imatrix_weights_by_hand():
    x = np.ones((1, 32))
    qw = np.full(32, 2.0)
    # Q4_0: σ² = Σx²/n = 1, h = 2·√(1 + 1).
    assert_array_equal(FR.imatrix_weights(x, qw, "q4_0"), np.full((1, 32), F(2) * np.sqrt(F(2))))
    # IQ4_NL: σ² = Σx²·2/32 = 2, h = 2·√3.
    assert_array_equal(FR.imatrix_weights(x, qw, "iq4_nl"), np.full((1, 32), F(2) * np.sqrt(F(3))))
    assert_array_equal(FR.imatrix_weights(x, qw, "q6_k"), np.full((1, 32), F(2)))
    assert FR.imatrix_weights(x, None, "q4_0") is None
    assert FR.imatrix_weights(x, qw, "q8_0") is None
    assert_array_equal(FR.imatrix_weights(x, None, "iq4_nl"), np.ones((1, 32), F))
    # Q4_K: σ² = 2Σx²/256 per super-block = 2, h = qw·√3; without: √(Σx²/32) + |x| = 2.
    x256 = np.ones((1, 256))
    assert_array_equal(FR.imatrix_weights(x256, np.full(256, 2.0), "Q4_K"),
                       np.full((1, 256), F(2) * np.sqrt(F(3))))
    assert_array_equal(FR.imatrix_weights(x256, None, "q5_k"), np.full((1, 256), F(2)))


# --- bit for bit against gguf-py / ggml -------------------------------------------------------


@pytest.mark.parametrize("inp", ["rand", "edge"])
@pytest.mark.parametrize("kind", list(REF))
def test_reference_rules_match_gguf(kind, inp):
    x = INP[inp]
    q = REF[kind](x)
    d, m, codes = parse(GGUF[f"{inp}_{kind}_raw"], kind)
    assert_array_equal(q.codes.reshape(-1, 32), codes)
    _same_bits(q.alpha.reshape(-1), d)
    if m is not None:
        _same_bits(q.info["offset"].reshape(-1), m)
    _same_bits(q.values, GGUF[f"{inp}_{kind}_deq"].reshape(q.values.shape))
    assert q.group_size == 32 and q.alpha.shape == x.shape[:-1] + (x.shape[-1] // 32,)


def test_gguf_fixture_ties_are_there():
    # The edge fixture holds the float32 tie cases the test above checks against gguf-py.
    d, _, codes = parse(GGUF["edge_q4_0_raw"], "q4_0")
    i = EDGE_NAMES.index("ties_q4_0")
    assert d[i] == -1.0
    # x = k + ½ (k = −8 … 7): x·id + 8.5 = 8 − k exactly → code −k, clamped to 7 (k = −8).
    assert codes[i, 1:17].tolist() == [min(-k, 7) for k in range(-8, 8)]


@pytest.mark.parametrize(("kind", "nmax"), [("q4_0", 8), ("q5_0", 16)])
def test_imatrix_path_matches_c(kind, nmax):
    x = INP["rand"]
    h = FR.imatrix_weights(x, INP["qw"], kind)
    q = REF[kind](x, weights=h)
    d, _, codes = parse(GGML[f"{kind}_rand_imatrix"], kind)
    assert_array_equal(q.codes.reshape(-1, 32), codes)
    _same_bits(q.alpha.reshape(-1), d)
    assert "make_qx_quants" in q.info["source"]


QX_CASES = [(8, 1, True), (16, 1, True), (8, 1, False), (32, 1, False), (8, 2, False),
            (8, 3, False), (8, 4, False), (8, 0, False), (8, -1, False), (4, 1, True)]


@pytest.mark.parametrize("inp", ["rand", "edge"])
@pytest.mark.parametrize(("nmax", "rmse", "weighted"), QX_CASES)
def test_make_qx_quants_matches_c(nmax, rmse, weighted, inp):
    x = INP[inp]
    h = (INP["h"] if inp == "rand" else np.ones_like(x)) if weighted else None
    q = FR.make_qx_quants(x, nmax, weights=h, rmse_type=rmse)
    rec = GGML[f"qx_{nmax}_{rmse}_{'h' if weighted else 'none'}_{inp}"].reshape(-1, 36)
    scale = np.ascontiguousarray(rec[:, :4]).view(F).reshape(-1)
    codes = rec[:, 4:].view(np.int8).astype(np.int64) - nmax
    assert_array_equal(q.codes.reshape(-1, 32), codes)
    _same_bits(q.alpha.reshape(-1), scale)


KX_CASES = [(15, -1.0, 0.1, 20), (31, -0.5, 0.1, 15), (15, -0.9, 0.05, 36), (15, -1.0, 0.1, 0),
            (3, -0.5, 0.1, 15)]


@pytest.mark.parametrize("src", ["rand_h", "rand_ref", "edge_ref"])
@pytest.mark.parametrize(("nmax", "rmin", "rdelta", "nstep"), KX_CASES)
def test_make_qkx2_quants_matches_c(nmax, rmin, rdelta, nstep, src):
    x = INP[src.split("_")[0]]
    h = INP["h"] if src == "rand_h" else None  # None: Q4_K's reference weights
    q = FR.make_qkx2_quants(x, nmax, weights=h, rmin=rmin, rdelta=rdelta, nstep=nstep)
    rec = GGML[f"qkx2_{nmax}_{rmin}_{rdelta}_{nstep}_{src}"].reshape(-1, 40)
    scale = np.ascontiguousarray(rec[:, :4]).view(F).reshape(-1)
    the_min = np.ascontiguousarray(rec[:, 4:8]).view(F).reshape(-1)
    assert_array_equal(q.codes.reshape(-1, 32), rec[:, 8:].astype(np.int64))
    _same_bits(q.alpha.reshape(-1), scale)
    assert_array_equal(q.info["offset"].reshape(-1), -the_min.astype(np.float64))


@pytest.mark.parametrize(("fixture", "inp", "imatrix", "search"), [
    ("iq4_nl_rand", "rand", False, True), ("iq4_nl_rand_imatrix", "rand", True, True),
    ("iq4_nl_edge", "edge", False, True), ("iq4_nl_rand_ref", "rand", False, False),
    ("iq4_nl_edge_ref", "edge", False, False)])
def test_iq4_nl_matches_c(fixture, inp, imatrix, search):
    x = INP[inp]
    h = FR.imatrix_weights(x, INP["qw"], "iq4_nl") if imatrix else None
    q = FR.iq4_nl(x, weights=h, search=search)
    d, _, codes = parse(GGML[fixture], "iq4_nl")
    _same_bits(q.alpha.reshape(-1), d)
    live = d != 0  # the C reference leaves an all-zero block's nibbles stale
    assert_array_equal(q.codes.reshape(-1, 32)[live], codes[live])
    if search:
        assert_array_equal(q.codes.reshape(-1, 32), codes)
    expect = d[:, None] * np.asarray(q.info["codebook"], dtype=F)[codes]
    _same_bits(q.values.reshape(-1, 32)[live], expect[live])


@pytest.mark.parametrize("kind", ["nf4", "fp4"])
def test_bnb_matches_bitsandbytes(kind):
    fn = FR.bnb_nf4 if kind == "nf4" else FR.bnb_fp4
    q = fn(BNB["x"])
    assert_array_equal(q.codes, BNB[f"{kind}_codes"].astype(np.int64))
    _same_bits(q.alpha.reshape(-1), BNB[f"{kind}_absmax"])
    _same_bits(q.values, BNB[f"{kind}_deq"])
    _same_bits(q.info["codebook"], BNB[f"{kind}_table"])


# --- kernel vs twin ------------------------------------------------------------------------------


def _kernel_and_twin(x, h, nmax, rmse):
    got = make_qx_rows(x, h, nmax, rmse)
    want = naive.make_qx_quants(x, h, nmax, rmse)
    assert_array_equal(got[0], want[0])
    _same_bits(got[1], want[1])
    _same_bits(got[2], want[2])


@pytest.mark.parametrize("rmse", [1, 2, 3, 4, 0, -1, -3])
def test_make_qx_kernel_matches_twin(rng, rmse):
    x = (rng.standard_normal((300, 32)) * rng.exponential(1.0, (300, 1))).astype(F)
    x[0] = 0.0
    x[1] = 0.25
    x[2, :5] = [-1.0, 1.0, 0.5, -0.5, 0.0]
    h = rng.exponential(1.0, x.shape).astype(F)
    h[3] = 0.0
    _kernel_and_twin(x, None, 8, rmse)
    _kernel_and_twin(x, h, 16, rmse)


@given(hnp.arrays(F, st.tuples(st.integers(1, 6), st.integers(1, 40)),
                  elements=st.floats(-1e3, 1e3, width=32)),
       st.integers(1, 40), st.sampled_from([1, 2, 3, 0, -1]))
def test_make_qx_kernel_matches_twin_property(x, nmax, rmse):
    _kernel_and_twin(x, np.abs(x[::-1]).astype(F) if rmse == 1 else None, nmax, rmse)


@given(hnp.arrays(F, st.tuples(st.integers(1, 4), st.just(32)),
                  elements=st.floats(-100, 100, width=32)))
def test_reference_rules_properties(x):
    for fn, lo, hi in ((FR.q4_0, -8, 7), (FR.q5_0, -16, 15), (FR.q8_0, -127, 127),
                       (FR.q4_1, 0, 15), (FR.q5_1, 0, 31)):
        q = fn(x)
        assert q.codes.min() >= lo and q.codes.max() <= hi
        offset = q.info.get("offset", np.zeros(q.alpha.shape))[..., None]
        expect = (q.alpha[..., None].astype(F) * q.codes.reshape(-1, 1, 32).astype(F)
                  ).astype(F) + offset.astype(F)
        assert_array_equal(q.values.reshape(-1, 1, 32), expect)


# --- inputs ------------------------------------------------------------------------------------


def test_inputs_not_modified_and_float64_rounded_to_float32():
    x = np.linspace(-1, 1, 64)
    before = x.copy()
    h = np.ones(64)
    FR.q4_0(x, weights=h)
    FR.make_qkx2_quants(x, weights=h)
    assert_array_equal(x, before)
    assert_array_equal(FR.q4_0(x).codes, FR.q4_0(x.astype(F)).codes)


@pytest.mark.parametrize("fn", [FR.q4_0, FR.q8_0, FR.q4_1, FR.iq4_nl, FR.gptq_rtn,
                                FR.compressed_tensors_rtn, FR.bnb_nf4])
def test_bad_group_size(fn):
    with pytest.raises(ValueError, match="`group_size` must be a divisor"):
        fn(np.ones(96), group_size=7 if fn is not FR.gptq_rtn else 100)
    with pytest.raises(ValueError, match="`group_size` must be an integer >= 1"):
        fn(np.ones(96), group_size=0)
    with pytest.raises(TypeError, match="`group_size` must be an integer"):
        fn(np.ones(96), group_size=32.0)


@pytest.mark.parametrize("fn", [FR.q4_0, FR.iq4_nl, FR.make_qkx2_quants,
                                lambda w, weights: FR.make_qx_quants(w, 8, weights=weights)])
def test_bad_weights(fn):
    w = np.ones((2, 32))
    with pytest.raises(ValueError, match="`weights` must be broadcastable"):
        fn(w, weights=np.ones(31))
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        fn(w, weights=-np.ones(32))
    with pytest.raises(ValueError, match="`weights` must be finite"):
        fn(w, weights=np.full(32, np.nan))
    with pytest.raises(TypeError, match="`weights` must be an array of real numbers"):
        fn(w, weights=np.array(["a"] * 32))


def test_bad_inputs():
    with pytest.raises(ValueError, match="`w` contains 1 non-finite"):
        FR.q4_0(np.array([np.nan] + [0.0] * 31))
    with pytest.raises(ValueError, match="`w` must be finite in float32"):
        FR.q8_0(np.full(32, 1e300))
    with pytest.raises(ValueError, match="`w` must be an array with at least one axis"):
        FR.q4_0(1.0)
    with pytest.raises(ValueError, match="`nmax` must be an integer in"):
        FR.make_qx_quants(np.ones(32), 128)
    with pytest.raises(ValueError, match="`rmse_type` must be an integer in"):
        FR.make_qx_quants(np.ones(32), 8, rmse_type=5)
    with pytest.raises(ValueError, match="`bits` must be an integer in"):
        FR.gptq_rtn(np.ones(128), bits=1)
    with pytest.raises(TypeError, match="`symmetric` must be True or False"):
        FR.awq_rtn(np.ones(128), symmetric="yes")
    with pytest.raises(TypeError, match="`search` must be True or False"):
        FR.iq4_nl(np.ones(32), search=1)
    with pytest.raises(ValueError, match="`qtype` must be one of"):
        FR.imatrix_weights(np.ones(32), np.ones(32), "q2_k")
    with pytest.raises(ValueError, match=r"`imatrix` must be one value per column"):
        FR.imatrix_weights(np.ones((2, 32)), np.ones(64), "q4_0")
    with pytest.raises(ValueError, match="`w` must be rows whose length is a multiple of 256"):
        FR.imatrix_weights(np.ones(64), np.ones(64), "q4_k")
    with pytest.raises(ValueError, match="`imatrix` must be non-negative"):
        FR.imatrix_weights(np.ones(32), -np.ones(32), "q4_0")


# --- GPTQ / AWQ / compressed-tensors against the released code -----------------------------------

RTN = _load("rtn.npz")
RTN_FN = {"gptq": FR.gptq_rtn, "awq": FR.awq_rtn, "ct": FR.compressed_tensors_rtn}


@pytest.mark.parametrize(("inp", "g"), [("rand", 128), ("edge", 8)])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("bits", [3, 4, 8])
@pytest.mark.parametrize("lib", list(RTN_FN))
def test_rtn_rules_match_released_code(lib, bits, sym, inp, g):
    x = INP["rand"][:4] if inp == "rand" else RTN["x_edge"]
    q = RTN_FN[lib](x, bits=bits, group_size=g, symmetric=sym)
    tag = f"{lib}_{inp}_{bits}_{'sym' if sym else 'asym'}"
    scale, zero, codes = RTN[f"{tag}_scale"], RTN[f"{tag}_zero"], RTN[f"{tag}_codes"]
    assert_array_equal(q.codes.reshape(-1, g), codes)
    _same_bits(q.step.reshape(-1), scale)
    z = q.info.get("zero_point", np.zeros(q.alpha.shape, np.int64)).reshape(-1)
    assert_array_equal(z, zero)
    if lib == "ct":  # the scale is kept in float32: values are the library's dequantize
        _same_bits(q.alpha.reshape(-1), scale)
        _same_bits(q.values.reshape(-1, g), RTN[f"{tag}_dq"])
    else:  # their fake-quant is scale·(q − z) with the float32 scale; storage is fp16
        _same_bits(q.alpha.reshape(-1), scale.astype(np.float16))
        fq = (scale[:, None] * (codes - zero[:, None]).astype(F)).astype(F)
        # == rather than bits: their float round() leaves −0.0 where the integer code is 0.
        assert_array_equal(fq, RTN[f"{tag}_fq"])
        _same_bits(q.values.reshape(-1, g),
                   q.alpha.reshape(-1, 1).astype(F) * (codes - zero[:, None]).astype(F))


def test_iq4_nl_iscale_is_what_assigned_the_codes():
    x = INP["rand"][:2]
    for search in (True, False):
        q = FR.iq4_nl(x, search=search)
        y = (q.info["iscale"].reshape(-1, 1).astype(F) * x.reshape(-1, 32)).astype(F)
        table = np.asarray(q.info["codebook"], dtype=F)
        # the nearest entry (ties upward) of iscale·x, by brute force
        dist = np.abs(y[..., None] - table)
        best = np.where(dist == dist.min(-1, keepdims=True), np.arange(16), -1).max(-1)
        assert_array_equal(q.codes.reshape(-1, 32), best)
    ref = FR.iq4_nl(x, search=False)
    vmax = x.reshape(-1, 32)[np.arange(16), np.argmax(np.abs(x.reshape(-1, 32)), axis=1)]
    _same_bits(ref.info["iscale"].reshape(-1), F(1) / (vmax / F(-127)))
