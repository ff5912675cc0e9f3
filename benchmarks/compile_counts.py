"""How many XLA compiles a sweep pays: a 5-point learning-rate ladder in `train`, a
5-point t1 ladder and seed counts 3, 5, 8 in `simulate`, a 3-point init-scale ladder.

Counts the backend compiles JAX reports (`jax.monitoring`) that take over 0.2 s
(gradflow's solve and step programs, and the draw of the seeds; the small host-side
jits of array glue take milliseconds): "compiles" over the whole ladder, and per point.
A ladder that shares one compile shows 2 0 0 …: its first point compiles the draw of
the seeds and the solve (or the optimiser's steps). Each ladder runs in a fresh process state of its own (the memo is cleared
between ladders by using a problem size no other ladder uses).

Runs against older versions too: without `gf.Optimizer` the learning-rate ladder
uses `optax.sgd(lr)` objects, as users did.

    python benchmarks/compile_counts.py            # prints the table, writes results/compile_counts.json
"""

import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import jax.monitoring  # noqa: E402
import optax  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.problems import LeastSquares  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, table, write_json  # noqa: E402

_SLOW = 0.2  # s: a solve or step program; array glue compiles in milliseconds
_compiles: list[float] = []


def _listen(event, duration, **kwargs):
    if event == "/jax/compilation_cache/compile_time_saved_sec":
        return
    if "backend_compile" in event and duration > _SLOW:
        _compiles.append(duration)


jax.monitoring.register_event_duration_secs_listener(_listen)
SAVE = gf.LogGrid(n=5, t_min=1e-2)


def _ladder(name, calls):
    counts, seconds = [], []
    for call in calls:
        before = len(_compiles)
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
        counts.append(len(_compiles) - before)
    return {"ladder": name, "points": len(calls), "compiles": sum(counts), "per point": counts,
            "first s": seconds[0], "later s (median)": sorted(seconds[1:])[len(seconds[1:]) // 2] if len(seconds) > 1 else None}


def main():
    lrs = (0.01, 0.02, 0.04, 0.08, 0.16)
    make = (lambda lr: gf.Optimizer(optax.sgd, learning_rate=lr)) if hasattr(gf, "Optimizer") else optax.sgd
    rows = [
        _ladder("learning rate (train)", [lambda lr=lr: gf.train(LeastSquares(n=9, p=3), make(lr), steps=50, dt=lr,
                                                                  seeds=2, save=SAVE) for lr in lrs]),
        _ladder("t1 (simulate)", [lambda t1=t1: gf.simulate(LeastSquares(n=10, p=3), t1=t1, seeds=2, save=SAVE)
                                  for t1 in (1.0, 2.0, 4.0, 8.0, 16.0)]),
        _ladder("seeds 3, 5, 8 (simulate)", [lambda n=n: gf.simulate(LeastSquares(n=11, p=3), t1=1.0, seeds=n,
                                                                     save=SAVE) for n in (3, 5, 8)]),
    ]
    if hasattr(gf, "sweep") and "over" in gf.sweep.__code__.co_varnames:
        rows.append(_ladder("init scale (gf.sweep)", [lambda: gf.sweep(
            LeastSquares(n=12, p=3), over={"problem.init_scale": [0.1, 0.3, 1.0]}, t1=1.0, seeds=2, save=SAVE)]))
    else:  # before gf.sweep(over=...): one simulate per scale
        rows.append(_ladder("init scale (simulate each)", [
            lambda s=s: gf.simulate(LeastSquares(n=12, p=3, init_scale=s), t1=1.0, seeds=2, save=SAVE)
            for s in (0.1, 0.3, 1.0)]))
    for row in rows:
        row["per point"] = " ".join(map(str, row["per point"]))
    print(table(rows, [("ladder", "s"), ("points", "d"), ("compiles", "d"), ("per point", "s"), ("first s", ".2f"),
                       ("later s (median)", ".2f")]))
    path = write_json("compile_counts", {"machine": machine(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
