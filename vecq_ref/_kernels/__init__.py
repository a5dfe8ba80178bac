"""Numba kernels: private, no validation, compiled lazily on first call (``cache=True``).

Every kernel here has a plain-NumPy twin of the same name (or formula) in
:mod:`vecq_ref.naive`, and tests compare the two.

Determinism: reductions run over fixed-size chunks of ``CHUNK`` elements and the chunk
results are combined sequentially, so the work split never depends on the thread count.
Inside a chunk, the float64 accumulation loops are compiled with ``REDUCE_MATH``
(reassociation only) so that LLVM can vectorize them: the summation order is then fixed by
the compiled code (its vector width, chosen for the host CPU) and the data's shape. Results
are bit-identical run to run and for any ``NUMBA_NUM_THREADS`` on a machine; across CPUs
with different SIMD widths the last bits of a sum may differ (≤ a few ulps of the sum).
Sums of integer-valued terms (Σc, Σc²) are exact in float64 and order-free.
"""

import contextlib

CHUNK = 1 << 14
REDUCE_MATH = {"reassoc"}

#: Below this many elements a parallel kernel runs on the calling thread alone: waking the
#: pool costs more than it saves, and far more on a busy machine. Results do not change
#: (the chunking, not the thread count, fixes every summation order).
PARALLEL_MIN = 1 << 17


@contextlib.contextmanager
def single_thread():
    """Run Numba's parallel kernels on the calling thread alone inside the block.

    The setting is per calling thread and restored on exit; results do not change.
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def threads_for(size):
    """A context that runs the enclosed kernels single-threaded below ``PARALLEL_MIN``."""
    return contextlib.nullcontext() if size >= PARALLEL_MIN else single_thread()
