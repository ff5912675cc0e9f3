"""A problem class's report and figures, found by the class.

A paper's subpackage registers the text report and the figures of its problems
when it is imported; `gradflow run` and `gradflow plot` look them up through
`report(run)` and `figures(run, directory)`. The problem classes themselves
know nothing of claims or plots, so a paper's model never imports its claims.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

from .._problem import AbstractProblem

ReportFn = Callable[..., "str | None"]
FiguresFn = Callable[..., Sequence]

_REPORTS: dict[type, ReportFn] = {}
_FIGURES: dict[type, FiguresFn] = {}


def register_report(cls: type, *, report: ReportFn | None = None, figures: FiguresFn | None = None) -> type:
    """Register the text report and/or the figures of runs of problem class `cls`.

    A subclass of `cls` that registers nothing of its own uses `cls`'s. Calling
    this again for `cls` replaces what it gives (a `None` leaves that entry as
    it was).

    **Arguments:**

    - `cls`: an `AbstractProblem` subclass.
    - `report`: `report(run) -> str | None`, a text report (e.g. a paper's
      claims, measured), printed and saved to summary.txt by `gradflow run`.
    - `figures`: `figures(run, directory) -> list of paths`, which writes the
      problem's own figures of `run` into `directory` (`gradflow run` and
      `gradflow plot`).

    At least one of `report` and `figures` must be given.

    **Returns:**

    `cls`.
    """
    if not (isinstance(cls, type) and issubclass(cls, AbstractProblem)):
        raise TypeError(f"register_report: `cls` must be an AbstractProblem subclass; got {cls!r}.")
    if report is None and figures is None:
        raise TypeError("register_report: give `report=`, `figures=` or both.")
    for name, fn in (("report", report), ("figures", figures)):
        if fn is not None and not callable(fn):
            raise TypeError(f"register_report: `{name}` must be callable; got {fn!r}.")
    if report is not None:
        _REPORTS[cls] = report
    if figures is not None:
        _FIGURES[cls] = figures
    return cls


def _lookup(table: dict, problem) -> Callable | None:
    for cls in type(problem).__mro__:
        if cls in table:
            return table[cls]
    return None


def _registered(table: dict, run):
    """(function, run) for a run's problem; a wrapped problem (`gf.Sharpness(inner)`)
    with nothing registered of its own gets its inner problem's, on a view of the run
    whose `problem` (and config record) is the inner one (the wrapper only adds
    observables)."""
    from .._problem import WrappedProblem
    from .._run import Run

    fn = _lookup(table, run.problem)
    if fn is None and isinstance(run.problem, WrappedProblem):
        record = (run.config.get("problem") or {}).get("fields", {}).get("inner")
        config = {**run.config, "problem": record} if isinstance(record, dict) else run.config
        return _registered(table, Run(run.ts, run.obs, run.initial, run.final, run.stats, config, run.problem.inner))
    return fn, run


def report(run) -> str | None:
    """The registered text report on a run.

    **Arguments:**

    - `run`: a `Run`.

    **Returns:**

    The report (a string), or None if its problem's class has none.
    """
    fn, run = _registered(_REPORTS, run)
    return None if fn is None else fn(run)


def figures(run, directory) -> list[Path]:
    """Write the registered figures of a run.

    **Arguments:**

    - `run`: a `Run`.
    - `directory`: where to write them (created if needed).

    **Returns:**

    Their paths; [] if its problem's class has none.
    """
    fn, run = _registered(_FIGURES, run)
    if fn is None:
        return []
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in fn(run, directory)]
