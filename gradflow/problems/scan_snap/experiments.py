"""The experiments of Tian, Wang, Chen & Du (2023, arXiv:2305.16380), each one
function call returning its numbers and a matplotlib figure."""

import numpy as np

from ..._flows import GradientFlow
from ..._grids import LogGrid
from ..._simulate import simulate
from ..._sweep import sweep
from ._claims import measured_transition
from ._model import ScanSnap, ScanSnapPopulation, fig3_classes, syn_medium, syn_small, transition_time


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
