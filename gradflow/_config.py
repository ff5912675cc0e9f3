"""JSON records of problems, flows, solvers and the environment, and the way back."""

import dataclasses
import importlib
import importlib.metadata
import math
import platform
import sys

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


def _from_jsonable(value):
    if isinstance(value, list):
        return tuple(_from_jsonable(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_jsonable(v) for k, v in value.items()}
    return value


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


def problem_from_config(record: dict):
    """Rebuild a problem from `module_config(problem)`. Raises ValueError if the
    class cannot be imported (pass the problem to `gradflow.load` instead)."""
    path = record["class"]
    module_name, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"cannot import the run's problem class {path!r} ({e}); pass the problem "
            "explicitly: gradflow.load(dir, problem=MyProblem(...))."
        ) from None
    return obj(**{k: _from_jsonable(v) for k, v in record["fields"].items()})


def environment() -> dict:
    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "versions": {
            n: version(n)
            for n in ("gradflow", "jax", "jaxlib", "equinox", "diffrax", "optax", "numpy")
        },
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "x64": bool(jax.config.jax_enable_x64),
        "devices": [str(d) for d in jax.devices()],
        "backend": jax.default_backend(),
    }


def describe_object(obj) -> dict:
    """A readable record of a diffrax solver/controller or optax optimiser."""
    if obj is None:
        return None
    if dataclasses.is_dataclass(obj):
        out = {"class": type(obj).__name__}
        for f in dataclasses.fields(obj):
            try:
                out[f.name] = to_jsonable(getattr(obj, f.name))
            except AttributeError:
                pass
        return out
    return {"class": type(obj).__name__, "repr": repr(obj)[:200]}


def run_config(kind, *, problem, save, seeds, batching, batch_size, command, **specific) -> dict:
    """The JSON record of one `simulate` or `train` call: what both record,
    plus the keyword arguments particular to `kind`."""
    return {
        "kind": kind,
        "problem": module_config(problem),
        **specific,
        "save": save.config(),
        "seeds": seeds,
        "batching": batching,
        "batch_size": batch_size,
        "environment": environment(),
        "command": command,
    }
