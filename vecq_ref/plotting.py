"""Figures of the paper and of ``vecq-ref reproduce``: ``plot_*(..., ax=None)`` → artists.

Every ``plot_*`` function draws on one :class:`matplotlib.axes.Axes` (a new one on a fresh
:class:`matplotlib.figure.Figure` when ``ax`` is None), never touches pyplot's global state,
never shows anything, and returns a dict of the artists it drew (each artist knows its
``.axes`` and ``.figure``). ``figure_*`` functions lay several panels out on one Figure, and
:func:`save_figure` writes PNG and PDF files atomically with fixed metadata, so the same
inputs give byte-identical files.

Legend entries and axis labels come from :mod:`vecq_ref.names` (the names ``compare`` prints).
Every series of an axes has its own colour, marker and line style; where series coincide at
the drawn scale, a note under the axes names them.

======  ==========================================  =====================================
paper   what                                        functions
======  ==========================================  =====================================
1       Fig. 2 idea: L2-iterative vs vector loss    :func:`toy_example`,
        on a 2-D vector, and L2 loss vs α           :func:`plot_toy_plane`,
                                                    :func:`plot_toy_loss`, :func:`figure_toy`
2       expected J_o vs λ (σ units), k = 2..8       :func:`plot_orientation_curves`
3       λ_k vs exact / grid λ of trained layers     :func:`plot_lambda_comparison`
4       relative DQL vs bits, every method          :func:`plot_dql_vs_bits`,
                                                    :func:`plot_dql_vs_bits_panels`
5       loss and test accuracy vs epoch             :func:`plot_training_curves`,
                                                    :func:`figure_training`
6       code histograms; per-layer DQL in training  :func:`plot_code_histogram`,
                                                    :func:`plot_layer_dql`
7       accuracy vs bitwidth                        :func:`plot_accuracy_vs_bits`
======  ==========================================  =====================================
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import names, tables
from .lattice import code_range, lattice_levels, level_offset

#: Metadata written into every file, so that two runs give the same bytes.
PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}
FORMATS = ("png", "pdf")


def _axes(ax, figsize=(5.0, 3.6)):
    if ax is None:
        ax = Figure(figsize=figsize, layout="constrained").add_subplot()
    return ax


def _legend_outside(ax, **kwargs):
    """A legend to the right of the axes, outside them, so it never covers data.

    The constrained layout of the figure makes room for it.
    """
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize="x-small", **kwargs)


_MARKERS = "os^vD<>ph*P"
_LINESTYLES = ("-", "--", "-.", ":")
# The ten default colours, then six more, so that the sixteen methods of ``compare`` each
# have a colour of their own in every panel of Fig. 4.
_COLOURS = (*(f"C{i}" for i in range(10)), "black", "deeppink", "darkgoldenrod", "teal", "navy",
            "saddlebrown")
SOLUTIONS = names.SOLUTIONS


def _styled_plot(ax, x, y, i, label, style=None):
    """The ``i``-th series drawn on an axes, in style number ``style`` (default ``i``).

    Style number ``style`` is one colour, marker and line style (distinct for 0 … 175), so a
    caller that keys it by the series' identity (a method, a bitwidth) draws the same series
    alike in every panel. Markers are hollow and shrink with the drawing order ``i``, so
    series drawn over each other show as concentric markers of different shapes.
    """
    style = i if style is None else style
    return ax.plot(x, y, color=_COLOURS[style % len(_COLOURS)],
                   marker=_MARKERS[style % len(_MARKERS)],
                   ls=_LINESTYLES[style % len(_LINESTYLES)], lw=1.1, mfc="none", mew=1.1,
                   ms=max(3.0, 8.5 - 0.8 * i), label=label, zorder=2 + 0.01 * i)


def _method_style(method):
    """A method's style number: its place in ``compare``'s list, the same in every panel."""
    from .compare import METHODS

    return METHODS.index(method) if method in METHODS else None


def coincident(series, logy=False, tol=0.01):
    """Groups of series that coincide at the drawn scale.

    Two series coincide when the x values of one are among the other's (the same x values,
    or e.g. TWN's single bitwidth among VecQ's) and their y values (log10 of them on a log
    axis) differ by at most ``tol`` times the span of all y values at every shared x: the
    shorter one is then hidden under the other.

    Parameters
    ----------
    series : list of (label, x, y)
    logy : bool
    tol : float
        Fraction of the y span (1 % is about a line width at print size).

    Returns
    -------
    list of list of str
        Groups of two or more labels, in drawing order.

    Examples
    --------
    >>> coincident([("a", [1, 2], [1.0, 2.0]), ("b", [1, 2], [1.001, 2.0]),
    ...             ("c", [1, 2], [0.0, 1.0])])
    [['a', 'b']]
    >>> coincident([("a", [1, 2], [1.0, 2.0]), ("b", [2], [2.0])])
    [['a', 'b']]
    """
    items = []
    for label, x, y in series:
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan) if logy else y
        items.append((label, np.asarray(x, dtype=np.float64), y))
    finite = np.concatenate([y[np.isfinite(y)] for _, _, y in items] or [np.zeros(0)])
    if finite.size == 0:
        return []
    span = float(np.ptp(finite)) or 1.0
    # Series i is hidden under j when it coincides with j at each of its x values, and j has
    # more x values, or the same ones and was drawn earlier (so edges never form a cycle). A
    # longer series never joins a group through a shorter one that lies on it.
    under = list(range(len(items)))
    for i, (_, xi, yi) in enumerate(items):
        for j, (_, xj, yj) in enumerate(items):
            if j == i or xj.size < xi.size or (xj.size == xi.size and j > i):
                continue
            if xi.size < xj.size and not _covers(xj, xi):
                continue
            if xi.size == xj.size and not np.array_equal(np.sort(xi), np.sort(xj)):
                continue
            a, b = _on_shared_x(xi, yi, xj, yj)
            both = np.isfinite(a) & np.isfinite(b)
            if (np.array_equal(np.isfinite(a), np.isfinite(b)) and both.any()
                    and np.all(np.abs(a[both] - b[both]) <= tol * span)):
                under[i] = j
                break

    def root(i):
        while under[i] != i:
            i = under[i]
        return i

    out = {}
    for i, (label, _, _) in enumerate(items):
        out.setdefault(root(i), []).append(label)
    return [labels for _, labels in sorted(out.items()) if len(labels) > 1]


def _covers(x_long, x_short):
    """Whether every value of ``x_short`` is among ``x_long``'s (each once there)."""
    return (np.unique(x_long).size == x_long.size
            and bool(np.isin(x_short, x_long).all()))


def _on_shared_x(xi, yi, xj, yj):
    """``(yi, yj)`` at the x values of series i, all of which are among series j's."""
    where = {float(x): k for k, x in enumerate(xj)}
    return yi, yj[[where[float(x)] for x in xi]]


def _note_coincident(ax, series, logy, extra=()):
    """A note under the axes naming the series that coincide, then the sentences ``extra``
    (None when there is nothing to say)."""
    groups = coincident(series, logy)
    if not groups and not extra:
        return None
    import textwrap

    parts = (["Coincide at this scale: " + "; ".join(" = ".join(g) for g in groups) + "."]
             if groups else []) + list(extra)
    # Matplotlib wraps at the figure's edge, not the axes': wrap for a narrow panel.
    text = "\n".join(textwrap.fill(p, 58, break_on_hyphens=False) for p in parts)
    return ax.annotate(text, xy=(0.0, 0.0),
                       xycoords=("axes fraction", ax.xaxis.label), xytext=(0.0, -3.0),
                       textcoords="offset points", ha="left", va="top", fontsize="x-small")


def _tidy_log(ax):
    """No labels on minor ticks of a log y axis spanning more than a decade (they crowd)."""
    from matplotlib.ticker import NullFormatter

    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    if lo > 0 and hi / lo > 10:
        ax.yaxis.set_minor_formatter(NullFormatter())


def _positive(values):
    """Values for a log axis: non-positive ones (exact zeros) become NaN, i.e. a gap."""
    arr = np.asarray(values, dtype=np.float64)
    return np.where(arr > 0, arr, np.nan) if np.any(arr > 0) else np.full(arr.shape, np.nan)


# --- 1. the 2-D toy vector (paper Fig. 2) ---------------------------------------------------

def _nearest_codes(w, alpha, bits, lattice):
    """Nearest-level codes of ``w/α`` (the same as the lattice codes with step α)."""
    lo, hi = code_range(bits, lattice)
    off = level_offset(lattice)
    return np.clip(np.round(w / alpha - off), lo, hi).astype(np.int64)


def _l2_iterative(w, bits, lattice, alpha0, max_iter=100):
    """Alternating L2 (docs/theory.md §4.4) from ``alpha0``: ``(codes, α, iterations)``."""
    off = level_offset(lattice)
    alpha, prev = alpha0, None
    for it in range(1, max_iter + 1):
        c = _nearest_codes(w, alpha, bits, lattice)
        if prev is not None and np.array_equal(c, prev):
            return c, alpha, it
        v = c + off
        alpha = float(w @ v / (v @ v)) if v @ v > 0 else alpha
        prev = c
    return prev, alpha, max_iter


def _best_codes(w, bits, lattice):
    """The code vector of smallest orientation loss over all steps (docs/theory.md §4.3, by brute
    force over the intervals between breakpoints — fine for a toy vector)."""
    off = level_offset(lattice)
    _, hi = code_range(bits, lattice)
    j = np.arange(1, hi + 1, dtype=np.float64) - (0.5 if lattice == "midtread" else 0.0)
    mags = np.abs(w)[np.abs(w) > 0]
    bps = np.unique(np.outer(mags, 1.0 / j).ravel()) if j.size and mags.size else np.ones(1)
    steps = np.concatenate([[bps[0] / 2], (bps[1:] + bps[:-1]) / 2, [2 * bps[-1]]])
    best, best_cos = None, -np.inf
    for a in steps:
        c = _nearest_codes(w, a, bits, lattice)
        v = c + off
        nv = np.linalg.norm(v)
        cos = w @ v / (np.linalg.norm(w) * nv) if nv > 0 else -1.0
        if cos > best_cos + 1e-15:
            best, best_cos = c, cos
    return best


def toy_example(w=(0.74, 0.22), bits=3, lattice="midrise", num=600):
    """The data of paper Fig. 2 for a small vector: L2-iterative vs vector-loss solutions.

    The L2-iterative solution alternates nearest-level codes and the least-squares α from
    the max-based start ``α₀ = max|w|/(2^(k−1) − ½)`` (docs/theory.md §4.4); the vector-loss
    solution takes the codes of smallest orientation loss over all steps (steering), then α*
    (driving). ``dql`` is the L2 loss ``‖w − α·v(α)‖²`` with the nearest-level codes of each α.

    Parameters
    ----------
    w : array_like, shape (n,)
        The toy vector (two entries draw in the plane).
    bits : int
    lattice : {"midrise", "midtread"}
    num : int
        Number of α values on the curve.

    Returns
    -------
    dict
        ``w``, ``bits``, ``lattice``, ``alpha`` (grid), ``dql`` (curve), and ``l2`` /
        ``vector``: each ``{codes, levels, alpha, dql, orientation}``.

    Examples
    --------
    >>> t = toy_example()
    >>> t["l2"]["codes"].tolist(), t["vector"]["codes"].tolist()
    ([3, 1], [1, 0])
    >>> bool(t["vector"]["dql"] < t["l2"]["dql"])
    True
    """
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    _, hi = code_range(bits, lattice)
    off = level_offset(lattice)
    top = float(np.max(np.abs(w)))
    alpha0 = top / (hi + off)
    alphas = np.linspace(top / (4 * (hi + off) + 2), 2.0 * top, num)
    dql = np.array([np.sum((w - a * (_nearest_codes(w, a, bits, lattice) + off)) ** 2)
                    for a in alphas])
    out = {"w": w, "bits": int(bits), "lattice": lattice, "alpha": alphas, "dql": dql,
           "alpha0": alpha0}
    c_l2, a_l2, iters = _l2_iterative(w, bits, lattice, alpha0)
    c_vec = _best_codes(w, bits, lattice)
    for name, c in (("l2", c_l2), ("vector", c_vec)):
        v = c + off
        a = float(w @ v / (v @ v))
        cos = float(w @ v / (np.linalg.norm(w) * np.linalg.norm(v)))
        out[name] = {"codes": c, "levels": v, "alpha": a,
                     "dql": float(np.sum((w - a * v) ** 2)), "orientation": 1.0 - cos}
    out["l2"]["iterations"] = iters
    return out


def plot_toy_plane(toy, ax=None):
    """The plane of a 2-D toy vector: ``w``, both code directions and both ``α·v``.

    The view is cropped to the vectors (a toy ``w`` close to an axis leaves the rest of the
    quadrant empty), with the lattice points ``α·v`` of the vector-loss α that fall inside it.

    Parameters
    ----------
    toy : dict
        From :func:`toy_example` (first two entries of ``w`` drawn).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict of artists: ``w`` (arrow), ``lattice`` (points of the level grid scaled by the
    vector-loss α), ``l2`` and ``vector`` (line of the direction + marker of α·v).

    Examples
    --------
    >>> art = plot_toy_plane(toy_example())
    >>> art["w"].axes.get_xlabel()
    '$w_1$'
    """
    ax = _axes(ax, (4.8, 3.0))
    w = toy["w"][:2]
    reach = 1.15 * float(np.max(np.abs(w)))
    sols = {name: (toy[name]["alpha"] * toy[name]["levels"][:2], toy[name]["levels"][:2])
            for name in SOLUTIONS}
    dirs = {name: reach * v / np.linalg.norm(v) for name, (_, v) in sols.items()}
    pts = np.vstack([w, *(p for p, _ in sols.values()), *dirs.values(), [0.0, 0.0]])
    lo = np.minimum(pts.min(axis=0), 0.0)
    hi = pts.max(axis=0)
    pad = 0.08 * float(np.max(hi - lo))
    lo, hi = lo - pad, hi + pad
    levels = lattice_levels(toy["bits"], toy["lattice"])
    a_vec = toy["vector"]["alpha"]
    gx, gy = (a_vec * g.ravel() for g in np.meshgrid(levels, levels))
    inside = (gx >= lo[0]) & (gx <= hi[0]) & (gy >= lo[1]) & (gy <= hi[1])
    art = {"lattice": ax.scatter(gx[inside], gy[inside], s=10, color="0.6", marker="s",
                                 label=names.series("lattice_points"), zorder=1)}
    art["w"] = ax.annotate("", xy=tuple(w), xytext=(0.0, 0.0),
                           arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.6})
    ax.text(w[0], w[1], "  $w$", va="center")
    colors = {"l2": "C3", "vector": "C0"}
    for name, color in colors.items():
        (p, _), d = sols[name], dirs[name]
        (line,) = ax.plot([0.0, d[0]], [0.0, d[1]], "--", color=color, lw=1,
                          label=names.series("direction", solution=name))
        (point,) = ax.plot([p[0]], [p[1]], "o", color=color, ms=6,
                           label=names.series("solution_point", solution=name,
                                              value=f"{toy[name]['dql']:.2g}"))
        ax.plot([w[0], p[0]], [w[1], p[1]], ":", color=color)
        art[name] = {"direction": line, "point": point}
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel(names.QUANTITIES["w1"])
    ax.set_ylabel(names.QUANTITIES["w2"])
    ax.set_title(f"{toy['bits']}-bit {toy['lattice']}: the two solutions in the plane")
    _legend_outside(ax)
    return art


def plot_toy_loss(toy, ax=None):
    """L2 loss vs α: nearest-level codes at each α, and each solution's ``‖w − αv‖²``.

    Returns
    -------
    dict of artists: ``envelope`` (line), ``start`` (α₀, vertical line), ``l2`` and
    ``vector`` (parabola line + marker).

    Examples
    --------
    >>> art = plot_toy_loss(toy_example())
    >>> art["envelope"].get_label()
    'nearest levels at each $\\\\alpha$'
    """
    ax = _axes(ax, (4.8, 3.0))
    alphas = toy["alpha"]
    (env,) = ax.plot(alphas, toy["dql"], color="0.3", lw=1.4, label=names.series("envelope"))
    art = {"envelope": env}
    colors = {"l2": "C3", "vector": "C0"}
    for name, color in colors.items():
        sol = toy[name]
        v = sol["levels"]
        curve = np.array([np.sum((toy["w"] - a * v) ** 2) for a in alphas])
        (line,) = ax.plot(alphas, curve, "--", color=color, lw=1,
                          label=names.series("solution_curve", solution=name,
                                             codes=str(sol["codes"].tolist())))
        (point,) = ax.plot([sol["alpha"]], [sol["dql"]], "o", color=color, ms=6,
                           label=names.series("solution_alpha", solution=name,
                                              value=f"{sol['alpha']:.3g}"))
        art[name] = {"curve": line, "point": point}
    art["start"] = ax.axvline(toy["alpha0"], color="0.5", lw=0.9, ls=":",
                              label=names.series("alpha0"))
    top = float(np.max(toy["dql"]))
    ax.set_ylim(-0.03 * top, 1.1 * top)
    ax.set_xlabel(names.QUANTITIES["alpha"])
    ax.set_ylabel(names.QUANTITIES["l2_loss"])
    ax.set_title(r"L2 loss vs $\alpha$")
    _legend_outside(ax)
    return art


def figure_toy(toy):
    """Fig. 1: the plane above the L2-loss curve (both wide and short); returns the Figure."""
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, height_ratios=(1.0, 1.1))
    plot_toy_plane(toy, ax1)
    plot_toy_loss(toy, ax2)
    return fig


# --- 2. expected orientation loss vs λ ------------------------------------------------------

_DIST_NAMES = {"gaussian": "Gaussian", "laplace": "Laplace", "uniform": "uniform"}


def plot_orientation_curves(bits=range(2, 9), lattice="midrise", dist="gaussian", num=300,
                            lam_range=(0.005, 3.0), ax=None):
    """Expected orientation loss ``1 − cos θ(λ)`` vs λ (σ units), log scales, λ_k marked.

    Parameters
    ----------
    bits : iterable of int
    lattice, dist : as in :func:`vecq_ref.tables.optimal_step`
    num : int
        Points per curve (log-spaced over ``lam_range``).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict of artists: ``curves`` and ``optima``, dicts keyed by bits, and ``optimum_key`` (the
    legend entry that says what the dots are).

    Examples
    --------
    >>> art = plot_orientation_curves(bits=[2, 3], num=20)
    >>> sorted(art["curves"]), art["curves"][2].axes.get_yscale()
    ([2, 3], 'log')
    """
    ax = _axes(ax, (5.0, 3.6))
    lams = np.geomspace(lam_range[0], lam_range[1], num)
    curves, optima = {}, {}
    for i, k in enumerate(bits):
        k = int(k)
        color = f"C{i % 10}"
        jo = [tables.expected_orientation(x, k, lattice, dist) for x in lams]
        (curves[k],) = ax.plot(lams, _positive(jo), color=color, lw=1.3,
                               ls=_LINESTYLES[i % len(_LINESTYLES)],
                               label=names.series("bits_curve", bits=k))
        lk = tables.optimal_step(k, lattice, dist)
        (optima[k],) = ax.plot([lk], [tables.expected_orientation(lk, k, lattice, dist)], "o",
                               color=color, mec="k", mew=0.6, ms=5, zorder=3)
    (key,) = ax.plot([], [], "o", color="w", mec="k", mew=0.6, ms=5,
                     label=names.series("optimum"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(names.QUANTITIES["lambda"])
    ax.set_ylabel(names.QUANTITIES["expected_J_o"])
    ax.set_title(rf"Expected $J_o$ vs $\lambda$ ({_DIST_NAMES.get(dist, dist)} weights, "
                 f"{lattice})")
    ax.legend(fontsize="x-small", ncol=2, loc="lower right")
    return {"curves": curves, "optima": optima, "optimum_key": key}


# --- 3. λ_k vs searched λ on trained layers -------------------------------------------------

def plot_lambda_comparison(records, lattice="midrise", ax=None):
    """Theoretical λ_k against the exact-search and grid-search λ of real layers, by bits.

    Parameters
    ----------
    records : list of dict
        ``{"layer", "bits", "lam_exact", "lam_grid"}`` (λ in σ units: step/σ of the layer);
        a layer ``"lenet5/fc1"`` shows as "LeNet-5 fc1" (:func:`vecq_ref.names.layer_name`).
    lattice : str
        For the theoretical line.

    Returns
    -------
    dict of artists: ``theory`` (line), ``exact`` and ``grid`` (dicts keyed by layer).

    Examples
    --------
    >>> recs = [{"layer": "fc1", "bits": b, "lam_exact": 0.9 / 2 ** (b - 2),
    ...          "lam_grid": 0.91 / 2 ** (b - 2)} for b in (2, 3, 4)]
    >>> art = plot_lambda_comparison(recs)
    >>> list(art["exact"]), art["exact"]["fc1"].get_label()
    (['fc1'], 'fc1, VecQ-exact')
    """
    ax = _axes(ax, (5.0, 3.6))
    bits = sorted({int(r["bits"]) for r in records})
    (theory,) = ax.plot(bits, [tables.optimal_step(k, lattice) for k in bits], "k-", lw=1.2,
                        label=names.series("theory_lambda"), zorder=1)
    layers = list(dict.fromkeys(r["layer"] for r in records))
    exact, grid = {}, {}
    n = max(len(layers), 1)
    for i, name in enumerate(layers):
        rows = sorted((r for r in records if r["layer"] == name), key=lambda r: r["bits"])
        shift = 0.08 * (i - (n - 1) / 2)
        x = np.array([r["bits"] for r in rows], dtype=float) + shift
        color = f"C{i % 10}"
        shown = names.layer_name(name)
        (exact[name],) = ax.plot(x, _positive([r["lam_exact"] for r in rows]), "o",
                                 color=color, mfc="none", mew=1.1, ms=7,
                                 label=names.series("searched_lambda", layer=shown,
                                                    method="vecq_exact"))
        (grid[name],) = ax.plot(x, _positive([r["lam_grid"] for r in rows]), "x",
                                color=color, ms=5, label=names.series(
                                    "searched_lambda", layer=shown, method="vecq_grid"))
    ax.set_yscale("log")
    ax.set_xticks(bits)
    ax.set_xlabel(names.QUANTITIES["bits"])
    ax.set_ylabel(names.QUANTITIES["lambda"])
    ax.set_title(r"Theoretical $\lambda_k$ vs searched $\lambda$ on trained layers")
    _legend_outside(ax, ncol=1 if len(layers) <= 8 else 2)
    return {"theory": theory, "exact": exact, "grid": grid}


# --- 4. relative DQL vs bits, every method --------------------------------------------------

def _is_vecq(method):
    return method.startswith("vecq_") and method != "vecq_normalpha"


def _levels_of(record):
    if record.get("levels") is not None:
        return int(record["levels"])
    from .compare import n_levels

    return n_levels(record["method"], int(record["bits"]))


def _like_references(reference, records):
    """``reference`` and its midtread twin (the like-for-like references), those present."""
    present = {r["method"] for r in records}
    refs = [reference, f"{reference}_midtread"] if reference else []
    return tuple(m for m in refs if m in present)


def plot_dql_vs_bits(records, methods=None, ax=None, reference=None, relative_to=None,
                     logy=None):
    """Relative DQL vs bits for every method of a :func:`vecq_ref.compare` run.

    Each method gets its own colour, marker and line style; markers are hollow and shrink
    from one method to the next, so methods whose lines coincide still show (as concentric
    markers), and a note under the axes names the lines that coincide at the drawn scale.

    Parameters
    ----------
    records : list of dict
        With at least ``method``, ``bits`` and ``relative_dql`` (and ``levels``, else the
        number of levels :func:`vecq_ref.compare.n_levels` gives).
    methods : list of str, optional
        Which methods, in drawing order (default: as they appear).
    reference : str, optional
        A method drawn as a thick grey line under the others (absolute values only).
    relative_to : str or sequence of str, optional
        Divide each method's relative DQL by that of the method among these with the **same
        number of levels** at the same bits (like for like: e.g. ``("vecq_exact",
        "vecq_exact_midtread")`` divides TWN's 3 levels by the midtread optimum, not by the
        4-level midrise one); these methods become the line "= 1". Where no method of
        ``relative_to`` has the same number of levels the point is left out.
    logy : bool, optional
        Log y axis; default: yes for absolute values, no for ratios.

    Returns
    -------
    dict of artists: ``lines`` keyed by method (the reference included), ``unity`` (the
    "= 1" line or None), ``note`` (the text naming coinciding lines, or None).

    Examples
    --------
    >>> recs = [{"method": "vecq_param", "bits": b, "relative_dql": 0.1 / 4 ** b}
    ...         for b in (1, 2, 3)]
    >>> art = plot_dql_vs_bits(recs)
    >>> art["lines"]["vecq_param"].get_xdata().tolist(), art["lines"]["vecq_param"].get_label()
    ([1.0, 2.0, 3.0], 'VecQ-param')
    """
    ax = _axes(ax, (6.0, 4.0))
    if methods is None:
        methods = list(dict.fromkeys(r["method"] for r in records))
    refs = (relative_to,) if isinstance(relative_to, str) else tuple(relative_to or ())
    base = {(int(r["bits"]), _levels_of(r)): r["relative_dql"] for r in records
            if r["method"] in refs}
    logy = not refs if logy is None else logy

    def rows_of(m):
        return sorted((r for r in records if r["method"] == m), key=lambda r: r["bits"])

    def ys(rows):
        if not refs:
            return _positive([r["relative_dql"] for r in rows])
        vals = [r["relative_dql"] / base[(int(r["bits"]), _levels_of(r))]
                if base.get((int(r["bits"]), _levels_of(r))) else np.nan for r in rows]
        return _positive(vals) if logy else np.asarray(vals, dtype=np.float64)

    lines, drawn = {}, []
    unity = None
    if refs:
        label = names.series("reference", method=refs[0])
        unity = ax.axhline(1.0, color="0.45", lw=2.5, alpha=0.6, zorder=1, label=label)
        xs = sorted({float(r["bits"]) for r in records if r["method"] in refs})
        drawn.append((label, np.array(xs), np.ones(len(xs))))
    if reference is not None and rows_of(reference) and not refs:
        rows = rows_of(reference)
        label = names.series("reference_line", method=reference)
        (lines[reference],) = ax.plot([float(r["bits"]) for r in rows], ys(rows),
                                      color="0.7", lw=4.0, solid_capstyle="round", zorder=1,
                                      label=label)
        drawn.append((label, *lines[reference].get_data()))
    i = 0
    for m in methods:
        rows = rows_of(m)
        if not rows or m == reference or m in refs:
            continue
        y = ys(rows)
        if not np.any(np.isfinite(y)):
            continue
        (lines[m],) = _styled_plot(ax, [float(r["bits"]) for r in rows], y, i,
                                   label=names.marked_method_name(m, rows[0].get("lattice")),
                                   style=_method_style(m))
        drawn.append((lines[m].get_label(), *lines[m].get_data()))
        i += 1
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(names.QUANTITIES["relative_dql_ratio"].format(
        method=names.method_name(refs[0])) if refs else names.QUANTITIES["relative_dql"])
    if logy:
        _tidy_log(ax)
    ax.set_xticks(sorted({int(r["bits"]) for r in records}))
    ax.set_xlabel(names.QUANTITIES["bits"])
    ax.set_title("Relative DQL vs bits")
    _legend_outside(ax)
    labels = [ln.get_label() for ln in lines.values()]
    extra = []
    if any(lab.endswith(names.OFFSET_MARK) for lab in labels):
        extra.append(f"{names.OFFSET_MARK} offset lattice: levels α·v + β, β = mean(w), one "
                     "parameter more than VecQ's (not like for like).")
    if any(lab.endswith(names.NONUNIFORM_MARK) for lab in labels):
        extra.append("Non-uniform levels: a floor below every uniform lattice (not like for "
                     "like).")
    note = _note_coincident(ax, drawn, logy, extra)
    return {"lines": lines, "unity": unity, "note": note}


#: Baselines whose relative DQL is more than this many times the reference's (same levels)
#: at some bits go to the absolute panel of Fig. 4 (a linear ratio axis would squash the rest).
#: Above 2: μL2Q, ACIQ and norm-matched α reach about 2.2× at 8 bits on trained layers and
#: stay in the ratio panel, where they separate from VecQ-exact (on the log panel they lie on
#: its line).
FAR = 3.0


def _max_ratio(records, method, refs):
    base = {(int(r["bits"]), _levels_of(r)): r["relative_dql"] for r in records
            if r["method"] in refs}
    ratios = [r["relative_dql"] / base[(int(r["bits"]), _levels_of(r))] for r in records
              if r["method"] == method and base.get((int(r["bits"]), _levels_of(r)))]
    return max(ratios, default=np.nan)


def plot_dql_vs_bits_panels(records, methods=None, axes=None, reference="vecq_exact"):
    """Fig. 4 in three panels: the scale, the VecQ variants, the baselines near VecQ.

    Sixteen lines on one axes cannot be told apart, and most lie within a few percent of each
    other. The middle and bottom panels divide each method's relative DQL by ``reference``'s
    (the exact-search VecQ) **with the same number of levels** (midtread methods, 2^k − 1
    levels, by the midtread reference; the others by the midrise one), as
    :func:`vecq_ref.compare` groups like with like: the VecQ variants, then the baselines
    within :data:`FAR` times the reference. The top panel shows absolute relative DQL (log) of
    the references and of the baselines farther off (DoReFa, abs-max on trained layers).
    Where ``reference`` is missing, VecQ-param (always computed) is the reference; without
    it, every panel shows absolute values.

    Parameters
    ----------
    records : list of dict
        As for :func:`plot_dql_vs_bits`.
    methods : list of str, optional
        Drawing order (default: as they appear).
    axes : three matplotlib Axes, optional
        Default: a new figure with three panels, one above the other.
    reference : str or None

    Returns
    -------
    dict: ``scale``, ``vecq`` and ``baselines``, each the artists of :func:`plot_dql_vs_bits`.

    Examples
    --------
    >>> recs = [{"method": m, "bits": b, "relative_dql": c / 4 ** b}
    ...         for m, c in (("vecq_param", 0.1), ("vecq_exact", 0.09), ("dorefa", 0.9),
    ...                      ("aciq", 0.095)) for b in (2, 3)]
    >>> art = plot_dql_vs_bits_panels(recs)
    >>> [sorted(art[k]["lines"]) for k in ("scale", "vecq", "baselines")]
    [['dorefa', 'vecq_exact'], ['vecq_param'], ['aciq']]
    >>> art["vecq"]["lines"]["vecq_param"].get_ydata().round(4).tolist()
    [1.1111, 1.1111]
    """
    if methods is None:
        methods = list(dict.fromkeys(r["method"] for r in records))
    if axes is None:
        fig = Figure(figsize=(7.2, 9.8), layout="constrained")
        axes = fig.subplots(3, 1)
    top, mid, bottom = axes
    refs = _like_references(reference, records) or _like_references("vecq_param", records)
    others = [m for m in methods if not _is_vecq(m)]
    far = [m for m in others if refs and _max_ratio(records, m, refs) > FAR]
    scale = plot_dql_vs_bits(records, [*refs, *far] if refs else [], ax=top)
    vecq = plot_dql_vs_bits(records, [m for m in methods if _is_vecq(m)], ax=mid,
                            relative_to=refs or None)
    base = plot_dql_vs_bits(records, [m for m in others if m not in far], ax=bottom,
                            relative_to=refs or None, logy=not refs)
    if refs:
        ref = names.method_name(refs[0])
        top.set_title(f"Relative DQL: {ref}" + (f" and the baselines over {FAR:g}× above it"
                                                 if far else ""))
        mid.set_title(f"VecQ variants, against {ref} with the same number of levels")
        bottom.set_title(f"Baselines within {FAR:g}× of {ref}, against it with the same "
                         "number of levels", fontsize="medium")
    else:
        top.set_title("Relative DQL")
        mid.set_title("VecQ variants")
        bottom.set_title("Baselines")
    return {"scale": scale, "vecq": vecq, "baselines": base}


# --- 5. training curves ---------------------------------------------------------------------

def training_styles(*runs):
    """Style numbers of training runs keyed by their label, the same in every panel.

    Parameters
    ----------
    *runs : dict
        The ``runs`` of each panel (``{label: epochs}``); the quantized labels of all of them
        are numbered in order of first appearance, so e.g. "4-bit" has one style whichever
        bitwidths a panel holds. Give the labels in the order of the bitwidths.

    Examples
    --------
    >>> training_styles({"float": [], "1-bit": [], "4-bit": []}, {"4-bit": [], "8-bit": []})
    {'1-bit': 0, '4-bit': 1, '8-bit': 2}
    """
    labels = dict.fromkeys(lab for r in runs for lab in r if lab != names.series("float"))
    return {lab: i for i, lab in enumerate(labels)}


def plot_training_curves(runs, key="test_acc", ax=None, legend=True, styles=None):
    """One metric of the epoch logs vs epoch, one line per run (float and each bitwidth).

    The run labelled ``"float"`` is a wide grey band under the others, so it stays visible
    where quantized runs match it; a note under the axes names lines that coincide.

    Parameters
    ----------
    runs : dict
        ``{label: [epoch record, ...]}``; records hold ``epoch`` and ``key``.
    key : str
        ``"loss"``, ``"test_loss"``, ``"test_acc"`` or ``"train_acc"``.
    legend : bool
        Draw the legend (outside, to the right).
    styles : dict, optional
        Style number of each label (:func:`training_styles`); panels that show different
        subsets of the runs must share one, so that a bitwidth looks the same in every
        panel. Default: :func:`training_styles` of ``runs``.

    Returns
    -------
    dict of artists: ``lines`` keyed by label, ``note`` (text or None).

    Examples
    --------
    >>> runs = {"float": [{"epoch": 1, "test_acc": 0.8}, {"epoch": 2, "test_acc": 0.9}]}
    >>> art = plot_training_curves(runs)
    >>> art["lines"]["float"].axes.get_ylabel()
    'test accuracy'
    """
    ax = _axes(ax)
    lines, drawn = {}, []
    styles = training_styles(runs) if styles is None else styles
    i = 0
    logy = key.endswith("loss")
    for label, recs in runs.items():
        xs = [r["epoch"] for r in recs if r.get(key) is not None]
        ys = [r[key] for r in recs if r.get(key) is not None]
        if label == names.series("float"):
            (lines[label],) = ax.plot(xs, ys, "-", color="0.6", lw=6, alpha=0.55, zorder=1,
                                      solid_capstyle="round", label=label)
        else:
            (lines[label],) = _styled_plot(ax, xs, ys, i, label=label, style=styles[label])
            i += 1
        drawn.append((label, np.asarray(xs, float), np.asarray(ys, float)))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(names.QUANTITIES["epoch"])
    ax.set_ylabel(names.QUANTITIES.get(key, key))
    if logy:
        ax.set_yscale("log")
    if legend:
        _legend_outside(ax)
    return {"lines": lines, "note": _note_coincident(ax, drawn, logy)}


def figure_training(runs, title=None):
    """Fig. 5: training loss and test accuracy vs epoch side by side; returns the Figure."""
    fig = Figure(figsize=(7.2, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    plot_training_curves(runs, "loss", ax1, legend=False)
    plot_training_curves(runs, "test_acc", ax2, legend=False)
    legend_right(fig, ax2)
    if title:
        fig.suptitle(title)
    return fig


def legend_right(fig, *axes, order=()):
    """One legend for a figure whose panels share their series, at the right of the figure,
    outside every panel: every labelled series of ``axes``, each label once (first drawn),
    those named in ``order`` first, in that order."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    rank = {label: i for i, label in enumerate(order)}
    entries = dict(sorted(entries.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    return fig.legend(list(entries.values()), list(entries), loc="outside right upper",
                      fontsize="x-small")


# --- 6. code histograms and per-layer DQL ---------------------------------------------------

def plot_code_histogram(w, codes, alpha, bits, lattice="midrise", layer=None, bins=60,
                        ax=None, legend=True):
    """A layer's weights in units of α with the lattice levels and the count of each code.

    Parameters
    ----------
    w : array_like
        Shadow (float) weights of the layer.
    codes : array_like of int
        Their codes; ``alpha`` the scale (per tensor).
    bits, lattice : the quantizer's settings.
    layer : str, optional
        Title.
    legend : bool
        Draw the legend (outside, to the right; panels of several layers need one).

    Returns
    -------
    dict of artists: ``weights`` (histogram patches), ``codes`` (bar container, one bar per
    level) and ``levels`` (list of vertical lines).

    Examples
    --------
    >>> w = np.array([-1.0, -0.2, 0.1, 0.3, 0.9])
    >>> art = plot_code_histogram(w, [-2, -1, 0, 0, 1], 0.5, 2)
    >>> len(art["codes"]), len(art["levels"])
    (4, 4)
    """
    ax = _axes(ax)
    w = np.asarray(w, dtype=np.float64).ravel()
    codes = np.asarray(codes).ravel()
    alpha = float(np.mean(alpha))
    levels = lattice_levels(bits, lattice)
    lo, _ = code_range(bits, lattice)
    counts = np.bincount(codes.astype(np.int64) - lo, minlength=levels.size)[: levels.size]
    scale = alpha if alpha > 0 else 1.0
    x = w / scale
    span = max(float(np.max(np.abs(x))) if x.size else 1.0, float(levels[-1]) + 0.5)
    width = 0.8 if levels.size <= 16 else 0.8 * (levels[1] - levels[0])
    bars = ax.bar(levels, counts, width=width, color="C1", alpha=0.35,
                  label=names.series("codes"))
    edges = np.linspace(-span, span, bins + 1)
    # Weighted to counts per unit of w/α, so its area matches the code bars (one unit wide).
    _, _, patches = ax.hist(x, bins=edges, weights=np.full(x.size, 1.0 / (edges[1] - edges[0])),
                            histtype="step", color="C0", label=names.series("weights"))
    vlines = [ax.axvline(v, color="0.4", lw=0.7, ls=":",
                         label=names.series("levels") if j == 0 else None)
              for j, v in enumerate(levels)]
    ax.set_xlabel(names.QUANTITIES["w_over_alpha"])
    ax.set_ylabel(names.QUANTITIES["count"])
    ax.set_title(f"{layer + ': ' if layer else ''}{bits}-bit codes")
    if legend:
        _legend_outside(ax)
    return {"weights": patches, "codes": bars, "levels": vlines}


def plot_layer_dql(epochs, layers=None, metric="relative_dql", label=None, logy=False,
                   ax=None):
    """Per-layer relative DQL (or another layer metric) of the epoch log vs epoch.

    Parameters
    ----------
    epochs : list of dict
        Epoch records of a quantized run, with keys ``"<layer>/<metric>"``.
    layers : list of str, optional
        Default: every layer found in the records.
    label : str, optional
        Prefix of the legend entries (e.g. ``"4-bit"``): ``"4-bit, layer fc1"``.
    logy : bool
        Log scale for the metric (for runs of several bitwidths at once).

    Returns
    -------
    dict of artists: ``lines`` keyed by layer, ``note`` (text or None).

    Examples
    --------
    >>> recs = [{"epoch": e, "fc1/relative_dql": 0.1 / e, "fc2/relative_dql": 0.2 / e}
    ...         for e in (1, 2, 3)]
    >>> sorted(plot_layer_dql(recs)["lines"])
    ['fc1', 'fc2']
    """
    ax = _axes(ax)
    suffix = f"/{metric}"
    if layers is None:
        layers = list(dict.fromkeys(k[: -len(suffix)] for r in epochs for k in r
                                    if k.endswith(suffix)))
    lines, drawn = {}, []
    for i, name in enumerate(layers):
        pts = [(r["epoch"], r.get(name + suffix)) for r in epochs]
        pts = [(e, v) for e, v in pts if v is not None]
        text = names.series("layer", layer=name)
        text = f"{label}, {text}" if label else text
        ys = [p[1] for p in pts]
        (lines[name],) = _styled_plot(ax, [p[0] for p in pts], _positive(ys) if logy else ys,
                                      i, label=text)
        drawn.append((text, *lines[name].get_data()))
    if logy:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(names.QUANTITIES["epoch"])
    ax.set_ylabel(names.QUANTITIES.get(metric, metric.replace("_", " ")))
    ax.set_title("Per-layer quantization loss during training")
    _legend_outside(ax)
    return {"lines": lines, "note": _note_coincident(ax, drawn, logy)}


# --- audit: per-layer gap to the format's optimum --------------------------------------------

def _layer_and_role(name):
    """(layer index or None, role) of a tensor name: ``blk.3.attn_q.weight`` → (3, "attn_q"),
    ``model.layers.3.mlp.up_proj.weight`` → (3, "mlp.up_proj")."""
    import re

    m = re.search(r"(?:^|\.)(?:blk|layers|layer|h|block|blocks)\.(\d+)\.(.+?)(?:\.weight)?$",
                  name)
    if m is None:
        return None, name.removesuffix(".weight")
    return int(m.group(1)), m.group(2)


def plot_audit_gap(result, ax=None):
    """Gap of each shipped tensor to the exact optimum of its format (%), per layer.

    Parameters
    ----------
    result : AuditResult
        From :func:`vecq_ref.audit`.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict of artists: ``lines`` keyed by tensor role (``attn_q``, ``ffn_up``, ...; tensors
    outside the layers at x = −1), ``note`` (text or None).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> rows = [NS(quantized_name=f"blk.{i}.attn_q.weight", gap_pct=10.0 + i) for i in (0, 1)]
    >>> sorted(plot_audit_gap(NS(rows=rows, quantized="m.gguf"))["lines"])
    ['attn_q']
    """
    ax = _axes(ax)
    series = {}
    for r in result.rows:
        layer, role = _layer_and_role(r.quantized_name)
        series.setdefault(role, []).append((-1 if layer is None else layer, r.gap_pct))
    lines, drawn = {}, []
    for i, (role, pts) in enumerate(series.items()):
        pts.sort()
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        (lines[role],) = _styled_plot(ax, xs, ys, i, label=role)
        drawn.append((role, *lines[role].get_data()))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (−1: outside the layers)")
    ax.set_ylabel("gap to the format's exact optimum (%)")
    ax.set_title(f"{getattr(result, 'quantized', '')}".rsplit("/", 1)[-1])
    _legend_outside(ax)
    return {"lines": lines, "note": _note_coincident(ax, drawn, False)}


# --- 7. accuracy vs bitwidth ----------------------------------------------------------------

def plot_accuracy_vs_bits(accuracy, float_accuracy=None, label=None, ax=None):
    """Final test accuracy vs weight bitwidth (μL2Q style), float as a horizontal line.

    Parameters
    ----------
    accuracy : dict
        ``{bits: accuracy}`` (or ``{label: {bits: accuracy}}`` for several series).
    float_accuracy : float, optional
    label : str, optional
        The series' label when ``accuracy`` is one series (default: VecQ quantization-aware
        training).

    Returns
    -------
    dict of artists: ``lines`` keyed by series label, ``float`` (line or None), ``note``.

    Examples
    --------
    >>> art = plot_accuracy_vs_bits({1: 0.8, 2: 0.9, 4: 0.95}, float_accuracy=0.96)
    >>> art["lines"]["VecQ quantization-aware training"].get_ydata().tolist()
    [0.8, 0.9, 0.95]
    >>> art["float"].get_label()
    'float (0.96)'
    """
    ax = _axes(ax)
    if accuracy and not isinstance(next(iter(accuracy.values())), dict):
        accuracy = {label or names.series("qat"): accuracy}
    lines, drawn = {}, []
    all_bits = set()
    for i, (name, acc) in enumerate(accuracy.items()):
        bits = sorted(int(b) for b in acc)
        all_bits.update(bits)
        ys = [acc[b] if b in acc else acc[str(b)] for b in bits]
        (lines[name],) = _styled_plot(ax, bits, ys, i, label=name)
        drawn.append((name, np.asarray(bits, float), np.asarray(ys, float)))
    flt = None
    if float_accuracy is not None:
        flt = ax.axhline(float_accuracy, color="0.3", ls=(0, (6, 3)), lw=1, zorder=1,
                         label=names.series("float_accuracy", value=f"{float_accuracy:.4g}"))
    if all_bits:
        ax.set_xticks(sorted(all_bits))
    ax.set_xlabel(names.QUANTITIES["weight_bits"])
    ax.set_ylabel(names.QUANTITIES["test_acc"])
    ax.set_title("Accuracy vs bitwidth")
    ax.legend(fontsize="x-small", loc="lower right")
    return {"lines": lines, "float": flt, "note": _note_coincident(ax, drawn, False)}


# --- files ----------------------------------------------------------------------------------

def figure_of(artists):
    """The Figure a ``plot_*`` result was drawn on."""
    stack = [artists]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif getattr(item, "figure", None) is not None:
            fig = item.figure
            while getattr(fig, "figure", None) not in (None, fig):  # a SubFigure's parent
                fig = fig.figure
            return fig
    raise ValueError("no artist with a figure found")


def save_figure(fig, stem, formats=FORMATS, force=False, dpi=120):
    """Write ``fig`` as ``stem.png`` / ``stem.pdf`` atomically, with fixed metadata.

    Parameters
    ----------
    fig : matplotlib Figure
    stem : str or Path
        Path without suffix; its folder must exist.
    formats : sequence of {"png", "pdf"}
    force : bool
        Overwrite existing files (refused otherwise, like every writer of vecq_ref).

    Returns
    -------
    list of Path
    """
    from pathlib import Path

    from .io import atomic_path

    stem = Path(stem)
    paths = [stem.with_name(f"{stem.name}.{fmt}") for fmt in formats]
    for p in paths:  # refuse before writing anything
        if p.exists() and not force:
            raise FileExistsError(f"{p} exists; pass force=True to overwrite it")
    for fmt, p in zip(formats, paths, strict=True):
        meta = PNG_METADATA if fmt == "png" else PDF_METADATA
        with atomic_path(p, force) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
    return paths


__all__ = [
    "FAR", "FORMATS", "coincident", "training_styles", "figure_of", "figure_toy", "figure_training",
    "legend_right", "plot_accuracy_vs_bits",
    "plot_code_histogram", "plot_dql_vs_bits", "plot_dql_vs_bits_panels",
    "plot_lambda_comparison", "plot_layer_dql", "plot_orientation_curves", "plot_toy_loss",
    "plot_toy_plane", "plot_training_curves", "save_figure", "toy_example",
]
