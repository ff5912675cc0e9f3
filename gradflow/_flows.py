"""Flows: how the trainable parameters move in continuous time.

A flow maps (t, state, gradient function) to d(state)/dt. The state is the
trainable pytree (plus optimiser moments for flows that carry them). Flows
never know which problem they integrate.
"""

import abc
import dataclasses
import math
from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu

from ._typing import Params, PyTree

GradFn = Callable[[Params], Params]


def _rates_tuple(rates: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    if rates is None:
        return ()
    if isinstance(rates, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in rates):
        rates = dict(rates)  # already converted (dataclasses.replace passes the field back in)
    if not isinstance(rates, Mapping):
        raise TypeError(
            f"`rates` must be a dict of model field name to rate, e.g. "
            f"{{'Y': 10.0, 'Z': 1.0}}; got {type(rates).__name__}."
        )
    out = []
    for name, rate in rates.items():
        if not isinstance(name, str):
            raise TypeError(f"`rates` keys must be model field names (str); got {name!r}.")
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise TypeError(f"`rates[{name!r}]` must be a number; got {rate!r}.") from None
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"`rates[{name!r}]` must be finite and > 0; got {rate}.")
        out.append((name, rate))
    return tuple(sorted(out))


def _field_names(model) -> list[str]:
    if isinstance(model, Mapping):
        return list(model)
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model)]
    return []


def _get(model, name):
    return model[name] if isinstance(model, Mapping) else getattr(model, name)


def scale_fields(tree: PyTree, rates: tuple[tuple[str, float], ...]) -> PyTree:
    """Multiply the leaves under each named top-level field of `tree` by its rate."""
    if not rates:
        return tree
    names = [n for n, _ in rates]
    new = [jtu.tree_map(lambda x, r=r: r * x, _get(tree, n)) for n, r in rates]
    if isinstance(tree, Mapping):
        return {**tree, **dict(zip(names, new))}
    return eqx.tree_at(
        lambda m: [getattr(m, n) for n in names], tree, new, is_leaf=lambda x: x is None
    )


class AbstractFlow(eqx.Module):
    """A continuous-time training dynamics on the trainable parameters.

    Subclasses implement `vector_field`; flows with extra state (moments)
    override `init` and `params` too.

    **Arguments:**

    - `rates`: per-field time scales, as `((field name, rate), ...)` (each
      subclass takes them as a dict `{"W": 10.0}` and stores this form); the
      vector field of a field is multiplied by its rate.

    **A subclass defines:**

    - `vector_field(t, state, grad_fn)`: d(state)/dt, given `grad_fn(params)`;
    - optionally `init(params)` and `params(state)`, for a state that holds more
      than the parameters.
    """

    rates: eqx.AbstractVar[tuple[tuple[str, float], ...]]

    def init(self, params: Params) -> PyTree:
        """The flow's state at t = 0 from the initial trainable parameters."""
        return params

    def params(self, state: PyTree) -> Params:
        """The trainable parameters inside a flow state."""
        return state

    @abc.abstractmethod
    def vector_field(self, t, state: PyTree, grad_fn: GradFn) -> PyTree:
        """d(state)/dt, given `grad_fn(params) -> gradient of the loss`."""

    def check(self, params: Params) -> None:
        """Check the flow against a model's trainable partition (before compiling)."""
        names = _field_names(params)
        for name, _ in self.rates:
            if name not in names:
                raise ValueError(
                    f"`rates` names field {name!r}, which the model "
                    f"({type(params).__name__}) does not have; its fields are {names}."
                )
            leaves = jtu.tree_leaves(_get(params, name))
            if not leaves:
                raise ValueError(
                    f"`rates` names field {name!r}, which is not trainable in this "
                    "problem; remove it from `rates`."
                )

    def config(self) -> dict:
        out = {"class": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if f.name == "rates" else value
        return out


class GradientFlow(AbstractFlow):
    """Gradient flow dθ/dt = −R ∇L(θ), with a rate per named model field.

    **Arguments:**

    - `rates`: `{field name: rate}`, the diagonal of R by model field.
      `GradientFlow(rates={"Y": 10.0, "Z": 1.0})` moves field `Y` ten times faster
      than `Z` (Tian et al.'s time-scale separation); fields not named move at rate 1.
    """

    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def vector_field(self, t, state, grad_fn):
        g = grad_fn(state)
        return scale_fields(jtu.tree_map(jnp.negative, g), self.rates)


class SignFlow(AbstractFlow):
    """Regularised sign flow dθ/dt = −R g / sqrt(g² + ε²), g = ∇L(θ).

    As ε → 0 it tends to the sign flow dθ/dt = −sign(∇L), the small-step limit
    of SignGD; ε > 0 keeps the vector field Lipschitz so adaptive solvers apply.

    **Arguments:**

    - `eps`: ε > 0, the regularisation.
    - `rates`: per-field rates R, as for `GradientFlow`.
    """

    eps: float = 1e-3
    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def __check_init__(self):
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"`eps` must be a finite number > 0; got {self.eps!r}.")

    def vector_field(self, t, state, grad_fn):
        g = grad_fn(state)
        d = jtu.tree_map(lambda x: -x / jnp.sqrt(x * x + self.eps**2), g)
        return scale_fields(d, self.rates)


class AdamFlow(AbstractFlow):
    """The ODE limit of Adam on the state (θ, m, v), bias correction included.

    Adam with learning rate η, β1 = 1 − aη and β2 = 1 − bη, read at t = kη,
    tends as η → 0 to

        dm/dt = a (g − m),   dv/dt = b (g² − v),   g = ∇L(θ),
        dθ/dt = −R m̂ / (√v̂ + ε),   m̂ = m / (1 − e^{−at}),   v̂ = v / (1 − e^{−bt}),

    from m(0) = v(0) = 0 (1 − e^{−at} is the limit of Adam's 1 − β1^k). At t = 0
    the bias-corrected moments take their limits m̂ = g, v̂ = g², so the vector
    field is continuous there. The discrete counterpart is
    `gradflow.adam_for_flow(η, a=a, b=b, eps=eps)` (an `optax.adam`).
    The flow state is a dict {"params", "m", "v"}.

    **Arguments:**

    - `a`, `b`: the moment rates (β1 = 1 − aη, β2 = 1 − bη).
    - `eps`: Adam's ε.
    - `rates`: per-field rates R, as for `GradientFlow`.
    """

    a: float = 100.0
    b: float = 1.0
    eps: float = 1e-8
    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def __check_init__(self):
        for name in ("a", "b"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a finite number > 0 (β = 1 − {name}·η); got {value!r}.")
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"`eps` must be a finite number >= 0; got {self.eps!r}.")

    def init(self, params):
        zeros = jtu.tree_map(jnp.zeros_like, params)
        return {"params": params, "m": zeros, "v": zeros}

    def params(self, state):
        return state["params"]

    def vector_field(self, t, state, grad_fn):
        g = grad_fn(state["params"])
        started = t > 0
        c1 = jnp.where(started, -jnp.expm1(-self.a * t), 1.0)
        c2 = jnp.where(started, -jnp.expm1(-self.b * t), 1.0)

        def step(m, v, gi):
            m_hat = jnp.where(started, m / c1, gi)
            v_hat = jnp.where(started, v / c2, gi * gi)
            return -m_hat / (jnp.sqrt(v_hat) + self.eps)

        d_params = scale_fields(jtu.tree_map(step, state["m"], state["v"], g), self.rates)
        d_m = jtu.tree_map(lambda m, gi: self.a * (gi - m), state["m"], g)
        d_v = jtu.tree_map(lambda v, gi: self.b * (gi * gi - v), state["v"], g)
        return {"params": d_params, "m": d_m, "v": d_v}


class ModifiedFlow(AbstractFlow):
    """The modified flow of gradient descent at learning rate `lr` (implicit
    gradient regularisation; Barrett & Dherin 2021, arXiv:2009.11162):

        dθ/dt = −R (∇L + (η/2) H R ∇L),

    which for R = I is the gradient flow of L + (η/4)‖∇L‖². GD with step η
    (θ ← θ − ηR∇L), read at t = kη, stays within O(η²) of it, where the plain
    gradient flow is only O(η) away. H R ∇L is a Hessian–vector product,
    forward over reverse (`jax.linearize` of the gradient), so each vector-field
    evaluation costs one gradient and one Hessian–vector product (a run's
    `gradient_evaluations` counts vector-field evaluations).

    **Arguments:**

    - `lr`: the learning rate η of the gradient descent it models.
    - `rates`: per-field rates R, as for `GradientFlow`.
    """

    lr: float
    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def __check_init__(self):
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                             and self.lr > 0):
            raise ValueError(f"`lr` (the learning rate of the GD it models) must be a finite number > 0; "
                             f"got {self.lr!r}.")

    def vector_field(self, t, state, grad_fn):
        g, hvp = jax.linearize(grad_fn, state)
        rg = scale_fields(g, self.rates)
        hrg = hvp(rg)
        return scale_fields(jtu.tree_map(lambda a, b: -(a + 0.5 * self.lr * b), g, hrg), self.rates)


class MomentumFlow(AbstractFlow):
    """The first-order limit of gradient descent with fixed momentum β
    (Kovachki & Stuart 2021, "Continuous time analysis of momentum methods",
    JMLR 22): dθ/dt = −R ∇L / (1 − β), the gradient flow sped up by 1/(1 − β).

    Its discrete counterpart is `optax.sgd(η, momentum=β)` (m ← ∇L + βm,
    θ ← θ − ηm) read at t = kη, which stays O(η) from it (the momentum's
    start-up transient included) as η → 0 with β fixed.

    **Arguments:**

    - `beta`: the momentum β in [0, 1).
    - `rates`: per-field rates R, as for `GradientFlow`.
    """

    beta: float
    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def __check_init__(self):
        if isinstance(self.beta, bool) or not (isinstance(self.beta, (int, float)) and 0 <= self.beta < 1):
            raise ValueError(f"`beta` (the momentum) must be a number in [0, 1); got {self.beta!r}.")

    def vector_field(self, t, state, grad_fn):
        g = grad_fn(state)
        return scale_fields(jtu.tree_map(lambda x: -x / (1.0 - self.beta), g), self.rates)


class HeavyBallFlow(AbstractFlow):
    """The heavy-ball (second-order) momentum flow on the state (θ, v):

        dθ/dt = v,   dv/dt = −γ v − R ∇L,   v(0) = 0.

    Its discrete counterpart is `optax.sgd(h², momentum=1 − γh)` read at
    t = kh (m ← ∇L + βm, θ ← θ − h² m; with v = −h m this is a step h of the
    flow), which stays O(h) from it as h → 0 (Polyak 1964; Kovachki & Stuart
    2021). The flow state is a dict {"params", "v"}.

    **Arguments:**

    - `gamma`: the friction γ ≥ 0.
    - `rates`: per-field rates R, as for `GradientFlow`.
    """

    gamma: float
    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def __check_init__(self):
        if isinstance(self.gamma, bool) or not (isinstance(self.gamma, (int, float)) and math.isfinite(self.gamma)
                                                and self.gamma >= 0):
            raise ValueError(f"`gamma` (the friction) must be a finite number >= 0; got {self.gamma!r}.")

    def init(self, params):
        return {"params": params, "v": jtu.tree_map(jnp.zeros_like, params)}

    def params(self, state):
        return state["params"]

    def vector_field(self, t, state, grad_fn):
        g = scale_fields(grad_fn(state["params"]), self.rates)
        return {"params": state["v"], "v": jtu.tree_map(lambda v, gi: -self.gamma * v - gi, state["v"], g)}
