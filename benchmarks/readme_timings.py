"""Keep the README's timings honest: run every command of its timings table and compare.

The README's table sits between the markers ``<!-- timings:begin -->`` and
``<!-- timings:end -->``; each row is ``| what | `command` | first use | then |``. This script
runs each command twice, in the table's order:

* **first use**: with ``NUMBA_CACHE_DIR`` pointing at a new, empty folder (Numba compiles
  every kernel the command reaches and caches it), in a fresh folder holding ``w.npy`` (a
  512×512 float32 N(0, 1) tensor, seed 0) and what the rows before wrote there;
* **then**: the same command again with the cache that run filled, in a second fresh folder.

``python`` in a command is this interpreter, with the checkout first on ``PYTHONPATH``;
a ``pytest`` command runs in the repository root, every other one in the fresh folder. The
wall time of each run is compared with the README's figure: the script exits 1 when one is
off by more than ``--factor`` (default 2) either way, and prints the machine's load average
(a loaded machine inflates every figure; measure on a quiet one). ``--write`` puts the
measured figures into the README's table instead of checking them.

Run: ``python benchmarks/readme_timings.py [--only WORD,...] [--skip WORD,...] [--factor F]
[--write] [--json FILE] [--keep DIR]`` (all rows: ≈ 15 minutes on 2 cores, most of it the test
suite and ``reproduce``). A plain script, not a pytest-benchmark file: a cold start needs a fresh
interpreter and an empty cache, and one round is the quantity.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- timings:begin -->", "<!-- timings:end -->"
_ROW = re.compile(r"^\|(?P<what>[^|]*)\|\s*`(?P<cmd>[^`]+)`\s*"
                  r"\|(?P<cold>[^|]*)\|(?P<warm>[^|]*)\|\s*$")
_LOAD = re.compile(r"load average \d+(?:\.\d+)?")
_TIME = re.compile(r"^\s*(?:(?P<min>\d+)\s*min)?\s*(?:(?P<sec>\d+(?:\.\d+)?)\s*s)?\s*$")


def parse_seconds(text):
    """Seconds written as ``"9.3 s"``, ``"2 min 33 s"`` or ``"4 min"``; ``None`` for ``"—"``.

    Examples
    --------
    >>> parse_seconds("2 min 33 s"), parse_seconds(" 0.9 s "), parse_seconds("—")
    (153.0, 0.9, None)
    """
    text = text.strip()
    if text in ("", "—", "-"):
        return None
    m = _TIME.match(text)
    if not m or not (m["min"] or m["sec"]):
        raise ValueError(f"`timing` must read like '9.3 s' or '2 min 33 s'; got {text!r}.")
    return 60.0 * int(m["min"] or 0) + float(m["sec"] or 0)


def format_seconds(seconds):
    """The README's way of writing a time: 2 significant digits below 100 s, then min and s.

    Examples
    --------
    >>> format_seconds(0.934), format_seconds(9.31), format_seconds(81.4), format_seconds(153.2)
    ('0.93 s', '9.3 s', '81 s', '2 min 33 s')
    """
    if seconds >= 99.5:  # would round to 100 s: minutes and seconds from here
        whole = round(seconds)
        return f"{whole // 60} min {whole % 60} s"
    return f"{float(f'{seconds:.2g}'):g} s"


def read_table(text):
    """The rows of the marked table: dicts with what, command, cold, warm (seconds or None)."""
    try:
        body = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    except ValueError:
        raise ValueError(f"README.md has no table between {BEGIN} and {END}.") from None
    rows = []
    for line in body.splitlines():
        m = _ROW.match(line)
        if m:
            rows.append({"what": m["what"].strip(), "command": m["cmd"],
                         "cold": parse_seconds(m["cold"]), "warm": parse_seconds(m["warm"])})
    if not rows:
        raise ValueError("the README's timings table has no row `| what | `command` | s | s |`.")
    return rows


def write_table(text, measured, load=None):
    """``text`` with the table's figures replaced by ``measured`` (command → (cold, warm)).

    With ``load`` (the 1-minute load average at the start), the line inside the markers that
    says which load the figures were measured at is rewritten too.
    """
    start, stop = text.index(BEGIN), text.index(END)
    lines = text[start:stop].split("\n")
    for i, line in enumerate(lines):
        if load is not None and _LOAD.search(line):
            lines[i] = _LOAD.sub(f"load average {load:.1f}", line)
        m = _ROW.match(line)
        if m and m["cmd"] in measured:
            cold, warm = measured[m["cmd"]]
            cells = [format_seconds(t) if t is not None else old.strip()
                     for t, old in ((cold, m["cold"]), (warm, m["warm"]))]
            lines[i] = f"|{m['what']}| `{m['cmd']}` | {cells[0]} | {cells[1]} |"
    return text[:start] + "\n".join(lines) + text[stop:]


def off_by(measured, written):
    """How many times off ``measured`` is from ``written`` (≥ 1, either direction)."""
    return max(measured / written, written / measured)


def _run(command, cwd, cache):
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                         os.environ.get("PYTHONPATH")])))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"`{command}` exited {proc.returncode}:\n  " + "\n  ".join(tail))
    return wall, cpu


def _folder(tmp, name):
    import numpy as np

    folder = Path(tmp) / name
    folder.mkdir()
    w = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    np.save(folder / "w.npy", w)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run only rows whose command contains one "
                        "of these comma-separated words")
    parser.add_argument("--skip", default="", help="skip rows whose command contains one of "
                        "these comma-separated words")
    parser.add_argument("--factor", type=float, default=2.0,
                        help="fail when a measured time is more than this many times off")
    parser.add_argument("--write", action="store_true",
                        help="write the measured figures into README.md instead of checking")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    parser.add_argument("--keep", default=None, help="work in this new folder and keep what "
                        "the commands wrote (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    only = [w for w in args.only.split(",") if w]
    skip = [w for w in args.skip.split(",") if w]
    rows = [r for r in read_table(README.read_text(encoding="utf-8"))
            if (not only or any(w in r["command"] for w in only))
            and not any(w in r["command"] for w in skip)]
    load_before = os.getloadavg()
    print(f"load average at start: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
    results, failures, measured = [], [], {}
    if args.keep:
        Path(args.keep).mkdir(parents=True)  # a new folder: never mix with an older run
    with (contextlib.nullcontext(args.keep) if args.keep
          else tempfile.TemporaryDirectory(prefix="readme-timings-")) as tmp:
        work = {"cold": _folder(tmp, "cold"), "warm": _folder(tmp, "warm")}
        for i, row in enumerate(rows):
            cache = Path(tmp) / f"numba-cache-{i}"
            cache.mkdir()
            cwd = {k: ROOT if "pytest" in row["command"] else v for k, v in work.items()}
            got = {}
            for phase in ("cold", "warm"):
                wall, cpu = _run(row["command"], cwd[phase], cache)
                got[phase] = wall
                written = row[phase]
                verdict = ""
                if written is not None:
                    ratio = off_by(wall, written)
                    verdict = f"README {format_seconds(written)}, ×{wall / written:.2f}"
                    if ratio > args.factor and not args.write:
                        verdict += f"  OFF by more than {args.factor:g}×"
                        failures.append(f"{row['command']} ({phase})")
                print(f"{phase:>4}  {format_seconds(wall):>10} wall  {cpu:7.1f} s CPU  "
                      f"{row['command']}  [{verdict}]", flush=True)
                results.append({"command": row["command"], "phase": phase, "wall_s": wall,
                                "cpu_s": cpu, "readme_s": written})
            measured[row["command"]] = (got["cold"], got["warm"])
    load_after = os.getloadavg()
    print(f"load average at end: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
             "results": results}, indent=1), encoding="utf-8")
    if args.write:
        README.write_text(write_table(README.read_text(encoding="utf-8"), measured,
                                      load=load_before[0]), encoding="utf-8")
        print(f"wrote {len(measured)} rows into {README}")
        return 0
    if failures:
        print(f"{len(failures)} figure(s) off by more than {args.factor:g}×: "
              + "; ".join(failures))
        return 1
    print(f"all {len(results)} figures within {args.factor:g}× of the README's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
