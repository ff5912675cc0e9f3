"""`ModifiedFlow` (Barrett & Dherin 2021): GD at learning rate η stays O(η²) from it,
O(η) from the plain gradient flow. Checked against least squares' closed form of the
modified flow, θ(t) = θ* + V e^{−t(Λ + ηΛ²/2)} Vᵀ(θ0 − θ*), and by the order of the
GD gap on least squares and on a nonlinear problem (the diagonal network)."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradflow as gf
from gradflow.accuracy import flow_gap
from gradflow.problems import DiagonalLinear, LeastSquares

LS = LeastSquares(n=8, p=4, cond=4.0)


def test_modified_flow_matches_its_closed_form_on_least_squares():
    lr, t1 = 0.2, 3.0
    run = gf.simulate(LS, gf.ModifiedFlow(lr=lr), t1=t1, seeds=2, save=gf.LinearGrid(n=2),
                      solver=dfx.Dopri8(), stepsize_controller=dfx.PIDController(rtol=1e-12, atol=1e-14))
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(2)])
    model0, data = jax.vmap(LS.init)(keys)
    for s in range(2):
        V, lam = data["V"][s], data["lam"][s]
        star = LS.minimiser(jax.tree_util.tree_map(lambda x: x[s], data))
        exact = star + V @ (jnp.exp(-t1 * (lam + 0.5 * lr * lam**2)) * (V.T @ (model0.theta[s] - star)))
        # A tight Dopri8 solve: agreement to ~1e-12 relative.
        np.testing.assert_allclose(run.final.theta[s], exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("problem, t1, lrs", [
    (LS, 4.0, [0.1, 0.05, 0.025, 0.0125]),
    (DiagonalLinear(n=8, p=4, sparsity=2, alpha=0.5), 2.0, [0.05, 0.025, 0.0125, 0.00625]),
], ids=["least-squares", "diagonal-network"])
def test_gd_gap_is_second_order_to_the_modified_flow_and_first_order_to_the_flow(problem, t1, lrs):
    plain = flow_gap(problem, optax.sgd, lrs, t1=t1, seeds=2)
    modified = flow_gap(problem, optax.sgd, lrs, t1=t1, seeds=2, flow=lambda lr: gf.ModifiedFlow(lr=lr))
    # Measured: 1.00 / 1.99 on least squares, 1.03 / 2.00 on the diagonal network.
    assert abs(plain.meta["order"] - 1) <= 0.1, str(plain)
    assert abs(modified.meta["order"] - 2) <= 0.2, str(modified)
    assert (modified.column("param gap") < plain.column("param gap")).all()


def test_modified_flow_checks_its_learning_rate():
    with pytest.raises(ValueError, match="`lr`"):
        gf.ModifiedFlow(lr=-0.1)
    with pytest.raises(ValueError, match="leave `reference` None"):
        flow_gap(LS, optax.sgd, [0.1], t1=1.0, flow=lambda lr: gf.ModifiedFlow(lr=lr), reference=object())
