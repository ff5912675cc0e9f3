"""Time grids at which observables are saved."""

import abc
import math

import equinox as eqx
import numpy as np


def _check_t1(t1) -> float:
    if isinstance(t1, bool) or not isinstance(t1, (int, float, np.floating, np.integer)):
        raise TypeError(f"`t1` must be a number; got {type(t1).__name__}.")
    t1 = float(t1)
    if not (math.isfinite(t1) and t1 > 0):
        raise ValueError(f"`t1` must be finite and > 0 (the flow time to integrate to); got {t1}.")
    return t1


class AbstractGrid(eqx.Module):
    """Save times on [0, t1], always including both ends.

    A subclass defines:

    - `n`: the number of save times (a field).
    - `times(t1)`: the increasing save times, first 0 and last `t1`.
    """

    n: eqx.AbstractVar[int]

    @abc.abstractmethod
    def times(self, t1: float) -> np.ndarray:
        """Increasing save times, first 0 and last `t1`."""

    def config(self) -> dict:
        return {"class": type(self).__name__, **{k: getattr(self, k) for k in self.__dataclass_fields__}}


def _check_n(n, minimum: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"`n` (number of save times) must be an integer >= {minimum}; got {n!r}.")


class LinearGrid(AbstractGrid):
    """`n` equally spaced times from 0 to t1.

    **Arguments:**

    - `n`: the number of save times, an integer >= 2 (default 101).
    """

    n: int = 101

    def __check_init__(self):
        _check_n(self.n, 2)

    def times(self, t1):
        t1 = _check_t1(t1)
        return np.linspace(0.0, t1, self.n)


class LogGrid(AbstractGrid):
    """t = 0 plus `n − 1` log-spaced times from `t_min` to t1.

    Training dynamics span many decades of time (phases at t ~ 1/m, then
    t ~ log m, ...), so a log grid resolves them all with a few hundred points.

    **Arguments:**

    - `n`: the number of save times, t = 0 included, an integer >= 3
      (default 200).
    - `t_min`: the first positive save time, finite and > 0 (default 1e-3).
      It is absolute; if it is not below t1, it is taken as t1 · 1e-4.
    """

    n: int = 200
    t_min: float = 1e-3

    def __check_init__(self):
        _check_n(self.n, 3)
        if not (isinstance(self.t_min, (int, float)) and math.isfinite(self.t_min) and self.t_min > 0):
            raise ValueError(f"`t_min` must be finite and > 0; got {self.t_min!r}.")

    def times(self, t1):
        t1 = _check_t1(t1)
        t_min = self.t_min if self.t_min < t1 else t1 * 1e-4
        return np.concatenate([[0.0], np.geomspace(t_min, t1, self.n - 1)])
