"""`Run`: the result of `simulate` or `train`, and its save/load."""

import json
from collections import Counter
from pathlib import Path

import equinox as eqx
import jax
import jax.tree_util as jtu
import numpy as np

from ._config import problem_from_config
from ._devices import keys_from_record
from ._files import atomic_write, check_free_space, sha256_file
from ._status import Status, describe

FORMAT = "gradflow-run"
FORMAT_VERSION = 1
_META = "run.json"
_ARRAYS = "arrays.npz"


def _is_array_like(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def split_arrays(model):
    """(array leaves, everything else) of a model or its `eval_shape`."""
    return eqx.partition(model, _is_array_like)


def leaf_names(tree) -> list[str]:
    return [jtu.keystr(p) for p, _ in jtu.tree_flatten_with_path(tree)[0]]


class Run:
    """Results of one `simulate` or `train` call over a batch of seeds.

    - `ts`: save times, shape (times,); for `train`, step × dt.
    - `obs[name]`: shape (seeds, times, ...); NaN after a seed stopped or failed.
    - `initial`, `final`: the problem's model with a leading seed axis on every
      array (`run.final.W[k]` is seed k's W at its final time).
    - `stats`: per seed `steps`, `accepted`, `rejected`, `gradient_evaluations`,
      `status` (a `gradflow.Status`), `result` (diffrax's code), `t_final`;
      per call `wall_time` and `compile_time` (seconds) and `started_at` (Unix
      time the compiled solve began).
    - `config`: a JSON-serialisable record of everything that produced it.
    """

    def __init__(self, ts, obs, initial, final, stats, config, problem=None):
        self.ts = np.asarray(ts)
        self.obs = {k: np.asarray(v) for k, v in obs.items()}
        self.initial = initial
        self.final = final
        self.stats = {k: np.asarray(v) for k, v in stats.items()}
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
        return describe(self.stats["status"])

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
        per_seed = {k: (v[idx] if v.ndim >= 1 else v) for k, v in self.stats.items()}
        return Run(
            self.ts,
            {k: v[idx] for k, v in self.obs.items()},
            jtu.tree_map(lambda x: take(np.asarray(x)), self.initial),
            jtu.tree_map(lambda x: take(np.asarray(x)), self.final),
            per_seed,
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
        width = max(len(r[0]) for r in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        for k, (s, msg) in enumerate(zip(self.status, self.messages)):
            if s.failed:
                lines.append(f"seed {k}: {msg}")
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"Run({self.config.get('kind', 'simulate')}, seeds={self.n_seeds}, "
            f"times={self.ts.shape[0]}, obs={sorted(self.obs)})"
        )

    # ---- save / load -------------------------------------------------------
    def save(self, path, *, force: bool = False) -> Path:
        """Write `run.json` and `arrays.npz` into directory `path` atomically.

        The arrays are written first and `run.json` (which holds their checksum)
        last, each to a temporary file renamed into place, so a directory either
        loads completely or is refused. An existing run is not overwritten unless
        `force=True`.
        """
        path = Path(path)
        if (path / _META).exists() and not force:
            raise FileExistsError(f"{path} already holds a run; pass force=True (CLI: --force) to overwrite it.")
        arrays = {"ts": self.ts}
        arrays.update({f"obs/{k}": v for k, v in self.obs.items()})
        arrays.update({f"stats/{k}": v for k, v in self.stats.items()})
        models = {}
        for which in ("initial", "final"):
            tree, _ = split_arrays(getattr(self, which))
            leaves = jtu.tree_leaves(tree)
            models[which] = leaf_names(tree)
            arrays.update({f"{which}/{i}": np.asarray(x) for i, x in enumerate(leaves)})
        check_free_space(path, sum(np.asarray(a).nbytes for a in arrays.values()), "the run")
        path.mkdir(parents=True, exist_ok=True)
        digest = atomic_write(path / _ARRAYS, lambda f: np.savez(f, **arrays))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config,
            "obs": sorted(self.obs),
            "stats": sorted(self.stats),
            "models": models,
            "arrays_sha256": digest,
        }
        text = json.dumps(meta, indent=1, allow_nan=False).encode()
        atomic_write(path / _META, lambda f: f.write(text))
        return path


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


def load(path, *, problem=None) -> Run:
    """Load a run saved with `Run.save`.

    The model structure is rebuilt from the saved problem (or from `problem`
    if given, e.g. for a problem class defined in a script). A missing,
    truncated, edited or foreign directory raises `RunFormatError`.
    """
    path = Path(path)
    meta_path, arrays_path = path / _META, path / _ARRAYS
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
    if meta.get("format_version") != FORMAT_VERSION:
        raise RunFormatError(f"{path}: run format version {meta.get('format_version')!r} is not supported.")
    for key in ("config", "obs", "stats", "models", "arrays_sha256"):
        if key not in meta:
            raise RunFormatError(f"{meta_path} lacks {key!r}; the run record is corrupted.")
    if not arrays_path.exists():
        raise RunFormatError(f"{path} has no {_ARRAYS}; the run is incomplete.")
    if sha256_file(arrays_path) != meta["arrays_sha256"]:
        raise RunFormatError(f"{arrays_path} does not match its checksum: truncated or modified.")
    try:
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile/np errors on a damaged archive
        raise RunFormatError(f"{arrays_path} cannot be read ({e}).") from None
    try:
        obs = {k: arrays[f"obs/{k}"] for k in meta["obs"]}
        stats = {k: arrays[f"stats/{k}"] for k in meta["stats"]}
        ts = arrays["ts"]
        leaves = {
            w: [arrays[f"{w}/{i}"] for i in range(len(meta["models"][w]))] for w in ("initial", "final")
        }
    except KeyError as e:
        raise RunFormatError(f"{arrays_path} lacks array {e}; the run is corrupted.") from None
    config = meta["config"]
    if problem is None:
        try:
            problem = problem_from_config(config["problem"])
        except ValueError as e:
            raise RunFormatError(str(e)) from None
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
        models[which] = eqx.combine(jtu.tree_unflatten(treedef, leaves[which]), skeleton)
    return Run(ts, obs, models["initial"], models["final"], stats, config, problem=problem)
