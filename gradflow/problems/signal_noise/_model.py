"""Li, Huang, Han, Zhou, Suzuki, Zhu & Chen (2025), "On the optimization and
generalization of two-layer transformers with sign gradient descent", ICLR 2025,
arXiv:2410.04870: SignGD (and Adam) on a two-layer transformer with signal +
sparse-noise data. Model, data and the paper's tracked quantities; stages are
detected in `_stages.py`."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._problem import AbstractProblem
from ..._typing import Array, Float
from .._common import check_choice, check_data_seed, check_float, check_int, data_key


class SignalNoiseTransformer(eqx.Module):
    """f(X) = Σ_l vᵀ X softmax(Xᵀ W_Kᵀ W_Q x_l), v = mean_rows(W_{V,+1}) − mean_rows(W_{V,−1}).

    A sample is given as its two patches as rows, `X[..., p, :]` (p = 0: the
    patch in first position). Scores are `score_scale` · x_bᵀ W_Kᵀ W_Q x_a:
    `score_scale` = 1 (no 1/√m_k) as the model is stated in the paper's ICLR
    2025 reviews. With `single_value`, v = mean_rows(W_{V,+1}) and W_{V,−1} is
    unused (its gradient is zero).

    **Arguments:**

    - `WQ`, `WK`: the query and key matrices, m_k × d.
    - `WV_plus`, `WV_minus`: the value matrices W_{V,+1} and W_{V,−1}, m_v × d.
    - `score_scale`: the factor on the scores (static; default 1.0).
    - `single_value`: use W_{V,+1} alone (static; default False).
    """

    WQ: Float[Array, "m_k d"]
    WK: Float[Array, "m_k d"]
    WV_plus: Float[Array, "m_v d"]  # W_{V,+1}
    WV_minus: Float[Array, "m_v d"]  # W_{V,−1}
    score_scale: float = eqx.field(static=True, default=1.0)
    single_value: bool = eqx.field(static=True, default=False)

    @classmethod
    def random(cls, keys, *, d, m_k, m_v, scale, score_scale=1.0, single_value=False) -> "SignalNoiseTransformer":
        """Every weight N(0, scale²), from four keys (W_Q, W_K, W_{V,+1}, W_{V,−1})."""
        kq, kk, kp, km = keys
        return cls(
            WQ=scale * jax.random.normal(kq, (m_k, d)),
            WK=scale * jax.random.normal(kk, (m_k, d)),
            WV_plus=scale * jax.random.normal(kp, (m_v, d)),
            WV_minus=scale * jax.random.normal(km, (m_v, d)),
            score_scale=score_scale,
            single_value=single_value,
        )

    def v(self) -> Float[Array, " d"]:
        """The effective value vector mean_rows(W_{V,+1}) − mean_rows(W_{V,−1})
        (mean_rows(W_{V,+1}) with `single_value`)."""
        if self.single_value:
            return jnp.mean(self.WV_plus, axis=0)
        return jnp.mean(self.WV_plus, axis=0) - jnp.mean(self.WV_minus, axis=0)

    def attention(self, X: Float[Array, "*batch 2 d"]) -> Float[Array, "*batch 2 2"]:
        """[..., a, b]: softmax weight of key patch b for query patch a (rows sum to 1)."""
        q = X @ self.WQ.T
        k = X @ self.WK.T
        return jax.nn.softmax(self.score_scale * jnp.einsum("...am,...bm->...ab", q, k), axis=-1)

    def __call__(self, X: Float[Array, "*batch 2 d"]) -> Float[Array, "*batch"]:
        values = X @ self.v()  # vᵀ x_b for each patch b
        return jnp.sum(self.attention(X) * values[..., None, :], axis=(-2, -1))


DESCRIPTIONS = {
    "loss": "training logistic loss",
    "train_accuracy": "training accuracy",
    "test_loss": "test logistic loss",
    "test_accuracy": "test accuracy",
    "value_noise": r"value noise: mean of $\langle v, y_i \xi_i \rangle$",
    "value_signal": r"value signal $\langle v, \mu \rangle$",
    "query_noise": r"query noise $\langle w_{Q,s}, y_i \xi_i \rangle$ (mean over $i$)",
    "key_noise": r"key noise $\langle w_{K,s}, y_i \xi_i \rangle$ (mean over $i$)",
    "query_noise_abs": r"mean $|\langle w_{Q,s}, y_i \xi_i \rangle|$",
    "key_noise_abs": r"mean $|\langle w_{K,s}, y_i \xi_i \rangle|$",
    "noise_sign_agreement": "fraction of query and key noise of equal sign",
    "query_signal": r"query signal $\langle w_{Q,s}, \mu \rangle$",
    "key_signal": r"key signal $\langle w_{K,s}, \mu \rangle$",
    "signal_sign_agreement": "fraction of query and key signal of equal sign",
    "s11_mean": r"$s_{11}$: signal → signal attention (mean)",
    "s11_std": r"$s_{11}$ (std over samples)",
    "s21_mean": r"$s_{21}$: noise → signal attention (mean)",
    "s21_std": r"$s_{21}$ (std over samples)",
}
"""Axis labels of `SignalNoise`'s observables (`describe_observables`)."""


def _logistic(z):
    return jnp.logaddexp(0.0, -z)


def logistic_loss(model, part) -> Float[Array, ""]:
    """Mean logistic loss log(1 + e^{−y f(X)}) over a set of samples {"X", "y"}."""
    return jnp.mean(_logistic(part["y"] * model(part["X"])))


class SignalNoise(AbstractProblem):
    """Two-patch signal + sparse-noise classification (Li et al. 2025, arXiv:2410.04870).

    A sample is X = [y·µ, ξ] with y = ±1 uniform, µ a fixed signal vector of norm
    `mu_norm`, and ξ sparse Gaussian noise: `s` coordinates drawn uniformly
    without replacement, each N(0, `sigma_p`²), the rest 0. SNR = ‖µ‖/(σ_p √s)
    (`snr`). Model: `SignalNoiseTransformer` with trainable W_Q, W_K (m_k × d) and
    W_{V,+1}, W_{V,−1} (m_v × d), all initialised N(0, `init_scale`²); logistic
    loss, mean over the `n` training samples. A fresh test set of `n_test`
    samples is drawn from the same distribution (same µ).

    Choices of ours, where the paper's abstract, figure captions and reviews
    (our sources for its setup) are silent (each a field or stated here):

    - µ = ‖µ‖·e_0, and noise coordinates are drawn from 1 … d−1, so signal and
      noise are orthogonal (as in the sparse-noise data models this paper
      builds on); supports of different samples may overlap (rarely, d ≫ n·s).
    - `patch_order`: "signal_first" (X = [yµ, ξ], the paper's notation) or
      "random" (the order of the two patches is drawn per sample).
    - `score_scale`: "none" (scores x_bᵀ W_Kᵀ W_Q x_a, no 1/√m_k factor) or
      "inv_sqrt_mk" (scores divided by √m_k). The readout is fixed (the means
      over value rows), and the output sums over both query patches.
    - `value_weights`: "split" (v = mean_rows(W_{V,+1}) − mean_rows(W_{V,−1}), two
      trainable value matrices) or "single" (v = mean_rows(W_{V,+1}) only; under
      SignGD each coordinate of v then moves at η instead of 2η).
    - The observables index patches by role, not position: s_11 is the weight
      the signal patch (as query) puts on the signal patch (as key), s_21 the
      weight the noise patch (as query) puts on the signal patch.
    - "query noise" of neuron s is ⟨w_{Q,s}, y_i ξ_i⟩ averaged over training
      samples i (per neuron), "query signal" is ⟨w_{Q,s}, µ⟩; likewise for keys.
    - `data_seed`: None draws data per seed; an int fixes µ, the training and
      the test set for every seed (seeds then differ in initialisation only).

    **Arguments:**

    - `n`: the training samples.
    - `d`: the dimension of each patch.
    - `s`: the noise coordinates per sample.
    - `sigma_p`: the std of each noise coordinate.
    - `mu_norm`: ‖µ‖.
    - `patch_order`, `score_scale`, `value_weights`, `data_seed`: the choices
      above.
    - `m_k`, `m_v`: the rows of W_Q, W_K and of each value matrix.
    - `init_scale`: every weight is initialised N(0, `init_scale`²).
    - `n_test`: the test samples.
    """

    default_t1: ClassVar[float] = 0.3

    n: int = 20
    d: int = 2000
    s: int = 40
    sigma_p: float = 1.0
    mu_norm: float = 6.0
    patch_order: str = "signal_first"
    m_k: int = 10
    m_v: int = 10
    init_scale: float = 0.01
    score_scale: str = "none"
    value_weights: str = "split"
    n_test: int = 1000
    data_seed: int | None = None

    def __check_init__(self):
        check_int("n", self.n, minimum=2)
        for name in ("d", "s", "m_k", "m_v", "n_test"):
            check_int(name, getattr(self, name))
        if self.d < 2:
            raise ValueError(f"field `d` must be >= 2 (one signal coordinate and at least one noise coordinate); got {self.d}.")
        if self.s > self.d - 1:
            raise ValueError(
                f"field `s` ({self.s}) must be <= d − 1 = {self.d - 1}: the noise has s nonzero coordinates "
                "outside the signal's; lower s or raise d."
            )
        check_float("sigma_p", self.sigma_p, allow_zero=True)
        check_float("mu_norm", self.mu_norm, allow_zero=True)
        check_float("init_scale", self.init_scale)
        check_choice("patch_order", self.patch_order, ("signal_first", "random"))
        check_choice("score_scale", self.score_scale, ("none", "inv_sqrt_mk"))
        check_choice("value_weights", self.value_weights, ("split", "single"))
        check_data_seed(self.data_seed)

    @property
    def snr(self) -> float:
        """‖µ‖ / (σ_p √s); infinite when σ_p = 0."""
        noise = self.sigma_p * math.sqrt(self.s)
        return math.inf if noise == 0 else self.mu_norm / noise

    def model_options(self) -> dict:
        """`SignalNoiseTransformer.random`'s keyword arguments for `score_scale` and `value_weights`."""
        return {"score_scale": 1.0 / math.sqrt(self.m_k) if self.score_scale == "inv_sqrt_mk" else 1.0,
                "single_value": self.value_weights == "single"}

    # ---- data and model -----------------------------------------------------
    def sample(self, key, count: int) -> dict:
        """`count` samples: labels y, noise ξ (count × d), patches X (count × 2 × d)
        and `signal_pos` (0 or 1, the position of the signal patch)."""
        ky, ks, kv, ko = jax.random.split(key, 4)
        y = jnp.where(jax.random.bernoulli(ky, 0.5, (count,)), 1.0, -1.0)
        # s distinct noise coordinates among 1 … d−1 per sample: the s smallest of
        # d−1 uniform keys.
        ranks = jnp.argsort(jax.random.uniform(ks, (count, self.d - 1)), axis=-1)[:, : self.s] + 1
        values = self.sigma_p * jax.random.normal(kv, (count, self.s))
        xi = jnp.zeros((count, self.d)).at[jnp.arange(count)[:, None], ranks].set(values)
        mu = jnp.zeros(self.d).at[0].set(self.mu_norm)
        signal = y[:, None] * mu
        if self.patch_order == "random":
            pos = jax.random.bernoulli(ko, 0.5, (count,)).astype(jnp.int32)
        else:
            pos = jnp.zeros((count,), dtype=jnp.int32)
        first = jnp.where(pos[:, None] == 0, signal, xi)
        second = jnp.where(pos[:, None] == 0, xi, signal)
        return {"X": jnp.stack([first, second], axis=1), "y": y, "xi": xi, "signal_pos": pos}

    def init(self, key):
        kd, kq, kk, kp, km = jax.random.split(key, 5)
        ktrain, ktest = jax.random.split(data_key(kd, self.data_seed))
        data = {"train": self.sample(ktrain, self.n), "test": self.sample(ktest, self.n_test),
                "mu": jnp.zeros(self.d).at[0].set(self.mu_norm)}
        model = SignalNoiseTransformer.random((kq, kk, kp, km), d=self.d, m_k=self.m_k, m_v=self.m_v,
                                              scale=self.init_scale, **self.model_options())
        return model, data

    def loss(self, model, data):
        return logistic_loss(model, data["train"])

    # ---- observables ----------------------------------------------------------
    @staticmethod
    def _by_role(att, pos):
        """Attention re-indexed by patch role (0 = signal, 1 = noise)."""
        flip = pos[:, None, None] == 1
        return jnp.where(flip, att[:, ::-1, ::-1], att)

    def observables(self, model, data):
        train, test = data["train"], data["test"]
        margin = train["y"] * model(train["X"])
        test_margin = test["y"] * model(test["X"])
        yxi = train["y"][:, None] * train["xi"]  # (n, d)
        v = model.v()
        q_noise = model.WQ @ yxi.T  # (m_k, n): ⟨w_{Q,s}, y_i ξ_i⟩
        k_noise = model.WK @ yxi.T
        q_signal = model.WQ @ data["mu"]
        k_signal = model.WK @ data["mu"]
        att = self._by_role(model.attention(train["X"]), train["signal_pos"])
        s11, s21 = att[:, 0, 0], att[:, 1, 0]
        return {
            "loss": jnp.mean(_logistic(margin)),
            "train_accuracy": jnp.mean(margin > 0),
            "test_loss": jnp.mean(_logistic(test_margin)),
            "test_accuracy": jnp.mean(test_margin > 0),
            "value_noise": jnp.mean(yxi @ v),
            "value_signal": v @ data["mu"],
            "query_noise": jnp.mean(q_noise, axis=1),
            "key_noise": jnp.mean(k_noise, axis=1),
            "query_noise_abs": jnp.mean(jnp.abs(q_noise)),
            "key_noise_abs": jnp.mean(jnp.abs(k_noise)),
            "noise_sign_agreement": jnp.mean(jnp.sign(q_noise) == jnp.sign(k_noise)),
            "query_signal": q_signal,
            "key_signal": k_signal,
            "signal_sign_agreement": jnp.mean(jnp.sign(q_signal) == jnp.sign(k_signal)),
            "s11_mean": jnp.mean(s11),
            "s11_std": jnp.std(s11),
            "s21_mean": jnp.mean(s21),
            "s21_std": jnp.std(s21),
        }

    def describe_observables(self):
        return DESCRIPTIONS
