"""`Run`: the result of `simulate` or `train`, and its save/load."""

import dataclasses
import io
import json
from collections import Counter
from pathlib import Path

import equinox as eqx
import jax
import jax.tree_util as jtu
import numpy as np

from ._devices import keys_from_record
from ._files import atomic_write, check_free_space, record_digest, sha256_file
from ._status import Status, describe

FORMAT = "gradflow-run"
FORMAT_VERSION = 2  # 2: arrays through Equinox's leaf serialisation, one checksum over arrays and record
_META = "run.json"
_ARRAYS = "arrays.eqx"
_ARRAYS_V1 = "arrays.npz"


def _is_array_like(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def split_arrays(model):
    """(array leaves, everything else) of a model or its `eval_shape`."""
    return eqx.partition(model, _is_array_like)


def leaf_names(tree) -> list[str]:
    return [jtu.keystr(p) for p, _ in jtu.tree_flatten_with_path(tree)[0]]


@dataclasses.dataclass(frozen=True, eq=False)
class Stats:
    """Per-seed counters and per-call timings of a run.

    **Attributes:**

    Per seed (arrays of shape (seeds,)):

    - `steps`, `accepted`, `rejected`, `gradient_evaluations`: the counters.
    - `status`: a `gradflow.Status` code.
    - `result`: diffrax's result code; 0 for `train`.
    - `t_final`: the time the seed's run ended.
    - `hessian_vector_products`: how many the seed's run made: `gradflow.Sharpness`'s
      Lanczos steps at every save, and one per vector-field evaluation of
      `gradflow.ModifiedFlow`; 0 where none.

    Per call (0-d arrays):

    - `wall_time`, `compile_time`: in seconds.
    - `started_at`: Unix time the compiled solve began; NaN where unknown.

    `stats["steps"]` reads a field by name, as a dict would.
    """

    steps: np.ndarray
    accepted: np.ndarray
    rejected: np.ndarray
    gradient_evaluations: np.ndarray
    status: np.ndarray
    result: np.ndarray
    t_final: np.ndarray
    wall_time: np.ndarray
    compile_time: np.ndarray
    started_at: np.ndarray = np.nan
    hessian_vector_products: np.ndarray | None = None  # None: zeros (runs saved before it existed)

    PER_SEED = ("steps", "accepted", "rejected", "gradient_evaluations", "status", "result", "t_final",
                "hessian_vector_products")

    def __post_init__(self):
        if self.hessian_vector_products is None:
            object.__setattr__(self, "hessian_vector_products", np.zeros(np.shape(self.steps)))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, np.asarray(getattr(self, f.name)))
        shapes = {np.shape(getattr(self, k)) for k in self.PER_SEED}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"Stats: per-seed fields must be 1-d arrays of one length; got shapes {shapes}.")

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.keys():
            raise KeyError(f"{name!r}: run stats are {list(self.keys())}")
        return getattr(self, name)

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, name) -> bool:
        return name in self.keys()

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]

    def items(self):
        return [(k, getattr(self, k)) for k in self.keys()]

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(self.items())

    def select(self, idx) -> "Stats":
        """The stats of the seeds `idx` (per-call timings kept)."""
        return Stats(**{k: (v[idx] if k in self.PER_SEED else v) for k, v in self.items()})


class Run:
    """Results of one `simulate` or `train` call over a batch of seeds.

    **Attributes:**

    - `ts`: save times, shape (times,); for `train`, step × dt.
    - `obs[name]`: shape (seeds, times, ...); NaN after a seed stopped or failed.
    - `initial`, `final`: the problem's model with a leading seed axis on every
      array (`run.final.W[k]` is seed k's W at its final time).
    - `stats`: a `Stats`: per seed `steps`, `accepted`, `rejected`,
      `gradient_evaluations`, `status` (a `gradflow.Status`), `result`
      (diffrax's code), `t_final`; per call `wall_time` and `compile_time`
      (seconds) and `started_at` (Unix time the compiled solve began).
    - `config`: a JSON-serialisable record of everything that produced it.
    - `problem`: the problem the run was made with (None where unknown).

    `run.save(dir)` writes it to a directory and `gradflow.load(dir)` reads it
    back; `run.to_xarray()` gives it as a labelled `xarray.Dataset`.
    """

    def __init__(self, ts, obs, initial, final, stats, config, problem=None):
        self.ts = np.asarray(ts)
        self.obs = {k: np.asarray(v) for k, v in obs.items()}
        self.initial = initial
        self.final = final
        self.stats = stats if isinstance(stats, Stats) else Stats(**stats)
        self.config = config
        self.problem = problem

    # ---- per-seed outcome -------------------------------------------------
    @property
    def n_seeds(self) -> int:
        return int(self.stats["status"].shape[0])

    @property
    def status(self) -> list[Status]:
        return [Status(int(c)) for c in self.stats["status"]]

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of seeds that reached t1 or their stop condition."""
        return np.array([not s.failed for s in self.status])

    @property
    def messages(self) -> list[str]:
        return describe(self.stats["status"], self.config.get("kind", "simulate"))

    def last(self, name: str) -> np.ndarray:
        """Each seed's last finite saved value of observable `name`."""
        values = self.obs[name]
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        finite = np.all(np.isfinite(flat), axis=-1)
        idx = np.where(finite.any(axis=1), finite.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1), 0)
        return values[np.arange(values.shape[0]), idx]

    def select(self, seeds) -> "Run":
        """A new Run with only the given seed indices (per-call stats are kept)."""
        idx = np.asarray(seeds)
        take = lambda x: x[idx] if isinstance(x, np.ndarray) and x.ndim >= 1 else x  # noqa: E731
        return Run(
            self.ts,
            {k: v[idx] for k, v in self.obs.items()},
            jtu.tree_map(lambda x: take(np.asarray(x)), self.initial),
            jtu.tree_map(lambda x: take(np.asarray(x)), self.final),
            self.stats.select(idx),
            json.loads(json.dumps(self.config)),
            problem=self.problem,
        )

    def summary(self) -> str:
        """A short table: final loss over seeds, cost, failures, time."""
        loss = self.last("loss")
        ok = self.ok
        good = loss[ok & np.isfinite(loss)]
        counts = Counter(s.name.lower() for s in self.status)
        kind = self.config.get("kind", "simulate")
        rows = [
            ("kind", kind),
            ("problem", self.config.get("problem", {}).get("class", "?").split(":")[-1]),
            ("seeds", f"{self.n_seeds} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})"),
            ("t1", f"{self.ts[-1]:.6g}"),
            (
                "final loss",
                f"{good.mean():.6g} ± {good.std():.2g} (min {good.min():.3g}, max {good.max():.3g})"
                if good.size
                else "no successful seed",
            ),
            ("steps", _spread(self.stats["steps"])),
            ("gradient evaluations", _spread(self.stats["gradient_evaluations"])),
            ("wall time", f"{float(self.stats['wall_time']):.3f} s (+ compile {float(self.stats['compile_time']):.2f} s)"),
        ]
        if np.any(self.stats["hessian_vector_products"] > 0):
            rows.insert(-1, ("Hessian–vector products", _spread(self.stats["hessian_vector_products"])))
        if not good.size and np.isfinite(loss).any():  # what is known of the failed seeds' losses
            rows.append(("last saved loss", _spread_float(loss[np.isfinite(loss)])))
        width = max(len(r[0]) for r in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        return "\n".join(lines + self._failures())

    def _failures(self) -> list[str]:
        """Failed seeds grouped by status: which seeds, the time each reached, and the
        message once per group."""
        status, t_final = np.asarray(self.stats["status"]), np.asarray(self.stats["t_final"], dtype=float)
        lines = []
        for code in sorted(set(status.tolist())):
            if not Status(code).failed:
                continue
            seeds = np.flatnonzero(status == code)
            reached = ", ".join(f"{k}: t = {t_final[k]:.4g}" for k in seeds[:8]) + (" …" if len(seeds) > 8 else "")
            lines.append(f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} {Status(code).name.lower()} "
                         f"(reached, of t1 = {self.ts[-1]:.6g}: {reached})")
            lines.append(f"  {describe([code], self.config.get('kind', 'simulate'))[0].split(': ', 1)[1]}")
        return lines

    def __repr__(self):
        return (
            f"Run({self.config.get('kind', 'simulate')}, seeds={self.n_seeds}, "
            f"times={self.ts.shape[0]}, obs={sorted(self.obs)})"
        )

    # ---- labelled arrays ---------------------------------------------------
    def to_xarray(self):
        """The run as an `xarray.Dataset` (needs the optional `xarray` package:
        `pip install "gradflow[xarray]"`).

        **Returns:**

        A `Dataset` with

        - dimensions `seed`, `time` and each observable's own axes, named
          `{observable}_dim{i}` (e.g. `modes_dim0`); coordinates `seed` (the seed
          ids the run was drawn with, else 0, 1, ...) and `time` (`run.ts`);
        - one variable per observable, `(seed, time, ...)`, labelled
          (`long_name`) by the problem's `describe_observables()`;
        - one variable per per-seed stat, `(seed,)`: `steps`, `accepted`,
          `rejected`, `gradient_evaluations`, `status` (with CF `flag_values` /
          `flag_meanings` naming each `gradflow.Status`), `result`, `t_final`. A
          stat whose name an observable already has is called `stats_{name}`;
        - `attrs`: `config` (the run's record as a JSON string, so that it
          survives netCDF; `json.loads(ds.attrs["config"]) == run.config`),
          `kind`, `problem`, and the per-call `wall_time`, `compile_time` and
          `started_at` (seconds; Unix time).

        It writes to netCDF (`ds.to_netcdf(path)`, with netCDF4, h5netcdf or
        scipy installed) or zarr and reads back equal. The models (`initial`,
        `final`) are not included: save the run with `Run.save` for those.
        """
        try:
            import xarray as xr
        except ImportError:
            raise ImportError('Run.to_xarray needs xarray: pip install "gradflow[xarray]".') from None
        labels = {}
        describe = getattr(self.problem, "describe_observables", None)
        if callable(describe):
            labels = dict(describe())
        ids = self.config.get("seeds")
        if isinstance(ids, (list, tuple)) and len(ids) == self.n_seeds and all(isinstance(i, int) for i in ids):
            seed = np.asarray(ids, dtype=np.int64)
        else:
            seed = np.arange(self.n_seeds, dtype=np.int64)
        variables = {}
        for name, values in sorted(self.obs.items()):
            dims = ("seed", "time") + tuple(f"{name}_dim{i}" for i in range(values.ndim - 2))
            attrs = {"long_name": str(labels[name])} if name in labels else {}
            variables[name] = xr.Variable(dims, values, attrs)
        for name in Stats.PER_SEED:
            attrs = {}
            if name == "status":
                attrs = {"flag_values": np.array([int(s) for s in Status], dtype=np.int64),
                         "flag_meanings": " ".join(s.name.lower() for s in Status)}
            variables["stats_" + name if name in variables else name] = xr.Variable(
                ("seed",), np.asarray(self.stats[name]), attrs)
        attrs = {
            "config": json.dumps(self.config, allow_nan=False),
            "kind": str(self.config.get("kind", "simulate")),
            "problem": str(self.config.get("problem", {}).get("class", "")),
            **{k: float(self.stats[k]) for k in ("wall_time", "compile_time", "started_at")},
        }
        return xr.Dataset(variables, coords={"seed": seed, "time": np.asarray(self.ts)}, attrs=attrs)

    # ---- save / load -------------------------------------------------------
    def save(self, path, *, force: bool = False) -> Path:
        """Write `arrays.eqx` (Equinox leaf serialisation) and `run.json` into
        directory `path` atomically.

        The arrays are written first and `run.json` last, each to a temporary file
        renamed into place, so a directory either loads completely or is refused.
        `run.json` holds one SHA-256 over the arrays file and the record itself,
        so an edit to either is detected. An existing run is not overwritten
        unless `force=True`.
        """
        path = Path(path)
        if (path / _META).exists() and not force:
            raise FileExistsError(f"{path} already holds a run; pass force=True (CLI: --force) to overwrite it.")
        tree = self._arrays()
        check_free_space(path, sum(x.nbytes for x in jtu.tree_leaves(tree)), "the run")
        path.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, tree)
        data = buffer.getvalue()
        atomic_write(path / _ARRAYS, lambda f: f.write(data))
        (path / _ARRAYS_V1).unlink(missing_ok=True)  # an older run's arrays, overwritten with force
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config,
            "arrays": {name: [list(leaf.shape), leaf.dtype.str] for name, leaf in _named(tree)},
            "models": {w: leaf_names(split_arrays(getattr(self, w))[0]) for w in ("initial", "final")},
        }
        meta["sha256"] = record_digest(data, meta)
        text = json.dumps(meta, indent=1, allow_nan=False).encode()
        atomic_write(path / _META, lambda f: f.write(text))
        return path

    def _arrays(self) -> dict:
        """Every array of the run as one pytree of numpy arrays (what is saved)."""
        return {
            "ts": np.asarray(self.ts),
            "obs": {k: np.asarray(v) for k, v in sorted(self.obs.items())},
            "stats": {k: np.asarray(v) for k, v in self.stats.items()},
            "initial": [np.asarray(x) for x in jtu.tree_leaves(split_arrays(self.initial)[0])],
            "final": [np.asarray(x) for x in jtu.tree_leaves(split_arrays(self.final)[0])],
        }


def _named(tree) -> list:
    return [(jtu.keystr(p), leaf) for p, leaf in jtu.tree_flatten_with_path(tree)[0]]


def _spread_float(x) -> str:
    x = np.asarray(x, dtype=float)
    return f"median {np.median(x):.4g} (min {x.min():.3g}, max {x.max():.3g}) over {x.size} seeds"


def _spread(x) -> str:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return "n/a"
    if x.min() == x.max():
        return f"{x.min():.0f}"
    return f"median {np.median(x):.0f} (min {x.min():.0f}, max {x.max():.0f})"


class RunFormatError(ValueError):
    """A directory that is not a complete, intact gradflow run."""


def read(path) -> tuple[dict, dict]:
    """(the run record, its arrays) from a directory written by `Run.save`, checked
    against the record's checksum; nothing in it is imported or called. Runs of
    format version 1 (npz arrays, before gradflow 0.2) are read too. Raises
    `RunFormatError` for anything else."""
    path = Path(path)
    meta_path = path / _META
    if not path.is_dir():
        raise RunFormatError(f"{path} is not a directory holding a gradflow run.")
    if not meta_path.exists():
        raise RunFormatError(f"{path} has no {_META}: not a gradflow run, or its save did not finish.")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFormatError(f"{meta_path} is not valid JSON ({e}); the run is corrupted.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RunFormatError(f"{meta_path} is not a gradflow run record.")
    version = meta.get("format_version")
    if version == 1:
        return _read_v1(path, meta)
    if version != FORMAT_VERSION:
        raise RunFormatError(f"{path}: run format version {version!r} is not supported by this gradflow "
                             f"(it reads versions 1 and {FORMAT_VERSION}); load it with the gradflow that wrote it.")
    for key in ("config", "arrays", "models", "sha256"):
        if key not in meta:
            raise RunFormatError(f"{meta_path} lacks {key!r}; the run record is corrupted.")
    arrays_path = path / _ARRAYS
    try:
        data = arrays_path.read_bytes()
    except OSError:
        raise RunFormatError(f"{path} has no {_ARRAYS}; the run is incomplete.") from None
    if record_digest(data, meta) != meta["sha256"]:
        raise RunFormatError(f"{path}: {_ARRAYS} or {_META} does not match the run's checksum: truncated or modified.")
    try:
        names = list(meta["arrays"])
        like = {name: np.empty(shape, np.dtype(dtype)) for name, (shape, dtype) in meta["arrays"].items()}
        template = _template(names, like)
        arrays = eqx.tree_deserialise_leaves(io.BytesIO(data), template)
        for (name, got), want in zip(_named(arrays), jtu.tree_leaves(template)):
            if got.shape != want.shape or got.dtype != want.dtype:
                raise ValueError(f"{name} is {got.shape} {got.dtype}, the record says {want.shape} {want.dtype}")
    except Exception as e:  # a record that does not describe the file
        raise RunFormatError(f"{arrays_path} cannot be read against its record ({type(e).__name__}: {e}).") from None
    return meta, arrays


def _template(names, like) -> dict:
    """The saved pytree's shape, from its leaves' key paths (as `_named` writes them)."""
    tree = {"ts": None, "obs": {}, "stats": {}, "initial": [], "final": []}
    for name in names:
        parts = [p.strip("'\"") for p in name.strip("[]").split("][")]
        if parts[0] == "ts":
            tree["ts"] = like[name]
        elif parts[0] in ("obs", "stats"):
            tree[parts[0]][parts[1]] = like[name]
        elif parts[0] in ("initial", "final"):
            tree[parts[0]].append(like[name])
        else:
            raise ValueError(f"unknown array {name!r}")
    return tree


def _read_v1(path: Path, meta: dict) -> tuple[dict, dict]:
    """Format version 1: arrays in `arrays.npz` (read without pickle), checksum over the arrays only."""
    for key in ("config", "obs", "stats", "models", "arrays_sha256"):
        if key not in meta:
            raise RunFormatError(f"{path / _META} lacks {key!r}; the run record is corrupted.")
    arrays_path = path / _ARRAYS_V1
    if not arrays_path.exists():
        raise RunFormatError(f"{path} has no {_ARRAYS_V1}; the run is incomplete.")
    if sha256_file(arrays_path) != meta["arrays_sha256"]:
        raise RunFormatError(f"{arrays_path} does not match its checksum: truncated or modified.")
    try:
        with np.load(arrays_path, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
        arrays = {
            "ts": flat["ts"],
            "obs": {k: flat[f"obs/{k}"] for k in meta["obs"]},
            "stats": {k: flat[f"stats/{k}"] for k in meta["stats"]},
            **{w: [flat[f"{w}/{i}"] for i in range(len(meta["models"][w]))] for w in ("initial", "final")},
        }
    except KeyError as e:
        raise RunFormatError(f"{arrays_path} lacks array {e}; the run is corrupted.") from None
    except Exception as e:  # zipfile/np errors on a damaged archive
        raise RunFormatError(f"{arrays_path} cannot be read ({e}).") from None
    return meta, arrays


def assemble_loaded(path, meta: dict, arrays: dict, problem) -> Run:
    """The `Run` from what `read` returned and the (already trusted) problem."""
    config = meta["config"]
    key = keys_from_record(config["seeds"])[0]
    struct, _ = eqx.filter_eval_shape(problem.init, key)
    arrays_struct, skeleton = split_arrays(struct)
    names = leaf_names(arrays_struct)
    models = {}
    for which in ("initial", "final"):
        if names != meta["models"][which]:
            raise RunFormatError(
                f"{path}: the saved {which} model's leaves {meta['models'][which]} do not match "
                f"the problem's model {names}; pass the problem the run was made with."
            )
        treedef = jtu.tree_structure(arrays_struct)
        models[which] = eqx.combine(jtu.tree_unflatten(treedef, arrays[which]), skeleton)
    stats = dict(arrays["stats"])
    stats.setdefault("started_at", np.nan)
    return Run(arrays["ts"], arrays["obs"], models["initial"], models["final"], Stats(**stats), config,
               problem=problem)
