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
from gradflow.problems.cooccurrence import (
    distinct_word_tokens,
    max_margin_G,
    memorisation_threshold,
    phase1_rate,
    rise_threshold,
)

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


@pytest.fixture(scope="module")
def rise_claim(reduced_run):
    # 16 seeds of the reduced instance up to t = 3 (the I2/I3 peaks come at t ≈ 0.01–0.2 and
    # the fall after them is under way by t = 1; measured median peak time 0.06), run as four
    # batches of 4 seeds with reduced_run's save count, so all reuse its compiled solve
    # (t1, tolerances and save times are arguments): ~2 s instead of ~10 s for a 16-seed compile.
    parts = []
    for k in range(4):
        run = gf.simulate(REDUCED, t1=3.0, seeds=list(range(4 * k, 4 * k + 4)), save=gf.LogGrid(n=80, t_min=1e-4),
                          stepsize_controller=dfx.PIDController(rtol=1e-6, atol=1e-8))
        parts.append({c.name: c for c in cooccurrence_claims(run)}["I2/I3 loss rises, then falls"])
    passed = np.concatenate([c.passed for c in parts])
    values = {k: np.concatenate([c.values[k] for c in parts]) for k in parts[0].values}
    return passed, values


def test_i2_i3_rise_then_fall_with_its_derived_condition(rise_claim):
    # The claim carries its condition: the I_k loss rises then falls iff G(µ3)(0) < γ*_k, derived
    # from the phase-1 reduction (see _theory.rise_threshold); a seed passes when the condition
    # predicts what happens in both groups. Measured: 13 of 16 seeds (the same 13 at t1 = 30 and
    # rtol 1e-8). In the three misses the reduction's rate is within 0.05 of zero (boundary
    # seeds, where the random words' G(0), left out of the reduction, decide). Pinned with a
    # margin of one seed.
    passed, values = rise_claim
    assert passed.size == 16
    assert passed.sum() >= 12, values
    # Both outcomes occur, so the condition is tested on both sides.
    predicted = values["predicted rise I2"].astype(bool)
    assert 0 < predicted.sum() < 16


def test_rise_threshold_closed_form():
    # With G(µ1)(0) = G(µ2)(0) = 0 the I2 rate is σ(−γ) − (2/3)σ(γ): zero at γ = ln(3/2).
    for group in (2, 3):
        assert abs(float(rise_threshold(0.0, 0.0, group)) - math.log(1.5)) < 1e-12  # bisection to 1e-16
    g1, g2 = np.array([-1.0, 0.3, 0.7]), np.array([0.2, -0.5, 0.4])
    for group in (2, 3):
        gamma = rise_threshold(g1, g2, group)
        # The rate changes sign at γ* (strictly decreasing in G(µ3)).
        assert (phase1_rate(g1, g2, gamma - 1e-6, group) > 0).all()
        assert (phase1_rate(g1, g2, gamma + 1e-6, group) < 0).all()
    # A larger G(µ1)(0) makes I2 samples' F larger, so I2 needs a smaller G(µ3)(0) to rise.
    assert rise_threshold(0.5, 0.0, 2) < rise_threshold(0.0, 0.0, 2) < rise_threshold(-0.5, 0.0, 2)


@pytest.mark.parametrize("L, n, sign", [(4, 12, 1), (4, 18, -1), (4, 60, -1), (5, 12, 1), (5, 18, 0), (5, 24, -1)])
def test_memorisation_threshold_is_the_max_margin_sign_change(L, n, sign):
    # n* = 3(L+1) (15 at L = 4, 18 at L = 5) is derived in closed form; the max-margin classifier
    # solved numerically on distinct-word data must have G(µ1)+G(µ3) > 0 below n*, = 0 at n*,
    # < 0 above (n a multiple of 6 for exact group fractions).
    assert memorisation_threshold(L) == 3 * (L + 1)
    tokens, y, d = distinct_word_tokens(n, L)
    words = tokens[tokens >= 3]
    assert len(set(words.tolist())) == words.size and ((tokens == 2).sum(axis=1) == 1).all()
    assert (np.bincount((tokens == 0).sum(1) + 2 * (tokens == 1).sum(1)) == [n // 6, n // 6, n // 6, n // 2]).all()
    G = max_margin_G(tokens, y, d)
    margins = y * G[tokens].sum(axis=1)
    assert margins.min() > 1 - 1e-8  # feasible: every margin ≥ 1 (KKT residual < 1e-10)
    s13, s23 = (G[0] + G[2]) / np.linalg.norm(G), (G[1] + G[2]) / np.linalg.norm(G)
    # 1e-6: the dual is solved to 1e-10, so a zero sum shows as |s| ≪ 1e-6, while the nonzero
    # ones in this list are ≥ 1e-2 (the closed form's a − b over its norm).
    assert (np.sign(s13) if abs(s13) > 1e-6 else 0) == sign, s13
    assert (np.sign(s23) if abs(s23) > 1e-6 else 0) == sign, s23


@pytest.mark.parametrize(
    "name",
    ["phase 2: attention scores", "phase 2: value Gram", "automatic balancing", "final loss",
     "structure of W_KᵀW_Q − init"],
)
def test_phase_two_claims_hold(reduced_claims, name):
    claim = reduced_claims[name]
    assert claim.passed.all(), (name, claim.values)


def test_g_sign_conditions_measured(reduced_claims):
    # On the paper's data (shared random words, n = 60 = 3.3 n*) the signs hold at the end in
    # 3 of these 4 seeds; the miss ends with G(µ1)+G(µ3) = +0.49 (I2 classified through its
    # random words' G). The total G(µ1)+G(µ2)+G(µ3) is positive in every seed.
    claim = reduced_claims["phase 2: sign conditions on G"]
    assert (claim.values["G1+G2+G3 at end"] > 0).all()
    assert claim.n_passed >= 3  # measured 3 of 4


@pytest.mark.slow
@pytest.mark.parametrize("n, d, at_least, at_most", [(12, 64, 0, 0), (60, 303, 8, 8)])
def test_g_sign_conditions_follow_the_memorisation_threshold(n, d, at_least, at_most):
    # Distinct random words (the theory's data), 8 seeds, T = 300: below n* = 18 (n = 12, the
    # most d = 64 allows) the signs fail in every seed; well above it (n = 60, d = 303) they
    # hold in every seed. Measured 0/8 and 8/8 (benchmarks/cooccurrence_claims.py, also at
    # T = 30 and 3000, σ0 ×0.1 and ×3, m = 128 for n = 12); pinned at the measured counts.
    problem = Cooccurrence(n=n, d=d, m=32, m1=64, distinct_words=True)
    run = gf.simulate(problem, t1=300.0, seeds=8, save=gf.LogGrid(n=40, t_min=1e-3))
    claim = {c.name: c for c in cooccurrence_claims(run)}["phase 2: sign conditions on G"]
    assert at_least <= claim.n_passed <= at_most, claim.values


def test_claims_table_and_figures(reduced_run, tmp_path):
    # Found through the registry, as `gradflow run` and `gradflow plot` find them.
    text = gf.problems.report(reduced_run)
    assert "phase 1 ends" in text and "4/4" in text
    paths = gf.problems.figures(reduced_run, tmp_path)
    assert {p.name for p in paths} == {"fig1a_scores.png", "fig1b_losses.png", "G.png"}
