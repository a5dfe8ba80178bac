"""The CLI's one-line notice when the Numba kernels are not yet compiled for this CPU.

The first use of the kernels on a machine compiles them (tens of seconds to minutes on a small
machine) and writes Numba's on-disk cache (``cache=True``; ``NUMBA_CACHE_DIR`` or the
``__pycache__`` folders); later runs load them in well under a second per kernel. Before a
command runs, :func:`notice` probes that cache and, when no kernel of ``vecq_ref._kernels`` has
an entry for this CPU, prints one line on stderr so that a silent first run does not look
hung. It only reads Numba's cache index files: nothing is compiled or written.
"""

from __future__ import annotations

import sys

NOTICE = "vecq-ref: compiling kernels for this CPU (first use only) …"
#: Commands that run no kernel (nothing to announce).
QUIET_COMMANDS = ("table",)


def _dispatchers():
    from numba.core.dispatcher import Dispatcher

    from ._kernels import lattice, reduce, search

    for module in (lattice, reduce, search):
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and getattr(value, "_cache", None) is not None:
                yield value


def kernels_cached():
    """Whether Numba's disk cache holds some ``vecq_ref`` kernel compiled for this CPU.

    Returns True or False, or None when it cannot tell (JIT disabled, caching off, or a Numba
    whose cache internals differ): callers then stay quiet.
    """
    try:
        magic = None
        found_cache = False
        for disp in _dispatchers():
            index_file = getattr(disp._cache, "_cache_file", None)
            if index_file is None:  # NullCache: caching is off for this kernel
                continue
            found_cache = True
            if magic is None:
                magic = disp.targetctx.codegen().magic_tuple()
            if any(key[1] == magic for key in index_file._load_index()):
                return True
        return False if found_cache else None
    except Exception:  # a probe must never break the CLI
        return None


def notice(command, stream=None):
    """Print :data:`NOTICE` on ``stream`` (stderr) if ``command`` will compile the kernels.

    Only for an interactive ``stream`` (a terminal), so piped or captured output stays
    exactly the command's own. Returns whether the line was printed.
    """
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if command in QUIET_COMMANDS or not (callable(isatty) and isatty()):
        return False
    if kernels_cached() is not False:
        return False
    print(NOTICE, file=stream, flush=True)
    return True
