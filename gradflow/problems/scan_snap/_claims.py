"""Tian, Wang, Chen & Du (2023, arXiv:2305.16380): the theorems measured on a
simulated `Run` of `ScanSnapPopulation` or `ScanSnap`."""

import numpy as np

from .._claims import Claim, claims_table
from ._model import transition_time


def flow_rates(run) -> tuple[float, float]:
    """(η_Y, η_Z): the rates of the run's flow (1 where not given)."""
    rates = (run.config.get("flow") or {}).get("rates") or {}
    return float(rates.get("Y", 1.0)), float(rates.get("Z", 1.0))


def measured_transition(run) -> np.ndarray:
    """The measured scan → snap transition, per seed.

    **Arguments:**

    - `run`: a run of `ScanSnapPopulation` or `ScanSnap` (with the observable
      "B").

    **Returns:**

    An array (seeds,): the time at which B(t) (mean over classes) grows fastest
    in log time, max_t dB/d ln t: where the fast O(ln t) "scan" gives way to
    the slow O(ln ln t) "snap". NaN if B never moves.
    """
    B = run.obs["B"] - run.obs["B"][:, :1]
    B = np.nanmean(B, axis=2)
    t = run.ts
    pos = t > 0
    lt, Bp = np.log(t[pos]), B[:, pos]
    slope = np.diff(Bp, axis=1) / np.diff(lt)[None, :]
    mid = np.exp(0.5 * (lt[1:] + lt[:-1]))
    return np.where(np.nanmax(np.abs(slope), axis=1) > 0, mid[np.nanargmax(slope, axis=1)], np.nan)


def claims(run) -> list[Claim]:
    """Theorems 2 and 3, the r–Δz identity and the transition time, per seed.

    **Arguments:**

    - `run`: a run of `ScanSnapPopulation` or `ScanSnap`.

    **Returns:**

    A list of `Claim`s.
    """
    cls = run.problem.classes
    P, D, C = cls.probs, cls.distinct, cls.common
    z = run.obs["z_rows"]  # (S, T, K, M)
    dz_t = np.diff(z, axis=1)
    scale = np.nanmax(np.abs(z), axis=(1, 2, 3), keepdims=True)[:, 0]
    moving = np.abs(dz_t) > 1e-12 * np.maximum(scale[:, None], 1e-300)
    out = []

    def frac(mask_tokens, sign):
        sel = moving & mask_tokens[None, None]
        good = sel & ((dz_t > 0) if sign > 0 else (dz_t < 0))
        return good.sum(axis=(1, 2, 3)) / np.maximum(sel.sum(axis=(1, 2, 3)), 1)

    f_distinct, f_common = frac(D, +1), frac(C, -1)
    out.append(Claim(
        "Thm 2: signs of ż",
        "ż_{ml} > 0 for distinct tokens; ż_{ml} < 0 for a (single) common token.",
        "fraction of moving (save interval, class, token) entries with the predicted sign; pass if 1 for distinct "
        "and ≥ 0.99 for common tokens",
        (f_distinct == 1.0) & (f_common >= 0.99 if C.any() else True),
        {"distinct with ż > 0": f_distinct, "common with ż < 0": f_common if C.any() else np.full(run.n_seeds, np.nan)},
    ))

    dz = z - z[:, :1]
    ordered, total = np.zeros(run.n_seeds), np.zeros(run.n_seeds)
    for n in range(cls.K):
        idx = np.where(D[n])[0]
        idx = idx[np.argsort(P[n, idx], kind="stable")]
        if idx.size < 2:
            continue
        d = dz[:, :, n, idx]  # (S, T, distinct tokens by increasing P)
        live = np.abs(d).max(axis=2) > 1e-12 * np.maximum(scale[:, None, 0, 0], 1e-300)
        steps = np.diff(d, axis=2)
        tie = np.diff(P[n, idx]) == 0
        mono = np.all((steps >= -1e-12 * np.abs(d).max(axis=2, keepdims=True)) | tie[None, None], axis=2)
        ordered += (mono & live).sum(axis=1)
        total += live.sum(axis=1)
    order_frac = ordered / np.maximum(total, 1)
    out.append(Claim(
        "Thm 3: scanning order",
        "Among distinct tokens, higher P(l|n) grows z_{ml} faster, so low co-occurrence tokens lose attention first.",
        "fraction of (save time, class) where Δz over distinct tokens is non-decreasing in P(l|n); pass if 1",
        order_frac == 1.0,
        {"ordered fraction": order_frac},
    ))

    ref = np.argmax(np.where(D, P, -1.0), axis=1)
    r = run.obs["r"]
    dz_ref = np.take_along_axis(dz, ref[None, None, :, None], axis=3)
    predicted = (1 + r[:, :1]) * np.exp(2 * (dz - dz_ref)) - 1
    err = np.abs(r - predicted) / (1 + np.abs(predicted))
    err = np.where(D[None, None], err, 0.0)
    identity = np.nanmax(err, axis=(1, 2, 3))
    out.append(Claim(
        "r–Δz identity",
        "1 + r_{l/l'|n}(t) = (1 + r(0)) e^{2[Δz_ml(t) − Δz_ml'(t)]}.",
        "max relative deviation over times, classes and distinct tokens ≤ 1e-6",
        identity <= 1e-6,
        {"max relative deviation": identity},
    ))

    eta_Y, eta_Z = flow_rates(run)
    t0 = transition_time(M=cls.M, K=cls.K, eta_Y=eta_Y)
    t_star = measured_transition(run)
    out.append(Claim(
        "transition time",
        "The scan → snap transition happens at t0 = 2K ln M / η_Y.",
        "measured t* (fastest growth of B in log time) within a factor 3 of t0",
        np.isfinite(t_star) & (t_star / t0 <= 3) & (t_star / t0 >= 1 / 3),
        {"t*": t_star, "t0": np.full(run.n_seeds, t0), "t*/t0": t_star / t0},
    ))
    return out


def report(run) -> str:
    """The theorems measured on `run`, as a text table (`gradflow run` prints it)."""
    return claims_table(claims(run))
