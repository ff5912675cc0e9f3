"""Sharpness (top Hessian eigenvalues by Lanczos on Hessian–vector products) against
`jnp.linalg.eigvalsh(jax.hessian(...))` of the dense Hessian, on least squares
(a constant Hessian) and on a nonlinear problem (the two-layer linear network),
inside `simulate` and `train`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import equinox as eqx
import gradflow as gf
from gradflow.problems import LeastSquares, TwoLayerLinear


def _dense_top(problem, model, data, k):
    params, rest = eqx.partition(model, problem.trainable(model))
    flat, unravel = ravel_pytree(params)
    H = jax.hessian(lambda x: problem.loss(eqx.combine(unravel(x), rest), data))(flat)
    return np.sort(np.linalg.eigvalsh(np.asarray(H)))[::-1][:k]


@pytest.mark.parametrize("inner", [LeastSquares(n=8, p=4, cond=4.0), TwoLayerLinear()], ids=["ls", "linear-network"])
def test_sharpness_equals_the_dense_hessian_along_the_flow(inner):
    problem = gf.Sharpness(inner, k=2)
    run = gf.simulate(problem, t1=2.0, seeds=2, save=gf.LinearGrid(n=3))
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(2)])
    model0, data = jax.vmap(inner.init)(keys)
    for s in range(2):
        pick = lambda x: x[s]  # noqa: E731
        dense0 = _dense_top(inner, jax.tree_util.tree_map(pick, model0), jax.tree_util.tree_map(pick, data), 2)
        final = jax.tree_util.tree_map(lambda x: jnp.asarray(x[s]), run.final)
        dense1 = _dense_top(inner, final, jax.tree_util.tree_map(pick, data), 2)
        # Least squares (4 parameters): the full Krylov space, exact to round-off. The network (112
        # parameters, 64 Lanczos steps): the top two Ritz values have converged to round-off.
        np.testing.assert_allclose(run.obs["sharpness"][s, 0], dense0, rtol=1e-8)
        np.testing.assert_allclose(run.obs["sharpness"][s, -1], dense1, rtol=1e-8)
    n = ravel_pytree(eqx.filter(model0, inner.trainable(model0)))[0].size // 2  # per seed
    # Lanczos stops once the top two have converged: at most min(n, 64) products a save
    # (least squares: 4 or fewer; the network: 24–39 of 64, measured)
    assert (run.obs["sharpness_hvps"] >= 2).all() and (run.obs["sharpness_hvps"] <= min(n, 64)).all()
    # the run's stats count them: the sum over the 3 saves of each seed
    np.testing.assert_array_equal(run.stats["hessian_vector_products"], run.obs["sharpness_hvps"].sum(1))
    assert "Hessian–vector products" in run.summary()


def test_sharpness_is_an_observable_of_train_too():
    inner = LeastSquares(n=8, p=4, cond=4.0)
    run = gf.train(gf.Sharpness(inner), optax.sgd(0.1), steps=10, dt=0.1, seeds=1, save=gf.LinearGrid(n=2))
    model, data = inner.init(jax.random.PRNGKey(0))
    # Least squares: the Hessian XᵀX/n is constant, so every save sees the same top eigenvalue.
    np.testing.assert_allclose(run.obs["sharpness"][0, :, 0], _dense_top(inner, model, data, 1)[0], rtol=1e-8)
    assert 2 <= run.stats["hessian_vector_products"][0] <= 2 * 4  # 2 saves, at most 4 parameters' worth each


def test_the_modified_flow_counts_one_hessian_vector_product_per_evaluation():
    run = gf.simulate(LeastSquares(n=8, p=4, cond=4.0), gf.ModifiedFlow(lr=0.1), t1=1.0, seeds=2,
                      save=gf.LinearGrid(n=2))
    np.testing.assert_array_equal(run.stats["hessian_vector_products"], run.stats["gradient_evaluations"])
    plain = gf.simulate(LeastSquares(n=8, p=4, cond=4.0), t1=1.0, seeds=2, save=gf.LinearGrid(n=2))
    np.testing.assert_array_equal(plain.stats["hessian_vector_products"], 0)


def test_sharpness_checks_its_arguments():
    with pytest.raises(ValueError, match="`k`"):
        gf.Sharpness(LeastSquares(), k=0)
    with pytest.raises(TypeError, match="`inner`"):
        gf.Sharpness("ls")
