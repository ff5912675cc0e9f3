"""Li et al. (2025) on gradflow: every experiment of notebooks/03_signgd.ipynb at
full settings in one command — the four stages (SignGD and the sign flow), the
sign flow as SignGD's small-step limit and its cost, SignGD vs Adam vs GD, test
loss vs SNR, Adam's convergence to AdamFlow, noisy MNIST.

    python benchmarks/signgd_experiments.py [--quick] [--part all|flows|optimizers|s11|adam] [--figures DIR]

Prints each table and writes benchmarks/results/signgd_experiments[_PART].json.
The two parts (flows: stages, sign limit, Adam order; optimizers: SignGD/Adam/GD,
SNR, MNIST) can run as two processes at once. Two more parts answer issue 17 and
are not in "all": s11 (s_11 at the end of stage IV under each modelling choice,
`s11_candidates`) and adam (Adam's distance to SignGD against β1, β2, ε,
`adam_vs_signgd`).
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import machine, write_json  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.problems import NoisyMNIST, SignalNoise  # noqa: E402
from gradflow.problems.signal_noise import default_mnist  # noqa: E402
from gradflow.problems.signal_noise.experiments import (  # noqa: E402
    four_stages,
    optimizer_comparison,
    adam_vs_signgd,
    param_distance,
    s11_candidates,
    sign_limit,
    snr_sweep,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true")
parser.add_argument("--figures", default=None, help="folder for the figures (PNG)")
parser.add_argument("--part", choices=("all", "flows", "optimizers", "s11", "adam"), default="all")
args = parser.parse_args()
q = args.quick
out = {"machine": machine(), "quick": q}
figures = {}


def show(name, rows):
    print(f"\n== {name}", flush=True)
    for row in rows:
        print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    out[name] = rows


start = time.perf_counter()
problem = SignalNoise(mu_norm=40**0.5)  # n 20, d 2000, s 40, σ_p 1, SNR 1, m_k = m_v = 10
small = SignalNoise(n=6, d=100, s=5, mu_norm=5**0.5, m_k=2, m_v=2, n_test=100)
flows, optimizers = args.part in ("all", "flows"), args.part in ("all", "optimizers")


def part_flows():
    s_gd, s_flow, (gd, flow), figures["four_stages"] = four_stages(problem, steps=300 if q else 3000, seeds=2 if q else 8)
    print("== four stages, SignGD η = 1e-4\n" + s_gd.table())
    print("== four stages, sign flow ε = 1e-6\n" + s_flow.table())
    print(f"sign flow: steps per seed {flow.stats['steps'].tolist()}, wall {float(flow.stats['wall_time']):.1f} s; "
          f"SignGD wall {float(gd.stats['wall_time']):.1f} s", flush=True)
    out["stages"] = {"SignGD": s_gd.times.tolist(), "sign flow": s_flow.times.tolist(), "criteria": s_gd.criteria,
                     "flow steps": flow.stats["steps"].tolist()}

    rows, _, figures["sign_limit"] = sign_limit(small, t1=0.05, seeds=2 if q else 4,
                                                eps=(1e-3, 1e-4) if q else (1e-3, 1e-4, 1e-5, 1e-6))
    show("sign limit (small instance, t1 = 0.05)", rows)
    rows, _, _ = sign_limit(problem, t1=0.05, seeds=2 if q else 4, solvers=(dfx.Tsit5(),),
                            eps=(1e-3, 1e-4) if q else (1e-3, 1e-4, 1e-5, 1e-6, 1e-7))
    show("sign limit (default instance, t1 = 0.05)", rows)


def part_optimizers():
    rows, _, figures["optimizers"] = optimizer_comparison(problem, steps=300 if q else 3000, seeds=2 if q else 8)
    show("SignGD vs Adam vs GD (synthetic, SNR 1)", rows)
    rows, figures["snr"] = snr_sweep(problem, snrs=(0.5, 1.0) if q else (0.25, 0.5, 1.0, 2.0), steps=300 if q else 3000,
                                     seeds=2 if q else 8)
    show("test loss vs SNR", rows)
    if default_mnist() is None:
        print("MNIST not found: skipped")
    else:
        mnist = NoisyMNIST(n=40, n_test=200) if q else NoisyMNIST()
        opts = {"SignGD": lambda: (gf.sign_gd(1e-3), 1e-3), "Adam": lambda: (gf.adam_for_flow(1e-3, a=100.0, b=1.0), 1e-3),
                "GD": lambda: (optax.sgd(1.0), 1.0)}
        for sigma in (0.5, 1.0):
            rows, _, _ = optimizer_comparison(
                NoisyMNIST(**{**{k: getattr(mnist, k) for k in ("n", "n_test")}, "sigma_p": sigma}), optimizers=opts,
                steps=100 if q else 2000, seeds=2 if q else 5)
            show(f"noisy MNIST 3 vs 8, σ_p = {sigma:g}", rows)


def part_adam():
    t1, a, b = 0.02, 100.0, 1.0
    ref = gf.simulate(small, gf.AdamFlow(a=a, b=b), t1=t1, seeds=4, save=gf.LinearGrid(n=3), solver=dfx.Dopri8(),
                      stepsize_controller=dfx.PIDController(rtol=1e-10, atol=1e-12))
    lrs = np.array([8e-4, 4e-4, 2e-4, 1e-4, 5e-5])
    err = [param_distance(gf.train(small, gf.adam_for_flow(float(lr), a=a, b=b), steps=int(round(t1 / lr)), dt=float(lr),
                                   seeds=4, save=gf.LinearGrid(n=3)).final, ref.final).mean() for lr in lrs]
    order = float(np.polyfit(np.log(lrs), np.log(err), 1)[0])
    show("Adam → AdamFlow", [{"lr": float(lr), "relative distance": float(e)} for lr, e in zip(lrs, err)]
         + [{"fitted order": order}])


if args.part == "s11":
    show("s_11 at the end of stage IV, per modelling choice (SignGD η = 1e-4, 600 steps)",
         s11_candidates(problem, steps=300 if q else 600, seeds=2 if q else 8, verbose=False))
if args.part == "adam":
    rows, figures["adam_vs_signgd"] = adam_vs_signgd(problem, steps=300 if q else 3000, seeds=2 if q else 8)
    show("Adam against SignGD (η = 1e-4, distance to SignGD's trajectory)", rows)
if flows:
    part_flows()
    part_adam()
if optimizers:
    part_optimizers()

out["total_s"] = time.perf_counter() - start
print(f"\ntotal {out['total_s']:.0f} s")
print("wrote", write_json("signgd_experiments" + ("" if args.part == "all" else f"_{args.part}") + ("_quick" if q else ""), out))
if args.figures:
    from pathlib import Path

    Path(args.figures).mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.savefig(Path(args.figures) / f"{name}.png", dpi=90)
