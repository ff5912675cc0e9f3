"""`simulate`: integrate a problem's flow over a batch of seeds with diffrax.

`simulate` is a pipeline, read top to bottom:

1. resolve the options into `Integration`, `Batching` and `Checkpointing`
   (`gradflow._options`), which check themselves;
2. `initialise`: each seed's model and data, drawn by `problem.init` as a step
   of its own, outside any solve;
3. `gradflow._solve.solve_one`: one seed's solve, a pure module-level function
   whose model and data are arguments (never constants), so one compiled
   program serves every data set of the same shapes;
4.–5. `gradflow._solve.program`: the seeds batched (map or vmap) and split over
   devices (`shard_map`);
6. `gradflow._segments`: integrated in one go or in checkpointed segments;
7. `assemble`: the `Run`.
"""

import hashlib
import warnings
from collections import OrderedDict

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._compile import compile_lowered
from ._config import module_config, run_config
from ._devices import batch_over_seeds, bucket, pad_to, seeds_to_keys
from ._flows import AbstractFlow, GradientFlow, ModifiedFlow
from ._grids import AbstractGrid, LogGrid
from ._options import Batching, Checkpointing, Integration, fingerprint, resolve_options
from ._problem import AbstractProblem
from ._run import Run, Stats
from ._sde import SDEFlow, noise_keys, per_sample_count
from ._segments import run_once, run_segments
from ._solve import Setup, classify, gradient_evaluations, split_arrays
from ._stop import AbstractStop


def check_problem(problem, flow=None):
    """Check a problem once, before anything compiles, from `eval_shape` of its
    `init`, `trainable`, `loss` and `observables`, and the flow against its
    trainable parameters. Each violation is one error naming the method and the
    fix. Returns ((model, data) structure, trainable-parameter structure)."""
    if not isinstance(problem, AbstractProblem):
        raise TypeError(f"`problem` must be a gradflow.AbstractProblem; got {type(problem).__name__}.")
    if flow is not None and not isinstance(flow, AbstractFlow):
        raise TypeError(f"`flow` must be a gradflow flow (e.g. gradflow.GradientFlow()); got {type(flow).__name__}.")
    name = type(problem).__name__
    drawn = _traced(name, problem.init, jax.random.PRNGKey(0))  # traced every call: files are read
    key = _checked_key(problem, flow, drawn)
    if key is not None and key in _CHECKED:
        _CHECKED.move_to_end(key)
        return drawn, _CHECKED[key]
    arrays, static = eqx.partition(drawn, lambda x: isinstance(x, jax.ShapeDtypeStruct))

    def structure(arrays):
        model, data = eqx.combine(arrays, static)
        params, _ = eqx.partition(model, problem.trainable(model))
        return params, problem.loss(model, data), problem.observables(model, data)

    params, loss, observables = _traced(name, structure, arrays)
    _check_trainable(name, params)
    _check_loss_and_observables(name, loss, observables)
    if flow is not None:
        flow.check(params)
    if key is not None:
        _CHECKED[key] = params
        while len(_CHECKED) > 64:
            _CHECKED.popitem(last=False)
    return drawn, params


def _traced(name, fn, *args):
    """`eqx.filter_eval_shape(fn, *args)`, a tracing failure named after the problem."""
    try:
        return eqx.filter_eval_shape(fn, *args)
    except jax.errors.ConcretizationTypeError:
        raise  # a traced value used as a Python number (its own message; `sweep` names the field)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}: tracing init/trainable/loss/observables failed: {e}") from e


# Problems already checked: keyed on the problem and flow (by value), and the shapes,
# dtypes and non-array parts of what `init` returns (traced on every call), which is
# everything tracing trainable/loss/observables depends on, as for a jit cache. Tracing
# them is most of a small run's fixed cost (19 ms of scan-and-snap's 52 ms per call).
_CHECKED: OrderedDict = OrderedDict()


def _checked_key(problem, flow, drawn):
    leaves, treedef = jtu.tree_flatten(drawn)
    described = tuple((x.shape, str(x.dtype)) if isinstance(x, jax.ShapeDtypeStruct) else x for x in leaves)
    key = (problem, flow, treedef, described, jax.config.jax_enable_x64)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _check_trainable(name, params):
    leaves = jtu.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"{name}.trainable marks no leaf of the model as trainable.")
    for path, leaf in leaves:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            raise ValueError(f"{name}.trainable marks model{jtu.keystr(path)} trainable, but it is a "
                             f"{type(leaf).__name__}, not an array; mark it False in `trainable`.")
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise ValueError(
                f"{name}: model{jtu.keystr(path)} is an integer array ({dtype}) and is trainable, so it would be "
                f"trained as an integer (never moving); build it as floats, e.g. jnp.asarray(..., dtype=float), or "
                f"keep it fixed by marking it False in {name}.trainable."
            )


def _check_loss_and_observables(name, loss, observables):
    if not (isinstance(loss, jax.ShapeDtypeStruct) and loss.shape == () and jnp.issubdtype(loss.dtype, jnp.inexact)):
        got = f"shape {loss.shape} {loss.dtype}" if isinstance(loss, jax.ShapeDtypeStruct) else type(loss).__name__
        raise ValueError(f"{name}.loss must return a floating-point scalar; it returned {got}: reduce it, "
                         "e.g. jnp.mean(per_example_losses).")
    if not isinstance(observables, dict):
        raise ValueError(f"{name}.observables must return a dict of arrays; it returned {type(observables).__name__}.")
    if "loss" not in observables:
        raise ValueError(f"{name}.observables must include 'loss' (summaries and figures use it); it returned "
                         f"{sorted(observables)}: add \"loss\": self.loss(model, data).")
    for key, value in observables.items():
        if not isinstance(value, jax.ShapeDtypeStruct):
            raise ValueError(f"{name}.observables[{key!r}] is a {type(value).__name__}, not an array; return "
                             "jnp.asarray(...) (observables are saved per seed and time).")


class Initial(eqx.Module):
    """Every seed's starting point, drawn by `initialise`: the model's arrays
    (leading seed axis) and non-array parts, and the data split into the arrays
    that differ between seeds (leading seed axis) and those every seed shares
    (stored once)."""

    model: object
    skeleton: object
    data_per_seed: object
    data_shared: object
    compile_time: float = 0.0  # seconds spent compiling the draw (0.0: compiled before)

    def digest(self) -> str:
        """SHA-256 of the initial models and the data: what a checkpoint must have been started from."""
        h = hashlib.sha256()
        for x in jtu.tree_leaves((self.model, self.data_per_seed, self.data_shared)):
            if eqx.is_array(x):
                a = np.asarray(x)
                h.update(f"{a.shape}{a.dtype}".encode() + a.tobytes())
        return h.hexdigest()


def _draw(problem, batching, keys):
    """Every seed's model and data arrays (the program `initialise` runs)."""
    one = lambda item, shared: eqx.filter(problem.init(item), eqx.is_array)  # noqa: E731
    return batch_over_seeds(one, batching.batching, batching.batch_size)(keys, None)


def initialise(problem: AbstractProblem, keys, batching: Batching, structure=None) -> Initial:
    """Each seed's model and data from `problem.init`, as a step of its own.

    It is traced on every call, so whatever `init` reads (a file, say) is read
    now, and compiled only when its lowered program is new (`compile_lowered`
    keys on the program's text, constants included). Its results reach the
    solve as arguments. Data arrays equal across seeds are kept once.
    `structure`: `init`'s `eval_shape` (from `check_problem`), if already known."""
    if structure is None:
        structure = eqx.filter_eval_shape(problem.init, keys[0])
    n = keys.shape[0]
    one_device = Batching(batching.batching, batching.batch_size)
    padded = pad_to(keys, bucket(n, one_device))  # a new seed count reuses the draw's compile
    args = (problem, one_device, padded)
    fn, seconds = compile_lowered(_draw, *args)
    drawn = jtu.tree_map(lambda x: np.asarray(x)[:n], fn(*args))  # on the host: compared and sliced without compiling
    model, data = eqx.combine(drawn, eqx.filter(structure, eqx.is_array, inverse=True))
    model_arrays, skeleton = split_arrays(model)
    data_arrays, data_static = eqx.partition(data, eqx.is_array)
    varies = jtu.tree_map(lambda x: n > 1 and not np.array_equal(x, x[:1].repeat(n, 0)), data_arrays)
    per_seed = eqx.filter(data_arrays, varies)
    shared = jtu.tree_map(lambda x: x[0], eqx.filter(data_arrays, varies, inverse=True))
    return Initial(model_arrays, skeleton, per_seed, eqx.combine(shared, data_static), seconds)


def _flow_numbers_as_arrays(flow):
    """The flow with its float fields (ε, Adam's a and b, rates) as arrays: they
    enter the compiled solve as arguments, so a ladder of them shares one compile."""
    return jtu.tree_map(lambda x: jnp.asarray(x) if isinstance(x, float) else x, flow)


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
) -> Run:
    """Integrate `flow` on `problem` from t = 0 to `t1` for each seed.

    **Arguments:**

    - `problem`: what is trained (an `AbstractProblem`).
    - `flow`: how parameters move (`GradientFlow`, `SignFlow`, ...).
    - `t1`: the final flow time (> 0).
    - `seeds`: an int N (seeds 0 … N−1), a list of ints, or a key array.
    - `solver`, `stepsize_controller`, `dt0`, `max_steps`: diffrax objects and
      numbers for `diffrax.diffeqsolve` (`dt0=None` lets an adaptive controller
      choose the first step; fixed-step solves need `ConstantStepSize()` and
      `dt0`). An adaptive controller is wrapped in a guard that ends a seed whose
      steps keep failing (NaN/Inf, endless rejections, a collapsing step); a PID
      controller's `rtol`/`atol`, `dt0`, `t1`, the save times and the flow's
      numbers enter the compiled solve as arguments, so changing them does not
      recompile.
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
      every process's devices (see the docs' *Seeds and devices* page, "Several hosts").
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
    - `conserved`: also save `drift/NAME`, the absolute drift ‖c(t) − c(0)‖ of
      every quantity `problem.conserved` declares (exact invariants of the
      unit-rate gradient flow: an accuracy check).
      `gradflow.accuracy.invariant_drift` divides it by ‖c(0)‖ (relative drift),
      and gives the absolute drift beside it.

    **Returns:**

    A `Run`: the save times `ts`, the observables `obs[name]` (seeds × times × …),
    the models at t = 0 and at the end, per-seed `stats` and the `config`.

    Every seed is solved with its own step sizes and result code; a seed that
    diverges, collapses its step size or runs out of steps is marked in
    `run.stats["status"]` and keeps the observables saved before it failed.
    """
    keywords = {name: value for name, value in locals().items() if name not in ("problem", "flow", "seeds")}
    return drive(problem, flow, seeds, *resolve_options(keywords), command=command, progress_lines=bool(progress))


def drive(problem, flow, seeds, integration: Integration, batching: Batching, checkpointing: Checkpointing | None,
          *, command=None, progress_lines=False, flows=None, record=None) -> Run:
    """The pipeline behind `simulate` and `sweep`. `flows` (optional) gives each
    item of the batch its own flow numbers: `flow` with array leaves carrying a
    leading axis as long as `seeds`; `record` is then what the config records."""
    structure, _ = check_problem(problem, flow)
    if isinstance(flow, SDEFlow):
        flow.check_setting(problem, per_sample_count(problem, *structure), integration)
        if batching.devices is not None:
            # diffrax's Brownian-motion control term fails to trace under shard_map (equinox's closure
            # conversion sees other dynamic arguments); until that is solved the seeds run on one device.
            warnings.warn("SDEFlow runs its seeds on one device (its Brownian-motion term does not run under "
                          "shard_map yet).", stacklevel=3)
            batching = Batching(batching.batching, batching.batch_size, None)
    keys, seed_record = seeds_to_keys(seeds)
    initial = initialise(problem, keys, batching, structure)
    setup = Setup(problem, integration.static(), initial.skeleton)
    items = {"model": initial.model, "data": initial.data_per_seed}
    if isinstance(flow, SDEFlow):
        items["noise_key"] = noise_keys(keys)
    shared = {"data": initial.data_shared, **integration.runtime()}
    if flows is None:
        shared["flow"] = _flow_numbers_as_arrays(flow)
    else:
        items["flow"] = flows
    if checkpointing is None:
        out, wall, compile_time, started_at = run_once(setup, batching, items, shared)
    else:
        batch_record = {**batching.config(), "devices": batching.n_devices}
        print_ = fingerprint(module_config(problem), flow.config(), integration.config(), batch_record,
                             checkpointing.config(), seed_record, record, initial.digest())
        out, wall, compile_time, started_at = run_segments(setup, batching, items, shared, checkpointing, print_,
                                                           progress_lines)
    return assemble(problem, flow, integration, batching, seed_record, initial, out, wall, compile_time, started_at,
                    command)


def saved_hvps(obs) -> np.ndarray:
    """Hessian–vector products the saved observables cost, per seed: the sum of
    `gradflow.Sharpness`'s "sharpness_hvps" over the saves made (0 without it)."""
    counts = obs.get("sharpness_hvps")
    if counts is None:
        return np.zeros(next(iter(obs.values())).shape[0])
    return np.nansum(counts, axis=1)


def assemble(problem, flow, integration, batching, seed_record, initial, out, wall, compile_time, started_at,
             command) -> Run:
    """The `Run` from a solve's outputs: observables NaN after a seed's last save,
    per-seed statuses and counts, models, and the config record."""
    status = classify(out["result"], out["bad_total"], out["final_nonfinite"])
    unsaved = ~np.isfinite(out["obs_ts"])
    obs = {}
    for name, value in out["obs"].items():
        value = np.array(value, dtype=np.result_type(value.dtype, np.float32))
        value[unsaved] = np.nan
        obs[name] = value
    evals = gradient_evaluations(integration.solver, out["steps"])
    stop = integration.stop
    if stop is not None and stop.gradient_evaluations_per_step:
        evals = evals + stop.gradient_evaluations_per_step * (out["steps"] + 1)
    hvps = saved_hvps(obs) + (evals if isinstance(flow, ModifiedFlow) else 0)  # one per vector-field evaluation
    stats = Stats(steps=out["steps"], accepted=out["accepted"], rejected=out["rejected"], gradient_evaluations=evals,
                  status=status, result=out["result"], t_final=out["t_final"], wall_time=wall,
                  compile_time=compile_time + initial.compile_time, started_at=started_at,
                  hessian_vector_products=hvps)
    config = run_config("simulate", problem=problem, seeds=seed_record, command=command, flow=flow.config(),
                        **integration.config(), **batching.config())
    return Run(
        ts=integration.times(),
        obs=obs,
        initial=eqx.combine(jtu.tree_map(np.asarray, initial.model), initial.skeleton),
        final=eqx.combine(out["final"], initial.skeleton),
        stats=stats,
        config=config,
        problem=problem,
    )
