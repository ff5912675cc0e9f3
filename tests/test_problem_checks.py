"""A user's own problem is checked once, before anything compiles, from `eval_shape`
of its `init`, `trainable`, `loss` and `observables` (found: an integer leaf such as
`jnp.array([1, -1, 1, -1])` was silently frozen by simulate and train; a vector loss,
a Python-float observable, or observables without "loss" failed deep inside JAX,
diffrax or `run.summary()`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradflow as gf
import gradflow._segments
import gradflow._simulate
import gradflow._train


class Net(eqx.Module):
    W: jax.Array
    a: jax.Array


class IntLeaf(gf.AbstractProblem):
    """A two-layer net whose output signs `a` are built as integers, as users write them."""

    freeze_a: bool = False

    def init(self, key):
        return Net(W=jax.random.normal(key, (4, 3)), a=jnp.array([1, -1, 1, -1])), {"x": jnp.ones((5, 3))}

    def loss(self, model, data):
        return jnp.mean((jnp.tanh(data["x"] @ model.W.T) @ model.a - 1.0) ** 2)

    def trainable(self, model):
        if not self.freeze_a:
            return super().trainable(model)
        return Net(W=True, a=False)


class Broken(gf.AbstractProblem):
    kind: str = "vector-loss"

    def init(self, key):
        return {"w": jax.random.normal(key, (3,))}, None

    def loss(self, model, data):
        per_example = model["w"] ** 2
        return per_example if self.kind == "vector-loss" else jnp.sum(per_example)

    def observables(self, model, data):
        if self.kind == "float-observable":
            return {"loss": self.loss(model, data), "scale": 0.5}
        if self.kind == "no-loss":
            return {"norm": jnp.linalg.norm(model["w"])}
        return {"loss": self.loss(model, data)}


@pytest.fixture
def no_compiling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the bad problem was caught")

    for module, name in [(gradflow._segments, "compile_program"), (gradflow._simulate, "compile_lowered"),
                         (gradflow._train, "compile_program")]:
        monkeypatch.setattr(module, name, refuse)


def _both(problem, **flow):
    """simulate and train: each must refuse the same problem."""
    return [lambda: gf.simulate(problem, gf.GradientFlow(**flow), t1=1.0, seeds=2),
            lambda: gf.train(problem, optax.sgd(0.1), steps=3, dt=0.1, seeds=2)]


def test_an_integer_leaf_is_refused_by_simulate_and_train_alike(no_compiling):
    for call in _both(IntLeaf()):
        with pytest.raises(ValueError, match=r"model\.a is an integer array \(int(32|64)\).*dtype=float.*trainable"):
            call()


def test_a_rate_on_an_integer_leaf_names_its_dtype(no_compiling):
    with pytest.raises(ValueError, match=r"model\.a is an integer array"):
        gf.simulate(IntLeaf(), gf.GradientFlow(rates={"a": 10.0}), t1=1.0)


def test_an_integer_leaf_marked_fixed_stays_fixed_in_both():
    problem = IntLeaf(freeze_a=True)
    flow = gf.simulate(problem, t1=0.5, seeds=2, save=gf.LogGrid(n=4))
    gd = gf.train(problem, optax.sgd(0.01), steps=50, dt=0.01, seeds=2, save=gf.LogGrid(n=4))
    for run in (flow, gd):
        assert jnp.issubdtype(run.final.a.dtype, jnp.integer) and np.array_equal(run.final.a, run.initial.a)
        assert not np.array_equal(run.final.W, run.initial.W)  # the float layer did train
        assert (run.obs["loss"][:, -1] < run.obs["loss"][:, 0]).all()


@pytest.mark.parametrize("kind, match", [
    ("vector-loss", r"Broken\.loss must return a floating-point scalar; it returned shape \(3,\)"),
    ("float-observable", r"Broken\.observables\['scale'\] is a float, not an array"),
    ("no-loss", r"Broken\.observables must include 'loss'"),
])
def test_a_broken_loss_or_observable_is_named_before_compiling(no_compiling, kind, match):
    for call in _both(Broken(kind)):
        with pytest.raises(ValueError, match=match):
            call()
