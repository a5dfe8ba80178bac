"""The CLI's first-use notice: printed once, only on a terminal, only with a cold cache."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vecq_ref import _first_use

ROOT = Path(__file__).resolve().parents[1]
JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_notice_on_a_terminal_with_a_cold_cache(monkeypatch):
    monkeypatch.setattr(_first_use, "kernels_cached", lambda: False)
    term = _Terminal()
    assert _first_use.notice("quantize", term)
    assert term.getvalue() == _first_use.NOTICE + "\n"  # exactly one line


@pytest.mark.parametrize("cached", [True, None])
def test_no_notice_when_cached_or_unknown(monkeypatch, cached):
    monkeypatch.setattr(_first_use, "kernels_cached", lambda: cached)
    term = _Terminal()
    assert not _first_use.notice("quantize", term)
    assert term.getvalue() == ""


def test_no_notice_when_piped_or_for_table(monkeypatch):
    monkeypatch.setattr(_first_use, "kernels_cached", lambda: False)
    piped = io.StringIO()  # not a terminal: captured output stays the command's own
    assert not _first_use.notice("quantize", piped)
    term = _Terminal()
    assert not _first_use.notice("table", term)  # `table` runs no kernel
    assert piped.getvalue() == term.getvalue() == ""


def _probe(cache_dir, compile_first):
    code = ("import numpy as np\n"
            "from vecq_ref import _first_use\n"
            "from vecq_ref._kernels.reduce import row_moments\n"
            f"if {compile_first}: row_moments(np.ones((1, 3)))\n"
            "print(_first_use.kernels_cached())\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


@pytest.mark.slow
def test_probe_reads_the_real_cache(tmp_path):
    # An empty cache folder: nothing compiled for this CPU yet.
    assert _probe(tmp_path, False) == ("None" if JIT_OFF else "False")
    if JIT_OFF:
        return
    # One kernel compiled (and cached) in a first process: a second process sees it.
    _probe(tmp_path, True)
    assert _probe(tmp_path, False) == "True"
