"""Each figure function draws the expected axes, labels and series (objects, not pixels)."""

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
    assert ax.get_xlabel() == "α"
    assert "L2 loss" in ax.get_ylabel()
    np.testing.assert_array_equal(art["envelope"].get_xdata(), t["alpha"])
    np.testing.assert_array_equal(art["envelope"].get_ydata(), t["dql"])
    for name in ("l2", "vector"):
        assert art[name]["point"].get_ydata()[0] == pytest.approx(t[name]["dql"])


def test_figure_toy_has_two_panels():
    fig = P.figure_toy(P.toy_example())
    assert len(fig.axes) == 2
    assert [a.get_title() for a in fig.axes][1] == "L2 loss vs α"


def test_plot_orientation_curves(ax):
    art = P.plot_orientation_curves(bits=range(2, 9), num=40, ax=ax)
    assert sorted(art["curves"]) == list(range(2, 9))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "λ = s/σ"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"k = {k}" for k in range(2, 9)]
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
    assert ax.get_xlabel() == "bits k"
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
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(art["lines"])


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
    assert art["lines"]["fc2"].get_label() == "2-bit fc2"
    assert art["lines"]["fc1"].get_ydata().tolist() == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "relative dql"
    assert P.plot_layer_dql(recs, logy=True)["lines"]["fc1"].axes.get_yscale() == "log"


def test_plot_accuracy_vs_bits_several_series(ax):
    acc = {"training": {1: 0.8, 2: 0.9, 4: 0.95}, "post-training": {1: 0.3, 2: 0.6, 4: 0.9}}
    art = P.plot_accuracy_vs_bits(acc, float_accuracy=0.96, ax=ax)
    assert list(art["lines"]) == ["training", "post-training"]
    assert art["lines"]["post-training"].get_xdata().tolist() == [1, 2, 4]
    assert list(art["float"].get_ydata()) == [0.96, 0.96]
    assert ax.get_xlabel() == "weight bits k" and ax.get_ylabel() == "test accuracy"
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
    vecq, base = art["vecq"]["lines"], art["baselines"]["lines"]
    assert set(vecq) == {m for m in METHODS if m.startswith("vecq_")}
    assert set(base) == {m for m in METHODS if not m.startswith("vecq_")} | {"vecq_exact"}
    assert len(METHODS) >= 16
    # Within a panel, no two methods share colour and marker (so each can be told apart).
    for lines in (vecq, base):
        styles = [(ln.get_color(), ln.get_marker(), ln.get_linestyle())
                  for ln in lines.values()]
        assert len(set(styles)) == len(styles)
    # Left: relative DQL divided by vecq_exact's at the same bits, worked out here.
    exact = {r["bits"]: r["relative_dql"] for r in recs if r["method"] == "vecq_exact"}
    param = [r for r in recs if r["method"] == "vecq_param"]
    np.testing.assert_allclose(vecq["vecq_param"].get_ydata(),
                               [r["relative_dql"] / exact[r["bits"]] for r in param])
    assert vecq["vecq_exact"].get_ydata().tolist() == [1.0] * 4
    assert base["vecq_exact"].get_label() == "vecq_exact (reference)"
