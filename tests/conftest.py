"""Shared test setup: float64 once for the whole session, four simulated CPU
devices (for sharding tests; set before jax is imported), helpers, small problems."""

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
# The suite is dominated by XLA compiles of tiny problems, not by running them: LLVM's
# optimisation passes off halves its time (measured 30 s → 15 s on tests/test_train.py).
# The arithmetic is still IEEE float64, but the last bits may differ from the default
# level: tests comparing processes bitwise give them the same flags, and the SIGKILL
# test's processes run at the default level (checked against this one to 1e-12).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0"

# CLI tests switch on the persistent compile cache: keep it out of the home directory.
if "GRADFLOW_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["GRADFLOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="gradflow-test-cache-")

# The CLI turns the compile cache on by default; in the tests it would make every later
# compile of a worker also export and write its program. Cache tests switch it on themselves.
os.environ.setdefault("GRADFLOW_NO_CACHE", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.tree_util as jtu  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradflow as gf  # noqa: E402


def tree_allclose(a, b, *, rtol=0.0, atol=0.0) -> bool:
    """Same structure and every array leaf close."""
    la, ta = jtu.tree_flatten(a)
    lb, tb = jtu.tree_flatten(b)
    if ta != tb:
        return False
    return all(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=True) for x, y in zip(la, lb))


def seed_keys(n):
    return jnp.stack([jax.random.PRNGKey(i) for i in range(n)])


def exact_observables(problem, run, names):
    """The problem's observables on its closed-form solution at the run's save times."""
    model0, data = jax.jit(jax.vmap(problem.init))(seed_keys(run.n_seeds))

    def at(m0, d, t):
        return problem.observables(problem.exact_solution(m0, d, t), d)

    out = jax.jit(jax.vmap(jax.vmap(at, (None, None, 0)), (0, 0, None)))(model0, data, jnp.asarray(run.ts))
    return {k: np.asarray(out[k]) for k in names}


def relative_error(approx, exact):
    """Per-seed, per-time relative error (2-norm over the observable's components).

    Where the exact value is ~0 (e.g. β(0) = 0), the error is taken relative to
    1e-6 of the seed's largest value over time instead of dividing by ~0.
    """
    a = approx.reshape(approx.shape[0], approx.shape[1], -1)
    e = exact.reshape(exact.shape[0], exact.shape[1], -1)
    norm = np.linalg.norm(e, axis=-1)
    floor = 1e-6 * norm.max(axis=1, keepdims=True)
    return np.linalg.norm(a - e, axis=-1) / np.maximum(norm, np.maximum(floor, 1e-300))


class Blowup(gf.AbstractProblem):
    """dθ/dt = θ³ (loss −θ⁴/4): blows up at t* = 1/(2θ0²). The seeds listed in
    `bad` start at θ0 = 1 (t* = 0.5), the others at 0.1 + 0.01·seed (t* ≥ 25).
    With `nan_above`, the loss is NaN once θ exceeds it (θ = 2 at t = 0.375 for
    a bad seed), so the gradient turns NaN abruptly instead of blowing up."""

    bad: tuple[int, ...] = (1,)
    nan_above: float | None = 2.0

    def init(self, key):
        seed = jax.random.key_data(key)[-1] if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key[-1]
        theta = jnp.where(jnp.isin(seed, jnp.asarray(self.bad)), 1.0, 0.1 + 0.01 * seed)
        return {"theta": jnp.atleast_1d(theta)}, None

    def loss(self, model, data):
        theta = model["theta"]
        value = -jnp.sum(theta**4) / 4
        if self.nan_above is None:
            return value
        # NaN in the value *and* the gradient once θ passes the cap.
        return value + jnp.sum(jnp.where(theta < self.nan_above, 0.0, jnp.nan) * theta)

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "theta": model["theta"][0]}


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("gradflow")


__all__ = ["Blowup", "eqx", "exact_observables", "relative_error", "seed_keys", "tree_allclose"]
