"""JSON records of problems, flows, solvers and the environment, and the way back."""

import dataclasses
import functools
import importlib.metadata
import math
import numbers
import os
import platform
import sys
import types

import jax
import numpy as np


def to_jsonable(value):
    """Plain JSON types for a field value (tuples → lists, arrays → nested lists)."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else repr(v)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return to_jsonable(np.asarray(value).tolist())
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    if dataclasses.is_dataclass(value):
        return module_config(value)
    return repr(value)


def class_path(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def module_config(obj) -> dict:
    """{"class": "module:QualName", "fields": {...}} for an Equinox module."""
    fields = {}
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        fields[f.name] = to_jsonable(getattr(obj, f.name))
    return {"class": class_path(obj), "fields": fields}


@functools.lru_cache(maxsize=None)
def _version(name):
    """The installed version of a distribution, read once per process (the modules this
    process imported cannot change under it; reading the metadata costs ~5 ms a name)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    return {
        "versions": {
            n: _version(n)
            for n in ("gradflow", "jax", "jaxlib", "equinox", "diffrax", "optax", "numpy")
        },
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "x64": bool(jax.config.jax_enable_x64),
        "devices": [str(d) for d in jax.devices()],
        "backend": jax.default_backend(),
        # Flags that change how XLA compiles (and so the last bits of the results).
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_num_cpu_devices": jax.config.jax_num_cpu_devices,
    }


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:  # a closure cell not yet filled
        return "<empty>"


def describe_callable(value, depth: int = 0):
    """A stable JSON description of a value built from closures, such as an optax
    optimiser: each function by qualified name with the values it closes over
    (so `optax.sgd(0.01)` records `step_size: -0.01`), no memory addresses."""
    if depth > 16:
        return "…"
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Number):
        return to_jsonable(value)
    if isinstance(value, (np.ndarray, jax.Array)):
        a = np.asarray(value)
        return to_jsonable(a) if a.size <= 16 else {"array": list(a.shape), "dtype": str(a.dtype)}
    if isinstance(value, (types.FunctionType, types.MethodType)):
        fn = value.__func__ if isinstance(value, types.MethodType) else value
        out = {"fn": f"{fn.__module__}.{fn.__qualname__}"}
        if fn.__closure__:
            out["closure"] = {name: describe_callable(_cell(cell), depth + 1)
                              for name, cell in zip(fn.__code__.co_freevars, fn.__closure__) if name != "__class__"}
        if fn.__defaults__:
            out["defaults"] = [describe_callable(v, depth + 1) for v in fn.__defaults__]
        return out
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuples: optax transformations and states
        return {"class": type(value).__name__,
                **{f: describe_callable(getattr(value, f), depth + 1) for f in value._fields}}
    if isinstance(value, (list, tuple)):
        return [describe_callable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): describe_callable(v, depth + 1) for k, v in value.items()}
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}"}


def describe_object(obj) -> dict:
    """A readable record of a diffrax solver/controller or optax optimiser."""
    if obj is None:
        return None
    import optax

    if isinstance(obj, optax.GradientTransformation):  # closures: record what they close over
        return {"class": type(obj).__name__, "update": describe_callable(obj.update)}
    if dataclasses.is_dataclass(obj):
        out = {"class": type(obj).__name__}
        for f in dataclasses.fields(obj):
            try:
                out[f.name] = to_jsonable(getattr(obj, f.name))
            except AttributeError:
                pass
        return out
    return {"class": type(obj).__name__, "repr": repr(obj)[:200]}


def run_config(kind, *, problem, seeds, command, **options) -> dict:
    """The JSON record of one `simulate` or `train` call: the problem, the seeds,
    the option objects' own records (`options`), the environment and the command."""
    return {
        "kind": kind,
        "problem": module_config(problem),
        **options,
        "seeds": seeds,
        "environment": environment(),
        "command": command,
    }
