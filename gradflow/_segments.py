"""Running the batched solve on its devices: in one go, or in checkpointed segments.

A segmented run integrates `every` steps per seed at a time, carrying diffrax's
solver and controller state from one segment to the next (so the trajectory
is that of one solve, to round-off), and writes each segment's state to the
checkpoint directory atomically.
"""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from . import _checkpoint
from ._adapters import MAX_STEPS
from ._compile import compile_program
from ._devices import bucket, count, gather, pad_to, place
from ._solve import Setup, program


def _placed(batching, items, shared, skip=None):
    """The program's arrays on its devices, the seeds padded to `bucket` (with a
    `skip` flag for the padding and for `skip`: seeds already finished)."""
    n = count(items)
    size = bucket(n, batching)
    items, items_static = eqx.partition(items, eqx.is_array)
    items = pad_to(items, size)
    items = eqx.combine(items, items_static)
    if skip is not None or (batching.batching == "map" and batching.batch_size is None):
        flags = np.zeros(n, bool) if skip is None else np.asarray(skip, bool)
        items = {**items, "skip": jnp.asarray(np.concatenate([flags, np.ones(size - n, bool)]))}
    if batching.devices is not None:
        items, items_static = eqx.partition(items, eqx.is_array)
        shared, shared_static = eqx.partition(shared, eqx.is_array)
        items, (shared,) = place(items, (shared,), batching.devices)
        items, shared = eqx.combine(items, items_static), eqx.combine(shared, shared_static)
    return items, shared


def run_once(setup: Setup, batching, items, shared):
    """The whole solve as one program: (outputs on the host, wall s, compile s, start time)."""
    n = count(items)
    args = (setup, batching, *_placed(batching, items, shared))
    fn, compile_time = compile_program(program, *args)
    started_at = time.time()
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    wall = time.perf_counter() - start
    return jtu.tree_map(lambda x: x[:n], gather(out)), wall, compile_time, started_at


def run_segments(setup: Setup, batching, items, shared, checkpointing, fingerprint, progress_lines):
    """Integrate segment by segment (see `simulate`'s `checkpoint_dir`): returns
    (outputs as one uninterrupted solve would give them, wall s, compile s, start time)."""
    directory, every, resume = checkpointing.checkpoint_dir, checkpointing.checkpoint_every, checkpointing.resume
    max_steps = setup.integration.max_steps
    n = count(items)
    # A seed still running after k segments has taken exactly k·every steps (each
    # segment ends it on its step budget), so the last segment's budget is what is
    # left of max_steps: the total never exceeds it, as in one solve.
    first = Setup(setup.problem, setup.integration, setup.skeleton, segment_steps=min(every, max_steps))
    first_args = (first, batching, *_placed(batching, items, shared))
    state, segment, compile_first = None, 0, 0.0
    if resume and (directory / _checkpoint.INDEX).exists():  # the layout only (traced, not compiled)
        padded = eqx.filter_eval_shape(program, *first_args)
        out_shape = jtu.tree_map(lambda x: jax.ShapeDtypeStruct((n, *x.shape[1:]), x.dtype), padded)
        template = {"out": out_shape, "done": jax.ShapeDtypeStruct((n,), jnp.bool_)}
        loaded = _checkpoint.read(directory, fingerprint, template)
        if loaded is not None:
            state, segment = loaded
    started_at = time.time()
    start = time.perf_counter()
    if state is None:
        if progress_lines:
            print("compiling …", flush=True)
        first_fn, compile_first = compile_program(program, *first_args)
        if progress_lines:
            print(f"compiled in {compile_first:.1f} s; integrating", flush=True)
        start = time.perf_counter()
        out = jtu.tree_map(lambda x: x[:n], gather(jax.block_until_ready(first_fn(*first_args))))
        state = {"out": out, "done": _finished(out, max_steps)}
        segment = 1
        _checkpoint.write(directory, state, fingerprint, segment)
        _report(progress_lines, segment, state, float(shared["t1"]))
    elif progress_lines:
        print(f"resuming after segment {segment}", flush=True)
    compile_cont = 0.0
    while not state["done"].all():
        length = min(every, max_steps - int(state["out"]["steps"][~state["done"]].max()))
        cont = Setup(setup.problem, setup.integration, setup.skeleton, segment_steps=length, continuing=True)
        cont_items = {**items, "carry": jtu.tree_map(jnp.asarray, state["out"]["carry"])}
        cont_args = (cont, batching, *_placed(batching, cont_items, shared, skip=state["done"]))
        cont_fn, seconds = compile_program(program, *cont_args)
        compile_cont += seconds
        new = jtu.tree_map(lambda x: x[:n], gather(jax.block_until_ready(cont_fn(*cont_args))))
        state = {"out": _merge(state["out"], new, ~state["done"]), "done": None}
        state["done"] = _finished(state["out"], max_steps)
        segment += 1
        _checkpoint.write(directory, state, fingerprint, segment)
        _report(progress_lines, segment, state, float(shared["t1"]))
    out = dict(state["out"])
    out.pop("carry")
    return out, time.perf_counter() - start - compile_cont, compile_first + compile_cont, started_at


def _finished(out, max_steps):
    """Seeds that are done: ended for any reason other than the segment's step
    budget, or out of their total `max_steps`."""
    return (out["result"] != MAX_STEPS) | (out["steps"] >= max_steps)


def _merge(old, new, active):
    """The outputs of one solve from those of the segments so far (`old`) and the
    next one (`new`), for the seeds still running (`active`)."""
    def pick(a, b):
        mask = active.reshape(active.shape + (1,) * (np.ndim(a) - 1))
        return np.where(mask, b, a)

    merged = {k: jtu.tree_map(pick, old[k], new[k]) for k in ("t_final", "final", "result", "bad_total",
                                                              "final_nonfinite", "carry")}
    for k in ("steps", "accepted", "rejected"):
        merged[k] = old[k] + np.where(active, new[k], 0)
    # An observable is taken from the segment that reached its save time first.
    fresh = active[:, None] & np.isfinite(new["obs_ts"]) & ~np.isfinite(old["obs_ts"])
    merged["obs_ts"] = np.where(fresh, new["obs_ts"], old["obs_ts"])
    merged["obs"] = {k: np.where(fresh.reshape(fresh.shape + (1,) * (np.ndim(v) - 2)), new["obs"][k], v)
                     for k, v in old["obs"].items()}
    return merged


def _report(progress_lines, segment, state, t1):
    if not progress_lines:
        return
    out = state["out"]
    print(f"segment {segment}: seeds reached t = {np.min(out['t_final']):.4g} to {np.max(out['t_final']):.4g} "
          f"(of t1 = {t1:.4g}), {int(state['done'].sum())}/{state['done'].size} seeds done, "
          f"at most {int(np.max(out['steps']))} steps so far", flush=True)

