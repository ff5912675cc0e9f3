"""Seeds: turning the user's `seeds` argument into a batch of PRNG keys."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def seeds_to_keys(seeds) -> tuple[jax.Array, list]:
    """`seeds` → (raw uint32 keys of shape (n, 2), a JSON-able record of them).

    - an int N: seeds 0 … N−1, seed i's key is `jax.random.PRNGKey(i)`, so a
      seed's result does not depend on how many seeds run beside it;
    - a sequence of ints: exactly those seeds;
    - a key array: typed keys of shape (n,) or raw keys of shape (n, 2).
    """
    if isinstance(seeds, bool):
        raise TypeError("`seeds` must be an int, a list of ints or a key array; got a bool.")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"`seeds` must be >= 1 (the number of seeds to run); got {seeds}.")
        ids = list(range(int(seeds)))
        return _keys_from_ids(ids), ids
    if isinstance(seeds, jax.Array) and jnp.issubdtype(seeds.dtype, jax.dtypes.prng_key):
        seeds = jax.random.key_data(seeds)
    if isinstance(seeds, (jax.Array, np.ndarray)) and np.ndim(seeds) == 2:
        seeds = jnp.asarray(seeds)
        if seeds.ndim != 2 or seeds.shape[0] < 1 or seeds.dtype != jnp.uint32:
            raise ValueError(
                "`seeds` as a key array must be typed keys of shape (n,) or raw uint32 "
                f"keys of shape (n, 2); got shape {seeds.shape} and dtype {seeds.dtype}."
            )
        return seeds, {"keys": np.asarray(seeds).tolist()}
    if isinstance(seeds, (Sequence, np.ndarray, jax.Array)):
        ids = [int(s) for s in np.asarray(seeds).ravel()]
        if not ids:
            raise ValueError("`seeds` is an empty list; give at least one seed.")
        if any(s < 0 for s in ids):
            raise ValueError(f"`seeds` must be non-negative integers; got {ids}.")
        if len(set(ids)) != len(ids):
            raise ValueError(f"`seeds` contains repeated seeds: {ids}.")
        return _keys_from_ids(ids), ids
    raise TypeError(f"`seeds` must be an int, a list of ints or a key array; got {type(seeds).__name__}.")


def _keys_from_ids(ids: list[int]) -> jax.Array:
    """`jax.random.PRNGKey(i)` for each seed number, stacked. One vmapped call when every
    number fits the integer type `PRNGKey` converts a Python int to (int64 under x64,
    else int32), so the keys are those of the per-number calls (4,000 one-by-one calls
    took 9 s)."""
    bits = 63 if jax.config.jax_enable_x64 else 31
    if ids and all(-(2**bits) <= i < 2**bits for i in ids):
        return jax.vmap(jax.random.PRNGKey)(jnp.asarray(ids, dtype=jnp.int64 if bits == 63 else jnp.int32))
    return jnp.stack([jax.random.PRNGKey(i) for i in ids])


def keys_from_record(record) -> jax.Array:
    """Inverse of the record returned by `seeds_to_keys`."""
    if isinstance(record, dict):
        return jnp.asarray(np.asarray(record["keys"], dtype=np.uint32))
    return _keys_from_ids(list(record))


def resolve_batching(batching: str, batch_size) -> str:
    """Check `batching`/`batch_size` and turn "auto" into a strategy."""
    if batching not in ("auto", "vmap", "map"):
        raise ValueError(f"`batching` must be 'auto', 'vmap' or 'map'; got {batching!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"`batch_size` must be None or an integer >= 1; got {batch_size!r}.")
    if batching == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return batching


def batch_over_seeds(one, batching: str, batch_size):
    """Lift `one(item, *shared)` to a batch (a pytree with a leading seed axis)
    with the chosen strategy; `shared` arguments are the same for every seed."""
    if batching == "vmap":
        return lambda batch, *shared: jax.vmap(lambda b: one(b, *shared))(batch)

    def mapped(batch, *shared):
        return jax.lax.map(lambda b: one(b, *shared), batch, batch_size=batch_size)

    return mapped


def resolve_devices(devices):
    """`devices` → None (one device, the default) or a tuple of distinct devices.

    Accepts None, "all" (every device of the default backend, across all
    processes after `jax.distributed.initialize`), an int N (the first N of
    `jax.devices()`), or a sequence of `jax.Device`.
    """
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"`devices` must be None, 'all', an int or a list of jax devices; got {devices!r}.")
        return tuple(available)
    if isinstance(devices, bool):
        raise TypeError("`devices` must be None, 'all', an int or a list of jax devices; got a bool.")
    if isinstance(devices, (int, np.integer)):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"`devices` = {devices}, but {len(available)} {jax.default_backend()} device(s) are available. "
                "Use fewer, or on the CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N before "
                "importing jax to simulate N devices."
            )
        return tuple(available[: int(devices)])
    if isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        if len({d.id for d in devices}) != len(devices):
            raise ValueError("`devices` lists the same device twice.")
        return tuple(devices)
    raise TypeError(f"`devices` must be None, 'all', an int or a non-empty list of jax devices; got {devices!r}.")


def device_mesh(devices):
    return jax.sharding.Mesh(np.array(devices), ("seeds",))


def shard_over_devices(batched, devices):
    """Run `batched(items, *shared)` with the items split over `devices`:
    `shard_map`, so each device runs its own compiled loop (its own adaptive
    steps and `while_loop` exit) on its share of the seeds, with no
    cross-device lockstep. The leading axis must divide by len(devices)
    (`gradflow._segments.bucket` pads it)."""
    P = jax.sharding.PartitionSpec

    def fn(items, *shared):
        return jax.shard_map(
            lambda it, *sh: batched(it, *sh),
            mesh=device_mesh(devices),
            in_specs=(P("seeds"),) + (P(),) * len(shared),
            out_specs=P("seeds"),
            check_vma=False,
        )(items, *shared)

    return fn


def bucket(n: int, batching) -> int:
    """The batch size `n` seeds are padded to. Under "map" (without `batch_size`)
    that is the next power of two ≥ 8 per device (multiples of 1024 past it), so
    a new number of seeds reuses a compiled program; the padding is skipped
    (`_solve_or_skip`), costing memory but no solving. Otherwise only a multiple
    of the number of devices (a vmapped batch would solve the padding)."""
    devices = 1 if batching.devices is None else len(batching.devices)
    per_device = -(-n // devices)
    if batching.batching == "map" and batching.batch_size is None:
        per_device = max(8, 1 << (per_device - 1).bit_length()) if per_device <= 1024 else -(-per_device // 1024) * 1024
    return per_device * devices


def pad_to(items, size: int):
    """`items` (arrays with a leading seed axis) padded to `size` by repeating the
    last item (`bucket` says which size; the padding is then skipped)."""
    def pad(x):
        extra = size - x.shape[0]
        return jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)]) if extra > 0 else jnp.asarray(x)

    return jax.tree_util.tree_map(pad, items)


def count(items) -> int:
    """The number of items (seeds) in a batch: the leading axis of its arrays."""
    import equinox as eqx

    return jax.tree_util.tree_leaves(eqx.filter(items, eqx.is_array))[0].shape[0]


def place(items, shared, devices):
    """Put `items` sharded along the seed axis and `shared` replicated over the
    mesh of `devices` (global arrays, so this also works across processes)."""
    mesh = device_mesh(devices)
    P = jax.sharding.PartitionSpec
    split = jax.sharding.NamedSharding(mesh, P("seeds"))
    whole = jax.sharding.NamedSharding(mesh, P())

    def put(x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return (jax.tree_util.tree_map(lambda x: put(x, split), items),
            tuple(jax.tree_util.tree_map(lambda x: put(x, whole), s) for s in shared))


def gather(tree):
    """Fetch a (possibly multi-process) sharded result to host numpy arrays."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.asarray, tree)
