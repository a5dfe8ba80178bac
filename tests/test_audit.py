"""vecq_ref.audit / `vecq-ref audit` (issue 23) on a tiny LLaMA converted as llama.cpp does."""

import json
import math

import numpy as np
import pytest
from _audit_fixtures import (
    dequantized,
    killing_reader,
    save_safetensors,
    write_gguf_imatrix,
    write_legacy_imatrix,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from tinyllama import write_tiny_llama

from vecq_ref import naive
from vecq_ref._kernels.reduce import row_dql_sums
from vecq_ref.check.audit import AuditResult, audit
from vecq_ref.cli import main
from vecq_ref.format_rules import imatrix_weights


def _rel(w, wq, h=None):
    w, wq = np.asarray(w, np.float64), np.asarray(wq, np.float64)
    h = np.ones_like(w) if h is None else np.asarray(h, np.float64)
    return math.fsum((h * (w - wq) ** 2).ravel()) / math.fsum((h * w * w).ravel())


# --- the kernel -------------------------------------------------------------------------------

def test_row_dql_sums_hand_checked():
    # Row 0: Σx² = 9 + 16 = 25, Σ(x − y)² = 0 + 16 = 16; row 1 weighted by h = [2, 0].
    x = np.array([[3.0, 4.0], [1.0, 5.0]])
    y = np.array([[3.0, 0.0], [0.0, 0.0]])
    assert_array_equal(row_dql_sums(x, y), [[25.0, 16.0], [26.0, 26.0]])
    h = np.array([[1.0, 1.0], [2.0, 0.0]])
    assert_array_equal(row_dql_sums(x, y, h), [[25.0, 16.0], [2.0, 2.0]])


@pytest.mark.parametrize("cols", [1, 63, 64, 1000, 40000])
def test_row_dql_sums_twin_and_row_blocks(rng, cols):
    x = rng.standard_normal((7, cols))
    y = x + 0.01 * rng.standard_normal(x.shape)
    h = rng.random(x.shape)
    for hh in (None, h):
        whole = row_dql_sums(x, y, hh)
        assert_allclose(whole, naive.row_dql_sums(x, y, hh), rtol=1e-12)
        part = row_dql_sums(x[2:5].copy(), y[2:5].copy(), None if hh is None else hh[2:5].copy())
        assert_array_equal(part, whole[2:5])  # a row's bits do not depend on the other rows


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 300), st.integers(0, 2 ** 32 - 1), st.booleans())
def test_row_dql_sums_any_row_split(rows, cols, seed, weighted):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    y = np.round(x * 4) / 4
    h = rng.random((rows, cols)) if weighted else None
    whole = row_dql_sums(x, y, h)
    assert np.all(whole >= 0) and np.all(whole[:, 1] <= whole[:, 0] + 1e-12 * cols)
    cut = rng.integers(0, rows + 1)
    parts = [row_dql_sums(x[a:b].copy(), y[a:b].copy(), None if h is None else h[a:b].copy())
             for a, b in ((0, cut), (cut, rows))]
    assert_array_equal(np.concatenate(parts), whole)


def test_measure_block_all_zero_and_constant_rows():
    from vecq_ref import format_rules as fr
    from vecq_ref.check import _audit_measure as M
    from vecq_ref.check.audit import _row_from
    from vecq_ref.formats._block import BlockTensor

    # Row 0 all zeros, row 1 constant 0.5: Q4_0 gives d = 0.5/−8 = −0.0625 and codes 0
    # (level −8), which reproduce 0.5 exactly; every loss is 0 and the gap 0 (not NaN).
    w = np.zeros((2, 32))
    w[1] = 0.5
    q = fr.q4_0(w)
    bt = BlockTensor(name="t", format="q4_0", kind="offset", bits=4, group_size=32,
                     codes=(q.codes + 8).astype(np.int8), scale=np.asarray(q.alpha),
                     scale_dtype=np.dtype(np.float16), zero=np.full((2, 1), 8))
    assert float(q.alpha[1, 0]) == -0.0625
    rows = M.measure_block(w, bt)
    assert_array_equal(rows["sww"], [0.0, 8.0])  # 32 · 0.25
    for k in ("shipped", "optimum", "rtn"):
        assert_array_equal(rows[k], [0.0, 0.0])
    assert_array_equal(rows["rtn_diff"], [0, 0])
    assert_array_equal(rows["rule_diff"], [0, 0])
    r = _row_from("t", "t", {"format": "q4_0", "shape": [2, 32], "bpw": 4.5},
                  M.totals(rows), "line")
    assert (r.rel_dql, r.optimum_rel_dql, r.gap_pct) == (0.0, 0.0, 0.0)


# --- the checkpoint ---------------------------------------------------------------------------

ALL_Q4_0 = {k: "Q4_0" for k in ("embed_tokens", "q_proj", "k_proj", "v_proj", "o_proj",
                                  "gate_proj", "up_proj", "down_proj", "lm_head")}
BPW = {"Q4_0": 4.5, "Q5_0": 5.5, "Q8_0": 8.5, "Q4_1": 5.0}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """R1's tiny LLaMA as llama.cpp converts it: all Q4_0, and mixed (Q8_0, Q4_0, Q4_1, Q5_0,
    lm_head in F16)."""
    d = tmp_path_factory.mktemp("tinyllama")
    return {"q4_0": write_tiny_llama(d / "q4_0", types=ALL_Q4_0),
            "mixed": write_tiny_llama(d / "mixed")}


@pytest.fixture(scope="module")
def model(checkpoints):
    info = checkpoints["q4_0"]
    return info["original"], info["gguf"], info["tensors"]


@pytest.fixture(scope="module")
def serial(model):
    original, gguf_path, _ = model
    return audit(original, gguf_path, progress=False)


def _same(a, b):
    a, b = a.as_dict(), b.as_dict()
    a.pop("seconds")
    b.pop("seconds")
    return a == b


@pytest.mark.parametrize("which", ["q4_0", pytest.param("mixed", marks=pytest.mark.jit_only)])
def test_every_tensor_matched_and_dql_direct(checkpoints, serial, which):
    info = checkpoints[which]
    t, types = info["tensors"], info["types"]
    res = serial if which == "q4_0" else audit(info["original"], info["gguf"], progress=False)
    quantized = [k for k, v in t.items() if v.ndim == 2 and types[k] not in ("F32", "F16")]
    assert [r.original_name for r in res.rows] == quantized
    assert [r.quantized_name for r in res.rows] == [info["names"][k] for k in quantized]
    assert res.unmatched == []
    assert [d["original_name"] for d in res.left_in_float] == [
        k for k in t if k not in quantized]
    deq = dequantized(t, types)
    for r in res.rows:
        kind = types[r.original_name]
        assert r.format == kind.lower() and r.bits_per_weight == BPW[kind]
        assert_allclose(r.rel_dql, _rel(t[r.original_name], deq[r.original_name]),
                        rtol=1e-12)
        assert r.optimum_rel_dql <= r.rel_dql * (1 + 1e-12)
        assert r.gap_pct >= -1e-9
        assert r.diagnosis == f"PASS llama.cpp {kind} reference rule, bit for bit"
        assert r.rule_share == 0
    q = next(r for r in res.rows if r.quantized_name == "blk.0.attn_q.weight")
    assert any("permuted by llama.cpp's converter" in n for n in q.notes)
    assert all(len(line) <= 100 for line in res.table().splitlines())


def test_q4_0_gap_is_positive_and_vecq_measured(serial):
    # Q4_0's abs-max rule is not the optimum of its level set (FORMATS.md §4: +12 % on MiniLM).
    t = serial.totals
    assert 3 < t["gap_pct"] < 40
    assert t["vecq_exact_rel_dql"] <= t["vecq_param_rel_dql"]
    n = [r.n for r in serial.rows]
    assert_allclose(t["rel_dql"], np.dot(n, [r.rel_dql for r in serial.rows]) / sum(n),
                    rtol=1e-12)
    assert t["bits_per_weight"] == 4.5


def test_row_blocks_give_the_same_bits(model, serial):
    original, gguf_path, _ = model
    res = audit(original, gguf_path, progress=False, block_size=200)
    assert _same(res, serial)


def test_unpermuted_converter_rows_kept_as_stored(tmp_path):
    # A converter that did not permute Q/K: the reader would undo a permutation the file does
    # not have; the audit keeps the stored rows (and says so) instead of a wrong pairing.
    info = write_tiny_llama(tmp_path, types=ALL_Q4_0, permute=False)
    res = audit(info["original"], info["gguf"], progress=False)
    deq = dequantized(info["tensors"], info["types"])
    q = next(r for r in res.rows if r.quantized_name == "blk.1.attn_k.weight")
    assert any("kept as stored" in n for n in q.notes)
    assert_allclose(q.rel_dql, _rel(info["tensors"][q.original_name], deq[q.original_name]),
                    rtol=1e-12)


@pytest.mark.jit_only
def test_wrong_pairing_is_an_error_naming_both(model, tmp_path):
    _, gguf_path, t = model
    swapped = dict(t)
    g, u = "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"
    swapped[g], swapped[u] = t[u], t[g]
    save_safetensors(tmp_path / "swapped.safetensors", swapped)
    with pytest.raises(ValueError, match=r"'blk\.0\.ffn_gate\.weight'.*'model\.layers\.0\.mlp"
                                         r"\.gate_proj\.weight'.*wrong pairing"):
        audit(tmp_path / "swapped.safetensors", gguf_path, progress=False)


@pytest.mark.jit_only
def test_unmatched_and_shape_mismatch_listed(model, tmp_path):
    _, gguf_path, t = model
    orig = dict(t)
    orig["extra.weight"] = np.ones((4, 32), np.float32)
    o = "model.layers.1.mlp.down_proj.weight"
    orig[o] = np.ascontiguousarray(t[o].T)
    save_safetensors(tmp_path / "o.safetensors", orig)
    res = audit(tmp_path / "o.safetensors", gguf_path, progress=False)
    why = {d["name"]: d["why"] for d in res.unmatched}
    assert "no tensor of the quantized checkpoint" in why["extra.weight"]
    assert "transposed" in why["blk.1.ffn_down.weight"]
    assert o not in [r.original_name for r in res.rows]
    assert "unmatched (2):" in res.table()


# --- resume and interruption ------------------------------------------------------------------

class _Interrupting:
    """A reader that raises KeyboardInterrupt on the ``at``-th tensor read."""

    def __init__(self, at):
        from vecq_ref.check.audit import _default_reader

        self.at, self.reads, self.base = at, 0, _default_reader

    def __call__(self, path):
        ckpt = self.base(path)
        read = ckpt.read

        def counting(name):
            self.reads += 1
            if self.reads == self.at:
                raise KeyboardInterrupt
            return read(name)

        ckpt.read = counting
        return ckpt


def test_resume_skips_finished_tensors(model, serial, tmp_path):
    original, gguf_path, _ = model
    progress = tmp_path / "progress.json"
    with pytest.raises(KeyboardInterrupt):
        audit(original, gguf_path, progress=False, resume=progress, reader=_Interrupting(6))
    done = json.loads(progress.read_text())["done"]
    assert 0 < len(done) < len(serial.rows)
    reader = _Interrupting(10 ** 9)
    res = audit(original, gguf_path, progress=False, resume=progress, reader=reader)
    assert _same(res, serial)
    assert reader.reads < len(serial.rows) + len(serial.left_in_float)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ValueError, match="`resume` must be a resume file"):
        audit(original, gguf_path, progress=False, resume=other)


def test_cli_ctrl_c_leaves_no_output(model, tmp_path, monkeypatch, capsys):
    original, gguf_path, _ = model
    import vecq_ref.check.audit as A

    monkeypatch.setattr(A, "_default_reader", _Interrupting(4))
    out = tmp_path / "out"
    out.mkdir()
    status = main(["audit", str(original), str(gguf_path), "--quiet",
                   "--json", str(out / "a.json"), "--csv", str(out / "a.csv")])
    assert status == 130
    assert list(out.iterdir()) == []
    assert "interrupted" in capsys.readouterr().err


def test_cli_writes_json_csv_figure_and_refuses_overwrite(model, serial, tmp_path, capsys):
    from vecq_ref import io

    original, gguf_path, _ = model
    args = ["audit", str(original), str(gguf_path), "--quiet",
            "--json", str(tmp_path / "a.json"), "--csv", str(tmp_path / "a.csv"),
            "--figure", str(tmp_path / "gap.png")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "blk.0.attn_q.weight" in text and max(map(len, text.splitlines())) <= 100
    got = json.loads((tmp_path / "a.json").read_text())
    assert [r["rel_dql"] for r in got["rows"]] == [r.rel_dql for r in serial.rows]
    csv_lines = (tmp_path / "a.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(serial.rows)
    assert io.is_whole(tmp_path / "gap.png")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "exists" in err


def test_cli_bad_quantized_file_one_line(model, tmp_path, capsys):
    original, _, _ = model
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    assert main(["audit", str(original), str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.gguf" in err[0]


# --- importance matrix ------------------------------------------------------------------------

@pytest.mark.jit_only
def test_imatrix_weights_the_losses(model, tmp_path):
    original, gguf_path, t = model
    rng = np.random.default_rng(5)
    gg = {"model.layers.0.self_attn.v_proj.weight": "blk.0.attn_v.weight",
          "model.layers.1.mlp.down_proj.weight": "blk.1.ffn_down.weight"}
    vec = {q: rng.integers(1, 16, t[o].shape[1]) / 4.0 for o, q in gg.items()}
    np.savez(tmp_path / "im.npz", **vec)
    write_legacy_imatrix(tmp_path / "im.dat", vec)
    write_gguf_imatrix(tmp_path / "im.gguf", vec)
    deq = dequantized(t, {k: "Q4_0" for k in t})
    results = [audit(original, gguf_path, progress=False, imatrix=tmp_path / f"im.{ext}")
               for ext in ("npz", "dat", "gguf")]
    for res in results[1:]:
        assert [r.rel_dql for r in res.rows] == [r.rel_dql for r in results[0].rows]
    rows = {r.original_name: r for r in results[0].rows}
    for o, q in gg.items():
        h = imatrix_weights(t[o], vec[q], "q4_0")
        assert_allclose(rows[o].rel_dql, _rel(t[o], deq[o], h), rtol=1e-12)
        assert rows[o].rel_dql != _rel(t[o], deq[o])
    # Tensors without an imatrix entry stay unweighted.
    o = "model.layers.0.mlp.up_proj.weight"
    assert_allclose(rows[o].rel_dql, _rel(t[o], deq[o]), rtol=1e-12)


# --- Dask -------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.jit_only
def test_local_cluster_identical_to_serial(model, serial):
    original, gguf_path, _ = model
    # Dask's default dashboard port held (another cluster running): the audit's own local
    # cluster must still start
    import socket

    with socket.socket() as held:
        try:
            held.bind(("0.0.0.0", 8787))
            held.listen()
        except OSError:
            pass                          # held by someone else already: the same condition
        res = audit(original, gguf_path, progress=False, workers=2, block_size=700)
    assert _same(res, serial)


@pytest.mark.slow
@pytest.mark.jit_only
def test_killed_worker_has_its_task_rerun(model, serial, tmp_path):
    original, gguf_path, _ = model
    import shutil

    q = tmp_path / "q4_0.gguf"
    shutil.copy(gguf_path, q)
    from distributed import LocalCluster

    # A cluster started by hand, reached through its address (--scheduler).
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        res = audit(original, q, progress=False, reader=killing_reader,
                    scheduler=cluster.scheduler_address)
    assert (tmp_path / "q4_0.gguf.killed").exists()  # a worker did die
    a, b = res.as_dict(), serial.as_dict()
    for x in (a, b):
        x.pop("seconds")
        x.pop("quantized")
    assert a == b


# --- figure -----------------------------------------------------------------------------------

def test_plot_audit_gap_artists(serial):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    art = serial.plot(ax)
    assert set(art["lines"]) >= {"attn_q", "ffn_down", "token_embd", "output"}
    x, y = art["lines"]["attn_q"].get_data()
    assert list(x) == [0, 1]
    assert list(y) == [r.gap_pct for r in serial.rows if r.quantized_name.endswith("attn_q.weight")]
    assert ax.get_ylabel().startswith("gap")
    assert isinstance(serial, AuditResult)


# --- GPTQ and AWQ: what is comparable -----------------------------------------------------------

def _offset_block(name, fmt, q, value_dtype=np.float16):
    from vecq_ref.formats._block import BlockTensor

    return BlockTensor(name=name, format=fmt, kind="offset", bits=4, group_size=q.group_size,
                       codes=q.codes.astype(np.int16), scale=np.asarray(q.alpha, np.float64),
                       scale_dtype=np.dtype(np.float16),
                       zero=np.asarray(q.info["zero_point"], np.int64),
                       value_dtype=np.dtype(value_dtype))


def test_gptq_share_off_rtn_and_awq_folded_scales(tmp_path):
    from _audit_fixtures import npz_block_reader, write_block_npz

    from vecq_ref.format_rules import awq_rtn, gptq_rtn

    rng = np.random.default_rng(7)
    w = (0.02 * rng.standard_normal((48, 64))).astype(np.float32)
    v = (0.02 * rng.standard_normal((40, 64))).astype(np.float32)
    save_safetensors(tmp_path / "o.safetensors", {"gptq.weight": w, "awq.weight": v})
    # GPTQ: RTN codes of the stored scales, then 25 codes moved by one (as error feedback
    # would), each away from the clamp so the move is representable.
    g = gptq_rtn(w, bits=4, group_size=32, symmetric=False)
    gb = _offset_block("gptq.weight", "gptq", g)
    codes = gb.codes.copy()
    idx = np.flatnonzero((codes > 0) & (codes < 15))[:25]
    codes.flat[idx] += 1
    from dataclasses import replace

    gb = replace(gb, codes=codes)
    # AWQ: the quantizer sees v·s (s per input column, folded into the previous layer).
    s = np.exp(rng.uniform(-0.7, 0.7, 64))
    a = awq_rtn(v * s, bits=4, group_size=32, symmetric=False)
    write_block_npz(tmp_path / "q.npz", {"gptq.weight": gb,
                                         "awq.weight": _offset_block("awq.weight", "awq", a)})
    res = audit(tmp_path / "o.safetensors", tmp_path / "q.npz", progress=False,
                reader=npz_block_reader)
    rows = {r.quantized_name: r for r in res.rows}
    gr = rows["gptq.weight"]
    nearest = gptq_rtn(w, bits=4, group_size=32, symmetric=False)  # float32 rule, stored s
    gq = gb.dequantize()
    # RTN of the stored (fp16) scales in float64 can differ from the fp32-scale rule in a few
    # ties; the share counts exactly the moved codes plus those.
    off = np.count_nonzero(gb.codes != nearest.codes)
    assert off == 25
    assert gr.not_nearest_share == pytest.approx(25 / w.size, abs=3 / w.size)
    assert_allclose(gr.rel_dql, _rel(w, gq), rtol=1e-12)
    assert gr.not_nearest_cost_pct > 0
    assert gr.remark.startswith("GPTQ's error feedback:")
    ar = rows["awq.weight"]
    assert ar.remark.startswith("AWQ scales folded in per input channel")
    # Against the scaled original, AWQ is an ordinary RTN quantization: small loss.
    aq = _offset_block("x", "awq", a).dequantize().astype(np.float64)
    fit = np.array([math.fsum(c) for c in (v.astype(np.float64) * aq).T]) / \
        np.array([math.fsum(c) for c in (v.astype(np.float64) ** 2).T])
    assert_allclose(fit, s, rtol=0.1)
    assert_allclose(ar.rel_dql, _rel(v * fit, aq), rtol=1e-12)
    assert ar.rel_dql < 0.02 < _rel(v, a.values)
    assert all(len(line) <= 100 for line in res.table().splitlines())


# --- the packed checkpoints of the real libraries (R2's fixtures) ----------------------------

PACKED = __import__("pathlib").Path(__file__).parent / "fixtures" / "formats" / "packed"


@pytest.mark.parametrize("folder", sorted(p.name for p in PACKED.iterdir() if p.is_dir()))
def test_packed_checkpoints_matched_and_dql_direct(folder):
    from vecq_ref import io

    expected = np.load(PACKED / "expected.npz")
    original = {k: io.as_float(v) for k, v in io.load_npz(PACKED / "original.safetensors").items()}
    res = audit(PACKED / "original.safetensors", PACKED / folder, progress=False)
    assert [d for d in res.unmatched if d["file"] == "quantized"] == []
    assert res.rows
    for r in res.rows:
        key = f"{folder}/{r.original_name}"
        if key in expected.files:
            assert_allclose(r.rel_dql, _rel(original[r.original_name], expected[key]),
                            rtol=1e-12)
        assert r.optimum_rel_dql <= r.rel_dql * (1 + 1e-9)
        assert r.diagnosis
        if folder.startswith("gptq"):
            assert r.remark.startswith("GPTQ's error feedback")
            # The trial's cut rows: the diagnosis is whole (JSON/CSV), the table wraps it.
            assert len(r.diagnosis) > 100 and "…" not in r.diagnosis
    table = res.table()
    assert all(len(line) <= 100 for line in table.splitlines())
    flat = " ".join(table.split())
    for r in res.rows:
        for text in (r.diagnosis, r.remark, *r.notes):
            assert " ".join(text.split()) in flat
    assert [r["diagnosis"] for r in json.loads(res.to_json())["rows"]] == \
        [r.diagnosis for r in res.rows]


# --- issue 23 trial faults (F2) ---------------------------------------------------------------

def test_resume_refused_when_the_quantized_file_changed(model, serial, tmp_path, capsys):
    import os
    import shutil

    original, gguf_path, _ = model
    q = tmp_path / "model.gguf"
    shutil.copyfile(gguf_path, q)
    progress = tmp_path / "progress.json"
    with pytest.raises(KeyboardInterrupt):
        audit(original, q, progress=False, resume=progress, reader=_Interrupting(4))
    assert json.loads(progress.read_text())["done"]
    # Another checkpoint at the same path (same bytes count is not enough: mtime moves too).
    st = q.stat()
    os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    with pytest.raises(ValueError, match="`resume` must be a resume file of the same audit "
                                         r"\(the quantized file"):
        audit(original, q, progress=False, resume=progress)
    assert main(["audit", str(original), str(q), "--quiet", "--resume", str(progress)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "progress.json" in err[0]
    # Unchanged inputs still resume to the same result.
    progress.unlink()
    with pytest.raises(KeyboardInterrupt):
        audit(original, q, progress=False, resume=progress, reader=_Interrupting(4))
    res = audit(original, q, progress=False, resume=progress)
    assert [r.rel_dql for r in res.rows] == [r.rel_dql for r in serial.rows]


def test_unrelated_pair_is_an_error_naming_both(model, tmp_path, capsys):
    original, gguf_path, _ = model
    other = tmp_path / "other.safetensors"
    save_safetensors(other, {"unrelated.tensor": np.ones((4, 4), np.float32)})
    with pytest.raises(ValueError, match="no tensor of either file") as info:
        audit(other, gguf_path, progress=False)
    assert str(other) in str(info.value) and str(gguf_path) in str(info.value)
    assert main(["audit", str(other), str(gguf_path), "--quiet"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "other.safetensors" in err[0] and "nan" not in captured.out


def test_totals_never_print_nan():
    res = AuditResult(original="o", quantized="q", family="gguf", architecture=None,
                      imatrix=None, rows=[], left_in_float=[], unmatched=[])
    text = res.table()
    assert "nan" not in text and "0 tensors audited" in text


@pytest.mark.parametrize(("folder", "bpw"), [
    ("gptq_v1_sym_g32", 4 + (16 + 4) / 32),       # qzeros stored for symmetric GPTQ too
    ("gptq_v1_asym_actorder_g64", 4 + (16 + 4) / 64),
    ("awq_gemm_g64", 4 + (16 + 4) / 64),
    ("ct_pack_sym_g32", 4 + 16 / 32),             # no zero point stored
    ("ct_pack_asym_g64", 4 + (16 + 4) / 64),      # zero point packed at 4 bits
    ("bnb_nf4", 4 + 32 / 64),                     # float32 absmax per block of 64
    ("bnb_nf4_dq", 4 + 8 / 64 + 32 / (64 * 256)),  # uint8 absmax, float32 per 256 blocks
])
def test_bits_per_weight_hand_checked(folder, bpw):
    from vecq_ref.check._audit_rows import _bits_per_weight
    from vecq_ref.formats import open_quantized

    with open_quantized(PACKED / folder) as ckpt:
        got = {_bits_per_weight(bt) for bt in map(ckpt.read, ckpt.names())
               if not isinstance(bt, np.ndarray)}
    assert got == {bpw}


def test_bits_per_weight_gguf_hand_checked():
    from vecq_ref.check._audit_rows import _bits_per_weight
    from vecq_ref.formats._block import BlockTensor

    # Q4_0: 2-byte fp16 d + 16 bytes of nibbles per 32 weights = 18·8/32; Q8_0: (2 + 32)·8/32.
    for fmt, bpw in (("q4_0", 4.5), ("q8_0", 8.5), ("q4_1", 5.0)):
        bt = BlockTensor(name="t", format=fmt, kind="offset", bits=4, group_size=32,
                         codes=np.zeros((1, 32), np.int8), scale=np.ones((1, 1)),
                         scale_dtype=np.dtype(np.float16), zero=np.full((1, 1), 8))
        assert _bits_per_weight(bt) == bpw


@pytest.mark.slow
@pytest.mark.jit_only
def test_cluster_run_and_ctrl_c_quiet_on_stderr(model, serial, tmp_path, monkeypatch, capfd):
    """distributed's WARNINGs (nanny killing workers, cancelled tasks) and teardown tracebacks
    stay off stderr for the cluster the audit starts itself; its loggers are restored after."""
    import logging

    import vecq_ref.check._audit_cluster as C

    pytest.importorskip("distributed")
    original, gguf_path, _ = model
    before = logging.getLogger("distributed").level  # as importing distributed set it
    capfd.readouterr()
    res = audit(original, gguf_path, progress=False, workers=2)
    assert _same(res, serial)
    run = C._run

    def interrupted(client, specs, finished, as_completed):
        def stop(spec, rec):
            finished(spec, rec)
            raise KeyboardInterrupt

        return run(client, specs, stop, as_completed)

    monkeypatch.setattr(C, "_run", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["audit", str(original), str(gguf_path), "--quiet", "--workers", "2",
                 "--json", str(out / "a.json")]) == 130
    assert list(out.iterdir()) == []
    err = capfd.readouterr().err
    assert "WARNING" not in err and "Traceback" not in err, err
    assert err.strip().splitlines() == [
        "vecq-ref audit: interrupted; files already written are complete, partial ones were "
        "removed"]
    assert logging.getLogger("distributed").level == before


def test_imatrix_of_wrong_length_or_negative_named(model, tmp_path, capsys):
    original, gguf_path, t = model
    o, q = "model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"
    cols = t[o].shape[1]
    np.savez(tmp_path / "short.npz", **{q: np.ones(cols - 1)})
    with pytest.raises(ValueError, match=rf"`imatrix` must be one importance per input column "
                                         rf"\({cols} for shape .*got {cols - 1} values in "
                                         rf".*short\.npz, tensor '{q}'"):
        audit(original, gguf_path, progress=False, imatrix=tmp_path / "short.npz")
    neg = np.ones(cols)
    neg[3] = -1.0
    np.savez(tmp_path / "neg.npz", **{o: neg})
    with pytest.raises(ValueError, match=r"`imatrix` must be finite and non-negative .*got 1 "
                                         r"negative or non-finite values in .*neg\.npz"):
        audit(original, gguf_path, progress=False, imatrix=tmp_path / "neg.npz")
    for bad in ("short.npz", "neg.npz"):
        assert main(["audit", str(original), str(gguf_path), "--quiet",
                     "--imatrix", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--imatrix" in err[0] and bad in err[0], err


@pytest.mark.jit_only
def test_exact_offset_only_below_the_group_limit(checkpoints):
    """Q4_1 (real offset): the certified exact optimum up to ``exact_offset_groups`` groups,
    the best found above (said in the notes; never below the exact one)."""
    info = checkpoints["mixed"]
    rows = {}
    for limit in (10 ** 9, 0):
        res = audit(info["original"], info["gguf"], progress=False, exact_offset_groups=limit)
        rows[limit] = {r.quantized_name: r for r in res.rows}
    q41 = [q for q, r in rows[0].items() if r.format == "q4_1"]
    assert q41
    for q in q41:
        exact, found = rows[10 ** 9][q], rows[0][q]
        assert any("best found" in n for n in found.notes)
        assert not any("best found" in n for n in exact.notes)
        assert exact.optimum_rel_dql <= found.optimum_rel_dql * (1 + 1e-12)
        assert found.optimum_rel_dql <= found.rel_dql * (1 + 1e-9)
        assert found.rel_dql == exact.rel_dql
    others = [q for q, r in rows[0].items() if r.format != "q4_1"]
    assert others and all(rows[0][q] == rows[10 ** 9][q] for q in others)


# --- issue 23: the tiny LLaMA packed as GPTQ, AWQ, compressed-tensors and NF4 ---------------

#: case → (family, writer keywords, format column, storage bits per weight worked out by
#: hand, diagnosis start). GPTQ/AWQ: 4 + fp16 scale/32 + 4-bit zero/32 = 4.625 (GPTQ stores
#: zeros when symmetric too); compressed-tensors, float32 scale (the weight's dtype):
#: 4 + 32/32 (+ 4/32 asymmetric) = 5.0 / 5.125; NF4: 4 + fp32 absmax/64 = 4.5.
PACKED_TINY = {
    "gptq": ("gptq", {}, "gptq", 4.625, ("PASS GPTQ asymmetric 4-bit grid", "UNDECIDED")),
    "gptq-sym": ("gptq", {"symmetric": True}, "gptq", 4.625,
                 ("PASS GPTQ symmetric 4-bit grid", "UNDECIDED")),
    "awq": ("awq", {}, "awq", 4.625, ("PASS AWQ asymmetric 4-bit pseudo_quantize_tensor",)),
    "compressed-tensors": ("compressed-tensors", {}, "compressed-tensors", 5.125,
                           ("PASS compressed-tensors asymmetric 4-bit calculate_qparams",)),
    "compressed-tensors-sym": ("compressed-tensors", {"symmetric": True}, "compressed-tensors",
                               5.0, ("PASS compressed-tensors symmetric 4-bit calculate_qparams",)),
    "bitsandbytes": ("bitsandbytes", {}, "nf4", 4.5, ("PASS bitsandbytes NF4 quantize_4bit",)),
}


@pytest.mark.parametrize("case", [  # without the JIT: ~37 s each but NF4's 8 s
    pytest.param(c, marks=() if c == "bitsandbytes" else pytest.mark.jit_only)
    for c in PACKED_TINY])
def test_tiny_llama_packed_matched_and_dql_direct(case, tmp_path):
    from _packers import WRITERS

    from vecq_ref.formats import open_quantized

    family, kwargs, fmt, bpw, passes = PACKED_TINY[case]
    info = WRITERS[family](tmp_path / case, **kwargs)
    t = info["tensors"]
    res = audit(info["original"], info["folder"], progress=False)
    assert res.unmatched == []
    assert sorted(r.original_name for r in res.rows) == sorted(info["quantized"])
    assert len(info["quantized"]) == 14
    assert sorted(d["original_name"] for d in res.left_in_float) == sorted(
        k for k in t if k not in info["quantized"])
    with open_quantized(info["folder"]) as ck:
        assert ck.family == family
        for r in res.rows:
            bt = ck.read(r.quantized_name)
            rule = info["rule"][r.original_name]
            # The packers store the rule's own codes (compressed-tensors: signed, read +8).
            shift = 8 if family == "compressed-tensors" else 0
            assert_array_equal(bt.codes.astype(np.int64) - shift, rule.codes)
            assert_allclose(r.rel_dql, _rel(t[r.original_name], bt.dequantize()), rtol=1e-12)
            assert r.format == fmt and r.bits_per_weight == bpw
            assert r.optimum_rel_dql <= r.rel_dql * (1 + 1e-12)
            assert r.diagnosis.startswith(passes), r.diagnosis
            assert 0.003 < r.rel_dql < 0.03
    assert all(len(line) <= 100 for line in res.table().splitlines())


def test_packers_by_hand():
    from _packers import awq_interleave, pack_high_first, pack_nibbles

    # Element k of each 8 at bits 4k…4k+3: codes 1…8 → 0x87654321 (negative as int32).
    assert pack_nibbles(np.arange(1, 9)[None, :], axis=1).tolist() == [[0x87654321 - 2**32]]
    assert pack_nibbles(np.arange(8)[:, None], axis=0).tolist() == [[0x76543210]]
    assert awq_interleave(np.arange(16)[None, :]).tolist() == [
        [0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15]]
    assert pack_high_first([1, 2, 15, 0]).tolist() == [[0x12], [0xF0]]


@pytest.mark.parametrize("folder", ["gptq_v1_sym_g32", "awq_gemm_g64", "ct_pack_asym_g64",
                                    "bnb_nf4"])
def test_packers_rebuild_the_real_libraries_words(folder):
    # The writers above pack as the real tools do: the codes and zeros read from R2's files
    # (AutoGPTQ, AutoAWQ, compressed-tensors, bitsandbytes), packed again, give the stored words.
    from _packers import awq_interleave, pack_high_first, pack_nibbles
    from safetensors.numpy import load_file

    from vecq_ref.formats import open_quantized

    raw = load_file(str(PACKED / folder / "model.safetensors"))
    with open_quantized(PACKED / folder) as ck:
        blocks = [(n, ck.read(n)) for n in ck.names()]
        blocks = [(n, bt) for n, bt in blocks if not isinstance(bt, np.ndarray)]
        assert blocks
        for name, bt in blocks:
            codes = bt.codes.astype(np.int64)
            z = None if bt.zero is None else np.asarray(bt.zero, np.int64)
            if folder.startswith("gptq"):
                assert_array_equal(pack_nibbles(codes.T, 0), raw[name + ".qweight"])
                assert_array_equal(pack_nibbles(z.T - 1, 1), raw[name + ".qzeros"])
            elif folder.startswith("awq"):
                assert_array_equal(pack_nibbles(awq_interleave(codes.T), 1),
                                   raw[name + ".qweight"])
                assert_array_equal(pack_nibbles(awq_interleave(z.T), 1),
                                   raw[name + ".qzeros"])
            elif folder.startswith("ct"):
                assert_array_equal(pack_nibbles(codes, 1), raw[name + ".weight_packed"])
                assert_array_equal(pack_nibbles(z, 0), raw[name + ".weight_zero_point"])
            else:
                key = name if name in raw else name + ".weight"
                assert_array_equal(pack_high_first(codes), raw[key])
