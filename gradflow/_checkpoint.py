"""Checkpoints of a segmented solve: written atomically, refused when they do not
match the run asking for them."""

import io
import json
from pathlib import Path

import equinox as eqx
import jax.tree_util as jtu
import numpy as np

from ._files import atomic_write, record_digest, unwritable_ancestor

FORMAT = "gradflow-checkpoint-2"  # 2: Equinox leaf serialisation, checksum over arrays and index
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
    """Save `state` (a pytree of numpy arrays) as segment `segment` with Equinox's
    leaf serialisation: the arrays first, then the index that names them (and
    holds one checksum over both), so the index always points at a complete
    file; older segment files are removed afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    leaves, treedef = jtu.tree_flatten(state)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, [np.asarray(x) for x in leaves])
    data = buffer.getvalue()
    name = f"state-{segment:06d}.eqx"
    atomic_write(directory / name, lambda f: f.write(data))
    index = {"format": FORMAT, "fingerprint": fingerprint, "segment": segment, "file": name,
             "leaves": [[list(np.shape(x)), np.asarray(x).dtype.str] for x in leaves], "treedef": str(treedef)}
    index["sha256"] = record_digest(data, index)
    text = json.dumps(index, indent=1).encode()
    atomic_write(directory / INDEX, lambda f: f.write(text))
    for old in directory.glob("state-*"):
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
        if index.get("format") != FORMAT:
            raise KeyError("format")
        name, fingerprint_read, recorded = index["file"], index["fingerprint"], index["leaves"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{index_path} is damaged or of another gradflow version ({e}); delete {directory} "
                              "to start over.") from None
    if fingerprint_read != fingerprint:
        raise CheckpointError(
            f"the checkpoint in {directory} was written by a different configuration (problem or its data, flow or "
            "optimiser, solver, tolerances, seeds, save times, precision or segment length); resume with the same "
            "arguments, or use another checkpoint_dir."
        )
    path = directory / Path(name).name
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path} is missing ({e}); delete {directory} to start over.") from None
    if record_digest(data, index) != index.get("sha256"):
        raise CheckpointError(f"{path} or {index_path} does not match its checksum (damaged); delete {directory} "
                              "to start over.")
    template_leaves, treedef = jtu.tree_flatten(template)
    wanted = [[list(x.shape), np.dtype(x.dtype).str] for x in template_leaves]
    if str(treedef) != index["treedef"] or recorded != wanted:
        raise CheckpointError(f"the checkpoint in {directory} has another layout (written by another gradflow "
                              "version?); delete it to start over.")
    like = [np.empty(shape, np.dtype(dtype)) for shape, dtype in wanted]
    try:
        leaves = eqx.tree_deserialise_leaves(io.BytesIO(data), like)
    except Exception as e:  # noqa: BLE001 - any failure to read is a damaged file
        raise CheckpointError(f"{path} cannot be read ({e}); delete {directory} to start over.") from None
    return jtu.tree_unflatten(treedef, leaves), int(index["segment"])
