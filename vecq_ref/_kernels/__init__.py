"""Numba kernels: private, no validation, compiled lazily on first call (``cache=True``).

Every kernel here has a plain-NumPy twin of the same name (or formula) in
:mod:`vecq_ref.naive`, and tests compare the two.

Threads: no kernel is compiled with ``parallel=True`` (Numba's parfor pass and the
re-optimization of everything a parallel kernel calls were most of the first-use compile
time). Each kernel instead runs a range of tasks (chunks of ``CHUNK`` elements, or rows), and
:func:`run_tasks` splits the tasks into contiguous blocks, one per thread, on a pool of
Python threads (every kernel is ``nogil``). The thread count is Numba's
(``NUMBA_NUM_THREADS``, ``numba.set_num_threads``); :func:`single_thread` still works.

Compile time: only the task kernels (called from Python through :func:`run_tasks`) and
``sort.merge_runs`` are plain ``njit`` functions; every function they call is a
:func:`helper`, compiled without the Python and C wrappers that make a Numba function
callable from Python (each costs ≈ 0.1 s of first-use compile time and is never used).

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
import os
import threading

import numpy as np

CHUNK = 1 << 14
#: Independent accumulators of every float64 span sum (a power of two).
LANES = 64

#: Below this many elements a kernel runs on the calling thread alone (:func:`run_tasks`):
#: handing blocks to the pool costs more than it saves, and far more on a busy machine.
#: Results do not change (the chunking, not the thread count, fixes every summation order).
PARALLEL_MIN = 1 << 17


@contextlib.contextmanager
def single_thread():
    """Run the kernels on the calling thread alone inside the block.

    The setting is per calling thread and restored on exit; results do not change.
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


_POOL = None
_POOL_LOCK = threading.Lock()


def _pool():
    """The process-wide pool of worker threads, created on first use with room for the most
    threads Numba allows (``NUMBA_NUM_THREADS``; its threads start only when needed), so it
    never has to be replaced while another thread is using it.

    A forked child inherits the pool object but none of its threads (work submitted to it
    would wait forever), and possibly a lock held by a thread that no longer exists: the
    child forgets both (:func:`_forget_pool`, registered with ``os.register_at_fork``, and
    the creator's pid for forks that bypass that hook) and makes its own pool on first use.
    """
    global _POOL
    if _POOL is not None and _POOL[1] != os.getpid():
        _forget_pool()
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            import numba

            _POOL = (ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                        thread_name_prefix="vecq_ref"), os.getpid())
        return _POOL[0]


def _forget_pool():
    """In a forked child: drop the parent's pool (its threads did not survive the fork)
    and its lock (it may have been held at the fork). The old pool is never shut down: its
    shutdown would wait for threads that do not exist here."""
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def helper(fn):
    """Compile ``fn`` as a kernel helper: a function called only from other kernels.

    ``njit(cache=True, nogil=True)`` without the Python and C wrappers Numba otherwise
    generates for every function (they are what makes a function callable from Python;
    generating them costs ≈ 0.1 s of first-use compile time per function). Calling a helper
    from Python raises ``TypeError`` (without a wrapper Numba itself would crash); tests reach
    helpers through a small jitted function (``tests/jitcall.py``). With
    ``NUMBA_DISABLE_JIT=1`` a helper is the plain Python function.
    """
    from numba import njit

    disp = njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)(fn)
    if not isinstance(disp, type(fn)):  # a Numba dispatcher, not the function (JIT off)
        disp.__class__ = _helper_class(type(disp))
    return disp


_HELPER_CLASSES = {}


def _helper_class(base):
    """``base`` (Numba's dispatcher class) with calls from Python refused."""
    if base not in _HELPER_CLASSES:
        def __call__(self, *args, **kwargs):
            raise TypeError(f"{self.py_func.__qualname__} is a kernel helper, compiled without "
                            "a Python entry point: call it from a jitted function")

        _HELPER_CLASSES[base] = type("HelperDispatcher", (base,), {"__call__": __call__})
    return _HELPER_CLASSES[base]


def f64(a):
    """``a`` as a writeable, C-contiguous float64 array (a copy only when it is not one).

    The one type the kernels see for per-row parameters (steps, α): a read-only or
    non-contiguous array would be another Numba specialization, compiled again.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=np.float64, order="C")


def num_threads(size):
    """Threads for a call over ``size`` elements: 1 below ``PARALLEL_MIN``, else Numba's
    thread count for the calling thread."""
    if size < PARALLEL_MIN:
        return 1
    import numba

    return numba.get_num_threads()


def run_tasks(kernel, ntasks, size, args, out=None):
    """Run ``kernel(*args, t0, t1[, out])`` over the tasks ``0 ≤ t < ntasks``; returns ``out``.

    One thread (``size`` below ``PARALLEL_MIN``, or one thread set): a single call with the
    whole range and ``out``, in which the kernel also merges its partial results into
    ``out``. Otherwise contiguous blocks of tasks, one per thread, each called with
    ``out[:0]`` (no merge; the calling thread runs the first block), then one call with the
    empty range and ``out`` to merge. Tasks write disjoint parts of the outputs and every
    merge runs in task order, so results never depend on the thread count.
    """
    tail = () if out is None else (out,)
    nthreads = min(num_threads(size), ntasks)
    if nthreads <= 1:
        kernel(*args, 0, ntasks, *tail)
        return out
    empty = () if out is None else (out[:0],)
    cuts = [ntasks * i // nthreads for i in range(nthreads + 1)]
    pool = _pool()
    futures = [pool.submit(kernel, *args, cuts[i], cuts[i + 1], *empty)
               for i in range(1, nthreads)]
    try:
        kernel(*args, cuts[0], cuts[1], *empty)
    finally:
        for f in futures:
            f.result()
    if out is not None:
        kernel(*args, 0, 0, out)
    return out
