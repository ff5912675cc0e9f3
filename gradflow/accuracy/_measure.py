"""Work-precision, convergence order, the flow–optimiser gap and invariant drift."""

import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from tqdm import tqdm

from .._devices import keys_from_record
from .._flows import AbstractFlow, GradientFlow
from .._grids import AbstractGrid, LinearGrid, _check_t1
from .._optim import Optimizer
from .._simulate import simulate
from .._train import train
from ._reference import Reference, obs_error, param_error, reference
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
    elif not np.allclose(ref.run.ts, save.times(t1)):
        raise ValueError("`reference` was saved at other times than `save` gives for this t1; build it with the same grid.")
    return ref


def _row(run, ref, norm):
    err = param_error(run, ref.run, norm)
    row = {"param error": float(np.max(err))}
    for name in run.obs:
        row[f"{name} error"] = float(np.max(obs_error(run, ref.run, name)))
    row.update({
        "steps": float(np.mean(run.stats["steps"])),
        "rejected": float(np.mean(run.stats["rejected"])),
        "gradient evaluations": float(np.mean(run.stats["gradient_evaluations"])),
        "wall s": float(run.stats["wall_time"]),
        "compile s": float(run.stats["compile_time"]),
        "failed": int((~run.ok).sum()),
    })
    if row["failed"]:
        row["param error"] = np.nan  # a failed seed has no final parameters at t1
    return row


def work_precision(problem, flow: AbstractFlow = GradientFlow(), *, solvers, tolerances=(1e-3, 1e-4, 1e-5, 1e-6),
                   step_sizes=None, t1, seeds=1, save: AbstractGrid = LinearGrid(n=21), reference=None,
                   norm: str = "l2", atol_ratio: float = 1e-2, max_steps: int = 200_000,
                   progress: bool = False) -> Table:
    """Error against a reference, and its cost, for each solver × tolerance.

    Adaptive solvers run with `diffrax.PIDController(rtol, atol=rtol·atol_ratio)`
    for each rtol in `tolerances`; solvers without an error estimate (Euler,
    ...) run with `ConstantStepSize` at each of `step_sizes` (required then).
    One row per run: `param error` (max over seeds of the relative distance of
    the final parameters, `norm` "l2" or "max"), `NAME error` for every
    observable (max over save times and seeds, relative to the reference's
    largest value), mean steps, rejected steps and gradient evaluations per
    seed, wall time (compilation excluded and given separately), failed seeds.
    `reference` defaults to `gradflow.accuracy.reference(...)` with the same
    `save` grid; its description is in `table.meta`.
    """
    t1 = _check_t1(t1)
    tolerances = _positive_list("tolerances", tolerances)
    if norm not in ("l2", "max"):
        raise ValueError(f"`norm` must be 'l2' or 'max'; got {norm!r}.")
    solvers = list(solvers)
    for s in solvers:
        if not isinstance(s, dfx.AbstractSolver):
            raise TypeError(f"`solvers` must hold diffrax solvers such as diffrax.Tsit5(); got {type(s).__name__}.")
    fixed = [s for s in solvers if not _is_adaptive(s)]
    if fixed and step_sizes is None:
        raise ValueError(f"{', '.join(_name(s) for s in fixed)} have no error estimate: give `step_sizes` for them.")
    if step_sizes is not None:
        step_sizes = _positive_list("step_sizes", step_sizes)
    ref = _get_reference(problem, flow, t1, seeds, save, reference)
    jobs = [(s, "rtol", r) for s in solvers if _is_adaptive(s) for r in tolerances]
    jobs += [(s, "dt", h) for s in fixed for h in step_sizes]
    rows = []
    for solver, kind, value in tqdm(jobs, desc="work-precision", disable=not progress):
        if kind == "rtol":
            ctrl, dt0 = dfx.PIDController(rtol=value, atol=value * atol_ratio), None
        else:
            ctrl, dt0 = dfx.ConstantStepSize(), value
            if t1 / value > max_steps:
                rows.append({"solver": _name(solver), "rtol": np.nan, "dt": value, "failed": -1,
                             "skipped": f"t1/dt = {t1 / value:.3g} steps > max_steps"})
                continue
        run = simulate(problem, flow, t1=t1, seeds=seeds, save=save, solver=solver, stepsize_controller=ctrl,
                       dt0=dt0, max_steps=max_steps)
        rows.append({"solver": _name(solver), "rtol": value if kind == "rtol" else np.nan,
                     "dt": value if kind == "dt" else np.nan, **_row(run, ref, norm)})
    meta = {"reference": str(ref), "reference verified": ref.verified, "t1": t1, "norm": norm,
            "problem": type(problem).__name__, "flow": flow.config(), "x64": bool(jax.config.jax_enable_x64)}
    return Table(f"work-precision: {type(problem).__name__}, t1 = {t1:g}", rows, meta)


def fit_order(step_sizes, errors) -> dict:
    """Least-squares slope of log(error) against log(step) with its standard
    error and a 95% confidence interval (normal approximation)."""
    h, e = np.log(np.asarray(step_sizes, float)), np.log(np.asarray(errors, float))
    if h.size < 3:
        slope = float(np.polyfit(h, e, 1)[0])
        return {"order": slope, "stderr": np.nan, "ci95": (np.nan, np.nan)}
    (slope, _), cov = np.polyfit(h, e, 1, cov=True)
    se = float(np.sqrt(cov[0, 0]))
    return {"order": float(slope), "stderr": se, "ci95": (float(slope - 1.96 * se), float(slope + 1.96 * se))}


def convergence_order(problem, solver, step_sizes, *, t1, seeds=1, flow: AbstractFlow = GradientFlow(),
                      reference=None, norm: str = "l2") -> Table:
    """The order of a fixed-step `solver`: the final-parameter error against the
    reference at each of `step_sizes` (each must divide `t1`), and the fitted
    slope of log(error) against log(step). `table.meta` holds "order", its
    "stderr" and "ci95". Choose steps where the error stays well above
    round-off (~1e-13 in float64): below it the slope flattens."""
    t1 = _check_t1(t1)
    step_sizes = _positive_list("step_sizes", step_sizes)
    if len(step_sizes) < 2:
        raise ValueError("`step_sizes` needs at least two steps to fit an order (three for a confidence interval).")
    _check_divides(t1, step_sizes, "step size {h:g} does not divide t1 = {t1:g}; choose t1/n.")
    save = LinearGrid(n=2)
    ref = _get_reference(problem, flow, t1, seeds, save, reference, final_only=True)
    rows = []
    max_steps = int(round(t1 / min(step_sizes))) + 10  # one bound for the ladder: one compile (dt0 is runtime)
    for h in step_sizes:
        run = simulate(problem, flow, t1=t1, seeds=seeds, save=save, solver=solver,
                       stepsize_controller=dfx.ConstantStepSize(), dt0=h, max_steps=max_steps)
        rows.append({"solver": _name(solver), "dt": h, "steps": int(round(t1 / h)),
                     "param error": float(np.max(param_error(run, ref.run, norm)))})
    fit = fit_order([r["dt"] for r in rows], [r["param error"] for r in rows])
    meta = {"reference": str(ref), **fit, "t1": t1}
    return Table(f"convergence order of {_name(solver)}: {fit['order']:.2f} ± {fit['stderr']:.2f}", rows, meta)


def flow_gap(problem, optimizer_factory, learning_rates, *, flow: AbstractFlow = GradientFlow(), t1, seeds=1,
             reference=None, norm: str = "l2") -> Table:
    """The distance between an optimiser and the flow it approximates.

    For each η in `learning_rates`, `train(problem, optimizer_factory(η),
    steps=t1/η, dt=η)` (so t = kη; t1/η must be a whole number) against the
    reference of `flow` at t1: the relative distance of the final parameters
    and the loss gap at t1. `table.meta["order"]` is the fitted exponent of the
    parameter gap in η (GD → gradient flow, SignGD → sign flow, Adam with
    `gradflow.adam_for_flow` → `AdamFlow`: all 1)."""
    t1 = _check_t1(t1)
    learning_rates = _positive_list("learning_rates", learning_rates)
    if not callable(optimizer_factory):
        raise TypeError("`optimizer_factory` must be a function of the learning rate returning an optax optimiser, "
                        "e.g. optax.sgd.")
    _check_divides(t1, learning_rates,
                   "learning rate {h:g} does not divide t1 = {t1:g}: t1/η must be a whole number of steps.")
    save = LinearGrid(n=2)
    ref = _get_reference(problem, flow, t1, seeds, save, reference, final_only=True)
    rows = []
    for lr in learning_rates:
        steps = int(round(t1 / lr))
        run = train(problem, _optimizer_at(optimizer_factory, lr), steps=steps, dt=lr, seeds=seeds, save=save)
        loss_gap = np.abs(run.obs["loss"][:, -1] - ref.run.obs["loss"][:, -1]) / np.abs(ref.run.obs["loss"][:, -1])
        rows.append({"learning rate": lr, "steps": steps,
                     "param gap": float(np.max(param_error(run, ref.run, norm))),
                     "loss gap": float(np.max(loss_gap)), "wall s": float(run.stats["wall_time"]),
                     "failed": int((~run.ok).sum())})
    fit = fit_order(learning_rates, [r["param gap"] for r in rows])
    meta = {"reference": str(ref), **fit, "t1": t1, "flow": flow.config()}
    return Table(f"flow gap: {type(problem).__name__}, exponent {fit['order']:.2f}", rows, meta)


def _optimizer_at(factory, lr):
    """`factory(lr)` as a `gradflow.Optimizer`, whose learning rate is a runtime
    value: the ladder compiles once (a plain optax result is wrapped, with the
    learning rate as the factory's first argument)."""
    made = factory(lr)
    return made if isinstance(made, Optimizer) else Optimizer(factory, lr)


def invariant_drift(run) -> Table:
    """The drift of the quantities `run.problem.conserved` declares: per
    quantity and seed, ‖c(t1) − c(0)‖ / max(‖c(0)‖, 1) from the run's initial and
    final models, and, where the run saved them (`simulate(...,
    conserved=True)`), the max over save times."""
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
        scale = np.maximum(np.linalg.norm(a, axis=1), 1.0)  # absolute where c(0) ~ 0 (balanced inits)
        drift = np.linalg.norm(b - a, axis=1) / scale
        row = {"quantity": name, "final drift max": float(np.max(drift)), "final drift median": float(np.median(drift))}
        series = run.obs.get(f"drift/{name}")
        if series is not None:
            row["max drift over time"] = float(np.nanmax(series))
        rows.append(row)
    return Table(f"invariant drift: {type(problem).__name__}", rows, {"t1": float(run.ts[-1])})
