"""Optimisers whose numbers are runtime values, and the discrete optimisers whose
small-step limits gradflow's flows are.

`Optimizer(factory, **hyperparameters)` names an optax optimiser by its factory
(`optax.sgd`, `optax.adam`, …) and its hyperparameters. `train` passes the float
hyperparameters into its compiled steps as arguments, so a ladder of learning
rates (or momenta, or β's) compiles once, where each new `optax.sgd(lr)` object
compiles anew. It is what `optax.inject_hyperparams` does for an optimiser's
state, done for the compiled program: optax has no way to build a transformation
whose numbers are arguments of a compiled step, hence this small wrapper.
"""

import inspect
import math
from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import optax


class Optimizer(eqx.Module):
    """An optax optimiser given by its factory and hyperparameters.

    **Arguments:**

    - `factory`: a function returning an `optax.GradientTransformation`, e.g.
      `optax.sgd` or `optax.adam`.
    - `*args`, `**hyperparameters`: its arguments, bound to its signature by
      name (so `Optimizer(optax.sgd, 0.1)` has `hyperparameters["learning_rate"]`).
    - `compiled_in`: names of float hyperparameters to compile in rather than
      pass at run time (for a factory that branches on a number in Python).

    Float hyperparameters enter `train`'s compiled steps as arguments: a new
    value reuses the compiled program. Other values (ints, bools, None,
    schedules) are compiled in. The factory is called once here with the given
    values, so a bad value fails now, with the factory's own message.

    It is used like any optax optimiser (`init`, `update`), and
    `opt.transformation()` is the `optax.GradientTransformation` itself.
    """

    factory: Callable = eqx.field(static=True)
    hyperparameters: dict
    compiled_in: tuple = eqx.field(static=True, default=())

    def __init__(self, factory: Callable, *args, compiled_in=(), **hyperparameters):
        if not callable(factory):
            raise TypeError(f"`factory` must be a function returning an optax optimiser, such as optax.sgd; "
                            f"got {type(factory).__name__}.")
        self.factory = factory
        self.hyperparameters = _by_name(factory, args, hyperparameters)
        self.compiled_in = tuple(compiled_in)
        unknown = sorted(set(self.compiled_in) - set(self.hyperparameters))
        if unknown:
            raise ValueError(f"`compiled_in` names {unknown}, which are not hyperparameters given here "
                             f"({sorted(self.hyperparameters)}).")
        made = self.transformation()
        if not isinstance(made, optax.GradientTransformation):
            raise TypeError(f"`factory` returned a {type(made).__name__}, not an optax.GradientTransformation.")

    def transformation(self) -> optax.GradientTransformation:
        """The optax transformation these hyperparameters make."""
        return self.factory(**self.hyperparameters)

    def init(self, params):
        return self.transformation().init(params)

    def update(self, updates, state, params=None):
        return self.transformation().update(updates, state, params)

    def runtime(self) -> "Optimizer":
        """This optimiser with its float hyperparameters (except `compiled_in`) as
        0-d arrays: what `train` passes into its compiled steps."""
        numbers = {name: jnp.asarray(value) if _is_float(value) and name not in self.compiled_in else value
                   for name, value in self.hyperparameters.items()}
        return eqx.tree_at(lambda o: o.hyperparameters, self, numbers)

    def config(self) -> dict:
        from ._config import to_jsonable

        return {"class": "gradflow.Optimizer",
                "factory": f"{getattr(self.factory, '__module__', '?')}.{getattr(self.factory, '__qualname__', '?')}",
                "hyperparameters": to_jsonable(self.hyperparameters)}


def _by_name(factory, args, keywords) -> dict:
    """The factory's arguments as {name: value}, positional ones named by its signature."""
    try:
        signature = inspect.signature(factory)
    except ValueError:  # no signature (a builtin): keywords only
        if args:
            raise TypeError("this factory has no inspectable signature: pass its hyperparameters by name.") from None
        return dict(keywords)
    try:
        bound = signature.bind(*args, **keywords)
    except TypeError as e:
        raise TypeError(f"Optimizer({getattr(factory, '__name__', factory)}, ...): {e}") from e
    named = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL or kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"Optimizer({getattr(factory, '__name__', factory)}, ...): its argument {name!r} "
                            "cannot be passed by name; wrap the factory in a function with named arguments.")
        else:
            named[name] = value
    return named


def _is_float(value) -> bool:
    return isinstance(value, float)


def _check_lr(learning_rate):
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise TypeError(f"`learning_rate` must be a number; got {type(learning_rate).__name__}.")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be finite and > 0; got {learning_rate!r}.")


def _sign_gd(learning_rate):
    return optax.chain(optax.scale_by_sign(), optax.scale_by_learning_rate(learning_rate))


def sign_gd(learning_rate: float) -> Optimizer:
    """SignGD, θ ← θ − η sign(∇L): `optax.scale_by_sign()` then the learning rate.

    Its small-η limit, read at t = kη, is the sign flow (`gradflow.SignFlow` as
    ε → 0); train it with `dt=learning_rate`.

    **Arguments:**

    - `learning_rate`: η, a finite number > 0.

    **Returns:**

    An `Optimizer` (a ladder of η compiles once in `train`).
    """
    _check_lr(learning_rate)
    return Optimizer(_sign_gd, learning_rate=float(learning_rate))


def _adam_for_flow(learning_rate, a, b, eps):
    return optax.adam(learning_rate, b1=1.0 - a * learning_rate, b2=1.0 - b * learning_rate, eps=eps)


def adam_for_flow(learning_rate: float, *, a: float = 100.0, b: float = 1.0, eps: float = 1e-8) -> Optimizer:
    """`optax.adam` with β1 = 1 − aη and β2 = 1 − bη: the discrete optimiser whose
    η → 0 limit (at t = kη) is `gradflow.AdamFlow(a, b, eps)`.

    **Arguments:**

    - `learning_rate`: η, a finite number > 0.
    - `a`, `b`: the rates of the first and second moments, finite and > 0, with
      a·η < 1 and b·η < 1 (so β1, β2 are in (0, 1)). The defaults (100 and 1)
      give Adam's usual β1 = 0.9, β2 = 0.999 at η = 1e-3.
    - `eps`: Adam's ε (default 1e-8).

    **Returns:**

    An `Optimizer`.
    """
    _check_lr(learning_rate)
    for name, value in (("a", a), ("b", b)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}.")
        if value * learning_rate >= 1:
            raise ValueError(
                f"`{name}`·learning_rate = {value * learning_rate:g} must be < 1 (β = 1 − {name}·η must be in (0, 1)); "
                f"lower the learning rate below {1 / value:g}."
            )
    return Optimizer(_adam_for_flow, learning_rate=float(learning_rate), a=float(a), b=float(b), eps=float(eps))
