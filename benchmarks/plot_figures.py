"""Two figures of the teacher–student network, drawn by a given `gradflow.plot` module.

    python benchmarks/plot_figures.py --plot after=gradflow/plot.py [--plot before=OLD/gradflow/plot.py] \
        [--out benchmarks/figures] [--quick]

Simulates `gradflow.problems.TeacherStudent` (K = M = 4, N = 100, 8 seeds) once
with the gradient flow and with GD (`optax.sgd(1.0)`, t = step × 1.0), then, for
each `NAME=PATH`, loads the plot module at PATH and writes
`plot-NAME-overlaps.png` (the student–teacher overlaps R of seed 0 over time)
and `plot-NAME-loss.png` (flow against GD, median and 10–90% over seeds). Every
module gets the same calls with default options, so the figures show what each
draws by default; the runs come from the current package, so only the drawing
differs.
"""

import argparse
import importlib.util
from pathlib import Path

import jax
import optax

import gradflow as gf


def load_plot_module(name, path):
    spec = importlib.util.spec_from_file_location(f"_plot_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", action="append", required=True, metavar="NAME=PATH",
                        help="a plot module to draw with (repeatable)")
    parser.add_argument("--out", default="benchmarks/figures")
    parser.add_argument("--quick", action="store_true", help="2 seeds, shorter horizon (for a smoke test)")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modules = {}
    for item in args.plot:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"--plot {item!r}: expected NAME=PATH of a plot module file")
        modules[name] = load_plot_module(name, path)

    seeds, t1, lr = (2, 100.0, 2.0) if args.quick else (8, 500.0, 1.0)
    problem = gf.problems.TeacherStudent(K=4, M=4, N=100)
    flow = gf.simulate(problem, t1=t1, seeds=seeds, save=gf.LogGrid(n=120, t_min=0.1), progress=False)
    gd = gf.train(problem, optax.sgd(lr), steps=round(t1 / lr), dt=lr, seeds=seeds,
                  save=gf.LogGrid(n=120, t_min=lr))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, plot in modules.items():
        # One seed: a median over seeds would mix the seeds' different pairings of units.
        ax = plot.observable(flow.select([0]), "R")
        ax.set_title("teacher–student overlaps R of seed 0 (K = M = 4, N = 100), gradient flow")
        ax.figure.savefig(out / f"plot-{name}-overlaps.png", dpi=110)
        plt.close(ax.figure)
        ax = plot.compare([flow, gd], "loss", labels=["gradient flow", f"GD, lr {lr:g}"], logy=True)
        ax.set_title(f"flow versus GD ({seeds} seeds, median and 10–90%)")
        ax.figure.savefig(out / f"plot-{name}-loss.png", dpi=110)
        plt.close(ax.figure)
        print(out / f"plot-{name}-overlaps.png", out / f"plot-{name}-loss.png")


if __name__ == "__main__":
    main()
