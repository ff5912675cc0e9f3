"""`gradflow.load`: open a saved run without running anything it names.

A run directory may come from a collaborator, so opening one must be as safe as
`numpy.load(..., allow_pickle=False)`. Its record names the problem's class,
but that name is only looked up among gradflow's registered problems
(`gradflow.problems.PROBLEMS`) and its own wrappers (`gf.Sharpness`, whose inner
problem is looked up the same way); nothing is imported by name. A run of any other
problem class loads only when the caller passes the class (or an instance)
explicitly, and the class must be an `AbstractProblem` subclass, checked before
anything is called.
"""

import dataclasses

from ._problem import AbstractProblem
from ._run import Run, RunFormatError, assemble_loaded, read


def _nested_class(path):
    """The class of a nested field record (`{"class": "module:Name", "fields": …}`,
    e.g. Tian's `SequenceClasses`), only if it is one of the equinox modules
    `gradflow.problems` exports; None otherwise (the record stays a dict)."""
    import equinox as eqx

    from . import problems

    if not isinstance(path, str):
        return None
    module, _, qualname = path.partition(":")
    cls = getattr(problems, qualname, None)
    ok = module.startswith("gradflow.problems") and isinstance(cls, type) and issubclass(cls, eqx.Module)
    return cls if ok and not issubclass(cls, AbstractProblem) else None


def _wrappers() -> dict:
    """gradflow's own problem wrappers (a fixed table, never a name looked up): a run of
    `gf.Sharpness(inner)` loads with its inner problem rebuilt from the record too."""
    from ._sharpness import Sharpness

    return {f"{cls.__module__}:{cls.__qualname__}": cls for cls in (Sharpness,)}


def _fields(record) -> dict:
    def back(value):
        if isinstance(value, list):
            return tuple(back(v) for v in value)
        if isinstance(value, dict):
            if set(value) == {"class", "fields"} and (registered_class(value) or _wrappers().get(value["class"])):
                return problem_from_record(value)  # a wrapped problem's `inner`: registered classes only
            cls = _nested_class(value.get("class")) if set(value) == {"class", "fields"} else None
            if cls is not None and isinstance(value["fields"], dict):
                try:
                    return cls(**{k: back(v) for k, v in value["fields"].items()})
                except (TypeError, ValueError) as e:
                    raise RunFormatError(f"the run's record of a {cls.__name__} does not build one: {e}") from None
            return {k: back(v) for k, v in value.items()}
        return value

    fields = record.get("fields", {})
    if not isinstance(fields, dict):
        raise RunFormatError("the run's problem record has no field table; the run is corrupted.")
    return {k: back(v) for k, v in fields.items()}


def registered_class(record: dict):
    """The registered problem class a run record names, or None. Matched by the
    registry name the record holds, else by the class's qualified name (runs
    saved before the problems moved into subpackages)."""
    from .problems import PROBLEMS

    name = record.get("name")
    if isinstance(name, str) and name in PROBLEMS:
        cls = PROBLEMS[name]
        return cls if record.get("class", "").rpartition(":")[2] == cls.__qualname__ else None
    path = record.get("class")
    if not isinstance(path, str):
        return None
    if path in _wrappers():
        return _wrappers()[path]
    module, _, qualname = path.partition(":")
    for cls in PROBLEMS.values():
        if cls.__qualname__ == qualname and module.startswith("gradflow.problems"):
            return cls
    return None


def problem_from_record(record: dict, problem=None):
    """The problem of a run record: `problem` itself if it is an instance; built
    from the record's fields if it is an `AbstractProblem` subclass; else the
    registered class the record names. Anything else is refused (RunFormatError)."""
    if isinstance(problem, AbstractProblem):
        return problem
    if problem is not None:
        if not (isinstance(problem, type) and issubclass(problem, AbstractProblem)):
            raise TypeError(f"`problem` must be a gradflow.AbstractProblem subclass or instance; got {problem!r}.")
        cls = problem
    else:
        cls = registered_class(record if isinstance(record, dict) else {})
        if cls is None:
            named = record.get("class") if isinstance(record, dict) else None
            raise RunFormatError(
                f"the run's problem class {named!r} is not one of gradflow's problems, and a saved run never "
                "imports code it names; pass the class: gradflow.load(dir, problem=MyProblem) "
                "(CLI: gradflow plot DIR --problem module:MyProblem)."
            )
    fields = _fields(record)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise RunFormatError(f"the run's problem record has fields {unknown} that {cls.__name__} does not take.")
    try:
        return cls(**fields)
    except (TypeError, ValueError) as e:
        raise RunFormatError(f"the run's problem fields do not build a {cls.__name__}: {e}") from None


def load(path, *, problem=None) -> Run:
    """Load a run saved with `Run.save`.

    **Arguments:**

    - `path`: the run directory.
    - `problem`: None (the run's problem must be one of gradflow's own), an
      `AbstractProblem` subclass (built from the saved fields), or an instance
      (used as it is). A run directory is never trusted to name code: its
      problem class is looked up only among gradflow's registered problems.

    **Returns:**

    The `Run`. A missing, truncated, edited or foreign directory raises
    `RunFormatError`.
    """
    meta, arrays = read(path)
    built = problem_from_record(meta["config"].get("problem", {}), problem)
    return assemble_loaded(path, meta, arrays, built)
