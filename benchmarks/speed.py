"""Speed and scale: gradflow against what a researcher would otherwise run, on
the same model and machine, in one run; then how cost grows with the work.

    python benchmarks/speed.py [--parts LIST] [--quick] [--full] [--seeds 4] [--cpu-devices 2]

Parts (default: all):
- `alternatives`: on the co-occurrence problem (paper scale) and the
  scan-and-snap population model, T = 300 (= GD lr 0.01 × 30,000 steps):
  gradflow `simulate` (Tsit5, Dopri5 at rtol 1e-4, 1e-6), the paper's own
  procedure (`train`, `optax.sgd(0.01)`, 30,000 steps), scipy `solve_ivp`
  (RK45, DOP853) with the jitted JAX gradient as right-hand side, and
  torchdiffeq's dopri5 on a PyTorch port (`benchmarks/torch_port.py`; the row
  is skipped when torch/torchdiffeq are absent). Wall time (compile excluded),
  gradient evaluations, relative error of the final parameters against a tight
  reference (Dopri8, rtol 1e-10).
- `overhead`: wall ÷ (gradient evaluations × one jitted gradient), with the
  time split into gradients, Runge–Kutta arithmetic and the rest.
- `compile`: two fresh `gradflow run` processes sharing a fresh persistent
  compilation cache: compile time cold and cached, time to the first step.
- `growth`: steps and wall time against the horizon T (flow and GD), the number
  of seeds and the model width m; fitted exponents.
- `batching`: 16 seeds of a small co-occurrence transformer on the CPU: a
  Python loop of one-seed solves against vmap, lax.map, chunks, and seeds
  spread over CPU devices; peak memory of 512 seeds with and without
  `batch_size`.

Writes benchmarks/results/speed.json (after every part, so nothing finished is
lost) and prints a table per part.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _early_args():
    # XLA_FLAGS must be set before jax is imported.
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="alternatives,overhead,compile,growth,batching")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every part")
    ap.add_argument("--full", action="store_true", help="also GD at T = 30,000 (3 million steps) and 512 seeds")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--cpu-devices", type=int, default=2, help="CPU devices for the batching part")
    ap.add_argument("--repeats", type=int, default=3,
                    help="warm calls per row after the cold one (every row of a comparison is timed alike)")
    ap.add_argument("--out", default="speed")
    return ap.parse_args()


ARGS = _early_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.cpu_devices > 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={ARGS.cpu_devices}").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.flatten_util  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import free_field_solve, gradient_loop, machine, table, write_json  # noqa: E402
from _common import measure as _measure  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.accuracy import param_error  # noqa: E402
from gradflow.accuracy._reference import flat_params  # noqa: E402
from gradflow.problems import Cooccurrence, ScanSnapPopulation, syn_small  # noqa: E402

LR, GD_STEPS = 0.01, 30_000
T1 = LR * GD_STEPS
RESULTS: dict = {}


def save():
    RESULTS["machine"] = machine()
    return write_json(ARGS.out, RESULTS)


def problems(quick):
    if quick:
        return {"cooccurrence": Cooccurrence(d=16, m=32), "scan-snap": ScanSnapPopulation(classes=syn_small())}
    return {"cooccurrence": Cooccurrence(), "scan-snap": ScanSnapPopulation(classes=syn_small())}


def gradient_time(problem, seed=0, n=200):
    """Seconds per gradient evaluation, measured inside one jitted loop (no dispatch)."""
    many, model, data, params, rest, grad = gradient_loop(problem, seed, n)
    jax.block_until_ready(many(params))
    best = min(_timed(lambda: jax.block_until_ready(many(params))) for _ in range(3))
    return best / n, model, data, params, rest, grad


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(fn, repeats=None):
    """`_common.measure` with --repeats warm calls by default."""
    return _measure(fn, ARGS.repeats if repeats is None else repeats)


def best_wall(fn, repeats=3):
    """(first result, min wall time over `repeats` calls after a warm-up call)."""
    run = fn()
    walls = [float(fn().stats["wall_time"]) for _ in range(repeats)]
    return run, min(walls)


def flow_kwargs(solver, rtol, seeds, t1=T1):
    return dict(t1=t1, seeds=seeds, solver=solver, save=gf.LinearGrid(n=2),
                stepsize_controller=dfx.PIDController(rtol=rtol, atol=rtol * 1e-2))


# ---------------------------------------------------------------------------- alternatives
def _all_floats(model):
    """One seed's model flattened as `gradflow.accuracy` does (every floating array)."""
    return np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(model)
                           if np.issubdtype(np.asarray(x).dtype, np.floating)])


def scipy_rows(problem, ref, seeds, rtols, t1):
    from scipy.integrate import solve_ivp

    per_seed = []  # the jitted JAX gradient as right-hand side, one per seed (compiled by the cold call)
    for seed in range(seeds):
        model, data = problem.init(jax.random.PRNGKey(seed))
        params, rest = eqx.partition(model, problem.trainable(model))
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        rhs = jax.jit(lambda y, rest=rest, data=data, unravel=unravel: -jax.flatten_util.ravel_pytree(
            jax.grad(lambda p: problem.loss(eqx.combine(p, rest), data))(unravel(y)))[0])
        per_seed.append((rhs, np.asarray(flat), unravel, rest))
    rows = []
    ref_flat = flat_params(ref)[:seeds]
    for method in ("RK45", "DOP853"):
        for rtol in rtols:
            def one_pass(method=method, rtol=rtol):
                return [solve_ivp(lambda t, y, rhs=rhs: np.asarray(rhs(y)), (0.0, t1), y0, method=method, rtol=rtol,
                                  atol=rtol * 1e-2) for rhs, y0, _, _ in per_seed]

            sols, timing = measure(one_pass)
            finals = [_all_floats(eqx.combine(unravel(jnp.asarray(sol.y[:, -1])), rest))
                      for sol, (_, _, unravel, rest) in zip(sols, per_seed)]
            nfev = sum(sol.nfev for sol in sols)
            err = np.max(np.linalg.norm(np.stack(finals) - ref_flat, axis=1) / np.linalg.norm(ref_flat, axis=1))
            rows.append({"method": f"scipy {method} rtol {rtol:g}", **timing, "grad_evals": nfev / seeds,
                         "param_error": float(err)})
            print(f"    {rows[-1]['method']}: warm {timing['wall_s']:.2f} s (cold {timing['cold_s']:.2f} s), "
                  f"{nfev / seeds:.0f} gradients/seed, error {err:.1e}", flush=True)
    return rows


def part_alternatives(quick, seeds):
    out = {}
    steps = 3_000 if quick else GD_STEPS
    t1 = steps * LR
    for name, problem in problems(quick).items():
        print(f"[alternatives] {name}: T = {t1:g}, {seeds} seeds; reference Dopri8 rtol 1e-10 ...", flush=True)
        ref = gf.simulate(problem, **{**flow_kwargs(dfx.Dopri8(), 1e-10, seeds, t1),
                                                           "max_steps": 1_000_000})
        rows = []
        gd, timing = measure(lambda: gf.train(problem, optax.sgd(LR), steps=steps, dt=LR, seeds=seeds,
                                              save=gf.LinearGrid(n=2)))
        rows.append({"method": f"GD sgd({LR}), {steps} steps", **timing, "grad_evals": float(steps),
                     "param_error": float(np.max(param_error(gd, ref))), "compile_s": float(gd.stats["compile_time"])})
        print(f"    GD: warm {timing['wall_s']:.2f} s (cold {timing['cold_s']:.2f} s)", flush=True)
        # The rows (Tsit5, Dopri5 at 1e-4, 1e-6), then low-order solvers at loose
        # tolerances: GD's own error is ~1e-4, and at that accuracy a cheaper step (2–3
        # stages instead of 7) is what a researcher would pick.
        configs = [(s, r) for s in (dfx.Tsit5(), dfx.Dopri5()) for r in (1e-4, 1e-6)]
        for solver, rtol in configs + [(dfx.Midpoint(), 1e-3), (dfx.Bosh3(), 1e-3), (dfx.Bosh3(), 1e-4)]:
            run, timing = measure(lambda: gf.simulate(problem, **flow_kwargs(solver, rtol, seeds, t1)))
            rows.append({"method": f"gradflow {type(solver).__name__} rtol {rtol:g}", **timing,
                         "grad_evals": float(np.mean(run.stats["gradient_evaluations"])),
                         "param_error": float(np.max(param_error(run, ref))),
                         "compile_s": float(run.stats["compile_time"])})
            print(f"    {rows[-1]['method']}: warm {timing['wall_s']:.3f} s (cold {timing['cold_s']:.2f} s)", flush=True)
        if not quick or name == "cooccurrence":
            rows += scipy_rows(problem, ref, seeds if not quick else 1, (1e-4, 1e-6), t1)
        rows += torch_rows(name, problem, ref, seeds, t1)
        gd_row = rows[0]
        for r in rows[1:]:
            if r.get("wall_s"):
                r["speedup_vs_gd"] = gd_row["wall_s"] / r["wall_s"]
                r["cold_speedup_vs_gd"] = gd_row["cold_s"] / r["cold_s"]
                r["as_accurate_as_gd"] = r["param_error"] <= gd_row["param_error"]
        out[name] = rows
        print(f"  every row: the whole call, cold (first call) and warm (min / median of {ARGS.repeats} more)")
        print(table(rows, [("method", "s"), ("cold_s", ".3f"), ("wall_s", ".3f"), ("wall_median_s", ".3f"),
                           ("grad_evals", ".0f"), ("param_error", ".1e"), ("speedup_vs_gd", ".0f"),
                           ("cold_speedup_vs_gd", ".1f")]), flush=True)
        best = max((r for r in rows if r["method"].startswith("gradflow") and r["as_accurate_as_gd"]),
                   key=lambda r: r["speedup_vs_gd"], default=None)
        if best:
            print(f"  fastest gradflow row at GD's error or better: {best['method']}, {best['speedup_vs_gd']:.0f}× "
                  f"less wall time than GD (target ≥ 100×: {'met' if best['speedup_vs_gd'] >= 100 else 'NOT met'})")
        for r in rows:
            if r["method"].startswith("scipy") or r["method"].startswith("torchdiffeq"):
                twin = next((g for g in rows if g["method"] == "gradflow Dopri5 rtol " + r["method"].split()[-1]), None)
                if twin and r.get("wall_s"):
                    r["gradflow_dopri5_speedup"] = r["wall_s"] / twin["wall_s"]
                    r["gradflow_dopri5_cold_speedup"] = r["cold_s"] / twin["cold_s"]
                    print(f"  gradflow Dopri5 vs {r['method']}: {r['gradflow_dopri5_speedup']:.1f}× warm, "
                          f"{r['gradflow_dopri5_cold_speedup']:.1f}× cold")
    return out


def torch_rows(name, problem, ref, seeds, t1):
    try:
        import torch  # noqa: F401
        import torchdiffeq  # noqa: F401
    except ImportError:
        msg = "skipped: torch and torchdiffeq are not installed (pip install -e '.[bench]')"
        print(f"    torchdiffeq dopri5: {msg}", flush=True)
        return [{"method": "torchdiffeq dopri5", "skipped": msg}]
    from torch_port import torchdiffeq_rows

    return torchdiffeq_rows(name, problem, ref, seeds, t1, (1e-4, 1e-6), measure)


# ---------------------------------------------------------------------------- overhead
def part_overhead(quick, seeds):
    out = {}
    for name, problem in problems(quick).items():
        t_grad, model, data, params, rest, grad = gradient_time(problem)
        solver = dfx.Tsit5()
        rows = []
        for label, save in (("final state only", gf.LinearGrid(n=2)), ("31 save times", gf.LinearGrid(n=31))):
            kwargs = {**flow_kwargs(solver, 1e-6, 1), "save": save}
            run, wall = best_wall(lambda: gf.simulate(problem, **kwargs))
            evals = float(run.stats["gradient_evaluations"][0])
            steps = float(run.stats["steps"][0])
            rows.append({"saving": label, "wall_s": wall, "grad_evals": evals, "steps": steps,
                         "grad_s": t_grad, "overhead": wall / (evals * t_grad)})
        # The Runge–Kutta arithmetic alone: the step simulate takes (gf.FusedERK) on the same
        # state with a free vector field.
        n = int(rows[0]["steps"])
        arithmetic = free_field_solve(gf.FusedERK(solver), n, T1)
        jax.block_until_ready(arithmetic(params))
        rk = min(_timed(lambda: jax.block_until_ready(arithmetic(params))) for _ in range(3)) / n

        # One read-and-write pass over the state (memory and vector units at work):
        # the unit in which to read the Runge–Kutta arithmetic.
        @jax.jit
        def passes(p):
            return jax.lax.fori_loop(0, 200, lambda i, q: jax.tree_util.tree_map(lambda x: 0.999 * x + 1e-9, q), p)

        jax.block_until_ready(passes(params))
        one_pass = min(_timed(lambda: jax.block_until_ready(passes(params))) for _ in range(3)) / 200
        for r in rows:
            r["rk_arithmetic_per_step_s"] = rk
            r["state_pass_s"] = one_pass
            r["share_gradients"] = r["grad_evals"] * t_grad / r["wall_s"]
            r["share_rk_arithmetic"] = r["steps"] * rk / r["wall_s"]
            r["share_rest"] = 1 - r["share_gradients"] - r["share_rk_arithmetic"]
        n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
        print(f"[overhead] {name}: {n_params} parameters, one gradient {t_grad * 1e3:.3f} ms, Tsit5 arithmetic "
              f"{rk * 1e3:.3f} ms per step (= {rk / t_grad:.1f} gradients = {rk / one_pass:.0f} passes over the "
              f"state at {one_pass * 1e6:.1f} µs each; {rk / n_params * 1e9:.1f} ns per parameter per step)")
        print(table(rows, [("saving", "s"), ("wall_s", ".3f"), ("steps", ".0f"), ("grad_evals", ".0f"),
                           ("overhead", ".2f"), ("share_gradients", ".2f"), ("share_rk_arithmetic", ".2f"),
                           ("share_rest", ".2f")]), flush=True)
        out[name] = {"parameters": n_params, "rows": rows, "target": 1.2}
    return out


# ---------------------------------------------------------------------------- compile
def part_compile(quick, seeds):
    cache = Path(tempfile.mkdtemp(prefix="gradflow-cache-"))
    work = Path(tempfile.mkdtemp(prefix="gradflow-runs-"))
    gradflow = [sys.executable, "-m", "gradflow.cli"]
    rows = []
    for label, extra in (("cold", []), ("cached", []), ("cached, progress lines", ["--progress"]),
                         ("--no-checkpoint, cold", ["--no-checkpoint"]), ("--no-checkpoint, cached", ["--no-checkpoint"]),
                         ("--no-cache", ["--no-cache"])):
        args = [*gradflow, "run", "--seeds", "2", "--out", str(work / label.replace(" ", "_")), "--force",
                "--cache-dir", str(cache)]
        args += [] if "--progress" in extra else ["--no-progress"]
        args += [e for e in extra if e != "--progress"]
        env = {**os.environ, "XLA_FLAGS": ""}
        start, launched = time.perf_counter(), time.time()
        proc = subprocess.run(args, capture_output=True, text=True, env=env)
        total = time.perf_counter() - start
        if proc.returncode != 0:
            rows.append({"run": label, "error": proc.stderr[-500:]})
            continue
        run = gf.load(work / label.replace(" ", "_"))
        compile_s = float(run.stats["compile_time"])
        first_step = float(run.stats["started_at"]) - launched  # launch → the compiled solve starts
        rows.append({"run": label, "process_s": total, "compile_s": compile_s, "first_step_s": first_step})
        print(f"[compile] {label}: process {total:.1f} s, compile {compile_s:.2f} s"
              + (f", integrating {first_step:.2f} s after start" if first_step else ""), flush=True)
    return {"rows": rows, "target_first_step_s": 3.0}


# ---------------------------------------------------------------------------- growth
def fit_exponent(x, y):
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(x, y, 1)[0])


def part_growth(quick, full, seeds):
    out = {}
    problem = Cooccurrence(d=16, m=32) if quick else Cooccurrence()
    horizons = [300.0, 3000.0, 30000.0]
    rows = []
    for T in horizons:
        run, wall = best_wall(lambda: gf.simulate(problem, **{**flow_kwargs(dfx.Tsit5(), 1e-6, 1, T),
                                                              "max_steps": 1_000_000}), repeats=1)
        row = {"T": T, "flow_steps": float(run.stats["steps"][0]), "flow_wall_s": wall}
        gd_steps = int(round(T / LR))
        if gd_steps <= 300_000 or full:
            gd = gf.train(problem, optax.sgd(LR), steps=gd_steps, dt=LR, seeds=1, save=gf.LinearGrid(n=2),
                          progress=gd_steps > 100_000)
            row.update(gd_steps=float(gd_steps), gd_wall_s=float(gd.stats["wall_time"]))
        rows.append(row)
        print(f"[growth] T = {T:g}: flow {row['flow_steps']:.0f} steps {wall:.2f} s; GD "
              f"{row.get('gd_steps', 'not measured (--full)')} steps {row.get('gd_wall_s', float('nan')):.1f} s",
              flush=True)
    out["horizon"] = {"rows": rows, "flow_steps_exponent": fit_exponent(horizons, [r["flow_steps"] for r in rows]),
                      "flow_wall_exponent": fit_exponent(horizons, [r["flow_wall_s"] for r in rows])}
    gd_rows = [r for r in rows if "gd_wall_s" in r]
    if len(gd_rows) >= 2:
        out["horizon"]["gd_wall_exponent"] = fit_exponent([r["T"] for r in gd_rows], [r["gd_wall_s"] for r in gd_rows])

    counts = [1, 8, 64] + ([512] if full else [])
    rows = []
    for n in counts:
        run, wall = best_wall(lambda: gf.simulate(problem, **flow_kwargs(dfx.Tsit5(), 1e-6, n)), repeats=1)
        rows.append({"seeds": n, "wall_s": wall, "per_seed_s": wall / n})
        print(f"[growth] {n} seeds: {wall:.2f} s ({wall / n * 1e3:.1f} ms per seed)", flush=True)
    out["seeds"] = {"rows": rows, "wall_exponent": fit_exponent(counts, [r["wall_s"] for r in rows])}

    widths = [32, 64, 128, 256] if quick else [32, 64, 128, 256, 512]
    rows = []
    for m in widths:
        p = Cooccurrence(d=16 if quick else 64, m=m)
        t_grad = gradient_time(p)[0]
        run, wall = best_wall(lambda: gf.simulate(p, **flow_kwargs(dfx.Tsit5(), 1e-6, 1)), repeats=1)
        rows.append({"m": m, "steps": float(run.stats["steps"][0]), "wall_s": wall, "grad_s": t_grad})
        print(f"[growth] m = {m}: {rows[-1]['steps']:.0f} steps, {wall:.2f} s, gradient {t_grad * 1e3:.3f} ms",
              flush=True)
    out["width"] = {"rows": rows, "wall_exponent": fit_exponent(widths, [r["wall_s"] for r in rows]),
                    "steps_exponent": fit_exponent(widths, [r["steps"] for r in rows]),
                    "grad_exponent": fit_exponent(widths, [r["grad_s"] for r in rows])}
    for key in ("horizon", "seeds", "width"):
        print(f"[growth] exponents ({key}): " + ", ".join(f"{k} {v:.2f}" for k, v in out[key].items() if k != "rows"))
    return out


# ---------------------------------------------------------------------------- batching
def part_batching(quick, seeds):
    problem = Cooccurrence(d=16, m=32)
    n = 16
    kwargs = flow_kwargs(dfx.Tsit5(), 1e-6, n)
    rows = []

    def loop():
        return [gf.simulate(problem, **{**kwargs, "seeds": [k]}) for k in range(n)]

    rows.append({"strategy": "Python loop of 1-seed solves", **measure(loop, repeats=2)[1]})
    configs = [("vmap (lockstep)", dict(batching="vmap")), ("lax.map (default on CPU)", dict(batching="map")),
               ("lax.map, chunks of 4 vmapped", dict(batching="map", batch_size=4))]
    n_dev = len(jax.devices())
    if n_dev > 1:
        configs.append((f"lax.map on {n_dev} CPU devices", dict(batching="map", devices=n_dev)))
    for label, extra in configs:
        rows.append({"strategy": label, **measure(lambda: gf.simulate(problem, **kwargs, **extra), repeats=2)[1]})
    loop_wall = rows[0]["wall_s"]
    for r in rows:
        r["per_seed_ms"] = r["wall_s"] / n * 1e3
        r["vs_loop"] = loop_wall / r["wall_s"]
    print(f"[batching] {n} seeds, Cooccurrence(d=16, m=32), Tsit5 rtol 1e-6, T = {T1:g}")
    print(table(rows, [("strategy", "s"), ("cold_s", ".2f"), ("wall_s", ".3f"), ("wall_median_s", ".3f"),
                       ("per_seed_ms", ".2f"), ("vs_loop", ".2f")]), flush=True)
    memory = []
    for batch_size in (None, 64):
        # Peak RSS of the whole process (dominated by XLA's compiler) and XLA's own
        # accounting of the solve's buffers (arguments, outputs, temporaries).
        code = ("import resource, jax; jax.config.update('jax_enable_x64', True)\n"
                "import diffrax as dfx, gradflow as gf\nfrom gradflow.problems import Cooccurrence\n"
                "from gradflow import _compile\n"
                f"gf.simulate(Cooccurrence(d=16, m=32), t1={T1}, seeds=512, batching='vmap' if {batch_size!r} is None "
                f"else 'map', batch_size={batch_size!r}, save=gf.LinearGrid(n=31))\n"
                "m = list(_compile._MEMO.values())[-1].compiled.memory_analysis()  # the solve: compiled last\n"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, m.temp_size_in_bytes + "
                "m.argument_size_in_bytes + m.output_size_in_bytes)")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "XLA_FLAGS": ""})
        if proc.returncode == 0:
            rss, xla = proc.stdout.split()[-2:]
            peak, buffers = int(rss) / 1024, int(xla) / 2**20
        else:
            peak = buffers = None
        memory.append({"seeds": 512, "batch_size": batch_size, "peak_rss_mib": peak, "xla_buffers_mib": buffers})
        print(f"[batching] 512 seeds, {'vmap all' if batch_size is None else f'map, batch_size {batch_size}'}: "
              f"peak RSS {peak if peak is None else round(peak)} MiB, XLA buffers "
              f"{buffers if buffers is None else round(buffers, 1)} MiB", flush=True)
    return {"rows": rows, "memory": memory}


def main():
    parts = [p.strip() for p in ARGS.parts.split(",") if p.strip()]
    known = {"alternatives", "overhead", "compile", "growth", "batching"}
    if set(parts) - known:
        sys.exit(f"speed.py: unknown parts {sorted(set(parts) - known)}; choose from {sorted(known)}")
    if ARGS.seeds < 1:
        sys.exit("speed.py: --seeds must be >= 1")
    path = Path(__file__).parent / "results" / f"{ARGS.out}.json"
    if path.exists():
        RESULTS.update(json.loads(path.read_text()))  # keep parts measured by an earlier call
    for part in parts:
        start = time.perf_counter()
        if part == "alternatives":
            RESULTS[part] = part_alternatives(ARGS.quick, ARGS.seeds)
        elif part == "overhead":
            RESULTS[part] = part_overhead(ARGS.quick, ARGS.seeds)
        elif part == "compile":
            RESULTS[part] = part_compile(ARGS.quick, ARGS.seeds)
        elif part == "growth":
            RESULTS[part] = part_growth(ARGS.quick, ARGS.full, ARGS.seeds)
        elif part == "batching":
            RESULTS[part] = part_batching(ARGS.quick, ARGS.seeds)
        RESULTS.setdefault("seconds", {})[part] = time.perf_counter() - start
        print(f"wrote {save()} ({part}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
