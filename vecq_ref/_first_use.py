"""The CLI's one-line notice when a command starts compiling the Numba kernels.

The first use of the kernels on a machine compiles them (seconds to tens of seconds on a
small machine) and writes Numba's on-disk cache (``cache=True``; ``NUMBA_CACHE_DIR`` or the
``__pycache__`` folders); later runs load them from there in well under a second. While a
command runs, :func:`watch` listens to Numba's ``numba:compile`` event, which Numba raises
only when it really compiles (not when it loads a kernel from the cache or already has it in
memory), and prints :data:`NOTICE` once on stderr when the first compilation starts, whatever
stderr is (a terminal, a pipe into ``tee``, a log file), so that a cold command is never
silent for seconds. A warm cache, a command that fails before any kernel runs, and
``NUMBA_DISABLE_JIT=1`` print nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading

NOTICE = "vecq-ref: compiling kernels for this CPU (first use only) …"
#: Commands that run no kernel (nothing to listen for; Numba is not even imported).
QUIET_COMMANDS = ("table",)
#: Off in the test suite (``tests/conftest.py``), where stderr is the commands' own output.
ENABLED = True


def _listener_class():
    from numba.core import event

    class _FirstCompile(event.Listener):
        """Prints the notice on the first compile start it sees, then never again."""

        def __init__(self, stream):
            self.stream, self.printed = stream, False
            self._lock = threading.Lock()  # kernels may first compile on a pool thread

        def on_start(self, ev):
            with self._lock:
                if self.printed:
                    return
                self.printed = True
            try:
                print(NOTICE, file=self.stream, flush=True)
            except (OSError, ValueError):  # a closed stderr must not break the compile
                pass

        def on_end(self, ev):
            pass

    return _FirstCompile


@contextlib.contextmanager
def watch(command, stream=None, quiet=False):
    """Print :data:`NOTICE` on ``stream`` (stderr) when the block first compiles a kernel.

    Nothing is listened for when ``command`` runs no kernel (:data:`QUIET_COMMANDS`), with
    ``quiet`` (the command's ``--quiet``), or when :data:`ENABLED` is off. Yields the
    listener (its ``printed`` says whether the line was printed), or None when not listening.
    """
    if quiet or not ENABLED or command in QUIET_COMMANDS:
        yield None
        return
    try:
        from numba.core import event

        listener = _listener_class()(sys.stderr if stream is None else stream)
    except Exception:  # a Numba without the event API: stay quiet rather than fail
        yield None
        return
    with event.install_listener("numba:compile", listener):
        yield listener
