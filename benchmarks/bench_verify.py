"""``verify`` of a float32 output in groups of 32 (issue 22: 4096 × 4096 in ≤ 20 s on 2 cores;
before, 0.4–0.7 ms per group: 44 s for 2048 × 1024).

Three outputs of Gaussian weights, each checked by ``verify(w, wq, bits=4, group_size=32)``
in full (the block formats' gate, lattice recovery of every group, the components, the
conventions, the quality against VecQ-param and VecQ-exact, which runs per group):

- ``vecq``: VecQ's own output, ``quantize(w, 4, group_size=32).values`` cast to float32;
- ``wrong_lambda``: a VecQ port with the step 0.5·σ instead of λ_4·σ (midrise floor codes,
  least-squares α, per group; float32): not VecQ's, its quality reported;
- ``q4_0``: llama.cpp Q4_0 (``format_rules.q4_0(w).values``), which goes to the block
  formats' diagnosis (the format's exact optimum, VecQ-param and VecQ-exact);
- ``f16``, ``bf16``: VecQ's own output cast to float16 / bfloat16 (``ml_dtypes``);
- ``ste``: VecQ's own output as a straight-through estimator leaves it, ``w + (v − w)`` in
  float32 (some groups hold two values at a level).

``2048 × 1024`` is the size the issue timed. Run with pytest-benchmark
(``python -m pytest benchmarks/bench_verify.py --benchmark-only``) or as a script, which
prints the wall and CPU seconds (user + system, all threads) of each round and their medians:
``python benchmarks/bench_verify.py [--size 4096] [--rounds 3] [--case vecq ...]``.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pytest

from vecq_ref import format_rules, quantize
from vecq_ref.check.verify import verify

SHAPES = [(2048, 1024), (4096, 4096)]
CASES = ("vecq", "wrong_lambda", "q4_0", "f16", "bf16", "ste")


def _wrong_lambda(w, lam=0.5, bits=4, group_size=32):
    """A VecQ port with step ``lam·σ`` per group (σ ddof 0), float32 output."""
    x = w.astype(np.float64).reshape(-1, group_size)
    s = lam * x.std(axis=1, keepdims=True)
    half = 2 ** (bits - 1)
    v = np.clip(np.floor(x / s), -half, half - 1) + 0.5
    alpha = np.sum(x * v, axis=1, keepdims=True) / np.sum(v * v, axis=1, keepdims=True)
    return (alpha * v).reshape(w.shape).astype(np.float32)


def _case(shape, case="vecq"):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if case == "vecq":
        return w, quantize(w, 4, group_size=32).values.astype(np.float32)
    if case == "wrong_lambda":
        return w, _wrong_lambda(w)
    if case in ("f16", "bf16", "ste"):
        v = quantize(w, 4, group_size=32).values
        if case == "ste":
            v32 = v.astype(np.float32)
            return w, w + (v32 - w)
        import ml_dtypes
        return w, v.astype(np.float16 if case == "f16" else ml_dtypes.bfloat16)
    return w, format_rules.q4_0(w).values


def _warm():
    for case in CASES:
        w, wq = _case((8, 64), case)
        verify(w, wq, bits=4, group_size=32)  # compile the kernels once


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    _warm()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_verify_groups_of_32(benchmark, shape, case):
    benchmark.group = "verify"
    w, wq = _case(shape, case)
    rep = benchmark.pedantic(verify, args=(w, wq), kwargs=dict(bits=4, group_size=32),
                             rounds=1, iterations=1)
    assert bool(rep.passed) == (case != "wrong_lambda")


@pytest.mark.parametrize("shape", SHAPES[:1], ids=lambda s: f"{s[0]}x{s[1]}")
def test_verify_groups_of_32_without_conventions(benchmark, shape):
    benchmark.group = "verify"
    w, wq = _case(shape)
    rep = benchmark.pedantic(verify, args=(w, wq), kwargs=dict(bits=4, group_size=32,
                                                               check_conventions=False),
                             rounds=3, iterations=1)
    assert rep.passed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--case", nargs="*", default=list(CASES), choices=CASES)
    args = ap.parse_args(argv)
    _warm()
    import vecq_ref

    print(f"vecq_ref from {os.path.dirname(vecq_ref.__file__)}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} before")
    for case in args.case:
        w, wq = _case((args.size, args.size), case)
        walls, cpus = [], []
        for _ in range(args.rounds):
            t0, c0 = time.perf_counter(), os.times()
            rep = verify(w, wq, bits=4, group_size=32)
            c1 = os.times()
            walls.append(time.perf_counter() - t0)
            cpus.append((c1.user - c0.user) + (c1.system - c0.system))
        print(f"{case:13s} {args.size}x{args.size}: wall median {statistics.median(walls):.1f} s "
              f"({min(walls):.1f}–{max(walls):.1f}), CPU median {statistics.median(cpus):.1f} s "
              f"({min(cpus):.1f}–{max(cpus):.1f}); passed={rep.passed}; "
              f"load average {os.getloadavg()[0]:.1f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
