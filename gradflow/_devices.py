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
