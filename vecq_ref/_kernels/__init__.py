"""Numba kernels: private, no validation, compiled lazily on first call (``cache=True``).

Every kernel here has a plain-NumPy twin of the same name (or formula) in
:mod:`vecq_ref.naive`, and tests compare the two.

Determinism: reductions run over fixed-size chunks of ``CHUNK`` elements, each accumulated
in float64 over ``LANES`` interleaved partial sums in a fixed order, and the chunk results
are combined sequentially. The order of every floating-point operation is therefore fixed
by the data's shape alone, whatever ``NUMBA_NUM_THREADS`` is.
"""

CHUNK = 1 << 14
LANES = 4
MIDRISE = 0
MIDTREAD = 1
