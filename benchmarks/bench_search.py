"""Exact step search (docs/theory.md §4.3) against sorting and against the paper's NumPy grid.

Targets (issue: search): exact on 2^20 Gaussian float64 weights ≤ 3× (4-bit) and ≤ 15× (8-bit)
``np.sort(np.abs(w))``; ≥ 100× faster than the paper's 3000-point grid in NumPy
(``naive.grid_search``, one pass over ``w`` per candidate: timed once, it takes tens of
seconds); exact per channel on 4096 × 4096 float32, 4-bit, ≤ 5× ``np.sort(np.abs(w), axis=1)``
(7 rounds each: a 4096-row search is long enough to time, and the median steadies).
Run: ``python -m pytest benchmarks/bench_search.py --benchmark-only``; the ratios are printed
at the end (benchmarks/conftest.py).
"""

import numpy as np
import pytest

import vecq_ref as vq
from vecq_ref import naive

N = 1 << 20


@pytest.fixture(scope="module")
def w():
    return np.random.default_rng(0).standard_normal(N)


@pytest.fixture(scope="module")
def w2d():
    return np.random.default_rng(1).standard_normal((4096, 4096)).astype(np.float32)


@pytest.mark.benchmark(group="exact-2^20-float64")
def test_baseline_sort_abs(benchmark, w):
    benchmark(lambda: np.sort(np.abs(w)))


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.benchmark(group="exact-2^20-float64")
def test_exact(benchmark, w, bits):
    vq.search_step(w[:1000], bits)  # compile (or load the cache) outside the timing
    r = benchmark(vq.search_step, w, bits)
    assert r.certified


@pytest.mark.benchmark(group="exact-vs-numpy-grid-2^20")
def test_baseline_exact_4bit(benchmark, w):
    vq.search_step(w[:1000], 4)
    benchmark(vq.search_step, w, 4)


@pytest.mark.benchmark(group="exact-vs-numpy-grid-2^20")
def test_numpy_grid_3000(benchmark, w):
    step, _, _ = benchmark.pedantic(naive.grid_search, args=(w, 4), rounds=1, iterations=1)
    assert step > 0


@pytest.mark.benchmark(group="exact-per-channel-4096x4096-float32")
def test_baseline_sort_abs_rows(benchmark, w2d):
    benchmark.pedantic(lambda: np.sort(np.abs(w2d), axis=1), rounds=7, iterations=1)


@pytest.mark.benchmark(group="exact-per-channel-4096x4096-float32")
def test_exact_per_channel(benchmark, w2d):
    vq.search_step(w2d[:4], 4, axis=0)
    r = benchmark.pedantic(vq.search_step, args=(w2d, 4), kwargs={"axis": 0}, rounds=7,
                           iterations=1)
    assert r.certified.all()
