"""The CLI's first-use notice: one line on stderr when a command starts compiling kernels,
whatever stderr is, and nothing when nothing is compiled."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vecq_ref import _first_use

ROOT = Path(__file__).resolve().parents[1]
JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


@pytest.fixture(autouse=True)
def _enabled(monkeypatch):
    monkeypatch.setattr(_first_use, "ENABLED", True)  # conftest turns it off for other tests


def _fresh_kernel():
    """A jitted function never compiled before (a new closure: no cache, no overload)."""
    from numba import njit

    offset = float(np.random.default_rng().integers(1 << 30))

    @njit
    def add(x):
        return x + offset

    return add


def test_one_line_on_the_first_compile_into_any_stream():
    stream = io.StringIO()  # not a terminal: a pipe into tee, a log file
    with _first_use.watch("quantize", stream) as listener:
        assert stream.getvalue() == ""  # nothing before a compile starts
        _fresh_kernel()(1.0)
        _fresh_kernel()(2.0)  # a second compile: still one line
    if JIT_OFF:  # nothing is compiled
        assert stream.getvalue() == "" and not listener.printed
    else:
        assert stream.getvalue() == _first_use.NOTICE + "\n" and listener.printed
    _fresh_kernel()(3.0)  # after the command: no longer listening
    assert stream.getvalue().count("\n") == (0 if JIT_OFF else 1)


def test_nothing_when_nothing_is_compiled():
    f = _fresh_kernel()
    f(1.0)  # compiled before the command
    stream = io.StringIO()
    with _first_use.watch("quantize", stream) as listener:
        f(5.0)  # already compiled for float64: no compile
    assert stream.getvalue() == "" and not listener.printed


@pytest.mark.parametrize(("command", "quiet", "enabled"), [
    ("table", False, True),      # runs no kernel
    ("reproduce", True, True),   # --quiet: no progress lines on stderr, this one included
    ("quantize", False, False),  # turned off (the test suite)
])
def test_not_listening(monkeypatch, command, quiet, enabled):
    monkeypatch.setattr(_first_use, "ENABLED", enabled)
    stream = io.StringIO()
    with _first_use.watch(command, stream, quiet=quiet) as listener:
        _fresh_kernel()(1.0)
    assert listener is None and stream.getvalue() == ""


def _cli(cache_dir, *argv):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "vecq_ref", *argv], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_a_real_cold_command_says_so_on_piped_stderr(tmp_path):
    """`vecq-ref quantize ... 2>&1 | tee log`: stderr is a pipe, the notice is still there."""
    np.save(tmp_path / "w.npy", np.linspace(-1.0, 1.0, 10))
    cache = tmp_path / "cache"  # an empty Numba cache: nothing compiled for this CPU yet
    args = ("quantize", str(tmp_path / "w.npy"), "--bits", "2", "--out")
    # A command that fails before any kernel runs says only its error, cold cache or not.
    bad = _cli(cache, "quantize", str(tmp_path / "missing.npy"), "--bits", "2", "--out",
               str(tmp_path / "x.npz"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert _first_use.NOTICE not in bad.stderr
    cold = _cli(cache, *args, str(tmp_path / "q1.npz"))
    assert cold.returncode == 0, cold.stderr
    assert "param 2-bit midrise" in cold.stdout
    assert cold.stderr == ("" if JIT_OFF else _first_use.NOTICE + "\n")
    # The same command again: the kernels load from the cache, no compile, no notice.
    warm = _cli(cache, *args, str(tmp_path / "q2.npz"))
    assert warm.returncode == 0 and warm.stderr == ""
