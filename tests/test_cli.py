import json

import numpy as np
import pytest

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
    (["quantize", "{w}", "--bits", "17", "--out", "{tmp}/y.npz"], "`bits` must be"),
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
