"""Fixed mappings: evaluate a given RS mapping instead of searching (what `timeloop-model` is to
Timeloop's mapper).

A mapping is given per layer name, from Python (a dict, or an RSMapping whose leaves have one value
per layer) or from a YAML file:

    name: my_mapping            # optional
    layers:
      CONV1: {e: 7, r: 1, t: 2, p: 16, q: 1, n: 1, m: 96}     # h optional: min(R, pe_rows)

Layers the mapping does not name are searched as usual. Presets ship in eyejax/dataflow/mappings/
(`alexnet_jssc17`: the chip's own AlexNet mapping, JSSC17 Table III); a preset name or a path is
accepted wherever a mapping is.
"""
from __future__ import annotations

import os

import numpy as np

from eyejax.dataflow.mapping import RSMapping

PRESET_DIR = os.path.join(os.path.dirname(__file__), "mappings")
KEYS = ("h", "e", "r", "t", "p", "q", "n", "m")
REQUIRED = ("e", "r", "t", "p", "q", "n", "m")


class MappingError(ValueError):
    """A fixed mapping that is malformed or does not fit the architecture."""


def presets() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(PRESET_DIR) if f.endswith(".yaml"))


def load_mapping(spec, base_dir: str | None = None) -> dict:
    """{layer name: {key: int}} from a preset name, a YAML path, or a dict (checked)."""
    if isinstance(spec, str):
        path = spec
        if not os.path.isabs(path) and base_dir is not None and os.path.exists(os.path.join(base_dir, path)):
            path = os.path.join(base_dir, path)
        if not os.path.exists(path):
            preset = os.path.join(PRESET_DIR, spec + ".yaml")
            if not os.path.exists(preset):
                raise MappingError(f"mapping {spec!r} is neither a file nor a preset "
                                   f"(presets: {', '.join(presets())})")
            path = preset
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f)
        if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
            raise MappingError(f"mapping file {path}: expected a 'layers:' mapping of layer names")
        spec = data["layers"]
    if not isinstance(spec, dict):
        raise MappingError(f"mapping must be a preset name, a YAML path or a dict, got {type(spec)}")
    out = {}
    for name, entry in spec.items():
        if isinstance(entry, RSMapping):
            entry = {k: getattr(entry, k) for k in KEYS}
        if not isinstance(entry, dict):
            raise MappingError(f"mapping.{name}: expected {{e: .., r: .., ...}}, got {entry!r}")
        unknown = set(entry) - set(KEYS)
        if unknown:
            raise MappingError(f"mapping.{name}: unknown field(s) {sorted(unknown)}; fields are {KEYS}")
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            raise MappingError(f"mapping.{name}: missing field(s) {missing}")
        row = {}
        for k, v in entry.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise MappingError(f"mapping.{name}.{k} must be an integer >= 1, got {v!r}")
            row[k] = int(v)
        out[str(name)] = row
    return out


def mapping_arrays(network, spec, base_dir: str | None = None):
    """(RSMapping of int64 [L] arrays, fixed mask [L]) for a network: the named layers take their
    mapping (h = 0 stands for min(R, pe_rows)); the others are searched."""
    if isinstance(spec, RSMapping):   # one value (or one per layer) for every key
        L = len(network.layers)
        arrs = {k: np.broadcast_to(np.asarray(getattr(spec, k), np.int64), (L,)).copy()
                for k in KEYS}
        return RSMapping(**arrs), np.ones(L, bool)
    table = load_mapping(spec, base_dir)
    names = list(network.names)
    unknown = [n for n in table if n not in names]
    if unknown:
        raise MappingError(f"mapping names layer(s) {unknown} that the network {network.name!r} "
                           f"does not have (its layers: {names})")
    L = len(names)
    arrs = {k: np.ones(L, np.int64) for k in KEYS}
    arrs["h"][:] = 0
    fixed = np.zeros(L, bool)
    for i, n in enumerate(names):
        if n in table:
            fixed[i] = True
            for k, v in table[n].items():
                arrs[k][i] = v
    return RSMapping(**arrs), fixed


def check_fits(network, arch, mapping: RSMapping, fixed, batch: int) -> None:
    """Raise MappingError naming the layer, the configuration and the limit a fixed mapping breaks
    (the capacity rules of docs/rs_model.md, checked by the simulation's own check)."""
    import jax

    # The simulation's rule check names the broken limit (the model's `feasible` only says whether
    # the mapping fits); imported here so the model does not load the simulation unless a fixed
    # mapping is given.
    from eyejax.sim.rs_sim import check_mapping

    for b in range(batch):
        a = jax.tree_util.tree_map(lambda x: np.asarray(x)[b] if np.ndim(x) == 1 else x, arch)
        for i, layer in enumerate(network.layers):
            if not fixed[i]:
                continue
            vals = {k: int(np.asarray(getattr(mapping, k))[i]) for k in KEYS}
            if vals["h"] == 0:
                vals["h"] = min(layer.R, int(np.asarray(a.pe_rows)))
            try:
                check_mapping(layer, RSMapping(**vals), a)
            except ValueError as exc:
                where = f" (configuration {b})" if batch > 1 else ""
                raise MappingError(f"mapping for layer {layer.name!r}{where} does not fit: {exc}") from None
