"""Workloads: layer shapes, networks, built-in networks and user CSV/YAML files."""
from __future__ import annotations

import importlib.util
import os

from eyejax.workload.io import load_network, save_network_csv, save_network_yaml
from eyejax.workload.layer import Layer, LayerArrays, LayerType, WorkloadError
from eyejax.workload.network import Network
from eyejax.workload.zoo import NETWORKS, get_network
from eyejax.workload.importers import from_flax, from_jax, from_onnx

__all__ = [
    "Layer", "LayerType", "LayerArrays", "WorkloadError", "Network", "get_network", "NETWORKS",
    "load_network", "save_network_csv", "save_network_yaml", "resolve_workload",
    "from_jax", "from_flax", "from_onnx", "network_from_python",
]

_FILE_SUFFIXES = (".csv", ".yaml", ".yml", ".onnx", ".py")


def resolve_workload(name_or_path: str | os.PathLike, batch: int | None = None) -> Network:
    """A built-in network name (see NETWORKS) or a file: a layer table (.csv, .yaml, .yml), an ONNX
    model (.onnx: its Conv/Gemm/MatMul layers, shapes only; see from_onnx), or a Python file (.py)
    that defines ``network()`` returning a Network (e.g. ``from_flax(model, variables, x)``).

    `batch`, if given, replaces every layer's N.
    """
    s = os.fspath(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and s.strip().lower() in NETWORKS:
        return get_network(s, batch=batch)
    low = s.lower()
    if low.endswith(".onnx"):
        try:
            return from_onnx(s, batch=batch)
        except ImportError as exc:
            raise WorkloadError(f"{s}: reading ONNX needs the onnx package: "
                                f"pip install 'eyejax[onnx]' ({exc})") from None
    if low.endswith(".py"):
        net = network_from_python(s)
        return net if batch is None else net.with_batch(batch)
    if low.endswith(_FILE_SUFFIXES):
        net = load_network(s)
        return net if batch is None else net.with_batch(batch)
    raise WorkloadError(
        f"unknown workload {s!r}: not a built-in network ({', '.join(NETWORKS)}) nor a path ending "
        f"in {', '.join(_FILE_SUFFIXES)}")


def network_from_python(path: str | os.PathLike) -> Network:
    """Runs the Python file at `path` and returns what its ``network()`` returns (a Network).

    The way to bring a Flax or JAX model to the command line: the file builds the model and calls
    an importer, e.g. ``def network(): return from_flax(model, model.init(key, x), x)``. The file
    is executed as the user's own code (like ``python my_net.py``).
    """
    p = os.fspath(path)
    spec = importlib.util.spec_from_file_location(f"eyejax_user_workload_{abs(hash(p))}", p)
    if spec is None or spec.loader is None:
        raise WorkloadError(f"{p}: cannot be loaded as a Python file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, "network", None)
    if not callable(fn):
        raise WorkloadError(f"{p} must define a function network() that returns an "
                            f"eyejax Network (e.g. from from_flax or from_jax)")
    net = fn()
    if not isinstance(net, Network):
        raise WorkloadError(f"{p}: network() returned {type(net).__name__}, not an eyejax Network")
    return net
