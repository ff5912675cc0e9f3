"""Two reductions of the co-occurrence flow that the claims rest on, derived from
the model's own dynamics (Yang et al. 2024, arXiv:2410.09605, §3–4) and kept
here so the claims, the tests, the notebook and the benchmarks share one copy.

**Phase-1 reduction.** While attention is still at initialisation, the scores
µᵢᵀW_KᵀW_Qµⱼ/√m are ~1/(L√m) ≪ 1, so softmax is uniform: every key position
receives total weight Σ_l 1/L = 1 and F(X) = Σ_k G(x_k). The MLP output moves by
dG/dt = −(‖Wᵀa‖² I + m1·W_VᵀW_V)·∂L/∂G ≈ c·(1/n) Σ_i g_i y_i 1[µ ∈ X_i], with
c ≈ m + m1/L the same for every token (W_V's columns are nearly orthogonal
at init, off-diagonal ~1/√m). So G(µ1), G(µ2), G(µ3) move at rates
proportional to the group sums S_k = Σ_{i∈I_k} g_i:

    dG(µ1) ∝ S1 − S2,   dG(µ2) ∝ S1 − S3,   dG(µ3) ∝ S1 − S2 − S3 − S4.

**Max-margin reduction.** With attention uniform, F is linear in G over the
token-count features, and G = aᵀW W_V is a two-factor product: gradient flow on
the logistic loss then tends in direction to the minimum-‖G‖₂ classifier with
margin 1 on every sample (the hard-margin SVM on token counts).
"""

import math

import numpy as np

#: Group fractions of the data model: I1, I2, I3, I4.
FRACTIONS = (1 / 2, 1 / 6, 1 / 6, 1 / 6)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def phase1_rate(G1, G2, G3, group: int):
    """Sign-carrying initial rate of the mean loss of group I2 (`group=2`) or I3
    (`group=3`) in the phase-1 reduction, per unit c·n, with F_i(0) taken as the
    sum of the named tokens' G(0) (random words' G(0) left out, the theory's
    "noise"): an I2 sample has F = G(µ1) + G(µ3), so its loss moves with
    d(G1 + G3)/dt ∝ 2S1 − 2S2 − S3 − S4 (I3: swap S2 and S3); g_i = σ(−y_i F_i)."""
    S1 = FRACTIONS[0] * _sigmoid(-(G1 + G2 + G3))
    S2 = FRACTIONS[1] * _sigmoid(G1 + G3)
    S3 = FRACTIONS[2] * _sigmoid(G2 + G3)
    S4 = FRACTIONS[3] * _sigmoid(G3)
    if group == 2:
        return 2 * S1 - 2 * S2 - S3 - S4
    if group == 3:
        return 2 * S1 - 2 * S3 - S2 - S4
    raise ValueError(f"`group` must be 2 or 3 (I2 or I3); got {group!r}.")


def rise_threshold(G1_0, G2_0, group: int):
    """γ*: the value of G(µ3)(0) below which the loss of I2 (`group=2`) or I3
    (`group=3`) rises at t = 0 in the phase-1 reduction, given G(µ1)(0), G(µ2)(0).

    `phase1_rate` is strictly decreasing in G(µ3) (S1 falls, S2, S3, S4 grow), from
    +1 at −∞ to −2/3 at +∞, so the root is unique; found by bisection (elementwise).
    With G(µ1)(0) = G(µ2)(0) = 0 it is ln(3/2) ≈ 0.405 for both groups: the rate
    is then σ(−γ) − (2/3)σ(γ), zero at e^{−γ} = 2/3."""
    G1_0, G2_0 = np.broadcast_arrays(np.asarray(G1_0, dtype=float), np.asarray(G2_0, dtype=float))
    lo, hi = np.full(G1_0.shape, -60.0), np.full(G1_0.shape, 60.0)
    for _ in range(200):  # 120 / 2^200: far below float64 resolution
        mid = 0.5 * (lo + hi)
        up = phase1_rate(G1_0, G2_0, mid, group) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return 0.5 * (lo + hi)


def memorisation_threshold(L: int) -> int:
    """n* = 3(L + 1): with every random word in one sample only (`distinct_words`),
    the max-margin classifier of the phase-1 reduction has G(µ1) + G(µ3) > 0
    (and G(µ2) + G(µ3) > 0) for n < n*, = 0 at n*, < 0 for n > n*.

    Derivation. By symmetry G(µ1) = G(µ2) = a, G(µ3) = −b. A sample's p private
    random words add r to its F at cost r²/p (equal split), so the problem is
    min a² + b²/2 + c1(1 − 2a + b)² + c2(1 + a − b)² + c4(1 − b)² with
    c1 = (n/2)/(2(L−3)), c2 = (n/3)/(2(L−2)), c4 = (n/6)/(2(L−1)) (the margins
    I1 needs from its L−3 random words, I2/I3 from L−2, I4 from L−1). Setting
    a = b = x in the two stationarity equations gives x = (c2 + 2c4)/(2 + 2c4)
    and x + c2 = 2c1(1 − x); both hold exactly when n = 3(L + 1)
    (then 1 − x = 3(L−1)(L−3)/((L−2)(5L−3)) and both sides equal
    9(L+1)(L−1)/(2(L−2)(5L−3))). Below n*, the random words (whose total cost
    grows like n) are the cheaper way to classify I2/I3: the network memorises
    them and G(µ1) + G(µ3) stays positive. Needs L ≥ 4 (at L = 3 an I1 sample has
    no random word). With distinct words n·L ≤ d − 3, so both hold only when
    d ≥ 3L(L+1) + 3 (93 at L = 5): the paper's d = 64 allows n ≤ 12 < 18."""
    if L < 4:
        raise ValueError(f"memorisation_threshold needs L >= 4 (an I1 sample has L − 3 random words); got L = {L}.")
    return 3 * (L + 1)


def distinct_word_tokens(n: int, L: int):
    """Exact-fraction data with every random word used once, in a fixed order (the
    max-margin problem does not depend on positions or on which words): tokens
    (n, L), labels (n,), and d = the number of tokens used. n must be divisible by 6."""
    if n % 6:
        raise ValueError(f"`n` must be divisible by 6 for exact group fractions; got {n}.")
    groups = np.repeat([0, 1, 2, 3], [n // 2, n // 6, n // 6, n // 6])
    named = {0: [0, 1, 2], 1: [0, 2], 2: [1, 2], 3: [2]}
    rows, word = [], 3
    for g in groups:
        rows.append(named[g] + list(range(word, word + L - len(named[g]))))
        word += L - len(named[g])
    return np.array(rows), np.where(groups == 0, 1.0, -1.0), word


def count_features(tokens, d: int) -> np.ndarray:
    """(n, d) token counts of each sample (the phase-1 features: F = counts · G)."""
    tokens = np.asarray(tokens)
    counts = np.zeros((tokens.shape[0], d))
    np.add.at(counts, (np.repeat(np.arange(tokens.shape[0]), tokens.shape[1]), tokens.ravel()), 1.0)
    return counts


def max_margin_G(tokens, y, d: int, *, tol: float = 1e-10, max_iter: int = 200_000) -> np.ndarray:
    """The minimum-‖G‖₂ G with y_i Σ_k G(x_{ik}) ≥ 1 for every sample (the direction
    the phase-1 reduction's gradient flow tends to), shape (d,).

    Solved in the dual, min ½αᵀQα − Σα over α ≥ 0 with Q = (yC)(yC)ᵀ, by
    accelerated projected gradient until the KKT residual is below `tol`; then
    G = (yC)ᵀα. Raises if not converged (the data are always separable: every
    sample holds µ3 and I1 alone holds both µ1 and µ2)."""
    A = np.asarray(y, dtype=float)[:, None] * count_features(tokens, d)
    Q = A @ A.T
    step = 1.0 / np.linalg.eigvalsh(Q)[-1]
    alpha = z = np.zeros(len(Q))
    t = 1.0
    for _ in range(max_iter):
        grad = Q @ z - 1.0
        new = np.maximum(z - step * grad, 0.0)
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        z = new + (t - 1) / t_new * (new - alpha)
        alpha, t = new, t_new
        g = Q @ alpha - 1.0
        if np.max(np.abs(np.where(alpha > 0, g, np.minimum(g, 0.0)))) < tol:
            return A.T @ alpha
    raise RuntimeError(f"max_margin_G: no convergence in {max_iter} iterations (KKT residual above {tol}).")


def max_margin_sums(problem, seeds) -> dict[str, np.ndarray]:
    """Per seed (keys jax.random.PRNGKey(seed), as `simulate` uses for an int or a
    list of seeds): G(µ1)+G(µ3), G(µ2)+G(µ3) and G(µ1)+G(µ2)+G(µ3) of the max-margin
    G on that seed's data, each divided by ‖G‖₂ (the direction, as the flow sees it)."""
    import jax
    import jax.numpy as jnp

    ids = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    _, data = jax.jit(jax.vmap(problem.init))(jnp.stack([jax.random.PRNGKey(s) for s in ids]))
    tokens, y = np.asarray(data["tokens"]), np.asarray(data["y"])
    out = {"G1+G3": [], "G2+G3": [], "G1+G2+G3": []}
    for k in range(len(ids)):
        G = max_margin_G(tokens[k], y[k], problem.d)
        G = G / np.linalg.norm(G)
        out["G1+G3"].append(G[0] + G[2])
        out["G2+G3"].append(G[1] + G[2])
        out["G1+G2+G3"].append(G[:3].sum())
    return {k: np.array(v) for k, v in out.items()}
