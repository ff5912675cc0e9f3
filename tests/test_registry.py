"""The registry of reports and figures, and each problem's default horizon."""

import dataclasses

import jax.numpy as jnp
import pytest

import gradflow as gf
from gradflow.problems import PROBLEMS
from gradflow.problems._registry import _FIGURES, _REPORTS


class _Quadratic(gf.AbstractProblem):
    def init(self, key):
        return jnp.ones(2), None

    def loss(self, model, data):
        return jnp.sum(model**2)


class _Sub(_Quadratic):
    pass


@dataclasses.dataclass
class _FakeRun:  # report/figures only read `run.problem`
    problem: object


@pytest.fixture
def clean_registry():
    saved = dict(_REPORTS), dict(_FIGURES)
    yield
    _REPORTS.clear(), _REPORTS.update(saved[0])
    _FIGURES.clear(), _FIGURES.update(saved[1])


def test_unregistered_problem_has_no_report_or_figures(tmp_path):
    run = _FakeRun(_Quadratic())
    assert gf.problems.report(run) is None
    assert gf.problems.figures(run, tmp_path / "figs") == []
    assert not (tmp_path / "figs").exists()  # nothing written for a class without figures
    assert gf.problems.report(_FakeRun(None)) is None  # a run loaded without its problem


def test_user_problem_registers_and_subclasses_inherit(tmp_path, clean_registry):
    def figures(run, directory):
        path = directory / "mine.txt"
        path.write_text("x")
        return [str(path)]

    assert gf.problems.register_report(_Quadratic, report=lambda run: "my report", figures=figures) is _Quadratic
    assert gf.problems.report(_FakeRun(_Quadratic())) == "my report"
    assert gf.problems.figures(_FakeRun(_Quadratic()), tmp_path / "new") == [tmp_path / "new" / "mine.txt"]
    assert gf.problems.report(_FakeRun(_Sub())) == "my report"  # found along the MRO
    gf.problems.register_report(_Sub, report=lambda run: "sub")  # replaces the report only
    assert gf.problems.report(_FakeRun(_Sub())) == "sub"
    assert gf.problems.figures(_FakeRun(_Sub()), tmp_path / "sub")[0].name == "mine.txt"


@pytest.mark.parametrize(
    "args, message",
    [((int,), "AbstractProblem subclass"), ((_Quadratic(),), "AbstractProblem subclass"), ((_Quadratic,), "give"),
     ((_Quadratic, 1), "callable")],
)
def test_register_report_refuses_bad_arguments(args, message, clean_registry):
    cls, *report = args
    with pytest.raises(TypeError, match=message):
        gf.problems.register_report(cls, report=report[0] if report else None)


def test_every_paper_problem_with_a_report_is_registered():
    for cls in (gf.problems.Cooccurrence, gf.problems.ScanSnap, gf.problems.ScanSnapPopulation, gf.problems.SignalNoise,
                gf.problems.TeacherStudent):
        assert cls in _REPORTS and cls in _FIGURES


def test_default_horizon_is_a_class_attribute():
    assert gf.AbstractProblem.default_t1 == 10.0
    assert {name: cls.default_t1 for name, cls in PROBLEMS.items()} == {
        "cooccurrence": 300.0, "linear-network": 10.0, "least-squares": 50.0, "diagonal-network": 20.0,
        "teacher-student": 500.0,
        "scan-snap": 1e4, "scan-snap-finite": 1e3, "text": 100.0, "signal-noise": 0.3, "noisy-mnist": 0.3,
        "digits-mlp": 300.0,
    }
    # A class attribute, not a field: not a constructor argument, not in the run's record.
    assert "default_t1" not in {f.name for f in dataclasses.fields(gf.problems.Cooccurrence)}
