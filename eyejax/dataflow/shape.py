"""A layer's per-group shape as the dataflow models read it (every dataflow and Eyexam)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def layer_shape(layer, dtype):
    """Per-group shape of a layer (LayerArrays leaves: rows or a row; a workload.Layer converts
    with `layer.as_row()`), cast to dtype."""
    v = {k: jnp.asarray(getattr(layer, k)).astype(dtype)
         for k in ("N", "C", "M", "H", "W", "R", "S", "U", "P", "G")}
    v["Cg"] = v["C"] // v["G"]
    v["Mg"] = v["M"] // v["G"]
    v["E"] = (v["H"] + 2 * v["P"] - v["R"]) // v["U"] + 1
    v["F"] = (v["W"] + 2 * v["P"] - v["S"]) // v["U"] + 1
    v["W_used"] = (v["F"] - 1) * v["U"] + v["S"]
    return v


def ofmap_rows(layers) -> np.ndarray:
    """E of each layer (LayerArrays leaves, host-side numpy: for static decisions before jit)."""
    H, P, R, U = (np.asarray(getattr(layers, k), np.int64) for k in ("H", "P", "R", "U"))
    return (H + 2 * P - R) // U + 1


def channels_per_group(layers) -> np.ndarray:
    """Cg of each layer (host-side numpy, like `ofmap_rows`)."""
    return np.asarray(layers.C, np.int64) // np.asarray(layers.G, np.int64)
