"""Yang, Kailkhura, Wang & Liang (2024), "Training dynamics of transformers to
recognize word co-occurrence via gradient flow analysis", NeurIPS 2024,
arXiv:2410.09605: the one-layer transformer and its data. Model, data,
observables; the paper's claims are measured in `_claims.py`."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._problem import AbstractProblem
from ..._typing import Array, Float, Int
from .._common import check_choice, check_data_seed, check_float, check_int, data_key

MU1, MU2, MU3 = 0, 1, 2  # token indices of the two target words and the common token
GROUPS = ("I1", "I2", "I3", "I4")


class CooccurrenceTransformer(eqx.Module):
    """F(X) = Σ_l Σ_j a_j w_jᵀ W_V X softmax(Xᵀ W_Kᵀ W_Q x_l / √m).

    Embeddings are one-hot, so a sample X = [µ_{t_1} … µ_{t_L}] is its token
    indices t, W_V X = `WV[:, t]` and Xᵀ W_Kᵀ W_Q X = `(W_Kᵀ W_Q)[t][:, t]`: the
    same function as the paper's matrix products, computed from the d×d score
    matrix and the d-vector G by indexing (3× faster than gathering columns).

    **Arguments:**

    - `WQ`, `WK`, `WV`: the query, key and value matrices, m × d.
    - `W`: the MLP's first layer, m1 × m.
    - `a`: the fixed ±1 readout, shape (m1,), not trained.
    """

    WQ: Float[Array, "m d"]
    WK: Float[Array, "m d"]
    WV: Float[Array, "m d"]
    W: Float[Array, "m1 m"]
    a: Float[Array, " m1"]  # fixed ±1 readout, not trained

    def G(self) -> Float[Array, " d"]:
        """G(µ) = Σ_j a_j w_jᵀ W_V µ for every token µ (the linear MLP's output)."""
        return (self.a @ self.W) @ self.WV

    def score_matrix(self) -> Float[Array, "d d"]:
        """[i, j] = µ_iᵀ W_Kᵀ W_Q µ_j (no 1/√m): key token i, query token j."""
        return self.WK.T @ self.WQ

    def attention(self, tokens: Int[Array, "*batch L"]) -> Float[Array, "*batch L L"]:
        """[..., k, l]: softmax weight of key position k for query position l."""
        scores = self.score_matrix() / math.sqrt(self.WQ.shape[0])
        return jax.nn.softmax(scores[tokens[..., :, None], tokens[..., None, :]], axis=-2)

    def __call__(self, tokens: Int[Array, "*batch L"]) -> Float[Array, "*batch"]:
        # Σ over query positions of the attended value, read out by aᵀW.
        return jnp.sum(self.G()[tokens] * jnp.sum(self.attention(tokens), axis=-1), axis=-1)


class Cooccurrence(AbstractProblem):
    """Word co-occurrence (Yang, Kailkhura, Wang & Liang 2024, arXiv:2410.09605).

    Tokens µ1, µ2 are the targets, µ3 a common token present in every sample,
    µ_i (i ≥ 4) random words. Groups: I1 (y = +1, µ1 and µ2 present, prob. 1/2),
    I2 (y = −1, µ1 only), I3 (y = −1, µ2 only), I4 (y = −1, neither), 1/6 each.
    Loss: logistic, mean over the n samples. W_Q, W_K, W_V, W trained; a fixed.

    Choices where the paper is silent: µ3 is placed at a uniformly random
    position, µ1/µ2 at distinct other uniformly random positions; the score
    correlation "with random words" is the mean over µ4..µd.

    **Arguments:**

    - `n`, `L`, `d`, `m`, `m1`: samples, sequence length (at least 3),
      vocabulary (= embedding) size (at least 4), attention width, MLP width.
    - `init_kind`: "theory" (σ0 = 1/√(Lm) for W_Q, W_K, W_V; σ1 = 1/√m1 for W)
      or "kaiming" (the experiment's wording, read as std 1/√fan_in: 1/√d for
      W_Q, W_K, W_V and 1/√m for W).
    - `sigma0`, `sigma1`: explicit initialisation scales; when set they
      override the scale `init_kind` gives.
    - `exact_fractions`: groups of exactly n/2, n/6, n/6, n/6 samples (needs
      n divisible by 6), or drawn i.i.d. with those probabilities.
    - `distinct_words`: every random word used at most once in the training
      set, as the theory assumes (needs n·L ≤ d − 3); the paper's own
      experiment (n = 60, L = 5, d = 64) violates it, so the default is False
      and random words are drawn uniformly from µ4..µd.
    - `data_seed`: None draws data per seed; an int fixes one data set for
      every seed (seeds then differ only in their initialisation).
    """

    default_t1: ClassVar[float] = 300.0

    n: int = 60
    L: int = 5
    d: int = 64
    m: int = 128
    m1: int = 256
    init_kind: str = "theory"
    sigma0: float | None = None
    sigma1: float | None = None
    exact_fractions: bool = True
    distinct_words: bool = False
    data_seed: int | None = None

    def __check_init__(self):
        for name in ("n", "d", "m", "m1"):
            check_int(name, getattr(self, name))
        check_int("L", self.L, minimum=3)
        if self.d < 4:
            raise ValueError(f"field `d` must be >= 4 (µ1, µ2, µ3 and at least one random word); got {self.d}.")
        check_choice("init_kind", self.init_kind, ("theory", "kaiming"))
        for name in ("sigma0", "sigma1"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name))
        for name in ("exact_fractions", "distinct_words"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"field `{name}` must be True or False; got {getattr(self, name)!r}.")
        if self.exact_fractions and self.n % 6:
            raise ValueError(
                f"field `n` ({self.n}) must be divisible by 6 for exact group fractions n/2, n/6, n/6, n/6; "
                "choose such an n or set exact_fractions=False."
            )
        if self.distinct_words and self.n * self.L > self.d - 3:
            raise ValueError(
                f"distinct_words=True needs n·L <= d − 3 random words (n·L = {self.n * self.L}, d = {self.d}); "
                "raise d, lower n or L, or set distinct_words=False."
            )
        check_data_seed(self.data_seed)

    # ---- data and model -----------------------------------------------------
    def sample(self, key) -> dict:
        """Tokens (n, L), labels y (n,), group index 0..3 (n,)."""
        kg, kp, kw = jax.random.split(key, 3)
        if self.exact_fractions:
            counts = (self.n // 2, self.n // 6, self.n // 6, self.n // 6)
            group = jnp.concatenate([jnp.full((c,), g) for g, c in enumerate(counts)])
        else:
            probs = jnp.array([1 / 2, 1 / 6, 1 / 6, 1 / 6])
            group = jax.random.choice(kg, 4, (self.n,), p=probs)
        if self.distinct_words:
            words = 3 + jax.random.permutation(kw, self.d - 3)[: self.n * self.L].reshape(self.n, self.L)
        else:
            words = jax.random.randint(kw, (self.n, self.L), 3, self.d)

        def place(row, g, k):
            perm = jax.random.permutation(k, self.L)
            row = row.at[perm[0]].set(MU3)
            first = jnp.where(g == 2, MU2, MU1)  # I1, I2: µ1 first; I3: µ2
            row = jnp.where(g <= 2, row.at[perm[1]].set(first), row)
            return jnp.where(g == 0, row.at[perm[2]].set(MU2), row)

        tokens = jax.vmap(place)(words, group, jax.random.split(kp, self.n))
        y = jnp.where(group == 0, 1.0, -1.0)
        return {"tokens": tokens, "y": y, "group": group}

    @property
    def scales(self) -> tuple[float, float]:
        """(σ0, σ1): std of W_Q, W_K, W_V and of W at initialisation."""
        if self.init_kind == "theory":
            s0, s1 = 1 / math.sqrt(self.L * self.m), 1 / math.sqrt(self.m1)
        else:
            s0, s1 = 1 / math.sqrt(self.d), 1 / math.sqrt(self.m)
        return (s0 if self.sigma0 is None else self.sigma0), (s1 if self.sigma1 is None else self.sigma1)

    def init(self, key):
        kd, ka, kw, kq, kk, kv = jax.random.split(key, 6)
        data = self.sample(data_key(kd, self.data_seed))
        s0, s1 = self.scales
        model = CooccurrenceTransformer(
            WQ=s0 * jax.random.normal(kq, (self.m, self.d)),
            WK=s0 * jax.random.normal(kk, (self.m, self.d)),
            WV=s0 * jax.random.normal(kv, (self.m, self.d)),
            W=s1 * jax.random.normal(kw, (self.m1, self.m)),
            a=jnp.where(jax.random.bernoulli(ka, 0.5, (self.m1,)), 1.0, -1.0),
        )
        # The initial conserved quantities ride along, to report their drift.
        data.update({f"{k}_0": v for k, v in self.conserved(model, data).items()})
        return model, data

    def trainable(self, model):
        mask = jax.tree_util.tree_map(lambda _: True, model)
        return eqx.tree_at(lambda mdl: mdl.a, mask, False)

    # ---- loss and observables ----------------------------------------------------
    def outputs(self, model, data) -> Float[Array, " n"]:
        return model(data["tokens"])

    def loss(self, model, data):
        return jnp.mean(jax.nn.softplus(-data["y"] * self.outputs(model, data)))

    def observables(self, model, data):
        margins = data["y"] * self.outputs(model, data)
        losses = jax.nn.softplus(-margins)
        g = jax.nn.sigmoid(-margins)  # g_i = 1 / (1 + e^{y_i F_i})
        onehot = jax.nn.one_hot(data["group"], 4)
        count = jnp.maximum(onehot.sum(0), 1.0)
        g_sum = g @ onehot
        targets = jnp.array([MU1, MU2, MU3])
        kq = model.score_matrix()
        vv = model.WV[:, targets].T @ model.WV[:, targets]
        drift = {
            k: jnp.linalg.norm(v - data[f"{k}_0"]) / jnp.linalg.norm(data[f"{k}_0"])
            for k, v in self.conserved(model, data).items()
        }
        return {
            "loss": jnp.mean(losses),
            "group_loss": (losses @ onehot) / count,
            "G": model.G()[targets],
            "scores": kq[targets][:, targets],
            "score_random": jnp.stack(
                [jnp.mean(kq[3:][:, targets], axis=0), jnp.mean(kq[targets][:, 3:], axis=1)]
            ),
            "value_gram": vv,
            "min_margin": jnp.min(margins),
            "g_sum": g_sum,
            "balance_23": jnp.abs(g_sum[1] - g_sum[2]) / jnp.minimum(g_sum[1], g_sum[2]),
            "ratio_R": (g_sum[1] + g_sum[2] + g_sum[3] - g_sum[0]) / (g_sum[0] - g_sum[1]),
            "drift_QK": drift["QQT-KKT"],
            "drift_WV": drift["WTW-VVT"],
        }

    def describe_observables(self):
        return {
            "loss": "logistic loss (mean over samples)",
            "group_loss": "logistic loss per sample group I₁ … I₄",
            "G": r"MLP output $G(\mu)$ on $\mu_1, \mu_2, \mu_3$",
            "scores": r"$\mu_i^\top W_K^\top W_Q \mu_j$",
            "score_random": r"mean $\nu^\top W_K^\top W_Q \mu$ over random tokens $\nu$",
            "value_gram": r"$\mu_i^\top W_V^\top W_V \mu_j$",
            "min_margin": r"smallest margin $\min_i\, y_i F_i$",
            "g_sum": r"$S_k$: sum of $g_i = 1/(1 + e^{y_i F_i})$ over $I_k$",
            "balance_23": r"$|S_2 - S_3| / \min(S_2, S_3)$",
            "ratio_R": r"$(S_2 + S_3 + S_4 - S_1) / (S_1 - S_2)$",
            "drift_QK": r"relative drift of $W_Q W_Q^\top - W_K W_K^\top$",
            "drift_WV": r"relative drift of $W^\top W - W_V W_V^\top$",
        }

    def conserved(self, model, data):
        return {
            "QQT-KKT": model.WQ @ model.WQ.T - model.WK @ model.WK.T,
            "WTW-VVT": model.W.T @ model.W - model.WV @ model.WV.T,
        }
