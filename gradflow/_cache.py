"""JAX's persistent compilation cache, switched on by gradflow."""

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """`$GRADFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/gradflow/jax`, else `~/.cache/gradflow/jax`."""
    if os.environ.get("GRADFLOW_CACHE_DIR"):
        return Path(os.environ["GRADFLOW_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gradflow" / "jax"


def enable_compile_cache(directory: str | os.PathLike | None = None) -> Path:
    """Store every compiled solve on disk and reuse it in later processes, so a
    second run of the same configuration skips XLA compilation (seconds to
    minutes).

    Every compile is cached, however short (JAX's defaults skip those under
    1 s). JAX keys each entry on the lowered program itself (and the
    compiler's version and options); models and data are arguments of
    gradflow's programs, never constants, so one entry serves every data set
    of the same shapes and no entry can hand back another input's results.
    The cache is trusted code: keep it private. The `gradflow` command turns
    it on unless given `--no-cache`.

    **Arguments:**

    - `directory`: where to store the cache (created if missing; it must be
      writable). Default: `$GRADFLOW_CACHE_DIR`, else
      `$XDG_CACHE_HOME/gradflow/jax`, else `~/.cache/gradflow/jax`.

    **Returns:**

    The directory, as a `Path`.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    directory = Path(default_cache_dir() if directory is None else directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"compile cache directory {directory} cannot be created ({e}); pass another directory.") from None
    if not os.access(directory, os.W_OK):
        raise ValueError(f"compile cache directory {directory} is not writable; pass another directory.")
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    compilation_cache.reset_cache()  # re-read the settings at the next compile, even after earlier compiles
    return directory


def disable_compile_cache() -> None:
    """Stop reading and writing the persistent compilation cache.

    Takes no arguments and returns None.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()
