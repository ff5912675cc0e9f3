"""benchmarks/gpu.py runs on a CPU (its --quick mode) and reports the GPU rows as not measured."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.slow  # ~35 s of compiles (eight small solves): over the default suite's budget
def test_gpu_script_quick_on_cpu(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import _common

    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    sys.modules.pop("gpu", None)
    import gpu

    monkeypatch.setattr(gpu, "write_json", lambda name, payload: _common.write_json(name, payload))
    results = gpu.main(["--quick", "--repeats", "1", "--out", "gpu_quick"])
    assert (tmp_path / "gpu_quick.json").exists()
    cpu = [r for r in results["latency"] if r.get("device") == "cpu"]
    assert len(cpu) == 2 and all(r["us_per_step"] > 0 and r["kernels_per_step"] > 0 for r in cpu)
    thr = [r for r in results["throughput"] if r.get("device") == "cpu"]
    assert {(r["dtype"], r["seeds"]) for r in thr} == {(d, s) for d in ("float64", "float32") for s in (1, 4)}
    # A batch of seeds does more seed-steps per second than one seed (vmap shares each step's dispatch).
    assert all(r["vs_one_seed"] > 1 for r in thr if r["seeds"] == 4)
    if not any(r.get("device") == "gpu" and "note" not in r for r in results["latency"]):
        assert results["latency"][0]["note"] == gpu.NO_GPU
