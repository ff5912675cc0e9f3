"""The experiments of Li et al. (2025, arXiv:2410.04870), each one function call
returning its numbers and a matplotlib figure: the four stages under SignGD and
the sign flow, the sign flow as the small-step limit of SignGD (and what it
costs), SignGD vs Adam vs GD on the same data, and test loss against the SNR."""

import dataclasses
import functools
import time

import diffrax as dfx
import jax.tree_util as jtu
import numpy as np
import optax

from ..._flows import SignFlow
from ..._grids import LogGrid
from ..._optim import Optimizer, adam_for_flow, sign_gd
from ..._simulate import simulate
from ..._train import train
from ._figures import draw_stages
from ._model import SignalNoise
from ._stages import detect_stages

# The three optimisers of the paper's Fig. 2 at their default settings: SignGD and
# Adam (β1 = 0.9, β2 = 0.999) at η = 1e-4, GD at η = 0.1 (its updates are not
# normalised, so it needs a far larger step); all run the same number of steps.
OPTIMIZERS = {
    "SignGD": lambda: (sign_gd(1e-4), 1e-4),
    "Adam": lambda: (adam_for_flow(1e-4, a=1e3, b=10.0), 1e-4),
    "GD": lambda: (_sgd(0.1), 0.1),
}


@functools.lru_cache(maxsize=16)
def _sgd(learning_rate):
    # One object per learning rate, so repeated `train` calls share their compile.
    return optax.sgd(learning_rate)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _final_mean_std(run, keys) -> dict:
    """`{"KEY mean", "KEY std"}` over seeds of each observable's last saved value."""
    out = {}
    for key in keys:
        last = run.last(key)
        out[f"{key} mean"], out[f"{key} std"] = float(np.nanmean(last)), float(np.nanstd(last))
    return out


def param_distance(a, b) -> np.ndarray:
    """Per seed ‖θ_a − θ_b‖ / ‖θ_b‖ over every array of two batched final models."""
    la, lb = jtu.tree_leaves(a), jtu.tree_leaves(b)
    num = sum(np.sum((np.asarray(x) - np.asarray(y)).reshape(len(x), -1) ** 2, axis=1) for x, y in zip(la, lb))
    den = sum(np.sum(np.asarray(y).reshape(len(y), -1) ** 2, axis=1) for y in lb)
    return np.sqrt(num / den)


def obs_distance(run, ref, name) -> np.ndarray:
    """Per seed max over `ref`'s save times of |run − ref| for a scalar observable
    (`run` linearly interpolated onto `ref`'s times)."""
    out = []
    for k in range(ref.obs[name].shape[0]):
        x = np.interp(ref.ts, run.ts, run.obs[name][k])
        out.append(np.nanmax(np.abs(x - ref.obs[name][k])))
    return np.array(out)


def four_stages(problem=None, *, lr=1e-4, steps=3000, eps=1e-6, seeds=4, save_n=60,
                solver=dfx.Tsit5(), rtol=1e-5):
    """The four-stage picture for SignGD (η = `lr`, `steps` steps) and the
    regularised sign flow (ε = `eps`) over the same time t = kη, side by side.

    Returns (stages of SignGD, stages of the flow, (gd run, flow run), figure)."""
    problem = problem or SignalNoise()
    grid = LogGrid(n=save_n, t_min=lr)
    gd = train(problem, sign_gd(lr), steps=steps, dt=lr, seeds=seeds, save=grid)
    flow = simulate(problem, SignFlow(eps=eps), t1=steps * lr, seeds=seeds, save=grid, solver=solver,
                    stepsize_controller=dfx.PIDController(rtol=rtol, atol=rtol * 1e-3), max_steps=500_000)
    s_gd, s_flow = detect_stages(gd), detect_stages(flow)
    plt = _plt()
    fig, axes = plt.subplots(2, 4, figsize=(18, 7), constrained_layout=True, sharex=True)
    draw_stages(gd, s_gd, axes=axes[0])
    draw_stages(flow, s_flow, axes=axes[1])
    axes[0, 0].set_ylabel(f"SignGD, η = {lr:g}")
    axes[1, 0].set_ylabel(f"sign flow, ε = {eps:g}")
    return s_gd, s_flow, (gd, flow), fig


def sign_limit(problem=None, *, t1=0.05, lrs=(1e-2, 3e-3, 1e-3, 3e-4), eps=(1e-3, 1e-4, 1e-5, 1e-6),
               solvers=(dfx.Tsit5(), dfx.Kvaerno5()), rtol=1e-5, seeds=4, save_n=40, max_steps=200_000,
               max_jacobian_bytes=2e9, verbose=True):
    """How the sign flow approximates SignGD as η → 0, and what a small ε costs.

    SignGD at each η in `lrs` (read at t = kη) and the regularised sign flow at
    each ε in `eps` with each solver in `solvers`, all to `t1`. Distances are to
    SignGD at the smallest η: the relative distance of the final parameters and
    the max over saved times of |Δ loss| and |Δ mean value noise| (mean over
    seeds). Flow rows also give steps, gradient evaluations (NaN for implicit
    solvers, whose count depends on Newton iterations), wall time and failures.
    Implicit solvers form the dense Jacobian of the vector field (parameters²
    entries); a row whose Jacobian would exceed `max_jacobian_bytes` is skipped
    and says so.

    Returns (rows, runs {label: Run}, figure)."""
    problem = problem or SignalNoise()
    grid = LogGrid(n=save_n, t_min=min(lrs))
    runs, rows = {}, []
    for lr in sorted(lrs, reverse=True):
        steps = int(round(t1 / lr))
        start = time.perf_counter()
        runs[f"SignGD η={lr:g}"] = train(problem, sign_gd(lr), steps=steps, dt=lr, seeds=seeds, save=grid)
        rows.append({"method": "SignGD", "eta/eps": lr, "solver": "-", "steps": steps, "gradients": steps,
                     "wall s": runs[f"SignGD η={lr:g}"].stats["wall_time"].item(),
                     "total s": time.perf_counter() - start})
    ref = runs[f"SignGD η={min(lrs):g}"]
    n_params = sum(x.size for x in jtu.tree_leaves(ref.initial)) // seeds
    for e in eps:
        for solver in solvers:
            label = f"flow ε={e:g} {type(solver).__name__}"
            if isinstance(solver, dfx.AbstractImplicitSolver) and 8.0 * n_params**2 > max_jacobian_bytes:
                # diffrax's implicit solvers build the dense Jacobian of the vector field.
                rows.append({"method": "sign flow", "eta/eps": e, "solver": type(solver).__name__,
                             "skipped": f"dense Jacobian of {n_params} parameters needs {8e-9 * n_params**2:.3g} GB"})
                continue
            start = time.perf_counter()
            run = simulate(problem, SignFlow(eps=e), t1=t1, seeds=seeds, save=grid, solver=solver,
                           stepsize_controller=dfx.PIDController(rtol=rtol, atol=rtol * 1e-3), max_steps=max_steps)
            runs[label] = run
            rows.append({"method": "sign flow", "eta/eps": e, "solver": type(solver).__name__,
                         "steps": float(np.mean(run.stats["steps"])),
                         "gradients": float(np.mean(run.stats["gradient_evaluations"])),
                         "wall s": run.stats["wall_time"].item(), "total s": time.perf_counter() - start,
                         "failed": int((~run.ok).sum())})
            if verbose:
                print(f"{label}: {rows[-1]['steps']:.0f} steps, {rows[-1]['wall s']:.2f} s", flush=True)
    for row in rows:
        if "skipped" in row:
            continue
        label = f"SignGD η={row['eta/eps']:g}" if row["method"] == "SignGD" else f"flow ε={row['eta/eps']:g} {row['solver']}"
        run = runs[label]
        ok = run.ok
        row["param dist"] = float(np.mean(param_distance(run.final, ref.final)[ok])) if ok.any() else np.nan
        row["loss dist"] = float(np.mean(obs_distance(run, ref, "loss")))
        row["value-noise dist"] = float(np.mean(obs_distance(run, ref, "value_noise")))
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), constrained_layout=True)
    for label, run in runs.items():
        style = "-" if label.startswith("SignGD") else "--"
        if label.startswith("flow") and not label.endswith(type(solvers[0]).__name__):
            continue
        axes[0].plot(run.ts[1:], np.nanmean(run.obs["value_noise"][:, 1:], 0), style, label=label)
        axes[1].plot(run.ts[1:], np.nanmean(run.obs["s21_mean"][:, 1:], 0), style, label=label)
    for ax, name in zip(axes[:2], ("mean value noise", "mean s_21")):
        ax.set_xscale("log")
        ax.set_xlabel("t = kη")
        ax.set_title(name)
    axes[0].legend(fontsize="x-small")
    for solver in solvers:
        name = type(solver).__name__
        sel = [r for r in rows if r["solver"] == name and "skipped" not in r]
        axes[2].loglog([r["eta/eps"] for r in sel], [r["steps"] for r in sel], "o-", label=f"sign flow, {name}: steps")
    sel = [r for r in rows if r["method"] == "SignGD"]
    axes[2].loglog([r["eta/eps"] for r in sel], [r["steps"] for r in sel], "s-", label="SignGD: steps (η)")
    axes[2].set_xlabel("ε (flow) or η (SignGD)")
    axes[2].set_title("cost")
    axes[2].legend(fontsize="x-small")
    return rows, runs, fig


def optimizer_comparison(problem=None, *, optimizers=None, steps=3000, seeds=8, save_n=40):
    """Train and test loss/accuracy of SignGD, Adam and GD on the same data and
    initialisations (the paper's Fig. 2), `seeds` seeds each, the same number of
    steps. `optimizers` maps a name to a zero-argument callable returning
    (optax optimiser, learning rate); default `OPTIMIZERS`.

    Returns (rows with mean ± std over seeds at the end, runs, figure)."""
    problem = problem or SignalNoise()
    optimizers = optimizers or OPTIMIZERS
    runs, rows = {}, []
    for name, make in optimizers.items():
        opt, lr = make()
        run = train(problem, opt, steps=steps, dt=lr, seeds=seeds, save=LogGrid(n=save_n, t_min=lr))
        runs[name] = run
        row = {"optimizer": name, "lr": lr, "steps": steps, "failed": int((~run.ok).sum())}
        row.update(_final_mean_std(run, ("loss", "test_loss", "train_accuracy", "test_accuracy", "value_noise",
                                         "value_signal")))
        rows.append(row)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for i, (name, run) in enumerate(runs.items()):
        step = run.ts / run.config["dt"]
        for ax, key, style in ((axes[0], "loss", "-"), (axes[0], "test_loss", "--"), (axes[1], "test_accuracy", "-")):
            m, s = np.nanmean(run.obs[key], 0), np.nanstd(run.obs[key], 0)
            ax.plot(step[1:], m[1:], style, color=f"C{i}", label=f"{name} {key.replace('_', ' ')}")
            ax.fill_between(step[1:], (m - s)[1:], (m + s)[1:], color=f"C{i}", alpha=0.15)
        axes[2].plot(step[1:], np.nanmean(run.obs["value_signal"], 0)[1:] / np.nanmean(run.obs["value_noise"], 0)[1:],
                     color=f"C{i}", label=name)
    axes[0].set_yscale("log")
    axes[0].set_title(f"train (solid) and test (dashed) loss, {seeds} seeds")
    axes[1].set_title("test accuracy")
    axes[2].set_title("value signal / mean value noise")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.legend(fontsize="x-small")
    return rows, runs, fig


# The modelling choices tried against the paper's s_11 ≈ ½ (issue 17), as field changes
# of `SignalNoise`. Patch order cannot matter (the model has no positions: f is
# permutation invariant) and is run as a check of that; how query/key noise is
# averaged is an observable, not part of the dynamics, so it cannot move s_11.
S11_VARIANTS = {
    "baseline": {},
    "patch order random": {"patch_order": "random"},
    "scores / sqrt(m_k)": {"score_scale": "inv_sqrt_mk"},
    "single value matrix": {"value_weights": "single"},
    "init scale 1e-3": {"init_scale": 1e-3},
    "init scale 0.1": {"init_scale": 0.1},
    "SNR 2": {"snr": 2.0},
    "SNR 0.5": {"snr": 0.5},
    "SNR 0.25": {"snr": 0.25},
}


def s11_candidates(problem=None, *, variants=None, lr=1e-4, steps=600, seeds=8, save_n=300, verbose=True):
    """s_11 under each modelling choice of `variants` ({name: field changes}; a
    change "snr" sets ‖µ‖ = SNR·σ_p√s): SignGD at `lr` for `steps` steps, and per
    variant over `seeds` seeds the four stages (`detect_stages`), the mean s_11 at
    the end of stage IV, after 150 steps (the caption's t = 150) and at the end,
    and the fraction of neurons whose query and key signals share a sign.

    Returns rows (one per variant)."""
    problem = problem or SignalNoise()
    variants = variants or S11_VARIANTS
    rows = []
    for name, change in variants.items():
        change = dict(change)
        if "snr" in change:
            change["mu_norm"] = float(change.pop("snr") * problem.sigma_p * np.sqrt(problem.s))
        p = dataclasses.replace(problem, **change)
        run = train(p, sign_gd(lr), steps=steps, dt=lr, seeds=seeds, save=LogGrid(n=save_n, t_min=lr))
        st = detect_stages(run)
        i150 = int(np.searchsorted(run.ts, 150 * lr))
        row = {"variant": name, "snr": p.snr, "in order": int(st.in_order.sum()), "vote holds": int(st.vote_holds.sum()),
               "T_IV": float(np.nanmean(st.times[:, 3])), "s11 at IV mean": float(np.nanmean(st.s11_at_IV)),
               "s11 at IV min": float(np.nanmin(st.s11_at_IV)), "s11 at IV max": float(np.nanmax(st.s11_at_IV)),
               "s11 near 1/2": int(st.s11_near_half.sum()),
               "s11 at 150 steps": float(np.mean(run.obs["s11_mean"][:, i150])),
               "s21 at 150 steps": float(np.mean(run.obs["s21_mean"][:, i150])),
               "s11 final": float(np.mean(st.s11_final)),
               "signal signs equal, final": float(np.mean(run.obs["signal_sign_agreement"][:, -1])),
               "seeds": seeds, "t1": steps * lr}
        rows.append(row)
        if verbose:
            print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows


# Adam's (β1, β2, ε) against SignGD (issue 17): the paper's default first, then the two
# roads to SignGD — β1, β2 → 0 (Adam's update is then g/(|g| + ε)) and β2 = β1 (the
# bias-corrected m/√v is 1 for a gradient constant over the memory window) — each with
# ε → 0, since once the loss is small the gradients fall below ε = 1e-8.
# ε runs down to 1e-120: late in training SignGD follows the signs of gradients far below
# 1e-20 (s_11 reaches 1e-43), which Adam sees only with an ε below them.
ADAM_SETTINGS = (
    (0.9, 0.999, 1e-8), (0.9, 0.999, 1e-20), (0.9, 0.99, 1e-8), (0.0, 0.999, 1e-20),
    (0.9, 0.9, 1e-8), (0.9, 0.9, 1e-20), (0.9, 0.9, 1e-80), (0.5, 0.5, 1e-20),
    (0.0, 0.0, 1e-8), (0.0, 0.0, 1e-20), (0.0, 0.0, 1e-40), (0.0, 0.0, 1e-80), (0.0, 0.0, 1e-120),
)

SPLIT_ACCURACY = 0.02
"""|Δ test accuracy| that marks two runs as split: 20 of 1,000 test samples, 4× the
spread of SignGD's final test accuracy over seeds (0.005)."""


def adam_vs_signgd(problem=None, *, settings=ADAM_SETTINGS, lr=1e-4, steps=3000, seeds=8, save_n=40):
    """Adam (`optax.adam` through `gradflow.Optimizer`: one compile for every
    (β1, β2, ε)) against SignGD at the same η = `lr`, the same data and
    initialisations, `steps` steps. Per setting, over `seeds` seeds: the final
    train loss, test loss and accuracy, the relative distance of the final
    parameters to SignGD's (`param_distance`) and the max over save times of
    |Δ mean value noise| relative to SignGD's largest value noise, the max over
    save times of |Δ test accuracy| and the first save time at which it exceeds
    `SPLIT_ACCURACY` (mean over the seeds that split; NaN if none). The first row
    is SignGD itself.

    Returns (rows, figure)."""
    problem = problem or SignalNoise()
    grid = LogGrid(n=save_n, t_min=lr)
    ref = train(problem, sign_gd(lr), steps=steps, dt=lr, seeds=seeds, save=grid)
    scale = np.nanmax(np.abs(ref.obs["value_noise"]), axis=1)
    runs = {"SignGD": ref}
    rows = []
    for b1, b2, eps in ((None, None, None),) + tuple(settings):
        if b1 is None:
            run, label = ref, "SignGD"
        else:
            label = f"Adam β1={b1:g} β2={b2:g} ε={eps:g}"
            run = train(problem, Optimizer(optax.adam, learning_rate=lr, b1=b1, b2=b2, eps=eps), steps=steps, dt=lr,
                        seeds=seeds, save=grid)
            runs[label] = run
        row = {"optimizer": "SignGD" if b1 is None else "Adam", "b1": b1, "b2": b2, "eps": eps,
               "failed": int((~run.ok).sum()),
               "param dist": float(np.mean(param_distance(run.final, ref.final))),
               "value-noise dist": float(np.mean(obs_distance(run, ref, "value_noise") / scale)),
               "test-acc dist": float(np.mean(obs_distance(run, ref, "test_accuracy")))}
        gap = np.abs(run.obs["test_accuracy"] - ref.obs["test_accuracy"]) > SPLIT_ACCURACY
        split = [run.ts[np.flatnonzero(g)[0]] for g in gap if g.any()]
        row["t split"] = float(np.mean(split)) if split else np.nan
        row["seeds split"] = len(split)
        row.update(_final_mean_std(run, ("loss", "test_loss", "test_accuracy", "s11_mean")))
        rows.append(row)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for i, (label, run) in enumerate(runs.items()):
        style = "k-" if label == "SignGD" else ("-" if i <= 10 else "--")  # the colour cycle has 10
        for ax, key in zip(axes, ("loss", "value_noise", "test_accuracy")):
            ax.plot(run.ts[1:], np.nanmean(run.obs[key], 0)[1:], style, label=label, linewidth=2 if i == 0 else 1)
    axes[0].set_yscale("log")
    for ax, key in zip(axes, ("train loss", "mean value noise", "test accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel("t = kη")
        ax.set_title(f"{key} ({seeds} seeds, mean)")
    axes[2].legend(fontsize="xx-small")
    return rows, fig


def snr_sweep(problem=None, *, snrs=(0.25, 0.5, 1.0, 2.0), optimizers=None, steps=3000, seeds=8, save_n=20):
    """Final test loss and accuracy against the SNR (‖µ‖ set to SNR·σ_p√s), for
    each optimiser; every (SNR, optimiser) is one batched call over `seeds`
    seeds. Returns (rows, figure)."""
    problem = problem or SignalNoise()
    optimizers = optimizers or OPTIMIZERS
    rows = []
    for snr in snrs:
        p = dataclasses.replace(problem, mu_norm=float(snr * problem.sigma_p * np.sqrt(problem.s)))
        for name, make in optimizers.items():
            opt, lr = make()
            run = train(p, opt, steps=steps, dt=lr, seeds=seeds, save=LogGrid(n=save_n, t_min=lr))
            row = {"snr": snr, "optimizer": name, "failed": int((~run.ok).sum())}
            row.update(_final_mean_std(run, ("loss", "test_loss", "test_accuracy")))
            rows.append(row)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for i, name in enumerate(optimizers):
        sel = [r for r in rows if r["optimizer"] == name]
        for ax, key in zip(axes, ("test_loss", "test_accuracy")):
            ax.errorbar([r["snr"] for r in sel], [r[f"{key} mean"] for r in sel], yerr=[r[f"{key} std"] for r in sel],
                        marker="o", capsize=3, color=f"C{i}", label=name)
    for ax, key in zip(axes, ("test loss", "test accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel("SNR = ‖µ‖ / (σ_p √s)")
        ax.set_title(f"{key} after {steps} steps ({seeds} seeds, mean ± std)")
        ax.legend(fontsize="small")
    return rows, fig
