"""Sweep grids: axes over architecture, energy and sparsity fields, decoded lazily by index.

A grid is a list of axes. An axis is one field (``arch.pe_rows``) or a group of zipped fields that
vary together (``arch.pe_rows`` and ``arch.pe_cols``, equal lengths). The grid is their cartesian
product, numbered row-major in axis order (the last axis varies fastest). Configuration ``i``'s
value on each axis is a mixed-radix digit of ``i`` (zipped fields share one digit), so any slice of
the grid is built from index arithmetic alone: a 10**6-point grid never materializes per-point
Python objects, only one chunk's arrays at a time.

Field names are the paths of the architecture pytree's numeric leaves (``arch.<field>``,
``arch.energy.<level>``, whatever the family defines) and the sparsity densities
(``sparsity.iact_density``, ``sparsity.weight_density``, ``sparsity.ofmap_density``). A sparsity value
is a density for every layer, or a list with one density per layer.

Axis values (YAML, see conf/sweep/):
    [8, 12, 16]                           a list
    {values: [8, 12, 16]}                 the same
    {start: 8, stop: 16, step: 4}         a linear range, stop included when a step lands on it
    {start: 0.2, stop: 1.0, num: 5}       num evenly spaced values (stop included)
    {start: 4, stop: 256, factor: 2}      a geometric (log) range: 4, 8, ..., 256
    {start: 4, stop: 256, num: 7, log: true}   num log-spaced values
Integer fields take integer values (log-spaced values are rounded and repeats dropped).

Every check runs before any evaluation; a bad sweep raises :class:`SweepError` naming the axis.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from eyejax.dataflow import dataflow_for
from eyejax.sparsity import Sparsity

SPARSITY_FIELDS = ("iact_density", "weight_density", "ofmap_density")
RANGE_KEYS = {"values", "start", "stop", "step", "num", "factor", "log"}
VALIDATE_BLOCK = 1 << 20  # configurations per block in the whole-grid range check
VALIDATE_FULL_MAX = 1 << 22  # larger grids are range-checked on their extremes (validate_grid)
MAX_AXIS_VALUES = 10_000_000  # one axis' values are held in memory (80 MB at this size)


class SweepError(ValueError):
    """A sweep definition that cannot be run; the message names the axis."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One grid axis: one field, or several zipped fields sharing one index."""

    names: tuple
    values: tuple  # per name: an array [n] (or [n, L] for per-layer sparsity values)

    @property
    def size(self) -> int:
        return int(np.shape(self.values[0])[0])


# --------------------------------------------------------------------------------------------------
# the fields a grid may sweep


def arch_fields(arch) -> dict[str, tuple[int, np.dtype]]:
    """``{"arch.<path>": (leaf index, dtype)}`` for every numeric leaf of the architecture pytree."""
    out = {}
    for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(arch)[0]):
        v = np.asarray(leaf)
        if v.ndim != 0:
            raise SweepError(f"the base architecture must have scalar fields; "
                             f"arch{jax.tree_util.keystr(path)} has shape {v.shape}")
        dtype = np.dtype(np.int64) if np.issubdtype(v.dtype, np.integer) else np.dtype(np.float64)
        out["arch" + jax.tree_util.keystr(path)] = (i, dtype)
    return out


def sweepable_fields(arch) -> list[str]:
    return list(arch_fields(arch)) + [f"sparsity.{f}" for f in SPARSITY_FIELDS]


# --------------------------------------------------------------------------------------------------
# parsing axis values


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _num(spec: Mapping, key: str, name: str):
    v = spec[key]
    if not _is_number(v) or not math.isfinite(v):
        raise SweepError(f"sweep axis {name}: {key} must be a finite number, got {v!r}")
    return v


def axis_values(spec, name: str) -> list:
    """The values of one axis from its YAML form (see the module docstring), in order."""
    if isinstance(spec, Mapping):
        bad = [k for k in spec if k not in RANGE_KEYS]
        if bad:
            raise SweepError(f"sweep axis {name}: unknown key(s) {bad}; an axis is a list or a range "
                             f"with keys {sorted(RANGE_KEYS)}")
        if "values" in spec:
            if len(spec) != 1:
                raise SweepError(f"sweep axis {name}: 'values' cannot be combined with range keys")
            return axis_values(spec["values"], name)
        for k in ("start", "stop"):
            if k not in spec:
                raise SweepError(f"sweep axis {name}: a range needs start and stop (got {dict(spec)})")
        start, stop = _num(spec, "start", name), _num(spec, "stop", name)
        given = [k for k in ("step", "num", "factor") if k in spec]
        if len(given) != 1:
            raise SweepError(f"sweep axis {name}: a range needs exactly one of step, num or factor "
                             f"(got {given or 'none'})")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise SweepError(f"sweep axis {name}: log must be true or false, got {log!r}")
        if log and given[0] != "num":
            raise SweepError(f"sweep axis {name}: log: true goes with num (or use factor)")
        if stop < start:
            raise SweepError(f"sweep axis {name} is empty: stop {stop} < start {start}")
        kind = given[0]
        if kind == "step":
            step = _num(spec, "step", name)
            if step <= 0:
                raise SweepError(f"sweep axis {name}: step must be > 0, got {step}")
            n = int(math.floor((stop - start) / step * (1 + 1e-12) + 1e-9)) + 1
            _check_axis_size(n, name)
            vals = [start + k * step for k in range(n)]
            if all(isinstance(x, numbers.Integral) for x in (start, step)):
                vals = [int(v) for v in vals]
        elif kind == "num":
            num = spec["num"]
            if not isinstance(num, numbers.Integral) or isinstance(num, bool) or num < 1:
                raise SweepError(f"sweep axis {name}: num must be an integer >= 1, got {num!r}")
            _check_axis_size(int(num), name)
            if log:
                if start <= 0:
                    raise SweepError(f"sweep axis {name}: a log range needs start > 0, got {start}")
                vals = np.geomspace(start, stop, int(num)).tolist()
            else:
                vals = np.linspace(start, stop, int(num)).tolist()
        else:
            factor = _num(spec, "factor", name)
            if factor <= 1:
                raise SweepError(f"sweep axis {name}: factor must be > 1, got {factor}")
            if start <= 0:
                raise SweepError(f"sweep axis {name}: a log range needs start > 0, got {start}")
            _check_axis_size(int(math.log(stop / start) / math.log(factor)) + 1, name)
            vals, v = [], start
            while v <= stop * (1 + 1e-12):
                vals.append(v)
                v = v * factor
            if all(isinstance(x, numbers.Integral) for x in (start, factor)):
                vals = [int(v) for v in vals]
        return vals
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        if _is_number(spec):
            return [spec]
        raise SweepError(f"sweep axis {name}: expected a list of values or a range, got {spec!r}")
    return list(spec)


def _check_axis_size(n: int, name: str) -> None:
    """An axis is built in memory: refuse one with more than MAX_AXIS_VALUES values before building
    it (a grid of many axes can still be far larger: it is never materialized)."""
    if n > MAX_AXIS_VALUES:
        raise SweepError(f"sweep axis {name} has {n:,} values; one axis may have at most "
                         f"{MAX_AXIS_VALUES:,} (its values are held in memory). Use fewer values, "
                         f"or split the range over several axes or sweeps")


def _as_field_values(vals: list, name: str, dtype, num_layers: int | None) -> np.ndarray:
    if len(vals) == 0:
        raise SweepError(f"sweep axis {name} is empty: an axis needs at least one value")
    per_layer = num_layers is not None and any(isinstance(v, (list, tuple)) for v in vals)
    if per_layer:
        rows = []
        for v in vals:
            row = list(v) if isinstance(v, (list, tuple)) else [v] * num_layers
            if len(row) != num_layers:
                raise SweepError(f"sweep axis {name}: a per-layer value needs {num_layers} numbers "
                                 f"(one per layer), got {len(row)}")
            rows.append(row)
        vals_flat = [x for r in rows for x in r]
    else:
        vals_flat = vals
    for v in vals_flat:
        if not _is_number(v) or not math.isfinite(v):
            raise SweepError(f"sweep axis {name}: values must be finite numbers, got {v!r}")
    arr = np.asarray(rows if per_layer else vals, dtype=np.float64)
    if np.issubdtype(dtype, np.integer):
        if np.any(arr != np.round(arr)):
            bad = arr[arr != np.round(arr)].ravel()[0]
            raise SweepError(f"sweep axis {name}: {name} is an integer field, got {bad}")
        arr = arr.astype(np.int64)
    return arr


def _dedupe_rounded(vals: list, dtype) -> list:
    """Log/linspace values on an integer field: rounded, repeats dropped (order kept)."""
    if not np.issubdtype(dtype, np.integer):
        return vals
    out = []
    for v in vals:
        r = int(round(v)) if _is_number(v) else v
        if r not in out:
            out.append(r)
    return out


# --------------------------------------------------------------------------------------------------
# the grid


def _flatten_axes(tree, prefix: str, out: list) -> None:
    """Nested ``{arch: {pe_rows: [...], energy: {dram: [...]}}}`` -> [(dotted name, spec)], in order.
    A mapping whose keys are range keys is an axis value, not a nested group."""
    for k, v in tree.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v and not (set(v) & RANGE_KEYS):
            _flatten_axes(v, name, out)
        else:
            out.append((name, v))


class Grid:
    """A sweep grid over a base architecture and base sparsity; see the module docstring.

    ``base_sparsity`` may be None for a grid of architecture fields only (eyejax.app.config's
    list-valued fields)."""

    def __init__(self, axes: list[Axis], base_arch, base_sparsity, num_layers: int):
        self.axes = list(axes)
        self.base_arch = base_arch
        self.base_sparsity = base_sparsity
        self.num_layers = int(num_layers)
        self._fields = arch_fields(base_arch)
        self._leaves, self._treedef = jax.tree_util.tree_flatten(base_arch)
        self.radix = [a.size for a in self.axes]
        self.size = int(math.prod(self.radix)) if self.axes else 1
        self.stride = [int(math.prod(self.radix[k + 1:])) for k in range(len(self.axes))]
        self._sp_tables = self._sparsity_tables()

    # ------------------------------------------------------------------ names
    @property
    def names(self) -> list[str]:
        return [n for a in self.axes for n in a.names]

    def describe(self) -> str:
        parts = []
        for a in self.axes:
            label = " + ".join(a.names) if len(a.names) > 1 else a.names[0]
            parts.append(f"{label} ({a.size})")
        return " x ".join(parts) if parts else "(no axes)"

    # ------------------------------------------------------------------ decoding
    def digits(self, idx) -> list[np.ndarray]:
        """Per axis, the index of each configuration's value (mixed-radix decode of ``idx``)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.size):
            raise IndexError(f"configuration index out of range [0, {self.size})")
        return [(idx // s) % r for s, r in zip(self.stride, self.radix)]

    def columns(self, idx) -> dict[str, np.ndarray]:
        """``{axis field: value per configuration}``; a per-layer sparsity value is given as its
        position in the axis' value list."""
        out = {}
        for a, d in zip(self.axes, self.digits(idx)):
            for n, v in zip(a.names, a.values):
                out[n] = d if np.ndim(v) == 2 else np.asarray(v)[d]
        return out

    def arch(self, idx):
        """The architecture pytree of configurations ``idx``: swept leaves are 1-D arrays, the
        others the base's scalars."""
        leaves = list(self._leaves)
        for a, d in zip(self.axes, self.digits(idx)):
            for n, v in zip(a.names, a.values):
                if n in self._fields:
                    leaves[self._fields[n][0]] = np.asarray(v)[d]
        return jax.tree_util.tree_unflatten(self._treedef, leaves)

    def sparsity(self, idx):
        """The Sparsity of configurations ``idx``: leaves changed by a swept density are [B, L],
        the others the base's [L]."""
        sp = self.base_sparsity
        if not self._sp_tables:
            return sp
        changes = {}
        for a, d in zip(self.axes, self.digits(idx)):
            for n in a.names:
                for leaf, table in self._sp_tables.get(n, {}).items():
                    changes[leaf] = table[d]
        return dataclasses.replace(sp, **changes)

    def corner(self):
        """(arch, sparsity) that bound every configuration: each swept architecture field at its
        largest value, each swept density at its smallest. Static bounds taken from it (e.g.
        Eyeriss v2's cluster count, the NoC precision) hold for every chunk, so a sweep compiles
        once instead of once per chunk whose maximum differs."""
        leaves = list(self._leaves)
        for a in self.axes:
            for n, v in zip(a.names, a.values):
                if n in self._fields:
                    leaves[self._fields[n][0]] = np.max(np.asarray(v))
        sp = self.base_sparsity
        changes = {leaf: np.min(table, axis=0) for own in self._sp_tables.values()
                   for leaf, table in own.items()}
        return jax.tree_util.tree_unflatten(self._treedef, leaves), dataclasses.replace(sp, **changes)

    # ------------------------------------------------------------------ sparsity tables
    def _sparsity_tables(self) -> dict:
        """For each swept density: {Sparsity leaf it changes: [n, L] table over the axis values}.
        The leaves a density owns are found by building the Sparsity for each value with the
        other densities at their base (Sparsity.from_densities)."""
        if not any(n.startswith("sparsity.") for n in self.names):
            return {}
        base = self.base_sparsity
        L = self.num_layers
        base_d = {f: np.asarray(getattr(base, f), dtype=np.float64) for f in SPARSITY_FIELDS}
        leaf_names = [f.name for f in dataclasses.fields(base)]
        tables, owner = {}, {}
        for a in self.axes:
            for n, vals in zip(a.names, a.values):
                if not n.startswith("sparsity."):
                    continue
                field = n.split(".", 1)[1]
                rows = {k: [] for k in leaf_names}
                for v in np.asarray(vals, dtype=np.float64):
                    d = dict(base_d)
                    d[field] = np.broadcast_to(v, (L,))
                    try:
                        s = Sparsity.from_densities(L, iact=d["iact_density"],
                                                    weight=d["weight_density"],
                                                    ofmap=d["ofmap_density"])
                    except ValueError as exc:
                        raise SweepError(f"sweep axis {n}: {exc}") from None
                    for k in leaf_names:
                        rows[k].append(np.asarray(getattr(s, k), dtype=np.float64))
                own = {}
                for k in leaf_names:
                    t = np.stack(rows[k])
                    if k == field or not np.array_equal(t, np.broadcast_to(np.asarray(getattr(base, k)), t.shape)):
                        own[k] = t
                for k in own:
                    if k in owner:
                        raise SweepError(f"sweep axes {owner[k]} and {n} both change sparsity leaf "
                                         f"{k}; sweep only one of them")
                    owner[k] = n
                tables[n] = own
        return tables

    # ------------------------------------------------------------------ identity
    def spec(self) -> dict:
        """A JSON-able description of the grid (axes and base values)."""
        leaves = {n: np.asarray(self._leaves[i]).item() for n, (i, _) in self._fields.items()}
        return {
            "family": self.base_arch.family,
            "arch_treedef": str(self._treedef),
            "base_arch": leaves,
            "base_sparsity": None if self.base_sparsity is None else {
                f.name: np.asarray(getattr(self.base_sparsity, f.name)).tolist()
                for f in dataclasses.fields(self.base_sparsity)},
            "axes": [{"names": list(a.names), "values": [np.asarray(v).tolist() for v in a.values]}
                     for a in self.axes],
            "size": self.size,
        }


def build_grid(axes_cfg: Mapping | None, zip_cfg: Sequence | None, base_arch, base_sparsity,
               num_layers: int, validate: bool = True) -> Grid:
    """Parse and check a sweep's ``axes`` and ``zip`` (plain containers) into a :class:`Grid`.

    Raises SweepError (naming the axis) for an unknown field, an empty axis, zipped axes of
    different lengths, or a value outside the field's range; nothing is evaluated.
    """
    axes_cfg = axes_cfg or {}
    if not isinstance(axes_cfg, Mapping):
        raise SweepError(f"sweep.axes must be a mapping of fields to values, got {axes_cfg!r}")
    flat: list[tuple[str, Any]] = []
    _flatten_axes(axes_cfg, "", flat)
    fields = arch_fields(base_arch)
    allowed = sweepable_fields(base_arch)
    values: dict[str, np.ndarray] = {}
    for name, spec in flat:
        if name not in allowed:
            raise SweepError(
                f"sweep axis {name}: not a sweepable field of {base_arch.family}; fields: "
                f"{', '.join(allowed)}")
        is_sp = name.startswith("sparsity.")
        dtype = np.dtype(np.float64) if is_sp else fields[name][1]
        vals = axis_values(spec, name)
        if isinstance(spec, Mapping) and ("num" in spec or spec.get("log")):
            vals = _dedupe_rounded(vals, dtype)
        values[name] = _as_field_values(vals, name, dtype, num_layers if is_sp else None)

    # zipped groups
    zip_cfg = list(zip_cfg or [])
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    for gi, g in enumerate(zip_cfg):
        if isinstance(g, (str, bytes)) or not isinstance(g, Sequence) or len(g) < 2:
            raise SweepError(f"sweep.zip entry {g!r} must be a list of two or more axis names")
        for n in g:
            if n not in values:
                raise SweepError(f"sweep.zip {list(g)}: {n} is not an axis in sweep.axes "
                                 f"(axes: {', '.join(values) or 'none'})")
            if n in group_of:
                raise SweepError(f"sweep.zip: axis {n} is in more than one zipped group")
            group_of[n] = gi
        lens = {n: len(values[n]) for n in g}
        if len(set(lens.values())) > 1:
            raise SweepError(f"sweep.zip {list(g)}: zipped axes have different lengths ("
                             + ", ".join(f"{n}: {k}" for n, k in lens.items()) + ")")
        groups.append(list(g))

    axes: list[Axis] = []
    placed = set()
    for name, _ in flat:
        if name in placed:
            continue
        # a zipped group sits where its first field is listed; its fields keep their listed order
        names = [x for x, _ in flat if x in groups[group_of[name]]] if name in group_of else [name]
        axes.append(Axis(tuple(names), tuple(values[n] for n in names)))
        placed.update(names)
    grid = Grid(axes, base_arch, base_sparsity, num_layers)
    if validate:
        validate_grid(grid)
    return grid


def _validator(arch):
    return dataflow_for(arch).validate_arch


def validate_grid(grid: Grid) -> None:
    """Range checks: each arch axis on its own (the message names it), then every configuration of
    the grid in blocks (rules between fields, e.g. glb_ifmap_banks < glb_banks)."""
    check = _validator(grid.base_arch)
    fields = arch_fields(grid.base_arch)
    leaves, treedef = jax.tree_util.tree_flatten(grid.base_arch)
    arch_names = [n for n in grid.names if n in fields]
    if not arch_names:
        return
    errors = {}
    for a in grid.axes:
        for n, v in zip(a.names, a.values):
            if n not in fields:
                continue
            lv = list(leaves)
            lv[fields[n][0]] = np.asarray(v)
            try:
                check(jax.tree_util.tree_unflatten(treedef, lv))
            except ValueError as exc:
                errors[n] = str(exc)
    # An error of one axis alone may only be a rule shared with another swept field; the whole
    # grid decides. Report the first failing block, naming the axis its message mentions.
    # A grid above VALIDATE_FULL_MAX configurations is checked on its extremes instead: the grid of
    # each arch axis' entries that hold a field's smallest or largest value. The ranges are per
    # field and the rules between fields are monotone (glb_ifmap_banks < glb_banks), so the worst
    # case of every rule is among them; a 10**12-point grid is checked in milliseconds.
    if grid.size > VALIDATE_FULL_MAX:
        grid = _extremes(grid, fields)
    for start in range(0, grid.size, VALIDATE_BLOCK):
        idx = np.arange(start, min(start + VALIDATE_BLOCK, grid.size))
        try:
            check(grid.arch(idx))
        except ValueError as exc:
            msg = str(exc)
            mentioned = [n for n in arch_names if re.search(re.escape(n) + r"(?![\w.])", msg)]
            named = mentioned or list(errors) or arch_names
            raise SweepError(f"sweep axis {named[0]}: {msg}") from None


def _extremes(grid: Grid, fields) -> Grid:
    """The sub-grid of the arch axes restricted to the entries holding each field's min and max."""
    axes = []
    for a in grid.axes:
        keep = [(n, np.asarray(v)) for n, v in zip(a.names, a.values) if n in fields]
        if not keep:
            continue
        idx = sorted({int(i) for _, v in keep for i in (np.argmin(v), np.argmax(v))})
        axes.append(Axis(tuple(n for n, _ in keep), tuple(v[idx] for _, v in keep)))
    return Grid(axes, grid.base_arch, grid.base_sparsity, grid.num_layers)


def grid_hash(obj: Any) -> str:
    """A stable sha256 of a JSON-able object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


__all__ = ["Axis", "Grid", "SweepError", "build_grid", "validate_grid", "axis_values",
           "arch_fields", "sweepable_fields", "grid_hash", "SPARSITY_FIELDS"]
