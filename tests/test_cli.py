import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vecq_ref import __version__
from vecq_ref.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_table_json(capsys):
    assert main(["table", "--bits", "2-4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["bits"] for r in rows] == [2, 3, 4]
    assert round(rows[0]["lam"], 4) == 0.9957 and rows[0]["paper"] == 0.9957


def test_table_text(capsys):
    assert main(["table", "--bits", "2", "--lattice", "midtread"]) == 0
    out = capsys.readouterr().out
    assert "1.224006" in out and "bits" in out


def test_quantize_roundtrip(tmp_path, capsys):
    w = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "q.npz"
    assert main(["quantize", str(tmp_path / "w.npy"), "--bits", "3", "--axis", "0",
                 "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["shape"] == [8, 5] and len(payload["alpha"]) == 8
    with np.load(out, allow_pickle=False) as z:
        assert z["codes"].dtype == np.int8 and z["values"].dtype == np.float32
    # refuses to overwrite without --force, one line, exit 2
    assert main(["quantize", str(tmp_path / "w.npy"), "--bits", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err and err.count("\n") == 1
    assert main(["quantize", str(tmp_path / "w.npy"), "--bits", "3", "--out", str(out),
                 "--force"]) == 0


@pytest.mark.parametrize(("argv", "needle"), [
    (["quantize", "missing.npy", "--bits", "3", "--out", "x.npz"], "does not exist"),
    (["quantize", "{w}", "--bits", "17", "--out", "{tmp}/y.npz"], "--bits must be an integer"),
    (["quantize", "{obj}", "--bits", "2", "--out", "{tmp}/y.npz"], "object arrays are refused"),
    (["table", "--bits", "x"], "--bits: must look like"),
])
def test_errors_are_one_line_exit_2(tmp_path, capsys, argv, needle):
    np.save(tmp_path / "w.npy", np.ones(4))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    argv = [a.format(w=tmp_path / "w.npy", obj=tmp_path / "obj.npy", tmp=tmp_path)
            for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "quantize", str(tmp_path / "nope.npy"), "--bits", "2", "--out",
              str(tmp_path / "o.npz")])


def test_demo(capsys):
    assert main(["demo", "--bits", "2", "--size", "2000", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    methods = {r["method"] for r in payload["quantize"]}
    assert {"param", "paper"} <= methods


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def _examples():
    """``{subcommand: [argv, ...]}`` from every subcommand's --help epilog, in order."""
    import shlex

    from vecq_ref.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    out = {}
    for name, p in sub.choices.items():
        lines = [ln.strip() for ln in (p.epilog or "").splitlines()]
        out[name] = [shlex.split(ln)[1:] for ln in lines if ln.startswith("vecq-ref ")]
    return out


def test_every_subcommand_has_examples_that_parse():
    from vecq_ref.cli import build_parser

    examples = _examples()
    for name, argvs in examples.items():
        assert argvs, name
        for argv in argvs:
            assert argv[0] == name
            build_parser().parse_args(argv)  # raises SystemExit on a bad example


def test_help_examples_never_write_the_same_output_twice():
    """Run in the order printed, no example fails because an earlier one wrote its output."""
    for name, argvs in _examples().items():
        taken = set()
        for argv in argvs:
            if "--out" not in argv:
                continue
            out = argv[argv.index("--out") + 1]
            if "--force" not in argv and "--resume" not in argv:
                assert out not in taken, (name, argv)
            taken.add(out)


def test_quantize_and_figures_examples_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.save("w.npy", np.random.default_rng(1).standard_normal((6, 8)))
    examples = _examples()
    for argv in examples["quantize"]:
        assert main(argv) == 0, capsys.readouterr().err
    figures = [a for a in examples["figures"] if "--results" not in a]
    assert len(figures) == 2
    for argv in figures:
        assert main(argv) == 0, capsys.readouterr().err


def test_verify_examples_run_after_the_quantize_examples(tmp_path, monkeypatch, capsys):
    """The verify examples read what the quantize examples wrote (q4.npz, q2.npz)."""
    monkeypatch.chdir(tmp_path)
    np.save("w.npy", np.random.default_rng(1).standard_normal((6, 8)))
    examples = _examples()
    for argv in examples["quantize"]:
        assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    for argv in examples["verify"]:
        if "--tensor" in argv:  # a GGUF: run by test_formats_gguf.py on its tiny model
            continue
        assert main(argv) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert "'vecq-ref quantize' output" in err and "'values'" in err


def test_verify_reads_the_values_of_a_quantize_output(tmp_path, capsys):
    w = np.random.default_rng(4).standard_normal((5, 7)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "wq.npy", np.ones((5, 7), np.float32))
    assert main(["quantize", str(tmp_path / "w.npy"), "--bits", "3", "--out",
                 str(tmp_path / "q.npz")]) == 0
    with np.load(tmp_path / "q.npz") as z:
        np.save(tmp_path / "values.npy", z["values"])
    capsys.readouterr()
    reports = []
    for wq in ("q.npz", "values.npy"):
        assert main(["verify", str(tmp_path / "w.npy"), str(tmp_path / wq), "--bits", "3",
                     "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out)["reports"][0])
    reports[0].pop("name"), reports[1].pop("name")
    assert reports[0] == reports[1]
    # Any other file of several arrays is still refused, naming what it holds.
    np.savez(tmp_path / "two.npz", a=w, b=w)
    assert main(["verify", str(tmp_path / "w.npy"), str(tmp_path / "two.npz"), "--bits",
                 "3"]) == 2
    err = capsys.readouterr().err
    assert "two.npz holds 2 arrays (a, b)" in err and err.count("\n") == 1


BAD_WEIGHTS = {"inf": np.array([[1.0, np.inf], [2.0, 3.0]]),
               "nan": np.array([[1.0, np.nan], [2.0, 3.0]]),
               "bool": np.ones((2, 2), bool), "complex": np.ones((2, 2), np.complex64),
               "empty": np.ones((0, 2))}


@pytest.mark.parametrize("bad", list(BAD_WEIGHTS))
@pytest.mark.parametrize("command", ["verify-W", "verify-WQ", "verify-pairs", "quantize",
                                     "search", "compare", "compare-npz"])
def test_input_errors_name_the_file_the_problem_is_in(tmp_path, capsys, command, bad):
    """Past bug: `verify inf.npy good.npy` blamed good.npy; quantize/search named no file."""
    good = tmp_path / "good.npy"
    np.save(good, np.array([[1.0, -1.0], [0.5, 2.0]]))
    path = tmp_path / f"{bad}.npy"
    np.save(path, BAD_WEIGHTS[bad])
    blamed = str(path)
    if command in ("verify-pairs", "compare-npz"):
        path = tmp_path / f"{bad}.npz"
        np.savez(path, **{"fc": np.load(good), "fc.q": BAD_WEIGHTS[bad]})
        blamed = f"{path}['fc.q']"
    argv = {"verify-W": ["verify", path, good], "verify-WQ": ["verify", good, path],
            "verify-pairs": ["verify", path], "quantize": ["quantize", path, "--out",
                                                           tmp_path / "q.npz"],
            "search": ["search", path], "compare": ["compare", path, "--methods", "twn"],
            "compare-npz": ["compare", path, "--methods", "twn"]}[command]
    assert main([str(a) for a in argv] + ["--bits", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f": error: {blamed}: `w" in err, err
    assert str(good) not in err


def test_a_shape_mismatch_names_both_files(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.ones((3, 4)))
    np.save(tmp_path / "wq.npy", np.ones((4, 3)))
    assert main(["verify", str(tmp_path / "w.npy"), str(tmp_path / "wq.npy"), "--bits",
                 "2"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'wq.npy'} (`wq`), {tmp_path / 'w.npy'} (`w`): `wq` must be" in err


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    """`vecq-ref ... | head`: no 'Broken pipe' error line, exit 141 (128 + SIGPIPE)."""
    import vecq_ref.cli as cli

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "print", closed, raising=False)
    assert main(["table", "--bits", "2"]) == 141
    assert capsys.readouterr().err == ""


def test_a_closed_pipe_ends_quietly_in_a_real_process():
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "vecq_ref", "table", "--bits", "1-8",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    proc.stdout.close()  # the reader is gone before the first line is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == "", err


@pytest.mark.parametrize("argv", [["golden"], ["reproduce", "--quick"], ["figures"],
                                  ["train", "--epochs", "1"]])
@pytest.mark.parametrize("under", [False, True], ids=["file", "under-a-file"])
def test_an_out_folder_that_is_a_file_is_one_line(tmp_path, capsys, argv, under):
    blocker = tmp_path / "good.npy"
    blocker.write_bytes(b"x")
    out = blocker / "sub" if under else blocker
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {out}" in err
    assert ("lies under a file" if under else "is a file, not a folder") in err
    assert "Errno" not in err and blocker.read_bytes() == b"x"


@pytest.mark.parametrize("argv", [
    ["figures", "--only", "fig5_training"],  # needs --results: fails after the folder is made
    ["train", "--resume", "--epochs", "1"],  # nothing to resume
    ["train", "--data", "mnist", "--data-path", "nothing.npz"],
])
def test_a_failed_command_creates_no_folder(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--out", "a/b/out"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_failed_command_keeps_folders_that_hold_files(tmp_path, monkeypatch, capsys):
    from vecq_ref.cli import _missing_folders, _remove_empty

    folders = _missing_folders(tmp_path / "a" / "b")
    assert folders == [tmp_path / "a" / "b", tmp_path / "a"]
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "keep.txt").write_text("x")
    _remove_empty(folders)
    assert [p.name for p in tmp_path.iterdir()] == ["a"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("argv", [["verify", "a.npy", "b.npy", "c.npy", "--bits", "2"],
                                  ["search", "a.npy", "--bits", "2", "--init", "1"],
                                  ["table", "--nope"]])
def test_unrecognized_arguments_name_the_subcommand(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vecq-ref {argv[0]}: error: unrecognized arguments")
    assert f"(see 'vecq-ref {argv[0]} --help')" in err and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "option", "wanted"), [
    (["quantize", "{w}", "--bits", "2", "--out", "{tmp}/q.txt"], "--out", ".npz"),
    (["quantize", "{w}", "--bits", "2", "--out", "{tmp}/q"], "--out", ".npz"),
    (["report", "{w}", "--bits", "2", "--plot", "{tmp}/p.svg"], "--plot", ".png or .pdf"),
])
def test_output_file_names_must_have_the_written_format(tmp_path, capsys, argv, option,
                                                        wanted):
    np.save(tmp_path / "w.npy", np.ones((3, 4)) + np.arange(12).reshape(3, 4))
    argv = [a.format(w=tmp_path / "w.npy", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err and wanted in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npy"]


def test_train_defaults_work_together(tmp_path, capsys):
    """``vecq-ref train --out X`` alone: the default data (8×8 digits) gets the MLP."""
    pytest.importorskip("sklearn")
    from vecq_ref.cli import build_parser

    args = build_parser().parse_args(["train", "--out", "x"])
    assert args.model is None and args.data == "digits"
    assert main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet",
                 "--json"]) == 0, capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == "mlp" and payload["epochs"] == 1


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, monkeypatch, capsys):
    import vecq_ref.io as vio

    np.save(tmp_path / "w.npy", np.ones((4, 4)) + np.arange(16).reshape(4, 4))
    real = np.savez

    def interrupted_savez(fh, **arrays):
        real(fh, **arrays)  # the temporary file is written in full ...
        raise KeyboardInterrupt  # ... and the user presses Ctrl-C before the rename

    monkeypatch.setattr(vio.np, "savez", interrupted_savez)
    rc = main(["quantize", str(tmp_path / "w.npy"), "--bits", "2", "--out",
               str(tmp_path / "q.npz")])
    err = capsys.readouterr().err
    assert rc == 130 and err.count("\n") == 1 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npy"]  # nothing half-written


def test_ctrl_c_during_train_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import vecq_ref.nn as nn

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn, "train", interrupted)
    monkeypatch.setattr(nn, "build_model", lambda *a, **k: None)
    import vecq_ref.data as data

    monkeypatch.setattr(data, "load", lambda *a, **k: None)
    rc = main(["train", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    # Nothing was saved (the interrupt came before training wrote anything): no --resume.
    assert rc == 130 and err.count("\n") == 1 and "nothing was saved" in err
    assert "--resume" not in err and "checkpoint" not in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")
    rc = main(["train", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 130 and "the last checkpoint" in err and "--resume" in err


def test_compare_reads_bf16_safetensors_as_float32(tmp_path, capsys):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    pytest.importorskip("safetensors")
    import struct

    w = np.random.default_rng(2).standard_normal((6, 8)).astype(ml_dtypes.bfloat16)
    header = json.dumps({"fc": {"dtype": "BF16", "shape": [6, 8], "data_offsets": [0, 96]}})
    header += " " * (-len(header) % 8)
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode()
                                             + w.tobytes())
    np.save(tmp_path / "fc.npy", w.astype(np.float32))
    rows = []
    for name in ("m.safetensors", "fc.npy"):
        assert main(["compare", str(tmp_path / name), "--bits", "2",
                     "--methods", "vecq_param,twn", "--json"]) == 0
        rows.append([{k: v for k, v in r.items() if k != "array"}
                     for r in json.loads(capsys.readouterr().out)])
    assert rows[0] == rows[1]


# --- list and range options: checked before they are expanded (issue 20) -------------------

@pytest.mark.parametrize(("argv", "needle"), [
    # 1-1000000000 used to be built first (1.3 GB), then a MemoryError traceback.
    (["table", "--bits", "1-1000000000"], "argument --bits: every value must be ≥ 1 and ≤ 16"),
    (["table", "--bits", "2,17"], "argument --bits: every value must be ≥ 1 and ≤ 16"),
    (["table", "--bits", "0-4"], "argument --bits: every value must be ≥ 1 and ≤ 16"),
    (["table", "--bits", "5-3"], "argument --bits: a range must go up, like 2-8; got 5-3"),
    (["table", "--bits", "1-16,1-16,1-16,1-16,1"], "argument --bits: must name at most 64 "
                                                   "values; got 65"),
    (["demo", "--bits", "1-99999999999999999999"], "argument --bits: every value must be ≥ 1"),
    (["compare", "{w}", "--bits", "3-1000000000"], "argument --bits: every value must be ≥ 1"),
    (["report", "{w}", "--bits", "1-1000000000"], "argument --bits: every value must be ≥ 1"),
    (["train", "--milestones", "1-1000000000", "--out", "{tmp}/run"],
     "argument --milestones: must name at most 10000 values; got 1000000000"),
    (["train", "--hidden", "1-1000000000", "--out", "{tmp}/run"],
     "argument --hidden: must name at most 100 values; got 1000000000"),
    (["train", "--hidden", "0-3", "--out", "{tmp}/run"], "argument --hidden: every value must "
                                                         "be ≥ 1"),
])
def test_range_options_are_checked_before_expansion(tmp_path, capsys, argv, needle):
    np.save(tmp_path / "w.npy", np.ones(4))
    argv = [a.format(w=tmp_path / "w.npy", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_range_options_expand_in_order():
    from vecq_ref.cli import _MILESTONES, _WIDTHS, parse_bits

    assert parse_bits("4") == [4]
    assert parse_bits("2-4,8,16") == [2, 3, 4, 8, 16]
    assert parse_bits("1-16") == list(range(1, 17))
    assert _MILESTONES("15,25,1000-1002") == [15, 25, 1000, 1001, 1002]
    assert _WIDTHS("256,128") == [256, 128]


@given(st.integers(-5, 10**12), st.integers(-5, 10**12))
def test_any_bits_range_is_refused_or_small(lo, hi):
    # Fuzz: whatever the range, the parser answers at once, with at most 64 values in [1, 16].
    import argparse

    from vecq_ref.cli import parse_bits

    try:
        out = parse_bits(f"{lo}-{hi}")
    except argparse.ArgumentTypeError:
        assert not 1 <= lo <= hi <= 16
    else:
        assert out == list(range(lo, hi + 1)) and 1 <= lo <= hi <= 16


@pytest.mark.skipif(not hasattr(__import__("os"), "symlink"), reason="no symbolic links")
def test_out_a_dangling_symlink_is_refused_without_force(tmp_path, capsys):
    import os

    np.save(tmp_path / "w.npy", np.linspace(-1, 1, 8))
    link = tmp_path / "q.npz"
    os.symlink(tmp_path / "missing" / "q.npz", link)
    argv = ["quantize", str(tmp_path / "w.npy"), "--bits", "2", "--out", str(link)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{link} is a symbolic link to a missing file" in err and "--force" in err
    assert err.count("\n") == 1 and link.is_symlink()
    assert main([*argv, "--force"]) == 0
    assert not link.is_symlink() and not (tmp_path / "missing").exists()


def test_out_unwritable_names_the_out_path(tmp_path, capsys, monkeypatch):
    from vecq_ref import io

    def refuse(path, *args):
        raise PermissionError(13, "Permission denied", str(path))

    np.save(tmp_path / "w.npy", np.linspace(-1, 1, 8))
    monkeypatch.setattr(io.os, "open", refuse)
    out = tmp_path / "q.npz"
    assert main(["quantize", str(tmp_path / "w.npy"), "--bits", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"vecq-ref quantize: error: --out {out}: Permission denied\n"


def test_train_checks_method_without_bits(tmp_path, capsys):
    # --method used to be ignored (and a typo went unnoticed) when --bits was not given.
    out = tmp_path / "run"
    assert main(["train", "--method", "bogus", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: --method must be one of" in err and "'bogus'" in err
    assert err.count("\n") == 1 and not out.exists()


# --- groups and importance weights (--group-size, --weights) -----------------------------------


@pytest.fixture
def wfile(tmp_path):
    w = np.random.default_rng(3).standard_normal((6, 32)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    return tmp_path / "w.npy", w


def test_compare_group_size_and_weights(tmp_path, capsys, wfile):
    import vecq_ref as vq

    path, w = wfile
    h = np.random.default_rng(4).lognormal(size=32)
    np.save(tmp_path / "h.npy", h)
    argv = ["compare", str(path), "--bits", "2", "--methods", "vecq_exact,twn",
            "--group-size", "8", "--json"]
    assert main(argv + ["--weights", str(tmp_path / "h.npy")]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = vq.compare(w, bits=2, methods=["vecq_exact", "twn"], group_size=8, weights=h)
    assert [{k: v for k, v in r.items() if k != "array"} for r in rows] == expected
    assert all(r["weighted"] and r["group_size"] == 8 for r in rows)
    assert main(argv) == 0
    assert not any(r["weighted"] for r in json.loads(capsys.readouterr().out))


def test_search_and_report_group_size(tmp_path, capsys, wfile):
    import vecq_ref as vq
    from vecq_ref.check.report import model_report

    path, w = wfile
    assert main(["search", str(path), "--bits", "3", "--group-size", "16", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    r = vq.search_step(w, 3, group_size=16)
    assert np.array(payload["step"]).shape == (6, 2)
    assert payload["step"] == np.asarray(r.step).tolist()
    np.savez(tmp_path / "m.npz", fc=w, odd=np.ones((2, 6), np.float32))
    assert main(["report", str(tmp_path / "m.npz"), "--bits", "2", "--method", "exact",
                 "--group-size", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "groups of 16" in out
    assert "odd (last axis 6 of (2, 6) not a multiple of --group-size 16)" in out
    rep = model_report(tmp_path / "m.npz", bits=[2], method="exact", group_size=16)
    row = rep.rows[0]
    assert row["relative_dql_exact"] == vq.quantize(
        w, 2, "exact", group_size=16).loss.relative_dql
    assert row["relative_dql_param"] == vq.quantize(w, 2, group_size=16).loss.relative_dql
    assert rep.as_dict()["group_size"] == 16


@pytest.mark.parametrize(("make", "needle"), [
    (None, "--weights {h}: no such file"),
    (lambda p: np.save(p, np.ones(5)), "--weights {h} (for {w}): must be broadcastable to the "
                                        "weights' shape (6, 32)"),
    (lambda p: np.save(p, -np.ones(32)), "--weights {h} (for {w}): must be non-negative"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)),
     "--weights {h}: not a .npy array that can be read without pickles"),
    (lambda p: p.write_bytes(b"not numpy"), "--weights {h}: not a .npy array that can be read"),
])
@pytest.mark.parametrize("command", ["compare", "search", "quantize"])
def test_bad_weights_file_is_one_line_naming_the_option(tmp_path, capsys, wfile, make, needle,
                                                        command):
    path, _ = wfile
    h = tmp_path / "h.npy"
    if make is not None:
        make(h)
    argv = [command, str(path), "--bits", "2", "--weights", str(h)]
    if command == "quantize":
        argv += ["--out", str(tmp_path / "q.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"vecq-ref {command}: error: ")
    assert needle.format(h=h, w=path) in err
    assert not (tmp_path / "q.npz").exists()


def test_weights_npz_is_refused(tmp_path, capsys, wfile):
    path, _ = wfile
    np.savez(tmp_path / "h.npz", h=np.ones(32))
    assert main(["compare", str(path), "--bits", "2", "--weights", str(tmp_path / "h.npz")]) == 2
    assert "expected one .npy array; got an .npz archive" in capsys.readouterr().err


# --- level sets and the format rules (--lattice, --signed-scale, --zero-point, --codebook) ---


@pytest.mark.jit_only
def test_compare_formats_and_level_sets_pass_through(tmp_path, capsys, wfile):
    import vecq_ref as vq

    path, w = wfile
    h = np.random.default_rng(5).lognormal(size=32)
    np.save(tmp_path / "h.npy", h)
    assert main(["compare", str(path), "--bits", "4", "--group-size", "32", "--methods",
                 "formats", "--weights", str(tmp_path / "h.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = vq.compare(w, bits=4, methods="formats", group_size=32, weights=h)
    assert [{k: v for k, v in r.items() if k != "array"} for r in rows] == expected
    np.save(tmp_path / "book.npy", np.array([-1.0, -0.25, 0.0, 0.5]))
    for opts, kw in ((["--lattice", "midtread-full", "--signed-scale"],
                      {"lattice": "midtread-full", "signed_scale": True}),
                     (["--zero-point", "integer"], {"zero_point": "integer"}),
                     (["--codebook", "nf4"], {"codebook": "nf4"}),
                     (["--codebook", str(tmp_path / "book.npy"), "--bits", "2"],
                      {"codebook": np.array([-1.0, -0.25, 0.0, 0.5])})):
        bits = 2 if "book.npy" in " ".join(opts) else 4
        argv = ["compare", str(path), "--group-size", "16", "--json", *opts]
        assert main(argv + ([] if "--bits" in opts else ["--bits", "4"])) == 0
        rows = json.loads(capsys.readouterr().out)
        lib = vq.compare(w, bits=bits, group_size=16, **kw)
        assert [(r["method"], r["level_set"], r["relative_dql"]) for r in rows] == [
            (r["method"], r["level_set"], r["relative_dql"]) for r in lib], opts
    assert rows[0]["level_set"] == "codebook of 4 levels"
    assert main(["compare", str(path), "--bits", "4", "--group-size", "32", "--methods",
                 "q4_0,nf4"]) == 0
    out = capsys.readouterr().out
    assert "exact optimum (exact_q4_0)" in out and "gap_pct" in out
    assert max(map(len, out.splitlines())) <= 100


def test_search_quantize_and_report_take_a_level_set(tmp_path, capsys, wfile):
    import vecq_ref as vq

    path, w = wfile
    h = np.random.default_rng(6).lognormal(size=32)
    np.save(tmp_path / "h.npy", h)
    assert main(["search", str(path), "--bits", "4", "--codebook", "nf4", "--group-size",
                 "16", "--weights", str(tmp_path / "h.npy"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    r = vq.search_step(w, 4, codebook="nf4", group_size=16, weights=h)
    assert payload["step"] == np.asarray(r.step).tolist() and payload["lattice"] == "codebook"
    out = tmp_path / "q.npz"
    assert main(["quantize", str(path), "--bits", "3", "--method", "exact", "--zero-point",
                 "integer", "--group-size", "8", "--weights", str(tmp_path / "h.npy"),
                 "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    q = vq.quantize(w, 3, "exact", zero_point="integer", group_size=8, weights=h)
    assert payload["loss"]["relative_dql"] == q.loss.relative_dql
    with np.load(out) as z:
        np.testing.assert_array_equal(z["values"], q.values)
    np.savez(tmp_path / "m.npz", fc=w)
    assert main(["report", str(tmp_path / "m.npz"), "--bits", "4", "--lattice", "midtread-full",
                 "--signed-scale", "--group-size", "32", "--quiet", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["level_set"] == "midtread-full, codes −8…7, α of either sign"
    row = rep["rows"][0]
    assert row["relative_dql_exact"] == vq.quantize(
        w, 4, "exact", "midtread-full", group_size=32, signed_scale=True).loss.relative_dql
    assert row["relative_dql_param"] is None and row["gap_pct"] is None
    assert main(["report", str(tmp_path / "m.npz"), "--bits", "4", "--zero-point", "float",
                 "--group-size", "32", "--quiet"]) == 0
    text = capsys.readouterr().out
    # No param column; the one line that names it says why it is left out (T4 item 7).
    assert "real offset, codes 0…15, groups of 32" in text
    assert [ln for ln in text.splitlines() if "param" in ln] == [
        "left out: param, paper, gap_pct (VecQ-param and the paper expression: VecQ's "
        "midrise/midtread only)"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["--codebook", "{tmp}/missing.npy"], "--codebook {tmp}/missing.npy: no such file"),
    (["--codebook", "nf5"], "--codebook must be one of {nf4, fp4, iq4_nl}"),
    (["--zero-point", "integer", "--signed-scale"],
     "--signed-scale must be left out with a zero point"),
    (["--codebook", "nf4", "--bits", "3"], "--bits must be 4 (or left out) for a codebook"),
])
@pytest.mark.parametrize("command", ["compare", "search", "quantize", "report"])
def test_bad_level_set_options_are_one_line(tmp_path, capsys, wfile, argv, needle, command):
    path, w = wfile
    if command == "report":
        np.savez(tmp_path / "m.npz", fc=w)
        path = tmp_path / "m.npz"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    bits = [] if "--bits" in argv else ["--bits", "4"]
    extra = ["--out", str(tmp_path / "q.npz")] if command == "quantize" else []
    assert main([command, str(path), *bits, *argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"vecq-ref {command}: error: ")
    if command == "compare" and "--bits" in argv:
        needle = "--bits must be 4, the bits of the codebook"
    assert needle.replace("{tmp}", str(tmp_path)) in err, err


@pytest.mark.parametrize(("w", "option", "field", "expected"), [
    # By hand: w = α(u − z) with α = 1, z = 1 and codes 0…3 exactly (2 bits).
    ([-1.0, 0.0, 1.0, 2.0], "integer", "zero_point", 1),
    # w = α·u + m with α = 1, m = 0.5 and codes 0…3 exactly.
    ([0.5, 1.5, 2.5, 3.5], "float", "offset", 0.5),
])
def test_quantize_writes_and_search_shows_the_zero_point(tmp_path, capsys, w, option, field,
                                                         expected):
    """Trial T3 item 2: ``quantize --zero-point`` wrote codes 0…3 without the z or m that
    decodes them, and ``search`` printed neither."""
    np.save(tmp_path / "w.npy", np.array(w))
    out = tmp_path / "q.npz"
    assert main(["quantize", str(tmp_path / "w.npy"), "--bits", "2", "--method", "exact",
                 "--zero-point", option, "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload[field] == pytest.approx(expected, rel=1e-12)
    assert payload["arrays"] == ["codes", "alpha", "step", "values", field]
    with np.load(out) as z:
        assert sorted(z.files) == sorted(["codes", "alpha", "step", "values", field])
        np.testing.assert_array_equal(z["codes"], [0, 1, 2, 3])
        assert z[field] == pytest.approx(expected, rel=1e-12)
        assert z["alpha"] == pytest.approx(1.0, rel=1e-12)
        decoded = (z["alpha"] * (z["codes"] - z[field]) if field == "zero_point"
                   else z["alpha"] * z["codes"] + z[field])
        np.testing.assert_allclose(decoded, w, rtol=0, atol=1e-12)
    assert main(["search", str(tmp_path / "w.npy"), "--bits", "2", "--zero-point",
                 option]) == 0
    text = capsys.readouterr().out
    assert (f"zero point {expected}," if field == "zero_point"
            else f"offset {expected}") in text
    assert main(["search", str(tmp_path / "w.npy"), "--bits", "2", "--zero-point", option,
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[field] == pytest.approx(expected, rel=1e-12)
    # verify reads the .npz back (its values), as it reads one without a zero point.
    main(["verify", str(tmp_path / "w.npy"), str(out), "--bits", "2"])
    assert "'vecq-ref quantize' output" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["integer", "float", "nf4"])
def test_quantize_npz_decodes_per_group(tmp_path, capsys, wfile, option):
    import vecq_ref as vq

    path, w = wfile
    level = (["--codebook", option] if option == "nf4" else ["--bits", "3", "--zero-point",
                                                             option])
    out = tmp_path / "q.npz"
    assert main(["quantize", str(path), *level, "--method", "exact", "--group-size", "16",
                 "--out", str(out)]) == 0
    assert "-> " + str(out) in capsys.readouterr().out
    kw = {"codebook": "nf4"} if option == "nf4" else {"zero_point": option}
    q = vq.quantize(w, None if option == "nf4" else 3, "exact", group_size=16, **kw)
    with np.load(out) as z:
        a = z["alpha"][..., None]
        u = z["codes"].reshape(6, 2, 16).astype(np.float64)
        if option == "integer":
            np.testing.assert_array_equal(z["zero_point"], q.zero_point)
            dec = a * (u - z["zero_point"][..., None])
        elif option == "float":
            np.testing.assert_array_equal(z["offset"], q.offset)
            dec = a * u + z["offset"][..., None]
        else:
            np.testing.assert_array_equal(z["codebook"], vq.level_set(codebook="nf4").levels)
            dec = a * z["codebook"][z["codes"].reshape(6, 2, 16)]
        np.testing.assert_allclose(dec.reshape(6, 32), z["values"], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(z["values"], q.values)


def test_bits_may_be_left_out_only_with_a_codebook(tmp_path, capsys, wfile):
    """Trial T3 item 10: "--bits must be 4 (or left out)" while search refused a missing
    --bits with --codebook."""
    path, w = wfile
    for command in ("search", "quantize"):
        extra = ["--out", str(tmp_path / "q.npz"), "--force"] if command == "quantize" else []
        assert main([command, str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert err == (f"vecq-ref {command}: error: --bits is required (it may be left out "
                       "only with --codebook, whose number of levels sets it)\n")
        assert main([command, str(path), "--codebook", "nf4", "--method", "exact", *extra,
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["bits"] == 4
    np.savez(tmp_path / "m.npz", fc=w)
    assert main(["report", str(tmp_path / "m.npz"), "--codebook", "nf4", "--quiet",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bits"] == [4]


def test_report_weights(tmp_path, capsys, wfile):
    """Trial T3 item 11: report had no --weights; now like the other commands."""
    import vecq_ref as vq

    path, w = wfile
    h = np.random.default_rng(5).lognormal(size=32)
    np.save(tmp_path / "h.npy", h)
    w2 = np.random.default_rng(6).standard_normal((3, 32)).astype(np.float32)
    np.savez(tmp_path / "m.npz", fc=w, fc2=w2, odd=np.ones((2, 8), np.float32))
    assert main(["report", str(tmp_path / "m.npz"), "--bits", "3", "--group-size", "16",
                 "--weights", str(tmp_path / "h.npy"), "--quiet", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["weighted"] is True
    q1 = vq.quantize(w, 3, "exact", group_size=16, weights=h)
    q2 = vq.quantize(w2, 3, "exact", group_size=16, weights=h)
    assert [r["relative_dql_exact"] for r in rep["rows"]] == [q1.loss.relative_dql,
                                                               q2.loss.relative_dql]
    assert all(r["relative_dql_param"] is None for r in rep["rows"])
    # The total is Σ DQL_h / Σ h·w² over both tensors.
    sww = sum(float(np.sum(h * np.square(x.astype(np.float64)))) for x in (w, w2))
    total = (q1.loss.dql + q2.loss.dql) / sww
    assert rep["totals"][0]["relative_dql_exact"] == pytest.approx(total, rel=1e-12)
    assert rep["skipped"] == [{"name": "odd", "why": "last axis 8 of (2, 8) not a multiple "
                                                     "of --group-size 16"}]
    np.savez(tmp_path / "n.npz", fc=w, narrow=np.ones((2, 16), np.float32))
    assert main(["report", str(tmp_path / "n.npz"), "--bits", "3", "--weights",
                 str(tmp_path / "h.npy"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "h-weighted (--weights)" in text
    assert "narrow (--weights of shape (32,) do not broadcast to (2, 16))" in text
    # Trial T4 item 7: the left-out columns are named with the reason, on one line.
    left = ("left out: param, paper, gap_pct (VecQ-param and the paper expression: unweighted "
            "rules (--weights))")
    assert text.splitlines().count(left) == 1 and len(left) <= 100
    header = next(ln for ln in text.splitlines() if ln.split()[:1] == ["name"])
    assert header.split() == ["name", "shape", "dtype", "bits", "sigma", "kurtosis", "exact",
                              "time"]
    assert main(["report", str(tmp_path / "n.npz"), "--bits", "3", "--quiet"]) == 0
    assert "left out" not in capsys.readouterr().out  # every column shown: nothing to say
    assert main(["report", str(tmp_path / "n.npz"), "--codebook", "nf4", "--quiet"]) == 0
    assert ("left out: param, paper, gap_pct (VecQ-param and the paper expression: VecQ's "
            "midrise/midtread only)") in capsys.readouterr().out.splitlines()
    np.save(tmp_path / "bad.npy", np.r_[np.nan, np.ones(31)])
    for argv, needle in ((["--weights", str(tmp_path / "bad.npy")],
                          "must be finite; got 1 non-finite value (NaN or Inf)"),
                         (["--weights", str(tmp_path / "h.npy"), "--method", "param"],
                          "--method must be a search method with --weights")):
        assert main(["report", str(tmp_path / "m.npz"), "--bits", "3", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
