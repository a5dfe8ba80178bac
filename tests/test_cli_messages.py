"""The command line speaks in options (``--force``), never in the library's parameters
(``force=True``, ```group_size```, ``must be None``), while the library keeps its own words."""

import contextlib
import io
import json
import re

import numpy as np
import pytest

from vecq_ref.cli import _in_options, build_parser, main

#: What a CLI message must not contain: Python keywords, call syntax, backticked names other
#: than the library arguments a file label names (`w`, `wq`: "w.npy (`w`)").
#: No Python either: calls (`np.`, `.astype(`), tuple reprs ``('param', ...)``, backticked
#: names in capitals (```WQ``` file).
FORBIDDEN = [r"\b(True|False|None)\b", r"\b[a-z_]+=", r"`(?!wq?`)[a-z_]+`", r"\bnp\.",
             r"\.astype\(", r"vecq_ref\.", r"\(\s*'[^']*',", r"`[A-Za-z_]+`(?<!`w`)(?<!`wq`)"]


def _run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    return status, err.getvalue()


@pytest.fixture
def files(tmp_path):
    w = tmp_path / "w.npy"
    np.save(w, np.linspace(-1.0, 1.0, 24).reshape(4, 6))
    np.save(tmp_path / "scalar.npy", np.array(1.5))
    for name in ("q.npz", "plot.png"):
        (tmp_path / name).write_bytes(b"taken")
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "manifest.json").write_text("{}")
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "fig1_toy.png").write_bytes(b"taken")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "steps.jsonl").write_text("")  # a run stopped before its checkpoint
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps({"lr": 123.0}))
    # float16 near its maximum: the exact search's top level lands above 65504.
    np.save(tmp_path / "f16top.npy",
            np.array([65504, -65504, 60000, -60000, 30000, 1000], dtype=np.float16))
    np.save(tmp_path / "c.npy", np.ones(4, dtype=complex))
    (tmp_path / "bad.npy").write_bytes(b"x\n")
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "reproduce.json").write_text(json.dumps({"seed": 99}))
    return tmp_path


# Every error path whose library message names a parameter, with the words the CLI says.
CASES = [
    (["quantize", "{w}", "--bits", "2", "--out", "{t}/q.npz"], "exists; pass --force to"),
    (["quantize", "{w}", "--bits", "17", "--out", "{t}/y.npz"], "--bits must be an integer"),
    (["quantize", "{w}", "--bits", "2", "--axis", "0", "--group-size", "3", "--out",
      "{t}/y.npz"], "--axis must be left out when --group-size is given"),
    (["quantize", "{t}/scalar.npy", "--bits", "2", "--group-size", "2", "--out", "{t}/y.npz"],
     "--group-size must be left out for a 0-d array"),
    (["search", "{w}", "--bits", "2", "--axis", "5"], "--axis must be an axis in [-2, 1]"),
    (["verify", "{w}", "{w}", "--bits", "2", "--axis", "0", "--group-size", "3"],
     "--axis must be left out when --group-size is given"),
    (["compare", "{w}", "--bits", "3", "--methods", "twn"], "--methods must be methods defined"),
    (["golden", "--out", "{t}/golden"], "exists; pass --force to overwrite it"),
    (["figures", "--out", "{t}/figs", "--only", "fig1_toy", "--format", "png"],
     "pass --force to overwrite them"),
    (["report", "{w}", "--bits", "2", "--plot", "{t}/plot.png"], "pass --force to overwrite"),
    (["train", "--epochs", "1", "--out", "{t}/run"],
     "pass --resume to start it again (it stopped before its first checkpoint) or --force to "
     "start over"),
    (["train", "--epochs", "1", "--data-path", "{t}", "--out", "{t}/t2"],
     "--data-path must be left out for --data digits (bundled data needs no files)"),
    (["train", "--epochs", "1", "--resume", "--out", "{t}/cfg"],
     "--resume needs the settings of the saved run; these differ: [--batch-size,"),
    # Remedies and labels the library spells in Python.
    (["quantize", "{t}/f16top.npy", "--bits", "8", "--method", "exact", "--out", "{t}/y.npz"],
     "save the weights as float32 and quantize that file"),
    (["quantize", "{t}/c.npy", "--bits", "2", "--out", "{t}/y.npz"], "save them as float32"),
    (["train", "--method", "bogus", "--out", "{t}/t3"],
     "--method must be one of {param, paper, exact, grid, alternating} or a baseline (bwn, "),
    (["quantize", "{t}/none.npy", "--bits", "2", "--out", "{t}/y.npz"],
     "input file {t}/none.npy does not exist"),
    (["report", "{t}/bad.npy", "--bits", "2"], "input file {t}/bad.npy: is not a .npy file"),
    (["verify", "{w}", "{t}/none.npy", "--bits", "2"],
     "quantized file {t}/none.npy does not exist"),
    (["verify", "{t}/bad.npy", "{w}", "--bits", "2"], "input file {t}/bad.npy: is not a .npy"),
    # Level sets, importance weights and the format rules.
    (["compare", "{w}", "--bits", "4", "--zero-point", "integer", "--signed-scale"],
     "--signed-scale must be left out with a zero point (the mirrored set is another zero "
     "point)."),
    (["quantize", "{w}", "--bits", "4", "--zero-point", "integer", "--signed-scale", "--out",
      "{t}/y.npz"], "--signed-scale must be left out with a zero point"),
    (["compare", "{w}", "--bits", "4", "--methods", "q4_0"],
     "--group-size must be a divisor of the last axis length 6 (the block of 'q4_0' without "
     "--group-size); got 32."),
    (["compare", "{w}", "--bits", "4", "--methods", "q4_0", "--axis", "0"],
     "--axis must be left out with the format rules"),
    (["compare", "{w}", "--bits", "3", "--codebook", "nf4"],
     "--bits must be 4, the bits of the codebook, among the requested bits; got [3]."),
    (["search", "{w}", "--bits", "4", "--weights", "{t}/scalar.npy", "--group-size", "4"],
     "--group-size must be a divisor of the last axis length 6; got 4."),
    (["search", "{w}", "--bits", "4", "--weights", "{t}/bad.npy"],
     "--weights {t}/bad.npy: not a .npy array that can be read without pickles"),
    (["compare", "{w}", "--bits", "4", "--weights", "{t}/f16top.npy"],
     "--weights {t}/f16top.npy (for {t}/w.npy): must be non-negative (h ≥ 0; zero weights "
     "are allowed); got a minimum of -65504.0."),
    (["compare", "{w}", "--bits", "4", "--codebook", "{t}/bad.npy"],
     "--codebook {t}/bad.npy: not a .npy array that can be read without pickles"),
    (["report", "{w}", "--bits", "4", "--method", "param", "--codebook", "nf4"],
     "--method must be a search method on the level set 'NF4 codebook'"),
    (["reproduce", "--quick", "--out", "{t}/rep"],
     "--seed, 'sweep_bits']); use another --out or pass --force to start over"),
]


@pytest.mark.parametrize(("argv", "words"), CASES, ids=[" ".join(c[0][:1] + [c[1][:20]])
                                                        for c in CASES])
def test_cli_errors_speak_in_options(files, argv, words):
    status, err = _run([a.format(w=files / "w.npy", t=files) for a in argv])
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert words.replace("{t}", str(files)) in err, err
    for pattern in FORBIDDEN:
        assert not re.search(pattern, err), (pattern, err)


def test_the_library_keeps_its_parameters(tmp_path):
    """The same problems through the API: parameter words, no options."""
    from vecq_ref import io as vio
    from vecq_ref import quantize

    vio.write_text(tmp_path / "a.txt", "one")
    with pytest.raises(FileExistsError, match=r"pass force=True to overwrite it$"):
        vio.write_text(tmp_path / "a.txt", "two")
    with pytest.raises(ValueError, match=r"^`axis` must be None when `group_size` is given"):
        quantize(np.ones((2, 4)), 2, axis=0, group_size=2)


def test_in_options_rewrites_only_the_commands_options():
    parser = build_parser()

    def say(text, command="quantize"):
        return _in_options(text, parser, command)

    assert (say("x exists; pass force=True to overwrite it")
            == "x exists; pass --force to overwrite it")
    assert say("`group_size` must be None; got 0.") == "--group-size must be left out; got 0."
    assert say("`axis` must be 1 when `force` is True") == "--axis must be 1 when --force is given"
    assert say("no --force when force=False") == "no --force when no --force"
    assert say("for data='digits'", "train") == "for --data digits"
    assert say("these differ: ['lr', 'n_test']", "train") == "these differ: [--lr, 'n_test']"
    # Not options of the command: left as the library wrote them.
    assert say("w.npy (`w`): `w` contains 1 NaN") == "w.npy (`w`): `w` contains 1 NaN"
    assert say("`methods` must be one of", "quantize") == "`methods` must be one of"
    assert say("`methods` must be one of", "compare") == "--methods must be one of"
    assert say("resume=True or /a/b=c.npy") == "resume=True or /a/b=c.npy"  # no --resume here


def test_verify_hints_speak_in_options(tmp_path):
    """verify's report tells the CLI user the option (--axis 0), not the call (`axis=0`):
    float16 [[65504, -65504], [60000, 1]] has four levels no one 4-bit lattice holds, but each
    row is two levels, a lattice of its own."""
    w = tmp_path / "w.npy"
    np.save(w, np.array([[65504, -65504], [60000, 1]], dtype=np.float16))
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(out):
        status = main(["verify", str(w), str(w), "--bits", "4"])
    assert status == 1
    # the verdict and its reasons, wrapped under it (issue 22: lines of at most 100 chars)
    lines = out.getvalue().splitlines()
    i = next(k for k, line in enumerate(lines) if line.lstrip().startswith("verdict"))
    j = next(k for k in range(i + 1, len(lines)) if lines[k].lstrip().startswith("quality"))
    verdict = " ".join(x.strip() for x in lines[i:j])
    assert "pass --axis 0" in verdict, verdict
    assert "`axis" not in verdict


def test_in_options_rewrites_python_remedies():
    parser = build_parser()
    say = _in_options
    assert (say("pass `axis=0`.", parser, "verify") == "pass --axis 0.")
    assert say("pass `bogus=0`.", parser, "verify") == "pass `bogus=0`."  # not an option
    assert (say("one of ('a', 'b') or", parser, "train") == "one of {a, b} or")
    assert say("`input` file x", parser, "report") == "input file x"
    # a reader's own parameter (no argument of the command): the path alone
    assert say("`path` file x: is not", parser, "report") == "x: is not"
    assert say("`other` file x", parser, "report") == "`other` file x"  # not an argument
    assert (say("`w` (dtype float32) ...; pass `w.astype(np.float64)` to get them in float64.",
                parser, "quantize")
            == "`w` (dtype float32) ...; save the weights as float64 and quantize that file to "
               "get them in float64 (the codes and α are the same).")


@pytest.mark.parametrize("command", ["figures", "golden", "train", "reproduce"])
def test_a_dangling_link_as_out_folder_is_called_one(tmp_path, command):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    extra = {"figures": ["--only", "fig1_toy"], "train": ["--epochs", "1"],
             "reproduce": ["--quick"]}.get(command, [])
    status, err = _run([command, "--out", link, *extra])
    assert status == 2 and err.count("\n") == 1
    assert (f"--out {link} is a symbolic link to a missing {tmp_path / 'gone'}; create that "
            "folder or remove the link") in err, err
    assert not (tmp_path / "gone").exists() and link.is_symlink()  # nothing made or replaced
    status, err = _run([command, "--out", link / "sub", *extra])
    assert f"lies under {link}, which is a symbolic link to a missing" in err, err


def _unwritable_folder(tmp_path):
    import os
    from pathlib import Path

    if os.geteuid() != 0:  # permissions stop everyone but root
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o500)
        return folder
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no unwritable folder for root here")
    return Path("/sys")  # sysfs refuses new files even to root


@pytest.mark.parametrize("what", ["quantize --out", "report --plot"])
def test_an_unwritable_output_names_its_option(files, tmp_path, what):
    folder = _unwritable_folder(tmp_path)
    command, option = what.split()
    target = folder / ("q.npz" if command == "quantize" else "p.png")
    status, err = _run([command, files / "w.npy", "--bits", "2", option, target])
    assert status == 2 and err.count("\n") == 1
    assert re.search(rf"error: {option} {re.escape(str(target))}: "
                     r"(Permission denied|Operation not permitted)$", err.strip()), err


def test_the_baselines_train_names_are_the_librarys():
    from vecq_ref import baselines

    status, err = _run(["train", "--method", "bogus", "--out", "unused"])
    named = re.search(r"or a baseline \(([^)]*)\)", err).group(1).split(", ")
    assert named == [n for n in baselines.__all__ if callable(getattr(baselines, n))
                     and n.islower()]


def test_codebook_bits_message_speaks_of_options(tmp_path, capsys):
    import numpy as np

    from vecq_ref.cli import main

    path = tmp_path / "w.npy"
    np.save(path, np.ones((2, 32)))
    assert main(["search", str(path), "--bits", "3", "--codebook", "nf4"]) == 2
    err = capsys.readouterr().err
    assert "--bits must be 4 (or left out)" in err and "None" not in err
