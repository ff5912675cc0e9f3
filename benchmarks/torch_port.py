"""PyTorch ports of two gradflow problems, for the torchdiffeq row of
`benchmarks/speed.py`: the co-occurrence transformer (Yang et al. 2024) and the
scan-and-snap population model (Tian et al. 2023). Same functions, same
initial weights (copied from gradflow's `problem.init`), float64; the flow
dθ/dt = −∇L(θ) is integrated by torchdiffeq's dopri5 with autograd gradients.

Needs the optional `bench` extra (torch, torchdiffeq). `check_port` asserts the
ported loss and gradient equal gradflow's before anything is timed.
"""

import math

import equinox as eqx
import jax
import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def _t(x):
    return torch.from_numpy(np.array(x, dtype=np.float64 if np.issubdtype(np.asarray(x).dtype, np.floating) else None))


def cooccurrence_loss_fn(problem, model, data):
    """(names, initial tensors, loss(list of tensors)) for `Cooccurrence`."""
    tokens = torch.from_numpy(np.asarray(data["tokens"]).astype(np.int64))
    y = _t(data["y"])
    a = _t(model.a)
    m = model.WQ.shape[0]

    def loss(params):
        WQ, WK, WV, W = params
        G = (a @ W) @ WV  # (d,)
        scores = (WK.T @ WQ) / math.sqrt(m)
        s = scores[tokens[:, :, None], tokens[:, None, :]]  # (n, L, L): [k, l] key k, query l
        att = torch.softmax(s, dim=-2)
        out = torch.sum(G[tokens] * att.sum(-1), dim=-1)
        return torch.nn.functional.softplus(-y * out).mean()

    return ["WQ", "WK", "WV", "W"], [_t(model.WQ), _t(model.WK), _t(model.WV), _t(model.W)], loss


def scan_snap_loss_fn(problem, model, data):
    """(names, initial tensors, loss) for `ScanSnapPopulation`."""
    cls = problem.classes
    probs = _t(cls.probs)
    query = torch.from_numpy(np.asarray(cls.query).astype(np.int64))
    target = torch.from_numpy(np.asarray(cls.next_token).astype(np.int64))
    positive = probs > 0
    logw = torch.log(torch.where(positive, probs, torch.ones_like(probs)))

    def loss(params):
        Y, Z = params
        logits = torch.where(positive, logw + Z[query], torch.full_like(probs, -math.inf))
        c = torch.softmax(logits, dim=-1)
        f = c / torch.linalg.norm(c, dim=-1, keepdim=True)
        out = f @ Y
        return torch.mean(torch.logsumexp(out, dim=-1) - out.gather(-1, target[:, None])[:, 0])

    return ["Y", "Z"], [_t(model.Y), _t(model.Z)], loss


PORTS = {"cooccurrence": cooccurrence_loss_fn, "scan-snap": scan_snap_loss_fn}


def port(name, problem, seed):
    model, data = problem.init(jax.random.PRNGKey(seed))
    return PORTS[name](problem, model, data), model, data


def check_port(name, problem, seed=0):
    """The port's loss and gradient equal gradflow's (float64, to 1e-10 relative)."""
    (names, params, loss), model, data = port(name, problem, seed)
    params = [p.clone().requires_grad_(True) for p in params]
    value = loss(params)
    grads = torch.autograd.grad(value, params)
    trainable, rest = eqx.partition(model, problem.trainable(model))
    jax_value, jax_grad = jax.value_and_grad(lambda p: problem.loss(eqx.combine(p, rest), data))(trainable)
    value = float(value.detach())
    assert abs(value - float(jax_value)) <= 1e-10 * abs(float(jax_value)), (value, float(jax_value))
    for n, g in zip(names, grads):
        ref = np.asarray(getattr(jax_grad, n))
        assert np.allclose(g.numpy(), ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max()), n


def torchdiffeq_rows(name, problem, ref, seeds, t1, rtols, measure):
    """torchdiffeq dopri5 at each rtol (atol = rtol/100), timed by `measure` as every
    other row of the comparison (the whole pass over the seeds, cold and warm; one
    solve per seed, the port has no seed batching): function evaluations per seed,
    relative final-parameter error against gradflow's reference."""
    from torchdiffeq import odeint

    from gradflow.accuracy._reference import flat_params

    check_port(name, problem)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ref_flat = flat_params(ref)
    rows = []
    for rtol in rtols:
        counter = [0]

        def one_pass(rtol=rtol):
            counter[0] = 0
            out = []
            for seed in range(seeds):
                (names, params, loss), model, data = port(name, problem, seed)
                sizes = [p.numel() for p in params]
                shapes = [p.shape for p in params]

                def rhs(t, y, loss=loss, sizes=sizes, shapes=shapes):
                    counter[0] += 1
                    with torch.enable_grad():
                        y = y.detach().requires_grad_(True)
                        parts = [q.reshape(s) for q, s in zip(torch.split(y, sizes), shapes)]
                        g = torch.autograd.grad(loss(parts), y)[0]
                    return -g

                y0 = torch.cat([p.reshape(-1) for p in params])
                ys = odeint(rhs, y0, torch.tensor([0.0, t1]), method="dopri5", rtol=rtol, atol=rtol * 1e-2)
                out.append((names, model, sizes, shapes, ys[-1]))
            return out

        finals, timing = measure(one_pass)
        nfe = counter[0]  # of the last (warm) pass; every pass makes the same evaluations
        errors = []
        for seed, (names, model, sizes, shapes, last) in enumerate(finals):
            final = [q.reshape(s).detach().numpy() for q, s in zip(torch.split(last, sizes), shapes)]
            done = eqx.tree_at(lambda mdl: [getattr(mdl, n) for n in names], model, [jax.numpy.asarray(f) for f in final])
            flat = np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(done)
                                   if np.issubdtype(np.asarray(x).dtype, np.floating)])
            errors.append(np.linalg.norm(flat - ref_flat[seed]) / np.linalg.norm(ref_flat[seed]))
        rows.append({"method": f"torchdiffeq dopri5 rtol {rtol:g}", **timing, "grad_evals": nfe / seeds,
                     "param_error": float(max(errors))})
        print(f"    {rows[-1]['method']}: warm {timing['wall_s']:.2f} s (cold {timing['cold_s']:.2f} s), "
              f"{nfe / seeds:.0f} gradients/seed, error {max(errors):.1e}", flush=True)
    return rows
