"""``verify`` of a float32 output in groups of 32 (issue 22: 4096 × 4096 in ≤ 20 s on 2 cores;
before, 0.4–0.7 ms per group: 44 s for 2048 × 1024).

The output is VecQ-param's (4 bits, midrise), cast to float32; the full check runs: lattice
recovery of every group, the components, the conventions, the quality against VecQ-param
(the exact search is skipped above 2²⁴ breakpoints). A second benchmark leaves out the
conventions (``check_conventions=False``). ``2048 × 1024`` is the size the issue timed.
Run: ``python -m pytest benchmarks/bench_verify.py --benchmark-only``.
"""

import numpy as np
import pytest

from vecq_ref import quantize
from vecq_ref.check.verify import verify

SHAPES = [(2048, 1024), (4096, 4096)]


def _case(shape):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    wq = quantize(w, 4, group_size=32).values.astype(np.float32)
    return w, wq


@pytest.fixture(scope="module", autouse=True)
def _warm():
    w, wq = _case((8, 64))
    verify(w, wq, bits=4, group_size=32)  # compile the kernels once


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_verify_groups_of_32(benchmark, shape):
    benchmark.group = "verify"
    w, wq = _case(shape)
    rep = benchmark.pedantic(verify, args=(w, wq), kwargs=dict(bits=4, group_size=32),
                             rounds=1, iterations=1)
    assert rep.passed


@pytest.mark.parametrize("shape", SHAPES[:1], ids=lambda s: f"{s[0]}x{s[1]}")
def test_verify_groups_of_32_without_conventions(benchmark, shape):
    benchmark.group = "verify"
    w, wq = _case(shape)
    rep = benchmark.pedantic(verify, args=(w, wq), kwargs=dict(bits=4, group_size=32,
                                                               check_conventions=False),
                             rounds=3, iterations=1)
    assert rep.passed
