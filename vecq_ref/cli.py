"""The ``vecq-ref`` command line: argparse subcommands that call the library; no maths here.

Conventions: ``--json`` prints machine-readable results on stdout, a readable table otherwise;
exit 0 ok, 1 a check failed, 2 a usage or input error (one line on stderr, no traceback
unless ``--debug``); output files are written atomically and never overwritten without
``--force``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._version import __version__


class UsageError(Exception):
    """An input or usage problem: reported as one line, exit status 2."""


class CheckFailed(Exception):
    """A check or comparison did not pass: exit status 1."""


def parse_bits(text):
    """``"4"``, ``"2-8"`` or ``"2,4,8"`` → list of ints."""
    out = []
    try:
        for part in str(text).split(","):
            if "-" in part:
                lo, hi = part.split("-")
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bits must look like 4, 2-8 or 2,4,8; got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError(f"bits must name at least one bitwidth; got {text!r}")
    return out


def emit(args, payload, text):
    """Print ``payload`` as JSON with ``--json``, else the readable ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=_json_default))
    else:
        print(text)


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def format_table(rows, columns, floatfmt="{:.6g}"):
    """A plain-text table of dict rows."""
    def cell(v):
        return floatfmt.format(v) if isinstance(v, float) else str(v)

    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


# --- table ---------------------------------------------------------------------------------

def _add_table(sub):
    p = sub.add_parser(
        "table", help="λ_k from first principles, with the published tables beside it",
        description="Optimal normalized steps λ_k (σ units) for each bitwidth.",
        epilog="examples:\n  vecq-ref table\n  vecq-ref table --bits 2-4 --lattice midtread"
               "\n  vecq-ref table --dist laplace --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bits", type=parse_bits, default=list(range(1, 9)),
                   help="bitwidths: 4, 2-8 or 2,4,8 (default 1-8)")
    p.add_argument("--lattice", choices=("midrise", "midtread"), default="midrise")
    p.add_argument("--dist", choices=("gaussian", "laplace", "uniform"), default="gaussian")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_table)


def _cmd_table(args):
    from . import tables

    try:
        rows = tables.table(args.bits, args.lattice, args.dist)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    if args.lattice == "midrise" and args.dist == "gaussian":
        for r in rows:
            k = r["bits"]
            r["paper"] = tables.paper_lambda(k)
            if k <= 8:
                r["ul2q_printed"] = tables.UL2Q_PRINTED[k - 1]
    cols = ["bits", "lam", "alpha", "orientation", "relative_dql"]
    cols += [c for c in ("paper", "ul2q_printed") if rows and c in rows[0]]
    emit(args, rows, format_table(rows, cols, "{:.10g}"))
    return 0


# --- quantize ------------------------------------------------------------------------------

def _add_quantize(sub):
    p = sub.add_parser(
        "quantize", help="quantize a .npy tensor and write codes, α and values to .npz",
        description="Quantize the tensor in IN.npy with VecQ.",
        epilog="examples:\n  vecq-ref quantize w.npy --bits 4 --out q.npz\n"
               "  vecq-ref quantize w.npy --bits 2 --method paper --axis 0 --out q.npz --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a .npy file")
    p.add_argument("--bits", type=int, required=True)
    p.add_argument("--method", default="param",
                   choices=("param", "paper", "exact", "grid", "alternating"))
    p.add_argument("--lattice", choices=("midrise", "midtread"), default="midrise")
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=int, default=None, help="per-group of this size")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_quantize)


def _cmd_quantize(args):
    import numpy as np

    from . import io
    from .quantize import quantize

    w = io.load_array(args.input)
    try:
        q = quantize(w, args.bits, method=args.method, lattice=args.lattice, axis=args.axis,
                     group_size=args.group_size)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    io.save_npz(args.out, {"codes": q.codes, "alpha": np.asarray(q.alpha),
                           "step": np.asarray(q.step), "values": q.values}, force=args.force)
    payload = {"input": args.input, "out": args.out, "shape": list(q.codes.shape),
               "bits": q.bits, "method": q.method, "lattice": q.lattice,
               "alpha": np.asarray(q.alpha).tolist(), "step": np.asarray(q.step).tolist(),
               "loss": q.loss.as_dict()}
    text = (f"{args.input} {tuple(q.codes.shape)} -> {args.out}: {q.method} {q.bits}-bit "
            f"{q.lattice}, relative DQL {q.loss.relative_dql:.6g}, "
            f"J_o {q.loss.orientation:.6g}")
    emit(args, payload, text)
    return 0


# --- demo --------------------------------------------------------------------------------

def _add_demo(sub):
    p = sub.add_parser(
        "demo", help="print the λ table and quantize a generated tensor with each method",
        description="A one-minute tour: λ_k from first principles, then VecQ on a seeded "
                    "Gaussian and a heavy-tailed tensor.",
        epilog="example:\n  vecq-ref demo --bits 2,4 --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bits", type=parse_bits, default=[2, 4, 8])
    p.add_argument("--size", type=int, default=1 << 16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args):
    import numpy as np

    from . import tables
    from .quantize import METHODS, quantize

    rng = np.random.default_rng(args.seed)
    tensors = {"gaussian": rng.standard_normal(args.size).astype(np.float32),
               "student_t3": rng.standard_t(3, args.size).astype(np.float32)}
    rows = []
    for name, w in tensors.items():
        for k in args.bits:
            for m in METHODS:
                try:
                    q = quantize(w, k, method=m)
                except ImportError:  # a method whose module is not built yet
                    continue
                rows.append({"tensor": name, "bits": k, "method": m,
                             "relative_dql": q.loss.relative_dql,
                             "orientation": q.loss.orientation, "alpha": float(q.alpha),
                             "step": float(q.step)})
    lam_rows = tables.table(args.bits)
    if args.json:
        emit(args, {"table": lam_rows, "quantize": rows}, "")
        return 0
    print("Optimal normalized steps (Gaussian, midrise):")
    print(format_table(lam_rows, ["bits", "lam", "relative_dql"], "{:.10g}"))
    print(f"\nVecQ on {args.size} seeded weights (seed {args.seed}):")
    print(format_table(rows, ["tensor", "bits", "method", "relative_dql", "orientation",
                              "alpha", "step"]))
    return 0


# --- entry point ---------------------------------------------------------------------------

_SUBCOMMANDS = [_add_table, _add_quantize, _add_demo]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="vecq-ref", description="Reference implementation of VecQ weight quantization.",
        epilog="Run 'vecq-ref COMMAND --help' for each command's options and examples.")
    parser.add_argument("--version", action="version", version=f"vecq-ref {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit status (0 ok, 1 check failed, 2 usage/input error)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CheckFailed as exc:
        print(f"vecq-ref {args.command}: {exc}", file=sys.stderr)
        return 1
    except (UsageError, OSError, ValueError, TypeError) as exc:
        if debug:
            raise
        print(f"vecq-ref {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
