"""`train`: the discrete counterpart of `simulate`, with any optax optimiser."""

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
from ._devices import batch_over_seeds, bucket, count, pad_to, seeds_to_keys
from ._grids import AbstractGrid, LogGrid
from ._optim import Optimizer
from ._options import Batching, Checkpointing, Stepping, fingerprint
from ._problem import AbstractProblem
from ._run import Run, Stats
from ._sde import check_samples, noise_keys, per_sample_count
from ._simulate import check_problem, initialise, saved_hvps
from ._solve import all_finite
from ._status import Status


def _seed_model(problem, skeleton, item, shared):
    """One seed's model, its trainable/other split and its data."""
    model = eqx.combine(item["model"], skeleton)
    params, rest = eqx.partition(model, problem.trainable(model))
    return params, rest, eqx.combine(item["data"], shared["data"])


def _optimizer(item, shared):
    """The optimiser of one item: its own (a sweep) or the one all share."""
    return item["optimizer"] if "optimizer" in item else shared["optimizer"]


def _start(problem, batching, skeleton, items, shared):
    """Every seed's trainable parameters, optimiser state and observables at step 0."""
    def one(item, sh):
        params, rest, data = _seed_model(problem, skeleton, item, sh)
        return params, _optimizer(item, sh).init(params), problem.observables(eqx.combine(params, rest), data)

    return batch_over_seeds(one, batching.batching, batching.batch_size)(items, shared)


def _chunk(problem, batching, skeleton, items, shared, params, opt_state, first_bad, k0, n):
    """`n` optimiser steps from step `k0` for every seed; the observables after them."""
    def one(carry, sh, k0, n):
        item, params, opt_state, first_bad = carry
        _, rest, data = _seed_model(problem, skeleton, item, sh)
        optimizer = _optimizer(item, sh)

        def loss_p(p):
            return problem.loss(eqx.combine(p, rest), data)

        minibatch = sh.get("minibatch")

        def gradient(p, k):
            if minibatch is None:
                return jax.grad(loss_p)(p)
            # minibatch SGD: `minibatch` indices drawn uniformly with replacement, keyed by (seed, step)
            per_sample = lambda q: problem.per_sample_loss(eqx.combine(q, rest), data)  # noqa: E731
            n = jax.eval_shape(per_sample, p).shape[0]
            idx = jax.random.randint(jax.random.fold_in(item["noise_key"], k), (minibatch,), 0, n)
            return jax.grad(lambda q: jnp.mean(per_sample(q)[idx]))(p)

        def step(i, carry):
            p, s, bad = carry
            updates, s = optimizer.update(gradient(p, k0 + i), s, p)
            p = optax.apply_updates(p, updates)
            bad = jnp.where((bad < 0) & ~all_finite(p), k0 + i + 1, bad)
            return p, s, bad

        todo = jnp.where(item["skip"], 0, n) if "skip" in item else n  # padding: no steps
        params, opt_state, first_bad = jax.lax.fori_loop(0, todo, step, (params, opt_state, first_bad))
        return params, opt_state, first_bad, problem.observables(eqx.combine(params, rest), data)

    batched = batch_over_seeds(one, batching.batching, batching.batch_size)
    return batched((items, params, opt_state, first_bad), shared, k0, n)


def train(
    problem: AbstractProblem,
    optimizer: "optax.GradientTransformation | Optimizer",
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
    minibatch: int | None = None,
) -> Run:
    """Run `steps` steps of `optimizer` on `problem` for each seed.

    **Arguments:**

    - `problem`, `seeds`, `progress`: as for `simulate`.
    - `optimizer`: a `gradflow.Optimizer` (e.g. `gf.Optimizer(optax.sgd,
      learning_rate=0.1)`, `gf.sign_gd(η)`), whose float hyperparameters enter the
      compiled steps as arguments, so a ladder of learning rates compiles once; or
      any `optax.GradientTransformation` (compiled in: each new object, such as
      each `optax.sgd(lr)`, compiles anew). Any `optax.GradientTransformation`
      works unchanged.
    - `steps`: the number of optimiser steps.
    - `dt`: the flow time one step stands for (the learning rate, for GD and
      SignGD), so `run.ts` = step × dt is comparable with a `simulate` run's time
      axis.
    - `save`: the same kind of grid as for `simulate`, evaluated on
      [0, steps·dt] and rounded to whole steps.
    - `batching`, `batch_size`: as for `simulate`.
    - `checkpoint_dir`, `checkpoint_every`, `resume`: write the parameters,
      optimiser state and observables every `checkpoint_every` steps (atomically,
      as `simulate` does); with `resume=True` a run continues from the last
      checkpoint there. The result equals an uninterrupted run bitwise (each step
      is the same compiled code).
    - `minibatch`: None (the default) steps on the full-batch gradient ∇L; an
      int B steps on the gradient of the mean of B per-sample losses
      (`problem.per_sample_loss`) drawn uniformly *with replacement* at every
      step, each seed with its own draws keyed by its seed key and the step
      number (so a resumed run draws the same minibatches). With
      `optax.sgd(η)` this is the minibatch SGD that `SDEFlow(lr=η, batch_size=B)`
      models.

    **Returns:**

    A `Run` on the same time axis as a `simulate` run. A seed whose parameters
    become NaN/Inf is marked `Status.NONFINITE` with `t_final` at its first bad
    step.
    """
    structure, _ = check_problem(problem)
    if minibatch is not None:
        if isinstance(minibatch, bool) or not isinstance(minibatch, int) or minibatch < 1:
            raise ValueError(f"`minibatch` (the minibatch size B) must be None or an integer >= 1; got {minibatch!r}.")
        check_samples(problem, per_sample_count(problem, *structure), minibatch, "minibatch")
    if not isinstance(optimizer, (optax.GradientTransformation, Optimizer)):
        raise TypeError(
            "`optimizer` must be a gradflow.Optimizer such as gf.Optimizer(optax.sgd, learning_rate=1e-2), or an "
            f"optax.GradientTransformation such as optax.sgd(1e-2); got {type(optimizer).__name__}."
        )
    stepping = Stepping.from_keywords(locals())
    checkpointing = Checkpointing.from_keywords(locals())
    keys, seed_record = seeds_to_keys(seeds)
    batching = Batching(batching, batch_size)
    initial = initialise(problem, keys, batching, structure)
    items = {"model": initial.model, "data": initial.data_per_seed}
    if minibatch is not None:
        items["noise_key"] = noise_keys(keys)
    items = _padded(items, keys.shape[0], batching)
    shared = {"data": initial.data_shared, "optimizer": _runtime(optimizer)}
    if minibatch is not None:
        shared["minibatch"] = minibatch  # compiled in
    start_args = (problem, batching, initial.skeleton, items, shared)
    start_fn, compile_start = compile_program(_start, *start_args)
    params, opt_state, obs0 = start_fn(*start_args)
    first_bad = jnp.full((count(items),), -1, dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
    state = {"params": params, "opt_state": opt_state, "first_bad": first_bad, "obs": _observables(obs0, stepping),
             "k": np.zeros((), np.int64)}
    extra = {} if minibatch is None else {"minibatch": minibatch}
    record = fingerprint(module_config(problem), describe_optimizer(optimizer), stepping.config(), seed_record,
                         None if checkpointing is None else checkpointing.config(), batching.config(), initial.digest(),
                         *([extra] if extra else []))
    state, wall, compile_steps = _step_through(
        (problem, batching, initial.skeleton, items, shared), state, stepping, checkpointing, record, progress)

    n = keys.shape[0]
    first_bad = np.asarray(state["first_bad"])[:n]
    status = np.where(first_bad >= 0, int(Status.NONFINITE), int(Status.OK)).astype(np.int32)
    done = np.where(first_bad >= 0, first_bad, stepping.steps)
    model = jtu.tree_map(np.asarray, initial.model)
    obs = {name: value[:n] for name, value in state["obs"].items()}
    stats = Stats(steps=done, accepted=done, rejected=np.zeros(n, dtype=np.int64),
                  gradient_evaluations=done.astype(float), status=status, result=np.zeros(n, dtype=np.int32),
                  t_final=done * stepping.dt, wall_time=wall,
                  compile_time=initial.compile_time + compile_start + compile_steps,
                  hessian_vector_products=saved_hvps(obs))
    config = run_config("train", problem=problem, seeds=seed_record, command=command,
                        optimizer=describe_optimizer(optimizer), **stepping.config(), **extra,
                        save_steps=stepping.save_steps().tolist(), **batching.config())
    return Run(
        ts=stepping.save_steps() * stepping.dt,
        obs=obs,
        initial=eqx.combine(model, initial.skeleton),
        final=eqx.combine(jtu.tree_map(lambda x: np.asarray(x)[:n], state["params"]), model, initial.skeleton),
        stats=stats,
        config=config,
        problem=problem,
    )


def _padded(items, n, batching):
    """`items` padded to `bucket(n)` seeds under "map", with a `skip` flag for the
    padding (which then takes no steps): a new number of seeds reuses the
    compiled steps, as in `simulate`."""
    if batching.batching != "map" or batching.batch_size is not None:
        return items
    size = bucket(n, batching)
    items = pad_to(items, size)
    return {**items, "skip": jnp.arange(size) >= n}


def _runtime(optimizer):
    """The optimiser as the compiled steps take it: an `Optimizer`'s float
    hyperparameters as arrays (arguments, so a new value does not recompile)."""
    return optimizer.runtime() if isinstance(optimizer, Optimizer) else optimizer


def describe_optimizer(optimizer) -> dict:
    """The JSON record of an optimiser: factory and hyperparameters where known."""
    return optimizer.config() if isinstance(optimizer, Optimizer) else describe_object(optimizer)


def _observables(obs0, stepping) -> dict:
    """(seeds, saves, ...) arrays of NaN, with the observables at step 0 filled in."""
    saves = len(stepping.save_steps())
    out = {}
    for name, value in obs0.items():
        value = np.asarray(value)
        out[name] = np.full((value.shape[0], saves) + value.shape[1:], np.nan, dtype=np.result_type(value.dtype, np.float32))
        out[name][:, 0] = value
    return out


def _step_through(fixed, state, stepping, checkpointing, record, progress):
    """Run the optimiser in chunks that end at save steps (observables recorded) and,
    with checkpoints, at multiples of `checkpoint_every` (state written); resume
    from a checkpoint first if asked. Returns (state, wall s, compile s)."""
    def args(state, k0, n):
        return (*fixed, state["params"], state["opt_state"], state["first_bad"], jnp.asarray(k0), jnp.asarray(n))

    chunk_fn, compile_time = compile_program(_chunk, *args(state, 0, 1))
    ks, steps = stepping.save_steps(), stepping.steps
    bounds = ks if checkpointing is None else np.union1d(ks, np.arange(0, steps + 1, checkpointing.checkpoint_every))
    if checkpointing is not None and checkpointing.resume:
        loaded = _checkpoint.read(checkpointing.checkpoint_dir, record, state)
        if loaded is not None:
            state = jtu.tree_map(np.asarray, loaded[0])
    k_start, wall = int(state["k"]), 0.0
    bar = tqdm(total=steps, initial=k_start, desc="train", disable=not progress, unit="step")
    save_index = {int(k): i for i, k in enumerate(ks)}
    for k_prev, k_next in zip(bounds[:-1], bounds[1:]):
        if k_next <= k_start:
            continue  # done before the checkpoint this run resumed from
        start = time.perf_counter()
        params, opt_state, first_bad, obs = jax.block_until_ready(chunk_fn(*args(state, k_prev, k_next - k_prev)))
        wall += time.perf_counter() - start
        state = {**state, "params": params, "opt_state": opt_state, "first_bad": first_bad,
                 "k": np.asarray(k_next, np.int64)}
        if int(k_next) in save_index:
            for name, value in obs.items():
                state["obs"][name][:, save_index[int(k_next)]] = np.asarray(value)
        bar.update(int(k_next - k_prev))
        if checkpointing is not None and k_next % checkpointing.checkpoint_every == 0 and k_next < steps:
            _checkpoint.write(checkpointing.checkpoint_dir, jtu.tree_map(np.asarray, state), record, int(k_next))
    bar.close()
    return state, wall, compile_time
