"""Property-based tests (hypothesis) of input validation.

Every invalid combination of `gradflow run` options or problem fields exits
with code 2 and one clear line naming what is wrong — no traceback — and never
leaves a run directory behind (or touches an existing one); valid small
combinations run. Examples are derandomised so CI is reproducible."""

import dataclasses
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import cli
from gradflow.problems import PROBLEMS

CHECKS = settings(max_examples=80, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _pair(options, *names):
    return st.just((options, names))


def _bad(option, values, *names):
    return st.sampled_from(values).map(lambda v: ([option, str(v)], names or (option,)))


# Each invalid piece: (options, substrings of which the error line must name one).
BAD = st.one_of(
    st.integers(-10**6, 0).map(lambda v: (["--seeds", str(v)], ("--seeds",))),
    _bad("--seeds", ["two", "1.5", ""]),
    _bad("--t1", ["0", "-1", "nan", "inf", "-inf", "1e400", "x"]),
    _bad("--rtol", ["0", "-1e-3", "nan", "inf"]),
    _bad("--atol", ["0", "-1", "nan", "inf"]),
    _bad("--dt0", ["0", "-0.1", "nan", "inf"]),
    st.integers(-10**6, 0).map(lambda v: (["--max-steps", str(v)], ("--max-steps",))),
    st.integers(-5, 2).map(lambda v: (["--save-n", str(v)], ("--save-n",))),
    st.sampled_from(["0", "-1", "nan", "10", "1e9"]).map(lambda v: (["--t1", "10", "--t-min", v], ("--t-min",))),
    st.integers(-10**6, 0).map(lambda v: (["--checkpoint-every", str(v)], ("--checkpoint-every",))),
    _bad("--devices", ["0", "-2", "many", "999"]),
    _bad("--solver", ["tsit6", "rk4", ""]),
    _bad("--flow", ["sgd", ""]),
    _pair(["--solver", "euler"], "--dt0"),
    st.text("abcxyz_", min_size=1, max_size=8).filter(lambda f: f not in {"noise", "cond"}).map(
        lambda f: (["--set", f"{f}=1"], (f"no field '{f}'",))),
    _bad("--set", ["n=0", "n=-4", "n=many", "p=0", "cond=0.5", "cond=nan", "noise=-1", "init_scale=x", "n", "=3"],
         "--set", "`n`", "`p`", "`cond`", "`noise`", "n=", "p=", "cond=", "noise=", "init_scale="),
    _bad("--rate", ["nope=1", "w=-1", "w=0", "w=x", "w", "=2", "w=nan"], "--rate", "rates", "nope"),
    st.sampled_from(["-1", "0", "nan", "inf"]).flatmap(
        lambda v: st.sampled_from([(["--flow", "sign", "--eps", v], ("eps",)),
                                   (["--flow", "adam", "--adam-a", v], ("`a`", "a must", "adam")),
                                   (["--flow", "adam", "--eps", v], ("eps",))])),
    _pair(["--resume", "/nonexistent/run"], "--resume"),
    _pair(["--cache-dir", "/proc/version/cache"], "--cache-dir"),
)
GOOD = st.sampled_from([["--x32"], ["--no-checkpoint"], ["--solver", "bosh3"], ["--seeds", "2"], ["--save-n", "5"],
                        ["--rtol", "1e-5"], ["--t1", "2"], ["--no-cache"], ["--checkpoint-every", "50"]])


def _one_clear_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("gradflow: error: ") and "Traceback" not in err


@CHECKS
@given(good=st.lists(GOOD, max_size=3), bad=st.lists(BAD, min_size=1, max_size=3), at_end=st.booleans())
def test_invalid_run_options_are_one_clear_line_and_write_nothing(good, bad, at_end, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        pieces = [p for part in good for p in part]
        for options, _ in bad:  # invalid pieces last, so no valid repeat of an option overrides them
            pieces += options
        argv = ["run", "least-squares", "--no-progress", "--out", str(out), *pieces]
        if not at_end:
            argv = ["run", "least-squares", *pieces, "--no-progress", "--out", str(out)]
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert _one_clear_line(err), (argv, err)
        names = [n for _, ns in bad for n in ns]
        assert any(n in err for n in names), (argv, err, names)
        assert not out.exists(), argv  # refused before anything was written


FIELDS = [(name, f.name, f.default) for name, cls in PROBLEMS.items() for f in dataclasses.fields(cls)
          if f.init and f.name not in ("path", "classes") and f.default is not dataclasses.MISSING]
TEXT = st.one_of(st.integers(-3, 10**4).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.sampled_from(["", "x", "true", "none", "1,2", "-0", "1e999"]),
                 st.text("0123456789.,-eE", max_size=6))


@CHECKS
@given(field=st.sampled_from(FIELDS), text=TEXT)
def test_problem_fields_are_checked_with_a_clear_message(field, text, capsys):
    name, fname, default = field
    with tempfile.TemporaryDirectory() as tmp:
        # An existing run: a valid field gets as far as refusing to overwrite it.
        out = Path(tmp) / "run"
        out.mkdir()
        (out / "run.json").write_text("{}")
        code = cli.main(["run", name, "--set", f"{fname}={text}", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and _one_clear_line(err), (name, fname, text, err)
        try:
            value = cli._convert(PROBLEMS[name], fname, text)
            PROBLEMS[name](**{fname: value})
            problem_error = None
        except (cli.CLIError, ValueError, TypeError) as e:
            problem_error = str(e).removeprefix("gradflow: ")
        event("valid field value" if problem_error is None else "invalid field value")
        if problem_error is None:
            assert "already holds a run" in err, (name, fname, text, err)
        else:
            # The CLI says what the problem says, and that names the field at fault: this
            # one, or `path` where the dataset is missing (a fresh clone without shared/data).
            assert problem_error.splitlines()[0] in err, (name, fname, text, err)
            assert fname in err or "`path`" in err, (name, fname, text, err)
        assert sorted(p.name for p in out.iterdir()) == ["run.json"]  # the old run untouched


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(solver=st.sampled_from(["tsit5", "bosh3", "dopri5"]), seeds=st.integers(1, 2), save_n=st.integers(3, 6),
       checkpoint=st.booleans(), flow=st.sampled_from(["gradient", "sign"]))
def test_valid_small_runs_complete(solver, seeds, save_n, checkpoint, flow, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = ["run", "least-squares", "--set", "n=6", "--set", "p=3", "--t1", "1", "--seeds", str(seeds),
                "--solver", solver, "--save-n", str(save_n), "--flow", flow, "--out", str(out), "--no-progress",
                *([] if checkpoint else ["--no-checkpoint"])]
        assert cli.main(argv) == 0, capsys.readouterr().err
        run = gf.load(out)
        assert run.ok.all() and run.n_seeds == seeds and run.ts.shape == (save_n,)
        assert np.isfinite(run.obs["loss"]).all() and math.isclose(run.ts[-1], 1.0)
        assert json.loads((out / "run.json").read_text())["config"]["solver"]["class"].lower().endswith(solver)
        assert not (out / "checkpoint").exists()
