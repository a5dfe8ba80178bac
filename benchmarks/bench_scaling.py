"""Thread scaling: each workload against its single-threaded NumPy baseline, 1, 2, 4, … threads.

Every thread count runs in its own subprocess with ``NUMBA_NUM_THREADS`` set (the parallel
sort and the model report's worker threads follow Numba's count), and inside it the workload
and its baseline alternate, so each ratio compares medians taken under the same load.

Workloads (issue: performance at scale):

- ``param``: ``quantize(w, 4)`` of 2^24 float32 (fresh outputs, and into caller-provided
  ``out=`` buffers where the library has it) against ``np.copyto`` of the same array; and
  ``param floor``: the memory traffic any such quantizer needs, timed on the same threads (σ
  before any code: ``row_moments``, one read of ``w``; then a pass that only reads ``w`` and
  writes int8 codes, no arithmetic; then ``scale_levels``, codes to values, since α needs
  every code first): 64 + 64 + 16 + 16 + 64 MB against the copy's 64 + 64;
- ``exact4`` / ``exact8``: per-tensor ``search_step(w, k)`` of 2^22 float32 against
  ``np.sort(np.abs(w))`` (NumPy's sort is single-threaded);
- ``channel``: per-channel exact 4-bit ``search_step(w, 4, axis=0)`` of 4096 × 4096 float32
  against ``np.sort(np.abs(w), axis=1)``;
- ``report`` (``--report PATH``): ``model_report(PATH, bits=2..8, method="exact")`` wall time.

Run: ``python benchmarks/bench_scaling.py`` (``--threads 1,2``, ``--repeat 7``, ``--only
exact4,param``, ``--small`` for quarter sizes). Prints one table: per thread count and
workload the median ratio with its range (min–max of the per-round ratios), and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

WORKLOADS = ("param", "exact4", "exact8", "channel")


def _rounds(work, base, repeat):
    """Alternate ``work`` and ``base`` ``repeat`` times after one warm-up call of each."""
    work()
    base()
    tw, tb = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        base()
        tb.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        work()
        tw.append(time.perf_counter() - t0)
    r = np.array(tw) / np.array(tb)
    return {"work": float(np.median(tw)), "base": float(np.median(tb)),
            "ratio": float(np.median(tw) / np.median(tb)), "lo": float(r.min()),
            "hi": float(r.max())}


def _child(names, repeat, small, report):
    import inspect

    import vecq_ref as vq

    rng = np.random.default_rng(0)
    shrink = 2 if small else 0
    res = {}
    if "param" in names:
        w = rng.standard_normal(1 << (24 - shrink)).astype(np.float32)
        dst = np.empty_like(w)
        res["param"] = _rounds(lambda: vq.quantize(w, 4), lambda: np.copyto(dst, w), repeat)
        if "out" in inspect.signature(vq.quantize).parameters:
            q = vq.quantize(w, 4)
            out = (np.empty_like(q.codes), np.empty_like(q.values))
            res["param out="] = _rounds(lambda: vq.quantize(w, 4, out=out),
                                        lambda: np.copyto(dst, w), repeat)
            res["param floor"] = _rounds(_floor_passes(w, out), lambda: np.copyto(dst, w),
                                         repeat)
    for bits in (4, 8):
        if f"exact{bits}" in names:
            w = rng.standard_normal(1 << (22 - shrink)).astype(np.float32)
            res[f"exact{bits}"] = _rounds(lambda w=w, b=bits: vq.search_step(w, b),
                                          lambda w=w: np.sort(np.abs(w)), repeat)
    if "channel" in names:
        w = rng.standard_normal((4096 >> shrink, 4096)).astype(np.float32)
        res["channel"] = _rounds(lambda: vq.search_step(w, 4, axis=0),
                                 lambda: np.sort(np.abs(w), axis=1), repeat)
    if report:
        from vecq_ref.check.report import model_report

        times = []
        for _ in range(max(1, repeat // 3)):
            t0 = time.perf_counter()
            model_report(report, bits=range(2, 9), method="exact", progress=False)
            times.append(time.perf_counter() - t0)
        res["report"] = {"work": float(np.median(times)), "lo": min(times), "hi": max(times)}
    return res


def _floor_passes(w, out):
    """The three memory passes of a σ-based quantizer into ``out``, with no quantizer
    arithmetic in the middle pass (sign codes), on the kernels' threads."""
    from numba import njit

    from vecq_ref._kernels import CHUNK, run_tasks
    from vecq_ref._kernels.lattice import scale_levels
    from vecq_ref._kernels.reduce import row_moments

    @njit(nogil=True)
    def sign_codes(x, codes, t0, t1):
        for t in range(t0, t1):
            for i in range(t * CHUNK, min(x.shape[0], (t + 1) * CHUNK)):
                codes[i] = x[i] > 0

    rows = w.reshape(1, -1)
    codes, values = out[0].reshape(1, -1), out[1].reshape(1, -1)
    alpha = np.ones(1)
    ntasks = (w.size + CHUNK - 1) // CHUNK

    def passes():
        row_moments(rows)
        run_tasks(sign_codes, ntasks, w.size, (w, out[0].reshape(-1)))
        scale_levels(codes, alpha, 0.5, values)

    return passes


def _thread_counts(spec):
    if spec:
        return [int(t) for t in spec.split(",")]
    cores = os.cpu_count() or 1
    counts, t = [], 1
    while t < cores:
        counts.append(t)
        t *= 2
    return counts + [cores]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", help="comma-separated thread counts (default 1, 2, 4, … cores)")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--only", default=",".join(WORKLOADS))
    p.add_argument("--small", action="store_true", help="quarter sizes (a quick look)")
    p.add_argument("--report", metavar="PATH", help="also time model_report on this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    names = args.only.split(",")
    if args.child:
        print(json.dumps(_child(names, args.repeat, args.small, args.report)))
        return
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start; "
          f"ratio = median(work) / median(baseline), [min–max of per-round ratios]")
    print(f"{'threads':>7}  {'workload':<11} {'ratio':>7}  {'range':<15} "
          f"{'work ms':>9} {'base ms':>9}")
    for t in _thread_counts(args.threads):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(t))
        cmd = [sys.executable, __file__, "--child", "--repeat", str(args.repeat), "--only",
               args.only] + (["--small"] if args.small else []) + (
               ["--report", args.report] if args.report else [])
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{t:>7}  failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        for name, r in json.loads(done.stdout.strip().splitlines()[-1]).items():
            if "ratio" in r:
                print(f"{t:>7}  {name:<11} {r['ratio']:7.2f}× [{r['lo']:.2f}–{r['hi']:.2f}]"
                      f"{'':<4} {r['work'] * 1e3:9.1f} {r['base'] * 1e3:9.1f}", flush=True)
            else:
                print(f"{t:>7}  {name:<11} {'':>7}  [{r['lo']:.2f}–{r['hi']:.2f}] s"
                      f"{'':<2} {r['work'] * 1e3:9.1f}", flush=True)


if __name__ == "__main__":
    main()
