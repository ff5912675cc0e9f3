"""`DigitsMLP`: MNIST digits for a tanh network (the edge-of-stability problem), on a
tiny IDX fixture written here."""

import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import DigitsMLP

from test_mnist import idx_bytes


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 40).astype(np.uint8)
    images = rng.integers(0, 256, (40, 28, 28)).astype(np.uint8)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    return str(folder), images, labels


def test_inputs_are_pooled_standardised_digits_and_the_loss_is_the_mean_per_sample_loss(folder):
    path, images, labels = folder
    problem = DigitsMLP(path=path, n=30, pool=7, width=5)
    x, y = problem.data()
    pooled = images[:30].astype(float).reshape(30, 4, 7, 4, 7).mean((2, 4)).reshape(30, 16)
    np.testing.assert_allclose(x, (pooled - pooled.mean()) / pooled.std(), rtol=1e-12)
    np.testing.assert_array_equal(y.argmax(1), labels[:30])
    model, data = problem.init(jax.random.PRNGKey(0))
    assert model.W1.shape == (5, 16) and model.W2.shape == (10, 5)
    out = np.tanh(x @ np.asarray(model.W1).T + np.asarray(model.b1)) @ np.asarray(model.W2).T + np.asarray(model.b2)
    per_sample = 0.5 * ((out - y) ** 2).sum(1)
    np.testing.assert_allclose(problem.per_sample_loss(model, data), per_sample, rtol=1e-12)
    assert float(problem.loss(model, data)) == pytest.approx(per_sample.mean(), rel=1e-12)
    # one draw of data for every seed, weights per seed
    other, data2 = problem.init(jax.random.PRNGKey(1))
    assert np.array_equal(data["x"], data2["x"]) and not np.array_equal(model.W1, other.W1)


def test_bad_fields_are_refused(folder):
    path = folder[0]
    with pytest.raises(ValueError, match="`pool` must divide 28"):
        DigitsMLP(path=path, pool=5)
    with pytest.raises(ValueError, match="`n`"):
        DigitsMLP(path=path, n=41).data()
    with pytest.raises(ValueError, match="`width`"):
        DigitsMLP(path=path, width=0)


def test_sharpness_of_the_network_is_the_top_eigenvalue_of_its_dense_hessian(folder):
    """The nonlinear case of the sharpness check on this problem: Lanczos over every
    parameter (174 of them) against eigvalsh of the dense Hessian, 1e-8 relative."""
    problem = DigitsMLP(path=folder[0], n=30, pool=7, width=6)
    run = gf.simulate(gf.Sharpness(problem, k=2, max_iterations=200), t1=1.0, seeds=1, save=gf.LinearGrid(n=2))
    model = jax.tree_util.tree_map(lambda x: x[0], run.final)
    _, data = problem.init(jax.random.PRNGKey(0))
    flat, unravel = jax.flatten_util.ravel_pytree(model)
    dense = jnp.linalg.eigvalsh(jax.hessian(lambda v: problem.loss(unravel(v), data))(flat))[::-1][:2]
    np.testing.assert_allclose(run.obs["sharpness"][0, -1], dense, rtol=1e-8)
