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
