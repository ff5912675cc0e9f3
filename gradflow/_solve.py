"""One seed's solve, as a pure module-level function of its arguments, and what
surrounds it: the guard that ends failing seeds, status codes, gradient counts.

`solve_one(setup, item, shared)` integrates one seed. `setup` (a `Setup`) is
compiled in; `item` holds the seed's own arrays (its initial model, the data
that differ between seeds, and, in later segments, the solver state carried
over); `shared` holds the arrays common to every seed (shared data, save
times, t1, dt0, tolerances, the flow's numbers). `program` lifts it to a batch
of seeds and spreads the batch over devices.
"""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.extend.core import jaxpr_as_fun

from ._adapters import DT_MIN, EVENT, MAX_STEPS, SUCCESSFUL, result_code
from ._devices import batch_over_seeds, shard_over_devices
from ._flows import AbstractFlow
from ._fused import FusedERK, fusable
from ._options import Batching, Integration
from ._problem import AbstractProblem
from ._run import split_arrays
from ._sde import SDEFlow, sde_terms
from ._status import Status

_MAX_NONFINITE = 30  # consecutive rejected steps with a NaN/Inf candidate
_MAX_REJECTED = 500  # consecutive rejected steps of any kind
_MIN_RELATIVE_STEP = 1e-12  # a step below this fraction of t makes no progress
_NONFINITE_TOTAL = 10  # a failing seed with this many NaN/Inf candidates is "nonfinite"


class Guard(dfx.AbstractAdaptiveStepSizeController):
    """Wraps an adaptive controller to end a seed whose steps keep failing.

    A NaN/Inf step is rejected by the controller and the step size shrinks, so
    without this a diverged seed would spin until `max_steps` (and, under vmap,
    hold up every other seed); near a singularity it would creep towards it in
    ever smaller steps. The seed is ended with `dt_min_reached` after
    `_MAX_NONFINITE` consecutive NaN/Inf candidates, `_MAX_REJECTED`
    consecutive rejections, or a proposed step below `_MIN_RELATIVE_STEP`·t.
    Its state also counts every NaN/Inf candidate (to tell a non-finite state
    from a step-size collapse) and keeps the last proposed step (so a
    checkpointed solve resumes with the step the uninterrupted one would take).
    diffrax has no hook for this, hence a wrapper of its controller interface.
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
        return Guard(self.inner.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t, state = self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)
        zero = jnp.array(0, dtype=jnp.int32)
        return t, (state, zero, zero, zero, t - t0)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        inner_state, n_bad, n_rej, bad_total, _ = controller_state
        keep, t0n, t1n, jump, inner_state, result = self.inner.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, inner_state
        )
        finite = all_finite(y1_candidate)
        n_bad = jnp.where(finite, 0, n_bad + 1)
        bad_total = bad_total + jnp.where(finite, 0, 1)
        n_rej = jnp.where(keep, 0, n_rej + 1)
        collapsed = (t1n - t0n) < _MIN_RELATIVE_STEP * jnp.abs(t0n)
        trip = (n_bad >= _MAX_NONFINITE) | (n_rej >= _MAX_REJECTED) | collapsed
        result = dfx.RESULTS.where(trip, dfx.RESULTS.dt_min_reached, result)
        return keep, t0n, t1n, jump, (inner_state, n_bad, n_rej, bad_total, t1n - t0n), result


def all_finite(tree):
    leaves = [jnp.all(jnp.isfinite(x)) for x in jtu.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def gradient_evaluations(solver, num_steps) -> np.ndarray:
    """Gradient (vector-field) evaluations a diffrax solve made, from its step count.

    Exact for Euler and explicit Runge–Kutta solvers (FSAL-aware); checked against
    instrumented counts in the tests. NaN for implicit solvers, whose count
    depends on their Newton iterations.
    """
    num_steps = np.asarray(num_steps, dtype=float)
    if isinstance(solver, FusedERK):  # the same stages as the method it wraps
        solver = solver.solver
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
    status[result == SUCCESSFUL] = Status.OK
    status[result == EVENT] = Status.STOPPED
    status[result == MAX_STEPS] = Status.MAX_STEPS
    status[result == DT_MIN] = Status.STEP_COLLAPSE
    failed = (status != Status.OK) & (status != Status.STOPPED)
    status[failed & (np.asarray(bad_total) >= _NONFINITE_TOTAL)] = Status.NONFINITE
    status[np.asarray(final_nonfinite)] = Status.NONFINITE
    return status


class Setup(eqx.Module):
    """What is compiled into a seed's solve: the problem, the integration options
    without their runtime numbers, the model's non-array parts, and the segment
    being run (None: the whole solve in one go)."""

    problem: AbstractProblem
    integration: Integration  # `Integration.static()`
    skeleton: object  # the model's non-array parts (`split_arrays`)
    segment_steps: int | None = None  # this segment's step budget
    continuing: bool = False  # a later segment: start from the carried state


@eqx.filter_jit
def _gradient(problem, params, rest, data):
    """∇L with respect to the trainable parameters. Jitted so that diffrax's several
    calls of the vector field within one trace share one trace of it."""
    return jax.grad(lambda p: problem.loss(eqx.combine(p, rest), data))(params)


@eqx.filter_jit
def _observe(problem, conserved, params, rest, data, c0):
    """The observables saved at one time (jitted for the same reason as `_gradient`)."""
    current = eqx.combine(params, rest)
    out = problem.observables(current, data)
    for name, value in problem.conserved(current, data).items() if conserved else ():
        out[f"drift/{name}"] = jnp.linalg.norm(value - c0[name])  # absolute: invariant_drift divides by ‖c(0)‖
    return out


def solve_one(setup: Setup, item: dict, shared: dict) -> dict:
    """Integrate one seed (see the module docstring); returns its observables at
    the save times, final model leaves, diffrax's counters and result, and (for
    a segmented solve) the state to carry into the next segment."""
    problem, integ = setup.problem, setup.integration
    flow: AbstractFlow = item["flow"] if "flow" in item else shared["flow"]
    data = eqx.combine(item["data"], shared["data"])
    model = eqx.combine(item["model"], setup.skeleton)
    params, rest = eqx.partition(model, problem.trainable(model))

    def loss_p(p):
        return problem.loss(eqx.combine(p, rest), data)

    def grad_fn(p):
        return _gradient(problem, p, rest, data)

    c0 = problem.conserved(model, data) if integ.conserved else {}

    def vector_field(t, y, args):
        return flow.vector_field(t, y, grad_fn)

    def observe(t, y, args):
        return _observe(problem, integ.conserved, flow.params(y), rest, data, c0)

    def cond(t, y, args, **kwargs):
        bad = ~all_finite(y)
        if integ.stop is None:
            return bad
        return bad | integ.stop(loss_p, grad_fn, flow.params(y))

    controller = integ.controller(shared)
    if integ.adaptive:
        controller = Guard(controller)
    ts = shared["ts"]
    segmented = setup.segment_steps is not None
    if setup.continuing:  # a later segment: continue exactly where the last one stopped
        carry = item["carry"]
        t_start, y_start = carry["t"], carry["y"]
        ts = jnp.maximum(ts, t_start)  # times already passed were saved before
        resume = {"dt0": carry["dt"], "solver_state": carry["solver_state"],
                  "controller_state": carry["controller_state"], "made_jump": carry["made_jump"]}
    else:
        t_start, y_start = 0.0, flow.init(params)
        resume = {"dt0": None if integ.dt0 is None else shared["dt0"]}
    saveat = dfx.SaveAt(
        subs=[dfx.SubSaveAt(ts=ts, fn=observe), dfx.SubSaveAt(t1=True)],
        controller_state=True, solver_state=segmented, made_jump=segmented,
    )
    if isinstance(flow, SDEFlow):  # drift dt + diffusion dW, the seed's own Brownian motion
        terms = sde_terms(flow, vector_field, problem, rest, data, params, item["noise_key"],
                          shared["t1"], shared["dt0"])
    else:
        terms = dfx.ODETerm(vector_field)
    # An explicit Runge–Kutta step with its stages unrolled: the same numbers as
    # diffrax's step to round-off, 1.2–1.4× faster on large states (see `_fused`).
    solver = FusedERK(integ.solver) if fusable(integ.solver, terms) else integ.solver
    sol = dfx.diffeqsolve(
        terms,
        solver,
        t0=t_start,
        t1=shared["t1"],
        y0=y_start,
        **resume,
        saveat=saveat,
        stepsize_controller=controller,
        # An adaptive solve's guard already ends a seed on NaN/Inf; an event
        # (checked every step) is only needed for fixed steps or a stop rule.
        event=dfx.Event(cond) if (integ.stop is not None or not integ.adaptive) else None,
        max_steps=integ.max_steps if setup.segment_steps is None else setup.segment_steps,
        throw=False,
        # gradflow never differentiates through a solve: a plain forward loop (a lax
        # while_loop) traces faster than the default checkpointed one, same numbers.
        adjoint=dfx.ForwardMode(),
        progress_meter=dfx.TqdmProgressMeter() if integ.progress else dfx.NoProgressMeter(),
    )
    final_state = jtu.tree_map(lambda x: x[-1], sol.ys[1])
    out = {
        "obs": sol.ys[0],
        "obs_ts": sol.ts[0],
        "t_final": sol.ts[1][-1],
        "final": split_arrays(eqx.combine(flow.params(final_state), rest))[0],
        "result": result_code(sol.result),
        "steps": sol.stats["num_steps"],
        "accepted": sol.stats["num_accepted_steps"],
        "rejected": sol.stats["num_rejected_steps"],
        "bad_total": sol.controller_state[3] if integ.adaptive else jnp.array(0, dtype=jnp.int32),
        "final_nonfinite": ~all_finite(final_state),
    }
    if segmented:
        out["carry"] = {"t": sol.ts[1][-1], "y": final_state, "solver_state": sol.solver_state,
                        "controller_state": sol.controller_state, "made_jump": sol.made_jump,
                        "dt": sol.controller_state[4] if integ.adaptive else shared["dt0"]}
    return out


def _solve_or_skip(setup: Setup, item: dict, shared: dict) -> dict:
    """`solve_one`, or zeros for an item marked `skip` (a seed finished in an earlier
    segment, or padding up to the batch's bucket size), which costs nothing at run
    time under "map". `solve_one` is traced once: its jaxpr gives both the output
    layout (for the zeros) and the solve itself (tracing it a second time for
    its shape would add a second to every compile)."""
    skip = item["skip"]
    item = {k: v for k, v in item.items() if k != "skip"}
    dynamic, static = eqx.partition((setup, item, shared), eqx.is_array)
    closed, shape = jax.make_jaxpr(lambda d: solve_one(*eqx.combine(d, static)), return_shape=True)(dynamic)
    leaves, layout = jtu.tree_flatten(shape)

    def solve():
        return jtu.tree_unflatten(layout, jaxpr_as_fun(closed)(*jtu.tree_leaves(dynamic)))

    def zeros():
        return jtu.tree_unflatten(layout, [jnp.zeros(x.shape, x.dtype) for x in leaves])

    return jax.lax.cond(skip, zeros, solve)


def program(setup: Setup, batching: Batching, items: dict, shared: dict) -> dict:
    """The batched solve: every seed of `items` (leading seed axis), batched as
    `batching` says and split over its devices. Only the arrays of `items` and
    `shared` are batched and placed; their other leaves (a flow's field names,
    say) are compiled in."""
    items, items_static = eqx.partition(items, eqx.is_array)
    shared, shared_static = eqx.partition(shared, eqx.is_array)
    solve = _solve_or_skip if "skip" in items else solve_one

    def one(item, sh):
        return solve(setup, eqx.combine(item, items_static), eqx.combine(sh, shared_static))

    batched = batch_over_seeds(one, batching.batching, batching.batch_size)
    if batching.devices is not None:
        batched = shard_over_devices(batched, batching.devices)
    return batched(items, shared)
