"""The MNIST IDX reader and the noisy-MNIST two-patch problem: on a tiny IDX
fixture written here, and on the shared data when present."""

import gzip
import struct

import jax
import numpy as np
import pytest

from gradflow.problems import NoisyMNIST, load_mnist, read_idx
from gradflow.problems.signal_noise import default_mnist


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f8"): 0x0E}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """60 random 28×28 'images' of digits 0–2 (20 each), gzipped like MNIST's files."""
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3, dtype=np.uint8), 20)
    # Each digit class gets its own bright square, so the classes are separable.
    images = rng.integers(0, 60, (60, 28, 28)).astype(np.uint8)
    for c in range(3):
        images[labels == c, 4 + 8 * c: 10 + 8 * c, 4:24] = 250
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))  # plain, not gzipped: both are read
    return folder, images, labels


def test_read_idx_roundtrip(tiny_mnist, tmp_path):
    folder, images, labels = tiny_mnist
    assert np.array_equal(read_idx(folder / "t10k-images-idx3-ubyte.gz"), images)
    got_images, got_labels = load_mnist(str(folder))
    assert np.array_equal(got_labels, labels) and got_images.shape == (60, 28, 28)
    values = np.arange(6, dtype=">f8").reshape(2, 3)
    (tmp_path / "f.idx").write_bytes(idx_bytes(values))
    assert np.array_equal(read_idx(tmp_path / "f.idx"), values)


@pytest.mark.parametrize(
    "mangle, match",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\0", "longer than its header"),
        (lambda b: b"\x08\x03" + b[2:], "not an IDX file"),
        (lambda b: b[:6], "truncated header"),
        (lambda b: b"", "not an IDX file"),
        (lambda b: gzip.compress(b)[:-10], "corrupt gzip"),
    ],
)
def test_malformed_idx(mangle, match, tmp_path):
    good = idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))
    path = tmp_path / "bad.idx"
    path.write_bytes(mangle(good))
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_noisy_mnist_problem_on_fixture(tiny_mnist):
    folder, images, labels = tiny_mnist
    p = NoisyMNIST(path=str(folder), digits=(0, 2), n=16, n_test=24, downsample=4, s=5, m_k=2, m_v=2)
    assert p.d == 49
    model, data = jax.jit(p.init)(jax.random.PRNGKey(0))
    X, y = np.asarray(data["train"]["X"]), np.asarray(data["train"]["y"])
    assert X.shape == (16, 2, 49) and data["test"]["X"].shape == (24, 2, 49)
    assert np.allclose(np.linalg.norm(X[:, 0], axis=1), 1.0)  # signal patch scaled to signal_norm
    assert np.all((X[:, 1] != 0).sum(1) == 5)  # s noise coordinates
    assert set(np.unique(y)) <= {-1.0, 1.0}
    # Train and test images do not overlap: 40 of the 40 images of digits 0 and 2 are used once each.
    signals = np.concatenate([X[:, 0], np.asarray(data["test"]["X"])[:, 0]])
    assert np.unique(np.round(signals, 12), axis=0).shape[0] == 40
    obs = jax.jit(p.observables)(model, data)
    assert 0 <= float(obs["test_accuracy"]) <= 1 and np.isfinite(float(obs["loss"]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(digits=(3, 3)), "`digits`"),
        (dict(downsample=3), "`downsample`"),
        (dict(n=30, n_test=20), "exceed"),
        (dict(s=1000), "`s`"),
        (dict(n_test=0), "`n_test`"),
        (dict(path="/nonexistent/mnist"), "no t10k-images"),
    ],
)
def test_noisy_mnist_bad_inputs(kwargs, match, tiny_mnist):
    kwargs.setdefault("path", str(tiny_mnist[0]))
    kwargs.setdefault("digits", (0, 1))
    with pytest.raises(ValueError, match=match):
        NoisyMNIST(**kwargs)


@pytest.mark.skipif(default_mnist() is None, reason="shared/data/mnist is not present on this machine")
def test_shared_mnist():
    images, labels = load_mnist(str(default_mnist()))
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert labels[0] == 7  # the first test digit of MNIST
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    p = NoisyMNIST()
    x, y = p.signals()
    assert x.shape == (1010 + 974, 196) and (y == 1).sum() == 1010
