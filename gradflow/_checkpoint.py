"""Checkpoints of a segmented solve: written atomically, refused when they do not
match the run asking for them."""

import hashlib
import json
from pathlib import Path

import jax.tree_util as jtu
import numpy as np

from ._files import atomic_write, unwritable_ancestor

FORMAT = "gradflow-checkpoint-1"
INDEX = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be resumed (another configuration, damaged files)."""


def check_directory(checkpoint_dir) -> Path:
    """Check `checkpoint_dir` (of `simulate` and `train`) before anything runs;
    returns it as a Path."""
    path = Path(checkpoint_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"`checkpoint_dir` {path} exists and is not a directory.")
    probe = unwritable_ancestor(path)
    if probe is not None:
        raise ValueError(f"`checkpoint_dir` {path}: {probe} is not writable.")
    return path


def write(directory: Path, state: dict, fingerprint: str, segment: int):
    """Save `state` (a pytree of numpy arrays) as segment `segment`: the arrays
    first, then the index that names them, so the index always points at a
    complete file; older segment files are removed afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    leaves, treedef = jtu.tree_flatten(state)
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)})
    data = buffer.getvalue()
    name = f"state-{segment:06d}.npz"
    digest = atomic_write(directory / name, lambda f: f.write(data))
    index = {"format": FORMAT, "fingerprint": fingerprint, "segment": segment, "file": name,
             "sha256": digest, "leaves": len(leaves), "treedef": str(treedef)}
    text = json.dumps(index, indent=1).encode()
    atomic_write(directory / INDEX, lambda f: f.write(text))
    for old in directory.glob("state-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)
    for tmp in directory.glob(".*.tmp"):  # left by a process killed mid-write (this one's are renamed)
        tmp.unlink(missing_ok=True)


def read(directory: Path, fingerprint: str, template: dict):
    """(state, segment) from `directory`, shaped like `template`, or None if it
    holds no checkpoint. Raises CheckpointError if it belongs to another
    configuration or is damaged."""
    index_path = directory / INDEX
    if not index_path.exists():
        return None
    try:
        index = json.loads(index_path.read_text())
        name, sha = index["file"], index["sha256"]
        if index.get("format") != FORMAT:
            raise KeyError("format")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index_path} is damaged ({e}); delete {directory} to start over.") from None
    if index["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"the checkpoint in {directory} was written by a different configuration (problem, flow or optimiser, solver, "
            "tolerances, seeds, save times, precision or segment length); resume with the same arguments, or "
            "use another checkpoint_dir."
        )
    path = directory / name
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path} is missing ({e}); delete {directory} to start over.") from None
    if hashlib.sha256(data).hexdigest() != sha:
        raise CheckpointError(f"{path} does not match its checksum (damaged); delete {directory} to start over.")
    import io

    with np.load(io.BytesIO(data)) as arrays:
        leaves = [arrays[f"leaf_{i}"] for i in range(index["leaves"])]
    template_leaves, treedef = jtu.tree_flatten(template)
    if str(treedef) != index["treedef"] or len(leaves) != len(template_leaves):
        raise CheckpointError(f"the checkpoint in {directory} has another layout (written by another gradflow "
                              "version?); delete it to start over.")
    for got, want in zip(leaves, template_leaves):
        if got.shape != tuple(want.shape):
            raise CheckpointError(f"the checkpoint in {directory} has arrays of other shapes; delete it to start over.")
    return jtu.tree_unflatten(treedef, leaves), int(index["segment"])
