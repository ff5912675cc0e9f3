"""A trusted reference trajectory: the closed form where the problem has one,
otherwise a tight solve whose convergence is checked against a second one."""

import dataclasses
import hashlib
import warnings

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from .._devices import seeds_to_keys
from .._flows import AbstractFlow, GradientFlow
from .._grids import AbstractGrid, LinearGrid, _check_t1
from .._problem import AbstractProblem, WrappedProblem
from .._run import Run
from .._simulate import check_problem, simulate
from ._errors import TrackParams, trajectory_error


@dataclasses.dataclass
class Reference:
    """A reference run and how far it can be trusted.

    **Attributes:**

    - `run`: observables at the save times and the final models.
    - `kind`: "exact" (the problem's closed form) or "solve".
    - `agreement`: for a solve, the distance to the check solve — "params" (max
      over seeds of the relative 2-norm distance of the final parameters) and
      "obs" (per observable, max over times and seeds of the deviation relative
      to max(|value|, 1), so observables at round-off level do not fail it).
    - `tolerance`: the agreement required for `verified`.
    - `description`: how the reference was made, in words (`str(reference)`
      prints it).
    - `accuracy`: how far the reference itself can be trusted (see below).
    - `verified`: True for a closed form; for a solve, whether every
      agreement is finite and within `tolerance`.
    """

    run: Run
    kind: str
    agreement: dict
    tolerance: float
    description: str

    @property
    def accuracy(self) -> float:
        """How far the reference itself can be trusted, relative: 0 for a closed
        form; for a solve, its disagreement with the check solve (parameters at
        t1 and along the trajectory)."""
        if self.kind == "exact":
            return 0.0
        return float(max(self.agreement["params"], self.agreement.get("params over time", 0.0)))

    @property
    def verified(self) -> bool:
        if self.kind == "exact":
            return True
        worst = max([self.agreement["params"], *self.agreement["obs"].values()])
        return bool(np.isfinite(worst) and worst <= self.tolerance)

    def __str__(self) -> str:
        if self.kind == "exact":
            return f"reference: {self.description} (closed form)"
        worst_obs = max(self.agreement["obs"].values(), default=np.nan)
        return (f"reference: {self.description}; agreement with the check solve: params {self.agreement['params']:.2e}, "
                f"observables {worst_obs:.2e} → {'verified' if self.verified else 'NOT verified'} "
                f"(tolerance {self.tolerance:g})")


def flat_params(run: Run) -> np.ndarray:
    """(seeds, parameters): every floating-point array of the final models, flattened."""
    leaves = [np.asarray(x) for x in jtu.tree_leaves(run.final) if np.issubdtype(np.asarray(x).dtype, np.floating)]
    return np.concatenate([x.reshape(x.shape[0], -1) for x in leaves], axis=1)


def param_error(run: Run, ref: Run, norm: str = "l2") -> np.ndarray:
    """Per seed, the relative distance of `run`'s final parameters to `ref`'s.

    **Arguments:**

    - `run`: a `gradflow.Run`.
    - `ref`: the reference's `Run`, with the same seeds.
    - `norm`: "l2" (default) or "max".

    **Returns:**

    An array (seeds,): ‖θ_run − θ_ref‖ / ‖θ_ref‖ over every floating-point array
    of the final models.
    """
    p, q = flat_params(run), flat_params(ref)
    order = 2 if norm == "l2" else np.inf
    return np.linalg.norm(p - q, ord=order, axis=1) / np.linalg.norm(q, ord=order, axis=1)


def obs_error(run: Run, ref: Run, name: str) -> np.ndarray:
    """Per seed, the error of observable `name` against the reference.

    **Arguments:**

    - `run`: a `gradflow.Run`.
    - `ref`: the reference's `Run`, with the same seeds and save times.
    - `name`: the observable.

    **Returns:**

    An array (seeds,): the max over save times of |run − ref|, relative to the
    max of |ref| over times (so values crossing 0 are fine; absolute where the
    reference is 0 throughout).
    """
    a = np.asarray(run.obs[name], dtype=float).reshape(run.n_seeds, len(run.ts), -1)
    b = np.asarray(ref.obs[name], dtype=float).reshape(ref.n_seeds, len(ref.ts), -1)
    scale = np.max(np.abs(b), axis=(1, 2))
    scale = np.where(scale > 0, scale, 1.0)  # an observable that is 0 throughout: absolute error
    return np.max(np.abs(a - b), axis=(1, 2)) / scale


def _abs_floor_error(run: Run, ref: Run, name: str) -> np.ndarray:
    a = np.asarray(run.obs[name], dtype=float).reshape(run.n_seeds, len(run.ts), -1)
    b = np.asarray(ref.obs[name], dtype=float).reshape(ref.n_seeds, len(ref.ts), -1)
    return np.max(np.abs(a - b), axis=(1, 2)) / np.maximum(np.max(np.abs(b), axis=(1, 2)), 1.0)


def _exact_run(problem, t1, seeds, save) -> Run:
    keys, record = seeds_to_keys(seeds)
    ts = save.times(t1)
    model0, data = jax.jit(jax.vmap(problem.init))(keys)

    def at(m0, d, t):
        return problem.observables(problem.exact_solution(m0, d, t), d)

    obs = jax.jit(jax.vmap(jax.vmap(at, (None, None, 0)), (0, 0, None)))(model0, data, jnp.asarray(ts))
    final = jax.jit(jax.vmap(problem.exact_solution, (0, 0, None)))(model0, data, t1)
    n = keys.shape[0]
    stats = {"steps": np.zeros(n), "accepted": np.zeros(n), "rejected": np.zeros(n),
             "gradient_evaluations": np.zeros(n), "status": np.zeros(n, dtype=np.int32),
             "result": np.zeros(n, dtype=np.int32), "t_final": np.full(n, t1), "wall_time": np.array(0.0),
             "compile_time": np.array(0.0)}
    return Run(ts, {k: np.asarray(v) for k, v in obs.items()}, jtu.tree_map(np.asarray, model0),
               jtu.tree_map(np.asarray, final), stats,
               {"kind": "exact", "seeds": record, "t1": t1}, problem=problem)


def reference(problem, flow: AbstractFlow = GradientFlow(), *, t1, seeds=1, save: AbstractGrid = LinearGrid(n=21),
              exact: bool | None = None, solver=None, rtol: float = 1e-12, atol: float | None = None,
              check_solver=None, check_rtol: float | None = None, tolerance: float = 1e-8,
              max_steps: int = 1_000_000) -> Reference:
    """A reference trajectory of `flow` on `problem` from 0 to `t1`.

    Where the problem has a closed form (`exact_solution`) and the flow is the
    unit-rate gradient flow, that is the reference (`exact=False` forces a
    solve). Otherwise `solver` (default Dopri8; pass diffrax.Kvaerno5() for a
    stiff problem) runs at `rtol` (atol = rtol/100 unless given), and a check
    solve — `check_solver` (default: the same solver) at `check_rtol` (default
    rtol/10) — runs beside it. Their agreement (final parameters and every
    observable) is reported; if it exceeds `tolerance` the reference is marked
    not verified and a warning says so. Use float64 (`jax_enable_x64`).

    **Arguments:**

    - `problem`, `flow`, `t1`, `seeds`, `save`, `max_steps`: as for `gradflow.simulate`.
    - `exact`: use the closed form (None: where there is one).
    - `solver`, `rtol`, `atol`: the reference solve (default Dopri8, rtol 1e-12).
    - `check_solver`, `check_rtol`: the check solve beside it.
    - `tolerance`: the largest agreement between the two for the reference to
      count as verified.

    **Returns:**

    A `Reference`: the reference run, how it was made, and the agreement of the
    check solve.
    """
    check_problem(problem, flow)
    t1 = _check_t1(t1)
    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and 0 < tolerance < 1):
        raise ValueError(f"`tolerance` (the agreement a verified reference needs) must be in (0, 1); got {tolerance!r}.")
    if not isinstance(problem, TrackParams):  # parameters saved along the way: errors over time
        problem = TrackParams(problem)
    if not isinstance(save, AbstractGrid):
        raise TypeError(f"`save` must be a gradflow grid such as gradflow.LinearGrid(n=21); got {type(save).__name__}.")
    unit_gradient_flow = isinstance(flow, GradientFlow) and not flow.rates
    if exact is None:
        exact = problem.has_exact_solution and unit_gradient_flow
    if exact:
        if not problem.has_exact_solution:
            raise ValueError(f"`exact=True`, but {type(problem).__name__} has no exact_solution; use exact=False.")
        if not unit_gradient_flow:
            raise ValueError("`exact=True` needs the unit-rate GradientFlow() (the closed form is for that flow).")
        return Reference(_exact_run(problem, t1, seeds, save), "exact", {}, tolerance, "closed-form solution")
    if not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ValueError(f"`rtol` must be a number in (0, 1); got {rtol!r}.")
    if not jax.config.jax_enable_x64 and rtol < 1e-6:
        warnings.warn(f"reference at rtol {rtol:g} in float32 cannot converge: enable jax_enable_x64.", stacklevel=2)
    solver = solver or dfx.Dopri8()
    check_solver = check_solver or solver
    check_rtol = check_rtol or rtol / 10
    atol = rtol / 100 if atol is None else atol

    def solve(s, r, a):
        return simulate(problem, flow, t1=t1, seeds=seeds, save=save, solver=s, max_steps=max_steps,
                        stepsize_controller=dfx.PIDController(rtol=r, atol=a))

    run = solve(solver, rtol, atol)
    check = solve(check_solver, check_rtol, atol * check_rtol / rtol)
    if not (run.ok.all() and check.ok.all()):
        failed = [m for m in run.messages + check.messages if not m.startswith("ok")]
        raise RuntimeError(f"the reference solve failed for some seeds: {failed[0]}")
    # Observables are compared relative to max(|value|, 1): quantities that sit at
    # round-off level throughout (invariant drift, say) must not fail the check.
    agreement = {"params": float(np.max(param_error(run, check))),
                 "params over time": float(np.max(trajectory_error(run.obs["params"], check.obs["params"]))),
                 "obs": {name: float(np.max(_abs_floor_error(run, check, name))) for name in run.obs if name != "params"}}
    desc = (f"{type(solver).__name__} rtol {rtol:g}, checked against {type(check_solver).__name__} "
            f"rtol {check_rtol:g}")
    ref = Reference(run, "solve", agreement, tolerance, desc)
    if not ref.verified:
        warnings.warn(f"{ref}: tighten rtol or change the solver before trusting errors below this level.",
                      stacklevel=2)
    return ref


class InitialStates:
    """Every seed's initial model and data (numpy arrays, leading seed axis),
    held by a `Recast` as a static field: equal, hashed and recorded by the
    SHA-256 of what it holds, so a program or a record of it names its contents."""

    def __init__(self, models, data):
        self.models = jtu.tree_map(np.asarray, models)
        self.data = jtu.tree_map(np.asarray, data)
        h = hashlib.sha256()
        for path, x in jtu.tree_flatten_with_path((self.models, self.data))[0]:
            h.update(f"{jtu.keystr(path)}{x.shape}{x.dtype}".encode() + np.ascontiguousarray(x).tobytes())
        self.sha256 = h.hexdigest()
        self.seeds = int(jtu.tree_leaves(self.models)[0].shape[0])

    def __eq__(self, other):
        return isinstance(other, InitialStates) and other.sha256 == self.sha256

    def __hash__(self):
        return hash(self.sha256)

    def __repr__(self):
        return f"InitialStates(seeds={self.seeds}, sha256={self.sha256})"


class Recast(WrappedProblem):
    """`problem` with each seed's initial model and data taken from the float64
    draws in `start` (rounded to the current precision), so a float32 run starts
    from exactly the state of a float64 reference instead of from float32
    random draws.

    Build it with `recast(problem, seeds)` under float64; use it for seeds
    0 … seeds−1 (seed i is the key `PRNGKey(i)`) under either precision.

    **Arguments:**

    - `inner`: the problem.
    - `start`: every seed's initial model and data (float64 numpy arrays,
      leading seed axis), a static field recorded by its SHA-256.
    """

    inner: AbstractProblem
    start: InitialStates = eqx.field(static=True)

    def init(self, key):
        raw = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        i = raw[-1]
        pick = lambda x: jnp.asarray(x)[i]  # noqa: E731  (jnp.asarray: float64 → float32 under x32)
        return jtu.tree_map(pick, self.start.models), jtu.tree_map(pick, self.start.data)






def recast(problem, seeds: int) -> Recast:
    """A `Recast` of `problem` holding the float64 initial models and data of
    seeds 0 … seeds−1.

    Call it under float64 (with `jax_enable_x64` on; otherwise it raises
    `ValueError`).

    **Arguments:**

    - `problem`: the problem.
    - `seeds`: the number of seeds, 0 … seeds−1.

    **Returns:**

    A `Recast`.
    """
    if not jax.config.jax_enable_x64:
        raise ValueError("recast() draws the float64 initial states: call it with jax_enable_x64 on.")
    keys, _ = seeds_to_keys(int(seeds))
    models, data = jax.jit(jax.vmap(problem.init))(keys)
    return Recast(inner=problem, start=InitialStates(models, data))
