"""gradflow.accuracy: references, work-precision, convergence order, flow gap,
invariant drift — on least squares (closed form) and the linear network."""

import json

import diffrax as dfx
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradflow as gf
from gradflow.accuracy import Table, convergence_order, flow_gap, invariant_drift, reference, work_precision
from gradflow.problems import DiagonalLinear, LeastSquares

LS = LeastSquares(n=8, p=4, cond=4.0)
T1 = 4.0
SAVE = gf.LinearGrid(n=5)  # t = 0, 1, 2, 3, 4: whole numbers of every step below (no interpolation error)


@pytest.fixture(scope="module")
def ls_reference():
    return reference(LS, t1=T1, seeds=2, save=SAVE)


@pytest.mark.parametrize(
    "solver, order, steps",
    [
        (dfx.Euler(), 1, [64, 128, 256, 512]),
        (dfx.Heun(), 2, [16, 32, 64, 128]),
        (dfx.Bosh3(), 3, [16, 32, 64, 128]),
        (dfx.Tsit5(), 5, [32, 48, 64, 96]),
    ],
    ids=["euler", "heun", "bosh3", "tsit5"],
)
def test_convergence_orders_on_least_squares(solver, order, steps, ls_reference):
    table = convergence_order(LS, solver, [T1 / n for n in steps], t1=T1, seeds=2, reference=ls_reference,
                              save=SAVE)
    errors = table.column("param error")
    # Ladders keep the smallest error well above float64 round-off (~1e-13 relative).
    assert errors.min() > 1e-13, errors
    assert abs(table.meta["order"] - order) <= 0.5, str(table)
    assert table.meta["ci95"][0] <= table.meta["order"] <= table.meta["ci95"][1]


def test_dopri8_order_on_least_squares_through_a_diagonal_network():
    # On *linear* least squares Dopri8's stability polynomial matches e^z to 1.3e-3
    # relative in its z^9 term, so the z^10 term dominates until the error is far
    # below float64 round-off and the measurable slope is ~10, never 8 (see
    # benchmarks/README.md). The same squared loss through β = u⊙u − v⊙v is a
    # nonlinear flow with a closed form, where the order-8 regime is measurable.
    problem, t1 = DiagonalLinear(n=8, p=4, sparsity=2, alpha=0.5), 2.0
    table = convergence_order(problem, dfx.Dopri8(), [t1 / n for n in (12, 16, 20, 24)], t1=t1, seeds=2)
    assert table.column("param error").min() > 1e-12  # above round-off, so the slope is the method's
    assert "closed form" in table.meta["reference"]
    assert abs(table.meta["order"] - 8) <= 0.5, str(table)
    # Max over save times, these steps are pre-asymptotic: the local orders fall towards 8 from above.
    local = table.meta["local"]
    assert all(a > b > 8 for a, b in zip(local, local[1:])), local


def test_reference_is_exact_where_a_closed_form_exists(ls_reference):
    assert ls_reference.kind == "exact" and ls_reference.verified


def test_loose_reference_is_flagged():
    with pytest.warns(UserWarning, match="NOT verified"):
        loose = reference(LS, t1=T1, seeds=1, save=gf.LinearGrid(n=2), exact=False, solver=dfx.Tsit5(), rtol=1e-3)
    assert not loose.verified and loose.agreement["params"] > 1e-8
    tight = reference(LS, t1=T1, seeds=1, save=gf.LinearGrid(n=2), exact=False, solver=dfx.Tsit5(), rtol=1e-11)
    assert tight.verified, str(tight)


def test_work_precision_decreases_with_tolerance(ls_reference, tmp_path):
    table = work_precision(LS, solvers=[dfx.Tsit5(), dfx.Bosh3(), dfx.Euler()], tolerances=[1e-3, 1e-5, 1e-7, 1e-9],
                           step_sizes=[T1 / 64, T1 / 256], t1=T1, seeds=2, save=SAVE,
                           reference=ls_reference, numruns=2)
    for solver in ("Tsit5", "Bosh3"):
        errors = table.where(solver=solver).column("param error")
        # A non-stiff problem: each tighter tolerance gives a smaller error.
        assert np.all(np.diff(errors) < 0), (solver, errors)
        evals = table.where(solver=solver).column("gradient evaluations")
        assert np.all(np.diff(evals) > 0)
    euler = table.where(solver="Euler")
    assert np.allclose(euler.column("gradient evaluations"), [64, 256])
    assert euler.column("param error")[1] < euler.column("param error")[0] / 3  # order 1: 4× smaller step
    assert "loss error" in table.columns and table.meta["reference verified"]
    path = table.save(tmp_path / "wp.json")
    assert Table.load(path).rows[0]["solver"] == "Tsit5" and json.loads(path.read_text())["meta"]["t1"] == T1
    assert "param error" in str(table)
    fig = gf.plot.work_precision(table)
    assert len(fig.axes[0].lines) == 3


def test_flow_gap_of_gd_is_first_order(ls_reference):
    table = flow_gap(LS, optax.sgd, [T1 / 64, T1 / 128, T1 / 256, T1 / 512], t1=T1, seeds=2, reference=ls_reference)
    # GD is explicit Euler on the gradient flow: gap ∝ η.
    assert abs(table.meta["order"] - 1.0) <= 0.1, str(table)


def test_invariant_drift_over_time():
    problem = DiagonalLinear()
    run = gf.simulate(problem, t1=5.0, seeds=2, save=gf.LinearGrid(n=6), conserved=True,
                      stepsize_controller=dfx.PIDController(rtol=1e-10, atol=1e-12))
    table = invariant_drift(run)
    (row,) = table.rows
    assert row["max drift over time"] < 1e-7 / row["‖c(0)‖ min"]
    assert row["max absolute drift over time"] < 1e-7  # conserved exactly by the flow; rtol 1e-10 keeps it ~1e-9
    assert row["final absolute drift max"] <= row["max absolute drift over time"] + 1e-15
    loose = gf.simulate(problem, t1=5.0, seeds=2, save=gf.LinearGrid(n=6), conserved=True, solver=dfx.Euler(),
                        stepsize_controller=dfx.ConstantStepSize(), dt0=0.05)
    assert invariant_drift(loose).rows[0]["max absolute drift over time"] > 100 * row["max absolute drift over time"]


class Product(gf.AbstractProblem):
    """y ≈ u·v from a small start: the flow conserves u² − v² (−3e-4 by default)."""

    u0: float = 0.01
    v0: float = 0.02

    def init(self, key):
        return {"u": jnp.array(self.u0), "v": jnp.array(self.v0)}, {"y": jnp.array(1.0)}

    def loss(self, model, data):
        return 0.5 * (model["u"] * model["v"] - data["y"]) ** 2

    def conserved(self, model, data):
        return {"u2-v2": model["u"] ** 2 - model["v"] ** 2}


def test_invariant_drift_is_relative_to_a_small_invariant():
    """Found: dividing by max(‖c(0)‖, 1) reported 3.1e-8 where the relative drift was 4.1e-3."""
    run = gf.simulate(Product(), t1=20.0, save=gf.LinearGrid(n=5), conserved=True, solver=dfx.Euler(),
                      stepsize_controller=dfx.ConstantStepSize(), dt0=0.1)
    (row,) = invariant_drift(run).rows
    assert row["‖c(0)‖ min"] == pytest.approx(3e-4)
    assert row["final drift max"] == pytest.approx(row["final absolute drift max"] / 3e-4)
    assert row["final drift max"] > 1e-3 > row["final absolute drift max"]  # the old scale would report the latter
    balanced = gf.simulate(Product(u0=0.01, v0=0.01), t1=20.0, save=gf.LinearGrid(n=5), conserved=True,
                           solver=dfx.Euler(), stepsize_controller=dfx.ConstantStepSize(), dt0=0.1)
    (row,) = invariant_drift(balanced).rows
    assert row["‖c(0)‖ min"] == 0.0 and np.isnan(row["final drift max"])  # relative to 0: undefined, not hidden
    assert row["final absolute drift max"] == 0.0  # u = v stays so: the absolute drift is the measure here


def test_bad_arguments(ls_reference):
    with pytest.raises(ValueError, match="step_sizes"):
        work_precision(LS, solvers=[dfx.Euler()], t1=T1, reference=ls_reference, save=SAVE)
    with pytest.raises(ValueError, match="tolerances"):
        work_precision(LS, solvers=[dfx.Tsit5()], tolerances=[-1.0], t1=T1)
    with pytest.raises(ValueError, match="does not divide"):
        flow_gap(LS, optax.sgd, [0.3], t1=T1, reference=ls_reference)
    with pytest.raises(ValueError, match="does not divide"):
        convergence_order(LS, dfx.Euler(), [0.3, 0.1], t1=T1)
    with pytest.raises(ValueError, match="no conserved"):
        invariant_drift(gf.simulate(LS, t1=1.0, save=gf.LinearGrid(n=2)))


def test_float32_run_starts_from_the_float64_reference(ls_reference):
    import jax

    from gradflow.accuracy import recast

    start = recast(LS, 2)
    with jax.enable_x64(False):
        table = work_precision(start, solvers=[dfx.Tsit5()], tolerances=[1e-5], t1=T1, seeds=2,
                               save=SAVE, reference=ls_reference, numruns=1)
        assert table.meta["precision"] == "float32"
    # Same initial state, rounded to float32: the error is the solver's and float32's
    # (~1e-6), not that of a different random draw (which would be O(1)).
    assert table.rows[0]["param error"] < 1e-4, str(table)
