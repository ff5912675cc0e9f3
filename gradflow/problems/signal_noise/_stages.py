"""The four stages of Li et al. (2025, arXiv:2410.04870), detected on a
`SignalNoise` run, and the text report `gradflow run` prints."""

import dataclasses

import numpy as np

STAGES = ("I", "II", "III", "IV")


@dataclasses.dataclass
class Stages:
    """Per seed, the time at which each stage is complete (NaN: not reached).

    `times[k, j]` ends stage j of seed k; `notes[k][j]` says why a stage was
    not reached; `criteria` holds the criterion used for each stage.
    """

    times: np.ndarray
    notes: list
    criteria: dict

    @property
    def reached(self) -> np.ndarray:
        return np.isfinite(self.times)

    @property
    def in_order(self) -> np.ndarray:
        """Per seed: all four stages reached, at non-decreasing times."""
        ordered = np.all(np.diff(np.nan_to_num(self.times, nan=0.0), axis=1) >= 0, axis=1)
        return self.reached.all(axis=1) & ordered

    def table(self) -> str:
        lines = [f"{'seed':>4}  " + "  ".join(f"{'end of ' + s:>12}" for s in STAGES) + "  in order"]
        for k, row in enumerate(self.times):
            cells = [f"{t:12.4g}" if np.isfinite(t) else f"{'not reached':>12}" for t in row]
            lines.append(f"{k:>4}  " + "  ".join(cells) + f"  {bool(self.in_order[k])}")
        for j, s in enumerate(STAGES):
            missing = [f"seed {k}: {self.notes[k][j]}" for k in range(len(self.notes)) if self.notes[k][j]]
            if missing:
                lines.append(f"stage {s} not reached — " + "; ".join(missing[:3]) + (" …" if len(missing) > 3 else ""))
        return "\n".join(lines)


def _first(ts, mask):
    idx = np.flatnonzero(mask)
    return float(ts[idx[0]]) if idx.size else np.nan


def detect_stages(run, *, near_init=2.0, linear_tol=0.25, agreement=0.9, stable_fraction=0.2,
                  polarised=0.05) -> Stages:
    """The four stages of training on a `SignalNoise` run (SignGD, Adam, GD or a flow).

    Criteria (each a keyword argument):
    - I ends when query or key noise leave their initial size: the first save
      time at which mean |⟨w_{Q,s}, y_i ξ_i⟩| or mean |⟨w_{K,s}, y_i ξ_i⟩|
      exceeds `near_init` × its value at t = 0. Stage I is reached only if the
      mean value noise grew linearly before that: it increased, and at T_I/2
      it is within `linear_tol` (relative to the increase) of the straight line
      from t = 0 to T_I.
    - II ends when the signs of query noise and key noise agree: the first time
      the fraction of (neuron, sample) pairs with sign⟨w_{Q,s}, y_iξ_i⟩ =
      sign⟨w_{K,s}, y_iξ_i⟩ reaches `agreement`.
    - III ends when the signs of the query and key signals ⟨w_{Q,s}, µ⟩,
      ⟨w_{K,s}, µ⟩ of every neuron settle: the first save time from which all
      of them equal their final signs. Reached only if they then stay fixed for
      at least the last `stable_fraction` of the saved times (otherwise they may
      still be changing), and only if some sign changed during the run (signs
      that never moved show no vote).
    - IV ends when the softmax polarises: the first time the mean s_21 (weight
      of the noise query on the signal key) falls to `polarised` or below.
    """
    ts = np.asarray(run.ts)
    obs = run.obs
    n_seeds = obs["loss"].shape[0]
    times = np.full((n_seeds, 4), np.nan)
    notes = [["", "", "", ""] for _ in range(n_seeds)]
    for k in range(n_seeds):
        # Stage I
        qa, ka = obs["query_noise_abs"][k], obs["key_noise_abs"][k]
        left = (qa > near_init * qa[0]) | (ka > near_init * ka[0])
        t1 = _first(ts, left)
        if not np.isfinite(t1):
            notes[k][0] = f"query/key noise never left {near_init:g}× their initial size"
        else:
            vn = obs["value_noise"][k]
            rise = np.interp(t1, ts, vn) - vn[0]
            mid = np.interp(t1 / 2, ts, vn) - vn[0]
            if not rise > 0:
                notes[k][0] = "mean value noise did not grow before query/key noise moved"
            elif abs(mid - rise / 2) > linear_tol * rise:
                notes[k][0] = f"mean value noise not linear before T_I (midpoint {mid / rise:.2f} of the rise)"
            else:
                times[k, 0] = t1
        # Stage II
        times[k, 1] = _first(ts, obs["noise_sign_agreement"][k] >= agreement)
        if not np.isfinite(times[k, 1]):
            notes[k][1] = f"query/key noise sign agreement stayed below {agreement:g} (max {np.nanmax(obs['noise_sign_agreement'][k]):.2f})"
        # Stage III
        signs = np.sign(np.concatenate([obs["query_signal"][k], obs["key_signal"][k]], axis=-1))
        valid = np.all(np.isfinite(signs), axis=-1)
        last = np.flatnonzero(valid)[-1]
        differs = np.any(signs[: last + 1] != signs[last], axis=-1)
        if not differs.any():
            notes[k][2] = "query/key signal signs never changed from their initial values (no vote seen)"
        else:
            settle = int(np.flatnonzero(differs)[-1] + 1)
            if last + 1 - settle >= max(2, int(np.ceil(stable_fraction * (last + 1)))):
                times[k, 2] = ts[settle]
            else:
                notes[k][2] = "query/key signal signs still changing near the end of the run"
        # Stage IV
        times[k, 3] = _first(ts, obs["s21_mean"][k] <= polarised)
        if not np.isfinite(times[k, 3]):
            notes[k][3] = f"mean s_21 stayed above {polarised:g} (min {np.nanmin(obs['s21_mean'][k]):.3f})"
    criteria = {
        "I": f"query/key noise leave {near_init:g}× their initial size; value noise linear before (±{linear_tol:g})",
        "II": f"sign agreement of query and key noise ≥ {agreement:g}",
        "III": f"signs of all query/key signals fixed until the end (≥ last {stable_fraction:.0%} of saves)",
        "IV": f"mean s_21 ≤ {polarised:g}",
    }
    return Stages(times=times, notes=notes, criteria=criteria)


def report(run) -> str:
    """The detected stages and the final losses of `run`, as text (`gradflow run` prints it)."""
    stages = detect_stages(run)
    lines = [f"stages (criteria: {'; '.join(f'{k}: {v}' for k, v in stages.criteria.items())})", stages.table()]
    for key in ("loss", "test_loss", "test_accuracy"):
        last = run.last(key)
        lines.append(f"final {key.replace('_', ' ')}: {last.mean():.4g} ± {last.std():.2g}")
    return "\n".join(lines)
