"""Convergence order of fixed-step solvers against the closed form, and exact
gradient-evaluation counts."""

import functools

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import seed_keys

import gradflow as gf
from gradflow.problems import LeastSquares

PROBLEM = LeastSquares(n=8, p=4, cond=4.0)
T1 = 4.0


@functools.cache
def exact_final():
    model0, data = jax.jit(jax.vmap(PROBLEM.init))(seed_keys(2))
    return np.asarray(jax.jit(jax.vmap(PROBLEM.exact_solution, (0, 0, None)))(model0, data, T1).theta)


def final_error(solver, n_steps):
    run = gf.simulate(
        PROBLEM,
        t1=T1,
        seeds=2,
        solver=solver,
        stepsize_controller=dfx.ConstantStepSize(),
        dt0=T1 / n_steps,
        save=gf.LinearGrid(2),
    )
    assert run.ok.all()
    assert (run.stats["steps"] == n_steps).all()
    exact = exact_final()
    return np.max(np.linalg.norm(run.final.theta - exact, axis=1) / np.linalg.norm(exact, axis=1))


@pytest.mark.parametrize(
    "solver, order, ladder",
    [
        (dfx.Euler(), 1, [64, 128, 256, 512]),
        (dfx.Heun(), 2, [16, 32, 64, 128]),
        (dfx.Tsit5(), 5, [32, 48, 64, 96]),
    ],
    ids=["euler", "heun", "tsit5"],
)
def test_convergence_order(solver, order, ladder):
    errors = np.array([final_error(solver, n) for n in ladder])
    # Ladders chosen so the smallest error stays well above float64 round-off.
    assert errors.min() > 1e-13, errors
    slope = np.polyfit(np.log(T1 / np.array(ladder)), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.5, (slope, errors)


calls = [0]


def _count(_):
    calls[0] += 1


class Counting(gf.AbstractProblem):
    """A quadratic whose loss reports every evaluation (gradients included)."""

    def init(self, key):
        return {"theta": jax.random.normal(key, (3,))}, jnp.array([1.0, 2.0, 3.0])

    def loss(self, model, data):
        jax.debug.callback(_count, model["theta"][0])
        return 0.5 * jnp.sum(data * model["theta"] ** 2)

    def observables(self, model, data):  # no callback here: only gradients count
        return {"loss": 0.5 * jnp.sum(data * model["theta"] ** 2)}


@pytest.mark.parametrize(
    "solver", [dfx.Euler(), dfx.Heun(), dfx.Bosh3(), dfx.Tsit5(), dfx.Dopri8()], ids=lambda s: type(s).__name__
)
def test_gradient_evaluations_are_exact(solver):
    if isinstance(solver, dfx.Euler):
        kwargs = dict(stepsize_controller=dfx.ConstantStepSize(), dt0=0.05)
    else:
        kwargs = dict(stepsize_controller=dfx.PIDController(rtol=1e-6, atol=1e-8))
    calls[0] = 0
    run = gf.simulate(Counting(), t1=2.0, seeds=1, solver=solver, save=gf.LinearGrid(5), **kwargs)
    assert run.ok.all()
    assert run.stats["gradient_evaluations"][0] == calls[0], (run.stats["gradient_evaluations"], calls[0])
