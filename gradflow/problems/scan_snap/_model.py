"""Tian, Wang, Chen & Du (2023), "Scan and Snap: understanding training dynamics
and token composition in 1-layer transformer", NeurIPS 2023, arXiv:2305.16380:
the reparameterised 1-layer transformer (Y, Z) on sequence-class data, at finite sequence length
(Lemma 1) and in the long-sequence limit (Lemma 2), with the theory's
predictions next to the model."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..._problem import AbstractProblem
from ..._typing import Array, Float
from .._common import check_data_seed, check_float, check_int


# ---- sequence-class data ----------------------------------------------------------
class SequenceClasses(eqx.Module):
    """K classes over a vocabulary of M tokens.

    Class n has query token `query[n]` (ψ(n)), next token `next_token[n]`, and
    contextual tokens drawn i.i.d. from `P[n]` (a probability vector over the
    M tokens). With Ω(l) = {n : P(l|n) > 0}, the classes in which token l can
    occur, token l is *distinct* if |Ω(l)| = 1 (it occurs in one class only)
    and *common* if |Ω(l)| > 1.

    **Arguments:**

    - `M`: the vocabulary size.
    - `K`: the number of classes.
    - `query`: ψ(n) for each class, a tuple of K tokens.
    - `next_token`: the next token of each class, a tuple of K tokens.
    - `P`: K probability vectors over the M tokens.
    - `name`: a name for records (default "custom").
    """

    M: int
    K: int
    query: tuple[int, ...]
    next_token: tuple[int, ...]
    P: tuple[tuple[float, ...], ...]
    name: str = "custom"

    def __check_init__(self):
        check_int("M", self.M, minimum=2)
        check_int("K", self.K)
        for field in ("query", "next_token"):
            values = getattr(self, field)
            if len(values) != self.K:
                raise ValueError(f"`{field}` must have K = {self.K} entries (one per class); got {len(values)}.")
            bad = [v for v in values if not isinstance(v, (int, np.integer)) or not 0 <= v < self.M]
            if bad:
                label = "ψ (query)" if field == "query" else field
                raise ValueError(f"`{field}` entries must be token indices in [0, M = {self.M}); {label} has {bad}.")
        P = np.asarray(self.P, dtype=float)
        if P.shape != (self.K, self.M):
            raise ValueError(f"`P` must be K × M = {self.K} × {self.M} (P(l|n) per class n); got shape {P.shape}.")
        if not np.isfinite(P).all() or (P < 0).any():
            raise ValueError("`P` must hold non-negative finite probabilities; it has negative or non-finite entries.")
        sums = P.sum(axis=1)
        if not np.allclose(sums, 1.0, rtol=0, atol=1e-9):
            raise ValueError(f"every row of `P` (P(·|n)) must sum to 1; row sums are {np.round(sums, 6).tolist()}.")

    @classmethod
    def from_weights(cls, weights, *, query, next_token, name="custom"):
        """Build from unnormalised non-negative weights (rows are normalised)."""
        W = np.asarray(weights, dtype=float)
        if (W < 0).any():
            raise ValueError("`weights` must be non-negative.")
        if (W.sum(axis=1) <= 0).any():
            raise ValueError("every class needs at least one token with positive weight.")
        P = W / W.sum(axis=1, keepdims=True)
        return cls(M=W.shape[1], K=W.shape[0], query=tuple(int(q) for q in query),
                   next_token=tuple(int(t) for t in next_token), P=tuple(map(tuple, P.tolist())), name=name)

    @property
    def probs(self) -> np.ndarray:
        return np.asarray(self.P, dtype=float)

    @property
    def omega(self) -> np.ndarray:
        """|Ω(l)| = #{n : P(l|n) > 0} for each token l, counted over all K classes
        (the presets give classes of different queries disjoint tokens, so this
        equals the count among the classes that share a query)."""
        return (self.probs > 0).sum(axis=0)

    @property
    def distinct(self) -> np.ndarray:
        """(K, M) mask: token l is distinct and belongs to class n."""
        return (self.probs > 0) & (self.omega == 1)[None, :]

    @property
    def common(self) -> np.ndarray:
        """(K, M) mask: token l is common and appears in class n."""
        return (self.probs > 0) & (self.omega > 1)[None, :]


def syn_small() -> SequenceClasses:
    """Syn-Small (K = 2, M = 30), as in the paper's public code: tokens 0–9
    common (weight 1), 10–19 distinct for class 0 and 20–29 for class 1 with
    weights linspace(0.1, 1, 10) (P increasing within each block). Our choices:
    both classes share query token 0 (so common tokens compete for one row of Z)
    and their next tokens are 0 and 1.

    **Returns:**

    A `SequenceClasses`.
    """
    W = np.zeros((2, 30))
    W[:, :10] = 1.0
    W[0, 10:20] = np.linspace(0.1, 1.0, 10)
    W[1, 20:30] = np.linspace(0.1, 1.0, 10)
    return SequenceClasses.from_weights(W, query=(0, 0), next_token=(0, 1), name="syn-small")


def syn_medium(queries: int = 5) -> SequenceClasses:
    """Syn-Medium with `queries` ∈ {1, 3, 5, 10} query tokens and 2 classes
    (next tokens) per query (the paper's 1/2, 3/6, 5/10, 10/20). Our P(l|n),
    which the paper does not give: each query q owns 10 common tokens (weight
    1) shared by its two classes, and each class 10 distinct tokens with
    weights linspace(0.1, 1, 10); M = 30 · queries. Query q is token 30q, next
    tokens are 30q + 1 and 30q + 2 (both inside q's common block).

    **Arguments:**

    - `queries`: the number of query tokens (the paper's 1, 3, 5, 10; default 5).

    **Returns:**

    A `SequenceClasses`.
    """
    check_int("queries", queries)
    M = 30 * queries
    W = np.zeros((2 * queries, M))
    for q in range(queries):
        base = 30 * q
        for j in range(2):
            n = 2 * q + j
            W[n, base:base + 10] = 1.0
            W[n, base + 10 + 10 * j: base + 20 + 10 * j] = np.linspace(0.1, 1.0, 10)
    query = [30 * (n // 2) for n in range(2 * queries)]
    nxt = [30 * (n // 2) + 1 + n % 2 for n in range(2 * queries)]
    return SequenceClasses.from_weights(W, query=query, next_token=nxt, name=f"syn-medium-{queries}")


def fig3_classes(K: int = 10, M: int = 1000, common_weight: float = 1.0) -> SequenceClasses:
    """The Fig. 3 setting: K classes sharing one query (token 0) and one common
    token (token 1, weight `common_weight`); the other M − 2 tokens split into
    K distinct blocks with weights linspace(0.1, 1) inside each block (our
    choice of P(l|n)). Next token of class n is token 2 + n.

    **Arguments:**

    - `K`: the number of classes (default 10).
    - `M`: the vocabulary size (default 1000).
    - `common_weight`: the weight of the common token (default 1.0).

    **Returns:**

    A `SequenceClasses`.
    """
    W = np.zeros((K, M))
    W[:, 1] = common_weight
    for n, block in enumerate(np.array_split(np.arange(2, M), K)):
        W[n, block] = np.linspace(0.1, 1.0, block.size)
    return SequenceClasses.from_weights(W, query=[0] * K, next_token=[2 + n for n in range(K)], name=f"fig3-K{K}-M{M}")


# ---- model --------------------------------------------------------------------------
class YZ(eqx.Module):
    """The paper's reparameterisation, Y and Z trained independently.

    **Arguments:**

    - `Y`: U W_Vᵀ Uᵀ, the decoder, M × M.
    - `Z`: U W_Q W_Kᵀ Uᵀ / √d, the attention logits, M × M.
    """

    Y: Float[Array, "M M"]
    Z: Float[Array, "M M"]

    def features(self, weights, query):
        """ℓ2-normalised attended vector for contextual-token weights `weights`
        (probabilities P(·|n), or token counts of a sequence) and a query token:
        c_l ∝ weights_l e^{z_{query,l}}, f = c / ‖c‖ (Lemma 1 and 2)."""
        logits = jnp.where(weights > 0, jnp.log(jnp.where(weights > 0, weights, 1.0)) + self.Z[query], -jnp.inf)
        c = jax.nn.softmax(logits, axis=-1)
        return c / jnp.linalg.norm(c, axis=-1, keepdims=True), c

    def cross_entropy(self, f, target):
        logits = f @ self.Y  # Yᵀ f
        return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, target[..., None], axis=-1)[..., 0]


def _entropy(p, mask):
    q = jnp.where(mask, p, 0.0)
    q = q / jnp.maximum(q.sum(-1, keepdims=True), 1e-300)
    return -jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.where(q > 0, q, 1.0)), 0.0), axis=-1)


class _ScanSnapBase(AbstractProblem):
    """Shared fields, init and observables of the two scan-and-snap problems."""

    classes: SequenceClasses = eqx.field(default_factory=syn_small)
    init_scale: float = 0.0
    frozen: tuple[str, ...] = ()

    def _check(self):
        if not isinstance(self.classes, SequenceClasses):
            raise ValueError("field `classes` must be a SequenceClasses (e.g. syn_small()).")
        check_float("init_scale", self.init_scale, allow_zero=True)
        if isinstance(self.frozen, str) or not all(name in ("Y", "Z") for name in self.frozen):
            raise ValueError(f"field `frozen` must be a tuple of names among ('Y', 'Z') (the matrices held fixed, "
                             f"e.g. ('Z',) for Theorem 1's setting); got {self.frozen!r}.")

    def trainable(self, model):
        """Y and Z move unless named in `frozen` (Theorem 1 studies Y with Z fixed)."""
        return YZ(Y="Y" not in self.frozen, Z="Z" not in self.frozen)

    def _init_model(self, key):
        M = self.classes.M
        if self.init_scale == 0:
            return YZ(Y=jnp.zeros((M, M)), Z=jnp.zeros((M, M)))
        ky, kz = jax.random.split(key)
        return YZ(Y=self.init_scale * jax.random.normal(ky, (M, M)), Z=self.init_scale * jax.random.normal(kz, (M, M)))

    def population_loss(self, model):
        """Lemma 2: E_n CE(Yᵀ f_n, next token of n), classes equally likely."""
        f, _ = model.features(jnp.asarray(self.classes.probs), jnp.asarray(self.classes.query))
        return jnp.mean(model.cross_entropy(f, jnp.asarray(self.classes.next_token)))

    def structure(self, model):
        """Observables defined through the population attention c_n(Z)."""
        cls = self.classes
        f, c = model.features(jnp.asarray(cls.probs), jnp.asarray(cls.query))
        distinct = jnp.asarray(cls.distinct)
        z_rows = model.Z[jnp.asarray(cls.query)]  # (K, M): z_{ψ(n), l}
        # Reference token l* of class n: its most probable distinct token.
        ref = jnp.asarray(np.argmax(np.where(cls.distinct, cls.probs, -1.0), axis=1))
        f_ref = jnp.take_along_axis(f, ref[:, None], axis=1)
        n_distinct = jnp.maximum(distinct.sum(1), 1)
        logits = jnp.einsum("km,ml->kl", f, model.Y)  # Yᵀ f_n
        nxt = jnp.asarray(cls.next_token)
        target = jax.nn.one_hot(nxt, cls.M, dtype=logits.dtype)
        own = jnp.take_along_axis(logits, nxt[:, None], axis=1)[:, 0]
        # ξ_n: the population gradient flow's ż_{ψ(n) l*} / f_{n l*}² at rate η_Z = 1 (Theorem 4's B_n = η_Z ∫ ξ_n).
        grad_z = jax.grad(lambda Z: self.population_loss(eqx.tree_at(lambda m: m.Z, model, Z)))(model.Z)
        z_speed = -jnp.take_along_axis(grad_z[jnp.asarray(cls.query)], ref[:, None], axis=1)[:, 0]
        return {
            "xi": jnp.where(jnp.asarray(cls.distinct.any(axis=1)), z_speed / f_ref[:, 0] ** 2, jnp.nan),
            "gamma": jnp.sum(logits * (target - jax.nn.softmax(logits, axis=-1)), axis=-1),
            "h": (own - (logits.sum(-1) - own) / (cls.M - 1)) / cls.M,
            "attention": c,
            "entropy_distinct": _entropy(c, distinct),
            "z_rows": z_rows,
            "B": jnp.sum(jnp.where(distinct, z_rows, 0.0), axis=1) / n_distinct,
            "r": jnp.where(distinct, (f / f_ref) ** 2 - 1.0, 0.0),
        }

    def describe_observables(self):
        return {
            "loss": "cross-entropy loss",
            "population_loss": "population loss (T → ∞)",
            "attention": r"attention $c_{l|n}$",
            "entropy_distinct": r"entropy of $c_n$ on class $n$'s distinct tokens",
            "z_rows": r"$z_{\psi(n) l}$",
            "B": r"$B_n$: mean of $z_{\psi(n) l}$ over distinct $l$",
            "r": r"$r_{l/l^*|n} = f_{nl}^2 / f_{nl^*}^2 - 1$",
            "xi": r"$\xi_n = \dot z_{\psi(n) l^*} / (\eta_Z f_{n l^*}^2)$",
            "gamma": r"$f_n^\top Y (e_n - \alpha_n)$: back-propagated gradient along $f_n$",
            "h": r"$h_n$: (own logit − mean other logit) / M",
        }


class ScanSnapPopulation(_ScanSnapBase):
    """The T → ∞ limit (Lemma 2): attention c_{l|n} ∝ P(l|n) e^{z_{ψ(n) l}},
    f_n = c_n / ‖c_n‖, loss E_n CE(Yᵀ f_n, n). Deterministic; with the default
    zero initialisation every seed is the same flow. Time-scale separation is
    a flow rate: `GradientFlow(rates={"Y": η_Y, "Z": η_Z})`.

    Observables: loss; per class the attention c_n over tokens (`attention`,
    K × M); the entropy of c_n restricted to its distinct tokens
    (`entropy_distinct`); the rows z_{ψ(n)} (`z_rows`); `B` — our proxy for
    the paper's B_n(t): the mean over class n's distinct tokens of z_{ψ(n) l}
    (its change from t = 0 under the default zero init); and `r` — r_{l/l*|n}
    = f_{nl}²/f_{nl*}² − 1 against the most probable distinct token l* of class
    n (0 for tokens that are not distinct in class n); for Theorem 1, per class,
    `gamma` = f_nᵀ Y (e_n − α_n) with α_n = softmax(Yᵀ f_n), the back-propagated
    gradient's component along f_n, and `h` = (own logit − mean other logit)/M
    of Yᵀ f_n (the theorem's h(t/K) when the f_n are orthonormal); for Theorem
    4, `xi` = ξ_n = ż_{ψ(n) l*} / (η_Z f_{nl*}²) at the reference token (the
    theorem's ż_{ml} = η_Z ξ_n f_{nl}² for every distinct l of class n, so
    B_n(t) = η_Z ∫_0^t ξ_n; `theorem4` integrates it).

    `frozen=("Z",)` holds Z fixed (Theorem 1's setting), `frozen=("Y",)` holds Y.

    **Arguments:**

    - `classes`: a `SequenceClasses` (default `syn_small()`).
    - `init_scale`: the standard deviation of Y's and Z's Gaussian entries at
      t = 0 (default 0: zero initialisation).
    - `frozen`: names among ("Y", "Z") of the matrices held fixed (default ()).
    """

    default_t1: ClassVar[float] = 1e4

    def __check_init__(self):
        self._check()

    def init(self, key):
        return self._init_model(key), None

    def loss(self, model, data):
        return self.population_loss(model)

    def observables(self, model, data):
        return {"loss": self.loss(model, data), **self.structure(model)}


class ScanSnap(_ScanSnapBase):
    """Finite sequences (Lemma 1): each seed draws N sequences, N/K per class,
    of T − 1 contextual tokens i.i.d. from P(·|n) plus the query x_T = ψ(n); the
    query does not attend to itself. Attention b_t = softmax_t(z_{x_T, x_t}),
    attended vector LN(Xᵀb) with LN(x) = x/‖x‖₂, logits Yᵀ LN(Xᵀb), cross-entropy
    on the next token, averaged over the N sequences.

    Because the score depends only on the token at position t, Xᵀb is
    Σ_l count_l e^{z_{x_T l}} e_l / Σ_l count_l e^{z_{x_T l}}: each sequence is
    stored as its token counts (N × M), exactly the same function.

    Observables: as `ScanSnapPopulation` (through the population attention
    c_n(Z)), plus `population_loss`.

    **Arguments:**

    - `classes`: a `SequenceClasses` (default `syn_small()`).
    - `init_scale`: the standard deviation of Y's and Z's Gaussian entries at
      t = 0 (default 0: zero initialisation).
    - `frozen`: names among ("Y", "Z") of the matrices held fixed (default ()).
    - `T`: the sequence length (T − 1 contextual tokens plus the query), at
      least 2.
    - `N`: the number of sequences per seed, a multiple of K (N/K per class).
    - `data_seed`: None to draw the sequences per seed; an integer to share one
      draw across seeds.
    """

    default_t1: ClassVar[float] = 1e3

    T: int = 128
    N: int = 128
    data_seed: int | None = None

    def __check_init__(self):
        self._check()
        check_int("T", self.T, minimum=2)
        check_int("N", self.N)
        if self.N % self.classes.K:
            raise ValueError(f"field `N` ({self.N}) must be a multiple of K = {self.classes.K} (N/K sequences per class).")
        check_data_seed(self.data_seed)

    def sample(self, key):
        """Token counts (N, M) of N sequences and their classes (N,)."""
        K = self.classes.K
        label = jnp.repeat(jnp.arange(K), self.N // K)
        logp = jnp.log(jnp.asarray(self.classes.probs))
        tokens = jax.random.categorical(key, logp[label][:, None, :], shape=(self.N, self.T - 1))
        counts = jax.vmap(lambda t: jnp.bincount(t, length=self.classes.M))(tokens)
        return {"counts": counts.astype(float), "label": label}

    def init(self, key):
        kd, km = jax.random.split(key)
        data = self.sample(kd if self.data_seed is None else jax.random.PRNGKey(self.data_seed))
        return self._init_model(km), data

    def loss(self, model, data):
        cls = self.classes
        label = data["label"]
        f, _ = model.features(data["counts"], jnp.asarray(cls.query)[label])
        return jnp.mean(model.cross_entropy(f, jnp.asarray(cls.next_token)[label]))

    def observables(self, model, data):
        return {"loss": self.loss(model, data), "population_loss": self.population_loss(model), **self.structure(model)}


# ---- theory --------------------------------------------------------------------------
def solve_h(t, *, M: int, eta_Y: float):
    """h(t) solving e^{Mh} + (M−1) M h = M η_Y t + 1 (Theorem 1), by bisection
    (the left side is increasing in h, h(0) = 0).

    **Arguments:**

    - `t`: the time(s), a number or an array.
    - `M`: the vocabulary size.
    - `eta_Y`: Y's rate η_Y.

    **Returns:**

    h(t), an array of `t`'s shape.
    """
    t = np.asarray(t, dtype=float)
    rhs = M * eta_Y * t + 1.0
    lo = np.zeros_like(t)
    hi = np.maximum(np.log(rhs) / M, rhs / ((M - 1) * M)) + 1e-12
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        with np.errstate(over="ignore"):  # e^{Mh} = inf is simply "too big"
            too_big = np.exp(M * mid) + (M - 1) * M * mid > rhs
        hi = np.where(too_big, mid, hi)
        lo = np.where(too_big, lo, mid)
    return 0.5 * (lo + hi)


def gamma(t, *, M: int, K: int, eta_Y: float):
    """Back-propagated gradient scale γ(t) = (M−1)² h(t/K) / (M − 1 + e^{M h(t/K)}).

    **Arguments:**

    - `t`: the time(s).
    - `M`, `K`: the vocabulary size and the number of classes.
    - `eta_Y`: Y's rate η_Y (h as in `solve_h`).

    **Returns:**

    γ(t), of `t`'s shape.
    """
    h = solve_h(np.asarray(t, dtype=float) / K, M=M, eta_Y=eta_Y)
    decay = np.exp(-M * h)  # divide through by e^{Mh}: no overflow at large t
    return (M - 1) ** 2 * h * decay / ((M - 1) * decay + 1)


def transition_time(*, M: int, K: int, eta_Y: float) -> float:
    """The predicted scan → snap transition t0 = 2K ln M / η_Y.

    **Arguments:**

    - `M`, `K`: the vocabulary size and the number of classes.
    - `eta_Y`: Y's rate η_Y.

    **Returns:**

    t0, a float.
    """
    return 2.0 * K * math.log(M) / eta_Y


def snap_prediction(t, *, M: int, K: int, eta_Y: float, eta_Z: float, C0: float = 1.0):
    """Theorem 4's B_n(t) with one common token: ¼ ln(C0 + 2(M−1)² η_Y η_Z t² / (K M²))
    before t0 ("scan", O(ln t)) and ¼ ln(C0 + 2K(M−1)² (η_Z/η_Y) ln²(M η_Y t / K) / M²)
    after ("snap", O(ln ln t)). C0 = 1 makes B(0) = 0.

    **Arguments:**

    - `t`: the time(s).
    - `M`, `K`: the vocabulary size and the number of classes.
    - `eta_Y`, `eta_Z`: the rates of Y and Z.
    - `C0`: the constant inside the logarithm (default 1.0).

    **Returns:**

    B_n(t), of `t`'s shape.
    """
    t = np.asarray(t, dtype=float)
    t0 = transition_time(M=M, K=K, eta_Y=eta_Y)
    scan = 0.25 * np.log(C0 + 2 * (M - 1) ** 2 * eta_Y * eta_Z * t**2 / (K * M**2))
    with np.errstate(divide="ignore", invalid="ignore"):
        snap = 0.25 * np.log(C0 + 2 * K * (M - 1) ** 2 * (eta_Z / eta_Y) * np.log(M * eta_Y * np.maximum(t, 1e-300) / K) ** 2 / M**2)
    return np.where(t < t0, scan, snap)
