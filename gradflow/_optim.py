"""The discrete optimisers whose small-step limits gradflow's flows are, as optax
chains (plain `optax.GradientTransformation`s: `train` takes them unchanged)."""

import functools
import math

import optax


def _check_lr(learning_rate):
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise TypeError(f"`learning_rate` must be a number; got {type(learning_rate).__name__}.")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be finite and > 0; got {learning_rate!r}.")


@functools.lru_cache(maxsize=64)
def sign_gd(learning_rate: float) -> optax.GradientTransformation:
    """SignGD, θ ← θ − η sign(∇L): `optax.scale_by_sign()` then the learning rate.

    Its small-η limit, read at t = kη, is the sign flow (`gradflow.SignFlow` as
    ε → 0); train it with `dt=learning_rate`. Equal arguments return the same
    object, so `train` reuses its compiled steps for it.
    """
    _check_lr(learning_rate)
    return optax.chain(optax.scale_by_sign(), optax.scale_by_learning_rate(learning_rate))


@functools.lru_cache(maxsize=64)
def adam_for_flow(learning_rate: float, *, a: float = 100.0, b: float = 1.0, eps: float = 1e-8):
    """`optax.adam` with β1 = 1 − aη and β2 = 1 − bη: the discrete optimiser whose
    η → 0 limit (at t = kη) is `gradflow.AdamFlow(a, b, eps)`. The defaults give
    Adam's usual β1 = 0.9, β2 = 0.999 at η = 1e-3."""
    _check_lr(learning_rate)
    for name, value in (("a", a), ("b", b)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}.")
        if value * learning_rate >= 1:
            raise ValueError(
                f"`{name}`·learning_rate = {value * learning_rate:g} must be < 1 (β = 1 − {name}·η must be in (0, 1)); "
                f"lower the learning rate below {1 / value:g}."
            )
    return optax.adam(learning_rate, b1=1.0 - a * learning_rate, b2=1.0 - b * learning_rate, eps=eps)
