"""`train`: the discrete counterpart of `simulate`, with any optax optimiser."""

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optax
from tqdm import tqdm

from ._config import describe_object, run_config
from ._devices import batch_over_seeds, resolve_batching, seeds_to_keys
from ._grids import AbstractGrid, LogGrid
from ._problem import AbstractProblem
from ._run import Run, split_arrays
from ._simulate import _all_finite, check_problem, compiled
from ._status import Status


def train(
    problem: AbstractProblem,
    optimizer: optax.GradientTransformation,
    *,
    steps: int,
    dt: float,
    seeds=1,
    save: AbstractGrid = LogGrid(),
    progress: bool = False,
    batching: str = "auto",
    batch_size: int | None = None,
    command: str | None = None,
) -> Run:
    """Run `steps` steps of `optimizer` on `problem` for each seed.

    `dt` is the flow time one step stands for (the learning rate, for GD and
    SignGD), so `run.ts` = step × dt is comparable with a `simulate` run's time
    axis; `save` is the same kind of grid as for `simulate`, evaluated on
    [0, steps·dt] and rounded to whole steps. Any `optax.GradientTransformation`
    works unchanged. A seed whose parameters become NaN/Inf is marked
    `Status.NONFINITE` with `t_final` at its first bad step. `batching` and
    `batch_size` are as for `simulate`.
    """
    check_problem(problem)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "`optimizer` must be an optax.GradientTransformation such as optax.sgd(1e-2); "
            f"got {type(optimizer).__name__}."
        )
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"`steps` must be an integer >= 1; got {steps!r}.")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"`dt` (flow time per step, usually the learning rate) must be finite and > 0; got {dt!r}.")
    if not isinstance(save, AbstractGrid):
        raise TypeError(f"`save` must be a gradflow grid such as gradflow.LogGrid(n=200); got {type(save).__name__}.")
    steps = int(steps)
    keys, seed_record = seeds_to_keys(seeds)
    batching = resolve_batching(batching, batch_size)
    ks = np.unique(np.clip(np.round(save.times(steps * dt) / dt), 0, steps).astype(np.int64))

    def build_init():
        def one(key):
            model, data = problem.init(key)
            params, rest = eqx.partition(model, problem.trainable(model))
            rest_arrays, _ = split_arrays(rest)
            obs = problem.observables(model, data)
            return params, optimizer.init(params), rest_arrays, data, obs, split_arrays(model)[0]

        return jax.vmap(one)

    init_fn, compile_init = compiled(("train-init", problem, optimizer), build_init, (keys,))
    params, opt_state, rest_arrays, data, obs0, initial = init_fn(keys)
    struct = eqx.filter_eval_shape(lambda k: problem.init(k)[0], jax.random.PRNGKey(0))
    _, skeleton = split_arrays(struct)
    rest_skeleton = eqx.filter_eval_shape(
        lambda k: split_arrays(eqx.partition(problem.init(k)[0], problem.trainable(problem.init(k)[0]))[1])[1],
        jax.random.PRNGKey(0),
    )

    def build_chunk():
        def one(carry, k0, n):
            params, opt_state, rest_arrays, data, first_bad = carry
            rest = eqx.combine(rest_arrays, rest_skeleton)

            def loss_p(p):
                return problem.loss(eqx.combine(p, rest), data)

            def step(i, carry):
                p, s, bad = carry
                updates, s = optimizer.update(jax.grad(loss_p)(p), s, p)
                p = optax.apply_updates(p, updates)
                bad = jnp.where((bad < 0) & ~_all_finite(p), k0 + i + 1, bad)
                return p, s, bad

            params, opt_state, first_bad = jax.lax.fori_loop(0, n, step, (params, opt_state, first_bad))
            obs = problem.observables(eqx.combine(params, rest), data)
            return params, opt_state, first_bad, obs

        batched = batch_over_seeds(one, batching, batch_size)
        return lambda params, opt_state, rest_arrays, data, first_bad, k0, n: batched(
            (params, opt_state, rest_arrays, data, first_bad), k0, n
        )

    first_bad = jnp.full((keys.shape[0],), -1, dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
    example = (params, opt_state, rest_arrays, data, first_bad, jnp.asarray(0), jnp.asarray(1))
    chunk_fn, compile_chunk = compiled(("train-chunk", problem, optimizer, batching, batch_size), build_chunk, example)

    obs_list = [jtu.tree_map(np.asarray, obs0)]
    wall = 0.0
    bar = tqdm(total=steps, desc="train", disable=not progress, unit="step")
    for k_prev, k_next in zip(ks[:-1], ks[1:]):
        start = time.perf_counter()
        params, opt_state, first_bad, obs = chunk_fn(
            params, opt_state, rest_arrays, data, first_bad, jnp.asarray(k_prev), jnp.asarray(k_next - k_prev)
        )
        obs = jax.block_until_ready(obs)
        wall += time.perf_counter() - start
        obs_list.append(jtu.tree_map(np.asarray, obs))
        bar.update(int(k_next - k_prev))
    bar.close()

    obs = {name: np.stack([o[name] for o in obs_list], axis=1) for name in obs_list[0]}
    first_bad = np.asarray(first_bad)
    n = keys.shape[0]
    status = np.where(first_bad >= 0, int(Status.NONFINITE), int(Status.OK)).astype(np.int32)
    done = np.where(first_bad >= 0, first_bad, steps)
    final = eqx.combine(eqx.combine(params, rest_arrays), skeleton)
    stats = {
        "steps": done,
        "accepted": done,
        "rejected": np.zeros(n, dtype=np.int64),
        "gradient_evaluations": done.astype(float),
        "status": status,
        "result": np.zeros(n, dtype=np.int32),
        "t_final": done * dt,
        "wall_time": np.array(wall),
        "compile_time": np.array(compile_init + compile_chunk),
    }
    config = run_config(
        "train", problem=problem, save=save, seeds=seed_record, batching=batching, batch_size=batch_size,
        command=command, optimizer=describe_object(optimizer), steps=steps, dt=dt, save_steps=ks.tolist(),
    )
    return Run(
        ts=ks * dt,
        obs=obs,
        initial=eqx.combine(initial, skeleton),
        final=jtu.tree_map(np.asarray, final),
        stats=stats,
        config=config,
        problem=problem,
    )
