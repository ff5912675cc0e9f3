"""Traced programs kept on disk (`jax.export`), so a later process running the
same configuration skips tracing and lowering as well as XLA compilation.

Only configurations made entirely of gradflow's and diffrax's own objects are
kept, keyed by the configuration's full contents (array leaves by their bytes),
the source of the installed gradflow package and the versions of jax, jaxlib,
diffrax, equinox and optax: a user-defined problem, flow or stop condition
(whose code gradflow cannot fingerprint) is always traced afresh. Switched on
with `gradflow.enable_compile_cache` (and so by the `gradflow` command).
"""

import functools
import hashlib
import importlib.metadata
import types
from pathlib import Path

import equinox as eqx
import jax
import jax.tree_util as jtu
import numpy as np

_DIR: Path | None = None
_TRUSTED = ("gradflow.", "diffrax.", "optimistix.", "lineax.", "equinox.", "builtins", "numpy", "jax")


def set_directory(directory: Path | None) -> None:
    global _DIR
    _DIR = None if directory is None else Path(directory)
    if _DIR is not None:
        _DIR.mkdir(parents=True, exist_ok=True)


@functools.cache
def _environment() -> str:
    root = Path(__file__).parent
    source = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        source.update(path.relative_to(root).as_posix().encode())
        source.update(path.read_bytes())
    versions = []
    for name in ("jax", "jaxlib", "diffrax", "equinox", "optax"):
        try:
            versions.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name}=?")
    return source.hexdigest() + ";" + ";".join(versions)


def _fingerprint(obj, digest) -> bool:
    """Feed `obj` into `digest`; False if it holds anything we cannot fingerprint."""
    leaves, treedef = jtu.tree_flatten(obj, is_leaf=lambda x: x is None)
    digest.update(repr(treedef).encode())
    for node in jtu.tree_leaves(obj, is_leaf=lambda x: isinstance(x, eqx.Module)):
        if isinstance(node, eqx.Module) and not type(node).__module__.startswith(_TRUSTED):
            return False
    for leaf in leaves:
        if isinstance(leaf, (np.ndarray, jax.Array)):
            a = np.asarray(leaf)
            digest.update(f"{a.shape}{a.dtype}".encode() + a.tobytes())
        elif isinstance(leaf, (bool, int, float, str, complex, type(None))):
            digest.update(repr(leaf).encode())
        elif isinstance(leaf, eqx.Module):
            if not _fingerprint(leaf, digest):
                return False
        elif isinstance(leaf, types.FunctionType):  # e.g. a controller's norm: by name, if it is a library's
            if not (leaf.__module__ or "").startswith(_TRUSTED) or "<" in leaf.__qualname__:
                return False
            digest.update(f"{leaf.__module__}.{leaf.__qualname__}".encode())
        else:
            text = repr(leaf)
            if " at 0x" in text or not type(leaf).__module__.startswith(_TRUSTED):
                return False
            digest.update(text.encode())
    return True


def program_path(key) -> Path | None:
    """Where the traced program for compile-cache `key` lives, or None if it
    may not be kept (no directory set, or a configuration we cannot fingerprint)."""
    if _DIR is None or key is None:
        return None
    digest = hashlib.sha256(_environment().encode())
    if not _fingerprint(key, digest):
        return None
    return _DIR / f"{digest.hexdigest()}.jaxexport"


def load(path: Path):
    """The deserialised program's `call`, or None if absent or unreadable."""
    try:
        return jax.export.deserialize(bytearray(path.read_bytes())).call
    except (OSError, ValueError, TypeError, RuntimeError):
        return None


def store(path: Path, jitted, example_args):
    """Export `jitted` for `example_args` to `path` (atomically); returns its
    `call`, or None if it cannot be exported (e.g. a progress bar's host callback)."""
    try:
        exported = jax.export.export(jitted)(*example_args)
        data = exported.serialize()
    except Exception:  # not exportable: trace normally
        return None
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        return None
    return exported.call
