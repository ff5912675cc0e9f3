"""Helpers shared by the benchmark scripts: machine description, JSON output."""

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import jax

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
    }


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        return None


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    return path


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Rows as an aligned text table; columns are (key, format) pairs."""
    cells = [[k for k, _ in columns]] + [[format(r[k], f) if r.get(k) is not None else "-" for k, f in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)


def measure(fn, repeats: int):
    """How every row of a comparison is timed (gradflow, GD, scipy, torchdiffeq, the
    batching strategies, the GPU rows alike): the whole call, by the wall clock, once
    cold (the first call: with whatever compiling it does) and `repeats` times warm.
    Returns (the first call's result, {cold_s, wall_s = min of the warm calls,
    wall_median_s, wall_max_s, repeats})."""
    import numpy as np

    start = time.perf_counter()
    first = fn()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    return first, {"cold_s": cold, "wall_s": min(warm), "wall_median_s": float(np.median(warm)),
                   "wall_max_s": max(warm), "repeats": repeats}


def gradient_loop(problem, seed=0, n=200):
    """`n` gradient steps of `problem` (seed `seed`) in one jitted loop, so a gradient can
    be timed without dispatch: (the jitted loop of the trainable parameters, model, data,
    params, rest, grad)."""
    import equinox as eqx

    model, data = problem.init(jax.random.PRNGKey(seed))
    params, rest = eqx.partition(model, problem.trainable(model))
    grad = jax.grad(lambda p: problem.loss(eqx.combine(p, rest), data))

    @jax.jit
    def many(p):
        return jax.lax.fori_loop(0, n, lambda i, q: jax.tree_util.tree_map(lambda a, b: a - 1e-9 * b, q, grad(q)), p)

    return many, model, data, params, rest, grad


def free_field_solve(solver, steps, t1):
    """A jitted solve of `steps` fixed steps of `solver` on a state with a free vector
    field: its Runge–Kutta arithmetic alone. The field is an optimisation barrier, as a
    gradient is, so XLA cannot fuse the stages into one loop as it could a linear field."""
    import diffrax as dfx

    field = dfx.ODETerm(lambda t, y, a: jax.lax.optimization_barrier(jax.tree_util.tree_map(lambda x: -1e-3 * x, y)))

    @jax.jit
    def solve(p):
        return dfx.diffeqsolve(field, solver, 0.0, t1, t1 / steps, p, stepsize_controller=dfx.ConstantStepSize(),
                               max_steps=steps + 5, saveat=dfx.SaveAt(t1=True), adjoint=dfx.ForwardMode()).ys

    return solve
