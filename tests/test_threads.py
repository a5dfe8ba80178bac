"""The kernels' threads (``vecq_ref._kernels.run_tasks``): how tasks are split, and results
bit-identical for any thread count."""

import threading

import numpy as np
import pytest

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
