"""Trial T3's faults in verify's diagnosis (issue 22 side): a real offset's best found
(never worse than the integer zero point refitted and llama.cpp's make_qkx2_quants, one rule
for verify and audit), imatrix-made outputs checked without their imatrix, per-channel
block-format outputs (``axis=0``) and the library's own zero-point outputs."""

import numpy as np
import pytest

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
