"""Real-offset search ``x̂ = α·u + m`` (``_kernels.affine``; docs/theory.md, "Real offset: the
2-D search"), one thread, per group.

Groups of 32 at 4 bits exact (certified) and by the heuristic; groups of 32 and 128 at 8 bits
by the heuristic. Baseline: the min–max affine rule (Q4_1's ``d = (max − min)/15``,
``m = min``, nearest codes) in NumPy on the same groups. Per-group time = median / rows.
Run: ``python -m pytest benchmarks/bench_affine.py --benchmark-only``.
"""

import numpy as np
import pytest

from vecq_ref._kernels import affine as A
from vecq_ref._kernels import single_thread

ROWS = 256
NOH = np.empty((0, 0))


def _data(n):
    return np.random.default_rng(n).standard_normal((ROWS, n))


def _run(x, k, exact_max):
    out = np.empty((x.shape[0], 7))
    codes = np.empty(x.shape, dtype=np.int16)
    with single_thread():
        A.affine_search(x, NOH, k, exact_max, out, codes)
    return out


def _minmax(x, k):
    lo = x.min(axis=1, keepdims=True)
    d = (x.max(axis=1, keepdims=True) - lo) / (k - 1)
    u = np.clip(np.floor((x - lo) / d + 0.5), 0, k - 1)
    return ((x - lo - d * u) ** 2).sum(axis=1)


@pytest.mark.parametrize(("n", "bits"), [(32, 4), (32, 8), (128, 8)],
                         ids=["g32-4bit", "g32-8bit", "g128-8bit"])
def test_baseline_minmax(benchmark, n, bits):
    benchmark.group = f"affine-{n}-{bits}bit"
    benchmark(_minmax, _data(n), 2 ** bits)


@pytest.mark.parametrize("mode", ["exact", "heuristic"])
def test_affine_32_4bit(benchmark, mode):
    benchmark.group = "affine-32-4bit"
    x = _data(32)
    _run(x[:1], 16, 32)  # compile (or load the cache) outside the timing
    out = benchmark.pedantic(_run, args=(x, 16, 32 if mode == "exact" else 0), rounds=3,
                             iterations=1)
    assert (out[:, A.CERTIFIED] == (1.0 if mode == "exact" else 0.0)).all()
    assert (out[:, A.LOSS] <= _minmax(x, 16)).all()


@pytest.mark.parametrize("n", [32, 128])
def test_affine_heuristic_8bit(benchmark, n):
    benchmark.group = f"affine-{n}-8bit"
    x = _data(n)
    _run(x[:1], 256, 0)
    out = benchmark.pedantic(_run, args=(x, 256, 0), rounds=3, iterations=1)
    assert (out[:, A.LOSS] <= _minmax(x, 256)).all()
