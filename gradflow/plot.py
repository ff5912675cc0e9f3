"""Figures of runs: any observable against time over seeds (matplotlib).

Every function takes an optional `ax` and returns it, so figures compose.

Time axis: training dynamics span decades of time, so time is logarithmic by
default. A log axis cannot show t = 0, which every grid saves, so the default
(`xscale=None`) is a symlog axis where the run saves t = 0: linear on
[0, t₁] (t₁ the first positive save time) and logarithmic above it, so no
saved point is dropped. `xscale="log"` drops the saves at t <= 0 (asked for
explicitly); `xscale="linear"` is a plain linear axis.

Labels: the y axis reads the observable's description where the run's problem
gives one (`AbstractProblem.describe_observables`), else its key; a component
of a matrix observable is labelled by its index tuple, `R[0, 1]`.
"""

import math
import numbers
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["compare", "error_profile", "loss", "observable", "save_figures", "work_precision"]

_STYLES = ("-", "--", ":", "-.")
_XSCALES = ("log", "symlog", "linear")


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    return ax


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _index(name, shape, component) -> tuple[int, ...]:
    """One component (a flat int or an index tuple) → an index tuple into `shape`."""
    size = math.prod(shape)
    if _is_int(component):
        if not -size <= component < size:
            raise ValueError(
                f"component={component} is out of range for observable {name!r}, which has {size} "
                f"component{'s' if size != 1 else ''} (shape {shape} per seed and time); give a flat index "
                f"in [0, {size}) or an index tuple."
            )
        return tuple(int(i) for i in np.unravel_index(component % size, shape))
    if isinstance(component, tuple) and all(_is_int(i) for i in component):
        example = f"e.g. component={tuple(0 for _ in shape)}" if shape else "or component=None"
        if len(component) != len(shape):
            raise ValueError(
                f"component={component} has {len(component)} ind{'ex' if len(component) == 1 else 'ices'} but "
                f"observable {name!r} has shape {shape} per seed and time; give {len(shape)} ({example})."
            )
        for i, n in zip(component, shape):
            if not -n <= i < n:
                raise ValueError(
                    f"component={component} is out of range for observable {name!r} of shape {shape} per seed "
                    "and time; each index must lie in [0, size) along its axis."
                )
        return tuple(int(i) % n for i, n in zip(component, shape))
    raise TypeError(
        f"component must be None (every component), a flat index (int), an index tuple such as (0, 1), or a "
        f"list of those; got {component!r}."
    )


def _components(run, name, component) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """The per-save shape of `run.obs[name]` and the index tuples to draw."""
    if name not in run.obs:
        raise KeyError(f"run has no observable {name!r}; it has {sorted(run.obs)}.")
    shape = tuple(run.obs[name].shape[2:])
    if component is None:
        return shape, list(np.ndindex(shape))
    if isinstance(component, list):
        if not component:
            raise ValueError("component=[] draws nothing; give None (every component) or some indices.")
        return shape, [_index(name, shape, c) for c in component]
    return shape, [_index(name, shape, component)]


def _key(name, index) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def _line_styles(shape, indices, linestyle=None) -> list[tuple[object, str]]:
    """A (colour, line style) per drawn component, never two alike.

    Up to 10 lines take the 10 colours of matplotlib's cycle. More lines of a
    matrix with at most 10 rows and 4 columns, all drawn, take a colour per row
    and a line style per column; otherwise the colours cycle and the line style
    changes every 10 lines (up to 40), and past 40 the colours are spread over
    a colormap. A fixed `linestyle` (one run among several, in `compare`)
    leaves only colours, from the cycle or the colormap.
    """
    n = len(indices)
    if n <= 10:
        return [(f"C{i}", linestyle or "-") for i in range(n)]
    if linestyle is None:
        full = len(shape) == 2 and n == math.prod(shape)
        if full and shape[0] <= 10 and shape[1] <= len(_STYLES):
            return [(f"C{r}", _STYLES[c]) for r, c in indices]
        if n <= 10 * len(_STYLES):
            return [(f"C{i % 10}", _STYLES[i // 10]) for i in range(n)]
    import matplotlib

    colours = matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n))
    return [(tuple(c), linestyle or "-") for c in colours]


def _seed_indices(seeds, n_seeds) -> list[int]:
    if seeds is False or seeds is None:
        return []
    if seeds is True:
        return list(range(n_seeds))
    if _is_int(seeds):
        if not 0 <= seeds <= n_seeds:
            raise ValueError(f"seeds={seeds}: the run has {n_seeds} seeds; give a count in [0, {n_seeds}], "
                             "True for all, or a list of seed indices.")
        return list(range(seeds))
    if isinstance(seeds, Sequence) and all(_is_int(s) for s in seeds):
        bad = [s for s in seeds if not 0 <= s < n_seeds]
        if bad:
            raise ValueError(f"seeds={list(seeds)}: indices {bad} are out of range for a run of {n_seeds} seeds.")
        return list(seeds)
    raise TypeError(f"seeds must be True (every seed), False, a count or a list of seed indices; got {seeds!r}.")


def _check_band(band):
    if band is None:
        return None
    ok = isinstance(band, Sequence) and len(band) == 2 and all(isinstance(b, numbers.Real) for b in band)
    if not ok or not 0 <= band[0] < band[1] <= 100:
        raise ValueError(f"band must be None (no band) or two percentiles (lo, hi) with 0 <= lo < hi <= 100, "
                         f"e.g. (10, 90); got {band!r}.")
    return float(band[0]), float(band[1])


def _resolve_xscale(ts, xscale, logx):
    """The time axis scale: 'log', 'symlog' or 'linear' (see the module docstring)."""
    if xscale is not None and xscale not in _XSCALES:
        raise ValueError(f"xscale must be None (log, or symlog where t = 0 is saved), 'log', 'symlog' or "
                         f"'linear'; got {xscale!r}.")
    if logx is not None:
        if xscale is not None and (xscale == "linear") == bool(logx):
            raise ValueError(f"logx={logx} contradicts xscale={xscale!r}; give only xscale.")
        if not logx:
            return "linear"
    if xscale is not None:
        return xscale
    ts = np.concatenate([np.ravel(t) for t in ts])
    if not (ts > 0).any():
        return "linear"
    return "symlog" if (ts <= 0).any() else "log"


def _first_positive(ts) -> float:
    positive = np.concatenate([np.ravel(t)[np.ravel(t) > 0] for t in ts])
    return float(positive.min()) if positive.size else 1.0


def _time_locator(linthresh, subs=None):
    """Decade ticks of a symlog time axis, with none inside the linear range but 0
    (matplotlib's own puts 10^k < linthresh there, on top of the 0)."""
    from matplotlib.ticker import SymmetricalLogLocator

    class TimeLocator(SymmetricalLogLocator):
        def tick_values(self, vmin, vmax):
            ticks = np.asarray(super().tick_values(vmin, vmax))
            return ticks[(ticks == 0) | (np.abs(ticks) >= linthresh * (1 - 1e-9))]

    return TimeLocator(linthresh=linthresh, base=10, subs=subs)


def _set_xscale(ax, scale, linthresh):
    if scale == "symlog":
        # Linear on [0, linthresh] (the first save time: no span without data on the
        # log part), that range one decade wide; ticks at 0 and at decades above it.
        ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
        ax.xaxis.set_major_locator(_time_locator(linthresh))
        ax.xaxis.set_minor_locator(_time_locator(linthresh, subs=np.arange(2, 10)))
    else:
        ax.set_xscale(scale)
    ax.margins(x=0)  # time runs from the first save to the last, without padding


def _description(run, name) -> str:
    problem = getattr(run, "problem", None)
    describe = getattr(problem, "describe_observables", None)
    text = describe().get(name) if callable(describe) else None
    return text if isinstance(text, str) and text else name


def _xlabel(runs) -> str:
    kinds = {r.config.get("kind", "simulate") for r in runs}
    if kinds == {"train"}:
        return "t = step × dt"
    if "train" in kinds:
        return "t (flow time; step × dt for discrete runs)"
    return "t (flow time)"


def _legend(ax, where):
    if where is None or where is False:
        return
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) < 2 and not any(labels):
        return
    if where == "outside":
        ncol = max(1, math.ceil(len(handles) / 20))
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", ncol=ncol,
                  frameon=False)
    elif where == "inside":
        ax.legend(fontsize="small")
    else:
        raise ValueError(f"legend must be 'outside' (right of the axes), 'inside' or None; got {where!r}.")


def observable(
    run, name, *, ax=None, component=None, label=None, color=None, linestyle=None, band=(10, 90), band_alpha=None,
    seeds=False, median=True, xscale=None, logx=None, linthresh=None, logy=False, change=False, legend="outside",
):
    """Median over seeds of `run.obs[name]` against time, with a percentile band.

    Seeds that failed contribute their values up to the failure (NaN after).

    **Arguments:**

    - `run`: a `gradflow.Run`.
    - `name`: the observable's key in `run.obs`.
    - `ax`: the matplotlib axes to draw on (default: a new figure).
    - `component`: which components of a vector or matrix observable to draw:
      None for all, a flat index (`3`), an index tuple (`(0, 1)`, one index per
      axis of the observable), or a list of those. Lines are labelled by index
      tuple, `R[0, 1]`.
    - `label`: the legend label (prefixed to the component's label when there
      are several).
    - `color`, `linestyle`: of the lines (`color` applies to a single line).
      More than 10 lines never repeat a (colour, style) pair.
    - `band`: the percentiles (lo, hi) of the shaded band over seeds, or None
      for no band.
    - `band_alpha`: the bands' opacity (default: 0.2 for up to 3 lines, less
      for more, so that overlapping bands stay readable).
    - `seeds`: individual seeds as thin translucent lines: True for every seed,
      a count for the first ones, or a list of seed indices (up to 3 seeds
      drawn without the median are full lines).
    - `median`: draw the median line (False with `seeds` to draw only seeds).
    - `xscale`: the time axis, `"log"` (drops t <= 0), `"symlog"` (linear on
      [0, `linthresh`], logarithmic above), `"linear"`, or None: log, or
      symlog where the run saved t = 0.
    - `logx`: the older switch: False is `xscale="linear"`, True the default.
    - `linthresh`: the linear range of a symlog axis (default: the first
      positive save time).
    - `logy`: a log y axis.
    - `change`: plot each seed's change from its value at t = 0 (useful when
      the spread of initial values hides the dynamics).
    - `legend`: `"outside"` (right of the axes), `"inside"` (matplotlib's best
      place) or None.

    **Returns:** `ax`.
    """
    ax = _axes(ax)
    band = _check_band(band)
    shape, indices = _components(run, name, component)
    seed_idx = _seed_indices(seeds, run.n_seeds)
    if not median and not seed_idx:
        raise ValueError("median=False draws nothing without `seeds`; give seeds=True (or a count) too.")
    t = np.asarray(run.ts)
    scale = _resolve_xscale([t], xscale, logx)
    keep = t > 0 if scale == "log" else np.ones(t.shape, dtype=bool)
    values = np.asarray(run.obs[name])
    # One line takes `color` or the axes' next colour (so that calls drawing one
    # component each on the same axes differ); several take `_line_styles`.
    styles = _line_styles(shape, indices, linestyle) if len(indices) > 1 else [(color, linestyle or "-")]
    # Seeds beside the median are thin and translucent; a few seeds on their own are full lines.
    width, opacity = (0.6, 0.4) if median or len(seed_idx) > 3 else (1.4, 0.9)
    alpha = band_alpha if band_alpha is not None else (0.2 if len(indices) <= 3 else max(0.05, 0.6 / len(indices)))
    for index, (c, style) in zip(indices, styles):
        y = values[(slice(None), slice(None), *index)]
        if change:
            y = y - y[:, :1]
        y = y[:, keep]
        key = _key(name, index)
        text = label if label is not None and len(indices) == 1 else (f"{label} {key}" if label else key)
        if median:
            with warnings.catch_warnings():  # all-NaN columns after every seed stopped
                warnings.simplefilter("ignore", RuntimeWarning)
                (line,) = ax.plot(t[keep], np.nanmedian(y, axis=0), color=c, linestyle=style, linewidth=1.6,
                                  label=text)
            c = line.get_color()
            if band is not None and y.shape[0] > 1:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanpercentile(y, band, axis=0)
                ax.fill_between(t[keep], lo, hi, color=c, alpha=alpha, linewidth=0)
        for j, s in enumerate(seed_idx):
            (line,) = ax.plot(t[keep], y[s], color=c, linestyle=style, linewidth=width, alpha=opacity,
                              label=text if (j == 0 and not median) else None)
            c = line.get_color()
    _set_xscale(ax, scale, linthresh or _first_positive([t]))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(_xlabel([run]))
    desc = _description(run, name)
    ax.set_ylabel(f"{desc} − its value at t = 0" if change else desc)
    if len(indices) > 1 or label:
        _legend(ax, legend)
    return ax


def loss(run, *, ax=None, **kwargs):
    """The loss against time (log y where it is positive), median and band over seeds.

    **Arguments:** `run`, `ax`, and any keyword of `observable`.

    **Returns:** `ax`.
    """
    kwargs.setdefault("logy", bool(np.nanmin(run.obs["loss"]) > 0))
    ax = observable(run, "loss", ax=ax, **kwargs)
    band = _check_band(kwargs.get("band", (10, 90)))
    spread = f", {band[0]:g}–{band[1]:g}%" if band is not None and run.n_seeds > 1 else ""
    ax.set_title(f"loss over {run.n_seeds} seed{'s' if run.n_seeds > 1 else ''} (median{spread})")
    return ax


def compare(runs, name="loss", *, labels=None, ax=None, component=None, linestyles=None, colors=None,
            band_alpha=None, legend="outside", **kwargs):
    """Overlay the same observable from several runs (e.g. a flow and `train`).

    Each run has its own line style (solid, dashed, dotted, dash-dot), so
    lines that coincide stay visible; a scalar observable also takes a colour
    per run, and the components of a vector or matrix one keep their colour
    across runs (the legend then lists runs by style and components by colour).

    **Arguments:**

    - `runs`: a list of `Run`s.
    - `name`: the observable.
    - `labels`: one legend label per run (default: each run's kind).
    - `ax`: the axes to draw on (default: a new figure).
    - `component`: as in `observable`.
    - `linestyles`: one line style per run (default: solid, dashed, dotted,
      dash-dot, repeating).
    - `colors`: one colour per run, for a single component (default: the
      colour cycle).
    - `band_alpha`: the bands' opacity (default: 0.12 for one component, low so
      that the runs' overlapping bands stay readable; less for more components).
    - `legend`: as in `observable`.
    - any other keyword of `observable` (`band`, `seeds`, `xscale`, `logy`, ...).

    **Returns:** `ax`.
    """
    from matplotlib.lines import Line2D

    runs = list(runs)
    if not runs:
        raise ValueError("compare: `runs` is empty; give at least one Run.")
    labels = list(labels) if labels is not None else [r.config.get("kind", f"run {i}") for i, r in enumerate(runs)]
    if len(labels) != len(runs):
        raise ValueError(f"compare: {len(labels)} labels for {len(runs)} runs; give one label per run.")
    linestyles = list(linestyles) if linestyles is not None else [_STYLES[i % 4] for i in range(len(runs))]
    if len(linestyles) != len(runs):
        raise ValueError(f"compare: {len(linestyles)} linestyles for {len(runs)} runs; give one per run.")
    ax = _axes(ax)
    xscale = _resolve_xscale([r.ts for r in runs], kwargs.pop("xscale", None), kwargs.pop("logx", None))
    kwargs.setdefault("linthresh", _first_positive([r.ts for r in runs]))
    if "color" in kwargs:
        raise TypeError("compare: give `colors=` (one colour per run), not `color=`.")
    shape, indices = _components(runs[0], name, component)
    single = len(indices) == 1
    colors = list(colors) if colors is not None else [f"C{i % 10}" for i in range(len(runs))]
    if len(colors) != len(runs):
        raise ValueError(f"compare: {len(colors)} colors for {len(runs)} runs; give one per run.")
    for run, label, style, color in zip(runs, labels, linestyles, colors):
        alpha = band_alpha if band_alpha is not None or not single else 0.12
        observable(run, name, ax=ax, component=component, label=label, linestyle=style, band_alpha=alpha,
                   xscale=xscale, legend=None, color=color if single else None, **kwargs)
    ax.set_xlabel(_xlabel(runs))
    if not single and legend is not None:  # runs by style, components by colour
        handles = [Line2D([], [], color="k", linestyle=s, label=lab) for lab, s in zip(labels, linestyles)]
        handles += [Line2D([], [], color=c, linestyle=s, label=_key(name, index))
                    for index, (c, s) in zip(indices, _line_styles(shape, indices, "-"))]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize="small", frameon=False, ncol=max(1, math.ceil(len(handles) / 20)))
    else:
        _legend(ax, legend)
    return ax


def save_figures(run, directory, *, max_figures=8) -> list[Path]:
    """Write `loss.png` and one figure per other small observable (at most 16
    components) into `directory`.

    A scalar observable is drawn as median and 10–90% band over seeds; a vector
    or matrix one for seed 0 alone, since the same component of different seeds
    need not mean the same thing (seeds may draw their own data, and hidden
    units may pair up differently).

    **Arguments:**

    - `run`: a `gradflow.Run`.
    - `directory`: where to write the PNGs (created if missing).
    - `max_figures`: the most figures to write, `loss.png` included (default 8).

    **Returns:** the paths written.
    """
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    ax = loss(run)
    paths.append(directory / "loss.png")
    ax.figure.savefig(paths[-1], dpi=110)
    plt.close(ax.figure)
    # `sharpness` (added by gradflow.Sharpness / `--observe`) is drawn first: it was asked for by name.
    for name in sorted(run.obs, key=lambda n: n != "sharpness"):
        values = run.obs[name]
        if name == "loss" or len(paths) >= max_figures or values[0, 0].size > 16:
            continue
        if values[0, 0].size > 1:
            ax = observable(run, name, seeds=[0], median=False, band=None)
            ax.set_title(f"seed 0 of {run.n_seeds}")
        else:
            ax = observable(run, name)
        paths.append(directory / f"{name}.png")
        ax.figure.savefig(paths[-1], dpi=110)
        plt.close(ax.figure)
    return paths


def _finite(value) -> bool:
    try:
        return value is not None and bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def work_precision(table, *, error="param error", axes=None, title=None):
    """A work-precision diagram of a `gradflow.accuracy.work_precision` table.

    `error` against gradient evaluations (left) and against warm wall time
    (right: the median of the table's timed runs, with a bar from the fastest to
    the slowest), log–log, one colour per solver (setup) and, where the table
    has a `precision` column, one line style per precision (float64 solid,
    float32 dashed). The y axis names the error measure (`table.meta["error"]`).
    Failed runs (no error) are left out.

    **Arguments:**

    - `table`: a `gradflow.accuracy.Table` from `work_precision`.
    - `error`: the column to plot as the error (default "param error").
    - `axes`: two matplotlib axes to draw on (default: a new figure).
    - `title`: the figure's title (default: the table's title).

    **Returns:** the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.2), constrained_layout=True)
    else:
        fig = axes[0].figure
    rows = [r for r in table.rows if _finite(r.get(error)) and float(r[error]) > 0]
    name = lambda r: r.get("setup", r["solver"])  # noqa: E731
    solvers = list(dict.fromkeys(name(r) for r in rows))
    precisions = list(dict.fromkeys(r["precision"] for r in rows if "precision" in r))
    styles = {p: ("--" if "32" in p else "-") for p in precisions}
    if len(set(styles.values())) < len(styles):  # other precisions than float32/float64
        styles = {p: _STYLES[i % len(_STYLES)] for i, p in enumerate(precisions)}
    colours = [c for c, _ in _line_styles((len(solvers),), [(i,) for i in range(len(solvers))], "-")]
    for colour, solver in zip(colours, solvers):
        for precision in precisions or [None]:
            sel = [r for r in rows if name(r) == solver and r.get("precision") == precision]
            if not sel:
                continue
            y = [float(r[error]) for r in sel]
            style = styles.get(precision, "-")
            axes[0].loglog([float(r["gradient evaluations"]) for r in sel], y, style, marker="o", markersize=4,
                           color=colour)
            wall = np.array([float(r["wall s"]) for r in sel])
            if all(_finite(r.get("wall s min")) and _finite(r.get("wall s max")) for r in sel):
                spread = [wall - [float(r["wall s min"]) for r in sel], [float(r["wall s max"]) for r in sel] - wall]
            else:  # a table from before repeated timings
                spread = None
            axes[1].errorbar(wall, y, xerr=spread, fmt=style, marker="o", markersize=4, color=colour, capsize=2,
                             elinewidth=0.8)
            axes[1].set_xscale("log")
            axes[1].set_yscale("log")
    measure = table.meta.get("error")
    ylabel = f"{error}\n({measure})" if measure else error
    numruns = table.meta.get("numruns")
    timing = f"warm wall time (s; median of {numruns}, min–max)" if numruns else "wall time (s, compile excluded)"
    for ax, x in zip(axes, ("gradient evaluations per seed", timing)):
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels on a narrow log range overlapped
    handles = [Line2D([], [], color=c, marker="o", markersize=4, label=s) for c, s in zip(colours, solvers)]
    if len(precisions) > 1:
        handles += [Line2D([], [], color="k", linestyle=styles[p], label=p) for p in precisions]
    if handles:
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                        fontsize="small", frameon=False)
    fig.suptitle(title or table.title)
    return fig


def error_profile(runs, reference, *, name="params", scale="relative", labels=None, ax=None):
    """The error against the reference at each save time: one line per run
    (max over seeds), log y. Where a final-time number hides the error made on
    the way (a flow contracting to its minimiser), this shows when it was made.

    **Arguments:**

    - `runs`: runs of `gradflow.accuracy.TrackParams(problem)` (which save the
      parameters as the observable "params"), or any runs with observable `name`.
    - `reference`: a `gradflow.accuracy.Reference` (or its run) on the same grid.
    - `name`: "params" or an observable; `scale`: "relative" (at each time) or
      "absolute".
    - `labels`: one legend label per run (default: "run 0", "run 1", ...).
    - `ax`: the axes to draw on (default: a new figure).

    **Returns:** `ax`.
    """
    from .accuracy import pointwise_error

    ref = getattr(reference, "run", reference)
    if name not in ref.obs:
        raise KeyError(f"the reference has no observable {name!r}; it has {sorted(ref.obs)}.")
    ax = _axes(ax)
    labels = labels or [f"run {i}" for i in range(len(runs))]
    if len(labels) != len(runs):
        raise ValueError(f"`labels` has {len(labels)} entries for {len(runs)} runs.")
    for (colour, style), run, label in zip(_line_styles((len(runs),), [(i,) for i in range(len(runs))]), runs,
                                           labels):
        if name not in run.obs:
            raise KeyError(f"run {label!r} has no observable {name!r}: simulate gradflow.accuracy.TrackParams(problem) "
                           "to save the parameters.")
        per_time = pointwise_error(run.obs[name], ref.obs[name], scale=scale)
        ax.semilogy(run.ts, np.max(per_time, axis=0), linestyle=style, color=colour, marker=".", label=label)
    ax.set_xlabel(_xlabel(runs))
    ax.set_ylabel(f"{scale} error of {name} (max over seeds)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, "outside")
    return ax
