"""Numba kernels: private, no validation, compiled lazily on first call (``cache=True``).

Every kernel here has a plain-NumPy twin of the same name (or formula) in
:mod:`vecq_ref.naive`, and tests compare the two.

Determinism: reductions run over fixed-size chunks of ``CHUNK`` elements and the chunk
results are combined sequentially, so the work split never depends on the thread count.
Inside a chunk every float64 sum uses ``LANES`` independent accumulators: element ``i`` of
the first ``n − n mod LANES`` of a span goes to lane ``i mod LANES``, each lane adds its
elements in order, the lanes are combined by the fixed halving tree ``reduce._fold``
(lane j += lane j + h for h = LANES/2, …, 1), then the last ``n mod LANES`` elements are
added to that one by one. The inner loop over the lanes is an element-wise map, which LLVM
vectorizes at any SIMD width without reassociating; nothing is compiled with ``fastmath`` (no
reassociation, no FMA contraction). So the order is the code's, not the compiler's: results
are bit-identical run to run, for any ``NUMBA_NUM_THREADS`` and on any CPU
(``NUMBA_CPU_NAME=generic`` or the host; ``tests/test_portable.py`` checks it).
Sums of integer-valued terms (Σc, Σc²) run in int64 and are exact.
"""

import contextlib

CHUNK = 1 << 14
#: Independent accumulators of every float64 span sum (a power of two).
LANES = 64

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
