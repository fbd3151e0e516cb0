"""A layer's per-group shape as the dataflow models read it (every dataflow and Eyexam)."""
from __future__ import annotations

import jax.numpy as jnp


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
