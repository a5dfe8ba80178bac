"""Issue 22's block-format diagnosis faults (a fresh-user trial), kept as reproducers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import vecq_ref as vq
from vecq_ref import format_rules as FR
from vecq_ref import naive
from vecq_ref.check.blocks import format_optimum, verify_format
from vecq_ref.formats import format_level_set


def _ct_fp16(w, div, g=32):
    """The trial's compressed-tensors symmetric rule computed in float16: s = amax/div in
    fp16, q = clip(round(x/s), −8, 7), values q·s rounded to fp16 (not exactly s·q)."""
    x = np.asarray(w, dtype=np.float16).reshape(-1, g)
    s = (np.abs(x).max(1) / np.float16(div)).astype(np.float16)
    q = np.clip(np.round((x / s[:, None]).astype(np.float16)), -8, 7)
    return (q * s[:, None]).astype(np.float16).reshape(np.shape(w))


@pytest.fixture
def w16():
    return (np.random.default_rng(22).standard_normal((8, 64)) * 0.02).astype(np.float16)


def test_ct_sym_fp16_products_recovered_not_zeroed(w16):
    # fp16 products are s·q only to within 2^-11 relative: before the fix no group passed the
    # exact recovery and its codes and scale were left at 0 (rel. DQL ≈ 0.87 instead of 0.01)
    wq = _ct_fp16(w16, 7.5).astype(np.float32)
    r = verify_format(w16.astype(np.float32), wq, format="ct-sym", group_size=32,
                      quality=False)
    bt = r.block
    assert np.all(bt.scale > 0)
    d = bt.dequantize(np.float64)
    assert np.all(np.abs(d - wq) <= 2.0 ** -10 * np.abs(wq) + 1e-12)


def test_ct_sym_reported_dql_is_vector_loss(w16):
    for div in (7.5, 7.0):
        wq = _ct_fp16(w16, div)
        r = vq.verify(w16, wq, bits=4, group_size=32, format="ct-sym")
        expected = vq.vector_loss(w16, wq).relative_dql
        assert_allclose(r.rel_dql, expected, rtol=1e-12)
        assert r.rel_dql < 0.05  # the bug's figure was ≈ 0.8
        assert_allclose(r.gap_pct, 100 * (expected / r.optimum_rel_dql - 1), rtol=1e-12)


_RULES = {
    "q4_0": lambda w: FR.q4_0(w).values,
    "q8_0": lambda w: FR.q8_0(w).values,
    "q4_1": lambda w: FR.q4_1(w).values,
    "gptq-sym": lambda w: FR.gptq_rtn(w, group_size=32).values,
    "ct-sym": lambda w: FR.compressed_tensors_rtn(w, group_size=32).values,
    "ct-asym": lambda w: FR.compressed_tensors_rtn(w, group_size=32, symmetric=False).values,
    "nf4": lambda w: FR.bnb_nf4(w, group_size=32).values,
}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), fmt=st.sampled_from(sorted(_RULES)),
       half=st.booleans())
def test_reported_dql_equals_vector_loss(seed, fmt, half):
    w = np.random.default_rng(seed).standard_normal((2, 64)).astype(np.float32)
    wq = np.asarray(_RULES[fmt](w), dtype=np.float32)
    if half:  # the output stored in float16: products rounded, recovered approximately
        wq = wq.astype(np.float16).astype(np.float32)
    r = verify_format(w, wq, format=fmt, group_size=32, quality="format")
    assert_allclose(r.rel_dql, vq.vector_loss(w, wq).relative_dql, rtol=1e-12)


def _brute_ct_sym(w, g):
    """Σ over groups of the exact optimum on levels −8…7 with s > 0 (naive twin), / ‖w‖²."""
    x = np.asarray(w, dtype=np.float64).reshape(-1, g)
    levels = np.arange(-8, 8, dtype=np.float64)
    loss = 0.0
    for row in x:
        b = naive.exact_levelset(row, None, levels)
        loss += float(row @ row) - b["S1"] ** 2 / b["S2"] if b["S2"] > 0 else float(row @ row)
    return loss / float(np.sum(x * x))


def test_ct_sym_optimum_over_its_level_set():
    # hand case: one group [1, -1, 0, 0] — levels −8…7 with s = 1/k hold ±1 exactly: 0
    w = np.array([[1.0, -1.0, 0.0, 0.0, 0.5, -0.5, 0.25, 0.0]])
    wq = FR.compressed_tensors_rtn(w, group_size=8).values
    r = verify_format(w, wq, format="ct-sym", group_size=8)
    assert r.optimum_rel_dql == pytest.approx(0.0, abs=1e-15)
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 16))
    wq = _ct_fp16(w, 7.5, g=8).astype(np.float64)
    r = verify_format(w, wq, format="ct-sym", group_size=8)
    ls = format_level_set(r.block)
    assert "integer" not in repr(ls)
    assert_allclose(r.optimum_rel_dql, _brute_ct_sym(w, 8), rtol=1e-12)
    # Q4_0's level set (−8…7, either sign of d) contains CT-sym's: its optimum is no worse
    q = verify_format(w, FR.q4_0(w, group_size=8).values, format="q4_0", group_size=8)
    assert q.optimum_rel_dql <= r.optimum_rel_dql * (1 + 1e-12)


def test_constant_v1_zero_is_the_symmetric_level_set():
    # a GPTQ v1 checkpoint read as v2: z = 7 in every group; the format is still symmetric
    w = np.random.default_rng(1).standard_normal((2, 32))
    bt = verify_format(w, FR.gptq_rtn(w, group_size=32).values, format="gptq-sym",
                       group_size=32).block
    from dataclasses import replace
    v1 = replace(bt, zero=np.full_like(np.asarray(bt.zero), 7))
    assert "integer" not in repr(format_level_set(v1))
    assert "integer" not in repr(format_level_set(bt))
    asym = replace(bt, zero=np.array([[7], [9]]))
    assert "integer" in repr(format_level_set(asym))
    o_sym, o_v1 = format_optimum(w, bt), format_optimum(w, v1)
    assert o_sym.optimum_rel_dql == o_v1.optimum_rel_dql


def test_verify_dtype_reaches_the_format_check(w16, tmp_path, capsys):
    # the note says "pass dtype='float16'": verify and the CLI take it
    wide = w16.astype(np.float32)
    wq = _ct_fp16(w16, 7.5).astype(np.float32)
    assert vq.verify(wide, wq, bits=4, group_size=32, format="ct-sym").passed is False
    r = vq.verify(wide, wq, bits=4, group_size=32, format="ct-sym", dtype="float16")
    assert r.passed is True
    with pytest.raises(ValueError, match="`dtype` must be a float dtype"):
        vq.verify(wide, wq, bits=4, group_size=32, format="ct-sym", dtype="float99")
    from vecq_ref.cli import main
    np.save(tmp_path / "w.npy", wide)
    np.save(tmp_path / "wq.npy", wq)
    argv = ["verify", str(tmp_path / "w.npy"), str(tmp_path / "wq.npy"), "--format", "ct-sym",
            "--group-size", "32"]
    assert main(argv) == 1
    assert "--dtype float16" in capsys.readouterr().out
    assert main(argv + ["--dtype", "float16"]) == 0
    assert main(argv + ["--dtype", "float99"]) == 2


def test_vecq_report_labels_w_by_its_own_dtype():
    # issue 22: a float16 w was labelled "w float32" (the dtype the check widened it to)
    w = np.random.default_rng(3).standard_normal((4, 32)).astype(np.float16)
    wq = vq.quantize(w, 4, group_size=32).values
    r = vq.verify(w, wq, bits=4, group_size=32)
    assert r.w_dtype == "float16"
    assert "w float16," in str(r).splitlines()[0] + str(r).splitlines()[1]
    assert vq.verify(w.astype(np.float32), wq, bits=4, group_size=32).w_dtype == "float32"
    assert vq.verify(w.astype(np.float64), wq, bits=4, group_size=32).w_dtype == "float64"


def test_format_report_wraps_instead_of_cutting():
    from vecq_ref.check._block_diagnose import Component
    from vecq_ref.check._block_rules import arith_words
    from vecq_ref.check.blocks import FormatReport

    assert arith_words("bfloat16").endswith("as torch does on a bf16 weight")
    assert arith_words("float16").endswith("as torch does on an fp16 weight")
    finding = ("scale stored in float16; " + arith_words("bfloat16") +
               "; absmax double-quantized (8 bits per 256 blocks); codes from the unquantized "
               "scales in 4608/4608 groups of 64")
    dep = ("scale rule: none of these in 145 groups; closest: abs-max over 7.5 = 2^(k−1) − ½ "
           "(compressed-tensors) in groups of 32")
    rep = FormatReport("ct-sym", "compressed-tensors symmetric 4-bit", True, False, None, dep,
                       [Component("storage", finding, True, detail="rule: " + finding)],
                       groups=4608, group_size=64, bits=4, shape=(4608, 64))
    rep.rel_dql, rep.optimum_rel_dql, rep.gap_pct = 0.0102, 0.0087, 17.9
    rep.optimum_certified = True
    text = str(rep)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "…" not in text
    flat = " ".join(text.split())
    assert finding in flat and dep in flat  # nothing lost
    s = rep.summary_line()
    assert len(s) <= 100 and s.endswith("…; +17.9 % vs format optimum")
    kept = s[:s.index("…")]
    assert ("FAIL compressed-tensors symmetric 4-bit, " + dep).startswith(kept)
    # a complete word before the ellipsis: the next character of the full text is a space
    full = "FAIL compressed-tensors symmetric 4-bit, " + dep
    assert full[len(kept)] in " ,;"


@pytest.mark.parametrize("seed", [0, 2])
def test_bit_exact_ct_sym_identified_without_format(seed):
    # CT-sym groups that never use −8 read as narrow midtread (17-21 of these 32 groups):
    # before the fix the VecQ table came back; the format's rule reproduces it bit for bit
    w = np.random.default_rng(seed).standard_normal((16, 64)).astype(np.float32)
    wq = FR.compressed_tensors_rtn(w, group_size=32).values.astype(np.float32)
    r = vq.verify(w, wq, bits=4, group_size=32)
    assert r.format == "ct-sym" and r.passed is True
    assert_allclose(r.rel_dql, vq.vector_loss(w, wq).relative_dql, rtol=1e-12)
    # a VecQ output is still checked against VecQ (every group read on its lattice)
    q = vq.quantize(w, 4, group_size=32).values
    assert type(vq.verify(w, q, bits=4, group_size=32)).__name__ == "VerifyReport"


def test_fp16_trial_outputs_diagnosed(w16):
    # /tmp/t22/ct.py: a float16 w, values q·s rounded to fp16 (products in fp16)
    r = vq.verify(w16, _ct_fp16(w16, 7.5), bits=4, group_size=32)
    assert r.format == "ct-sym" and r.passed is True  # identified, in w's own dtype
    r = vq.verify(w16, _ct_fp16(w16, 7.0), bits=4, group_size=32, format="ct-sym")
    assert r.passed is False and r.recovered_fraction == 1.0
    assert r.departure.startswith("scale rule: abs-max over 7 = 2^(k−1) − 1"), r.departure
    rows = {c.name: c for c in r.components}
    assert rows["storage"].finding.startswith("scale stored in float16")
