"""Li et al. (2025): the signal + noise problem, SignGD/Adam through optax, their
flows (SignFlow, AdamFlow), and the stage detector."""

import dataclasses

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import SignalNoise, detect_stages
from gradflow.problems.signal_noise.experiments import param_distance, sign_limit

# Small enough to compile in seconds; n·s = 60 ≪ d keeps noise supports nearly disjoint.
TINY = SignalNoise(n=6, d=300, s=10, mu_norm=np.sqrt(10), m_k=4, m_v=4, n_test=64)
INIT = jax.jit(TINY.init)


# The stage instance: the default's SNR 1 and s = 40 with fewer samples, dimensions and
# neurons (n 12, d 1000, m_k = m_v = 8; n·s = 480 < d), so 8 seeds cost ~10 s with
# their compile. TINY (4 neurons, 6 samples) is too coarse for the stages: sign
# agreement moves in steps of 1/24 and 1 seed in 8 had all four in order.
STAGE = SignalNoise(n=12, d=1000, s=40, mu_norm=np.sqrt(40), m_k=8, m_v=8, n_test=32)


def stage_run_of(problem):
    # SignGD at η = 1e-4 to t = 0.04 (stage IV ends near 0.022), 300 log-spaced saves
    # from one step: consecutive saves 2% apart, finer than the gaps between stage ends.
    return gf.train(problem, gf.sign_gd(1e-4), steps=400, dt=1e-4, seeds=8, save=gf.LogGrid(n=300, t_min=1e-4))


@pytest.fixture(scope="module")
def signgd_run():
    return stage_run_of(STAGE)


def test_data_and_model():
    model, data = INIT(jax.random.PRNGKey(0))
    X, xi, y = data["train"]["X"], data["train"]["xi"], data["train"]["y"]
    assert X.shape == (6, 2, 300) and data["test"]["X"].shape == (64, 2, 300)
    assert np.all((np.asarray(xi) != 0).sum(1) == 10) and np.all(np.asarray(xi)[:, 0] == 0)  # s coords, off µ's
    assert np.allclose(X[:, 0], y[:, None] * data["mu"]) and np.allclose(X[:, 1], xi)
    assert TINY.snr == pytest.approx(1.0)
    # f(X) = Σ_l vᵀ X softmax(Xᵀ W_Kᵀ W_Q x_l), written out for one sample.
    x = np.asarray(X[0]).T  # d × 2, columns are patches
    v = np.asarray(model.WV_plus).mean(0) - np.asarray(model.WV_minus).mean(0)
    S = x.T @ np.asarray(model.WK).T @ np.asarray(model.WQ) @ x  # [key l', query l]
    f = sum(v @ x @ (np.exp(S[:, l]) / np.exp(S[:, l]).sum()) for l in range(2))
    assert float(model(X[0])) == pytest.approx(f, rel=1e-12)  # float64 round-off


def test_score_scale_and_single_value_options():
    """The two modelling options tried against the paper's s_11 (issue 17), by formula."""
    from gradflow.problems import SignalNoiseTransformer

    model, data = INIT(jax.random.PRNGKey(0))
    x = np.asarray(data["train"]["X"][0]).T  # d × 2, columns are patches
    opts = dataclasses.replace(TINY, score_scale="inv_sqrt_mk", value_weights="single").model_options()
    assert opts == {"score_scale": 0.5, "single_value": True}  # 1/√m_k with m_k = 4
    scaled = SignalNoiseTransformer(model.WQ, model.WK, model.WV_plus, model.WV_minus, **opts)
    v = np.asarray(model.WV_plus).mean(0)  # W_{V,−1} unused
    S = 0.5 * x.T @ np.asarray(model.WK).T @ np.asarray(model.WQ) @ x  # [key l', query l]
    f = sum(v @ x @ (np.exp(S[:, l]) / np.exp(S[:, l]).sum()) for l in range(2))
    assert float(scaled(data["train"]["X"][0])) == pytest.approx(f, rel=1e-12)  # float64 round-off
    assert SignalNoise().model_options() == {"score_scale": 1.0, "single_value": False}  # the defaults: unchanged


def test_random_patch_order_indexes_roles():
    p = dataclasses.replace(TINY, patch_order="random")
    model, data = jax.jit(p.init)(jax.random.PRNGKey(1))
    pos = np.asarray(data["train"]["signal_pos"])
    assert 0 < pos.sum() < pos.size or p.n < 4
    X = np.asarray(data["train"]["X"])
    signal = X[np.arange(6), pos]
    assert np.allclose(np.abs(signal[:, 0]), p.mu_norm)
    # s_11/s_21 are by role: swapping the patches of every sample leaves them unchanged.
    observe = jax.jit(p.observables)
    obs = observe(model, data)
    swapped = {**data, "train": {**data["train"], "X": data["train"]["X"][:, ::-1], "signal_pos": 1 - data["train"]["signal_pos"]}}
    obs2 = observe(model, swapped)
    assert np.allclose(obs["s21_mean"], obs2["s21_mean"], rtol=1e-12)
    assert np.allclose(obs["loss"], obs2["loss"], rtol=1e-12)  # f is permutation invariant


def test_sign_gd_is_direct_sign_descent():
    lr, steps = 1e-3, 25
    run = gf.train(TINY, gf.sign_gd(lr), steps=steps, dt=lr, seeds=1, save=gf.LinearGrid(n=2))
    model, data = INIT(jax.random.PRNGKey(0))  # jitted, as train's init is: the same bits
    grad = jax.jit(jax.grad(TINY.loss))
    for _ in range(steps):
        g = grad(model, data)
        model = jax.tree.map(lambda p, gi: p - lr * jnp.sign(gi), model, g)
    for a, b in zip(jax.tree.leaves(run.final), jax.tree.leaves(model)):
        assert np.array_equal(np.asarray(a)[0], np.asarray(b))  # bit for bit


def test_stages_in_order_on_most_seeds(signgd_run):
    """The paper's four stages, in order, seed by seed (criteria and thresholds in
    `detect_stages`' docstring); the reasons for the other seeds are printed."""
    stages = detect_stages(signgd_run)
    print(stages.table())
    in_order = int(stages.in_order.sum())
    assert in_order >= 6, stages.table()  # measured 6 of 8 (seed 4: II before I; seed 6: III before II)
    reasons = stages.reasons()
    assert all(bool(r) != bool(ok) for r, ok in zip(reasons, stages.in_order))  # a reason exactly where not in order
    # Stage III's majority vote: sign⟨w_Q,s, µ⟩ = sign Σ_i⟨w_K,s, y_iξ_i⟩ and
    # sign⟨w_K,s, µ⟩ = −sign Σ_i⟨w_Q,s, y_iξ_i⟩ for ≥ 90% of the signal signs.
    assert stages.vote_holds[stages.in_order].all(), stages.table()  # measured: all 6 in-order seeds, vote 1.0
    # Stage IV: s_21 ≤ 0.05 comes last and s_11 is then far from 0 but not "close to 1/2"
    # at SNR 1: measured 0.28–0.33 on all 8 seeds (the caption's ½ holds at SNR 0.25,
    # test_s11_near_half_only_at_low_snr). s_11 keeps decaying after stage IV.
    assert np.all(stages.times[stages.in_order, 3] > stages.times[stages.in_order, :3].max(axis=1))
    assert int(stages.s11_near_half.sum()) == 0, stages.s11_at_IV  # measured 0 of 8
    assert np.all((stages.s11_at_IV > 0.2) & (stages.s11_at_IV < 0.4)), stages.s11_at_IV  # measured 0.280–0.334
    assert np.all(stages.s11_final < 0.5 * stages.s11_at_IV), (stages.s11_final, stages.s11_at_IV)  # measured ratio ≤ 0.31


@pytest.mark.slow
def test_s11_near_half_only_at_low_snr():
    """At SNR 0.25 (‖µ‖ a quarter of σ_p√s) s_11 is still within 0.1 of ½ when s_21
    reaches 0.05, on every seed; the noise signs then agree before the noise leaves
    its initial size, so stages I and II swap."""
    stages = detect_stages(stage_run_of(dataclasses.replace(STAGE, mu_norm=0.25 * np.sqrt(40))))
    print(stages.table())
    assert int(stages.s11_near_half.sum()) == 8, stages.s11_at_IV  # measured 8 of 8 (0.468–0.483)
    assert int(stages.vote_holds.sum()) >= 7, stages.table()  # measured 7 (seed 4: III not reached by t = 0.04)
    swapped = sum(r.startswith("II ends") for r in stages.reasons())
    assert swapped >= 7, stages.table()  # measured 7 of 8


def test_stage_figure(signgd_run, tmp_path):
    """Fig. 1 with the four stages: its title is the one given (a panel's title once
    replaced it), t = 0 is on the axis (symlog) and each legend sits below its panel."""
    import matplotlib

    matplotlib.use("Agg")
    from gradflow.problems import draw_stages

    fig = draw_stages(signgd_run, title="four stages (seed 0)")
    assert fig._suptitle.get_text() == "four stages (seed 0)"
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xscale() == "symlog" and ax.get_lines()[0].get_xdata()[0] == 0
        assert ax.get_legend().get_window_extent().y1 < ax.get_window_extent().y0  # below, not over the data
    assert [t.get_text() for t in fig.axes[0].texts] == ["I", "II", "III", "IV"]  # each stage's end, labelled


def test_stages_not_reached_are_reported(signgd_run):
    # The first 1% of the same run (4 steps): nothing but stage I has happened.
    early = signgd_run.select(np.arange(3))
    keep = early.ts <= 4e-4
    early.ts = early.ts[keep]
    early.obs = {k: v[:, keep] for k, v in early.obs.items()}
    stages = detect_stages(early)
    assert np.isnan(stages.times[:, 1:]).all()
    assert not stages.in_order.any()
    assert all(note for seed in stages.notes for note in seed[1:])
    assert "not reached" in stages.table()


def test_stage_detector_on_constructed_observables():
    ts = np.linspace(0.0, 10.0, 101)
    step = lambda t0: (ts >= t0).astype(float)  # noqa: E731
    signal = np.where(ts[:, None] < 6.0, -1.0, 1.0) * np.ones((1, 3))
    obs = {
        "loss": np.ones((1, 101)),
        "value_noise": (ts)[None],
        "query_noise_abs": (1.0 + 2.0 * step(2.0))[None],
        "key_noise_abs": np.ones((1, 101)),
        "noise_sign_agreement": (0.5 + 0.45 * step(4.0))[None],
        "query_signal": signal[None],
        "key_signal": signal[None],
        "s21_mean": (0.5 - 0.48 * step(8.0))[None],
    }
    one = np.zeros(1)
    stats = gf.Stats(steps=one, accepted=one, rejected=one, gradient_evaluations=one, status=one.astype(np.int32),
                     result=one, t_final=one, wall_time=0.0, compile_time=0.0)
    run = gf.Run(ts, obs, None, None, stats, {})
    stages = detect_stages(run)
    assert np.allclose(stages.times[0], [2.0, 4.0, 6.0, 8.0])
    # Value noise that does not grow linearly: stage I is not invented.
    run.obs["value_noise"] = (ts**3)[None]
    assert np.isnan(detect_stages(run).times[0, 0])
    # Signals that flip at the very end have not settled.
    run.obs["query_signal"] = np.where(ts[:, None] < 9.95, -1.0, 1.0)[None] * np.ones((1, 1, 3))
    assert np.isnan(detect_stages(run).times[0, 2])


def test_sign_flow_approaches_small_step_signgd():
    # A smaller instance than TINY: two neurons each, d = 100 (SignGD at 3e-4 is the reference).
    small = SignalNoise(n=6, d=100, s=5, mu_norm=np.sqrt(5), m_k=2, m_v=2, n_test=32)
    rows, runs, _ = sign_limit(small, t1=0.05, lrs=(3e-4,), eps=(1e-3, 1e-4, 1e-6), solvers=(dfx.Tsit5(),),
                               seeds=2, save_n=10, verbose=False)
    flows = [r for r in rows if r["method"] == "sign flow"]
    dist = [r["param dist"] for r in flows]
    assert dist[0] > dist[1] > dist[2], dist
    assert dist[2] < 0.25 * dist[0], dist  # measured 0.55 → 0.06 over ε = 1e-3 → 1e-6
    assert all(r["failed"] == 0 for r in flows)
    # A smaller ε costs more steps (a stiffer boundary layer around g = 0).
    assert flows[0]["steps"] < flows[2]["steps"]


def test_adam_converges_to_adam_flow_at_order_one():
    problem = gf.problems.LeastSquares(n=8, p=4, cond=10.0)
    flow = gf.AdamFlow(a=10.0, b=1.0, eps=1e-8)
    t1 = 1.0
    ref = gf.simulate(problem, flow, t1=t1, seeds=2, save=gf.LinearGrid(n=3),
                      stepsize_controller=dfx.PIDController(rtol=1e-11, atol=1e-13), solver=dfx.Dopri8())
    lrs = np.array([4e-3, 2e-3, 1e-3])  # three rates (three compiles) fit the order well enough
    err = []
    for lr in lrs:
        run = gf.train(problem, gf.adam_for_flow(float(lr), a=10.0, b=1.0, eps=1e-8), steps=int(round(t1 / lr)),
                       dt=float(lr), seeds=2, save=gf.LinearGrid(n=3))
        err.append(param_distance(run.final, ref.final).mean())
    order = np.polyfit(np.log(lrs), np.log(err), 1)[0]
    assert 0.85 <= order <= 1.15, (order, err)  # Adam is an explicit one-step scheme for the flow: order 1


def test_adam_flow_state_and_rates():
    flow = gf.AdamFlow(a=5.0, b=2.0, rates={"w": 2.0})
    state = flow.init({"w": jnp.ones(3)})
    assert set(state) == {"params", "m", "v"} and np.all(np.asarray(state["m"]["w"]) == 0)
    d = flow.vector_field(0.0, state, lambda p: {"w": jnp.array([1.0, -2.0, 0.5])})
    # At t = 0 the bias-corrected moments are g and g²: dθ/dt = −2·g/(|g| + ε).
    assert np.allclose(d["params"]["w"], -2.0 * np.sign([1.0, -2.0, 0.5]), rtol=1e-6)
    assert np.allclose(d["m"]["w"], 5.0 * np.array([1.0, -2.0, 0.5]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SignalNoise(d=20, s=20), "`s`"),
        (lambda: SignalNoise(sigma_p=-1.0), "`sigma_p`"),
        (lambda: SignalNoise(n=1), "`n`"),
        (lambda: SignalNoise(n_test=0), "`n_test`"),
        (lambda: SignalNoise(patch_order="middle"), "`patch_order`"),
        (lambda: SignalNoise(score_scale="sqrt"), "`score_scale`"),
        (lambda: SignalNoise(value_weights="double"), "`value_weights`"),
        (lambda: gf.AdamFlow(a=0.0), "`a`"),
        (lambda: gf.adam_for_flow(0.1, a=10.0), "lower the learning rate"),
        (lambda: gf.sign_gd(-1.0), "`learning_rate`"),
    ],
)
def test_bad_configurations(make, match):
    with pytest.raises(ValueError, match=match):
        make()
