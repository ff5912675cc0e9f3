"""The soft-committee teacher–student network of Saad & Solla (1995): gradient
flow on the generalisation error, written in the student–teacher overlaps."""

from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from .._problem import AbstractProblem
from .._typing import Array, Float, Scalar
from ._common import check_data_seed, check_float, check_int, data_key, orthonormal


class SoftCommittee(eqx.Module):
    """A soft committee machine: x ↦ Σ_i v_i g(w_i · x), g(u) = erf(u/√2).

    **Arguments:**

    - `w`: the first-layer weights, one row per hidden unit.
    - `v`: the second-layer weights (all 1 in Saad & Solla's setting, and not
      trained).
    """

    w: Float[Array, "hidden inputs"]
    v: Float[Array, " hidden"]

    def __call__(self, x: Float[Array, "... inputs"]) -> Float[Array, "..."]:
        return activation(x @ self.w.T) @ self.v


def activation(u):
    """g(u) = erf(u/√2), Saad & Solla's choice: E[g(u) g(u')] over Gaussian
    fields has a closed form (`pair_correlation`)."""
    return jsp.erf(u / jnp.sqrt(2.0))


def pair_correlation(c_ab, c_aa, c_bb):
    """E[g(a) g(b)] for zero-mean jointly Gaussian (a, b) with variances c_aa,
    c_bb and covariance c_ab, g(u) = erf(u/√2): (2/π) arcsin(c_ab / √((1 + c_aa)(1 + c_bb)))."""
    return (2.0 / jnp.pi) * jnp.arcsin(c_ab / jnp.sqrt((1.0 + c_aa) * (1.0 + c_bb)))


def population_error(Q, R, T, v=None) -> Scalar:
    """ε = ½ E_x[(φ(x) − ζ(x))²] over x ~ N(0, I) in closed form, for a student
    φ = Σ_i v_i g(h_i) and a teacher ζ = Σ_n g(y_n) (second-layer weights 1),
    from the overlaps of their local fields: Q_ik = E[h_i h_k], R_in = E[h_i y_n],
    T_nm = E[y_n y_m]. With v = 1 this is Saad & Solla's (1995) eq.:

        ε = (1/π) [Σ_ik arcsin(Q_ik/√((1+Q_ii)(1+Q_kk))) + Σ_nm arcsin(T_nm/√((1+T_nn)(1+T_mm)))
                   − 2 Σ_in arcsin(R_in/√((1+Q_ii)(1+T_nn)))].

    **Arguments:**

    - `Q`: (K, K) student–student overlaps.
    - `R`: (K, M) student–teacher overlaps.
    - `T`: (M, M) teacher–teacher overlaps.
    - `v`: (K,) the student's second-layer weights (default: all 1).

    **Returns:** the scalar ε.
    """
    q, t = jnp.diagonal(Q), jnp.diagonal(T)
    v = jnp.ones_like(q) if v is None else v
    student = v @ pair_correlation(Q, q[:, None], q[None, :]) @ v
    teacher = jnp.sum(pair_correlation(T, t[:, None], t[None, :]))
    cross = jnp.sum(v[:, None] * pair_correlation(R, q[:, None], t[None, :]))
    return 0.5 * (student + teacher - 2.0 * cross)


class TeacherStudent(AbstractProblem):
    """Soft committee machines (Saad & Solla 1995): a student with K hidden units learns a teacher with M.

    Both networks map an input x ∈ R^N to the sum of their hidden units,
    φ(x) = Σ_i g(w_i · x) and ζ(x) = Σ_n g(b_n · x), with g(u) = erf(u/√2)
    (the classic choice, which makes the expectations below closed forms) and
    second-layer weights fixed at 1 (the model's `v`, not trained). The
    teacher's rows b_n are orthonormal, so T = b bᵀ = I; the student starts
    from w_i ~ N(0, init_scale²/N · I), so Q_ii ≈ init_scale² and
    R_in = O(init_scale/√N).

    Loss ε = ½ E[(φ(x) − ζ(x))²]. With `n_samples=None` (default) the
    expectation is over x ~ N(0, I_N), in closed form in the overlaps
    Q = w wᵀ, R = w bᵀ, T = b bᵀ (`population_error`): the flow is then the
    small-learning-rate limit of Saad & Solla's on-line learning, with
    w = J/√N in their notation and flow time t = ηα (learning rate × examples
    per input dimension). With `n_samples=P` the loss is the mean over a
    fixed training set of P Gaussian inputs labelled by the teacher (drawn per
    seed, or once with `data_seed`), and `"eg"` is the population error.

    Observables: `"loss"`, `"eg"` (generalisation error), `"R"` (K × M
    student–teacher overlaps) and `"Q"` (K × K student–student overlaps).
    A realisable student (K = M) passes a symmetric plateau (all R_in alike)
    and then specialises: each student unit aligns with one teacher unit
    (|R_in| → 1 = T_nn) and the error goes to 0.

    **Arguments:**

    - `K`: student hidden units.
    - `M`: teacher hidden units.
    - `N`: input dimension (at least M, for orthonormal teacher rows).
    - `init_scale`: the student's initial weight norm per unit (√Q_ii at t = 0).
    - `n_samples`: None for the population loss (closed form); an integer P for
      a training set of P inputs.
    - `data_seed`: None to draw the teacher (and training set) per seed; an
      integer to share one across seeds.

    Saad, D. & Solla, S. A. (1995). On-line learning in soft committee machines.
    Phys. Rev. E 52, 4225; and Exact solution for on-line learning in multilayer
    neural networks. Phys. Rev. Lett. 74, 4337.
    """

    default_t1: ClassVar[float] = 500.0

    K: int = 4
    M: int = 4
    N: int = 100
    init_scale: float = 0.5
    n_samples: int | None = None
    data_seed: int | None = None

    def __check_init__(self):
        for name in ("K", "M", "N"):
            check_int(name, getattr(self, name))
        if self.N < self.M:
            raise ValueError(f"field `N` ({self.N}) must be >= `M` ({self.M}): the teacher's rows are orthonormal.")
        check_float("init_scale", self.init_scale)
        if self.n_samples is not None:
            check_int("n_samples", self.n_samples)
        check_data_seed(self.data_seed)

    def init(self, key):
        kd, kw = jax.random.split(key)
        kb, kx = jax.random.split(data_key(kd, self.data_seed))
        b = orthonormal(kb, self.N, self.M).T
        w = self.init_scale / jnp.sqrt(self.N) * jax.random.normal(kw, (self.K, self.N))
        model = SoftCommittee(w=w, v=jnp.ones(self.K))
        data = {"b": b}
        if self.n_samples is not None:
            X = jax.random.normal(kx, (self.n_samples, self.N))
            data = {"b": b, "X": X, "y": jnp.sum(activation(X @ b.T), axis=1)}
        return model, data

    def trainable(self, model):
        return SoftCommittee(w=True, v=False)

    def overlaps(self, model, data) -> dict[str, Array]:
        """Q = w wᵀ, R = w bᵀ, T = b bᵀ."""
        w, b = model.w, data["b"]
        return {"Q": w @ w.T, "R": w @ b.T, "T": b @ b.T}

    def generalisation_error(self, model, data) -> Scalar:
        """ε over x ~ N(0, I_N), in closed form (`population_error`)."""
        o = self.overlaps(model, data)
        return population_error(o["Q"], o["R"], o["T"], model.v)

    def loss(self, model, data):
        if self.n_samples is None:
            return self.generalisation_error(model, data)
        return 0.5 * jnp.mean((model(data["X"]) - data["y"]) ** 2)

    def observables(self, model, data):
        o = self.overlaps(model, data)
        eg = population_error(o["Q"], o["R"], o["T"], model.v)
        loss = eg if self.n_samples is None else self.loss(model, data)
        return {"loss": loss, "eg": eg, "R": o["R"], "Q": o["Q"]}

    def describe_observables(self):
        kind = "population" if self.n_samples is None else f"training set, P = {self.n_samples}"
        return {
            "loss": rf"loss $\varepsilon$ ({kind})",
            "eg": r"generalisation error $\varepsilon_g$",
            "R": r"student–teacher overlap $R_{in}$",
            "Q": r"student–student overlap $Q_{ik}$",
        }


# ---- report and figures (registered in gradflow.problems) ------------------------------
def specialisation(run, threshold: float = 0.9) -> dict:
    """Per seed, whether and when the student specialised: every student unit i has
    |R_in| > `threshold` (× √T_nn = 1) for a teacher unit n of its own.

    Needs K <= M (with K > M two units must share a teacher unit).

    **Arguments:**

    - `run`: a `Run` of `TeacherStudent` (with the observable "R").
    - `threshold`: the overlap a unit must pass (default 0.9).

    **Returns:**

    `{"specialised": bool (seeds,), "time": first such save time or NaN
    (seeds,)}`; "specialised" is read at the last save time.
    """
    R = np.abs(np.asarray(run.obs["R"]))  # (seeds, times, K, M)
    K, M = R.shape[2:]
    if K > M:
        raise ValueError(f"specialisation: the student has K = {K} > M = {M} units; it needs K <= M.")
    partners = R.argmax(axis=3)
    distinct = np.array([[len(set(p)) == K for p in seed] for seed in partners])
    ok = (R.max(axis=3) > threshold).all(axis=2) & distinct
    time = np.where(ok.any(axis=1), run.ts[np.argmax(ok, axis=1)], np.nan)
    return {"specialised": ok[:, -1], "time": time}


def report(run) -> str | None:
    """A line on specialisation (K <= M) and the final generalisation error."""
    lines = []
    eg = run.last("eg")
    lines.append(f"final generalisation error ε_g: median {np.median(eg):.3g} (min {eg.min():.3g}, max {eg.max():.3g})")
    K, M = run.obs["R"].shape[2:]
    if K <= M:
        s = specialisation(run)
        done = s["time"][np.isfinite(s["time"])]
        when = f"; first at t = {np.median(done):.3g} (median; min {done.min():.3g}, max {done.max():.3g})" if done.size else ""
        lines.append(f"specialised (each student unit |R_in| > 0.9 with its own teacher unit): "
                     f"{int(s['specialised'].sum())} of {run.n_seeds} seeds at the end{when}")
    return "\n".join(lines)


def draw_overlaps(run, *, seed: int = 0, axes=None):
    """The overlaps and the generalisation error of a `TeacherStudent` run.

    Left: the student–teacher overlaps R_in(t) of one seed (a median over seeds
    would mix the seeds' different pairings of units). Right: the generalisation
    error over seeds (median, 10–90%, each seed thin).

    **Arguments:**

    - `run`: a `Run` of `TeacherStudent`.
    - `seed`: the seed whose overlaps are drawn (default 0).
    - `axes`: two matplotlib axes to draw on (default: a new figure).

    **Returns:** the figure.
    """
    import matplotlib.pyplot as plt

    from .. import plot

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    else:
        fig = axes[0].figure
    K, M = run.obs["R"].shape[2:]
    plot.observable(run, "R", ax=axes[0], seeds=[seed], median=False, band=None)
    axes[0].axhline(1.0, color="gray", linewidth=0.8, linestyle=":")
    axes[0].set_title(f"seed {seed}, K = {K}, M = {M}: colour = student unit i, style = teacher unit n",
                      fontsize="medium")
    positive = bool(np.nanmin(run.obs["eg"]) > 0) if run.obs["eg"].size else False
    plot.observable(run, "eg", ax=axes[1], seeds=True, logy=positive)
    axes[1].set_title(f"{run.n_seeds} seeds: median, 10–90%, each seed", fontsize="medium")
    return fig


def save_figures(run, directory) -> list:
    """`overlaps.png`: `draw_overlaps` of seed 0."""
    import matplotlib.pyplot as plt

    fig = draw_overlaps(run)
    path = Path(directory) / "overlaps.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
