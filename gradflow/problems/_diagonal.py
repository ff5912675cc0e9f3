"""Diagonal linear network β = u⊙u − v⊙v (Woodworth et al. 2020) on an
orthogonal design, where each coordinate's gradient flow is a Riccati equation
with a closed-form solution."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._problem import AbstractProblem
from .._typing import Array, Float
from ._common import check_data_seed, check_float, check_int, data_key, orthonormal


class Diagonal(eqx.Module):
    """The diagonal linear network's model.

    **Arguments:**

    - `u`, `v`: the weights, shape (p,).

    Its regression vector is `beta` = u⊙u − v⊙v (a property).
    """

    u: Float[Array, " p"]
    v: Float[Array, " p"]

    @property
    def beta(self):
        return self.u * self.u - self.v * self.v


class DiagonalLinear(AbstractProblem):
    """Sparse regression with β = u⊙u − v⊙v, L = ‖Xβ − y‖²/(2n), XᵀX/n = I.

    Init u = v = α (so β(0) = 0; small α is the "rich", sparsity-seeking regime).
    y = X β_true + noise with `sparsity` non-zero entries of β_true.

    Closed form. With β* = Xᵀy/n the loss is ½‖β − β*‖² + const, u·v is
    conserved per coordinate, and w = e^{4S} (u = u0 w^{-1/2}, v = v0 w^{1/2})
    solves ẇ = 4(u0² − β* w − v0² w²), a Riccati equation with roots
    w± = (−β* ± D)/(2v0²), D = √(β*² + 4u0²v0²):
    w(t) = (w+ − q w−)/(1 − q), q = (1 − w+)/(1 − w−) · e^{−4Dt}.

    **Arguments:**

    - `n`: the number of samples, at least `p` (an orthogonal design).
    - `p`: the dimension of β.
    - `sparsity`: the number of non-zero entries of β_true, at most `p`.
    - `alpha`: the initialisation scale α > 0.
    - `noise`: the standard deviation of the label noise (0 for none).
    - `data_seed`: None to draw the data per seed; an integer to share one
      draw across seeds.
    """

    default_t1: ClassVar[float] = 20.0

    n: int = 32
    p: int = 16
    sparsity: int = 3
    alpha: float = 0.1
    noise: float = 0.0
    data_seed: int | None = None

    def __check_init__(self):
        check_int("p", self.p)
        check_int("n", self.n)
        if self.n < self.p:
            raise ValueError(f"field `n` ({self.n}) must be >= `p` ({self.p}) for an orthogonal design.")
        check_int("sparsity", self.sparsity, minimum=0)
        if self.sparsity > self.p:
            raise ValueError(f"field `sparsity` ({self.sparsity}) must be <= `p` ({self.p}).")
        check_float("alpha", self.alpha)
        check_float("noise", self.noise, allow_zero=True)
        check_data_seed(self.data_seed)

    def init(self, key):
        kx, kb, kn, ks = jax.random.split(data_key(key, self.data_seed), 4)
        X = jnp.sqrt(self.n) * orthonormal(kx, self.n, self.p)
        support = jax.random.permutation(ks, self.p) < self.sparsity
        beta_true = jnp.where(support, jax.random.normal(kb, (self.p,)), 0.0)
        y = X @ beta_true + self.noise * jax.random.normal(kn, (self.n,))
        a = jnp.full((self.p,), self.alpha)
        return Diagonal(u=a, v=a), {"X": X, "y": y}

    def loss(self, model, data):
        r = data["X"] @ model.beta - data["y"]
        return 0.5 * jnp.mean(r * r)

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "beta": model.beta, "l1": jnp.sum(jnp.abs(model.beta))}

    def describe_observables(self):
        return {"loss": "loss ‖Xβ − y‖² / (2n)", "beta": r"$\beta = u \odot u - v \odot v$",
                "l1": r"$\ell_1$ norm of $\beta$"}

    def exact_solution(self, model0, data, t):
        b = data["X"].T @ data["y"] / self.n
        u0, v0 = model0.u, model0.v
        uu, vv = u0 * u0, v0 * v0
        D = jnp.sqrt(b * b + 4 * uu * vv)
        # Both roots in cancellation-free form.
        w_plus = jnp.where(b > 0, 2 * uu / (b + D), (D - b) / (2 * vv))
        w_minus = jnp.where(b > 0, -(b + D) / (2 * vv), -2 * uu / (D - b))
        q = (1 - w_plus) / (1 - w_minus) * jnp.exp(-4 * D * t)
        w = (w_plus - q * w_minus) / (1 - q)
        return Diagonal(u=u0 / jnp.sqrt(w), v=v0 * jnp.sqrt(w))

    def conserved(self, model, data):
        return {"uv": model.u * model.v}
