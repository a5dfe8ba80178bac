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
FORBIDDEN = [r"\b(True|False|None)\b", r"\b[a-z_]+=", r"`(?!wq?`)[a-z_]+`"]


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
    (["reproduce", "--quick", "--out", "{t}/rep"],
     "--seed, 'sweep_bits']); use another --out or pass --force to start over"),
]


@pytest.mark.parametrize(("argv", "words"), CASES, ids=[" ".join(c[0][:1] + [c[1][:20]])
                                                        for c in CASES])
def test_cli_errors_speak_in_options(files, argv, words):
    status, err = _run([a.format(w=files / "w.npy", t=files) for a in argv])
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert words in err, err
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
