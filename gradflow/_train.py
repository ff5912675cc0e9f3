"""`train`: the discrete counterpart of `simulate`, with any optax optimiser."""

import json
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optax
from tqdm import tqdm

from . import _checkpoint
from ._config import describe_object, module_config, run_config
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
    checkpoint_dir=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
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

    `checkpoint_dir`: write the parameters, optimiser state and observables
    every `checkpoint_every` steps (atomically, as `simulate` does); with
    `resume=True` a run continues from the last checkpoint there. The result
    equals an uninterrupted run bitwise (each step is the same compiled code).
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
    if checkpoint_dir is not None:
        checkpoint_dir = _checkpoint.check_arguments(checkpoint_dir, checkpoint_every)
    elif resume:
        raise ValueError("`resume=True` needs the `checkpoint_dir` to resume from.")
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

    # Chunks end at save steps (observables) and, with checkpoints, at multiples of
    # checkpoint_every (state written). Observables fill a (seeds, saves) array.
    bounds = ks if checkpoint_dir is None else np.union1d(ks, np.arange(0, steps + 1, checkpoint_every))
    obs_full = {k: np.full((keys.shape[0], len(ks)) + np.shape(v)[1:], np.nan,
                           dtype=np.result_type(np.asarray(v).dtype, np.float32)) for k, v in obs0.items()}
    for k, v in obs0.items():
        obs_full[k][:, 0] = np.asarray(v)
    k_start = 0
    fingerprint = None
    if checkpoint_dir is not None:
        fingerprint = json.dumps([module_config(problem), describe_object(optimizer), steps, dt, seed_record,
                                  ks.tolist(), checkpoint_every, batching, batch_size,
                                  bool(jax.config.jax_enable_x64)], sort_keys=True, default=str)
        template = {"params": params, "opt_state": opt_state, "first_bad": first_bad, "obs": obs_full,
                    "k": np.zeros((), np.int64)}
        loaded = _checkpoint.read(checkpoint_dir, fingerprint, template) if resume else None
        if loaded is not None:
            state = loaded[0]
            params, opt_state = jtu.tree_map(jnp.asarray, state["params"]), jtu.tree_map(jnp.asarray, state["opt_state"])
            first_bad, obs_full, k_start = jnp.asarray(state["first_bad"]), state["obs"], int(state["k"])
    wall = 0.0
    bar = tqdm(total=steps, initial=k_start, desc="train", disable=not progress, unit="step")
    save_index = {int(k): i for i, k in enumerate(ks)}
    for k_prev, k_next in zip(bounds[:-1], bounds[1:]):
        if k_next <= k_start:
            continue  # done before the checkpoint this run resumed from
        start = time.perf_counter()
        params, opt_state, first_bad, obs = chunk_fn(
            params, opt_state, rest_arrays, data, first_bad, jnp.asarray(k_prev), jnp.asarray(k_next - k_prev)
        )
        obs = jax.block_until_ready(obs)
        wall += time.perf_counter() - start
        if int(k_next) in save_index:
            for name, value in obs.items():
                obs_full[name][:, save_index[int(k_next)]] = np.asarray(value)
        bar.update(int(k_next - k_prev))
        if checkpoint_dir is not None and k_next % checkpoint_every == 0 and k_next < steps:
            state = {"params": params, "opt_state": opt_state, "first_bad": first_bad, "obs": obs_full,
                     "k": np.asarray(k_next, np.int64)}
            _checkpoint.write(checkpoint_dir, jtu.tree_map(np.asarray, state), fingerprint, int(k_next))
    bar.close()

    obs = obs_full
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
