"""`ScanSnap` (Tian et al. 2023, finite sequences) against its loss written out by
hand: a loop over sequences and over the positions of each sequence, in numpy,
from the tokens themselves (the model stores token counts per sequence). An
independent check of the vectorised formula, as the co-occurrence model has."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradflow.problems import ScanSnap, syn_small
from gradflow.problems.scan_snap import YZ


def _loop_loss(Y, Z, sequences, labels, classes):
    """Mean cross-entropy over sequences, each a list of T − 1 contextual tokens:
    b_t = softmax_t(z_{ψ(n), x_t}), u = Σ_t b_t e_{x_t}, f = u / ‖u‖, logits = Yᵀ f."""
    M = classes.M
    total = 0.0
    for tokens, n in zip(sequences, labels):
        q = classes.query[n]
        scores = np.array([Z[q, x] for x in tokens])
        b = np.exp(scores - scores.max())
        b /= b.sum()
        u = np.zeros(M)
        for weight, x in zip(b, tokens):
            u[x] += weight
        f = u / np.sqrt(np.sum(u * u))
        logits = np.array([sum(Y[k, j] * f[k] for k in range(M)) for j in range(M)])
        top = logits.max()
        total += top + np.log(np.sum(np.exp(logits - top))) - logits[classes.next_token[n]]
    return total / len(sequences)


@pytest.fixture(scope="module")
def case():
    classes = syn_small()
    T, per_class = 9, 3
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes.K), per_class)
    probs = np.asarray(classes.probs)
    sequences = [rng.choice(classes.M, size=T - 1, p=probs[n]) for n in labels]
    counts = np.stack([np.bincount(s, minlength=classes.M) for s in sequences]).astype(float)
    data = {"counts": jnp.asarray(counts), "label": jnp.asarray(labels)}
    problem = ScanSnap(classes=classes, T=T, N=len(labels), init_scale=0.5)
    ky, kz = jax.random.split(jax.random.PRNGKey(3))
    model = YZ(Y=0.7 * jax.random.normal(ky, (classes.M, classes.M)), Z=0.7 * jax.random.normal(kz, (classes.M, classes.M)))
    return problem, model, data, sequences, labels, classes


def test_vectorised_loss_equals_the_loop_over_positions(case):
    problem, model, data, sequences, labels, classes = case
    loop = _loop_loss(np.asarray(model.Y), np.asarray(model.Z), sequences, labels, classes)
    # Same arithmetic in another order (softmax over counts vs. over positions): float64 round-off.
    assert float(problem.loss(model, data)) == pytest.approx(loop, rel=1e-12, abs=0)


def test_gradient_matches_finite_differences_of_the_loop(case):
    problem, model, data, sequences, labels, classes = case
    grad = jax.grad(problem.loss)(model, data)
    rng = np.random.default_rng(1)
    h = 1e-5
    for field in ("Y", "Z"):
        base = np.asarray(getattr(model, field))
        for i, j in rng.integers(0, classes.M, size=(4, 2)):
            plus, minus = base.copy(), base.copy()
            plus[i, j] += h
            minus[i, j] -= h
            args = {"Y": np.asarray(model.Y), "Z": np.asarray(model.Z)}
            fd = (_loop_loss(**{**args, field: plus}, sequences=sequences, labels=labels, classes=classes)
                  - _loop_loss(**{**args, field: minus}, sequences=sequences, labels=labels, classes=classes)) / (2 * h)
            # Central differences: O(h²) ≈ 1e-10 truncation plus round-off ~1e-16/h ≈ 1e-11.
            assert float(getattr(grad, field)[i, j]) == pytest.approx(fd, abs=1e-8), (field, i, j)
