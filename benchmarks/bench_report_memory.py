"""Peak memory of ``model_report`` against its largest tensor's float32 bytes.

Every method runs in its own subprocess, which first writes one float32 tensor of ``--size``
N(0, 1) weights to a ``.safetensors`` file (or ``.npy`` with ``--npy``), then drops it, reads
its resident set size (``VmRSS``: the interpreter, NumPy and Numba with compiled kernels
loaded), runs ``model_report(path, bits, method)`` and reads the peak (``VmHWM``, reset just
before the report through ``/proc/self/clear_refs`` where the kernel allows it). The tensor
is memory-mapped, so the pages of it the report reads count in the peak.

Target (issue 20): the peak added by the report is at most 2× the tensor's float32 bytes with
``param`` and 4× with ``exact``. The ratio printed is ``(peak − baseline) / (4·N)``.

Run: ``python benchmarks/bench_report_memory.py`` (``--size 2e7``, ``--methods param,exact``,
``--bits 2,4,8``). Linux only (``/proc``). The default test run does not include it.

Measured (2 shared cores, ``python benchmarks/bench_report_memory.py --size 2e7 --bits 4``):
before (issue 20's first fixes) ``param`` 1.41×, ``exact`` 6.5–6.8× (6.63× in one run here);
after, six runs, the exact search's memory cut (suffix sums kept at every 8th index, float32 rows
sorted inside their float64 row, the search's codes in the report's buffer) ``param``
1.41×, ``exact`` 3.93× in every run (also with ``--bits 2,4,8``). What remains per weight: the
memory-mapped tensor 4 bytes, the sorted float64 row 8, the suffix-sum checkpoints 2, the codes
1 (3.75×), and ≈ 0.7 of fixed-size buffers at this size (the σ pass's 8 MiB blocks, threads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status(field):
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(path, size, method, bits, npy):
    sys.path.insert(0, ROOT)  # this checkout's vecq_ref, not an installed one
    import numpy as np

    from vecq_ref.check.report import model_report

    w = np.random.default_rng(0).standard_normal(size, dtype=np.float32).reshape(-1, 1000)
    if npy:
        np.save(path, w)
    else:
        from safetensors.numpy import save_file

        save_file({"w": w}, path)
    del w
    # Compile what the report calls on a small tensor first, so the peak is the report's.
    small = os.path.join(os.path.dirname(path), "small.npz")
    np.savez(small, w=np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32))
    model_report(small, bits=bits, method=method, progress=False)
    base = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    rep = model_report(path, bits=bits, method=method, progress=False)
    peak = _status("VmHWM")
    return {"method": method, "size": size, "bits": bits, "baseline": base, "peak": peak,
            "reset": reset, "ratio": (peak - base) / (4 * size),
            "rows": [r[f"relative_dql_{method}"] for r in rep.rows]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=2e7, help="weights in the tensor")
    ap.add_argument("--methods", default="param,exact")
    ap.add_argument("--bits", default="4")
    ap.add_argument("--npy", action="store_true", help="an .npy file, not .safetensors")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    size = int(args.size)
    bits = [int(b) for b in args.bits.split(",")]
    if args.child:
        print(json.dumps(_child(args.child, size, args.methods, bits, args.npy)))
        return 0
    print(f"model_report on one float32 tensor of {size:.3g} weights "
          f"({4 * size / 2**20:.0f} MiB), bits {bits}; peak − baseline over its bytes")
    for method in args.methods.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "w.npy" if args.npy else "w.safetensors")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", path,
                   "--size", str(size), "--methods", method, "--bits", args.bits]
            if args.npy:
                cmd.append("--npy")
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
            if done.returncode:
                print(f"{method:>8}: failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            note = "" if r["reset"] else " (VmHWM not reset: includes writing the file)"
            print(f"{method:>8}: baseline {r['baseline'] / 2**20:7.0f} MiB, peak "
                  f"{r['peak'] / 2**20:7.0f} MiB, added {r['ratio']:.2f}× the tensor{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
