"""Figures of the paper and of ``vecq-ref reproduce``: ``plot_*(..., ax=None)`` → artists.

Every ``plot_*`` function draws on one :class:`matplotlib.axes.Axes` (a new one on a fresh
:class:`matplotlib.figure.Figure` when ``ax`` is None), never touches pyplot's global state,
never shows anything, and returns a dict of the artists it drew (each artist knows its
``.axes`` and ``.figure``). ``figure_*`` functions lay several panels out on one Figure, and
:func:`save_figure` writes PNG and PDF files atomically with fixed metadata, so the same
inputs give byte-identical files.

======  ==========================================  =====================================
paper   what                                        functions
======  ==========================================  =====================================
1       Fig. 2 idea: L2-iterative vs vector loss    :func:`toy_example`,
        on a 2-D vector, and L2 loss vs α           :func:`plot_toy_plane`,
                                                    :func:`plot_toy_loss`, :func:`figure_toy`
2       expected J_o vs λ (σ units), k = 2..8       :func:`plot_orientation_curves`
3       λ_k vs exact / grid λ of trained layers     :func:`plot_lambda_comparison`
4       relative DQL vs bits, every method          :func:`plot_dql_vs_bits`
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

from . import tables
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
    ax = _axes(ax, (4.2, 4.0))
    w = toy["w"][:2]
    levels = lattice_levels(toy["bits"], toy["lattice"])
    a_vec = toy["vector"]["alpha"]
    gx, gy = np.meshgrid(levels, levels)
    art = {"lattice": ax.scatter(a_vec * gx.ravel(), a_vec * gy.ravel(), s=8, color="0.75",
                                 label="levels × α (vector loss)", zorder=1)}
    art["w"] = ax.annotate("", xy=tuple(w), xytext=(0.0, 0.0),
                           arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.6})
    ax.text(w[0], w[1], "  w", va="bottom")
    reach = 1.15 * float(np.max(np.abs(w)))
    styles = {"l2": ("C3", "L2-iterative"), "vector": ("C0", "vector loss")}
    for name, (color, label) in styles.items():
        sol = toy[name]
        v = sol["levels"][:2]
        d = v / np.linalg.norm(v)
        (line,) = ax.plot([0.0, reach * d[0]], [0.0, reach * d[1]], "--", color=color, lw=1,
                          label=f"{label} direction v")
        (point,) = ax.plot([sol["alpha"] * v[0]], [sol["alpha"] * v[1]], "o", color=color,
                           label=f"{label}: α·v, DQL {sol['dql']:.2g}")
        ax.plot([w[0], sol["alpha"] * v[0]], [w[1], sol["alpha"] * v[1]], ":", color=color)
        art[name] = {"direction": line, "point": point}
    ax.set_xlim(-0.05 * reach, reach)
    ax.set_ylim(-0.05 * reach, reach)
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.set_title(f"{toy['bits']}-bit {toy['lattice']}: two solutions")
    _legend_outside(ax)
    return art


def plot_toy_loss(toy, ax=None):
    """L2 loss vs α: nearest-level codes at each α, and each solution's ``‖w − αv‖²``.

    Returns
    -------
    dict of artists: ``envelope`` (line), ``l2`` and ``vector`` (parabola line + marker).

    Examples
    --------
    >>> art = plot_toy_loss(toy_example())
    >>> art["envelope"].get_label()
    'nearest levels at α'
    """
    ax = _axes(ax)
    alphas = toy["alpha"]
    (env,) = ax.plot(alphas, toy["dql"], color="0.4", lw=1.2, label="nearest levels at α")
    art = {"envelope": env}
    styles = {"l2": ("C3", "L2-iterative"), "vector": ("C0", "vector loss")}
    for name, (color, label) in styles.items():
        sol = toy[name]
        v = sol["levels"]
        curve = np.array([np.sum((toy["w"] - a * v) ** 2) for a in alphas])
        (line,) = ax.plot(alphas, curve, "--", color=color, lw=1,
                          label=f"{label} codes {sol['codes'].tolist()}")
        (point,) = ax.plot([sol["alpha"]], [sol["dql"]], "o", color=color,
                           label=f"{label}: α = {sol['alpha']:.3g}")
        art[name] = {"curve": line, "point": point}
    ax.axvline(toy["alpha0"], color="0.6", lw=0.8, ls=":")
    top = float(np.max(toy["dql"]))
    ax.set_ylim(-0.03 * top, 1.1 * top)
    ax.set_xlabel("α")
    ax.set_ylabel("L2 loss ‖w − α·v‖²")
    ax.set_title("L2 loss vs α")
    _legend_outside(ax)
    return art


def figure_toy(toy):
    """Fig. 1: the plane and the L2-loss curve side by side; returns the Figure."""
    fig = Figure(figsize=(12.0, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=(1.0, 1.2))
    plot_toy_plane(toy, ax1)
    plot_toy_loss(toy, ax2)
    return fig


# --- 2. expected orientation loss vs λ ------------------------------------------------------

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
    dict of artists: ``curves`` and ``optima``, dicts keyed by bits.

    Examples
    --------
    >>> art = plot_orientation_curves(bits=[2, 3], num=20)
    >>> sorted(art["curves"]), art["curves"][2].axes.get_yscale()
    ([2, 3], 'log')
    """
    ax = _axes(ax)
    lams = np.geomspace(lam_range[0], lam_range[1], num)
    curves, optima = {}, {}
    for i, k in enumerate(bits):
        k = int(k)
        color = f"C{i % 10}"
        jo = [tables.expected_orientation(x, k, lattice, dist) for x in lams]
        (curves[k],) = ax.plot(lams, _positive(jo), color=color, lw=1.2, label=f"k = {k}")
        lk = tables.optimal_step(k, lattice, dist)
        (optima[k],) = ax.plot([lk], [tables.expected_orientation(lk, k, lattice, dist)], "o",
                               color=color, ms=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("λ = s/σ")
    ax.set_ylabel("expected orientation loss $J_o$")
    ax.set_title(f"Expected $J_o$ vs λ ({dist}, {lattice}); dots: λ_k")
    ax.legend(fontsize="x-small", ncol=2)
    return {"curves": curves, "optima": optima}


# --- 3. λ_k vs searched λ on trained layers -------------------------------------------------

def plot_lambda_comparison(records, lattice="midrise", ax=None):
    """Theoretical λ_k against the exact-search and grid-search λ of real layers, by bits.

    Parameters
    ----------
    records : list of dict
        ``{"layer", "bits", "lam_exact", "lam_grid"}`` (λ in σ units: step/σ of the layer).
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
    >>> list(art["exact"]), art["theory"].get_label()
    (['fc1'], 'Gaussian λ_k (theory)')
    """
    ax = _axes(ax)
    bits = sorted({int(r["bits"]) for r in records})
    (theory,) = ax.plot(bits, [tables.optimal_step(k, lattice) for k in bits], "k-", lw=1.5,
                        label="Gaussian λ_k (theory)")
    layers = list(dict.fromkeys(r["layer"] for r in records))
    exact, grid = {}, {}
    n = max(len(layers), 1)
    for i, name in enumerate(layers):
        rows = sorted((r for r in records if r["layer"] == name), key=lambda r: r["bits"])
        shift = 0.06 * (i - (n - 1) / 2)
        x = np.array([r["bits"] for r in rows], dtype=float) + shift
        color = f"C{i % 10}"
        (exact[name],) = ax.plot(x, _positive([r["lam_exact"] for r in rows]), "o",
                                 color=color, ms=5, label=f"{name} exact")
        (grid[name],) = ax.plot(x, _positive([r["lam_grid"] for r in rows]), "x",
                                color=color, ms=6, label=f"{name} grid")
    ax.set_yscale("log")
    ax.set_xticks(bits)
    ax.set_xlabel("bits k")
    ax.set_ylabel("λ = step/σ")
    ax.set_title("Theoretical vs searched λ on trained layers")
    _legend_outside(ax, ncol=1 if len(layers) <= 8 else 2)
    return {"theory": theory, "exact": exact, "grid": grid}


# --- 4. relative DQL vs bits, every method --------------------------------------------------

def _is_vecq(method):
    return method.startswith("vecq_")


def plot_dql_vs_bits(records, methods=None, ax=None, reference=None, relative_to=None):
    """Relative DQL vs bits for every method of a :func:`vecq_ref.compare` run (log y).

    Parameters
    ----------
    records : list of dict
        With at least ``method``, ``bits`` and ``relative_dql``.
    methods : list of str, optional
        Which methods, in drawing order (default: as they appear).
    reference : str, optional
        A method drawn as a thick grey line under the others (e.g. ``"vecq_exact"`` in the
        panel of baselines), labelled "(reference)".
    relative_to : str, optional
        Plot each method's relative DQL divided by this method's at the same bits (linear
        y): variants within a few percent of each other become distinguishable.

    Returns
    -------
    dict of artists: ``lines`` keyed by method (the reference included).

    Examples
    --------
    >>> recs = [{"method": "vecq_param", "bits": b, "relative_dql": 0.1 / 4 ** b}
    ...         for b in (1, 2, 3)]
    >>> art = plot_dql_vs_bits(recs)
    >>> art["lines"]["vecq_param"].get_xdata().tolist()
    [1.0, 2.0, 3.0]
    """
    ax = _axes(ax, (6.0, 4.0))
    if methods is None:
        methods = list(dict.fromkeys(r["method"] for r in records))
    markers = "os^vD<>ph*P"
    if len(methods) > 10:  # tab20 keeps every method's colour distinct
        from matplotlib import colormaps

        palette = list(colormaps["tab20"].colors)
    else:
        palette = [f"C{i}" for i in range(10)]
    lines = {}

    def rows_of(m):
        return sorted((r for r in records if r["method"] == m), key=lambda r: r["bits"])

    base = {}
    if relative_to is not None:
        base = {int(r["bits"]): r["relative_dql"] for r in rows_of(relative_to)}

    def ys(rows):
        if relative_to is None:
            return _positive([r["relative_dql"] for r in rows])
        return np.array([r["relative_dql"] / base[int(r["bits"])]
                         if base.get(int(r["bits"])) else np.nan for r in rows])

    if reference is not None and rows_of(reference):
        rows = rows_of(reference)
        (lines[reference],) = ax.plot([float(r["bits"]) for r in rows], ys(rows),
                                      color="0.7", lw=4.0, solid_capstyle="round", zorder=1,
                                      label=f"{reference} (reference)")
    for i, m in enumerate(methods):
        rows = rows_of(m)
        if not rows or m == reference:
            continue
        (lines[m],) = ax.plot([float(r["bits"]) for r in rows], ys(rows),
                              marker=markers[i % len(markers)], ms=4,
                              ls=("-", "--", "-.", ":")[(i // len(markers)) % 4], lw=1.2,
                              color=palette[i % len(palette)], label=m, zorder=2)
    if relative_to is None:
        ax.set_yscale("log")
        ax.set_ylabel("relative DQL ‖w − w_q‖²/‖w‖²")
    else:
        ax.set_ylabel(f"relative DQL ÷ {relative_to}'s")
    ax.set_xticks(sorted({int(r["bits"]) for r in records}))
    ax.set_xlabel("bits k")
    ax.set_title("Relative DQL vs bits")
    _legend_outside(ax)
    return {"lines": lines}


def plot_dql_vs_bits_panels(records, methods=None, axes=None, reference="vecq_exact"):
    """Fig. 4 in two panels: the VecQ variants, then the baselines.

    Sixteen lines on one axes cannot be told apart. The VecQ variants lie within a few
    percent of each other, so the left panel shows each one's relative DQL divided by
    ``reference``'s (the exact-search VecQ; 1 = as good); the right panel shows the baselines'
    relative DQL (log y) with ``reference`` as a thick grey line to compare against.

    Parameters
    ----------
    records : list of dict
        As for :func:`plot_dql_vs_bits`.
    methods : list of str, optional
        Drawing order (default: as they appear); ``vecq_*`` go left, the rest right.
    axes : pair of matplotlib Axes, optional
        Default: a new figure with two panels.
    reference : str or None
        Without it (or without its records) the left panel shows relative DQL (log y) too.

    Returns
    -------
    dict: ``vecq`` and ``baselines``, each the artists of :func:`plot_dql_vs_bits`.

    Examples
    --------
    >>> recs = [{"method": m, "bits": b, "relative_dql": c / 4 ** b}
    ...         for m, c in (("vecq_param", 0.1), ("vecq_exact", 0.09), ("twn", 0.2))
    ...         for b in (2, 3)]
    >>> art = plot_dql_vs_bits_panels(recs)
    >>> sorted(art["vecq"]["lines"]), sorted(art["baselines"]["lines"])
    (['vecq_exact', 'vecq_param'], ['twn', 'vecq_exact'])
    >>> art["vecq"]["lines"]["vecq_param"].get_ydata().round(4).tolist()
    [1.1111, 1.1111]
    """
    if methods is None:
        methods = list(dict.fromkeys(r["method"] for r in records))
    if axes is None:
        fig = Figure(figsize=(12.0, 4.6), layout="constrained")
        axes = fig.subplots(1, 2)
    left, right = axes
    has_ref = reference is not None and any(r["method"] == reference for r in records)
    ref = reference if has_ref else None
    vecq = plot_dql_vs_bits(records, [m for m in methods if _is_vecq(m)], ax=left,
                            relative_to=ref)
    base = plot_dql_vs_bits(records, [m for m in methods if not _is_vecq(m)], ax=right,
                            reference=ref)
    left.set_title("VecQ variants" + (f" against {ref}" if ref else ""))
    right.set_title("Baselines" + (f" ({ref} in grey)" if ref else ""))
    return {"vecq": vecq, "baselines": base}


# --- 5. training curves ---------------------------------------------------------------------

_KEY_LABELS = {"loss": "training loss", "test_loss": "test loss", "test_acc": "test accuracy",
               "train_acc": "training accuracy"}


def plot_training_curves(runs, key="test_acc", ax=None):
    """One metric of the epoch logs vs epoch, one line per run (float and each bitwidth).

    Parameters
    ----------
    runs : dict
        ``{label: [epoch record, ...]}``; records hold ``epoch`` and ``key``.
    key : str
        ``"loss"``, ``"test_loss"``, ``"test_acc"`` or ``"train_acc"``.

    Returns
    -------
    dict of artists: ``lines`` keyed by label.

    Examples
    --------
    >>> runs = {"float": [{"epoch": 1, "test_acc": 0.8}, {"epoch": 2, "test_acc": 0.9}]}
    >>> art = plot_training_curves(runs)
    >>> art["lines"]["float"].axes.get_ylabel()
    'test accuracy'
    """
    ax = _axes(ax)
    lines = {}
    for i, (label, recs) in enumerate(runs.items()):
        xs = [r["epoch"] for r in recs if r.get(key) is not None]
        ys = [r[key] for r in recs if r.get(key) is not None]
        style = "-" if label == "float" else "--"
        color = "k" if label == "float" else f"C{i % 10}"
        (lines[label],) = ax.plot(xs, ys, style, color=color, marker=".", lw=1.2, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(_KEY_LABELS.get(key, key))
    if key.endswith("loss"):
        ax.set_yscale("log")
    ax.legend(fontsize="x-small", ncol=2)
    return {"lines": lines}


def figure_training(runs, title=None):
    """Fig. 5: training loss and test accuracy vs epoch side by side; returns the Figure."""
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    plot_training_curves(runs, "loss", ax1)
    plot_training_curves(runs, "test_acc", ax2)
    if title:
        fig.suptitle(title)
    return fig


# --- 6. code histograms and per-layer DQL ---------------------------------------------------

def plot_code_histogram(w, codes, alpha, bits, lattice="midrise", layer=None, bins=60,
                        ax=None):
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
    bars = ax.bar(levels, counts, width=width, color="C1", alpha=0.35, label="codes (count)")
    edges = np.linspace(-span, span, bins + 1)
    # Weighted to counts per unit of w/α, so its area matches the code bars (one unit wide).
    _, _, patches = ax.hist(x, bins=edges, weights=np.full(x.size, 1.0 / (edges[1] - edges[0])),
                            histtype="step", color="C0", label="w / α (count per unit)")
    vlines = [ax.axvline(v, color="0.5", lw=0.6, ls=":") for v in levels]
    ax.set_xlabel("w / α  (levels v dotted)")
    ax.set_ylabel("count")
    ax.set_title(f"{layer + ': ' if layer else ''}{bits}-bit codes")
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
        Prefix of the legend entries (e.g. ``"4-bit"``).
    logy : bool
        Log scale for the metric (for runs of several bitwidths at once).

    Returns
    -------
    dict of artists: ``lines`` keyed by layer.

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
    lines = {}
    for i, name in enumerate(layers):
        pts = [(r["epoch"], r.get(name + suffix)) for r in epochs]
        pts = [(e, v) for e, v in pts if v is not None]
        text = f"{label} {name}" if label else name
        ys = [p[1] for p in pts]
        (lines[name],) = ax.plot([p[0] for p in pts], _positive(ys) if logy else ys,
                                 marker=".", color=f"C{i % 10}", label=text)
    if logy:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("Per-layer quantization loss during training")
    _legend_outside(ax)
    return {"lines": lines}


# --- 7. accuracy vs bitwidth ----------------------------------------------------------------

def plot_accuracy_vs_bits(accuracy, float_accuracy=None, label="VecQ", ax=None):
    """Final test accuracy vs weight bitwidth (μL2Q style), float as a horizontal line.

    Parameters
    ----------
    accuracy : dict
        ``{bits: accuracy}`` (or ``{label: {bits: accuracy}}`` for several series).
    float_accuracy : float, optional

    Returns
    -------
    dict of artists: ``lines`` keyed by series label, ``float`` (line or None).

    Examples
    --------
    >>> art = plot_accuracy_vs_bits({1: 0.8, 2: 0.9, 4: 0.95}, float_accuracy=0.96)
    >>> art["lines"]["VecQ"].get_ydata().tolist(), art["float"].get_label()
    ([0.8, 0.9, 0.95], 'float 0.96')
    """
    ax = _axes(ax)
    if accuracy and not isinstance(next(iter(accuracy.values())), dict):
        accuracy = {label: accuracy}
    lines = {}
    all_bits = set()
    for i, (name, acc) in enumerate(accuracy.items()):
        bits = sorted(int(b) for b in acc)
        all_bits.update(bits)
        (lines[name],) = ax.plot(bits, [acc[b] if b in acc else acc[str(b)] for b in bits],
                                 "o-", color=f"C{i % 10}", label=name)
    flt = None
    if float_accuracy is not None:
        flt = ax.axhline(float_accuracy, color="k", ls="--", lw=1,
                         label=f"float {float_accuracy:.4g}")
    if all_bits:
        ax.set_xticks(sorted(all_bits))
    ax.set_xlabel("weight bits k")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy vs bitwidth")
    ax.legend(fontsize="x-small")
    return {"lines": lines, "float": flt}


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
    "FORMATS", "figure_of", "figure_toy", "figure_training", "plot_accuracy_vs_bits",
    "plot_code_histogram", "plot_dql_vs_bits", "plot_dql_vs_bits_panels",
    "plot_lambda_comparison", "plot_layer_dql", "plot_orientation_curves", "plot_toy_loss",
    "plot_toy_plane", "plot_training_curves", "save_figure", "toy_example",
]
