"""Scale: seeds sharded over devices, chunked batching, the persistent compile cache."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import LeastSquares, TwoLayerLinear

NET = TwoLayerLinear(init_kind="random", init_scale=0.1)
SAVE = gf.LogGrid(n=12)


@pytest.fixture(scope="module")
def unsharded():
    return gf.simulate(NET, t1=5.0, seeds=6, save=SAVE, batching="map")


def _same_per_seed(a, b, tol):
    for name in a.obs:
        assert np.allclose(a.obs[name], b.obs[name], rtol=0, atol=tol, equal_nan=True), name
    for x, y in zip(jax.tree_util.tree_leaves(a.final), jax.tree_util.tree_leaves(b.final)):
        assert np.allclose(x, y, rtol=0, atol=tol)
    assert (a.stats["steps"] == b.stats["steps"]).all() and (a.stats["status"] == b.stats["status"]).all()


def test_sharded_over_four_devices_equals_unsharded(unsharded):
    batching = "map"  # vmap inside each device is the same code path (batch_over_seeds), tested unsharded
    assert len(jax.devices()) >= 4, "conftest sets XLA_FLAGS for 4 CPU devices"
    # 6 seeds over 4 devices: uneven, so padding is exercised too.
    run = gf.simulate(NET, t1=5.0, seeds=6, save=SAVE, batching=batching, devices=4)
    assert run.config["devices"] == [str(d) for d in jax.devices()[:4]]
    # Each device runs the same per-seed arithmetic: equal to float64 round-off.
    _same_per_seed(run, unsharded, 1e-12)
    # Seeds keep their own step counts on every device (no global lockstep).
    assert len(set(run.stats["steps"].tolist())) > 1


def test_checkpointed_segments_over_devices_equal_unsharded(unsharded, tmp_path):
    # Segments of 7 steps over 2 devices (6 seeds, 3 per device): the carried
    # solver state is sharded like the seeds, so the result is unchanged.
    run = gf.simulate(NET, t1=5.0, seeds=6, save=SAVE, batching="map", devices=2,
                      checkpoint_dir=tmp_path, checkpoint_every=7)
    assert run.stats["steps"].max() > 2 * 7, "several segments"
    _same_per_seed(run, unsharded, 1e-12)


def test_chunked_batching_equals_unchunked(unsharded):
    # 8 seeds in chunks of 4 (no remainder chunk: one compile); the first 6 are `unsharded`'s.
    chunked = gf.simulate(NET, t1=5.0, seeds=8, save=SAVE, batching="map", batch_size=4)
    _same_per_seed(chunked.select(range(6)), unsharded, 1e-12)


def test_bad_devices_are_refused_before_compiling():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        gf.simulate(NET, t1=1.0, devices=len(jax.devices()) + 1)
    with pytest.raises(ValueError, match="'all'"):
        gf.simulate(NET, t1=1.0, devices="every")
    with pytest.raises(TypeError, match="devices"):
        gf.simulate(NET, t1=1.0, devices=[0, 1])


SCRIPT = textwrap.dedent("""
    import sys, jax
    jax.config.update("jax_enable_x64", True)
    counts = {"hits": 0, "misses": 0}
    def _count(event, **kwargs):
        for name in counts:
            counts[name] += event == f"/jax/compilation_cache/cache_{name}"
    jax.monitoring.register_event_listener(_count)
    import gradflow as gf
    from gradflow.problems import LeastSquares
    directory = gf.enable_compile_cache(sys.argv[1])
    run = gf.simulate(LeastSquares(n=6, p=3), t1=1.0, seeds=2, save=gf.LinearGrid(n=3))
    run.save(sys.argv[2])
    print(counts["hits"], counts["misses"])
""")


def test_compile_cache_writes_and_is_reused(tmp_path):
    cache = tmp_path / "cache"
    # The processes compile with this one's XLA flags (conftest: optimisation level 0),
    # so all three must give the same bits.
    env = dict(os.environ)
    runs = []

    def once():
        runs.append(tmp_path / f"run{len(runs)}")
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(cache), str(runs[-1])], capture_output=True,
                             text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        files = {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
        hits, misses = map(int, out.stdout.split()[-2:])
        return (hits, misses), files

    first, files = once()
    # JAX's own entries, keyed on the lowered programs (the draw of the seeds and the solve); nothing else.
    assert len(files) >= 2 and all(n.endswith("-cache") or n.endswith("-atime") for n in files), sorted(files)
    second, files_again = once()
    # A hit reads the entries back and writes nothing new.
    assert files_again == files, (sorted(files), sorted(files_again))
    # XLA compilation is skipped: JAX's own counters say every compile of the second process was a
    # cache hit, and the first compiled (missed) as many programs (counted, not timed: timings flake under load).
    assert first[0] == 0 and first[1] >= 2 and second == (first[1], 0), (first, second)
    # Reproducible: the two processes (one compiling cold, one from the cache) and this
    # one (its own compile, no cache) save bitwise-identical arrays.
    here = gf.simulate(LeastSquares(n=6, p=3), t1=1.0, seeds=2, save=gf.LinearGrid(n=3))
    for directory in runs:
        saved = gf.load(directory)
        for name in here.obs:
            assert np.array_equal(saved.obs[name], here.obs[name], equal_nan=True), name
        for a, b in zip(jax.tree_util.tree_leaves((saved.initial, saved.final)),
                        jax.tree_util.tree_leaves((here.initial, here.final))):
            assert np.array_equal(a, b)
        for key in ("steps", "status", "t_final", "gradient_evaluations"):
            assert np.array_equal(saved.stats[key], here.stats[key]), key


TWO_HOSTS = textwrap.dedent("""
    import sys, jax
    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
    import numpy as np, gradflow as gf
    from gradflow.problems import TwoLayerLinear
    run = gf.simulate(TwoLayerLinear(init_kind="random", init_scale=0.1), t1=5.0, seeds=6, save=gf.LogGrid(n=12),
                      batching="map", devices="all")
    assert jax.process_count() == 2 and len(run.config["devices"]) == 4
    np.savez(sys.argv[3], loss=run.obs["loss"], steps=run.stats["steps"])
""")


# ~20 s of two fresh processes: back in the default suite since it compiles at optimisation
# level 0 (conftest) and the whole suite takes ~6 min on 2 cores.
def test_two_processes_over_localhost_equal_one(unsharded, tmp_path):
    import socket

    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    procs = [subprocess.Popen([sys.executable, "-c", TWO_HOSTS, address, str(i), str(tmp_path / f"p{i}.npz")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    for i in (0, 1):  # every process gathers every seed
        got = np.load(tmp_path / f"p{i}.npz")
        assert np.allclose(got["loss"], unsharded.obs["loss"], rtol=0, atol=1e-12)
        assert (got["steps"] == unsharded.stats["steps"]).all()


def test_an_implicit_solver_over_devices_runs_on_one_and_warns():
    """Kvaerno5 under shard_map failed inside lineax ("pytree does not match
    out_structure"): it now runs on one device, with a warning, and gives the
    single-device result."""
    import diffrax as dfx

    from gradflow.problems import LeastSquares

    kw = dict(t1=20.0, seeds=4, save=gf.LogGrid(n=5), solver=dfx.Kvaerno5(),
              stepsize_controller=dfx.PIDController(rtol=1e-6, atol=1e-8))
    one = gf.simulate(LeastSquares(n=8, p=4, cond=1e3), **kw)
    with pytest.warns(UserWarning, match="Kvaerno5 is an implicit solver: the seeds run on one device"):
        spread = gf.simulate(LeastSquares(n=8, p=4, cond=1e3), **kw, devices=2)
    assert np.array_equal(one.obs["loss"], spread.obs["loss"], equal_nan=True)
    assert spread.config["devices"] is None
