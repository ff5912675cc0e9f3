"""Stop conditions: per-seed early termination through diffrax events."""

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu


def _check_threshold(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` threshold must be a finite number > 0; got {value!r}.")


class AbstractStop(eqx.Module):
    """A per-seed condition that ends the seed's integration early.

    A subclass defines:

    - `__call__(loss_fn, grad_fn, params)`: True when this seed should stop at
      `params`.
    - `gradient_evaluations_per_step`: the gradient evaluations the check costs
      per step (class variable; counted in the run's gradient evaluations).
    """

    @abc.abstractmethod
    def __call__(self, loss_fn, grad_fn, params):
        """True when this seed should stop at `params`."""

    gradient_evaluations_per_step: eqx.AbstractClassVar[int]


class LossBelow(AbstractStop):
    """Stop a seed once its loss is below `threshold`.

    It costs one loss evaluation per step.

    **Arguments:**

    - `threshold`: the loss to stop below, a finite number > 0.
    """

    threshold: float
    gradient_evaluations_per_step = 0

    def __check_init__(self):
        _check_threshold(self.threshold, "LossBelow")

    def __call__(self, loss_fn, grad_fn, params):
        return loss_fn(params) < self.threshold


class GradNormBelow(AbstractStop):
    """Stop a seed once ‖∇L‖₂ over the trainable parameters is below `threshold`.

    It costs one extra gradient evaluation per step, counted in the run's
    gradient evaluations.

    **Arguments:**

    - `threshold`: the gradient norm to stop below, a finite number > 0.
    """

    threshold: float
    gradient_evaluations_per_step = 1

    def __check_init__(self):
        _check_threshold(self.threshold, "GradNormBelow")

    def __call__(self, loss_fn, grad_fn, params):
        g = grad_fn(params)
        return jnp.sqrt(sum(jnp.sum(x * x) for x in jtu.tree_leaves(g))) < self.threshold
