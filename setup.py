"""Packaging beyond pyproject.toml: the top-level conf/ (Hydra configs) ships inside the package as
``eyejax.conf``, so an installed eyejax finds its configs (``pkg://eyejax.conf``) from any folder.
Everything else (metadata, dependencies, package data) is in pyproject.toml."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["eyejax", "eyejax.*"]) + ["eyejax.conf"],
    package_dir={"eyejax.conf": "conf"},
)
