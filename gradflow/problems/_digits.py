"""A small tanh network on MNIST digits, trained with the squared loss: the setting
in which Cohen et al. (2021, arXiv:2103.00065) observed progressive sharpening and
the edge of stability (they used a CIFAR-10 subset; the phenomena are the same)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._problem import AbstractProblem
from .._typing import Array, Float
from ._common import check_float, check_int
from .signal_noise._mnist import load_mnist, mnist_folder


class MLP(eqx.Module):
    """A one-hidden-layer tanh network, `W2 tanh(W1 x + b1) + b2`.

    **Arguments:**

    - `W1`, `b1`: the hidden layer, shapes (width, inputs) and (width,).
    - `W2`, `b2`: the output layer, shapes (classes, width) and (classes,).
    """

    W1: Float[Array, "width inputs"]
    b1: Float[Array, " width"]
    W2: Float[Array, "classes width"]
    b2: Float[Array, " classes"]

    def __call__(self, x):
        return jnp.tanh(x @ self.W1.T + self.b1) @ self.W2.T + self.b2


class DigitsMLP(AbstractProblem):
    """The first `n` MNIST test digits, average-pooled `pool` × `pool`, centred and
    scaled to unit variance, fitted by a tanh network with the squared loss against
    one-hot labels: L = (1/2n) Σ_i ‖f(x_i) − e_{y_i}‖². The data are the same for
    every seed; the weights are drawn per seed (LeCun normal: variance 1/fan-in, times
    `init_scale`²).
    Its per-sample losses make it usable with `gradflow.SDEFlow`.

    **Arguments:**

    - `path`: the folder of MNIST's IDX files (None: `shared/data/mnist` or
      `$GRADFLOW_DATA/mnist`).
    - `n`: how many digits (the first `n` of the t10k split).
    - `pool`: the pooling window (28 must be a multiple of it): 4 gives 7 × 7 = 49 inputs.
    - `width`: the hidden width.
    - `init_scale`: a factor on the initial weights. The default 0.3 starts the
      sharpness low enough to watch it rise: along the gradient flow (n = 1000,
      seed 0) it goes 6.9 → 21.2 by t = 300, where at `init_scale=1` it starts at
      31.6 and barely moves (22–26 over t ∈ [50, 1000]).
    """

    default_t1: ClassVar[float] = 300.0

    path: str | None = None
    n: int = 1000
    pool: int = 4
    width: int = 32
    init_scale: float = 0.3

    def __check_init__(self):
        check_int("n", self.n)
        check_int("pool", self.pool)
        check_int("width", self.width)
        check_float("init_scale", self.init_scale)
        if 28 % self.pool:
            raise ValueError(f"field `pool` must divide 28 (1, 2, 4, 7, 14 or 28); got {self.pool}.")

    def data(self):
        """(inputs (n, (28/pool)²), one-hot targets (n, 10)) as NumPy arrays."""
        images, labels = load_mnist(mnist_folder(self.path))
        if self.n > images.shape[0]:
            raise ValueError(f"field `n` ({self.n}) exceeds the {images.shape[0]} digits in the MNIST files.")
        side = 28 // self.pool
        x = images[: self.n].astype(np.float64).reshape(self.n, side, self.pool, side, self.pool).mean((2, 4))
        x = x.reshape(self.n, side * side)
        x = (x - x.mean()) / x.std()
        return x, np.eye(10)[labels[: self.n]]

    def init(self, key):
        x, y = self.data()
        inputs = x.shape[1]
        k1, k2 = jax.random.split(key)
        model = MLP(W1=self.init_scale * jax.random.normal(k1, (self.width, inputs)) / np.sqrt(inputs),
                    b1=jnp.zeros(self.width),
                    W2=self.init_scale * jax.random.normal(k2, (10, self.width)) / np.sqrt(self.width),
                    b2=jnp.zeros(10))
        return model, {"x": jnp.asarray(x), "y": jnp.asarray(y)}

    def per_sample_loss(self, model, data):
        return 0.5 * jnp.sum((model(data["x"]) - data["y"]) ** 2, axis=1)

    def loss(self, model, data):
        return jnp.mean(self.per_sample_loss(model, data))

    def observables(self, model, data):
        out = model(data["x"])
        return {"loss": self.loss(model, data),
                "accuracy": jnp.mean(jnp.argmax(out, axis=1) == jnp.argmax(data["y"], axis=1))}

    def describe_observables(self):
        return {"loss": "squared loss", "accuracy": "training accuracy"}
