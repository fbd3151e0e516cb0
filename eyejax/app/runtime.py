"""Where the Hydra apps (``eyejax``, ``eyejax-prune``) run: their configuration tree and the folder
they were started in. Shared by every app module; imports no other eyejax module.

The configuration tree is the repository's top-level ``conf/`` when eyejax runs from a checkout (an
editable install or PYTHONPATH); an installed wheel ships the same files as the package
``eyejax.conf`` and Hydra reads them from there (``pkg://eyejax.conf``), whatever the current folder.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # eyejax/


def checkout_conf() -> Path | None:
    """<checkout>/conf when this eyejax package sits in a source checkout, else None."""
    cand = PACKAGE_DIR.parent / "conf"
    if ((PACKAGE_DIR.parent / "pyproject.toml").is_file() and (cand / "config.yaml").is_file()
            and (cand / "arch" / "eyeriss_v1.yaml").is_file()):
        return cand
    return None


def find_conf_dir() -> str:
    """The configuration directory: <checkout>/conf, else the installed package data (eyejax/conf)."""
    checkout = checkout_conf()
    if checkout is not None:
        return str(checkout)
    return str(PACKAGE_DIR / "conf")  # a wheel install; if missing, Hydra says "config directory not found"


def conf_search_path() -> str:
    """Hydra's primary config path: the checkout's conf/ directory, else ``pkg://eyejax.conf``
    (the configs installed with the package, found through the import system)."""
    checkout = checkout_conf()
    return str(checkout) if checkout is not None else "pkg://eyejax.conf"


CONF_DIR = find_conf_dir()
CONF_PATH = conf_search_path()


def original_cwd() -> str:
    """The folder the app was started in (Hydra changes into its run directory)."""
    import hydra

    try:
        return hydra.utils.get_original_cwd()
    except ValueError:  # not running under Hydra
        return os.getcwd()

