"""Per-seed outcome of a simulation or training run."""

import enum


class Status(enum.IntEnum):
    """What happened to one seed. Stored as an int in `run.stats["status"]`.

    **Members:**

    - `OK`: reached t1.
    - `STOPPED`: the stop condition was met before t1.
    - `MAX_STEPS`: max_steps was reached before t1.
    - `NONFINITE`: the state or its gradient became NaN/Inf.
    - `STEP_COLLAPSE`: the step size collapsed (many consecutive rejected steps).
    - `FAILED`: the solver failed; see `run.stats["result"]` for diffrax's code.

    **Attributes:**

    - `message`: what happened and what to do about it, in words.
    - `failed`: True for every member but `OK` and `STOPPED`.
    """

    OK = 0
    STOPPED = 1
    MAX_STEPS = 2
    NONFINITE = 3
    STEP_COLLAPSE = 4
    FAILED = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def failed(self) -> bool:
        return self not in (Status.OK, Status.STOPPED)


_MESSAGES = {
    Status.OK: "reached t1",
    Status.STOPPED: "the stop condition was met before t1",
    Status.MAX_STEPS: (
        "max_steps was reached before t1: raise `max_steps`, loosen rtol/atol, or, "
        "if the flow is stiff, use an implicit solver such as diffrax.Kvaerno5()"
    ),
    Status.NONFINITE: (
        "the state or its gradient became NaN/Inf: the flow diverges from this "
        "initialisation; lower the rates or the initialisation scale, or check the "
        "loss for overflow (use float64)"
    ),
    Status.STEP_COLLAPSE: (
        "the step size collapsed (many consecutive rejected steps): the flow is stiff "
        "or nearly singular here; use an implicit solver such as diffrax.Kvaerno5() "
        "or loosen rtol/atol"
    ),
    Status.FAILED: "the solver failed; see `run.stats['result']` for diffrax's code",
}


_TRAIN_MESSAGES = {  # a discrete run has no solver, tolerances or rates: name its own knobs
    Status.OK: "ran every step",
    Status.NONFINITE: (
        "the parameters became NaN/Inf: the optimiser diverges from this initialisation; "
        "lower the learning rate (and dt with it) or the initialisation scale, or check the "
        "loss for overflow (use float64)"
    ),
}


def message(status: Status, kind: str = "simulate") -> str:
    """What happened to a seed, and what to do, for a `simulate` or a `train` run."""
    if kind == "train":
        return _TRAIN_MESSAGES.get(status, status.message)
    return status.message


def describe(codes, kind: str = "simulate") -> list[str]:
    """One message per seed for an array of status codes."""
    return [f"{Status(int(c)).name.lower()}: {message(Status(int(c)), kind)}" for c in codes]
