"""Seeds are independent: a batch equals each seed alone, and a seed that
fails never spoils the others."""

import diffrax as dfx
import jax
import numpy as np
import pytest
from conftest import Blowup, seed_keys, tree_allclose

import gradflow as gf
from gradflow.problems import LeastSquares, TwoLayerLinear

RANDOM_NET = TwoLayerLinear(init_kind="random", init_scale=0.1)


@pytest.mark.parametrize("batching", ["vmap", "map"])
def test_batch_equals_each_seed_alone(batching):
    batch = gf.simulate(RANDOM_NET, t1=5.0, seeds=4, save=gf.LogGrid(n=20), batching=batching)
    assert batch.ok.all()
    # Each seed keeps its own step sizes, so step counts differ between seeds.
    assert len(set(batch.stats["steps"].tolist())) > 1
    for k in (0, 3):  # two seeds alone (each is a one-seed compile shared by both)
        alone = gf.simulate(RANDOM_NET, t1=5.0, seeds=[k], save=gf.LogGrid(n=20))
        assert alone.stats["steps"][0] == batch.stats["steps"][k]
        for name in batch.obs:
            # Same arithmetic on the same seed; vmap may reorder reductions: 1e-10.
            assert np.allclose(alone.obs[name][0], batch.obs[name][k], rtol=1e-10, atol=1e-12)
        one = jax.tree_util.tree_map(lambda x: x[k], batch.final)
        assert tree_allclose(jax.tree_util.tree_map(lambda x: x[0], alone.final), one, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def nan_run():
    return gf.simulate(Blowup(bad=(1, 3)), t1=1.0, seeds=5, save=gf.LinearGrid(11))


def test_nan_seeds_are_marked_and_others_complete(nan_run):
    status = nan_run.stats["status"]
    assert status.tolist() == [gf.Status.OK, gf.Status.NONFINITE, gf.Status.OK, gf.Status.NONFINITE, gf.Status.OK]
    assert "NaN" in nan_run.messages[1]
    # The bad seeds keep what was saved before θ crossed 2 (at t = 0.375) ...
    theta = nan_run.obs["theta"]
    assert np.isfinite(theta[1, :4]).all() and np.isnan(theta[1, -1])
    assert 0.3 < nan_run.stats["t_final"][1] < 0.4
    # ... and the good seeds match the closed form θ(t) = θ0 / sqrt(1 - 2 θ0² t).
    for k in (0, 2, 4):
        theta0 = 0.1 + 0.01 * k
        exact = theta0 / np.sqrt(1 - 2 * theta0**2 * nan_run.ts)
        assert np.allclose(theta[k], exact, rtol=1e-6)  # default rtol 1e-6


def test_good_seeds_unaffected_by_failing_ones(nan_run):
    clean = gf.simulate(Blowup(bad=(1, 3)), t1=1.0, seeds=[0, 2, 4], save=gf.LinearGrid(11))
    assert clean.ok.all()
    assert np.allclose(clean.obs["theta"], nan_run.obs["theta"][[0, 2, 4]], rtol=1e-12, atol=0)


def test_failed_run_saves_and_loads(nan_run, tmp_path):
    nan_run.save(tmp_path / "run")
    back = gf.load(tmp_path / "run", problem=Blowup(bad=(1, 3)))
    assert back.stats["status"].tolist() == nan_run.stats["status"].tolist()
    assert np.array_equal(back.obs["theta"], nan_run.obs["theta"], equal_nan=True)
    assert "nonfinite" in back.summary()


def test_fixed_step_nan_is_caught_by_the_event():
    run = gf.simulate(
        Blowup(bad=(1,)),
        t1=1.0,
        seeds=3,
        solver=dfx.Euler(),
        stepsize_controller=dfx.ConstantStepSize(),
        dt0=0.01,
        save=gf.LinearGrid(11),
    )
    assert run.stats["status"].tolist() == [gf.Status.OK, gf.Status.NONFINITE, gf.Status.OK]
    assert run.stats["steps"][1] < 100 and run.stats["steps"][0] == 100


def test_singular_blowup_collapses_step_size():
    # Without the NaN cap the solution itself goes to infinity at t = 0.5.
    run = gf.simulate(Blowup(bad=(1,), nan_above=None), t1=1.0, seeds=2, save=gf.LinearGrid(5))
    assert run.stats["status"].tolist() == [gf.Status.OK, gf.Status.STEP_COLLAPSE]
    assert abs(run.stats["t_final"][1] - 0.5) < 1e-3
    assert "implicit solver" in run.messages[1]


def test_stop_events_per_seed():
    problem = LeastSquares(n=16, p=4, cond=10.0, noise=0.0)
    run = gf.simulate(problem, t1=200.0, seeds=3, stop=gf.LossBelow(1e-6), save=gf.LogGrid(n=30))
    assert (run.stats["status"] == gf.Status.STOPPED).all()
    t_stop = run.stats["t_final"]
    assert (t_stop < 200.0).all() and len(set(t_stop.tolist())) == 3
    # At the stop the loss is just below the threshold; before it, every saved
    # loss was above; nothing is saved after it.
    _, data = jax.jit(jax.vmap(problem.init))(seed_keys(3))
    stop_loss = jax.vmap(problem.loss)(run.final, data)
    assert (stop_loss < 1e-6).all() and (stop_loss > 1e-7).all(), stop_loss
    for k in range(3):
        after = run.ts > t_stop[k]
        assert np.isnan(run.obs["loss"][k, after]).all()
        assert (run.obs["loss"][k, ~after] >= 1e-6).all()
    grad = gf.simulate(problem, t1=200.0, seeds=3, stop=gf.GradNormBelow(1e-4), save=gf.LogGrid(n=30))
    assert (grad.stats["status"] == gf.Status.STOPPED).all()
    # The gradient-norm check costs one gradient per step, and is counted.
    assert (grad.stats["gradient_evaluations"] >= 7 * grad.stats["steps"]).all()


def test_max_steps_keeps_partial_results():
    run = gf.simulate(RANDOM_NET, t1=50.0, seeds=2, max_steps=20, save=gf.LogGrid(n=30))
    assert (run.stats["status"] == gf.Status.MAX_STEPS).all()
    assert "max_steps" in run.messages[0]
    assert (run.stats["t_final"] < 50.0).all()
    loss = run.obs["loss"]
    assert np.isfinite(loss[:, 0]).all() and np.isnan(loss[:, -1]).all()


def test_explicit_key_arrays_are_seeds():
    raw = jax.numpy.stack([jax.random.PRNGKey(i) for i in range(4)])
    typed = jax.numpy.stack([jax.random.key(i) for i in range(4)])
    by_int = gf.simulate(RANDOM_NET, t1=5.0, seeds=4, save=gf.LogGrid(n=20))
    for keys in (raw, typed):
        run = gf.simulate(RANDOM_NET, t1=5.0, seeds=keys, save=gf.LogGrid(n=20))
        assert np.array_equal(run.obs["loss"], by_int.obs["loss"])
    assert run.config["seeds"] == {"keys": np.asarray(raw).tolist()}
