"""Tian et al. (2023): sequence classes, the population and finite-T models, and
the theorems measured on exact flows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import (
    ScanSnap,
    ScanSnapPopulation,
    SequenceClasses,
    fig3_classes,
    gamma,
    scan_snap_claims,
    solve_h,
    syn_medium,
    syn_small,
    transition_time,
)


@pytest.fixture(scope="module")
def syn_small_runs():
    # η_Y ≫ η_Z and η_Y = η_Z, on the population model, one compile for both.
    return gf.sweep(
        ScanSnapPopulation(classes=syn_small()), rates=[{"Y": 10.0, "Z": 1.0}, {"Y": 1.0, "Z": 1.0}],
        t1=1e4, seeds=1, save=gf.LogGrid(n=80, t_min=1e-3),
    )


def test_presets():
    small = syn_small()
    assert (small.M, small.K) == (30, 2)
    assert small.distinct.sum(1).tolist() == [10, 10] and small.common.sum(1).tolist() == [10, 10]
    # P increasing within each distinct block
    assert np.all(np.diff(small.probs[0, 10:20]) > 0)
    for q in (1, 3, 5, 10):
        medium = syn_medium(q)
        assert (medium.K, medium.M) == (2 * q, 30 * q)
        assert np.allclose(medium.probs.sum(1), 1.0)
    fig3 = fig3_classes()
    assert (fig3.K, fig3.M) == (10, 1000) and fig3.common.any(axis=0).sum() == 1


def test_theorem_2_signs_and_identity(syn_small_runs):
    for run in syn_small_runs:
        claims = {c.name: c for c in scan_snap_claims(run)}
        assert claims["Thm 2: signs of ż"].passed.all(), claims["Thm 2: signs of ż"].values
        # 1 + r = (1 + r(0)) e^{2(Δz_l − Δz_l*)} holds on the saved observables to 1e-6 (float64).
        assert claims["r–Δz identity"].values["max relative deviation"].max() <= 1e-6


def test_scanning_order_matches_p(syn_small_runs):
    for run in syn_small_runs:
        claim = {c.name: c for c in scan_snap_claims(run)}["Thm 3: scanning order"]
        assert claim.values["ordered fraction"].min() == 1.0
        # At the end, attention over class 0's distinct tokens increases with P(l|0).
        final = run.obs["attention"][0, -1, 0, 10:20]
        assert np.all(np.diff(final) > 0)


def test_faster_decoder_lowers_loss(syn_small_runs):
    fast, slow = syn_small_runs
    assert fast.obs["loss"][0, -1] < slow.obs["loss"][0, -1]


def test_report_and_figures_through_the_registry(syn_small_runs, tmp_path):
    fast = syn_small_runs[0]
    assert "transition time" in gf.problems.report(fast)
    paths = gf.problems.figures(fast, tmp_path)
    assert [p.name for p in paths] == ["transition.png"] and paths[0].stat().st_size > 0


def test_finite_t_gradient_converges_to_population_gradient():
    cls = syn_small()
    pop = ScanSnapPopulation(classes=cls, init_scale=0.5)
    model, _ = pop.init(jax.random.PRNGKey(0))
    g_pop = jax.grad(lambda m: pop.loss(m, None))(model)
    Ts = np.array([16, 64, 256, 1024])
    gaps = []
    for T in Ts:
        finite = ScanSnap(classes=cls, T=int(T), N=64, init_scale=0.5)

        def gap(key, finite=finite):  # one seed's data: ‖∇L_T − ∇L_pop‖ at the same model
            g = jax.grad(finite.loss)(model, finite.init(key)[1])
            return jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_pop))))

        gaps.append(float(jnp.mean(jax.jit(jax.vmap(gap))(jax.random.split(jax.random.PRNGKey(0), 6)))))
    slope = np.polyfit(np.log(Ts), np.log(gaps), 1)[0]
    # Sampling noise of the token counts: the gap shrinks like T^(-1/2).
    assert -0.75 <= slope <= -0.3, (slope, gaps)
    assert gaps[-1] < gaps[0] / 4


def test_theory_functions():
    h = solve_h(np.array([0.0, 1.0, 10.0]), M=30, eta_Y=1.0)
    lhs = np.exp(30 * h) + 29 * 30 * h
    assert np.allclose(lhs, 30 * np.array([0.0, 1.0, 10.0]) + 1, rtol=1e-12)
    assert transition_time(M=30, K=2, eta_Y=1.0) == pytest.approx(4 * np.log(30))
    g = gamma(np.geomspace(1e-3, 1e4, 50), M=30, K=2, eta_Y=1.0)
    assert np.all(g >= 0) and np.argmax(g) not in (0, 49)  # rises, then decays


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SequenceClasses(M=3, K=1, query=(0,), next_token=(1,), P=((0.5, 0.2, 0.2),)), "sum to 1"),
        (lambda: SequenceClasses(M=3, K=1, query=(0,), next_token=(1,), P=((1.2, -0.2, 0.0),)), "non-negative"),
        (lambda: SequenceClasses(M=3, K=1, query=(5,), next_token=(1,), P=((0.5, 0.5, 0.0),)), "ψ"),
        (lambda: SequenceClasses(M=1, K=1, query=(0,), next_token=(0,), P=((1.0,),)), "`M`"),
        (lambda: SequenceClasses(M=3, K=2, query=(0,), next_token=(1, 2), P=((1, 0, 0), (0, 1, 0))), "`query`"),
        (lambda: SequenceClasses(M=3, K=1, query=(0,), next_token=(1,), P=((0.5, 0.5),)), "K × M"),
        (lambda: ScanSnap(N=5), "multiple of K"),
        (lambda: ScanSnap(T=1), "`T`"),
        (lambda: ScanSnapPopulation(init_scale=-1.0), "init_scale"),
    ],
)
def test_bad_inputs(make, match):
    with pytest.raises(ValueError, match=match):
        make()
