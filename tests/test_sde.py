"""`SDEFlow` (Li, Tai & E): dθ = −∇L dt + √(η/B) Σ^{1/2} dW against minibatch SGD.

The problem is least squares with one design A and n noisy targets,
ℓ_i(θ) = ‖Aθ − y_i‖²/2, whose per-sample gradient noise ∇ℓ_i − ∇L = −Aᵀ(y_i − ȳ)
does not depend on θ: the SDE is an Ornstein–Uhlenbeck process with closed-form
moments. With H = AᵀA = diag(λ) and Σ the per-sample gradient covariance,

    E θ(t) = θ* + e^{−Ht}(θ0 − θ*),   Cov θ(t)_jk = (η/B) Σ_jk (1 − e^{−(λj+λk)t}) / (λj + λk).

The SGD reference is written here with optax and jax.random: minibatches of B
indices drawn uniformly *with replacement* at every step (so the minibatch
gradient's covariance is exactly Σ/B), θ ← θ − η ĝ, read at t = kη.
"""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradflow as gf
from gradflow.accuracy import fit_order
from gradflow.problems import LeastSquares

LAM = np.array([1.0, 4.0])  # the spectrum of H = AᵀA
N_SAMPLES = 8
START = 3.0  # θ0 − θ* in each coordinate
TARGETS = np.random.default_rng(0).standard_normal((N_SAMPLES, LAM.size))  # the targets y_i


class Theta(eqx.Module):
    theta: jax.Array


class SharedDesign(gf.AbstractProblem):
    """ℓ_i(θ) = ‖Aθ − y_i‖²/2 with A = diag(√λ) and fixed targets y_i; θ0 = θ* + 3."""

    def data(self):  # NumPy constants: nothing for XLA to constant-fold once per seed at compile time
        return {"A": jnp.asarray(np.diag(np.sqrt(LAM))), "y": jnp.asarray(TARGETS)}

    def minimiser(self):
        return TARGETS.mean(0) / np.sqrt(LAM)  # θ* = A⁻¹ ȳ

    def init(self, key):  # every seed starts at the same θ0: only the noise differs
        return Theta(jnp.asarray(self.minimiser() + START)), self.data()

    def per_sample_loss(self, model, data):
        r = model.theta @ data["A"].T - data["y"]  # (n, p): row i is Aθ − y_i
        return 0.5 * jnp.sum(r * r, axis=1)

    def loss(self, model, data):
        return jnp.mean(self.per_sample_loss(model, data))

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "theta": model.theta}


PROBLEM = SharedDesign()
DATA = PROBLEM.data()
STAR = PROBLEM.minimiser()
_DEV = np.asarray((DATA["y"] - DATA["y"].mean(0)) @ DATA["A"])  # rows Aᵀ(y_i − ȳ) (A is symmetric)
SIGMA = _DEV.T @ _DEV / N_SAMPLES  # the per-sample gradient covariance (state-independent here)


def ou_moments(eta, batch, t):
    """The SDE's closed-form mean and covariance at time t."""
    mean = STAR + np.exp(-LAM * t) * START
    rates = LAM[:, None] + LAM[None, :]
    return mean, eta / batch * SIGMA * -np.expm1(-rates * t) / rates


def sgd_moments(eta, batch, t):
    """The exact mean and covariance of minibatch SGD with replacement after k = t/η steps:
    m ← (I − ηH) m, C ← (I − ηH) C (I − ηH) + η² Σ/B (the minibatch gradient is unbiased with covariance Σ/B)."""
    a = 1 - eta * LAM
    cov = np.zeros((LAM.size, LAM.size))
    for _ in range(round(t / eta)):
        cov = a[:, None] * cov * a[None, :] + eta**2 * SIGMA / batch
    return STAR + a ** round(t / eta) * START, cov


def keys(first, n):
    """Seeds first … first + n − 1 as raw keys (jax.random.PRNGKey(i), as `seeds=n` gives them), built in one
    vmapped call: `seeds=` a long list of ints is slow to turn into keys."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(first, first + n))


def moment_errors_in_se(theta, mean, cov):
    """|empirical − expected| in Monte-Carlo standard errors, for the mean and each covariance entry."""
    n = theta.shape[0]
    se_mean = np.sqrt(np.diag(cov) / n)
    # the standard error of a sample covariance entry: sqrt((C_jj C_kk + C_jk²) / N) for Gaussian θ
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    return np.abs(theta.mean(0) - mean) / se_mean, np.abs(np.cov(theta.T) - cov) / se_cov


ETA, BATCH, T1, DT, SEEDS = 0.1, 2, 1.0, 0.02, 1000


def simulate_sde(seeds, problem=PROBLEM, eta=ETA, batch=BATCH):
    # Heun at a fixed step: the noise here is additive, so its Stratonovich limit is the Itô SDE, and
    # it is weak order 2 (Euler–Maruyama's O(dt) drift bias, 0.016 on E θ_2 at dt = 0.01, exceeds the
    # Monte-Carlo error of 1,000 seeds).
    return gf.simulate(problem, gf.SDEFlow(lr=eta, batch_size=batch), t1=T1, seeds=keys(*seeds), solver=dfx.Heun(),
                       stepsize_controller=dfx.ConstantStepSize(), dt0=DT, save=gf.LinearGrid(n=3), batching="vmap")


@pytest.fixture(scope="module")
def sde_run():
    return simulate_sde((0, SEEDS))


def test_sde_moments_match_the_ornstein_uhlenbeck_closed_form(sde_run):
    """Heun at a fixed step dt = 0.02 (its bias, O((λ·dt)²), is below the Monte-Carlo
    error of 1,000 seeds), 1,000 seeds, at t = 0.5 and t = 1."""
    assert np.all(sde_run.stats["status"] == gf.Status.OK)
    for i, t in enumerate(sde_run.ts[1:], start=1):
        theta = sde_run.obs["theta"][:, i]
        mean, cov = ou_moments(ETA, BATCH, t)
        in_se_mean, in_se_cov = moment_errors_in_se(theta, mean, cov)
        # Monte-Carlo standard error × 4 (a false alarm about once in 10⁴ per entry)
        assert np.all(in_se_mean <= 4) and np.all(in_se_cov <= 4), (t, in_se_mean, in_se_cov)
        se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / SEEDS)
        emp_cov = np.cov(theta.T)
        # and the noise is there: the covariance is far from the gradient flow's zero
        assert np.all(np.diag(emp_cov) > 20 * se_cov.diagonal())


def test_sgd_weak_error_against_the_sde_is_order_one():
    """Minibatch SGD through `train(..., minibatch=1)` (128,000 seeds) against the SDE's closed-form
    moments at t = 1: the error in the mean (test functions θ_j) and the relative error in the
    covariance both fall at order 1 in η (the gradient flow, whose covariance is 0, stays at
    relative error 1). Each SGD run first matches SGD's own exact moments (so `train` samples
    with replacement as it says)."""
    t, n_seeds = 1.0, 128_000
    mean_errors, cov_errors = [], []
    etas = [0.2, 0.1, 0.05, 0.025]
    for eta in etas:
        run = gf.train(PROBLEM, gf.Optimizer(optax.sgd, eta), steps=round(t / eta), dt=eta, seeds=keys(0, n_seeds),
                       minibatch=1, save=gf.LinearGrid(n=2), batching="vmap")
        theta = run.obs["theta"][:, -1]
        in_se_mean, in_se_cov = moment_errors_in_se(theta, *sgd_moments(eta, 1, t))
        assert np.all(in_se_mean <= 4) and np.all(in_se_cov <= 4), (eta, in_se_mean, in_se_cov)  # MC error × 4
        mean, cov = ou_moments(eta, 1, t)
        mean_errors.append(np.max(np.abs(theta.mean(0) - mean)))
        cov_errors.append(np.linalg.norm(np.cov(theta.T) - cov) / np.linalg.norm(cov))
    mean_fit, cov_fit = fit_order(etas, mean_errors), fit_order(etas[1:], cov_errors[1:])
    # Tolerances are the 1 ± 0.3. Exact values (SGD's exact moments against the SDE's): mean
    # errors 0.121, 0.058, 0.028, 0.014 (order 1.04); relative covariance errors 0.28, 0.11, 0.051,
    # 0.025, fitted over η ≤ 0.1 (order 1.09): at η = 0.2, ηλ_max = 0.8 is outside the asymptotic
    # regime (local order 1.31 there). Monte-Carlo error of 128,000 seeds: ≤ 0.001 on the mean,
    # ≈ √(2/128,000) = 0.004 per covariance entry, relative. Measured: mean errors 0.121, 0.058,
    # 0.028, 0.014 (order 1.02); relative covariance errors 0.27, 0.11, 0.044, 0.023 (order 1.14).
    assert abs(mean_fit["order"] - 1) <= 0.3, (mean_fit, mean_errors)
    assert abs(cov_fit["order"] - 1) <= 0.3, (cov_fit, cov_errors)
    assert cov_errors[-1] > 4 * np.sqrt(2 / n_seeds)  # the smallest error is still above the MC error


def test_sde_seeds_are_reproducible_bit_for_bit_and_independent(sde_run):
    # Seeds 1 … 1000 in a second run (the same shapes, so the same compiled program) give seeds 1 … 999 of the
    # first bit for bit: a seed's path is reproducible and does not depend on where in the batch it runs or
    # beside which seeds (its Brownian tree is keyed by its own key).
    shifted = simulate_sde((1, SEEDS))
    np.testing.assert_array_equal(shifted.obs["theta"][:-1], sde_run.obs["theta"][1:])
    final = sde_run.obs["theta"][:, -1]
    assert len(np.unique(final[:, 0])) == SEEDS  # every seed has its own noise


def test_least_squares_has_per_sample_losses_and_sde_errors_are_clear():
    ls = LeastSquares(n=8, p=2, cond=2.0)
    model, data = ls.init(jax.random.PRNGKey(0))
    np.testing.assert_allclose(jnp.mean(ls.per_sample_loss(model, data)), ls.loss(model, data), rtol=1e-12)
    # The diffusion factor D (p × n) against the covariance of the explicit per-sample gradients
    # x_i (x_iᵀθ − y_i), which here depends on θ: √(η/B)·D·Dᵀ·√(η/B) = (η/B) Σ(θ), to round-off.
    flow, theta = gf.SDEFlow(lr=0.1, batch_size=2), jnp.array([0.3, -1.2])
    grads = data["X"] * (data["X"] @ theta - data["y"])[:, None]
    sigma = np.cov(np.asarray(grads).T, bias=True)
    d = flow.diffusion(0.0, theta, lambda th: jax.jacrev(lambda q: ls.per_sample_loss(type(model)(q), data))(th))
    np.testing.assert_allclose(d @ d.T, 0.1 / 2 * sigma, rtol=1e-12, atol=1e-14)  # float64 round-off

    class NoSamples(gf.AbstractProblem):
        def init(self, key):
            return Theta(jnp.zeros(2)), {}

        def loss(self, model, data):
            return jnp.sum(model.theta**2)

    fixed = {"solver": dfx.Euler(), "stepsize_controller": dfx.ConstantStepSize(), "dt0": 0.1}
    with pytest.raises(ValueError, match="does not define `per_sample_loss`"):
        gf.simulate(NoSamples(), gf.SDEFlow(lr=0.1, batch_size=1), t1=1.0, **fixed)
    with pytest.raises(ValueError, match="larger than the data: LeastSquares has 8 samples"):
        gf.simulate(ls, gf.SDEFlow(lr=0.1, batch_size=9), t1=1.0, **fixed)
    with pytest.raises(ValueError, match="fixed step"):
        gf.simulate(ls, gf.SDEFlow(lr=0.1, batch_size=2), t1=1.0, solver=dfx.Heun())
    with pytest.raises(ValueError, match="not an SDE solver"):
        gf.simulate(ls, gf.SDEFlow(lr=0.1, batch_size=2), t1=1.0, **{**fixed, "solver": dfx.Tsit5()})
    with pytest.raises(ValueError, match="`batch_size`"):
        gf.SDEFlow(lr=0.1, batch_size=0)
    # the same errors for minibatch SGD through `train`
    with pytest.raises(ValueError, match="does not define `per_sample_loss`"):
        gf.train(NoSamples(), optax.sgd(0.1), steps=1, dt=0.1, minibatch=1)
    with pytest.raises(ValueError, match="`minibatch` \\(9\\) is larger than the data: LeastSquares has 8 samples"):
        gf.train(ls, optax.sgd(0.1), steps=1, dt=0.1, minibatch=9)
