"""The scan → snap transition of Tian, Wang, Chen & Du (2023, arXiv:2305.16380),
drawn from a simulated `Run` of `ScanSnapPopulation` or `ScanSnap`."""

from pathlib import Path

import numpy as np

from ._claims import flow_rates, measured_transition
from ._model import transition_time


def draw_transition(run, ax):
    """B_n(t) − B_n(0) for each class n (median over seeds), with the predicted
    transition t0 = 2K ln M / η_Y and the measured t* (median over seeds) marked."""
    from ... import plot

    cls = run.problem.classes
    for n in range(run.obs["B"].shape[2]):  # a line style per class: classes that coincide stay visible
        plot.observable(run, "B", ax=ax, component=n, change=True, label=f"class n = {n}",
                        linestyle=("-", "--", ":", "-.")[n % 4])
    eta_Y, eta_Z = flow_rates(run)
    t0 = transition_time(M=cls.M, K=cls.K, eta_Y=eta_Y)
    ax.axvline(t0, color="k", linestyle="--", linewidth=1, label=r"predicted $t_0 = 2K \ln M / \eta_Y$")
    t_star = measured_transition(run)
    if np.isfinite(t_star).any():
        ax.axvline(np.nanmedian(t_star), color="r", linestyle=":", linewidth=1, label=r"measured $t^*$ (median)")
    ax.set_ylabel(r"$B_n(t) - B_n(0)$")
    ax.set_title(rf"scan → snap: $\eta_Y$ = {eta_Y:g}, $\eta_Z$ = {eta_Z:g}, K = {cls.K}, M = {cls.M}")
    plot._legend(ax, "outside")
    return ax


def save_figures(run, directory) -> list[Path]:
    """`transition.png`: B(t) per class with the predicted and measured transition."""
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    draw_transition(run, ax)
    path = directory / "transition.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
