"""The README: its Python examples run, in order, in one namespace; its timings table parses."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.jit_only
def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["q"].bits == 4
    assert namespace["result"] is not None


def _timings_script():
    import runpy

    return runpy.run_path(str(README.parent / "benchmarks" / "readme_timings.py"))


def test_readme_timings_table_is_what_the_script_checks():
    timings = _timings_script()
    rows = timings["read_table"](README.read_text(encoding="utf-8"))
    commands = [r["command"] for r in rows]
    # The Quickstart's two lines after their installs, and the first uses the issue named.
    assert "python -m vecq_ref reproduce --out results" in commands
    assert "python -m pytest -q" in commands
    assert any(" verify " in c for c in commands) and any(" demo" in c for c in commands)
    for row in rows:
        assert row["command"].startswith("python "), row
        assert row["cold"] is not None, f"no first-use time for `{row['command']}`"
    # A row's files come from the rows before it: quantize writes the q.npz verify reads.
    assert commands.index("python -m vecq_ref verify w.npy q.npz --bits 4") > commands.index(
        "python -m vecq_ref quantize w.npy --bits 4 --out q.npz")


def test_readme_timings_parse_format_and_rewrite():
    timings = _timings_script()
    parse, fmt = timings["parse_seconds"], timings["format_seconds"]
    assert parse("2 min 33 s") == 2 * 60 + 33
    assert parse("4 min") == 240
    assert parse("0.93 s") == 0.93
    assert parse("—") is None
    with pytest.raises(ValueError, match="timing"):
        parse("fast")
    assert [fmt(t) for t in (0.934, 9.31, 81.4, 99.6, 153.2)] == [
        "0.93 s", "9.3 s", "81 s", "1 min 40 s", "2 min 33 s"]
    # Written figures read back as the same number, to the digits written.
    for t in (0.51, 3.3, 47.0, 600.0):
        assert parse(fmt(t)) == pytest.approx(t, rel=0.05)
    assert timings["off_by"](4.0, 2.0) == timings["off_by"](1.0, 2.0) == 2.0
    text = ("intro\n<!-- timings:begin -->\n| what | command | first use | then |\n"
            "|---|---|---|---|\n| a | `python -m x` | 7 s | — |\n"
            "| b | `python -m y` | 1 s | 2 s |\n"
            "<!-- timings:end -->\nafter | `python -m x` | 7 s | 1 s |\n")
    text = text.replace("| what |", "Measured at load average 0.3.\n\n| what |")
    new = timings["write_table"](text, {"python -m x": (12.34, 0.5)}, load=1.87)
    assert "Measured at load average 1.9.\n" in new
    assert "| a | `python -m x` | 12 s | 0.5 s |" in new
    assert "| b | `python -m y` | 1 s | 2 s |" in new  # not measured: unchanged
    assert new.endswith("after | `python -m x` | 7 s | 1 s |\n")  # outside the markers
    assert [r["cold"] for r in timings["read_table"](new)] == [12.0, 1.0]


def test_readme_q4_0_diagnosis_is_as_printed():
    """The README's llama.cpp Q4_0 example is what `verify` prints today (issue 22)."""
    import numpy as np

    import vecq_ref as vq

    text = README.read_text(encoding="utf-8")
    m = re.search(r'>>> print\(vq\.verify\(f\["rand"\], g\["rand_q4_0_deq"\], bits=4, '
                  r'group_size=32\)\)\n(.*?)```', text, re.S)
    assert m, "the Q4_0 example is missing from the README"
    root = README.parent / "tests" / "fixtures" / "formats"
    w = np.load(root / "inputs.npz")["rand"]
    wq = np.load(root / "gguf_ref.npz")["rand_q4_0_deq"]
    assert m.group(1).rstrip("\n") == str(vq.verify(w, wq, bits=4, group_size=32))
