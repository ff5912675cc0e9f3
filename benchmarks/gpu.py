"""The accelerator path, measured in one prepared script (issue 18): per-step latency
of one small solve, throughput over 1 … 8,192 seeds in float32 and float64, memory,
kernels per step, and the same rows on the CPU of the same machine.

    python benchmarks/gpu.py            # on a GPU machine: < 5 minutes; writes results/gpu.json
    python benchmarks/gpu.py --quick    # small sizes, any machine (the test suite runs this)

Rows (every one timed alike: the whole `simulate` call by the wall clock, once cold
— with its compile — and `--repeats` times warm; min and median reported):

- `latency`: one seed of `LeastSquares(n=32, p=8)` (Heun, fixed step, 2,000 steps) and
  of the paper-scale `Cooccurrence` (Tsit5, PID rtol 1e-6, T = 30): µs per step =
  warm wall ÷ steps.
- `throughput`: `LeastSquares` under Tsit5 (rtol 1e-6, T = 50) for 1, 64, 1,024 and
  8,192 seeds (`batching="vmap"`, the accelerator's default), in float64 and float32:
  seed-steps per second, and the gain over the 1-seed row.
- `memory`: XLA's accounting of each throughput program (arguments + outputs +
  temporaries) and, on a GPU, the device's peak bytes in use.
- `kernels`: from the compiled program's HLO, the instructions in the solve's
  while-loop bodies that launch work (fusions, custom calls, copies, dots): on a GPU
  each is a kernel per step.

On a machine without a GPU the GPU rows say "not measured: no GPU" and the CPU rows
are measured.
"""

import argparse
import re
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import numpy as np  # noqa: E402
from _common import machine, measure, table, write_json  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow import _compile  # noqa: E402
from gradflow.problems import Cooccurrence, LeastSquares  # noqa: E402

NO_GPU = "not measured: no GPU"


def last_program():
    """The compiled solve of the last `simulate` call (the memo's newest entry)."""
    return list(_compile._MEMO.values())[-1].compiled


def kernels_per_step(compiled) -> int:
    """Work-launching instructions in the while-loop bodies of the compiled program:
    fusions, custom calls, copies, dots and convolutions (on a GPU, kernels per step of
    the loops they sit in; an upper bound across the nested loops of a solve)."""
    text = compiled.as_text()
    bodies = set(re.findall(r"while\([^)]*\).*?body=%?([\w.\-]+)", text))
    count = 0
    for name in bodies:
        match = re.search(rf"^%?{re.escape(name)} .*?\{{\n(.*?)\n\}}", text, flags=re.S | re.M)
        if match:
            count += len(re.findall(r"= [^=]*?\b(fusion|custom-call|copy|dot|convolution)\(", match.group(1)))
    return count


def memory_of(compiled) -> float | None:
    try:
        m = compiled.memory_analysis()
        return (m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes) / 2**20
    except Exception:  # not every backend reports it
        return None


def device_peak(device) -> float | None:
    stats = getattr(device, "memory_stats", lambda: None)()
    return None if not stats or "peak_bytes_in_use" not in stats else stats["peak_bytes_in_use"] / 2**20


def latency_rows(device, repeats, quick):
    rows = []
    cases = [
        ("least squares, Heun, fixed step", LeastSquares(n=32, p=8),
         dict(solver=dfx.Heun(), stepsize_controller=dfx.ConstantStepSize(), dt0=50.0 / (200 if quick else 2000),
              t1=50.0, max_steps=10_000)),
        ("co-occurrence (paper scale), Tsit5 rtol 1e-6",
         Cooccurrence(d=16, m=32) if quick else Cooccurrence(),
         dict(solver=dfx.Tsit5(), stepsize_controller=dfx.PIDController(rtol=1e-6, atol=1e-8), t1=3.0 if quick else 30.0)),
    ]
    for label, problem, kwargs in cases:
        run, timing = measure(lambda: gf.simulate(problem, seeds=1, devices=[device], save=gf.LinearGrid(n=2),
                                                  **kwargs), repeats)
        steps = float(run.stats["steps"][0])
        rows.append({"device": device.platform, "solve": label, "steps": steps, **timing,
                     "us_per_step": timing["wall_s"] / steps * 1e6, "solve_us_per_step":
                     float(run.stats["wall_time"]) / steps * 1e6, "kernels_per_step": kernels_per_step(last_program())})
    return rows


def throughput_rows(device, repeats, quick):
    rows = []
    seeds_list = (1, 4) if quick else (1, 64, 1024, 8192)
    for dtype in ("float64", "float32"):
        jax.config.update("jax_enable_x64", dtype == "float64")
        for seeds in seeds_list:
            run, timing = measure(lambda: gf.simulate(
                LeastSquares(n=32, p=8), t1=5.0 if quick else 50.0, seeds=seeds, devices=[device], batching="vmap",
                stepsize_controller=dfx.PIDController(rtol=1e-6 if dtype == "float64" else 1e-4,
                                                      atol=1e-8 if dtype == "float64" else 1e-6),
                save=gf.LinearGrid(n=2)), repeats)
            steps = float(np.mean(run.stats["steps"]))
            rows.append({"device": device.platform, "dtype": dtype, "seeds": seeds, **timing, "mean_steps": steps,
                         "seed_steps_per_s": seeds * steps / timing["wall_s"],
                         "xla_mib": memory_of(last_program()), "device_peak_mib": device_peak(device)})
    jax.config.update("jax_enable_x64", True)
    for dtype in ("float64", "float32"):
        one = next(r for r in rows if r["dtype"] == dtype and r["seeds"] == 1)
        for r in rows:
            if r["dtype"] == dtype:
                r["vs_one_seed"] = r["seed_steps_per_s"] / one["seed_steps_per_s"]
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: checks the script on any machine")
    ap.add_argument("--repeats", type=int, default=3, help="warm calls per row after the cold one")
    ap.add_argument("--out", default="gpu")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    start = time.perf_counter()
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    cpu = jax.devices("cpu")[0]
    results = {"machine": machine(), "quick": args.quick}
    for name, rows_fn in (("latency", latency_rows), ("throughput", throughput_rows)):
        rows = rows_fn(gpus[0], args.repeats, args.quick) if gpus else [{"device": "gpu", "note": NO_GPU}]
        rows += rows_fn(cpu, args.repeats, args.quick)
        results[name] = rows
        print(f"[{name}]")
        if name == "latency":
            cols = [("device", "s"), ("solve", "s"), ("steps", ".0f"), ("cold_s", ".2f"), ("wall_s", ".4f"),
                    ("us_per_step", ".1f"), ("solve_us_per_step", ".1f"), ("kernels_per_step", "d")]
        else:
            cols = [("device", "s"), ("dtype", "s"), ("seeds", "d"), ("cold_s", ".2f"), ("wall_s", ".4f"),
                    ("wall_median_s", ".4f"), ("seed_steps_per_s", ".3g"), ("vs_one_seed", ".1f"),
                    ("xla_mib", ".1f"), ("device_peak_mib", ".1f")]
        if not gpus:
            print(f"  gpu: {NO_GPU}")
        print(table([r for r in rows if "note" not in r], cols), flush=True)
    results["seconds"] = time.perf_counter() - start
    print(f"wrote {write_json(args.out, results)} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
