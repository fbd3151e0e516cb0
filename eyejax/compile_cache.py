"""JAX's persistent compilation cache for the command-line apps: repeat runs reuse compiled code.

On by default for `eyejax` (config `compile_cache.enabled`), in a per-user cache directory:
`compile_cache.dir`, else $EYEJAX_CACHE_DIR, else $XDG_CACHE_HOME/eyejax/jax (~/.cache/eyejax/jax).
The cache key covers the program, the jax/jaxlib version and the device, so a stale entry is never
used; deleting the directory is always safe. The library itself (eyejax.evaluate) never turns it
on: that is the application's choice, as JAX recommends.
"""
from __future__ import annotations

import os
from pathlib import Path

import jax

# Cache every compiled program whatever its compile time or size: eyejax's programs compile in
# seconds and are small, and the point is to skip that on the next run.
MIN_COMPILE_SECS = 0.0
MIN_ENTRY_BYTES = -1


def default_dir() -> Path:
    env = os.environ.get("EYEJAX_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eyejax" / "jax"


def enable(cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Turn the persistent cache on in `cache_dir` (default: default_dir()). Returns the directory,
    or None when it cannot be created (the run then compiles as usual)."""
    path = Path(cache_dir).expanduser() if cache_dir else default_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", MIN_ENTRY_BYTES)
    return path


def configure(settings) -> Path | None:
    """Apply a `compile_cache` config block ({enabled: bool, dir: str | null}); None = defaults."""
    settings = settings or {}
    for k in settings:
        if k not in ("enabled", "dir"):
            raise ValueError(f"compile_cache.{k} is not a known field; allowed: enabled, dir")
    enabled, where = settings.get("enabled", True), settings.get("dir")
    if not isinstance(enabled, bool):
        raise ValueError(f"compile_cache.enabled must be true or false, got {enabled!r}")
    if where is not None and (not isinstance(where, str) or not where):
        raise ValueError(f"compile_cache.dir must be a directory path or null, got {where!r}")
    return enable(where) if enabled else None
