"""Tian et al.'s WikiText experiment at a chosen scale: held-out attention entropy
after SGD at learning rates 1, 2, 5 (5 seeds), optionally with the gradient-flow
counterpart at equal flow time, and what it costs.

    python benchmarks/text_entropy.py --scale reduced --flow     # the reduced configuration + flow
    python benchmarks/text_entropy.py --scale paper --steps 1000  # the paper-scale configuration (GPU)
    python benchmarks/text_entropy.py --scale paper --steps 3 --time-only   # cost of a few steps (CPU)

Writes benchmarks/results/text_entropy_{scale}.json.
"""

import argparse
import time

import jax

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--scale", choices=("reduced", "paper"), default="reduced")
parser.add_argument("--steps", type=int, default=500)
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--flow", action="store_true", help="also integrate the gradient flow to t = steps × min(lr)")
parser.add_argument("--x32", action="store_true", help="float32 (default float64)")
parser.add_argument("--time-only", action="store_true", help="only time a few SGD steps of one seed")
args = parser.parse_args()
jax.config.update("jax_enable_x64", not args.x32)

import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import machine, table, write_json  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.problems import TextNextToken, paper_scale_text  # noqa: E402
from gradflow.problems.scan_snap.experiments import text_entropy_vs_lr  # noqa: E402

problem = paper_scale_text() if args.scale == "paper" else TextNextToken()
print(f"{args.scale}: vocab {problem.vocab}, context {problem.context}, d {problem.d}, "
      f"{problem.n_train} training windows, {jax.default_backend()}, {'float32' if args.x32 else 'float64'}", flush=True)
if args.time_only:
    run = gf.train(problem, optax.sgd(1.0), steps=args.steps, dt=1.0, seeds=1, save=gf.LinearGrid(n=2))
    per_step = float(run.stats["wall_time"]) / args.steps
    print(f"{args.steps} SGD steps, 1 seed: {float(run.stats['wall_time']):.2f} s ({per_step:.3f} s/step), "
          f"compile {float(run.stats['compile_time']):.1f} s", flush=True)
    write_json(f"text_entropy_{args.scale}_timing", {"machine": machine(), "steps": args.steps, "per_step_s": per_step,
                                                      "compile_s": float(run.stats["compile_time"])})
    raise SystemExit(0)
start = time.perf_counter()
rows, runs, fig = text_entropy_vs_lr(problem, steps=args.steps, seeds=args.seeds, flow=args.flow)
total = time.perf_counter() - start
for row, run in zip(rows, runs):
    row["sgd wall s"] = float(run.stats["wall_time"])
    row["compile s"] = float(run.stats["compile_time"])
if args.flow:
    for row in rows:
        row["flow wall s"] = float(runs[-1].stats["wall_time"])
cols = [("lr", "g"), ("entropy start", ".3f"), ("entropy end mean", ".3f"), ("entropy end std", ".3f"),
        ("heldout loss end", ".3f"), ("sgd wall s", ".1f"), ("compile s", ".1f")]
if args.flow:
    cols += [("flow time", "g"), ("SGD entropy at flow time mean", ".3f"), ("SGD entropy at flow time std", ".3f"),
             ("flow entropy mean", ".3f"), ("flow entropy std", ".3f"), ("flow steps", ".0f"), ("flow wall s", ".1f")]
print(table(rows, cols))
print(f"total {total:.1f} s")
path = write_json(f"text_entropy_{args.scale}", {"machine": machine(), "args": vars(args), "rows": rows,
                                                 "total_s": total})
print("wrote", path)
