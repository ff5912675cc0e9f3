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
the Hessian's eigenvalues to round-off; past that the top few converge first,
and Lanczos stops once they have (by its residual bound).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._problem import AbstractProblem, WrappedProblem


_BLOCK = 8  # rows of the Lanczos basis reorthogonalised against at a time


def top_eigenvalues(hvp, n: int, k: int, iterations: int, key=None, tol: float = 1e-10):
    """The `k` largest eigenvalues (largest first) of the symmetric n × n operator
    `hvp` (a function of a length-n vector), by Lanczos with full
    reorthogonalisation from a fixed pseudo-random start, and the number of
    products it took. It stops after `iterations` steps, or earlier once each of
    the top k Ritz values θ has converged: its residual ‖Hy − θy‖ = β_m |s_m|
    (the standard Lanczos bound) is at most `tol`·max|θ|, so θ is within that
    residual of an eigenvalue, and within its square over the spectral gap of
    the one it approximates."""
    key = jax.random.PRNGKey(0) if key is None else key
    q = jax.random.normal(key, (n,))
    q = q / jnp.linalg.norm(q)
    rows = -(-iterations // _BLOCK) * _BLOCK  # whole blocks; the rows past `iterations` stay zero
    Q = jnp.zeros((rows, n)).at[0].set(q)
    alpha = jnp.zeros(iterations)
    beta = jnp.zeros(iterations)

    def tridiagonal(alpha, beta, m):
        """T of the first m steps, padded to `iterations` with decoupled diagonal
        entries below the whole spectrum (so its top k are T_m's)."""
        live = jnp.arange(iterations) < m
        floor = -(jnp.max(jnp.abs(alpha)) + 2 * jnp.max(jnp.abs(beta)) + 1.0)
        off = jnp.where(jnp.arange(iterations - 1) < m - 1, beta[:-1], 0.0)
        return jnp.diag(jnp.where(live, alpha, floor)) + jnp.diag(off, 1) + jnp.diag(off, -1)

    def step(carry):
        i, Q, alpha, beta, _ = carry
        w = hvp(Q[i])
        a = jnp.dot(w, Q[i])
        # Full reorthogonalisation against every basis vector so far, twice (classical
        # Gram–Schmidt loses orthogonality once a Ritz value converges), block by block over
        # the rows filled so far only: its cost grows with the steps taken, not with
        # `iterations` (on 57,344 parameters a pass over all of a 64-row Q cost 10× more).
        def against(j, w):
            block = jax.lax.dynamic_slice_in_dim(Q, j * _BLOCK, _BLOCK, axis=0)
            return w - block.T @ (block @ w)

        for _ in range(2):
            w = jax.lax.fori_loop(0, i // _BLOCK + 1, against, w)
        b = jnp.linalg.norm(w)
        exhausted = b <= 1e-300  # an invariant subspace: the Ritz values are exact
        nxt = jnp.where(exhausted, 0.0, w / jnp.where(exhausted, 1.0, b))
        # in place (no copy of Q); on the last step this overwrites row i, no longer needed
        Q = Q.at[jnp.minimum(i + 1, iterations - 1)].set(nxt)
        alpha, beta = alpha.at[i].set(a), beta.at[i].set(b)
        theta, s = jnp.linalg.eigh(tridiagonal(alpha, beta, i + 1))
        top = theta[::-1][:k]
        residual = b * jnp.abs(s[i, ::-1][:k])  # β_m |last component of each top Ritz vector|
        converged = (i + 1 >= k) & jnp.all(residual <= tol * jnp.max(jnp.abs(top)))
        return i + 1, Q, alpha, beta, converged | exhausted

    def running(carry):
        i, _, _, _, done = carry
        return (i < iterations) & ~done

    m, Q, alpha, beta, _ = jax.lax.while_loop(running, step, (jnp.array(0), Q, alpha, beta, jnp.array(False)))
    return jnp.linalg.eigvalsh(tridiagonal(alpha, beta, m))[::-1][:k], m


class Sharpness(WrappedProblem):
    """`inner` with the top-`k` Hessian eigenvalues as the observable "sharpness".

    **Arguments:**

    - `inner`: any problem.
    - `k`: how many of the largest eigenvalues to save.
    - `max_iterations`: Lanczos steps, at most (default 64); the number of trainable
      parameters if smaller (then exact to round-off). Lanczos stops earlier once
      the top k Ritz values have converged (residual bound ≤ 1e-10 relative, see
      `top_eigenvalues`). Each step is one Hessian–vector product (forward over
      reverse); the number a save took is saved as "sharpness_hvps" and summed
      in `run.stats["hessian_vector_products"]`.
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

        top, used = top_eigenvalues(hvp, n, self.k, iterations)
        return {**self.inner.observables(model, data), "sharpness": top,
                "sharpness_hvps": used.astype(flat.dtype)}
