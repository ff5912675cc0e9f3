"""`SDEFlow`: minibatch SGD as a stochastic differential equation (Li, Tai & E).

The drift is the gradient flow's; the diffusion is built from the per-sample
gradients that a problem declares through `per_sample_loss`. `solve_one`
integrates it with `diffrax.MultiTerm(ODETerm(drift), ControlTerm(diffusion,
VirtualBrownianTree))`, the tree keyed from the seed's key.
"""

import math

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx

from ._flows import AbstractFlow, _rates_tuple, scale_fields

# Solvers that converge to the Itô solution for any noise (Euler–Maruyama), or
# to the Stratonovich one (equal to Itô when the noise does not depend on θ).
_ITO_SOLVERS = (dfx.Euler, dfx.ItoMilstein)
_SDE_SOLVERS = (dfx.Euler, dfx.ItoMilstein, dfx.Heun, dfx.EulerHeun, dfx.StratonovichMilstein, dfx.AbstractSRK)
_NOISE_KEY = 0x5DE  # folded into a seed's key: its Brownian motion is independent of its init draw


class SDEFlow(AbstractFlow):
    """Minibatch SGD as a stochastic differential equation (Li, Tai & E 2017, 2019):

        dθ = −R ∇L dt + √(η/B) R Σ(θ)^{1/2} dW,

    Σ(θ) = (1/n) Σ_i (∇ℓ_i − ∇L)(∇ℓ_i − ∇L)ᵀ the covariance of the n per-sample
    gradients. Σ^{1/2} is taken as the p × n factor D = [∇ℓ_i − ∇L]_i / √n
    (D Dᵀ = Σ) against an n-dimensional Brownian motion, which gives the same law
    without a matrix square root. Its discrete counterpart is SGD with learning
    rate η (per-field ηR) on minibatches of B samples drawn uniformly *with
    replacement*, read at t = kη (the minibatch gradient has covariance Σ/B);
    its weak error against the SDE is O(η).

    `simulate` integrates it with a `diffrax.VirtualBrownianTree` per seed,
    keyed from the seed's key (so seeds are independent and a seed's path is
    reproducible bit for bit), at a fixed step: pass
    `stepsize_controller=diffrax.ConstantStepSize()`, `dt0` (the tree resolves
    time to dt0/8) and an SDE solver, e.g. `diffrax.Euler()` (Euler–Maruyama,
    Itô: right for any noise). Stratonovich solvers (`Heun`, the SRK family)
    are accepted but converge to the Itô SDE only where Σ does not depend on θ.
    The problem must define `per_sample_loss(model, data)` (a vector of the n
    per-sample losses whose mean is `loss`).

    **Arguments:**

    - `lr`: the learning rate η of the SGD it models.
    - `batch_size`: the minibatch size B (1 ≤ B ≤ n).
    - `rates`: per-field rates R, as for `GradientFlow`.
    """

    lr: float
    batch_size: int
    rates: tuple[tuple[str, float], ...] = eqx.field(converter=_rates_tuple, default=None)

    def __check_init__(self):
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                             and self.lr > 0):
            raise ValueError(f"`lr` (the learning rate of the SGD it models) must be a finite number > 0; "
                             f"got {self.lr!r}.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"`batch_size` (the minibatch size B) must be an integer >= 1; got {self.batch_size!r}.")

    def vector_field(self, t, state, grad_fn):
        """The drift, −R ∇L (the gradient flow's)."""
        return scale_fields(jtu.tree_map(jnp.negative, grad_fn(state)), self.rates)

    def diffusion(self, t, state, sample_grads_fn):
        """√(η/B) R D, leaf by leaf of shape leaf.shape + (n,), given
        `sample_grads_fn(params)`: the per-sample gradients, leaves of shape (n,) + leaf.shape."""
        g = sample_grads_fn(state)
        n = jtu.tree_leaves(g)[0].shape[0]
        scale = jnp.sqrt(self.lr / (self.batch_size * n))

        def factor(gi):
            return jnp.moveaxis(scale * (gi - jnp.mean(gi, axis=0)), 0, -1)

        return scale_fields(jtu.tree_map(factor, g), self.rates)

    def check_setting(self, problem, n_samples, integration) -> None:
        """Check the problem and the integration options for the SDE (before compiling)."""
        check_samples(problem, n_samples, self.batch_size, "batch_size", "SDEFlow")
        if integration.adaptive or not isinstance(integration.stepsize_controller, dfx.ConstantStepSize):
            raise ValueError("SDEFlow is integrated at a fixed step: pass stepsize_controller=diffrax.ConstantStepSize(), "
                             "dt0 (e.g. dt0=lr/10) and an SDE solver such as solver=diffrax.Euler().")
        if not isinstance(integration.solver, _SDE_SOLVERS):
            raise ValueError(f"{type(integration.solver).__name__} is not an SDE solver; pass solver=diffrax.Euler() "
                             "(Euler–Maruyama, Itô) for SDEFlow.")


def check_samples(problem, n_samples, batch, argument, who="a minibatch"):
    """One clear error where `problem` has no per-sample losses or `batch` exceeds their number."""
    name = type(problem).__name__
    if n_samples is None:
        raise ValueError(
            f"{who} needs per-sample losses, and {name} does not define `per_sample_loss`: add a method "
            f"`per_sample_loss(self, model, data)` returning the vector of the n per-sample losses whose mean "
            f"is `loss` (as gradflow.problems.LeastSquares does).")
    if batch > n_samples:
        raise ValueError(f"`{argument}` ({batch}) is larger than the data: {name} has {n_samples} "
                         f"samples; pass a batch size B <= {n_samples}.")


def per_sample_count(problem, model, data) -> int | None:
    """n, the number of per-sample losses of `problem` (from `eval_shape`), or None
    where the problem does not define them. Refuses a `per_sample_loss` that is not a vector."""
    if not problem.has_per_sample_loss:
        return None
    shapes, static = eqx.partition((model, data), lambda x: isinstance(x, jax.ShapeDtypeStruct) or eqx.is_array(x))
    out = jax.eval_shape(lambda d: problem.per_sample_loss(*eqx.combine(d, static)), shapes)
    if not (isinstance(out, jax.ShapeDtypeStruct) and out.ndim == 1 and jnp.issubdtype(out.dtype, jnp.inexact)):
        got = f"shape {out.shape} {out.dtype}" if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise ValueError(f"{type(problem).__name__}.per_sample_loss must return a floating-point vector (n,) of "
                         f"per-sample losses; it returned {got}.")
    return out.shape[0]


def noise_keys(keys):
    """Each seed's Brownian key, folded from its seed key (raw uint32, shape (n, 2))."""
    return jax.vmap(lambda k: jax.random.fold_in(k, _NOISE_KEY))(keys)


def sde_terms(flow: SDEFlow, drift, problem, rest, data, params, noise_key, t1, dt0):
    """diffrax's terms of one seed's SDE: drift dt + diffusion dW, W from a
    `VirtualBrownianTree` on [0, t1] at resolution dt0/8 keyed by `noise_key`."""
    def per_sample(p):
        return problem.per_sample_loss(eqx.combine(p, rest), data)

    def sample_grads(p):
        return jax.jacrev(per_sample)(p)

    out = jax.eval_shape(per_sample, params)
    brownian = dfx.VirtualBrownianTree(t0=0.0, t1=t1, tol=dt0 / 8, shape=jax.ShapeDtypeStruct(out.shape, out.dtype),
                                       key=noise_key)
    noise = jax.ShapeDtypeStruct(out.shape, out.dtype)

    def operator(t, y, args):  # D (leaves of shape leaf.shape + (n,)) as the linear map dW ↦ D dW
        d = flow.diffusion(t, y, sample_grads)
        return lx.FunctionLinearOperator(lambda w: jtu.tree_map(lambda di: di @ w, d), noise)

    diffusion = dfx.ControlTerm(operator, brownian)
    return dfx.MultiTerm(dfx.ODETerm(drift), diffusion)
