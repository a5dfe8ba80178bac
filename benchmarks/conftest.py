"""Benchmark helpers: ratios of medians against each group's baseline, printed at the end.

Name the reference benchmark of a group ``..._baseline_...`` (``np.copyto``, ``np.sort``, …);
after the run every other benchmark of the group is reported as a multiple of its median,
and the table is also written to ``.benchmarks/ratios.txt``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _median(bench):
    stats = getattr(bench, "stats", None)
    stats = getattr(stats, "stats", stats)
    return getattr(stats, "median", None)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    groups = {}
    for bench in session.benchmarks:
        groups.setdefault(bench.group or "", []).append(bench)
    lines = ["", "ratios of medians (× the group's baseline; < 1 is faster)"]
    for group, items in sorted(groups.items()):
        base = [b for b in items if "baseline" in b.name]
        if not base or _median(base[0]) in (None, 0):
            continue
        ref = _median(base[0])
        lines.append(f"[{group}] baseline {base[0].name}: median {ref * 1e3:.3f} ms")
        for b in sorted(items, key=lambda b: b.name):
            if b is base[0] or _median(b) is None:
                continue
            lines.append(f"    {b.name:<60s} {_median(b) / ref:8.3f}×  "
                         f"(median {_median(b) * 1e3:.3f} ms)")
    text = "\n".join(lines)
    terminalreporter.write_line(text)
    out = Path(config.rootpath) / ".benchmarks"
    out.mkdir(exist_ok=True)
    (out / "ratios.txt").write_text(text + "\n", encoding="utf-8")
