"""Scale: seeds sharded over devices, chunked batching, the persistent compile cache."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import gradflow as gf
from gradflow.problems import TwoLayerLinear

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


@pytest.mark.parametrize("batching", ["map", "vmap"])
def test_sharded_over_four_devices_equals_unsharded(unsharded, batching):
    assert len(jax.devices()) >= 4, "conftest sets XLA_FLAGS for 4 CPU devices"
    # 6 seeds over 4 devices: uneven, so padding is exercised too.
    run = gf.simulate(NET, t1=5.0, seeds=6, save=SAVE, batching=batching, devices=4)
    assert run.config["devices"] == [str(d) for d in jax.devices()[:4]]
    # Each device runs the same per-seed arithmetic: equal to float64 round-off.
    _same_per_seed(run, unsharded, 1e-12)
    # Seeds keep their own step counts on every device (no global lockstep).
    assert len(set(run.stats["steps"].tolist())) > 1


def test_chunked_batching_equals_unchunked(unsharded):
    chunked = gf.simulate(NET, t1=5.0, seeds=6, save=SAVE, batching="map", batch_size=4)
    _same_per_seed(chunked, unsharded, 1e-12)


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
    import gradflow as gf
    from gradflow.problems import LeastSquares
    directory = gf.enable_compile_cache(sys.argv[1])
    run = gf.simulate(LeastSquares(n=6, p=3), t1=1.0, seeds=1, save=gf.LinearGrid(n=3))
    print(float(run.stats["compile_time"]))
""")


def test_compile_cache_writes_and_is_reused(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "XLA_FLAGS": ""}

    def once():
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], capture_output=True, text=True, env=env,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        return float(out.stdout.split()[-1]), {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}

    first, files = once()
    assert any(n.startswith("jit_mapped") for n in files), sorted(files)  # the solve itself is cached
    second, files_again = once()
    # A hit reads the entries back and writes nothing new.
    assert files_again == files, (sorted(files), sorted(files_again))
    # XLA compilation is skipped; what remains is tracing and lowering.
    assert second < first, (first, second)
