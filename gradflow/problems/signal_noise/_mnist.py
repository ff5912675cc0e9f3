"""Noisy MNIST in the two-patch form of Li et al. (2025, arXiv:2410.04870), the
paper's real-data experiment: an IDX reader and a
binary digit task whose signal patch is the image and whose noise patch is
sparse Gaussian noise."""

import gzip
import math
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..._problem import AbstractProblem
from .._common import check_data_seed, check_float, check_int, data_key, find_shared_data
from ._model import DESCRIPTIONS, SignalNoiseTransformer, _logistic, logistic_loss

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX file (MNIST's format; gzip-compressed or plain) as a numpy array.

    Raises ValueError naming the file for a missing, truncated or malformed file.

    **Arguments:**

    - `path`: the file.

    **Returns:**

    Its contents as a numpy array.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except OSError as e:
        raise ValueError(f"IDX file {str(path)!r}: cannot read it ({e.strerror or e}).") from None
    except (EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"IDX file {str(path)!r}: corrupt gzip stream ({e}); the file is truncated or damaged.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(
            f"IDX file {str(path)!r}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}; "
            "expected 00 00 <type> <ndim>)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {str(path)!r}: truncated header ({len(raw)} bytes, need {header}).")
    shape = tuple(int(x) for x in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = header + math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        kind = "truncated" if len(raw) < need else "longer than its header says"
        raise ValueError(
            f"IDX file {str(path)!r}: {kind} ({len(raw)} bytes; the header {shape} of {dtype} needs {need})."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def default_mnist() -> Path | None:
    """The folder `shared/data/mnist` (or `$GRADFLOW_DATA/mnist`); None if absent."""
    return find_shared_data("mnist")


def mnist_folder(path: str | None) -> str:
    """A problem's `path` field, or the shared MNIST folder when it is None (one
    clear error naming the field when neither exists)."""
    if path is not None:
        return path
    found = default_mnist()
    if found is None:
        raise ValueError(
            "field `path`: no folder given and MNIST was not found (looked for shared/data/mnist and "
            "$GRADFLOW_DATA/mnist); pass --set path=FOLDER."
        )
    return str(found)


def load_mnist(folder: str, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """MNIST's images and labels from a folder of IDX files, read on every call
    (nothing is memoised on the folder's name).

    **Arguments:**

    - `folder`: the folder holding `{split}-images-idx3-ubyte[.gz]` and
      `{split}-labels-idx1-ubyte[.gz]`.
    - `split`: the files' prefix (default "t10k").

    **Returns:**

    `(images, labels)`: images uint8 (N, 28, 28), labels uint8 (N,).
    """

    def find(stem):
        for name in (f"{split}-{stem}.gz", f"{split}-{stem}"):
            if (Path(folder) / name).is_file():
                return Path(folder) / name
        raise ValueError(f"field `path`: no {split}-{stem}[.gz] in {folder!r}; give the folder holding MNIST's IDX files.")

    images, labels = read_idx(find("images-idx3-ubyte")), read_idx(find("labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST in {folder!r}: images {images.shape} and labels {labels.shape} do not match "
            "(expected (N, rows, cols) and (N,))."
        )
    return images, labels


class NoisyMNIST(AbstractProblem):
    """Two MNIST digit classes in the two-patch form X = [x, ξ] of `SignalNoise`.

    The signal patch x is the image, average-pooled by `downsample` (28/downsample
    squared pixels = d), centred by the mean image of the two classes and scaled
    to norm `signal_norm`; the noise patch ξ has `s` random coordinates drawn
    N(0, `sigma_p`²) (s = None: all d). Label y = +1 for `digits[0]`, −1 for
    `digits[1]`. Each seed draws `n` training and `n_test` test images without
    overlap from the chosen split (the shared data hold MNIST's 10,000-image
    test set, so both come from it), fresh noise, and its own initialisation
    (`data_seed` fixes the data instead). Model and loss: `SignalNoise`'s.

    **Arguments:**

    - `path`: the MNIST folder (None: `shared/data/mnist` or
      `$GRADFLOW_DATA/mnist`).
    - `digits`: the two digit classes, two different digits 0–9 (default (3, 8)).
    - `n`, `n_test`: training and test images per seed (n at least 2; together
      at most the images of the two digits in the split).
    - `downsample`: the average-pooling factor, a divisor of 28.
    - `signal_norm`: the norm of the signal patch.
    - `sigma_p`: the noise std (0 allowed).
    - `s`: the noise coordinates per sample, at most d (None: all d).
    - `m_k`, `m_v`, `init_scale`: as for `SignalNoise`.
    - `split`: MNIST's IDX file to draw from, "train" or "t10k".
    - `data_seed`: None draws data per seed; an int fixes the data for every
      seed.
    """

    default_t1: ClassVar[float] = 0.3

    path: str | None = None
    digits: tuple[int, int] = (3, 8)
    n: int = 200
    n_test: int = 1000
    downsample: int = 2
    signal_norm: float = 1.0
    sigma_p: float = 0.5
    s: int | None = 20
    m_k: int = 10
    m_v: int = 10
    init_scale: float = 0.01
    split: str = "t10k"
    data_seed: int | None = None

    def __check_init__(self):
        check_int("n", self.n, minimum=2)
        for name in ("n_test", "downsample", "m_k", "m_v"):
            check_int(name, getattr(self, name))
        if 28 % self.downsample:
            raise ValueError(f"field `downsample` must divide 28 (1, 2, 4, 7, 14, 28); got {self.downsample}.")
        digits = tuple(self.digits) if isinstance(self.digits, (tuple, list)) else None
        if digits is None or len(digits) != 2 or any(not isinstance(c, int) or not 0 <= c <= 9 for c in digits) or digits[0] == digits[1]:
            raise ValueError(f"field `digits` must be two different digits 0–9, e.g. (3, 8); got {self.digits!r}.")
        if self.s is not None:
            check_int("s", self.s)
            if self.s > self.d:
                raise ValueError(f"field `s` ({self.s}) must be <= d = {self.d} (pixels after downsampling) or None.")
        check_float("signal_norm", self.signal_norm)
        check_float("sigma_p", self.sigma_p, allow_zero=True)
        check_float("init_scale", self.init_scale)
        check_data_seed(self.data_seed)
        if self.split not in ("train", "t10k"):
            raise ValueError(f"field `split` must be 'train' or 't10k' (MNIST's two IDX files); got {self.split!r}.")
        available = int(np.isin(self.labels_all(), digits).sum())
        if self.n + self.n_test > available:
            raise ValueError(
                f"fields `n` + `n_test` = {self.n + self.n_test} exceed the {available} images of digits {digits} "
                "in the data; lower them."
            )

    @property
    def d(self) -> int:
        return (28 // self.downsample) ** 2

    def folder(self) -> str:
        return mnist_folder(self.path)

    def labels_all(self) -> np.ndarray:
        return load_mnist(self.folder(), self.split)[1]

    def signals(self) -> tuple[np.ndarray, np.ndarray]:
        """(signal patches (N, d) of the two digits, labels ±1)."""
        images, labels = load_mnist(self.folder(), self.split)
        keep = np.isin(labels, self.digits)
        k = self.downsample
        x = images[keep].astype(np.float64) / 255.0
        x = x.reshape(-1, 28 // k, k, 28 // k, k).mean(axis=(2, 4)).reshape(-1, self.d)
        x = x - x.mean(axis=0)
        x = self.signal_norm * x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        y = np.where(labels[keep] == self.digits[0], 1.0, -1.0)
        return x, y

    def init(self, key):
        x_all, y_all = self.signals()
        kd, kq, kk, kp, km = jax.random.split(key, 5)
        kperm, kn1, kn2 = jax.random.split(data_key(kd, self.data_seed), 3)
        order = jax.random.permutation(kperm, x_all.shape[0])
        x_all, y_all = jnp.asarray(x_all), jnp.asarray(y_all)
        s = self.d if self.s is None else self.s

        def part(idx, knoise):
            count = idx.shape[0]
            ks, kv = jax.random.split(knoise)
            cols = jnp.argsort(jax.random.uniform(ks, (count, self.d)), axis=-1)[:, :s]
            xi = jnp.zeros((count, self.d)).at[jnp.arange(count)[:, None], cols].set(
                self.sigma_p * jax.random.normal(kv, (count, s)))
            x = x_all[idx]
            return {"X": jnp.stack([x, xi], axis=1), "y": y_all[idx], "xi": xi, "signal": x}

        data = {"train": part(order[: self.n], kn1), "test": part(order[self.n: self.n + self.n_test], kn2)}
        model = SignalNoiseTransformer.random((kq, kk, kp, km), d=self.d, m_k=self.m_k, m_v=self.m_v,
                                              scale=self.init_scale)
        return model, data

    def loss(self, model, data):
        return logistic_loss(model, data["train"])

    def observables(self, model, data):
        train, test = data["train"], data["test"]
        margin = train["y"] * model(train["X"])
        test_margin = test["y"] * model(test["X"])
        v = model.v()
        att = model.attention(train["X"])
        return {
            "loss": jnp.mean(_logistic(margin)),
            "train_accuracy": jnp.mean(margin > 0),
            "test_loss": jnp.mean(_logistic(test_margin)),
            "test_accuracy": jnp.mean(test_margin > 0),
            "value_noise": jnp.mean((train["y"][:, None] * train["xi"]) @ v),
            "value_signal": jnp.mean((train["y"][:, None] * train["signal"]) @ v),
            "s11_mean": jnp.mean(att[:, 0, 0]),
            "s21_mean": jnp.mean(att[:, 1, 0]),
        }

    def describe_observables(self):
        keys = ("loss", "train_accuracy", "test_loss", "test_accuracy", "value_noise", "s11_mean", "s21_mean")
        return {**{k: DESCRIPTIONS[k] for k in keys},
                "value_signal": r"value signal: mean of $\langle v, y_i x_i \rangle$ (image patch)"}
