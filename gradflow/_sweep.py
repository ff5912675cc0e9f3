"""`sweep`: one problem under a list of settings, compiled once.

Every number a sweep varies reaches the compiled program as an argument, never
as a constant, so the settings share one compile:

- `t1`, `dt0` and a PID controller's tolerances (`simulate`), `steps` and `dt`
  (`train`) are runtime values already;
- a flow's float fields (ε, Adam's a and b, per-field rates) are passed as
  arrays by `simulate`;
- a `gradflow.Optimizer`'s float hyperparameters are passed as arrays by `train`;
- a problem's float fields named in the sweep are set as 0-d arrays here, so
  they too are arguments (of the draw of the seeds and of the solve).

A field that changes shapes (an int such as a width) cannot share a compile
and is refused; run separate calls for it.
"""

import dataclasses
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._config import to_jsonable
from ._devices import seeds_to_keys
from ._flows import AbstractFlow, GradientFlow
from ._optim import Optimizer
from ._options import resolve_options
from ._problem import AbstractProblem
from ._simulate import _flow_numbers_as_arrays, drive, simulate
from ._train import train


def sweep(problem: AbstractProblem, method=GradientFlow(), *, over: dict | None = None, rates=None, seeds=1,
          **kwargs) -> list:
    """`simulate` (or `train`) under several settings, compiled once.

    **Arguments:**

    - `problem`, `seeds`: as for `simulate`.
    - `method`: a flow (`GradientFlow()`, `SignFlow(eps=…)`, …): each setting is a
      `simulate` run; or an optimiser (`gradflow.Optimizer`, `gf.sign_gd(η)`): each
      setting is a `train` run.
    - `over`: what varies, as {name: list of values}, every list as long (the
      lists are zipped: build a grid with `itertools.product`). A name is
        - a keyword of `simulate` or `train`: `"t1"`, `"dt0"`, `"steps"`, `"dt"`, …;
        - `"problem.FIELD"`: a float field of the problem (an initialisation
          scale, a condition number, a noise level);
        - `"flow.FIELD"`: a float field of the flow (`"flow.eps"`, `"flow.a"`);
        - `"optimizer.NAME"`: a hyperparameter of a `gradflow.Optimizer`
          (`"optimizer.learning_rate"`).
    - `rates`: a list of per-field rate dicts (`[{"Y": 1.0}, {"Y": 10.0}]`) for a
      flow: every setting and seed runs in *one batched call* (settings ×
      seeds), not one call per setting. Not combined with `over`.
    - `**kwargs`: the other keywords of `simulate` or `train`, the same for every
      setting.

    **Returns:**

    One `Run` per setting, in order, each equal to the `simulate` or
    `train` call with that setting (its `config["sweep"]` records the sweep and
    its index). The settings share one compile: the first run's
    `stats.compile_time` is the compile, the others' are 0.0.
    """
    if not isinstance(problem, AbstractProblem):
        raise TypeError(f"`problem` must be a gradflow.AbstractProblem; got {type(problem).__name__}.")
    if rates is not None:
        if over is not None:
            raise ValueError("give `rates` (one batched call over rate settings) or `over`, not both.")
        if not isinstance(method, AbstractFlow):
            raise TypeError("`rates` sweeps a flow's per-field rates; `method` must be a flow.")
        return _rate_sweep(problem, method, rates, seeds, kwargs)
    if not isinstance(over, dict) or not over:
        raise ValueError("`over` must be a non-empty dict of lists, e.g. over={'t1': [1.0, 10.0]} or "
                         "over={'problem.scale': [0.1, 1.0]}.")
    lengths = {name: len(values) if isinstance(values, (list, tuple, np.ndarray)) else None
               for name, values in over.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"every value of `over` must be a non-empty list, all of one length (they are zipped); "
                         f"got lengths {lengths}.")
    run_fn = _runner(method)
    keywords = set(inspect.signature(run_fn).parameters) - {"problem", "flow", "optimizer", "seeds"}
    for name in over:
        head = name.split(".", 1)[0]
        if "." in name and head not in ("problem", "flow", "optimizer") or "." not in name and name not in keywords:
            raise ValueError(f"`over` names {name!r}: use a keyword of {run_fn.__name__} ({sorted(keywords)}), "
                             "'problem.FIELD', 'flow.FIELD' or 'optimizer.NAME'.")
        if name in kwargs:
            raise ValueError(f"{name!r} is both in `over` and a keyword argument; give it once.")
    if any(name.startswith("flow.") for name in over) and not isinstance(method, AbstractFlow):
        raise ValueError("'flow.FIELD' needs a flow as `method`.")
    if any(name.startswith("optimizer.") for name in over) and not isinstance(method, Optimizer):
        raise ValueError("'optimizer.NAME' needs a gradflow.Optimizer as `method` (e.g. "
                         "gf.Optimizer(optax.sgd, learning_rate=0.1)); a plain optax object has no named numbers.")
    n = next(iter(lengths.values()))
    runs = []
    for i in range(n):
        setting = {name: values[i] for name, values in over.items()}
        point_problem = _problem_at(problem, {k[8:]: v for k, v in setting.items() if k.startswith("problem.")})
        point_method = _method_at(method, {k.split(".", 1)[1]: v for k, v in setting.items() if "." in k
                                           and not k.startswith("problem.")})
        options = {**kwargs, **{k: v for k, v in setting.items() if "." not in k}}
        try:
            run = run_fn(point_problem, point_method, seeds=seeds, **options)
        except jax.errors.ConcretizationTypeError as e:
            fields = [k for k in over if k.startswith("problem.")]
            raise ValueError(f"{type(problem).__name__} uses {fields} as a Python number (in an `if`, a shape or "
                             "a Python function), so it cannot vary inside one compiled program; sweep it with "
                             "separate calls.") from e
        run.config["sweep"] = {"over": {k: to_jsonable(list(v)) for k, v in over.items()}, "index": i}
        runs.append(run)
    return runs


def _runner(method):
    import optax

    if isinstance(method, AbstractFlow):
        return simulate
    if isinstance(method, (Optimizer, optax.GradientTransformation)):
        return train
    raise TypeError(f"`method` must be a gradflow flow (simulate) or an optimiser (train); got {type(method).__name__}.")


def _problem_at(problem, fields: dict):
    """The problem with `fields` set (through its own constructor, so its checks
    run) and then held as 0-d arrays: arguments of the compiled programs."""
    if not fields:
        return problem
    names = {f.name for f in dataclasses.fields(problem)}
    for name, value in fields.items():
        if name not in names:
            raise ValueError(f"'problem.{name}': {type(problem).__name__} has no field {name!r}; its fields are "
                             f"{sorted(names)}.")
        current = getattr(problem, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not isinstance(current, float):
            raise ValueError(f"'problem.{name}' is {type(current).__name__} {current!r}; only float fields can be "
                             "swept in one compile (an int may change shapes): run separate calls for it.")
    updated = dataclasses.replace(problem, **{name: float(value) for name, value in fields.items()})
    return eqx.tree_at(lambda p: [getattr(p, name) for name in fields], updated,
                       [jnp.asarray(getattr(updated, name)) for name in fields])


def _method_at(method, fields: dict):
    if not fields:
        return method
    if isinstance(method, Optimizer):
        unknown = sorted(set(fields) - set(method.hyperparameters))
        if unknown:
            raise ValueError(f"'optimizer.{unknown[0]}': the optimiser has hyperparameters "
                             f"{sorted(method.hyperparameters)}.")
        return Optimizer(method.factory, compiled_in=method.compiled_in, **{**method.hyperparameters, **fields})
    names = {f.name for f in dataclasses.fields(method)}
    for name in fields:
        if name not in names:
            raise ValueError(f"'flow.{name}': {type(method).__name__} has no field {name!r}; its fields are "
                             f"{sorted(names)}.")
    return dataclasses.replace(method, **fields)


def _rate_sweep(problem, flow, rates, seeds, kwargs):
    """Per-field rate settings × seeds as one batch: one compile, one call."""
    if isinstance(rates, dict) or not rates:
        raise ValueError("`rates` must be a non-empty list of dicts such as [{'Y': 1.0}, {'Y': 10.0}].")
    names = sorted(rates[0])
    for setting in rates:
        if not isinstance(setting, dict) or sorted(setting) != names:
            raise ValueError(f"every entry of `rates` must name the same fields {names}; got {setting!r}.")
    # Each setting through the flow's own converter (positive, finite numbers).
    flows = [eqx.tree_at(lambda f: f.rates, flow, type(flow)(rates=setting).rates) for setting in rates]
    settings = [dict(f.rates) for f in flows]
    keys, seed_record = seeds_to_keys(seeds)
    n_seeds = keys.shape[0]
    numbers = [eqx.partition(_flow_numbers_as_arrays(f), eqx.is_array) for f in flows]
    stacked = jtu.tree_map(lambda *xs: jnp.repeat(jnp.stack(xs), n_seeds, axis=0), *[d for d, _ in numbers])
    batched_flows = eqx.combine(stacked, numbers[0][1])
    defaults = {name: p.default for name, p in inspect.signature(simulate).parameters.items()
                if p.kind is p.KEYWORD_ONLY and name not in ("seeds",)}
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise TypeError(f"sweep() got unexpected keyword arguments {unknown}; it takes simulate's keywords.")
    keywords = {**defaults, **kwargs}
    if keywords["t1"] is inspect.Parameter.empty:
        raise TypeError("sweep() needs `t1`, as simulate does.")
    integration, batching, checkpointing = resolve_options(keywords)
    command, progress = keywords["command"], keywords["progress"]
    run = drive(problem, flows[0], jnp.tile(keys, (len(flows), 1)), integration, batching, checkpointing,
                command=command, progress_lines=bool(progress), flows=batched_flows, record=settings)
    runs = []
    for i, setting in enumerate(settings):
        part = run.select(np.arange(i * n_seeds, (i + 1) * n_seeds))
        part.config["flow"]["rates"] = dict(setting)
        part.config["seeds"] = seed_record
        part.config["sweep"] = {"rates": settings, "index": i}
        runs.append(part)
    return runs
