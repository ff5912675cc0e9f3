"""`gradflow.plot`: components by index tuple, seeds, bands, line styles, the legend, the
y label from the problem's description and a time axis that keeps t = 0."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import optax
import pytest
from matplotlib.collections import PolyCollection

import gradflow as gf
from gradflow import plot

SEEDS = 3


@pytest.fixture(scope="module")
def problem():
    return gf.problems.TeacherStudent(K=4, M=3, N=8)  # R is 4 × 3 (12 lines), Q 4 × 4


@pytest.fixture(scope="module")
def flow(problem):
    return gf.simulate(problem, t1=1.0, seeds=SEEDS, save=gf.LinearGrid(n=6), progress=False)


@pytest.fixture(scope="module")
def gd(problem):
    return gf.train(problem, optax.sgd(0.25), steps=4, dt=0.25, seeds=SEEDS, save=gf.LinearGrid(n=5))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


class Quadratic(gf.AbstractProblem):
    """A user's problem without `describe_observables`."""

    def init(self, key):
        return np.ones(2), None

    def loss(self, model, data):
        return (model**2).sum()


def fake_run(ts, obs, problem=None, kind="simulate"):
    """A Run built by hand (no solve), for shapes and grids the tests choose."""
    n = next(iter(obs.values())).shape[0]
    zeros = np.zeros(n)
    stats = {name: zeros for name in ("steps", "accepted", "rejected", "gradient_evaluations", "t_final")}
    stats.update(status=zeros.astype(int), result=zeros.astype(int), wall_time=np.array(0.0),
                 compile_time=np.array(0.0))
    return gf.Run(ts, obs, None, None, stats, {"kind": kind}, problem=problem)


def labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_matrix_components_are_labelled_by_index_tuples(flow):
    ax = plot.observable(flow, "R")
    assert labels(ax) == [f"R[{i}, {n}]" for i in range(4) for n in range(3)]
    assert labels(plot.observable(flow, "eg")) == ["eg"]  # a scalar: its key


def test_a_component_by_index_tuple_or_flat_index(flow):
    median = np.median(flow.obs["R"][:, :, 1, 2], axis=0)
    for component in ((1, 2), 5, (-3, -1)):  # row 1, column 2 of a 4 × 3 matrix, three ways
        ax = plot.observable(flow, "R", component=component)
        (line,) = ax.get_lines()
        assert line.get_label() == "R[1, 2]"
        np.testing.assert_allclose(line.get_ydata(), median)
    ax = plot.observable(flow, "R", component=[(0, 0), (3, 2)])
    assert labels(ax) == ["R[0, 0]", "R[3, 2]"]


@pytest.mark.parametrize("component, error, match", [
    ((0,), ValueError, r"component=\(0,\) has 1 index but observable 'R' has shape \(4, 3\).*give 2"),
    ((0, 1, 2), ValueError, r"has 3 indices .* give 2 \(e\.g\. component=\(0, 0\)\)"),
    ((4, 0), ValueError, r"component=\(4, 0\) is out of range for observable 'R' of shape \(4, 3\)"),
    (12, ValueError, r"component=12 is out of range for observable 'R', which has 12 components"),
    ([], ValueError, "draws nothing"),
    ("0,1", TypeError, "an index tuple such as \\(0, 1\\)"),
    ((0.0, 1), TypeError, "component must be"),
])
def test_a_bad_component_is_one_clear_error(flow, component, error, match):
    with pytest.raises(error, match=match):
        plot.observable(flow, "R", component=component)


def test_many_lines_never_repeat_a_colour_and_style(flow):
    for name, n in (("R", 12), ("Q", 16)):
        ax = plot.observable(flow, name)
        styles = [(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle()) for line in ax.get_lines()]
        assert len(styles) == n and len(set(styles)) == n, styles
    # A matrix with few columns: a colour per row (student unit), a line style per column.
    lines = plot.observable(flow, "R").get_lines()
    assert lines[0].get_color() == lines[2].get_color() != lines[3].get_color()
    assert [line.get_linestyle() for line in lines[:3]] == ["-", "--", ":"]
    # 50 components of a vector: past the 40 (colour, style) pairs, colours from a colormap.
    wide = fake_run(np.linspace(0, 1, 4), {"loss": np.ones((2, 4)), "v": np.random.rand(2, 4, 50)})
    colours = {matplotlib.colors.to_hex(line.get_color()) for line in plot.observable(wide, "v").get_lines()}
    assert len(colours) == 50


def test_band_none_draws_no_band(flow):
    assert len(bands(plot.observable(flow, "loss"))) == 1  # the default 10–90% band
    assert bands(plot.observable(flow, "loss", band=None)) == []
    assert len(bands(plot.observable(flow, "R", band=(25, 75)))) == 12
    for bad in ((90, 10), (10,), "wide", (0, 101)):
        with pytest.raises(ValueError, match="band must be None"):
            plot.observable(flow, "loss", band=bad)


def test_seeds_are_drawn_as_thin_lines(flow):
    ax = plot.observable(flow, "loss", seeds=True)
    lines = ax.get_lines()
    assert len(lines) == 1 + SEEDS  # the median and one line per seed
    for k, line in enumerate(lines[1:]):
        np.testing.assert_array_equal(line.get_ydata(), flow.obs["loss"][k])
        assert line.get_linewidth() < lines[0].get_linewidth() and line.get_alpha() < 1
    assert len(plot.observable(flow, "loss", seeds=True, median=False).get_lines()) == SEEDS
    assert len(plot.observable(flow, "loss", seeds=2).get_lines()) == 3
    ax = plot.observable(flow, "R", component=(0, 0), seeds=[2], median=False, band=None)
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), flow.obs["R"][2, :, 0, 0])
    with pytest.raises(ValueError, match="out of range for a run of 3 seeds"):
        plot.observable(flow, "loss", seeds=[3])
    with pytest.raises(ValueError, match="median=False draws nothing"):
        plot.observable(flow, "loss", median=False)


def test_a_grid_from_zero_keeps_t0_on_a_symlog_axis(flow):
    assert flow.ts[0] == 0 and len(flow.ts) == 6
    ax = plot.observable(flow, "loss")  # the default
    assert ax.get_xscale() == "symlog"
    (line,) = ax.get_lines()
    assert line.get_xdata()[0] == 0 and len(line.get_xdata()) == 6  # no save dropped
    # from t = 0 to t1 without padding (round-off: the limits pass through the symlog transform)
    np.testing.assert_allclose(ax.get_xlim(), (0.0, 1.0), rtol=0, atol=1e-12)
    ticks = ax.get_xticks()
    assert 0 in ticks and not ((ticks > 0) & (ticks < 0.2)).any()  # no decade tick crowding the 0 (first save: 0.2)
    assert plot.observable(flow, "loss", logx=True).get_xscale() == "symlog"  # the old default, same axis
    # log only when asked: then t = 0 is dropped, as documented
    ax = plot.observable(flow, "loss", xscale="log")
    assert ax.get_xscale() == "log" and len(ax.get_lines()[0].get_xdata()) == 5
    for kwargs in ({"xscale": "linear"}, {"logx": False}):
        ax = plot.observable(flow, "loss", **kwargs)
        assert ax.get_xscale() == "linear" and len(ax.get_lines()[0].get_xdata()) == 6
    no_zero = fake_run(np.geomspace(1e-2, 1, 5), {"loss": np.ones((2, 5))})
    assert plot.observable(no_zero, "loss").get_xscale() == "log"  # nothing to lose: plain log
    with pytest.raises(ValueError, match="xscale must be"):
        plot.observable(flow, "loss", xscale="logarithmic")
    with pytest.raises(ValueError, match="contradicts"):
        plot.observable(flow, "loss", xscale="log", logx=False)


def test_y_label_is_the_problems_description(flow, problem):
    described = problem.describe_observables()
    assert plot.observable(flow, "R").get_ylabel() == described["R"] == r"student–teacher overlap $R_{in}$"
    assert plot.observable(flow, "Q", change=True).get_ylabel() == described["Q"] + " − its value at t = 0"
    bare = fake_run(flow.ts, {"loss": flow.obs["loss"], "R": flow.obs["R"]}, problem=None)  # loaded without it
    assert plot.observable(bare, "R").get_ylabel() == "R"
    silent = fake_run(flow.ts, {"loss": flow.obs["loss"]}, problem=Quadratic())
    assert plot.observable(silent, "loss").get_ylabel() == "loss"  # a problem that describes nothing


def _outside(ax):
    """Whether the legend lies right of the axes (drawn, in display coordinates)."""
    ax.figure.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    return legend.x0 >= ax.get_window_extent().x1


def test_the_legend_is_outside_the_data(flow, gd):
    assert _outside(plot.observable(flow, "R"))
    assert _outside(plot.compare([flow, gd], "loss", labels=["flow", "GD"]))
    ax = plot.observable(flow, "R", legend="inside")
    ax.figure.canvas.draw()
    assert ax.get_window_extent().contains(*ax.get_legend().get_window_extent().get_points().mean(axis=0))
    assert plot.observable(flow, "R", legend=None).get_legend() is None
    with pytest.raises(ValueError, match="legend must be"):
        plot.observable(flow, "R", legend="top")


def test_compare_gives_each_run_its_own_line_style(flow, gd):
    ax = plot.compare([flow, gd], "loss", labels=["flow", "GD"], logy=True)
    flow_line, gd_line = ax.get_lines()
    assert (flow_line.get_linestyle(), gd_line.get_linestyle()) == ("-", "--")  # GD dashed: the flow shows through
    assert flow_line.get_color() != gd_line.get_color()
    assert len(bands(ax)) == 2 and all(b.get_alpha() <= 0.15 for b in bands(ax))  # light: overlapping bands stay readable
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["flow", "GD"]
    assert "step × dt" in ax.get_xlabel() and "flow time" in ax.get_xlabel()
    # a matrix observable: colours name components, line styles name runs, in one legend
    ax = plot.compare([flow, gd], "R", labels=["flow", "GD"], component=[(0, 0), (1, 1)])
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "-", "--", "--"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["flow", "GD", "R[0, 0]", "R[1, 1]"]
    with pytest.raises(ValueError, match="2 runs"):
        plot.compare([flow, gd], labels=["flow"])


def test_save_figures_and_the_loss_title(flow, tmp_path):
    paths = plot.save_figures(flow, tmp_path)
    assert sorted(p.name for p in paths) == ["Q.png", "R.png", "eg.png", "loss.png"] and all(p.exists() for p in paths)
    assert plot.loss(flow).get_title() == "loss over 3 seeds (median, 10–90%)"
    assert plot.loss(flow, band=None).get_title() == "loss over 3 seeds (median)"


@pytest.mark.parametrize("name", sorted(gf.problems.PROBLEMS))
def test_every_shipped_problem_describes_its_observables(name, tmp_path):
    """Every observable has a label (no raw key on a shipped figure's axis), and each label
    renders (mathtext is parsed only at draw time). The text and MNIST problems read small
    files written here, so the test runs where shared/data is absent too."""
    import equinox as eqx
    import jax

    from test_cache_honest import file_problem

    problem = file_problem(name, tmp_path) or gf.problems.PROBLEMS[name]()
    described = problem.describe_observables()
    assert "loss" in described
    model, data = eqx.filter_eval_shape(problem.init, jax.random.PRNGKey(0))
    observables = jax.eval_shape(problem.observables, model, data)
    assert set(observables) <= set(described), set(observables) - set(described)
    fig, ax = plt.subplots()
    for label in described.values():
        ax.set_ylabel(label)
        fig.canvas.draw()


def test_work_precision_colours_solvers_and_styles_precisions():
    """12 solvers × 2 precisions: a colour per solver (none repeated past 10), float32 dashed."""
    from gradflow.accuracy import Table

    rows = [{"solver": f"S{k}", "precision": p, "gradient evaluations": 10.0 * (i + 1), "wall s": 0.1 * (i + 1),
             "param error": 10.0 ** -(i + k % 3)} for k in range(12) for p in ("float64", "float32") for i in range(3)]
    fig = plot.work_precision(Table("wp", rows))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 24
    # drawn solver by solver, float64 then float32
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in lines]
    assert len(set(colours[::2])) == 12 and colours[::2] == colours[1::2]  # a colour per solver, both precisions
    assert {line.get_linestyle() for line in lines[1::2]} == {"--"} and {line.get_linestyle() for line in lines[::2]} == {"-"}
    assert _outside(fig.axes[1])
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()][-2:] == ["float64", "float32"]


def test_save_figures_draws_a_matrix_for_one_seed(flow, tmp_path, monkeypatch):
    drawn = {}
    original = plot.observable

    def spy(run, name, **kwargs):
        drawn[name] = original(run, name, **kwargs)
        return drawn[name]

    monkeypatch.setattr(plot, "observable", spy)
    plot.save_figures(flow, tmp_path)
    R, eg = drawn["R"], drawn["eg"]
    assert len(R.get_lines()) == 12 and R.get_title() == "seed 0 of 3" and not bands(R)  # seed 0's lines
    np.testing.assert_array_equal(R.get_lines()[5].get_ydata(), flow.obs["R"][0, :, 1, 2])
    assert len(eg.get_lines()) == 1 and len(bands(eg)) == 1  # a scalar: median and band
