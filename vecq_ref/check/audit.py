"""Audit a shipped quantized checkpoint against its float original (issue 23).

For every tensor of the quantized checkpoint matched to the original (through the reader's name
maps, :mod:`vecq_ref.formats`): the relative DQL of the shipped tensor, the exact optimum of the
same format (same groups, level set, sign of the scale, zero-point kind; theory §4.5) and the
gap in percent, VecQ-param and VecQ-exact at the same bits and group size, the share of codes
that are not the nearest under the stored scales (and what that costs), and a one-line
diagnosis. Losses are weighted as llama.cpp weights them when an importance matrix is given
(docs/theory.md §3.1; :mod:`vecq_ref.check._audit_imatrix`).

Determinism: every measure is a per-row float64 sum computed from that row alone
(:mod:`vecq_ref.check._audit_measure`), reduced with :func:`math.fsum`; a serial run, a run in
row blocks and a Dask run (:mod:`vecq_ref.check._audit_cluster`) give the same bits, in the
quantized file's tensor order.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import math
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validation as V
from ._audit_rows import AuditRow, _bits_per_weight, _gap, _row_from  # noqa: F401

#: Weights per task (row block); a tensor's rows are cut so each block holds about this many:
#: in-process, and on a cluster (smaller, so the workers share a large tensor evenly).
BLOCK_SIZE = 1 << 22
CLUSTER_BLOCK_SIZE = 1 << 20
#: Real-offset formats (Q4_1, Q5_1, …): the certified exact optimum per group costs about
#: 1.5 ms a group (a 384 × 384 Q4_1 tensor: 7 s), so a tensor of more groups than this gets the
#: best-found optimum (check/blocks' ``BEST_FOUND``, the rule verify uses above its own limit;
#: said in the row's notes).
EXACT_OFFSET_GROUPS = 1024
_RESUME_KIND = "vecq-ref audit resume"



def _grouped(entries, reason, shown=3):
    """Lines naming ``entries`` grouped by reason: all names when few, else the first few."""
    groups = {}
    for d in entries:
        groups.setdefault(reason(d), []).append(d["name"])
    lines = []
    for why, names in groups.items():
        if len(names) <= shown + 1:
            lines += [x for n in names for x in _wrap(f"{n}: {why}")]
        else:
            lines += _wrap(f"{len(names)} tensors: {why}")
            lines += _wrap(f"{', '.join(names[:shown])}, …", "    ", "      ")
    return lines


# --- the result -------------------------------------------------------------------------------

#: Format names shortened to the table's column (the JSON and CSV keep the full name).
_SHORT = {"compressed-tensors": "ct"}


def _wrap(text, first="  ", rest="    ", width=100):
    """``text`` on lines of at most ``width`` characters (never cut: continuation lines)."""
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False) or [first.rstrip()]


def _e(x):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3e}"


def _b(x):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:5.2f}"


def _p(x):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.1f}"


@dataclass
class AuditResult:
    """What :func:`audit` found.

    Attributes
    ----------
    original, quantized : str
        The two checkpoints.
    family, architecture : str or None
        The quantized checkpoint's family and architecture (reader).
    imatrix : str or None
        The importance matrix the losses are weighted with.
    rows : list of AuditRow
        One per audited tensor, in the quantized file's order.
    left_in_float : list of dict
        Tensors the quantized checkpoint keeps in float: ``name``, ``original_name``, ``why``.
    unmatched : list of dict
        Tensors of either file without a counterpart: ``name``, ``file`` (``"original"`` or
        ``"quantized"``), ``why``.
    seconds : float
    """

    original: str
    quantized: str
    family: str | None
    architecture: str | None
    imatrix: str | None
    rows: list
    left_in_float: list
    unmatched: list
    seconds: float = 0.0

    @property
    def totals(self):
        """Relative DQLs averaged over the tensors weighted by parameter count, gap of those."""
        n = [r.n for r in self.rows]
        total = math.fsum(n)

        def avg(attr):
            vals = [getattr(r, attr) for r in self.rows]
            if not vals or any(math.isnan(v) for v in vals):
                return math.nan
            return math.fsum(k * v for k, v in zip(n, vals, strict=True)) / total

        out = {"parameters": int(total)}
        for attr in ("rel_dql", "optimum_rel_dql", "vecq_param_rel_dql", "vecq_exact_rel_dql"):
            out[attr] = avg(attr) if self.rows else math.nan
        out["gap_pct"] = _gap(out["rel_dql"], out["optimum_rel_dql"])
        bits = math.fsum(r.n * r.bits_per_weight for r in self.rows)
        out["bits_per_weight"] = bits / total if total else math.nan
        return out

    def as_dict(self):
        return {"original": self.original, "quantized": self.quantized,
                "family": self.family, "architecture": self.architecture,
                "imatrix": self.imatrix, "rows": [r.as_dict() for r in self.rows],
                "totals": self.totals, "left_in_float": self.left_in_float,
                "unmatched": self.unmatched, "seconds": self.seconds}

    def to_json(self, path=None, force=False):
        """The result as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.as_dict(), indent=1, allow_nan=True) + "\n"
        if path is not None:
            from .. import io

            io.write_text(path, text, force=force)
        return text

    CSV_COLUMNS = ("quantized_name", "original_name", "format", "shape", "bits_per_weight",
                   "rel_dql", "optimum_rel_dql", "gap_pct", "vecq_param_rel_dql",
                   "vecq_exact_rel_dql", "not_nearest_share", "not_nearest_cost_pct",
                   "rule_share", "diagnosis")

    def to_csv(self, path=None, force=False):
        """One line per audited tensor (``CSV_COLUMNS``); written atomically when ``path``."""
        buf = _stdio.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(self.CSV_COLUMNS)
        for r in self.rows:
            d = r.as_dict()
            d["shape"] = "x".join(map(str, r.shape))
            wr.writerow([repr(d[c]) if isinstance(d[c], float) else d[c]
                         for c in self.CSV_COLUMNS])
        text = buf.getvalue()
        if path is not None:
            from .. import io

            io.write_text(path, text, force=force)
        return text

    def table(self):
        """The report as text, every line within 100 characters."""
        head = (f"{'tensor / original':<34} {'format':<7}{'bpw':>5} {'rel.DQL':>9} "
                f"{'optimum':>9} {'gap %':>6} {'VecQ-p':>9} {'VecQ-x':>9}")
        lines = _wrap(f"audit of {Path(self.quantized).name} ({self.family}"
                      f"{', ' + self.architecture if self.architecture else ''}) against "
                      f"{Path(self.original).name}", "", "  ")
        if self.imatrix:
            lines += _wrap(f"losses weighted by the importance matrix "
                           f"{Path(self.imatrix).name}", "", "  ")
        lines += [head, "-" * len(head)]
        for r in self.rows:
            name = r.quantized_name if len(r.quantized_name) <= 34 else \
                "…" + r.quantized_name[-33:]
            fmt = _SHORT.get(r.format, r.format)[:7]
            lines.append(f"{name:<34} {fmt:<7}{r.bits_per_weight:5.2f} "
                         f"{_e(r.rel_dql):>9} {_e(r.optimum_rel_dql):>9} {_p(r.gap_pct):>6} "
                         f"{_e(r.vecq_param_rel_dql):>9} {_e(r.vecq_exact_rel_dql):>9}")
            lines += _wrap(f"← {r.original_name}" + (
                f" ({r.format})" if fmt != r.format else ""))
            lines += _wrap(r.diagnosis)
            lines += [x for n in r.notes for x in _wrap(n)]
            if r.remark:
                lines += _wrap(r.remark)
        t = self.totals
        lines += ["-" * len(head),
                  f"{'total (weighted by parameters)':<34} {'':<7}{_b(t['bits_per_weight']):>5} "
                  f"{_e(t['rel_dql']):>9} {_e(t['optimum_rel_dql']):>9} "
                  f"{_p(t['gap_pct']):>6} {_e(t['vecq_param_rel_dql']):>9} "
                  f"{_e(t['vecq_exact_rel_dql']):>9}",
                  f"{len(self.rows)} tensors audited ({t['parameters']:,} weights)"]
        if self.left_in_float:
            lines.append(f"left in float ({len(self.left_in_float)}):")
            lines += _grouped(self.left_in_float, lambda d: d["why"])
        if self.unmatched:
            lines.append(f"unmatched ({len(self.unmatched)}):")
            lines += _grouped([{**d, "name": f"{d['file']} {d['name']}"}
                               for d in self.unmatched], lambda d: d["why"])
        return "\n".join(lines)

    __str__ = table

    def plot(self, ax=None):
        """Per-layer gap to the format's optimum: :func:`vecq_ref.plotting.plot_audit_gap`."""
        from ..plotting import plot_audit_gap

        return plot_audit_gap(self, ax=ax)


# --- the plan ---------------------------------------------------------------------------------

def _default_reader(path):
    """:func:`vecq_ref.formats.open_quantized` (module-level, so Dask workers can call it)."""
    from ..formats import open_quantized

    return open_quantized(path)


def _original_of(ckpt, name, okeys):
    """The original's name for the quantized tensor ``name`` (the readers' own matching:
    ``original_name`` given the original's names where it takes them, or under a prefix)."""
    from ..formats._open import _original_of as match

    return match(ckpt, name, okeys)


def _pairs(okeys, ckpt):
    """(pairs [(qname, oname)], unmatched) in the quantized file's order."""
    qnames = list(ckpt.names())
    by_q = {}
    for k in okeys:
        q = ckpt.quantized_name(k)
        if q is not None and q in qnames and q not in by_q:
            by_q[q] = k
    oset = set(okeys)
    pairs, unmatched, used = [], [], set(by_q.values())
    for q in qnames:
        o = by_q.get(q)
        if o is None:
            o = _original_of(ckpt, q, okeys)
            if o is not None and o not in oset:
                unmatched.append({"name": q, "file": "quantized",
                                  "why": f"maps to {o!r}, which the original lacks"})
                continue
            if o is not None and o in used:
                unmatched.append({"name": q, "file": "quantized",
                                  "why": f"maps to {o!r}, already paired with another tensor"})
                continue
        if o is None:
            unmatched.append({"name": q, "file": "quantized",
                              "why": "no name in the original maps to it"})
            continue
        pairs.append((q, o))
        used.add(o)
    used = {o for _, o in pairs}
    for k in okeys:
        if k not in used:
            unmatched.append({"name": k, "file": "original",
                              "why": "no tensor of the quantized checkpoint maps to it"})
    return pairs, unmatched


def _check_importance(path, qname, oname, shape, vec):
    """The importance vector of a tensor: one finite, non-negative value per input column."""
    who = f"{path}, tensor {qname!r}" + (f" ({oname!r})" if oname != qname else "")
    cols = shape[-1] if shape else 1
    if vec.size != cols:
        V.fail("imatrix", f"one importance per input column ({cols} for shape {tuple(shape)})",
               f"{vec.size} values in {who}")
    if not np.all(np.isfinite(vec)) or np.any(vec < 0):
        V.fail("imatrix", "finite and non-negative importances",
               f"{int(np.count_nonzero(~(vec >= 0)))} negative or non-finite values in {who}")


def _blocks(rows, cols, block_size):
    step = max(1, block_size // max(cols, 1))
    return [(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


# --- resume -----------------------------------------------------------------------------------

def _identity(path, skip=None):
    """What the resume file keys an input on: each file's path, size and mtime (ns).

    A folder (GPTQ/AWQ/compressed-tensors/bitsandbytes) is every file under it, in sorted
    order, so replacing the checkpoint at the same path is seen.
    """
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.resolve() != skip) \
        if path.is_dir() else [path]
    out = []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append([str(p.relative_to(path)) if p != path else p.name, st.st_size,
                    st.st_mtime_ns])
    return out


def _load_resume(path, header):
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        V.fail("resume", "a resume file written by a previous audit", f"{path} ({exc})")
    if not isinstance(data, dict) or data.get("kind") != _RESUME_KIND:
        V.fail("resume", "a resume file written by a previous audit", f"{path}")
    for k, v in header.items():
        if k == "identity":
            continue
        if data.get(k) != v:
            V.fail("resume", f"a resume file of the same audit ({k} {v!r})",
                   f"{path} with {k} {data.get(k)!r}")
    got = data.get("identity", {})
    for k, v in header.get("identity", {}).items():
        if got.get(k) != v:
            V.fail("resume", f"a resume file of the same audit (the {k} file(s) unchanged)",
                   f"{path}, written when the {k} had other sizes or modification times "
                   f"(delete it to start afresh)")
    return data.get("done", {})


def _save_resume(path, header, done):
    from .. import io

    text = json.dumps({"kind": _RESUME_KIND, **header, "done": done}, allow_nan=True)
    io.write_text(path, text, force=True)


# --- the run ----------------------------------------------------------------------------------

def audit(original, quantized, *, imatrix=None, workers=None, scheduler=None, resume=None,
          progress=True, reader=None, block_size=None,
          exact_offset_groups=EXACT_OFFSET_GROUPS):
    """Audit a shipped quantized checkpoint against its float original (issue 23).

    Parameters
    ----------
    original : str or Path
        A float checkpoint ``report`` reads: ``.safetensors`` (file, shards or index), ``.npz``.
    quantized : str or Path
        A GGUF file, or a GPTQ/AWQ/compressed-tensors/bitsandbytes checkpoint
        (:func:`vecq_ref.formats.open_quantized`).
    imatrix : str or Path, optional
        llama.cpp importance matrix (GGUF or legacy ``.dat``) or an ``.npz`` of per-column
        vectors; losses are then weighted as llama.cpp weights them (docs/theory.md §3.1).
    workers : int, optional
        Run on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Address of a Dask distributed scheduler whose workers see the same paths.
    resume : str or Path, optional
        A JSON file recording each finished tensor (rewritten atomically after each); tensors
        already in it are skipped.
    progress : bool or None
        A tqdm bar on stderr (None: when stderr is a terminal).
    reader : callable, optional
        ``reader(path)`` → a checkpoint following :mod:`vecq_ref.formats`' contract (default
        ``open_quantized``). Must be importable by name on Dask workers.
    block_size : int, optional
        Weights per task: tensors are measured in row blocks of about this many (default
        ``BLOCK_SIZE`` in-process, ``CLUSTER_BLOCK_SIZE`` on a cluster).
    exact_offset_groups : int, optional
        Real-offset formats (Q4_1/Q5_1, torchao, HQQ): the certified exact optimum for tensors
        of at most this many groups, the best found (not certified, said in the notes) above
        (default ``EXACT_OFFSET_GROUPS`` = 1024: about 1.5 ms a group).

    Returns
    -------
    AuditResult
        Rows in the quantized file's tensor order; bit-identical for any ``workers``,
        ``scheduler`` and ``block_size``.

    Raises
    ------
    ValueError
        An unreadable file; a wrong pairing (shapes agree, relative DQL above 1: both names);
        no tensor of the two files matched (both names); a ``resume`` file of another audit,
        or written when an input file had another size or modification time.
    FileNotFoundError, ImportError
        A missing file; ``dask``/``distributed`` missing for ``workers``/``scheduler``.
    """
    from .. import io
    from . import _audit_task as T

    t0 = time.perf_counter()
    if workers is not None and scheduler is not None:
        V.fail("workers", "left out when `scheduler` is given", repr(workers))
    if workers is not None:
        workers = V.integer(workers, "workers", 1)
    if block_size is None:
        block_size = BLOCK_SIZE if workers is None and scheduler is None else CLUSTER_BLOCK_SIZE
    block_size = V.integer(block_size, "block_size", 1)
    exact_offset_groups = V.integer(exact_offset_groups, "exact_offset_groups", 0)
    reader = _default_reader if reader is None else reader
    original, quantized = str(original), str(quantized)
    imat = None
    if imatrix is not None:
        from ._audit_imatrix import read_imatrix

        imat = read_imatrix(imatrix)
    header = {"original": str(Path(original).resolve()),
              "quantized": str(Path(quantized).resolve()),
              "imatrix": None if imatrix is None else str(Path(imatrix).resolve()),
              "exact_offset_groups": exact_offset_groups}
    if resume is not None:
        skip = Path(resume).resolve()
        header["identity"] = {k: _identity(v, skip) for k, v in
                              (("original", original), ("quantized", quantized),
                               ("imatrix", imatrix)) if v is not None}
    done = _load_resume(resume, header) if resume is not None else {}

    with io.open_tensors(original, "original") as (okeys, get), reader(quantized) as ckpt:
        family = getattr(ckpt, "family", None)
        arch = getattr(ckpt, "architecture", None)
        pairs, unmatched = _pairs(list(okeys), ckpt)
        if not pairs:
            V.fail("original", f"a float checkpoint with tensors matching {quantized}",
                   f"{original}: no tensor of either file maps to one of the other")
        specs = []
        for q, o in pairs:
            if q in done:
                continue
            shape = tuple(get(o).shape)
            vec = None if imat is None else imat.get(q, imat.get(o))
            if vec is not None:
                _check_importance(imatrix, q, o, shape, vec)
            rows = shape[0] if len(shape) >= 1 else 1
            cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            blocks = _blocks(rows, cols, block_size) if len(shape) == 2 else [(0, rows)]
            specs.append(T.TensorSpec(original, quantized, reader, q, o, shape, blocks, vec,
                                      exact_offset_groups))
    bar = _progress(len(pairs), progress)
    if bar is not None:
        bar.update(len(pairs) - len(specs))

    def finished(spec, result):
        done[spec.qname] = result
        if resume is not None:
            _save_resume(resume, header, done)
        if bar is not None:
            bar.update(1)

    try:
        if workers is None and scheduler is None:
            try:
                for spec in specs:
                    finished(spec, T.run_tensor(spec))
            finally:
                T.forget()
        else:
            from ._audit_cluster import run_on_cluster

            run_on_cluster(specs, finished, workers=workers, scheduler=scheduler)
    finally:
        if bar is not None:
            bar.close()

    rows, floats = [], []
    for q, o in pairs:
        res = done[q]
        if res["kind"] == "float":
            floats.append({"name": q, "original_name": o, "why": res["why"]})
        elif res["kind"] == "mismatch":
            unmatched.append({"name": q, "file": "quantized", "why": res["why"]})
        else:
            rows.append(AuditRow.from_dict(res["row"]))
    return AuditResult(original=original, quantized=quantized, family=family,
                       architecture=arch, imatrix=None if imatrix is None else str(imatrix),
                       rows=rows, left_in_float=floats, unmatched=unmatched,
                       seconds=time.perf_counter() - t0)


def _progress(total, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="tensor", file=sys.stderr, desc="audit")
