"""The soft-committee teacher–student problem (Saad & Solla 1995)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import SoftCommittee, TeacherStudent, population_error
from gradflow.problems._teacher_student import activation


def test_closed_form_error_matches_monte_carlo():
    """ε = ½E[(φ − ζ)²] in closed form against the mean over many Gaussian inputs,
    for a non-square K × M pair, a general student (not near the teacher) and
    unequal second-layer weights."""
    K, M, N, P = 3, 2, 10, 400_000
    kw, kb, kx = jax.random.split(jax.random.PRNGKey(0), 3)
    w = 0.8 * jax.random.normal(kw, (K, N)) / jnp.sqrt(N) + 0.3 * jax.random.normal(kb, (K, 1)) / jnp.sqrt(N)
    b = jax.random.normal(kb, (M, N)) / jnp.sqrt(N)  # not orthonormal: T has off-diagonal entries
    v = jnp.array([1.0, -0.5, 2.0])
    closed = population_error(w @ w.T, w @ b.T, b @ b.T, v)
    X = jax.random.normal(kx, (P, N))
    sq = 0.5 * (activation(X @ w.T) @ v - jnp.sum(activation(X @ b.T), axis=1)) ** 2
    se = float(jnp.std(sq) / jnp.sqrt(P))
    # 5 standard errors of the Monte-Carlo mean: a correct formula fails with probability < 1e-6.
    assert abs(float(jnp.mean(sq)) - float(closed)) < 5 * se, (float(jnp.mean(sq)), float(closed), se)
    assert se < 0.01 * float(closed)  # the check is sharp: a wrong constant (×2, /2) is 100 SEs off or more


def test_finite_training_set_is_the_sample_mean_of_the_same_error():
    """With `n_samples=P` the loss is the mean over P teacher-labelled inputs; for
    large P it approaches the population error `eg` (Monte-Carlo tolerance)."""
    problem = TeacherStudent(K=2, M=3, N=8, n_samples=200_000, init_scale=1.0)
    model, data = problem.init(jax.random.PRNGKey(1))
    obs = problem.observables(model, data)
    sq = 0.5 * (model(data["X"]) - data["y"]) ** 2
    assert np.isclose(obs["loss"], jnp.mean(sq), rtol=1e-12)  # the same sum, in another order
    # 5 standard errors: the training set is a Monte-Carlo sample of the population.
    assert abs(float(obs["loss"] - obs["eg"])) < 5 * float(jnp.std(sq) / jnp.sqrt(sq.size))


def test_loss_is_zero_when_the_student_is_the_teacher():
    problem = TeacherStudent(K=3, M=3, N=12)
    model, data = problem.init(jax.random.PRNGKey(2))
    for rows in ([0, 1, 2], [2, 0, 1]):  # the loss does not see the order of the hidden units
        teacher = SoftCommittee(w=data["b"][jnp.array(rows)], v=jnp.ones(3))
        # Round-off of sums of O(1) arcsines, which cancel exactly.
        assert abs(float(problem.loss(teacher, data))) < 1e-14
    assert float(problem.loss(model, data)) > 0.1  # a random student is far from it


def test_observables_shapes_and_overlaps():
    problem = TeacherStudent(K=3, M=2, N=16)
    model, data = problem.init(jax.random.PRNGKey(3))
    obs = problem.observables(model, data)
    assert obs["R"].shape == (3, 2) and obs["Q"].shape == (3, 3) and obs["eg"].shape == obs["loss"].shape == ()
    np.testing.assert_allclose(data["b"] @ data["b"].T, np.eye(2), atol=1e-12)  # orthonormal teacher: T = I
    np.testing.assert_allclose(obs["R"], model.w @ data["b"].T, rtol=1e-12)
    assert float(obs["loss"]) == float(obs["eg"])  # population loss: the same number
    assert set(problem.describe_observables()) == set(obs)
    leaves = jax.tree_util.tree_leaves(problem.trainable(model))
    assert leaves == [True, False]  # w trained, the second layer v fixed


@pytest.mark.parametrize("fields, match", [({"N": 2, "M": 3}, "field `N`"), ({"n_samples": 0}, "field `n_samples`"),
                                           ({"K": 0}, "field `K`"), ({"init_scale": -1.0}, "field `init_scale`")])
def test_bad_fields_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        TeacherStudent(**fields)


@pytest.fixture(scope="module")
def realisable_run():
    """A realisable student (K = M = 2) on the population loss: 4 pinned seeds, t = 200
    (specialisation happens near t ≈ 70–90 at N = 20, initial scale 0.5)."""
    return gf.simulate(TeacherStudent(K=2, M=2, N=20), t1=200.0, seeds=4, save=gf.LogGrid(n=60, t_min=0.1),
                       progress=False)


def test_gradient_flow_decreases_the_loss_and_the_student_specialises(realisable_run):
    run = realisable_run
    assert run.ok.all()
    loss = run.obs["loss"]
    # A gradient flow never increases the loss; 1e-8 absorbs the solver's error (rtol 1e-6, atol 1e-8).
    assert (np.diff(loss, axis=1) <= 1e-8).all()
    assert (loss[:, -1] < 1e-6 * loss[:, 0]).all(), loss[:, -1]
    R = run.obs["R"][:, -1]  # (seeds, K, M) at t = 200
    # Each student unit aligned with its own teacher unit: |R_in| → T_nn = 1 (0.99: the last
    # stretch of the exponential approach, still ~1e-3 short at t = 200 for the slowest seed).
    assert (np.abs(R).max(axis=2) > 0.99).all(), R
    partners = np.abs(R).argmax(axis=2)
    assert all(sorted(p) == [0, 1] for p in partners), partners  # a permutation, not both on one unit
    # On the symmetric plateau (t = 10) each unit's overlaps with the two teacher units are
    # still alike (their O(1/√N) initial differences grown a little: 0.21 at most here);
    # at the end they differ by about 1.
    assert (np.ptp(run.obs["R"][:, np.searchsorted(run.ts, 10.0)], axis=2) < 0.35).all()
    assert (np.ptp(R, axis=2) > 0.99).all()
    np.testing.assert_array_equal(np.asarray(run.final.v), 1.0)  # the second layer is not trained


def test_report_and_figures(realisable_run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    text = gf.problems.report(realisable_run)
    assert "4 of 4 seeds at the end" in text and "final generalisation error" in text
    s = gf.problems.specialisation(realisable_run)
    assert s["specialised"].all() and (10.0 < s["time"]).all() and (s["time"] < 200.0).all()  # after the plateau
    (path,) = gf.problems.figures(realisable_run, tmp_path)
    assert path.name == "overlaps.png" and path.stat().st_size > 20_000
    with pytest.raises(ValueError, match="K <= M"):
        gf.problems.specialisation(type("FakeRun", (), {"obs": {"R": np.zeros((1, 2, 3, 2))}, "ts": np.zeros(2)}))
