"""The kernels' threads (``vecq_ref._kernels.run_tasks``): how tasks are split, and results
bit-identical for any thread count."""

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import warnings

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecq_ref as vq
from vecq_ref import _kernels as K


def _recorder():
    calls = []
    lock = threading.Lock()

    def kernel(tag, t0, t1, *out):
        with lock:
            calls.append((t0, t1, None if not out else out[0].shape[0]))

    return calls, kernel


def test_blocks_are_contiguous_and_merged_once(monkeypatch):
    # 10 tasks on 3 threads: cuts at 10·i // 3 = 0, 3, 6, 10; the merge gets the real `out`,
    # the blocks an empty view of it.
    monkeypatch.setattr(K, "num_threads", lambda size: 3)
    calls, kernel = _recorder()
    K.run_tasks(kernel, 10, 1 << 30, ("x",), np.empty((4, 2)))
    assert sorted(calls[:3]) == [(0, 3, 0), (3, 6, 0), (6, 10, 0)]
    assert calls[3] == (0, 0, 4)


def test_one_thread_is_one_call_with_the_merge(monkeypatch):
    monkeypatch.setattr(K, "num_threads", lambda size: 1)
    calls, kernel = _recorder()
    K.run_tasks(kernel, 10, 1 << 30, ("x",), np.empty((4, 2)))
    assert calls == [(0, 10, 4)]


def test_small_inputs_and_few_tasks_stay_on_the_calling_thread(monkeypatch):
    assert K.num_threads(K.PARALLEL_MIN - 1) == 1
    monkeypatch.setattr(K, "num_threads", lambda size: 8)
    calls, kernel = _recorder()
    K.run_tasks(kernel, 2, 1 << 30, ("x",))  # no out: no merge call
    assert sorted(calls) == [(0, 1, None), (1, 2, None)]


def test_a_failing_block_raises_after_every_block_ended(monkeypatch):
    monkeypatch.setattr(K, "num_threads", lambda size: 4)
    done = []

    def kernel(t0, t1):
        if t0 == 0:
            raise RuntimeError("block 0")
        done.append(t0)

    with pytest.raises(RuntimeError, match="block 0"):
        K.run_tasks(kernel, 8, 1 << 30, ())
    assert sorted(done) == [2, 4, 6]


def _everything(w):
    """Results of every kernel family on ``w`` (rows of 3000: one chunk each; the tensor:
    several chunks), as bytes."""
    out = []
    for q in (vq.quantize(w, 4), vq.quantize(w, 3, axis=0), vq.quantize(w, 5, group_size=600),
              vq.quantize(w, 2, method="paper"), vq.quantize(w, 4, lattice="midtread")):
        out += [q.codes.tobytes(), q.values.tobytes(), np.asarray(q.alpha).tobytes(),
                repr(q.loss)]
    out.append(repr(vq.vector_loss(w, vq.quantize(w, 4).values)))
    out.append(vq.codes(w, 0.37, 4).tobytes())
    out.append(vq.codes(w, np.linspace(0.1, 1, w.shape[1]), 4).tobytes())
    for method in ("exact", "grid", "alternating"):
        r = vq.search_step(w, 4, method=method, axis=0)
        out += [np.asarray(r.step).tobytes(), np.asarray(r.alpha).tobytes()]
    return out


@pytest.mark.jit_only  # 40 searches of 3000 weights per method: minutes as plain Python
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_bit_identical_for_any_number_of_kernel_threads(rng, monkeypatch, threads):
    w = rng.standard_normal((40, 3000)).astype(np.float32)
    w[:, ::7] = 0.0
    one = _everything(w)
    monkeypatch.setattr(K, "num_threads", lambda size: threads)
    assert _everything(w) == one


# Fork safety: a forked child inherits the pool object but not its threads.

_FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


def _in_forked_child(fn, timeout=60):
    """Run ``fn()`` (True for success) in a forked child; its exit status: 0 for True, 1 for
    False or an exception, killed by SIGALRM after ``timeout`` s if it hangs."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            signal.alarm(timeout)
            code = 0 if fn() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:  # the alarm should have fired long ago
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -1
        time.sleep(0.02)


def _threaded_codes(w):
    return vq.quantize(w, 4).codes


@_FORK
@pytest.mark.jit_only  # 2**17 weights: the size at which the kernels use their threads
def test_forked_child_quantizes_after_a_threaded_call():
    # The reproducer: a threaded call in the parent, then the child's first call hung forever
    # (it waited for pool threads that did not survive the fork).
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("NUMBA_NUM_THREADS < 2: the kernels never use the pool")
    w = np.random.default_rng(0).standard_normal(1 << 17).astype(np.float32)
    assert w.size >= K.PARALLEL_MIN
    with _two_threads():
        expected = _threaded_codes(w)
        assert K._POOL is not None  # the parent's pool exists: the case that hung
        status = _in_forked_child(lambda: np.array_equal(_threaded_codes(w), expected))
    assert status == 0, f"child exit status {status} (14: hung and killed by SIGALRM)"


@contextlib.contextmanager
def _two_threads():
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


@_FORK
def test_forked_child_with_the_pool_lock_held_at_the_fork(monkeypatch, rng):
    # Another thread may hold the pool's lock at the moment of the fork; the child must not
    # wait for it. Two threads forced on 8 rows (small, so this also runs as plain Python).
    monkeypatch.setattr(K, "num_threads", lambda size: 2)
    w = rng.standard_normal((8, 400))
    expected = vq.quantize(w, 3, axis=0).codes
    with K._POOL_LOCK:
        status = _in_forked_child(
            lambda: np.array_equal(vq.quantize(w, 3, axis=0).codes, expected), timeout=30)
    assert status == 0, f"child exit status {status}"


def test_a_pool_made_by_another_process_is_replaced(monkeypatch):
    # Forks that bypass os.register_at_fork are caught by the creator's pid.
    stale = object()
    monkeypatch.setattr(K, "_POOL", (stale, -1))
    pool = K._pool()
    try:
        assert pool is not stale
        assert K._POOL == (pool, os.getpid())
        assert K._pool() is pool
    finally:
        monkeypatch.setattr(K, "_POOL", None)  # undone by monkeypatch; this one is ours
        pool.shutdown()


def _pool_job(seed):
    w = np.random.default_rng(seed).standard_normal((8, 400))  # 8 rows: 8 tasks, 2 threads
    return vq.quantize(w, 3, axis=0).codes.tobytes()


@_FORK
def test_fork_multiprocessing_pool_map(monkeypatch):
    # Every fork-based data loader: multiprocessing's "fork" context after threaded calls.
    monkeypatch.setattr(K, "num_threads", lambda size: 2)
    expected = [_pool_job(s) for s in range(4)]
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        # Python ≥ 3.12 warns that forking a process with threads may deadlock: the case
        # under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        with ctx.Pool(2) as pool:
            got = pool.map_async(_pool_job, range(4)).get(timeout=60)
    assert got == expected


_FAMILIES = {
    "quantize": lambda w: vq.quantize(w, 4, axis=0).codes.tobytes(),
    "exact": lambda w: np.asarray(vq.search_step(w, 3, axis=0).step).tobytes(),
    "grid": lambda w: np.asarray(vq.search_step(w, 3, "grid", axis=0, num=50).step).tobytes(),
    "paper": lambda w: vq.quantize(w, 2, "paper", axis=0).values.tobytes(),
    "loss": lambda w: repr(vq.vector_loss(w, np.round(w))),
}


@_FORK
@settings(max_examples=8)
@given(st.lists(st.sampled_from(sorted(_FAMILIES)), min_size=0, max_size=2),
       st.sampled_from(sorted(_FAMILIES)), st.booleans())
def test_fuzz_fork_after_any_calls(parent_calls, child_call, lock_held):
    # Any kernel families in the parent (threaded: 8 rows, 2 threads forced), the pool's lock
    # held at the fork or not, then any family in the child: it answers, and the same bytes.
    w = np.random.default_rng(len(parent_calls)).standard_normal((8, 300))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(K, "num_threads", lambda size: 2)
        for name in parent_calls:
            _FAMILIES[name](w)
        expected = _FAMILIES[child_call](w)
        lock = K._POOL_LOCK if lock_held else contextlib.nullcontext()
        with lock:
            status = _in_forked_child(lambda: _FAMILIES[child_call](w) == expected, timeout=30)
    assert status == 0, f"child exit status {status}"
