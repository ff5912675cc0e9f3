"""Each reference problem's flow agrees with its closed form, and conserves what
the theory says it conserves."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import exact_observables, relative_error, seed_keys

import gradflow as gf
from gradflow.problems import DiagonalLinear, LeastSquares, TwoLayerLinear

TIGHT = dfx.PIDController(rtol=1e-10, atol=1e-12)

CASES = {
    "least-squares": (LeastSquares(cond=100.0), 50.0, ["theta", "loss"]),
    "linear-network": (TwoLayerLinear(), 10.0, ["modes", "loss"]),
    "diagonal-network": (DiagonalLinear(), 20.0, ["beta", "loss"]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def tight_run(request):
    problem, t1, names = CASES[request.param]
    run = gf.simulate(problem, t1=t1, seeds=3, stepsize_controller=TIGHT, save=gf.LogGrid(n=40, t_min=1e-2))
    return problem, run, names


def test_matches_closed_form_at_every_saved_time(tight_run):
    problem, run, names = tight_run
    assert run.ok.all(), run.messages
    exact = exact_observables(problem, run, names)
    for name in names:
        err = relative_error(run.obs[name], exact[name])
        # rtol 1e-10 local error accumulates over ~1e2–1e3 steps: 1e-7 leaves margin.
        assert err.max() <= 1e-7, (name, err.max())


def test_conserved_quantities_drift(tight_run):
    problem, run, _ = tight_run
    model0, data = jax.vmap(problem.init)(seed_keys(run.n_seeds))
    c0 = jax.vmap(problem.conserved)(model0, data)
    c1 = jax.vmap(problem.conserved)(jax.tree_util.tree_map(jnp.asarray, run.final), data)
    for name in c0:
        drift = np.linalg.norm((c1[name] - c0[name]).reshape(run.n_seeds, -1), axis=1)
        scale = np.linalg.norm(np.asarray(c0[name]).reshape(run.n_seeds, -1), axis=1)
        # Conserved exactly by the flow; rtol 1e-10 over the run keeps drift at ~1e-9.
        assert (drift <= 1e-7 * np.maximum(scale, 1.0)).all(), (name, drift)


def test_final_model_is_the_problems_module(tight_run):
    problem, run, _ = tight_run
    model0, _ = problem.init(jax.random.PRNGKey(0))
    assert type(run.final) is type(model0)
    leaves0 = jax.tree_util.tree_leaves(model0)
    for leaf, batched in zip(leaves0, jax.tree_util.tree_leaves(run.final)):
        assert batched.shape == (run.n_seeds, *leaf.shape)
    assert np.allclose(np.asarray(jax.tree_util.tree_leaves(run.initial)[0][0]), np.asarray(leaves0[0]))


def test_saxe_mode_strength_formula_is_the_ode_solution():
    # du/dt = 2u(s - u): check the closed form by finite differences.
    s, u0 = 2.0, 1e-3
    t = jnp.linspace(0.1, 5.0, 50)
    u = TwoLayerLinear.mode_strength(s, u0, t)
    du = jax.vmap(jax.grad(lambda t: TwoLayerLinear.mode_strength(s, u0, t)))(t)
    assert np.allclose(du, 2 * u * (s - u), rtol=1e-10, atol=1e-12)
