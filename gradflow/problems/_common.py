"""Field checks and random helpers shared by the problems."""

import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp


def check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"field `{name}` must be an integer >= {minimum}; got {value!r}.")


def check_float(name, value, *, positive=True, allow_zero=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and positive:
        ok = value > 0 or (allow_zero and value == 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"field `{name}` must be a finite number{' ' + bound if positive else ''}; got {value!r}.")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"field `{name}` must be one of {list(choices)}; got {value!r}.")


def check_data_seed(value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"field `data_seed` must be None (data drawn per seed) or an integer >= 0; got {value!r}.")


def data_key(key, data_seed):
    """The key for a seed's data: its own, or a fixed one shared by all seeds."""
    return key if data_seed is None else jax.random.PRNGKey(data_seed)


def orthonormal(key, rows, cols):
    """A (rows, cols) matrix with orthonormal columns (rows >= cols), Haar-distributed."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (rows, cols)))
    return q * jnp.sign(jnp.diagonal(r))


def find_shared_data(relative: str) -> Path | None:
    """A file or folder of the project's shared data: `$GRADFLOW_DATA/relative`,
    else `shared/data/relative` in or beside a parent of the working directory
    or of this package. None if not found (callers skip or ask for a path)."""
    if os.environ.get("GRADFLOW_DATA"):
        candidate = Path(os.environ["GRADFLOW_DATA"]) / relative
        if candidate.exists():
            return candidate
    target = Path("shared") / "data" / relative
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            for candidate in (folder / target, folder.parent / target):
                if candidate.exists():
                    return candidate
    return None
