"""Linear least squares: the gradient flow is linear and solvable in closed form."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._problem import AbstractProblem
from .._typing import Array, Float
from ._common import check_data_seed, check_float, check_int, data_key, orthonormal


class Linear(eqx.Module):
    """The least-squares model.

    **Arguments:**

    - `theta`: the parameter vector, shape (p,).
    """

    theta: Float[Array, " p"]


class LeastSquares(AbstractProblem):
    """L(θ) = ‖Xθ − y‖² / (2n), with the spectrum of H = XᵀX/n chosen.

    X = U diag(√(nλ)) Vᵀ with λ log-spaced in [1/cond, 1], so H = V diag(λ) Vᵀ
    has largest eigenvalue 1 and condition number `cond`. Gradient flow
    θ̇ = −H(θ − θ*) then has the closed form
    θ(t) = θ* + V e^{−Λt} Vᵀ (θ0 − θ*), and GD with step η the iterate
    θ_k = θ* + (I − ηH)^k (θ0 − θ*). A large `cond` with t1 ~ cond makes the
    flow stiff (fast modes decay at rate 1, slow ones at 1/cond).

    **Arguments:**

    - `n`: the number of samples (rows of X); at least `p`, so that XᵀX has full rank.
    - `p`: the number of parameters.
    - `cond`: the condition number of H = XᵀX/n, ≥ 1 (its eigenvalues are log-spaced
      in [1/cond, 1]).
    - `noise`: the standard deviation of the label noise added to y = Xβ.
    - `init_scale`: the standard deviation of θ0's entries.
    - `data_seed`: None to draw the data per seed; an integer to share one draw across
      seeds.
    """

    default_t1: ClassVar[float] = 50.0

    n: int = 32
    p: int = 8
    cond: float = 10.0
    noise: float = 0.1
    init_scale: float = 1.0
    data_seed: int | None = None

    def __check_init__(self):
        check_int("p", self.p)
        check_int("n", self.n)
        if self.n < self.p:
            raise ValueError(f"field `n` ({self.n}) must be >= `p` ({self.p}) so that XᵀX has full rank.")
        check_float("cond", self.cond)
        if self.cond < 1:
            raise ValueError(f"field `cond` (condition number of XᵀX) must be >= 1; got {self.cond}.")
        check_float("noise", self.noise, allow_zero=True)
        check_float("init_scale", self.init_scale, allow_zero=True)
        check_data_seed(self.data_seed)

    def init(self, key):
        kd, kt = jax.random.split(key)
        ku, kv, kb, kn = jax.random.split(data_key(kd, self.data_seed), 4)
        lam = jnp.geomspace(1.0, 1.0 / self.cond, self.p)
        U = orthonormal(ku, self.n, self.p)
        V = orthonormal(kv, self.p, self.p)
        X = (U * jnp.sqrt(self.n * lam)) @ V.T
        y = X @ jax.random.normal(kb, (self.p,)) + self.noise * jax.random.normal(kn, (self.n,))
        model = Linear(self.init_scale * jax.random.normal(kt, (self.p,)))
        return model, {"X": X, "y": y, "V": V, "lam": lam}

    def loss(self, model, data):
        r = data["X"] @ model.theta - data["y"]
        return 0.5 * jnp.mean(r * r)

    def per_sample_loss(self, model, data):
        """ℓ_i = (x_iᵀθ − y_i)² / 2, one per row of X (their mean is `loss`)."""
        r = data["X"] @ model.theta - data["y"]
        return 0.5 * r * r

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "theta": model.theta}

    def describe_observables(self):
        return {"loss": "loss ‖Xθ − y‖² / (2n)", "theta": r"parameters $\theta_j$"}

    def minimiser(self, data):
        """θ* = H⁻¹ Xᵀy / n, through the known eigenbasis of H."""
        V, lam = data["V"], data["lam"]
        b = data["X"].T @ data["y"] / self.n
        return V @ ((V.T @ b) / lam)

    def exact_solution(self, model0, data, t):
        V, lam = data["V"], data["lam"]
        star = self.minimiser(data)
        return Linear(star + V @ (jnp.exp(-lam * t) * (V.T @ (model0.theta - star))))

    def gd_iterate(self, model0, data, learning_rate, k):
        """Closed-form k-th iterate of gradient descent with step `learning_rate`."""
        V, lam = data["V"], data["lam"]
        star = self.minimiser(data)
        return Linear(star + V @ ((1.0 - learning_rate * lam) ** k * (V.T @ (model0.theta - star))))
