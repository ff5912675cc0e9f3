"""The `gradflow` command end to end, and its one-line errors."""

import dataclasses
import json
import os
import subprocess
import sys
import typing

import numpy as np
import pytest

import gradflow as gf
from gradflow import cli


def test_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "gradflow.cli", "run", "--seeds", "3", "--t1", "30", "--save-n", "40",
         "--set", "m=16", "--set", "m1=32", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    # The default problem is the co-occurrence one: its claims table is part of the summary.
    for line in ("Cooccurrence", "final loss", "gradient evaluations", "3 ok", "wall time", "phase 1 ends"):
        assert line in proc.stdout
    files = {p.name for p in out.iterdir()}
    assert {"run.json", "arrays.eqx", "loss.png", "fig1a_scores.png", "fig1b_losses.png", "summary.txt"} <= files
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["problem"]["fields"]["m"] == 16 and config["problem"]["fields"]["m1"] == 32
    assert "--set m=16" in config["command"]
    assert "phase 1 ends" in (out / "summary.txt").read_text()
    # The saved run redraws, and a second run into the same directory needs --force.
    assert cli.main(["plot", str(out)]) == 0
    assert cli.main(["run", "--seeds", "1", "--out", str(out), "--no-progress"]) == 2


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "nonsense"], "unknown problem"),
        (["run", "--set", "foo=1"], "no field 'foo'"),
        (["run", "--set", "m=many"], "m=many"),
        (["run", "--set", "m=0"], "`m`"),
        (["run", "--set", "distinct_words=true"], "n·L"),
        (["run", "linear-network", "--set", "d_in=0"], "d_in"),
        (["run", "--set", "m"], "FIELD=VALUE"),
        (["run", "--rtol", "0"], "--rtol"),
        (["run", "--t1", "-3"], "--t1"),
        (["run", "--seeds", "0"], "--seeds"),
        (["run", "--solver", "rk4"], "invalid choice"),
        (["run", "--solver", "euler"], "--dt0"),
        (["run", "--rate", "W9=2"], "W9"),
        (["run", "--rate", "WQ=-2"], "--rate WQ must be finite"),
        (["run", "--rate", "WQ=fast"], "--rate WQ"),
        (["run", "--flow", "sign", "--eps", "-1"], "--eps"),
        (["run", "--flow", "adam", "--adam-a", "0"], "--adam-a"),
        (["run", "--max-steps", "0"], "--max-steps"),
        (["run", "--save-n", "2"], "--save-n"),
        (["run", "--t1", "10", "--t-min", "20"], "--t-min"),
        (["run", "--checkpoint-every", "0"], "--checkpoint-every"),
        (["run", "--dt0", "nan"], "--dt0"),
        (["run", "text", "--set", "vocab=many"], "cannot read 'many' as int"),
        (["run", "noisy-mnist", "--set", "digits=3"], "cannot read '3' as tuple[int, int]"),
        (["run", "scan-snap", "--set", "classes=fig3"], "cannot express"),
        (["run", "--rate", "a=2"], "not trainable"),
        (["run", "--seeds", "two"], "invalid int"),
        (["run", "--flow", "modified"], "--flow modified needs --lr"),
        (["run", "--observe", "hessian"], "--observe hessian: unknown"),
        (["run", "--observe", "sharpness:0"], "--observe sharpness:k must be an integer >= 1"),
        (["run", "--observe", "sharpness:x"], "--observe sharpness:x: k must be an integer"),
        (["run", "--flow", "momentum", "--beta", "1.5"], "--beta"),
        (["run", "--flow", "momentum", "--beta", "0.9", "--lr", "0.1"], "--lr: not an option of --flow momentum"),
        (["run", "--flow", "heavy-ball", "--gamma", "-1"], "--gamma"),
        (["run", "--flow", "sde", "--lr", "0.1"], "--flow sde needs --batch-size"),
        (["run", "least-squares", "--flow", "sde", "--lr", "0.1", "--batch-size", "2"], "--solver euler and --dt0"),
        (["run", "least-squares", "--flow", "sde", "--lr", "0.1", "--batch-size", "100", "--solver", "euler",
          "--dt0", "0.01"], "--batch-size (100) is larger than the data"),
        (["run", "--flow", "sde", "--lr", "0.1", "--batch-size", "2", "--solver", "euler", "--dt0", "0.01"],
         "per_sample_loss"),
        (["plot", "/nonexistent/run"], "not a directory"),
    ],
)
def test_errors_are_one_line(argv, match, capsys, tmp_path):
    out = tmp_path / "never"
    if argv[0] == "run":
        argv = [*argv, "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradflow: error:") and match in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing half-written


def test_problems_lists_fields(capsys):
    assert cli.main(["problems"]) == 0
    text = capsys.readouterr().out
    assert "cooccurrence (default)" in text and "    cond: float = 10.0\n" in text and "    m1: int = 256\n" in text
    assert "    path: str | None = None\n" in text and "    strengths: tuple[float, ...] = (" in text
    assert "    classes: SequenceClasses = syn_small()\n" in text and "MISSING" not in text
    # Each description is its docstring's first paragraph, not a first line cut mid-formula.
    assert "f_n = c_n / ‖c_n‖, loss E_n CE(Yᵀ f_n, n). Deterministic" in text


class Needs(gf.problems.LeastSquares):
    """A problem with a required field (no default), as a user might register one."""

    label: typing.Literal["a", "b"] = "a"
    scale: float | None = None
    shape: tuple[int, int] = (2, 3)
    flags: tuple[bool, ...] = ()
    required: int = dataclasses.field(kw_only=True)


def test_problems_prints_a_required_field_as_required(capsys, monkeypatch):
    from gradflow.problems import PROBLEMS

    monkeypatch.setitem(PROBLEMS, "needs", Needs)
    assert cli.main(["problems"]) == 0
    text = capsys.readouterr().out
    assert "    required: int (required)\n" in text and "    label: Literal['a', 'b'] = 'a'\n" in text


def test_set_parses_every_annotated_type(tmp_path, monkeypatch):
    """`--set` reads a field by its annotation, for every type the shipped problems use."""
    # str | None: a path (it failed with "cannot read … as NoneType"), and none/null.
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(f"w{i % 37} w{(i * 7) % 11}" for i in range(400)))
    small = ["vocab=40", "context=4", "n_train=16", "n_heldout=8", "d=8"]
    _, problem = cli.build_problem("text", [f"path={corpus}", *small, "init_scale=0.5", "positional=none"])
    assert problem.path == str(corpus) and problem.vocab == 40 and problem.init_scale == 0.5
    assert problem.positional == "none" and problem.data_seed is None  # str "none" stays a str
    with pytest.raises(cli.CLIError, match="field `path`"):  # read as a path: the problem's own message
        cli.build_problem("noisy-mnist", [f"path={tmp_path / 'nowhere'}"])
    # tuple[float, ...], int (also written 1e1), int | None, bool, float from an int
    _, problem = cli.build_problem("linear-network", ["strengths=2,1", "hidden=1e1", "data_seed=none",
                                                      "init_scale=1"])
    assert problem.strengths == (2.0, 1.0) and problem.hidden == 10 and problem.data_seed is None
    assert isinstance(problem.init_scale, float) and problem.init_scale == 1.0
    _, problem = cli.build_problem(None, ["distinct_words=false", "exact_fractions=off", "init_kind=kaiming",
                                         "data_seed=3", "sigma0=null", "sigma1=0.5"])
    assert problem.init_kind == "kaiming" and problem.data_seed == 3 and not problem.distinct_words
    assert problem.exact_fractions is False and problem.sigma0 is None and problem.sigma1 == 0.5
    # tuple[int, int] (parenthesised too), int | None set to a number
    _, problem = cli.build_problem("signal-noise", ["n=8", "d=50", "s=4", "n_test=10"])
    assert (problem.n, problem.d) == (8, 50)
    assert cli.parse_value("(3, 8)", tuple[int, int]) == (3, 8)
    assert cli.parse_value("20", int | None) == 20 and cli.parse_value("NULL", int | None) is None
    # Literal, fixed tuples, bool tuples and a required field (no default) on a registered problem
    from gradflow.problems import PROBLEMS

    monkeypatch.setitem(PROBLEMS, "needs", Needs)
    _, problem = cli.build_problem("needs", ["required=4", "label=b", "scale=2", "shape=4,5", "flags=yes,0"])
    assert (problem.required, problem.label, problem.scale) == (4, "b", 2.0)
    assert problem.shape == (4, 5) and problem.flags == (True, False)
    with pytest.raises(cli.CLIError, match="required"):
        cli.build_problem("needs", ["label=a"])


@pytest.mark.parametrize("field, text, expected", [
    ("label", "c", "Literal['a', 'b']"), ("scale", "big", "float | None"), ("shape", "1,2,3", "tuple[int, int]"),
    ("flags", "maybe", "tuple[bool, ...]"), ("required", "1.5", "int"),
])
def test_set_refuses_text_of_another_type(field, text, expected, monkeypatch):
    from gradflow.problems import PROBLEMS

    monkeypatch.setitem(PROBLEMS, "needs", Needs)
    with pytest.raises(cli.CLIError) as error:
        cli.build_problem("needs", ["required=1", f"{field}={text}"])
    assert str(error.value).startswith(f"--set {field}={text}: cannot read {text!r} as {expected}")


def test_set_fields_of_several_types_in_a_run(tmp_path):
    """str | None, ints, a float and a bool through a real (small) `gradflow run`."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(f"w{i % 37} w{(i * 7) % 11}" for i in range(400)))
    out = tmp_path / "run"
    code = cli.main(["run", "text", "--set", f"path={corpus}", "--set", "vocab=40", "--set", "context=4",
                     "--set", "n_train=16", "--set", "n_heldout=8", "--set", "d=8", "--set", "init_scale=0.5",
                     "--seeds", "1", "--t1", "1", "--save-n", "5", "--no-progress", "--no-checkpoint",
                     "--out", str(out)])
    assert code == 0
    fields = json.loads((out / "run.json").read_text())["config"]["problem"]["fields"]
    assert fields["path"] == str(corpus) and fields["vocab"] == 40 and fields["init_scale"] == 0.5


def test_bench_accuracy_writes_table_and_figure(tmp_path, capsys):
    out = tmp_path / "acc"
    code = cli.main(["bench", "accuracy", "--problem", "least-squares", "--solvers", "tsit5,euler", "--rtols",
                     "1e-4,1e-7", "--steps", "20", "--seeds", "1", "--t1", "2", "--numruns", "2", "--out", str(out)])
    assert code == 0
    table = json.loads((out / "work_precision.json").read_text())
    errors = {(r["solver"], r["rtol"]): r["param error"] for r in table["rows"] if r["solver"] == "Tsit5"}
    assert errors[("Tsit5", 1e-7)] < errors[("Tsit5", 1e-4)]
    assert table["meta"]["reference verified"] and (out / "work_precision.png").is_file()
    assert "closed-form" in capsys.readouterr().out
    assert table["meta"]["numruns"] == 2 and table["meta"]["measure"] == "linf"
    # Found: `gradflow plot` on a bench directory said its save "did not finish".
    (out / "work_precision.png").unlink()
    assert cli.main(["plot", str(out)]) == 0 and (out / "work_precision.png").is_file()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "accuracy", "--solvers", "rk99"], "unknown"),
        (["bench", "accuracy", "--rtols", "-1"], "numbers > 0"),
        (["bench", "accuracy", "--steps", "ten"], "comma-separated"),
        (["bench", "accuracy", "--numruns", "0"], "--numruns"),
        (["bench"], "bench"),
    ],
)
def test_bench_errors_are_one_line(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_resume_an_interrupted_run(tmp_path, monkeypatch):
    from gradflow import _checkpoint

    out, whole_out = tmp_path / "run", tmp_path / "whole"
    common = ["least-squares", "--seeds", "2", "--t1", "50", "--set", "cond=1e4", "--no-progress", "--no-cache",
              "--checkpoint-every", "5"]
    # Uninterrupted, in segments (equal to one solve: tests/test_checkpoint.py), sharing the compiles below.
    assert cli.main(["run", *common, "--out", str(whole_out)]) == 0
    write = _checkpoint.write

    def interrupted(directory, state, fingerprint, segment):
        write(directory, state, fingerprint, segment)
        if segment == 3:
            raise KeyboardInterrupt  # as if Ctrl-C (or a kill) came after the third segment

    monkeypatch.setattr(_checkpoint, "write", interrupted)
    assert cli.main(["run", *common, "--out", str(out)]) == 130
    assert not (out / "run.json").exists() and (out / "checkpoint" / "checkpoint.json").exists()
    monkeypatch.setattr(_checkpoint, "write", write)
    assert cli.main(["run", "--resume", str(out), "--no-cache"]) == 0
    resumed, whole = gf.load(out), gf.load(whole_out)
    assert np.allclose(resumed.obs["loss"], whole.obs["loss"], rtol=0, atol=1e-12, equal_nan=True)
    assert (resumed.stats["steps"] == whole.stats["steps"]).all()
    assert not (out / "checkpoint").exists()  # spent once the run is saved
    assert cli.main(["run", "--resume", str(out)]) == 2  # finished: nothing to resume


def test_the_resume_command_line_carries_every_run_option():
    argv = ["run", "least-squares", "--seeds", "3", "--t1", "7", "--flow", "adam", "--eps", "1e-6", "--adam-a", "50",
            "--adam-b", "2", "--rate", "w=2", "--solver", "heun", "--rtol", "1e-5", "--atol", "1e-9", "--dt0", "0.1",
            "--max-steps", "99", "--save-n", "9", "--t-min", "0.01", "--set", "n=6", "--set", "p=3", "--x32",
            "--no-progress", "--checkpoint-every", "7"]
    args = cli._parser().parse_args(argv)
    again = cli._parser().parse_args(cli._run_argv(args, "OUT", None))
    assert {k for k in vars(args) if getattr(args, k) != getattr(again, k)} == {"out", "force", "devices"}
    assert (again.out, again.force, again.devices) == ("OUT", True, "1")


def test_a_run_where_every_seed_fails_is_saved_and_exits_nonzero(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["run", "least-squares", "--set", "n=6", "--set", "p=3", "--seeds", "2", "--t1", "100",
                     "--max-steps", "3", "--out", str(out), "--no-progress", "--no-checkpoint"])
    captured = capsys.readouterr()
    assert code == 1
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "every seed failed" in err[0] and "max_steps" in err[0], captured.err
    run = gf.load(out)  # what was computed is saved and loads
    assert (run.stats["status"] == gf.Status.MAX_STEPS).all() and (run.stats["steps"] == 3).all()
    assert np.isfinite(run.obs["loss"][:, 0]).all()
    assert "2 max_steps" in (out / "summary.txt").read_text()
    env = run.config["environment"]
    assert env["versions"]["jax"] and env["x64"] is True and "xla_flags" in env
    assert run.config["command"].startswith("gradflow run least-squares")


def test_a_full_disk_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    import shutil

    from gradflow import _files

    full = shutil.disk_usage(tmp_path)._replace(free=1000)  # 1 kB left
    monkeypatch.setattr(_files.shutil, "disk_usage", lambda path: full)
    out = tmp_path / "run"
    assert cli.main(["run", "least-squares", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "MiB are free" in err and "--out" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    # Run.save checks the exact size of what it is about to write.
    run = _small_run()
    with pytest.raises(OSError, match="MiB are free"):
        run.save(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def _small_run():
    from gradflow._run import Run

    per_seed = {k: np.zeros(1) for k in ("steps", "accepted", "rejected", "gradient_evaluations", "result", "t_final")}
    stats = {**per_seed, "status": np.zeros(1, np.int32), "wall_time": 0.0, "compile_time": 0.0}
    return Run(ts=np.linspace(0, 1, 3), obs={"loss": np.ones((1, 3))}, initial={"w": np.zeros((1, 2))},
              final={"w": np.ones((1, 2))}, stats=stats, config={"kind": "simulate"})


def test_debug_keeps_the_original_traceback(monkeypatch, tmp_path, capsys):
    """A failure inside the solve is one line (exit 1) naming it; --debug raises the
    original exception rather than a re-worded one."""
    import gradflow

    def broken(*args, **kwargs):
        raise ValueError("pytree does not match out_structure")

    monkeypatch.setattr(gradflow, "simulate", broken)
    argv = ["run", "least-squares", "--seeds", "1", "--t1", "1", "--no-progress", "--no-cache",
            "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ValueError: pytree does not match out_structure" in err and "--debug" in err
    with pytest.raises(ValueError, match="pytree does not match out_structure"):
        cli.main(["--debug", *argv])


def test_run_with_the_sde_flow(tmp_path):
    # --flow sde end to end: fixed-step Euler–Maruyama, on one device (the default spreads over CPU devices; the
    # SDE's Brownian term cannot yet, so the library falls back with a warning); the run saves and loads.
    out = tmp_path / "sde"
    with pytest.warns(UserWarning, match="one device"):
        code = cli.main(["run", "least-squares", "--flow", "sde", "--lr", "0.1", "--batch-size", "4", "--solver",
                         "euler", "--dt0", "0.05", "--t1", "1", "--seeds", "2", "--save-n", "5", "--no-progress",
                         "--out", str(out)])
    assert code == 0
    run = gf.load(out)
    assert run.config["flow"] == {"class": "SDEFlow", "lr": 0.1, "batch_size": 4, "rates": {}} and run.ok.all()
    assert run.obs["loss"][0, -1] != run.obs["loss"][1, -1]  # each seed its own Brownian path


def test_run_observing_sharpness_keeps_the_problems_report_and_figures(tmp_path, capsys):
    # --observe sharpness wraps the problem in gf.Sharpness: the sharpness is saved and drawn first, and the
    # co-occurrence claims and figures (registered for the inner problem) are still produced.
    out = tmp_path / "sharp"
    code = cli.main(["run", "--observe", "sharpness:2", "--seeds", "2", "--t1", "3", "--set", "m=8", "--set", "m1=8",
                     "--set", "d=16", "--save-n", "6", "--no-progress", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "phase 1 ends" in printed  # the inner problem's claims table
    run = gf.load(out)
    assert run.obs["sharpness"].shape == (2, 6, 2) and (out / "sharpness.png").exists()
    assert (out / "fig1a_scores.png").exists()  # the inner problem's registered figures
