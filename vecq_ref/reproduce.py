"""``vecq-ref reproduce``: train, measure and draw everything of the paper on embedded data.

:func:`reproduce` runs a fixed list of *stages* into an output folder:

==============  ===========================================================================
stage           result
==============  ===========================================================================
tables          λ_k from first principles beside the published tables (docs/theory.md §4.1)
toy             the 2-D toy vector of paper Fig. 2 (L2-iterative vs vector loss)
train-*         an MLP on ``digits`` (and, in the default run, a small LeNet-5 on
                ``mnist5k``) in float and with VecQ quantization-aware training at each
                bitwidth; the logs, checkpoints and weights stay in ``runs/<name>/``
lambda          exact-search and grid-search λ = step/σ of every trained float layer, by bits
compare         :func:`vecq_ref.compare` (every method) on the trained float layers
ptq             the bits sweep: test accuracy of the float models quantized after training
figures         ``figures/fig1_toy`` … ``fig7_accuracy_bits`` (PNG and PDF)
report          ``report.md`` (figures embedded, tables with numbers) and ``results.json``
==============  ===========================================================================

Each stage writes ``stages/<name>.json`` atomically when it finishes and is skipped when that
file and all the stage's outputs (:func:`stage_outputs`) exist and are whole
(:func:`vecq_ref.io.is_whole`), so an interrupted run resumes where it stopped (training itself
resumes from its last epoch checkpoint), and a stage or figure whose files are missing or cut
short is redone without ``force``. ``reproduce.json`` pins the settings of the folder: resuming with
other settings is refused. Running again on a finished folder with the same settings (every
stage, figure, ``report.md`` and ``results.json`` whole) redoes nothing, writes nothing and
returns its results with ``already_finished`` set; ``force=True`` recomputes every stage and
overwrites the files. Nothing written depends on the clock: the same settings give the same
files (timings go to stderr only).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import io, names

#: The figures, by file stem, with the stages whose results each one needs.
FIGURES = {
    "fig1_toy": ("toy",),
    "fig2_orientation": (),
    "fig3_lambda": ("lambda",),
    "fig4_dql_bits": ("compare",),
    "fig5_training": ("train",),
    "fig6_codes": ("train",),
    "fig7_accuracy_bits": ("train",),
}


@dataclass(frozen=True)
class Settings:
    """What :func:`reproduce` runs. ``QUICK`` and ``DEFAULT`` are the two presets."""

    name: str = "default"
    seed: int = 0
    mlp_hidden: tuple = (128,)
    mlp_epochs: int = 12
    mlp_lr: float = 0.05
    mlp_milestones: tuple = (8,)
    bits: tuple = (1, 2, 3, 4, 5, 6, 7, 8)
    lenet: bool = True
    lenet_widths: tuple = (6, 16, 120)
    lenet_epochs: int = 4
    lenet_lr: float = 0.05
    lenet_bits: tuple = (1, 2, 4)
    batch_size: int = 50
    sweep_bits: tuple = (2, 3, 4, 5, 6, 7, 8)
    compare_bits: tuple = (1, 2, 3, 4, 5, 6, 7, 8)
    compare_max_size: int = 1 << 15
    ptq_bits: tuple = (1, 2, 3, 4, 5, 6, 7, 8)
    hist_bits: int = 2
    formats: tuple = ("png", "pdf")
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        return json.loads(json.dumps(asdict(self)))


DEFAULT = Settings()
QUICK = Settings(name="quick", mlp_hidden=(64,), mlp_epochs=3, mlp_milestones=(),
                 bits=(1, 2, 4), lenet=False, compare_bits=(1, 2, 3, 4),
                 compare_max_size=4096, ptq_bits=(1, 2, 3, 4, 6, 8))


def settings(quick=False, seed=0, formats=("png", "pdf")):
    """The preset for ``--quick`` or the default run, with a seed and the figure formats.

    Examples
    --------
    >>> s = settings(quick=True, seed=3)
    >>> s.name, s.seed, s.bits
    ('quick', 3, (1, 2, 4))
    """
    base = QUICK if quick else DEFAULT
    return replace(base, seed=int(seed), formats=tuple(formats))


# --- small helpers ---------------------------------------------------------------------------

def _dump(obj):
    return json.dumps(obj, indent=1, sort_keys=True, default=_plain, allow_nan=False) + "\n"


def _plain(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _finite(obj):
    """Replace NaN/Inf floats by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class _Progress:
    def __init__(self, total, quiet):
        self.total, self.quiet, self.i = total, quiet, 0
        self.t0 = time.perf_counter()

    def say(self, text):
        if not self.quiet:
            print(f"[reproduce {time.perf_counter() - self.t0:6.1f}s] {text}", file=sys.stderr,
                  flush=True)


def _run_names(s):
    """``[(run name, model, bits)]``: the training runs of the settings."""
    runs = [("mlp-float", "mlp", None)] + [(f"mlp-{k}bit", "mlp", k) for k in s.bits]
    if s.lenet:
        runs += [("lenet5-float", "lenet5", None)]
        runs += [(f"lenet5-{k}bit", "lenet5", k) for k in s.lenet_bits]
    return runs


_DATASETS = {"mlp": "digits", "lenet5": "mnist5k"}


def _dataset(model, seed, cache):
    name = _DATASETS[model]
    if name not in cache:
        from . import data

        cache[name] = data.load(name, seed=seed)
    return cache[name]


def _build(model, ds, s):
    from .nn import build_model

    if model == "mlp":
        return build_model("mlp", ds, seed=s.seed, hidden=s.mlp_hidden)
    return build_model("lenet5", ds, seed=s.seed, widths=s.lenet_widths)


def _float_state(out, model):
    """The float run's trained weights, ``{"<layer>.<param>": array}``."""
    return io.load_npz(Path(out) / "runs" / f"{model}-float" / "weights.npz")


def _weight_layers(state):
    """``[(layer, weight array)]`` of the trained weight tensors (Dense / Conv2D kernels)."""
    return [(k[: -len(".weight")], v) for k, v in state.items()
            if k.endswith(".weight") and v.ndim >= 2]


# --- stages ----------------------------------------------------------------------------------

def _stage_tables(s, out, ctx):
    from . import tables

    rows = tables.table(range(1, 9))
    for r in rows:
        k = r["bits"]
        r["paper"] = tables.paper_lambda(k)
        r["ul2q_printed"] = tables.UL2Q_PRINTED[k - 1]
        r["ul2q_code"] = tables.UL2Q_CODE[k - 1]
    ternary = tables.table([2], lattice="midtread")[0]
    diffs = {name: [{"bits": k, "published": p, "difference": d} for k, p, d in rows_]
             for name, rows_ in tables.published_differences().items()}
    return {"midrise": rows, "ternary": ternary, "published_differences": diffs}


def _stage_toy(s, out, ctx):
    from .plotting import toy_example

    t = toy_example()
    return {"w": t["w"], "bits": t["bits"], "lattice": t["lattice"],
            "l2": t["l2"], "vector": t["vector"]}


def _train_stage(name, model, bits):
    def run(s, out, ctx):
        from .nn import QuantSpec, train

        ds = _dataset(model, s.seed, ctx["data"])
        net = _build(model, ds, s)
        folder = Path(out) / "runs" / name
        # A run cut short resumes from its last epoch checkpoint; anything else starts over
        # (the stage file is absent, so nothing in the folder is a finished result), and so
        # does a finished run whose files are missing or incomplete (ctx["restart"]).
        resume = (io.is_whole(folder / "checkpoint.npz") and not ctx["force"]
                  and not ctx.get("restart"))
        if model == "mlp":
            epochs, lr, milestones = s.mlp_epochs, s.mlp_lr, list(s.mlp_milestones)
        else:
            epochs, lr, milestones = s.lenet_epochs, s.lenet_lr, []
        result = train(net, ds, epochs=epochs, batch_size=s.batch_size, optimizer="sgd", lr=lr,
                       momentum=0.9, weight_decay=1e-4, milestones=milestones,
                       quant=None if bits is None else QuantSpec(bits=bits), seed=s.seed,
                       out=folder, resume=resume, force=not resume, quiet=ctx["quiet"],
                       log_every=10 ** 9, config_extra={"model": model})
        if not result.finished:  # pragma: no cover - train only stops early on max_steps
            raise RuntimeError(f"training run {name} did not finish")
        return {"name": name, "model": model, "data": ds.name, "bits": bits,
                "epochs": result.epochs, "test_acc": result.test_accuracy,
                "num_parameters": result.config.get("num_parameters"),
                "run": f"runs/{name}"}
    return run


def _say(ctx, text):
    """Progress inside a long stage (the per-stage lines come from ``reproduce``)."""
    if not ctx.get("quiet", True) and "say" in ctx:
        ctx["say"](text)


def _stage_lambda(s, out, ctx):
    from .search import search_step
    from .tables import optimal_step

    records = []
    for model in _models(s):
        for layer, w in _weight_layers(_float_state(out, model)):
            _say(ctx, f"  lambda: {model}/{layer} ({w.size} weights)")
            sigma = float(np.std(w, dtype=np.float64))  # population σ, as in quantize
            for k in s.sweep_bits:
                ex = search_step(w, k, method="exact")
                gr = search_step(w, k, method="grid")
                pa = search_step(w, k, method="param")
                records.append({
                    "model": model, "layer": f"{model}/{layer}", "size": int(w.size),
                    "bits": int(k), "sigma": sigma, "lam_theory": optimal_step(k),
                    "lam_exact": ex.step / sigma, "lam_grid": gr.step / sigma,
                    "lam_alpha_exact": ex.alpha / sigma,
                    "rdql_param": pa.relative_dql, "rdql_grid": gr.relative_dql,
                    "rdql_exact": ex.relative_dql, "certified": bool(ex.certified)})
    return {"records": records}


def _stage_compare(s, out, ctx):
    from .compare import compare

    blocks = []
    for model in _models(s):
        for layer, w in _weight_layers(_float_state(out, model)):
            if w.size > s.compare_max_size:
                continue
            _say(ctx, f"  compare: {model}/{layer} ({w.size} weights)")
            rows = compare(w, bits=s.compare_bits)
            blocks.append({"model": model, "layer": f"{model}/{layer}", "size": int(w.size),
                           "records": _finite(rows)})
    return {"layers": blocks}


def _stage_ptq(s, out, ctx):
    from .nn import QuantSpec, attach, evaluate

    result = {}
    for model in _models(s):
        ds = _dataset(model, s.seed, ctx["data"])
        net = _build(model, ds, s)
        net.load_state_dict(_float_state(out, model))
        acc = {"float": evaluate(net, ds.x_test, ds.y_test)[1]}
        for k in s.ptq_bits:
            attach(net, QuantSpec(bits=k))
            acc[str(k)] = evaluate(net, ds.x_test, ds.y_test)[1]
        attach(net, None)
        result[model] = acc
    return result


def _models(s):
    return ["mlp", "lenet5"] if s.lenet else ["mlp"]


def stage_outputs(name, out):
    """The files besides ``stages/<name>.json`` that stage ``name`` leaves in ``out``."""
    if name.startswith("train-"):
        run = Path(out) / "runs" / name[len("train-"):]
        return [run / "weights.npz", run / "checkpoint.npz", run / "config.json"]
    return []


def stage_done(name, out):
    """A stage is done when its JSON and every output exist and are whole (not cut short)."""
    files = [Path(out) / "stages" / f"{name}.json", *stage_outputs(name, out)]
    return all(io.is_whole(p) for p in files)


def stages(s):
    """``[(stage name, function)]`` in running order for the settings ``s``."""
    out = [("tables", _stage_tables), ("toy", _stage_toy)]
    out += [(f"train-{n}", _train_stage(n, m, k)) for n, m, k in _run_names(s)]
    out += [("lambda", _stage_lambda), ("compare", _stage_compare), ("ptq", _stage_ptq)]
    return out


# --- figures ---------------------------------------------------------------------------------

def load_results(folder):
    """Every finished stage result of a reproduce folder: ``{stage name: dict}``."""
    folder = Path(folder)
    out = {}
    for p in sorted((folder / "stages").glob("*.json")):
        with open(p, encoding="utf-8") as fh:
            out[p.stem] = json.load(fh)
    return out


def _train_results(results):
    """``[(stage name, result)]`` of the training stages: mlp then lenet5, float first."""
    found = [(n, r) for n, r in results.items() if n.startswith("train-")]
    order = {"mlp": 0, "lenet5": 1}
    return sorted(found, key=lambda nr: (order.get(nr[1]["model"], 9), nr[1]["bits"] or 0))


def _training_runs(results, model):
    runs = {}
    for name, r in results.items():
        if name.startswith(f"train-{model}-"):
            label = (names.series("float") if r["bits"] is None
                     else names.series("quantized", bits=r["bits"]))
            runs[(r["bits"] or 0, label)] = r["epochs"]
    return {label: eps for (_, label), eps in sorted(runs.items())}


def _fig_toy(results):
    from .plotting import figure_toy, toy_example

    t = results.get("toy")
    return figure_toy(toy_example(t["w"], t["bits"], t["lattice"]) if t else toy_example())


def _fig_orientation(results):
    from .plotting import figure_of, plot_orientation_curves

    return figure_of(plot_orientation_curves())


def _fig_lambda(results):
    from .plotting import figure_of, plot_lambda_comparison

    return figure_of(plot_lambda_comparison(results["lambda"]["records"]))


def _fig_dql(results):
    from .plotting import figure_of, plot_dql_vs_bits_panels

    blocks = results["compare"]["layers"]
    if not blocks:
        raise KeyError("compare")
    block = max(blocks, key=lambda b: b["size"])
    from .compare import METHODS

    seen = {r["method"] for r in block["records"]}
    art = plot_dql_vs_bits_panels(block["records"], methods=[m for m in METHODS if m in seen])
    fig = figure_of(art)
    fig.suptitle(f"Relative DQL vs bits: {names.layer_name(block['layer'])} "
                 f"({block['size']} weights)")
    return fig


def _fig_training(results):
    from matplotlib.figure import Figure

    from .plotting import legend_right, plot_training_curves

    models = [m for m in ("mlp", "lenet5") if _training_runs(results, m)]
    if not models:
        raise KeyError("train")
    fig = Figure(figsize=(7.2, 3.0 * len(models)), layout="constrained")
    axes = fig.subplots(len(models), 2, squeeze=False)
    # A bitwidth has one style in every row and every run, whichever bitwidths a model
    # trained (LeNet-5's 4-bit run is not drawn in the style of the MLP's 3-bit one): style
    # number k - 1 for k bits. The one legend lists the runs of every row.
    styles = {names.series("quantized", bits=k): k - 1 for k in range(1, 17)}
    for row, m in zip(axes, models, strict=True):
        runs = _training_runs(results, m)
        plot_training_curves(runs, "loss", row[0], legend=False, styles=styles)
        plot_training_curves(runs, "test_acc", row[1], legend=False, styles=styles)
        row[0].set_title(f"{_model_on(m)}: training loss", fontsize="medium")
        row[1].set_title(f"{_model_on(m)}: test accuracy", fontsize="medium")
    legend_right(fig, *(ax for row in axes for ax in row),
                 order=[names.series("float"), *styles])
    return fig


def _model_on(model):
    """"LeNet-5 on MNIST (5k subset)": a model and its dataset as a reader names them."""
    return f"{names.model_name(model)} on {names.dataset_name(_DATASETS[model])}"


def _fig_codes(results, folder):
    from matplotlib.figure import Figure

    from .plotting import plot_code_histogram, plot_layer_dql

    quant = sorted((r for n, r in results.items() if n.startswith("train-mlp-")
                    and r["bits"] is not None), key=lambda r: r["bits"])
    if not quant:
        raise KeyError("train")
    run = next((r for r in quant if r["bits"] == 2), quant[0])
    weights = io.load_npz(Path(folder) / run["run"] / "weights.npz")
    layers = [k[: -len(".codes")] for k in weights if k.endswith(".codes")]
    fig = Figure(figsize=(7.2, 5.8), layout="constrained")
    grid = fig.add_gridspec(2, max(len(layers), 1))
    for i, layer in enumerate(layers):
        plot_code_histogram(weights[f"{layer}.weight"], weights[f"{layer}.codes"],
                            weights[f"{layer}.alpha"], run["bits"], layer=layer,
                            ax=fig.add_subplot(grid[0, i]), legend=i == len(layers) - 1)
    ax = fig.add_subplot(grid[1, :])
    plot_layer_dql(run["epochs"], label=names.series("quantized", bits=run["bits"]), ax=ax)
    return fig


def _fig_accuracy(results):
    from matplotlib.figure import Figure

    from .plotting import plot_accuracy_vs_bits

    panels = []
    for m in ("mlp", "lenet5"):
        runs = {r["bits"]: r["test_acc"] for n, r in results.items()
                if n.startswith(f"train-{m}-")}
        flt = runs.pop(None, None)
        series = {names.series("qat"): runs} if runs else {}
        ptq = (results.get("ptq") or {}).get(m)
        if ptq:
            series[names.series("ptq")] = {int(k): v for k, v in ptq.items() if k != "float"}
            flt = ptq.get("float", flt) if flt is None else flt
        if series:
            panels.append((m, series, flt))
    if not panels:
        raise KeyError("train")
    fig = Figure(figsize=(5.0 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (m, series, flt) in zip(axes, panels, strict=True):
        plot_accuracy_vs_bits(series, float_accuracy=flt, ax=ax)
        ax.set_title(_model_on(m))
    fig.suptitle("Test accuracy vs weight bits")
    return fig


_DRAW = {"fig1_toy": _fig_toy, "fig2_orientation": _fig_orientation,
         "fig3_lambda": _fig_lambda, "fig4_dql_bits": _fig_dql,
         "fig5_training": _fig_training, "fig6_codes": _fig_codes,
         "fig7_accuracy_bits": _fig_accuracy}


def draw_figures(results, out, folder=None, only=None, formats=("png", "pdf"), force=False,
                 skip_existing=False):
    """Draw every figure whose data is in ``results`` into ``out``.

    Parameters
    ----------
    results : dict
        Stage results (:func:`load_results`); missing stages skip the figures that need them.
    out : folder for the files (created).
    folder : reproduce folder holding ``runs/`` (for the code histograms); default ``out/..``.
    only : list of figure stems, optional
    skip_existing : bool
        Keep figures whose files all exist and are whole; redraw the others (resuming).

    Returns
    -------
    (written, skipped): ``{stem: [paths]}`` and ``{stem: reason}``.
    """
    from .plotting import save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(folder) if folder is not None else out.parent
    written, skipped = {}, {}
    for stem in only or FIGURES:
        if stem not in FIGURES:
            raise ValueError(f"`only` must name figures among {list(FIGURES)}; got {stem!r}.")
    if not force and not skip_existing:  # refuse before drawing anything
        taken = [out / f"{stem}.{f}" for stem in only or FIGURES for f in formats
                 if (out / f"{stem}.{f}").exists()]
        if taken:
            raise FileExistsError(f"{taken[0]} exists ({len(taken)} of the figure files do); "
                                  "pass force=True to overwrite them")
    for stem in only or FIGURES:
        paths = [out / f"{stem}.{f}" for f in formats]
        redraw = force
        if skip_existing and not force:
            if all(io.is_whole(p) for p in paths):
                written[stem] = paths
                continue
            # Cut short (e.g. the PNG written, not the PDF): the run's own figure, redrawn.
            redraw = True
        try:
            draw = _DRAW[stem]
            fig = draw(results, folder) if stem == "fig6_codes" else draw(results)
        except (KeyError, FileNotFoundError) as exc:
            need = ", ".join(FIGURES[stem])
            skipped[stem] = f"needs the {need} stage results ({exc})"
            continue
        except ImportError as exc:
            skipped[stem] = f"a module it needs is missing: {exc}"
            continue
        written[stem] = save_figure(fig, out / stem, formats=formats, force=redraw)
    return written, skipped


# --- report ----------------------------------------------------------------------------------

def _md_table(rows, columns, fmt="{:.4g}"):
    def cell(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return fmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


_CAPTIONS = {
    "fig1_toy": "Fig. 1 — paper Fig. 2 on a 2-D toy vector: the L2-iterative (alternating) "
                "solution stops in a local minimum; the vector loss (steering, then driving) "
                "finds the global one. Bottom: L2 loss vs α.",
    "fig2_orientation": "Fig. 2 — expected orientation loss vs λ (σ units) for k = 2..8, "
                        "Gaussian weights; dots mark λ_k.",
    "fig3_lambda": "Fig. 3 — theoretical λ_k vs the exact-search and grid-search λ "
                   "(step/σ) of the trained float layers.",
    "fig4_dql_bits": "Fig. 4 — relative DQL vs bits for every method of the comparison on a "
                     "trained layer, like for like: each method divided by VecQ-exact with the "
                     "same number of levels (2^k midrise, 2^k − 1 midtread). Top: the scale, "
                     "with the baselines more than 3× above it (DoReFa's levels span [−1, 1] "
                     "whatever the weights' scale; abs-max clips nothing); the other baselines "
                     "lie on VecQ-exact's line there and are drawn as ratios in the bottom "
                     "panel, where they separate. Marked in the legend, not like for like: "
                     "μL2Q* (offset lattice, levels α·v + β: one parameter more) and Lloyd–Max "
                     "(non-uniform levels, a floor below every uniform lattice). μL2Q is drawn "
                     "with its printed λ table and its released code's table. A note under a "
                     "panel names lines that coincide at its scale.",
    "fig5_training": "Fig. 5 — training loss and test accuracy vs epoch: float (wide grey "
                     "band) and each bitwidth; a note under a panel names the runs that "
                     "coincide with it.",
    "fig6_codes": "Fig. 6 — per-layer code histograms with the lattice levels (top) and "
                  "per-layer relative DQL during training (bottom).",
    "fig7_accuracy_bits": "Fig. 7 — test accuracy vs weight bitwidth: VecQ quantization-aware "
                          "training and post-training quantization of the float model.",
}


def report_markdown(s, results, figures, skipped, status=None):
    """The text of ``report.md``."""
    parts = [f"# VecQ reproduction ({s.name} run, seed {s.seed})", "",
             "Produced by `vecq-ref reproduce` on embedded data only "
             f"(digits{', mnist5k' if s.lenet else ''}). Settings: `reproduce.json`; "
             "every number below is in `results.json`.", ""]
    tab = results.get("tables")
    if tab:
        parts += ["## λ_k from first principles (Gaussian, midrise)", "",
                  _md_table(tab["midrise"], ["bits", "lam", "paper", "ul2q_printed",
                                             "ul2q_code", "relative_dql"], "{:.6g}"),
                  "", f"Ternary (midtread, k = 2): λ = {tab['ternary']['lam']:.10g}.", ""]
    accs = []
    for _, r in _train_results(results):
        accs.append({"run": r["name"], "model": r["model"], "data": r["data"],
                     "bits": "float" if r["bits"] is None else r["bits"],
                     "epochs": len(r["epochs"]), "test_acc": r["test_acc"]})
    if accs:
        parts += ["## Training (VecQ quantization-aware training, STE)", "",
                  _md_table(accs, ["run", "model", "data", "bits", "epochs", "test_acc"]), ""]
    ptq = results.get("ptq")
    if ptq:
        rows = [{"model": m, **ptq[m]} for m in sorted(ptq, key=("mlp", "lenet5").index)]
        cols = ["model"] + list(next(iter(ptq.values())))
        parts += ["## Bits sweep: post-training quantization of the float model "
                  "(test accuracy)", "", _md_table(rows, cols), ""]
    lam = results.get("lambda")
    if lam:
        rows = [{**r, "gain_%": 100 * (r["rdql_param"] - r["rdql_exact"]) / r["rdql_param"]
                 if r["rdql_param"] else 0.0} for r in lam["records"]]
        parts += ["## λ on trained layers: theory vs grid vs exact search", "",
                  _md_table(rows, ["layer", "bits", "lam_theory", "lam_grid", "lam_exact",
                                   "rdql_param", "rdql_grid", "rdql_exact", "gain_%",
                                   "certified"]), "",
                  "`gain_%`: how much of VecQ-param's relative DQL the exact step removes.", ""]
        if rows:
            gains = np.array([r["gain_%"] for r in rows])
            top = rows[int(np.argmax(gains))]
            grid_excess = max(100 * (r["rdql_grid"] - r["rdql_exact"]) / r["rdql_exact"]
                              if r["rdql_exact"] else 0.0 for r in rows)
            parts += [f"Over {len(rows)} (layer, bits) pairs the exact step removes a median "
                      f"{np.median(gains):.2f} % of VecQ-param's relative DQL (at most "
                      f"{top['gain_%']:.2f} %, {top['layer']} at {top['bits']} bits); the "
                      f"paper's 3000-point grid is at most {grid_excess:.2f} % above the "
                      "exact optimum.", ""]
    cmp_ = results.get("compare")
    if cmp_ and cmp_["layers"]:
        block = max(cmp_["layers"], key=lambda b: b["size"])
        bits = sorted({r["bits"] for r in block["records"]})
        from .compare import METHODS as order

        seen = set(r["method"] for r in block["records"])
        methods = [m for m in order if m in seen]
        rows = []
        for m in methods:
            row = {"method": m}
            for r in block["records"]:
                if r["method"] == m:
                    row[f"{r['bits']}-bit"] = r["relative_dql"]
            rows.append(row)
        parts += [f"## Relative DQL of every method on {block['layer']} "
                  f"({block['size']} weights)", "",
                  _md_table(rows, ["method"] + [f"{k}-bit" for k in bits], "{:.3e}"), ""]
    missing = {k: v for k, v in (status or {}).items() if v.startswith("skipped")}
    if missing:
        parts += ["## Stages not run", ""]
        parts += [f"- {k}: {v}" for k, v in missing.items()] + [""]
    parts += ["## Figures", ""]
    for stem, paths in figures.items():
        png = next((p for p in paths if Path(p).suffix == ".png"), paths[0])
        parts += [f"![{stem}](figures/{Path(png).name})", "", _CAPTIONS[stem], ""]
    for stem, why in skipped.items():
        parts += [f"- {stem}: not drawn — {why}", ""]
    return "\n".join(parts).rstrip() + "\n"


def _summary(s, results, figures, skipped):
    train = {n[len("train-"):]: {"bits": r["bits"], "test_acc": r["test_acc"],
                                 "epochs": r["epochs"]}
             for n, r in _train_results(results)}
    return _finite({"settings": s.to_dict(), "tables": results.get("tables"),
                    "toy": results.get("toy"), "training": train,
                    "ptq": results.get("ptq"), "lambda": results.get("lambda"),
                    "compare": results.get("compare"),
                    "figures": {k: [Path(p).name for p in v] for k, v in figures.items()},
                    "skipped_figures": skipped})


# --- the driver ------------------------------------------------------------------------------

def _saved_settings(out):
    """The settings ``reproduce.json`` of ``out`` pins, or None when there is none."""
    manifest = Path(out) / "reproduce.json"
    if not manifest.exists():
        return None
    with open(manifest, encoding="utf-8") as fh:
        return json.load(fh)


def _finished(out, s):
    """Whether ``out`` holds a finished run of the settings ``s`` with every file whole:
    every stage done, every figure in every format, ``report.md`` and ``results.json``."""
    out = Path(out)
    if not (io.is_whole(out / "report.md") and io.is_whole(out / "results.json")
            and io.is_whole(out / "reproduce.json") and _saved_settings(out) == s.to_dict()):
        return False
    if not all(stage_done(name, out) for name, _ in stages(s)):
        return False  # a stage skipped (e.g. a missing package) is tried again
    return all(io.is_whole(out / "figures" / f"{stem}.{f}") for stem in FIGURES
               for f in s.formats)


def _finished_result(out, s):
    """What :func:`reproduce` returns for a finished folder, read from its ``results.json``."""
    with open(out / "results.json", encoding="utf-8") as fh:
        summary = json.load(fh)
    return {"out": str(out), "report": str(out / "report.md"),
            "results": str(out / "results.json"),
            "figures": {k: [str(out / "figures" / n) for n in v]
                        for k, v in summary["figures"].items()},
            "skipped": summary.get("skipped_figures") or {},
            "stages": {name: "resumed" for name, _ in stages(s)},
            "summary": {k: v["test_acc"] for k, v in summary["training"].items()},
            "already_finished": True}


def _check_folder(out, s, force):
    out = Path(out)
    manifest = out / "reproduce.json"
    saved = None if force else _saved_settings(out)
    if saved is not None and saved != s.to_dict():
        diff = sorted(k for k in set(saved) | set(s.to_dict())
                      if saved.get(k) != s.to_dict().get(k))
        raise ValueError(f"{out} holds a reproduction with other settings ({diff}); "
                         "use another `out` or pass force=True to start over")
    (out / "stages").mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    io.write_text(manifest, _dump(s.to_dict()), force=True)
    return out


def reproduce(out, quick=False, seed=0, force=False, quiet=False, formats=("png", "pdf")):
    """Run every stage into ``out`` (resuming finished ones) and write the report.

    Parameters
    ----------
    out : str or Path
        Output folder (created). Holds ``reproduce.json``, ``stages/``, ``runs/``,
        ``figures/``, ``report.md`` and ``results.json``. Stages that cannot run (an optional
        package such as scikit-learn missing, or an earlier stage skipped) are reported as
        ``"skipped: …"`` in ``stages`` and in the report; the rest still runs.
    quick : bool
        The small preset (a couple of minutes); the default run takes longer (≤ 15 minutes
        on two cores).
    seed : int
        Seeds the data split, the initialisations and the batch order.
    force : bool
        Redo everything and overwrite; otherwise an unfinished folder is resumed and a
        finished one (same settings, every file whole) left as it is.
    quiet : bool
        No progress lines on stderr.
    formats : sequence of {"png", "pdf"}

    Returns
    -------
    dict
        ``out``, ``report``, ``results``, ``figures`` (``{stem: [paths]}``), ``skipped``
        (figures not drawn, with the reason), ``stages`` (``{name: "ran" | "resumed" |
        "skipped: …"}``), ``summary`` (test accuracy per run) and ``already_finished``
        (True when ``out`` held this finished run: nothing was redone or written).
    """
    s = settings(quick, seed, formats)
    if not force and _finished(out, s):
        return _finished_result(Path(out), s)
    out = _check_folder(out, s, force)
    todo = stages(s)
    prog = _Progress(len(todo) + 2, quiet)
    ctx = {"data": {}, "force": force, "quiet": quiet, "say": prog.say}
    status = {}
    for i, (name, fn) in enumerate(todo, 1):
        path = out / "stages" / f"{name}.json"
        if not force and stage_done(name, out):
            status[name] = "resumed"
            prog.say(f"{i}/{len(todo)} {name}: already done (resumed)")
            continue
        # Its JSON is there but an output is missing or cut short: redo it from the start.
        ctx["restart"] = path.exists() and not force
        t0 = time.perf_counter()
        prog.say(f"{i}/{len(todo)} {name} ...")
        try:
            result = fn(s, out, ctx)
        except (ImportError, FileNotFoundError) as exc:
            # An optional package (e.g. scikit-learn for the data) or an earlier stage's
            # result is missing: note it, go on with what can be done.
            status[name] = f"skipped: {exc}"
            prog.say(f"{i}/{len(todo)} {name}: SKIPPED, {exc}")
            continue
        io.write_text(path, _dump(_finite(result)), force=True)
        status[name] = "ran"
        extra = f", test accuracy {result['test_acc']:.4f}" if "test_acc" in result else ""
        prog.say(f"{i}/{len(todo)} {name}: done in {time.perf_counter() - t0:.1f} s{extra}")
    results = load_results(out)
    prog.say("figures ...")
    figures, skipped = draw_figures(results, out / "figures", folder=out, formats=s.formats,
                                    force=force, skip_existing=True)
    for stem, why in skipped.items():
        prog.say(f"figure {stem} skipped: {why}")
    summary = _summary(s, results, figures, skipped)
    # A finished folder returned above without force; these are the run's own files.
    io.write_text(out / "results.json", _dump(summary), force=True)
    io.write_text(out / "report.md", report_markdown(s, results, figures, skipped, status),
                  force=True)
    prog.say(f"report: {out / 'report.md'}")
    return {"out": str(out), "report": str(out / "report.md"),
            "results": str(out / "results.json"),
            "figures": {k: [str(p) for p in v] for k, v in figures.items()},
            "skipped": skipped, "stages": status,
            "summary": {k: v["test_acc"] for k, v in summary["training"].items()},
            "already_finished": False}


__all__ = ["DEFAULT", "FIGURES", "QUICK", "Settings", "draw_figures", "load_results",
           "report_markdown", "reproduce", "settings", "stage_done", "stage_outputs", "stages"]
