"""The `gradflow` command end to end, and its one-line errors."""

import json
import os
import subprocess
import sys

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
    assert {"run.json", "arrays.npz", "loss.png", "fig1a_scores.png", "fig1b_losses.png", "summary.txt"} <= files
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
        (["run", "--rate", "WQ=-2"], "rates"),
        (["run", "--rate", "a=2"], "not trainable"),
        (["run", "--seeds", "two"], "invalid int"),
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
    assert "cooccurrence (default)" in text and "cond = 10.0" in text and "m1 = 256" in text


def test_set_parses_by_field_type():
    _, problem = cli.build_problem("linear-network", ["strengths=2,1", "hidden=6", "data_seed=none"])
    assert problem.strengths == (2.0, 1.0) and problem.hidden == 6 and problem.data_seed is None
    _, problem = cli.build_problem(None, ["distinct_words=false", "init_kind=kaiming", "data_seed=3"])
    assert problem.init_kind == "kaiming" and problem.data_seed == 3 and not problem.distinct_words


def test_bench_accuracy_writes_table_and_figure(tmp_path, capsys):
    out = tmp_path / "acc"
    code = cli.main(["bench", "accuracy", "--problem", "least-squares", "--solvers", "tsit5,euler", "--rtols",
                     "1e-4,1e-7", "--steps", "20", "--seeds", "1", "--t1", "2", "--out", str(out)])
    assert code == 0
    table = json.loads((out / "work_precision.json").read_text())
    errors = {(r["solver"], r["rtol"]): r["param error"] for r in table["rows"] if r["solver"] == "Tsit5"}
    assert errors[("Tsit5", 1e-7)] < errors[("Tsit5", 1e-4)]
    assert table["meta"]["reference verified"] and (out / "work_precision.png").is_file()
    assert "closed-form" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "accuracy", "--solvers", "rk99"], "unknown"),
        (["bench", "accuracy", "--rtols", "-1"], "numbers > 0"),
        (["bench", "accuracy", "--steps", "ten"], "comma-separated"),
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

    return Run(ts=np.linspace(0, 1, 3), obs={"loss": np.ones((1, 3))}, initial={"w": np.zeros((1, 2))},
              final={"w": np.ones((1, 2))}, stats={"status": np.zeros(1, np.int32)}, config={"kind": "simulate"})
