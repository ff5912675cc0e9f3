"""The `gradflow` command end to end, and its one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from gradflow import cli


def test_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "gradflow.cli", "run", "--seeds", "3", "--t1", "5", "--save-n", "30",
         "--set", "hidden=6", "--set", "strengths=2,1", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    for line in ("final loss", "gradient evaluations", "3 ok", "wall time"):
        assert line in proc.stdout
    assert {"run.json", "arrays.npz", "loss.png", "modes.png", "summary.txt"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["problem"]["fields"]["hidden"] == 6 and config["problem"]["fields"]["strengths"] == [2.0, 1.0]
    assert "--set hidden=6" in config["command"]
    # The saved run redraws, and a second run into the same directory needs --force.
    assert cli.main(["plot", str(out)]) == 0
    assert cli.main(["run", "--seeds", "1", "--out", str(out), "--no-progress"]) == 2


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "nonsense"], "unknown problem"),
        (["run", "--set", "foo=1"], "no field 'foo'"),
        (["run", "--set", "hidden=many"], "hidden"),
        (["run", "--set", "d_in=0"], "d_in"),
        (["run", "--set", "hidden"], "FIELD=VALUE"),
        (["run", "--rtol", "0"], "--rtol"),
        (["run", "--t1", "-3"], "--t1"),
        (["run", "--seeds", "0"], "--seeds"),
        (["run", "--solver", "rk4"], "invalid choice"),
        (["run", "--solver", "euler"], "--dt0"),
        (["run", "--rate", "W9=2"], "W9"),
        (["run", "--rate", "W1=-2"], "rates"),
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
    assert "linear-network (default)" in text and "cond = 10.0" in text
