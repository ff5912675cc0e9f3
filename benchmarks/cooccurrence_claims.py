"""Yang et al. (2024): the two claims that disagree with the simulation, measured
over seeds across the settings that could explain them.

A. "G(µ1)+G(µ3) < 0, G(µ2)+G(µ3) < 0, G(µ1)+G(µ2)+G(µ3) > 0" (phase 2), with the
   theory's distinct random words (`distinct_words=True`): pass counts at three
   horizons (T = 30, 300, 3000, read from one run) while varying σ0, the width m,
   and n (with d = the smallest allowed by n·L ≤ d − 3, or the paper's 64), beside
   the max-margin prediction of `_theory` (n* = 3(L+1); G(µ1)+G(µ3) of the
   max-margin classifier on token counts, as a fraction of its norm). The paper's
   own data (shared random words, d = 64) is one row.
B. "The loss of I2 and I3 first rises, then falls": the claim with its derived
   condition G(µ3)(0) < γ* over 16 seeds, and how often the condition predicts the
   rise, beside the cruder G(µ3)(0) < ln(3/2) (the condition with G(µ1)(0) =
   G(µ2)(0) = 0).
C. The paper's own data at the paper's scale (shared random words, n = 60, d = 64,
   m = 128, 16 seeds, T = 300): which seeds fail the sign conditions, beside each
   seed's max-margin sums; the failing sums are ranked by |max-margin sum| among all
   32 (16 seeds × 2 sums), with the chance of ranks that low under a random draw.

All runs: Tsit5, PIDController(rtol=1e-6, atol=1e-8), float64, m1 = 2m.

    python benchmarks/cooccurrence_claims.py [--seeds 8] [--rise-seeds 16] [--quick]
"""

import argparse
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import numpy as np  # noqa: E402
from _common import machine, table, write_json  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.problems import Cooccurrence  # noqa: E402
from gradflow.problems.cooccurrence import claims, max_margin_sums, memorisation_threshold  # noqa: E402

CONTROLLER = dfx.PIDController(rtol=1e-6, atol=1e-8)


def sign_row(label, problem, seeds, horizons):
    t = time.time()
    run = gf.simulate(problem, t1=max(horizons), seeds=seeds, save=gf.LogGrid(n=80, t_min=1e-3),
                      stepsize_controller=CONTROLLER)
    G = run.obs["G"]
    row = {"setting": label, "n": problem.n, "L": problem.L, "d": problem.d, "m": problem.m,
           "sigma0": problem.scales[0], "distinct": problem.distinct_words,
           "n/n*": problem.n / memorisation_threshold(problem.L), "seeds": seeds, "ok": int(run.ok.sum())}
    for T in horizons:
        k = int(np.argmin(np.abs(run.ts - T)))
        s13, s23, s123 = G[:, k, 0] + G[:, k, 2], G[:, k, 1] + G[:, k, 2], G[:, k].sum(axis=1)
        row[f"all3@{T:g}"] = int(np.sum((s13 < 0) & (s23 < 0) & (s123 > 0)))
        row[f"G1+G3<0@{T:g}"] = int(np.sum(s13 < 0))
        row[f"G2+G3<0@{T:g}"] = int(np.sum(s23 < 0))
        row[f"G123>0@{T:g}"] = int(np.sum(s123 > 0))
        row[f"med G1+G3@{T:g}"] = float(np.median(s13))
    mm = max_margin_sums(problem, seeds)
    row["max-margin (G1+G3)/|G|"] = float(np.median(mm["G1+G3"]))
    row["max-margin all3"] = int(np.sum((mm["G1+G3"] < 0) & (mm["G2+G3"] < 0) & (mm["G1+G2+G3"] > 0)))
    row["wall_s"] = time.time() - t
    print(f"  {label}: all three at T={horizons[-1]:g}: {row[f'all3@{horizons[-1]:g}']}/{seeds} "
          f"({row['wall_s']:.0f} s)", flush=True)
    return row


def rise_row(label, problem, seeds, t1):
    t = time.time()
    run = gf.simulate(problem, t1=t1, seeds=seeds, save=gf.LogGrid(n=120, t_min=1e-4), stepsize_controller=CONTROLLER)
    c = {x.name: x for x in claims(run)}["I2/I3 loss rises, then falls"]
    v = c.values
    row = {"setting": label, "seeds": seeds, "claim passes": c.n_passed}
    naive = v["G(µ3)(0)"] < math.log(1.5)
    for g in ("I2", "I3"):
        rose = v[f"rise {g} / loss(0)"] > gf.problems.cooccurrence.RISE_TOL
        row[f"rose {g}"] = int(rose.sum())
        row[f"γ* predicts {g}"] = int(np.sum(rose == v[f"predicted rise {g}"]))
        row[f"ln1.5 predicts {g}"] = int(np.sum(rose == naive))
    row["G3(0) range"] = f"[{v['G(µ3)(0)'].min():.2f}, {v['G(µ3)(0)'].max():.2f}]"
    row["median peak time"] = float(np.median(np.concatenate([v["peak time I2"], v["peak time I3"]])))
    row["wall_s"] = time.time() - t
    row["per_seed"] = {k: np.asarray(x, dtype=float).tolist() for k, x in v.items()} | {"passed": c.passed.tolist()}
    print(f"  {label}: claim passes {c.n_passed}/{seeds} ({row['wall_s']:.0f} s)", flush=True)
    return row


def shared_rows(problem, seeds, t1):
    t = time.time()
    run = gf.simulate(problem, t1=t1, seeds=seeds, save=gf.LogGrid(n=40, t_min=1e-3), stepsize_controller=CONTROLLER)
    c = {x.name: x for x in claims(run)}["phase 2: sign conditions on G"]
    mm = max_margin_sums(problem, seeds)
    sims = np.concatenate([c.values["G1+G3 at end"], c.values["G2+G3 at end"]])
    mms = np.concatenate([mm["G1+G3"], mm["G2+G3"]])
    rank = np.argsort(np.argsort(np.abs(mms))) + 1  # 1 = the max-margin sum closest to 0
    failed = sims >= 0
    k, worst = int(failed.sum()), int(rank[failed].max()) if failed.any() else 0
    # P(all k failing sums rank ≤ worst) if the k failures were a random k of the 2·seeds sums.
    chance = math.comb(worst, k) / math.comb(sims.size, k) if k else float("nan")
    rows = [{"seed": s, "passed": str(bool(c.passed[s])), "sim G1+G3": float(c.values["G1+G3 at end"][s]),
             "sim G2+G3": float(c.values["G2+G3 at end"][s]), "mm G1+G3": float(mm["G1+G3"][s]),
             "mm G2+G3": float(mm["G2+G3"][s])} for s in range(seeds)]
    summary = {"seeds passing": int(c.passed.sum()), "failing sums": k, "sums": int(sims.size), "their |mm| ranks (1 = closest to 0)": sorted(rank[failed].tolist()),
               "max |mm| of a failing sum": float(np.abs(mms[failed]).max()) if k else float("nan"),
               "min |mm| of a passing sum": float(np.abs(mms[~failed]).min()), "chance": chance,
               "wall_s": time.time() - t}
    print(f"  paper data at paper scale: {summary['seeds passing']}/{seeds} seeds pass; failing sums rank "
          f"{summary['their |mm| ranks (1 = closest to 0)']} of {sims.size} by |max-margin| (chance {chance:.1e})", flush=True)
    return rows, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=8, help="seeds per row of table A")
    ap.add_argument("--rise-seeds", type=int, default=16, help="seeds per row of table B")
    ap.add_argument("--quick", action="store_true", help="2 seeds, T ≤ 300, a few rows (a smoke run)")
    args = ap.parse_args()
    seeds, rise_seeds = (2, 4) if args.quick else (args.seeds, args.rise_seeds)
    horizons = (30.0, 300.0) if args.quick else (30.0, 300.0, 3000.0)
    s0 = 1 / math.sqrt(5 * 32)  # the theory's σ0 = 1/√(Lm) at L = 5, m = 32

    small = dict(m=32, m1=64, distinct_words=True)
    settings = [
        ("distinct, n=12, d=64", Cooccurrence(n=12, d=64, **small)),
        ("distinct, n=12, d=64, σ0×0.1", Cooccurrence(n=12, d=64, sigma0=0.1 * s0, **small)),
        ("distinct, n=12, d=64, σ0×3", Cooccurrence(n=12, d=64, sigma0=3 * s0, **small)),
        ("distinct, n=12, d=64, m=128", Cooccurrence(n=12, d=64, m=128, m1=256, distinct_words=True)),
        ("distinct, n=12, L=4, d=64", Cooccurrence(n=12, L=4, d=64, **small)),
        ("distinct, n=18=n*, d=93", Cooccurrence(n=18, d=93, **small)),
        ("distinct, n=24, d=123", Cooccurrence(n=24, d=123, **small)),
        ("distinct, n=60, d=303", Cooccurrence(n=60, d=303, **small)),
        ("shared (paper), n=60, d=64", Cooccurrence(n=60, d=64, m=32, m1=64)),
        ("shared, n=12, d=64", Cooccurrence(n=12, d=64, m=32, m1=64)),
    ]
    if args.quick:
        settings = [settings[0], settings[6]]
    print(f"A. sign conditions on G, {seeds} seeds per row, T = {', '.join(f'{h:g}' for h in horizons)}", flush=True)
    rows_a = [sign_row(label, p, seeds, horizons) for label, p in settings]

    print(f"B. I2/I3 rise then fall, {rise_seeds} seeds per row, T = 30", flush=True)
    rise_settings = [
        ("paper data, m=32", Cooccurrence(m=32, m1=64)),
        ("paper scale, m=128", Cooccurrence()),
        ("distinct, n=60, d=303, m=32", Cooccurrence(n=60, d=303, **small)),
    ]
    if args.quick:
        rise_settings = rise_settings[:1]
    rows_b = [rise_row(label, p, rise_seeds, 30.0) for label, p in rise_settings]

    print(f"C. sign conditions on the paper's data at the paper's scale, {rise_seeds} seeds, T = 300", flush=True)
    rows_c, summary_c = shared_rows(Cooccurrence(m=32, m1=64) if args.quick else Cooccurrence(), rise_seeds,
                                    30.0 if args.quick else 300.0)

    H = horizons
    print()
    print(table(rows_a, [("setting", "s"), ("n/n*", ".2f"), ("sigma0", ".3f")]
                + [(f"all3@{h:g}", "d") for h in H]
                + [(f"G1+G3<0@{H[-1]:g}", "d"), (f"G2+G3<0@{H[-1]:g}", "d"), (f"G123>0@{H[-1]:g}", "d"),
                   (f"med G1+G3@{H[-1]:g}", ".3f"), ("max-margin (G1+G3)/|G|", ".3f"), ("max-margin all3", "d"),
                   ("wall_s", ".0f")]))
    print()
    print(table(rows_b, [("setting", "s"), ("seeds", "d"), ("claim passes", "d"), ("rose I2", "d"), ("rose I3", "d"),
                         ("γ* predicts I2", "d"), ("γ* predicts I3", "d"), ("ln1.5 predicts I2", "d"),
                         ("ln1.5 predicts I3", "d"), ("G3(0) range", "s"), ("median peak time", ".3f"),
                         ("wall_s", ".0f")]))
    print()
    print(table(rows_c, [("seed", "d"), ("passed", "s"), ("sim G1+G3", ".2f"), ("sim G2+G3", ".2f"),
                         ("mm G1+G3", ".3f"), ("mm G2+G3", ".3f")]))
    print(summary_c)
    if not args.quick:
        path = write_json("cooccurrence_claims", {
            "machine": machine(), "controller": "Tsit5, PIDController(rtol=1e-6, atol=1e-8)",
            "sign_conditions": rows_a, "rise_then_fall": rows_b,
            "paper_data_sign_conditions": {"rows": rows_c, "summary": summary_c},
        })
        print(f"wrote {path}")


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"total {time.time() - t:.0f} s")
