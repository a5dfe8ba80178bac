"""``verify_format`` on a 4096 × 4096 float32 llama.cpp Q4_0 output in groups of 32 (issue 22).

Target: well under 20 s on 2 cores for the whole report (conformance, the format's exact
optimum, VecQ-param and VecQ-exact). The parts are timed apart: the rule checks alone
(``quality=False``), with the format's optimum (``quality="format"``), everything, and the
array route identifying the format from the values (``bits=4, group_size=32``).
Run: ``python -m pytest benchmarks/bench_blocks.py --benchmark-only``.
"""

import numpy as np
import pytest

from vecq_ref import format_rules as FR
from vecq_ref.check.blocks import verify_format


@pytest.fixture(scope="module")
def q4_0_output():
    w = (0.02 * np.random.default_rng(0).standard_normal((4096, 4096))).astype(np.float32)
    wq = FR.q4_0(w).values
    verify_format(w[:8], wq[:8], format="q4_0")  # compile first
    return w, wq


@pytest.mark.parametrize("kw", [dict(format="q4_0", quality=False),
                                dict(format="q4_0", quality="format"),
                                dict(format="q4_0"), dict(bits=4, group_size=32)],
                         ids=["rules", "rules+optimum", "full", "identify+full"])
def test_verify_format_4096(benchmark, q4_0_output, kw):
    w, wq = q4_0_output
    rep = benchmark.pedantic(verify_format, args=(w, wq), kwargs=kw, rounds=1, iterations=1)
    assert rep.passed
