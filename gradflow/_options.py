"""Small immutable option objects: the one place each option of `simulate` lives.

`simulate`'s keyword arguments are gathered into these Equinox modules, which
check themselves in `__check_init__` (as diffrax's controllers do). Everything
else is derived from them: the program's compile key (their static parts, see
`gradflow._compile`), the numbers that enter the program as arguments
(`runtime`), the run's JSON record and the checkpoint fingerprint (`config`).
A new option is added to one of these objects, plus one parser line if the
command line exposes it.
"""

import dataclasses
import math
import warnings
from pathlib import Path

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._config import describe_object, to_jsonable
from ._devices import resolve_batching, resolve_devices
from ._grids import AbstractGrid, _check_t1
from ._stop import AbstractStop


class AbstractOptions(eqx.Module):
    """A group of options. Its field names are `simulate`'s keyword names, so it is
    built from those keywords by name (`from_keywords`) and its JSON record is
    read off its fields (`config`): the option is named once, here."""

    @classmethod
    def from_keywords(cls, keywords: dict, **override):
        """This object from a dict of `simulate`'s keyword arguments (extra keys ignored)."""
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        return cls(**{**{k: keywords[k] for k in names if k in keywords}, **override})

    def config(self) -> dict:
        """JSON record of the fields that define a trajectory (those not marked
        `metadata={"record": False}`)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("record", True):
                out[f.name] = _describe(getattr(self, f.name))
        return out


def _describe(value):
    if isinstance(value, AbstractGrid):
        return value.config()
    if isinstance(value, eqx.Module):
        return describe_object(value)
    if isinstance(value, tuple) and value and isinstance(value[0], jax.Device):
        return [str(d) for d in value]
    return to_jsonable(value)


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _pid(controller):
    """Where a controller's PID tolerances sit (a PID controller, or one wrapped in
    `diffrax.ClipStepSizeController`), or None: their rtol/atol enter the
    program as arguments, so a ladder of tolerances (a work-precision diagram)
    shares one compile."""
    if isinstance(controller, dfx.PIDController):
        return lambda c: c
    if isinstance(controller, dfx.ClipStepSizeController) and isinstance(controller.controller, dfx.PIDController):
        return lambda c: c.controller
    return None


def _traced_tolerances(controller) -> bool:
    return _pid(controller) is not None


class Integration(AbstractOptions):
    """What one seed's solve computes: horizon, solver, step control, save times,
    stop rule and extra observables."""

    t1: float = eqx.field(converter=_check_t1)
    solver: dfx.AbstractSolver
    stepsize_controller: dfx.AbstractStepSizeController
    save: AbstractGrid
    dt0: float | None = None
    max_steps: int = 100_000
    stop: AbstractStop | None = None
    conserved: bool = False
    progress: bool = eqx.field(default=False, metadata={"record": False})

    def __check_init__(self):
        solver, controller = self.solver, self.stepsize_controller
        if not isinstance(solver, dfx.AbstractSolver):
            raise TypeError(f"`solver` must be a diffrax solver such as diffrax.Tsit5(); got {type(solver).__name__}.")
        if not isinstance(controller, dfx.AbstractStepSizeController):
            raise TypeError(
                "`stepsize_controller` must be a diffrax controller such as "
                f"diffrax.PIDController(rtol=1e-6, atol=1e-8); got {type(controller).__name__}."
            )
        if self.adaptive:
            for name in ("rtol", "atol"):
                value = getattr(controller, name)
                if not _positive_number(value):
                    raise ValueError(f"`stepsize_controller.{name}` must be finite and > 0; got {value!r}.")
            if not isinstance(solver, dfx.AbstractAdaptiveSolver):
                raise ValueError(
                    f"{type(solver).__name__} has no error estimate, so it cannot be used with an adaptive "
                    "`stepsize_controller`; pass stepsize_controller=diffrax.ConstantStepSize() and dt0."
                )
        if self.dt0 is not None and not _positive_number(self.dt0):
            raise ValueError(f"`dt0` must be finite and > 0, or None; got {self.dt0!r}.")
        if isinstance(controller, dfx.ConstantStepSize) and self.dt0 is None:
            raise ValueError("`dt0` is required with diffrax.ConstantStepSize(): pass the fixed step size, e.g. dt0=1e-2.")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"`max_steps` must be an integer >= 1; got {self.max_steps!r}.")
        if not isinstance(self.save, AbstractGrid):
            raise TypeError(f"`save` must be a gradflow grid such as gradflow.LogGrid(n=200); got {type(self.save).__name__}.")
        if self.stop is not None and not isinstance(self.stop, AbstractStop):
            raise TypeError(
                f"`stop` must be None or a stop condition such as gradflow.LossBelow(1e-3); got {type(self.stop).__name__}."
            )

    @property
    def adaptive(self) -> bool:
        return isinstance(self.stepsize_controller, dfx.AbstractAdaptiveStepSizeController)

    def times(self) -> np.ndarray:
        return self.save.times(self.t1)

    def runtime(self) -> dict:
        """The numbers that enter the compiled program as arguments (so ladders of
        t1, dt0 or tolerances share one compile): save times, t1, dt0, rtol/atol."""
        out = {"ts": jnp.asarray(self.times()), "t1": jnp.asarray(self.t1),
               "dt0": jnp.asarray(0.0 if self.dt0 is None else self.dt0)}
        if _traced_tolerances(self.stepsize_controller):
            out["tol"] = jnp.asarray([self.stepsize_controller.rtol, self.stepsize_controller.atol])
        return out

    def static(self) -> "Integration":
        """This object with its runtime numbers replaced by placeholders: the part
        compiled into the program (and so part of its compile key)."""
        ctrl = self.stepsize_controller
        if _traced_tolerances(ctrl):
            pid = _pid(ctrl)
            ctrl = eqx.tree_at(lambda c: (pid(c).rtol, pid(c).atol), ctrl, (1.0, 1.0))
        return dataclasses.replace(self, t1=1.0, stepsize_controller=ctrl, save=_SaveShape(self.save.n),
                                   dt0=None if self.dt0 is None else 1.0)  # every other field as it is

    def controller(self, runtime: dict):
        """The step-size controller with its traced tolerances put back."""
        ctrl = self.stepsize_controller
        if "tol" in runtime:
            pid = _pid(ctrl)
            ctrl = eqx.tree_at(lambda c: (pid(c).rtol, pid(c).atol), ctrl, (runtime["tol"][0], runtime["tol"][1]))
        return ctrl


class _SaveShape(AbstractGrid):
    """Stands for a grid inside `Integration.static()`: only the number of save
    times is compiled in (the times themselves are an argument)."""

    n: int

    def times(self, t1):  # pragma: no cover - never asked for
        raise NotImplementedError


def _resolve_batching(batching):
    return resolve_batching(batching, None)


def _check_batch_size(batch_size):
    resolve_batching("map", batch_size)
    return batch_size


class Batching(AbstractOptions):
    """How seeds share the compiled solve: `batching` "map" or "vmap" ("auto":
    "map" on the CPU, else "vmap"), `batch_size` seeds vmapped at a time under
    "map", and the `devices` the seeds are split over (None: one device)."""

    batching: str = eqx.field(default="auto", converter=_resolve_batching)
    batch_size: int | None = eqx.field(default=None, converter=_check_batch_size)
    devices: tuple | None = eqx.field(default=None, converter=resolve_devices)

    @property
    def n_devices(self) -> int | None:
        return None if self.devices is None else len(self.devices)


class Checkpointing(AbstractOptions):
    """Integrate in segments of `checkpoint_every` steps per seed, writing each to
    `checkpoint_dir`; `resume` continues from the last one found there."""

    checkpoint_dir: Path = eqx.field(metadata={"record": False})
    checkpoint_every: int = 1000
    resume: bool = eqx.field(default=False, metadata={"record": False})

    def __check_init__(self):
        every = self.checkpoint_every
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"`checkpoint_every` must be a whole number of steps >= 1; got {every!r}.")
        from ._checkpoint import check_directory

        check_directory(self.checkpoint_dir)

    @classmethod
    def from_keywords(cls, keywords: dict, **override) -> "Checkpointing | None":
        """None without a `checkpoint_dir` (and then `resume` is refused)."""
        if keywords.get("checkpoint_dir") is None:
            if keywords.get("resume"):
                raise ValueError("`resume=True` needs `checkpoint_dir`, the directory holding the checkpoint.")
            return None
        return super().from_keywords({**keywords, "checkpoint_dir": Path(keywords["checkpoint_dir"])}, **override)


class Stepping(AbstractOptions):
    """`train`'s steps: `steps` optimiser steps, each standing for `dt` of flow time,
    observables saved at the steps nearest the grid `save` on [0, steps·dt]."""

    steps: int
    dt: float
    save: AbstractGrid

    def __check_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise ValueError(f"`steps` must be an integer >= 1; got {self.steps!r}.")
        if not _positive_number(self.dt):
            raise ValueError(f"`dt` (flow time per step, usually the learning rate) must be finite and > 0; "
                             f"got {self.dt!r}.")
        if not isinstance(self.save, AbstractGrid):
            raise TypeError(f"`save` must be a gradflow grid such as gradflow.LogGrid(n=200); got {type(self.save).__name__}.")

    def save_steps(self) -> np.ndarray:
        """The steps at which observables are saved: unique, first 0 and last `steps`."""
        steps = int(self.steps)
        return np.unique(np.clip(np.round(self.save.times(steps * self.dt) / self.dt), 0, steps).astype(np.int64))


def devices_for(solver, devices):
    """The devices a solve with `solver` runs on: `devices` itself, or None (one
    device) for an implicit solver. Inside `shard_map`, lineax (diffrax's linear
    solves) compares a vector's structure with its sharding included and fails
    with "pytree does not match out_structure" (lineax 0.1.1, JAX 0.10.2), so
    implicit solvers are not spread over devices; `simulate` warns."""
    if devices is not None and isinstance(solver, dfx.AbstractImplicitSolver):
        return None
    return devices


def resolve_options(keywords: dict) -> "tuple[Integration, Batching, Checkpointing | None]":
    """`simulate`'s keyword arguments → its option objects, each checking itself."""
    checkpointing = Checkpointing.from_keywords(keywords)
    # A checkpointed solve reports progress as a line per segment, not a progress bar.
    integration = Integration.from_keywords(keywords, progress=bool(keywords.get("progress")) and checkpointing is None)
    batching = Batching.from_keywords(keywords)
    if batching.devices is not None and devices_for(integration.solver, batching.devices) is None:
        warnings.warn(f"{type(integration.solver).__name__} is an implicit solver: the seeds run on one device "
                      "(implicit solvers do not run under shard_map yet; see gradflow._options.devices_for).",
                      stacklevel=3)
        batching = Batching(batching.batching, batching.batch_size, None)
    return integration, batching, checkpointing


def fingerprint(*records) -> str:
    """The checkpoint fingerprint: the JSON of the records that define a run's
    trajectory (option configs, problem, seeds, precision)."""
    import json

    return json.dumps([*records, bool(jax.config.jax_enable_x64)], sort_keys=True, default=str)
