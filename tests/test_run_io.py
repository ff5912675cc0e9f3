"""Run save/load: exact round trip, atomic files, damaged directories refused."""

import json
import shutil

import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import DiagonalLinear


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    run = gf.simulate(DiagonalLinear(p=8, n=16), t1=5.0, seeds=2, save=gf.LogGrid(n=15))
    path = tmp_path_factory.mktemp("io") / "run"
    run.save(path)
    return run, path


def test_round_trip(saved):
    run, path = saved
    back = gf.load(path)
    assert back.config == run.config
    assert np.array_equal(back.ts, run.ts)
    for name in run.obs:
        assert np.array_equal(back.obs[name], run.obs[name], equal_nan=True)
    for name in run.stats:
        assert np.array_equal(back.stats[name], run.stats[name])
    assert type(back.final) is type(run.final)
    assert np.array_equal(back.final.u, run.final.u) and np.array_equal(back.initial.v, run.initial.v)
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "run.json"]  # no temp files left
    assert json.loads((path / "run.json").read_text())["config"]["environment"]["x64"] is True


def test_existing_run_is_not_overwritten(saved, tmp_path):
    run, path = saved
    with pytest.raises(FileExistsError, match="force"):
        run.save(path)
    target = tmp_path / "copy"
    run.save(target)
    run.save(target, force=True)
    assert gf.load(target).n_seeds == 2


def _damaged(path, tmp_path, damage):
    copy = tmp_path / "damaged"
    shutil.copytree(path, copy)
    damage(copy)
    return copy


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "arrays.npz").write_bytes((p / "arrays.npz").read_bytes()[:500]), "checksum"),
        (lambda p: (p / "arrays.npz").unlink(), "no arrays.npz"),
        (lambda p: (p / "run.json").unlink(), "no run.json"),
        (lambda p: (p / "run.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "run.json").write_text(json.dumps({"format": "something-else"})), "not a gradflow run"),
        (
            lambda p: (p / "run.json").write_text(
                (p / "run.json").read_text().replace('"arrays_sha256": "', '"arrays_sha256": "0')
            ),
            "checksum",
        ),
    ],
    ids=["truncated-npz", "missing-npz", "missing-json", "bad-json", "foreign-json", "edited-checksum"],
)
def test_damaged_directories_are_refused(saved, tmp_path, damage, match):
    _, path = saved
    with pytest.raises(gf.RunFormatError, match=match):
        gf.load(_damaged(path, tmp_path, damage))


def _edit_json(path, edit):
    meta = json.loads((path / "run.json").read_text())
    edit(meta)
    (path / "run.json").write_text(json.dumps(meta))


def _foreign_arrays(path):
    # A well-formed npz of other arrays, with run.json's checksum made to match it.
    import hashlib

    np.savez(path / "arrays.npz", ts=np.arange(3.0), other=np.ones(2))
    digest = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    _edit_json(path, lambda m: m.update(arrays_sha256=digest))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: _edit_json(p, lambda m: m["obs"].append("bogus")), "bogus"),
        (lambda p: _edit_json(p, lambda m: m.pop("config")), "config"),
        (lambda p: _edit_json(p, lambda m: m["config"]["problem"].update({"class": "nowhere:Nothing"})), "nowhere"),
        (_foreign_arrays, "arrays"),
        (lambda p: (p / "arrays.npz").write_bytes(b""), "checksum"),
    ],
    ids=["edited-obs-list", "json-without-config", "unknown-problem-class", "foreign-arrays", "empty-npz"],
)
def test_edited_directories_are_refused(saved, tmp_path, damage, match):
    _, path = saved
    with pytest.raises(gf.RunFormatError, match=match):
        gf.load(_damaged(path, tmp_path, damage))


def test_not_a_directory(tmp_path):
    with pytest.raises(gf.RunFormatError, match="not a directory"):
        gf.load(tmp_path / "nothing-here")
