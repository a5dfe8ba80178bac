"""Central finite differences, shared by the gradient checks of the nn tests."""

import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to every entry of ``x``.

    ``x`` is perturbed in place and restored, so ``f`` must read it.
    """
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g
