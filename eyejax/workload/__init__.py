"""Workloads: layer shapes, networks, built-in networks and user CSV/YAML files."""
from __future__ import annotations

import os

from eyejax.workload.io import load_network, save_network_csv, save_network_yaml
from eyejax.workload.layer import Layer, LayerArrays, LayerType, WorkloadError
from eyejax.workload.network import Network
from eyejax.workload.zoo import NETWORKS, get_network
from eyejax.workload.importers import from_flax, from_jax, from_onnx

__all__ = [
    "Layer", "LayerType", "LayerArrays", "WorkloadError", "Network", "get_network", "NETWORKS",
    "load_network", "save_network_csv", "save_network_yaml", "resolve_workload",
    "from_jax", "from_flax", "from_onnx",
]

_FILE_SUFFIXES = (".csv", ".yaml", ".yml")


def resolve_workload(name_or_path: str | os.PathLike, batch: int | None = None) -> Network:
    """A built-in network name (see NETWORKS) or a path ending in .csv, .yaml or .yml.

    `batch`, if given, replaces every layer's N.
    """
    s = os.fspath(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and s.strip().lower() in NETWORKS:
        return get_network(s, batch=batch)
    if s.lower().endswith(_FILE_SUFFIXES):
        net = load_network(s)
        return net if batch is None else net.with_batch(batch)
    raise WorkloadError(
        f"unknown workload {s!r}: not a built-in network ({', '.join(NETWORKS)}) nor a path ending "
        f"in {', '.join(_FILE_SUFFIXES)}")
