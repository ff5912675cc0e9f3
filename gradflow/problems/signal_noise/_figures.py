"""The paper's Fig. 1 (Li et al. 2025, arXiv:2410.04870) with the stage
boundaries marked, drawn from a `SignalNoise` run."""

from pathlib import Path

import numpy as np

from ._stages import STAGES, Stages, detect_stages


def draw_stages(run, stages: Stages | None = None, *, seed=0, axes=None, title=None):
    """The paper's Fig. 1 for one seed: mean value noise, query/key noise and
    signal per neuron, softmax entries s_11, s_21 (mean ± std over samples),
    on a log time axis (symlog where the run saved t = 0), with the stage
    boundaries as vertical lines.

    **Arguments:**

    - `run`: a `Run` of `SignalNoise`.
    - `stages`: the `Stages` to mark (default: `detect_stages(run)`).
    - `seed`: the seed to draw (default 0).
    - `axes`: four matplotlib axes to draw on (default: a new figure).
    - `title`: the figure's title (default: none).

    **Returns:** the figure.
    """
    import matplotlib.pyplot as plt

    from ... import plot

    stages = stages or detect_stages(run)
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.6), constrained_layout=True)
    else:
        fig = np.ravel(axes)[0].figure
    ts, o = run.ts, {k: v[seed] for k, v in run.obs.items()}
    ax = axes[0]
    ax.plot(ts, o["value_noise"], label="mean value noise")
    ax.plot(ts, o["value_signal"], label=r"value signal $\langle v, \mu \rangle$")
    ax.set_title("value")
    panels = ((axes[1], "noise", "noise (per neuron)", r"query/key noise $\langle w_s, y_i \xi_i \rangle$ (mean over $i$)"),
              (axes[2], "signal", "signal", r"query/key signal $\langle w_s, \mu \rangle$"))
    for ax, kind, label, panel_title in panels:
        ax.plot(ts, o[f"query_{kind}"], color="C0", linewidth=0.8)
        ax.plot(ts, o[f"key_{kind}"], color="C1", linewidth=0.8, linestyle="--")
        ax.plot([], [], color="C0", label=f"query {label}")
        ax.plot([], [], color="C1", linestyle="--", label=f"key {label}")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(panel_title)
    ax = axes[3]
    for name, color in (("s11", "C2"), ("s21", "C3")):
        mean, std = o[f"{name}_mean"], o[f"{name}_std"]
        ax.plot(ts, mean, color=color, label=f"$s_{{{name[1:]}}}$ (mean ± std)")
        ax.fill_between(ts, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_title("softmax entries")
    for ax in axes:
        ax.set_title(ax.get_title(), pad=24)  # room for the stage labels between the axes and the title
        for j, t in enumerate(stages.times[seed]):
            if np.isfinite(t):
                ax.axvline(t, color="k", linestyle=":", linewidth=1)
                # above the axes, staggered: the ends of stages I–III can lie close together
                ax.text(t, 1.01 + 0.06 * (j % 2), STAGES[j], transform=ax.get_xaxis_transform(), ha="right",
                        va="bottom", fontsize=8)
        plot._set_xscale(ax, plot._resolve_xscale([ts], None, None), plot._first_positive([ts]))
        ax.set_xlabel("t (flow time)")
        # below the axes: the lines fill each panel from edge to edge
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
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
