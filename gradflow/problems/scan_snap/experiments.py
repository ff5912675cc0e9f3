"""The experiments of Tian, Wang, Chen & Du (2023, arXiv:2305.16380), each one
function call returning its numbers and a matplotlib figure."""

import numpy as np

from ..._flows import GradientFlow
from ..._grids import LogGrid
from ..._simulate import simulate
from ..._sweep import sweep
from ._claims import measured_transition
from ._model import (ScanSnap, ScanSnapPopulation, SequenceClasses, fig3_classes, syn_medium, syn_small,
                     transition_time)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def fig4(*, rates=((1.0, 1.0), (10.0, 1.0)), t1=1e4, finite=False, seeds=1, save_n=100):
    """Syn-Small: final attention over tokens for each (η_Y, η_Z) (the paper's Fig. 4).

    Returns (runs, figure). `finite=True` uses sampled sequences (T = 128,
    N = 128) instead of the population model."""
    problem = ScanSnap(classes=syn_small()) if finite else ScanSnapPopulation(classes=syn_small())
    runs = sweep(problem, rates=[{"Y": y, "Z": z} for y, z in rates], t1=t1, seeds=seeds,
                 save=LogGrid(n=save_n, t_min=1e-3))
    plt = _plt()
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 2.6 * len(runs)), constrained_layout=True, squeeze=False)
    for row, (run, (y, z)) in enumerate(zip(runs, rates)):
        for n in range(2):
            ax = axes[row, n]
            att = np.nanmean(run.obs["attention"][:, -1, n], axis=0)
            colors = np.where(problem.classes.distinct[n], "C1", np.where(problem.classes.common[n], "C0", "0.8"))
            ax.bar(np.arange(att.size), att, color=colors)
            ent = np.nanmean(run.obs["entropy_distinct"][:, -1, n])
            ax.set_title(f"η_Y = {y:g}, η_Z = {z:g}, class {n}: distinct entropy {ent:.3f}", fontsize="small")
            ax.set_xlabel("token (blue: common, orange: distinct)")
            ax.set_ylabel(f"c_l|n at t = {t1:g}")
    return runs, fig


def fig6(*, queries=5, eta_Z=(0.5, 1.0, 2.0, 3.0), ratios=(1.0, 2.0, 5.0, 10.0), seeds=10, t1=1e3, T=128, N=None,
         save_n=40):
    """The Fig. 6 sweep on Syn-Medium with sampled sequences: average entropy of
    the attention over distinct tokens at t1, for every (η_Z, η_Y/η_Z), `seeds`
    data draws each — one batched `sweep` (one compile).

    Returns (table, runs, figure); table[i, j] = (mean, standard error) over
    seeds for eta_Z[i], ratios[j]."""
    classes = syn_medium(queries)
    problem = ScanSnap(classes=classes, T=T, N=N or 16 * classes.K)
    settings = [{"Y": z * r, "Z": z} for z in eta_Z for r in ratios]
    runs = sweep(problem, rates=settings, t1=t1, seeds=seeds, save=LogGrid(n=save_n, t_min=1e-2))
    table = np.zeros((len(eta_Z), len(ratios), 2))
    for k, run in enumerate(runs):
        ent = np.nanmean(run.obs["entropy_distinct"][:, -1], axis=1)  # mean over classes, per seed
        table[k // len(ratios), k % len(ratios)] = ent.mean(), ent.std(ddof=1) / np.sqrt(ent.size) if ent.size > 1 else 0
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    for i, z in enumerate(eta_Z):
        ax.errorbar(ratios, table[i, :, 0], yerr=table[i, :, 1], marker="o", capsize=3, label=f"η_Z = {z:g}")
    ax.set_xscale("log")
    ax.set_xlabel("η_Y / η_Z")
    ax.set_ylabel(f"distinct-token attention entropy at t = {t1:g}")
    ax.set_title(f"Fig. 6: Syn-Medium {queries}/{2 * queries}, {seeds} seeds (mean ± s.e.)")
    ax.legend(fontsize="small")
    return table, runs, fig


def fig3(*, eta_Y=(0.5, 1.0, 2.0, 5.0), eta_Z=0.5, K=10, M=1000, t1=1e5, save_n=120, quantiles=(0.0, 0.5, 1.0)):
    """χ_l(t) on the population model (the paper's Fig. 3 setting: K = 10,
    M = 1000, one common token). Our definition, since the text we have does
    not give one: χ_l(t) = c_{l|0}(t) / c_{l|0}(0), the attention gain of token
    l in class 0, for distinct tokens at the given quantiles of P(l|0) and for
    the common token. Returns (runs, measured transitions t*, t0 per η_Y, figure)."""
    classes = fig3_classes(K=K, M=M)
    runs = sweep(ScanSnapPopulation(classes=classes), rates=[{"Y": y, "Z": eta_Z} for y in eta_Y], t1=t1, seeds=1,
                 save=LogGrid(n=save_n, t_min=1e-3))
    distinct = np.where(classes.distinct[0])[0]
    order = distinct[np.argsort(classes.probs[0, distinct])]
    tokens = {f"distinct, P rank {q:.0%}": order[int(round(q * (order.size - 1)))] for q in quantiles}
    tokens["common"] = int(np.where(classes.common[0])[0][0])
    t_star = [float(measured_transition(r)[0]) for r in runs]
    t0 = [transition_time(M=M, K=K, eta_Y=y) for y in eta_Y]
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.6), constrained_layout=True, sharey=True)
    for ax, run, y, ts_, t0_ in zip(np.atleast_1d(axes), runs, eta_Y, t_star, t0):
        att = run.obs["attention"][0, :, 0]
        for label, l in tokens.items():
            ax.plot(run.ts[1:], att[1:, l] / att[0, l], label=label)
        ax.axvline(t0_, color="k", linestyle="--", linewidth=1, label="t0 = 2K ln M/η_Y")
        ax.axvline(ts_, color="r", linestyle=":", linewidth=1, label="measured t*")
        ax.set_xscale("log")
        ax.set_title(f"η_Y = {y:g}, η_Z = {eta_Z:g}", fontsize="small")
        ax.set_xlabel("t")
    np.atleast_1d(axes)[0].set_ylabel("χ_l(t) = c_l|0(t) / c_l|0(0)")
    np.atleast_1d(axes)[0].legend(fontsize="x-small")
    return runs, np.array(t_star), np.array(t0), fig


def finite_vs_population(*, Ts=(16, 64, 256), rates=(10.0, 1.0), t1=1e3, seeds=4, N=64, save_n=40):
    """How the finite-T flow approaches the population flow: for each T, the
    max over save times of ‖c(t) − c_pop(t)‖ (attention over classes and tokens,
    mean over seeds) and the relative gap of the final Z. Returns (rows, slope
    of the attention gap against T on log–log axes)."""
    flow = GradientFlow(rates={"Y": rates[0], "Z": rates[1]})
    grid = LogGrid(n=save_n, t_min=1e-2)
    pop = simulate(ScanSnapPopulation(classes=syn_small()), flow, t1=t1, seeds=1, save=grid)
    rows = []
    for T in Ts:
        run = simulate(ScanSnap(classes=syn_small(), T=int(T), N=N), flow, t1=t1, seeds=seeds, save=grid)
        diff = run.obs["attention"] - pop.obs["attention"][:1]
        att_gap = np.nanmax(np.linalg.norm(diff.reshape(seeds, diff.shape[1], -1), axis=2), axis=1).mean()
        z_gap = np.mean(np.linalg.norm((run.final.Z - pop.final.Z[:1]).reshape(seeds, -1), axis=1)
                        / np.linalg.norm(pop.final.Z[0]))
        rows.append({"T": int(T), "attention gap": float(att_gap), "final Z relative gap": float(z_gap)})
    slope = np.polyfit(np.log(Ts), np.log([r["attention gap"] for r in rows]), 1)[0]
    return rows, float(slope)


def text_entropy_vs_lr(problem=None, *, learning_rates=(1.0, 2.0, 5.0), steps=500, seeds=5, save_n=11, flow=False,
                       rtol=1e-4):
    """The WikiText experiment (the paper's Fig. 7): `train` with `optax.sgd(lr)`
    for each learning rate, `seeds` seeds, recording the mean attention entropy
    on held-out windows. Returns (rows, runs, figure); each row has the final
    entropy mean and std over seeds (after `steps` steps, as in the paper).

    SGD with learning rate η for k steps stands for flow time t = kη, so at equal
    steps a larger η has also run for longer. With `flow=True` the gradient flow
    itself (the η → 0 limit, Tsit5 at `rtol`) is integrated to the flow time of
    the smallest learning rate, t_m = steps · min(lr), and every row also gets
    the SGD entropy at that same flow time (interpolated between saves) next to
    the flow's: what remains of the learning-rate effect at equal flow time is
    the discrete step's own doing. `runs` then ends with the flow run."""
    import diffrax as dfx
    import optax

    from ..._grids import LinearGrid
    from ..._train import train
    from ._text import TextNextToken

    problem = problem or TextNextToken()
    runs, rows = [], []
    for lr in learning_rates:
        run = train(problem, optax.sgd(lr), steps=steps, dt=lr, seeds=seeds, save=LinearGrid(n=save_n))
        ent = run.obs["attention_entropy"][:, -1]
        rows.append({"lr": lr, "entropy start": float(np.nanmean(run.obs["attention_entropy"][:, 0])),
                     "entropy end mean": float(np.nanmean(ent)), "entropy end std": float(np.nanstd(ent)),
                     "heldout loss end": float(np.nanmean(run.obs["heldout_loss"][:, -1])),
                     "failed seeds": int((~run.ok).sum())})
        runs.append(run)
    flow_run = None
    if flow:
        t_m = steps * min(learning_rates)
        flow_run = simulate(problem, GradientFlow(), t1=t_m, seeds=seeds, save=LinearGrid(n=save_n),
                            stepsize_controller=dfx.PIDController(rtol=rtol, atol=rtol * 1e-2), max_steps=1_000_000)
        flow_ent = flow_run.obs["attention_entropy"][:, -1]
        for row, run in zip(rows, runs):
            at = np.array([np.interp(t_m, run.ts, e) for e in run.obs["attention_entropy"]])
            row.update({"flow time": t_m, "SGD entropy at flow time mean": float(np.nanmean(at)),
                        "SGD entropy at flow time std": float(np.nanstd(at)),
                        "flow entropy mean": float(np.nanmean(flow_ent)), "flow entropy std": float(np.nanstd(flow_ent)),
                        "flow steps": float(np.mean(flow_run.stats["steps"])),
                        "flow failed seeds": int((~flow_run.ok).sum())})
        runs.append(flow_run)
    plt = _plt()
    fig, axes = plt.subplots(1, 2 if flow else 1, figsize=(13 if flow else 6.5, 4.2), constrained_layout=True,
                             squeeze=False)
    for run, lr in zip(runs, learning_rates):
        e = run.obs["attention_entropy"]
        for ax, x in zip(axes[0], (run.ts / lr, run.ts)):
            ax.plot(x, np.nanmean(e, 0), label=f"SGD lr {lr:g}")
            ax.fill_between(x, np.nanmean(e, 0) - np.nanstd(e, 0), np.nanmean(e, 0) + np.nanstd(e, 0), alpha=0.2)
    axes[0, 0].set_xlabel("SGD step")
    axes[0, 0].set_title(f"attention entropy vs learning rate ({seeds} seeds, mean ± 1 std)")
    if flow:
        e = flow_run.obs["attention_entropy"]
        axes[0, 1].plot(flow_run.ts, np.nanmean(e, 0), "k--", label="gradient flow (η → 0)")
        axes[0, 1].set_xlabel("flow time t = step × lr")
        axes[0, 1].set_title("the same against flow time")
    for ax in axes[0]:
        ax.set_ylabel("held-out attention entropy")
        ax.legend()
    return rows, runs, fig


# ---- Theorems 1 and 4 against the simulated population flow --------------------------
def _tight():
    import diffrax as dfx

    return dfx.PIDController(rtol=1e-10, atol=1e-12)


def theorem1(settings=((2, 30, 1.0), (10, 100, 1.0), (10, 1000, 0.5), (10, 1000, 5.0)), *, t1=1e4, save_n=60,
             common_weight=0.0):
    """Theorem 1 in its own setting: Z held fixed at 0 (`frozen=("Z",)`), Y(0) = 0,
    classes with disjoint (distinct) tokens so the f_n are orthonormal
    (`fig3_classes(K, M, common_weight=0)`), the population flow at rate η_Y, Tsit5
    at rtol 1e-10. For each (K, M, η_Y), over the save times t ∈ (0, t1]:

    - `h error`: max relative error of the simulated h (own logit − mean other
      logit of Yᵀ f_n, ÷ M) against the theorem's h(t/K) (`solve_h`);
    - `gamma error`: max relative error of the simulated back-propagated gradient
      along f_n, f_nᵀ Y (e_n − α_n), against the theorem's γ(t) (`gamma`);
    - `gamma × M/(M−1) error`: the same against γ(t) M/(M−1).

    With orthonormal f_n the flow reduces exactly to one scalar u = M h with
    u̇ = (η_Y/K) M/(e^u + M − 1), i.e. the theorem's h equation, and the gradient
    along f_n is u(M−1)/(e^u + M − 1) = γ(t) M/(M−1): the theorem's γ is the
    M → ∞ form (relative error 1/(M−1)). `common_weight` > 0 adds one common
    token (the f_n then overlap and the reduction is approximate).
    Returns (rows, runs)."""
    from ._model import gamma, solve_h

    rows, runs = [], []
    for K, M, eta_Y in settings:
        problem = ScanSnapPopulation(classes=fig3_classes(K=int(K), M=int(M), common_weight=common_weight),
                                     frozen=("Z",))
        run = simulate(problem, GradientFlow(rates={"Y": float(eta_Y)}), t1=t1, seeds=1,
                       save=LogGrid(n=save_n, t_min=1e-2), stepsize_controller=_tight(), max_steps=100_000)
        ts = run.ts[1:]
        h_th = solve_h(ts / K, M=int(M), eta_Y=float(eta_Y))[:, None]
        g_th = gamma(ts, M=int(M), K=int(K), eta_Y=float(eta_Y))[:, None]
        h, g = run.obs["h"][0, 1:], run.obs["gamma"][0, 1:]
        rows.append({"K": int(K), "M": int(M), "eta_Y": float(eta_Y),
                     "h error": float(np.max(np.abs(h / h_th - 1))),
                     "gamma error": float(np.max(np.abs(g / g_th - 1))),
                     "gamma × M/(M−1) error": float(np.max(np.abs(g / (g_th * M / (M - 1)) - 1))),
                     "1/(M−1)": 1.0 / (M - 1), "steps": int(run.stats["steps"][0])})
        runs.append(run)
    return rows, runs


def b_from_xi(run) -> np.ndarray:
    """B_n(t) = η_Z ∫_0^t ξ_n (Theorem 4) from a run's `xi` observable, by the
    trapezoid rule on its save grid (S, T, K)."""
    _, eta_Z = _rates(run)
    xi = np.nan_to_num(run.obs["xi"])
    dt = np.diff(run.ts)[None, :, None]
    return eta_Z * np.concatenate([np.zeros_like(xi[:, :1]), np.cumsum(0.5 * (xi[:, 1:] + xi[:, :-1]) * dt, axis=1)], 1)


def _rates(run):
    from ._claims import flow_rates

    return flow_rates(run)


def theorem4(rates=((1.0, 0.1), (5.0, 0.1), (1.0, 0.01), (10.0, 0.1)), *, K=10, M=1000, t1=1e7, save_n=300,
             scan_floor=10.0, snap_start=10.0):
    """Theorem 4 (one common token, `fig3_classes(K, M)`, zero init) against the
    simulated population flow, for each (η_Y, η_Z), in one batched `sweep`.

    B_n(t) is measured as η_Z ∫ ξ_n (`b_from_xi`; ξ_n = ż_{ψ(n) l*}/(η_Z f_{nl*}²)
    from the exact gradient at each save, 300 log-spaced saves). The theorem's
    growth laws, from `snap_prediction`: before t0 = 2K ln M/η_Y, B ≈ ½ ln t + c
    once 2(M−1)²η_Yη_Z t²/(KM²) ≫ C0 (we fit from where it is `scan_floor` = 10,
    to t0); after t0, B ≈ ½ ln ln(Mη_Y t/K) + c (we fit from `snap_start` × t0 =
    10 t0 to t1). Each row: the fitted slope of B against ln t before t0 (theory
    ½), against ln ln(Mη_Y t/K) after (theory ½), the same fits of the
    prediction itself (how close ½ is reached on these windows), B(t1) measured
    and predicted, and `xi spread`: at t1, the max relative spread over class 0's
    distinct tokens l of ż_{ml}/f_{0l}², which the theorem takes to be one ξ_0 for
    all l; `xi / closed form`: ξ_n against γ(t) M/(M−1)² S_n/K, its value if
    Y had Theorem 1's form (S_n = Σ_{n'≠n} ⟨f_n, f_{n'}⟩, see the code).
    Returns (rows, runs)."""
    import equinox as eqx
    import jax

    from ._model import gamma, snap_prediction

    classes = fig3_classes(K=K, M=M)
    problem = ScanSnapPopulation(classes=classes)
    runs = sweep(problem, rates=[{"Y": y, "Z": z} for y, z in rates], t1=t1, seeds=1,
                 save=LogGrid(n=save_n, t_min=1e-3), stepsize_controller=_tight(), max_steps=200_000)
    rows = []
    for (eta_Y, eta_Z), run in zip(rates, runs):
        ts = run.ts
        B = b_from_xi(run)[0].mean(axis=1)  # classes are symmetric; mean over them
        pred = snap_prediction(ts, M=M, K=K, eta_Y=eta_Y, eta_Z=eta_Z)
        t0 = transition_time(M=M, K=K, eta_Y=eta_Y)
        t_a = np.sqrt(scan_floor * K * M**2 / (2 * (M - 1) ** 2 * eta_Y * eta_Z))
        pre, post = (ts >= t_a) & (ts <= t0), ts >= snap_start * t0
        lnln = np.log(np.log(M * eta_Y * ts[post] / K))

        def slope(x, y):
            return float(np.polyfit(x, y, 1)[0]) if x.size > 2 else float("nan")

        model = jax.tree.map(lambda x: x[0], run.final)
        grad_z = jax.grad(lambda Z: problem.population_loss(eqx.tree_at(lambda m: m.Z, model, Z)))(model.Z)
        f, _ = model.features(np.asarray(classes.probs), np.asarray(classes.query))
        tokens = np.where(classes.distinct[0])[0]
        ratio = -np.asarray(grad_z)[classes.query[0], tokens] / np.asarray(f)[0, tokens] ** 2
        # ξ_n in closed form, if Y has Theorem 1's form: g_n = γ M/(M−1) (f_n − Σ_{n'≠n} f_{n'}/(M−1)), whose f_n part
        # the LayerNorm Jacobian I − f_n f_nᵀ annihilates, leaving ż_{ml} = η_Z f_{nl}² γ M/(M−1)² S_n/K with
        # S_n = Σ_{n'≠n} ⟨f_n, f_{n'}⟩ (the overlap through the common token).
        c = run.obs["attention"][0]
        fs = c / np.linalg.norm(c, axis=-1, keepdims=True)
        gram = np.einsum("tkm,tjm->tkj", fs, fs)
        S = gram.sum(-1) - np.einsum("tkk->tk", gram)
        xi_closed = gamma(ts, M=M, K=K, eta_Y=eta_Y)[:, None] * M / (M - 1) ** 2 * S / K
        xi = run.obs["xi"][0]
        late = ts >= t0
        rows.append({"eta_Y": eta_Y, "eta_Z": eta_Z, "t0": t0,
                     "xi / closed form at t ≥ t0 (min, max)": (float(np.min(xi[late] / xi_closed[late])),
                                                            float(np.max(xi[late] / xi_closed[late]))), "fit window before t0": (float(t_a), t0),
                     "points before t0": int(pre.sum()),
                     "slope in ln t before t0": slope(np.log(ts[pre]), B[pre]),
                     "predicted slope in ln t before t0": slope(np.log(ts[pre]), pred[pre]),
                     "slope in ln ln t after t0": slope(lnln, B[post]),
                     "predicted slope in ln ln t after t0": slope(lnln, pred[post]),
                     "B(t1)": float(B[-1]), "predicted B(t1)": float(pred[-1]),
                     "xi spread": float(np.ptp(ratio) / np.abs(ratio).mean()),
                     "steps": int(run.stats["steps"][0])})
    return rows, runs


def closed_form_velocity(problem, Y, Z, *, eta_Y=1.0, eta_Z=1.0):
    """(Ẏ, Ż) of the population flow (Lemma 2) written out by hand in NumPy, an
    independent check of the autodiff gradient: with α_n = softmax(Yᵀ f_n) and
    g_n = Y(e_n − α_n) (the back-propagated gradient),

        Ẏ = (η_Y/K) Σ_n f_n (e_n − α_n)ᵀ,
        ż_m = (η_Z/K) Σ_{n: ψ(n) = m} (diag(c_n) − c_n c_nᵀ)(I − f_n f_nᵀ) g_n / ‖c_n‖,

    the chain rule through f_n = c_n/‖c_n‖ and c_n = softmax(ln P(·|n) + z_m);
    rows of Z that are no class's query do not move."""
    cls = problem.classes
    Y, Z = np.asarray(Y, dtype=float), np.asarray(Z, dtype=float)
    K, M = cls.K, cls.M
    Ydot, Zdot = np.zeros((M, M)), np.zeros((M, M))
    for n in range(K):
        m, p = cls.query[n], cls.probs[n]
        w = np.where(p > 0, p * np.exp(Z[m] - Z[m][p > 0].max()), 0.0)
        c = w / w.sum()
        f = c / np.linalg.norm(c)
        logits = Y.T @ f
        alpha = np.exp(logits - logits.max())
        alpha /= alpha.sum()
        e = np.zeros(M)
        e[cls.next_token[n]] = 1.0
        Ydot += eta_Y / K * np.outer(f, e - alpha)
        g = Y @ (e - alpha)
        Zdot[m] += eta_Z / K * (np.diag(c) - np.outer(c, c)) @ (g - f * (f @ g)) / np.linalg.norm(c)
    return Ydot, Zdot


def syn_small_common(n_common: int = 10) -> SequenceClasses:
    """Syn-Small with `n_common` common tokens (weight 1) in place of its 10: two
    classes sharing query token 0, next tokens 0 and 1, each with 10 distinct tokens
    of weights linspace(0.1, 1, 10). `n_common = 10` is `syn_small()`."""
    W = np.zeros((2, n_common + 20))
    W[:, :n_common] = 1.0
    W[0, n_common:n_common + 10] = np.linspace(0.1, 1.0, 10)
    W[1, n_common + 10:] = np.linspace(0.1, 1.0, 10)
    return SequenceClasses.from_weights(W, query=(0, 0), next_token=(0, 1), name=f"syn-small-{n_common}-common")


def eta_y_map(*, ratios=(1.0, 2.0, 5.0, 10.0), eta_Z=1.0, times=(1e2, 1e3, 1e4), Ts=(None, 128, 32),
              commons=(10, 1), seeds=4, N=128, save_n=60):
    """Where the paper's "larger η_Y → denser (higher-entropy) attention" holds.

    For each number of common tokens (`syn_small_common`), each sequence length T
    (None: the population flow, Lemma 2; else `ScanSnap` with N sequences, `seeds`
    data draws) and each time of measurement t, the entropy of the attention over
    class-distinct tokens (mean over classes and seeds) at η_Y = r η_Z for each r in
    `ratios` — one batched `sweep` per (T, commons). A row's verdict: "denser" if
    the entropy increases with η_Y at every step of `ratios`, "sparser" if it
    decreases at every step, else "mixed". Returns rows."""
    rows = []
    for n_common in commons:
        classes = syn_small_common(n_common)
        for T in Ts:
            problem = ScanSnapPopulation(classes=classes) if T is None else ScanSnap(classes=classes, T=int(T), N=N)
            runs = sweep(problem, rates=[{"Y": r * eta_Z, "Z": eta_Z} for r in ratios], t1=max(times),
                         seeds=1 if T is None else seeds, save=LogGrid(n=save_n, t_min=1e-2))
            for t in times:
                i = int(np.argmin(np.abs(runs[0].ts - t)))
                ent = [float(np.nanmean(run.obs["entropy_distinct"][:, i])) for run in runs]
                step = np.diff(ent)
                verdict = "denser" if (step > 0).all() else "sparser" if (step < 0).all() else "mixed"
                rows.append({"common tokens": n_common, "T": "∞ (population)" if T is None else int(T),
                             "t": float(runs[0].ts[i]), "entropy by η_Y/η_Z": dict(zip(map(float, ratios), ent)),
                             "larger η_Y gives": verdict})
    return rows


def fig4_momentum(*, rates=((1.0, 1.0), (10.0, 1.0)), lr=0.01, momentum=0.9, t1=1e3, T=128, N=128, seeds=4,
                  save_n=40):
    """Fig. 4 as the paper trained it, beside the flow: SGD with momentum 0.9 on
    Syn-Small with T = 128, through `train` and optax (`optax.sgd(lr·η, momentum)`
    per matrix with `optax.multi_transform`: the paper's per-matrix rates η_Y,
    η_Z), and the gradient flow with rates (η_Y, η_Z) on the same data.

    What differs from the paper, which this library cannot do: the paper draws a
    fresh batch of 128 sequences every step (online SGD); `train` steps on one
    fixed draw of N = 128 sequences per seed (full-batch momentum GD). Heavy-ball
    momentum β with step lr stands for flow time lr/(1 − β) per step, so
    t1 (1 − β)/lr steps are run to reach the flow's t1.

    Returns rows: per (η_Y, η_Z), the distinct-token entropy at t1 (mean ± std
    over seeds) of momentum SGD and of the flow, and the max over classes and
    tokens of |c_SGD − c_flow| of the final attention (mean over seeds)."""
    import optax

    from ..._train import train
    from ._model import YZ

    problem = ScanSnap(classes=syn_small(), T=T, N=N)
    dt = lr / (1 - momentum)
    steps = int(round(t1 / dt))
    rows = []
    for eta_Y, eta_Z in rates:
        opt = optax.multi_transform({"Y": optax.sgd(lr * eta_Y, momentum=momentum),
                                     "Z": optax.sgd(lr * eta_Z, momentum=momentum)},
                                    lambda params: YZ(Y="Y", Z="Z"))
        sgd = train(problem, opt, steps=steps, dt=dt, seeds=seeds, save=LogGrid(n=save_n, t_min=dt))
        flow = simulate(problem, GradientFlow(rates={"Y": eta_Y, "Z": eta_Z}), t1=steps * dt, seeds=seeds,
                        save=LogGrid(n=save_n, t_min=dt))
        e_sgd = np.nanmean(sgd.obs["entropy_distinct"][:, -1], axis=1)
        e_flow = np.nanmean(flow.obs["entropy_distinct"][:, -1], axis=1)
        gap = np.abs(sgd.obs["attention"][:, -1] - flow.obs["attention"][:, -1]).max(axis=(1, 2))
        rows.append({"eta_Y": eta_Y, "eta_Z": eta_Z, "steps": steps, "flow time": steps * dt,
                     "SGD-momentum entropy": (float(e_sgd.mean()), float(e_sgd.std())),
                     "flow entropy": (float(e_flow.mean()), float(e_flow.std())),
                     "max |c_SGD − c_flow|": float(gap.mean()),
                     "failed": int((~sgd.ok).sum() + (~flow.ok).sum())})
    return rows


def transition_times(rates=((1.0, 0.5), (1.0, 1.0), (1.0, 2.0), (3.0, 1.0), (10.0, 0.5), (10.0, 1.0), (10.0, 2.0),
                            (30.0, 1.0)), *, t1=1e4, save_n=200):
    """The measured scan → snap transition t* (`measured_transition`: fastest growth of B
    in ln t) against t0 = 2K ln M/η_Y on Syn-Small's population flow, for each (η_Y, η_Z)
    — one batched `sweep`. Returns rows with t*, t0, t*/t0 and t*·η_Z."""
    classes = syn_small()
    runs = sweep(ScanSnapPopulation(classes=classes), rates=[{"Y": y, "Z": z} for y, z in rates], t1=t1, seeds=1,
                 save=LogGrid(n=save_n, t_min=1e-3))
    rows = []
    for (eta_Y, eta_Z), run in zip(rates, runs):
        t_star = float(measured_transition(run)[0])
        t0 = transition_time(M=classes.M, K=classes.K, eta_Y=eta_Y)
        rows.append({"eta_Y": eta_Y, "eta_Z": eta_Z, "t*": t_star, "t0": t0, "t*/t0": t_star / t0,
                     "t*·eta_Z": t_star * eta_Z})
    return rows
