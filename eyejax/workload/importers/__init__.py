"""Importers: build a Network from a JAX function, a Flax module or an ONNX model.

    from eyejax.workload.importers import from_jax, from_flax, from_onnx
    net = from_flax(model, variables, x)           # Flax linen
    net = from_jax(lambda x: f(params, x), x)      # any JAX function (closed-over weights)
    net = from_jax(f, params, x, weight_argnums=0) # weights passed as an argument
    net = from_onnx("model.onnx", batch=4)         # needs `pip install eyejax[onnx]`

Files: `FILE_IMPORTERS` maps a file suffix to a loader (path, batch) -> Network; a new format is
one module here plus one entry there (eyejax.workload.resolve_workload and the command line's
`workload.path` use it).

Ops that do compute but are not CONV/DWCONV/FC layers are listed in one UnsupportedOpsWarning;
shapes the Layer form cannot hold exactly (asymmetric padding, unequal strides, dilation) are
listed in one ApproximationWarning. See the module docstrings of `jaxpr` and `onnx`.
"""
from __future__ import annotations

from typing import Callable

from eyejax.workload.importers._common import (
    ApproximationWarning,
    UnsupportedOpsWarning,
)
from eyejax.workload.importers.jaxpr import from_flax, from_jax
from eyejax.workload.importers.onnx import (
    from_onnx,  # imports the onnx package only when called
)
from eyejax.workload.importers.python_file import network_from_python
from eyejax.workload.io import load_network
from eyejax.workload.layer import WorkloadError
from eyejax.workload.network import Network


def _with_batch(net: Network, batch: int | None) -> Network:
    return net if batch is None else net.with_batch(batch)


def _layer_table(path: str, batch: int | None) -> Network:
    return _with_batch(load_network(path), batch)


def _onnx_file(path: str, batch: int | None) -> Network:
    try:
        return from_onnx(path, batch=batch)
    except ImportError as exc:
        raise WorkloadError(f"{path}: reading ONNX needs the onnx package: "
                            f"pip install 'eyejax[onnx]' ({exc})") from None


def _python_file(path: str, batch: int | None) -> Network:
    return _with_batch(network_from_python(path), batch)


# file suffix (lower case) -> loader(path, batch or None) -> Network
FILE_IMPORTERS: dict[str, Callable[[str, int | None], Network]] = {
    ".csv": _layer_table, ".yaml": _layer_table, ".yml": _layer_table,   # layer tables
    ".onnx": _onnx_file,       # an ONNX model's Conv/Gemm/MatMul layers, shapes only
    ".py": _python_file,       # a Python file defining network()
}


__all__ = ["from_jax", "from_flax", "from_onnx", "network_from_python", "FILE_IMPORTERS",
           "UnsupportedOpsWarning", "ApproximationWarning"]
