"""Sweeps without recompiling (found: every change of t1 or of a flow's numbers paid a
compile, ~3.5 s on 2 cores; a new number of seeds still does, see issue 15). Counted by the run's own
`compile_time`, which is 0.0 exactly when both of its programs (the draw of the seeds
and the solve) came from the in-process memo."""


import numpy as np
import optax
import pytest

import gradflow as gf
from gradflow.problems import LeastSquares

PROBLEM = LeastSquares(n=7, p=3)  # a size no other test compiles
SAVE = gf.LogGrid(n=5, t_min=1e-2)


def _compiles(runs) -> list[bool]:
    return [float(run.stats.compile_time) > 0 for run in runs]


def test_a_t1_ladder_shares_one_compile():
    runs = [gf.simulate(PROBLEM, t1=t1, seeds=2, save=SAVE) for t1 in (1.0, 2.0, 4.0, 8.0, 16.0)]
    assert _compiles(runs)[1:] == [False] * 4
    assert [run.ts[-1] for run in runs] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_a_ladder_of_flow_numbers_shares_one_compile():
    runs = [gf.simulate(PROBLEM, gf.SignFlow(eps=eps), t1=1.0, seeds=2, save=SAVE) for eps in (1e-1, 1e-2, 1e-3)]
    assert _compiles(runs)[1:] == [False, False]
    assert runs[0].config["flow"]["eps"] == 0.1 and runs[2].config["flow"]["eps"] == 0.001


LRS = (0.01, 0.02, 0.04, 0.08, 0.16)


def test_a_learning_rate_ladder_in_train_shares_one_compile():
    """Found: each `optax.sgd(lr)` object recompiled train's steps. A `gf.Optimizer`
    passes its float hyperparameters as arguments."""
    runs = [gf.train(PROBLEM, gf.Optimizer(optax.sgd, learning_rate=lr), steps=40, dt=lr, seeds=2, save=SAVE)
            for lr in LRS]
    assert _compiles(runs)[1:] == [False] * 4
    assert [run.config["optimizer"]["hyperparameters"]["learning_rate"] for run in runs] == list(LRS)
    # The runtime learning rate gives the same numbers as optax's compiled-in one, bit for bit.
    plain = gf.train(PROBLEM, optax.sgd(LRS[2]), steps=40, dt=LRS[2], seeds=2, save=SAVE)
    for name in plain.obs:
        np.testing.assert_array_equal(plain.obs[name], runs[2].obs[name])


def test_gradflow_optimisers_and_flow_gap_share_one_compile_per_ladder():
    signs = [gf.train(PROBLEM, gf.sign_gd(lr), steps=20, dt=lr, seeds=2, save=SAVE) for lr in (1e-3, 2e-3, 4e-3)]
    adams = [gf.train(PROBLEM, gf.adam_for_flow(lr, a=10.0), steps=20, dt=lr, seeds=2, save=SAVE)
             for lr in (1e-3, 2e-3)]
    assert _compiles(signs)[1:] == [False, False] and _compiles(adams)[1:] == [False]
    # adam_for_flow is optax.adam with β = 1 − aη, β2 = 1 − bη, computed at run time: same bits.
    lr = 2e-3
    plain = gf.train(PROBLEM, optax.adam(lr, b1=1 - 10.0 * lr, b2=1 - lr, eps=1e-8), steps=20, dt=lr, seeds=2,
                     save=SAVE)
    np.testing.assert_array_equal(plain.obs["loss"], adams[1].obs["loss"])


def test_optimizer_binds_names_and_refuses_bad_input():
    opt = gf.Optimizer(optax.sgd, 0.1, momentum=0.9)
    assert opt.hyperparameters == {"learning_rate": 0.1, "momentum": 0.9}
    assert isinstance(opt.transformation(), optax.GradientTransformation)
    with pytest.raises(TypeError, match="factory"):
        gf.Optimizer(0.1)
    with pytest.raises(TypeError, match="learning_rat"):
        gf.Optimizer(optax.sgd, learning_rat=0.1)
    with pytest.raises(ValueError, match="compiled_in"):
        gf.Optimizer(optax.sgd, 0.1, compiled_in=("momentum",))
    with pytest.raises(TypeError, match="not an optax.GradientTransformation"):
        gf.Optimizer(lambda learning_rate: learning_rate, 0.1)
    with pytest.raises(TypeError, match="gf.Optimizer"):
        gf.train(PROBLEM, "sgd", steps=2, dt=0.1)


def test_seed_counts_in_one_bucket_share_one_compile():
    """Found: every new number of seeds recompiled. Under "map" (the CPU default) the
    seeds are padded to a power of two ≥ 8 and the padding is skipped."""
    runs = [gf.simulate(PROBLEM, t1=1.0, seeds=n, save=SAVE) for n in (3, 5, 8)]
    assert _compiles(runs)[1:] == [False, False]
    assert [run.n_seeds for run in runs] == [3, 5, 8]
    # A seed's result does not depend on the padding beside it.
    np.testing.assert_array_equal(runs[0].obs["loss"], runs[2].obs["loss"][:3])
    assert (runs[1].stats.steps > 0).all()
    trains = [gf.train(PROBLEM, gf.Optimizer(optax.sgd, learning_rate=0.05), steps=20, dt=0.05, seeds=n, save=SAVE)
              for n in (3, 5)]
    assert _compiles(trains)[1:] == [False]


def test_sweep_over_t1_problem_fields_and_flow_numbers_compiles_once():
    by_t1 = gf.sweep(PROBLEM, over={"t1": [1.0, 2.0, 4.0]}, seeds=3, save=SAVE)
    by_field = gf.sweep(PROBLEM, over={"problem.init_scale": [0.1, 0.5, 1.0], "problem.cond": [2.0, 5.0, 10.0]},
                        t1=2.0, seeds=3, save=SAVE)
    by_eps = gf.sweep(PROBLEM, gf.SignFlow(eps=0.1), over={"flow.eps": [0.1, 0.01]}, t1=1.0, seeds=3, save=SAVE)
    for runs in (by_t1, by_field, by_eps):
        assert _compiles(runs)[1:] == [False] * (len(runs) - 1)
    assert [run.ts[-1] for run in by_t1] == [1.0, 2.0, 4.0]
    assert by_field[1].config["problem"]["fields"]["init_scale"] == 0.5
    assert by_field[1].config["sweep"]["index"] == 1
    # A swept field is an argument, not a constant: the numbers are those of a direct call.
    direct = gf.simulate(LeastSquares(n=7, p=3, init_scale=0.5, cond=5.0), t1=2.0, seeds=3, save=SAVE)
    np.testing.assert_array_equal(direct.obs["loss"], by_field[1].obs["loss"])
    assert by_eps[1].config["flow"]["eps"] == 0.01


def test_sweep_over_a_learning_rate_ladder_trains_and_compiles_once():
    lrs = [0.01, 0.02, 0.04]
    runs = gf.sweep(PROBLEM, gf.Optimizer(optax.sgd, 0.01),
                    over={"optimizer.learning_rate": lrs, "dt": lrs, "steps": [400, 200, 100]}, seeds=3, save=SAVE)
    assert _compiles(runs)[1:] == [False, False]
    assert [run.config["kind"] for run in runs] == ["train"] * 3
    assert [run.ts[-1] for run in runs] == [4.0, 4.0, 4.0]
    direct = gf.train(PROBLEM, optax.sgd(0.02), steps=200, dt=0.02, seeds=3, save=SAVE)
    np.testing.assert_array_equal(direct.obs["loss"], runs[1].obs["loss"])


class Branchy(LeastSquares):
    """Uses a float field in a Python `if`: it cannot be a runtime value."""

    def loss(self, model, data):
        base = super().loss(model, data)
        return base * 2 if self.init_scale > 0.5 else base


@pytest.mark.parametrize("over, match", [
    ({"problem.n": [3, 4]}, "only float fields"),
    ({"problem.width": [1.0]}, "no field 'width'"),
    ({"t1": [1.0, 2.0], "flow.eps": [0.1]}, "all of one length"),
    ({"optimizer.learning_rate": [0.1]}, "needs a gradflow.Optimizer"),
    ({"rtoll": [1e-3]}, "use a keyword of simulate"),
])
def test_sweep_refuses_what_cannot_share_a_compile(over, match):
    with pytest.raises(ValueError, match=match):
        gf.sweep(PROBLEM, over=over, t1=1.0, seeds=1, save=SAVE)


def test_a_field_used_as_a_python_number_is_named():
    with pytest.raises(ValueError, match=r"uses \['problem.init_scale'\] as a Python number"):
        gf.sweep(Branchy(n=7, p=3), over={"problem.init_scale": [0.1, 1.0]}, t1=1.0, seeds=1, save=SAVE)
