"""Exact gradient-evaluation counts (convergence orders: tests/test_accuracy.py)."""


import diffrax as dfx
import jax
import jax.numpy as jnp
import pytest

import gradflow as gf
from gradflow.problems import LeastSquares

PROBLEM = LeastSquares(n=8, p=4, cond=4.0)
T1 = 4.0


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
