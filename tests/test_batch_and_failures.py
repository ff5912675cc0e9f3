"""Seeds are independent: a batch equals each seed alone, and a seed that
fails never spoils the others."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optax
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


class Faults(gf.AbstractProblem):
    """One batch, one fault per chosen seed. θ = (x, y), loss ½·c·x² + ½·k·y²,
    x0 = 1, so a healthy seed follows x(t) = e^{−t} exactly.
    - seed 1 (NaN): the loss turns NaN once x < 1/2 (at t = ln 2);
    - seed 2 (max_steps): k = 1e5 and y0 = 1, stiff: an explicit solver needs
      ~t1·k/3.5 steps, far beyond `max_steps`;
    - seed 3 (stop): c = 10, so the loss falls below 1e-3 at t = ln(500)/20;
    - seeds 0, 4, 5: healthy (c = 1, k = 1, y0 = 0)."""

    def init(self, key):
        seed = key[-1]
        stiff, fast = seed == 2, seed == 3
        model = {"x": jnp.ones(()), "y": jnp.where(stiff, 1.0, 0.0)}
        data = {"c": jnp.where(fast, 10.0, 1.0), "k": jnp.where(stiff, 1e5, 1.0), "nan": seed == 1}
        return model, data

    def loss(self, model, data):
        x, y = model["x"], model["y"]
        value = 0.5 * data["c"] * x**2 + 0.5 * data["k"] * y**2
        return value + jnp.where(data["nan"] & (x < 0.5), jnp.nan, 0.0) * x  # NaN gradient too

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "x": model["x"]}


FAULT_ARGS = dict(t1=2.0, seeds=6, max_steps=300, stop=gf.LossBelow(1e-3), save=gf.LinearGrid(n=21))
EXPECTED = [gf.Status.OK, gf.Status.NONFINITE, gf.Status.MAX_STEPS, gf.Status.STOPPED, gf.Status.OK, gf.Status.OK]


@pytest.fixture(scope="module")
def fault_run():
    return gf.simulate(Faults(), **FAULT_ARGS)


def test_each_fault_gets_its_status_and_the_others_are_exact(fault_run):
    run = fault_run
    assert run.stats["status"].tolist() == EXPECTED
    t_end = run.stats["t_final"]
    assert abs(t_end[1] - np.log(2)) < 0.05  # NaN found within a step of where x crosses 1/2
    assert run.stats["steps"][2] == 300 and t_end[2] < 0.1  # stopped by max_steps, early
    # x = e^{−10t}: the loss 5·e^{−20t} reaches 1e-3 at ln(5000)/20; the stop is checked
    # at the end of each step, so the seed stops within a step after that.
    assert np.log(5000) / 20 <= t_end[3] < np.log(5000) / 20 + 0.1
    assert 5 * float(run.final["x"][3]) ** 2 < 1e-3
    # Each failed seed's message says what to do; the summary counts each status.
    assert "max_steps" in run.messages[2] and "NaN" in run.messages[1]
    summary = run.summary()
    for count in ("3 ok", "1 nonfinite", "1 max_steps", "1 stopped"):
        assert count in summary, summary
    # Observables are kept up to each failure and are NaN after it.
    x = run.obs["x"]
    for k in (1, 2, 3):
        before = run.ts <= t_end[k]
        assert np.isfinite(x[k, before]).all() and np.isnan(x[k, ~before]).all()
    assert np.allclose(x[1, run.ts <= t_end[1]], np.exp(-run.ts[run.ts <= t_end[1]]), rtol=1e-5)
    # The healthy seeds follow the closed form (default rtol 1e-6 → 1e-5 relative) ...
    for k in (0, 4, 5):
        assert np.allclose(x[k], np.exp(-run.ts), rtol=1e-5, atol=0)


def test_faults_do_not_touch_the_healthy_seeds(fault_run):
    # ... and equal those seeds run without the faulty ones (batch-independence, 1e-12).
    alone = gf.simulate(Faults(), **{**FAULT_ARGS, "seeds": [0, 4, 5]})
    assert alone.ok.all()
    for name in alone.obs:
        assert np.allclose(alone.obs[name], fault_run.obs[name][[0, 4, 5]], rtol=0, atol=1e-12)
    assert (alone.stats["steps"] == fault_run.stats["steps"][[0, 4, 5]]).all()


def test_faults_survive_checkpointed_segments(fault_run, tmp_path):
    # The same batch in segments of 40 steps: each status and every observable unchanged.
    run = gf.simulate(Faults(), **FAULT_ARGS, checkpoint_dir=tmp_path, checkpoint_every=40)
    assert run.stats["status"].tolist() == EXPECTED
    assert (run.stats["steps"] == fault_run.stats["steps"]).all()
    for name in run.obs:
        assert np.array_equal(run.obs[name], fault_run.obs[name], equal_nan=True), name


def test_failure_summary_groups_seeds_with_the_time_each_reached():
    """Found: all-failed runs said only "no successful seed" and repeated one message per
    seed; a diverging GD run was told to lower a flow's rates."""
    from gradflow.problems import LeastSquares

    run = gf.simulate(LeastSquares(cond=1e4), t1=1000.0, seeds=5, max_steps=30, save=gf.LogGrid(n=5))
    summary = run.summary()
    assert "5 seeds max_steps (reached, of t1 = 1000: 0: t = " in summary
    assert summary.count("max_steps was reached before t1") == 1  # one message for the group
    assert "last saved loss" in summary and "no successful seed" in summary
    for k, t in enumerate(run.stats.t_final):
        assert f"{k}: t = {t:.4g}" in summary and 0 < t < 1000
    gd = gf.train(LeastSquares(), optax.sgd(1e3), steps=200, dt=1e3, seeds=2, save=gf.LogGrid(n=4))
    assert (gd.stats.status == gf.Status.NONFINITE).all()
    assert "lower the learning rate" in gd.summary() and "rates" not in gd.summary()


def test_seed_numbers_become_the_keys_of_prngkey():
    from gradflow._devices import _keys_from_ids

    # One vmapped PRNGKey call for many seed numbers: the same keys as one call per number,
    # negative and beyond-int32 numbers included (x64 is on in the suite: PRNGKey takes int64).
    ids = [0, 1, 7, 2**31 - 1, -5, -(2**31), 2**40, -(2**40)]
    expected = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in ids])
    np.testing.assert_array_equal(np.asarray(_keys_from_ids(ids)), expected)
    assert _keys_from_ids(list(range(20_000))).shape == (20_000, 2)
