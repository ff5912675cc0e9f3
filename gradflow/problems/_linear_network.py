"""Two-layer linear network (Saxe, McClelland & Ganguli 2014): closed-form learning
of each input–output mode from a balanced, decoupled initialisation."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._problem import AbstractProblem
from .._typing import Array, Float
from ._common import check_choice, check_data_seed, check_float, check_int, data_key, orthonormal


class LinearNetwork(eqx.Module):
    """The two-layer linear network x ↦ W2 W1 x.

    **Arguments:**

    - `W1`: hidden × inputs.
    - `W2`: outputs × hidden.
    """

    W1: Float[Array, "hidden inputs"]
    W2: Float[Array, "outputs hidden"]

    def __call__(self, x):
        return self.W2 @ (self.W1 @ x)


class TwoLayerLinear(AbstractProblem):
    """Regression y = Σ x with a two-layer linear network W2 W1, on whitened inputs.

    Data: Σ = U diag(s) Vᵀ with s = `strengths` and random orthonormal U, V; n =
    2·d_in inputs X with X Xᵀ/n = I exactly, targets Y = Σ X. Then the loss
    L = ‖Y − W2 W1 X‖²_F / (2n) equals ½‖Σ − W2 W1‖²_F.

    Init `"balanced"` (the paper's decoupled initial conditions): W1 = R diag(√u0) Vᵀ,
    W2 = U diag(√u0) Rᵀ with a random R with orthonormal columns, u0 = `init_scale`.
    Every mode then follows u(t) = s e^{2st} / (e^{2st} − 1 + s/u0) exactly.
    Init `"random"`: Gaussian entries of standard deviation √(init_scale / hidden);
    no closed form. W1 W1ᵀ − W2ᵀ W2 is conserved by gradient flow from any init.

    **Arguments:**

    - `d_in`, `hidden`, `d_out`: the input, hidden and output widths.
    - `strengths`: the singular values s of Σ, a non-empty tuple of positive
      numbers, no more of them than min(d_in, hidden, d_out).
    - `init_scale`: u0 > 0.
    - `init_kind`: `"balanced"` or `"random"`, as above.
    - `data_seed`: None to draw the data per seed; an integer to share one
      draw across seeds.
    """

    default_t1: ClassVar[float] = 10.0

    d_in: int = 8
    hidden: int = 8
    d_out: int = 6
    strengths: tuple[float, ...] = (3.0, 2.0, 1.0, 0.5)
    init_scale: float = 1e-3
    init_kind: str = "balanced"
    data_seed: int | None = None

    def __check_init__(self):
        for name in ("d_in", "hidden", "d_out"):
            check_int(name, getattr(self, name))
        if not isinstance(self.strengths, tuple) or not self.strengths:
            raise ValueError(f"field `strengths` must be a non-empty tuple of positive numbers; got {self.strengths!r}.")
        for s in self.strengths:
            check_float("strengths", s)
        r = len(self.strengths)
        if r > min(self.d_in, self.hidden, self.d_out):
            raise ValueError(
                f"field `strengths` has {r} modes, more than min(d_in, hidden, d_out) = "
                f"{min(self.d_in, self.hidden, self.d_out)}; give fewer strengths or larger layers."
            )
        check_float("init_scale", self.init_scale)
        check_choice("init_kind", self.init_kind, ("balanced", "random"))
        check_data_seed(self.data_seed)

    @property
    def n(self) -> int:
        return 2 * self.d_in

    def init(self, key):
        kd, km = jax.random.split(key)
        ku, kv, kx = jax.random.split(data_key(kd, self.data_seed), 3)
        r = len(self.strengths)
        s = jnp.asarray(self.strengths, dtype=float)
        U = orthonormal(ku, self.d_out, r)
        V = orthonormal(kv, self.d_in, r)
        X = jnp.sqrt(self.n) * orthonormal(kx, self.n, self.d_in).T
        Y = (U * s) @ V.T @ X
        data = {"X": X, "Y": Y, "U": U, "V": V, "s": s}
        if self.init_kind == "balanced":
            R = orthonormal(km, self.hidden, r)
            a = jnp.full((r,), jnp.sqrt(self.init_scale))
            model = LinearNetwork(W1=(R * a) @ V.T, W2=(U * a) @ R.T)
        else:
            k1, k2 = jax.random.split(km)
            std = jnp.sqrt(self.init_scale / self.hidden)
            model = LinearNetwork(
                W1=std * jax.random.normal(k1, (self.hidden, self.d_in)),
                W2=std * jax.random.normal(k2, (self.d_out, self.hidden)),
            )
        return model, data

    def loss(self, model, data):
        r = data["Y"] - model.W2 @ (model.W1 @ data["X"])
        return 0.5 * jnp.sum(r * r) / self.n

    def observables(self, model, data):
        product = model.W2 @ model.W1
        modes = jnp.einsum("or,oi,ir->r", data["U"], product, data["V"])
        return {"loss": self.loss(model, data), "modes": modes}

    def describe_observables(self):
        return {"loss": "loss ½‖Σ − W₂W₁‖²_F", "modes": r"mode strengths $U_r^\top W_2 W_1 V_r$"}

    @staticmethod
    def mode_strength(s, u0, t):
        """u(t) = s e^{2st} / (e^{2st} − 1 + s/u0), written to avoid overflow."""
        decay = jnp.exp(-2.0 * s * t)
        return s / (1.0 - decay + decay * s / u0)

    def exact_solution(self, model0, data, t):
        if self.init_kind != "balanced":
            raise NotImplementedError("the closed form needs init_kind='balanced'.")
        V, U, s = data["V"], data["U"], data["s"]
        # Recover R and u0 from the balanced initial weights W1 = R diag(√u0) Vᵀ.
        RA = model0.W1 @ V
        a0 = jnp.linalg.norm(RA, axis=0)
        R = RA / a0
        a = jnp.sqrt(self.mode_strength(s, a0**2, t))
        return LinearNetwork(W1=(R * a) @ V.T, W2=(U * a) @ R.T)

    def conserved(self, model, data):
        return {"W1W1T-W2TW2": model.W1 @ model.W1.T - model.W2.T @ model.W2}
