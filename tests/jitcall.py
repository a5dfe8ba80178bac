"""Call kernel helpers from a test.

Helpers (``vecq_ref._kernels.helper``) are compiled without a Python wrapper, so a test
reaches one through a small jitted function that calls it; with ``NUMBA_DISABLE_JIT=1`` the
helper is a plain Python function and is called as it is.
"""

import numba


def jitted(helper):
    """A Python-callable function with the arguments and result of ``helper``."""
    if numba.config.DISABLE_JIT:
        return helper

    def call(*args):
        return helper(*args)

    return numba.njit(call)
