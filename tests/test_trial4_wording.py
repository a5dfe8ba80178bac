"""Trial T4's faults in verify's wording: an integer zero point's α rule (6), a raw imatrix
passed as weights (4), notes printed once and long error lines wrapped (9)."""

import numpy as np
import pytest

import vecq_ref as vq
from vecq_ref.check.diagnose import ZP_RULE, zero_point_levels

STEP = "the step, no refit"


def _rule(r):
    return next(c for c in r.components if c.component == "α rule")


# --- 6: an integer zero point's α is a refit, not "the step" ---------------------------------

def test_zero_point_alpha_by_hand_is_least_squares_not_the_step():
    # 2 bits: codes u = [0, 1, 3, 3], z = 0, levels ℓ = u − z = [0, 1, 3, 3];
    # α = ⟨w,ℓ⟩/⟨ℓ,ℓ⟩ = (0.2 + 2.7 + 3.0)/(1 + 9 + 9) = 5.9/19 = 0.310526…; the step that chose
    # the codes is 0.36 (α/step − 1 = −13.7 %)
    w = np.array([0.0, 0.2, 0.9, 1.0])
    q = vq.quantize(w, 2, method="exact", zero_point="integer")
    assert q.codes.tolist() == [0, 1, 3, 3] and q.zero_point == 0
    assert float(q.alpha) == pytest.approx(5.9 / 19, rel=1e-14)
    assert float(q.step) == pytest.approx(0.36, rel=1e-14)
    r = vq.verify(w, q.values, bits=2)
    rule = _rule(r)
    assert rule.matches[0] == ZP_RULE and STEP not in rule.matches
    assert "the step" not in rule.found and rule.is_vecq
    assert float(r.alpha) == pytest.approx(5.9 / 19, rel=1e-12)


def test_grouped_zero_point_alpha_cell_does_not_say_the_step():
    w = np.random.default_rng(0).standard_normal((8, 64))
    q = vq.quantize(w, 4, method="exact", zero_point="integer", group_size=32)
    a = np.asarray(q.alpha, dtype=np.float64).reshape(-1)
    assert np.max(np.abs(np.asarray(q.step).reshape(-1) / a - 1)) > 1e-3  # α ≠ step
    r = vq.verify(w, q.values, bits=4, group_size=32)
    rule = _rule(r)
    assert rule.matches == [ZP_RULE] and "no refit" not in str(r)


def test_ul2q_alpha_is_still_the_step():
    """μL2Q-style α = the step itself (no zero point): the step stays the reading."""
    from vecq_ref import baselines

    w = np.random.default_rng(1).standard_normal((8, 40)) * 0.1 + 0.05
    q = baselines.ul2q(w, 4)
    assert _rule(vq.verify(w, q.values, bits=4, check_conventions=False)).matches[0] == STEP


def test_zero_point_levels_read_midrise_and_midtread():
    # α·(u − z), u = 0..3, z = 1 read as midrise α·(c + ½) + α/2 (c = −2..1) and as midtread
    # α·c + 0 (no zero point) / α·c − α (z = 1 on codes 0..3)
    v_rise = np.array([[-1.5, -0.5, 0.5, 1.5]])
    m, ell = zero_point_levels(v_rise, np.array([2.0]), np.array([1.0]))
    assert m.tolist() == [True] and ell.tolist() == [[-1.0, 0.0, 1.0, 2.0]]
    v_tread = np.array([[0.0, 1.0, 2.0, 3.0]])
    m, ell = zero_point_levels(v_tread, np.array([2.0]), np.array([-2.0]))
    assert m.tolist() == [True] and ell.tolist() == [[-1.0, 0.0, 1.0, 2.0]]
    m, ell = zero_point_levels(v_tread, np.array([2.0]), np.array([0.7]))  # β/α = 0.35
    assert m.tolist() == [False] and ell.tolist() == v_tread.tolist()
    m, _ = zero_point_levels(v_rise, np.array([2.0]), np.array([0.0]))  # β = 0: no zero point
    assert m.tolist() == [False]


# --- 4: a raw imatrix passed as weights ---------------------------------------------------------

def _imatrix_case(key):
    pytest.importorskip("gguf")
    from test_trial3_diagnosis import _imatrix_case as case

    return case(key)


@pytest.mark.parametrize("key", ["q4_0_rand_imatrix", "iq4_nl_rand_imatrix"])
def test_raw_imatrix_as_weights_is_named_and_the_advice_works(key):
    from vecq_ref import format_rules as FR

    w, qw, bt, wq, kind = _imatrix_case(key)
    assert qw.shape == (w.shape[1],)  # one value per input column: the raw imatrix
    advice = f"weights=imatrix_weights(w, imatrix, {kind!r}) does"
    for out in (wq, bt):  # the values, and the tensor from its file
        r = vq.verify(w, out, bits=4, group_size=32, weights=qw)
        assert r.passed is not True and r.format == kind  # the verdict is left as it was
        hits = [n for n in r.notes if advice in n]
        assert len(hits) == 1 and "raw imatrix" in hits[0] and str(r).count(advice) == 1
    good = vq.verify(w, wq, bits=4, group_size=32, weights=FR.imatrix_weights(w, qw, kind))
    assert good.passed is True and not any("raw imatrix" in n for n in good.notes)


def test_per_column_weights_that_are_not_the_imatrix_get_no_advice():
    w, qw, _, wq, kind = _imatrix_case("q4_0_rand_imatrix")
    r = vq.verify(w, wq, bits=4, group_size=32, weights=np.ones_like(qw))
    assert not any("imatrix_weights" in n for n in r.notes)
    # per-element weights (rows differ) are taken as given: no raw-imatrix reading
    h = np.broadcast_to(qw, w.shape) * (1.0 + np.arange(w.shape[0]))[:, None]
    r = vq.verify(w, wq, bits=4, group_size=32, weights=h)
    assert not any("raw imatrix" in n for n in r.notes)


def test_raw_imatrix_advice_on_the_command_line(tmp_path, capsys):
    from vecq_ref.cli import main

    w, qw, _, wq, kind = _imatrix_case("q4_0_rand_imatrix")
    for name, a in (("w", w), ("wq", wq), ("qw", qw)):
        np.save(tmp_path / f"{name}.npy", a)
    rc = main(["verify", str(tmp_path / "w.npy"), str(tmp_path / "wq.npy"), "--bits", "4",
               "--group-size", "32", "--weights", str(tmp_path / "qw.npy")])
    out = capsys.readouterr().out
    assert rc == 1 and "raw imatrix" in out
    assert out.count("imatrix_weights(w, imatrix, 'q4_0')") == 1


# --- 9: each note once; error lines short -------------------------------------------------------

PACKED = "tests/fixtures/formats/packed"
Q_PROJ = "model.layers.0.self_attn.q_proj.weight"


@pytest.mark.parametrize("kind", ["bnb_nf4", "gptq_v1_sym_g32"])
def test_tensor_notes_are_printed_once(capsys, kind):
    pytest.importorskip("safetensors")
    from vecq_ref.cli import main

    main(["verify", f"{PACKED}/original.safetensors", f"{PACKED}/{kind}", "--tensor", Q_PROJ])
    text = capsys.readouterr().out
    notes = [" ".join(n.split()) for n in text.split("note: ")[1:]]
    heads = [n[:40] for n in notes]
    assert heads and len(set(heads)) == len(heads), heads
    first = {"bnb_nf4": "bitsandbytes NF4, blocksize 64",
             "gptq_v1_sym_g32": "GPTQ v1 (no checkpoint_format"}[kind]
    assert " ".join(text.split()).count(first) == 1


def _error_line(argv, capsys):
    from vecq_ref.cli import main

    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_truncated_checkpoint_error_is_one_short_line(tmp_path, capsys):
    pytest.importorskip("safetensors")
    import shutil

    dst = tmp_path / "q"
    shutil.copytree(f"{PACKED}/gptq_v1_sym_g32", dst)
    f = dst / "model.safetensors"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[:-100])
    line = _error_line(["verify", f"{PACKED}/original.safetensors", dst, "--tensor", Q_PROJ],
                       capsys)
    # file, tensor and field named; the words tests rely on; no library parameter (`path`)
    assert line == (f"vecq-ref verify: error: {f}: is not a readable .safetensors file: "
                    f"truncated in tensor 'model.layers.0.self_attn.q_proj', field 'scales' "
                    f"({size} > {size - 100} bytes)")
    # within 200 characters for a path of 46 (T4's; the line was 277 before)
    assert len(line) - len(str(f)) + 46 <= 200


def test_truncated_gguf_error_is_one_short_line(tmp_path, capsys):
    pytest.importorskip("gguf")
    from safetensors.numpy import save_file

    from vecq_ref.formats.llamacpp import write_gguf

    w = np.random.default_rng(3).standard_normal((8, 64)).astype(np.float32)
    name = "model.layers.0.mlp.down_proj.weight"
    save_file({name: w}, str(tmp_path / "m.safetensors"))
    write_gguf(tmp_path / "m.safetensors", tmp_path / "m.gguf", "Q4_0")
    g = tmp_path / "m.gguf"
    size = g.stat().st_size
    g.write_bytes(g.read_bytes()[:-10])
    line = _error_line(["verify", tmp_path / "m.safetensors", g, "--tensor", name], capsys)
    assert "`path`" not in line and f"GGUF file {g}: tensor 'blk.0.ffn_down.weight': " \
        f"field 'data' ends at byte {size}, past the end of the file ({size - 10} " \
        "bytes): truncated?" in line
    assert len(line) - len(str(g)) + 46 <= 200
