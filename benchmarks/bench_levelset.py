"""Exact weighted scale search over any level set (``_kernels.exact_levels``) against
llama.cpp's 19-candidate search (issue 21).

Targets: 4096 × 4096 float32 weights in groups of 32, 4 bits (levels −8 … 7), signed scale,
weighted (``h = qw_column·√(σ²_row + x²)``), one thread: ≤ 50 ns per weight and ≤ 1.5× a
plain Numba float64 version of ``make_qx_quants``' 19 candidates (``iscale = −(nmax + 0.1·i)/max``,
``i = −9 … 9``, codes ``clamp(round(iscale·x))``, score ``(Σhxℓ)²/Σhℓ²``; written here, for the
ratio only). Also groups of 64/128/256, NF4 in groups of 64, and one row of 2^20 N(0, 1)
weights (4 and 8 bits, unweighted, signed): must finish.
Run: ``python -m pytest benchmarks/bench_levelset.py --benchmark-only``; the ratios are
printed at the end (benchmarks/conftest.py). Everything runs on one thread.
"""

import numpy as np
import pytest
from numba import njit

from vecq_ref import codebooks
from vecq_ref._kernels import exact_levels as K
from vecq_ref._kernels import single_thread
from vecq_ref._kernels.rules import make_qx_rows

FULL4 = np.arange(-8.0, 8.0)
FULL8 = np.arange(-128.0, 128.0)


@njit(cache=True, nogil=True)
def qx19(xs, hs, nmax, out):
    """llama.cpp ``make_qx_quants`` (19 candidates), float64, weighted: α per row."""
    rows, n = xs.shape
    for r in range(rows):
        amax = 0.0
        mx = 0.0
        for i in range(n):
            ax = abs(xs[r, i])
            if ax > amax:
                amax = ax
                mx = xs[r, i]
        out[r] = 0.0
        if amax == 0.0:
            continue
        best = -1.0
        for it in range(-9, 10):
            iscale = -(nmax + 0.1 * it) / mx
            sl = 0.0
            s2 = 0.0
            for i in range(n):
                q = np.floor(iscale * xs[r, i] + 0.5)
                q = min(max(q, -nmax), nmax - 1.0)
                w = hs[r, i]
                sl += w * xs[r, i] * q
                s2 += w * q * q
            if s2 > 0.0 and sl * sl > best * s2:
                best = sl * sl / s2
                out[r] = sl / s2
    return out


def _weights(rows, cols, group, seed):
    """float32 N(0, 1) weights as float64 rows of ``group``, and llama.cpp-style importance."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32).astype(np.float64)
    qw = np.exp(rng.standard_normal(cols))  # per-column importance (synthetic imatrix)
    sig2 = np.mean(w * w, axis=1, keepdims=True)
    h = qw[None, :] * np.sqrt(sig2 + w * w)
    return (np.ascontiguousarray(w.reshape(-1, group)),
            np.ascontiguousarray(h.reshape(-1, group)))


def _exact(x, h, levels, signed):
    out = np.empty((x.shape[0], K.COLS))
    codes = np.empty(x.shape, dtype=np.int16)
    with single_thread():
        K.exact_levelset(x, h, levels, signed, False, out, codes)
    return out


def _ref19(x, h):
    out = np.empty(x.shape[0])
    with single_thread():
        qx19(x, h, 8.0, out)
    return out


CASES = {  # name: (rows, cols, group, levels, signed)
    "q4-g32-4096x4096": (4096, 4096, 32, FULL4, True),
    "q4-g64-1024x4096": (1024, 4096, 64, FULL4, True),
    "q4-g128-1024x4096": (1024, 4096, 128, FULL4, True),
    "q4-g256-1024x4096": (1024, 4096, 256, FULL4, True),
    "nf4-g64-1024x4096": (1024, 4096, 64, codebooks.NF4, False),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    rows, cols, group, levels, signed = CASES[request.param]
    x, h = _weights(rows, cols, group, 0)
    _exact(x[:8], h[:8], levels, signed)  # compile (or load the cache) outside the timing
    _ref19(x[:8], h[:8])
    return request.param, x, h, levels, signed


def _make_qx(x32, h32):
    with single_thread():
        return make_qx_rows(x32, h32, 8, 1)


def test_make_qx_rows(benchmark, case):
    """The project's own Numba 19-candidate search (llama.cpp's ``make_qx_quants``, float32,
    bit-exact with the C; ``vecq_ref._kernels.rules``): the issue's ratio ≤ 1.5×."""
    name, x, h, _, _ = case
    benchmark.group = name
    x32, h32 = x.astype(np.float32), h.astype(np.float32)
    _make_qx(x32[:8], h32[:8])
    benchmark.pedantic(_make_qx, args=(x32, h32), rounds=3, iterations=1)


def test_baseline_qx19(benchmark, case):
    name, x, h, _, _ = case
    benchmark.group = name
    benchmark.pedantic(_ref19, args=(x, h), rounds=3, iterations=1)


def test_exact_levelset(benchmark, case):
    name, x, h, levels, signed = case
    benchmark.group = name
    out = benchmark.pedantic(_exact, args=(x, h, levels, signed), rounds=3, iterations=1)
    assert np.all(out[:, 7] == 1.0)
    ns = benchmark.stats.stats.median / x.size * 1e9
    benchmark.extra_info["ns_per_weight"] = ns
    print(f"\n{name}: {ns:.1f} ns per weight, {out[:, 6].mean():.1f} states per group")


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.benchmark(group="per-tensor-2^20")
def test_exact_per_tensor(benchmark, bits):
    x = np.random.default_rng(1).standard_normal((1, 1 << 20))
    levels = FULL4 if bits == 4 else FULL8
    _exact(x[:, :4096].copy(), np.zeros((0, 0)), levels, True)
    out = benchmark.pedantic(_exact, args=(x, np.zeros((0, 0)), levels, True), rounds=1,
                             iterations=1)
    assert out[0, 7] == 1.0
