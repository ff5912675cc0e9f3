"""`AbstractProblem`: everything about *what* is trained."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.tree_util as jtu

from ._typing import Array, Data, Model, Observables, PyTree, Scalar


class AbstractProblem(eqx.Module):
    """One training setup: how to draw a seed's model and data, its loss, and what
    to measure along the way.

    Subclass it with hyperparameters as fields (plain Python numbers, strings,
    tuples) and implement `init`, `loss` and `observables`. Check fields in
    `__check_init__` and raise `ValueError` naming the field and the fix: the
    command line and `simulate` construct problems before anything compiles.

    **A subclass defines:**

    - `init(key)`: `(model, data)` for one seed — an Equinox module and a pytree of
      arrays (the data may be shared by every seed or drawn per seed).
    - `loss(model, data)`: the scalar training loss.
    - `observables(model, data)`: a dict of arrays saved at every save time.

    **Optional, where the theory provides them:**

    - `trainable(model)`: a pytree of bools, which leaves move (default: every
      array; trained leaves must be floating-point, see `trainable`).
    - `exact_solution(model0, data, t)`: the model at time `t` of the unit-rate
      gradient flow started from `model0`.
    - `conserved(model, data)`: quantities the gradient flow conserves exactly,
      as a dict of arrays (used as accuracy checks).
    - `per_sample_loss(model, data)`: the vector of the n per-sample losses whose
      mean is `loss` (what `gradflow.SDEFlow` builds SGD's noise from).
    - `describe_observables()`: a readable label per observable, which
      `gradflow.plot` puts on the y axis instead of the raw key.

    `default_t1` (a class attribute) is a horizon on which the dynamics play
    out; `gradflow run` integrates to it when --t1 is not given. A text report
    and figures of a run are registered apart from the class, with
    `gradflow.problems.register_report`.
    """

    default_t1: ClassVar[float] = 10.0

    @abc.abstractmethod
    def init(self, key: Array) -> tuple[Model, Data]:
        """One seed's initial model and data. Whether the data depends on `key`
        is the problem's choice (usually a field)."""

    @abc.abstractmethod
    def loss(self, model: Model, data: Data) -> Scalar:
        """The training loss (a scalar)."""

    def observables(self, model: Model, data: Data) -> Observables:
        """Quantities to save along the trajectory; always includes `"loss"`.

        Computed inside the solve at save times, so keep them small: a run stores
        (seeds × times × shape) for each.
        """
        return {"loss": self.loss(model, data)}

    def describe_observables(self) -> dict[str, str]:
        """Readable labels of the observables, `{name: label}`, e.g.
        `{"R": "student–teacher overlap R_in"}`; `gradflow.plot` uses them as
        axis labels. Names left out (by default, all) are labelled by their key."""
        return {}

    def trainable(self, model: Model) -> PyTree[bool]:
        """Which leaves of `model` are trained (default: every array leaf).

        Trained leaves must be floating-point arrays: an integer array marked
        trainable (by default, any integer array in the model, such as
        `jnp.array([1, -1, 1, -1])`) is refused before anything compiles, never
        frozen silently. Keep an integer array fixed by returning False for it
        here; it then stays as it is, in `simulate` and `train` alike."""
        return jtu.tree_map(eqx.is_array, model)

    def exact_solution(self, model0: Model, data: Data, t: Array) -> Model:
        """The unit-rate gradient-flow solution at time `t` from `model0`."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form solution; compare against a "
            "tight reference solve instead."
        )

    def conserved(self, model: Model, data: Data) -> dict[str, Array]:
        """Quantities conserved by the unit-rate gradient flow (none by default)."""
        return {}

    def per_sample_loss(self, model: Model, data: Data) -> Array:
        """The n per-sample losses (a vector whose mean is `loss`), for `gradflow.SDEFlow`."""
        raise NotImplementedError(
            f"{type(self).__name__} has no per-sample losses; define per_sample_loss(model, data) "
            "returning the vector of per-sample losses whose mean is `loss`."
        )

    @property
    def has_exact_solution(self) -> bool:
        return type(self).exact_solution is not AbstractProblem.exact_solution

    @property
    def has_per_sample_loss(self) -> bool:
        return type(self).per_sample_loss is not AbstractProblem.per_sample_loss


class WrappedProblem(AbstractProblem):
    """A problem built on another, `inner`: each method is `inner`'s unless the
    subclass overrides it (what `gradflow.Sharpness` and the accuracy tools'
    wrappers add or change is all they write). `exact_solution` is not passed
    on: a wrapper that keeps the inner problem's closed form says so itself."""

    inner: eqx.AbstractVar[AbstractProblem]

    def init(self, key):
        return self.inner.init(key)

    def loss(self, model, data):
        return self.inner.loss(model, data)

    def observables(self, model, data):
        return self.inner.observables(model, data)

    def describe_observables(self):
        return self.inner.describe_observables()

    def trainable(self, model):
        return self.inner.trainable(model)

    def conserved(self, model, data):
        return self.inner.conserved(model, data)

    def per_sample_loss(self, model, data):
        return self.inner.per_sample_loss(model, data)

    @property
    def has_per_sample_loss(self) -> bool:
        return self.inner.has_per_sample_loss
