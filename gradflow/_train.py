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

from . import _checkpoint
from ._compile import compile_program
from ._config import describe_object, module_config, run_config
from ._devices import batch_over_seeds, seeds_to_keys
from ._grids import AbstractGrid, LogGrid
from ._options import Batching, Checkpointing, fingerprint
from ._problem import AbstractProblem
from ._run import Run, Stats
from ._simulate import check_problem, initialise
from ._solve import all_finite
from ._status import Status


def _seed_model(problem, skeleton, item, shared):
    """One seed's model, its trainable/other split and its data."""
    model = eqx.combine(item["model"], skeleton)
    params, rest = eqx.partition(model, problem.trainable(model))
    return params, rest, eqx.combine(item["data"], shared["data"])


def _start(problem, optimizer, batching, skeleton, items, shared):
    """Every seed's trainable parameters, optimiser state and observables at step 0."""
    def one(item, sh):
        params, rest, data = _seed_model(problem, skeleton, item, sh)
        return params, optimizer.init(params), problem.observables(eqx.combine(params, rest), data)

    return batch_over_seeds(one, batching.batching, batching.batch_size)(items, shared)


def _chunk(problem, optimizer, batching, skeleton, items, shared, params, opt_state, first_bad, k0, n):
    """`n` optimiser steps from step `k0` for every seed; the observables after them."""
    def one(carry, sh, k0, n):
        item, params, opt_state, first_bad = carry
        _, rest, data = _seed_model(problem, skeleton, item, sh)

        def loss_p(p):
            return problem.loss(eqx.combine(p, rest), data)

        def step(i, carry):
            p, s, bad = carry
            updates, s = optimizer.update(jax.grad(loss_p)(p), s, p)
            p = optax.apply_updates(p, updates)
            bad = jnp.where((bad < 0) & ~all_finite(p), k0 + i + 1, bad)
            return p, s, bad

        params, opt_state, first_bad = jax.lax.fori_loop(0, n, step, (params, opt_state, first_bad))
        return params, opt_state, first_bad, problem.observables(eqx.combine(params, rest), data)

    batched = batch_over_seeds(one, batching.batching, batching.batch_size)
    return batched((items, params, opt_state, first_bad), shared, k0, n)


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
    structure, _ = check_problem(problem)
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
    checkpointing = Checkpointing.from_keywords(locals())
    keys, seed_record = seeds_to_keys(seeds)
    batching = Batching(batching, batch_size)
    ks = np.unique(np.clip(np.round(save.times(steps * dt) / dt), 0, steps).astype(np.int64))

    initial = initialise(problem, keys, batching, structure)
    items = {"model": initial.model, "data": initial.data_per_seed}
    shared = {"data": initial.data_shared}
    start_args = (problem, optimizer, batching, initial.skeleton, items, shared)
    start_fn, compile_init = compile_program(_start, *start_args)
    params, opt_state, obs0 = start_fn(*start_args)

    first_bad = jnp.full((keys.shape[0],), -1, dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)

    def chunk_args(params, opt_state, first_bad, k0, n):
        return (problem, optimizer, batching, initial.skeleton, items, shared, params, opt_state, first_bad,
                jnp.asarray(k0), jnp.asarray(n))

    chunk_fn, compile_chunk = compile_program(_chunk, *chunk_args(params, opt_state, first_bad, 0, 1))

    # Chunks end at save steps (observables) and, with checkpoints, at multiples of
    # checkpoint_every (state written). Observables fill a (seeds, saves) array.
    bounds = ks if checkpointing is None else np.union1d(ks, np.arange(0, steps + 1, checkpointing.checkpoint_every))
    obs_full = {k: np.full((keys.shape[0], len(ks)) + np.shape(v)[1:], np.nan,
                           dtype=np.result_type(np.asarray(v).dtype, np.float32)) for k, v in obs0.items()}
    for k, v in obs0.items():
        obs_full[k][:, 0] = np.asarray(v)
    k_start = 0
    if checkpointing is not None:
        fingerprint_ = fingerprint(module_config(problem), describe_object(optimizer), steps, dt, seed_record,
                                   ks.tolist(), checkpointing.config(), batching.config(), initial.digest())
        template = {"params": params, "opt_state": opt_state, "first_bad": first_bad, "obs": obs_full,
                    "k": np.zeros((), np.int64)}
        loaded = _checkpoint.read(checkpointing.checkpoint_dir, fingerprint_, template) if checkpointing.resume else None
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
        params, opt_state, first_bad, obs = chunk_fn(*chunk_args(params, opt_state, first_bad, k_prev, k_next - k_prev))
        obs = jax.block_until_ready(obs)
        wall += time.perf_counter() - start
        if int(k_next) in save_index:
            for name, value in obs.items():
                obs_full[name][:, save_index[int(k_next)]] = np.asarray(value)
        bar.update(int(k_next - k_prev))
        if checkpointing is not None and k_next % checkpointing.checkpoint_every == 0 and k_next < steps:
            state = {"params": params, "opt_state": opt_state, "first_bad": first_bad, "obs": obs_full,
                     "k": np.asarray(k_next, np.int64)}
            _checkpoint.write(checkpointing.checkpoint_dir, jtu.tree_map(np.asarray, state), fingerprint_, int(k_next))
    bar.close()

    obs = obs_full
    first_bad = np.asarray(first_bad)
    n = keys.shape[0]
    status = np.where(first_bad >= 0, int(Status.NONFINITE), int(Status.OK)).astype(np.int32)
    done = np.where(first_bad >= 0, first_bad, steps)
    final = eqx.combine(jtu.tree_map(np.asarray, params), jtu.tree_map(np.asarray, initial.model), initial.skeleton)
    stats = Stats(steps=done, accepted=done, rejected=np.zeros(n, dtype=np.int64),
                  gradient_evaluations=done.astype(float), status=status, result=np.zeros(n, dtype=np.int32),
                  t_final=done * dt, wall_time=wall, compile_time=initial.compile_time + compile_init + compile_chunk)
    config = run_config("train", problem=problem, seeds=seed_record, command=command,
                        optimizer=describe_object(optimizer), steps=steps, dt=dt, save_steps=ks.tolist(),
                        save=save.config(), **batching.config())
    return Run(
        ts=ks * dt,
        obs=obs,
        initial=eqx.combine(jtu.tree_map(np.asarray, initial.model), initial.skeleton),
        final=final,
        stats=stats,
        config=config,
        problem=problem,
    )
