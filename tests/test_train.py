"""`train` against closed-form optimiser iterates, and overlaid on the flow."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from conftest import seed_keys

import gradflow as gf
from gradflow.problems import LeastSquares

PROBLEM = LeastSquares(n=16, p=6, cond=20.0)


def test_sgd_equals_closed_form_gd_iterate():
    lr = 0.3
    run = gf.train(PROBLEM, optax.sgd(lr), steps=400, dt=lr, seeds=3, save=gf.LogGrid(n=30, t_min=lr))
    steps = np.asarray(run.config["save_steps"])
    assert steps[0] == 0 and steps[-1] == 400
    assert np.allclose(run.ts, steps * lr)
    model0, data = jax.vmap(PROBLEM.init)(seed_keys(3))
    gd = jax.vmap(jax.vmap(PROBLEM.gd_iterate, (None, None, None, 0)), (0, 0, None, None))(
        model0, data, lr, jnp.asarray(steps)
    )
    # Same arithmetic up to summation order: 400 steps of round-off, 1e-11 relative.
    assert np.allclose(run.obs["theta"], gd.theta, rtol=1e-11, atol=1e-13)
    assert np.allclose(run.final.theta, gd.theta[:, -1], rtol=1e-11, atol=1e-13)
    assert (run.stats["gradient_evaluations"] == 400).all()
    assert (run.stats["status"] == gf.Status.OK).all()


def test_small_learning_rate_tracks_the_flow():
    flow = gf.simulate(PROBLEM, t1=10.0, seeds=2, stepsize_controller=dfx.PIDController(rtol=1e-9, atol=1e-11), save=gf.LinearGrid(11))
    gaps = []
    for lr in (0.1, 0.05):
        run = gf.train(PROBLEM, optax.sgd(lr), steps=round(10.0 / lr), dt=lr, seeds=2, save=gf.LinearGrid(11))
        assert np.allclose(run.ts, flow.ts)
        gaps.append(np.abs(run.obs["theta"] - flow.obs["theta"]).max())
    # GD is first order in the step: halving the step roughly halves the gap.
    assert 1.6 < gaps[0] / gaps[1] < 2.4, gaps


def test_train_marks_diverging_seeds():
    # lr above 2/λ_max = 2 makes GD diverge on every seed; the run still completes.
    run = gf.train(PROBLEM, optax.sgd(5.0), steps=2000, dt=5.0, seeds=2, save=gf.LinearGrid(5))
    assert (run.stats["status"] == gf.Status.NONFINITE).all()
    assert (run.stats["t_final"] < 2000 * 5.0).all()
    assert np.isfinite(run.obs["loss"][:, 0]).all()
