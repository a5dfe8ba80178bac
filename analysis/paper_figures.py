"""Reproduce the paper's figures with vecq_ref.plotting.

Figures 1 and 2 (the 2-D toy vector of paper Fig. 2, and the expected orientation loss vs λ)
need nothing but the library. Figures 3–7 need trained layers and training logs: this script
runs ``vecq_ref.reproduce`` into ``--results`` (resuming it if it is unfinished; ``--quick``
for the small preset) and draws from its stage files.

    python analysis/paper_figures.py --out figures                      # all, default run
    python analysis/paper_figures.py --out figures --quick              # all, in ~1 minute
    python analysis/paper_figures.py --out figures --only fig1_toy,fig2_orientation
    python analysis/paper_figures.py --out figures --results results    # reuse a folder

Each figure is written as PNG and PDF; existing files are kept unless ``--force``. The same
command line gives byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from vecq_ref import plotting
from vecq_ref import reproduce as R

THEORY = ("fig1_toy", "fig2_orientation")


def theory_figures(out, force=False):
    """Figures 1 and 2 drawn directly with the plotting functions."""
    out.mkdir(parents=True, exist_ok=True)
    paths = plotting.save_figure(plotting.figure_toy(plotting.toy_example((0.74, 0.22), 3)),
                                 out / "fig1_toy", force=force)
    art = plotting.plot_orientation_curves(bits=range(2, 9))
    paths += plotting.save_figure(plotting.figure_of(art), out / "fig2_orientation",
                                  force=force)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("figures"))
    p.add_argument("--results", type=Path, default=None,
                   help="a vecq-ref reproduce folder (default: <out>/../reproduce-run)")
    p.add_argument("--quick", action="store_true", help="the small reproduce preset")
    p.add_argument("--only", default=None, help="comma-separated figure names")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    only = args.only.split(",") if args.only else list(R.FIGURES)
    written = []
    if any(f in THEORY for f in only):
        written += [p for p in theory_figures(args.out, args.force)
                    if p.stem in only]
    rest = [f for f in only if f not in THEORY]
    if rest:
        folder = args.results or args.out.parent / "reproduce-run"
        if not (folder / "report.md").exists():
            R.reproduce(folder, quick=args.quick)
        figs, skipped = R.draw_figures(R.load_results(folder), args.out, folder=folder,
                                       only=rest, force=args.force)
        written += [p for paths in figs.values() for p in paths]
        for stem, why in skipped.items():
            print(f"{stem}: skipped ({why})")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
