"""Thread CPU time per weight (``time.thread_time``: little disturbed by other processes) of
the exact level-set search against the project's 19-candidate search (``make_qx_rows``), on
the benchmark's weights (benchmarks/bench_levelset.py): signed −8 … 7 in groups of
32/64/128/256 (``0``: NF4, groups of 64, unsigned). One thread, 5 rounds, min and median.

Run from the repository root: ``python benchmarks/levelset_cpu_time.py [rows] [32,64,0]``
(docs/performance.md; alternate it with the parent commit's code to compare).
"""

import sys
import time

import numpy as np

sys.path.insert(0, ".")

from benchmarks.bench_levelset import FULL4, _weights  # noqa: E402
from vecq_ref import codebooks  # noqa: E402
from vecq_ref._kernels import exact_levels as K  # noqa: E402
from vecq_ref._kernels import single_thread  # noqa: E402
from vecq_ref._kernels.rules import make_qx_rows  # noqa: E402


def main(rows, groups):
    for group in groups:
        if group:
            x, h = _weights(rows, 4096, group, 0)
            levels, signed = FULL4, True
        else:
            x, h = _weights(rows, 4096, 64, 0)
            levels, signed = codebooks.NF4, False
        out = np.empty((x.shape[0], K.COLS))
        codes = np.empty(x.shape, dtype=np.int16)
        x32, h32 = x.astype(np.float32), h.astype(np.float32)
        te, tq = [], []
        with single_thread():
            K.exact_levelset(x[:8], h[:8], levels, signed, False, out[:8], codes[:8])
            make_qx_rows(x32[:8], h32[:8], 8, 1)
            for _ in range(5):
                t = time.thread_time()
                K.exact_levelset(x, h, levels, signed, False, out, codes)
                te.append(time.thread_time() - t)
                t = time.thread_time()
                make_qx_rows(x32, h32, 8, 1)
                tq.append(time.thread_time() - t)
        ns = 1e9 / x.size
        print(f"g{group or 'nf4-64'}: exact min {min(te) * ns:.1f} med {np.median(te) * ns:.1f}"
              f" ns/w; 19-candidate min {min(tq) * ns:.1f} med {np.median(tq) * ns:.1f};"
              f" ratio (min) {min(te) / min(tq):.2f}; evaluations per group"
              f" {out[:, 6].mean():.1f}; certified {out[:, 7].min()}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64,
         [int(g) for g in sys.argv[2].split(",")] if len(sys.argv) > 2 else [32])
