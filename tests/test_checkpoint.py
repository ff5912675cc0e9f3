"""Checkpoint and resume: a segmented solve equals one solve, survives SIGKILL
(also mid-write) and refuses checkpoints of another configuration."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import LeastSquares

# Small and quick to compile: these tests compile in several processes.
NET = LeastSquares(n=8, p=4, cond=100.0)
KW = dict(t1=50.0, seeds=3, save=gf.LogGrid(n=12))


@pytest.fixture(scope="module")
def whole():
    return gf.simulate(NET, **KW)


def _equal(a, b, tol):
    for name in a.obs:
        assert np.allclose(a.obs[name], b.obs[name], rtol=0, atol=tol, equal_nan=True), name
    assert (a.stats["steps"] == b.stats["steps"]).all() and (a.stats["status"] == b.stats["status"]).all()


def test_segments_equal_one_solve(whole, tmp_path):
    run = gf.simulate(NET, **KW, checkpoint_dir=tmp_path / "ck", checkpoint_every=7)
    # Solver and controller state cross segment ends unchanged: measured bitwise equal.
    _equal(run, whole, 1e-12)
    assert (tmp_path / "ck" / "checkpoint.json").exists()
    again = gf.simulate(NET, **KW, checkpoint_dir=tmp_path / "ck", checkpoint_every=7, resume=True)
    _equal(again, whole, 1e-12)  # a finished checkpoint resumes to the same result


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    gf.simulate(NET, **KW, checkpoint_dir=tmp_path, checkpoint_every=50)
    with pytest.raises(ValueError, match="different configuration"):
        gf.simulate(NET, **{**KW, "t1": 6.0}, checkpoint_dir=tmp_path, checkpoint_every=50, resume=True)
    index = json.loads((tmp_path / "checkpoint.json").read_text())
    # The checksum covers the index too: an edit to the JSON alone is caught.
    (tmp_path / "checkpoint.json").write_text(json.dumps({**index, "segment": index["segment"] + 5}))
    with pytest.raises(ValueError, match="checksum"):
        gf.simulate(NET, **KW, checkpoint_dir=tmp_path, checkpoint_every=50, resume=True)
    (tmp_path / "checkpoint.json").write_text(json.dumps(index))
    (tmp_path / index["file"]).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checksum"):
        gf.simulate(NET, **KW, checkpoint_dir=tmp_path, checkpoint_every=50, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every"):
        gf.simulate(NET, **KW, checkpoint_dir=tmp_path, checkpoint_every=0)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        gf.simulate(NET, **KW, resume=True)


SCRIPT = textwrap.dedent("""
    import os, stat, sys, time
    fsync = os.fsync

    def slow_fsync(fd):  # a file's fsync sleeps 50 ms, between writing it and renaming it into place
        if stat.S_ISREG(os.fstat(fd).st_mode):
            time.sleep(0.05)
        fsync(fd)

    os.fsync = slow_fsync  # patched here, in the test's process: the library has no test hook
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np, gradflow as gf
    from gradflow.problems import LeastSquares
    gf.enable_compile_cache(sys.argv[2])
    run = gf.simulate(LeastSquares(n=8, p=4, cond=100.0), t1=50.0, seeds=3, save=gf.LogGrid(n=12),
                      checkpoint_dir=sys.argv[1], checkpoint_every=4, resume=True)
    np.savez(sys.argv[3], steps=run.stats["steps"], status=run.stats["status"],
             **{k.replace("/", "_"): v for k, v in run.obs.items()})
""")


def test_sigkill_at_random_moments_then_resume(whole, tmp_path):
    ck, cache, result = tmp_path / "ck", tmp_path / "cache", tmp_path / "result.npz"
    # Each checkpoint write sleeps 50 ms between writing and renaming (SCRIPT patches os.fsync),
    # so most kills land mid-write.
    # One device, at the suite's optimisation level (conftest): then resuming must give the
    # uninterrupted run bit for bit (across levels the round-off differs, 1.1e-12 measured).
    env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    rng = random.Random(0)
    kills = []
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(ck), str(cache), str(result)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        start_segment = _segment(ck)
        deadline = time.monotonic() + 240
        while _segment(ck) == start_segment and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until this process has written a segment
        time.sleep(rng.uniform(0.0, 0.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append((_segment(ck), sorted(p.name for p in ck.iterdir())))
        else:
            break
    assert len(kills) >= 2, kills  # the run was really interrupted, several times
    final = subprocess.run([sys.executable, "-c", SCRIPT, str(ck), str(cache), str(result)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    got = np.load(result)
    # Resumed from the last complete segment: equal to the uninterrupted run, bit for bit.
    for name in whole.obs:
        np.testing.assert_array_equal(got[name.replace("/", "_")], whole.obs[name], err_msg=name)
    assert (got["steps"] == whole.stats["steps"]).all() and (got["status"] == whole.stats["status"]).all()


def _segment(directory):
    try:
        return json.loads((directory / "checkpoint.json").read_text())["segment"]
    except (OSError, ValueError, KeyError):
        return 0


def test_train_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    import jax
    import optax

    from gradflow import _checkpoint

    kw = dict(steps=300, dt=1e-2, seeds=2, save=gf.LogGrid(n=15))
    whole = gf.train(NET, optax.adam(1e-2), **kw)
    write = _checkpoint.write

    def interrupted(directory, state, fingerprint, segment):
        write(directory, state, fingerprint, segment)
        if segment >= 120:
            raise KeyboardInterrupt  # as if killed after the checkpoint at step 120

    monkeypatch.setattr(_checkpoint, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gf.train(NET, optax.adam(1e-2), **kw, checkpoint_dir=tmp_path, checkpoint_every=40)
    monkeypatch.setattr(_checkpoint, "write", write)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["segment"] == 120
    resumed = gf.train(NET, optax.adam(1e-2), **kw, checkpoint_dir=tmp_path, checkpoint_every=40, resume=True)
    # The same compiled step, the same order of steps: bitwise equal.
    for name in whole.obs:
        assert np.array_equal(resumed.obs[name], whole.obs[name], equal_nan=True), name
    for a, b in zip(jax.tree_util.tree_leaves(resumed.final), jax.tree_util.tree_leaves(whole.final)):
        assert np.array_equal(a, b)
    # Another optimiser (here another learning rate) may not continue these checkpoints.
    assert whole.config["optimizer"] != gf.train(NET, optax.adam(2e-2), **{**kw, "steps": 1}).config["optimizer"]
    with pytest.raises(ValueError, match="different configuration"):
        gf.train(NET, optax.adam(2e-2), **kw, checkpoint_dir=tmp_path, checkpoint_every=40, resume=True)


def test_segment_progress_lines_say_what_they_count(tmp_path, capsys):
    """Found: `segment 3: t = 50 … 50` did not say what the numbers are."""
    gf.simulate(NET, **KW, checkpoint_dir=tmp_path, checkpoint_every=7, progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("segment")]
    assert lines and all("seeds reached t = " in line and f"(of t1 = {KW['t1']:.4g})" in line
                         and "seeds done" in line and "steps so far" in line for line in lines), lines
