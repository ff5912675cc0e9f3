"""Bad input is refused with an error naming the argument, before anything compiles."""

import diffrax as dfx
import optax
import pytest

import gradflow as gf
import gradflow._segments
import gradflow._simulate
import gradflow._train
from gradflow.problems import DiagonalLinear, LeastSquares, TwoLayerLinear

PROBLEM = TwoLayerLinear()


@pytest.fixture(autouse=True)
def no_compiling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the bad argument was caught")

    for module, name in [(gradflow._segments, "compile_program"), (gradflow._simulate, "compile_lowered"),
                         (gradflow._train, "compile_program")]:
        monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(t1=-1.0), "`t1`"),
        (dict(t1=float("nan")), "`t1`"),
        (dict(t1="10"), "`t1`"),
        (dict(t1=1.0, seeds=0), "`seeds`"),
        (dict(t1=1.0, seeds=-2), "`seeds`"),
        (dict(t1=1.0, seeds=[]), "`seeds`"),
        (dict(t1=1.0, seeds=[1, 1]), "`seeds`"),
        (dict(t1=1.0, stepsize_controller=dfx.PIDController(rtol=0.0, atol=1e-8)), "rtol"),
        (dict(t1=1.0, stepsize_controller=dfx.PIDController(rtol=-1e-3, atol=1e-8)), "rtol"),
        (dict(t1=1.0, stepsize_controller=dfx.PIDController(rtol=1e-3, atol=0.0)), "atol"),
        (dict(t1=1.0, flow=gf.GradientFlow(rates={"W3": 2.0})), "W3"),
        (dict(t1=1.0, solver=dfx.Euler()), "ConstantStepSize"),
        (dict(t1=1.0, stepsize_controller=dfx.ConstantStepSize()), "`dt0`"),
        (dict(t1=1.0, max_steps=0), "`max_steps`"),
        (dict(t1=1.0, save="log"), "`save`"),
        (dict(t1=1.0, solver="tsit5"), "`solver`"),
        (dict(t1=1.0, stop=1e-3), "`stop`"),
    ],
)
def test_simulate_rejects(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gf.simulate(PROBLEM, **kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gf.GradientFlow(rates={"W1": -1.0}), "rates"),
        (lambda: gf.GradientFlow(rates={"W1": "fast"}), "rates"),
        (lambda: gf.GradientFlow(rates=[("W1", 1.0)]), "rates"),
        (lambda: gf.SignFlow(eps=0.0), "`eps`"),
        (lambda: gf.LogGrid(n=1), "`n`"),
        (lambda: gf.LogGrid(t_min=-1.0), "`t_min`"),
        (lambda: gf.LinearGrid(n=1.5), "`n`"),
        (lambda: gf.LossBelow(-1.0), "threshold"),
        (lambda: LeastSquares(n=2, p=4), "`n`"),
        (lambda: LeastSquares(cond=0.5), "`cond`"),
        (lambda: TwoLayerLinear(strengths=(1.0,) * 9), "`strengths`"),
        (lambda: TwoLayerLinear(init_kind="orthogonal"), "`init_kind`"),
        (lambda: TwoLayerLinear(d_in=0), "`d_in`"),
        (lambda: DiagonalLinear(sparsity=40), "`sparsity`"),
        (lambda: DiagonalLinear(alpha=0.0), "`alpha`"),
        (lambda: DiagonalLinear(data_seed=-1), "`data_seed`"),
    ],
)
def test_constructors_reject(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_rate_on_a_frozen_field_is_refused():
    class Frozen(LeastSquares):
        def trainable(self, model):
            return type(model)(theta=False)

    with pytest.raises(ValueError, match="no leaf"):
        gf.simulate(Frozen(), t1=1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0, dt=0.1), "`steps`"),
        (dict(steps=10, dt=0.0), "`dt`"),
        (dict(steps=10, dt=0.1, seeds=0), "`seeds`"),
        (dict(steps=10, dt=0.1, save=None), "`save`"),
    ],
)
def test_train_rejects(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gf.train(PROBLEM, optax.sgd(0.1), **kwargs)


def test_train_rejects_a_non_optax_optimizer():
    with pytest.raises(TypeError, match="`optimizer`"):
        gf.train(PROBLEM, "sgd", steps=10, dt=0.1)
