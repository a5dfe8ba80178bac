"""torchao int4 (tinygemm) and HQQ: the rules against the libraries' own outputs
(tests/fixtures/formats/affine/, made by its make_affine.py with torchao 0.18.0 and hqq
0.2.8.post1), and their diagnosis by ``verify_format`` (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vecq_ref import format_rules as FR
from vecq_ref.check.blocks import CANDIDATES, verify_format
from vecq_ref.formats import format_level_set
from vecq_ref.formats.affine import hqq_block, torchao_int4_block

ml_dtypes = pytest.importorskip("ml_dtypes")

AFFINE = Path(__file__).parent / "fixtures" / "formats" / "affine"
Z = np.load(AFFINE / "affine.npz")
MANIFEST = json.loads((AFFINE / "manifest.json").read_text())
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
TORCHAO = ["torchao_bf16_g32", "torchao_bf16_g64", "torchao_bf16_g128", "torchao_fp16_g128",
           "torchao_fp32_g64"]
HQQ = ["hqq_fp16_g64", "hqq_bf16_g64"]


def get(key):
    """A fixture array in its own dtype (bf16 kept as ml_dtypes.bfloat16)."""
    if key in Z:
        return Z[key]
    return Z[key + "@bf16"].view(ml_dtypes.bfloat16)


def case(name):
    lib, d, g = name.split("_")
    w = get(f"w_{d}/w")
    return dict(w=w, dtype=DTYPES[d], g=int(g[1:]), codes=Z[f"{name}/codes"],
                scale=get(f"{name}/scale"), zero=get(f"{name}/zero"), dq=get(f"{name}/dq"))


def f64(a):
    return np.asarray(a).astype(np.float64)


def torchao_bt(c):
    rows = c["w"].shape[0]
    return torchao_int4_block(c["codes"], c["scale"].reshape(rows, -1),
                              c["zero"].reshape(rows, -1), c["g"])


def test_manifest_names_the_libraries_and_every_case():
    v = MANIFEST["versions"]
    assert v["torchao"] == "0.18.0" and v["hqq"] == "0.2.8.post1" and v["torch"].startswith(
        "2.13.0")
    assert sorted(MANIFEST["cases"]) == sorted(TORCHAO + HQQ)
    assert (AFFINE / "affine.npz").stat().st_size < 100_000


# --- the rules, bit for bit with the libraries ------------------------------------------------

@pytest.mark.parametrize("name", TORCHAO)
def test_torchao_rule_is_torchao_bit_for_bit(name):
    c = case(name)
    q = FR.torchao_int4(c["w"], c["g"], c["dtype"])
    assert np.array_equal(q.codes, c["codes"])
    assert np.array_equal(q.alpha.reshape(-1), f64(c["scale"]).reshape(-1))
    assert np.array_equal(q.info["zero"].reshape(-1), f64(c["zero"]).reshape(-1))
    assert np.array_equal(q.values, c["dq"].astype(np.float32))   # torchao's dequantizer


@pytest.mark.parametrize("name", HQQ)
def test_hqq_grid_and_codes_are_hqq_bit_for_bit(name):
    c = case(name)
    g = c["g"]
    wg = FR.hqq_groups(c["w"], g)
    q = FR.hqq_affine(wg, 4, g, zero=c["zero"].reshape(-1))
    assert np.array_equal(q.alpha.reshape(-1), f64(c["scale"]).reshape(-1))   # 1/i
    assert np.array_equal(q.codes, c["codes"].T)                              # (g, −1) layout
    assert np.array_equal(q.values, FR.hqq_groups(c["dq"], g))
    # The zero is HQQ's optimised one, not the min–max zero in any group.
    assert not np.any(q.info["initial_zero"].reshape(-1) == f64(c["zero"]).reshape(-1))


def test_torchao_rule_by_hand():
    # One group [0, 2.5, 3.5, 15]: s = 15/15 = 1, zp = 0 + 8·1 = 8, lo = zp − 8s = 0;
    # codes round_half_even(x − 0) = [0, 2, 4, 15]; values (q − 8)·1 + 8 = q.
    w = np.array([[0.0, 2.5, 3.5, 15.0]], dtype=np.float32)
    q = FR.torchao_int4(w, 4)
    assert q.codes.tolist() == [[0, 2, 4, 15]]
    assert q.values.tolist() == [[0.0, 2.0, 4.0, 15.0]]
    assert float(q.info["zero"][0, 0]) == 8.0 and float(q.info["offset"][0, 0]) == 0.0
    # Variants: half away gives 3 for 2.5; zp = min shifts every code up 8 (clamped at 15).
    assert FR.torchao_int4(w, 4, rounding="half-away").codes.tolist() == [[0, 3, 4, 15]]
    assert FR.torchao_int4(w, 4, zero="min").codes.tolist() == [[8, 10, 12, 15]]


def test_hqq_rule_by_hand():
    # [0, 1.5, 3]: i = (1/3)·15 = 5 (float32), z = −0·5 = 0, codes round(w·5) = [0, 8, 15]
    # (7.5 → 8 half to even), s = 1/5 stored.
    q = FR.hqq_affine(np.array([0.0, 1.5, 3.0]), 4, 3)
    assert q.codes.tolist() == [0, 8, 15]
    assert float(q.alpha[0]) == float(np.float32(1) / np.float32(5))
    assert FR.hqq_groups(np.arange(8).reshape(2, 4), 2).tolist() == [[0, 4], [1, 5], [2, 6],
                                                                      [3, 7]]
    assert FR.hqq_groups(np.arange(8).reshape(2, 4), 2, axis=1).tolist() == [[0, 1], [2, 3],
                                                                             [4, 5], [6, 7]]


# --- BlockTensors -------------------------------------------------------------------------------

def test_torchao_block_minimum_and_dequantize():
    c = case("torchao_bf16_g32")
    bt = torchao_bt(c)
    assert bt.format == "torchao-int4" and bt.kind == "min" and bt.scale_dtype.name == "bfloat16"
    s, zp = f64(c["scale"]), f64(c["zero"])
    assert np.array_equal(bt.minimum, zp - 8 * s)
    # dequantize() rounds s·q + m once; torchao rounds (q − 8)·s, then + zp: within an ulp.
    dq = f64(c["dq"])
    got = f64(bt.dequantize())
    # Each bf16 rounding errs by at most half an ulp, 2^−8 of the value rounded.
    part = np.abs((f64(c["codes"]) - 8) * np.repeat(s, 32, axis=1))
    bound = 2.0 ** -8 * (part + np.abs(dq)) + 2.0 ** -8 * np.abs(got)
    assert np.all(np.abs(got - dq) <= bound)
    assert np.mean(got == dq) > 0.5
    ls = format_level_set(bt)
    assert ls.zero_point == "float" and ls.bits == 4


def test_hqq_block_layout():
    c = case("hqq_fp16_g64")
    bt = hqq_block(c["codes"], c["scale"], c["zero"], 64)
    assert bt.shape == (c["w"].size // 64, 64) and bt.format == "hqq"
    assert np.array_equal(bt.minimum.reshape(-1), -f64(c["zero"]).reshape(-1)
                          * f64(c["scale"]).reshape(-1))
    vals = bt.dequantize(np.float64)
    assert np.max(np.abs(vals - FR.hqq_groups(f64(c["dq"]), 64))) < 1e-6
    assert format_level_set(bt).zero_point == "float"


def test_builders_reject_bad_input():
    with pytest.raises(ValueError, match="`codes`"):
        torchao_int4_block(np.full((1, 4), 16), [[1.0]], [[0.0]], 4)
    with pytest.raises(ValueError, match="`zero_point`"):
        torchao_int4_block(np.zeros((1, 4)), [[1.0]], [[0.0, 1.0]], 4)
    with pytest.raises(ValueError, match="`codes`"):
        hqq_block(np.zeros((3, 2)), [1.0, 1.0], [0.0, 0.0], 2)
    with pytest.raises(ValueError, match="`zero`"):
        FR.torchao_int4(np.zeros(4), 4, zero="max")
    with pytest.raises(ValueError, match="`rounding`"):
        FR.hqq_affine(np.zeros(4), 4, 4, rounding="up")
    with pytest.raises(ValueError, match="`group_size`"):
        FR.hqq_groups(np.zeros(6), 4)


# --- verify_format ------------------------------------------------------------------------------

def test_candidates_include_the_real_offset_formats():
    assert CANDIDATES[-2:] == ("torchao-int4", "hqq")


@pytest.mark.parametrize("name", ["torchao_bf16_g32", "torchao_fp16_g128", "torchao_fp32_g64"])
def test_torchao_passes_bit_for_bit(name):
    c = case(name)
    for q, fmt in ((torchao_bt(c), None), (c["dq"], "torchao-int4"), (c["dq"], None)):
        r = verify_format(c["w"], q, format=fmt, group_size=c["g"], quality=False)
        assert r.passed is True, r.summary_line()
        assert r.format == "torchao-int4" and r.recovered_fraction == 1.0
        assert r.rule == ("torchao int4 affine (tinygemm): min–max scale, float zero "
                          "min + 8·s, bit for bit")
        assert r.claimed is (fmt is not None or not isinstance(q, np.ndarray))
        st_row = next(x for x in r.components if x.name == "storage")
        assert c["dtype"] in st_row.finding


def test_torchao_report_text_and_quality():
    c = case("torchao_bf16_g128")
    r = verify_format(c["w"], c["dq"], format="torchao", group_size=128, quality="format")
    text = str(r)
    assert "verdict: PASS" in text and all(len(line) <= 100 for line in text.splitlines())
    assert r.optimum_rel_dql <= r.rel_dql * (1 + 1e-9)
    assert r.gap_pct >= -1e-6


def test_torchao_zero_min_fails_naming_the_zero():
    c = case("torchao_bf16_g32")
    wrong = FR.torchao_int4(c["w"], 32, "bfloat16", zero="min")
    r = verify_format(c["w"], wrong.values, format="torchao-int4", group_size=32,
                      quality=False)
    assert r.passed is False
    assert r.departure.startswith("zero point: zp = min")
    by = {x.name: x for x in r.components}
    assert by["scale rule"].ok and by["rounding"].ok and by["zero point"].ok is False
    assert by["zero point"].cost > 0            # the shift forgotten costs DQL
    # As a BlockTensor: the same.
    bt = torchao_int4_block(wrong.codes, wrong.alpha, wrong.info["zero"], 32, dtype="bfloat16")
    r2 = verify_format(c["w"], bt, quality=False)
    assert r2.passed is False and r2.departure.startswith("zero point: zp = min")


def test_torchao_half_away_fails_naming_the_rounding():
    c = case("torchao_bf16_g32")          # bf16 arithmetic: many exact halves
    wrong = FR.torchao_int4(c["w"], 32, "bfloat16", rounding="half-away")
    ref = FR.torchao_int4(c["w"], 32, "bfloat16")
    assert not np.array_equal(wrong.codes, ref.codes)        # the variant does differ here
    r = verify_format(c["w"], wrong.values, format="torchao-int4", group_size=32,
                      quality=False)
    assert r.passed is False and r.departure.startswith("rounding: half away from zero")
    by = {x.name: x for x in r.components}
    assert by["zero point"].ok and by["scale rule"].ok


def test_torchao_scale_in_float32_fails_naming_the_scale():
    c = case("torchao_bf16_g32")
    w32 = c["w"].astype(np.float32)
    q32 = FR.torchao_int4(w32, 32, "float32")
    s = q32.alpha.astype(np.float32).astype(ml_dtypes.bfloat16)
    zp = q32.info["zero"].astype(np.float32).astype(ml_dtypes.bfloat16)
    bt = torchao_int4_block(q32.codes, s, zp, 32)
    r = verify_format(c["w"], bt, quality=False)
    assert r.passed is False and r.departure.startswith("scale rule")


@pytest.mark.parametrize("name", HQQ)
def test_hqq_is_undecided_with_the_checkable_parts_checked(name):
    c = case(name)
    bt = hqq_block(c["codes"], c["scale"], c["zero"], 64)
    for q, fmt in ((bt, None), (c["dq"], "hqq"), (c["dq"], None)):
        r = verify_format(c["w"], q, format=fmt, group_size=64, quality=False)
        assert r.passed is None and r.format == "hqq", r.summary_line()
        assert "p = 0.7" in r.undecided and r.recovered_fraction == 1.0
        by = {x.name: x for x in r.components}
        assert by["zero point"].ok is None
        assert by["level set"].ok and by["scale rule"].ok and by["storage"].ok
        assert by["rounding"].ok                     # codes = round(w·i + z) under the stored z
        assert any("same library" in n for n in r.notes)
    text = str(r)
    assert "verdict: UNDECIDED" in text and all(len(x) <= 100 for x in text.splitlines())


def test_hqq_unoptimised_zero_passes_and_half_away_fails():
    c = case("hqq_bf16_g64")
    wg = FR.hqq_groups(c["w"], 64)
    q = FR.hqq_affine(wg, 4, 64)                          # optimize=False
    bt = hqq_block(q.codes.T, q.alpha, q.info["zero"].astype(np.float32), 64)
    r = verify_format(c["w"], bt, quality=False)
    assert r.passed is True and "optimize=False" in r.rule
    # By hand: [0, 0.5, 3]: i = 5, z = 0, w·i = [0, 2.5, 15]: half to even [0, 2, 15], half
    # away [0, 3, 15]; HQQ's codes are the former, the latter departs in the rounding.
    w = np.array([0.0, 0.5, 3.0], dtype=np.float32)
    ref = FR.hqq_affine(w, 4, 3)
    away = FR.hqq_affine(w, 4, 3, rounding="half-away")
    assert ref.codes.tolist() == [0, 2, 15] and away.codes.tolist() == [0, 3, 15]
    for q, ok in ((ref, True), (away, False)):
        bt = hqq_block(q.codes.reshape(3, 1), q.alpha, q.info["zero"], 3, dtype="float32")
        r = verify_format(w, bt, quality=False)
        assert r.passed is ok, r.summary_line()
    assert r.departure.startswith("rounding: half away")


def test_hqq_square_weight_is_regrouped():
    # 64×64, group 64: HQQ's groups are the columns (w.reshape(64, −1) is w itself), so the
    # BlockTensor (64, 64) is w.T's layout even though the shapes agree.
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    w[:, 0] *= 10                                   # column 0 is one group: its own scale
    q = FR.hqq_affine(FR.hqq_groups(w, 64), 4, 64)
    bt = hqq_block(q.codes.T, q.alpha, q.info["zero"], 64, dtype="float32")
    assert verify_format(w, bt, quality=False).passed is True
    assert verify_format(w.T.copy(), bt, quality=False).passed is False


def test_hqq_wrong_scale_fails():
    c = case("hqq_fp16_g64")
    bt = hqq_block(c["codes"], f64(c["scale"]) * 1.01, c["zero"], 64, dtype="float32")
    r = verify_format(c["w"], bt, quality=False)
    assert r.passed is False and r.departure.startswith("scale rule")


# --- properties and edge cases -------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.float32, (2, 16), elements=st.floats(-4, 4, width=32)),
       st.sampled_from(["float32", "float16", "bfloat16"]))
def test_torchao_rule_always_passes_and_is_nearest(w, dtype):
    q = FR.torchao_int4(w, 8, dtype)
    r = verify_format(w, q.values, format="torchao-int4", group_size=8, dtype=dtype,
                      quality=False)
    assert r.passed is True, r.summary_line()
    # Codes are within 0…15 and the nearest under the stored s and m = zp − 8s (to rounding).
    x = FR._rounder(dtype)(w.astype(np.float32)).astype(np.float64).reshape(-1, 8)
    s = q.alpha.reshape(-1, 1)
    m = q.info["offset"].reshape(-1, 1)
    c = q.codes.reshape(-1, 8)
    y = (x - m) / s
    assert np.all((c >= 0) & (c <= 15))
    assert np.all((np.abs(y - c) <= 0.5 + 2 ** -6 * (1 + np.abs(y))) | (c == 0) | (c == 15))


@pytest.mark.parametrize("w", [np.zeros((1, 4)), np.full((1, 4), 0.3), np.array([[2.0]])])
def test_torchao_edge_cases_pass(w):
    g = w.shape[1]
    q = FR.torchao_int4(w, g)
    assert np.all(q.alpha > 0)                          # clamped to the smallest normal
    r = verify_format(w, q.values, format="torchao-int4", group_size=g, quality=False)
    assert r.passed is True
    np.testing.assert_allclose(q.values, np.asarray(w, dtype=np.float32), atol=1e-30)


def test_hqq_edge_cases():
    # A constant group: max − min = 0 ≤ 1e-4, so i = 1; z = −min; codes round(w + z) = 0.
    q = FR.hqq_affine(np.full(4, 0.3), 4, 4)
    assert float(q.info["inverse"][0]) == 1.0 and q.codes.tolist() == [0, 0, 0, 0]
    bt = hqq_block(q.codes.reshape(4, 1), q.alpha, q.info["zero"], 4, dtype="float32")
    assert verify_format(np.full(4, 0.3), bt, quality=False).passed is True


def test_torchao_widened_bf16_weight_needs_its_dtype():
    c = case("torchao_bf16_g32")
    w32 = c["w"].astype(np.float32)                # a bf16 checkpoint read as float32
    r = verify_format(w32, c["dq"], format="torchao-int4", group_size=32, quality=False)
    assert r.passed is False and any("dtype='bfloat16'" in n for n in r.notes)
    r = verify_format(w32, c["dq"], format="torchao-int4", group_size=32, dtype="bfloat16",
                      quality=False)
    assert r.passed is True


def test_hqq_weights_are_regrouped_with_w():
    c = case("hqq_fp16_g64")
    h = np.ones(c["w"].shape)
    h[:, 0] = 0.0
    bt = hqq_block(c["codes"], c["scale"], c["zero"], 64)
    r0 = verify_format(c["w"], bt, quality=False)
    r1 = verify_format(c["w"], bt, weights=h, quality=False)
    assert r1.weighted and r1.passed is None and r1.rel_dql != r0.rel_dql
