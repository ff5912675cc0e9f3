"""`simulate`: integrate a problem's flow over a batch of seeds with diffrax."""

import contextlib
import json
import math
import time
from collections import OrderedDict

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from . import _checkpoint, _programs
from ._config import describe_object, run_config
from ._devices import (batch_over_seeds, gather, pad_items, place, resolve_batching, resolve_devices, seeds_to_keys,
                       shard_over_devices)
from ._flows import AbstractFlow, GradientFlow
from ._grids import AbstractGrid, LogGrid, _check_t1
from ._problem import AbstractProblem
from ._run import Run, split_arrays
from ._status import Status
from ._stop import AbstractStop

_MAX_NONFINITE = 30  # consecutive rejected steps with a NaN/Inf candidate
_MAX_REJECTED = 500  # consecutive rejected steps of any kind
_MIN_RELATIVE_STEP = 1e-12  # a step below this fraction of t makes no progress
_NONFINITE_TOTAL = 10  # a failing seed with this many NaN/Inf candidates is "nonfinite"


class _Guard(dfx.AbstractAdaptiveStepSizeController):
    """Wraps an adaptive controller to end a seed whose steps keep failing.

    A NaN/Inf step is rejected by the controller and the step size shrinks, so
    without this a diverged seed would spin until `max_steps` (and, under vmap,
    hold up every other seed); near a singularity it would creep towards it in
    ever smaller steps. The seed is ended with `dt_min_reached` after
    `_MAX_NONFINITE` consecutive NaN/Inf candidates, `_MAX_REJECTED`
    consecutive rejections, or a proposed step below `_MIN_RELATIVE_STEP`·t.
    `simulate` reads the total count of NaN/Inf candidates to tell a
    non-finite state from a step-size collapse.
    """

    inner: dfx.AbstractAdaptiveStepSizeController

    @property
    def rtol(self):
        return self.inner.rtol

    @property
    def atol(self):
        return self.inner.atol

    @property
    def norm(self):
        return self.inner.norm

    def wrap(self, direction):
        return _Guard(self.inner.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t, state = self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)
        zero = jnp.array(0, dtype=jnp.int32)
        # The last proposed step, so a checkpointed solve resumes with the step the
        # uninterrupted solve would have taken.
        return t, (state, zero, zero, zero, t - t0)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        inner_state, n_bad, n_rej, bad_total, _ = controller_state
        keep, t0n, t1n, jump, inner_state, result = self.inner.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, inner_state
        )
        finite = _all_finite(y1_candidate)
        n_bad = jnp.where(finite, 0, n_bad + 1)
        bad_total = bad_total + jnp.where(finite, 0, 1)
        n_rej = jnp.where(keep, 0, n_rej + 1)
        collapsed = (t1n - t0n) < _MIN_RELATIVE_STEP * jnp.abs(t0n)
        trip = (n_bad >= _MAX_NONFINITE) | (n_rej >= _MAX_REJECTED) | collapsed
        result = dfx.RESULTS.where(trip, dfx.RESULTS.dt_min_reached, result)
        return keep, t0n, t1n, jump, (inner_state, n_bad, n_rej, bad_total, t1n - t0n), result


def _all_finite(tree):
    leaves = [jnp.all(jnp.isfinite(x)) for x in jtu.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _code(item) -> int:
    return int(item._value)


def gradient_evaluations(solver, num_steps) -> np.ndarray:
    """Gradient (vector-field) evaluations a diffrax solve made, from its step count.

    Exact for Euler and explicit Runge–Kutta solvers (FSAL-aware); checked against
    instrumented counts in the tests. NaN for implicit solvers, whose count
    depends on their Newton iterations.
    """
    num_steps = np.asarray(num_steps, dtype=float)
    if isinstance(solver, dfx.Euler):
        return num_steps
    if isinstance(solver, dfx.AbstractERK):
        stages = len(solver.tableau.c) + 1
        fsal = int(bool(solver.tableau.fsal))
        return fsal + num_steps * (stages - fsal)
    return np.full_like(num_steps, np.nan)


def classify(result, bad_total, final_nonfinite) -> np.ndarray:
    """Per-seed `Status` codes from diffrax's result and the guard's NaN count."""
    result = np.asarray(result)
    status = np.full(result.shape, int(Status.FAILED), dtype=np.int32)
    status[result == _code(dfx.RESULTS.successful)] = Status.OK
    status[result == _code(dfx.RESULTS.event_occurred)] = Status.STOPPED
    status[result == _code(dfx.RESULTS.max_steps_reached)] = Status.MAX_STEPS
    status[result == _code(dfx.RESULTS.dt_min_reached)] = Status.STEP_COLLAPSE
    failed = (status != Status.OK) & (status != Status.STOPPED)
    status[failed & (np.asarray(bad_total) >= _NONFINITE_TOTAL)] = Status.NONFINITE
    status[np.asarray(final_nonfinite)] = Status.NONFINITE
    return status


@contextlib.contextmanager
def _checks_without_callbacks():
    """Trace with Equinox's runtime checks set to poison the output with NaN
    rather than raise through a host callback: JAX's persistent compilation
    cache refuses programs with host callbacks. The only checks diffrax puts
    in our solves are on `saveat.ts`, which gradflow's grids validate before
    tracing; any other failure shows up as a NaN state, which `classify`
    reports per seed (status "nonfinite")."""
    import equinox._errors as errors

    if not hasattr(errors, "EQX_ON_ERROR"):  # a future Equinox: leave it be
        yield
        return
    before = errors.EQX_ON_ERROR
    errors.EQX_ON_ERROR = "nan" if before == "raise" else before
    try:
        yield
    finally:
        errors.EQX_ON_ERROR = before


_COMPILED: OrderedDict = OrderedDict()
_COMPILED_SIZE = 32


def compiled(signature, build, example_args):
    """AOT-compile `build()` for `example_args`, memoised on `signature`.

    Returns (compiled function, compile seconds; 0.0 on a cache hit). Problems,
    flows, solvers and grids are Equinox modules, so equal configurations
    hash equal and share one compile (across tests, sweeps and CLI calls in
    one process). Unhashable configurations are compiled every time.
    """
    try:
        leaves, treedef = jtu.tree_flatten(example_args)
        shapes = tuple((tuple(x.shape), str(x.dtype)) for x in leaves)
        key = (signature, jax.config.jax_enable_x64, treedef, shapes)
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key], 0.0
    start = time.perf_counter()
    with _checks_without_callbacks():
        path = _programs.program_path(key)
        call = None if path is None else _programs.load(path)
        if call is None and path is not None:
            call = _programs.store(path, jax.jit(build()), example_args)
        fn = jax.jit(call if call is not None else build()).lower(*example_args).compile()
    elapsed = time.perf_counter() - start
    if key is not None:
        _COMPILED[key] = fn
        while len(_COMPILED) > _COMPILED_SIZE:
            _COMPILED.popitem(last=False)
    return fn, elapsed


def check_problem(problem, flow=None):
    """Type checks, then the model's structure via `eval_shape` (nothing compiles):
    returns (model structure, trainable-parameter structure)."""
    if not isinstance(problem, AbstractProblem):
        raise TypeError(f"`problem` must be a gradflow.AbstractProblem; got {type(problem).__name__}.")
    if flow is not None and not isinstance(flow, AbstractFlow):
        raise TypeError(f"`flow` must be a gradflow flow (e.g. gradflow.GradientFlow()); got {type(flow).__name__}.")

    def structure(key):
        model, _ = problem.init(key)
        params, _ = eqx.partition(model, problem.trainable(model))
        return model, params

    model, params = eqx.filter_eval_shape(structure, jax.random.PRNGKey(0))
    if not jtu.tree_leaves(params):
        raise ValueError(f"{type(problem).__name__}.trainable marks no leaf of the model as trainable.")
    if flow is not None:
        flow.check(params)
    return model, params


def _check_solver(solver, controller, dt0, max_steps):
    if not isinstance(solver, dfx.AbstractSolver):
        raise TypeError(f"`solver` must be a diffrax solver such as diffrax.Tsit5(); got {type(solver).__name__}.")
    if not isinstance(controller, dfx.AbstractStepSizeController):
        raise TypeError(
            "`stepsize_controller` must be a diffrax controller such as "
            f"diffrax.PIDController(rtol=1e-6, atol=1e-8); got {type(controller).__name__}."
        )
    if isinstance(controller, dfx.AbstractAdaptiveStepSizeController):
        for name in ("rtol", "atol"):
            value = getattr(controller, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"`stepsize_controller.{name}` must be finite and > 0; got {value!r}.")
        if not isinstance(solver, dfx.AbstractAdaptiveSolver):
            raise ValueError(
                f"{type(solver).__name__} has no error estimate, so it cannot be used with an adaptive "
                "`stepsize_controller`; pass stepsize_controller=diffrax.ConstantStepSize() and dt0."
            )
    if dt0 is not None and not (isinstance(dt0, (int, float)) and math.isfinite(dt0) and dt0 > 0):
        raise ValueError(f"`dt0` must be finite and > 0, or None; got {dt0!r}.")
    if isinstance(controller, dfx.ConstantStepSize) and dt0 is None:
        raise ValueError("`dt0` is required with diffrax.ConstantStepSize(): pass the fixed step size, e.g. dt0=1e-2.")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be an integer >= 1; got {max_steps!r}.")


def simulate(
    problem: AbstractProblem,
    flow: AbstractFlow = GradientFlow(),
    *,
    t1: float,
    seeds=1,
    solver: dfx.AbstractSolver = dfx.Tsit5(),
    stepsize_controller: dfx.AbstractStepSizeController = dfx.PIDController(rtol=1e-6, atol=1e-8),
    save: AbstractGrid = LogGrid(),
    stop: AbstractStop | None = None,
    progress: bool = False,
    max_steps: int = 100_000,
    dt0: float | None = None,
    batching: str = "auto",
    batch_size: int | None = None,
    devices=None,
    checkpoint_dir=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    command: str | None = None,
    conserved: bool = False,
    _rate_table: np.ndarray | None = None,
) -> Run:
    """Integrate `flow` on `problem` from t = 0 to `t1` for each seed.

    **Arguments:**

    - `problem`: what is trained (an `AbstractProblem`).
    - `flow`: how parameters move (`GradientFlow`, `SignFlow`, ...).
    - `t1`: the final flow time (> 0).
    - `seeds`: an int N (seeds 0 … N−1), a list of ints, or a key array.
    - `solver`, `stepsize_controller`, `dt0`, `max_steps`: passed to
      `diffrax.diffeqsolve` unchanged (`dt0=None` lets an adaptive controller
      choose the first step; fixed-step solves need `ConstantStepSize()` and `dt0`).
    - `save`: a time grid (`LogGrid`, `LinearGrid`); observables are computed
      inside the solve at those times.
    - `stop`: optional per-seed early termination (`LossBelow`, `GradNormBelow`).
    - `progress`: show a progress bar (diffrax's tqdm meter, slowest seed).
    - `batching`: how seeds share the compiled solve. `"vmap"` runs them in
      lockstep (every seed waits for the one needing most steps; the right
      choice on accelerators); `"map"` runs them one after another inside one
      compiled loop (`jax.lax.map`; on a CPU this is faster, since a vmapped
      adaptive loop does the masked work of every seed at every step);
      `"auto"` picks `"map"` on the CPU and `"vmap"` elsewhere. With `"map"`,
      `batch_size` vmaps that many seeds at a time. Results do not depend on
      the choice beyond floating-point reordering.
    - `devices`: None (one device), an int N (the first N of `jax.devices()`),
      "all", or a list of devices. Seeds are split evenly over the devices
      with `shard_map`, so each device runs its own adaptive loop on its share
      (batched there as `batching` says); a seed's result does not depend on
      the number of devices. After `jax.distributed.initialize`, "all" spans
      every process's devices (see README, "Several hosts").
    - `checkpoint_dir`, `checkpoint_every`, `resume`: integrate in segments of
      `checkpoint_every` steps per seed, carrying diffrax's solver and
      controller state across segments (the trajectory is that of one solve, to
      round-off), and after each segment write the state and the observables
      saved so far to `checkpoint_dir` atomically. With `resume=True` a run
      continues from the last complete segment found there (and starts afresh
      if there is none); a checkpoint of another configuration is refused.
      `max_steps` still bounds each seed's total steps exactly (the last
      segment's budget is what is left of it). Progress (with `progress`) is a
      line per segment, after one saying when compilation ends.
    - `conserved`: also save `drift/NAME`, the drift ‖c(t) − c(0)‖ / max(‖c(0)‖, 1)
      (relative, or absolute where c(0) is small — e.g. 0 from a balanced
      initialisation) of every quantity `problem.conserved` declares (exact invariants of the
      unit-rate gradient flow: an accuracy check; see
      `gradflow.accuracy.invariant_drift`).

    Every seed is solved with its own step sizes and result code; a seed that
    diverges, collapses its step size or runs out of steps is marked in
    `run.stats["status"]` and keeps the observables saved before it failed.
    """
    model_struct, _ = check_problem(problem, flow)
    t1 = _check_t1(t1)
    _check_solver(solver, stepsize_controller, dt0, max_steps)
    if not isinstance(save, AbstractGrid):
        raise TypeError(f"`save` must be a gradflow grid such as gradflow.LogGrid(n=200); got {type(save).__name__}.")
    if stop is not None and not isinstance(stop, AbstractStop):
        raise TypeError(f"`stop` must be None or a stop condition such as gradflow.LossBelow(1e-3); got {type(stop).__name__}.")
    keys, seed_record = seeds_to_keys(seeds)
    # A rate sweep (see `sweep`): item i runs with the flow's rates replaced by
    # row i of the table, traced, so every setting shares one compile.
    items = {"key": keys}
    if _rate_table is not None:
        items["rates"] = jnp.asarray(_rate_table)
    batching = resolve_batching(batching, batch_size)
    devices = resolve_devices(devices)
    if checkpoint_dir is not None:
        checkpoint_dir = _checkpoint.check_arguments(checkpoint_dir, checkpoint_every)
        progress_lines, progress = progress, False  # segments report progress, not a host callback
    elif resume:
        raise ValueError("`resume=True` needs `checkpoint_dir`, the directory holding the checkpoint.")
    ts = save.times(t1)
    guarded = isinstance(stepsize_controller, dfx.AbstractAdaptiveStepSizeController)
    # A PID controller's rtol/atol are runtime arguments, so a ladder of
    # tolerances (work-precision diagrams) shares one compile, as dt0 does.
    traced_tol = isinstance(stepsize_controller, dfx.PIDController)
    tol = jnp.asarray([stepsize_controller.rtol, stepsize_controller.atol] if traced_tol else [0.0, 0.0])
    if traced_tol:
        stepsize_controller_static = eqx.tree_at(lambda c: (c.rtol, c.atol), stepsize_controller, (1.0, 1.0))
    else:
        stepsize_controller_static = stepsize_controller
    controller = _Guard(stepsize_controller_static) if guarded else stepsize_controller_static
    meter = dfx.TqdmProgressMeter() if progress else dfx.NoProgressMeter()
    ts_tuple = tuple(float(t) for t in ts)

    # The flow's numbers (ε, Adam's a and b, rates) are runtime arguments too, so a
    # ladder of ε or of rates shares one compile; its structure is compiled in.
    flow_leaves, flow_def = jtu.tree_flatten(flow)
    is_number = [isinstance(x, float) for x in flow_leaves]
    flow_numbers = jnp.asarray([x for x, n in zip(flow_leaves, is_number) if n], dtype=float)
    flow_static = tuple(None if n else x for x, n in zip(flow_leaves, is_number))

    def flow_from(numbers):
        it = iter(range(numbers.shape[0]))
        return jtu.tree_unflatten(flow_def, [numbers[next(it)] if n else x for x, n in zip(flow_static, is_number)])

    segment_steps = None if checkpoint_dir is None else checkpoint_every

    def build(with_carry=False, steps=None):  # steps: this segment's step budget
        def one(item, step, tol, flow_numbers, flat=True):
            flow_i = flow_from(flow_numbers)
            ctrl = controller
            if traced_tol:
                ctrl = _Guard(eqx.tree_at(lambda c: (c.rtol, c.atol), stepsize_controller_static, (tol[0], tol[1])))
            if "rates" in item:
                flow_i = eqx.tree_at(
                    lambda f: [pair[1] for pair in f.rates], flow_i, [item["rates"][i] for i in range(len(flow.rates))]
                )
            model, data = problem.init(item["key"])
            params, rest = eqx.partition(model, problem.trainable(model))

            def loss_p(p):
                return problem.loss(eqx.combine(p, rest), data)

            grad_fn = jax.grad(loss_p)

            def vector_field(t, y, args):
                return flow_i.vector_field(t, y, grad_fn)

            c0 = problem.conserved(model, data) if conserved else {}

            def observe(t, y, args):
                current = eqx.combine(flow_i.params(y), rest)
                out = problem.observables(current, data)
                for name, value in problem.conserved(current, data).items() if conserved else ():
                    scale = jnp.maximum(jnp.linalg.norm(c0[name]), 1.0)
                    out[f"drift/{name}"] = jnp.linalg.norm(value - c0[name]) / scale
                return out

            def cond(t, y, args, **kwargs):
                bad = ~_all_finite(y)
                if stop is None:
                    return bad
                return bad | stop(loss_p, grad_fn, flow_i.params(y))

            carry = item.get("carry")
            segmented = segment_steps is not None
            if carry is not None:  # a flat list of leaves (exportable); its layout is the first segment's
                first = {k: v for k, v in item.items() if k not in ("carry", "done")}
                layout = jax.eval_shape(lambda: one(first, step, tol, flow_numbers, flat=False)["carry"])
                carry = jtu.tree_unflatten(jtu.tree_structure(layout), carry)
            if carry is None:
                t_start, y_start, ts_now = 0.0, flow_i.init(params), jnp.asarray(ts_tuple)
                resume = {"dt0": None if dt0 is None else step}
            else:  # a later segment: continue exactly where the last one stopped
                t_start, y_start = carry["t"], carry["y"]
                ts_now = jnp.maximum(jnp.asarray(ts_tuple), t_start)  # times already passed: saved before
                resume = {"dt0": carry["dt"], "solver_state": carry["solver_state"],
                          "controller_state": carry["controller_state"], "made_jump": carry["made_jump"]}
            saveat = dfx.SaveAt(
                subs=[dfx.SubSaveAt(ts=ts_now, fn=observe), dfx.SubSaveAt(t1=True)],
                controller_state=True, solver_state=segmented, made_jump=segmented,
            )
            sol = dfx.diffeqsolve(
                dfx.ODETerm(vector_field),
                solver,
                t0=t_start,
                t1=t1,
                y0=y_start,
                **resume,
                saveat=saveat,
                stepsize_controller=ctrl,
                # An adaptive solve's guard already ends a seed on NaN/Inf; an event
                # (checked every step) is only needed for fixed steps or a stop rule.
                event=dfx.Event(cond) if (stop is not None or not guarded) else None,
                max_steps=max_steps if segment_steps is None else (steps or segment_steps),
                throw=False,
                progress_meter=meter,
            )
            final_state = jtu.tree_map(lambda x: x[-1], sol.ys[1])
            if guarded:
                bad_total = sol.controller_state[3]
            else:
                bad_total = jnp.array(0, dtype=jnp.int32)
            out = {
                "obs": sol.ys[0],
                "obs_ts": sol.ts[0],
                "t_final": sol.ts[1][-1],
                # Plain lists of arrays (no model classes), so the program can be exported.
                "initial": jtu.tree_leaves(split_arrays(model)[0]),
                "final": jtu.tree_leaves(split_arrays(eqx.combine(flow_i.params(final_state), rest))[0]),
                "result": sol.result._value,
                "steps": sol.stats["num_steps"],
                "accepted": sol.stats["num_accepted_steps"],
                "rejected": sol.stats["num_rejected_steps"],
                "bad_total": bad_total,
                "final_nonfinite": ~_all_finite(final_state),
            }
            if segmented:
                tree = {"t": sol.ts[1][-1], "y": final_state, "solver_state": sol.solver_state,
                        "controller_state": sol.controller_state, "made_jump": sol.made_jump,
                        "dt": sol.controller_state[4] if guarded else step}
                out["carry"] = jtu.tree_leaves(tree) if flat else tree
            return out

        if with_carry:  # later segments: seeds already finished are skipped
            def one_or_skip(item, *shared):
                shape = jax.eval_shape(lambda: one(item, *shared))
                return jax.lax.cond(item["done"], lambda: jtu.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shape),
                                    lambda: one(item, *shared))

            batched = batch_over_seeds(one_or_skip, batching, batch_size)
        else:
            batched = batch_over_seeds(one, batching, batch_size)
        return batched if devices is None else shard_over_devices(batched, devices)

    # dt0 and a PID controller's tolerances are runtime arguments, so ladders of
    # step sizes or tolerances share one compile.
    signature = (
        "simulate", problem, flow_def, flow_static, solver, controller, ts_tuple, t1, stop, max_steps, dt0 is None, progress,
        batching, batch_size, bool(conserved), None if devices is None else tuple(d.id for d in devices),
    )
    step = jnp.asarray(0.0 if dt0 is None else dt0)
    n_items = keys.shape[0]
    args = (items, step, tol, flow_numbers)

    def put(host_args):  # a solve's arguments, on the devices
        if devices is None:
            return host_args
        placed_items, shared = place(host_args[0], host_args[1:], devices)
        return (placed_items, *shared)

    if devices is not None:
        args = (pad_items(items, len(devices))[0], *args[1:])
    if checkpoint_dir is None:
        args = put(args)
        fn, compile_time = compiled(signature, build, args)
        started_at = time.time()
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        wall = time.perf_counter() - start
        out = jtu.tree_map(lambda x: x[:n_items], gather(out))
    else:
        fingerprint = json.dumps([describe_object(x) for x in (problem, flow, solver, stepsize_controller, stop)]
                                 + [ts_tuple, t1, dt0, max_steps, checkpoint_every, seed_record, batching, batch_size,
                                    bool(conserved), bool(jax.config.jax_enable_x64),
                                    None if devices is None else len(devices),
                                    None if _rate_table is None else np.asarray(_rate_table).tolist()],
                                 sort_keys=True, default=str)
        out, wall, compile_time, started_at = _run_segments(
            signature + ("segments", checkpoint_every), build, args, put, checkpoint_dir, fingerprint, resume,
            checkpoint_every, max_steps, progress_lines)
        out = jtu.tree_map(lambda x: x[:n_items], out)

    status = classify(out["result"], out["bad_total"], out["final_nonfinite"])
    unsaved = ~np.isfinite(out["obs_ts"])
    obs = {}
    for name, value in out["obs"].items():
        value = np.array(value, dtype=np.result_type(value.dtype, np.float32))
        value[unsaved] = np.nan
        obs[name] = value
    evals = gradient_evaluations(solver, out["steps"])
    if stop is not None and stop.gradient_evaluations_per_step:
        evals = evals + stop.gradient_evaluations_per_step * (out["steps"] + 1)
    stats = {
        "steps": out["steps"],
        "accepted": out["accepted"],
        "rejected": out["rejected"],
        "gradient_evaluations": evals,
        "status": status,
        "result": out["result"],
        "t_final": out["t_final"],
        "wall_time": np.array(wall),
        "compile_time": np.array(compile_time),
        "started_at": np.array(started_at),  # Unix time the compiled solve began
    }
    arrays_struct, skeleton = split_arrays(model_struct)
    arrays_def = jtu.tree_structure(arrays_struct)
    out["initial"] = jtu.tree_unflatten(arrays_def, out["initial"])
    out["final"] = jtu.tree_unflatten(arrays_def, out["final"])
    config = run_config(
        "simulate", problem=problem, save=save, seeds=seed_record, batching=batching, batch_size=batch_size,
        devices=None if devices is None else [str(d) for d in devices], command=command, flow=flow.config(), solver=describe_object(solver),
        stepsize_controller=describe_object(stepsize_controller), t1=t1, dt0=dt0, max_steps=max_steps,
        stop=describe_object(stop), conserved=bool(conserved),
    )
    return Run(
        ts=ts,
        obs=obs,
        initial=eqx.combine(out["initial"], skeleton),
        final=eqx.combine(out["final"], skeleton),
        stats=stats,
        config=config,
        problem=problem,
    )


_MAX_STEPS_CODE = _code(dfx.RESULTS.max_steps_reached)


def _run_segments(signature, build, args, put, directory, fingerprint, resume, every, max_steps, progress_lines):
    """Integrate segment by segment (see `simulate`'s `checkpoint_dir`): returns
    (outputs as one uninterrupted solve would give them, wall s, compile s, start time).
    `put` places a segment's arguments on the devices (identity for one device)."""
    items = args[0]  # on the host: each segment's arguments are placed by `put`
    # A seed still running after k segments has taken exactly k·every steps (each
    # segment ends it on its step budget), so the last segment's budget is what is
    # left of max_steps: the total never exceeds it, as in one solve.
    length = min(every, max_steps)
    if progress_lines:
        print("compiling …", flush=True)
    first_fn, compile_first = compiled(signature + ("first", length), lambda: build(steps=length), put(args))
    if progress_lines:
        print(f"compiled in {compile_first:.1f} s; integrating", flush=True)
    n = jtu.tree_leaves(items)[0].shape[0]
    state = None
    segment = 0
    if resume and (directory / _checkpoint.INDEX).exists():
        # The layout a checkpoint must have (tracing once more: only when resuming).
        template = {"out": jax.eval_shape(build(), *put(args)), "done": jax.ShapeDtypeStruct((n,), jnp.bool_)}
        loaded = _checkpoint.read(directory, fingerprint, template)
        if loaded is not None:
            state, segment = loaded
    started_at = time.time()
    start = time.perf_counter()
    if state is None:
        out = gather(jax.block_until_ready(first_fn(*put(args))))
        state = {"out": out, "done": _finished(out, max_steps)}
        segment = 1
        _checkpoint.write(directory, state, fingerprint, segment)
        _report(progress_lines, segment, state)
    compile_cont = 0.0
    while not state["done"].all():
        cont_args = put(({**items, "carry": state["out"]["carry"], "done": state["done"]}, *args[1:]))
        length = min(every, max_steps - int(state["out"]["steps"][~state["done"]].max()))
        cont_fn, seconds = compiled(signature + ("cont", length), lambda: build(with_carry=True, steps=length),
                                    cont_args)
        compile_cont += seconds
        new = gather(jax.block_until_ready(cont_fn(*cont_args)))
        state = {"out": _merge(state["out"], new, ~state["done"]), "done": None}
        state["done"] = _finished(state["out"], max_steps)
        segment += 1
        _checkpoint.write(directory, state, fingerprint, segment)
        _report(progress_lines, segment, state)
    out = dict(state["out"])
    out.pop("carry")
    return out, time.perf_counter() - start - compile_cont, compile_first + compile_cont, started_at


def _finished(out, max_steps):
    """Seeds that are done: ended for any reason other than the segment's step
    budget, or out of their total `max_steps`."""
    return (out["result"] != _MAX_STEPS_CODE) | (out["steps"] >= max_steps)


def _merge(old, new, active):
    """The outputs of one solve from those of the segments so far (`old`) and the
    next one (`new`), for the seeds still running (`active`)."""
    def pick(a, b):
        mask = active.reshape(active.shape + (1,) * (np.ndim(a) - 1))
        return np.where(mask, b, a)

    merged = {k: jtu.tree_map(pick, old[k], new[k]) for k in ("t_final", "final", "result", "bad_total",
                                                              "final_nonfinite", "carry")}
    merged["initial"] = old["initial"]
    for k in ("steps", "accepted", "rejected"):
        merged[k] = old[k] + np.where(active, new[k], 0)
    # An observable is taken from the segment that reached its save time first.
    fresh = active[:, None] & np.isfinite(new["obs_ts"]) & ~np.isfinite(old["obs_ts"])
    merged["obs_ts"] = np.where(fresh, new["obs_ts"], old["obs_ts"])
    merged["obs"] = {k: np.where(fresh.reshape(fresh.shape + (1,) * (np.ndim(v) - 2)), new["obs"][k], v)
                     for k, v in old["obs"].items()}
    return merged


def _report(progress_lines, segment, state):
    if not progress_lines:
        return
    out = state["out"]
    print(f"segment {segment}: t = {np.min(out['t_final']):.4g} … {np.max(out['t_final']):.4g}, "
          f"{int(state['done'].sum())}/{state['done'].size} seeds done, steps {int(np.max(out['steps']))}", flush=True)


def sweep(
    problem: AbstractProblem,
    flow: AbstractFlow = GradientFlow(),
    *,
    rates,
    t1: float,
    seeds=1,
    **kwargs,
) -> list[Run]:
    """`simulate` for several rate settings at once: one compile, one batched call.

    `rates` is a list of dicts naming the same model fields, e.g.
    `[{"Y": 1.0, "Z": 0.5}, {"Y": 10.0, "Z": 0.5}]`. Every setting runs on every
    seed (the batch is settings × seeds, batched as `batching` says); the
    result is one `Run` per setting, in order, each equal to what `simulate`
    with `flow` at those rates would give. `flow`'s own rates are replaced.
    """
    if isinstance(rates, dict) or not rates:
        raise ValueError("`rates` must be a non-empty list of dicts such as [{'Y': 1.0}, {'Y': 10.0}].")
    names = sorted(rates[0])
    for setting in rates:
        if not isinstance(setting, dict) or sorted(setting) != names:
            raise ValueError(f"every entry of `rates` must name the same fields {names}; got {setting!r}.")
    # Validate each setting through the flow's own converter (positive, finite).
    settings = [type(flow)._rates_check(setting) for setting in rates]
    base = eqx.tree_at(lambda f: f.rates, flow, tuple((n, 1.0) for n in names))
    keys, record = seeds_to_keys(seeds)
    n_seeds = keys.shape[0]
    table = np.repeat(np.array([[dict(s)[n] for n in names] for s in settings], dtype=float), n_seeds, axis=0)
    run = simulate(problem, base, t1=t1, seeds=jnp.tile(keys, (len(settings), 1)), _rate_table=table, **kwargs)
    runs = []
    for i, setting in enumerate(settings):
        part = run.select(np.arange(i * n_seeds, (i + 1) * n_seeds))
        part.config["flow"]["rates"] = dict(setting)
        part.config["seeds"] = record
        part.config["sweep"] = {"rates": [dict(s) for s in settings], "index": i}
        runs.append(part)
    return runs
