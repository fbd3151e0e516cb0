"""Turn the Hydra/OmegaConf configuration (conf/) into model inputs, checking it before any work.

Sweeps: any architecture field given as a list (``arch.pe_rows=[12,16]``, ``arch.energy.dram=[100,200]``)
is a swept axis. The configurations are the cartesian product of all list-valued fields, numbered
(``config_id``) row-major in field order: the order of the family's fields (:class:`EyerissV1`,
:class:`EyerissV2`), then its energy levels (``energy.alu, rf, noc, glb, dram, hop``); the last list-valued field varies fastest. Scalar fields are the same
for every configuration. The product is an :class:`eyejax.sweep.grid.Grid` (the sweep grid of every
family, as ``sweep=<name>`` runs use), decoded for all B configurations: ``arch_from_config`` returns
the architecture with every swept leaf a 1-D array of length B and the dict
``{"arch.<field>": values}`` of those arrays.

Errors are raised as :class:`ConfigError` (a ``ValueError``) or the model's own ``ArchError`` /
``WorkloadError``; every message names the offending key. Nothing here prints.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from eyejax.app.logs import log
from eyejax.arch import families, get_family
from eyejax.arch.energy import ISCA16_NORMALIZED, EnergyTable
from eyejax.arch.eyeriss_v1 import EyerissV1
from eyejax.arch.validation import validate_arch
from eyejax.dataflow import SEARCH_MODE_NAMES, dataflow_for, search_space
from eyejax.metrics import check_objective
from eyejax.sweep.grid import Axis, Grid

WANDB_MODES = ("offline", "online", "disabled")

# arch.family -> its Family record (eyejax.arch registry); the family's defaults are the chip.
FAMILIES = {name: f for name, f in families().items() if f.configurable}
ARCH_FIELDS = get_family("eyeriss_v1").fields()    # the default family's fields
ENERGY_LEVELS = tuple(f.name for f in dataclasses.fields(EnergyTable)
                      if f.name != "unit")    # order of the energy overrides (sweep order)
# Keys any family accepts (each family's own fields are checked in arch_from_config).
ARCH_KEYS = tuple(dict.fromkeys(
    ("family",) + sum((f.fields() for f in FAMILIES.values()), ()) + ("energy_table", "energy")))
SPARSITY_KEYS = ("iact_density", "weight_density", "ofmap_density")
WORKLOAD_KEYS = ("name", "batch", "path", "layer_types")
TOP_KEYS = ("arch", "workload", "sparsity", "objective", "search", "wandb", "output", "sweep", "dataflow",
            "compile_cache", "mapping")



class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


# --------------------------------------------------------------------------------------------------
# helpers


def _plain(cfg: Any, where: str) -> Any:
    """DictConfig/ListConfig -> plain containers, refusing missing (``???``) values by name."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        if isinstance(cfg, DictConfig):
            for k in cfg.keys():
                if OmegaConf.is_missing(cfg, k):
                    raise ConfigError(f"{where}.{k} is required (it is '???'); set {where}.{k}=...")
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def _check_keys(d: Mapping, allowed, where: str) -> None:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {d!r}")
    for k in d:
        if k not in allowed:
            raise ConfigError(
                f"{where}.{k} is not a known field; allowed fields of {where}: {', '.join(allowed)}")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _axis_values(value, key: str) -> tuple[list, bool]:
    """(values, is_swept) for one field: a number, or a non-empty list of numbers."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ConfigError(f"{key} is an empty list: a swept axis needs at least one value")
        for v in value:
            if not _is_number(v):
                raise ConfigError(f"{key} must be a number or a list of numbers; list item {v!r} is not")
            if not math.isfinite(v):
                raise ConfigError(f"{key} must be finite, got {v!r}")
        return list(value), True
    if not _is_number(value):
        raise ConfigError(f"{key} must be a number or a list of numbers, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    return [value], False


def _energy_table(name) -> EnergyTable:
    if not isinstance(name, str):
        raise ConfigError(f"arch.energy_table must be a table name (one string), got {name!r}")
    try:
        from eyejax.arch.energy import energy_table  # added by the energy-model work
    except ImportError:
        energy_table = None
    if energy_table is None:
        if name == "isca16_normalized":
            return ISCA16_NORMALIZED
        raise ConfigError(f"arch.energy_table = {name!r} is unknown; allowed: isca16_normalized")
    try:
        return energy_table(name)
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if exc.args else exc
        raise ConfigError(f"arch.energy_table = {name!r}: {msg}") from None


# --------------------------------------------------------------------------------------------------
# architecture


def arch_from_config(cfg_arch) -> tuple[EyerissV1, dict[str, np.ndarray]]:
    """Build (and validate) the EyerissV1 batch described by ``cfg.arch``.

    Returns ``(arch, swept)``: ``swept`` maps ``"arch.<field>"`` (``"arch.energy.<level>"`` for energy)
    to a 1-D array of length B, one value per configuration, in config_id order; it is empty when
    nothing is swept, and then every leaf of ``arch`` is a scalar.
    """
    d = _plain(cfg_arch, "arch")
    if d is None:
        d = {}
    family = d.get("family", "eyeriss_v1")
    if family not in FAMILIES:
        raise ConfigError(f"arch.family = {family!r} is unknown; allowed: {', '.join(FAMILIES)}")
    cls = FAMILIES[family].arch_class
    own = FAMILIES[family].fields()
    _check_keys(d, ("family",) + own + ("energy_table", "energy"), "arch")
    energy_over = d.get("energy") or {}
    energy_over = _plain(energy_over, "arch.energy")
    _check_keys(energy_over, ENERGY_LEVELS, "arch.energy")
    table = _energy_table(d.get("energy_table", "isca16_normalized"))
    fields = {f: d[f] for f in own if f in d}
    return _expand(cls(energy=table), fields, energy_over)


def grid(base: EyerissV1 | None = None, **axes) -> tuple[EyerissV1, dict[str, np.ndarray]]:
    """Python form of a sweep: ``grid(pe_rows=[12, 16], glb_banks=[25, 50], energy_dram=[100, 200])``.

    Fields not named keep ``base``'s (scalar) values (default: the Eyeriss v1 chip; any family's
    architecture, e.g. ``grid(EyerissV2(), cluster_rows=[4, 8])``). A list (or 1-D
    array) is a swept axis, a scalar a fixed value; energy levels are ``energy_<level>``. Returns
    ``(arch, swept)`` exactly as :func:`arch_from_config`: the cartesian product, row-major in field
    order, already validated.
    """
    base = EyerissV1() if base is None else base
    own = get_family(base.family).fields()
    fields, energy = {}, {}
    for k, v in axes.items():
        v = v.tolist() if isinstance(v, np.ndarray) else v
        if k.startswith("energy_") or k.startswith("energy."):
            lvl = k[len("energy_"):]
            if lvl not in ENERGY_LEVELS:
                raise ConfigError(f"arch.energy.{lvl} is not a known field; allowed fields of "
                                  f"arch.energy: {', '.join(ENERGY_LEVELS)}")
            energy[lvl] = v
        elif k in own:
            fields[k] = v
        else:
            raise ConfigError(f"arch.{k} is not a known field; allowed fields of arch: "
                              f"{', '.join(own)}, energy_<{'|'.join(ENERGY_LEVELS)}>")
    for f in own:
        if np.ndim(getattr(base, f)) or any(np.ndim(getattr(base.energy, l)) for l in ENERGY_LEVELS):
            raise ConfigError("grid() needs a base architecture with scalar fields")
    return _expand(base, fields, energy)


def _expand(base, fields: Mapping[str, Any], energy_over: Mapping[str, Any]
            ) -> tuple[Any, dict[str, np.ndarray]]:
    table = base.energy
    cls = type(base)
    family = get_family(base.family)
    ranges = family.ranges
    # (key, field, values, swept) in sweep order
    axes: list[tuple[str, str, list, bool]] = []
    for f in family.fields():
        if f in fields:
            vals, swept = _axis_values(fields[f], f"arch.{f}")
        else:
            vals, swept = [getattr(base, f)], False
        axes.append((f"arch.{f}", f, vals, swept))
    for lvl in ENERGY_LEVELS:
        v = energy_over.get(lvl)
        if v is None:
            vals, swept = [getattr(table, lvl)], False
        else:
            vals, swept = _axis_values(v, f"arch.energy.{lvl}")
        axes.append((f"arch.energy.{lvl}", lvl, vals, swept))

    # Range-check every axis on its own values first (cheap, and names the field before the product
    # is formed), then the expanded batch (cross-field rules such as glb_ifmap_banks < glb_banks).
    probe_base = cls()
    for key, name, vals, _ in axes:
        if key.startswith("arch.energy."):
            tbl = dataclasses.replace(table, **{name: np.asarray(vals, dtype=float)})
            validate_arch(probe_base.replace(energy=tbl), {})
            continue
        validate_arch(probe_base.replace(**{name: np.asarray(vals)}), {name: ranges[name]})

    # The product is a sweep grid (eyejax.sweep.grid.Grid, the one sweep mechanism of every family),
    # decoded here for all of its configurations at once.
    is_energy = lambda key: key.startswith("arch.energy.")
    base = cls(**{name: int(vals[0]) for key, name, vals, _ in axes if not is_energy(key)},
               energy=dataclasses.replace(table, **{name: float(vals[0])
                                                    for key, name, vals, _ in axes if is_energy(key)}))
    grid = Grid([Axis((key,), (np.asarray(vals).astype(np.float64 if is_energy(key) else np.int64),))
                 for key, _, vals, s in axes if s], base, base_sparsity=None, num_layers=0)
    if not grid.axes:
        family.validate(base)
        return base, {}
    idx = np.arange(grid.size)
    arch = grid.arch(idx)
    family.validate(arch)
    return arch, grid.columns(idx)


def num_configs(swept: Mapping[str, np.ndarray]) -> int:
    """Number of configurations B described by ``swept`` (1 when nothing is swept)."""
    return int(len(next(iter(swept.values())))) if swept else 1


def swept_frame(swept: Mapping[str, np.ndarray]):
    """The swept values as a DataFrame indexed by config_id (no columns when nothing is swept)."""
    import pandas as pd

    b = num_configs(swept)
    df = pd.DataFrame({k: np.asarray(v) for k, v in swept.items()}, index=pd.RangeIndex(b))
    df.index.name = "config_id"
    return df


# --------------------------------------------------------------------------------------------------
# workload and sparsity


def _num_layers(network) -> int:
    for attr in ("num_layers",):
        n = getattr(network, attr, None)
        if n is not None and not callable(n):
            return int(n)
    layers = getattr(network, "layers", None)
    if layers is not None:
        return len(layers)
    return len(network)


def network_from_config(cfg_workload, base_dir: str | Path | None = None):
    """Resolve ``cfg.workload`` ({name, batch, path}) to a Network.

    ``path`` (a CSV/YAML layer table) wins over ``name``; a relative path is taken from ``base_dir``
    (the directory the program was started in), default the current directory.
    """
    d = _plain(cfg_workload, "workload")
    _check_keys(d, WORKLOAD_KEYS, "workload")
    batch = d.get("batch")
    if batch is not None:
        if not isinstance(batch, numbers.Integral) or isinstance(batch, bool) or batch < 1:
            raise ConfigError(f"workload.batch must be null (the network's own) or an integer >= 1, "
                              f"got {batch!r}")
        batch = int(batch)
    path = d.get("path")
    name = d.get("name")
    try:
        from eyejax.workload import resolve_workload
    except ImportError as exc:  # pragma: no cover - only while the workload registry is missing
        raise ConfigError(f"eyejax.workload.resolve_workload is not available: {exc}") from None
    if path is not None:
        if not isinstance(path, str) or not path:
            raise ConfigError(f"workload.path must be a file path, got {path!r}")
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = Path(base_dir if base_dir is not None else Path.cwd()) / p
        if not p.is_file():
            raise ConfigError(f"workload.path = {path!r}: no such file ({p})")
        target, key = str(p), "workload.path"
    else:
        if not isinstance(name, str) or not name or name == "custom":
            raise ConfigError(f"workload.name must name a built-in network, or set workload.path; "
                              f"got name={name!r}")
        target, key = name, "workload.name"
    try:
        net = resolve_workload(target, batch=batch)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if exc.args else exc
        raise ConfigError(f"{key} = {d.get('path') if path is not None else name!r}: {msg}") from None
    types = d.get("layer_types")
    if types is None:
        return net
    types = [types] if isinstance(types, str) else list(types)
    allowed = ("CONV", "DWCONV", "FC")
    bad = [t for t in types if str(t).upper() not in allowed]
    if not types or bad:
        raise ConfigError(f"workload.layer_types must be a non-empty subset of {list(allowed)}, got {types!r}")
    try:
        return net.select(types=tuple(str(t).upper() for t in types))
    except ValueError as exc:
        raise ConfigError(f"workload.layer_types = {types!r}: {exc}") from None


def _densities(value, key: str, num_layers: int):
    if isinstance(value, (list, tuple)):
        if len(value) != num_layers:
            raise ConfigError(f"{key} has {len(value)} values but the network has {num_layers} layers; "
                              f"give one value per layer or a single number")
        vals = list(value)
    else:
        vals = [value]
    for v in vals:
        if not _is_number(v) or not (0.0 <= float(v) <= 1.0):
            raise ConfigError(f"{key} must be a density in [0, 1] (or a per-layer list of them), "
                              f"got {v!r}")
    if isinstance(value, (list, tuple)):
        return [float(v) for v in vals]
    return float(vals[0])


def sparsity_from_config(cfg_sparsity, num_layers: int):
    """``cfg.sparsity`` ({iact,weight,ofmap}_density: a scalar or a per-layer list) -> Sparsity."""
    d = _plain(cfg_sparsity, "sparsity")
    if d is None:
        d = {}
    _check_keys(d, SPARSITY_KEYS, "sparsity")
    dens = {k: _densities(d.get(k, 1.0), f"sparsity.{k}", num_layers) for k in SPARSITY_KEYS}
    from eyejax.sparsity import Sparsity

    if all(not isinstance(v, list) and v == 1.0 for v in dens.values()):
        return Sparsity.dense(num_layers)
    return Sparsity.from_densities(num_layers, iact=dens["iact_density"],
                                   weight=dens["weight_density"], ofmap=dens["ofmap_density"])


# --------------------------------------------------------------------------------------------------
# the whole run


EXACT_HINT_CONFIGS = 64   # above this many configurations an exact search says how to go faster


def search_mode(cfg, inputs, configs: int | None = None) -> str:
    """The mapping search to run: cfg.search, or "fast" where the dataflow has no exact search
    (every shipped dataflow has one; a plugged-in one may not), with a note; a note too when an
    exact search of many configurations will be slow (`configs`: their number; default: the
    list-valued fields' product)."""
    mode = str(cfg.get("search", "fast"))
    if mode != "exact":
        return mode
    module = dataflow_for(inputs.arch, getattr(inputs, "dataflow", None))
    try:
        search_space(module, "exact")
    except ValueError as err:
        log.info(f"note: {err}; using it")
        return "fast"
    configs = num_configs(inputs.swept) if configs is None else configs
    if configs > EXACT_HINT_CONFIGS and getattr(module, "SEARCH_MODES", None):
        log.info(f"note: the exact mapping search of {configs:,} configurations is slow "
                 "(README \"Mapping search\"); search=fast is 10^3 to 10^4 times faster")
    return mode


def check_run_config(cfg) -> None:
    """Top-level keys: objective, wandb and output."""
    top = list(cfg.keys()) if isinstance(cfg, (DictConfig, Mapping)) else []
    for k in top:
        if k not in TOP_KEYS:
            raise ConfigError(f"{k} is not a known top-level key; allowed: {', '.join(TOP_KEYS)}")
    obj = cfg.get("objective", "energy")
    check_objective(obj, ConfigError)
    search = cfg.get("search", "fast")
    if search not in SEARCH_MODE_NAMES:
        raise ConfigError(f"search = {search!r} is unknown; allowed: {', '.join(SEARCH_MODE_NAMES)}")
    wb = cfg.get("wandb") or {}
    mode = wb.get("mode", "offline")
    if mode not in WANDB_MODES:
        raise ConfigError(f"wandb.mode = {mode!r} is unknown; allowed: {', '.join(WANDB_MODES)}")
    tags = wb.get("tags") or []
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"wandb.tags must be a list of strings, got {tags!r}")
    out = cfg.get("output") or {}
    for k in ("parquet", "totals_parquet"):
        v = out.get(k)
        if v is not None and (not isinstance(v, str) or not v):
            raise ConfigError(f"output.{k} must be a file name or null, got {v!r}")
    if not isinstance(out.get("csv", False), bool):
        raise ConfigError(f"output.csv must be true or false, got {out.get('csv')!r}")
    check_output_paths(out)


def output_paths(out) -> dict[str, Path]:
    """{config key: file} the run writes (relative paths are taken from the run directory)."""
    paths = {}
    for k, default in (("parquet", "results.parquet"), ("totals_parquet", "totals.parquet")):
        v = out.get(k)
        if v:
            paths[f"output.{k}"] = Path(v).expanduser()
        if out.get("csv", False):
            paths[f"output.csv ({k})"] = Path(v or default).expanduser().with_suffix(".csv")
    return paths


def check_output_paths(out) -> None:
    """Before any work: each output file is new, or output.overwrite=true; a missing directory is
    created when the file is written (cli.run), but a file in the way of that directory is refused."""
    overwrite = out.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise ConfigError(f"output.overwrite must be true or false, got {overwrite!r}")
    for key, p in output_paths(out).items():
        if p.is_dir():
            raise ConfigError(f"{key} = {str(p)!r} is a directory; give a file name")
        if p.exists() and not overwrite:
            raise ConfigError(f"{key} = {str(p)!r} already exists ({p.resolve()}); refusing to "
                              f"overwrite it: choose another file name, or set output.overwrite=true")
        for parent in p.resolve().parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ConfigError(f"{key} = {str(p)!r}: {parent} is a file, not a directory")
                break


@dataclasses.dataclass
class RunInputs:
    arch: EyerissV1
    swept: dict[str, np.ndarray]
    network: Any
    sparsity: Any
    num_layers: int
    dataflow: str | None = None     # None: the architecture's own (RS on Eyeriss v1)


# --------------------------------------------------------------------------------------------------
# dataflow group (conf/dataflow/): the architecture's own dataflow, or an ISCA16 equal-area design

DATAFLOW_KEYS = ("name", "num_pes")


def dataflow_from_config(cfg_dataflow, cfg_arch=None):
    """``cfg.dataflow`` ({name, num_pes}) -> (dataflow name or None, arch or None, swept).

    name ``native`` (the default): the arch group's architecture with its own dataflow; returns
    (None, None, {}). Any other name with ``num_pes`` set (a number or a list to sweep) builds the
    ISCA16 equal-area design of that dataflow (eyejax/arch/isca16.py) and ignores the arch group's
    fields except ``energy_table``; ``rs`` without ``num_pes`` runs RS on the arch group's v1.
    """
    from eyejax.arch.isca16 import ISCA16_DATAFLOWS

    d = _plain(cfg_dataflow, "dataflow") or {}
    _check_keys(d, DATAFLOW_KEYS, "dataflow")
    name = d.get("name", "native")
    allowed = ("native",) + ISCA16_DATAFLOWS
    if name not in allowed:
        raise ConfigError(f"dataflow.name = {name!r} is unknown; allowed: {', '.join(allowed)}")
    pes = d.get("num_pes")
    if name == "native":
        return None, None, {}
    family = (_plain(cfg_arch, "arch") or {}).get("family", "eyeriss_v1")
    if family != "eyeriss_v1":
        what = ("RS runs on an Eyeriss v1 (or, with dataflow.num_pes, on the ISCA16 design)"
                if name == "rs" else f"dataflow {name!r} runs on the ISCA16 equal-area design, "
                f"which replaces the arch group's {family}")
        raise ConfigError(f"dataflow.name = {name!r} with arch.family = {family!r}: {what}; use "
                          f"arch=eyeriss_v1 with dataflow={name}, or dataflow=native for {family}'s "
                          f"own dataflow")
    if pes is None:
        if name != "rs":
            raise ConfigError(f"dataflow.num_pes must be set for dataflow {name!r} (the ISCA16 "
                              f"equal-area design's PE count, e.g. 256)")
        return "rs", None, {}
    vals, swept = _axis_values(pes, "dataflow.num_pes")
    if any(int(v) != v or v < 1 or v > 1 << 20 for v in vals):
        raise ConfigError(f"dataflow.num_pes must be integers in [1, {1 << 20}], got {vals!r}")
    table = _energy_table((_plain(cfg_arch, "arch") or {}).get("energy_table", "isca16_normalized"))
    archs = [_isca16_design(name, int(v), table) for v in vals]
    if not swept:
        return name, archs[0], {}
    import jax

    arch = jax.tree_util.tree_map(lambda *x: np.asarray(x), *archs)
    return name, arch, {"dataflow.num_pes": np.asarray(vals, dtype=np.int64)}


def _isca16_design(name: str, num_pes: int, table):
    """The ISCA16 design of ``name`` with ``num_pes`` PEs, checked against its family's ranges."""
    from eyejax.arch.isca16 import array_shape, isca16_arch
    from eyejax.dataflow import dataflow_for

    arch = isca16_arch(name, num_pes, energy=table)
    try:
        dataflow_for(arch, name).validate_arch(arch)
    except ValueError as exc:
        rows, cols = array_shape(num_pes)
        raise ConfigError(
            f"dataflow.num_pes = {num_pes}: the ISCA16 {name.upper()} design would be a {rows} x "
            f"{cols} array, outside the model's ranges ({exc}); "
            + ("RS on the ISCA16 design takes at most 4096 PEs (its buses carry 16 b per PE, at "
               "most 65536 b)" if name == "rs" and num_pes > 4096 else
               "choose a PE count with a squarer split (e.g. a power of two)")) from None
    return arch


def build_inputs(cfg, base_dir: str | Path | None = None) -> RunInputs:
    """Check the whole configuration and build the evaluator's inputs; raises before any model work."""
    check_run_config(cfg)
    arch, swept = arch_from_config(cfg.get("arch"))
    dataflow, df_arch, df_swept = dataflow_from_config(cfg.get("dataflow"), cfg.get("arch"))
    if df_arch is not None:
        arch, swept = df_arch, df_swept
    network = network_from_config(cfg.get("workload"), base_dir=base_dir)
    n = _num_layers(network)
    sparsity = sparsity_from_config(cfg.get("sparsity"), n)
    from eyejax.limits import check_counts

    check_counts(arch, network)  # int64 counts stay exact (eyejax/limits.py)
    return RunInputs(arch=arch, swept=swept, network=network, sparsity=sparsity, num_layers=n,
                     dataflow=dataflow)


__all__ = [
    "ConfigError", "WANDB_MODES", "ARCH_FIELDS", "ARCH_KEYS",
    "arch_from_config", "grid", "network_from_config", "sparsity_from_config", "check_run_config",
    "build_inputs", "RunInputs", "num_configs", "swept_frame", "dataflow_from_config",
]
