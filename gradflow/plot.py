"""Figures of runs: any observable against time over seeds (matplotlib).

Every function takes an optional `ax` and returns it, so figures compose.
Time is on a log axis by default (t = 0 is dropped there): training dynamics
span many decades of time.
"""

import warnings
from pathlib import Path

import numpy as np

__all__ = ["compare", "loss", "observable", "save_figures", "work_precision"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    return ax


def _series(run, name, component):
    if name not in run.obs:
        raise KeyError(f"run has no observable {name!r}; it has {sorted(run.obs)}.")
    values = run.obs[name]
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    if component is not None:
        return {f"{name}[{component}]": flat[:, :, component]}
    if flat.shape[2] == 1:
        return {name: flat[:, :, 0]}
    return {f"{name}[{i}]": flat[:, :, i] for i in range(flat.shape[2])}


def observable(
    run, name, *, ax=None, component=None, label=None, color=None, band=(10, 90), logx=True, logy=False,
    change=False,
):
    """Median over seeds of `run.obs[name]` against time, with a percentile band.

    Vector observables draw one line per component unless `component` picks one.
    `change=True` plots each seed's change from its value at t = 0 (useful when
    the spread of initial values hides the dynamics). Seeds that failed
    contribute their values up to the failure (NaN after).
    """
    ax = _axes(ax)
    t = run.ts
    keep = t > 0 if logx else np.ones_like(t, dtype=bool)
    series = _series(run, name, component)
    for i, (key, y) in enumerate(series.items()):
        if change:
            y = y - y[:, :1]
        y = y[:, keep]
        with warnings.catch_warnings():  # all-NaN columns after every seed stopped
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(y, axis=0)
            lo, hi = np.nanpercentile(y, band, axis=0)
        c = color if color is not None and len(series) == 1 else None
        text = label if label is not None and len(series) == 1 else (f"{label} {key}" if label else key)
        (line,) = ax.plot(t[keep], med, color=c, label=text)
        if y.shape[0] > 1:
            ax.fill_between(t[keep], lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("t (flow time)" if run.config.get("kind") != "train" else "t = step × dt")
    ax.set_ylabel(f"{name} − its value at t = 0" if change else name)
    if len(series) > 1 or label:
        ax.legend(fontsize="small")
    return ax


def loss(run, *, ax=None, **kwargs):
    """The loss against time (log–log), median and 10–90% band over seeds."""
    kwargs.setdefault("logy", bool(np.nanmin(run.obs["loss"]) > 0))
    ax = observable(run, "loss", ax=ax, **kwargs)
    ax.set_title(f"loss over {run.n_seeds} seed{'s' if run.n_seeds > 1 else ''} (median, 10–90%)")
    return ax


def compare(runs, name="loss", *, labels=None, ax=None, component=None, **kwargs):
    """Overlay the same observable from several runs (e.g. a flow and `train`)."""
    ax = _axes(ax)
    labels = labels or [r.config.get("kind", f"run {i}") for i, r in enumerate(runs)]
    for run, label in zip(runs, labels):
        observable(run, name, ax=ax, component=component, label=label, **kwargs)
    return ax


def save_figures(run, directory, *, max_figures=8) -> list[Path]:
    """Write `loss.png` and one figure per other small observable into `directory`."""
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    ax = loss(run)
    paths.append(directory / "loss.png")
    ax.figure.savefig(paths[-1], dpi=110)
    plt.close(ax.figure)
    for name, values in run.obs.items():
        if name == "loss" or len(paths) >= max_figures or values[0, 0].size > 16:
            continue
        ax = observable(run, name)
        paths.append(directory / f"{name}.png")
        ax.figure.savefig(paths[-1], dpi=110)
        plt.close(ax.figure)
    return paths


def work_precision(table, *, error="param error", axes=None, title=None):
    """A work-precision diagram of a `gradflow.accuracy.work_precision` table:
    `error` against gradient evaluations (left) and against wall time (right),
    log–log, one line per solver (and per precision, where the table has a
    `precision` column). Returns the figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    else:
        fig = axes[0].figure
    rows = [r for r in table.rows if np.isfinite(r.get(error, np.nan)) and r.get(error, 0) > 0]
    labels = []
    for r in rows:
        label = r["solver"] + (f" ({r['precision']})" if "precision" in r else "")
        if label not in labels:
            labels.append(label)
    for i, label in enumerate(labels):
        sel = [r for r in rows if r["solver"] + (f" ({r['precision']})" if "precision" in r else "") == label]
        style = "--" if "float32" in label else "-"
        for ax, x in zip(axes, ("gradient evaluations", "wall s")):
            ax.loglog([r[x] for r in sel], [r[error] for r in sel], style, marker="o", color=f"C{i % 10}", label=label)
    for ax, x in zip(axes, ("gradient evaluations per seed", "wall time (s, compile excluded)")):
        ax.set_xlabel(x)
        ax.set_ylabel(error)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(title or table.title)
    return fig
