"""Yang et al. (2024): the co-occurrence problem, its data, its model against the
paper's formula, and the paper's claims measured on a reduced instance."""

import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import Cooccurrence, cooccurrence_claims, phase1_end

REDUCED = Cooccurrence(m=32, m1=64)


@pytest.fixture(scope="module")
def reduced_run():
    return gf.simulate(
        REDUCED, t1=300.0, seeds=4, save=gf.LogGrid(n=80, t_min=1e-3),
        stepsize_controller=dfx.PIDController(rtol=1e-9, atol=1e-12),
    )


@pytest.fixture(scope="module")
def reduced_claims(reduced_run):
    return {c.name: c for c in cooccurrence_claims(reduced_run)}


def test_data_follows_the_paper():
    _, data = Cooccurrence().init(jax.random.PRNGKey(3))
    tokens, y, group = (np.asarray(data[k]) for k in ("tokens", "y", "group"))
    assert np.bincount(group).tolist() == [30, 10, 10, 10]
    count = lambda tok: (tokens == tok).sum(axis=1)  # noqa: E731
    assert (count(2) == 1).all()  # µ3 once in every sample
    assert ((count(0) == 1) == np.isin(group, [0, 1])).all()  # µ1 in I1 and I2 only, at most once
    assert ((count(1) == 1) == np.isin(group, [0, 2])).all()  # µ2 in I1 and I3 only
    assert (count(0) <= 1).all() and (count(1) <= 1).all()
    assert ((y == 1) == (group == 0)).all()
    assert tokens.min() >= 0 and tokens.max() < 64
    _, data = Cooccurrence(n=12, L=4, d=64, distinct_words=True).init(jax.random.PRNGKey(0))
    words = np.asarray(data["tokens"])[np.asarray(data["tokens"]) >= 3]
    assert len(set(words.tolist())) == words.size  # every random word used once


def test_model_equals_the_papers_formula():
    # F(X) = Σ_l Σ_j a_j w_jᵀ W_V X softmax(Xᵀ W_Kᵀ W_Q x_l / √m), one-hot X, no shortcuts.
    problem = Cooccurrence(n=12, L=4, d=10, m=6, m1=5)
    model, data = problem.init(jax.random.PRNGKey(1))
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    model = type(model)(
        WQ=jax.random.normal(keys[0], (6, 10)), WK=jax.random.normal(keys[1], (6, 10)),
        WV=jax.random.normal(keys[2], (6, 10)), W=jax.random.normal(keys[3], (5, 6)), a=model.a,
    )
    WQ, WK, WV, W, a = (np.asarray(x) for x in (model.WQ, model.WK, model.WV, model.W, model.a))
    for tokens in np.asarray(data["tokens"]):
        X = np.eye(10)[:, tokens]  # d × L
        F = 0.0
        for l in range(4):
            s = X.T @ WK.T @ WQ @ X[:, l] / math.sqrt(6)
            soft = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            for j in range(5):
                F += a[j] * W[j] @ WV @ X @ soft
        assert abs(float(model(jnp.asarray(tokens))) - F) <= 1e-12 * max(1.0, abs(F))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(distinct_words=True), "n·L"),
        (dict(m=0), "`m`"),
        (dict(m1=-1), "`m1`"),
        (dict(n=62), "divisible by 6"),
        (dict(L=2), "`L`"),
        (dict(init_kind="xavier"), "`init_kind`"),
        (dict(exact_fractions=1), "exact_fractions"),
        (dict(sigma0=-0.1), "`sigma0`"),
    ],
)
def test_bad_configurations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Cooccurrence(**kwargs)


def test_initialisation_scales():
    for problem, (s0, s1) in [
        (Cooccurrence(), (1 / math.sqrt(5 * 128), 1 / math.sqrt(256))),
        (Cooccurrence(init_kind="kaiming"), (1 / 8, 1 / math.sqrt(128))),
        (Cooccurrence(sigma0=0.2, sigma1=0.01), (0.2, 0.01)),
    ]:
        model, _ = problem.init(jax.random.PRNGKey(0))
        # 128×64 and 256×128 Gaussian entries: sample std within 3% of the target.
        assert abs(float(jnp.std(model.WQ)) / s0 - 1) < 0.03
        assert abs(float(jnp.std(model.W)) / s1 - 1) < 0.03
        assert set(np.unique(np.asarray(model.a)).tolist()) == {-1.0, 1.0}


def test_inexact_fractions_allow_any_n():
    _, data = Cooccurrence(n=61, exact_fractions=False).init(jax.random.PRNGKey(0))
    assert data["tokens"].shape == (61, 5)


def test_conserved_quantities_at_tight_tolerance(reduced_run):
    # Exact invariants of the flow; at rtol 1e-9 the solver keeps them to 1e-6.
    assert reduced_run.ok.all()
    assert np.nanmax(reduced_run.obs["drift_QK"]) <= 1e-6
    assert np.nanmax(reduced_run.obs["drift_WV"]) <= 1e-6


def test_phase_one(reduced_run, reduced_claims):
    t1 = phase1_end(reduced_run)
    assert np.isfinite(t1).all()
    # T1 = Õ(1/m): measured T1·m ≈ 28–46 at m = 32 (and ≈ 23–33 at m = 128).
    assert (10 <= t1 * 32).all() and (t1 * 32 <= 100).all()
    state = reduced_claims["phase 1: attention still at init, loss Θ(1)"]
    # Attention has made < 25% of its eventual move by T1; loss is still ≥ 1/8 of its start.
    assert (state.values["score change by T1 / total"] < 0.25).all()
    assert (state.values["loss(T1)"] >= state.values["loss(0)"] / 8).all()


def test_i2_i3_loss_rise_depends_on_initial_g3(reduced_claims):
    # Measured: the I2/I3 losses rise (G(µ1), G(µ2) grow first) and then fall in
    # seeds whose random G(µ3) starts below ~0.1; a seed whose G(µ3) starts large
    # and positive has high I2/I3 losses from the start, and they only fall.
    claim = reduced_claims["I2/I3 loss rises, then falls"]
    g3 = claim.values["G(µ3) at t=0"]
    low, high = g3 < 0.1, g3 > 0.3
    assert low.any() and high.any()
    assert claim.passed[low].all()
    assert (claim.values["rise I2"][high] < 0.05).all() and (claim.values["rise I3"][high] < 0.05).all()


@pytest.mark.parametrize(
    "name",
    ["phase 2: attention scores", "phase 2: value Gram", "automatic balancing", "final loss",
     "structure of W_KᵀW_Q − init"],
)
def test_phase_two_claims_hold(reduced_claims, name):
    claim = reduced_claims[name]
    assert claim.passed.all(), (name, claim.values)


def test_g_sign_conditions_measured(reduced_claims):
    # The simulation disagrees with the paper here in some seeds: G(µ1)+G(µ3) ends
    # positive (I2 samples are then classified through the random words' G).
    # Pinned: the total is always positive and at least one seed meets all three.
    claim = reduced_claims["phase 2: sign conditions on G"]
    assert (claim.values["G1+G2+G3 at end"] > 0).all()
    assert claim.passed.any()


def test_claims_table_and_figures(reduced_run, tmp_path):
    # Found through the registry, as `gradflow run` and `gradflow plot` find them.
    text = gf.problems.report(reduced_run)
    assert "phase 1 ends" in text and "4/4" in text
    paths = gf.problems.figures(reduced_run, tmp_path)
    assert {p.name for p in paths} == {"fig1a_scores.png", "fig1b_losses.png", "G.png"}
