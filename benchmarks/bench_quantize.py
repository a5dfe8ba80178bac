"""Param quantize of 2^24 float32 weights per tensor against np.copyto and the NumPy twin.

Targets (issue: core): ≤ 1.5× ``np.copyto`` of the same array, ≥ 10× faster than the twin;
(issue: performance at scale) into caller-provided ``out=`` buffers ≤ 1.5× ``np.copyto``,
timed beside the fresh-output call.
Run: ``python -m pytest benchmarks/bench_quantize.py --benchmark-only``.
"""

import numpy as np
import pytest

import vecq_ref as vq
from vecq_ref import naive
from vecq_ref._kernels.lattice import scale_levels

N = 1 << 24


@pytest.fixture(scope="module")
def w():
    return np.random.default_rng(0).standard_normal(N).astype(np.float32)


@pytest.mark.benchmark(group="param-2^24-float32")
def test_baseline_copyto(benchmark, w):
    dst = np.empty_like(w)
    benchmark(np.copyto, dst, w)


@pytest.mark.benchmark(group="param-2^24-float32")
def test_floor_fresh_outputs(benchmark, w):
    # Context, not a target: only allocating and writing the two outputs ``quantize`` returns
    # (int8 codes, float32 values) with the library's own dequantization kernel. A fresh
    # array costs its page faults (the kernel zeroes every page) on top of the writes.
    codes = np.zeros(w.shape, dtype=np.int8).reshape(1, -1)
    alpha = np.array([0.1])

    def outputs():
        fresh = codes.copy()
        values = np.empty(fresh.shape, dtype=np.float32)
        scale_levels(fresh, alpha, 0.5, values)
        return fresh, values

    outputs()
    benchmark(outputs)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.benchmark(group="param-2^24-float32")
def test_param_quantize(benchmark, w, bits):
    vq.quantize(w[:1000], bits)  # compile (or load the cache) outside the timing
    q = benchmark(vq.quantize, w, bits)
    assert q.codes.shape == w.shape


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.benchmark(group="param-2^24-float32")
def test_param_quantize_into_out(benchmark, w, bits):
    # The same call writing into the caller's arrays: no allocation, no page faults.
    q = vq.quantize(w, bits)
    out = (np.empty_like(q.codes), np.empty_like(q.values))
    got = benchmark(vq.quantize, w, bits, out=out)
    assert got.codes is out[0]


@pytest.mark.benchmark(group="param-2^24-float32")
def test_paper_quantize(benchmark, w):
    vq.quantize(w[:1000], 4, method="paper")
    benchmark(vq.quantize, w, 4, method="paper")


@pytest.mark.benchmark(group="param-2^24-float32", min_rounds=3)
def test_numpy_twin(benchmark, w):
    lam = vq.optimal_step(4)
    benchmark.pedantic(naive.param_quantize, args=(w, 4, lam), rounds=3, iterations=1)
