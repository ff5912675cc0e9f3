"""The four stages of Li et al. (2025, arXiv:2410.04870), detected on a
`SignalNoise` run, and the text report `gradflow run` prints."""

import dataclasses

import numpy as np

STAGES = ("I", "II", "III", "IV")


@dataclasses.dataclass
class Stages:
    """Per seed, the time at which each stage is complete (NaN: not reached).

    **Attributes:**

    - `times`: `times[k, j]` ends stage j of seed k.
    - `notes`: `notes[k][j]` says why a stage was not reached.
    - `criteria`: the criterion used for each stage.
    - `vote`: `vote[k]` is the fraction of seed k's 2·m_k signal signs that
      follow the majority vote at the end of stage III (NaN if III was not
      reached).
    - `s11_at_IV`: `s11_at_IV[k]` is the mean s_11 at the end of stage IV.
    - `s11_final`: `s11_final[k]` is the mean s_11 at the last save.
    - `vote_min`, `s11_tol`: the thresholds of the two checks (`vote_holds`,
      `s11_near_half`).
    """

    times: np.ndarray
    notes: list
    criteria: dict
    vote: np.ndarray = None
    s11_at_IV: np.ndarray = None
    s11_final: np.ndarray = None
    vote_min: float = 0.9
    s11_tol: float = 0.1

    @property
    def reached(self) -> np.ndarray:
        return np.isfinite(self.times)

    @property
    def in_order(self) -> np.ndarray:
        """Per seed: all four stages reached, at non-decreasing times."""
        ordered = np.all(np.diff(np.nan_to_num(self.times, nan=0.0), axis=1) >= 0, axis=1)
        return self.reached.all(axis=1) & ordered

    @property
    def vote_holds(self) -> np.ndarray:
        """Per seed: stage III reached and at least `vote_min` of the signal signs follow the majority vote."""
        return np.nan_to_num(self.vote, nan=-1.0) >= self.vote_min

    @property
    def s11_near_half(self) -> np.ndarray:
        """Per seed: stage IV reached with |s_11 − ½| ≤ `s11_tol` at its end (the caption's "s_11 remains close to 1/2")."""
        return np.abs(np.nan_to_num(self.s11_at_IV, nan=np.inf) - 0.5) <= self.s11_tol

    def reasons(self) -> list:
        """Per seed, why it is not in order ("" when it is): the stages not
        reached (with their notes) or the first pair of stages out of order."""
        out = []
        for k, row in enumerate(self.times):
            if self.in_order[k]:
                out.append("")
                continue
            missing = [f"{STAGES[j]} not reached ({self.notes[k][j]})" for j in range(4) if not np.isfinite(row[j])]
            if missing:
                out.append("; ".join(missing))
                continue
            j = int(np.flatnonzero(np.diff(row) < 0)[0])
            why = {0: "the query/key noise signs agreed before the noise left its initial size",
                   1: "the query/key signal signs settled before the noise signs agreed",
                   2: "the softmax polarised before the query/key signal signs settled"}[j]
            out.append(f"{STAGES[j + 1]} ends ({row[j + 1]:.4g}) before {STAGES[j]} ({row[j]:.4g}): {why}")
        return out

    def table(self) -> str:
        lines = [f"{'seed':>4}  " + "  ".join(f"{'end of ' + s:>12}" for s in STAGES)
                 + "  in order  III vote  s11 at IV  s11 final"]
        for k, row in enumerate(self.times):
            cells = [f"{t:12.4g}" if np.isfinite(t) else f"{'not reached':>12}" for t in row]
            extra = "".join(f"  {x:9.3g}" if x is not None and np.isfinite(x) else f"  {'-':>9}"
                            for x in (_at(self.vote, k), _at(self.s11_at_IV, k), _at(self.s11_final, k)))
            lines.append(f"{k:>4}  " + "  ".join(cells) + f"  {str(bool(self.in_order[k])):>8}" + extra)
        for k, reason in enumerate(self.reasons()):
            if reason:
                lines.append(f"seed {k} not in order: {reason}")
        return "\n".join(lines)


def _at(values, k):
    return None if values is None else float(values[k])


def _first(ts, mask):
    idx = np.flatnonzero(mask)
    return float(ts[idx[0]]) if idx.size else np.nan


def detect_stages(run, *, near_init=2.0, linear_tol=0.25, agreement=0.9, stable_fraction=0.2,
                  polarised=0.05, vote_min=0.9, s11_tol=0.1) -> Stages:
    """The four stages of training on a `SignalNoise` run (SignGD, Adam, GD or a flow).

    **Arguments:**

    - `run`: a `Run` of `SignalNoise`.
    - `near_init`, `linear_tol`, `agreement`, `stable_fraction`, `polarised`:
      the stage criteria below (defaults 2.0, 0.25, 0.9, 0.2, 0.05).
    - `vote_min`, `s11_tol`: the thresholds of the two checks below (defaults
      0.9, 0.1).

    **Returns:**

    A `Stages`.

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

    Two checks of what the stages should look like (they do not change the
    stage times; `Stages.vote_holds` and `Stages.s11_near_half`):

    - Stage III's majority vote. Where value noise outweighs value signal, the
      gradient moves the query signal ⟨w_{Q,s}, µ⟩ towards the sign of
      Σ_i ⟨w_{K,s}, y_iξ_i⟩ (it raises the signal query's score on the noise
      key) and the key signal ⟨w_{K,s}, µ⟩ towards −sign Σ_i ⟨w_{Q,s}, y_iξ_i⟩
      (it lowers the noise query's score on the signal key). `Stages.vote` is
      the fraction of the 2·m_k signal signs that obey these two rules at the
      end of stage III (the sums are the `key_noise`/`query_noise`
      observables, unweighted means over i); the check passes when it is at
      least `vote_min` (0.9: the tolerance of stage II's agreement, one
      neuron in ten may be mid-flip). With the noise signs aligned (stage II)
      the two rules give every neuron query and key signals of opposite sign,
      so s_11 eventually decays too.
    - Stage IV's s_11: the paper's Fig. 1 caption says s_11 "remains close to
      1/2" when s_21 approaches zero. `Stages.s11_at_IV` is the mean s_11 at
      the end of stage IV; the check passes when |s_11 − ½| ≤ `s11_tol` (0.1,
      twice the `polarised` threshold that stands for "near zero").
      `Stages.s11_final` is the mean s_11 at the last save (its limit).
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
    vote = np.full(n_seeds, np.nan)
    s11_at_iv = np.full(n_seeds, np.nan)
    if "query_noise" in obs and "key_noise" in obs:
        for k in np.flatnonzero(np.isfinite(times[:, 2])):
            i = int(np.searchsorted(ts, times[k, 2]))
            q_rule = np.sign(obs["query_signal"][k, i]) == np.sign(obs["key_noise"][k, i])
            k_rule = np.sign(obs["key_signal"][k, i]) == -np.sign(obs["query_noise"][k, i])
            vote[k] = np.mean(np.concatenate([q_rule, k_rule]))
    if "s11_mean" in obs:
        for k in np.flatnonzero(np.isfinite(times[:, 3])):
            s11_at_iv[k] = obs["s11_mean"][k, int(np.searchsorted(ts, times[k, 3]))]
        finite = [obs["s11_mean"][k][np.isfinite(obs["s11_mean"][k])] for k in range(n_seeds)]
        s11_final = np.array([f[-1] if f.size else np.nan for f in finite])
    else:
        s11_final = np.full(n_seeds, np.nan)
    criteria = {
        "I": f"query/key noise leave {near_init:g}× their initial size; value noise linear before (±{linear_tol:g})",
        "II": f"sign agreement of query and key noise ≥ {agreement:g}",
        "III": f"signs of all query/key signals fixed until the end (≥ last {stable_fraction:.0%} of saves)",
        "IV": f"mean s_21 ≤ {polarised:g}",
        "III vote": f"≥ {vote_min:g} of the signal signs follow the majority vote at the end of III",
        "IV s11": f"|mean s_11 − ½| ≤ {s11_tol:g} at the end of IV",
    }
    return Stages(times=times, notes=notes, criteria=criteria, vote=vote, s11_at_IV=s11_at_iv, s11_final=s11_final,
                  vote_min=vote_min, s11_tol=s11_tol)


def report(run) -> str:
    """The detected stages and the final losses of `run`, as text (`gradflow run` prints it)."""
    stages = detect_stages(run)
    lines = [f"stages (criteria: {'; '.join(f'{k}: {v}' for k, v in stages.criteria.items())})", stages.table()]
    for key in ("loss", "test_loss", "test_accuracy"):
        last = run.last(key)
        lines.append(f"final {key.replace('_', ' ')}: {last.mean():.4g} ± {last.std():.2g}")
    return "\n".join(lines)
