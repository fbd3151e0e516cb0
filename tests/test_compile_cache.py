"""JAX's persistent compilation cache in the `eyejax` command: on by default in a per-user cache
directory, reused by the next run, off with one setting."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eyejax import compile_cache

REPO = Path(__file__).resolve().parents[1]
NET = "mobilenet_v1_0.5_128"


def _run(tmp_path: Path, name: str, cache: Path, *overrides):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["EYEJAX_CACHE_DIR"] = str(cache)
    run_dir = tmp_path / name
    p = subprocess.run([sys.executable, "-m", "eyejax.app.cli", f"workload={NET}", "workload.batch=1",
                        "wandb.mode=disabled", f"hydra.run.dir={run_dir}", *overrides],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return pd.read_parquet(run_dir / "results.parquet")


def _entries(cache: Path) -> set:
    return {p.name for p in cache.rglob("*") if p.is_file()} if cache.exists() else set()


def test_repeat_run_reuses_the_persistent_cache(tmp_path):
    cache = tmp_path / "cache"
    first = _run(tmp_path, "a", cache)
    written = _entries(cache)
    assert written, "the first run wrote nothing to the compilation cache"
    second = _run(tmp_path, "b", cache)
    assert _entries(cache) == written, "the second run compiled again instead of reusing the cache"
    pd.testing.assert_frame_equal(first, second)


def test_cache_off_with_one_setting(tmp_path):
    cache = tmp_path / "cache"
    _run(tmp_path, "a", cache, "compile_cache.enabled=false")
    assert not _entries(cache)


def test_default_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("EYEJAX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.default_dir() == tmp_path / "eyejax" / "jax"
    monkeypatch.setenv("EYEJAX_CACHE_DIR", str(tmp_path / "x"))
    assert compile_cache.default_dir() == tmp_path / "x"


@pytest.mark.parametrize("settings, field", [({"enabled": 3}, "compile_cache.enabled"),
                                             ({"dir": 5}, "compile_cache.dir"),
                                             ({"size": 1}, "compile_cache.size")])
def test_bad_settings_name_the_field(settings, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        compile_cache.configure(settings)
