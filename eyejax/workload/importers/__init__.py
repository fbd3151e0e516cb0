"""Importers: build a Network from a JAX function, a Flax module or an ONNX model.

    from eyejax.workload.importers import from_jax, from_flax, from_onnx
    net = from_flax(model, variables, x)           # Flax linen
    net = from_jax(lambda x: f(params, x), x)      # any JAX function (closed-over weights)
    net = from_jax(f, params, x, weight_argnums=0) # weights passed as an argument
    net = from_onnx("model.onnx", batch=4)         # needs `pip install eyejax[onnx]`

Ops that do compute but are not CONV/DWCONV/FC layers are listed in one UnsupportedOpsWarning;
shapes the Layer form cannot hold exactly (asymmetric padding, unequal strides, dilation) are
listed in one ApproximationWarning. See the module docstrings of `jaxpr` and `onnx`.
"""
from eyejax.workload.importers._common import ApproximationWarning, UnsupportedOpsWarning
from eyejax.workload.importers.jaxpr import from_flax, from_jax
from eyejax.workload.importers.onnx import from_onnx  # imports the onnx package only when called


__all__ = ["from_jax", "from_flax", "from_onnx", "UnsupportedOpsWarning", "ApproximationWarning"]
