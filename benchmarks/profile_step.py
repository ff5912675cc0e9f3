"""Where one seed's solve spends its time: the engine overhead taken apart layer by layer.

    python benchmarks/profile_step.py [--quick] [--repeats 5] [--out profile_step]

For the co-occurrence problem (paper scale) and the scan-and-snap population
model, one seed, Tsit5 at rtol 1e-6, T = 300, every row the same solve (same
steps), built up one layer at a time, each row compiled once and timed warm
(minimum and median of `--repeats` calls, `_common.measure`):

1. the gradients alone (gradient evaluations × one gradient inside a jitted loop);
2. the Runge–Kutta arithmetic alone (the same solver and step count on the same
   state with a free vector field), diffrax's step and `gradflow.FusedERK`'s;
3. a bare `diffrax.diffeqsolve` of the gradient flow, diffrax's step, final state only;
4. the same with the fused step;
5. + gradflow's guard around the controller;
6. + observables saved at 31 times;
7. `gradflow.simulate` itself, final state only and 31 save times (its `wall_time`).

Overhead = wall ÷ (gradient evaluations × one gradient). The rows run on
whatever `gradflow` is importable, so the same script profiles an older checkout
(`PYTHONPATH=<checkout> python benchmarks/profile_step.py`); rows that need
`FusedERK` are skipped where it does not exist. Writes results/<out>.json.
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.tree_util as jtu  # noqa: E402
from _common import free_field_solve, gradient_loop, machine, measure, table, write_json  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow._solve import Guard  # noqa: E402
from gradflow.problems import Cooccurrence, ScanSnapPopulation, syn_small  # noqa: E402

try:
    from gradflow import FusedERK
except ImportError:  # an older checkout
    FusedERK = None

T1, RTOL = 300.0, 1e-6


def _min_wall(fn, repeats):
    """(min, median) warm wall time of `fn()`: build the jitted function outside `fn`."""
    jax.block_until_ready(fn())
    _, m = measure(lambda: jax.block_until_ready(fn()), repeats)
    return m["wall_s"], m["wall_median_s"]


def profile(name, problem, repeats):
    many, model, data, params, rest, grad = gradient_loop(problem, n=200)
    n_params = sum(x.size for x in jtu.tree_leaves(params))
    t_grad = _min_wall(lambda: many(params), repeats)[0] / 200

    def bare(solver, guard=False, saves=0):
        controller = dfx.PIDController(rtol=RTOL, atol=RTOL * 1e-2)
        if guard:
            controller = Guard(controller)
        if saves:
            ts = jnp.linspace(0.0, T1, saves)
            saveat = dfx.SaveAt(subs=[dfx.SubSaveAt(ts=ts, fn=lambda t, y, a: problem.observables(
                eqx.combine(y, rest), data)), dfx.SubSaveAt(t1=True)])
        else:
            saveat = dfx.SaveAt(t1=True)

        @jax.jit
        def solve(p):
            sol = dfx.diffeqsolve(dfx.ODETerm(lambda t, y, a: jtu.tree_map(jnp.negative, grad(y))), solver, 0.0, T1,
                                  None, p, stepsize_controller=controller, saveat=saveat, max_steps=100_000,
                                  adjoint=dfx.ForwardMode())
            return sol.ys, sol.stats["num_steps"]

        return solve

    def _call(fn, p):
        return lambda: fn(p)

    rows = []
    steps = int(bare(dfx.Tsit5())(params)[1])
    evals = 1.0 + 6 * steps  # Tsit5: 7 stages, first same as last

    def add(label, wall, median):
        rows.append({"row": label, "wall_s": wall, "median_s": median, "per_step_us": wall / steps * 1e6,
                     "overhead": wall / (evals * t_grad)})

    add("1. gradients alone", evals * t_grad, evals * t_grad)
    add("2a. RK arithmetic, diffrax step", *_min_wall(_call(free_field_solve(dfx.Tsit5(), steps, T1), params), repeats))
    if FusedERK is not None:
        add("2b. RK arithmetic, fused step", *_min_wall(_call(free_field_solve(FusedERK(dfx.Tsit5()), steps, T1), params), repeats))
    add("3. bare diffeqsolve, diffrax step", *_min_wall(_call(bare(dfx.Tsit5()), params), repeats))
    if FusedERK is not None:
        add("4. bare diffeqsolve, fused step", *_min_wall(_call(bare(FusedERK(dfx.Tsit5())), params), repeats))
        add("5. + guard", *_min_wall(_call(bare(FusedERK(dfx.Tsit5()), guard=True), params), repeats))
        add("6. + observables at 31 times", *_min_wall(_call(bare(FusedERK(dfx.Tsit5()), guard=True, saves=31),
                                                             params), repeats))
    for label, save in (("7a. gradflow.simulate, final state", gf.LinearGrid(n=2)),
                        ("7b. gradflow.simulate, 31 save times", gf.LinearGrid(n=31))):
        kwargs = dict(t1=T1, seeds=1, solver=dfx.Tsit5(), save=save,
                      stepsize_controller=dfx.PIDController(rtol=RTOL, atol=RTOL * 1e-2))
        run = gf.simulate(problem, **kwargs)
        assert int(run.stats["steps"][0]) == steps, (int(run.stats["steps"][0]), steps)
        walls = sorted(float(gf.simulate(problem, **kwargs).stats["wall_time"]) for _ in range(repeats))
        add(label, walls[0], walls[len(walls) // 2])
    print(f"[profile] {name}: {n_params} parameters, {steps} steps, {evals:.0f} gradients, one gradient "
          f"{t_grad * 1e6:.1f} µs", flush=True)
    print(table(rows, [("row", "s"), ("wall_s", ".4f"), ("median_s", ".4f"), ("per_step_us", ".1f"),
                       ("overhead", ".2f")]), flush=True)
    return {"parameters": n_params, "steps": steps, "gradient_evaluations": evals, "gradient_s": t_grad,
            "rows": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small co-occurrence model (a smoke run)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="profile_step")
    args = ap.parse_args()
    problems = {"cooccurrence": Cooccurrence(d=16, m=32) if args.quick else Cooccurrence(),
                "scan-snap": ScanSnapPopulation(classes=syn_small())}
    start = time.perf_counter()
    out = {name: profile(name, p, args.repeats) for name, p in problems.items()}
    out["machine"] = machine()
    out["seconds"] = time.perf_counter() - start
    print(f"wrote {write_json(args.out, out)} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
