"""The figures of Yang, Kailkhura, Wang & Liang (2024, arXiv:2410.09605), Fig. 1,
drawn from a simulated `Run` of `Cooccurrence`."""

from pathlib import Path

import numpy as np

from ._claims import _SCORE_DOWN, _SCORE_UP, phase1_end
from ._model import GROUPS


def _mark_phase1(run, ax):
    t1 = phase1_end(run)
    if np.isfinite(t1).any():
        ax.axvline(np.nanmedian(t1), color="k", linestyle="--", linewidth=1, label="T1 (median)")
        ax.axvspan(np.nanmin(t1), np.nanmax(t1), color="k", alpha=0.08, linewidth=0)


def draw_scores(run, ax):
    """Fig. 1a: change of the attention score correlations µ_iᵀW_KᵀW_Qµ_j from init.

    **Arguments:**

    - `run`: a `Run` of `Cooccurrence`.
    - `ax`: the matplotlib axes to draw on.

    **Returns:** `ax`.
    """
    from ... import plot

    for label, (i, j) in {**_SCORE_UP, **_SCORE_DOWN, "µ3ᵀKᵀQµ3": (2, 2)}.items():
        plot.observable(run, "scores", component=3 * i + j, ax=ax, label=label, change=True)
    plot.observable(run, "score_random", component=0, ax=ax, label="mean νᵀKᵀQµ1, ν random", change=True)
    _mark_phase1(run, ax)
    ax.set_ylabel(r"$\mu_i^\top W_K^\top W_Q \mu_j$ − its value at t = 0")
    ax.set_title(f"Fig. 1a: attention score correlations ({run.n_seeds} seeds, median, 10–90%)")
    plot._legend(ax, "outside")
    return ax


def draw_losses(run, ax):
    """Fig. 1b: total and per-group loss, with the end of phase 1 marked.

    **Arguments:**

    - `run`: a `Run` of `Cooccurrence`.
    - `ax`: the matplotlib axes to draw on.

    **Returns:** `ax`.
    """
    from ... import plot

    plot.observable(run, "loss", ax=ax, label="total", color="k", logy=True)
    for k, g in enumerate(GROUPS):
        plot.observable(run, "group_loss", component=k, ax=ax, label=g, logy=True)
    _mark_phase1(run, ax)
    ax.set_ylabel("logistic loss")
    ax.set_title("Fig. 1b: total and per-group loss; dashed: end of phase 1")
    plot._legend(ax, "outside")
    return ax


def draw_G(run, ax):
    """G(µ1), G(µ2), G(µ3) against time.

    **Arguments:**

    - `run`: a `Run` of `Cooccurrence`.
    - `ax`: the matplotlib axes to draw on.

    **Returns:** `ax`.
    """
    from ... import plot

    for k in range(3):
        plot.observable(run, "G", component=k, ax=ax, label=f"G(µ{k + 1})")
    _mark_phase1(run, ax)
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_ylabel(r"MLP output $G(\mu)$")
    ax.set_title("MLP output on the target and common tokens")
    plot._legend(ax, "outside")
    return ax


def save_figures(run, directory) -> list[Path]:
    """Fig. 1a (score correlations), Fig. 1b (losses with the phase boundary), G(µ)."""
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in (("fig1a_scores", draw_scores), ("fig1b_losses", draw_losses), ("G", draw_G)):
        fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
        draw(run, ax)
        paths.append(directory / f"{name}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
