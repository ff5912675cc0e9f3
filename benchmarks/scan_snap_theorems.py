"""Tian et al. (2023, arXiv:2305.16380): Theorems 1 and 4 against the simulated
population flow, the transition time over rate settings, where "larger η_Y →
denser attention" holds, and Fig. 4 trained
with SGD momentum 0.9 beside the flow. Prints the tables of benchmarks/README.md
("Scan and Snap: the theorems measured") and writes
benchmarks/results/scan_snap_theorems.json.

    python benchmarks/scan_snap_theorems.py            # all five parts
    python benchmarks/scan_snap_theorems.py --parts transition,map
"""

import argparse
import json
import time

import jax

jax.config.update("jax_enable_x64", True)

from _common import RESULTS, machine, table, write_json  # noqa: E402

from gradflow.problems.scan_snap.experiments import (  # noqa: E402
    eta_y_map, fig4_momentum, theorem1, theorem4, transition_times)

PARTS = ("theorem1", "theorem4", "transition", "map", "momentum")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated among {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose among {', '.join(PARTS)}")
    path = RESULTS / "scan_snap_theorems.json"
    out = json.loads(path.read_text()) if path.exists() else {}  # keep the parts an earlier call measured
    out["machine"] = machine()
    if "theorem1" in parts:
        t = time.perf_counter()
        rows, _ = theorem1()
        rows_c, _ = theorem1(((10, 100, 1.0), (10, 1000, 1.0)), common_weight=1.0)
        for r in rows_c:
            r["K"] = f"{r['K']} (+1 common)"
        print("Theorem 1 (Z fixed, Y(0) = 0, t ∈ [0.01, 1e4], 60 log-spaced saves, Tsit5 rtol 1e-10):")
        print(table(rows + rows_c, [("K", ""), ("M", "d"), ("eta_Y", "g"), ("h error", ".2e"), ("gamma error", ".3e"),
                                    ("1/(M−1)", ".3e"), ("gamma × M/(M−1) error", ".2e"), ("steps", "d")]))
        print(f"({time.perf_counter() - t:.0f} s)\n")
        out["theorem1"] = rows + rows_c
    if "theorem4" in parts:
        t = time.perf_counter()
        rows, _ = theorem4()
        for r in rows:
            r["xi / closed form"] = "{:.2f}–{:.2f}".format(*r["xi / closed form at t ≥ t0 (min, max)"])
        print("Theorem 4 (K = 10, M = 1000, one common token, t ≤ 1e7, 300 log-spaced saves, Tsit5 rtol 1e-10):")
        print(table(rows, [("eta_Y", "g"), ("eta_Z", "g"), ("t0", ".3g"), ("points before t0", "d"),
                           ("slope in ln t before t0", ".2e"), ("predicted slope in ln t before t0", ".3f"),
                           ("slope in ln ln t after t0", ".2e"), ("predicted slope in ln ln t after t0", ".3f"),
                           ("B(t1)", ".2e"), ("predicted B(t1)", ".3f"), ("xi / closed form", ""),
                           ("xi spread", ".2f")]))
        print(f"({time.perf_counter() - t:.0f} s)\n")
        out["theorem4"] = rows
    if "transition" in parts:
        t = time.perf_counter()
        rows = transition_times()
        print("The transition time on Syn-Small (population flow, t ≤ 1e4, 200 log-spaced saves):")
        print(table(rows, [("eta_Y", "g"), ("eta_Z", "g"), ("t*", ".3g"), ("t0", ".3g"), ("t*/t0", ".3g"),
                           ("t*·eta_Z", ".3g")]))
        print(f"({time.perf_counter() - t:.0f} s)\n")
        out["transition"] = rows
    if "map" in parts:
        t = time.perf_counter()
        rows = eta_y_map()
        for r in rows:
            r.update({f"r={k:g}": v for k, v in r["entropy by η_Y/η_Z"].items()})
        print("Distinct-token attention entropy against η_Y/η_Z (η_Z = 1; population: 1 seed; finite T: 4 seeds, N = 128):")
        print(table(rows, [("common tokens", "d"), ("T", ""), ("t", ".3g")]
                    + [(f"r={k:g}", ".4f") for k in (1, 2, 5, 10)] + [("larger η_Y gives", "")]))
        print(f"({time.perf_counter() - t:.0f} s)\n")
        out["eta_y_map"] = rows
    if "momentum" in parts:
        t = time.perf_counter()
        rows = fig4_momentum()
        for r in rows:
            r["SGD-momentum"] = "{:.4f} ± {:.4f}".format(*r["SGD-momentum entropy"])
            r["flow"] = "{:.4f} ± {:.4f}".format(*r["flow entropy"])
        print("Fig. 4 with SGD momentum 0.9 (lr 0.01, Syn-Small, T = N = 128, 4 seeds) beside the flow, at t = 1000:")
        print(table(rows, [("eta_Y", "g"), ("eta_Z", "g"), ("steps", "d"), ("SGD-momentum", ""), ("flow", ""),
                           ("max |c_SGD − c_flow|", ".2e"), ("failed", "d")]))
        print(f"({time.perf_counter() - t:.0f} s)\n")
        out["fig4_momentum"] = rows
    print("wrote", write_json("scan_snap_theorems", out))


if __name__ == "__main__":
    main()
