"""The claims of Yang, Kailkhura, Wang & Liang (2024, arXiv:2410.09605),
measured on a simulated `Run` of `Cooccurrence`.

Every claim is checked per seed with a numeric criterion written next to it;
the thresholds are ours (the paper states orders of magnitude), so the
measured numbers are always reported beside pass/fail.
"""

import numpy as np

from .._claims import Claim, claims_table

# Index pairs in the 3×3 `scores` observable ([key, query]) and `value_gram`.
_SCORE_UP = {"µ2ᵀKᵀQµ1": (1, 0), "µ1ᵀKᵀQµ2": (0, 1)}
_SCORE_DOWN = {"µ3ᵀKᵀQµ1": (2, 0), "µ3ᵀKᵀQµ2": (2, 1)}
_GRAM_UP = {"µ1ᵀVᵀVµ2": (0, 1)}
_GRAM_DOWN = {"µ1ᵀVᵀVµ3": (0, 2), "µ2ᵀVᵀVµ3": (1, 2)}


def phase1_end(run) -> np.ndarray:
    """Per seed, the first save time at which every sample is correctly
    classified (min_i y_i F_i > 0) and G(µ1), G(µ2) > 0 > G(µ3); NaN if never."""
    G, margin = run.obs["G"], run.obs["min_margin"]
    ok = (margin > 0) & (G[..., 0] > 0) & (G[..., 1] > 0) & (G[..., 2] < 0)
    return np.where(ok.any(axis=1), run.ts[np.argmax(ok, axis=1)], np.nan)


def _index(run, times):
    """Save index of each seed's time (last index for NaN)."""
    idx = np.searchsorted(run.ts, np.nan_to_num(times, nan=run.ts[-1]))
    return np.minimum(idx, run.ts.size - 1)


def _end_index(run):
    """Each seed's last finite save (seeds that stopped early end sooner)."""
    finite = np.isfinite(run.obs["loss"])
    return finite.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)


def claims(run) -> list[Claim]:
    """Measure every claim of Yang et al. (2024) on `run` (a `Cooccurrence` run)."""
    obs, ts = run.obs, run.ts
    seeds = np.arange(run.n_seeds)
    m = run.config["problem"]["fields"]["m"]
    t1 = phase1_end(run)
    reached = np.isfinite(t1)
    i1, iend = _index(run, t1), _end_index(run)
    at = lambda name, idx: obs[name][seeds, idx]  # noqa: E731
    out = []

    out.append(Claim(
        "phase 1 ends",
        "Phase 1 ends at T1 = Õ(1/m) with every sample correctly classified and G(µ1), G(µ2) > 0 > G(µ3).",
        "T1 = first save time with min_i y_i F_i > 0 and G(µ1), G(µ2) > 0 > G(µ3)",
        reached,
        {"T1": t1, "T1·m": t1 * m},
    ))

    s0, s1, send = obs["scores"][:, 0], at("scores", i1), at("scores", iend)
    moved = np.abs(s1 - s0).max(axis=(1, 2)) / np.maximum(np.abs(send - s0).max(axis=(1, 2)), 1e-300)
    loss_t1 = at("loss", i1)
    out.append(Claim(
        "phase 1: attention still at init, loss Θ(1)",
        "At T1 the attention scores are still near their initial values and the loss is still Θ(1).",
        "scores moved ≤ 20% of their total change by T1, and loss(T1) ≥ 0.1",
        reached & (moved <= 0.2) & (loss_t1 >= 0.1),
        {"score change by T1 / total": moved, "loss(T1)": loss_t1, "loss(0)": obs["loss"][:, 0]},
    ))

    gl = obs["group_loss"]
    rise, fall, peak = {}, {}, {}
    for k, g in ((1, "I2"), (2, "I3")):
        top = np.nanargmax(gl[:, :, k], axis=1)
        rise[g] = gl[seeds, top, k] - gl[:, 0, k]
        fall[g] = gl[seeds, top, k] - gl[seeds, iend, k]
        peak[g] = ts[top]
    g3_negative = np.where((obs["G"][..., 2] < 0).any(axis=1), ts[np.argmax(obs["G"][..., 2] < 0, axis=1)], np.nan)
    out.append(Claim(
        "I2/I3 loss rises, then falls",
        "The loss of groups I2 and I3 first rises, then falls once G(µ3) turns negative.",
        "max_t loss_Ik(t) exceeds loss_Ik(0) by > 1e-3 and ends below its peak, for k = 2, 3",
        (rise["I2"] > 1e-3) & (rise["I3"] > 1e-3) & (fall["I2"] > 0) & (fall["I3"] > 0),
        {"rise I2": rise["I2"], "rise I3": rise["I3"], "peak time I2": peak["I2"], "peak time I3": peak["I3"],
         "time G(µ3) < 0": g3_negative, "G(µ3) at t=0": obs["G"][:, 0, 2]},
    ))

    def directions(name, up, down):
        d1, dend = at(name, i1), at(name, iend)
        deltas = {k: dend[:, i, j] - d1[:, i, j] for k, (i, j) in {**up, **down}.items()}
        ok = reached.copy()
        for k in up:
            ok &= deltas[k] > 0
        for k in down:
            ok &= deltas[k] < 0
        return ok, {f"Δ{k} on [T1, end]": v for k, v in deltas.items()}

    ok, vals = directions("scores", _SCORE_UP, _SCORE_DOWN)
    out.append(Claim(
        "phase 2: attention scores",
        "µ2ᵀW_KᵀW_Qµ1 and µ1ᵀW_KᵀW_Qµ2 grow; µ3ᵀW_KᵀW_Qµ1 and µ3ᵀW_KᵀW_Qµ2 fall.",
        "sign of the change between T1 and the end",
        ok, vals,
    ))
    ok, vals = directions("value_gram", _GRAM_UP, _GRAM_DOWN)
    out.append(Claim(
        "phase 2: value Gram",
        "µ1ᵀW_VᵀW_Vµ2 grows; µ1ᵀW_VᵀW_Vµ3 and µ2ᵀW_VᵀW_Vµ3 fall.",
        "sign of the change between T1 and the end",
        ok, vals,
    ))

    G = at("G", iend)
    sums = {"G1+G3": G[:, 0] + G[:, 2], "G2+G3": G[:, 1] + G[:, 2], "G1+G2+G3": G.sum(axis=1)}
    out.append(Claim(
        "phase 2: sign conditions on G",
        "G(µ1)+G(µ3) < 0, G(µ2)+G(µ3) < 0, G(µ1)+G(µ2)+G(µ3) > 0.",
        "the three signs at the end of the run",
        (sums["G1+G3"] < 0) & (sums["G2+G3"] < 0) & (sums["G1+G2+G3"] > 0),
        {f"{k} at end": v for k, v in sums.items()},
    ))

    after = (ts[None, :] >= np.nan_to_num(t1, nan=np.inf)[:, None]) & np.isfinite(obs["loss"])
    bal = np.where(after, obs["balance_23"], np.nan)
    R = np.where(after, obs["ratio_R"], np.nan)
    with np.errstate(all="ignore"):
        bal_max = np.nanmax(np.where(after.any(1)[:, None], bal, 0.0), axis=1)
        r_min = np.nanmin(np.where(after.any(1)[:, None], R, np.nan), axis=1) if after.any() else np.full(run.n_seeds, np.nan)
        r_max = np.nanmax(np.where(after.any(1)[:, None], R, np.nan), axis=1) if after.any() else np.full(run.n_seeds, np.nan)
    out.append(Claim(
        "automatic balancing",
        "|Σ_I2 g − Σ_I3 g| / min(Σ_I2 g, Σ_I3 g) stays small and R(t) stays in a fixed range on [T1, end].",
        "balance ≤ 0.5 and 0 < R_min, R_max/R_min ≤ 10 on [T1, end]",
        reached & (bal_max <= 0.5) & (r_min > 0) & (r_max / r_min <= 10),
        {"max balance": bal_max, "min R": r_min, "max R": r_max},
    ))

    loss_end = at("loss", iend)
    out.append(Claim(
        "final loss",
        "At the end the loss is ≤ 1/poly(m).",
        "loss(end) ≤ 1/m",
        loss_end <= 1.0 / m,
        {"loss(end)": loss_end, "1/m": np.full(run.n_seeds, 1.0 / m)},
    ))

    C = _kq_change(run)
    four = {"C12": C[:, 0, 1], "C21": C[:, 1, 0], "C31": C[:, 2, 0], "C32": C[:, 2, 1]}
    mags = np.abs(np.stack(list(four.values()), axis=1))
    spread = mags.max(axis=1) / np.maximum(mags.min(axis=1), 1e-300)
    rest = C.copy()
    rest[:, :3, :3] = 0.0
    dominance = mags.min(axis=1) / np.maximum(np.abs(rest).max(axis=(1, 2)), 1e-300)
    out.append(Claim(
        "structure of W_KᵀW_Q − init",
        "W_KᵀW_Q − init ≈ Σ C_ij µ_i µ_jᵀ with C12, C21 large positive, C31, C32 large negative, same order.",
        "signs of C12, C21 (> 0), C31, C32 (< 0) and max/min of their sizes ≤ 10 (dominance over "
        "entries with random words reported, not required)",
        (four["C12"] > 0) & (four["C21"] > 0) & (four["C31"] < 0) & (four["C32"] < 0) & (spread <= 10),
        {**four, "max/min of the four": spread, "min of four / max random-word entry": dominance},
    ))

    drift = {"drift W_QW_Qᵀ−W_KW_Kᵀ": np.nanmax(obs["drift_QK"], axis=1),
             "drift WᵀW−W_VW_Vᵀ": np.nanmax(obs["drift_WV"], axis=1)}
    out.append(Claim(
        "conserved quantities (accuracy check)",
        "W_QW_Qᵀ − W_KW_Kᵀ and WᵀW − W_VW_Vᵀ are exact invariants of the flow.",
        "relative drift ≤ 1e-4 over the run (solver accuracy, not a paper claim)",
        (drift["drift W_QW_Qᵀ−W_KW_Kᵀ"] <= 1e-4) & (drift["drift WᵀW−W_VW_Vᵀ"] <= 1e-4),
        drift,
    ))
    return out


def _kq_change(run) -> np.ndarray:
    """W_KᵀW_Q(end) − W_KᵀW_Q(0) per seed, (seeds, d, d), entry [i, j] = C_ij."""
    K0, Q0 = np.asarray(run.initial.WK), np.asarray(run.initial.WQ)
    K1, Q1 = np.asarray(run.final.WK), np.asarray(run.final.WQ)
    return np.einsum("smi,smj->sij", K1, Q1) - np.einsum("smi,smj->sij", K0, Q0)


def report(run) -> str:
    """The claims measured on `run`, as a text table (`gradflow run` prints it)."""
    return claims_table(claims(run))
