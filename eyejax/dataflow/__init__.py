"""Dataflows: each module maps a layer onto an architecture and costs it.

A dataflow module provides
  search_layer(layer, arch, sparsity_row, first, objective, space) -> flat dict of scalars
      (the COUNT_KEYS of eyejax.dataflow.mapping, `energy_<level>_<type>`, `energy_alu`, `cycles`,
      `dram_cycles`, `feasible`, and its mapping as `map_<name>`),
  DEFAULT_SEARCH (a hashable, static search-space description) and MAPPING_KEYS,
and declares the architecture families it runs on. `dataflow_for` picks one by name or by the
architecture's default.
"""
from __future__ import annotations

import importlib

# name -> module path. Modules load lazily so a new dataflow costs nothing until it is used.
DATAFLOWS = {
    "rs": "eyejax.dataflow.rs",
    "rs_plus": "eyejax.dataflow.rs_plus",
    # ISCA16 comparison dataflows on the equal-area ISCA16Spatial architecture (eyejax/arch/isca16.py);
    # "module:attribute" names an object that provides the module interface.
    "ws": "eyejax.dataflow.ws:WS",
    "os_a": "eyejax.dataflow.os:OS_A",
    "os_b": "eyejax.dataflow.os:OS_B",
    "os_c": "eyejax.dataflow.os:OS_C",
    "nlr": "eyejax.dataflow.nlr:NLR",
}

# architecture family -> its native dataflow
DEFAULT_DATAFLOW = {
    "eyeriss_v1": "rs",
    "eyeriss_v2": "rs_plus",
}

OBJECTIVES = ("energy", "latency", "edp")


def dataflow_for(arch, name: str | None = None):
    family = getattr(arch, "family", None)
    if name is None and getattr(arch, "native_dataflow", None):
        name = arch.native_dataflow     # an architecture built for one dataflow (ISCA16Spatial)
    if name is None:
        if family not in DEFAULT_DATAFLOW:
            raise ValueError(f"no default dataflow for architecture family {family!r}; "
                             f"known families: {sorted(DEFAULT_DATAFLOW)}")
        name = DEFAULT_DATAFLOW[family]
    if name not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {sorted(DATAFLOWS)}, got {name!r}")
    path, _, attr = DATAFLOWS[name].partition(":")
    module = importlib.import_module(path)
    if attr:
        module = getattr(module, attr)
    families = getattr(module, "FAMILIES", None)
    if families is not None and family not in families:
        raise ValueError(f"dataflow {name!r} runs on {sorted(families)}, not on {family!r}")
    return module
