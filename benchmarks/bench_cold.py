"""Cold start: each first call in a fresh process with an empty Numba cache, then warm.

Every case runs in its own subprocess with ``NUMBA_CACHE_DIR`` pointing at a new, empty
folder (cold: Numba compiles every kernel the call reaches and writes its cache), then once
more with the same folder (warm: the kernels load from the cache). Reported per case: the
seconds of the first call itself (measured inside the child, after ``import vecq_ref``), the
child's wall seconds and its CPU seconds (user + sys, from ``getrusage``; on a loaded
machine CPU seconds are the steadier figure).

Targets (issue: first use, 2 cores, empty cache): first ``quantize`` ≤ 3 s, ``search_step``
≤ 8 s, ``verify`` ≤ 12 s, ``compare`` ≤ 15 s, ``vecq-ref demo`` ≤ 60 s.

Measured on the 2-core machine (CPU seconds of the cold child): before any compile work
``quantize`` 11.8, ``search_step`` 59.3, ``verify`` 130, ``compare`` 101, ``demo`` 90 (heavy
load); after the search-kernel changes 9.6, 37, 64, 60, 65 (heavy load); with no
``parallel=True`` kernel left, float64-only searches and the float64 widening in ``compare``
and ``verify``: 5.3, 16.4, 21.5, 28–36, 26–31 (load ≈ 1); with helpers compiled without
Python wrappers, the branch and bound as the row kernel itself and the sweep's own merge
sort (three runs; this machine varies by up to 40 %): 4.9–7.6, 14.6–19.0, 18.1–22.9,
24.5–31.1, 22–27. Warm: 1.5–2.6 s per process (import included). Only ``demo`` meets its
target (``quantize``'s first call is 3.8–6.0 s against 3 s). What remains is the volume of
code Numba types, lowers and optimizes: ≈ 47 functions for a first ``search_step``, each
0.1–1 s, the branch and bound's body alone ≈ 6 s and its helpers ≈ 3 s; a first compile in
a process also pays ≈ 0.7 s for LLVM and ≈ 0.7 s for Numba's registries. The exact search
over a block format's level set (``exact_groups``, ``exact_channel``: groups of 32 and per
channel, signed −8 … 7) compiled all three of its paths on every first call, 70.7 / 72.0 CPU
s; it now compiles only the paths the call's rows can take: 34.5 / 29.7 (one run each).

Run: ``python benchmarks/bench_cold.py [--cases quantize,search_step] [--repeat N]
[--json FILE]``. A plain script, not a pytest-benchmark file: one cold round is the quantity,
and it needs a fresh interpreter anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = """
import time, numpy as np
t0 = time.perf_counter()
import vecq_ref as vq
t_import = time.perf_counter() - t0
w = np.random.default_rng(0).standard_normal((64, 3, 3, 3)).astype(np.float32)
"""

#: name -> the first call (Python source run after the prelude; ``t_call`` is printed).
CASES = {
    "quantize": "vq.quantize(w, 4)",
    "search_step": "vq.search_step(w, 4)",
    # The quantized input comes from the NumPy twin, so only `verify` compiles anything.
    "verify": ("from vecq_ref import naive, tables\n"
               "wq = naive.param_quantize(w, 4, tables.optimal_step(4))[3].reshape(w.shape)\n"
               "T0 = time.perf_counter()\n"
               "vq.verify(w, wq.astype(np.float32), bits=4)"),
    "compare": "vq.compare(w)",
    # the exact search over a block format's level set (issue 21): groups of 32, signed
    # −8 … 7 (the two-direction lean path), and per channel (the general path)
    "exact_groups": ("w2 = np.random.default_rng(1).standard_normal((16, 64))\n"
                     "vq.quantize(w2.astype(np.float32), 4, method='exact', "
                     "lattice='midtread-full', signed_scale=True, group_size=32)"),
    "exact_channel": ("w2 = np.random.default_rng(1).standard_normal((4, 512))\n"
                      "vq.quantize(w2.astype(np.float32), 4, method='exact', "
                      "lattice='midtread-full', signed_scale=True, axis=0)"),
    "demo": None,  # `python -m vecq_ref demo`, timed as a whole
}


def _child_source(call):
    lines = call.splitlines()
    body = "\n".join(lines)
    timed = "T0" in body
    src = _PRELUDE + ("" if timed else "T0 = time.perf_counter()\n") + body + "\n"
    src += ("import json, sys\n"
            "json.dump({'import': t_import, 'call': time.perf_counter() - T0}, sys.stdout)\n")
    return src


def run_case(name, cache_dir):
    """Run one case in a fresh interpreter; returns ``{call, import, wall, cpu}`` seconds."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if CASES[name] is None:
        cmd = [sys.executable, "-m", "vecq_ref", "demo"]
    else:
        cmd = [sys.executable, "-c", _child_source(CASES[name])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if CASES[name] is None:
        timing = {"import": float("nan"), "call": wall}
    else:
        timing = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"call": timing["call"], "import": timing["import"], "wall": wall, "cpu": cpu}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--repeat", type=int, default=1, help="cold rounds per case")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}")
    rows = []
    for name in names:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="vecq-cold-") as cache:
                cold = run_case(name, cache)
                warm = run_case(name, cache)
            rows.append({"case": name, "cold": cold, "warm": warm})
            print(f"{name:<12s} cold: call {cold['call']:7.2f} s  wall {cold['wall']:7.2f} s  "
                  f"cpu {cold['cpu']:7.2f} s  | warm: call {warm['call']:6.2f} s  "
                  f"wall {warm['wall']:6.2f} s  cpu {warm['cpu']:6.2f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
