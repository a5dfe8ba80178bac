"""Each figure function draws the expected axes, labels and series (objects, not pixels)."""

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from vecq_ref import plotting as P
from vecq_ref import tables


@pytest.fixture
def ax():
    return Figure().add_subplot()


def test_toy_example_l2_iterative_is_stuck_and_vector_loss_is_not():
    t = P.toy_example()
    assert t["l2"]["codes"].tolist() == [3, 1]
    assert t["vector"]["codes"].tolist() == [1, 0]
    assert t["vector"]["dql"] < 0.2 * t["l2"]["dql"]
    assert t["vector"]["orientation"] < t["l2"]["orientation"]
    # Each α is the least-squares scale of its codes.
    for sol in (t["l2"], t["vector"]):
        v = sol["levels"]
        assert sol["alpha"] == pytest.approx(t["w"] @ v / (v @ v), rel=1e-12)
    # The vector-loss solution attains the smallest L2 loss on the α curve.
    assert t["vector"]["dql"] <= t["dql"].min() + 1e-12


def test_toy_example_agrees_with_exact_search():
    from vecq_ref import quantize

    w = np.array([0.74, 0.22])
    t = P.toy_example(w, bits=3)
    e = quantize(w, 3, method="exact")
    assert t["vector"]["codes"].tolist() == e.codes.tolist()
    assert t["vector"]["dql"] == pytest.approx(e.loss.dql, rel=1e-9)


def test_plot_toy_plane(ax):
    art = P.plot_toy_plane(P.toy_example(), ax=ax)
    assert art["w"].axes is ax
    assert ax.get_xlabel() == "$w_1$" and ax.get_ylabel() == "$w_2$"
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert any(lab.startswith("L2-iterative") for lab in labels)
    assert any(lab.startswith("vector loss") for lab in labels)
    x, y = art["vector"]["point"].get_data()
    t = P.toy_example()
    np.testing.assert_allclose([x[0], y[0]], t["vector"]["alpha"] * t["vector"]["levels"])


def test_plot_toy_loss(ax):
    t = P.toy_example()
    art = P.plot_toy_loss(t, ax=ax)
    assert ax.get_xlabel() == r"$\alpha$"
    assert "L2 loss" in ax.get_ylabel()
    assert art["start"].get_xdata()[0] == t["alpha0"]
    np.testing.assert_array_equal(art["envelope"].get_xdata(), t["alpha"])
    np.testing.assert_array_equal(art["envelope"].get_ydata(), t["dql"])
    for name in ("l2", "vector"):
        assert art[name]["point"].get_ydata()[0] == pytest.approx(t[name]["dql"])


def test_figure_toy_has_two_panels():
    fig = P.figure_toy(P.toy_example())
    assert len(fig.axes) == 2
    assert [a.get_title() for a in fig.axes][1] == r"L2 loss vs $\alpha$"


def test_plot_orientation_curves(ax):
    art = P.plot_orientation_curves(bits=range(2, 9), num=40, ax=ax)
    assert sorted(art["curves"]) == list(range(2, 9))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == r"$\lambda = s/\sigma$"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"$k$ = {k}" for k in range(2, 9)] + [r"$\lambda_k$ (minimum of each curve)"]
    assert ax.get_title() == r"Expected $J_o$ vs $\lambda$ (Gaussian weights, midrise)"
    for k, marker in art["optima"].items():
        lam = marker.get_xdata()[0]
        assert lam == tables.optimal_step(k)
        # λ_k is the minimum of its curve.
        assert marker.get_ydata()[0] <= np.nanmin(art["curves"][k].get_ydata()) + 1e-15


def test_plot_lambda_comparison(ax):
    recs = [{"layer": name, "bits": b, "lam_exact": 1.1 * tables.optimal_step(b),
             "lam_grid": 1.1 * tables.optimal_step(b)}
            for name in ("fc1", "fc2") for b in range(2, 9)]
    art = P.plot_lambda_comparison(recs, ax=ax)
    assert list(art["exact"]) == ["fc1", "fc2"] and list(art["grid"]) == ["fc1", "fc2"]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "bits $k$"
    assert art["grid"]["fc2"].get_label() == "fc2, VecQ-grid"
    np.testing.assert_allclose(art["theory"].get_ydata(),
                               [tables.optimal_step(b) for b in range(2, 9)])
    np.testing.assert_allclose(art["exact"]["fc1"].get_ydata(),
                               [1.1 * tables.optimal_step(b) for b in range(2, 9)])


def test_plot_dql_vs_bits_one_line_per_method(ax):
    from vecq_ref.compare import compare

    w = np.random.default_rng(0).standard_normal(500)
    recs = compare(w, bits=[1, 2, 3], methods=["vecq_param", "bwn", "twn", "absmax"])
    art = P.plot_dql_vs_bits(recs, ax=ax)
    assert set(art["lines"]) == {"vecq_param", "bwn", "twn", "absmax"}
    assert art["lines"]["vecq_param"].get_xdata().tolist() == [1.0, 2.0, 3.0]
    assert art["lines"]["bwn"].get_xdata().tolist() == [1.0]
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel().startswith("relative DQL")
    shown = {"vecq_param": "VecQ-param", "bwn": "BWN", "twn": "TWN", "absmax": "abs-max"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        shown[m] for m in art["lines"]]


def test_plot_dql_vs_bits_zero_loss_is_a_gap_not_a_warning(ax):
    recs = [{"method": "m", "bits": 1, "relative_dql": 0.0},
            {"method": "m", "bits": 2, "relative_dql": 0.1}]
    art = P.plot_dql_vs_bits(recs, ax=ax)
    assert np.isnan(art["lines"]["m"].get_ydata()[0])


def _runs():
    return {label: [{"epoch": e, "loss": 1.0 / (e + i), "test_acc": 0.5 + 0.1 * e - 0.01 * i}
                    for e in (1, 2, 3)]
            for i, label in enumerate(["float", "1-bit", "2-bit"])}


def test_plot_training_curves(ax):
    art = P.plot_training_curves(_runs(), "test_acc", ax=ax)
    assert list(art["lines"]) == ["float", "1-bit", "2-bit"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "test accuracy"
    assert art["lines"]["float"].get_linestyle() == "-"
    assert art["lines"]["2-bit"].get_linestyle() == "--"
    assert art["lines"]["1-bit"].get_ydata().tolist() == pytest.approx([0.59, 0.69, 0.79])


def test_figure_training_loss_and_accuracy():
    fig = P.figure_training(_runs(), title="mlp")
    assert [a.get_ylabel() for a in fig.axes] == ["training loss", "test accuracy"]
    assert fig.axes[0].get_yscale() == "log"
    assert all(len(a.get_lines()) == 3 for a in fig.axes)


def test_plot_code_histogram(ax):
    from vecq_ref import quantize

    w = np.random.default_rng(1).standard_normal(400)
    q = quantize(w, 3)
    art = P.plot_code_histogram(w, q.codes, q.alpha, 3, layer="fc1", ax=ax)
    assert len(art["codes"]) == 8 and len(art["levels"]) == 8
    heights = [b.get_height() for b in art["codes"]]
    assert sum(heights) == w.size
    assert [v.get_xdata()[0] for v in art["levels"]] == [c + 0.5 for c in range(-4, 4)]
    assert ax.get_title() == "fc1: 3-bit codes"


def test_plot_layer_dql(ax):
    recs = [{"epoch": e, "fc1/relative_dql": 0.1 / e, "fc2/relative_dql": 0.2 / e,
             "fc1/J_o": 0.01, "loss": 1.0} for e in (1, 2, 3)]
    art = P.plot_layer_dql(recs, label="2-bit", ax=ax)
    assert list(art["lines"]) == ["fc1", "fc2"]
    assert art["lines"]["fc2"].get_label() == "2-bit, layer fc2"
    assert art["lines"]["fc1"].get_ydata().tolist() == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert ax.get_yscale() == "linear"
    assert ax.get_ylabel() == r"relative DQL $\|w - w_q\|^2 / \|w\|^2$"
    assert P.plot_layer_dql(recs, logy=True)["lines"]["fc1"].axes.get_yscale() == "log"


def test_plot_accuracy_vs_bits_several_series(ax):
    acc = {"training": {1: 0.8, 2: 0.9, 4: 0.95}, "post-training": {1: 0.3, 2: 0.6, 4: 0.9}}
    art = P.plot_accuracy_vs_bits(acc, float_accuracy=0.96, ax=ax)
    assert list(art["lines"]) == ["training", "post-training"]
    assert art["lines"]["post-training"].get_xdata().tolist() == [1, 2, 4]
    assert list(art["float"].get_ydata()) == [0.96, 0.96]
    assert ax.get_xlabel() == "weight bits $k$" and ax.get_ylabel() == "test accuracy"
    assert art["float"].get_label() == "float (0.96)"
    assert [t for t in ax.get_xticks()] == [1, 2, 4]


def test_plot_functions_create_their_own_figure_without_pyplot():
    import sys

    art = P.plot_accuracy_vs_bits({2: 0.9})
    assert isinstance(P.figure_of(art), Figure)
    sub = Figure().subfigures(1, 2)[1]
    assert P.figure_of(P.plot_accuracy_vs_bits({2: 0.9}, ax=sub.add_subplot())) is sub.figure
    assert "matplotlib.pyplot" not in sys.modules or not _pyplot_has_figures()


def _pyplot_has_figures():
    import matplotlib.pyplot as plt

    return bool(plt.get_fignums())


def test_save_figure_is_deterministic_and_refuses_to_overwrite(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        art = P.plot_accuracy_vs_bits({1: 0.8, 2: 0.9, 4: 0.95}, float_accuracy=0.96)
        P.save_figure(P.figure_of(art), tmp_path / sub / "fig")
    for fmt in ("png", "pdf"):
        a = (tmp_path / "a" / f"fig.{fmt}").read_bytes()
        b = (tmp_path / "b" / f"fig.{fmt}").read_bytes()
        assert a == b and len(a) > 1000
    assert (tmp_path / "a" / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a" / "fig.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(FileExistsError, match=r"pass force=True to overwrite it$"):
        P.save_figure(P.figure_of(P.plot_accuracy_vs_bits({2: 0.5})), tmp_path / "a" / "fig")
    P.save_figure(P.figure_of(P.plot_accuracy_vs_bits({2: 0.5})), tmp_path / "a" / "fig",
                  force=True)
    assert (tmp_path / "a" / "fig.png").read_bytes() != (tmp_path / "b" / "fig.png").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["fig.pdf", "fig.png"]


def _overlaps(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _compare_records():
    from vecq_ref.compare import METHODS

    rng = np.random.default_rng(4)
    return [{"method": m, "bits": b, "relative_dql": float(rng.uniform(0.5, 2.0)) / 4 ** b}
            for m in METHODS for b in (1, 2, 3, 4)]


def _figures_with_legends():
    """Figures 1, 3, 4 and 6 as drawn by ``vecq-ref reproduce``, on small data."""
    from matplotlib.figure import Figure

    yield "fig1", P.figure_toy(P.toy_example())
    recs = [{"layer": f"mlp/fc{i}", "bits": b, "lam_exact": 0.9 / 2 ** (b - 2),
             "lam_grid": 0.93 / 2 ** (b - 2)} for i in (1, 2, 3) for b in range(2, 9)]
    yield "fig3", P.figure_of(P.plot_lambda_comparison(recs))
    yield "fig4", P.figure_of(P.plot_dql_vs_bits_panels(_compare_records()))
    w = np.random.default_rng(5).standard_normal(500)
    fig = Figure(figsize=(8, 6.6), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    for i in range(2):
        P.plot_code_histogram(w, np.clip(np.floor(w / 0.6), -2, 1), 0.6, 2, layer=f"fc{i}",
                              ax=fig.add_subplot(grid[0, i]))
    P.plot_layer_dql([{"epoch": e, "fc1/relative_dql": 0.1 / e, "fc2/relative_dql": 0.2 / e}
                      for e in (1, 2, 3)], ax=fig.add_subplot(grid[1, :]))
    yield "fig6", fig


@pytest.mark.parametrize("name", ["fig1", "fig3", "fig4", "fig6"])
def test_legends_never_cover_data(name):
    """Every legend lies outside every axes of its figure (issue 13: they covered data)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = dict(_figures_with_legends())[name]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    for leg in legends:
        box = leg.get_window_extent(renderer)
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
        for ax in fig.axes:
            assert not _overlaps(box, ax.get_window_extent(renderer)), (name, ax.get_title())


def test_figure_4_separates_vecq_variants_from_baselines():
    from vecq_ref.compare import METHODS

    recs = _compare_records()
    art = P.plot_dql_vs_bits_panels(recs, methods=list(METHODS))
    scale, vecq, base = (art[k]["lines"] for k in ("scale", "vecq", "baselines"))
    refs = {"vecq_exact", "vecq_exact_midtread"}
    # Each method is drawn once: the references on the scale panel, the VecQ variants in the
    # middle, the baselines at the bottom or, when more than FAR times off, on the scale panel.
    assert len(METHODS) >= 16
    assert refs <= set(scale)
    assert set(vecq) == {m for m in METHODS if m.startswith("vecq_")} - refs - {"vecq_normalpha"}
    assert set(base) | set(scale) == {m for m in METHODS if not m.startswith("vecq_")} | refs | {
        "vecq_normalpha"}
    assert not set(base) & set(scale)
    # Within a panel, no two methods share colour, marker and line style.
    for lines in (scale, vecq, base):
        styles = [(ln.get_color(), ln.get_marker(), ln.get_linestyle())
                  for ln in lines.values()]
        assert len(set(styles)) == len(styles)
    # Like for like: each ratio is over VecQ-exact with the same number of levels, worked out
    # here (2^k for midrise, 2^k - 1 for midtread).
    from vecq_ref.compare import n_levels

    by = {(r["method"], r["bits"]): r["relative_dql"] for r in recs}
    for m, line in vecq.items():
        ref = "vecq_exact_midtread" if n_levels(m, 2) == 3 else "vecq_exact"
        np.testing.assert_allclose(line.get_ydata(),
                                   [by[(m, b)] / by[(ref, b)] if (ref, b) in by else np.nan
                                    for b in (1, 2, 3, 4)])
    np.testing.assert_allclose(vecq["vecq_param_midtread"].get_ydata()[1:],
                               [by[("vecq_param_midtread", b)] / by[("vecq_exact_midtread", b)]
                                for b in (2, 3, 4)])
    assert art["vecq"]["unity"].get_label() == "VecQ-exact (same levels) = 1"
    assert vecq["vecq_param"].get_label() == "VecQ-param"


def test_figure_4_twn_is_divided_by_the_midtread_optimum():
    """TWN's 3 levels at 2 bits against VecQ-exact midtread (3), not VecQ-exact (4)."""
    recs = [{"method": "vecq_exact", "bits": 2, "levels": 4, "relative_dql": 0.10},
            {"method": "vecq_exact_midtread", "bits": 2, "levels": 3, "relative_dql": 0.16},
            {"method": "twn", "bits": 2, "levels": 3, "relative_dql": 0.20},
            {"method": "aciq", "bits": 2, "levels": 4, "relative_dql": 0.11}]
    art = P.plot_dql_vs_bits_panels(recs)
    lines = art["baselines"]["lines"]
    assert lines["twn"].get_ydata().tolist() == [0.20 / 0.16]  # 1.25, not 2.0
    assert lines["aciq"].get_ydata().tolist() == [0.11 / 0.10]
    # Without the midtread reference TWN has nothing like it to be divided by: not drawn.
    art = P.plot_dql_vs_bits_panels(recs[:1] + recs[2:])
    assert "twn" not in art["baselines"]["lines"] and "twn" not in art["scale"]["lines"]


def test_figure_4_far_baselines_go_to_the_scale_panel():
    recs = [{"method": m, "bits": b, "relative_dql": c / 4 ** b}
            for m, c in (("vecq_exact", 0.1), ("dorefa", 0.1 * (P.FAR + 0.01)),
                         ("aciq", 0.1 * (P.FAR - 0.01))) for b in (2, 3)]
    art = P.plot_dql_vs_bits_panels(recs)
    assert set(art["scale"]["lines"]) == {"vecq_exact", "dorefa"}
    assert set(art["baselines"]["lines"]) == {"aciq"}
    assert art["scale"]["lines"]["dorefa"].axes.get_yscale() == "log"


def test_figure_4_baselines_on_the_reference_line_are_drawn_as_ratios():
    """The trial's full run: μL2Q, ACIQ and norm-matched α lie on VecQ-exact's line over five
    decades (hidden on the log panel) and reach about 2.1× at 8 bits; they go to the ratio
    panel, where μL2Q at 4 bits (1.027) can be read, marked as an offset lattice."""
    ratios = {"ul2q": (0.996, 1.027, 2.169), "aciq": (1.039, 1.083, 2.084),
              "vecq_normalpha": (1.103, 1.01, 2.023), "lloyd_max": (0.996, 0.778, 0.6),
              "dorefa": (105.0, 178.5, 16115.0)}
    bits = (2, 4, 8)
    recs = [{"method": "vecq_exact", "bits": b, "relative_dql": 0.1 / 4 ** b} for b in bits]
    recs += [{"method": m, "bits": b, "relative_dql": q * 0.1 / 4 ** b}
             for m, qs in ratios.items() for b, q in zip(bits, qs, strict=True)]
    art = P.plot_dql_vs_bits_panels(recs)
    assert set(art["scale"]["lines"]) == {"vecq_exact", "dorefa"}
    lines = art["baselines"]["lines"]
    assert set(lines) == {"ul2q", "aciq", "vecq_normalpha", "lloyd_max"}
    np.testing.assert_allclose(lines["ul2q"].get_ydata(), ratios["ul2q"])
    assert lines["ul2q"].get_label() == "μL2Q, printed λ*"
    assert lines["lloyd_max"].get_label() == "Lloyd–Max (non-uniform)"
    note = art["baselines"]["note"].get_text().replace("\n", " ")
    assert "* offset lattice" in note and "Non-uniform levels" in note
    # The mark follows the record's lattice where it has one.
    recs += [{"method": "ul2q_code", "bits": 2, "lattice": "midrise", "relative_dql": 0.01}]
    art = P.plot_dql_vs_bits_panels(recs)
    assert art["baselines"]["lines"]["ul2q_code"].get_label() == "μL2Q, code λ"


def test_coincident_lines_are_named_in_a_note(ax):
    # param and paper equal, grid 0.5 % of the span away: all three coincide; exact does not.
    recs = [{"method": m, "bits": b, "relative_dql": v}
            for m, vals in (("vecq_param", (0.30, 0.10, 0.05)),
                            ("vecq_paper", (0.30, 0.10, 0.05)),
                            ("vecq_grid", (0.30 + 0.005 * 0.25, 0.10, 0.05)),
                            ("vecq_alternating", (0.20, 0.10, 0.05)))
            for b, v in zip((1, 2, 3), vals, strict=True)]
    art = P.plot_dql_vs_bits(recs, ax=ax, logy=False)
    text = art["note"].get_text().replace("\n", " ")
    assert "VecQ-param = VecQ-paper = VecQ-grid" in text
    assert "VecQ-alternating" not in text
    apart = [r for r in recs if r["method"] in ("vecq_param", "vecq_alternating")]
    assert P.plot_dql_vs_bits(apart, ax=Figure().add_subplot())["note"] is None
    # The rule itself, by hand: 1 % of the y span (log10 on a log axis).
    assert P.coincident([("a", [1, 2], [1.0, 2.0]), ("b", [1, 2], [1.0, 2.011])]) == []
    assert P.coincident([("a", [1, 2], [1.0, 2.0]), ("b", [1, 2], [1.0, 2.009])]) == [["a", "b"]]
    assert P.coincident([("a", [1, 2], [1.0, 10.0]), ("b", [1, 2], [1.0, 10.2])],
                        logy=True) == [["a", "b"]]
    assert P.coincident([("a", [1, 2], [1.0, 2.0]), ("b", [1, 3], [1.0, 2.0])]) == []
    # A shorter series at the same x values as a longer one is hidden under it (TWN's one
    # bitwidth on VecQ's line); the longer one never joins a group through it.
    assert P.coincident([("a", [1, 2, 3], [1.0, 2.0, 3.0]), ("b", [2], [2.0])]) == [["a", "b"]]
    assert P.coincident([("b", [1], [1.0]), ("a", [1, 2], [1.0, 2.0]),
                         ("c", [1, 2], [1.0, 3.0])]) == [["b", "a"]]


def test_training_float_line_is_drawn_under_and_wider_than_the_others(ax):
    runs = {"float": [{"epoch": e, "test_acc": 0.9} for e in (1, 2)],
            **{f"{k}-bit": [{"epoch": e, "test_acc": 0.9} for e in (1, 2)] for k in (4, 8)}}
    art = P.plot_training_curves(runs, ax=ax)
    flt = art["lines"]["float"]
    others = [art["lines"]["4-bit"], art["lines"]["8-bit"]]
    assert all(flt.get_linewidth() > 3 * ln.get_linewidth() for ln in others)
    assert all(flt.get_zorder() < ln.get_zorder() for ln in others)
    assert "float = 4-bit = 8-bit" in art["note"].get_text()


# --- every series of every figure: a distinct style and a label from the names table --------

def _reproduce_results(folder):
    """Stage results as ``vecq-ref reproduce`` leaves them (default run shape), made up."""
    rng = np.random.default_rng(6)
    res = {"toy": {"w": [0.74, 0.22], "bits": 3, "lattice": "midrise"}}
    res["lambda"] = {"records": [{"layer": f"mlp/fc{i}", "bits": b,
                                  "lam_exact": tables.optimal_step(b) * (1 + 0.05 * i),
                                  "lam_grid": tables.optimal_step(b) * (1 + 0.06 * i)}
                                 for i in (1, 2) for b in range(2, 9)]}
    # As on trained layers: μL2Q's two tables agree, TWN equals VecQ-exact midtread.
    recs = _compare_records()
    by = {(r["method"], r["bits"]): r for r in recs}
    for r in recs:
        if r["method"] == "ul2q_code":
            r["relative_dql"] = by[("ul2q", r["bits"])]["relative_dql"] * 1.0001
        if r["method"] == "twn" and r["bits"] == 2:
            r["relative_dql"] = by[("vecq_exact_midtread", 2)]["relative_dql"]
    res["compare"] = {"layers": [{"layer": "mlp/fc1", "size": 4096, "records": recs}]}
    for model, bits in (("mlp", [None, *range(1, 9)]), ("lenet5", [None, 1, 2, 4])):
        for k in bits:
            name = f"{model}-{'float' if k is None else f'{k}bit'}"
            # From 3 bits on, the runs match float: the lines coincide, as in a real run.
            gap = 0.0 if k is None or k >= 3 else 0.3 / k
            epochs = [{"epoch": e, "loss": 1.0 / e + gap, "test_acc": 0.9 + 0.01 * e - gap,
                       "fc1/relative_dql": 0.1 / e, "fc2/relative_dql": 0.2 / e}
                      for e in (1, 2, 3)]
            res[f"train-{name}"] = {"name": name, "model": model, "bits": k,
                                    "epochs": epochs, "test_acc": epochs[-1]["test_acc"],
                                    "run": f"runs/{name}"}
    res["ptq"] = {m: {"float": 0.93, **{str(k): 0.93 - 0.1 / k for k in range(1, 9)}}
                  for m in ("mlp", "lenet5")}
    run = folder / "runs" / "mlp-2bit"
    run.mkdir(parents=True)
    arrays = {}
    for layer, n in (("fc1", 600), ("fc2", 200)):
        w = rng.standard_normal(n)
        arrays.update({f"{layer}.weight": w, f"{layer}.alpha": np.array(0.6),
                       f"{layer}.codes": np.clip(np.floor(w / 0.6), -2, 1).astype(np.int8)})
    np.savez(run / "weights.npz", **arrays)
    return res


def _series(ax):
    """``[(label, style, has visible data)]`` of every artist drawn on ``ax`` that shows data."""
    from matplotlib.colors import to_rgba

    out = []
    for ln in ax.get_lines():
        x, y = (np.asarray(v, dtype=float) for v in ln.get_data())
        style = ("line", to_rgba(ln.get_color()), ln.get_marker(), ln.get_linestyle(),
                 str(ln.get_markerfacecolor()))
        out.append((ln.get_label(), style, x.size == 0 or bool(np.isfinite(y).any())))
    for coll in ax.collections:
        out.append((coll.get_label(), ("points", tuple(coll.get_facecolor()[0])), True))
    for cont in ax.containers:
        out.append((cont.get_label(), ("bars", cont.patches[0].get_facecolor()), True))
    in_bars = {id(p) for cont in ax.containers for p in cont.patches}
    for patch in ax.patches:
        if id(patch) not in in_bars:
            out.append((patch.get_label(), ("outline", patch.get_edgecolor()), True))
    return out


def _all_figures(tmp_path):
    from vecq_ref import reproduce as R
    from vecq_ref.check.report import model_report

    res = _reproduce_results(tmp_path)
    for stem, draw in R._DRAW.items():
        yield stem, draw(res, tmp_path) if stem == "fig6_codes" else draw(res)
    np.savez(tmp_path / "model.npz", a=np.random.default_rng(7).standard_normal((16, 16)))
    fig = Figure(layout="constrained")
    model_report(tmp_path / "model.npz", bits=[2, 3], method="param",
                 progress=False).plot(fig.add_subplot())
    yield "report --plot", fig


def test_every_series_has_a_distinct_style_and_a_label_from_the_names_table(tmp_path):
    """Issue 24: series hidden under others, code identifiers in legends."""
    from matplotlib.colors import to_rgba

    from vecq_ref import names

    axis_labels = set(names.QUANTITIES.values()) | {
        names.QUANTITIES["relative_dql_ratio"].format(method=m)
        for m in names.METHOD_NAMES.values()}
    seen = []
    for stem, fig in _all_figures(tmp_path):
        seen.append(stem)
        # A legend may serve several panels (fig5, fig6): any legend of the figure counts.
        legends = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        legends += [t.get_text() for ax in fig.axes if ax.get_legend() is not None
                    for t in ax.get_legend().get_texts()]
        for ax in fig.axes:
            series = _series(ax)
            labelled = [(lab, st, vis) for lab, st, vis in series if not lab.startswith("_")]
            assert labelled, (stem, ax.get_title())
            for lab, _, visible in labelled:
                assert names.is_series_label(lab), (stem, lab)
                assert lab in legends, (stem, lab)
                assert visible, (stem, lab)
            styles = [st for _, st, _ in labelled]
            assert len(set(styles)) == len(styles), (stem, ax.get_title())
            # An unlabelled artist is a part of a labelled series (its colour): a connector,
            # the dot of a curve's minimum, the other level lines.
            colours = {st[1] for st in styles}
            for lab, st, _ in series:
                if lab.startswith("_"):
                    assert to_rgba(st[1]) in colours, (stem, ax.get_title(), st)
            assert ax.get_xlabel() in axis_labels and ax.get_ylabel() in axis_labels, stem
            assert not any(re.search(rf"\b{m}\b", ax.get_title()) for m in names.METHOD_NAMES)
    assert len(seen) == 8


def _raw_identifiers(text):
    """The code identifiers in ``text`` outside mathtext: method, model and dataset names as
    the code spells them, ``model/layer`` paths, ``snake_case`` words."""
    from vecq_ref import names

    plain = re.sub(r"\$[^$]*\$", " ", text.replace("\n", " "))
    ids = [*names.METHOD_NAMES, *(k for k, v in {**names.MODELS, **names.DATASETS}.items()
                                  if k != v)]
    found = [m for m in ids if re.search(rf"(?<![\w-]){re.escape(m)}(?![\w-])", plain)]
    found += re.findall(r"\b\w+/\w+\b", plain) + re.findall(r"\b[a-z]\w*_\w+\b", plain)
    return found


def test_raw_identifiers_are_caught():
    """The check below, by hand: what a reader should never see, and what is fine."""
    assert _raw_identifiers("lenet5/fc1 (30720 weights)") == ["lenet5", "lenet5/fc1"]
    assert _raw_identifiers("mlp on digits") == ["mlp"]
    assert _raw_identifiers("LeNet-5 on mnist5k") == ["mnist5k"]
    assert _raw_identifiers("vecq_exact") == ["vecq_exact", "vecq_exact"]
    assert _raw_identifiers("ul2q_code (same levels)") == ["ul2q_code", "ul2q_code"]
    assert _raw_identifiers(r"LeNet-5 fc1, VecQ-exact; $w_q$; MNIST (5k subset); MLP") == []


def _texts(fig):
    """Every piece of text a reader sees on ``fig``: titles, labels, legends, notes."""
    out = [t.get_text() for t in fig.texts]
    out += [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    for ax in fig.axes:
        out += [ax.get_title(loc) for loc in ("left", "center", "right")]
        out += [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return [t for t in out if t]


def _line_style(ln):
    from matplotlib.colors import to_rgba

    return (to_rgba(ln.get_color()), ln.get_marker(), ln.get_linestyle())


def _hidden(ax, tol=0.005):
    """Labels of line series of ``ax`` lying, at each of their points, on another labelled
    line (within ``tol`` of the y span, on the drawn scale): entirely hidden under it.

    Independent of :func:`vecq_ref.plotting.coincident`, and stricter (half its tolerance),
    so that what it finds the figure must name."""
    logy = ax.get_yscale() == "log"
    series = []
    for ln in ax.get_lines():
        if ln.get_label().startswith("_") or ln.get_linestyle() in ("None", ""):
            continue
        x, y = (np.asarray(v, dtype=float) for v in ln.get_data())
        flat = ln.get_transform() == ax.get_yaxis_transform()  # axhline: any x
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(np.where(y > 0, y, np.nan)) if logy else y
        series.append((ln.get_label(), x, y, flat))
    finite = np.concatenate([y[np.isfinite(y)] for _, _, y, _ in series] or [np.zeros(0)])
    if finite.size == 0:
        return []
    span = float(np.ptp(finite)) or 1.0
    out = []
    for lab, x, y, flat in series:
        pts = [(a, b) for a, b in zip(x, y, strict=True) if np.isfinite(b)]
        if flat or not pts:
            continue
        for other, x2, y2, flat2 in series:
            if other == lab:
                continue
            at = dict(zip(x2.tolist(), y2.tolist(), strict=True))
            under = [y2[0] if flat2 else at.get(a, np.nan) for a, _ in pts]
            if all(abs(u - b) <= tol * span for u, (_, b) in zip(under, pts, strict=True)):
                out.append(lab)
                break
    return out


def test_hidden_series_check_by_hand():
    f = Figure()
    ax = f.add_subplot()
    ax.plot([1, 2, 3], [1.0, 2.0, 3.0], "-", label="a")
    ax.plot([2], [2.001], "-", label="b")        # one point, on a
    ax.plot([1, 2, 3], [1.0, 2.0, 3.1], "-", label="c")  # apart from a at x = 3
    ax.axhline(1.0, label="u")
    ax.plot([1, 2], [1.0, 1.0], "-", label="d")  # on the horizontal line
    assert _hidden(ax) == ["b", "d"]


def test_every_figure_styles_series_by_identity_names_hidden_ones_and_reads_in_words(tmp_path):
    """Issue 24, trial items 6 and 7: a series keeps its style in every panel of a figure
    (fig5 styled LeNet-5's 4-bit run as the MLP's 3-bit one, by position), the legends show
    the styles drawn and list every row's series, a series entirely hidden under another is
    named in a note under its axes, and no title, label, legend or note shows a code
    identifier ("lenet5/fc1", "mlp on digits", "vecq_exact")."""
    from vecq_ref import names
    from vecq_ref.compare import OFFSET_MARK

    assert names.OFFSET_MARK == OFFSET_MARK
    unlike = {names.method_name(m) for m in ("ul2q", "ul2q_code", "lloyd_max")}
    for stem, fig in _all_figures(tmp_path):
        styles = {}
        for ax in fig.axes:
            for ln in ax.get_lines():
                if not ln.get_label().startswith("_"):
                    styles.setdefault(ln.get_label(), set()).add(_line_style(ln))
        assert {lab for lab, st in styles.items() if len(st) > 1} == set(), stem
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        for leg in legends:
            for handle, text in zip(leg.legend_handles, leg.get_texts(), strict=True):
                if text.get_text() in styles and hasattr(handle, "get_marker"):
                    assert styles[text.get_text()] == {_line_style(handle)}, (stem, text)
        if fig.legends:  # one legend for the whole figure: it lists every panel's series
            listed = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
            assert set(styles) <= listed, (stem, set(styles) - listed)
        for ax in fig.axes:
            notes = " ".join(t.get_text().replace("\n", " ") for t in ax.texts)
            for lab in _hidden(ax):
                assert lab in notes, (stem, ax.get_title(), lab)
            # Not like for like, so never shown as if it were: an offset lattice carries
            # compare's mark, non-uniform levels say so, and a note says what the mark means.
            labels = {ln.get_label() for ln in ax.get_lines()}
            assert not labels & unlike, (stem, labels & unlike)
            if any(lab.endswith(OFFSET_MARK) for lab in labels):
                assert f"{OFFSET_MARK} offset lattice" in notes, stem
        assert [(t, _raw_identifiers(t)) for t in _texts(fig) if _raw_identifiers(t)] == [], stem


def test_figure_5_a_bitwidth_has_one_style_in_every_row():
    """The trial's fig5: MLP trained 1–8 bits, LeNet-5 1, 2 and 4; LeNet-5's 4-bit run was
    drawn as the MLP's 3-bit one (the third quantized run of its row)."""
    from matplotlib.colors import to_rgba

    from vecq_ref import reproduce as R

    res = {}
    for model, bits in (("mlp", [None, 1, 2, 3, 4]), ("lenet5", [None, 1, 2, 4])):
        for k in bits:
            name = f"{model}-{'float' if k is None else f'{k}bit'}"
            eps = [{"epoch": e, "loss": 1.0 / e + (k or 0), "test_acc": 0.5 + 0.01 * (k or 9)}
                   for e in (1, 2)]
            res[f"train-{name}"] = {"name": name, "model": model, "bits": k, "epochs": eps}
    fig = R._fig_training(res)
    (mlp_loss, mlp_acc), (le_loss, le_acc) = np.reshape(fig.axes, (2, 2))
    for ax in (mlp_acc, le_loss, le_acc):
        assert ax.get_title().startswith(("MLP on digits", "LeNet-5 on MNIST (5k subset)"))
    mlp = {ln.get_label(): _line_style(ln) for ln in mlp_loss.get_lines()}
    lenet = {ln.get_label(): _line_style(ln) for ln in le_loss.get_lines()}
    assert list(lenet) == ["float", "1-bit", "2-bit", "4-bit"]
    assert lenet["4-bit"] == mlp["4-bit"] != mlp["3-bit"]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["float", "1-bit", "2-bit", "3-bit",
                                                          "4-bit"]
    # A bitwidth's style does not depend on which others were trained: 4-bit is style 3.
    assert mlp["4-bit"] == (to_rgba("C3"), "v", ":")
    # LeNet-5 alone (no MLP row): the legend lists its runs.
    only = R._fig_training({k: v for k, v in res.items() if "lenet5" in k})
    assert [t.get_text() for t in only.legends[0].get_texts()] == ["float", "1-bit", "2-bit",
                                                                   "4-bit"]
