"""File-system helpers shared by saved runs and checkpoints: atomic writes, and
checks that a directory can take what is about to be written into it."""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def existing_ancestor(path: Path) -> Path:
    """`path` if it exists, else its nearest existing parent."""
    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    return probe


def unwritable_ancestor(path: Path) -> Path | None:
    """The nearest existing directory at or above `path` if it is not writable, else None."""
    probe = existing_ancestor(path)
    return None if os.access(probe, os.W_OK) else probe


def check_free_space(path: Path, need_bytes: float, what: str):
    """Refuse (OSError) before writing when `path` is not writable or its disk has
    less than `need_bytes` (+ 10% and 1 MiB for the temporary copy's slack) free."""
    path = Path(path)
    blocked = unwritable_ancestor(path)
    if blocked is not None:
        raise PermissionError(f"{path}: {blocked} is not writable; choose another directory.")
    free = shutil.disk_usage(existing_ancestor(path)).free
    need = 1.1 * need_bytes + 2**20
    if free < need:
        raise OSError(f"{path}: {what} needs about {need / 2**20:.1f} MiB but only {free / 2**20:.1f} MiB are free "
                      "there; free some space or choose another directory.")


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def atomic_write(target: Path, write) -> str:
    """Write a file with `write(f)` so that a crash leaves either the old file or
    the new one (temporary file, fsync, rename, directory fsync); returns the new
    file's SHA-256. Temporary files are named `.NAME.*.tmp`."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: a saved run follows the umask, as open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return digest
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return digest


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_digest(data: bytes, record: dict) -> str:
    """The one checksum of saved runs and checkpoints: SHA-256 over the arrays file
    and the canonical JSON of its record (without the digest itself), so an edit
    to either is detected."""
    text = json.dumps({k: v for k, v in record.items() if k != "sha256"}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(hashlib.sha256(data).digest() + text.encode()).hexdigest()
