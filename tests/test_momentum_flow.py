"""`MomentumFlow(beta)` (Kovachki & Stuart 2021): `optax.sgd(η, momentum=β)` read at
t = kη approaches dθ/dt = −∇L/(1 − β) at order 1 in η; the plain gradient flow is
not its limit (the gap does not shrink)."""

import optax
import pytest

import gradflow as gf
from gradflow.accuracy import flow_gap
from gradflow.problems import DiagonalLinear, LeastSquares


@pytest.mark.parametrize("problem, t1, lrs", [
    (LeastSquares(n=8, p=4, cond=4.0), 4.0, [0.05, 0.025, 0.0125, 0.00625]),
    (DiagonalLinear(n=8, p=4, sparsity=2, alpha=0.5), 2.0, [0.025, 0.0125, 0.00625, 0.003125]),
], ids=["least-squares", "diagonal-network"])
def test_momentum_gd_approaches_the_momentum_flow_at_order_one(problem, t1, lrs):
    momentum = lambda lr: optax.sgd(lr, momentum=0.5)  # noqa: E731
    gap = flow_gap(problem, momentum, lrs, t1=t1, seeds=2, flow=gf.MomentumFlow(beta=0.5))
    # Measured: 1.01 on least squares, 1.03 on the diagonal network.
    assert abs(gap.meta["order"] - 1) <= 0.2, str(gap)
    if isinstance(problem, LeastSquares):
        # Against the plain gradient flow: an O(1) gap, the wrong limit. (Not on the diagonal network:
        # by t1 it has converged, and the momentum flow is the same path at another speed, so the
        # final parameters agree either way.)
        wrong = flow_gap(problem, momentum, lrs, t1=t1, seeds=2)
        assert wrong.column("param gap").min() > 10 * gap.column("param gap").min()
        assert abs(wrong.meta["order"]) < 0.2


def test_momentum_flow_checks_beta():
    with pytest.raises(ValueError, match="`beta`"):
        gf.MomentumFlow(beta=1.0)


def test_heavy_ball_momentum_approaches_the_heavy_ball_flow_at_order_one_in_h():
    """sgd(h², momentum = 1 − γh) at t = kh against θ' = v, v' = −γv − ∇L: gap O(h)."""
    import diffrax as dfx
    import numpy as np

    from gradflow.accuracy import fit_order, param_error

    problem, t1, gamma = LeastSquares(n=8, p=4, cond=4.0), 4.0, 2.0
    ref = gf.simulate(problem, gf.HeavyBallFlow(gamma=gamma), t1=t1, seeds=2, save=gf.LinearGrid(n=2),
                      solver=dfx.Dopri8(), stepsize_controller=dfx.PIDController(rtol=1e-12, atol=1e-14))
    hs = [0.1, 0.05, 0.025, 0.0125]
    gaps = []
    for h in hs:
        run = gf.train(problem, gf.Optimizer(optax.sgd, h * h, momentum=1 - gamma * h), steps=int(round(t1 / h)),
                       dt=h, seeds=2, save=gf.LinearGrid(n=2))
        gaps.append(float(np.max(param_error(run, ref))))
    fit = fit_order(hs, gaps)
    assert abs(fit["order"] - 1) <= 0.2, (fit, gaps)  # measured 0.99 (gaps 2.4e-2 … 3.0e-3)
    with pytest.raises(ValueError, match="`gamma`"):
        gf.HeavyBallFlow(gamma=-1.0)
