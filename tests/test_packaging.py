"""The wheel is a complete install: it carries the Hydra configs (conf/ as the package eyejax.conf,
found through pkg://eyejax.conf) and the built-in networks. (.ci/run also installs the wheel into a
fresh virtual environment and runs the default command from another folder.)"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for f in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / f, src / f)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("eyejax", "conf"):
        shutil.copytree(REPO / d, src / d, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                        str(src)], capture_output=True, text=True, timeout=600)
    if p.returncode != 0 and ("No matching distribution" in p.stderr
                              or "Could not find a version" in p.stderr):
        pytest.skip(f"the build backend (setuptools) cannot be installed here: {p.stderr[-300:]}")
    assert p.returncode == 0, p.stderr[-3000:]
    (whl,) = out.glob("eyejax-*.whl")
    return whl


def test_wheel_ships_every_config_and_network(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    confs = sorted(p.relative_to(REPO / "conf").as_posix() for p in (REPO / "conf").rglob("*.yaml"))
    assert len(confs) > 20
    missing = [c for c in confs if f"eyejax/conf/{c}" not in names]
    assert not missing, missing
    assert "eyejax/conf/__init__.py" in names  # Hydra's pkg:// needs a package
    data = sorted(p.name for p in (REPO / "eyejax" / "workload" / "data").glob("*.csv"))
    assert [d for d in data if f"eyejax/workload/data/{d}" not in names] == []
    assert "eyejax/app/cli.py" in names and "eyejax/app/sweep_cli.py" in names
    assert not [n for n in names if n.startswith(("conf/", "tests/"))]  # nothing at top level


def test_installed_layout_uses_the_package_search_path(tmp_path):
    # An eyejax package outside a checkout (as in site-packages) reads pkg://eyejax.conf.
    site = tmp_path / "site"
    shutil.copytree(REPO / "eyejax", site / "eyejax",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "conf", site / "eyejax" / "conf")
    code = ("import eyejax.app.cli as c; print(c.CONF_PATH); "
            "from hydra import compose, initialize_config_module; "
            "initialize_config_module('eyejax.conf', version_base=None).__enter__(); "
            "print(compose('config').workload.name)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)},
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split() == ["pkg://eyejax.conf", "alexnet"]
