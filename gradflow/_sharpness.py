"""Sharpness along the flow: the top eigenvalues of the loss Hessian with respect
to the trainable parameters, by Lanczos iteration on Hessian–vector products.

`Sharpness(problem, k=2)` is the problem with one more observable, "sharpness"
(the top-k eigenvalues, largest first), computed inside the solve at the save
times, for `simulate` and `train` alike, and "sharpness_hvps", the number of
Hessian–vector products each save cost. It wraps any problem, users' own
problems included.

Lanczos is hand-written because neither JAX nor its ecosystem has a jittable one
with full reorthogonalisation (`jax.scipy.sparse.linalg` has solvers, not
eigensolvers). With `iterations` = the number of parameters (the default up to
`max_iterations`) the Krylov space is the whole space and the Ritz values are
the Hessian's eigenvalues to round-off; past that the top few converge first.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._problem import AbstractProblem, WrappedProblem


def top_eigenvalues(hvp, n: int, k: int, iterations: int, key=None):
    """The `k` largest eigenvalues (largest first) of the symmetric n × n operator
    `hvp` (a function of a length-n vector), by `iterations` steps of Lanczos
    with full reorthogonalisation, from a fixed pseudo-random start."""
    key = jax.random.PRNGKey(0) if key is None else key
    q = jax.random.normal(key, (n,))
    q = q / jnp.linalg.norm(q)
    Q = jnp.zeros((iterations, n)).at[0].set(q)
    alpha = jnp.zeros(iterations)
    beta = jnp.zeros(iterations)

    def step(i, carry):
        Q, alpha, beta = carry
        w = hvp(Q[i])
        a = jnp.dot(w, Q[i])
        # Full reorthogonalisation against every basis vector so far, twice (classical
        # Gram–Schmidt loses orthogonality once a Ritz value converges).
        mask = (jnp.arange(iterations) <= i)[:, None]
        for _ in range(2):
            w = w - (Q * mask).T @ ((Q * mask) @ w)
        b = jnp.linalg.norm(w)
        nxt = jnp.where(b > 1e-300, w / jnp.where(b > 1e-300, b, 1.0), 0.0)
        Q = jnp.where(i + 1 < iterations, Q.at[jnp.minimum(i + 1, iterations - 1)].set(nxt), Q)
        return Q, alpha.at[i].set(a), beta.at[i].set(b)

    Q, alpha, beta = jax.lax.fori_loop(0, iterations, step, (Q, alpha, beta))
    T = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    return jnp.linalg.eigvalsh(T)[::-1][:k]


class Sharpness(WrappedProblem):
    """`inner` with the top-`k` Hessian eigenvalues as the observable "sharpness".

    **Arguments:**

    - `inner`: any problem.
    - `k`: how many of the largest eigenvalues to save.
    - `max_iterations`: Lanczos steps, at most (default 64); the number of trainable
      parameters if smaller (then exact to round-off). Each is one Hessian–vector
      product (forward over reverse), saved as "sharpness_hvps".
    """

    inner: AbstractProblem
    k: int = 1
    max_iterations: int = 64

    def __check_init__(self):
        if not isinstance(self.inner, AbstractProblem):
            raise TypeError(f"`inner` must be a gradflow problem; got {type(self.inner).__name__}.")
        for name in ("k", "max_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {value!r}.")
        if self.k > self.max_iterations:
            raise ValueError(f"`k` ({self.k}) cannot exceed `max_iterations` ({self.max_iterations}).")

    def describe_observables(self):
        return {**self.inner.describe_observables(), "sharpness": f"top-{self.k} Hessian eigenvalues",
                "sharpness_hvps": "Hessian–vector products per save"}

    def observables(self, model, data):
        params, rest = eqx.partition(model, self.inner.trainable(model))
        flat, unravel = ravel_pytree(params)
        n = flat.size
        if self.k > n:
            raise ValueError(f"`k` ({self.k}) exceeds the {n} trainable parameters.")
        iterations = min(n, self.max_iterations)

        def grad_flat(x):
            return ravel_pytree(jax.grad(lambda p: self.inner.loss(eqx.combine(p, rest), data))(unravel(x)))[0]

        def hvp(v):
            return jax.jvp(grad_flat, (flat,), (v.astype(flat.dtype),))[1]

        top = top_eigenvalues(hvp, n, self.k, iterations)
        return {**self.inner.observables(model, data), "sharpness": top,
                "sharpness_hvps": jnp.asarray(iterations, dtype=flat.dtype)}
