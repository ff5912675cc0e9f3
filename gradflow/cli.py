"""The `gradflow` command: run problems, list them, redraw figures."""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import sys
import time
import types
import typing
from pathlib import Path

SOLVERS = {
    "tsit5": "Tsit5", "dopri5": "Dopri5", "dopri8": "Dopri8", "bosh3": "Bosh3", "heun": "Heun",
    "midpoint": "Midpoint", "euler": "Euler", "kvaerno5": "Kvaerno5",
}
"""Command-line solver name → diffrax solver class (named, so that `--help` does not import diffrax)."""

FLOWS = {
    "gradient": ("GradientFlow", lambda args: {}),
    "sign": ("SignFlow", lambda args: {"eps": args.eps}),
    "adam": ("AdamFlow", lambda args: {"a": args.adam_a, "b": args.adam_b, "eps": args.eps}),
    "modified": ("ModifiedFlow", lambda args: {"lr": args.lr}),
    "momentum": ("MomentumFlow", lambda args: {"beta": args.beta}),
    "heavy-ball": ("HeavyBallFlow", lambda args: {"gamma": args.gamma}),
    "sde": ("SDEFlow", lambda args: {"lr": args.lr, "batch_size": args.batch_size}),
}
"""Command-line flow name → (gradflow flow class, its options from the parsed arguments; None: the flow's default)."""


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CLIError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _parser():
    p = _Parser(prog="gradflow", description="Simulate training dynamics as continuous-time flows.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    r = sub.add_parser("run", help="simulate a problem's flow over seeds and save the run")
    r.add_argument("problem", nargs="?", default=None, help="problem name (see `gradflow problems`)")
    r.add_argument("--seeds", type=int, default=8, help="number of seeds (default 8)")
    r.add_argument("--t1", type=float, default=None, help="final flow time (default: the problem's)")
    r.add_argument("--flow", choices=FLOWS, default="gradient")
    r.add_argument("--eps", type=float, default=None,
                   help="regularisation of the sign flow (default: SignFlow's, 1e-3) or Adam's ε (AdamFlow's, 1e-8)")
    r.add_argument("--adam-a", type=float, default=None, help="AdamFlow: β1 = 1 − a·η (default: AdamFlow's, 100)")
    r.add_argument("--adam-b", type=float, default=None, help="AdamFlow: β2 = 1 − b·η (default: AdamFlow's, 1)")
    r.add_argument("--lr", type=float, default=None,
                   help="--flow modified / sde: the learning rate η of the GD / SGD the flow models")
    r.add_argument("--beta", type=float, default=None, help="--flow momentum: the momentum β in [0, 1)")
    r.add_argument("--gamma", type=float, default=None, help="--flow heavy-ball: the friction γ >= 0")
    r.add_argument("--batch-size", type=int, default=None, help="--flow sde: the minibatch size B of the SGD it models")
    r.add_argument("--rate", action="append", default=[], metavar="FIELD=RATE", help="per-field flow rate")
    r.add_argument("--observe", action="append", default=[], metavar="sharpness[:k]",
                   help="also save the top-k Hessian eigenvalues (k = 1 by default) at every save time")
    r.add_argument("--solver", choices=SOLVERS, default="tsit5")
    r.add_argument("--rtol", type=float, default=1e-6)
    r.add_argument("--atol", type=float, default=1e-8)
    r.add_argument("--dt0", type=float, default=None, help="fixed step (required for euler)")
    r.add_argument("--max-steps", type=int, default=100_000)
    r.add_argument("--save-n", type=int, default=200, help="number of save times (log grid)")
    r.add_argument("--t-min", type=float, default=None, help="first positive save time (default t1·1e-4)")
    r.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a problem field")
    r.add_argument("--out", default=None, help="run directory (default runs/PROBLEM-TIME)")
    r.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    r.add_argument("--x32", action="store_true", help="float32 instead of float64")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--devices", default="auto", metavar="N|all|auto",
                   help="spread the seeds over devices; auto (default): on the CPU, one device per core "
                        "(up to the number of seeds), elsewhere every local accelerator")
    r.add_argument("--checkpoint-every", type=int, default=1000, metavar="STEPS",
                   help="integrate in segments of this many steps, checkpointing each to OUT/checkpoint (default 1000)")
    r.add_argument("--no-checkpoint", action="store_true", help="one solve, no checkpoints")
    r.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the interrupted run in DIR from its last checkpoint (other options are ignored)")
    _cache_options(r)
    r.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    b = sub.add_parser("bench", help="benchmarks: `gradflow bench accuracy --problem NAME`")
    bsub = b.add_subparsers(dest="bench", parser_class=_Parser, required=True)
    acc = bsub.add_parser("accuracy", help="work-precision of solvers against a reference")
    acc.add_argument("--problem", default=None, help="problem name (default: the default problem)")
    acc.add_argument("--solvers", default="euler,heun,bosh3,tsit5,dopri5,dopri8",
                     help="comma-separated solver names (default euler,heun,bosh3,tsit5,dopri5,dopri8)")
    acc.add_argument("--rtols", default="1e-3,1e-4,1e-5,1e-6,1e-7,1e-8", help="tolerances of the adaptive solvers")
    acc.add_argument("--steps", default="100,300,1000,3000",
                     help="numbers of fixed steps, for solvers without an error estimate (euler); the adaptive "
                          "ones (heun, midpoint, bosh3, tsit5, …) run at --rtols")
    acc.add_argument("--numruns", type=int, default=5, help="warm timed runs per row, after the compiling one")
    acc.add_argument("--measure", default="linf", choices=("linf", "l2", "final"),
                     help="error over the save times: max (linf, default), RMS (l2), or at t1 only (final)")
    acc.add_argument("--seeds", type=int, default=2)
    acc.add_argument("--t1", type=float, default=None, help="final flow time (default: the problem's)")
    acc.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a problem field")
    acc.add_argument("--out", default=None, help="output directory (default runs/accuracy-PROBLEM-TIME)")
    acc.add_argument("--x32", action="store_true", help="float32 instead of float64")
    _cache_options(acc)
    acc.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    sub.add_parser("problems", help="list problems and their fields")
    pl = sub.add_parser("plot", help="redraw the figures of a saved run")
    pl.add_argument("directory")
    pl.add_argument("--problem", default=None, metavar="MODULE:CLASS",
                    help="the run's problem class, for a run of a problem that is not one of gradflow's "
                         "(a saved run never imports code it names)")
    pl.add_argument("--path", default=None, metavar="DIR",
                    help="folder to import --problem's module from (default: the current directory)")
    pl.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return p


def _cache_options(parser):
    parser.add_argument("--cache-dir", default=None,
                        help="persistent compilation cache (default $GRADFLOW_CACHE_DIR or ~/.cache/gradflow/jax)")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not read or write the compilation cache (also: environment GRADFLOW_NO_CACHE=1)")


def _start_cache(args):
    """The CLI keeps compiled solves on disk unless --no-cache: a second run of
    the same configuration skips XLA compilation."""
    if getattr(args, "no_cache", True) or os.environ.get("GRADFLOW_NO_CACHE"):
        return
    from ._cache import enable_compile_cache

    try:
        enable_compile_cache(args.cache_dir)
    except ValueError as e:
        raise CLIError(f"--cache-dir: {e}") from None


_TRUE, _FALSE, _NONE = ("true", "1", "yes", "on"), ("false", "0", "no", "off"), ("none", "null")


class _NotSettable(TypeError):
    """An annotation that command-line text cannot express (a module, a nested tuple, ...)."""


def type_name(annotation) -> str:
    """An annotation as it is written in the class: `int`, `str | None`, `tuple[float, ...]`."""
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation).removeprefix("typing."))


def parse_value(text: str, annotation):
    """Read command-line `text` as a value of type `annotation`, from the annotation
    alone (`get_origin`/`get_args`): bool, int, float, str, None, unions of them,
    `Literal[...]`, and tuples or lists of them written comma-separated. ValueError
    if the text is not such a value; `_NotSettable` if no text could be."""
    low = text.strip().lower()
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        if low in _NONE:
            return None
        raise ValueError(text)
    if origin in (typing.Union, types.UnionType):
        for option in sorted(args, key=lambda a: a is not type(None)):  # "none" is None, even for `str | None`
            try:
                return parse_value(text, option)
            except ValueError:
                pass
        raise ValueError(text)
    if origin is typing.Literal:
        for value in args:
            if low == str(value).lower():
                return value
        raise ValueError(text)
    if annotation is bool:
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(text)
    if annotation is int:
        try:
            return int(low)
        except ValueError:
            value = float(low)  # 1e4 is an int too
            if not value.is_integer():
                raise
            return int(value)
    if annotation is float:
        return float(low)
    if annotation is str:
        return text
    if origin in (tuple, list) and args:
        if any(typing.get_origin(a) in (tuple, list) for a in args):
            raise _NotSettable(annotation)
        items = [x for x in text.strip().strip("()[]").split(",") if x.strip()]
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            kinds = [args[0]] * len(items)
        elif len(items) == len(args):
            kinds = list(args)
        else:
            raise ValueError(text)
        return origin(parse_value(x, k) for x, k in zip(items, kinds))
    raise _NotSettable(annotation)


def _field_types(cls) -> dict:
    """A dataclass's init fields → their annotations (resolved where they can be)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve at run time: the field's own record of it
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls) if f.init}


def _convert(cls, field: str, text: str):
    """`--set FIELD=TEXT` for problem class `cls`: the value, read by the field's annotation."""
    annotation = _field_types(cls)[field]
    try:
        return parse_value(text, annotation)
    except _NotSettable:
        raise CLIError(f"--set {field}: {cls.__name__}.{field} is a {type_name(annotation)}, which the command line "
                       "cannot express; set it from Python") from None
    except ValueError:
        listed = " (comma-separated)" if typing.get_origin(annotation) in (tuple, list) else ""
        raise CLIError(f"--set {field}={text}: cannot read {text!r} as {type_name(annotation)}{listed}") from None


def _pairs(items, option):
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CLIError(f"{option} {item!r}: expected FIELD=VALUE")
        out[name.strip()] = value
    return out


def build_problem(name, sets):
    from .problems import DEFAULT_PROBLEM, PROBLEMS

    name = name or DEFAULT_PROBLEM
    if name not in PROBLEMS:
        raise CLIError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)} (see `gradflow problems`)")
    cls = PROBLEMS[name]
    names = _field_types(cls)
    fields = {}
    for field, text in _pairs(sets, "--set").items():
        if field not in names:
            raise CLIError(f"--set {field}: {cls.__name__} has no field {field!r}; its fields are {sorted(names)}")
        fields[field] = _convert(cls, field, text)
    try:
        return name, cls(**fields)
    except (ValueError, TypeError) as e:
        raise CLIError(f"--set: {e}") from None


_RUN_OPTIONS = {
    "seeds": "--seeds", "t1": "--t1", "stepsize_controller.rtol": "--rtol", "stepsize_controller.atol": "--atol",
    "dt0": "--dt0", "max_steps": "--max-steps", "checkpoint_every": "--checkpoint-every", "checkpoint_dir": "--out",
}
_GRID_OPTIONS = {"n": "--save-n", "t_min": "--t-min"}
_FLOW_OPTIONS = {"eps": "--eps", "a": "--adam-a", "b": "--adam-b", "rates": "--rate", "lr": "--lr", "beta": "--beta",
                 "gamma": "--gamma", "batch_size": "--batch-size"}
_FLOW_NEEDS = {"modified": ("lr",), "momentum": ("beta",), "heavy-ball": ("gamma",), "sde": ("lr", "batch_size")}
"""The options a flow cannot do without (they have no default)."""
_BENCH_OPTIONS = {"seeds": "--seeds", "t1": "--t1", "tolerances": "--rtols", "step_sizes": "--steps",
                  "numruns": "--numruns", "measure": "--measure"}
"""The library's argument names, as its messages quote them (`name`), → the options that set them."""


@contextlib.contextmanager
def _refused(options: dict, prefix: str | None = None):
    """Turn the library's ValueError/TypeError about an argument into a one-line
    CLIError that names the option instead: the CLI does not repeat the
    library's checks, it translates their messages. `prefix` leads a message
    that quotes none of `options`."""
    try:
        yield
    except (ValueError, TypeError) as e:
        named = []

        def option(match):
            name, key = match.group(1), match.group(2)
            if name not in options:
                return match.group(0)
            named.append(options[name])
            return options[name] + (" " + key.strip("[]'") if key else "")  # `rates['W']` → --rate W

        message = re.sub(r"`([\w.]+)(\[[^`]*\])?`", option, str(e))
        raise CLIError(message if named or not prefix else f"{prefix}: {message}") from e  # --debug shows e


def _numbers(text, option, kind=float):
    """Comma-separated numbers (whether they are valid values is the library's to say)."""
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"{option} {text!r}: expected comma-separated numbers") from None


def _solver_names(text):
    names = [x.strip().lower() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in SOLVERS]
    if unknown or not names:
        raise CLIError(f"--solvers: unknown {unknown or names}; choose from {sorted(SOLVERS)}")
    return names


def cmd_bench(args):
    import diffrax as dfx

    names = _solver_names(args.solvers)
    rtols = _numbers(args.rtols, "--rtols")
    steps = _numbers(args.steps, "--steps", int)
    if any(n < 1 for n in steps):  # the library takes step sizes (t1 / steps): counts are the CLI's own
        raise CLIError(f"--steps {args.steps!r}: expected numbers of steps >= 1")
    name, problem = build_problem(args.problem, args.set)
    t1 = type(problem).default_t1 if args.t1 is None else args.t1
    out = Path(args.out) if args.out else Path("runs") / f"accuracy-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    _check_out(out, True)
    import matplotlib

    matplotlib.use("Agg")
    from .accuracy import work_precision
    from .plot import work_precision as draw

    solvers = [getattr(dfx, SOLVERS[n])() for n in names]
    print(f"gradflow bench accuracy {name}: t1 = {t1:g}, {args.seeds} seeds, "
          f"{'float32' if args.x32 else 'float64'}; the reference first", flush=True)
    with _refused(_BENCH_OPTIONS):  # work_precision checks its arguments before it solves anything
        table = work_precision(problem, solvers=solvers, tolerances=rtols, step_sizes=[t1 / n for n in steps],
                               t1=t1, seeds=args.seeds, progress=True, numruns=args.numruns, measure=args.measure)
    out.mkdir(parents=True, exist_ok=True)
    table.save(out / "work_precision.json")
    (out / "work_precision.txt").write_text(str(table) + "\n" + table.meta["reference"] + "\n")
    draw(table).savefig(out / "work_precision.png", dpi=110)
    print(table)
    print(table.meta["reference"])
    print(f"saved to {out}")
    return 0


def _solver(args):
    """--solver, --rtol, --atol → a diffrax solver and controller: PID for a solver
    with an error estimate, fixed steps (--dt0) for one without."""
    import diffrax as dfx

    solver = getattr(dfx, SOLVERS[args.solver])()
    if isinstance(solver, dfx.AbstractAdaptiveSolver):
        return solver, dfx.PIDController(rtol=args.rtol, atol=args.atol)
    return solver, dfx.ConstantStepSize()


def _flow(args):
    import gradflow

    name, options = FLOWS[args.flow]
    options = {k: v for k, v in options(args).items() if v is not None}
    missing = [_FLOW_OPTIONS[k] for k in _FLOW_NEEDS.get(args.flow, ()) if k not in options]
    if missing:
        raise CLIError(f"--flow {args.flow} needs {' and '.join(missing)} (see `gradflow run --help`)")
    flow_specific = set().union(*_FLOW_NEEDS.values())  # --lr, --beta, …: options of one flow or two
    unused = [option for key, option in _FLOW_OPTIONS.items()
              if key in flow_specific and getattr(args, key) is not None and key not in options]
    if unused:
        raise CLIError(f"{', '.join(unused)}: not an option of --flow {args.flow}")
    with _refused(_FLOW_OPTIONS, f"--flow {args.flow}"):
        return getattr(gradflow, name)(**options, rates=_pairs(args.rate, "--rate"))


def _observed(problem, observe: list[str]):
    """`problem` wrapped for each `--observe` (today: `sharpness[:k]` → `gradflow.Sharpness`)."""
    for item in observe:
        what, _, k = item.partition(":")
        if what != "sharpness":
            raise CLIError(f"--observe {item}: unknown; the choice is sharpness[:k] (the top-k Hessian eigenvalues)")
        try:
            k = int(k) if k else 1
        except ValueError:
            raise CLIError(f"--observe {item}: k must be an integer >= 1, as in sharpness:3") from None
        from . import Sharpness

        with _refused({"k": "--observe sharpness:k"}):
            problem = Sharpness(problem, k=k)
    return problem


def _check_out(out: Path, force: bool):
    if (out / "run.json").exists() and not force:
        raise CLIError(f"--out {out} already holds a run; pass --force to overwrite it")
    from ._files import unwritable_ancestor

    parent = unwritable_ancestor(out)
    if parent is not None:
        raise CLIError(f"--out {out}: {parent} is not writable")
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a directory")


def _check_space(out, problem, args):
    """Refuse a run whose results (and checkpoints) would not fit on the disk,
    from the sizes of the model and its observables (`eval_shape`: nothing runs)."""
    import equinox as eqx
    import jax

    from ._files import check_free_space

    def sizes(key):
        model, data = problem.init(key)
        return model, problem.observables(model, data)

    model, obs = eqx.filter_eval_shape(sizes, jax.random.PRNGKey(0))
    nbytes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)  # noqa: E731
                              if hasattr(x, "dtype"))
    per_seed = 2 * nbytes(model) + args.save_n * nbytes(obs)
    if not args.no_checkpoint:  # solver state (≤ 14 copies of the model) in the old and the new checkpoint
        per_seed += 2 * (14 * nbytes(model) + args.save_n * nbytes(obs))
    try:
        check_free_space(out, args.seeds * per_seed, "this run")
    except OSError as e:
        raise CLIError(f"--out {e}") from None


def _resume_args(args):
    """`--resume DIR`: the options the run in DIR was started with, plus resume."""
    directory = Path(args.resume)
    saved = directory / "command.json"
    if not saved.exists():
        raise CLIError(f"--resume {directory}: no command.json there; it is not a run started by `gradflow run` "
                       "with checkpoints")
    if (directory / "run.json").exists():
        raise CLIError(f"--resume {directory}: that run already finished (run.json exists)")
    try:
        argv = json.loads(saved.read_text())["argv"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CLIError(f"--resume {directory}: command.json is damaged ({e})") from None
    if not (isinstance(argv, list) and argv[:1] == ["run"] and all(isinstance(a, str) for a in argv)
            and "--resume" not in argv):
        raise CLIError(f"--resume {directory}: command.json does not hold a `gradflow run` command line")
    new = _parser().parse_args(argv)
    new.argv = argv
    new.resume_into = directory
    for name in ("no_cache", "cache_dir"):
        setattr(new, name, getattr(args, name))
    return new


def _device_count(args):
    """--devices → (text, a number asked for or None); checked before JAX starts."""
    text = str(args.devices).strip().lower()
    if text in ("auto", "all"):
        return text, None
    try:
        wanted = int(text)
    except ValueError:
        raise CLIError(f"--devices {args.devices!r}: expected a number of devices, 'all' or 'auto'") from None
    if wanted < 1:
        raise CLIError(f"--devices must be >= 1; got {wanted}")
    return text, wanted


def _start_cpu_devices(args):
    """Seeds run independently, so on the CPU one device per core runs them in
    parallel (2.4× one device on 2 cores, benchmarks/README.md); results per
    seed do not depend on the device count. Sets `jax_num_cpu_devices` (before
    JAX starts its backends) unless XLA_FLAGS already sets a count."""
    text, wanted = _device_count(args)
    count = wanted if wanted is not None else min(os.cpu_count() or 1, args.seeds)
    if text == "all" or count <= 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX already started (gradflow.cli.main called in-process): use what exists
        pass


def _devices(args, solver=None):
    """--devices → the `devices` argument of `simulate` (None: one device). An
    implicit solver runs on one device, and the CLI says so (see
    `gradflow._options.resolve_options`)."""
    import jax

    from ._options import devices_for

    text, wanted = _device_count(args)
    if solver is not None and devices_for(solver, text if text == "all" else wanted or 2) is None:
        print(f"gradflow: --solver {args.solver} is implicit: running on one device "
              "(implicit solvers do not run under shard_map yet)", flush=True)
        return None
    if text == "all":
        return "all"
    available = jax.local_devices()
    if wanted is not None and wanted > len(available):
        raise CLIError(f"--devices {wanted}: only {len(available)} {jax.default_backend()} device(s) here")
    if wanted is not None:
        count = wanted
    elif jax.default_backend() == "cpu":  # never more devices than cores (XLA_FLAGS may simulate more)
        count = min(len(available), args.seeds, os.cpu_count() or 1)
    else:
        count = min(len(available), args.seeds)
    return None if count <= 1 else list(available[:count])


def _check_run(args, problem, flow, keywords):
    """The library's own checks of what `simulate` will be given (its option
    objects check themselves when built), run before anything is written or
    compiled: nothing here solves. Their messages become the CLI's, naming the
    options (`_refused`)."""
    from ._devices import seeds_to_keys
    from ._grids import LogGrid, _check_t1
    from ._options import resolve_options
    from ._simulate import check_problem

    with _refused(_RUN_OPTIONS):
        _check_t1(keywords["t1"])
    with _refused(_GRID_OPTIONS):
        save = LogGrid(n=args.save_n, t_min=keywords["t1"] * 1e-4 if args.t_min is None else args.t_min)
    if not save.t_min < keywords["t1"]:  # LogGrid would start at t1·1e-4 instead: an option is never ignored quietly
        raise CLIError(f"--t-min must be below t1 = {keywords['t1']:g}; got {save.t_min:g}")
    with _refused(_RUN_OPTIONS):
        seeds_to_keys(args.seeds)
        integration = resolve_options({**keywords, "save": save, "devices": None})[0]  # devices: see `_devices`
    with _refused(_FLOW_OPTIONS):  # rates naming missing fields etc.
        structure, _ = check_problem(problem, flow)
    from ._sde import SDEFlow, per_sample_count

    if isinstance(flow, SDEFlow):
        if integration.adaptive or args.dt0 is None or args.solver != "euler":
            raise CLIError("--flow sde integrates at a fixed step with Euler–Maruyama: pass --solver euler and "
                           "--dt0 DT (e.g. the learning rate / 10)")
        with _refused(_FLOW_OPTIONS):
            flow.check_setting(problem, per_sample_count(problem, *structure), integration)
    return save


def cmd_run(args):
    from .problems import figures as problem_figures, report as problem_report

    if args.resume is not None:
        args = _resume_args(args)
    resume_into = getattr(args, "resume_into", None)
    _start_cpu_devices(args)
    name, problem = build_problem(args.problem, args.set)
    t1 = type(problem).default_t1 if args.t1 is None else args.t1
    problem = _observed(problem, args.observe)
    solver, controller = _solver(args)
    flow = _flow(args)
    out = Path(args.out) if args.out else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if resume_into is not None:
        out = resume_into
    else:
        _check_out(out, args.force)
    checkpoint = None if args.no_checkpoint else out / "checkpoint"
    keywords = dict(t1=t1, solver=solver, stepsize_controller=controller, dt0=args.dt0, max_steps=args.max_steps,
                    progress=not args.no_progress, checkpoint_dir=checkpoint, checkpoint_every=args.checkpoint_every,
                    resume=resume_into is not None, command=shlex.join(["gradflow", *args.argv]))
    keywords["save"] = _check_run(args, problem, flow, keywords)
    _check_space(out, problem, args)
    devices = _devices(args, keywords["solver"])
    if checkpoint is not None and resume_into is None:
        out.mkdir(parents=True, exist_ok=True)
        if (out / "checkpoint").exists():
            shutil.rmtree(out / "checkpoint")  # --force over an old run: start afresh
        (out / "command.json").write_text(json.dumps({"argv": _run_argv(args, out, devices)}, indent=1))

    from . import simulate

    print(
        f"gradflow run {name}: {args.seeds} seeds, t1 = {t1:g}, {type(solver).__name__}, "
        f"rtol {args.rtol:g}, {'float32' if args.x32 else 'float64'}",
        flush=True,
    )
    from ._checkpoint import CheckpointError

    try:  # the options were checked above: a failure inside the solve is not an argument error
        run = simulate(problem, flow, seeds=args.seeds, devices=devices, **keywords)
    except CheckpointError as e:
        raise CLIError(f"--resume: {e}") from e
    run.save(out, force=True if resume_into is not None else args.force)
    import matplotlib  # after the solve: figures are drawn once it is saved

    matplotlib.use("Agg")
    from .plot import save_figures

    if checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)  # the run is saved: its checkpoints are spent
    save_figures(run, out)
    problem_figures(run, out)
    summary = run.summary()
    report = problem_report(run)
    if report:
        summary = f"{summary}\n\n{report}"
    (out / "summary.txt").write_text(summary + "\n")
    print(summary)
    print(f"saved to {out}")
    if not run.ok.any():
        print(f"gradflow: error: every seed failed ({run.messages[0]})", file=sys.stderr)
        return 1
    return 0


_NOT_RESUMED = {"help", "devices", "out", "force", "resume", "cache_dir", "no_cache", "debug"}
"""`gradflow run` options a resumed run does not take from the original command line
(the devices, the directory and --force are set for it; the cache is the resuming command's)."""


def _run_argv(args, out, devices):
    """The `gradflow run` command line that reproduces `args` (for --resume), read
    off the parser's own options (a new option is carried without being listed
    here), with the devices resolved: a checkpoint resumes only on as many as
    wrote it."""
    (run,) = [a.choices["run"] for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    argv = ["run"] + ([args.problem] if args.problem else [])
    for action in run._actions:
        if not action.option_strings or action.dest in _NOT_RESUMED:
            continue
        option, value = action.option_strings[0], getattr(args, action.dest)
        if isinstance(action, argparse._StoreTrueAction):
            argv += [option] if value else []
        elif isinstance(action, argparse._AppendAction):
            argv += [word for item in value for word in (option, item)]
        elif value is not None:
            argv += [option, str(value)]
    used = "all" if devices == "all" else 1 if devices is None else len(devices)
    return argv + ["--devices", str(used), "--out", str(out), "--force"]


def _default_text(field) -> str:
    """` = 0.1`, ` = syn_small()` (a default factory), or ` (required)`."""
    if field.default is not dataclasses.MISSING:
        return f" = {field.default!r}"
    if field.default_factory is not dataclasses.MISSING:
        return f" = {getattr(field.default_factory, '__name__', 'factory')}()"
    return " (required)"


def _summary_line(cls) -> str:
    """A class docstring's first paragraph on one line (not its first line, which may
    stop mid-formula)."""
    paragraph = (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


def cmd_problems(args):
    from .problems import DEFAULT_PROBLEM, PROBLEMS

    for name, cls in PROBLEMS.items():
        print(f"{name}{' (default)' if name == DEFAULT_PROBLEM else ''}: {cls.__name__} — {_summary_line(cls)}")
        for field, annotation in _field_types(cls).items():
            print(f"    {field}: {type_name(annotation)}{_default_text(cls.__dataclass_fields__[field])}")
    return 0


def _problem_class(text, path=None):
    """`--problem module:Class` → the class, which must be an AbstractProblem
    subclass (checked before anything is called); None passes None through.
    The module is imported from `path` (--path), else from the current directory."""
    if text is None:
        if path is not None:
            raise CLIError("--path names the folder of --problem's module: give --problem module:Class too")
        return None
    import importlib

    from ._problem import AbstractProblem

    module_name, sep, qualname = text.partition(":")
    if not sep or not module_name or not qualname:
        raise CLIError(f"--problem {text!r}: expected MODULE:CLASS, e.g. --problem my_models:TeacherStudent")
    folder = str(Path(path or ".").resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise CLIError(f"--problem {text}: cannot import it from {folder} ({e}); give the module's folder with "
                       "--path DIR") from None
    if not (isinstance(obj, type) and issubclass(obj, AbstractProblem)):
        raise CLIError(f"--problem {text}: {obj!r} is not a gradflow.AbstractProblem subclass")
    return obj


def cmd_plot(args):
    import matplotlib

    matplotlib.use("Agg")
    from . import load
    from .plot import save_figures
    from .problems import figures as problem_figures

    bench = Path(args.directory) / "work_precision.json"
    if bench.exists():  # a `gradflow bench accuracy` directory: its table, redrawn
        from .accuracy import Table
        from .plot import work_precision as draw

        path = Path(args.directory) / "work_precision.png"
        draw(Table.load(bench)).savefig(path, dpi=110)
        print(path)
        return 0
    try:
        run = load(args.directory, problem=_problem_class(args.problem, args.path))
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None
    for path in [*save_figures(run, args.directory), *problem_figures(run, args.directory)]:
        print(path)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            argv = ["run", *argv]
            args = _parser().parse_args(argv)
        args.argv = argv  # the exact command, recorded in the run's config
        import jax

        jax.config.update("jax_enable_x64", not getattr(args, "x32", False))
        _start_cache(args)
        return {"run": cmd_run, "problems": cmd_problems, "plot": cmd_plot, "bench": cmd_bench}[args.command](args)
    except CLIError as e:
        if debug:
            raise
        print(f"gradflow: error: {str(e).removeprefix('gradflow: ')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradflow: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected failure: one line unless --debug
        if debug:
            raise
        print(f"gradflow: error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
