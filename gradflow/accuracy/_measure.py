"""Work-precision, convergence order, the flow–optimiser gap and invariant drift."""

import math
from collections import Counter

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from tqdm import tqdm

from .._config import environment, module_config
from .._devices import keys_from_record, seeds_to_keys
from .._flows import AbstractFlow, GradientFlow
from .._grids import AbstractGrid, LinearGrid, _check_t1
from .._optim import Optimizer
from .._simulate import check_problem, simulate
from .._train import train
from ._errors import TrackParams, check_measure, describe, minimiser_distance, trajectory_error
from ._reference import Reference, param_error, reference
from ._table import Table


def _name(solver) -> str:
    return type(solver).__name__


def _is_adaptive(solver) -> bool:
    return isinstance(solver, dfx.AbstractAdaptiveSolver)


def _positive_list(name, values):
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a list of numbers; got {values!r}.") from None
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):
        raise ValueError(f"`{name}` must be a non-empty list of finite numbers > 0; got {values!r}.")
    return values


def _check_divides(t1, steps, message):
    """Each step must divide t1 (a whole number of steps ends exactly at t1)."""
    for h in steps:
        if abs(t1 / h - round(t1 / h)) > 1e-9 * t1 / h:
            raise ValueError(message.format(h=h, t1=t1))


def _get_reference(problem, flow, t1, seeds, save, ref, *, final_only=False):
    if ref is None:
        return reference(problem, flow, t1=t1, seeds=seeds, save=save)
    if not isinstance(ref, Reference):
        raise TypeError(f"`reference` must be a gradflow.accuracy.Reference; got {type(ref).__name__}.")
    if final_only:  # only the state at t1 is compared
        if not np.isclose(ref.run.ts[-1], t1):
            raise ValueError(f"`reference` ends at t = {ref.run.ts[-1]:g}, not at t1 = {t1:g}.")
    else:
        times = save.times(t1)
        if ref.run.ts.shape != times.shape or not np.allclose(ref.run.ts, times):
            raise ValueError(f"`reference` was saved at {len(ref.run.ts)} times ending at {ref.run.ts[-1]:g}; `save` "
                             f"gives {len(times)} ending at {times[-1]:g} for t1 = {t1:g}: build the reference with "
                             "the same grid and t1.")
    if "params" in ref.run.obs and np.asarray(ref.run.obs["params"]).dtype != np.float64:
        raise ValueError("`reference` was computed in float32: a reference must be float64 (build it with "
                         "jax_enable_x64 on; a float32 study is then measured against it).")
    if "params" not in ref.run.obs:
        raise ValueError("`reference` has no parameters saved over time: build it with gradflow.accuracy.reference, "
                         "which saves them.")
    return ref


_GROWTH = 1e3  # a run whose ‖θ(t)‖ exceeds this multiple of the reference's largest is unstable
_NEAR_REFERENCE = 10.0  # errors within this factor of the reference's own accuracy are not resolved


def _check_number(name, value, *, low=0.0, high=math.inf, integer=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and low < value < high and (not integer or float(value).is_integer())
    if not ok:
        kind = "an integer" if integer else "a finite number"
        bound = f"> {low:g}" + (f" and < {high:g}" if math.isfinite(high) else "")
        raise ValueError(f"`{name}` must be {kind} {bound}; got {value!r}.")
    return int(value) if integer else float(value)


def _failures(run, ref) -> tuple[np.ndarray, str]:
    """Per-seed failure mask and the reasons, grouped: the run's own status
    (max_steps, non-finite, step collapse) and instability that a fixed-step
    solver does not report (‖θ(t)‖ beyond `_GROWTH` × the reference's largest)."""
    failed = ~run.ok
    reasons = [m for m, f in zip(run.messages, failed) if f]
    params = np.asarray(run.obs["params"], dtype=float)
    size = np.linalg.norm(np.nan_to_num(params, nan=0.0, posinf=np.inf), axis=2).max(axis=1)
    bound = _GROWTH * np.linalg.norm(np.asarray(ref.obs["params"], dtype=float), axis=2).max(axis=1)
    unstable = ~failed & ~(size <= bound)
    counts = Counter(reasons)
    if unstable.any():
        counts[f"unstable: ‖θ(t)‖ reached up to {np.max(size[unstable]):.2g} (> {_GROWTH:g}× the reference's "
               "largest)"] = int(unstable.sum())
    return failed | unstable, "; ".join(f"{n}× {r}" if n > 1 else r for r, n in counts.items())


def _errors(run, ref, problem, measure, scale, norm, distance):
    """{column: per-seed errors}: the parameters and every observable."""
    out = {}
    for name in run.obs:
        is_params = name == "params"
        use = scale if (is_params or scale != "minimiser") else "relative"  # θ* is about parameters
        out["param error" if is_params else f"{name} error"] = trajectory_error(
            run.obs[name], ref.obs[name], measure=measure, scale=use, norm=norm,
            distance=distance if is_params else None)
    return out


def _timed(call, numruns):
    """The first call (compile and warm-up, reported as cold) and `numruns` warm
    calls: (first run, cold s, compile s, warm wall times)."""
    first = call()
    walls = [float(call().stats["wall_time"]) for _ in range(numruns)]
    return first, float(first.stats["wall_time"]) + float(first.stats["compile_time"]), \
        float(first.stats["compile_time"]), np.asarray(walls)


def _setups(solvers, setups):
    """Named setups (DiffEqDevTools' `setups`): each a solver with its own
    controller template and options."""
    out = [{"name": type(s).__name__, "solver": s} for s in (solvers or [])]
    for setup in setups or []:
        if not isinstance(setup, dict) or "solver" not in setup:
            raise ValueError("each of `setups` must be a dict with at least 'solver', and optionally 'name', "
                             "'controller' (a PIDController template: its rtol/atol are replaced per tolerance) "
                             f"and 'step_aligned'; got {setup!r}.")
        unknown = sorted(set(setup) - {"name", "solver", "controller", "step_aligned"})
        if unknown:
            raise ValueError(f"`setups` entry {setup.get('name', '?')!r} has unknown keys {unknown}.")
        out.append({"name": setup.get("name", type(setup["solver"]).__name__), **setup})
    if not out:
        raise ValueError("give `solvers` (a list of diffrax solvers) or `setups` (a list of dicts).")
    for setup in out:
        if not isinstance(setup["solver"], dfx.AbstractSolver):
            raise TypeError(f"setup {setup['name']!r}: the solver must be a diffrax solver such as diffrax.Tsit5(); "
                            f"got {type(setup['solver']).__name__}.")
        ctrl = setup.get("controller")
        if ctrl is not None and not isinstance(ctrl, dfx.PIDController):
            raise TypeError(f"setup {setup['name']!r}: 'controller' must be a diffrax.PIDController template; got "
                            f"{type(ctrl).__name__}.")
    names = [s["name"] for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"setup names must be distinct; got {names}.")
    return out


def _preflight_memory(problem, flow, setups, seeds):
    """Refuse, before solving, an implicit solver whose dense Jacobians would not
    fit: diffrax's implicit solvers form the full Jacobian of the state (n², in
    the state's precision) and factor it, about three such matrices per seed."""
    implicit = [s["name"] for s in setups if isinstance(s["solver"], dfx.AbstractImplicitSolver)]
    if not implicit:
        return
    _, params = check_problem(problem, flow)
    n = sum(int(np.prod(x.shape)) for x in jtu.tree_leaves(params))
    n_state = n * (3 if type(flow).__name__ == "AdamFlow" else 1)
    itemsize = 8 if jax.config.jax_enable_x64 else 4
    need = 3 * n_state**2 * itemsize * (seeds if jax.default_backend() != "cpu" else 1)
    have = _memory_available()
    if have is not None and need > 0.5 * have:
        raise MemoryError(
            f"{', '.join(implicit)} would form dense {n_state:,} × {n_state:,} Jacobians: about {need / 2**30:.1f} GiB, "
            f"more than half of the {have / 2**30:.1f} GiB available. Use an explicit solver (Tsit5, Dopri8) for "
            "this problem, or a smaller problem for the implicit one.")


def _memory_available():
    device = jax.devices()[0]
    try:
        stats = device.memory_stats()
        if stats and "bytes_limit" in stats:
            return stats["bytes_limit"]
    except Exception:  # noqa: BLE001 - a backend without memory stats
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def work_precision(problem, flow: AbstractFlow = GradientFlow(), *, solvers=None, setups=None,
                   tolerances=(1e-3, 1e-4, 1e-5, 1e-6), step_sizes=None, t1, seeds=1,
                   save: AbstractGrid = LinearGrid(n=21), reference=None, measure: str = "linf",
                   scale: str = "relative", norm: str = "l2", atol_ratio: float = 1e-2, max_steps: int = 200_000,
                   numruns: int = 5, progress: bool = False) -> Table:
    """Error against a reference, and its cost, for each setup × tolerance.

    **Arguments:**

    - `solvers`: diffrax solvers, each a setup named by its class; and/or
      `setups`: dicts (as DiffEqDevTools' setups) with "solver", optional
      "name", "controller" (a `diffrax.PIDController` template: its PID
      coefficients, `dtmax` … are kept and its rtol/atol set per tolerance) and
      "step_aligned" (True: steps end on every save time, `step_ts`, so the
      observables carry no dense-output interpolation error).
    - `tolerances`: rtols in (0, 1) for adaptive setups (atol = rtol·`atol_ratio`);
      `step_sizes`: fixed steps for solvers without an error estimate.
    - `measure`, `scale`, `norm`: the error measure (see
      `gradflow.accuracy.trajectory_error`): by default the max over the save
      times of the relative 2-norm error, so a flow contracting to its
      minimiser cannot hide an error made along the way. Observables saved
      between steps include the solver's interpolation error unless the setup
      is step aligned.
    - `numruns`: warm timed runs per row after the first (compiling) call.
    - `problem`, `flow`, `t1`, `seeds`, `save`, `max_steps`, `progress`: as for
      `gradflow.simulate`; `reference`: a `Reference` to measure against
      (default: `reference(problem, flow, ...)` on the same save times).

    **Returns:**

    A `Table` with one row per run, with per-seed errors reduced to the max and the median
    over seeds, mean steps, rejected steps and gradient evaluations per seed,
    warm wall time (median, min and max of `numruns`; per seed too), the cold
    first call (compile included) and the compile alone, failed seeds and
    their reasons (status, or a fixed-step run whose parameters grew beyond
    1000× the reference's), and a note where an error is within 10× of the
    reference's own accuracy. A row with a failed seed has no error (NaN).
    """
    t1 = _check_t1(t1)
    check_measure(measure, scale, norm)
    inner = problem.inner if isinstance(problem, TrackParams) else problem
    if scale == "minimiser" and not hasattr(inner, "minimiser"):
        raise ValueError(f"scale='minimiser': {type(inner).__name__} has no `minimiser(data)` (the problem must "
                         "know its minimiser θ*); use scale='relative'.")
    tolerances = _positive_list("tolerances", tolerances)
    for rtol in tolerances:
        _check_number("tolerances", rtol, high=1.0)
        if jax.config.jax_enable_x64 and rtol < 100 * np.finfo(np.float64).eps:
            raise ValueError(f"`tolerances` holds {rtol:g}, below 100 × float64's machine epsilon "
                             f"({100 * np.finfo(np.float64).eps:.1e}): no solver can meet it (the steps would "
                             "shrink until max_steps).")
    _check_number("atol_ratio", atol_ratio)
    numruns = _check_number("numruns", numruns, low=0.5, integer=True)
    max_steps = _check_number("max_steps", max_steps, low=0.5, integer=True)
    setups = _setups(solvers, setups)
    fixed = [s for s in setups if not _is_adaptive(s["solver"])]
    if fixed and step_sizes is None:
        raise ValueError(f"{', '.join(s['name'] for s in fixed)} have no error estimate: give `step_sizes` for them.")
    if step_sizes is not None:
        step_sizes = _positive_list("step_sizes", step_sizes)
    _preflight_memory(problem, flow, setups, seeds_to_keys(seeds)[0].shape[0])
    tracked = problem if isinstance(problem, TrackParams) else TrackParams(problem)
    ref = _get_reference(tracked, flow, t1, seeds, save, reference)
    distance = minimiser_distance(tracked, ref.run, norm) if scale == "minimiser" else None
    ref_accuracy = ref.accuracy
    jobs = [(s, "rtol", r) for s in setups if _is_adaptive(s["solver"]) for r in tolerances]
    jobs += [(s, "dt", h) for s in fixed for h in step_sizes]
    rows = []
    for setup, kind, value in tqdm(jobs, desc="work-precision", disable=not progress):
        row = {"setup": setup["name"], "solver": type(setup["solver"]).__name__,
               "rtol": value if kind == "rtol" else np.nan, "dt": value if kind == "dt" else np.nan}
        if kind == "rtol":
            template = setup.get("controller") or dfx.PIDController(rtol=1.0, atol=1.0)
            ctrl, dt0 = eqx.tree_at(lambda c: (c.rtol, c.atol), template, (value, value * atol_ratio)), None
            if setup.get("step_aligned"):  # a step ends on every save time: no interpolation
                ctrl = dfx.ClipStepSizeController(ctrl, step_ts=jnp.asarray(save.times(t1)))
        else:
            ctrl, dt0 = dfx.ConstantStepSize(), value
            if t1 / value > max_steps:
                rows.append({**row, "failed": -1, "reason": f"skipped: t1/dt = {t1 / value:.3g} steps > max_steps"})
                continue

        def call(solver=setup["solver"], ctrl=ctrl, dt0=dt0):
            return simulate(tracked, flow, t1=t1, seeds=seeds, save=save, solver=solver, stepsize_controller=ctrl,
                            dt0=dt0, max_steps=max_steps)

        run, cold, compile_s, walls = _timed(call, numruns)
        failed, reason = _failures(run, ref.run)
        for column, errors in _errors(run, ref.run, tracked, measure, scale, norm, distance).items():
            row[column] = np.nan if failed.any() else float(np.max(errors))
            row[f"{column} median"] = np.nan if failed.any() else float(np.median(errors))
        row.update({
            "steps": float(np.mean(run.stats["steps"])),
            "rejected": float(np.mean(run.stats["rejected"])),
            "gradient evaluations": float(np.mean(run.stats["gradient_evaluations"])),
            "wall s": float(np.median(walls)), "wall s min": float(walls.min()), "wall s max": float(walls.max()),
            "wall s per seed": float(np.median(walls)) / run.n_seeds,
            "cold s": cold, "compile s": compile_s,
            "failed": int(failed.sum()), "reason": reason,
        })
        if ref_accuracy > 0 and row["param error"] < _NEAR_REFERENCE * ref_accuracy:
            row["note"] = f"within {_NEAR_REFERENCE:g}× of the reference's accuracy ({ref_accuracy:.1e}): not resolved"
        rows.append(row)
    meta = _study_meta(problem, flow, ref, t1, seeds, save, measure, scale, norm)
    meta.update({"tolerances": tolerances, "atol ratio": atol_ratio, "step sizes": step_sizes, "numruns": numruns,
                 "max steps": max_steps, "setups": [{k: (v if k in ("name", "step_aligned") else repr(v))
                                                     for k, v in s.items()} for s in setups]})
    near = [r for r in rows if "note" in r]
    if near:
        meta["warning"] = (f"{len(near)} row(s) are within {_NEAR_REFERENCE:g}× of the reference's accuracy "
                           f"({ref_accuracy:.1e}): tighten the reference before reading them.")
    return Table(f"work-precision: {type(problem).__name__}, t1 = {t1:g} ({describe(measure, scale, norm)})",
                 rows, meta)


def _study_meta(problem, flow, ref, t1, seeds, save, measure, scale, norm) -> dict:
    """What a saved study must say about itself: problem, flow, seeds, grid,
    measure, reference, precision, versions and machine."""
    return {"reference": str(ref), "reference verified": ref.verified, "reference accuracy": ref.accuracy,
            "t1": t1, "seeds": seeds_to_keys(seeds)[1], "save": module_config(save),
            "measure": measure, "scale": scale, "norm": norm, "error": describe(measure, scale, norm),
            "problem": module_config(problem), "flow": flow.config(),
            "precision": "float64" if jax.config.jax_enable_x64 else "float32",
            "environment": environment(), "machine": _machine()}


def _machine() -> dict:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "devices": [d.device_kind for d in jax.devices()]}


_FLOOR = 100 * np.finfo(np.float64).eps  # relative errors below this are round-off, not the method's


def fit_order(step_sizes, errors, *, floor: float = 0.0) -> dict:
    """The slope of log(error) against log(step): the order.

    **Arguments:**

    - `step_sizes`: the step sizes h.
    - `errors`: the error e at each step size.
    - `floor`: points whose error is below it (round-off, or a margin above the
      reference's own accuracy) or not finite are excluded (default 0).

    **Returns:**

    A dict: "order" (the least-squares slope over the points kept; NaN with
    fewer than 2), "stderr" and "ci95" (its standard error and 95% interval,
    from 3 points on; the interval uses Student's t with n − 2 degrees of
    freedom, "t quantile": 1.96 is the large-n limit, at 3 points the factor is
    12.7), "points" (how many were kept), "local" (the order between each pair
    of consecutive points, log(e_i/e_{i+1}) / log(h_i/h_{i+1})) and "excluded"
    (the points left out, and why).
    """
    from scipy import stats

    h, e = np.asarray(step_sizes, float), np.asarray(errors, float)
    order = np.argsort(h)[::-1]
    h, e = h[order], e[order]
    keep = np.isfinite(e) & (e > max(floor, 0.0))
    excluded = [{"step": float(x), "error": float(y), "why": "not finite" if not np.isfinite(y) else
                 f"below the floor {floor:.1e}"} for x, y, k in zip(h, e, keep) if not k]
    h, e = h[keep], e[keep]
    local = [float(np.log(e[i] / e[i + 1]) / np.log(h[i] / h[i + 1])) for i in range(len(h) - 1)]
    out = {"order": np.nan, "stderr": np.nan, "ci95": (np.nan, np.nan), "points": int(len(h)), "local": local,
           "excluded": excluded}
    if len(h) < 2:
        return out
    x, y = np.log(h), np.log(e)
    if len(h) == 2:
        out["order"] = float((y[0] - y[1]) / (x[0] - x[1]))
        return out
    coeffs = np.polyfit(x, y, 1)
    slope, resid = coeffs[0], y - np.polyval(coeffs, x)
    dof = len(h) - 2
    se = float(np.sqrt(np.sum(resid**2) / dof / np.sum((x - x.mean()) ** 2)))
    q = float(stats.t.ppf(0.975, dof))
    out.update({"order": float(slope), "stderr": se, "ci95": (float(slope - q * se), float(slope + q * se)),
                "t quantile": q})
    return out


def _aligned_grid(step_counts) -> LinearGrid:
    """The linear grid with the most intervals (≤ 20) that divide every step count."""
    common = math.gcd(*step_counts)
    return LinearGrid(n=1 + max(d for d in range(1, 21) if common % d == 0))


def convergence_order(problem, solver, step_sizes, *, t1, seeds=1, flow: AbstractFlow = GradientFlow(),
                      reference=None, measure: str = "linf", norm: str = "l2", save: AbstractGrid | None = None,
                      floor_margin: float = 10.0) -> Table:
    """The order of a fixed-step `solver`: its error against the reference at
    each of `step_sizes` (each must divide `t1`), and the fitted slope of
    log(error) against log(step) (see `fit_order`).

    The error is `measure` over the save times (default: the max, so the
    contraction of a gradient flow cannot hide the error made on the way; the
    save times should be whole multiples of every step, as the
    default grid is: up to 21 equally spaced times, each a whole number of
    every step, so no error of the solver's interpolation enters). Points within `floor_margin` × the
    floor — float64 round-off (100 ε) or the reference's own accuracy, the
    larger — are excluded and reported in `table.meta["excluded"]`; the local
    orders between consecutive steps are in each row.

    **Arguments:**

    - `problem`, `flow`, `t1`, `seeds`: as for `gradflow.simulate`.
    - `solver`: a fixed-step diffrax solver; `step_sizes`: the ladder of steps.
    - `reference`: a `Reference` to reuse; `measure`, `norm`: the error measure
      (see `trajectory_error`); `save`: the save times (default: as above).
    - `floor_margin`: how far above the error floor a point must be to count.

    **Returns:**

    A `Table` with one row per step size (error, local order); the fitted order in
    `table.meta["order"]` and its 95% interval in `table.meta["ci95"]`."""
    t1 = _check_t1(t1)
    check_measure(measure, "relative", norm)
    step_sizes = _positive_list("step_sizes", step_sizes)
    if len(step_sizes) < 2:
        raise ValueError("`step_sizes` needs at least two steps to fit an order (three for a confidence interval).")
    _check_number("floor_margin", floor_margin)
    _check_divides(t1, step_sizes, "step size {h:g} does not divide t1 = {t1:g}; choose t1/n.")
    if save is None:
        save = _aligned_grid([int(round(t1 / h)) for h in step_sizes])
    tracked = problem if isinstance(problem, TrackParams) else TrackParams(problem)
    ref = _get_reference(tracked, flow, t1, seeds, save, reference)
    rows = []
    max_steps = int(round(t1 / min(step_sizes))) + 10  # one bound for the ladder: one compile (dt0 is runtime)
    for h in step_sizes:
        run = simulate(tracked, flow, t1=t1, seeds=seeds, save=save, solver=solver,
                       stepsize_controller=dfx.ConstantStepSize(), dt0=h, max_steps=max_steps)
        failed, reason = _failures(run, ref.run)
        errors = trajectory_error(run.obs["params"], ref.run.obs["params"], measure=measure, norm=norm)
        rows.append({"solver": _name(solver), "dt": h, "steps": int(round(t1 / h)),
                     "param error": np.nan if failed.any() else float(np.max(errors)),
                     "param error median": np.nan if failed.any() else float(np.median(errors)),
                     "failed": int(failed.sum()), "reason": reason})
    rows.sort(key=lambda r: -r["dt"])
    floor = floor_margin * max(_FLOOR, ref.accuracy)
    fit = fit_order([r["dt"] for r in rows], [r["param error"] for r in rows], floor=floor)
    kept = [r for r in rows if np.isfinite(r["param error"]) and r["param error"] > floor]
    for r, local in zip(kept[1:], fit["local"]):
        r["local order"] = local
    meta = {**_study_meta(problem, flow, ref, t1, seeds, save, measure, "relative", norm), **fit, "floor": floor}
    if fit["excluded"]:
        meta["note"] = (f"{len(fit['excluded'])} point(s) excluded: at or below {floor:.1e} ({floor_margin:g}× "
                        "round-off or the reference's accuracy), where the slope is no longer the method's.")
    ci = fit["ci95"]
    return Table(f"convergence order of {_name(solver)}: {fit['order']:.2f} (95% CI [{ci[0]:.2f}, {ci[1]:.2f}], "
                 f"{fit['points']} points; {describe(measure, 'relative', norm)})", rows, meta)


def flow_gap(problem, optimizer_factory, learning_rates, *, flow=GradientFlow(), t1, seeds=1,
             reference=None, norm: str = "l2") -> Table:
    """The distance between an optimiser and the flow it approximates.

    For each η in `learning_rates`, `train(problem, optimizer_factory(η),
    steps=t1/η, dt=η)` (so t = kη; t1/η must be a whole number) against the
    reference of `flow` at t1: the relative distance of the final parameters
    and the loss gap at t1. `table.meta["order"]` is the fitted exponent of the
    parameter gap in η (GD → gradient flow, SignGD → sign flow, Adam with
    `gradflow.adam_for_flow` → `AdamFlow`: all 1).

    `flow` may also be a function of η returning the flow, for a flow that
    depends on the learning rate: `flow=lambda lr: gf.ModifiedFlow(lr=lr)`
    (GD → the modified flow: exponent 2). A reference is then solved per η
    (`reference` must be None).

    **Arguments:**

    - `problem`, `t1`, `seeds`: as for `gradflow.train`.
    - `optimizer_factory`: η ↦ an optimiser (`optax.sgd`, `gradflow.sign_gd`, …).
    - `learning_rates`: the η ladder (t1/η whole numbers).
    - `flow`: the flow, or η ↦ the flow.
    - `reference`: a `Reference` of `flow` to reuse; `norm`: the parameter norm.

    **Returns:**

    A `Table` with one row per η (parameter distance and loss gap at t1), the
    fitted exponent in `table.meta["order"]`."""
    t1 = _check_t1(t1)
    learning_rates = _positive_list("learning_rates", learning_rates)
    if not callable(optimizer_factory):
        raise TypeError("`optimizer_factory` must be a function of the learning rate returning an optax optimiser, "
                        "e.g. optax.sgd.")
    per_rate = not isinstance(flow, AbstractFlow)
    if per_rate and not callable(flow):
        raise TypeError(f"`flow` must be a gradflow flow or a function of the learning rate returning one; got "
                        f"{type(flow).__name__}.")
    if per_rate and reference is not None:
        raise ValueError("`flow` depends on the learning rate, so each η has its own reference: leave `reference` None.")
    _check_divides(t1, learning_rates,
                   "learning rate {h:g} does not divide t1 = {t1:g}: t1/η must be a whole number of steps.")
    save = LinearGrid(n=2)
    flows = {lr: flow(lr) if per_rate else flow for lr in learning_rates}
    for lr, f in flows.items():
        if not isinstance(f, AbstractFlow):
            raise TypeError(f"`flow({lr:g})` returned a {type(f).__name__}, not a gradflow flow.")
    shared = None if per_rate else _get_reference(problem, flow, t1, seeds, save, reference, final_only=True)
    rows, described = [], []
    for lr in learning_rates:
        ref = shared or _get_reference(problem, flows[lr], t1, seeds, save, None, final_only=True)
        steps = int(round(t1 / lr))
        run = train(problem, _optimizer_at(optimizer_factory, lr), steps=steps, dt=lr, seeds=seeds, save=save)
        loss_gap = np.abs(run.obs["loss"][:, -1] - ref.run.obs["loss"][:, -1]) / np.abs(ref.run.obs["loss"][:, -1])
        rows.append({"learning rate": lr, "steps": steps,
                     "param gap": float(np.max(param_error(run, ref.run, norm))),
                     "loss gap": float(np.max(loss_gap)), "wall s": float(run.stats["wall_time"]),
                     "failed": int((~run.ok).sum())})
        described.append(str(ref))
    fit = fit_order(learning_rates, [r["param gap"] for r in rows])
    meta = {"reference": described[0] if not per_rate else described, **fit, "t1": t1,
            "flow": [flows[lr].config() for lr in learning_rates] if per_rate else flow.config()}
    return Table(f"flow gap: {type(problem).__name__}, exponent {fit['order']:.2f}", rows, meta)


def _optimizer_at(factory, lr):
    """`factory(lr)` as a `gradflow.Optimizer`, whose learning rate is a runtime
    value: the ladder compiles once (a plain optax result is wrapped, with the
    learning rate as the factory's first argument)."""
    made = factory(lr)
    return made if isinstance(made, Optimizer) else Optimizer(factory, lr)


def invariant_drift(run) -> Table:
    """The drift of the quantities `run.problem.conserved` declares.

    **Arguments:**

    - `run`: a `gradflow.Run` with its problem attached.

    **Returns:**

    A `Table` with one row per quantity: the relative drift ‖c − c(0)‖ / ‖c(0)‖
    and the absolute drift ‖c − c(0)‖ at t1 (from the run's initial and final
    models; max and median over seeds) and, where the run saved them
    (`simulate(..., conserved=True)`), the max over the save times. ‖c(0)‖ is
    given too. Where c(0) = 0 (a balanced initialisation) the relative drift is
    undefined (NaN) and the absolute one is the measure: dividing by
    max(‖c(0)‖, 1) instead would hide a 4e-3 relative drift after a small
    initialisation as 3e-8.
    """
    problem = run.problem
    if problem is None:
        raise ValueError("`run` has no problem attached (a loaded run: pass it through gradflow.load with the "
                         "problem importable).")
    keys = keys_from_record(run.config["seeds"])
    model0, data = jax.jit(jax.vmap(problem.init))(keys)
    final = jtu.tree_map(jnp.asarray, run.final)
    c0 = jax.vmap(problem.conserved)(model0, data)
    if not c0:
        raise ValueError(f"{type(problem).__name__} declares no conserved quantities (its `conserved` is empty).")
    c1 = jax.vmap(problem.conserved)(final, data)
    rows = []
    for name in c0:
        a, b = np.asarray(c0[name]).reshape(run.n_seeds, -1), np.asarray(c1[name]).reshape(run.n_seeds, -1)
        size = np.linalg.norm(a, axis=1)
        absolute = np.linalg.norm(b - a, axis=1)
        relative = np.where(size > 0, absolute / np.where(size > 0, size, 1.0), np.nan)
        row = {"quantity": name, "‖c(0)‖ min": float(np.min(size)),
               "final drift max": float(np.nanmax(relative)) if np.isfinite(relative).any() else np.nan,
               "final drift median": float(np.nanmedian(relative)) if np.isfinite(relative).any() else np.nan,
               "final absolute drift max": float(np.max(absolute))}
        series = run.obs.get(f"drift/{name}")
        if series is not None:
            series = np.asarray(series, dtype=float)
            row["max absolute drift over time"] = float(np.nanmax(series))
            over = np.nanmax(series, axis=1)
            row["max drift over time"] = (float(np.nanmax(np.where(size > 0, over / np.where(size > 0, size, 1.0),
                                                                   np.nan))) if (size > 0).any() else np.nan)
        rows.append(row)
    return Table(f"invariant drift: {type(problem).__name__} (relative: ÷ ‖c(0)‖)", rows, {"t1": float(run.ts[-1])})
