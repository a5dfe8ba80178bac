"""Trial T3's faults in verify's diagnosis (issue 22 side): a real offset's best found
(never worse than the integer zero point refitted and llama.cpp's make_qkx2_quants, one rule
for verify and audit), imatrix-made outputs checked without their imatrix, per-channel
block-format outputs (``axis=0``) and the library's own zero-point outputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecq_ref as vq
from vecq_ref import format_rules as FR

gguf = pytest.importorskip("gguf")
pytest.importorskip("safetensors")


# --- 1: a real offset's best found -------------------------------------------------------------

def _refit_losses(x, u):
    """Per group the least-squares (α, m) of codes u (α ≥ 0) and its loss, by hand."""
    out = []
    for xr, ur in zip(x, u.astype(np.float64), strict=True):
        A = np.stack([ur, np.ones_like(ur)], 1)
        (a, m), *_ = np.linalg.lstsq(A, xr, rcond=None)
        if a <= 0 or np.ptp(ur) == 0:
            a, m = 0.0, xr.mean()
        out.append(float(np.sum((xr - a * ur - m) ** 2)))
    return np.array(out)


def _q41_case(tmp_path):
    """A 16 × 64 tensor (32 groups of 32), written by write_gguf as Q4_1."""
    from safetensors.numpy import save_file

    from vecq_ref.formats.llamacpp import write_gguf

    rng = np.random.default_rng(11)
    w = (0.05 * rng.standard_normal((16, 64))).astype(np.float32)
    w[3, :32] = rng.standard_t(2, 32).astype(np.float32)  # a heavy-tailed group
    name = "encoder.layer.0.attention.self.query.weight"
    save_file({name: w}, str(tmp_path / "m.safetensors"))
    write_gguf(tmp_path / "m.safetensors", tmp_path / "m.gguf", "Q4_1")
    wq = FR.q4_1(w).values.reshape(w.shape).astype(np.float32)
    return w, wq


def test_real_offset_best_found_beats_its_candidates_and_audit_agrees(tmp_path):
    from vecq_ref.check.audit import audit
    from vecq_ref.check.blocks import verify_format

    w, wq = _q41_case(tmp_path)
    x = w.reshape(-1, 32).astype(np.float64)
    # the candidates, by hand: the exact integer zero point's codes, llama.cpp's
    # make_qkx2_quants codes (unit importance: the loss measured), each refitted; the output's
    # own loss
    u_int = vq.quantize(w, 4, "exact", zero_point="integer", group_size=32).codes
    u_k2 = FR.make_qkx2_quants(w, nmax=15, group_size=32, weights=np.ones(w.shape)).codes
    l_int = _refit_losses(x, np.asarray(u_int).reshape(-1, 32))
    l_k2 = _refit_losses(x, np.asarray(u_k2).reshape(-1, 32))
    l_out = np.sum((x - wq.reshape(-1, 32)) ** 2, axis=1)
    # the case of the trial: make_qkx2 beats the refitted integer zero point (and the output)
    # in some groups, so the old best found (integer zero point only) was too high
    assert np.any(l_k2 < np.minimum(l_int, l_out) * (1 - 1e-6))
    sxx = np.sum(x * x)
    want = np.sum(np.minimum(np.minimum(l_int, l_k2), l_out)) / sxx
    old = np.sum(np.minimum(l_int, l_out)) / sxx
    assert want < old * (1 - 1e-4)
    r = verify_format(w, wq, format="q4_1", exact_offset_groups=0)
    assert r.passed and not r.optimum_certified
    assert r.optimum_rel_dql == pytest.approx(want, rel=1e-9)
    assert any("make_qkx2_quants" in n and "not certified" in n for n in r.notes)
    assert "best found (not certified)" in str(r)
    res = audit(tmp_path / "m.safetensors", tmp_path / "m.gguf", progress=False,
                exact_offset_groups=0)
    (row,) = res.rows
    assert row.optimum_rel_dql == pytest.approx(r.optimum_rel_dql, rel=1e-12)
    assert row.rel_dql == pytest.approx(r.rel_dql, rel=1e-12)
    assert any("make_qkx2_quants" in n and "not certified" in n for n in row.notes)
    # certified below the limit: never above the best found, and both say it is certified
    e = verify_format(w, wq, format="q4_1")
    assert e.optimum_certified and e.optimum_rel_dql <= r.optimum_rel_dql * (1 + 1e-12)
    assert "exact optimum" in str(e)
    res = audit(tmp_path / "m.safetensors", tmp_path / "m.gguf", progress=False)
    assert res.rows[0].optimum_rel_dql == pytest.approx(e.optimum_rel_dql, rel=1e-12)
    assert not any("best found" in n for n in res.rows[0].notes)


def test_offset_best_found_is_the_search_steps_rule():
    """search_step's uncertified real-offset rows are never worse than the same candidates."""
    from vecq_ref.search import offset_best_found

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 40))  # 40 > AFFINE_EXACT_MAX: not certified
    r = vq.search_step(x, 4, "exact", zero_point="float", group_size=40)
    assert not np.any(r.certified)
    got = np.asarray(r.relative_dql).reshape(-1) * np.sum(x * x, axis=1)
    found = offset_best_found(x, None, 4)
    assert np.all(got <= found * (1 + 1e-12))
    # one group, all equal: loss 0 (a constant is α·0 + m)
    assert offset_best_found(np.full((1, 8), 0.3), None, 4)[0] == pytest.approx(0, abs=1e-30)


# --- 5: an imatrix-made output checked without its imatrix ------------------------------------

def _imatrix_case(key):
    """The ggml C outputs with an importance matrix (fixtures), as values and as a BlockTensor."""
    from test_blocks import GGML, INP, X, _gguf_bt

    kind = key.split("_rand")[0]
    bt = _gguf_bt(GGML[key], kind, X.shape)
    return X, INP["qw"], bt, bt.dequantize().astype(np.float32), kind


@pytest.mark.parametrize("key", ["q4_0_rand_imatrix", "iq4_nl_rand_imatrix"])
def test_imatrix_output_without_its_imatrix_is_undecided_and_the_advice_works(key):
    w, qw, _, wq, kind = _imatrix_case(key)
    r = vq.verify(w, wq, bits=4, group_size=32)
    assert r.passed is None and r.format == kind
    assert "imatrix path" in r.undecided and "imatrix would decide" in r.undecided
    assert str(r).count("verdict: UNDECIDED") == 1
    advice = [n for n in r.notes if "imatrix_weights(" in n]
    assert len(advice) == 1
    call = advice[0].split("pass ", 1)[1].split(" (CLI", 1)[0]
    assert call == f"weights=imatrix_weights(w, imatrix, {kind!r})"
    # the advice as written: verify(..., weights=...) without format= checks the format
    h = eval(call.split("=", 1)[1], {"imatrix_weights": FR.imatrix_weights, "w": w,
                                     "imatrix": qw})
    good = vq.verify(w, wq, bits=4, group_size=32, weights=h)
    assert good.passed is True and good.format == kind and "bit for bit" in good.rule


@pytest.mark.parametrize("key", ["q4_0_rand_imatrix", "iq4_nl_rand_imatrix"])
def test_one_code_off_is_no_importances_output(key):
    """One code moved by one level in one group: no candidate of the search gives those codes
    (Q4_0), or they are not the nearest entries at the stored scale (IQ4_NL): FAIL."""
    from dataclasses import replace

    w, _, bt, _, kind = _imatrix_case(key)
    codes = np.array(bt.codes)
    codes[5, 40] += 1 if codes[5, 40] < 15 else -1
    r = vq.verify(w, replace(bt, codes=codes))
    assert r.passed is False and r.format == kind


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), rows=st.integers(1, 4), kind=st.sampled_from(
    ["q4_0", "q5_0", "iq4_nl"]), spread=st.sampled_from([0.3, 1.0, 3.0]), ties=st.booleans())
def test_any_importance_matrix_output_is_never_a_fail(seed, rows, kind, spread, ties):
    """Soundness: the search's output under any importance matrix (lognormal, some columns 0)
    is PASS with its weights and never FAIL without them (``ties``: half-integer weights)."""
    from vecq_ref.check.blocks import verify_format

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, 64)) * 0.05).astype(np.float32)
    if ties:
        x = (rng.integers(-15, 16, size=(rows, 64)) / 2).astype(np.float32)
    qw = rng.lognormal(0.0, spread, 64)
    qw[rng.random(64) < 0.1] = 0.0
    h = FR.imatrix_weights(x, qw, kind)
    fn = {"q4_0": FR.q4_0, "q5_0": FR.q5_0, "iq4_nl": FR.iq4_nl}[kind]
    wq = np.asarray(fn(x, 32, weights=h).values, dtype=np.float32).reshape(x.shape)
    assert verify_format(x, wq, format=kind, weights=h, quality=False).passed is True
    assert verify_format(x, wq, format=kind, quality=False).passed is not False


def test_two_groups_no_importance_gives_are_a_fail():
    """By hand: groups [8, 1.5, 0…] and [1.5, 8, 0…] with d = 8/−8 = −1 rounded half to even
    (ℓ = [−8, −2], [−2, −8]; llama.cpp's reference rounds −1.5 half up to −1). An importance
    matrix qw gives group 1 the scale Σhxℓ/Σhℓ² = −(64a + 3b)/(64a + 4b), a = qw₀c₁₀,
    b = qw₁c₁₁ (c = √(σ² + x²)); it rounds to fp16 −1 only when b/(64a + 4b) < 2⁻¹¹ + slack,
    i.e. qw₁ ≪ qw₀; group 2 needs qw₀ ≪ qw₁: no qw does both. One group alone (qw on column
    0) is undecided."""
    from vecq_ref.check.blocks import verify_format
    from vecq_ref.formats import BlockTensor

    x = np.zeros((2, 32), np.float32)
    x[0, :2], x[1, :2] = [8, 1.5], [1.5, 8]
    even = np.zeros((2, 32), np.int64)
    even[0, :2], even[1, :2] = [-8, -2], [-2, -8]
    assert FR.q4_0(x).codes[:, :2].tolist() == [[-8, -1], [-1, -8]]

    def bt(rows):
        return BlockTensor("t", "q4_0", "offset", 4, 32, even[:rows] + 8,
                           np.full((rows, 1), -1.0), np.dtype(np.float16),
                           zero=np.full((rows, 1), 8))

    both = verify_format(x, bt(2), quality=False)
    assert both.passed is False and both.departure == "rounding: half to even, clamped after"
    one = verify_format(x[:1], bt(1), quality=False)
    assert one.passed is None and "in its one group" in one.undecided


def test_cli_verify_weights(tmp_path, capsys):
    from vecq_ref.cli import main

    w, qw, _, wq, _ = _imatrix_case("q4_0_rand_imatrix")
    for name, a in (("w", w), ("wq", wq), ("h", FR.imatrix_weights(w, qw, "q4_0")),
                    ("hcol", qw), ("bad", -np.ones(w.shape[1]))):
        np.save(tmp_path / f"{name}.npy", a)
    args = ["verify", str(tmp_path / "w.npy"), str(tmp_path / "wq.npy"), "--bits", "4",
            "--group-size", "32"]
    assert main(args) == 0
    assert "verdict: UNDECIDED" in capsys.readouterr().out
    assert main(args + ["--weights", str(tmp_path / "h.npy")]) == 0
    assert "verdict: PASS, llama.cpp Q4_0 imatrix path" in capsys.readouterr().out
    # one per input column is the imatrix itself, not the importance the C weighs with
    assert main(args + ["--weights", str(tmp_path / "hcol.npy")]) == 1
    capsys.readouterr()
    assert main(args + ["--weights", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weights" in err[0] and "bad.npy" in err[0]


# --- 7: a per-channel block-format output checked with axis=0 ---------------------------------

@pytest.fixture(scope="module")
def w16():
    return (0.05 * np.random.default_rng(7).standard_normal((16, 128))).astype(np.float32)


def test_per_channel_gptq_with_axis_0_is_the_format_check(w16):
    from vecq_ref.check.blocks import FormatReport

    wq = np.asarray(FR.gptq_rtn(w16, 4, 128, symmetric=False).values,
                    dtype=np.float32).reshape(w16.shape)
    by_axis = vq.verify(w16, wq, bits=4, axis=0)
    by_group = vq.verify(w16, wq, bits=4, group_size=128)
    assert isinstance(by_axis, FormatReport) and by_axis.passed is True
    assert by_axis.format == "gptq-asym" and by_axis.group_size == 128
    assert by_axis.summary_line() == by_group.summary_line()
    assert by_axis.optimum_rel_dql == by_group.optimum_rel_dql
    # axis=−2 is the same axis; axis=1 (one slice per column) is not one group per row
    assert vq.verify(w16, wq, bits=4, axis=-2).passed is True
    assert not isinstance(vq.verify(w16, wq, bits=4, axis=1, check_conventions=False),
                          FormatReport)


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
def test_vecq_per_channel_output_not_diverted_and_its_lattice_named(w16, lattice):
    q = vq.quantize(w16, 4, lattice=lattice, axis=0)
    r = vq.verify(w16, q.values, bits=4, axis=0)
    assert r.passed and r.lattice == lattice
    assert r.quality["reference_lattice"] == lattice
    text = str(r)
    assert f"VecQ-param ({lattice}) " in text and f"VecQ-exact ({lattice}) " in text
    # VecQ-param on that lattice is this output itself: gap 0
    assert r.relative_dql_param == pytest.approx(r.relative_dql, rel=1e-12)


# --- 3: the library's own zero-point outputs --------------------------------------------------

def _component(r, name):
    return next(c for c in r.components if c.component == name)


def test_integer_zero_point_alpha_is_least_squares_of_u_minus_z(w16):
    from vecq_ref.check.diagnose import ZP_RULE

    q = vq.quantize(w16, 4, "exact", zero_point="integer", group_size=32)
    r = vq.verify(w16, q.values, bits=4, group_size=32)
    # α of each group is ⟨w, u − z⟩/⟨u − z, u − z⟩ (by hand here), not the step
    ell = (q.codes.astype(np.float64) - np.repeat(q.zero_point, 32, axis=1)).reshape(-1, 32)
    x = w16.astype(np.float64).reshape(-1, 32)
    a_hand = np.sum(x * ell, axis=1) / np.sum(ell * ell, axis=1)
    np.testing.assert_allclose(np.asarray(q.alpha, dtype=np.float64).reshape(-1), a_hand,
                               rtol=1e-12)
    assert np.max(np.abs(np.asarray(q.step).reshape(-1) / a_hand - 1)) > 1e-3  # α ≠ step
    assert not r.passed  # a zero point is not VecQ's lattice
    assert r.alpha_optimal
    assert not any("least-squares optimum" in why for why in r.reasons)
    rule = _component(r, "α rule")
    assert rule.found.startswith(ZP_RULE) and rule.is_vecq


def test_float_offset_straight_through_line_matches_its_ulps(w16):
    w16 = w16[:4]  # 16 groups (the exact real-offset search, ~1 ms a group)
    q = vq.quantize(w16, 4, "exact", zero_point="float", group_size=32)
    # the library's own α and m give its values bit for bit (float64 α·u + m, rounded once)
    u = q.codes.astype(np.float64).reshape(-1, 32)
    a = np.asarray(q.alpha, dtype=np.float64).reshape(-1, 1)
    m = np.asarray(q.offset, dtype=np.float64).reshape(-1, 1)
    assert np.array_equal((a * u + m).astype(np.float32), q.values.reshape(-1, 32))
    r = vq.verify(w16, q.values, bits=4, group_size=32)
    st = _component(r, "straight-through")
    assert st.found.startswith("not needed")
    tol = r.tolerances["ulps"]
    # the reading fits α, β to the rounded values: a value near zero is many of its own ulps
    # off, the terms |α·v| + |β| a few (the tolerance's unit): both said, and which is which
    assert r.reconstruction_ulps > tol
    head = st.detail.split(" ulps of |α·v| + |β|")[0]
    assert head.startswith("up to ") and float(head[6:]) <= tol
    assert f"{r.reconstruction_ulps:g} ulps of the value itself" in st.detail
    assert "not a gap" in st.detail
    assert f"max {r.reconstruction_ulps:g} ulps of the values" in " ".join(str(r).split())
