"""`gradflow.FusedERK` (the unrolled Runge–Kutta step `simulate` uses) against
diffrax's own step: step by step, over whole solves, and by convergence order."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import Cooccurrence, LeastSquares

SOLVERS = [dfx.Heun(), dfx.Midpoint(), dfx.Bosh3(), dfx.Tsit5(), dfx.Dopri8()]  # non-FSAL, FSAL, 14 stages
NONLINEAR = Cooccurrence(d=16, m=8, n=6)


def _flow(problem):
    model, data = problem.init(jax.random.PRNGKey(3))
    params, rest = eqx.partition(model, problem.trainable(model))
    grad = jax.grad(lambda p: problem.loss(eqx.combine(p, rest), data))
    return params, dfx.ODETerm(lambda t, y, a: jtu.tree_map(lambda g: -(1.0 + 0.1 * t) * g, grad(y)))


def _max_rel(a, b, scale=None):
    """Largest |a − b| over the floating leaves, relative to each leaf's max |a| (or to
    `scale`); 0 for a tree without floating leaves; bools must be equal."""
    out = 0.0
    for x, y in zip(jtu.tree_leaves(a), jtu.tree_leaves(b)):
        if jnp.issubdtype(x.dtype, jnp.bool_):
            assert bool(jnp.all(x == y))
            continue
        out = max(out, float(jnp.max(jnp.abs(x - y)) / (scale or jnp.max(jnp.abs(x)))))
    return out


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_one_step_equals_diffraxs_step(solver):
    """y1, the error estimate, the dense output inside the step and the FSAL state of one
    step from a nonlinear (time-dependent) flow, twice in a row (the second step uses
    the carried FSAL stage). Tolerance 1e-12 relative: only the order of the sums differs
    (measured ≤ 5e-15)."""
    y0, term = _flow(NONLINEAR)
    fused = gf.FusedERK(solver)

    @jax.jit
    def two_steps(y):
        out = []
        for s in (solver, fused):
            state = s.init(term, 0.0, 0.3, y, None)
            y1, err, dense, state, _ = s.step(term, 0.0, 0.3, y, None, state, False)
            y2, err2, _, state2, _ = s.step(term, 0.3, 0.5, y1, None, state, False)
            mid = s.interpolation_cls(t0=0.0, t1=0.3, **dense).evaluate(0.17)
            out.append((y1, err, mid, y2, err2, state2))
        return out

    ref, new = two_steps(y0)
    scale = max(float(jnp.max(jnp.abs(x))) for x in jtu.tree_leaves(ref[0]))
    # an error estimate sums the stages with weights β_i: its round-off grows with Σ|β_i|
    error_scale = scale * max(1.0, float(np.sum(np.abs(type(solver).tableau.b_error))))
    for name, a, b in zip(("y1", "error", "dense output", "y2", "error 2", "FSAL state"), ref, new):
        assert jtu.tree_structure(a) == jtu.tree_structure(b), name
        # the error estimates relative to the state's scale, as the controller reads them
        assert _max_rel(a, b, error_scale if name.startswith("error") else None) <= 1e-12, name


def test_simulate_equals_a_bare_diffrax_solve():
    """The whole adaptive solve through `simulate` (fused step, guard, saving) against
    diffrax's own step in a bare `diffeqsolve`: the same accepted and rejected steps and
    the final parameters to 1e-12 relative (round-off over ~50 steps; measured ≤ 1e-14)."""
    solver, ctrl = dfx.Tsit5(), dfx.PIDController(rtol=1e-6, atol=1e-8)
    run = gf.simulate(NONLINEAR, seeds=[3], t1=20.0, solver=solver, stepsize_controller=ctrl, save=gf.LinearGrid(n=5))
    y0, _ = _flow(NONLINEAR)
    model, data = NONLINEAR.init(jax.random.PRNGKey(3))
    _, rest = eqx.partition(model, NONLINEAR.trainable(model))
    grad = jax.grad(lambda p: NONLINEAR.loss(eqx.combine(p, rest), data))
    sol = dfx.diffeqsolve(dfx.ODETerm(lambda t, y, a: jtu.tree_map(jnp.negative, grad(y))), solver, 0.0, 20.0, None,
                          y0, stepsize_controller=ctrl, saveat=dfx.SaveAt(t1=True), max_steps=10_000)
    assert int(run.stats["steps"][0]) == int(sol.stats["num_steps"])
    # passing the fused solver itself gives the same run, and counts its gradients alike
    again = gf.simulate(NONLINEAR, seeds=[3], t1=20.0, solver=gf.FusedERK(solver), stepsize_controller=ctrl,
                        save=gf.LinearGrid(n=5))
    np.testing.assert_array_equal(again.obs["loss"], run.obs["loss"])
    np.testing.assert_array_equal(again.stats["gradient_evaluations"], run.stats["gradient_evaluations"])
    assert int(run.stats["rejected"][0]) == int(sol.stats["num_rejected_steps"])
    final = eqx.filter(jtu.tree_map(lambda x: x[0], run.final), eqx.is_inexact_array)
    expected = jtu.tree_map(lambda x: x[-1], sol.ys)
    assert _max_rel(eqx.filter(eqx.combine(expected, rest), eqx.is_inexact_array), final) <= 1e-12


@pytest.mark.parametrize("solver, order", [(dfx.Heun(), 2), (dfx.Bosh3(), 3), (dfx.Tsit5(), 5)],
                         ids=lambda x: type(x).__name__ if not isinstance(x, int) else str(x))
def test_convergence_order_is_unchanged(solver, order):
    """Fixed steps on least squares (closed-form flow): the fused step's errors within
    1e-6 relative of diffrax's step's (so the same fitted order, to 0.01), and that order
    within 0.35 of the method's (Tsit5 is designed with a small leading error term and
    shows 5.3 on this range of steps, which sits above round-off)."""
    problem = LeastSquares(n=8, p=4, cond=4.0)
    model, data = problem.init(jax.random.PRNGKey(0))
    exact = problem.exact_solution(model, data, 2.0)
    params, rest = eqx.partition(model, problem.trainable(model))
    grad = jax.grad(lambda p: problem.loss(eqx.combine(p, rest), data))
    term = dfx.ODETerm(lambda t, y, a: jtu.tree_map(jnp.negative, grad(y)))
    steps = [16, 32, 64]
    errors = {}
    for s in (solver, gf.FusedERK(solver)):
        solve = jax.jit(lambda dt, s=s: dfx.diffeqsolve(term, s, 0.0, 2.0, dt, params, max_steps=steps[-1] + 1).ys)
        errors[type(s).__name__] = [_max_rel(exact, eqx.combine(solve(2.0 / n), rest)) for n in steps]
    fused, plain = np.array(errors["FusedERK"]), np.array(errors[type(solver).__name__])
    fitted = -np.polyfit(np.log(steps), np.log(fused), 1)[0]
    assert abs(fitted + np.polyfit(np.log(steps), np.log(plain), 1)[0]) <= 0.01
    assert abs(fitted - order) <= 0.35, (fitted, fused)
    np.testing.assert_allclose(fused, plain, rtol=1e-6)


def test_only_explicit_single_tableau_solvers_are_fused():
    with pytest.raises(TypeError, match="explicit Runge–Kutta"):
        gf.FusedERK(dfx.Kvaerno5())
    assert not gf._fused.fusable(dfx.Kvaerno5(), dfx.ODETerm(lambda t, y, a: y))
    assert not gf._fused.fusable(dfx.Euler(), dfx.ODETerm(lambda t, y, a: y))
    assert gf._fused.fusable(dfx.Tsit5(), dfx.ODETerm(lambda t, y, a: y))
