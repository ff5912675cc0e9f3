"""Issue 16: numbers of gradflow.accuracy that misled a numerical analyst, each
reproduced and fixed: unwarmed single timings, final-time errors on contracting
flows, intervals that excluded the truth, points at the round-off floor,
divergent runs reported fine, NaN saved as a string, late bad-input errors."""

import json

import diffrax as dfx
import numpy as np
import pytest

import gradflow as gf
from gradflow.accuracy import Table, convergence_order, fit_order, reference, work_precision
from gradflow.problems import LeastSquares

LS = LeastSquares(n=8, p=4, cond=4.0)
T1 = 40.0
SAVE = gf.LinearGrid(n=21)  # every 2 time units: whole numbers of the steps used below


@pytest.fixture(scope="module")
def ref():
    return reference(LS, t1=T1, seeds=2, save=SAVE)


@pytest.fixture(scope="module")
def euler(ref):
    """Euler at dt = 1 (stable, contracting) and dt = 4 (beyond 2/λ_max: divergent)."""
    return {measure: work_precision(LS, solvers=[dfx.Euler()], step_sizes=[1.0, 4.0], t1=T1, seeds=2, save=SAVE,
                                    reference=ref, measure=measure, numruns=2)
            for measure in ("linf", "final")}


def test_errors_over_time_are_the_default_and_expose_contraction(euler):
    """Found: the final-time error of a contracting flow hides the error made on the
    way (Euler looked more accurate than Tsit5)."""
    over_time, final = euler["linf"].rows[0]["param error"], euler["final"].rows[0]["param error"]
    # The flow has contracted onto θ* by t1 = 40 (decay e^{-λ_min t1} ~ e^{-10}), so the
    # final error is orders of magnitude below the error along the way.
    assert over_time > 100 * final, (over_time, final)
    assert over_time > 1e-3
    assert "max over save times" in euler["linf"].title and "at t1" in euler["final"].title
    assert euler["linf"].meta["measure"] == "linf"


def test_a_divergent_fixed_step_run_is_failed_with_its_reason(euler):
    """Found: Euler at dt = 3 reported an error of 1e30, failed 0, status ok."""
    row = euler["linf"].rows[1]
    assert row["failed"] == 2 and np.isnan(row["param error"])
    assert "unstable" in row["reason"] and "2×" in row["reason"]


def test_timings_are_repeated_warm_and_separate_from_the_cold_call(euler):
    """Found: each configuration timed once, the first run after a compile included."""
    for row in euler["linf"].rows:
        assert row["wall s min"] <= row["wall s"] <= row["wall s max"]
        assert row["cold s"] >= row["compile s"] > 0 or row["compile s"] == 0.0
        assert row["wall s per seed"] == pytest.approx(row["wall s"] / 2)
    assert euler["linf"].meta["numruns"] == 2


def test_observable_errors_are_relative_at_each_time(ref):
    """Found: errors divided by the largest reference value over time hid the
    late-time loss. Pointwise: a late loss off by a factor shows as an error ≥ 1."""
    from gradflow.accuracy import trajectory_error

    b = np.array([[[1.0], [1e-3], [1e-20]]])
    a = np.array([[[1.0], [1e-3], [1e-10]]])
    assert trajectory_error(a, b)[0] > 1e9  # relative at t where the reference is 1e-20
    assert trajectory_error(a, b, scale="absolute")[0] == pytest.approx(1e-10)
    assert trajectory_error(a, b, measure="final")[0] == trajectory_error(a, b)[0]


def test_step_aligned_setups_remove_interpolation_error(ref):
    """Found: observable errors include the dense-output interpolation error. A
    step-aligned setup ends a step on every save time."""
    table = work_precision(LS, setups=[{"name": "Dopri8", "solver": dfx.Dopri8()},
                                       {"name": "Dopri8 aligned", "solver": dfx.Dopri8(), "step_aligned": True}],
                           tolerances=[1e-8], t1=T1, seeds=2, save=SAVE, reference=ref, numruns=1)
    plain, aligned = table.where(setup="Dopri8").rows[0], table.where(setup="Dopri8 aligned").rows[0]
    assert aligned["theta error"] < plain["theta error"], (aligned, plain)
    assert aligned["steps"] >= len(SAVE.times(T1)) - 1  # at least one step per save interval


def test_t_interval_at_three_points_contains_the_true_order(ref):
    """Found: 1.96 for any number of points; with 3 points the Euler interval
    [1.016, 1.035] excluded 1. Closed-form reference, Euler, 3 steps."""
    table = convergence_order(LS, dfx.Euler(), [T1 / n for n in (160, 320, 640)], t1=T1, seeds=2, reference=ref)
    lo, hi = table.meta["ci95"]
    assert lo <= 1.0 <= hi, table.meta
    assert table.meta["t quantile"] == pytest.approx(12.706, abs=1e-3)  # t_{0.975, 1}
    assert len(table.meta["local"]) == 2


def test_points_at_the_floor_are_excluded_with_a_note():
    fit = fit_order([0.4, 0.2, 0.1, 0.05], [1e-4, 1e-5, 1e-6, 3e-15], floor=2.2e-13)
    assert fit["points"] == 3 and fit["excluded"][0]["step"] == 0.05
    assert fit["order"] == pytest.approx(np.log2(10), rel=1e-9)


def test_runs_at_the_round_off_floor_are_excluded_in_a_study():
    """Dopri8 on a closed form at steps small enough to reach round-off: the
    floor points are dropped from the fit and named in the table's note."""
    table = convergence_order(LS, dfx.Dopri8(), [T1 / n for n in (20, 40, 80, 640)], t1=T1, seeds=1)
    assert table.meta["excluded"] and "excluded" in table.meta["note"]
    assert table.meta["points"] < 4


def test_saved_tables_use_real_nulls_and_load_back_as_nan(euler, tmp_path):
    """Found: NaN saved as the string "nan", so a loaded table could not be plotted."""
    path = euler["linf"].save(tmp_path / "t.json")
    raw = json.loads(path.read_text())
    assert raw["rows"][1]["param error"] is None
    assert {"seeds", "save", "problem", "environment", "precision", "tolerances", "atol ratio"} <= set(raw["meta"])
    loaded = Table.load(path)
    assert np.isnan(loaded.column("param error")[1])
    gf.plot.work_precision(loaded)  # plots the finite rows (raised on "nan" strings before)


@pytest.mark.parametrize("kwargs, match", [
    ({"tolerances": [2.0]}, r"`tolerances` must be a finite number > 0 and < 1"),
    ({"tolerances": [1e-20]}, "machine epsilon"),
    ({"atol_ratio": -1.0}, "`atol_ratio`"),
    ({"numruns": 0}, "`numruns`"),
    ({"measure": "max"}, "`measure`"),
    ({"save": gf.LinearGrid(n=3)}, "saved at 21 times"),
])
def test_bad_input_is_named_before_solving(ref, kwargs, match):
    options = {"solvers": [dfx.Tsit5()], "t1": T1, "seeds": 2, "save": SAVE, "reference": ref, **kwargs}
    with pytest.raises(ValueError, match=match):
        work_precision(LS, **options)


def test_reference_tolerance_is_checked():
    with pytest.raises(ValueError, match="`tolerance`"):
        reference(LS, t1=1.0, tolerance=-1)


def test_an_implicit_solver_that_would_not_fit_is_refused_before_solving():
    """Found: Kvaerno5 on the 57,600-parameter default problem spent 20 s on the
    reference, then died with a 105 GB out-of-memory error."""
    from gradflow.problems import Cooccurrence

    with pytest.raises(MemoryError, match=r"dense [\d,]+ × [\d,]+ Jacobians: about [\d.]+ GiB"):
        work_precision(Cooccurrence(), solvers=[dfx.Kvaerno5()], t1=1.0)


def test_a_weak_reference_is_flagged_on_the_rows_it_cannot_judge():
    """Found: a Tsit5 reference at rtol 1e-7 was marked verified with tolerance 1e-6;
    finer runs then flattened at its accuracy, with no warning."""
    weak = reference(LS, t1=T1, seeds=1, save=SAVE, exact=False, solver=dfx.Tsit5(), rtol=1e-7, tolerance=1e-4)
    table = work_precision(LS, solvers=[dfx.Dopri8()], tolerances=[1e-4, 1e-10], t1=T1, seeds=1, save=SAVE,
                           reference=weak, numruns=1)
    assert "note" not in table.rows[0] and "not resolved" in table.rows[1]["note"]
    assert "tighten the reference" in table.meta["warning"]


def test_wall_time_panel_shows_median_with_min_max_bars_and_names_the_measure(euler):
    fig = gf.plot.work_precision(euler["linf"])
    left, right = fig.axes[:2]
    assert "max over save times" in left.get_ylabel()
    assert "median of 2" in right.get_xlabel()
    (bars,) = [c for c in right.containers]  # one errorbar container: the stable Euler row (the other failed)
    (x,), (y,) = bars.lines[0].get_data()
    row = euler["linf"].rows[0]
    assert x == row["wall s"] and y == row["param error"]
    segments = bars.lines[2][0].get_segments()
    assert segments[0][0][0] == pytest.approx(row["wall s min"]) and segments[0][1][0] == pytest.approx(row["wall s max"])


def test_error_profile_draws_the_error_at_each_save_time(ref):
    from gradflow.accuracy import TrackParams

    run = gf.simulate(TrackParams(LS), t1=T1, seeds=2, save=SAVE, solver=dfx.Euler(),
                      stepsize_controller=dfx.ConstantStepSize(), dt0=1.0)
    ax = gf.plot.error_profile([run], ref, labels=["Euler dt = 1"])
    (line,) = ax.get_lines()
    t, err = line.get_data()
    assert len(t) == len(SAVE.times(T1)) and err[0] < 1e-14  # the same start (the closed form at t = 0, to round-off)
    assert err.max() > 100 * err[-1]  # made on the way, forgotten by t1 (the contraction)
    with pytest.raises(KeyError, match="TrackParams"):
        gf.plot.error_profile([gf.simulate(LS, t1=T1, seeds=2, save=SAVE)], ref)


def test_minimiser_scale_and_a_named_pid_template(ref):
    """Errors relative to ‖θ_ref(t) − θ*‖ (least squares knows θ*), and a setup whose
    PID template (here a small dtmax) is kept while its tolerances are set per row."""
    table = work_precision(LS, setups=[{"name": "Tsit5", "solver": dfx.Tsit5()},
                                       {"name": "Tsit5 dtmax 0.5", "solver": dfx.Tsit5(),
                                        "controller": dfx.PIDController(rtol=1.0, atol=1.0, dtmax=0.5)}],
                           tolerances=[1e-4], t1=T1, seeds=2, save=SAVE, reference=ref, numruns=1,
                           scale="minimiser")
    plain, capped = table.where(setup="Tsit5").rows[0], table.where(setup="Tsit5 dtmax 0.5").rows[0]
    assert capped["steps"] >= T1 / 0.5 > plain["steps"]  # the template's dtmax is kept
    relative = work_precision(LS, solvers=[dfx.Tsit5()], tolerances=[1e-4], t1=T1, seeds=2, save=SAVE,
                              reference=ref, numruns=1)
    # Late in the run θ_ref(t) − θ* is far smaller than θ_ref(t): the same error is larger relative to it.
    assert plain["param error"] > 10 * relative.rows[0]["param error"]
    assert "θ*" in table.meta["error"] and table.meta["machine"]["cores"] >= 1
    with pytest.raises(ValueError, match="no `minimiser"):
        from gradflow.problems import TwoLayerLinear

        work_precision(TwoLayerLinear(), solvers=[dfx.Tsit5()], t1=1.0, save=gf.LinearGrid(n=3), scale="minimiser",
                       numruns=1)
