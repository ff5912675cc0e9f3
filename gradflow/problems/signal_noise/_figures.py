"""The paper's Fig. 1 (Li et al. 2025, arXiv:2410.04870) with the stage
boundaries marked, drawn from a `SignalNoise` run."""

from pathlib import Path

import numpy as np

from ._stages import STAGES, Stages, detect_stages


def draw_stages(run, stages: Stages | None = None, *, seed=0, axes=None, title=None):
    """The paper's Fig. 1 for one seed: mean value noise, query/key noise and
    signal per neuron, softmax entries s_11, s_21 (mean ± std over samples),
    on a log time axis, with the stage boundaries as vertical lines."""
    import matplotlib.pyplot as plt

    stages = stages or detect_stages(run)
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.6), constrained_layout=True)
    else:
        fig = np.ravel(axes)[0].figure
    ts, o = run.ts[1:], {k: v[seed, 1:] for k, v in run.obs.items()}
    ax = axes[0]
    ax.plot(ts, o["value_noise"], label="mean value noise")
    ax.plot(ts, o["value_signal"], label="value signal ⟨v, µ⟩")
    ax.set_title("value")
    for ax, kind, label, title in ((axes[1], "noise", "noise (per neuron)", "query/key noise ⟨w_s, yξ⟩ (mean over samples)"),
                                   (axes[2], "signal", "signal", "query/key signal ⟨w_s, µ⟩")):
        ax.plot(ts, o[f"query_{kind}"], color="C0", linewidth=0.8)
        ax.plot(ts, o[f"key_{kind}"], color="C1", linewidth=0.8, linestyle="--")
        ax.plot([], [], color="C0", label=f"query {label}")
        ax.plot([], [], color="C1", linestyle="--", label=f"key {label}")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(title)
    ax = axes[3]
    for name, color in (("s11", "C2"), ("s21", "C3")):
        mean, std = o[f"{name}_mean"], o[f"{name}_std"]
        ax.plot(ts, mean, color=color, label=f"{name} (mean ± std)")
        ax.fill_between(ts, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_title("softmax entries")
    for ax in axes:
        for j, t in enumerate(stages.times[seed]):
            if np.isfinite(t):
                ax.axvline(t, color="k", linestyle=":", linewidth=1)
                ax.text(t, 1.0, STAGES[j], transform=ax.get_xaxis_transform(), ha="right", va="bottom", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    return fig


def save_figures(run, directory) -> list[Path]:
    """`stages.png`: the paper's Fig. 1 for seed 0, stage boundaries marked."""
    import matplotlib.pyplot as plt

    fig = draw_stages(run, title="four stages (seed 0)")
    path = Path(directory) / "stages.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
