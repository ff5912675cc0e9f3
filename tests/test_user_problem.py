"""A problem written by a user, outside gradflow, works everywhere: simulate,
train, per-field rates, save/load and the plots."""

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

import gradflow as gf
import gradflow.plot

matplotlib.use("Agg")


class TanhNet(eqx.Module):
    W: jax.Array
    v: jax.Array
    scale: jax.Array  # an array that is not trained
    activation: str = eqx.field(static=True, default="tanh")

    def __call__(self, x):
        return self.scale * (jnp.tanh(x @ self.W.T) @ self.v)


class TeacherStudent(gf.AbstractProblem):
    """A two-layer tanh student learning a one-neuron teacher on Gaussian inputs."""

    n: int = 24
    d: int = 3
    width: int = 4

    def __check_init__(self):
        if self.width < 1:
            raise ValueError("field `width` must be >= 1.")

    def init(self, key):
        kx, kw, kv, kt = jax.random.split(key, 4)
        X = jax.random.normal(kx, (self.n, self.d))
        y = jnp.tanh(X @ jax.random.normal(kt, (self.d,)))
        model = TanhNet(
            W=0.5 * jax.random.normal(kw, (self.width, self.d)),
            v=0.5 * jax.random.normal(kv, (self.width,)),
            scale=jnp.array(1.0),
        )
        return model, (X, y)

    def loss(self, model, data):
        X, y = data
        return 0.5 * jnp.mean((model(X) - y) ** 2)

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "v_norm": jnp.linalg.norm(model.v), "v": model.v}

    def trainable(self, model):
        mask = jax.tree_util.tree_map(lambda _: False, model)
        return eqx.tree_at(lambda m: (m.W, m.v), mask, (True, True))


PROBLEM = TeacherStudent()


@pytest.fixture(scope="module")
def flow_run():
    return gf.simulate(PROBLEM, t1=20.0, seeds=3, save=gf.LogGrid(n=25, t_min=0.01))


def test_simulate_user_problem(flow_run):
    assert flow_run.ok.all()
    loss = flow_run.obs["loss"]
    assert loss.shape == (3, 25)
    # Gradient flow never increases the loss (up to solver tolerance).
    assert (np.diff(loss, axis=1) <= 1e-8).all()
    assert (loss[:, -1] < 0.5 * loss[:, 0]).all()
    assert isinstance(flow_run.final, TanhNet) and flow_run.final.W.shape == (3, 4, 3)
    # The non-trainable array did not move.
    assert np.array_equal(flow_run.final.scale, flow_run.initial.scale)


def test_rates_scale_time_per_field(flow_run):
    # Rate 2 on both fields is the same flow on a doubled clock.
    fast = gf.simulate(
        PROBLEM, gf.GradientFlow(rates={"W": 2.0, "v": 2.0}), t1=10.0, seeds=3, save=gf.LinearGrid(3)
    )
    both = gf.simulate(PROBLEM, t1=20.0, seeds=3, save=gf.LinearGrid(3))
    assert np.allclose(fast.obs["loss"], both.obs["loss"], rtol=1e-5)  # two rtol-1e-6 solves
    # Rate on v only changes the trajectory.
    v_only = gf.simulate(PROBLEM, gf.GradientFlow(rates={"v": 10.0}), t1=20.0, seeds=3, save=gf.LinearGrid(3))
    assert not np.allclose(v_only.obs["v_norm"], both.obs["v_norm"], rtol=1e-3)


def test_train_user_problem(flow_run):
    run = gf.train(PROBLEM, optax.adam(1e-2), steps=200, dt=0.1, seeds=3, save=gf.LogGrid(n=20, t_min=0.1))
    assert (run.stats["status"] == gf.Status.OK).all()
    assert isinstance(run.final, TanhNet)
    assert (run.obs["loss"][:, -1] < run.obs["loss"][:, 0]).all()


def test_save_load_and_plots(flow_run, tmp_path):
    flow_run.save(tmp_path / "run")
    with pytest.raises(gf.RunFormatError, match="problem=MyProblem"):
        gf.load(tmp_path / "run")  # a saved run never imports the class it names
    back = gf.load(tmp_path / "run", problem=TeacherStudent)
    assert isinstance(back.final, TanhNet) and back.final.activation == "tanh"
    assert np.array_equal(back.final.W, flow_run.final.W)
    assert back.config == flow_run.config
    paths = gf.plot.save_figures(back, tmp_path / "figs")
    names = {p.name for p in paths}
    assert {"loss.png", "v_norm.png", "v.png"} <= names
    assert all(p.stat().st_size > 5000 for p in paths)
    ax = gf.plot.compare([flow_run, back], "v", component=1, labels=["a", "b"])
    assert len(ax.get_lines()) == 2


def test_sharpness_of_a_user_problem_is_its_dense_hessians_top_eigenvalues():
    """`gf.Sharpness` wraps a problem written here (a frozen array, a static field): the
    Hessian is taken over the trainable leaves only. Lanczos over all 16 of them is exact
    to round-off: 1e-8 relative against eigvalsh of the dense Hessian."""
    run = gf.simulate(gf.Sharpness(PROBLEM, k=2), t1=2.0, seeds=2, save=gf.LinearGrid(n=2))
    for s in range(2):
        model0, data = PROBLEM.init(jax.random.PRNGKey(s))
        model = jax.tree_util.tree_map(lambda x: x[s], run.final)
        params, rest = eqx.partition(model, PROBLEM.trainable(model0))
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        hessian = jax.hessian(lambda v: PROBLEM.loss(eqx.combine(unravel(v), rest), data))(flat)
        np.testing.assert_allclose(run.obs["sharpness"][s, -1], np.linalg.eigvalsh(hessian)[::-1][:2], rtol=1e-8)
    assert run.obs["sharpness_hvps"].max() <= 16
