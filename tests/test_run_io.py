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
    assert sorted(p.name for p in path.iterdir()) == ["arrays.eqx", "run.json"]  # no temp files left
    assert isinstance(back.stats, gf.Stats) and back.stats.status.dtype == run.stats.status.dtype
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


def _resign(path):
    """Make run.json's checksum match its (edited) contents, as someone crafting a
    directory by hand could: what is refused then is refused for its content."""
    from gradflow._files import record_digest

    meta = json.loads((path / "run.json").read_text())
    meta["sha256"] = record_digest((path / "arrays.eqx").read_bytes(), meta)
    (path / "run.json").write_text(json.dumps(meta))


def _edit_json(path, edit, resign=True):
    meta = json.loads((path / "run.json").read_text())
    edit(meta)
    (path / "run.json").write_text(json.dumps(meta))
    if resign and (path / "arrays.eqx").exists():
        _resign(path)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "arrays.eqx").write_bytes((p / "arrays.eqx").read_bytes()[:500]), "checksum"),
        (lambda p: (p / "arrays.eqx").unlink(), "no arrays.eqx"),
        (lambda p: (p / "run.json").unlink(), "no run.json"),
        (lambda p: (p / "run.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "run.json").write_text(json.dumps({"format": "something-else"})), "not a gradflow run"),
        (lambda p: _edit_json(p, lambda m: m.update(sha256=("1" if m["sha256"][0] == "0" else "0") + m["sha256"][1:]), resign=False), "checksum"),
        # The checksum covers the record too: an edit to the JSON alone is caught.
        (lambda p: _edit_json(p, lambda m: m["config"].update(t1=1e9), resign=False), "checksum"),
        (lambda p: _edit_json(p, lambda m: m.update(format_version=7)), "format version 7"),
    ],
    ids=["truncated-arrays", "missing-arrays", "missing-json", "bad-json", "foreign-json", "edited-checksum",
         "edited-record", "future-version"],
)
def test_damaged_directories_are_refused(saved, tmp_path, damage, match):
    _, path = saved
    with pytest.raises(gf.RunFormatError, match=match):
        gf.load(_damaged(path, tmp_path, damage))


def _foreign_arrays(path):
    # Well-formed serialised arrays of something else, with the record re-signed to match.
    import equinox as eqx

    eqx.tree_serialise_leaves(path / "arrays.eqx", [np.arange(3.0), np.ones(2)])
    _resign(path)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: _edit_json(p, lambda m: m["arrays"].update({"['obs']['bogus']": [[2, 15], "<f8"]})), "cannot be read"),
        (lambda p: _edit_json(p, lambda m: m.pop("config")), "config"),
        (lambda p: _edit_json(p, lambda m: m["config"]["problem"].update({"class": "nowhere:Nothing"})), "nowhere"),
        (_foreign_arrays, "cannot be read"),
        (lambda p: ((p / "arrays.eqx").write_bytes(b""), _resign(p)), "cannot be read"),
    ],
    ids=["edited-array-list", "json-without-config", "unknown-problem-class", "foreign-arrays", "empty-arrays"],
)
def test_edited_directories_are_refused(saved, tmp_path, damage, match):
    _, path = saved
    with pytest.raises(gf.RunFormatError, match=match):
        gf.load(_damaged(path, tmp_path, damage))


def test_not_a_directory(tmp_path):
    with pytest.raises(gf.RunFormatError, match="not a directory"):
        gf.load(tmp_path / "nothing-here")


def test_a_run_saved_by_gradflow_0_1_still_loads(tmp_path):
    """tests/data/run-format-1 was written by the previous release (format 1: npz arrays,
    the problem class under its old module path): it loads, and the same simulation
    today gives the same numbers (bitwise: same programs, same flags)."""
    from pathlib import Path

    old = gf.load(Path(__file__).parent / "data" / "run-format-1")
    assert isinstance(old.problem, DiagonalLinear) and isinstance(old.stats, gf.Stats)
    now = gf.simulate(old.problem, t1=5.0, seeds=2, save=gf.LogGrid(n=6))
    # The fixture was computed at XLA's default optimisation level, the suite runs at
    # level 0 (conftest): equal to round-off, not bitwise.
    for name in now.obs:
        assert np.allclose(old.obs[name], now.obs[name], rtol=1e-10, atol=1e-14, equal_nan=True), name
    assert np.array_equal(old.stats.steps, now.stats.steps)
    old.save(tmp_path / "resaved")  # written again in today's format
    assert (tmp_path / "resaved" / "arrays.eqx").exists() and gf.load(tmp_path / "resaved").n_seeds == 2


def test_saved_files_follow_the_umask(saved, tmp_path):
    """mkstemp creates files 0600 whatever the umask; a saved run must be readable by
    collaborators when the umask allows (found: runs written 0600)."""
    import os
    import stat

    run, _ = saved
    old = os.umask(0o022)
    try:
        run.save(tmp_path / "shared")
    finally:
        os.umask(old)
    for name in ("run.json", "arrays.eqx"):
        assert stat.S_IMODE((tmp_path / "shared" / name).stat().st_mode) == 0o644, name
