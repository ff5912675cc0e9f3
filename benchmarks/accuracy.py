"""Work-precision of every diffrax solver on every problem gradflow ships, in
float64 and float32 side by side, against a float64 reference.

    python benchmarks/accuracy.py [--problems NAME,...] [--quick] [--no-x32] [--figures DIR]

Problems: ls-cond1e2, ls-cond1e5 (stiff), linear-network, cooccurrence (paper
scale), scan-snap (population, Syn-Small, rates Y 10 / Z 1), sign-flow (the
regularised sign flow, ε = 1e-4, on a small SignalNoise instance), teacher-student
(soft committee machine, K = M = 4, N = 100, population loss). Solvers:
Euler (fixed steps), Heun, Midpoint, Bosh3, Tsit5, Dopri5, Dopri8, Kvaerno5 at
rtol 1e-3 … 1e-10 (atol = rtol/100; Heun and Midpoint down to 1e-8 only, float32
rows down to 1e-7, its epsilon; Kvaerno5 down to 1e-6 except on least squares). Each
solver's rows are also written to accuracy_NAME_partial.json as they finish. Writes benchmarks/results/accuracy_NAME.json
per problem and prints, per problem, the cheapest solver reaching relative
parameter error 1e-6 (max over the save times) against Euler (= gradient descent)
at that error. Wall times: the median of --numruns warm runs (min–max bars in the
figures), after the compiling call.
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import numpy as np  # noqa: E402
from _common import machine, write_json  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.accuracy import Table, recast, reference, work_precision  # noqa: E402
from gradflow.problems import (  # noqa: E402
    Cooccurrence,
    LeastSquares,
    ScanSnapPopulation,
    SignalNoise,
    TeacherStudent,
    TwoLayerLinear,
    syn_small,
)

PROBLEMS = {
    "ls-cond1e2": lambda: (LeastSquares(cond=1e2), gf.GradientFlow(), 50.0),
    "ls-cond1e5": lambda: (LeastSquares(cond=1e5), gf.GradientFlow(), 50.0),
    "linear-network": lambda: (TwoLayerLinear(strengths=(3.0, 2.0, 1.0)), gf.GradientFlow(), 10.0),
    "cooccurrence": lambda: (Cooccurrence(), gf.GradientFlow(), 300.0),
    "scan-snap": lambda: (ScanSnapPopulation(classes=syn_small()), gf.GradientFlow(rates={"Y": 10.0, "Z": 1.0}), 1e3),
    "sign-flow": lambda: (SignalNoise(n=6, d=100, s=5, mu_norm=5**0.5, m_k=2, m_v=2, n_test=100), gf.SignFlow(eps=1e-4),
                          0.05),
    "teacher-student": lambda: (TeacherStudent(), gf.GradientFlow(), 500.0),
}
ADAPTIVE = [dfx.Heun(), dfx.Midpoint(), dfx.Bosh3(), dfx.Tsit5(), dfx.Dopri5(), dfx.Dopri8(), dfx.Kvaerno5()]


def trajectory_error(row):
    """The parameter error over the trajectory: `work_precision`'s default measure, the
    max over the save times of the relative 2-norm error at each time (a run that
    converged by t1 cannot hide an error made on the way). NaN for a failed run."""
    value = row.get("param error", np.nan)
    return np.nan if value is None else float(value)


def cheapest(table, target=1e-6, precision="float64"):
    """(solver row with the fewest gradient evaluations whose trajectory error reaches
    `target`, Euler's evaluations at `target` on the log–log line fitted through its
    step sizes — an extrapolation where `target` lies beyond its smallest step —
    or None if that line does not fall)."""
    rows = [r for r in table.rows if r.get("precision") == precision and trajectory_error(r) <= target
            and r["solver"] not in ("Euler", "Kvaerno5")]
    best = min(rows, key=lambda r: r["gradient evaluations"], default=None)
    euler = sorted((r for r in table.rows if r["solver"] == "Euler" and r.get("precision") == precision
                    and np.isfinite(trajectory_error(r))), key=lambda r: r["gradient evaluations"])
    euler_cost = None
    if len(euler) >= 2:
        e = np.log([trajectory_error(r) for r in euler])
        n = np.log([r["gradient evaluations"] for r in euler])
        slope, icpt = np.polyfit(n, e, 1)  # log error = slope·log n + icpt
        if slope < 0:
            euler_cost = float(np.exp((np.log(target) - icpt) / slope))
    cheapest.slope = slope if len(euler) >= 2 else None  # for the headline table
    # Euler is first order: from its finest run, error ∝ 1/n gives the count at `target`
    # (the fitted line is steeper where the coarse runs are pre-asymptotic, and optimistic then).
    cheapest.order_one = (euler[-1]["gradient evaluations"] * trajectory_error(euler[-1]) / target) if euler else None
    return best, euler_cost


def headline(names):
    """The closing table from saved results: per problem, the cheapest solver to 1e-6."""
    from _common import RESULTS

    lines = ["| problem | cheapest to 1e-6 (float64) | its gradients | Euler (= GD) gradients at 1e-6, order 1 from "
             "30,000 steps | ratio | Euler's fitted slope (stable rows) | Euler at 1e-6 on the fitted line |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in names:
        path = RESULTS / f"accuracy_{name}.json"
        if not path.exists():
            lines.append(f"| {name} | not run | | | |")
            continue
        best, euler = cheapest(Table.load(path))
        if best is None:
            lines.append(f"| {name} | none reached 1e-6 | | | |")
            continue
        order_one = cheapest.order_one
        ratio = f"{order_one / best['gradient evaluations']:,.0f}×"
        lines.append(f"| {name} | {best['solver']} rtol {best['rtol']:g} | {best['gradient evaluations']:.0f} | "
                     f"{order_one:.3g} | {ratio} | {cheapest.slope:.2f} | {'%.3g' % euler if euler else 'n/a'} |")
    return "\n".join(lines)


def _cost(row):
    """Gradient evaluations per seed; for an implicit solver (uncounted Newton
    iterations) its steps, which then order its own rows."""
    evals = float(row.get("gradient evaluations", np.nan))
    return evals if np.isfinite(evals) else float(row.get("steps", np.nan))


def _cost_text(row):
    evals = float(row.get("gradient evaluations", np.nan))
    return f"{evals:,.0f}" if np.isfinite(evals) else f"{float(row['steps']):,.0f} steps"


def cost_table(name):
    """Markdown: per solver, gradients per seed to reach trajectory error 1e-3 / 1e-6 / 1e-9
    in float64 (the cheapest row reaching it) and the smallest error any float32 row reached."""
    from _common import RESULTS

    table = Table.load(RESULTS / f"accuracy_{name}.json")
    lines = [f"**{name}** ({table.meta.get('reference')}; t1 = {table.meta.get('t1'):g})", "",
             "| solver | to 1e-3 | to 1e-6 | to 1e-9 | float32 floor |", "| --- | ---: | ---: | ---: | ---: |"]
    for solver in dict.fromkeys(r["solver"] for r in table.rows):
        rows = [r for r in table.rows if r["solver"] == solver and "skipped" not in r]
        if not rows:
            lines.append(f"| {solver} | skipped | | | |")
            continue
        cells = []
        for target in (1e-3, 1e-6, 1e-9):
            ok = [r for r in rows if r["precision"] == "float64" and trajectory_error(r) <= target]
            best = min(ok, key=_cost, default=None)
            cells.append("–" if best is None else _cost_text(best))
        f32 = [trajectory_error(r) for r in rows if r["precision"] == "float32" and np.isfinite(trajectory_error(r))]
        cells.append(f"{min(f32):.1e}" if f32 else "–")
        lines.append(f"| {solver} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_problem(name, quick, x32, seeds, numruns):
    problem, flow, t1 = PROBLEMS[name]()
    save = gf.LinearGrid(n=11)
    start = time.perf_counter()
    ref = reference(problem, flow, t1=t1, seeds=seeds, save=save,
                    solver=dfx.Kvaerno5() if name == "ls-cond1e5" else None)
    print(f"[{name}] {ref} ({time.perf_counter() - start:.0f} s)", flush=True)
    rtols = [1e-3, 1e-5, 1e-7] if quick else [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]
    steps = [100, 1000] if quick else [100, 300, 1000, 3000, 10000, 30000]
    solvers = ADAPTIVE[3:5] + [dfx.Euler()] if quick else ADAPTIVE + [dfx.Euler()]
    # Both precisions start from the reference's float64 initial states (rounded for float32).
    start_from = recast(problem, seeds)
    rows = []
    partial = f"accuracy_{name}" + ("_quick" if quick else "") + "_partial"
    for precision in ("float64", "float32") if x32 else ("float64",):
        with jax.enable_x64(precision == "float64"):
            for solver in solvers:
                if isinstance(solver, dfx.Kvaerno5) and name == "cooccurrence":
                    rows.append({"solver": "Kvaerno5", "precision": precision,
                                 "skipped": "dense Jacobian of 65,536+ parameters"})
                    continue
                t = time.perf_counter()
                # Second-order solvers at rtol < 1e-8 need ~1e5+ steps and say nothing new.
                tols = [r for r in rtols if r >= 1e-8] if isinstance(solver, (dfx.Heun, dfx.Midpoint)) else rtols
                # float32 cannot meet a tolerance below its epsilon (1.2e-7): the controller shrinks
                # the step until max_steps, which shows nothing new (the floor shows at 1e-7).
                tols = [r for r in tols if r >= 1e-7] if precision == "float32" else tols
                # Kvaerno5 (Newton on a dense Jacobian every step) is for the stiff problems; on the
                # others its tight-tolerance rows take tens of minutes on a CPU and are never cheapest.
                if isinstance(solver, dfx.Kvaerno5) and not name.startswith("ls-"):
                    tols = [r for r in tols if r >= 1e-6]
                # In float32 near its epsilon Kvaerno5 takes ~10⁴ Newton steps per seed (8,848 on the
                # linear network at 1e-6): on teacher-student that ran past 15 minutes for nothing new.
                if isinstance(solver, dfx.Kvaerno5) and precision == "float32" and name == "teacher-student":
                    rows.append({"solver": "Kvaerno5", "precision": precision,
                                 "skipped": "float32 Kvaerno5: ~10^4 Newton steps per seed near float32's epsilon"})
                    continue
                table = work_precision(start_from, flow, solvers=[solver], tolerances=tols,
                                       step_sizes=[t1 / n for n in steps], t1=t1, seeds=seeds, save=save,
                                       reference=ref, max_steps=200_000, numruns=numruns)
                for row in table.rows:
                    row["precision"] = precision
                rows += table.rows
                print(f"[{name}] {precision} {type(solver).__name__}: {time.perf_counter() - t:.0f} s", flush=True)
                write_json(partial, {"rows": Table("partial", rows).to_json()["rows"]})  # kept if the run is cut short
    meta = {**table.meta, "reference": str(ref), "verified": ref.verified, "t1": t1, "seeds": seeds,
            "machine": machine(), "numruns": numruns, "precisions": ["float64", "float32"] if x32 else ["float64"]}
    table = Table(f"work-precision: {name}, t1 = {t1:g} ({table.meta['error']})", rows, meta)
    print(table, flush=True)
    best, euler_cost = cheapest(table)
    if best is not None:
        ratio = f"{euler_cost / best['gradient evaluations']:.0f}×" if euler_cost else "n/a"
        print(f"[{name}] cheapest to 1e-6: {best['solver']} rtol {best['rtol']:g}, {best['gradient evaluations']:.0f} "
              f"gradients; Euler (= GD) needs ~{euler_cost or float('nan'):.3g} → {ratio}", flush=True)
    table.meta["cheapest to 1e-6"] = None if best is None else {**best, "euler gradients": euler_cost}
    write_json(f"accuracy_{name}" + ("_quick" if quick else ""), table.to_json())
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-x32", action="store_true", help="float64 only")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--numruns", type=int, default=3, help="warm timed runs per row, after the compiling one")
    parser.add_argument("--figures", default=None)
    parser.add_argument("--headline", action="store_true", help="only print the headline table from saved results")
    args = parser.parse_args()
    names = [n.strip() for n in args.problems.split(",") if n.strip()]
    bad = [n for n in names if n not in PROBLEMS]
    if bad:
        parser.error(f"unknown problems {bad}; choose from {list(PROBLEMS)}")
    if args.headline:
        print(headline(names))
        for name in names:
            print()
            print(cost_table(name))
        return
    for name in names:
        table = run_problem(name, args.quick, not args.no_x32, args.seeds, args.numruns)
        if args.figures:
            from pathlib import Path

            import matplotlib

            matplotlib.use("Agg")
            Path(args.figures).mkdir(parents=True, exist_ok=True)
            gf.plot.work_precision(table).savefig(Path(args.figures) / f"accuracy_{name}.png", dpi=90)


if __name__ == "__main__":
    main()
