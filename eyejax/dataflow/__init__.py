"""Dataflows: each maps a layer onto an architecture and costs it.

The protocol every dataflow (a module, or an object with these attributes) provides:
  FAMILIES        the architecture families it runs on (eyejax.arch registry names);
  MAPPING_KEYS    its mapping parameters;
  DEFAULT_SEARCH  a hashable, static description of its mapping space;
  search_layer(layer, arch, sparsity_row, first, objective, space) -> flat dict of scalars: the
      COUNT_KEYS of eyejax.dataflow.mapping, `energy_<level>_<type>`, `energy_alu`, `cycles`,
      `dram_cycles`, `feasible`, and its mapping as `map_<name>` (search.choose and
      search.layer_result give the shared search; cost.energy turns counts into energy);
  validate_arch(arch) -> None, raising an error that names the field and its range;
  parallelism(shape) and physical_min_compute(layer, arch) (or None) for Eyexam's steps 2 and 4;
  optionally prepare_space(space, arch, layers, sparsity) -> space, which fills in static fields
  from the concrete batch before jit;
  optionally partition_space(space, layers) -> [(layer indices, space)], the layers split into
  parts searched with smaller spaces that give the same results; a dataflow that returns several
  parts also provides the search in two halves, so one recount serves every part:
  choose_mapping(layer, arch, sparsity_row, first, objective, space) -> (mapping, any_ok) and
  finish_mapping(layer, arch, sparsity_row, first, mapping, any_ok, space) -> search_layer's dict;
  optionally SEARCH_MODES {"fast" | "exact": "module:attribute" of a space}, or SEARCH_EXACT =
  True when its one search (DEFAULT_SEARCH) is already exact (`search_space` picks by name).
`DATAFLOWS` names them (`register_dataflow` adds one); `dataflow_for` picks one by name or by the
architecture family's native one (eyejax.arch); `prepare_search_space` readies its space and
`partition_search_space` splits it by layer.
"""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from eyejax.arch import family_of

# name -> module path, or an object with the dataflow interface (register_dataflow). Modules load
# lazily so a new dataflow costs nothing until it is used.
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


def register_dataflow(name: str, target) -> None:
    """Add a dataflow: `target` is a "module[:attribute]" path, loaded when first used, or an
    object that provides the interface above (e.g. one a test defines)."""
    DATAFLOWS[name] = target


def unregister_dataflow(name: str) -> None:
    DATAFLOWS.pop(name, None)


def get_dataflow(name: str):
    """The registered dataflow `name` (its module or object)."""
    if name not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {sorted(DATAFLOWS)}, got {name!r}")
    target = DATAFLOWS[name]
    if not isinstance(target, str):
        return target
    path, _, attr = target.partition(":")
    module = importlib.import_module(path)
    return getattr(module, attr) if attr else module


def dataflow_for(arch, name: str | None = None):
    """The dataflow `name`, or the architecture family's native one (eyejax.arch registry)."""
    fam = family_of(arch)
    family = fam.name
    if name is None:
        name = fam.dataflow_of(arch)
    module = get_dataflow(name)
    families = getattr(module, "FAMILIES", None)
    if families is not None and family not in families:
        raise ValueError(f"dataflow {name!r} runs on {sorted(families)}, not on {family!r}")
    return module


SEARCH_MODE_NAMES = ("fast", "exact")


def search_space(module, mode: str):
    """The dataflow's space for a search mode: "exact" (the objective's minimum over every legal
    mapping) or "fast" (a fixed grid where the dataflow has one; the exact search otherwise)."""
    if mode not in SEARCH_MODE_NAMES:
        raise ValueError(f"search must be one of {', '.join(SEARCH_MODE_NAMES)}, got {mode!r}")
    modes = getattr(module, "SEARCH_MODES", None)
    if modes is None:
        if mode == "exact" and not getattr(module, "SEARCH_EXACT", False):
            name = getattr(module, "__name__", type(module).__name__)
            raise ValueError(f"search=exact is not available for the dataflow {name} yet; its "
                             "search is a fixed grid (search=fast)")
        return module.DEFAULT_SEARCH
    path, _, attr = modes[mode].partition(":")
    return getattr(importlib.import_module(path), attr)


def partition_search_space(module, space, layers) -> list:
    """[(layer indices, space)] covering every layer once: the prepared `space` split by layer
    where the dataflow can drop candidates that are exact duplicates on some layers
    (`partition_space` of the module, e.g. RS+'s group splits on ungrouped layers); one part
    otherwise. Each part is searched with its own space inside one compiled call."""
    part = getattr(module, "partition_space", None)
    if part is None:
        return [(np.arange(layers.num_layers), space)]
    return part(space, layers)


def prepare_search_space(module, space, arch, layers=None, sparsity=None):
    """The dataflow's search space (its default when None, a mode name: `search_space`) ready to compile for this batch: the
    module's own `prepare_space` (static bounds from the concrete architectures), and, for a
    workload of single images, one image split instead of several: every split gives n =
    ceil(1/k) = 1 in every dataflow here, so the dropped candidates are exact duplicates and no
    result changes (the search keeps the first of equal scores, and the order of the rest holds)."""
    space = module.DEFAULT_SEARCH if space is None else space
    if isinstance(space, str):
        space = search_space(module, space)
    if layers is not None and hasattr(space, "n_splits") and int(np.max(layers.N)) == 1:
        space = dataclasses.replace(space, n_splits=tuple(space.n_splits[:1]))
    prepare = getattr(module, "prepare_space", None)
    if prepare is not None:
        space = prepare(space, arch, layers, sparsity)
    return space
