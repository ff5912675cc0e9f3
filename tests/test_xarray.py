"""`Run.to_xarray()`: the Dataset holds the Run's values under the Run's names and
dimensions, and round-trips through netCDF (or zarr) unchanged."""

import importlib.util
import json

import numpy as np
import pytest

import gradflow as gf

xr = pytest.importorskip("xarray", reason="xarray is not installed (pip install 'gradflow[xarray]'); "
                                             "Run.to_xarray is optional")

# The netCDF engines xarray can write with, best first (scipy writes netCDF3, which has no int64).
ENGINES = [e for e, module in (("netcdf4", "netCDF4"), ("h5netcdf", "h5py"), ("scipy", "scipy"))
           if importlib.util.find_spec(module) and (e != "h5netcdf" or importlib.util.find_spec("h5netcdf"))]


@pytest.fixture(scope="module")
def run():
    """A real (small) run with a vector observable: `modes`, (seeds, times, 3)."""
    problem = gf.problems.TwoLayerLinear(strengths=(3.0, 2.0, 1.0))
    return gf.simulate(problem, t1=2.0, seeds=3, save=gf.LogGrid(n=12, t_min=1e-2), progress=False)


def synthetic_run():
    """A Run with a matrix observable, NaNs after a failed seed, and an observable named
    like a stat (`steps`): the collision is resolved as documented (`stats_steps`)."""
    rng = np.random.default_rng(0)
    seeds, times = 4, 5
    obs = {"loss": rng.random((seeds, times)), "W": rng.random((seeds, times, 2, 3)),
           "steps": rng.integers(0, 9, (seeds, times))}
    obs["loss"][2, 3:] = np.nan
    stats = gf.Stats(steps=np.array([5, 6, 7, 8]), accepted=np.array([5, 6, 6, 8]), rejected=np.array([0, 0, 1, 0]),
                     gradient_evaluations=np.array([30, 36, 42, 48]), status=np.array([0, 1, 3, 0], np.int32),
                     result=np.array([0, 0, 1, 0]), t_final=np.array([1.0, 0.5, 0.3, 1.0]),
                     wall_time=0.25, compile_time=1.5, started_at=1.7e9)
    config = {"kind": "simulate", "problem": {"class": "mine:Problem", "fields": {"n": 3}}, "seeds": [10, 11, 12, 13],
              "nested": {"list": [1, 2.5, None], "flag": True}}
    return gf.Run(np.linspace(0.0, 1.0, times), obs, None, None, stats, config)


def check_equal(ds, run, exact_dtypes=True):
    """`ds` holds exactly the run's observables, per-seed stats and config (netCDF3, the
    scipy engine's format, has no 64-bit integers: there only the values are compared)."""
    assert ds.sizes["seed"] == run.n_seeds and np.array_equal(ds["time"].values, run.ts)
    stat_names = {("stats_" + k if k in run.obs else k): k for k in gf.Stats.PER_SEED}
    assert set(ds.data_vars) == set(run.obs) | set(stat_names)
    for name, values in run.obs.items():
        var = ds[name]
        assert var.dims == ("seed", "time") + tuple(f"{name}_dim{i}" for i in range(values.ndim - 2))
        assert var.shape == values.shape and (var.dtype == values.dtype or not exact_dtypes)
        np.testing.assert_array_equal(var.values, values)  # NaN where the run has NaN
    for var_name, stat in stat_names.items():
        assert ds[var_name].dims == ("seed",)
        np.testing.assert_array_equal(ds[var_name].values, run.stats[stat])
    assert json.loads(ds.attrs["config"]) == run.config
    assert ds.attrs["kind"] == run.config["kind"]
    for k in ("wall_time", "compile_time"):
        assert ds.attrs[k] == float(run.stats[k])
    status = ds["stats_status" if "status" in run.obs else "status"]
    meanings = dict(zip(np.asarray(status.attrs["flag_values"]).tolist(), status.attrs["flag_meanings"].split()))
    assert [meanings[int(c)] for c in status.values] == [s.name.lower() for s in run.status]


def test_to_xarray_holds_the_runs_values_dimensions_and_names(run):
    ds = run.to_xarray()
    check_equal(ds, run)
    assert ds["modes"].dims == ("seed", "time", "modes_dim0") and ds.sizes["modes_dim0"] == 3
    assert np.array_equal(ds["seed"].values, run.config["seeds"])
    labels = run.problem.describe_observables()
    for name, label in labels.items():
        if name in ds:
            assert ds[name].attrs["long_name"] == label


def test_to_xarray_synthetic_run_with_nans_collisions_and_matrices():
    synthetic = synthetic_run()
    ds = synthetic.to_xarray()
    check_equal(ds, synthetic)
    assert ds["W"].dims == ("seed", "time", "W_dim0", "W_dim1")
    assert "stats_steps" in ds and np.array_equal(ds["seed"].values, [10, 11, 12, 13])


@pytest.mark.skipif(not ENGINES, reason="no netCDF engine installed (netCDF4, h5netcdf or scipy)")
def test_to_xarray_round_trips_through_netcdf(run, tmp_path):
    engine = ENGINES[0]
    for which, r in (("real", run), ("synthetic", synthetic_run())):
        path = tmp_path / f"{which}.nc"
        r.to_xarray().to_netcdf(path, engine=engine)
        with xr.open_dataset(path, engine=engine) as back:
            back = back.load()
        check_equal(back, r, exact_dtypes=engine != "scipy")
        if engine != "scipy":
            xr.testing.assert_identical(back, r.to_xarray())


@pytest.mark.skipif(importlib.util.find_spec("zarr") is None, reason="zarr is not installed")
def test_to_xarray_round_trips_through_zarr(run, tmp_path):
    ds = run.to_xarray()
    ds.to_zarr(tmp_path / "run.zarr")
    with xr.open_zarr(tmp_path / "run.zarr") as back:
        check_equal(back.load(), run)


def test_to_xarray_without_xarray_says_what_to_install(run, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_xarray(name, *args, **kwargs):
        if name == "xarray":
            raise ImportError("No module named 'xarray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xarray)
    with pytest.raises(ImportError, match=r"gradflow\[xarray\]"):
        run.to_xarray()
