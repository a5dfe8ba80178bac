"""The ``vecq-ref`` command line: argparse subcommands that call the library; no maths here.

Conventions: ``--json`` prints machine-readable results on stdout, a readable table otherwise;
exit 0 ok, 1 a check failed, 2 a usage or input error (one line on stderr naming the file or
option and the cause, no traceback unless ``--debug``), 130 interrupted (Ctrl-C), 141 the
reader of stdout went away (``| head``; nothing is printed, as for any Unix tool); output files
are written atomically with the umask's permissions and never overwritten without ``--force``,
and a command that fails leaves no empty folder it created for ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._format import format_table
from ._validation import MAX_BITS
from ._version import __version__


class UsageError(Exception):
    """An input or usage problem: reported as one line, exit status 2."""


class CheckFailed(Exception):
    """A check or comparison did not pass: exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}; got {value}")
        return value

    parse.__name__ = f"integer ≥ {low}"
    return parse


def _float_at_least(low, strict=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
        if not (value > low if strict else value >= low) or value != value or (
                value == float("inf")):
            raise argparse.ArgumentTypeError(
                f"must be a finite number {'>' if strict else '≥'} {low}; got {text}")
        return value

    parse.__name__ = "number"
    return parse


_POSITIVE = _int_at_least(1)
_NONNEGATIVE = _int_at_least(0)


def _int_list(low, high=None, max_count=64):
    """Parser of ``"4"``, ``"2-8"`` or ``"2,4,8"`` → list of ints in ``[low, high]``.

    Every value and range end is checked against the bounds, and the number of values
    against ``max_count``, before any range is expanded (``1-1000000000`` is refused at once,
    not built first).
    """
    def parse(text):
        spans = []
        try:
            for part in str(text).split(","):
                lo, hi = part.split("-") if "-" in part else (part, part)
                spans.append((int(lo), int(hi)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must look like 4, 2-8 or 2,4,8; got {text!r}") from None
        for lo, hi in spans:
            if min(lo, hi) < low or (high is not None and max(lo, hi) > high):
                bounds = f"≥ {low}" if high is None else f"≥ {low} and ≤ {high}"
                raise argparse.ArgumentTypeError(f"every value must be {bounds}; got {text!r}")
            if lo > hi:
                raise argparse.ArgumentTypeError(
                    f"a range must go up, like 2-8; got {lo}-{hi} in {text!r}")
        count = sum(hi - lo + 1 for lo, hi in spans)
        if count > max_count:
            raise argparse.ArgumentTypeError(
                f"must name at most {max_count} values; got {count} in {text!r}")
        return [v for lo, hi in spans for v in range(lo, hi + 1)]

    parse.__name__ = "list of integers"
    return parse


#: ``--bits`` lists: ``"4"``, ``"2-8"`` or ``"2,4,8"``, each bitwidth in [1, 16].
parse_bits = _int_list(1, MAX_BITS)
#: ``train --milestones`` (epochs) and ``--hidden`` (layer widths).
_MILESTONES = _int_list(1, None, 10_000)
_WIDTHS = _int_list(1, None, 100)


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


# --- files: every problem names the file it is in ------------------------------------------

def _input_error(exc, labels):
    """``exc`` from the library as a UsageError that names the file its data came from.

    ``labels`` maps the library's argument names (``w``, ``wq``) to the file (or
    ``file['key']``) that argument was read from; the message is prefixed with the label of
    the argument it starts with, or with every named file when it relates several (shapes).
    Errors about options (``bits``, ``axis``) are left as they are.
    """
    text = str(exc)
    first = next((arg for arg in labels if text.startswith(f"`{arg}`")), None)
    if first is None:
        return UsageError(text)
    named = sorted((text.index(f"`{a}`"), a) for a in labels if f"`{a}`" in text)
    if len(named) == 1:
        return UsageError(f"{labels[first]}: {text}")
    # A relation between the files (shapes differ): name each with its argument.
    return UsageError(f"{', '.join(f'{labels[a]} (`{a}`)' for _, a in named)}: {text}")


def _label(path, key=None):
    return str(path) if key is None else f"{path}[{key!r}]"


def _check_weights(arr, label, arg="w"):
    """``arr`` unchanged if it can be quantized (real, non-empty, finite); else UsageError
    naming ``label`` (the file, or ``file['key']``)."""
    from . import _validation as V

    try:
        V.weights(arr, arg)
    except (ValueError, TypeError) as exc:
        raise _input_error(exc, {arg: label}) from exc
    return arr


def _load_weights(path, name="input", arg="w"):
    """The one array of ``path`` (bf16/fp8 as float32), checked as weights naming the file."""
    from . import io

    return _check_weights(io.load_array(path, name), _label(path), arg)


def _load_npy(path, option):
    """One array from the .npy ``path`` given as ``option`` (no pickles); every problem is
    one line naming the option and the file."""
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except (OSError, ValueError, EOFError):
        raise UsageError(f"{option} {path}: not a .npy array that can be read without "
                         "pickles") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise UsageError(f"{option} {path}: expected one .npy array; got an .npz archive")
    return arr


def _load_importance(path, shape, label="the weights"):
    """The importance weights of ``--weights FILE.npy`` for a tensor of ``shape``: one .npy
    array (no pickles), ``h ≥ 0``, finite, one per element or one per input column (the last
    axis); ``shape`` None: any shape (``report``, whose tensors differ). Every problem is one
    line naming ``--weights`` and the file."""

    from . import _validation as V

    if path is None:
        return None
    arr = _load_npy(path, "--weights")
    try:
        return V.importance(arr, arr.shape if shape is None else shape, "weights")
    except (ValueError, TypeError) as exc:
        text = str(exc).replace("`weights` must be", "must be")
        raise UsageError(f"--weights {path} (for {label}): {text}") from None


def _with_weights(h):
    """``{"weights": h}`` when importance weights were given, else no keyword at all."""
    return {} if h is None else {"weights": h}


#: The arrays ``vecq-ref quantize`` writes; ``values`` are the quantized weights.
_QUANTIZE_KEYS = ("codes", "alpha", "step", "values")
#: What it adds where the codes need it to be decoded (the names of ``Quantized``'s fields):
#: the integer zero point or the real offset of each slice, a codebook's levels.
_QUANTIZE_EXTRA = ("zero_point", "offset", "codebook")
#: How ``vecq-ref quantize``'s arrays decode (its --help and the README say the same).
_QUANTIZE_HELP = ("output file (.npz): codes, alpha and step (one per slice), values "
                  "(the quantized weights); with --zero-point integer also zero_point "
                  "(values = alpha·(codes − zero_point)), with --zero-point float also offset "
                  "(values = alpha·codes + offset), with --codebook also codebook "
                  "(values = alpha·codebook[codes]); else values = alpha·(codes + ½) "
                  "(midrise) or alpha·codes (midtread, midtread-full)")


def _quantized_arrays(q):
    """The arrays of ``vecq-ref quantize``'s .npz for the ``Quantized`` ``q``: those of
    :data:`_QUANTIZE_KEYS`, and of :data:`_QUANTIZE_EXTRA` where ``q`` has them."""
    import numpy as np

    out = {"codes": q.codes, "alpha": np.asarray(q.alpha), "step": np.asarray(q.step),
           "values": q.values}
    if q.zero_point is not None:
        out["zero_point"] = np.asarray(q.zero_point)
    if q.offset is not None:
        out["offset"] = np.asarray(q.offset)
    if q.level_set is not None and q.level_set.codebook is not None:
        out["codebook"] = np.asarray(q.level_set.levels)
    return out


def _load_quantized(path, name="quantized"):
    """``(array, label)`` for a quantized tensor: the one array of ``path``, or the
    ``values`` of a ``vecq-ref quantize`` output (said on stderr)."""
    import numpy as np

    from . import io

    with io.open_tensors(path, name) as (keys, get):
        extra = set(keys) - set(_QUANTIZE_KEYS)
        if set(_QUANTIZE_KEYS) <= set(keys) and extra <= set(_QUANTIZE_EXTRA):
            print(f"vecq-ref verify: {path} is a 'vecq-ref quantize' output "
                  f"({', '.join(keys)}); verifying its 'values'", file=sys.stderr)
            label = _label(path, "values")
            return _check_weights(io.as_float(np.array(get("values"))), label, "wq"), label
        if len(keys) != 1:
            raise UsageError(f"`{name}` file {path} holds {len(keys)} arrays "
                             f"({', '.join(keys[:5])}); expected one, or the "
                             f"{', '.join(_QUANTIZE_KEYS)} of 'vecq-ref quantize'")
        arr = io.as_float(np.array(get(keys[0])))
    return _check_weights(arr, _label(path), "wq"), _label(path)


def _out_file(path, option, suffixes):
    """Refuse an output file name whose suffix is not one of ``suffixes`` (one line)."""
    from pathlib import Path

    if Path(path).is_dir():  # the truer cause than a missing suffix
        raise UsageError(f"{option} {path} is a directory; expected a file name")
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        raise UsageError(f"{option} {path}: the file name must end in "
                         f"{' or '.join(suffixes)}; got {suffix or 'no suffix'!r}")
    return path


def _out_folder(path, option="--out"):
    """Refuse an output folder that is, or lies under, an existing file or a dangling symbolic
    link (one line)."""
    import os
    from pathlib import Path

    p = Path(path)
    for q in (p, *p.parents):
        if q.is_symlink() and not q.exists():  # a dangling link: no file, no folder
            where = "is" if q == p else f"lies under {q}, which is"
            raise UsageError(f"{option} {path} {where} a symbolic link to a missing "
                             f"{os.readlink(q)}; create that folder or remove the link")
        if q.exists():
            if not q.is_dir():
                where = "" if q == p else f" ({q} is a file)"
                what = "is a file" if q == p else "lies under a file"
                raise UsageError(f"{option} {path} {what}, not a folder{where}")
            break
    return path


def _add_level_set(p):
    """``--lattice``, ``--signed-scale``, ``--zero-point``, ``--codebook``: one level set
    (vecq_ref.level_set), passed through to the library as its keywords."""
    p.add_argument("--lattice", choices=("midrise", "midtread", "midtread-full"), default=None,
                   help="uniform levels (default midrise; midtread-full with --zero-point)")
    p.add_argument("--signed-scale", action="store_true",
                   help="α of either sign (the mirrored level set too: llama.cpp Q4_0)")
    p.add_argument("--zero-point", choices=("integer", "float"), default=None,
                   help="codes 0…2^k−1 with an integer zero point or a real offset")
    p.add_argument("--codebook", default=None, metavar="NAME|FILE.npy",
                   help="levels from a codebook: nf4, fp4, iq4_nl, or ascending levels in a "
                        ".npy file (implies the codebook lattice)")


def _bits_given(args):
    """Refuse a missing ``--bits`` unless ``--codebook`` gives them (its number of levels,
    as the library's ``bits=None`` does)."""
    if args.bits is None and args.codebook is None:
        raise UsageError("--bits is required (it may be left out only with --codebook, "
                         "whose number of levels sets it)")


def _level_set_options(args):
    """The library's level-set keywords of ``args`` (only those given; a codebook file is
    read as one .npy array, no pickles)."""

    out = {}
    if args.lattice is not None:
        out["lattice"] = args.lattice
    if args.signed_scale:
        out["signed_scale"] = True
    if args.zero_point is not None:
        out["zero_point"] = args.zero_point
    if args.codebook is not None:
        book = args.codebook
        if book.lower().endswith(".npy"):
            book = _load_npy(book, "--codebook")
        out["codebook"] = book
    return out


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
        epilog="examples:\n  vecq-ref quantize w.npy --bits 4 --out q4.npz\n"
               "  vecq-ref quantize w.npy --bits 2 --method paper --axis 0 --out q2.npz --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a .npy file")
    p.add_argument("--bits", type=_POSITIVE, default=None,
                   help="bits per weight (required, except with --codebook: its size)")
    p.add_argument("--method", default="param",
                   choices=("param", "paper", "exact", "grid", "alternating"))
    _add_level_set(p)
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=_POSITIVE, default=None, help="per-group of this size")
    p.add_argument("--weights", default=None, metavar="H.npy",
                   help="importance weights h ≥ 0 (.npy): one per element, or one per input "
                        "column (the last axis); losses become h-weighted")
    p.add_argument("--out", required=True, help=_QUANTIZE_HELP)
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_quantize)


def _cmd_quantize(args):
    import numpy as np

    from . import io
    from .quantize import quantize

    _out_file(args.out, "--out", (".npz",))
    _bits_given(args)
    w = _load_weights(args.input)
    h = _load_importance(args.weights, w.shape, args.input)
    try:
        q = quantize(w, args.bits, method=args.method, axis=args.axis,
                     group_size=args.group_size, **_level_set_options(args), **_with_weights(h))
    except (ValueError, TypeError) as exc:
        raise _input_error(exc, {"w": args.input}) from exc
    arrays = _quantized_arrays(q)
    io.save_npz(args.out, arrays, force=args.force)
    payload = {"input": args.input, "out": args.out, "shape": list(q.codes.shape),
               "bits": q.bits, "method": q.method, "lattice": q.lattice,
               "alpha": np.asarray(q.alpha).tolist(), "step": np.asarray(q.step).tolist(),
               **{k: arrays[k].tolist() for k in _QUANTIZE_EXTRA if k in arrays},
               "arrays": list(arrays), "loss": q.loss.as_dict()}
    text = (f"{args.input} {tuple(q.codes.shape)} -> {args.out} ({', '.join(arrays)}): "
            f"{q.method} {q.bits}-bit {q.lattice}, relative DQL {q.loss.relative_dql:.6g}, "
            f"J_o {q.loss.orientation:.6g}")
    emit(args, payload, text)
    return 0


# --- search ------------------------------------------------------------------------------

def _add_search(sub):
    p = sub.add_parser(
        "search", help="find the step of a .npy tensor: exact, the paper's grid, alternating",
        description="Search the step (threshold spacing) of the tensor in IN.npy "
                    "(docs/theory.md §4).",
        epilog="examples:\n  vecq-ref search w.npy --bits 4\n"
               "  vecq-ref search w.npy --bits 2 --method grid --axis 0 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a .npy file")
    p.add_argument("--bits", type=_POSITIVE, default=None,
                   help="bits per weight (required, except with --codebook: its size)")
    p.add_argument("--method", default="exact", choices=("exact", "grid", "alternating"))
    _add_level_set(p)
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=_POSITIVE, default=None, help="per-group of this size")
    p.add_argument("--weights", default=None, metavar="H.npy",
                   help="importance weights h ≥ 0 (.npy): one per element, or one per input "
                        "column (the last axis); losses become h-weighted")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_search)


def _cmd_search(args):
    import numpy as np

    from .search import search_step

    _bits_given(args)
    w = _load_weights(args.input)
    h = _load_importance(args.weights, w.shape, args.input)
    try:
        r = search_step(w, args.bits, method=args.method, axis=args.axis,
                        group_size=args.group_size, **_level_set_options(args),
                        **_with_weights(h))
    except (ValueError, TypeError) as exc:
        raise _input_error(exc, {"w": args.input}) from exc
    # The zero point z (x̂ = α(u − z)) or the real offset m (x̂ = α·u + m) where the level
    # set has one: without it α and the step do not say what the codes stand for.
    shift = [f for f in ("zero_point", "offset") if getattr(r, f) is not None]
    fields = ("step", "alpha", *shift, "orientation", "relative_dql", "evaluations",
              "certified")
    payload = {"input": args.input, "bits": r.bits, "method": r.method, "lattice": r.lattice,
               **{f: np.asarray(getattr(r, f)).tolist() for f in fields}}
    if np.ndim(r.step) == 0:
        extra = "".join(f", zero point {int(r.zero_point)}" if f == "zero_point"
                        else f", offset {float(r.offset):.9g}" for f in shift)
        text = (f"{args.input}: {r.method} {r.bits}-bit {r.lattice}: step {r.step:.9g}, "
                f"alpha {r.alpha:.9g}{extra}, J_o {r.orientation:.6g}, relative DQL "
                f"{r.relative_dql:.6g}, evaluations {r.evaluations}, certified {r.certified}")
    else:
        rows = [{"slice": i, **{f: np.asarray(getattr(r, f)).ravel()[i].item() for f in fields}}
                for i in range(np.size(r.step))]
        text = format_table(rows, ("slice",) + fields)
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
    p.add_argument("--size", type=_int_at_least(2), default=1 << 16)
    p.add_argument("--seed", type=_NONNEGATIVE, default=0)
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


# --- train -------------------------------------------------------------------------------

def _add_train(sub):
    p = sub.add_parser(
        "train", help="train an MLP or LeNet-5 in float or with VecQ quantization-aware training",
        description="Train with float shadow weights and the straight-through estimator "
                    "(docs/theory.md §5); writes steps/epochs logs (.jsonl, .csv), checkpoint.npz "
                    "and weights.npz to --out.",
        epilog="examples:\n  vecq-ref train --out runs/digits-float\n"
               "  vecq-ref train --model mlp --data digits --bits 2 --out runs/m2\n"
               "  vecq-ref train --model lenet5 --data mnist5k --bits 4 --epochs 2 "
               "--out runs/l4\n"
               "  vecq-ref train --model lenet5 --data mnist5k --bits 4 --epochs 4 "
               "--out runs/l4 --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("mlp", "lenet5"), default=None,
                   help="default: mlp on 8×8 digits, lenet5 on MNIST (LeNet-5 needs ≥ 16×16)")
    p.add_argument("--data", choices=("digits", "mnist5k", "mnist"), default="digits")
    p.add_argument("--data-path", default=None, help="IDX folder or .npz for --data mnist")
    p.add_argument("--bits", type=_POSITIVE, default=None, help="weight bitwidth (default: float)")
    p.add_argument("--method", default="param",
                   help="param, paper, exact, grid, alternating or a baseline name (bwn, ...)")
    p.add_argument("--lattice", choices=("midrise", "midtread"), default="midrise")
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=_POSITIVE, default=None)
    p.add_argument("--ste", choices=("identity", "clipped"), default="identity")
    p.add_argument("--bias-bits", type=_POSITIVE, default=None, help="quantize biases too")
    p.add_argument("--epochs", type=_POSITIVE, default=10)
    p.add_argument("--batch-size", type=_POSITIVE, default=50)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--lr", type=_float_at_least(0, strict=True), default=0.01)
    p.add_argument("--momentum", type=_float_at_least(0), default=0.9)
    p.add_argument("--weight-decay", type=_float_at_least(0), default=1e-4)
    p.add_argument("--milestones", type=_MILESTONES, default=[],
                   help="epochs where lr is multiplied by --gamma, e.g. 15,25")
    p.add_argument("--gamma", type=_float_at_least(0, strict=True), default=0.1)
    p.add_argument("--hidden", type=_WIDTHS, default=[256], help="MLP widths, e.g. 256,128")
    p.add_argument("--batchnorm", action="store_true", help="MLP: BatchNorm after each dense")
    p.add_argument("--seed", type=_NONNEGATIVE, default=0)
    p.add_argument("--log-every", type=_POSITIVE, default=1)
    p.add_argument("--gap-every", type=_int_at_least(-1), default=0,
                   help="steps between param-vs-exact DQL gaps (0: epoch ends only, "
                        "-1: never)")
    p.add_argument("--checkpoint-every", type=_NONNEGATIVE, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--force", action="store_true", help="start over in a used --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args):
    from . import data
    from .nn import QuantSpec, build_model, train
    from .nn.qat import resolve_method

    if args.model is None:
        args.model = "mlp" if args.data == "digits" else "lenet5"
    _out_folder(args.out)
    # Checked even when --bits is not given (then unused): a typo is still a typo. The
    # message names `method`, which main() words as --method.
    resolve_method(args.method)
    try:
        ds = data.load(args.data, path=args.data_path, seed=args.seed)
        quant = None
        if args.bits is not None or args.bias_bits is not None:
            quant = QuantSpec(bits=args.bits, method=args.method, lattice=args.lattice,
                              axis=args.axis, group_size=args.group_size, ste=args.ste,
                              bias_bits=args.bias_bits)
        model = build_model(args.model, ds, seed=args.seed, hidden=args.hidden,
                            batchnorm=args.batchnorm)
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(str(exc)) from exc
    try:
        result = _run_training(args, model, ds, quant, train)
    except KeyboardInterrupt:
        print(f"vecq-ref train: interrupted; {_train_resume_hint(args.out)}", file=sys.stderr)
        return 130
    last = result.epochs[-1] if result.epochs else {}
    payload = {"out": args.out, "model": args.model, "data": args.data, "bits": args.bits,
               "epochs": len(result.epochs), "final": last}
    text = (f"{args.model} on {args.data}, {'float' if args.bits is None else f'{args.bits}-bit'}"
            f": test accuracy {last.get('test_acc', float('nan')):.4f} after "
            f"{len(result.epochs)} epochs -> {args.out}")
    emit(args, payload, text)
    return 0


def _train_resume_hint(out):
    """What an interrupted ``train`` left in ``out`` and how to go on, from what is there."""
    from pathlib import Path

    from .nn.train import CHECKPOINT

    out = Path(out)
    if (out / CHECKPOINT).is_file():
        return (f"the last checkpoint in {out} is complete: run the same command with "
                "--resume to continue from it")
    if (out / "config.json").is_file():
        return (f"no checkpoint was saved yet in {out}: run the same command with --resume "
                "to start it again from the beginning")
    return f"nothing was saved in {out}: run the same command again"


def _run_training(args, model, ds, quant, train):
    return train(model, ds, epochs=args.epochs, batch_size=args.batch_size,
                 optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                 weight_decay=args.weight_decay, milestones=args.milestones,
                 gamma=args.gamma, quant=quant, seed=args.seed, out=args.out,
                 resume=args.resume, force=args.force, quiet=args.quiet,
                 log_every=args.log_every,
                 gap_every=None if args.gap_every < 0 else args.gap_every,
                 checkpoint_every=args.checkpoint_every,
                 config_extra={"model": args.model, "hidden": list(args.hidden),
                               "batchnorm": args.batchnorm})


# --- compare -------------------------------------------------------------------------------

def _add_compare(sub):
    p = sub.add_parser(
        "compare", help="VecQ against the baselines (BWN, TWN, μL2Q, DoReFa, ...) and the "
                        "formats' rules (Q4_0, GPTQ, NF4, ...) on a tensor",
        description="Relative DQL, J_o, J_m, α and step of VecQ and every baseline on the "
                    "tensor in IN.npy, or on each array of IN.npz, grouped like for like by "
                    "the number of levels and ranked within each group.",
        epilog="examples:\n  vecq-ref compare w.npy --bits 1-4\n"
               "  vecq-ref compare model.npz --bits 2,4 --methods vecq_param,twn,absmax --json\n"
               "  vecq-ref compare w.npy --bits 4 --group-size 32 --weights h.npy\n"
               "  vecq-ref compare w.npy --bits 4 --group-size 32 --methods formats\n"
               "  vecq-ref compare w.npy --bits 4 --group-size 32 --codebook nf4",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a .npy file, or a .npz/.safetensors (one block per array)")
    p.add_argument("--bits", type=parse_bits, default=list(range(1, 9)),
                   help="bitwidths: 4, 2-8 or 2,4,8 (default 1-8)")
    p.add_argument("--methods", default=None,
                   help="comma-separated method names, 'formats' for every format rule at "
                        "--bits (with a level set: its rules) (default: VecQ and the "
                        "baselines, with --group-size and --weights the format rules too; "
                        "with a level set, VecQ's searches on it: with --zero-point float "
                        "the exact one)")
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=_POSITIVE, default=None,
                   help="per-group of this size (every method, groups along the last axis)")
    _add_level_set(p)
    p.add_argument("--weights", default=None, metavar="H.npy",
                   help="importance weights h ≥ 0 (.npy): one per element, or one per input "
                        "column (the last axis); losses become h-weighted")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args):
    from pathlib import Path

    from . import io
    from .compare import compare, format_records

    if Path(args.input).suffix.lower() != ".npy":  # .npz, .safetensors, shards
        arrays = {k: io.as_float(v) for k, v in io.load_npz(args.input).items()}
        if not arrays:
            raise UsageError(f"{args.input} holds no arrays")
        labels = {k: _label(args.input, k) for k in arrays}
    else:
        arrays = {args.input: io.load_array(args.input)}
        labels = {args.input: args.input}
    records, blocks = [], []
    for name, w in arrays.items():
        _check_weights(w, labels[name])
        h = _load_importance(args.weights, w.shape, labels[name])
        try:
            rows = compare(w, bits=args.bits, methods=args.methods, axis=args.axis,
                           group_size=args.group_size, weights=h, **_level_set_options(args))
        except (ValueError, TypeError) as exc:
            raise _input_error(exc, {"w": labels[name]}) from exc
        records += [{"array": name, **r} for r in rows]
        blocks.append(f"{name} {tuple(w.shape)}\n\n{format_records(rows)}")
    emit(args, records, "\n\n".join(blocks))
    return 0


# --- verify --------------------------------------------------------------------------------

def _add_verify(sub):
    p = sub.add_parser(
        "verify", help="check a quantized tensor (or named pairs) against VecQ",
        description="Is WQ on a lattice α·v, is α least-squares optimal, are the codes "
                    "nearest-level, how far is it\nfrom VecQ-param and the exact optimum, and "
                    "which known convention reproduces it. With one file,\nevery array NAME "
                    "that has a partner NAME.q is verified. With --tensor, ORIGINAL is a float\n"
                    "checkpoint and QUANTIZED a GGUF file (or another quantized checkpoint "
                    "vecq_ref.formats\nreads): the tensor NAME, in either file's naming, is "
                    "read from both, and its format's bits\nand groups come from the file. "
                    "Exit 1 when a verdict fails.",
        epilog="examples (after the quantize examples, which write q4.npz and q2.npz):\n"
               "  vecq-ref verify w.npy q4.npz --bits 4\n"
               "  vecq-ref verify w.npy q2.npz --bits 2 --axis 0 --json\n"
               "  vecq-ref verify model.safetensors model-Q4_0.gguf --tensor blk.0.attn_q.weight",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="W.npy, or a .npz/.safetensors of pairs NAME, NAME.q; with "
                                 "--tensor, the float checkpoint (ORIGINAL)")
    p.add_argument("quantized", nargs="?", default=None,
                   help="WQ.npy (with W.npy), or the .npz 'vecq-ref quantize' wrote (its "
                        "values are verified); with --tensor, the quantized checkpoint "
                        "(a .gguf file, ...)")
    p.add_argument("--tensor", default=None, metavar="NAME",
                   help="the tensor to verify, named as in either file "
                        "(blk.0.attn_q.weight or model.layers.0.self_attn.q_proj.weight)")
    p.add_argument("--bits", type=_POSITIVE, default=None,
                   help="required, except with --tensor (the quantized file says it) or "
                        "--format")
    p.add_argument("--format", default=None, metavar="FORMAT",
                   help="check WQ against this block format's rule and exact optimum "
                        "(q4_0, q8_0, q4_1, iq4_nl, nf4, gptq-asym, ...), not against VecQ")
    p.add_argument("--dtype", default=None, metavar="DTYPE",
                   help="block formats: the dtype the original weight is stored in when W "
                        "was widened (float16, bfloat16; AWQ and compressed-tensors compute "
                        "in it); default W's dtype")
    p.add_argument("--weights", default=None, metavar="H.npy",
                   help="block formats: importance weights h ≥ 0 (.npy, one per element or "
                        "one per input column), e.g. format_rules.imatrix_weights(w, imatrix, "
                        "'q4_0') saved with np.save; the format is identified from the values "
                        "unless --format names it")
    p.add_argument("--lattice", choices=("midrise", "midtread"), default=None,
                   help="default: recovered from the values")
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=_POSITIVE, default=None, help="per-group of this size")
    p.add_argument("--ulps", type=_NONNEGATIVE, default=None, help="reconstruction tolerance")
    p.add_argument("--alpha-rtol", type=_float_at_least(0), default=None)
    p.add_argument("--dql-rtol", type=_float_at_least(0), default=None)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_verify)


def _verify_pairs(path):
    """Yield (name, w, wq, labels) for every NAME / NAME.q pair, one pair in memory at a
    time; ``labels`` name the file and array each of ``w`` and ``wq`` came from."""
    import numpy as np

    from .io import as_float, open_tensors

    with open_tensors(path) as (keys, get):
        names = set(keys)
        pairs = [k for k in keys if not k.endswith(".q") and f"{k}.q" in names]
        orphans = [k for k in keys if k.endswith(".q") and k[:-2] not in names]
        if orphans:
            raise UsageError(f"{path}: {orphans[0]!r} has no partner {orphans[0][:-2]!r}")
        if not pairs:
            raise UsageError(f"{path} holds no pairs NAME / NAME.q (arrays: "
                             f"{', '.join(keys[:5]) or 'none'})")
        for k in pairs:  # bf16/fp8 as their exact float32 values
            labels = {"w": _label(path, k), "wq": _label(path, f"{k}.q")}
            w = _check_weights(as_float(np.asarray(get(k))), labels["w"], "w")
            wq = _check_weights(as_float(np.asarray(get(f"{k}.q"))), labels["wq"], "wq")
            yield k, w, wq, labels


def _verify_tensor(args, opts):
    """``verify ORIGINAL QUANTIZED --tensor NAME``: the pair read by ``formats.pair``, the
    block format's own diagnosis where ``check.blocks`` has it, else ``verify`` of the
    dequantized values with the format's bits and groups. ``(report, header lines, pair)``."""
    import numpy as np

    from .check.verify import verify
    from .formats import pair

    if args.quantized is None:
        raise UsageError("--tensor needs two files: ORIGINAL (float) and QUANTIZED")
    w, q, names = pair(args.input, args.quantized, args.tensor)
    labels = {"w": f"{args.input}[{names['original']!r}]",
              "wq": f"{args.quantized}[{names['quantized']!r}]"}
    name = f"{names['original']} = {names['quantized']}"
    header = [f"pair: {labels['w']} and {labels['wq']}"]
    if isinstance(q, np.ndarray):
        if args.bits is None and args.format is None:
            raise UsageError(f"{labels['wq']} is kept in float ({q.dtype}), not quantized; "
                             "give --bits to verify it as quantized values, or pick a "
                             "quantized tensor")
        wq, kw = q, {"bits": args.bits, "lattice": args.lattice, "axis": args.axis,
                     "group_size": args.group_size}
        h = _load_importance(args.weights, np.shape(w), labels["w"])
        if args.format is not None or h is not None:
            kw = {"bits": args.bits, "group_size": args.group_size, "format": args.format,
                  **_with_weights(h)}
    else:
        if args.bits is not None and args.bits != q.bits:
            raise UsageError(f"--bits {args.bits} contradicts {labels['wq']}, which is "
                             f"{q.format} ({q.bits} bits); leave --bits out")
        if args.format is not None and args.format.lower().split("-")[0] != q.format:
            raise UsageError(f"--format {args.format} contradicts {labels['wq']}, which is "
                             f"{q.format}; leave --format out (the file says it)")
        header[0] += f" ({q.format}, {q.bits} bits, groups of {q.group_size})"
        try:
            from .check.blocks import verify_format
        except ImportError:
            verify_format = None
        if verify_format is not None:
            dt = args.dtype if args.dtype is not None else names.get("original_dtype")
            h = _load_importance(args.weights, tuple(q.shape), labels["w"])
            try:
                rep = verify_format(w, q, dtype=dt, weights=h)
            except (ValueError, TypeError) as exc:
                raise _input_error(exc, labels) from exc
            # each note once: the report prints its own (the tensor's, carried by q) after
            # the verdict
            header += [f"note: {n}" for n in names["notes"] if n not in rep.notes]
            return rep, header, names
        wq, kw = q.dequantize(), {"bits": q.bits, "group_size": q.group_size}
    header += [f"note: {n}" for n in names["notes"]]
    try:
        report = verify(wq=wq, w=w, name=name, **kw, **opts)
    except (ValueError, TypeError) as exc:
        raise _input_error(exc, labels) from exc
    return report, header, names


def _wrap_lines(lines, width=100):
    """Report lines of at most ``width`` characters: a longer one goes on onto indented
    continuation lines, broken between words, never inside a path or a tensor name
    (:func:`vecq_ref._format.wrap_words`)."""
    from ._format import wrap_words

    out = []
    for line in lines:
        out += wrap_words(line, width)
    return out


def _cmd_verify(args):
    import numpy as np

    from .check.verify import verify

    opts = {k: v for k, v in (("ulps", args.ulps), ("alpha_rtol", args.alpha_rtol),
                              ("dql_rtol", args.dql_rtol)) if v is not None}
    if args.tensor is not None:
        report, header, names = _verify_tensor(args, opts)
        # A block format's verdict may be undecided (None: GPTQ's error feedback): nothing
        # that can be checked departs, so it is not a failure; the JSON keeps null.
        passed = None if report.passed is None else bool(report.passed)
        emit(args, {"passed": passed, "pair": names, "reports": [report.as_dict()]},
             _calls_in_options("\n".join(_wrap_lines(header) + [str(report)]), "verify"))
        if passed is False:
            raise CheckFailed(f"the verdict failed: {names['original']} = "
                              f"{names['quantized']}")
        return 0
    if args.bits is None and args.format is None:
        raise UsageError("--bits is required (only --tensor reads it from the quantized file; "
                         "--format knows its own)")
    if args.quantized is not None:
        w = _load_weights(args.input, "input", "w")
        wq, wq_label = _load_quantized(args.quantized)
        items = iter([(args.quantized, w, wq, {"w": args.input, "wq": wq_label})])
    else:
        items = _verify_pairs(args.input)
    reports = []
    for name, w, wq, labels in items:
        try:
            fmt = {} if args.format is None else {"format": args.format}
            if args.dtype is not None:
                fmt["dtype"] = args.dtype
            h = _load_importance(args.weights, np.shape(w), labels["w"])
            rep = verify(w, wq, bits=args.bits, lattice=args.lattice, axis=args.axis,
                         group_size=args.group_size, name=name, **fmt, **_with_weights(h),
                         **opts)
        except (ValueError, TypeError) as exc:
            raise _input_error(exc, labels) from exc
        reports.append((name, rep))
    # a block format's verdict may be undecided (None: GPTQ's error feedback): not a failure
    failed = [name for name, r in reports if r.passed is False]
    reports = [r for _, r in reports]
    emit(args, {"passed": not failed, "reports": [r.as_dict() for r in reports]},
         _calls_in_options("\n\n".join(str(r) for r in reports), "verify"))
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(reports)} verdicts failed: "
                          f"{', '.join(failed)}")
    return 0


# --- golden --------------------------------------------------------------------------------

def _add_golden(sub):
    p = sub.add_parser(
        "golden", help="write the versioned golden vectors (npz + JSON manifest)",
        description="Write golden.npz and manifest.json into --out: bits 1-8, both lattices, "
                    "methods param/exact/paper, per tensor and per channel, ties, tiny "
                    "vectors. Check a quantizer with vecq_ref.golden.check(DIR, fn).",
        epilog="example:\n  vecq-ref golden --out golden/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_golden)


def _cmd_golden(args):
    from .check.golden import generate

    manifest = generate(_out_folder(args.out), force=args.force)
    cases = manifest["cases"]
    payload = {"out": args.out, "schema_version": manifest["schema_version"],
               "library_version": manifest["library_version"], "cases": len(cases),
               "methods": manifest["methods"]}
    emit(args, payload, f"{len(cases)} golden cases ({', '.join(manifest['methods'])}) -> "
                        f"{args.out} (schema {manifest['schema_version']})")
    return 0


# --- report --------------------------------------------------------------------------------

def _add_report(sub):
    p = sub.add_parser(
        "report", help="relative DQL of param / exact / paper on every tensor of a model",
        description="One row per weight tensor and bitwidth: shape, σ, kurtosis, relative DQL "
                    "of VecQ-param, --method and the paper expression, the gap, the time; "
                    "totals per bitwidth. Tensors are read one at a time (memory-mapped); "
                    "bf16/fp16/fp8 are quantized as float32 (the dtype column keeps the "
                    "source); integer, 1-D, empty and non-finite tensors are listed as "
                    "skipped with the reason.",
        epilog="examples:\n  vecq-ref report model.safetensors --bits 2-8 --method exact\n"
               "  vecq-ref report checkpoint/model.safetensors.index.json --bits 4\n"
               "  vecq-ref report weights.npz --bits 4 --axis 0 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a .safetensors, .npz or .npy file, or a sharded "
                                 "checkpoint (its model.safetensors.index.json or folder)")
    p.add_argument("--bits", type=parse_bits, default=None,
                   help="bitwidths: 4, 2-8 or 2,4,8 (default 2-8; with --codebook, its bits)")
    p.add_argument("--method", default="exact",
                   choices=("exact", "grid", "alternating", "param", "paper"))
    _add_level_set(p)
    p.add_argument("--axis", type=int, default=None, help="per-channel along this axis")
    p.add_argument("--group-size", type=_POSITIVE, default=None,
                   help="per-group of this size along the last axis (tensors it does not "
                        "divide are skipped)")
    p.add_argument("--weights", default=None, metavar="H.npy",
                   help="importance weights h ≥ 0 (.npy) for every tensor: one per element, "
                        "or one per input column (the last axis); only --method is then "
                        "reported, h-weighted (tensors they do not fit are skipped)")
    p.add_argument("--all", action="store_true", help="include 1-D float tensors")
    p.add_argument("--plot", default=None, help="write a figure of the totals (.png/.pdf)")
    p.add_argument("--force", action="store_true", help="overwrite --plot if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args):
    from .check.report import model_report

    if args.plot:
        _out_file(args.plot, "--plot", (".png", ".pdf"))  # as figures and reproduce write
        from . import io

        io.check_target(args.plot, args.force)  # before the work, not after it
    h = _load_importance(args.weights, None, args.input)
    try:
        bits = args.bits or ([None] if args.codebook is not None else list(range(2, 9)))
        rep = model_report(args.input, bits=bits, method=args.method,
                           axis=args.axis, all_tensors=args.all,
                           group_size=args.group_size, **_level_set_options(args),
                           **_with_weights(h), progress=False if args.quiet else None)
    except ImportError as exc:
        raise UsageError(str(exc)) from exc
    if not rep.rows:
        why = "; ".join(f"{s['name']} ({s['why']})" for s in rep.skipped[:5])
        more = f"; and {len(rep.skipped) - 5} more" if len(rep.skipped) > 5 else ""
        which = ("its only tensor was" if len(rep.skipped) == 1
                 else f"all {len(rep.skipped)} tensors were")
        raise UsageError(f"{args.input}: nothing could be reported: {which} skipped: "
                         f"{why}{more}")
    if args.plot:
        import matplotlib

        from . import io

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5, 3.5), layout="constrained")  # room for the plot's note
        rep.plot(fig.add_subplot())
        with io.atomic_path(args.plot, force=args.force) as tmp:
            fig.savefig(tmp, format=args.plot.rsplit(".", 1)[-1].lower())
    emit(args, rep.as_dict(), str(rep))
    return 0


# --- audit ---------------------------------------------------------------------------------

def _add_audit(sub):
    p = sub.add_parser(
        "audit", help="audit a shipped quantized checkpoint against its float original",
        description="Per tensor of QUANTIZED (GGUF, GPTQ, AWQ, compressed-tensors, "
                    "bitsandbytes) matched to ORIGINAL: relative DQL, the exact optimum of "
                    "the same format and the gap, VecQ-param and VecQ-exact at the same bits "
                    "and group size, and a one-line diagnosis. Totals weighted by parameter "
                    "count; tensors left in float and unmatched ones listed with the reason.",
        epilog="examples:\n  vecq-ref audit model.safetensors model-q4_0.gguf\n"
               "  vecq-ref audit model.safetensors model-q4_0.gguf --imatrix imatrix.gguf "
               "--json audit.json --csv audit.csv --figure gap.png\n"
               "  vecq-ref audit model.safetensors model-q4_0.gguf --workers 4 "
               "--resume audit-progress.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("original", help="float checkpoint (.safetensors, shards, index, .npz)")
    p.add_argument("quantized", help="GGUF file or quantized safetensors checkpoint")
    p.add_argument("--imatrix", default=None,
                   help="llama.cpp importance matrix (GGUF or .dat) or .npz of vectors")
    p.add_argument("--json", default=None, help="write the result as JSON to this file")
    p.add_argument("--csv", default=None, help="write one line per tensor to this CSV file")
    p.add_argument("--figure", default=None, help="draw the per-layer gap (.png or .pdf)")
    p.add_argument("--resume", default=None,
                   help="JSON progress file: tensors already in it are skipped")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_int_at_least(1), default=None,
                       help="run on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", default=None,
                       help="address of a Dask scheduler (workers see the same paths)")
    p.add_argument("--exact-offset-groups", type=_int_at_least(0), default=None,
                   metavar="N", help="real-offset formats (Q4_1, Q5_1): the certified exact "
                   "optimum for tensors of at most N groups (default 1024, about 1.5 ms a "
                   "group), the best found above")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_audit)


def _cmd_audit(args):
    from . import io
    from .check.audit import audit

    for opt, suffixes in (("json", (".json",)), ("csv", (".csv",)),
                          ("figure", (".png", ".pdf"))):
        path = getattr(args, opt)
        if path is not None:
            _out_file(path, f"--{opt}", suffixes)
            io.check_target(path, args.force)  # before the work, not after it
    try:
        res = audit(args.original, args.quantized, imatrix=args.imatrix,
                    workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                    progress=False if args.quiet else None,
                    **({} if args.exact_offset_groups is None else
                       {"exact_offset_groups": args.exact_offset_groups}))
    except ImportError as exc:
        raise UsageError(str(exc)) from exc
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.5), layout="constrained")
        res.plot(fig.add_subplot())
        with io.atomic_path(args.figure, force=args.force) as tmp:
            fig.savefig(tmp, format=args.figure.rsplit(".", 1)[-1].lower())
    if args.json:
        res.to_json(args.json, force=args.force)
    if args.csv:
        res.to_csv(args.csv, force=args.force)
    print(res.table())
    return 0


# --- figures -------------------------------------------------------------------------------

def _parse_names(text):
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _add_figures(sub):
    p = sub.add_parser(
        "figures", help="draw the paper's figures (PNG and PDF) with vecq_ref.plotting",
        description="Draw the figures into --out. The theory figures (fig1_toy, "
                    "fig2_orientation) need no data; the others are drawn from the stage "
                    "results of a 'vecq-ref reproduce' folder given with --results.",
        epilog="examples:\n  vecq-ref figures --out figs\n"
               "  vecq-ref figures --results results --out figs --force\n"
               "  vecq-ref figures --out figs-pdf --only fig2_orientation --format pdf --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--results", default=None, help="a 'vecq-ref reproduce' output folder")
    p.add_argument("--only", type=_parse_names, default=None,
                   help="comma-separated figure names, e.g. fig1_toy,fig3_lambda")
    p.add_argument("--format", type=_parse_names, default=["png", "pdf"],
                   help="png, pdf or png,pdf (default both)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_figures)


def _cmd_figures(args):
    from pathlib import Path

    from . import reproduce as R

    bad = [f for f in args.format if f not in ("png", "pdf")]
    if bad or not args.format:
        raise UsageError(f"--format must be png, pdf or png,pdf; got {','.join(args.format)!r}")
    unknown = [n for n in args.only or [] if n not in R.FIGURES]
    if unknown:
        raise UsageError(f"--only names unknown figures {unknown}; known: {list(R.FIGURES)}")
    results, folder = {}, None
    if args.results is not None:
        folder = Path(args.results)
        if not (folder / "stages").is_dir():
            raise UsageError(f"--results {folder} is not a 'vecq-ref reproduce' folder "
                             "(no stages/ inside)")
        results = R.load_results(folder)
    written, skipped = R.draw_figures(results, _out_folder(args.out), folder=folder, only=args.only,
                                      formats=tuple(args.format), force=args.force)
    if args.only and skipped:
        stem, why = next(iter(skipped.items()))
        raise UsageError(f"{stem} cannot be drawn: {why}")
    payload = {"out": args.out, "figures": {k: [str(p) for p in v] for k, v in written.items()},
               "skipped": skipped}
    lines = [f"{k}: {', '.join(str(p) for p in v)}" for k, v in written.items()]
    lines += [f"{k}: skipped ({why})" for k, why in skipped.items()]
    emit(args, payload, "\n".join(lines))
    return 0


# --- reproduce -----------------------------------------------------------------------------

def _add_reproduce(sub):
    p = sub.add_parser(
        "reproduce", help="train, compare, sweep and draw everything; write report.md",
        description="On embedded data only: train the models it needs (float and VecQ at "
                    "each bitwidth), run the λ tables, the method comparison and the bits "
                    "sweep, draw every figure, and write report.md and results.json to --out. "
                    "Default run ≤ 15 minutes on 2 cores, --quick ≤ 2 minutes. Each stage "
                    "writes stages/<name>.json when done; running the same command again "
                    "resumes an interrupted run, and on a finished one redoes nothing.",
        epilog="examples:\n  vecq-ref reproduce --out results\n"
               "  vecq-ref reproduce --quick --out /tmp/r --json\n"
               "  vecq-ref reproduce --out results --force --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--quick", action="store_true", help="the small run (about a minute)")
    p.add_argument("--seed", type=_NONNEGATIVE, default=0)
    p.add_argument("--format", type=_parse_names, default=["png", "pdf"],
                   help="figure formats: png, pdf or png,pdf (default both)")
    p.add_argument("--force", action="store_true",
                   help="redo every stage and overwrite a finished folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args):
    from .reproduce import reproduce

    bad = [f for f in args.format if f not in ("png", "pdf")]
    if bad or not args.format:
        raise UsageError(f"--format must be png, pdf or png,pdf; got {','.join(args.format)!r}")
    try:
        res = reproduce(_out_folder(args.out), quick=args.quick, seed=args.seed, force=args.force,
                        quiet=args.quiet, formats=tuple(args.format))
    except KeyboardInterrupt:
        print(f"vecq-ref reproduce: interrupted; run the same command again to resume "
              f"(finished stages are kept in {args.out}/stages)", file=sys.stderr)
        return 130
    if res["already_finished"]:  # the same command again: nothing to do, and say so
        emit(args, res, f"{args.out} already holds this finished reproduction; nothing "
                        f"redone (report: {res['report']}; --force redoes every stage)")
        return 0
    rows = [{"run": k, "test_acc": v} for k, v in res["summary"].items()]
    text = "\n".join([format_table(rows, ["run", "test_acc"], "{:.4f}"), "",
                      f"figures: {len(res['figures'])} drawn, {len(res['skipped'])} skipped",
                      f"report: {res['report']}", f"results: {res['results']}"])
    emit(args, res, text)
    return 0


# --- entry point ---------------------------------------------------------------------------

_SUBCOMMANDS = [_add_table, _add_quantize, _add_search, _add_demo, _add_train, _add_compare,
                _add_verify, _add_golden, _add_report, _add_audit,
                _add_figures, _add_reproduce]


def build_parser():
    parser = _Parser(
        prog="vecq-ref", description="Reference implementation of VecQ weight quantization.",
        epilog="Run 'vecq-ref COMMAND --help' for each command's options and examples.")
    parser.add_argument("--version", action="version", version=f"vecq-ref {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit status.

    0 ok, 1 a check failed, 2 a usage or input error (one line on stderr naming the file or
    option and the cause; ``--debug`` shows the traceback instead), 130 interrupted (Ctrl-C:
    one line; files are written atomically, so only complete files are left), 141 stdout was
    closed by its reader (silently).
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # the subcommand's own name and help, not the top level's
            sub = next(a for a in parser._actions if a.dest == "command")
            where = sub.choices.get(args.command, parser)
            where.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    prefix = f"vecq-ref {args.command}"
    from ._first_use import watch

    created = _missing_folders(getattr(args, "out", None))
    status = 2
    try:
        # One line on stderr when the command starts compiling kernels (a cold cache).
        with watch(args.command, quiet=getattr(args, "quiet", False)):
            status = int(args.func(args) or 0)
        return status
    except CheckFailed as exc:
        status = 1
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (| head): stop quietly, like Unix tools
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prefix}: interrupted; files already written are complete, partial ones were "
              "removed", file=sys.stderr)
        return 130
    except (UsageError, OSError, ValueError, TypeError, ImportError) as exc:
        if debug:
            raise
        text = _in_options(_one_line(exc), parser, args.command)
        print(f"{prefix}: error: {_name_the_option(exc, args, text)}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        if debug:
            raise
        text = _in_options(_one_line(exc), parser, args.command)
        print(f"{prefix}: error: out of memory ({text or 'MemoryError'})", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, and the way to see more
        if debug:
            raise
        print(f"{prefix}: internal error: {type(exc).__name__}: "
              f"{_in_options(_one_line(exc), parser, args.command)} (rerun with --debug for "
              "the traceback and please report it)", file=sys.stderr)
        return 2
    finally:
        if status != 0:
            _remove_empty(created)


#: The options that name what a command writes.
_OUTPUTS = ("out", "plot")


def _name_the_option(exc, args, text):
    """``text`` with the option in front when ``exc`` is an OSError about what that option
    names (``--out /sys/q.npz: Permission denied``), or about a file written inside it."""
    import os

    filename = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    if not filename or text.startswith("--"):
        return text
    for dest in _OUTPUTS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        option = f"--{dest}"
        target, value = os.path.abspath(filename), os.path.abspath(value)
        if target == value:
            return f"{option} {text}"
        if target.startswith(value.rstrip(os.sep) + os.sep):
            return f"{option} {getattr(args, dest)}: {text}"
    return text


def _missing_folders(out):
    """``out`` and its ancestors that do not exist yet, deepest first (None: no --out)."""
    from pathlib import Path

    if out is None:
        return []
    p, missing = Path(out), []
    for q in (p, *p.parents):
        if q.exists() or q.is_symlink():
            break
        missing.append(q)
    return missing


def _remove_empty(folders):
    """A command that failed leaves no folder it created, as long as nothing is in it."""
    import os

    for q in folders:  # deepest first; a folder with files in it stays (resumable runs)
        try:
            if q.is_dir() and not q.is_symlink():
                os.rmdir(q)
        except OSError:
            break


def _silence_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


#: Library arguments a command's option spells differently: ``{command: {argument: option}}``
#: (``train --data-path`` is ``data.load(path=...)``).
_ALIASES = {"train": {"path": "--data-path"}}


def _options(parser, command):
    """``{argument name: "--option"}`` for the options of ``command``."""
    sub = next(a for a in parser._actions if a.dest == "command").choices.get(command)
    names = {}
    for action in getattr(sub, "_actions", ()):
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest != "help":
            names[action.dest] = longs[0]
    return {**names, **_ALIASES.get(command, {})}


#: Remedies the library gives in Python (``pass `w.astype(np.float32)```), in what a command
#: line user does instead: the file is what they can change (the codes and α do not depend on
#: the float width the weights are stored in, since float16 is computed in float32).
_REMEDIES = [
    (r"pass `\w+\.astype\(np\.(float\d+)\)` to get them in \w+",
     r"save the weights as \1 and quantize that file to get them in \1 (the codes and α are "
     "the same)"),
    (r"convert first, e\.g\. `\w+\.astype\(np\.float32\)`", "save them as float32 first"),
    (r"the name of a function in vecq_ref\.baselines",
     "a baseline (bwn, twn, ul2q, dorefa, absmax, aciq, vecq_normalpha, lloyd_max)"),
    (r"scale `\w+` down by a power of two \(e\.g\. np\.ldexp\(\w+, -8\)\)",
     "save the weights scaled down by a power of two (e.g. 2^-8)"),
    (r" \(or None\)", " (or left out)"),
]


def _calls_in_options(text, command):
    """A report's hints (pass `axis=0`) as the options of ``command`` (--axis 0); the rest
    of the report (its tolerance list ``[ulps=2, ...]``) as the library wrote it."""
    import re

    options = _options(build_parser(), command)

    def option(m):
        name, value = m.group(1), m.group(2).strip(chr(39) + chr(34))
        if name not in options:
            return m.group(0)
        return options[name] if value == "True" else f"{options[name]} {value}"

    return re.sub(r"`([a-z_][a-z0-9_]*)=([^`\s]+)`", option, text)


def _positionals(parser, command):
    """The names of the positional arguments of ``command`` (``input``, ``quantized``)."""
    sub = next(a for a in parser._actions if a.dest == "command").choices.get(command)
    return {a.dest for a in getattr(sub, "_actions", ()) if not a.option_strings}


def _in_options(text, parser, command):
    """A library message in the words of the command line.

    The library names its parameters (```group_size```, ``force=True``, ``must be None``,
    ``['lr']``); the command line has options: ``--group-size``, ``--force``, "must be left
    out", ``[--lr]``. Only names that are options of ``command`` are rewritten; the rest
    (``w``, the file labels, settings no option sets) stay as they are.
    """
    import re

    options = _options(parser, command)
    for pattern, words in _REMEDIES:
        text = re.sub(pattern, words, text)
    # A file a reader names by its own parameter ("`path` file x.gguf"): the path alone.
    text = re.sub(r"`path` file ", "", text)
    # A file named by its positional argument ("`input` file x.npy"): the word the usage shows.
    text = re.sub(r"`([a-z_][a-z0-9_]*)` file\b", lambda m: (
        f"{m.group(1)} file" if m.group(1) in _positionals(parser, command) else m.group(0)),
        text)
    # A call the user is told to make (pass `axis=0`): the option, without the backticks.
    text = re.sub(r"`([a-z_][a-z0-9_]*)=([^`\s]+)`", lambda m: (
        f"{m.group(1)}={m.group(2)}" if m.group(1) in options else m.group(0)), text)
    # Choices as a Python tuple ('param', 'paper'): the words, as argparse shows choices.
    text = re.sub(r"\(('[^'()]*'(?:, '[^'()]*')*),?\)",
                  lambda m: "{" + ", ".join(re.findall(r"'([^']*)'", m.group(1))) + "}", text)

    def keyword(m):  # name=value, as a call would spell it
        option = options.get(m.group(1))
        if option is None:
            return m.group(0)
        value = m.group(2)
        if value == "True":
            return option
        if value in ("False", "None"):
            return f"no {option}"
        return f"{option} {value.strip(chr(39) + chr(34))}"

    text = re.sub(r"(?<![\w-])([a-z_][a-z0-9_]*)=(True|False|None|'[^']*'|\"[^\"]*\"|[\w.+-]+)",
                  keyword, text)
    text = re.sub(r"`([a-z_][a-z0-9_]*)`", lambda m: options.get(m.group(1), m.group(0)), text)
    # Lists of names (settings that differ): the options among them.
    text = re.sub(r"\[[^\[\]]*\]", lambda m: re.sub(
        r"'([a-z_][a-z0-9_]*)'", lambda n: options.get(n.group(1), n.group(0)), m.group(0)),
        text)
    # A flag that must not be given (`signed_scale` must be False ...; got True).
    text = re.sub(r"(--[a-z][a-z0-9-]*) must be False\b([^;]*); got True\.",
                  r"\1 must be left out\2.", text)
    text = re.sub(r"(--[a-z][a-z0-9-]*) must be None\b", r"\1 must be left out", text)
    text = re.sub(r"(--[a-z][a-z0-9-]*) is True\b", r"\1 is given", text)
    return re.sub(r"(--[a-z][a-z0-9-]*) is False\b", r"\1 is not given", text)


def _one_line(exc):
    """The exception's message on one line (OSError: 'strerror: filename')."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename and not isinstance(
            exc, (FileExistsError,)) and str(exc).startswith("["):
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
