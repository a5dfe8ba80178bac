"""The authors' released Keras VecQ expression evaluated in float32, as Keras runs it.

``vecq/quantize_methods/VecQ.py`` (GongCheng1919/VecQ) computes, in the tensor's dtype
(float32 in practice; docs/theory.md §7.1)::

    std   = K.std(w)                                  # population, not mean-centred w
    fixed = w / (std·λ + K.epsilon()) − 0.5           # λ the 4-decimal table, ε = 1e-7
    fixed = K.round(K.clip(fixed, −2^(k−1), 2^(k−1) − 1)) + 0.5     # half to even
    α     = K.sum(w·fixed) / (K.sum(fixed·fixed) + K.epsilon())
    out   = fixed·α

:func:`paper_float32` evaluates the same operations in the same order on float32 arrays with
NumPy (``quantize(w, bits, method="paper", precision="float32")``). Every elementwise step is
IEEE float32 and matches TF bit for bit; the three reductions (the mean and variance inside
``K.std`` and the two sums) are NumPy's pairwise float32 sums, whose order differs from TF's
reduction tree, so σ and α can differ from a TF run in the last bits, and a code flips only
where ``w/s − ½`` lands within that difference of a rounding threshold.
"""

from __future__ import annotations

from .._paper32 import EPSILON32, keras_row
from ..quantize import _paper_float32


def paper_float32(arr, lay, bits):
    """``quantize(..., method="paper", precision="float32")`` on validated input.

    Parameters
    ----------
    arr : ndarray
        The weights (any float dtype; evaluated as float32).
    lay : vecq_ref._layout.Layout
        The granularity.
    bits : int

    Returns
    -------
    Quantized
        ``values`` float32; ``alpha`` and ``step`` the float32 numbers the expression
        computes (as float64); ``loss`` of the float32 values against ``w`` in float64.
    """
    return _paper_float32(arr, lay, bits)


__all__ = ["EPSILON32", "keras_row", "paper_float32"]
