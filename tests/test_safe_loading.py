"""Opening a run directory never runs code it names (issue: a run.json naming
`subprocess:Popen` with `args` ran a command when the run was plotted).

Each directory below is crafted as an attacker would: its record is re-signed,
so it passes the checksum, and what refuses it is the loader's rule: a problem
class is only looked up among gradflow's registered problems, or taken from
the caller."""

import json
import subprocess
import sys

import jax.numpy as jnp
import pytest

import gradflow as gf
from gradflow import cli
from gradflow.problems import LeastSquares

from test_run_io import _resign


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    run = gf.simulate(LeastSquares(n=8, p=4), t1=2.0, seeds=2, save=gf.LogGrid(n=5))
    path = tmp_path_factory.mktemp("safe") / "run"
    run.save(path)
    return path


@pytest.fixture
def popen_watch(monkeypatch):
    """Every call of subprocess.Popen (and os.system) is recorded and blocked."""
    calls = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(("Popen", a, k)))
    monkeypatch.setattr("os.system", lambda *a, **k: calls.append(("system", a, k)))
    return calls


def _crafted(saved, tmp_path, record):
    import shutil

    path = tmp_path / "crafted"
    shutil.copytree(saved, path)
    meta = json.loads((path / "run.json").read_text())
    meta["config"]["problem"] = record
    (path / "run.json").write_text(json.dumps(meta))
    _resign(path)
    return path


MARKER = "gradflow-pwned"
RECORDS = [
    {"class": "subprocess:Popen", "fields": {"args": ["touch", MARKER]}},
    {"class": "os:system", "fields": {"command": f"touch {MARKER}"}},
    # a registered class's name in a module outside gradflow: that module is never imported
    {"class": "evil_module_never_imported:LeastSquares", "fields": {}},
]


@pytest.mark.parametrize("record", RECORDS, ids=["Popen", "os.system", "outside-module"])
def test_load_refuses_names_outside_the_registry(saved, tmp_path, monkeypatch, popen_watch, record):
    monkeypatch.chdir(tmp_path)
    path = _crafted(saved, tmp_path, record)
    with pytest.raises(gf.RunFormatError, match="not one of gradflow's problems.*problem=MyProblem"):
        gf.load(path)
    assert popen_watch == [] and not (tmp_path / MARKER).exists()
    assert "evil_module_never_imported" not in sys.modules


def test_load_refuses_a_non_problem_class_passed_explicitly(saved, tmp_path, popen_watch):
    path = _crafted(saved, tmp_path, RECORDS[0])
    with pytest.raises(TypeError, match="AbstractProblem subclass"):
        gf.load(path, problem=subprocess.Popen)
    assert popen_watch == []


@pytest.mark.parametrize("record", RECORDS, ids=["Popen", "os.system", "outside-module"])
def test_plot_refuses_names_outside_the_registry(saved, tmp_path, monkeypatch, popen_watch, capsys, record):
    monkeypatch.chdir(tmp_path)
    path = _crafted(saved, tmp_path, record)
    assert cli.main(["plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not one of gradflow's problems" in err and "--problem module:MyProblem" in err
    assert popen_watch == [] and not (tmp_path / MARKER).exists()


def test_plot_problem_option_must_name_a_problem_class(saved, tmp_path, popen_watch, capsys):
    path = _crafted(saved, tmp_path, RECORDS[0])
    assert cli.main(["plot", str(path), "--problem", "subprocess:Popen"]) == 2
    assert "not a gradflow.AbstractProblem subclass" in capsys.readouterr().err
    assert popen_watch == []


@pytest.mark.parametrize("argv", [["run", "subprocess:Popen"], ["plot", "x"], "run --set args=touch"],
                         ids=["problem-name", "other-command", "not-a-list"])
def test_resume_refuses_a_command_outside_the_registry(tmp_path, popen_watch, capsys, argv):
    directory = tmp_path / "interrupted"
    directory.mkdir()
    (directory / "command.json").write_text(json.dumps({"argv": argv}))
    assert cli.main(["run", "--resume", str(directory), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "unknown problem 'subprocess:Popen'" in err or "does not hold a `gradflow run` command line" in err
    assert popen_watch == []


USER_MODULE = '''
import jax, jax.numpy as jnp
import gradflow as gf

class Quadratic(gf.AbstractProblem):
    """A user's own problem, defined outside gradflow."""
    scale: float = 2.0

    def init(self, key):
        return {"w": jax.random.normal(key, (3,))}, None

    def loss(self, model, data):
        return 0.5 * self.scale * jnp.sum(model["w"] ** 2)
'''


def test_a_user_problem_loads_only_when_its_class_is_passed(tmp_path, monkeypatch, capsys):
    (tmp_path / "user_problems.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_problems

    run = gf.simulate(user_problems.Quadratic(), t1=1.0, seeds=2, save=gf.LogGrid(n=5))
    run.save(tmp_path / "user-run")
    with pytest.raises(gf.RunFormatError, match="problem=MyProblem"):
        gf.load(tmp_path / "user-run")
    assert cli.main(["plot", str(tmp_path / "user-run")]) == 2  # the message says how to pass the class
    assert "--problem module:MyProblem" in capsys.readouterr().err
    back = gf.load(tmp_path / "user-run", problem=user_problems.Quadratic)
    assert back.problem == user_problems.Quadratic() and jnp.array_equal(back.obs["loss"], run.obs["loss"])
    assert cli.main(["plot", str(tmp_path / "user-run"), "--problem", "user_problems:Quadratic"]) == 0
    assert "loss.png" in capsys.readouterr().out
    # --path names the module's folder (here: one not on sys.path yet).
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "more_problems.py").write_text(USER_MODULE)
    assert cli.main(["plot", str(tmp_path / "user-run"), "--problem", "more_problems:Quadratic"]) == 2
    assert "--path DIR" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path / "user-run"), "--problem", "more_problems:Quadratic",
                     "--path", str(other)]) == 0


def test_a_problem_with_a_nested_module_field_loads_and_plots(tmp_path):
    """Found: `gradflow plot DIR` on a scan-and-snap run failed ("field `classes` must
    be a SequenceClasses"): the nested record stayed a dict. It is rebuilt only as
    one of the modules gradflow.problems exports."""
    from gradflow.problems import ScanSnapPopulation

    run = gf.simulate(ScanSnapPopulation(), t1=10.0, seeds=1, save=gf.LogGrid(n=5))
    run.save(tmp_path / "run")
    assert gf.load(tmp_path / "run").problem == run.problem
    assert cli.main(["plot", str(tmp_path / "run")]) == 0
    # A nested record naming anything else is not built: it stays data, and the problem refuses it.
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["config"]["problem"]["fields"]["classes"]["class"] = "subprocess:Popen"
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    _resign(tmp_path / "run")
    with pytest.raises(gf.RunFormatError, match="SequenceClasses"):
        gf.load(tmp_path / "run")


def test_a_sharpness_wrapped_run_loads_and_its_inner_problem_only_from_the_registry(tmp_path, popen_watch):
    """Found: a run of `gf.Sharpness(problem)` did not open ("not one of gradflow's problems"). gradflow's own
    wrappers are a fixed table; their `inner` record is looked up among the registered problems like any other."""
    run = gf.simulate(gf.Sharpness(LeastSquares(n=8, p=3), k=2), t1=1.0, seeds=2, save=gf.LinearGrid(n=3))
    run.save(tmp_path / "run")
    loaded = gf.load(tmp_path / "run")
    assert loaded.problem == run.problem and loaded.obs["sharpness"].shape == (2, 3, 2)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["config"]["problem"]["fields"]["inner"] = {"class": "subprocess:Popen", "fields": {"args": ["touch", MARKER]}}
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    _resign(tmp_path / "run")
    with pytest.raises(gf.RunFormatError, match="Sharpness"):
        gf.load(tmp_path / "run")
    assert popen_watch == []
