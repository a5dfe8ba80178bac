"""Today's lattices against the previous release, side by side in one run (issue 21: "per-tensor
and per-channel exact on today's lattices within 10 % of now").

The previous release is imported from a checkout given by ``VECQ_PREVIOUS`` (a folder holding
its ``vecq_ref/``; e.g. ``git worktree add /tmp/prev 4c7790c``) under the name
``vecq_ref_previous``, so both run in the same process on the same input; without it the
module is skipped. Each group's baseline is the previous release; the ratio printed at the end
(benchmarks/conftest.py) is today's median over it.

Run: ``VECQ_PREVIOUS=/tmp/prev python -m pytest benchmarks/bench_previous.py --benchmark-only``.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import vecq_ref as vq


def _previous():
    root = os.environ.get("VECQ_PREVIOUS")
    if not root or not (Path(root) / "vecq_ref" / "__init__.py").is_file():
        pytest.skip("set VECQ_PREVIOUS to a checkout of the previous release",
                    allow_module_level=True)
    name = "vecq_ref_previous"
    if name in sys.modules:
        return sys.modules[name]
    pkg = Path(root) / "vecq_ref"
    spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


prev = _previous()


@pytest.fixture(scope="module")
def w():
    return np.random.default_rng(0).standard_normal(1 << 20)


@pytest.fixture(scope="module")
def w2d():
    return np.random.default_rng(1).standard_normal((4096, 4096)).astype(np.float32)


CASES = [("tensor-2^20-4bit", 4, None), ("tensor-2^20-8bit", 8, None)]


@pytest.mark.parametrize(("group", "bits", "axis"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("which", ["baseline_previous", "today"])
def test_exact_per_tensor(benchmark, w, group, bits, axis, which):
    lib = prev if which == "baseline_previous" else vq
    lib.search_step(w[:1000], bits)  # compile or load the cache outside the timing
    benchmark.group = f"exact-{group}"
    r = benchmark.pedantic(lib.search_step, args=(w, bits), rounds=5, iterations=1)
    assert r.certified


@pytest.mark.parametrize("lattice", ["midrise", "midtread"])
@pytest.mark.parametrize("which", ["baseline_previous", "today"])
def test_exact_per_channel(benchmark, w2d, lattice, which):
    lib = prev if which == "baseline_previous" else vq
    lib.search_step(w2d[:4, :100], 4, lattice=lattice, axis=0)
    benchmark.group = f"exact-per-channel-4096x4096-{lattice}"
    r = benchmark.pedantic(lib.search_step, args=(w2d, 4), kwargs={"lattice": lattice,
                                                                   "axis": 0},
                           rounds=5, iterations=1)
    assert np.all(r.certified)


@pytest.mark.parametrize("which", ["baseline_previous", "today"])
def test_quantize_exact_per_group(benchmark, w2d, which):
    lib = prev if which == "baseline_previous" else vq
    lib.quantize(w2d[:4, :64], 4, "exact", group_size=32)
    benchmark.group = "quantize-exact-g32-1024x4096-midrise"
    benchmark.pedantic(lib.quantize, args=(w2d[:1024], 4, "exact"),
                       kwargs={"group_size": 32}, rounds=3, iterations=1)
