import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

settings.register_profile(
    "default", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "nojit", max_examples=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("nojit" if JIT_DISABLED else "default")


def pytest_collection_modifyitems(config, items):
    if not JIT_DISABLED:
        return
    skip = pytest.mark.skip(reason="too slow with NUMBA_DISABLE_JIT=1; runs in the JIT pass")
    for item in items:
        if "jit_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20201)


@pytest.fixture(autouse=True)
def _no_first_use_notice(monkeypatch):
    """The CLI's first-use notice off: tests read stderr as the commands' own output, and
    whether a test compiles first depends on the cache and the order (test_first_use.py
    turns it back on)."""
    from vecq_ref import _first_use

    monkeypatch.setattr(_first_use, "ENABLED", False)
