"""Workloads: layer shapes, networks, built-in networks, and files read by the importers (layer
tables, ONNX, Python files defining network())."""
from __future__ import annotations

import os

from eyejax.workload.importers import (
    FILE_IMPORTERS,
    from_flax,
    from_jax,
    from_onnx,
    network_from_python,
)
from eyejax.workload.io import load_network, save_network_csv, save_network_yaml
from eyejax.workload.layer import Layer, LayerArrays, LayerType, WorkloadError
from eyejax.workload.network import Network
from eyejax.workload.zoo import NETWORKS, get_network

__all__ = [
    "Layer", "LayerType", "LayerArrays", "WorkloadError", "Network", "get_network", "NETWORKS",
    "load_network", "save_network_csv", "save_network_yaml", "resolve_workload",
    "from_jax", "from_flax", "from_onnx", "network_from_python",
]


def resolve_workload(name_or_path: str | os.PathLike, batch: int | None = None) -> Network:
    """A built-in network name (see NETWORKS) or a file, read by the importer of its suffix
    (importers.FILE_IMPORTERS): a layer table (.csv, .yaml, .yml), an ONNX model (.onnx: its
    Conv/Gemm/MatMul layers, shapes only; see from_onnx), or a Python file (.py) that defines
    ``network()`` returning a Network (e.g. ``from_flax(model, variables, x)``).

    `batch`, if given, replaces every layer's N.
    """
    s = os.fspath(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and s.strip().lower() in NETWORKS:
        return get_network(s, batch=batch)
    load = FILE_IMPORTERS.get(os.path.splitext(s)[1].lower())
    if load is None:
        raise WorkloadError(
            f"unknown workload {s!r}: not a built-in network ({', '.join(NETWORKS)}) nor a path "
            f"ending in {', '.join(FILE_IMPORTERS)}")
    return load(s, batch)
