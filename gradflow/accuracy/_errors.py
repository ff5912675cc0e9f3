"""Error measures of a run against a reference, over the whole trajectory.

A gradient flow contracts to a minimiser, so the error at the final time can be
tiny while the error along the way was large (Euler at dt = 1 on least squares:
5e-14 at t1, 1.9e-2 along the trajectory). The measures here are taken over the
save times by default, and say which they are:

- `measure`: "linf" (max over save times, the default), "l2" (root mean square
  over save times) or "final" (the last save time only);
- `scale`: "relative" (each time's error over the reference's size at that
  time, absolute where the reference is 0: a late-time loss of 1e-25 computed
  as 1e-7 shows as a relative error of 1e18, not hidden under the early loss),
  "absolute", or "minimiser" (parameters only: over ‖θ_ref(t) − θ*‖, the
  distance still to travel, where the problem knows its minimiser θ*).

Parameter errors need the parameters along the trajectory: `TrackParams`
wraps a problem so that its flattened trainable parameters are saved as the
observable "params".
"""

import equinox as eqx
import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from .._problem import AbstractProblem, WrappedProblem

MEASURES = ("linf", "l2", "final")
"""The `measure` choices: max over save times, root mean square over save times, last save time."""
SCALES = ("relative", "absolute", "minimiser")
"""The `scale` choices: relative to the reference at each time, absolute, or relative to
‖θ_ref(t) − θ*‖ (the distance still to go to the minimiser)."""
NORMS = ("l2", "max")


class TrackParams(WrappedProblem):
    """`inner` with one more observable, "params": its trainable parameters,
    flattened (so parameter errors can be measured at every save time).

    Every other method is `inner`'s.

    **Arguments:**

    - `inner`: any problem.
    """

    inner: AbstractProblem

    def observables(self, model, data):
        params = eqx.filter(model, self.inner.trainable(model))
        return {**self.inner.observables(model, data), "params": ravel_pytree(params)[0]}

    def describe_observables(self):
        return {**self.inner.describe_observables(), "params": "trainable parameters (flattened)"}

    def exact_solution(self, model0, data, t):
        return self.inner.exact_solution(model0, data, t)

    @property
    def has_exact_solution(self) -> bool:
        return self.inner.has_exact_solution

    @property
    def has_minimiser(self) -> bool:
        return hasattr(self.inner, "minimiser")

    def minimiser_params(self, model, data):
        """θ*, flattened as "params" is, from the inner problem's `minimiser(data)`."""
        best = self.inner.minimiser(data)
        if eqx.is_array(best):  # the parameters themselves (a problem with one trainable array)
            return best.ravel()
        return ravel_pytree(eqx.filter(best, self.inner.trainable(best)))[0]


def check_measure(measure, scale, norm):
    for name, value, allowed in (("measure", measure, MEASURES), ("scale", scale, SCALES), ("norm", norm, NORMS)):
        if value not in allowed:
            raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}.")


def describe(measure: str, scale: str, norm: str) -> str:
    """The measure in words, for tables and axis labels."""
    over = {"linf": "max over save times", "l2": "RMS over save times", "final": "at t1"}[measure]
    rel = {"relative": "relative", "absolute": "absolute", "minimiser": "relative to ‖θ_ref(t) − θ*‖"}[scale]
    return f"{rel} {'2-norm' if norm == 'l2' else 'max-norm'} error, {over}"


def pointwise_error(a, b, *, scale="relative", norm="l2", distance=None) -> np.ndarray:
    """The error of `a` against `b` at each save time.

    **Arguments:**

    - `a`, `b`: arrays (seeds, times, ...): the run's values and the
      reference's, of one shape.
    - `scale`: what the error is divided by: "relative" (default), "absolute"
      or "minimiser" (see `SCALES`).
    - `norm`: the norm over the components, "l2" (default) or "max".
    - `distance`: ‖b(t) − θ*‖ per seed and time, for `scale="minimiser"`.

    **Returns:**

    An array (seeds, times). Times where `a` was not saved (NaN after a
    failure) count as infinite error.
    """
    a = np.asarray(a, dtype=float).reshape(a.shape[0], a.shape[1], -1)
    b = np.asarray(b, dtype=float).reshape(b.shape[0], b.shape[1], -1)
    if a.shape != b.shape:
        raise ValueError(f"the run's values have shape {a.shape} and the reference's {b.shape}: build the reference "
                         "with the same seeds and save grid.")
    order = 2 if norm == "l2" else np.inf
    diff = np.linalg.norm(a - b, ord=order, axis=2)
    if scale == "relative":
        size = np.linalg.norm(b, ord=order, axis=2)
        err = np.where(size > 0, diff / np.where(size > 0, size, 1.0), diff)
    elif scale == "minimiser":
        if distance is None:
            raise ValueError("scale='minimiser' needs the problem's minimiser (a `minimiser(data)` method).")
        err = np.where(distance > 0, diff / np.where(distance > 0, distance, 1.0), diff)
    else:
        err = diff
    return np.where(np.isfinite(err), err, np.inf)


def trajectory_error(a, b, *, measure="linf", scale="relative", norm="l2", distance=None) -> np.ndarray:
    """Per seed, the error of `a` against `b` over the whole trajectory.

    **Arguments:**

    - `a`, `b`: arrays (seeds, times, ...), as for `pointwise_error`.
    - `measure`: how the `pointwise_error` at each save time is reduced over
      the times: "linf" (max, the default), "l2" (root mean square) or "final"
      (the last).
    - `scale`, `norm`, `distance`: as for `pointwise_error`.

    **Returns:**

    An array (seeds,).
    """
    err = pointwise_error(a, b, scale=scale, norm=norm, distance=distance)
    if measure == "final":
        return err[:, -1]
    if measure == "l2":
        return np.sqrt(np.mean(err**2, axis=1))
    return np.max(err, axis=1)


def minimiser_distance(problem: TrackParams, ref_run, norm="l2") -> np.ndarray:
    """(seeds, times): ‖θ_ref(t) − θ*‖ for each seed of the reference."""
    from .._devices import keys_from_record

    keys = keys_from_record(ref_run.config["seeds"])
    star = jax.jit(jax.vmap(lambda k: problem.minimiser_params(*problem.init(k))))(keys)
    params = np.asarray(ref_run.obs["params"], dtype=float)
    order = 2 if norm == "l2" else np.inf
    return np.linalg.norm(params - np.asarray(star)[:, None, :], ord=order, axis=2)
