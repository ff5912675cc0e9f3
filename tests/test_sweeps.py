"""Sweeps without recompiling (found: every change of t1 or of a flow's numbers paid a
compile, ~3.5 s on 2 cores; a new number of seeds still does, see issue 15). Counted by the run's own
`compile_time`, which is 0.0 exactly when both of its programs (the draw of the seeds
and the solve) came from the in-process memo."""


import gradflow as gf
from gradflow.problems import LeastSquares

PROBLEM = LeastSquares(n=7, p=3)  # a size no other test compiles
SAVE = gf.LogGrid(n=5, t_min=1e-2)


def _compiles(runs) -> list[bool]:
    return [float(run.stats.compile_time) > 0 for run in runs]


def test_a_t1_ladder_shares_one_compile():
    runs = [gf.simulate(PROBLEM, t1=t1, seeds=2, save=SAVE) for t1 in (1.0, 2.0, 4.0, 8.0, 16.0)]
    assert _compiles(runs)[1:] == [False] * 4
    assert [run.ts[-1] for run in runs] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_a_ladder_of_flow_numbers_shares_one_compile():
    runs = [gf.simulate(PROBLEM, gf.SignFlow(eps=eps), t1=1.0, seeds=2, save=SAVE) for eps in (1e-1, 1e-2, 1e-3)]
    assert _compiles(runs)[1:] == [False, False]
    assert runs[0].config["flow"]["eps"] == 0.1 and runs[2].config["flow"]["eps"] == 0.001
